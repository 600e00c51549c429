/**
 * Files of an encrypted conversation (E2E.md, *Files*): each file is encrypted on the device before `POST /media`,
 * with AES-256-GCM under a random key and nonce used for that file only (WebCrypto), and decrypted after download.
 * The key, the nonce and the SHA-256 of the uploaded bytes travel inside the encrypted message, never in the clear.
 *
 * ```ts
 * const { ciphertext, encryption } = await encryptFile(photo);
 * const up = await client.upload(ciphertext);
 * await secure.sendMedia(conv, { kind: "image", media: up.id, mime: "image/jpeg", width, height, size: up.size, encryption });
 * // and where it arrives:
 * const bytes = await decryptFile(await client.download(content.media), content.encryption!);
 * ```
 *
 * @module
 */
import { E2eError } from "./e2e/errors.js";
import { decodeBase64, encodeBase64 } from "./e2e/texts.js";
function buf(bytes) {
    return new Uint8Array(bytes);
}
async function sha256Hex(bytes) {
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", buf(bytes)));
    return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}
/**
 * Encrypts a file before its upload: returns the bytes to upload and the {@link FileEncryption} to put in the
 * encrypted content. A fresh random key and nonce each time.
 */
export async function encryptFile(bytes) {
    return encryptFileWith(crypto.getRandomValues(new Uint8Array(32)), crypto.getRandomValues(new Uint8Array(12)), bytes);
}
/** {@link encryptFile} under a given key and nonce: for test vectors only. A key must never encrypt two files. */
export async function encryptFileWith(key, iv, bytes) {
    if (key.length !== 32 || iv.length !== 12)
        throw new E2eError("malformed", "a file key is 32 bytes and its nonce 12");
    const k = await crypto.subtle.importKey("raw", buf(key), "AES-GCM", false, ["encrypt"]);
    const ciphertext = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv: buf(iv) }, k, buf(bytes)));
    return { ciphertext, encryption: { key: encodeBase64(key), iv: encodeBase64(iv), sha256: await sha256Hex(ciphertext) } };
}
/**
 * Decrypts a downloaded file with the {@link FileEncryption} its decrypted message carried. The SHA-256 is checked
 * first, then the AES-GCM tag; either failing throws an {@link E2eError} (`malformed`): the file is not the one sent,
 * and nothing of it is returned.
 */
export async function decryptFile(ciphertext, encryption) {
    if ((await sha256Hex(ciphertext)) !== encryption.sha256.toLowerCase()) {
        throw new E2eError("malformed", "the file's SHA-256 is not the one its message names");
    }
    const key = decodeBase64(encryption.key);
    const iv = decodeBase64(encryption.iv);
    if (!key || key.length !== 32)
        throw new E2eError("malformed", "a file key is 32 bytes of unpadded base64");
    if (!iv || iv.length !== 12)
        throw new E2eError("malformed", "a file nonce is 12 bytes of unpadded base64");
    const k = await crypto.subtle.importKey("raw", buf(key), "AES-GCM", false, ["decrypt"]);
    try {
        return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: buf(iv) }, k, buf(ciphertext)));
    }
    catch {
        throw new E2eError("malformed", "the file does not decrypt with its key");
    }
}
