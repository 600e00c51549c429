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
import { E2eError, messageOf } from "./errors.js";
import { generateStoreKey } from "./store.js";
/** The database's name unless told otherwise. */
export const DEFAULT_DATABASE = "chatcore-e2e";
const VERSION = 1;
/** Sealed machine states, by id. */
const STATES = "states";
/** Non-extractable AES-GCM keys, by id. */
const KEYS = "keys";
function unavailable(why) {
    return new E2eError("unavailable", `this browser keeps no end-to-end keys (IndexedDB: ${messageOf(why)})`);
}
/** Resolves with a request's result when its transaction has committed (so a write is durable). */
function done(tx, req) {
    return new Promise((resolve, reject) => {
        tx.oncomplete = () => resolve(req.result);
        tx.onerror = () => reject(unavailable(tx.error ?? req.error ?? "the transaction failed"));
        tx.onabort = () => reject(unavailable(tx.error ?? "the transaction was aborted"));
    });
}
/** Where a browser keeps its devices' end-to-end state and keys: one IndexedDB database. */
export class BrowserKeys {
    db;
    constructor(db) {
        this.db = db;
    }
    /**
     * Opens (or creates) the database. Rejects with an `unavailable` {@link E2eError} where IndexedDB is missing or
     * refused (some private modes), so that the application can say so and keep keys for this page only.
     */
    static open(name = DEFAULT_DATABASE) {
        return new Promise((resolve, reject) => {
            let req;
            try {
                if (typeof indexedDB === "undefined")
                    throw new Error("not in this environment");
                req = indexedDB.open(name, VERSION);
            }
            catch (e) {
                reject(unavailable(e));
                return;
            }
            req.onupgradeneeded = () => {
                const db = req.result;
                if (!db.objectStoreNames.contains(STATES))
                    db.createObjectStore(STATES);
                if (!db.objectStoreNames.contains(KEYS))
                    db.createObjectStore(KEYS);
            };
            req.onsuccess = () => {
                const db = req.result;
                // Another tab upgrading the schema: let it, and open again next time.
                db.onversionchange = () => db.close();
                resolve(new BrowserKeys(db));
            };
            req.onerror = () => reject(unavailable(req.error ?? "open failed"));
            req.onblocked = () => reject(unavailable("blocked by another tab"));
        });
    }
    /**
     * The key of `id`: the one kept, or a new non-extractable AES-256-GCM key, kept. Two tabs asking at once get the
     * same key (the first one written wins, in one transaction).
     */
    async key(id) {
        const fresh = await generateStoreKey(false);
        const tx = this.db.transaction(KEYS, "readwrite");
        const keys = tx.objectStore(KEYS);
        const got = keys.get(id);
        let chosen = fresh;
        got.onsuccess = () => {
            if (got.result instanceof CryptoKey)
                chosen = got.result;
            else
                keys.put(fresh, id);
        };
        await done(tx, got);
        return chosen;
    }
    /** The {@link MachineStore} of `id` in this database. */
    store(id) {
        return new IndexedDbStore(this.db, id);
    }
    /** The ids that have a saved state here (e.g. `user/device`), for an application that picks up an earlier device's keys. */
    async ids() {
        const tx = this.db.transaction(STATES, "readonly");
        const keys = await done(tx, tx.objectStore(STATES).getAllKeys());
        return keys.filter((k) => typeof k === "string");
    }
    /** Forgets the state and the key of `id` (a device signed out without keeping its keys). */
    async forget(id) {
        const tx = this.db.transaction([STATES, KEYS], "readwrite");
        tx.objectStore(STATES).delete(id);
        await done(tx, tx.objectStore(KEYS).delete(id));
    }
    /** Closes the database. */
    close() {
        this.db.close();
    }
}
/** A device's sealed state in IndexedDB; see {@link BrowserKeys.store}. */
class IndexedDbStore {
    db;
    id;
    constructor(db, id) {
        this.db = db;
        this.id = id;
    }
    async load() {
        const tx = this.db.transaction(STATES, "readonly");
        const value = await done(tx, tx.objectStore(STATES).get(this.id));
        if (value === undefined)
            return null;
        if (!(value instanceof Uint8Array))
            throw new E2eError("store_format", "the saved end-to-end state is not bytes");
        return value;
    }
    async save(bytes) {
        const tx = this.db.transaction(STATES, "readwrite");
        await done(tx, tx.objectStore(STATES).put(bytes.slice(), this.id));
    }
}
