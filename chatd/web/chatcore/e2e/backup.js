/**
 * The encrypted key backup (docs/E2E.md, "Key backup" and "Formats"), a port
 * of the Rust client's `chatcore_client::e2e::backup`, byte for byte: a
 * {@link RecoveryKey} that the user keeps, a backup whose `auth_data` the
 * user's master key signed, the conversation keys encrypted to the backup's
 * Curve25519 key as `BackupKeyInfo`s, and the restore of a new device from
 * them.
 *
 * Everything comes from the 32 bytes *R* of the recovery key with
 * HKDF-SHA-256 (no salt): the backup's Curve25519 secret key (info
 * `chatcore-backup-curve25519-v1`) and the AES-256-GCM key that seals the
 * master key (info `chatcore-backup-seal-v1`). Adding keys needs only the
 * backup's public key, so every device of the user backs up what it gets.
 *
 * The cryptography is WebCrypto's (HKDF, AES-GCM, X25519), available in
 * Node 20 and current browsers; the machine operations are the functions
 * below, exposed as methods of {@link Machine}.
 *
 * @module
 */
import { acceptMasterSecret, deviceTrust, masterKeyOf, signDevice } from "./devices.js";
import { identityKeys } from "./account.js";
import { E2eError, messageOf } from "./errors.js";
import { pack, unpack } from "./formats.js";
import { addInbound } from "./megolm.js";
import { inboundKey, verify } from "./state.js";
import { bytesOf, decodeBase64, encodeBase64 } from "./texts.js";
/** The algorithm of backups made here (`createBackup`'s `algorithm`). */
export const BACKUP_V1 = "chatcore.backup.v1";
/** Keys per `putBackupKeys` (the server's bound). */
export const BACKUP_KEYS_PER_PUT = 1000;
const CURVE_INFO = bytesOf("chatcore-backup-curve25519-v1");
const SEAL_INFO = bytesOf("chatcore-backup-seal-v1");
const KEY_INFO = bytesOf("chatcore-backup-key-v1");
const KEY_VERSION = 0x01;
/** Crockford's base32 alphabet. */
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/** Characters of a recovery key: 34 bytes (version, R, parity) in base32. */
const TEXT_CHARS = 55;
const RAW_LEN = 34;
const KEY_LEN = 32;
const NONCE_LEN = 12;
const TAG_LEN = 16;
/** The PKCS #8 header of a raw X25519 private key (RFC 8410), for WebCrypto's import. */
const PKCS8_X25519 = new Uint8Array([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20]);
/** Curve25519's base point u = 9: X25519(k, 9) is the public key of k. */
const BASE_POINT = (() => {
    const b = new Uint8Array(32);
    b[0] = 9;
    return b;
})();
/** A copy backed by a plain `ArrayBuffer`, as WebCrypto's typings want. */
function buf(bytes) {
    const out = new Uint8Array(bytes.length);
    out.set(bytes);
    return out;
}
function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
        out.set(p, at);
        at += p.length;
    }
    return out;
}
function parity(bytes) {
    return bytes.reduce((a, b) => a ^ b, 0);
}
/** Crockford base32 of `bytes`, most significant bit first, the last character padded with zero bits. */
export function base32(bytes) {
    let out = "";
    let acc = 0;
    let bits = 0;
    for (const b of bytes) {
        acc = (acc << 8) | b;
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out += ALPHABET[(acc >> bits) & 31];
        }
        acc &= (1 << bits) - 1;
    }
    if (bits > 0)
        out += ALPHABET[(acc << (5 - bits)) & 31];
    return out;
}
/** HKDF-SHA-256 of `ikm` to 32 bytes; an empty `salt` is RFC 5869's default (32 zero bytes). */
export async function hkdf(salt, ikm, info) {
    try {
        const key = await crypto.subtle.importKey("raw", buf(ikm), "HKDF", false, ["deriveBits"]);
        return new Uint8Array(await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: buf(salt), info: buf(info) }, key, 256));
    }
    catch (e) {
        throw new E2eError("refused", `refused: key derivation failed: ${messageOf(e)}`);
    }
}
function aesKey(key) {
    return crypto.subtle.importKey("raw", buf(key), "AES-GCM", false, ["encrypt", "decrypt"]);
}
/** `nonce || ciphertext || tag` of `plain` under the 32-byte `key`. */
export async function gcmSeal(key, aad, plain) {
    const nonce = crypto.getRandomValues(new Uint8Array(NONCE_LEN));
    try {
        const sealed = await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: buf(aad) }, await aesKey(key), buf(plain));
        return concat(nonce, new Uint8Array(sealed));
    }
    catch (e) {
        throw new E2eError("refused", `refused: AES-256-GCM failed: ${messageOf(e)}`);
    }
}
/** Opens what {@link gcmSeal} made; `null` when it does not decrypt (wrong key, altered, too short). */
export async function gcmOpen(key, aad, sealed) {
    if (sealed.length < NONCE_LEN + TAG_LEN)
        return null;
    try {
        const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: buf(sealed.subarray(0, NONCE_LEN)), additionalData: buf(aad) }, await aesKey(key), buf(sealed.subarray(NONCE_LEN)));
        return new Uint8Array(plain);
    }
    catch {
        return null;
    }
}
function x25519Private(secret) {
    return crypto.subtle.importKey("pkcs8", buf(concat(PKCS8_X25519, secret)), { name: "X25519" }, false, ["deriveBits"]);
}
/** The X25519 shared secret of `secret` and the 32-byte public `peer`; `null` for a weak (small-order) or invalid peer key. */
async function x25519(secret, peer) {
    try {
        const pub = await crypto.subtle.importKey("raw", buf(peer), { name: "X25519" }, true, []);
        const shared = new Uint8Array(await crypto.subtle.deriveBits({ name: "X25519", public: pub }, secret, 256));
        // A non-contributory result, as x25519-dalek's `was_contributory` refuses it.
        return shared.every((b) => b === 0) ? null : shared;
    }
    catch {
        return null;
    }
}
/** The raw 32-byte public key of a Curve25519 public key in unpadded base64; `malformed` otherwise. */
function curveKey(base64, what) {
    const bytes = decodeBase64(base64);
    if (!bytes || bytes.length !== KEY_LEN)
        throw new E2eError("malformed", `malformed payload: ${what} is not a Curve25519 key`);
    return bytes;
}
/**
 * The secret that opens a key backup: 32 random bytes, shown to the user once as text ({@link RecoveryKey.toText})
 * and typed back on a new device ({@link RecoveryKey.parse}). Its bytes are not enumerable and never printed.
 */
