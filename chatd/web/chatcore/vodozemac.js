/**
 * vodozemac (Olm, Megolm, Ed25519) compiled to WebAssembly, for end-to-end
 * encryption: the same library, version and formats as the Rust client's
 * `chatcore_client::e2e`. This module only loads it; the classes are
 * wasm-bindgen's, from `bindings/vodozemac-wasm` (built by its `build.sh`
 * into `chatd/web/vodozemac/`, which `bindings/typescript/vodozemac` links to).
 *
 * ```ts
 * import { loadVodozemac } from "@chatcore/client/vodozemac";
 * const vz = await loadVodozemac();
 * const account = new vz.Account();
 * ```
 *
 * In browsers the `.wasm` is fetched from beside the glue (chatd serves it at
 * `/vodozemac/vodozemac_wasm_bg.wasm`); in Node it is read from the file and
 * compiled synchronously. Failures throw an `Error` named `VodozemacError`
 * with a `code` (see {@link VodozemacErrorCode}); a failed call leaves the
 * instance usable.
 *
 * @module
 */
import init, * as glue from "../vodozemac/vodozemac_wasm.js";
/** Whether `e` is an error thrown by vodozemac. */
export function isVodozemacError(e) {
    return e instanceof Error && e.name === "VodozemacError" && typeof e.code === "string";
}
/** Where the module lies: beside the glue, which lies beside this file's folder. */
const WASM_URL = new URL("../vodozemac/vodozemac_wasm_bg.wasm", import.meta.url);
let loading;
function isNode() {
    const g = globalThis;
    return typeof g.process?.versions?.node === "string";
}
async function instantiate(wasm) {
    const source = wasm ?? WASM_URL;
    if (isNode() && source instanceof URL && source.protocol === "file:") {
        // Node's fetch does not read file: URLs. A variable specifier keeps
        // bundlers and tsc (no Node types here) away from node:fs.
        const fsModule = "node:fs/promises";
        const fs = (await import(fsModule));
        glue.initSync({ module: await fs.readFile(source) });
    }
    else {
        await init({ module_or_path: source });
    }
    return glue;
}
/**
 * Loads and instantiates the WebAssembly once; later calls return the same
 * module. `wasm` overrides where it comes from (its URL, or its bytes) for
 * bundlers and workers that serve it elsewhere. A failed load may be retried.
 */
export function loadVodozemac(wasm) {
    if (!loading) {
        loading = instantiate(wasm).catch((e) => {
            loading = undefined;
            throw e;
        });
    }
    return loading;
}
