/**
 * The devices of the users this device talks to, as the key directory shows
 * them, each signature checked here (the server is not trusted); the
 * per-user master signing key that vouches for devices.
 *
 * A user's master key is pinned when first seen (an answer without one keeps
 * it); a later different one is adopted but reported (`master_key_changed`)
 * so the app can warn. A device whose identity keys change under the same id
 * is refused: the directory never allows it, so only a lying server shows it.
 *
 * @module
 */
import { E2eError, messageOf } from "./errors.js";
import { identityKeys } from "./account.js";
import { deviceKey, verify } from "./state.js";
import { bytesOf, deviceKeysText, deviceSignatureText, masterKeyText, OLM_V1 } from "./texts.js";
/** Checks a device's self-signed identity keys; the reason when they do not verify. */
export function checkIdentity(s, info) {
    if (info.keys.algorithm !== OLM_V1)
        return `algorithm "${info.keys.algorithm}" is not ${OLM_V1}`;
    try {
        s.vz.checkEd25519Key(info.keys.signing_key);
    }
    catch (e) {
        return `signing key: ${messageOf(e)}`;
    }
    try {
        s.vz.checkCurve25519Key(info.keys.agreement_key);
    }
    catch (e) {
        return `agreement key: ${messageOf(e)}`;
    }
    const text = deviceKeysText(info.user, info.device, info.keys.algorithm, info.keys.signing_key, info.keys.agreement_key);
    return verify(s.vz, info.keys.signing_key, text, info.keys.signature)
        ? null
        : "the device's signature over its keys does not verify";
}
function masterSigns(s, master, user, device, d, sig) {
    return verify(s.vz, master, deviceSignatureText(user, device, d.signingKey, d.agreementKey), sig);
}
/** A device is gone: outbound sessions it got are not used again. */
export function deviceRemoved(s, device) {
    const key = deviceKey(device);
    for (const [conv, o] of s.outbound) {
        if (o.sharedWith.has(key)) {
            o.session.free();
            s.outbound.delete(conv);
        }
    }
}
export function receiveDeviceKeys(s, keys) {
    const user = keys.user;
    const changes = [];
    const reject = (device, reason) => changes.push(device === undefined ? { type: "rejected", user, reason } : { type: "rejected", user, device, reason });
    const known = s.users.has(user);
    const old = s.users.get(user) ?? { devices: new Map() };
    const ownMaster = user === s.user && s.masterSecret ? s.masterSecret.publicKey : undefined;
    let master;
    if (keys.masterKey) {
        const m = keys.masterKey;
        if (verify(s.vz, m.key, masterKeyText(user, m.key), m.signature)) {
            master = m.key;
        }
        else {
            reject(undefined, "the master key's self-signature does not verify");
            master = old.masterKey;
        }
    }
    else {
        // Omitting the key does not undo it: a server cannot strip trust.
        master = old.masterKey;
    }
    if (ownMaster !== undefined) {
        if (master !== undefined && master !== ownMaster) {
            reject(undefined, "the directory shows another master key than the one this device holds");
        }
        master = ownMaster;
    }
    if (master !== old.masterKey && old.masterKey !== undefined) {
        const change = { type: "master_key_changed", user, old: old.masterKey };
        if (master !== undefined)
            change.new = master;
        changes.push(change);
    }
    const devices = new Map();
    for (const info of keys.devices) {
        const device = info.device;
        if (info.user !== user) {
            reject(device, "the device belongs to another user");
            continue;
        }
        const bad = checkIdentity(s, info);
        if (bad !== null) {
            reject(device, bad);
            continue;
        }
        if (user === s.user &&
            device === s.device &&
            (info.keys.signing_key !== s.signingKey() || info.keys.agreement_key !== s.agreementKey())) {
            reject(device, "the directory shows other keys for this very device");
            continue;
        }
        const before = old.devices.get(device);
        let tracked;
        let signature;
        if (before && (before.signingKey !== info.keys.signing_key || before.agreementKey !== info.keys.agreement_key)) {
            reject(device, "the device's identity keys changed: kept the old ones");
            tracked = { ...before };
            signature = undefined;
        }
        else {
            tracked = { signingKey: info.keys.signing_key, agreementKey: info.keys.agreement_key };
            signature = info.master_signature;
        }
        // A signature seen before (or made here) is kept while it verifies: omitting it does not unverify the device.
        signature = signature ?? before?.masterSignature;
        delete tracked.masterSignature;
        if (signature !== undefined && master !== undefined) {
            if (masterSigns(s, master, user, device, tracked, signature))
                tracked.masterSignature = signature;
            else
                reject(device, "the master key's signature of the device does not verify");
        }
        devices.set(device, tracked);
    }
    // This very device stays tracked, its keys known first hand.
    if (user === s.user && !devices.has(s.device)) {
        const me = old.devices.get(s.device);
        if (me)
            devices.set(s.device, { ...me });
    }
    if (known) {
        for (const [device, d] of devices) {
            const r = { user, device };
            const before = old.devices.get(device);
            if (!before)
                changes.push({ type: "added", device: r });
            if (d.masterSignature !== undefined && before?.masterSignature === undefined)
                changes.push({ type: "signed", device: r });
        }
    }
    for (const device of old.devices.keys()) {
        if (!devices.has(device)) {
            const r = { user, device };
            deviceRemoved(s, r);
            changes.push({ type: "removed", device: r });
        }
    }
    const next = { devices };
    if (master !== undefined)
        next.masterKey = master;
    s.users.set(user, next);
    return changes;
}
export function devicesOf(s, users) {
    const out = [];
    for (const user of users) {
        const u = s.users.get(user);
        if (!u)
            continue;
        for (const device of u.devices.keys()) {
            if (user !== s.user || device !== s.device)
                out.push({ user, device });
        }
    }
    return out;
}
export function deviceTrust(s, user, device) {
    const d = s.tracked(user, device);
    if (!d)
        return "unknown";
    return d.masterSignature !== undefined ? "verified" : "unverified";
}
export function masterKeyOf(s, user) {
    if (user === s.user && s.masterSecret)
        return s.masterSecret.publicKey;
    return s.users.get(user)?.masterKey;
}
export function createMasterKey(s) {
    if (s.masterSecret || s.users.get(s.user)?.masterKey !== undefined) {
        throw new E2eError("refused", "the user already has a master key: have this device signed by another");
    }
    const secret = new s.vz.Ed25519SecretKey();
    const key = secret.publicKey;
    const signature = secret.sign(bytesOf(masterKeyText(s.user, key)));
    s.masterSecret = secret;
    const deviceSignature = signDevice(s, { user: s.user, device: s.device, keys: identityKeys(s) });
    return { masterKey: { key, signature }, device: s.device, deviceSignature };
}
/** The master key held here, its self-signature and this device's signature again (Ed25519 signs deterministically). */
export function masterKeyUpload(s) {
    const secret = s.masterSecret;
    if (!secret)
        throw new E2eError("no_master_key", "this device does not hold the master signing key");
    const key = secret.publicKey;
    const signature = secret.sign(bytesOf(masterKeyText(s.user, key)));
    const deviceSignature = signDevice(s, { user: s.user, device: s.device, keys: identityKeys(s) });
    return { masterKey: { key, signature }, device: s.device, deviceSignature };
}
export function signDevice(s, device) {
    const secret = s.masterSecret;
    if (!secret)
        throw new E2eError("no_master_key", "this device does not hold the master signing key");
    if (device.user !== s.user)
        throw new E2eError("refused", "refused: the master key signs only its own user's devices");
    const bad = checkIdentity(s, device);
    if (bad !== null)
        throw new E2eError("bad_signature", `invalid signature or key: ${bad}`);
    let user = s.users.get(s.user);
    if (!user) {
        user = { devices: new Map() };
        s.users.set(s.user, user);
    }
    const tracked = user.devices.get(device.device);
    if (tracked && (tracked.signingKey !== device.keys.signing_key || tracked.agreementKey !== device.keys.agreement_key)) {
        throw new E2eError("refused", "refused: the device's keys differ from the tracked ones");
    }
    const text = deviceSignatureText(device.user, device.device, device.keys.signing_key, device.keys.agreement_key);
    const signature = secret.sign(bytesOf(text));
    user.masterKey = secret.publicKey;
    user.devices.set(device.device, {
        signingKey: device.keys.signing_key,
        agreementKey: device.keys.agreement_key,
        masterSignature: signature,
    });
    return signature;
}
/** Takes in the master private key forwarded by another own device: accepted only when its public half is the pinned master key. */
export function acceptMasterSecret(s, secret) {
    let key;
    try {
        key = s.vz.Ed25519SecretKey.fromBase64(secret);
    }
    catch (e) {
        throw new E2eError("malformed", `malformed payload: ${messageOf(e)}`);
    }
    if (masterKeyOf(s, s.user) !== key.publicKey) {
        key.free();
        throw new E2eError("refused", "refused: the forwarded master key is not the user's master key");
    }
    s.masterSecret?.free();
    s.masterSecret = key;
}
