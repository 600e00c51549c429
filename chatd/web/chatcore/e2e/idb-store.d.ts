/**
 * The browser's keeping of end-to-end state: IndexedDB holds, per device,
 * the sealed state (a {@link MachineStore}) and the AES-GCM `CryptoKey` that
 * seals it, generated non-extractable, so script on the page can use it but
 * never read its bytes, and the stored state is useless copied elsewhere.
 *
 * ```ts
 * const keys = await BrowserKeys.open();          // E2eError "unavailable" in private modes
 * const id = `${session.user}/${session.device}`;
 * const secure = new SecureChat(client, { store: keys.store(id), key: await keys.key(id) });
 * ```
 *
 * The same key seals what else the application keeps at rest (its outbox,
 * drafts): `seal` and `unseal` of this module's index.
 *
 * @module
 */
import { type MachineStore } from "./store.js";
/** The database's name unless told otherwise. */
export declare const DEFAULT_DATABASE = "chatcore-e2e";
/** Where a browser keeps its devices' end-to-end state and keys: one IndexedDB database. */
export declare class BrowserKeys {
    private readonly db;
    private constructor();
    /**
     * Opens (or creates) the database. Rejects with an `unavailable` {@link E2eError} where IndexedDB is missing or
     * refused (some private modes), so that the application can say so and keep keys for this page only.
     */
    static open(name?: string): Promise<BrowserKeys>;
    /**
     * The key of `id`: the one kept, or a new non-extractable AES-256-GCM key, kept. Two tabs asking at once get the
     * same key (the first one written wins, in one transaction).
     */
    key(id: string): Promise<CryptoKey>;
    /** The {@link MachineStore} of `id` in this database. */
    store(id: string): MachineStore;
    /** The ids that have a saved state here (e.g. `user/device`), for an application that picks up an earlier device's keys. */
    ids(): Promise<string[]>;
    /** Forgets the state and the key of `id` (a device signed out without keeping its keys). */
    forget(id: string): Promise<void>;
    /** Closes the database. */
    close(): void;
}
