/**
 * The machine's state, shared by the modules that work on it (account,
 * devices, olm, megolm, safety, store). Internal: the public face is
 * {@link Machine} in machine.ts.
 *
 * @module
 */
import { decodeBase64 } from "./texts.js";
/** The whole state of one device. */
export class MachineState {
    vz;
    user;
    device;
    account;
    identityPublished;
    users = new Map();
    masterSecret = null;
    /** Olm sessions per peer Curve25519 key, the one to encrypt with first. */
    sessions = new Map();
    /** Processed to-device messages by {@link processedKey}, oldest first. */
    processed = [];
    processedSet = new Set();
    deferred = [];
    /** Devices (by {@link deviceKey}) whose claim failed, and when. */
    claimFailed = new Map();
    outbound = new Map();
    /** By {@link inboundKey}. */
    inbound = new Map();
    /** Awaited sessions by {@link sessionRefKey}. */
    waiting = new Map();
    /** The adopted key backup, if any. */
    backup = null;
    constructor(vz, user, device, account, identityPublished) {
        this.vz = vz;
        this.user = user;
        this.device = device;
        this.account = account;
        this.identityPublished = identityPublished;
    }
    me() {
        return { user: this.user, device: this.device };
    }
    tracked(user, device) {
        return this.users.get(user)?.devices.get(device);
    }
    /** This device's Ed25519 key (base64). */
    signingKey() {
        return this.account.ed25519Key;
    }
    /** This device's Curve25519 key (base64). */
    agreementKey() {
        return this.account.curve25519Key;
    }
}
/** A map key for a device. */
export function deviceKey(d) {
    return JSON.stringify([d.user, d.device]);
}
/** The device of a {@link deviceKey}. */
export function deviceOfKey(key) {
    const [user, device] = JSON.parse(key);
    return { user, device };
}
/** A map key for an inbound session: its creating device and id. */
export function inboundKey(user, device, session) {
    return JSON.stringify([user, device, session]);
}
/** A map key for a processed to-device message. */
export function processedKey(user, device, id) {
    return JSON.stringify([user, device, id]);
}
/** A map key for a {@link SessionRef}. */
export function sessionRefKey(s) {
    return JSON.stringify([s.conv, s.user, s.device, s.session]);
}
/** Checks an Ed25519 signature (all base64) over `text`, as `chatcore::e2e::verify`: false for malformed input. */
export function verify(vz, key, text, signature) {
    if (decodeBase64(key)?.length !== 32 || decodeBase64(signature)?.length !== 64)
        return false;
    try {
        return vz.verifyEd25519(key, new TextEncoder().encode(text), signature);
    }
    catch {
        return false;
    }
}
