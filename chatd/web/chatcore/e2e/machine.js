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
import { loadVodozemac } from "../vodozemac.js";
import * as account from "./account.js";
import * as backup from "./backup.js";
import * as devices from "./devices.js";
import { E2eError } from "./errors.js";
import * as megolm from "./megolm.js";
import * as olm from "./olm.js";
import { safetyNumber } from "./safety.js";
import { MachineState } from "./state.js";
import * as store from "./store.js";
/** The end-to-end state of one device. See the module documentation. */
export class Machine {
    /** @internal */
    state;
    freed = false;
    constructor(state) {
        this.state = state;
    }
    /** A new device of `user` with fresh identity keys (loads vodozemac if need be). */
    static async create(user, device) {
        const vz = await loadVodozemac();
        return Machine.createWith(vz, user, device);
    }
    /** As {@link Machine.create}, with vodozemac already loaded. */
    static createWith(vz, user, device) {
        return new Machine(new MachineState(vz, user, device, new vz.Account(), false));
    }
    /**
     * The state written by {@link Machine.toBytes}. A wrong key or altered bytes give a `store_decrypt`
     * {@link E2eError}; a state from a newer version `store_too_new`; bytes that decrypt but do not load `store_format`.
     */
    static async fromBytes(bytes, key) {
        const vz = await loadVodozemac();
        return new Machine(store.restore(vz, await store.open(bytes, key)));
    }
    /** The whole state, encrypted with `key` (AES-GCM). Persist it after every call that changed the state. */
    async toBytes(key) {
        return store.seal(this.snapshot(), key);
    }
    /** The state, not yet encrypted, as it is now: for {@link seal} later, so that saves keep the order of changes. */
    snapshot() {
        this.alive();
        return store.snapshot(this.state);
    }
    /** Frees the WebAssembly memory of the state; the machine is unusable afterwards. */
    free() {
        if (!this.freed)
            store.freeState(this.state);
        this.freed = true;
    }
    alive() {
        if (this.freed)
            throw new E2eError("refused", "refused: the machine was freed");
        return this.state;
    }
    /** The user this device belongs to. */
    get user() {
        return this.state.user;
    }
    /** This device. */
    get device() {
        return this.state.device;
    }
    // -- account --
    /** This device's identity keys, self-signed. */
    identityKeys() {
        return account.identityKeys(this.alive());
    }
    /**
     * The keys to upload so that the server holds 50 one-time keys and an unused fallback key, given its `counts`.
     * Calling again before {@link Machine.markKeysPublished} returns the same keys (plus any still missing).
     */
    keysToUpload(counts) {
        return account.keysToUpload(this.alive(), counts);
    }
    /** The server accepted the last {@link Machine.keysToUpload}. */
    markKeysPublished() {
        account.markKeysPublished(this.alive());
    }
    // -- devices --
    /** Takes in the directory's answer about one user: checks every signature, updates the tracked devices, returns what changed. */
    receiveDeviceKeys(keys) {
        return devices.receiveDeviceKeys(this.alive(), keys);
    }
    /** The tracked devices of `users` (this device excepted): a conversation's member devices, for {@link Machine.encrypt}. */
    devicesOf(users) {
        return devices.devicesOf(this.alive(), users);
    }
    /** Whether the user's master key signed the device. */
    deviceTrust(user, device) {
        return devices.deviceTrust(this.alive(), user, device);
    }
    /** The pinned master key of a user (base64), if known. */
    masterKey(user) {
        return devices.masterKeyOf(this.alive(), user);
    }
    /** Whether this device holds the user's master private key. */
    hasMasterKey() {
        return this.alive().masterSecret !== null;
    }
    /** Creates the user's master key on the user's first device and signs this device with it. Refused when the user has one. */
    createMasterKey() {
        return devices.createMasterKey(this.alive());
    }
    /**
     * The master key this device holds, with its self-signature and this device's signature, again: to upload when
     * the upload after {@link Machine.createMasterKey} did not reach the server (the directory shows no master key).
     */
    masterKeyUpload() {
        return devices.masterKeyUpload(this.alive());
    }
    /** Signs another device of the user with the master key (after the user confirmed it); returns the signature to upload. */
    signDevice(device) {
        return devices.signDevice(this.alive(), device);
    }
    // -- olm --
    /** Those of `devices` without an Olm session with this one whose claim did not fail recently. */
    needsClaims(devs, now) {
        return olm.needsClaims(this.alive(), devs, now);
    }
    /** Takes in the server's answer to a claim of `requested`: checks each key's signature, opens Olm sessions; returns the devices that got none and why. */
    receiveClaimedKeys(requested, claimed, now) {
        return olm.receiveClaimedKeys(this.alive(), requested, claimed, now);
    }
    /** Encrypts an application payload for one device; it arrives as a `custom` {@link olm.Received}. */
    encryptToDevice(target, kind, data, now) {
        return olm.encryptToDevice(this.alive(), target, kind, data, now);
    }
    /**
     * Processes an incoming to-device message once per (sender device, id): a redelivery is `duplicate`. One that
     * fails (forged, misbound, undecryptable) throws an {@link E2eError} and is not processed again either.
     */
    receiveToDevice(message, now) {
        return olm.receiveToDevice(this.alive(), message, now);
    }
    /** Processes again the messages kept as `deferred` whose senders' keys are now known. */
    retryDeferred(now) {
        return olm.retryDeferred(this.alive(), now);
    }
    /** Sends the master private key to another own device that the master key signed. */
    shareMasterKey(device, now) {
        return olm.shareMasterKey(this.alive(), device, now);
    }
    // -- megolm --
    /**
     * Encrypts `content` for `conv` whose member devices are `members` (all devices of all members, this user's other
     * devices included). Rotates the session when a device it was shared with is not among `members`, after 100
     * messages or a week; returns room keys for the devices that lack the session, or first the devices to claim for.
     */
    encrypt(conv, members, content, now) {
        return megolm.encrypt(this.alive(), conv, members, content, now);
    }
    /**
     * The server took the room keys of `conv`'s `session` that {@link Machine.encrypt} made for `devices` (its answer
     * to the `send_to_device` came): they are not sent again. Until then every later message sends them again, so that
     * a key lost with a dead link (or a reload before the answer) is made good by the next attempt.
     */
    confirmShared(conv, session, devices) {
        megolm.confirmShared(this.alive(), conv, session, devices);
    }
    /** The members of `conv` are now `members`: when a device that has the current session is not among them, the next message uses a new one. Returns whether. */
    updateMembers(conv, members) {
        return megolm.updateMembers(this.alive(), conv, members);
    }
    /**
     * Every conversation key this device holds, each from its first known index: to hand to a later device of the same
     * user in the same application (a browser's next sign-in), never to send anywhere in clear.
     */
    exportKeys() {
        return megolm.exportKeys(this.alive());
    }
    /**
     * Takes keys from {@link Machine.exportKeys} of an earlier device of this user: each becomes an inbound session marked
     * forwarded (a key already held is kept, or replaced by one reaching further back). One result per key.
     */
    importKeys(keys) {
        return megolm.importKeys(this.alive(), keys);
    }
    /** The next message to `conv` uses a new session. */
    rotate(conv) {
        megolm.rotate(this.alive(), conv);
    }
    /**
     * Decrypts the content of message `messageId` that `sender` sent to `conv`. The session's key must have come over
     * Olm from that very device (or forwarded by an own verified device), the plaintext must name `conv`, and an index
     * seen under another message id is refused as `replayed`. Decrypting the same message again is fine.
     */
    decrypt(conv, messageId, sender, content) {
        return megolm.decrypt(this.alive(), conv, messageId, sender, content);
    }
    /** Forwards the conversation keys held here (of `convs`, or all) to another own device that the master key signed. */
    forwardKeys(device, convs, now) {
        return megolm.forwardKeys(this.alive(), device, convs, now);
    }
    // -- key backup --
    /**
     * Describes a new backup opened by `recovery`: its public key signed by the user's master key, and the master key
     * sealed with the recovery key. Create it on the server ({@link ChatClient.createBackup}), then
     * {@link Machine.adoptBackup} the reply. Needs the master key here (`no_master_key` otherwise).
     */
    createBackup(recovery) {
        return backup.createBackup(this.alive(), recovery);
    }
    /**
     * Follows `info` (the server's current backup): from now on {@link Machine.backupBatch} encrypts keys to it.
     * Refused (`bad_signature`) unless the user's pinned master key signed it: a server that swapped the key would read
     * every later key. Adopting another version starts its key list afresh.
     */
    adoptBackup(info) {
        backup.adoptBackup(this.alive(), info);
    }
    /** The version of the backup this device adds its keys to, if it follows one. */
    backupVersion() {
        return this.alive().backup?.version;
    }
    /** Stops adding keys to the backup (it is gone from the server). */
    forgetBackup() {
        this.alive().backup = null;
    }
    /** How many conversation keys are not yet in the adopted backup (0 without one). */
    keysNotBackedUp() {
        return backup.keysNotBackedUp(this.alive());
    }
    /**
     * Up to `limit` conversation keys not yet in the adopted backup, encrypted to it; `null` when there is none (or no
     * backup). Upload them with {@link ChatClient.putBackupKeys}, then {@link Machine.markBackedUp}.
     */
    backupBatch(limit = backup.BACKUP_KEYS_PER_PUT) {
        return backup.backupBatch(this.alive(), limit);
    }
    /** The server took `batch`: its keys count as backed up (unless the backup changed meanwhile). */
    markBackedUp(batch) {
        backup.markBackedUp(this.alive(), batch);
    }
    /**
     * Imports keys of `info` (pages of {@link ChatClient.getBackupKeys}) with the recovery key. Throws as a whole when
     * the recovery key does not open the backup (`wrong_recovery_key`) or the user's master key did not sign it
     * (`bad_signature`); then one result per key, in order: a key that does not decrypt for its conversation and
     * session, or whose session is another, is refused alone. Imported keys count as not from their sender (like
     * forwarded ones); on a `room_key` with `waiting`, decrypt those messages again.
     */
    restoreBackupKeys(recovery, info, keys) {
        return backup.restoreBackupKeys(this.alive(), recovery, info, keys);
    }
    /**
     * Takes the master key sealed in `info` with the recovery key, so that this device can sign itself
     * ({@link Machine.signOwnDevice}) and the user's later devices. Accepted only when it is the user's pinned master
     * key (`refused` otherwise).
     */
    unsealMasterKey(recovery, info) {
        return backup.unsealMasterKey(this.alive(), recovery, info);
    }
    /** Signs this very device with the master key held here (after {@link Machine.unsealMasterKey}): the signature to upload. */
    signOwnDevice() {
        return backup.signOwnDevice(this.alive());
    }
    // -- safety --
    /** The safety number of this user and `other`, from the pinned master keys; fails while either is unknown. */
    async safetyNumber(other) {
        const missing = (u) => new E2eError("refused", `refused: the master key of ${u} is not known yet`);
        const mine = this.masterKey(this.user);
        if (mine === undefined)
            throw missing(this.user);
        const theirs = this.masterKey(other);
        if (theirs === undefined)
            throw missing(other);
        return safetyNumber(this.user, mine, other, theirs);
    }
}
/** Encrypts a {@link Machine.snapshot} as {@link Machine.toBytes} does. */
export const seal = store.seal;
