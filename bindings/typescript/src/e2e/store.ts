/**
 * The machine's whole state as bytes, encrypted at rest with WebCrypto
 * AES-GCM under a `CryptoKey` the application gives (in browsers a
 * non-extractable key kept in IndexedDB; in Node any AES-GCM key), and where
 * those bytes are kept ({@link MachineStore}).
 *
 * Layout: `CCEW` (chatcore end-to-end, web), a format byte (1), a 12-byte
 * random nonce, then the AES-256-GCM ciphertext of a MessagePack map (named
 * fields, `schema` inside) with the 5 header bytes as associated data.
 * vodozemac's objects are kept as its pickles, under a fixed pickle key: the
 * AES-GCM layer is what protects them. (The Rust client's state, `CCE2`, is
 * another format: each client reads its own.)
 *
 * @module
 */

import type { Vodozemac } from "../vodozemac.js";
import { E2eError, messageOf } from "./errors.js";
import { pack, unpack } from "./formats.js";
import { type Inbound, MachineState, type SessionRef, type ToDeviceIn, type TrackedUser } from "./state.js";

const MAGIC = new Uint8Array([0x43, 0x43, 0x45, 0x57]); // "CCEW"
const FORMAT = 1;
/** The schema of the MessagePack state; a newer one is refused. */
const SCHEMA = 1;
const NONCE = 12;
/** vodozemac's pickles are encrypted by the outer layer; its own layer uses this constant key. */
const PICKLE_KEY = new Uint8Array(32);

/** Where a device's encrypted state is kept between runs. */
export interface MachineStore {
  /** The bytes saved last, or `null` when nothing was saved yet. */
  load(): Promise<Uint8Array | null>;
  /** Replaces the saved bytes; when it resolves, a later `load` sees them (also after a crash, for a durable store). */
  save(bytes: Uint8Array): Promise<void>;
}

/** Keeps the state in memory: for tests, and apps that start afresh each time. */
export class MemoryStore implements MachineStore {
  private bytes: Uint8Array | null = null;
  /** The bytes saved last (a copy). */
  async load(): Promise<Uint8Array | null> {
    return this.bytes ? this.bytes.slice() : null;
  }
  /** Keeps a copy of `bytes`. */
  async save(bytes: Uint8Array): Promise<void> {
    this.bytes = bytes.slice();
  }
}

/**
 * A new AES-256-GCM key for the state at rest: non-extractable unless
 * `extractable` (a browser keeps the `CryptoKey` itself in IndexedDB; a Node
 * app that keeps the key elsewhere needs it extractable, or imports its own
 * 32 bytes with `crypto.subtle.importKey("raw", bytes, "AES-GCM", false, ["encrypt", "decrypt"])`).
 */
export function generateStoreKey(extractable = false): Promise<CryptoKey> {
  return crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, extractable, ["encrypt", "decrypt"]);
}

type Map_ = Record<string, unknown>;

/** The state as a MessagePack map (pickled now, synchronously: later changes do not leak in). */
export function snapshot(s: MachineState): Uint8Array {
  const k = PICKLE_KEY;
  return pack({
    schema: SCHEMA,
    user: s.user,
    device: s.device,
    account: s.account.pickle(k),
    identity_published: s.identityPublished,
    master_secret: s.masterSecret ? s.masterSecret.toBase64() : null,
    users: [...s.users].map(([user, t]) => [
      user,
      {
        master_key: t.masterKey ?? null,
        devices: [...t.devices].map(([id, d]) => [
          id,
          { signing_key: d.signingKey, agreement_key: d.agreementKey, master_signature: d.masterSignature ?? null },
        ]),
      },
    ]),
    olm_sessions: [...s.sessions].map(([key, list]) => [key, list.map((x) => x.pickle(k))]),
    processed: s.processed,
    deferred: s.deferred,
    claim_failed: [...s.claimFailed],
    outbound: [...s.outbound].map(([conv, o]) => ({
      conv,
      session: o.session.pickle(k),
      created: o.created,
      shared_with: [...o.sharedWith],
      unconfirmed: [...o.unconfirmed],
    })),
    inbound: [...s.inbound].map(([key, i]) => ({
      key,
      conv: i.conv,
      session: i.session.pickle(k),
      source: { sender: i.source.sender, sender_key: i.source.senderKey, forwarded: i.source.forwarded },
      seen: [...i.seen],
    })),
    waiting: [...s.waiting.values()],
    // Missing in states saved before key backups existed, which read as no backup.
    backup: s.backup ? { version: s.backup.version, public_key: s.backup.publicKey, backed_up: [...s.backup.backedUp] } : null,
  });
}

