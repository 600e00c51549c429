// @ts-check
// The outbox: messages of ours the server has not stored yet, kept in
// IndexedDB so neither a dead link nor a reload loses them. Each keeps its
// client id, so sending it again (after a reconnect, after a reload) never
// stores it twice: the server answers a repeated client id as a duplicate.

const DB = "chatcore";
const STORE = "outbox";

/**
 * One unsent message as stored: `ts` is the local clock when it was written (the "clock mark" shown beside it).
 * @typedef {{ client_id: string, user: string, conv: string, peer?: string, text: string, ts: number, failed?: string }} Entry
 */

/** @type {Promise<IDBDatabase | null> | null} */
let opening = null;

/** The database, or null where IndexedDB is unavailable (private modes): the outbox then lives in memory only. */
function db() {
  opening ??= new Promise((resolve) => {
    try {
      const req = indexedDB.open(DB, 1);
      req.onupgradeneeded = () => {
        const store = req.result.createObjectStore(STORE, { keyPath: "client_id" });
        store.createIndex("user", "user");
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => resolve(null);
      req.onblocked = () => resolve(null);
    } catch {
      resolve(null);
    }
  });
  return opening;
}

/**
 * Runs one request in a transaction and resolves when the transaction is done (so a write is on disk).
 * @template T
 * @param {IDBTransactionMode} mode
 * @param {(store: IDBObjectStore) => IDBRequest<T>} fn
 * @returns {Promise<T | undefined>}
 */
async function run(mode, fn) {
  const d = await db();
  if (!d) return undefined;
  return new Promise((resolve) => {
    try {
      const tx = d.transaction(STORE, mode);
      const req = fn(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => resolve(undefined);
      tx.onabort = () => resolve(undefined);
    } catch {
      resolve(undefined);
    }
  });
}

/** Keeps (or updates) an unsent message. */
export async function put(/** @type {Entry} */ entry) {
  await run("readwrite", (s) => s.put(entry));
}

/** Forgets a message: stored by the server, or deleted by the user. */
export async function remove(/** @type {string} */ clientId) {
  await run("readwrite", (s) => s.delete(clientId));
}

/** Every unsent message of `user`, oldest first. */
export async function entries(/** @type {string} */ user) {
  const all = /** @type {Entry[] | undefined} */ (await run("readonly", (s) => s.index("user").getAll(user)));
  return (all ?? []).sort((a, b) => a.ts - b.ts);
}
