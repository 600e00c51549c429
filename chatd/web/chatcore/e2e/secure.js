/**
 * An end-to-end encrypted client: a {@link ChatClient} and a {@link Machine}
 * wired together, a port of the Rust client's `SecureClient`, so that an
 * application sends and reads encrypted conversations without driving the
 * machine by hand.
 *
 * - {@link SecureChat.start} opens the device's saved state (or creates it),
 *   publishes the device's keys, and on the user's first device creates the
 *   user's master key.
 * - Pushes are processed in order: `to_device` payloads go through the
 *   machine and are acknowledged only once processed and saved; `key_counts`
 *   tops the one-time keys up; `devices_changed` refreshes that user's
 *   devices; messages come out decrypted (`message` event). A message whose
 *   key has not arrived yet has a `waiting` body; when the key comes, a
 *   `decrypted` event brings its text.
 * - {@link SecureChat.sendEncrypted} queries the members' devices, claims
 *   one-time keys where an Olm channel is missing, sends the conversation key
 *   to the devices that lack it, then the ciphertext. A removed member or a
 *   gone device makes the next message use a new key. Nothing is ever sent in
 *   clear: a conversation that is not encrypted is refused.
 * - {@link SecureChat.verifyDevice} signs the user's new device with the
 *   master key, gives it the master key and forwards it the conversation keys
 *   for the history.
 * - {@link SecureChat.enableBackup} turns the encrypted key backup on
 *   (docs/E2E.md, "Key backup") and returns the recovery key to show the user
 *   once. Every device of the user then backs up the conversation keys it
 *   makes or receives, once they are saved, at most 1,000 per request (a
 *   device follows the current backup from {@link SecureChat.start} on, after
 *   checking that the user's master key signed it).
 *   {@link SecureChat.restoreBackup} brings the history back on a new device
 *   with the recovery key, even when no other device of the user is online,
 *   and signs the device with the master key sealed in the backup.
 *
 * Multi-step operations (sending, processing to-device payloads, topping up,
 * verifying) run one at a time, as the Rust client's `op` lock does. The
 * state is saved after every change, in order; whatever leaves the device
 * because of a change (an upload, an acknowledgement, a ciphertext) waits
 * until the change is saved. Failures not tied to a call (a refused payload,
 * a failed top-up or save) are `error` events, never silent.
 *
 * @module
 */
import { Emitter } from "../emitter.js";
import { ChatError } from "../errors.js";
import { canonicalContent, ProtocolError } from "../protocol.js";
import { decodeMsgpack, encodeMsgpack } from "../msgpack.js";
import { isEmptyUpload } from "./account.js";
import { BACKUP_KEYS_PER_PUT, RecoveryKey } from "./backup.js";
import { E2eError, messageOf } from "./errors.js";
import { Machine, seal } from "./machine.js";
import { sessionRefKey } from "./state.js";
import { decodeBase64, encodeBase64 } from "./texts.js";
/** The `custom` kind of a sealed call signal (inside the Olm payload). */
const CALL_SIGNAL_KIND = "call.signal";
/** The largest to-device payload decoded (the server's bound is 32 KiB by default). */
const MAX_PAYLOAD = 64 * 1024;
/** Bytes of payloads per `send_to_device` frame: under chatd's 64 KiB frame limit with room for ids and names. */
const FRAME_BUDGET = 48 * 1024;
/** Devices per claim, users per query and per `send_to_device`. */
const PER_REQUEST = 100;
/** Payloads per `send_to_device`, acknowledgements per `ack_to_device`. */
const PAYLOADS_PER_FRAME = 1000;
/** Messages kept while they wait for their key (the oldest go first). */
const MAX_WAITING = 1000;
/** How often a step that needed claims is tried again. */
const CLAIM_ROUNDS = 3;
/** Keys per `get_backup_keys` page (the server's cap). */
const BACKUP_PAGE = 200;
/** Messages waiting for their session's key, bounded. */
class Waiting {
    bySession = new Map();
    order = [];
    add(session, message) {
        const key = sessionRefKey(session);
        const list = this.bySession.get(key) ?? [];
        if (list.some((m) => m.id === message.id))
            return;
        list.push(message);
        this.bySession.set(key, list);
        this.order.push([key, message]);
        while (this.order.length > MAX_WAITING) {
            const [k, m] = this.order.shift();
            const l = this.bySession.get(k)?.filter((x) => x.id !== m.id) ?? [];
            if (l.length === 0)
                this.bySession.delete(k);
            else
                this.bySession.set(k, l);
        }
    }
    take(session) {
        const key = sessionRefKey(session);
        const list = this.bySession.get(key) ?? [];
        this.bySession.delete(key);
        this.order = this.order.filter(([k]) => k !== key);
        return list;
    }
    resolved(id) {
        for (const [k, list] of this.bySession) {
            const l = list.filter((m) => m.id !== id);
            if (l.length === 0)
                this.bySession.delete(k);
            else
                this.bySession.set(k, l);
        }
        this.order = this.order.filter(([, m]) => m.id !== id);
    }
}
const utf8 = new TextDecoder("utf-8", { fatal: true });
/** What `machine.decrypt` makes of a message. */
function decryptWith(m, message) {
    const c = message.content;
    if (c.kind !== "encrypted")
        return { type: "clear" };
    const ciphertext = decodeBase64(c.ciphertext);
    if (!ciphertext || ciphertext.length === 0) {
        return { type: "undecryptable", reason: "the ciphertext is not unpadded base64", code: "malformed" };
    }
    try {
        const d = m.decrypt(message.conv, message.id, message.from, {
            algorithm: c.algorithm,
            device: c.device,
            session: c.session,
            ciphertext,
        });
        if (d.type === "waiting")
            return { type: "waiting", session: d.session };
        if (isStructured(d.content)) {
            const read = readMedia(d.content, message);
            return typeof read === "string"
                ? { type: "undecryptable", reason: read, code: "malformed" }
                : { type: "media", content: read, sender: d.sender, trust: d.trust, forwarded: d.forwarded };
        }
        let text;
        try {
            text = utf8.decode(d.content);
        }
        catch {
            return { type: "undecryptable", reason: "the decrypted content is not text", code: "malformed" };
        }
        return { type: "text", text, sender: d.sender, trust: d.trust, forwarded: d.forwarded };
    }
    catch (e) {
        if (e instanceof E2eError)
            return { type: "undecryptable", reason: e.message, code: e.code };
        return { type: "undecryptable", reason: messageOf(e) };
    }
}
/**
 * Whether decrypted content bytes are a MessagePack map (a first byte 0x80 to 0x8F, a fixmap's, which never begins
 * UTF-8 text) rather than text (E2E.md, *Formats*).
 */
