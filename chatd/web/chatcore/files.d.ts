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
import type { FileEncryption } from "./protocol.js";
/**
 * Encrypts a file before its upload: returns the bytes to upload and the {@link FileEncryption} to put in the
 * encrypted content. A fresh random key and nonce each time.
 */
export declare function encryptFile(bytes: Uint8Array): Promise<{
    ciphertext: Uint8Array;
    encryption: FileEncryption;
}>;
/** {@link encryptFile} under a given key and nonce: for test vectors only. A key must never encrypt two files. */
export declare function encryptFileWith(key: Uint8Array, iv: Uint8Array, bytes: Uint8Array): Promise<{
    ciphertext: Uint8Array;
    encryption: FileEncryption;
}>;
/**
 * Decrypts a downloaded file with the {@link FileEncryption} its decrypted message carried. The SHA-256 is checked
 * first, then the AES-GCM tag; either failing throws an {@link E2eError} (`malformed`): the file is not the one sent,
 * and nothing of it is returned.
 */
export declare function decryptFile(ciphertext: Uint8Array, encryption: FileEncryption): Promise<Uint8Array>;
