/**
 * The end-to-end state machine of one device, a port of the Rust client's
 * `chatcore_client::e2e::Machine`: its account, the devices it tracks, its
 * Olm and Megolm sessions. It never touches the network nor reads the clock:
 * the application feeds it what the server sends and sends what it returns;
 * every call that depends on time takes `now` (ms since the epoch).
 *
 * How an app drives it (the {@link SecureChat} does all of this):
 * 1. {@link Machine.create} (or {@link Machine.fromBytes}); upload
 *    {@link Machine.keysToUpload}, then {@link Machine.markKeysPublished}.
 *    The user's first device calls {@link Machine.createMasterKey}.
 * 2. Feed each key query answer to {@link Machine.receiveDeviceKeys}.
 * 3. To send: {@link Machine.encrypt} with the member devices
 *    ({@link Machine.devicesOf}); on `needs_claims`, claim keys, give them to
 *    {@link Machine.receiveClaimedKeys} and call again. Send the to-device
 *    messages first, then the content.
 * 4. Give each incoming to-device message to {@link Machine.receiveToDevice}.
 * 5. Decrypt with {@link Machine.decrypt}.
 * 6. After every change, persist {@link Machine.toBytes}.
 * 7. Key backup (docs/E2E.md, "Key backup"): on a device with the master key,
 *    {@link Machine.createBackup} with a new {@link RecoveryKey}, create it on
 *    the server, {@link Machine.adoptBackup} the reply and show
 *    {@link RecoveryKey.toText} once. Every device adopts the server's current
 *    backup (its signature is checked) and uploads {@link Machine.backupBatch}
 *    after saving the state, then calls {@link Machine.markBackedUp}. A new
 *    device restores with {@link RecoveryKey.parse},
 *    {@link Machine.restoreBackupKeys} per page of keys,
 *    {@link Machine.unsealMasterKey} and {@link Machine.signOwnDevice}.
 *
 * @module
 */
