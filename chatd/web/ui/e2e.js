// @ts-check
// End-to-end encryption in the page. Every conversation this page makes is
// encrypted; the server routes ciphertext and reads none of it. This module
// holds the SecureChat (the binding's encrypted side of the client), the keys
// this browser keeps (IndexedDB, sealed with a non-extractable AES-GCM key per
// user), what each encrypted message reads as here, and the warnings when a
// member's keys change. Nothing encrypted is ever sent in clear: a
// conversation whose keys this page cannot use is read-only until it can.

import { BrowserKeys, MemoryStore, SecureChat, generateStoreKey, isE2eError, seal, unseal } from "../chatcore/e2e/index.js";
import { invalidate, learnConversation, state, userName } from "./store.js";
import { mediaText } from "./format.js";

/** @typedef {import("./store.js").Message} Message */
/** @typedef {import("./store.js").Conv} Conv */
/** @typedef {import("../chatcore/e2e/index.js").DeviceChange} DeviceChange */
/** @typedef {import("../chatcore/e2e/index.js").MachineStore} MachineStore */

/** Where this page keeps a user's keys: in IndexedDB, or (where the browser keeps nothing) in the page's memory. */
/** @typedef {{ keys: BrowserKeys | null, key: CryptoKey }} Keeping */

/** @type {Promise<BrowserKeys | null> | null} */
let opening = null;

/** The browser's key database, or null where IndexedDB is unavailable (some private modes). */
export function browserKeys() {
  opening ??= BrowserKeys.open().catch((/** @type {unknown} */ e) => {
    console.warn("chatcore: no end-to-end keys kept in this browser:", e);
    return null;
  });
  return opening;
}

/** @type {{ user: string, keeping: Promise<Keeping> } | null} */
let current = null;

/** The keeping of the signed-in `user`: the database and the user's sealing key (made once per browser and user). */
function keepingOf(/** @type {string} */ user) {
  if (current?.user === user) return current.keeping;
  const keeping = (async () => {
    const keys = await browserKeys();
    if (keys) {
      try {
        return { keys, key: await keys.key(user) };
      } catch (e) {
        console.warn("chatcore: the key database refused a write:", e);
      }
    }
    return { keys: null, key: await generateStoreKey(false) };
  })();
  current = { user, keeping };
  return keeping;
}

/** The slots of a browser that keeps nothing, by id, for the page's life. @type {Map<string, MemoryStore>} */
const inMemory = new Map();

/** A sealed slot `id` of the user's keeping (in memory when the browser keeps nothing). */
function slot(/** @type {Promise<Keeping>} */ keeping, /** @type {string} */ id) {
  let memory = inMemory.get(id);
  if (!memory) {
    memory = new MemoryStore();
    inMemory.set(id, memory);
  }
  /** @type {MachineStore} */
  const store = {
    load: async () => ((await keeping).keys?.store(id) ?? memory).load(),
    save: async (bytes) => ((await keeping).keys?.store(id) ?? memory).save(bytes),
  };
  return store;
}

/** The slot of a device's state: `user/device/<id>`, apart from the user's other slots (drafts, verified). */
function deviceSlot(/** @type {string} */ user, /** @type {string} */ device) {
  return `${user}/device/${device}`;
}

/**
 * The keys of this user's earlier devices that this browser kept (signed out with "keep keys"): taken over by the
 * new device, so that it reads what they could, then their states are deleted (those devices are signed out).
 */
async function adoptKept(/** @type {import("../chatcore/e2e/index.js").SecureChat} */ secure, /** @type {Promise<Keeping>} */ keeping) {
  const { keys, key } = await keeping;
  if (!keys) return;
  const prefix = `${secure.user}/device/`;
  const mine = deviceSlot(secure.user, secure.device);
  for (const id of await keys.ids()) {
    if (!id.startsWith(prefix) || id === mine) continue;
    try {
      const saved = await keys.store(id).load();
      if (saved) await secure.adoptKeysOf(saved, key);
      await keys.forget(id);
    } catch (e) {
      console.warn("chatcore e2e: the keys of an earlier sign-in were not taken over:", e);
    }
  }
  rereadAll();
}

/**
 * Starts end-to-end encryption for the signed-in session: the SecureChat listens at once (no push is missed), then
 * opens this device's saved state or makes it, and publishes its keys. `deliver` takes each encrypted message once
 * it reads as what it can (text, or a state); plain ones come from the client as before.
 */
