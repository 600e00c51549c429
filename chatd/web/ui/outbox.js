// @ts-check
// The outbox: messages of ours the server has not stored yet, kept in
// IndexedDB so neither a dead link nor a reload loses them. Each keeps its
// client id, so sending it again (after a reconnect, after a reload) never
// stores it twice: the server answers a repeated client id as a duplicate.
// The text is sealed at rest (ui/e2e.js, the user's non-extractable key), and
// kept as text, never as ciphertext: an encrypted conversation's message is
// encrypted when it is (re)sent, with the keys of then.

const DB = "chatcore";
/** Entries of version 1, their text in clear: read once, sealed into SEALED, deleted. */
const LEGACY = "outbox";
const SEALED = "outbox-sealed";

/**
 * One unsent message as stored: `ts` is the local clock when it was written (the "clock mark" shown beside it);
 * `sealed`: `{ text, failed? }` sealed by ui/e2e.js `sealJson`.
 * @typedef {{ client_id: string, user: string, conv: string, ts: number, sealed: Uint8Array }} Entry
 */

/** An entry of version 1. @typedef {{ client_id: string, user: string, conv: string, text: string, ts: number, failed?: string }} LegacyEntry */

/** @type {Promise<IDBDatabase | null> | null} */
let opening = null;

/** The database, or null where IndexedDB is unavailable (private modes): the outbox then lives in memory only. */
function db() {
  opening ??= new Promise((resolve) => {
    try {
      const req = indexedDB.open(DB, 2);
      req.onupgradeneeded = () => {
        const d = req.result;
        if (!d.objectStoreNames.contains(LEGACY)) d.createObjectStore(LEGACY, { keyPath: "client_id" }).createIndex("user", "user");
        d.createObjectStore(SEALED, { keyPath: "client_id" }).createIndex("user", "user");
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
 * Runs requests in one transaction over both stores and resolves when it is done (so a write is on disk).
 * @template T
 * @param {IDBTransactionMode} mode
 * @param {(sealed: IDBObjectStore, legacy: IDBObjectStore) => IDBRequest<T>} fn
 * @returns {Promise<T | undefined>}
 */
async function run(mode, fn) {
  const d = await db();
  if (!d) return undefined;
  return new Promise((resolve) => {
    try {
      const tx = d.transaction([SEALED, LEGACY], mode);
      const req = fn(tx.objectStore(SEALED), tx.objectStore(LEGACY));
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
  await run("readwrite", (s, legacy) => {
    legacy.delete(clientId);
    return s.delete(clientId);
  });
}

/** Every unsent message of `user`, oldest first; `legacy`: those kept in clear by an earlier version, to seal. */
export async function entries(/** @type {string} */ user) {
  const sealed = /** @type {Entry[] | undefined} */ (await run("readonly", (s) => s.index("user").getAll(user)));
  const legacy = /** @type {LegacyEntry[] | undefined} */ (await run("readonly", (_, l) => l.index("user").getAll(user)));
  return { sealed: (sealed ?? []).sort((a, b) => a.ts - b.ts), legacy: (legacy ?? []).sort((a, b) => a.ts - b.ts) };
}

/** Deletes the clear copy of version 1 of an entry (sealed since). */
export async function forgetLegacy(/** @type {string} */ clientId) {
  await run("readwrite", (_, legacy) => legacy.delete(clientId));
}
