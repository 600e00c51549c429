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
import * as glue from "../vodozemac/vodozemac_wasm.js";
/** The loaded module: its classes and functions. */
export type Vodozemac = Omit<typeof glue, "default" | "initSync">;
export type { Account, DecryptedGroupMessage, Ed25519SecretKey, GroupSession, InboundGroupSession, InboundSession, OlmEncrypted, OneTimeKey, Session, } from "../vodozemac/vodozemac_wasm.js";
/** The `code` of a `VodozemacError` (bindings/vodozemac-wasm/src/error.rs). */
export type VodozemacErrorCode = "invalid_argument" | "invalid_key" | "invalid_message" | "decrypt" | "unknown_index" | "session" | "pickle";
/** What vodozemac throws. */
export interface VodozemacError extends Error {
    name: "VodozemacError";
    code: VodozemacErrorCode;
    /** With `unknown_index`: the first index the session can read. */
    firstKnownIndex?: number;
    /** With `unknown_index`: the message's index. */
    messageIndex?: number;
}
/** Whether `e` is an error thrown by vodozemac. */
export declare function isVodozemacError(e: unknown): e is VodozemacError;
/**
 * Loads and instantiates the WebAssembly once; later calls return the same
 * module. `wasm` overrides where it comes from (its URL, or its bytes) for
 * bundlers and workers that serve it elsewhere. A failed load may be retried.
 */
export declare function loadVodozemac(wasm?: URL | BufferSource): Promise<Vodozemac>;
