/**
 * The device's own keys: its identity (Ed25519 signing, Curve25519
 * agreement) and the one-time and fallback keys others claim to open an
 * Olm channel to it, each signed over the texts of texts.ts.
 *
 * @module
 */
import type { IdentityKeys, KeyCounts, MasterKeyInfo, DeviceSignature, SignedKey } from "../protocol.js";
import type { MachineState } from "./state.js";
/**
 * How many one-time keys the device keeps on the server. vodozemac keeps the
 * private halves of a few more, so keys claimed but not yet used survive a top-up.
 */
export declare const ONE_TIME_KEY_TARGET = 50;
/** What to send in an `upload_keys` request ({@link ChatClient.uploadKeys} takes it as is). */
export interface KeyUpload {
    /** The identity keys, until they were published once. */
    identity?: IdentityKeys;
    /** New signed one-time keys. */
    oneTimeKeys: SignedKey[];
    /** A new signed fallback key. */
    fallbackKey?: SignedKey;
    /** The user's master key (the first device creates it). */
    masterKey?: MasterKeyInfo;
    /** The master key's signatures of devices of the user. */
    signatures: DeviceSignature[];
}
/** Whether there is nothing to upload. */
export declare function isEmptyUpload(u: KeyUpload): boolean;
export declare function identityKeys(s: MachineState): IdentityKeys;
export declare function keysToUpload(s: MachineState, counts: KeyCounts): KeyUpload;
export declare function markKeysPublished(s: MachineState): void;