function isStructured(bytes) {
    return bytes.length > 0 && bytes[0] >= 0x80 && bytes[0] <= 0x8f;
}
/** A decrypted structured content: a photo, file or voice message, or why it is refused. */
function readMedia(bytes, message) {
    let content;
    try {
        content = canonicalContent(decodeMsgpack(bytes));
    }
    catch (e) {
        return `the decrypted content is malformed: ${e instanceof ProtocolError ? e.message : messageOf(e)}`;
    }
    return checkMedia(content, message.media ?? []) ?? content;
}
/** What a media content inside a ciphertext must be (see the Rust client's `check_media`); `undefined` when it is. */
function checkMedia(content, listed) {
    if (content.kind !== "image" && content.kind !== "file" && content.kind !== "voice") {
        return `a structured content is a photo, file or voice message, not ${content.kind}`;
    }
    if (!content.encryption)
        return "a file in an encrypted message must be encrypted";
    if (!listed.includes(content.media ?? ""))
        return "the file is not listed in the message's envelope";
    return undefined;
}
function secureMessage(message, body) {
    const text = body.type === "text" ? body.text : body.type === "clear" && message.content.kind === "text" ? message.content.text : undefined;
    return text === undefined ? { message, body } : { message, body, text };
}
/** See the module documentation. */
export class SecureChat {
    /** The connection, for everything that is not end-to-end specific (conversations, members, plain requests). */
    client;
    options;
    key;
    now;
    machineValue = null;
    started = null;
    /** Pushes that arrived before {@link start} finished, replayed after it. */
    early = [];
    /** One multi-step operation at a time. */
    op = Promise.resolve();
    /** Pushes in the order they came. */
    pushes = Promise.resolve();
    /** Saves in the order of the changes. */
    saving = Promise.resolve();
    /** A {@link SecureChat.persistLater} save is queued for the end of this turn. */
    laterQueued = false;
    waiting = new Waiting();
    /** A throwing handler stops neither the others nor the processing: reported as an `error` event (unless it is one). */
    events = new Emitter((type, e) => {
        if (type !== "error")
            this.emit("error", { error: e instanceof Error ? e : new Error(String(e)), context: `a ${String(type)} handler threw` });
    });
    unsubscribe;
    /**
     * Wraps `client` and starts listening to its pushes at once (they wait until {@link start} finished), so that
     * nothing pushed right after sign-in is missed: make it before signing in, then call {@link start}.
     */
    constructor(client, options) {
        this.client = client;
        this.options = options;
        this.key = Promise.resolve(options.key);
        // Awaited by `start` (and reported there); not an unhandled rejection before it is called.
        this.key.catch(() => undefined);
        this.now = options.now ?? Date.now;
        this.unsubscribe = [
            client.on("todevice", (messages) => this.push(() => this.serial(() => this.processToDevice(messages)), "to-device payloads not processed")),
            client.on("keycounts", (counts) => this.push(() => this.serial(() => this.publishKeys(counts, false)), "one-time keys not topped up")),
            client.on("message", ({ message }) => this.push(() => this.onMessage(message), "message not processed")),
            client.on("deviceschanged", ({ user }) => this.push(() => this.serial(() => this.refreshKeys([user], undefined)), "device list not refreshed")),
        ];
    }
    /** Makes a {@link SecureChat} for a client that is signed in already and starts it. */
    static async start(client, options) {
        const secure = new SecureChat(client, options);
        await secure.start();
        return secure;
    }
    /**
     * Opens the device's saved state, or creates it when there is none or it belongs to another device (a login is a
     * new device); publishes the device's keys; on the user's first device, creates the master key. The client must
     * be signed in. A saved state that does not open (wrong key, tampered) is an error: nothing is overwritten.
     */
    start() {
        if (!this.started) {
            this.started = this.run().catch((e) => {
                this.started = null;
                throw e;
            });
        }
        return this.started;
    }
    async run() {
        const session = this.client.session;
        if (!session)
            throw new E2eError("refused", "refused: sign in before starting end-to-end encryption");
        const saved = await this.options.store.load();
        let machine = null;
        if (saved) {
            machine = await Machine.fromBytes(saved, await this.key);
            if (machine.user !== session.user || machine.device !== session.device) {
                machine.free();
                machine = null;
            }
        }
        // A start retried after a failed upload replaces the machine of the failed attempt (its state was saved).
        this.machineValue?.free();
        this.machineValue = machine ?? (await Machine.create(session.user, session.device));
        await this.serial(async () => {
            await this.publishKeys(session.keys, true);
            // Keys made here go to the user's backup, if there is one.
            try {
                await this.followBackup();
            }
            catch (e) {
                this.fail("the key backup is not followed", e);
            }
            await this.backUpQuietly();
        });
        const early = this.early ?? [];
        this.early = null;
        for (const f of early)
            f();
    }
    /** Stops listening to the client's pushes and frees the machine's memory (the saved state stays). */
    close() {
        for (const off of this.unsubscribe)
            off();
        this.machineValue?.free();
        this.machineValue = null;
    }
    /** The machine, for what this class does not wrap (trust, master keys). Throws before {@link start}. */
    get machine() {
        if (!this.machineValue)
            throw new E2eError("refused", "refused: the secure client is not started (or closed)");
        return this.machineValue;
    }
    /** The user. */
    get user() {
        return this.machine.user;
    }
    /** This device. */
    get device() {
        return this.machine.device;
    }
    // -- events --
    /** Calls `handler` on every `type` event; returns a function that stops it. */
    on(type, handler) {
        return this.events.on(type, handler);
    }
    emit(type, payload) {
        this.events.emit(type, payload);
    }
    fail(context, e) {
        this.emit("error", { error: e instanceof Error ? e : new Error(String(e)), context });
    }
    /** Runs pushes one after the other, in order; before `start` finished they wait. */
    push(f, context) {
        const run = () => {
            this.pushes = this.pushes.then(f).catch((e) => this.fail(context, e));
        };
        if (this.early)
            this.early.push(run);
        else
            run();
    }
    /** Runs `f` when no other operation runs. */
    serial(f) {
        const result = this.op.then(f);
        this.op = result.catch(() => undefined);
        return result;
    }
    // -- saving --
    /** Queues the state to be saved (snapshot taken now, so saves keep the order of changes); resolves once written. */
    persist() {
        const snapshot = this.machine.snapshot();
        const done = this.saving.then(async () => this.options.store.save(await seal(snapshot, await this.key)));
        this.saving = done.catch(() => undefined);
        return done;
    }
    /**
     * Queues a save nobody waits for, taken once the current turn is done: a page of history decrypts many messages,
     * and one snapshot after them saves what each would have (a failure is an `error` event).
     */
    persistLater() {
        if (this.laterQueued)
            return;
        this.laterQueued = true;
        queueMicrotask(() => {
            this.laterQueued = false;
            if (!this.machineValue)
                return;
            this.persist().catch((e) => this.fail("the end-to-end state was not saved", e));
        });
    }
    notify(changes) {
        if (changes.length > 0)
            this.emit("devices", changes);
    }
    // -- keys --
    /** Uploads what the machine has to publish given `counts`; with `ownFirst`, queries the own user and creates the master key if the user has none. */
    async publishKeys(counts, ownFirst) {
        const m = this.machine;
        let ownMaster = false;
        if (ownFirst) {
            const own = await this.queryUserKeys([m.user], undefined);
            const changes = [];
            for (const keys of own) {
                if (keys.masterKey)
                    ownMaster = true;
                changes.push(...m.receiveDeviceKeys(keys));
            }
            this.notify(changes);
        }
        const upload = m.keysToUpload(counts);
        if (ownFirst && !ownMaster && (m.masterKey(m.user) === undefined || m.hasMasterKey())) {
            // The first device creates the master key; if it made one before but the upload never reached the server
            // (the directory shows none), it uploads the same one again.
            const master = m.hasMasterKey() ? m.masterKeyUpload() : m.createMasterKey();
            upload.masterKey = master.masterKey;
            upload.signatures.push({ device: master.device, signature: master.deviceSignature });
        }
        // Saved before the upload: keys the server may hold must never be lost here.
        await this.persist();
        if (isEmptyUpload(upload))
            return;
        await this.client.uploadKeys(upload);
        m.markKeysPublished();
        await this.persist();
    }
    /** The directory's answer about `users` (through `conv` when given), one {@link UserKeys} per user. */
    async queryUserKeys(users, conv) {
        const unique = [...new Set(users)];
        const out = [];
        for (let i = 0; i < unique.length; i += PER_REQUEST) {
            const chunk = unique.slice(i, i + PER_REQUEST);
            const { devices, masterKeys } = await this.client.queryKeysAndMasters(chunk, conv);
            for (const user of chunk) {
                const mine = devices.filter((d) => d.user === user);
                const master = masterKeys.find((k) => k.user === user);
                // Without a conversation, an empty answer may only mean the user is out of reach now: it must not untrack devices.
                if (conv === undefined && mine.length === 0 && !master)
                    continue;
                out.push(master ? { user, masterKey: master.master_key, devices: mine } : { user, devices: mine });
            }
        }
        return out;
    }
    /** Queries `users` and feeds the answer to the machine; the changes become a `devices` event. */
    async refreshKeys(users, conv) {
        const answer = await this.queryUserKeys(users, conv);
        const changes = [];
        for (const keys of answer)
            changes.push(...this.machine.receiveDeviceKeys(keys));
        await this.persist();
        this.notify(changes);
        return answer.flatMap((u) => u.devices);
    }
    /** Runs `f` until it needs no claims: claims what it asks for (through `conv`), gives it to the machine, tries again. */
    async withClaims(conv, f) {
        for (let round = 0; round < CLAIM_ROUNDS; round++) {
            const r = f(this.machine, this.now());
            if (r.type === "ready") {
                await this.persist();
                return r.value;
            }
            const claimed = [];
            for (let i = 0; i < r.devices.length; i += PER_REQUEST) {
                claimed.push(...(await this.client.claimKeys(r.devices.slice(i, i + PER_REQUEST), conv)));
            }
            for (const { device, error } of this.machine.receiveClaimedKeys(r.devices, claimed, this.now())) {
                this.fail(`no encrypted channel to device ${device.device} of ${device.user}`, error);
            }
            await this.persist();
        }
        throw new E2eError("refused", "refused: devices still lack an encrypted channel after claiming their keys");
    }
    /**
     * Sends to-device messages in as many frames as they need; `conv` lets the server reach its members. Resolves
     * with the messages the server took (those it answered `undelivered` for are reported and left out).
     */
    async sendOut(conv, messages) {
        const taken = [];
        let inBatch = [];
        let batch = [];
        let users = new Set();
        let bytes = 0;
        let kind = "";
        const flush = async () => {
            if (batch.length === 0)
                return;
            const { undelivered } = await this.client.sendToDevice(kind, batch, conv);
            for (const u of undelivered) {
                this.fail("a conversation key was not delivered", new E2eError("refused", `device ${u.device ?? "(all)"} of ${u.user}: ${u.reason}`));
            }
            const refused = (m) => undelivered.some((u) => u.user === m.user && (u.device === undefined || u.device === m.device));
            taken.push(...inBatch.filter((m) => !refused(m)));
            inBatch = [];
            batch = [];
            users = new Set();
            bytes = 0;
        };
        for (const message of messages) {
            const payload = encodeBase64(message.payload);
            const size = payload.length + message.id.length + 128;
            const full = bytes + size > FRAME_BUDGET ||
                batch.length >= PAYLOADS_PER_FRAME ||
                (!users.has(message.user) && users.size >= PER_REQUEST) ||
                kind !== message.kind;
            if (batch.length > 0 && full)
                await flush();
            kind = message.kind;
            bytes += size;
            users.add(message.user);
            batch.push({ user: message.user, device: message.device, id: message.id, payload });
            inBatch.push(message);
        }
        await flush();
        return taken;
    }
    // -- sending and reading --
    /**
     * Encrypts `text` for the encrypted conversation `conv` and sends it: the members' devices are queried (a removed
     * member or a gone device rotates the key), keys go first to the devices that lack them, then the message. Every
     * device of every member reads it, the user's other devices included. Refused (nothing sent) when `conv` is not
     * encrypted. `clientId` as in {@link ChatClient.send}: a message sent again under the same id (after a reload)
     * is encrypted anew, with the keys of then, and the server stores it once. `rel` and `mentions` (a reply, edit or
     * reaction; see {@link ChatClient.send}) travel in the clear beside the ciphertext: the server routes by them.
     */
    sendEncrypted(conv, text, options = {}) {
        return this.sendBytes(conv, new TextEncoder().encode(text), options);
    }
    /**
     * Sends a photo, file or voice message to the encrypted conversation `conv`: `content` names a file encrypted with
     * {@link encryptFile} and uploaded, with its `encryption`. The whole content, key included, is ciphertext; the
     * envelope's `media` lists the file in the clear (the server keeps it by that list). `options` as for
     * {@link SecureChat.sendEncrypted} (a reply's `rel`); their `media` is replaced by the content's file.
     */
    sendMedia(conv, content, options = {}) {
        const refused = checkMedia(content, [content.media]);
        if (refused)
            return Promise.reject(new E2eError("refused", `refused: ${refused}`));
        let bytes;
        try {
            bytes = encodeMsgpack(canonicalContent(content));
        }
        catch (e) {
            return Promise.reject(new E2eError("refused", `refused: ${messageOf(e)}`));
        }
        if (!isStructured(bytes))
            return Promise.reject(new E2eError("refused", "refused: the content has too many fields"));
        return this.sendBytes(conv, bytes, { ...options, media: [content.media] });
    }
    /** Encrypts the application content `bytes` (UTF-8 text or a structured content) for `conv` and sends it. */
    sendBytes(conv, bytes, options) {
        return this.serial(async () => {
            const info = await this.client.getConversation(conv);
            if (!info.encrypted) {
                throw new E2eError("refused", `refused: conversation ${conv} is not encrypted: turn encryption on first`);
            }
            const members = info.members.map((m) => m.user);
            // Queried before every message: a devices_changed push is best effort, and a member who left must be seen gone.
            await this.refreshKeys(members, conv);
            const m = this.machine;
            const devices = m.devicesOf(members);
            m.updateMembers(conv, devices);
            const encrypted = await this.withClaims(conv, (mm, now) => mm.encrypt(conv, devices, bytes, now));
            for (const d of encrypted.withoutKey) {
                this.fail("a member device got no key", new E2eError("no_session", `device ${d.device} of ${d.user} cannot read this message`));
            }
            const c = encrypted.content;
            // The room keys count as delivered only once the server took them: a send lost with the link (or cut short
            // by a reload) leaves them unconfirmed in the saved state, and the next attempt sends them again.
            const taken = await this.sendOut(conv, encrypted.toDevice);
            if (taken.length > 0) {
                m.confirmShared(conv, c.session, taken.map(({ user, device }) => ({ user, device })));
                await this.persist();
            }
            const sent = await this.client.send({ conv }, { kind: "encrypted", algorithm: c.algorithm, device: c.device, session: c.session, ciphertext: encodeBase64(c.ciphertext) }, options);
            // A new session is in the saved state: back it up.
            await this.backUpQuietly();
            return sent;
        });
    }
    /**
     * Decrypts a message as far as this device can; a `waiting` one is remembered and comes again as a `decrypted`
     * event when its key arrives.
     */
    decryptMessage(message) {
        const body = decryptWith(this.machine, message);
        if (message.content.kind === "encrypted")
            this.persistLater();
        if (body.type === "waiting")
            this.waiting.add(body.session, message);
        return secureMessage(message, body);
    }
    /** A page of `conv`'s history (as {@link ChatClient.history}), decrypted as far as this device can, `related` too. */
    async history(conv, page = {}) {
        const { messages, more, related } = await this.client.history(conv, page);
        if ([...messages, ...related].some((message) => decryptWith(this.machine, message).type === "waiting")) {
            // Their keys may sit among the deferred payloads, from senders reachable only through this conversation.
            await this.serial(() => this.retryThrough(conv));
        }
        return {
            messages: messages.map((message) => this.decryptMessage(message)),
            more,
            related: related.map((message) => this.decryptMessage(message)),
        };
    }
    async onMessage(message) {
        let decrypted = this.decryptMessage(message);
        if (decrypted.body.type === "waiting") {
            await this.serial(() => this.retryThrough(message.conv));
            decrypted = this.decryptMessage(message);
        }
        if (decrypted.body.type !== "waiting")
            this.waiting.resolved(message.id);
        this.emit("message", decrypted);
    }
    /** Queries the members of `conv` and retries the deferred to-device payloads. */
    async retryThrough(conv) {
        if (this.machine.state.deferred.length === 0)
            return;
        const info = await this.client.getConversation(conv);
        await this.refreshKeys(info.members.map((m) => m.user), conv);
        const results = this.machine.retryDeferred(this.now());
        if (results.length === 0)
            return;
        await this.persist();
        this.absorb(results);
    }
    /** Turns what the machine made of to-device payloads into events, and decrypts the messages that waited for a key that came. */
    absorb(results) {
        for (const r of results) {
            if ("error" in r) {
                this.fail("a to-device payload was refused", r.error);
                continue;
            }
            const got = r.ok;
            switch (got.type) {
                case "room_key":
                    for (const message of this.waiting.take(got.session)) {
                        const d = this.decryptMessage(message);
                        if (d.body.type !== "waiting")
                            this.emit("decrypted", d);
                    }
                    break;
                case "master_key":
                    this.emit("masterkey", { from: got.from });
                    break;
                case "custom":
                    this.emit("custom", { from: got.from, kind: got.kind, data: got.data });
                    break;
                case "duplicate":
                case "deferred":
                    break;
            }
        }
    }
    async processToDevice(messages) {
        const m = this.machine;
        const acks = [];
        const results = [];
        const deferredUsers = [];
        for (const message of messages) {
            acks.push({ from_device: message.from_device, id: message.id });
            const payload = decodeBase64(message.payload);
            if (!payload || payload.length === 0 || payload.length > MAX_PAYLOAD) {
                this.fail("a malformed to-device payload was dropped", new E2eError("malformed", `payload ${message.id} of ${message.from_user}`));
                continue;
            }
            const incoming = {
                from_user: message.from_user,
                from_device: message.from_device,
                kind: message.kind,
                id: message.id,
                payload,
                ts: message.ts,
            };
            try {
                const r = m.receiveToDevice(incoming, this.now());
                if (r.type === "deferred")
                    deferredUsers.push(r.user);
                results.push({ ok: r });
            }
            catch (e) {
                results.push({ error: e instanceof E2eError ? e : new E2eError("malformed", messageOf(e)) });
            }
        }
        let saved = this.persist();
        this.absorb(results);
        if (deferredUsers.length > 0) {
            // The senders' keys; a message waiting in a conversation also retries through it.
            await this.refreshKeys(deferredUsers, undefined);
            const retried = m.retryDeferred(this.now());
            saved = this.persist();
            this.absorb(retried);
        }
        // Acknowledged only once processed and saved (a deferred payload is in the saved state).
        await saved;
        for (let i = 0; i < acks.length; i += PAYLOADS_PER_FRAME)
            await this.client.ackToDevice(acks.slice(i, i + PAYLOADS_PER_FRAME));
        // The keys received are saved: back them up.
        await this.backUpQuietly();
    }
    // -- devices and trust --
    /**
     * Verifies the user's new `device` after the user confirmed on this device that it is theirs: signs it with the
     * master key (uploaded, so every device sees it verified), gives it the master key and forwards it the
     * conversation keys held here, so that it reads the earlier history. Needs the master key on this device.
     */
    verifyDevice(device) {
        return this.serial(async () => {
            const me = this.user;
            const own = await this.refreshKeys([me], undefined);
            const info = own.find((d) => d.device === device);
            if (!info)
                throw new E2eError("refused", `refused: device ${device} of ${me} has published no keys`);
            const signature = this.machine.signDevice(info);
            await this.persist();
            await this.client.uploadKeys({ signatures: [{ device, signature }] });
            const master = await this.withClaims(undefined, (m, now) => m.shareMasterKey(device, now));
            const forwarded = await this.withClaims(undefined, (m, now) => m.forwardKeys(device, undefined, now));
            await this.sendOut(undefined, [master, ...forwarded]);
        });
    }
    /** The safety number of this user and `user` (from their master keys): the same on both sides, unchanged by new devices. */
    safetyNumber(user) {
        return this.serial(async () => {
            const m = this.machine;
            if (m.masterKey(user) === undefined || m.masterKey(m.user) === undefined)
                await this.refreshKeys([m.user, user], undefined);
            return m.safetyNumber(user);
        });
    }
    /** Whether `user`'s master key signed their `device`, as known here. */
    deviceTrust(user, device) {
        return this.machine.deviceTrust(user, device);
    }
    /**
     * Sends an application payload (e.g. call signalling) to one device over Olm; it arrives there as a `custom`
     * event. The device's keys are queried first when they are not tracked yet; an unknown device is an error.
     */
    sendCustom(target, kind, data) {
        return this.serial(async () => {
            if (this.machine.deviceTrust(target.user, target.device) === "unknown")
                await this.refreshKeys([target.user], undefined);
            const out = await this.withClaims(undefined, (m, now) => m.encryptToDevice(target, kind, data, now));
            await this.sendOut(undefined, [out]);
        });
    }
    /**
     * Seals a call signal (PROTOCOL.md "Calls": the SDP or candidates, as bytes) for `devices` of `user`, or for every
     * device of theirs when absent (queried first, through `conv`): one `olm.v1` payload per device, as
     * {@link ChatClient.callInvite} and the other call requests take it in `signal.sealed`. Olm sessions are made as for
     * sharing conversation keys (claiming a one-time key of a device without one); a device that cannot be reached
     * that way is left out. Fails with `refused` when no device is left.
     */
    sealSignal(user, devices, data, conv) {
        return this.serial(async () => {
            const m = this.machine;
            let targets;
            if (devices === undefined) {
                await this.refreshKeys([user], conv);
                targets = m.devicesOf([user]);
            }
            else {
                if (devices.some((d) => m.deviceTrust(user, d) === "unknown"))
                    await this.refreshKeys([user], conv);
                targets = devices.map((device) => ({ user, device })).filter((d) => m.deviceTrust(d.user, d.device) !== "unknown");
            }
            const needs = m.needsClaims(targets, this.now());
            if (needs.length > 0) {
                const claimed = [];
                for (let i = 0; i < needs.length; i += PER_REQUEST)
                    claimed.push(...(await this.client.claimKeys(needs.slice(i, i + PER_REQUEST), conv)));
                for (const { device, error } of m.receiveClaimedKeys(needs, claimed, this.now())) {
                    this.fail(`no encrypted channel to device ${device.device} of ${device.user}`, error);
                }
            }
            const out = [];
            for (const target of targets) {
                const r = m.encryptToDevice(target, CALL_SIGNAL_KIND, data, this.now());
                if (r.type === "ready")
                    out.push({ device: target.device, payload: encodeBase64(r.value.payload) });
            }
            await this.persist();
            if (out.length === 0)
                throw new E2eError("refused", `refused: no device of ${user} can be reached over an encrypted channel`);
            return out;
        });
    }
    /**
     * Opens what `from` sealed for this device with {@link sealSignal} (a `call_signal`'s `sealed`); the sender's keys
     * are queried first when unknown. Throws an {@link E2eError} for a payload that does not open or is not a call signal.
     */
    openSignal(from, sealed) {
        return this.serial(async () => {
            const m = this.machine;
            if (m.deviceTrust(from.user, from.device) === "unknown")
                await this.refreshKeys([from.user], undefined);
            if (m.deviceTrust(from.user, from.device) === "unknown") {
                throw new E2eError("unknown_device", `the keys of device ${from.device} of ${from.user} are unknown`);
            }
            const payload = decodeBase64(sealed);
            if (!payload || payload.length === 0 || payload.length > MAX_PAYLOAD)
                throw new E2eError("malformed", "a malformed sealed signal");
            const r = m.receiveToDevice({ from_user: from.user, from_device: from.device, kind: "olm.v1", id: `call-signal:${crypto.randomUUID()}`, payload, ts: Date.now() }, this.now());
            await this.persist();
            if (r.type !== "custom" || r.kind !== CALL_SIGNAL_KIND)
                throw new E2eError("malformed", "the sealed payload is not a call signal");
            return r.data;
        });
    }
    /** The {@link CallSealer} of this SecureChat, for the call helper's `Phone`. */
    callSealer() {
        return {
            seal: (user, devices, data, conv) => this.sealSignal(user, devices, data, conv),
            unseal: (from, sealed) => this.openSignal(from, sealed),
        };
    }
    // -- key backup --
    /**
     * Turns the encrypted key backup on (docs/E2E.md, "Key backup"): makes a new recovery key, creates the backup on the
     * server (it replaces any earlier one: the user's other devices follow the new one), uploads every conversation key
     * this device holds, and resolves with the recovery key's text, to show the user once. From then on every device of
     * the user backs up the keys it makes or receives. Needs the master key on this device (`no_master_key`).
     */
    enableBackup() {
        return this.serial(async () => {
            const recovery = RecoveryKey.generate();
            const m = this.machine;
            if (!m.hasMasterKey()) {
                throw new E2eError("no_master_key", "this device does not hold the master signing key: a backup is made on a device that holds it");
            }
            const created = await m.createBackup(recovery);
            const info = await this.client.createBackup(created.algorithm, created.authData);
            m.adoptBackup(info);
            await this.persist();
            await this.uploadBackup();
            return recovery.toText();
        });
    }
    /**
     * Restores the conversation keys from the backup with the recovery key the user typed (e.g. on a new device when no
     * other is online): pages through the backup's keys and imports them (the messages that waited for them come as
     * `decrypted` events; the history reads with {@link SecureChat.history}), then unseals the master key and signs this
     * device with it (the signature is uploaded), so that it is verified and can verify the next device.
     *
     * Errors ({@link E2eError} codes): `recovery_key` for a mistyped key (nothing is sent), `wrong_recovery_key` for
     * another backup's key, `bad_signature` for a backup the user's master key did not sign, `refused` when the user
     * has no backup.
     */
    restoreBackup(recoveryKey) {
        let recovery;
        try {
            recovery = RecoveryKey.parse(recoveryKey);
        }
        catch (e) {
            return Promise.reject(e);
        }
        return this.serial(async () => {
            await this.refreshKeys([this.user], undefined);
            const info = await this.client.getBackup();
            if (!info)
                throw new E2eError("refused", "refused: the user has no key backup to restore");
            const m = this.machine;
            // Checked before anything is imported: the signature, then whether the recovery key opens it.
            await m.restoreBackupKeys(recovery, info, []);
            m.adoptBackup(info);
            const restored = { imported: 0, refused: 0, verified: false };
            let after;
            for (;;) {
                const { keys, more } = await this.client.getBackupKeys(info.version, after, BACKUP_PAGE);
                const results = await m.restoreBackupKeys(recovery, info, keys);
                await this.persist();
                results.forEach((r, i) => {
                    if ("ok" in r) {
                        restored.imported++;
                    }
                    else {
                        restored.refused++;
                        const k = keys[i];
                        this.fail(`a backed-up key of session ${k.session} in ${k.conv} was refused`, r.error);
                    }
                });
                this.absorb(results.filter((r) => "ok" in r));
                const last = keys[keys.length - 1];
                if (!more || !last)
                    break;
                after = { conv: last.conv, session: last.session };
            }
            let signature;
            try {
                await m.unsealMasterKey(recovery, info);
                signature = m.signOwnDevice();
            }
            catch (e) {
                // The user made a new master key since the backup: the keys are restored, the device stays unverified.
                this.fail("the backup's master key was not taken", e);
            }
            await this.persist();
            if (signature !== undefined) {
                await this.client.uploadKeys({ signatures: [{ device: this.device, signature }] });
                restored.verified = true;
            }
            await this.backUpQuietly();
            return restored;
        });
    }
    /**
     * Takes over the conversation keys of an earlier device of this user whose state this application kept (e.g. a
     * browser signed out with "keep keys" and signed in again: a new device): the state is opened with `key`, its keys
     * imported (marked forwarded), the messages waiting for them decrypted. Resolves with how many keys were taken; a
     * state of another user is refused, one that does not open is an {@link E2eError}.
     */
    adoptKeysOf(saved, key) {
        return this.serial(async () => {
            const old = await Machine.fromBytes(saved, key);
            try {
                if (old.user !== this.user)
                    throw new E2eError("refused", "refused: the saved keys are another user's");
                if (old.device === this.device)
                    return 0;
                const results = this.machine.importKeys(old.exportKeys());
                await this.persist();
                this.absorb(results);
                await this.backUpQuietly();
                return results.filter((r) => "ok" in r).length;
            }
            finally {
                old.free();
            }
        });
    }
    /** The version of the key backup this device adds its keys to; `undefined` when it follows none (none enabled, or its signature did not verify). */
    get backupVersion() {
        return this.machine.backupVersion();
    }
    /** Whether the user has a key backup on the server (to offer {@link SecureChat.restoreBackup} on a new device). */
    async hasBackup() {
        return (await this.client.getBackup()) !== null;
    }
    /** Adopts the user's current backup, if any, after checking its signature (a backup that does not verify is not followed). Under `op`. */
    async followBackup() {
        const current = await this.client.getBackup();
        const m = this.machine;
        try {
            if (current)
                m.adoptBackup(current);
            else
                m.forgetBackup();
        }
        catch (e) {
            m.forgetBackup();
            throw e;
        }
        finally {
            this.persistLater();
        }
    }
    /**
     * Uploads the keys not yet in the adopted backup, at most {@link BACKUP_KEYS_PER_PUT} per request; when the server
     * no longer has that version (another device made a new backup), follows the new one and uploads everything again.
     * Under `op`, after the state holding the keys was saved.
     */
    async uploadBackup() {
        let followed = false;
        for (;;) {
            const batch = await this.machine.backupBatch(BACKUP_KEYS_PER_PUT);
            if (!batch)
                return;
            try {
                await this.client.putBackupKeys(batch.version, batch.keys);
            }
            catch (e) {
                if (e instanceof ChatError && e.code === "not_found" && !followed) {
                    followed = true;
                    await this.followBackup();
                    continue;
                }
                throw e;
            }
            this.machine.markBackedUp(batch);
            this.persistLater();
        }
    }
    /** {@link SecureChat.uploadBackup}, a failure an `error` event: the keys stay pending and go with the next upload. */
    async backUpQuietly() {
        try {
            await this.uploadBackup();
        }
        catch (e) {
            this.fail("conversation keys not backed up yet", e);
        }
    }
    /** Resolves once every push received so far was processed and every save written (for tests and orderly shutdown). */
    async idle() {
        for (;;) {
            const [p, o, s] = [this.pushes, this.op, this.saving];
            await Promise.all([p, o, s]);
            if (p === this.pushes && o === this.op && s === this.saving)
                return;
        }
    }
}