import type { BackupInfo, BackupKeyInfo, ClaimedKey, DeviceKeysInfo, DeviceRef, IdentityKeys, KeyCounts } from "../protocol.js";
import { type Vodozemac } from "../vodozemac.js";
import * as account from "./account.js";
import type { BackupBatch, NewBackup, RecoveryKey } from "./backup.js";
import * as devices from "./devices.js";
import { E2eError } from "./errors.js";
import * as megolm from "./megolm.js";
import * as olm from "./olm.js";
import { MachineState, type ToDeviceIn } from "./state.js";
import * as store from "./store.js";
/** The end-to-end state of one device. See the module documentation. */
export declare class Machine {
    /** @internal */
    readonly state: MachineState;
    private freed;
    private constructor();
    /** A new device of `user` with fresh identity keys (loads vodozemac if need be). */
    static create(user: string, device: string): Promise<Machine>;
    /** As {@link Machine.create}, with vodozemac already loaded. */
    static createWith(vz: Vodozemac, user: string, device: string): Machine;
    /**
     * The state written by {@link Machine.toBytes}. A wrong key or altered bytes give a `store_decrypt`
     * {@link E2eError}; a state from a newer version `store_too_new`; bytes that decrypt but do not load `store_format`.
     */
    static fromBytes(bytes: Uint8Array, key: CryptoKey): Promise<Machine>;
    /** The whole state, encrypted with `key` (AES-GCM). Persist it after every call that changed the state. */
    toBytes(key: CryptoKey): Promise<Uint8Array>;
    /** The state, not yet encrypted, as it is now: for {@link seal} later, so that saves keep the order of changes. */
    snapshot(): Uint8Array;
    /** Frees the WebAssembly memory of the state; the machine is unusable afterwards. */
    free(): void;
    private alive;
    /** The user this device belongs to. */
    get user(): string;
    /** This device. */
    get device(): string;
    /** This device's identity keys, self-signed. */
    identityKeys(): IdentityKeys;
    /**
     * The keys to upload so that the server holds 50 one-time keys and an unused fallback key, given its `counts`.
     * Calling again before {@link Machine.markKeysPublished} returns the same keys (plus any still missing).
     */
    keysToUpload(counts: KeyCounts): account.KeyUpload;
    /** The server accepted the last {@link Machine.keysToUpload}. */
    markKeysPublished(): void;
    /** Takes in the directory's answer about one user: checks every signature, updates the tracked devices, returns what changed. */
    receiveDeviceKeys(keys: devices.UserKeys): devices.DeviceChange[];
    /** The tracked devices of `users` (this device excepted): a conversation's member devices, for {@link Machine.encrypt}. */
    devicesOf(users: string[]): DeviceRef[];
    /** Whether the user's master key signed the device. */
    deviceTrust(user: string, device: string): devices.DeviceTrust;
    /** The pinned master key of a user (base64), if known. */
    masterKey(user: string): string | undefined;
    /** Whether this device holds the user's master private key. */
    hasMasterKey(): boolean;
    /** Creates the user's master key on the user's first device and signs this device with it. Refused when the user has one. */
    createMasterKey(): devices.MasterKeyUpload;
    /**
     * The master key this device holds, with its self-signature and this device's signature, again: to upload when
     * the upload after {@link Machine.createMasterKey} did not reach the server (the directory shows no master key).
     */
    masterKeyUpload(): devices.MasterKeyUpload;
    /** Signs another device of the user with the master key (after the user confirmed it); returns the signature to upload. */
    signDevice(device: DeviceKeysInfo): string;
    /** Those of `devices` without an Olm session with this one whose claim did not fail recently. */
    needsClaims(devs: DeviceRef[], now: number): DeviceRef[];
    /** Takes in the server's answer to a claim of `requested`: checks each key's signature, opens Olm sessions; returns the devices that got none and why. */
    receiveClaimedKeys(requested: DeviceRef[], claimed: ClaimedKey[], now: number): {
        device: DeviceRef;
        error: E2eError;
    }[];
    /** Encrypts an application payload for one device; it arrives as a `custom` {@link olm.Received}. */
    encryptToDevice(target: DeviceRef, kind: string, data: Uint8Array, now: number): olm.Outcome<olm.ToDeviceOut>;
    /**
     * Processes an incoming to-device message once per (sender device, id): a redelivery is `duplicate`. One that
     * fails (forged, misbound, undecryptable) throws an {@link E2eError} and is not processed again either.
     */
    receiveToDevice(message: ToDeviceIn, now: number): olm.Received;
    /** Processes again the messages kept as `deferred` whose senders' keys are now known. */
    retryDeferred(now: number): ({
        ok: olm.Received;
    } | {
        error: E2eError;
    })[];
    /** Sends the master private key to another own device that the master key signed. */
    shareMasterKey(device: string, now: number): olm.Outcome<olm.ToDeviceOut>;
    /**
     * Encrypts `content` for `conv` whose member devices are `members` (all devices of all members, this user's other
     * devices included). Rotates the session when a device it was shared with is not among `members`, after 100
     * messages or a week; returns room keys for the devices that lack the session, or first the devices to claim for.
     */
    encrypt(conv: string, members: DeviceRef[], content: Uint8Array, now: number): olm.Outcome<megolm.Encrypted>;
    /**
     * The server took the room keys of `conv`'s `session` that {@link Machine.encrypt} made for `devices` (its answer
     * to the `send_to_device` came): they are not sent again. Until then every later message sends them again, so that
     * a key lost with a dead link (or a reload before the answer) is made good by the next attempt.
     */
    confirmShared(conv: string, session: string, devices: DeviceRef[]): void;
    /** The members of `conv` are now `members`: when a device that has the current session is not among them, the next message uses a new one. Returns whether. */
    updateMembers(conv: string, members: DeviceRef[]): boolean;
    /**
     * Every conversation key this device holds, each from its first known index: to hand to a later device of the same
     * user in the same application (a browser's next sign-in), never to send anywhere in clear.
     */
    exportKeys(): megolm.ExportedRoomKey[];
    /**
     * Takes keys from {@link Machine.exportKeys} of an earlier device of this user: each becomes an inbound session marked
     * forwarded (a key already held is kept, or replaced by one reaching further back). One result per key.
     */
    importKeys(keys: megolm.ExportedRoomKey[]): ({
        ok: olm.Received;
    } | {
        error: E2eError;
    })[];
    /** The next message to `conv` uses a new session. */
    rotate(conv: string): void;
    /**
     * Decrypts the content of message `messageId` that `sender` sent to `conv`. The session's key must have come over
     * Olm from that very device (or forwarded by an own verified device), the plaintext must name `conv`, and an index
     * seen under another message id is refused as `replayed`. Decrypting the same message again is fine.
     */
    decrypt(conv: string, messageId: string, sender: string, content: megolm.EncryptedContent): megolm.Decrypted;
    /** Forwards the conversation keys held here (of `convs`, or all) to another own device that the master key signed. */
    forwardKeys(device: string, convs: string[] | undefined, now: number): olm.Outcome<olm.ToDeviceOut[]>;
    /**
     * Describes a new backup opened by `recovery`: its public key signed by the user's master key, and the master key
     * sealed with the recovery key. Create it on the server ({@link ChatClient.createBackup}), then
     * {@link Machine.adoptBackup} the reply. Needs the master key here (`no_master_key` otherwise).
     */
    createBackup(recovery: RecoveryKey): Promise<NewBackup>;
    /**
     * Follows `info` (the server's current backup): from now on {@link Machine.backupBatch} encrypts keys to it.
     * Refused (`bad_signature`) unless the user's pinned master key signed it: a server that swapped the key would read
     * every later key. Adopting another version starts its key list afresh.
     */
    adoptBackup(info: BackupInfo): void;
    /** The version of the backup this device adds its keys to, if it follows one. */
    backupVersion(): string | undefined;
    /** Stops adding keys to the backup (it is gone from the server). */
    forgetBackup(): void;
    /** How many conversation keys are not yet in the adopted backup (0 without one). */
    keysNotBackedUp(): number;
    /**
     * Up to `limit` conversation keys not yet in the adopted backup, encrypted to it; `null` when there is none (or no
     * backup). Upload them with {@link ChatClient.putBackupKeys}, then {@link Machine.markBackedUp}.
     */
    backupBatch(limit?: number): Promise<BackupBatch | null>;
    /** The server took `batch`: its keys count as backed up (unless the backup changed meanwhile). */
    markBackedUp(batch: BackupBatch): void;
    /**
     * Imports keys of `info` (pages of {@link ChatClient.getBackupKeys}) with the recovery key. Throws as a whole when
     * the recovery key does not open the backup (`wrong_recovery_key`) or the user's master key did not sign it
     * (`bad_signature`); then one result per key, in order: a key that does not decrypt for its conversation and
     * session, or whose session is another, is refused alone. Imported keys count as not from their sender (like
     * forwarded ones); on a `room_key` with `waiting`, decrypt those messages again.
     */
    restoreBackupKeys(recovery: RecoveryKey, info: BackupInfo, keys: BackupKeyInfo[]): Promise<({
        ok: olm.Received;
    } | {
        error: E2eError;
    })[]>;
    /**
     * Takes the master key sealed in `info` with the recovery key, so that this device can sign itself
     * ({@link Machine.signOwnDevice}) and the user's later devices. Accepted only when it is the user's pinned master
     * key (`refused` otherwise).
     */
    unsealMasterKey(recovery: RecoveryKey, info: BackupInfo): Promise<void>;
    /** Signs this very device with the master key held here (after {@link Machine.unsealMasterKey}): the signature to upload. */
    signOwnDevice(): string;
    /** The safety number of this user and `other`, from the pinned master keys; fails while either is unknown. */
    safetyNumber(other: string): Promise<string>;
}
/** Encrypts a {@link Machine.snapshot} as {@link Machine.toBytes} does. */
export declare const seal: typeof store.seal;
