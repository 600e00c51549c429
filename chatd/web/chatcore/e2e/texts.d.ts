/**
 * The texts that keys sign (the same bytes as `chatcore::e2e` in Rust and
 * PROTOCOL.md "Key directory"), the algorithm names, and the unpadded
 * base64 of the wire.
 *
 * @module
 */
/** The algorithm of Olm devices (Ed25519 signing, Curve25519 agreement) and of to-device payloads. */
export declare const OLM_V1 = "olm.v1";
/** The algorithm of encrypted conversation messages. */
export declare const MEGOLM_V1 = "megolm.v1";
/** The text a device signs to vouch for its identity keys. */
export declare function deviceKeysText(user: string, device: string, algorithm: string, signingKey: string, agreementKey: string): string;
/** The text a device signs to vouch for one of its one-time (or fallback) keys. */
export declare function oneTimeKeyText(user: string, device: string, id: string, key: string): string;
/** The text a user's master key signs to claim its owner (its self-signature). */
export declare function masterKeyText(user: string, key: string): string;
/** The text a user's master key signs to vouch for one of the user's devices. */
export declare function deviceSignatureText(user: string, device: string, signingKey: string, agreementKey: string): string;
/** UTF-8 bytes of a text. */
export declare function bytesOf(text: string): Uint8Array;
/** Unpadded standard base64 (the wire's form of payloads, ciphertexts and keys). */
export declare function encodeBase64(bytes: Uint8Array): string;
/** Decodes unpadded standard base64; `null` when it is not (padding, other characters, a dangling bit). */
export declare function decodeBase64(text: string): Uint8Array | null;
