/**
 * A {@link MachineStore} in one file, for Node (tests, bots): replaced
 * atomically (written beside it, synced, then renamed over it), so a crash
 * leaves the old or the new state, never half of one.
 *
 * @module
 */
async function fs() {
    // A variable specifier keeps bundlers and tsc (no Node types here) away from node:fs.
    const name = "node:fs/promises";
    return (await import(name));
}
/** The state in the file at `path` (its directory must exist). Node only. */
export class FileStore {
    path;
    /** @param path the file; `<path>.tmp-<uuid>` is written beside it while saving. */
    constructor(path) {
        this.path = path;
    }
    /** The file's bytes, or `null` when it does not exist. */
    async load() {
        try {
            return new Uint8Array(await (await fs()).readFile(this.path));
        }
        catch (e) {
            if (e.code === "ENOENT")
                return null;
            throw e;
        }
    }
    /**
     * Writes a temporary file of this save's own beside it, syncs it, renames it over the file: two savers of one file
     * (an application's mistake, or a client started again while the old one still saves) never write into each
     * other's temporary file (the Rust client's FileStore does the same).
     */
    async save(bytes) {
        const f = await fs();
        const tmp = `${this.path}.tmp-${crypto.randomUUID()}`;
        const handle = await f.open(tmp, "w");
        try {
            await handle.writeFile(bytes);
            await handle.sync();
        }
        finally {
            await handle.close();
        }
        await f.rename(tmp, this.path);
    }
}