export function startE2e(
  /** @type {import("./store.js").ChatClient} */ client,
  /** @type {import("./store.js").Session} */ session,
  /** @type {(m: Message) => void} */ deliver,
) {
  stopE2e();
  const keeping = keepingOf(session.user);
  const secure = new SecureChat(client, {
    store: slot(keeping, deviceSlot(session.user, session.device)),
    key: keeping.then((k) => k.key),
  });
  state.secure = secure;
  setE2e({ status: "starting", memoryOnly: false, error: "", since: 0 });
  secure.on("message", ({ message, body }) => {
    if (message.content.kind !== "encrypted" || state.secure !== secure) return;
    state.reads.set(message.id, body);
    deliver(message);
  });
  secure.on("decrypted", ({ message, body }) => {
    if (state.secure !== secure) return;
    state.reads.set(message.id, body);
    // An edit's text or a reaction's emoji read now: its message shows it.
    if (body.type === "text") state.life.apply(message, body.text);
    const c = state.convs.get(message.conv);
    const m = c?.messages.get(message.seq);
    if (c && m?.id === message.id && c.last?.seq === m.seq) c.last = { ...c.last, message: m };
    if (c) invalidate("messages", "directory");
  });
  secure.on("devices", (changes) => {
    if (state.secure === secure) void onDeviceChanges(changes);
  });
  secure.on("custom", ({ from, kind, data }) => {
    // Only the user's own devices speak for it; anyone else's payload of these kinds is dropped.
    const take = ownKinds.get(kind);
    if (state.secure !== secure || from.user !== session.user || !take) return;
    try {
      take(JSON.parse(new TextDecoder().decode(data)));
    } catch (e) {
      console.warn(`chatcore: a ${kind} from device ${from.device} was not read:`, e);
    }
  });
  secure.on("error", ({ error, context }) => console.warn(`chatcore e2e: ${context}:`, error));
  void loadVerified(session.user);
  void (async () => {
    const k = await keeping.catch(() => null);
    try {
      await secure.start();
      if (state.secure !== secure) return;
      setE2e({ status: "ready", memoryOnly: !k?.keys, error: "", since: 0 });
      // When this device signed in: what is older, and waits for a key, was sent before it joined.
      client.devices().then(
        (ds) => {
          const d = ds.find((x) => x.current);
          if (d && state.secure === secure) state.e2e.since = d.created_at;
          invalidate("messages");
        },
        () => {},
      );
      // Messages this page got while the keys were opening (history loaded meanwhile): read now.
      rereadAll(false);
      void adoptKept(secure, keeping);
    } catch (e) {
      if (state.secure !== secure) return;
      // Keeping nothing, a reload lost this device's keys, and the server rightly refuses new ones for it.
      const error = k?.keys ? failure(e) : "this browser keeps no data, so this device's keys were lost at the last reload. Sign out and in again to make new ones.";
      setE2e({ status: "failed", memoryOnly: !k?.keys, error, since: 0 });
      console.warn("chatcore e2e: not started:", e);
    }
    invalidate("messages", "header", "chat");
    for (const f of whenReady.splice(0)) f();
  })();
}

/**
 * Reads again the encrypted messages this page holds: those not read yet, and with `all` those unreadable before
 * (after keys came from the backup or another device: a key restored may reach further back than the one held).
 */
export function rereadAll(all = true) {
  const secure = state.secure;
  if (!secure || state.e2e.status !== "ready") return;
  for (const c of state.convs.values()) {
    for (const m of c.messages.values()) {
      if (m.content.kind !== "encrypted") continue;
      const read = state.reads.get(m.id);
      if (read && (!all || read.type === "text" || read.type === "media")) continue;
      const body = secure.decryptMessage(m).body;
      state.reads.set(m.id, body);
      if (body.type === "text") state.life.apply(m, body.text);
    }
  }
  invalidate("messages", "directory");
}

/**
 * Sets where encryption stands; the page's `data-e2e` attribute says it too (`starting`, `ready`, `failed`, `off`),
 * for styles and for tests that must not type before the keys are published.
 */
function setE2e(/** @type {import("./store.js").E2e} */ value) {
  state.e2e = value;
  document.body.dataset.e2e = value.status;
}

/** Called once the encryption is ready (or failed): the outbox goes out then. */
/** @type {(() => void)[]} */
const whenReady = [];

/** Runs `f` once end-to-end encryption has started (or failed to). */
export function afterE2eStart(/** @type {() => void} */ f) {
  if (state.e2e.status === "starting") whenReady.push(f);
  else f();
}

