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
import type { BackupInfo, BackupKeyInfo } from "../protocol.js";
import { E2eError } from "./errors.js";
import type { Received } from "./olm.js";
import { type MachineState } from "./state.js";
/** The algorithm of backups made here (`createBackup`'s `algorithm`). */
export declare const BACKUP_V1 = "chatcore.backup.v1";
/** Keys per `putBackupKeys` (the server's bound). */
export declare const BACKUP_KEYS_PER_PUT = 1000;
/** Crockford base32 of `bytes`, most significant bit first, the last character padded with zero bits. */
export declare function base32(bytes: Uint8Array): string;
/** HKDF-SHA-256 of `ikm` to 32 bytes; an empty `salt` is RFC 5869's default (32 zero bytes). */
export declare function hkdf(salt: Uint8Array, ikm: Uint8Array, info: Uint8Array): Promise<Uint8Array>;
/** `nonce || ciphertext || tag` of `plain` under the 32-byte `key`. */
export declare function gcmSeal(key: Uint8Array, aad: Uint8Array, plain: Uint8Array): Promise<Uint8Array>;
/** Opens what {@link gcmSeal} made; `null` when it does not decrypt (wrong key, altered, too short). */
export declare function gcmOpen(key: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Promise<Uint8Array | null>;
/**
 * The secret that opens a key backup: 32 random bytes, shown to the user once as text ({@link RecoveryKey.toText})
 * and typed back on a new device ({@link RecoveryKey.parse}). Its bytes are not enumerable and never printed.
 */
export declare class RecoveryKey {
    #private;
    private constructor();
    /** A new random recovery key. */
    static generate(): RecoveryKey;
    /** The recovery key of these 32 bytes; a `recovery_key` {@link E2eError} for another length. */
    static fromBytes(bytes: Uint8Array): RecoveryKey;
    /**
     * Its text form: 55 characters of Crockford base32 in 11 groups of 5 separated by spaces, encoding
     * `0x01 || R || parity` (the parity byte is the XOR of the 33 before it).
     */
    toText(): string;
    /**
     * Reads a recovery key typed by the user: case, spaces and dashes do not matter, and Crockford's aliases are read
     * (`O` as 0, `I` and `L` as 1). A wrong length, a foreign character or a wrong parity is a `recovery_key`
     * {@link E2eError}, before anything is tried with it.
     */
    static parse(text: string): RecoveryKey;
    /** @internal HKDF-SHA-256 of R with no salt. */
    derive(info: Uint8Array): Promise<Uint8Array>;
    /** @internal The backup's X25519 secret key, and its public key's 32 bytes. */
    keyPair(): Promise<{
        secret: CryptoKey;
        public: Uint8Array;
    }>;
    /** The backup's Curve25519 public key (unpadded base64) that this recovery key opens. */
    publicKey(): Promise<string>;
    /** Never the key: `RecoveryKey(..)`. */
    toString(): string;
    /** Never the key: `"RecoveryKey(..)"` in JSON. */
    toJSON(): string;
}
/** The text the master key signs to vouch for a backup's public key. */
export declare function backupKeyText(user: string, publicKey: string): string;
/** The backup's description, whose MessagePack is `auth_data` (unpadded base64). */
interface AuthData {
    /** The backup's Curve25519 public key, unpadded base64. */
    public_key: string;
    /** The master key's signature of {@link backupKeyText}, unpadded base64. */
    signature: string;
    /** The master key's 32 secret bytes sealed with the sealing key: nonce, then AES-256-GCM ciphertext and tag. */
    sealed_master: Uint8Array;
}
/** Encodes `auth_data`: the named fields in the Rust struct's order. */
export declare function encodeAuthData(a: AuthData): string;
/** Decodes `auth_data`; `malformed` when it is not base64 of the expected map. */
export declare function decodeAuthData(authData: string): AuthData;
/**
 * Encrypts a key's plaintext to the backup's public key: `e`'s public key, then `nonce || ciphertext || tag` under
 * HKDF-SHA-256(ikm: X25519(e, backup), salt: e's public key || the backup's, info `chatcore-backup-key-v1`).
 */
export declare function sealEntry(backupPublic: Uint8Array, conv: string, session: string, plain: Uint8Array): Promise<Uint8Array>;
/** A backup to create on the server with {@link ChatClient.createBackup}. */
export interface NewBackup {
    /** {@link BACKUP_V1}. */
    algorithm: string;
    /** The signed public key and the sealed master key. */
    authData: string;
}
/**
 * Keys to upload with {@link ChatClient.putBackupKeys}, then to give to {@link Machine.markBackedUp} once the
 * server took them.
 */
export interface BackupBatch {
    /** The backup version they are for. */
    readonly version: string;
    /** The encrypted keys, at most the limit asked for. */
    readonly keys: BackupKeyInfo[];
    /** @internal The sessions (by inbound key) and first indices that the batch backs up. */
    readonly marks: ReadonlyArray<readonly [string, number]>;
}
export declare function createBackup(s: MachineState, recovery: RecoveryKey): Promise<NewBackup>;
export declare function adoptBackup(s: MachineState, backup: BackupInfo): void;
export declare function keysNotBackedUp(s: MachineState): number;
export declare function backupBatch(s: MachineState, limit: number): Promise<BackupBatch | null>;
export declare function markBackedUp(s: MachineState, batch: BackupBatch): void;
export declare function restoreBackupKeys(s: MachineState, recovery: RecoveryKey, backup: BackupInfo, keys: BackupKeyInfo[]): Promise<({
    ok: Received;
} | {
    error: E2eError;
})[]>;
export declare function unsealMasterKey(s: MachineState, recovery: RecoveryKey, backup: BackupInfo): Promise<void>;
export declare function signOwnDevice(s: MachineState): string;
export {};