/** Encrypts a snapshot under the layout of the module documentation. */
export async function seal(data: Uint8Array, key: CryptoKey): Promise<Uint8Array> {
  const header = new Uint8Array([...MAGIC, FORMAT]);
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE));
  const sealed = new Uint8Array(
    await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: header }, key, data as Uint8Array<ArrayBuffer>),
  );
  const out = new Uint8Array(header.length + NONCE + sealed.length);
  out.set(header, 0);
  out.set(nonce, header.length);
  out.set(sealed, header.length + NONCE);
  return out;
}

/** Decrypts bytes written by {@link seal}. */
export async function open(bytes: Uint8Array, key: CryptoKey): Promise<Uint8Array> {
  if (bytes.length < 5 + NONCE || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new E2eError("store_format", "the stored end-to-end state is malformed: not an end-to-end state");
  }
  if (bytes[4] !== FORMAT) {
    throw new E2eError("store_too_new", `the stored end-to-end state has format ${bytes[4]}, newer than ${FORMAT}: update the app`);
  }
  try {
    return new Uint8Array(
      await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: bytes.slice(5, 5 + NONCE), additionalData: bytes.slice(0, 5) },
        key,
        bytes.slice(5 + NONCE),
      ),
    );
  } catch {
    throw new E2eError("store_decrypt", "the stored end-to-end state does not decrypt: wrong key or tampered bytes");
  }
}

function fail(why: string): never {
  throw new E2eError("store_format", `the stored end-to-end state is malformed: ${why}`);
}
function isMap(v: unknown): v is Map_ {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}
function s_(v: unknown, what: string): string {
  return typeof v === "string" ? v : fail(`${what} is not a string`);
}
function n_(v: unknown, what: string): number {
  return typeof v === "number" && Number.isInteger(v) ? v : fail(`${what} is not an integer`);
}
function a_(v: unknown, what: string): unknown[] {
  return Array.isArray(v) ? v : fail(`${what} is not a list`);
}
function m_(v: unknown, what: string): Map_ {
  return isMap(v) ? v : fail(`${what} is not a map`);
}
function opt(v: unknown, what: string): string | undefined {
  return v === null || v === undefined ? undefined : s_(v, what);
}
function ref(v: unknown): SessionRef {
  const m = m_(v, "a session");
  return { conv: s_(m["conv"], "conv"), user: s_(m["user"], "user"), device: s_(m["device"], "device"), session: s_(m["session"], "session") };
}

