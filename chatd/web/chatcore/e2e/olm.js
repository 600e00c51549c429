/**
 * Olm channels between devices, carried by to-device messages: session setup
 * from claimed one-time keys, encryption for one device, and the receiving
 * side (pre-key and normal messages), processed exactly once per (sending
 * device, id) although the server delivers at least once.
 *
 * @module
 */
import { acceptMasterSecret, deviceTrust } from "./devices.js";
import { E2eError, messageOf } from "./errors.js";
import { packEnvelope, packOlmPlaintext, unpackEnvelope, unpackOlmPlaintext } from "./formats.js";
import { addInbound } from "./megolm.js";
import { deviceKey, processedKey, verify } from "./state.js";
import { OLM_V1, oneTimeKeyText } from "./texts.js";
/** Olm sessions kept per peer device; older ones are dropped. */
const MAX_SESSIONS_PER_DEVICE = 8;
/** Processed to-device ids remembered to drop redeliveries. */
const MAX_PROCESSED = 4096;
/** To-device messages kept while their sender's keys are unknown. */
const MAX_DEFERRED = 256;
/** How long a to-device message waits for its sender's keys (by its `ts`). */
const DEFER_FOR = 7 * 24 * 60 * 60 * 1000;
/** How long a device whose one-time key claim failed is not asked for again. */
const CLAIM_RETRY_AFTER = 10 * 60 * 1000;
/** The message as the recipient's server delivers it, sent by `from` at `ts` (tests and loopbacks). */
export function delivered(message, from, ts) {
    return { from_user: from.user, from_device: from.device, kind: message.kind, id: message.id, payload: message.payload, ts };
}
function remember(s, key) {
    if (s.processedSet.has(key))
        return;
    s.processedSet.add(key);
    s.processed.push(key);
    while (s.processed.length > MAX_PROCESSED)
        s.processedSet.delete(s.processed.shift());
}
export function hasSession(s, d) {
    const t = s.tracked(d.user, d.device);
    return t !== undefined && (s.sessions.get(t.agreementKey)?.length ?? 0) > 0;
}
function claimFailedRecently(s, d, now) {
    const t = s.claimFailed.get(deviceKey(d));
    return t !== undefined && now - t < CLAIM_RETRY_AFTER;
}
export function needsClaims(s, devices, now) {
    return devices.filter((d) => !hasSession(s, d) && !claimFailedRecently(s, d, now) && s.tracked(d.user, d.device) !== undefined);
}
function addSession(s, key, session) {
    const list = s.sessions.get(key) ?? [];
    list.unshift(session);
    for (const dropped of list.splice(MAX_SESSIONS_PER_DEVICE))
        dropped.free();
    s.sessions.set(key, list);
}
function openSession(s, c) {
    const device = s.tracked(c.user, c.device);
    if (!device)
        throw new E2eError("unknown_device", `the keys of device ${c.device} of ${c.user} are unknown: query them first`);
    if (!verify(s.vz, device.signingKey, oneTimeKeyText(c.user, c.device, c.key.id, c.key.key), c.key.signature)) {
        throw new E2eError("bad_signature", "invalid signature or key: the one-time key is not signed by its device");
    }
    let session;
    try {
        session = s.account.createOutboundSession(device.agreementKey, c.key.key);
    }
    catch (e) {
        throw new E2eError("bad_signature", `invalid signature or key: ${messageOf(e)}`);
    }
    addSession(s, device.agreementKey, session);
}
export function receiveClaimedKeys(s, requested, claimed, now) {
    const failed = [];
    const done = new Set();
    for (const c of claimed) {
        const r = { user: c.user, device: c.device };
        try {
            openSession(s, c);
            s.claimFailed.delete(deviceKey(r));
            done.add(deviceKey(r));
        }
        catch (e) {
            failed.push({ device: r, error: e instanceof E2eError ? e : new E2eError("bad_signature", messageOf(e)) });
        }
    }
    for (const r of requested) {
        if (!done.has(deviceKey(r)) && !failed.some((f) => deviceKey(f.device) === deviceKey(r))) {
            failed.push({ device: r, error: new E2eError("refused", "refused: the server had no key for the device") });
        }
    }
    for (const [k, t] of s.claimFailed)
        if (now - t >= CLAIM_RETRY_AFTER)
            s.claimFailed.delete(k);
    for (const f of failed)
        s.claimFailed.set(deviceKey(f.device), now);
    return failed;
}
/** Encrypts `body` for `target` over the newest Olm session with it. */
export function olmEncrypt(s, target, body) {
    const device = s.tracked(target.user, target.device);
    if (!device) {
        throw new E2eError("unknown_device", `the keys of device ${target.device} of ${target.user} are unknown: query them first`);
    }
    const bytes = packOlmPlaintext({
        sender: s.user,
        sender_device: s.device,
        sender_key: s.signingKey(),
        recipient: target.user,
        recipient_device: target.device,
        recipient_key: device.signingKey,
        body,
    });
    return olmEncryptBytes(s, target, bytes);
}
/** Encrypts a plaintext already encoded (tests forge plaintexts through it). */
export function olmEncryptBytes(s, target, bytes) {
    const device = s.tracked(target.user, target.device);
    const session = device && s.sessions.get(device.agreementKey)?.[0];
    if (!session) {
        throw new E2eError("no_session", `no Olm session with device ${target.device} of ${target.user}: claim a one-time key first`);
    }
    const message = session.encrypt(bytes);
    const payload = packEnvelope({ senderKey: s.agreementKey(), messageType: message.messageType, body: message.body });
    message.free();
    return { user: target.user, device: target.device, kind: OLM_V1, id: crypto.randomUUID(), payload };
}
/** Decrypts with an existing session of the peer, or a new inbound one for a pre-key message (returned to keep). */
function olmDecrypt(s, peer, messageType, body) {
    const sessions = s.sessions.get(peer) ?? [];
    let lastError;
    for (let i = 0; i < sessions.length; i++) {
        const session = sessions[i];
        if (messageType === 0 && !session.matchesPreKeyMessage(messageType, body))
            continue;
        try {
            const bytes = session.decrypt(messageType, body);
            // The session that works comes first for replies.
            sessions.splice(i, 1);
            sessions.unshift(session);
            return { bytes };
        }
        catch (e) {
            lastError = messageOf(e);
        }
    }
    if (messageType === 0) {
        try {
            const inbound = s.account.createInboundSession(peer, messageType, body);
            const bytes = inbound.plaintext;
            const created = inbound.takeSession();
            inbound.free();
            return { bytes, created };
        }
        catch (e) {
            throw new E2eError("olm_decrypt", `the Olm message does not decrypt: ${messageOf(e)}`);
        }
    }
    throw new E2eError("olm_decrypt", `the Olm message does not decrypt: ${lastError ?? "no session with the sending device"}`);
}
export function receiveToDevice(s, message, now) {
    if (message.kind !== OLM_V1)
        throw new E2eError("unsupported", `unsupported kind or algorithm "${message.kind}"`);
    const key = processedKey(message.from_user, message.from_device, message.id);
    if (s.processedSet.has(key))
        return { type: "duplicate" };
    const sender = s.tracked(message.from_user, message.from_device);
    if (!sender) {
        s.deferred = s.deferred.filter((d) => now - d.ts < DEFER_FOR);
        const already = s.deferred.some((d) => d.from_user === message.from_user && d.from_device === message.from_device && d.id === message.id);
        if (!already) {
            if (s.deferred.length >= MAX_DEFERRED)
                s.deferred.shift();
            s.deferred.push(message);
        }
        return { type: "deferred", user: message.from_user };
    }
    remember(s, key);
    const from = { user: message.from_user, device: message.from_device };
    const envelope = unpackEnvelope(message.payload);
    if (envelope.senderKey !== sender.agreementKey) {
        throw new E2eError("misbound", "the message does not belong here: the Olm sender key is not the sending device's");
    }
    const { bytes, created } = olmDecrypt(s, sender.agreementKey, envelope.messageType, envelope.body);
    // The session is the sending device's (3DH with its tracked key), whatever the plaintext says.
    if (created)
        addSession(s, sender.agreementKey, created);
    const p = unpackOlmPlaintext(bytes);
    if (p.sender !== from.user || p.sender_device !== from.device || p.sender_key !== sender.signingKey) {
        throw new E2eError("misbound", "the message does not belong here: the inner sender is not the sending device");
    }
    if (p.recipient !== s.user || p.recipient_device !== s.device || p.recipient_key !== s.signingKey()) {
        throw new E2eError("misbound", "the message does not belong here: the message was encrypted for another device");
    }
    const body = p.body;
    switch (body.type) {
        case "room_key":
            return addInbound(s, body.conv, body.session, { sender: from, senderKey: sender.agreementKey, forwarded: false }, {
                shared: body.key,
            });
        case "forwarded_room_key": {
            if (from.user !== s.user || deviceTrust(s, from.user, from.device) !== "verified") {
                throw new E2eError("refused", "refused: forwarded keys are accepted only from the user's own verified devices");
            }
            const d = s.tracked(body.session_user, body.session_device);
            if (d && d.agreementKey !== body.session_sender_key) {
                throw new E2eError("misbound", "the message does not belong here: the forwarded session's sender key is not its device's");
            }
            return addInbound(s, body.conv, body.session, {
                sender: { user: body.session_user, device: body.session_device },
                senderKey: body.session_sender_key,
                forwarded: true,
            }, { exported: body.key });
        }
        case "master_key":
            if (from.user !== s.user || deviceTrust(s, from.user, from.device) !== "verified") {
                throw new E2eError("refused", "refused: the master key is accepted only from the user's own verified devices");
            }
            acceptMasterSecret(s, body.key);
            return { type: "master_key", from };
        case "custom":
            return { type: "custom", from, kind: body.kind, data: body.data };
    }
}
export function retryDeferred(s, now) {
    const deferred = s.deferred;
    s.deferred = [];
    const out = [];
    for (const message of deferred) {
        if (!s.tracked(message.from_user, message.from_device)) {
            s.deferred.push(message);
            continue;
        }
        try {
            out.push({ ok: receiveToDevice(s, message, now) });
        }
        catch (e) {
            out.push({ error: e instanceof E2eError ? e : new E2eError("malformed", messageOf(e)) });
        }
    }
    return out;
}
export function encryptToDevice(s, target, kind, data, now) {
    const claims = needsClaims(s, [target], now);
    if (claims.length > 0)
        return { type: "needs_claims", devices: claims };
    return { type: "ready", value: olmEncrypt(s, target, { type: "custom", kind, data }) };
}
export function shareMasterKey(s, device, now) {
    if (!s.masterSecret)
        throw new E2eError("no_master_key", "this device does not hold the master signing key");
    const key = s.masterSecret.toBase64();
    const target = { user: s.user, device };
    if (device === s.device || deviceTrust(s, s.user, device) !== "verified") {
        throw new E2eError("refused", "refused: the master key goes only to another own verified device");
    }
    const claims = needsClaims(s, [target], now);
    if (claims.length > 0)
        return { type: "needs_claims", devices: claims };
    return { type: "ready", value: olmEncrypt(s, target, { type: "master_key", key }) };
}
