/**
 * A {@link MachineStore} in one file, for Node (tests, bots): replaced
 * atomically (written beside it, synced, then renamed over it), so a crash
 * leaves the old or the new state, never half of one.
 *
 * @module
 */
import type { MachineStore } from "./store.js";
/** The state in the file at `path` (its directory must exist). Node only. */
export declare class FileStore implements MachineStore {
    readonly path: string;
    /** @param path the file; `<path>.tmp-<uuid>` is written beside it while saving. */
    constructor(path: string);
    /** The file's bytes, or `null` when it does not exist. */
    load(): Promise<Uint8Array | null>;
    /**
     * Writes a temporary file of this save's own beside it, syncs it, renames it over the file: two savers of one file
     * (an application's mistake, or a client started again while the old one still saves) never write into each
     * other's temporary file (the Rust client's FileStore does the same).
     */
    save(bytes: Uint8Array): Promise<void>;
}
