/**
 * The device's own keys: its identity (Ed25519 signing, Curve25519
 * agreement) and the one-time and fallback keys others claim to open an
 * Olm channel to it, each signed over the texts of texts.ts.
 *
 * @module
 */
import { bytesOf, decodeBase64, deviceKeysText, OLM_V1, oneTimeKeyText } from "./texts.js";
/**
 * How many one-time keys the device keeps on the server. vodozemac keeps the
 * private halves of a few more, so keys claimed but not yet used survive a top-up.
 */
export const ONE_TIME_KEY_TARGET = 50;
/** Whether there is nothing to upload. */
export function isEmptyUpload(u) {
    return !u.identity && u.oneTimeKeys.length === 0 && !u.fallbackKey && !u.masterKey && u.signatures.length === 0;
}
export function identityKeys(s) {
    const signing_key = s.signingKey();
    const agreement_key = s.agreementKey();
    const text = deviceKeysText(s.user, s.device, OLM_V1, signing_key, agreement_key);
    return { algorithm: OLM_V1, signing_key, agreement_key, signature: s.account.sign(bytesOf(text)) };
}
function signedKey(s, id, key) {
    return { id, key, signature: s.account.sign(bytesOf(oneTimeKeyText(s.user, s.device, id, key))) };
}
/** Orders key ids as numbers, as Rust sorts `KeyId`s (their base64 is of the big-endian u64). */
function compareIds(a, b) {
    const x = decodeBase64(a) ?? new Uint8Array();
    const y = decodeBase64(b) ?? new Uint8Array();
    for (let i = 0; i < Math.min(x.length, y.length); i++)
        if (x[i] !== y[i])
            return x[i] - y[i];
    return x.length - y.length;
}
export function keysToUpload(s, counts) {
    const a = s.account;
    const pendingKeys = a.oneTimeKeys();
    const pending = pendingKeys.length;
    for (const k of pendingKeys)
        k.free();
    const missing = Math.max(0, ONE_TIME_KEY_TARGET - (counts.one_time + pending));
    if (missing > 0)
        a.generateOneTimeKeys(missing);
    const unpublished = a.fallbackKey();
    if (!counts.fallback_unused && !unpublished)
        a.generateFallbackKey();
    unpublished?.free();
    const oneTime = a.oneTimeKeys().map((k) => {
        const r = { id: k.id, key: k.key };
        k.free();
        return r;
    });
    oneTime.sort((x, y) => compareIds(x.id, y.id));
    const fallback = a.fallbackKey();
    const upload = {
        oneTimeKeys: oneTime.map((k) => signedKey(s, k.id, k.key)),
        signatures: [],
    };
    if (fallback) {
        upload.fallbackKey = signedKey(s, fallback.id, fallback.key);
        fallback.free();
    }
    if (!s.identityPublished)
        upload.identity = identityKeys(s);
    return upload;
}
export function markKeysPublished(s) {
    s.account.markKeysAsPublished();
    s.identityPublished = true;
}