function failure(/** @type {unknown} */ e) {
  if (isE2eError(e, "store_decrypt") || isE2eError(e, "store_format")) {
    return "the keys saved in this browser do not open (damaged or altered). Sign out and in again to make new ones.";
  }
  if (isE2eError(e, "store_too_new")) return "the keys saved in this browser are from a newer version: reload the page.";
  return e instanceof Error ? e.message : String(e);
}

/** Stops the encrypted side (signed out); the saved state stays unless `forget`. */
export async function stopE2e(forget = false) {
  const secure = state.secure;
  state.secure = null;
  state.reads.clear();
  state.life.clear();
  setE2e({ status: "off", memoryOnly: false, error: "", since: 0 });
  verified.clear();
  // Whoever waited for the keys to open learns they will not (the status says "off").
  for (const f of whenReady.splice(0)) f();
  if (!secure) return;
  let id = "";
  let user = "";
  try {
    id = secure.device;
    user = secure.user;
    await secure.idle();
  } catch {
    // Never started: nothing of it was saved.
  }
  secure.close();
  if (forget && id) {
    // Everything of the user in this browser: the device's state, verified marks, drafts, and the sealing key (the
    // outbox entries sealed with it can no longer be read, and are dropped at the next sign-in).
    const keys = await browserKeys();
    for (const slotId of [deviceSlot(user, id), `${user}/verified`, `${user}/drafts`, user]) {
      await keys?.forget(slotId).catch(() => {});
    }
    if (current?.user === user) current = null;
    for (const slotId of [...inMemory.keys()]) if (slotId.startsWith(`${user}/`)) inMemory.delete(slotId);
  }
}

// -- reading

/** Why a message whose key this device lacks may never be read here: sent before the user joined, or before this device. */
function before(/** @type {Message} */ m) {
  const joined = state.convs.get(m.conv)?.members?.find((x) => x.user === state.me?.user)?.joined_at ?? 0;
  if (m.ts < joined) return "🔒 You can't read this message: it was sent before you joined.";
  if (m.ts < state.e2e.since) return "🔒 You can't read this message: it was sent before this device joined.";
  return null;
}

/** Why this message has no text here, when it is encrypted and not readable (yet). */
function unreadable(/** @type {Message} */ m) {
  const body = state.reads.get(m.id);
  if (!body) {
    if (state.e2e.status === "failed") return "🔒 This browser cannot read encrypted messages now";
    return "🔒 Decrypting…";
  }
  if (body.type === "waiting") return before(m) ?? "🔒 Waiting for this message's key. It will show when the sender's device sends it.";
  if (body.type === "undecryptable") {
    if (body.code === "before_key") return "🔒 You can't read this message: it was sent before this device joined.";
    return "⚠️ This message could not be decrypted: it may have been altered.";
  }
  return "";
}

/**
 * What a message shows: its text (plain, or decrypted here) and whether that is a state in place of the text
 * (`note`: waiting for its key, sent before this device joined, not decryptable).
 * @returns {{ text: string, note: boolean }}
 */
export function readable(/** @type {Message} */ m) {
  if (m.content.kind === "text") return { text: m.content.text, note: false };
  const media = mediaText(m.content);
  if (media !== undefined) return { text: media, note: true };
  if (m.content.kind !== "encrypted") return { text: "", note: true };
  const body = state.reads.get(m.id);
  if (body?.type === "text") return { text: body.text, note: false };
  // A photo, file or voice note that came encrypted: said as a plain one is (the list's preview, an alert).
  if (body?.type === "media") return { text: mediaText(body.content) ?? "", note: true };
  return { text: unreadable(m), note: true };
}

/**
 * The photo, file or voice note a message carries: its content when it came plain, or as decrypted here (with the
 * file's key); undefined for any other message, and for one not read (yet).
 * @returns {import("../chatcore/web.js").MediaContent | undefined}
 */
export function mediaOf(/** @type {Message} */ m) {
  const c = m.content;
  if (c.kind === "image" || c.kind === "file" || c.kind === "voice") return c;
  if (c.kind !== "encrypted") return undefined;
  const body = state.reads.get(m.id);
  return body?.type === "media" ? body.content : undefined;
}

/** Whether a message shows text (plain, or decrypted here): without building the reason a note would give. */
export function isText(/** @type {Message} */ m) {
  return m.content.kind === "text" || (m.content.kind === "encrypted" && state.reads.get(m.id)?.type === "text");
}

/** What the message's read state is, for a render cache key: a row is rebuilt when it changes. */
export function readKey(/** @type {Message} */ m) {
  if (m.content.kind !== "encrypted") return "";
  const read = state.reads.get(m.id)?.type ?? state.e2e.status;
  return read === "waiting" && before(m) ? "before" : read;
}