export class RecoveryKey {
    #bytes;
    constructor(bytes) {
        this.#bytes = bytes;
    }
    /** A new random recovery key. */
    static generate() {
        return new RecoveryKey(crypto.getRandomValues(new Uint8Array(KEY_LEN)));
    }
    /** The recovery key of these 32 bytes; a `recovery_key` {@link E2eError} for another length. */
    static fromBytes(bytes) {
        if (bytes.length !== KEY_LEN)
            throw new E2eError("recovery_key", `the recovery key is not valid: it has ${bytes.length} bytes, not ${KEY_LEN}`);
        return new RecoveryKey(bytes.slice());
    }
    /**
     * Its text form: 55 characters of Crockford base32 in 11 groups of 5 separated by spaces, encoding
     * `0x01 || R || parity` (the parity byte is the XOR of the 33 before it).
     */
    toText() {
        const raw = new Uint8Array(RAW_LEN);
        raw[0] = KEY_VERSION;
        raw.set(this.#bytes, 1);
        raw[RAW_LEN - 1] = parity(raw.subarray(0, RAW_LEN - 1));
        return (base32(raw).match(/.{1,5}/g) ?? []).join(" ");
    }
    /**
     * Reads a recovery key typed by the user: case, spaces and dashes do not matter, and Crockford's aliases are read
     * (`O` as 0, `I` and `L` as 1). A wrong length, a foreign character or a wrong parity is a `recovery_key`
     * {@link E2eError}, before anything is tried with it.
     */
    static parse(text) {
        const bad = (why) => new E2eError("recovery_key", `the recovery key is not valid: ${why}`);
        const values = [];
        for (const ch of text) {
            if (/\s/u.test(ch) || ch === "-")
                continue;
            let c = ch.length === 1 && ch.charCodeAt(0) < 128 ? ch.toUpperCase() : ch;
            if (c === "O")
                c = "0";
            else if (c === "I" || c === "L")
                c = "1";
            const v = ALPHABET.indexOf(c);
            if (v < 0 || c.length !== 1)
                throw bad(`${JSON.stringify(ch)} is not a character of recovery keys`);
            values.push(v);
        }
        if (values.length !== TEXT_CHARS)
            throw bad(`it has ${values.length} characters, not ${TEXT_CHARS}`);
        const raw = [];
        let acc = 0;
        let bits = 0;
        for (const v of values) {
            acc = (acc << 5) | v;
            bits += 5;
            if (bits >= 8) {
                bits -= 8;
                raw.push((acc >> bits) & 0xff);
                acc &= (1 << bits) - 1;
            }
        }
        // 275 bits: 34 bytes, then 3 bits that are always zero.
        if (raw.length !== RAW_LEN || acc !== 0)
            throw bad("it is mistyped: its last character is wrong");
        if (raw[0] !== KEY_VERSION)
            throw bad("it is mistyped, or of an unknown version");
        const bytes = new Uint8Array(raw);
        if (parity(bytes.subarray(0, RAW_LEN - 1)) !== bytes[RAW_LEN - 1])
            throw bad("it is mistyped: its check does not match");
        return new RecoveryKey(bytes.slice(1, RAW_LEN - 1));
    }
    /** @internal HKDF-SHA-256 of R with no salt. */
    derive(info) {
        return hkdf(new Uint8Array(0), this.#bytes, info);
    }
    /** @internal The backup's X25519 secret key, and its public key's 32 bytes. */
    async keyPair() {
        const secret = await x25519Private(await this.derive(CURVE_INFO));
        const pub = await x25519(secret, BASE_POINT);
        if (!pub)
            throw new E2eError("refused", "refused: the backup's key could not be derived");
        return { secret, public: pub };
    }
    /** The backup's Curve25519 public key (unpadded base64) that this recovery key opens. */
    async publicKey() {
        return encodeBase64((await this.keyPair()).public);
    }
    /** Never the key: `RecoveryKey(..)`. */
    toString() {
        return "RecoveryKey(..)";
    }
    /** Never the key: `"RecoveryKey(..)"` in JSON. */
    toJSON() {
        return "RecoveryKey(..)";
    }
    /** Never the key, in Node's `console.log` and `util.inspect`. */
    [Symbol.for("nodejs.util.inspect.custom")]() {
        return "RecoveryKey(..)";
    }
}
/** The text the master key signs to vouch for a backup's public key. */
export function backupKeyText(user, publicKey) {
    return `chatcore-backup-key-v1\n${user}\n${publicKey}`;
}
function masterAad(user) {
    return bytesOf(`chatcore-backup-master-v1\n${user}`);
}
function entryAad(conv, session) {
    return bytesOf(`chatcore-backup-v1\n${conv}\n${session}`);
}
function fields(value, what) {
    if (typeof value !== "object" || value === null || Array.isArray(value) || value instanceof Uint8Array) {
        throw new E2eError("malformed", `malformed payload: ${what} is not a map`);
    }
    return value;
}
function field(m, name, what, check) {
    const v = m[name];
    if (!check(v))
        throw new E2eError("malformed", `malformed payload: ${what}: missing field or wrong type: ${name}`);
    return v;
}
const isString = (v) => typeof v === "string";
const isBytes = (v) => v instanceof Uint8Array;
/** Encodes `auth_data`: the named fields in the Rust struct's order. */
export function encodeAuthData(a) {
    return encodeBase64(pack({ public_key: a.public_key, signature: a.signature, sealed_master: a.sealed_master }));
}
/** Decodes `auth_data`; `malformed` when it is not base64 of the expected map. */
export function decodeAuthData(authData) {
    const bytes = decodeBase64(authData);
    if (!bytes)
        throw new E2eError("malformed", "malformed payload: the backup's auth_data is not base64");
    const m = fields(unpack(bytes), "the backup's auth_data");
    const what = "the backup's auth_data";
    return {
        public_key: field(m, "public_key", what, isString),
        signature: field(m, "signature", what, isString),
        sealed_master: field(m, "sealed_master", what, isBytes),
    };
}
function decodeEntry(plain) {
    const m = fields(unpack(plain), "the backed-up key");
    const what = "the backed-up key";
    return {
        sender_user: field(m, "sender_user", what, isString),
        sender_device: field(m, "sender_device", what, isString),
        sender_key: field(m, "sender_key", what, isString),
        key: field(m, "key", what, isString),
    };
}
/**
 * Encrypts a key's plaintext to the backup's public key: `e`'s public key, then `nonce || ciphertext || tag` under
 * HKDF-SHA-256(ikm: X25519(e, backup), salt: e's public key || the backup's, info `chatcore-backup-key-v1`).
 */
export async function sealEntry(backupPublic, conv, session, plain) {
    const ephemeral = (await crypto.subtle.generateKey({ name: "X25519" }, true, ["deriveBits"]));
    const ephemeralPublic = new Uint8Array(await crypto.subtle.exportKey("raw", ephemeral.publicKey));
    const shared = await x25519(ephemeral.privateKey, backupPublic);
    if (!shared)
        throw new E2eError("refused", "refused: the backup's public key is weak");
    const aead = await hkdf(concat(ephemeralPublic, backupPublic), shared, KEY_INFO);
    return concat(ephemeralPublic, await gcmSeal(aead, entryAad(conv, session), plain));
}
/** Opens a key's `data` (unpadded base64) with the backup's key pair; `misbound` when it does not decrypt for its conversation and session. */
async function openEntry(secret, backupPublic, key) {
    const data = decodeBase64(key.data);
    if (!data)
        throw new E2eError("malformed", "malformed payload: the backed-up key is not base64");
    if (data.length < KEY_LEN + NONCE_LEN + TAG_LEN)
        throw new E2eError("malformed", "malformed payload: the backed-up key is too short");
    const ephemeral = data.subarray(0, KEY_LEN);
    const shared = await x25519(secret, ephemeral);
    if (!shared)
        throw new E2eError("malformed", "malformed payload: the backed-up key's ephemeral key is weak");
    const aead = await hkdf(concat(ephemeral, backupPublic), shared, KEY_INFO);
    const plain = await gcmOpen(aead, entryAad(key.conv, key.session), data.subarray(KEY_LEN));
    if (!plain) {
        throw new E2eError("misbound", "the message does not belong here: the backed-up key does not decrypt for this conversation and session");
    }
    return decodeEntry(plain);
}
function isBackedUp(state, key, firstIndex) {
    const b = state.backedUp.get(key);
    return b !== undefined && b <= firstIndex;
}
export async function createBackup(s, recovery) {
    const master = s.masterSecret;
    if (!master)
        throw new E2eError("no_master_key", "this device does not hold the master signing key");
    const publicKey = await recovery.publicKey();
    const signature = master.sign(bytesOf(backupKeyText(s.user, publicKey)));
    const secret = decodeBase64(master.toBase64());
    if (!secret || secret.length !== KEY_LEN)
        throw new E2eError("refused", "refused: the master key is not 32 bytes");
    const sealed = await gcmSeal(await recovery.derive(SEAL_INFO), masterAad(s.user), secret);
    secret.fill(0);
    return { algorithm: BACKUP_V1, authData: encodeAuthData({ public_key: publicKey, signature, sealed_master: sealed }) };
}
/** Checks a backup's `auth_data`: the algorithm is {@link BACKUP_V1} and the user's pinned master key signed its public key. */
function checkBackup(s, backup) {
    if (backup.algorithm !== BACKUP_V1)
        throw new E2eError("unsupported", `unsupported kind or algorithm "${backup.algorithm}"`);
    const auth = decodeAuthData(backup.auth_data);
    curveKey(auth.public_key, "the backup's public key");
    const master = masterKeyOf(s, s.user);
    if (master === undefined) {
        throw new E2eError("bad_signature", "invalid signature or key: the user's master key is unknown: the backup cannot be checked");
    }
    if (!verify(s.vz, master, backupKeyText(s.user, auth.public_key), auth.signature)) {
        throw new E2eError("bad_signature", "invalid signature or key: the backup is not signed by the user's master key");
    }
    return auth;
}
export function adoptBackup(s, backup) {
    const auth = checkBackup(s, backup);
    const same = s.backup !== null && s.backup.version === backup.version && s.backup.publicKey === auth.public_key;
    if (!same)
        s.backup = { version: backup.version, publicKey: auth.public_key, backedUp: new Map() };
}
export function keysNotBackedUp(s) {
    const state = s.backup;
    if (!state)
        return 0;
    let n = 0;
    for (const [k, i] of s.inbound)
        if (!isBackedUp(state, k, i.session.firstKnownIndex))
            n++;
    return n;
}
export async function backupBatch(s, limit) {
    const state = s.backup;
    if (!state)
        return null;
    const backupPublic = curveKey(state.publicKey, "the backup's public key");
    // Read synchronously, before any await: the state may change while the keys are encrypted.
    const pending = [];
    for (const [k, inbound] of s.inbound) {
        if (pending.length >= limit)
            break;
        const firstIndex = inbound.session.firstKnownIndex;
        if (isBackedUp(state, k, firstIndex))
            continue;
        const [user, device, session] = JSON.parse(k);
        const entry = {
            sender_user: user,
            sender_device: device,
            sender_key: inbound.source.senderKey,
            key: inbound.session.exportAtFirstKnownIndex(),
        };
        pending.push({
            key: k,
            conv: inbound.conv,
            session,
            firstIndex,
            forwarded: inbound.source.forwarded,
            verified: deviceTrust(s, user, device) === "verified",
            plain: pack({ sender_user: entry.sender_user, sender_device: entry.sender_device, sender_key: entry.sender_key, key: entry.key }),
        });
    }
    if (pending.length === 0)
        return null;
    const keys = [];
    for (const p of pending) {
        const data = await sealEntry(backupPublic, p.conv, p.session, p.plain);
        keys.push({
            conv: p.conv,
            session: p.session,
            first_index: p.firstIndex,
            forwarded: p.forwarded ? 1 : 0,
            verified: p.verified,
            data: encodeBase64(data),
        });
    }
    return { version: state.version, keys, marks: pending.map((p) => [p.key, p.firstIndex]) };
}
export function markBackedUp(s, batch) {
    if (s.backup && s.backup.version === batch.version) {
        for (const [k, index] of batch.marks)
            s.backup.backedUp.set(k, index);
    }
}
/** Checks that `recovery` opens `backup` (its signature first): the backup's auth data and key pair. */
async function openBackup(s, recovery, backup) {
    const auth = checkBackup(s, backup);
    const pair = await recovery.keyPair();
    if (encodeBase64(pair.public) !== auth.public_key) {
        throw new E2eError("wrong_recovery_key", "the recovery key does not open this key backup");
    }
    return { auth, ...pair };
}
export async function restoreBackupKeys(s, recovery, backup, keys) {
    const { secret, public: backupPublic } = await openBackup(s, recovery, backup);
    // Every key is decrypted first; the state changes afterwards, without an await in between.
    const opened = [];
    for (const key of keys) {
        try {
            opened.push({ entry: await openEntry(secret, backupPublic, key) });
        }
        catch (e) {
            opened.push({ error: e instanceof E2eError ? e : new E2eError("malformed", `malformed payload: ${messageOf(e)}`) });
        }
    }
    return keys.map((key, i) => {
        const o = opened[i];
        if ("error" in o)
            return { error: o.error };
        try {
            return { ok: restoreOne(s, backup.version, key, o.entry) };
        }
        catch (e) {
            return { error: e instanceof E2eError ? e : new E2eError("malformed", `malformed payload: ${messageOf(e)}`) };
        }
    });
}
function restoreOne(s, version, key, entry) {
    const d = s.tracked(entry.sender_user, entry.sender_device);
    if (d && d.agreementKey !== entry.sender_key) {
        throw new E2eError("misbound", "the message does not belong here: the backed-up session's sender key is not its device's");
    }
    const received = addInbound(s, key.conv, key.session, { sender: { user: entry.sender_user, device: entry.sender_device }, senderKey: entry.sender_key, forwarded: true }, { exported: entry.key });
    // What came from the current backup need not go back to it.
    const mapKey = inboundKey(entry.sender_user, entry.sender_device, key.session);
    const first = s.inbound.get(mapKey)?.session.firstKnownIndex;
    if (s.backup && first !== undefined && s.backup.version === version && key.first_index <= first) {
        s.backup.backedUp.set(mapKey, first);
    }
    return received;
}
export async function unsealMasterKey(s, recovery, backup) {
    const { auth } = await openBackup(s, recovery, backup);
    const plain = await gcmOpen(await recovery.derive(SEAL_INFO), masterAad(s.user), auth.sealed_master);
    if (!plain)
        throw new E2eError("wrong_recovery_key", "the recovery key does not open this key backup");
    if (plain.length !== KEY_LEN)
        throw new E2eError("malformed", "malformed payload: the sealed master key is not 32 bytes");
    const text = encodeBase64(plain);
    plain.fill(0);
    acceptMasterSecret(s, text);
}
export function signOwnDevice(s) {
    return signDevice(s, { user: s.user, device: s.device, keys: identityKeys(s) });
}
