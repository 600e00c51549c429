/**
 * Safety numbers: what two users compare to know that no one sits between
 * them. Made from the users' master keys, so a new device does not change
 * it, as the Rust client makes it: 60 digits in 12 groups of 5, each user's
 * half 30 digits from 5200 rounds of SHA-512 over version, master key and
 * user id, the two halves in sorted order so both sides read the same number.
 *
 * @module
 */
import { E2eError } from "./errors.js";
import { bytesOf, decodeBase64 } from "./texts.js";
/** The version of the number's derivation, hashed in. */
const VERSION = new Uint8Array([0, 1]);
/** Hash rounds per half (as Signal). */
const ROUNDS = 5200;
function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
        out.set(p, o);
        o += p.length;
    }
    return out;
}
async function half(user, masterKey) {
    const key = decodeBase64(masterKey);
    if (!key || key.length !== 32)
        throw new E2eError("bad_signature", "invalid signature or key: a master key is 32 bytes of base64");
    let hash = new Uint8Array(await crypto.subtle.digest("SHA-512", concat(VERSION, key, bytesOf(user))));
    for (let i = 1; i < ROUNDS; i++) {
        hash = new Uint8Array(await crypto.subtle.digest("SHA-512", concat(hash, key)));
    }
    let digits = "";
    for (let c = 0; c < 30; c += 5) {
        let n = 0;
        for (let i = c; i < c + 5; i++)
            n = n * 256 + hash[i];
        digits += String(n % 100_000).padStart(5, "0");
    }
    return digits;
}
/**
 * The safety number of two users from their master keys (base64): the same
 * whichever side computes it. 60 digits in 12 groups of 5, spaced.
 */
export async function safetyNumber(userA, masterA, userB, masterB) {
    const [a, b] = [await half(userA, masterA), await half(userB, masterB)];
    const digits = a <= b ? a + b : b + a;
    return digits.match(/.{5}/g).join(" ");
}