/** A page of `c`'s history, each encrypted message read as far as this device can. */
export async function historyPage(/** @type {Conv} */ c, /** @type {{ before?: number, limit?: number }} */ page) {
  const client = state.client;
  if (!client) throw new Error("signed out");
  // Right after a sign-in or reload the keys are still opening: the page waits for them (a moment) rather than
  // showing every message as locked first.
  if (state.e2e.status === "starting") await new Promise((resolve) => afterE2eStart(() => resolve(undefined)));
  const secure = state.secure;
  if (!secure || state.e2e.status !== "ready") return client.history(c.id, page);
  const { messages, more, related } = await secure.history(c.id, page);
  for (const r of [...messages, ...related]) if (r.message.content.kind === "encrypted") state.reads.set(r.message.id, r.body);
  return { messages: messages.map((r) => r.message), more, related: related.map((r) => r.message) };
}

// -- sending

/** Why an encrypted conversation cannot be written to now: null when it can. */
export function cannotSend(/** @type {Conv} */ c) {
  if (!c.encrypted) return null;
  if (state.e2e.status === "failed") return `Encrypted messages can't be sent from this browser: ${state.e2e.error}`;
  return null;
}

/**
 * Sends `text` to `c` under `clientId`: encrypted (anew on every attempt, with the keys of now) when `c` is, else
 * as text. An encrypted conversation waits for the keys to open; it never falls back to clear text. `extra`: the
 * message it replies to, edits or reacts to (`rel`), and whom it mentions: in the clear beside the ciphertext.
 */
export async function sendText(
  /** @type {Conv} */ c,
  /** @type {string} */ text,
  /** @type {string} */ clientId,
  /** @type {{ rel?: import("../chatcore/web.js").Rel, mentions?: string[] }} */ extra = {},
) {
  const client = state.client;
  if (!client) throw new Error("signed out");
  const options = { clientId, ...(extra.rel ? { rel: extra.rel } : {}), ...(extra.mentions?.length ? { mentions: extra.mentions } : {}) };
  // Not known yet (an outbox entry read back after a reload, before the conversation list came): whether it is
  // encrypted is asked first. Sending on the default (`encrypted: false`) would put the text in clear on the wire.
  if (!c.known) {
    learnConversation(await client.getConversation(c.id));
    invalidate("directory", "header", "messages", "chat");
  }
  if (!c.encrypted) return client.send({ conv: c.id }, text, options);
  const me = state.me;
  await new Promise((resolve) => afterE2eStart(() => resolve(undefined)));
  const secure = state.secure;
  // Signed out (or in as someone else) meanwhile: this message is no longer this page's to send.
  if (state.me !== me || state.client !== client) throw new Error("signed out");
  if (!secure || state.e2e.status !== "ready") throw new Error(cannotSend(c) ?? "end-to-end encryption is not ready");
  return secure.sendEncrypted(c.id, text, options);
}

// -- sealing what the page keeps (outbox, drafts)

/** `value` (JSON) sealed under the user's key, for IndexedDB. */
export async function sealJson(/** @type {string} */ user, /** @type {unknown} */ value) {
  const { key } = await keepingOf(user);
  return seal(new TextEncoder().encode(JSON.stringify(value)), key);
}

/** What {@link sealJson} sealed; throws when it does not open (another key: the browser forgot it). */
export async function openJson(/** @type {string} */ user, /** @type {Uint8Array} */ bytes) {
  const { key } = await keepingOf(user);
  return JSON.parse(new TextDecoder().decode(await unseal(bytes, key)));
}

/** The user's sealed slot `name` (drafts), kept like the device state. */
export function userSlot(/** @type {string} */ user, /** @type {string} */ name) {
  return slot(keepingOf(user), `${user}/${name}`);
}

// -- trust: safety numbers, verified contacts, warnings

/** Contacts this user verified here: user -> the master key compared then. @type {Map<string, string>} */
const verified = new Map();

async function loadVerified(/** @type {string} */ user) {
  verified.clear();
  try {
    const bytes = await userSlot(user, "verified").load();
    if (!bytes) return;
    const saved = await openJson(user, bytes);
    if (state.me?.user !== user) return;
    for (const [u, key] of Object.entries(saved)) if (typeof key === "string") verified.set(u, key);
    invalidate("card", "header");
  } catch (e) {
    console.warn("chatcore e2e: verified contacts not read:", e);
  }
}

