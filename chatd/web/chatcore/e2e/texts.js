/**
 * The texts that keys sign (the same bytes as `chatcore::e2e` in Rust and
 * PROTOCOL.md "Key directory"), the algorithm names, and the unpadded
 * base64 of the wire.
 *
 * @module
 */
/** The algorithm of Olm devices (Ed25519 signing, Curve25519 agreement) and of to-device payloads. */
export const OLM_V1 = "olm.v1";
/** The algorithm of encrypted conversation messages. */
export const MEGOLM_V1 = "megolm.v1";
/** The text a device signs to vouch for its identity keys. */
export function deviceKeysText(user, device, algorithm, signingKey, agreementKey) {
    return `chatcore-device-keys-v1\n${user}\n${device}\n${algorithm}\n${signingKey}\n${agreementKey}`;
}
/** The text a device signs to vouch for one of its one-time (or fallback) keys. */
export function oneTimeKeyText(user, device, id, key) {
    return `chatcore-one-time-key-v1\n${user}\n${device}\n${id}\n${key}`;
}
/** The text a user's master key signs to claim its owner (its self-signature). */
export function masterKeyText(user, key) {
    return `chatcore-master-key-v1\n${user}\n${key}`;
}
/** The text a user's master key signs to vouch for one of the user's devices. */
export function deviceSignatureText(user, device, signingKey, agreementKey) {
    return `chatcore-device-signature-v1\n${user}\n${device}\n${signingKey}\n${agreementKey}`;
}
const utf8 = new TextEncoder();
/** UTF-8 bytes of a text. */
export function bytesOf(text) {
    return utf8.encode(text);
}
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const LOOKUP = new Map([...ALPHABET].map((c, i) => [c, i]));
/** Unpadded standard base64 (the wire's form of payloads, ciphertexts and keys). */
export function encodeBase64(bytes) {
    let out = "";
    let i = 0;
    for (; i + 2 < bytes.length; i += 3) {
        const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
        out += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63] + ALPHABET[(n >> 6) & 63] + ALPHABET[n & 63];
    }
    if (i < bytes.length) {
        const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8);
        out += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63];
        if (i + 1 < bytes.length)
            out += ALPHABET[(n >> 6) & 63];
    }
    return out;
}
/** Decodes unpadded standard base64; `null` when it is not (padding, other characters, a dangling bit). */
export function decodeBase64(text) {
    if (text.length % 4 === 1)
        return null;
    const out = new Uint8Array(Math.floor((text.length * 3) / 4));
    let bits = 0;
    let acc = 0;
    let o = 0;
    for (const c of text) {
        const v = LOOKUP.get(c);
        if (v === undefined)
            return null;
        acc = (acc << 6) | v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (acc >> bits) & 0xff;
        }
    }
    // Leftover bits must be zero (canonical, as Rust's base64 checks).
    if (bits > 0 && (acc & ((1 << bits) - 1)) !== 0)
        return null;
    return out;
}