/** Rebuilds the state of a snapshot; every vodozemac object made so far is freed when it fails. */
export function restore(vz: Vodozemac, data: Uint8Array): MachineState {
  let root: Map_;
  try {
    root = m_(unpack(data), "the state");
  } catch (e) {
    fail(messageOf(e));
  }
  const schema = n_(root["schema"], "schema");
  if (schema > SCHEMA) {
    throw new E2eError("store_too_new", `the stored end-to-end state has schema ${schema}, newer than ${SCHEMA}: update the app`);
  }
  const k = PICKLE_KEY;
  const wrap = <T>(what: string, f: () => T): T => {
    try {
      return f();
    } catch (e) {
      if (e instanceof E2eError) throw e;
      return fail(`${what}: ${messageOf(e)}`);
    }
  };
  const account = wrap("account", () => vz.Account.fromPickle(s_(root["account"], "account"), k));
  const s = new MachineState(vz, s_(root["user"], "user"), s_(root["device"], "device"), account, root["identity_published"] === true);
  try {
    const secret = opt(root["master_secret"], "master_secret");
    if (secret !== undefined) s.masterSecret = wrap("master secret", () => vz.Ed25519SecretKey.fromBase64(secret));
    for (const entry of a_(root["users"], "users")) {
      const [user, t] = a_(entry, "a user");
      const tm = m_(t, "a user");
      const tracked: TrackedUser = { devices: new Map() };
      const master = opt(tm["master_key"], "master_key");
      if (master !== undefined) tracked.masterKey = master;
      for (const d of a_(tm["devices"], "devices")) {
        const [id, dv] = a_(d, "a device");
        const dm = m_(dv, "a device");
        const device = { signingKey: s_(dm["signing_key"], "signing_key"), agreementKey: s_(dm["agreement_key"], "agreement_key") };
        const sig = opt(dm["master_signature"], "master_signature");
        tracked.devices.set(s_(id, "device id"), sig === undefined ? device : { ...device, masterSignature: sig });
      }
      s.users.set(s_(user, "user"), tracked);
    }
    for (const entry of a_(root["olm_sessions"], "olm_sessions")) {
      const [key, list] = a_(entry, "olm sessions");
      s.sessions.set(
        s_(key, "peer key"),
        a_(list, "sessions").map((p) => wrap("Olm session", () => vz.Session.fromPickle(s_(p, "session"), k))),
      );
    }
    for (const p of a_(root["processed"], "processed")) {
      const key = s_(p, "processed");
      s.processed.push(key);
      s.processedSet.add(key);
    }
    for (const d of a_(root["deferred"], "deferred")) {
      const m = m_(d, "a deferred message");
      const payload = m["payload"];
      if (!(payload instanceof Uint8Array)) fail("a deferred payload is not bytes");
      const message: ToDeviceIn = {
        from_user: s_(m["from_user"], "from_user"),
        from_device: s_(m["from_device"], "from_device"),
        kind: s_(m["kind"], "kind"),
        id: s_(m["id"], "id"),
        payload,
        ts: n_(m["ts"], "ts"),
      };
      s.deferred.push(message);
    }
    for (const c of a_(root["claim_failed"], "claim_failed")) {
      const [key, t] = a_(c, "a failed claim");
      s.claimFailed.set(s_(key, "device"), n_(t, "time"));
    }
    for (const o of a_(root["outbound"], "outbound")) {
      const m = m_(o, "an outbound session");
      const session = wrap("outbound session", () => vz.GroupSession.fromPickle(s_(m["session"], "session"), k));
      const sharedWith = new Map<string, number>();
      for (const e of a_(m["shared_with"], "shared_with")) {
        const [key, i] = a_(e, "shared_with");
        sharedWith.set(s_(key, "device"), n_(i, "index"));
      }
      // Absent in states saved before it was kept: every share counted as confirmed then.
      const unconfirmed = new Set<string>();
      for (const key of m["unconfirmed"] === undefined ? [] : a_(m["unconfirmed"], "unconfirmed")) unconfirmed.add(s_(key, "device"));
      s.outbound.set(s_(m["conv"], "conv"), { session, created: n_(m["created"], "created"), sharedWith, unconfirmed });
    }
    for (const i of a_(root["inbound"], "inbound")) {
      const m = m_(i, "an inbound session");
      const src = m_(m["source"], "source");
      const sender = m_(src["sender"], "sender");
      const seen = new Map<number, string>();
      for (const e of a_(m["seen"], "seen")) {
        const [n, id] = a_(e, "seen");
        seen.set(n_(n, "index"), s_(id, "message id"));
      }
      const inbound: Inbound = {
        session: wrap("inbound session", () => vz.InboundGroupSession.fromPickle(s_(m["session"], "session"), k)),
        conv: s_(m["conv"], "conv"),
        source: {
          sender: { user: s_(sender["user"], "user"), device: s_(sender["device"], "device") },
          senderKey: s_(src["sender_key"], "sender_key"),
          forwarded: src["forwarded"] === true,
        },
        seen,
      };
      s.inbound.set(s_(m["key"], "key"), inbound);
    }
    for (const w of a_(root["waiting"], "waiting")) {
      const r = ref(w);
      s.waiting.set(JSON.stringify([r.conv, r.user, r.device, r.session]), r);
    }
    const backup = root["backup"];
    if (backup !== undefined && backup !== null) {
      const b = m_(backup, "backup");
      const backedUp = new Map<string, number>();
      for (const e of a_(b["backed_up"], "backed_up")) {
        const [key, i] = a_(e, "a backed-up session");
        backedUp.set(s_(key, "session"), n_(i, "index"));
      }
      s.backup = { version: s_(b["version"], "backup version"), publicKey: s_(b["public_key"], "backup public key"), backedUp };
    }
  } catch (e) {
    freeState(s);
    throw e;
  }
  return s;
}

/** Frees every vodozemac object of the state. */
export function freeState(s: MachineState): void {
  s.account.free();
  s.masterSecret?.free();
  for (const list of s.sessions.values()) for (const x of list) x.free();
  for (const o of s.outbound.values()) o.session.free();
  for (const i of s.inbound.values()) i.session.free();
  s.sessions.clear();
  s.outbound.clear();
  s.inbound.clear();
}