async function saveVerified() {
  const me = state.me;
  if (!me) return;
  await userSlot(me.user, "verified").save(await sealJson(me.user, Object.fromEntries(verified)));
}

/** Whether this user verified `user` here and their key is still the one compared. */
export function isVerified(/** @type {string} */ user) {
  const key = verified.get(user);
  if (!key) return false;
  try {
    return state.secure?.machine.masterKey(user) === key;
  } catch {
    return false;
  }
}

/** The safety number with `user` (the same on both sides), or why there is none. */
export async function safetyNumberWith(/** @type {string} */ user) {
  const secure = state.secure;
  if (!secure || state.e2e.status !== "ready") throw new Error("end-to-end encryption is not ready in this browser");
  return secure.safetyNumber(user);
}

/** Marks `user` verified (the user compared the safety number), or not. */
export async function setVerified(/** @type {string} */ user, /** @type {boolean} */ on) {
  const key = on ? state.secure?.machine.masterKey(user) : undefined;
  if (on && !key) throw new Error("their keys are not known yet");
  if (key) verified.set(user, key);
  else verified.delete(user);
  await saveVerified();
  invalidate("card", "header");
}

/** The devices of `user` with their trust, as this device knows them (queried first). */
export async function devicesOf(/** @type {string} */ user) {
  const secure = state.secure;
  if (!secure || state.e2e.status !== "ready") return [];
  const m = secure.machine;
  return m.devicesOf([user]).map((d) => ({ device: d.device, trust: m.deviceTrust(d.user, d.device) }));
}

/** The warning a change shows in the timeline of the conversations with that user. */
function warningText(/** @type {DeviceChange} */ ch) {
  const me = state.me?.user;
  switch (ch.type) {
    case "added":
      return ch.device.user === me ? "You signed in on a new device." : `${userName(ch.device.user)} added a new device.`;
    case "removed":
      return ch.device.user === me ? "One of your devices was signed out." : `${userName(ch.device.user)} removed a device.`;
    case "master_key_changed":
      return verified.has(ch.user)
        ? `${userName(ch.user)}'s safety number changed. You had verified them: compare it again before you trust it.`
        : `${userName(ch.user)}'s safety number changed.`;
    case "rejected":
      return `Keys of ${userName(ch.user)} did not verify and were ignored.`;
    default:
      return null;
  }
}

async function onDeviceChanges(/** @type {DeviceChange[]} */ changes) {
  // This device may be verified now (the banner), another listed as signed (the card).
  invalidate("connection", "card");
  let changed = false;
  for (const ch of changes) {
    const text = warningText(ch);
    if (!text) continue;
    const user = ch.type === "master_key_changed" || ch.type === "rejected" ? ch.user : ch.device.user;
    if (ch.type === "master_key_changed" && verified.delete(user)) void saveVerified();
    for (const c of state.convs.values()) {
      if (!c.encrypted || c.left) continue;
      const member = user === state.me?.user || c.peer === user || !!c.members?.some((m) => m.user === user);
      if (!member) continue;
      // After the newest message this page knows; the same warning twice in a row is shown once.
      const last = c.warnings.at(-1);
      if (last?.text === text && last.seq === c.lastSeq) continue;
      c.warnings.push({ seq: c.lastSeq, ts: Date.now(), text });
      changed = true;
    }
  }
  if (changed) invalidate("messages", "card");
}

// -- What the user's devices tell each other (end-to-end encrypted to-device payloads, which wait in the queue of a
// device that is offline): the server learns that a device wrote to another of its user, never what.

/** What to do with each kind of payload from the user's other devices. @type {Map<string, (value: any) => void>} */
const ownKinds = new Map();

/** Takes payloads of `kind` from the user's other devices with `take` (their JSON value). */
export function onOwnDevices(/** @type {string} */ kind, /** @type {(value: any) => void} */ take) {
  ownKinds.set(kind, take);
}

/** Sends `value` (as JSON) to every other device of the signed-in user; best effort, logged when it fails. */
export async function tellOwnDevices(/** @type {string} */ kind, /** @type {unknown} */ value) {
  const secure = state.secure;
  const me = state.me?.user;
  if (!secure || !me) return;
  const data = new TextEncoder().encode(JSON.stringify(value));
  try {
    const devices = await secure.client.devices();
    for (const d of devices) {
      if (!d.current) await secure.sendCustom({ user: me, device: d.device }, kind, data);
    }
  } catch (e) {
    console.warn(`chatcore: ${kind} not told to the other devices:`, e);
  }
}
