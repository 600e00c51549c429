/**
 * An end-to-end encrypted client: a {@link ChatClient} and a {@link Machine}
 * wired together, a port of the Rust client's `SecureClient`, so that an
 * application sends and reads encrypted conversations without driving the
 * machine by hand.
 *
 * - {@link SecureChat.start} opens the device's saved state (or creates it),
 *   publishes the device's keys, and on the user's first device creates the
 *   user's master key.
 * - Pushes are processed in order: `to_device` payloads go through the
 *   machine and are acknowledged only once processed and saved; `key_counts`
 *   tops the one-time keys up; `devices_changed` refreshes that user's
 *   devices; messages come out decrypted (`message` event). A message whose
 *   key has not arrived yet has a `waiting` body; when the key comes, a
 *   `decrypted` event brings its text.
 * - {@link SecureChat.sendEncrypted} queries the members' devices, claims
 *   one-time keys where an Olm channel is missing, sends the conversation key
 *   to the devices that lack it, then the ciphertext. A removed member or a
 *   gone device makes the next message use a new key. Nothing is ever sent in
 *   clear: a conversation that is not encrypted is refused.
 * - {@link SecureChat.verifyDevice} signs the user's new device with the
 *   master key, gives it the master key and forwards it the conversation keys
 *   for the history.
 * - {@link SecureChat.enableBackup} turns the encrypted key backup on
 *   (docs/E2E.md, "Key backup") and returns the recovery key to show the user
 *   once. Every device of the user then backs up the conversation keys it
 *   makes or receives, once they are saved, at most 1,000 per request (a
 *   device follows the current backup from {@link SecureChat.start} on, after
 *   checking that the user's master key signed it).
 *   {@link SecureChat.restoreBackup} brings the history back on a new device
 *   with the recovery key, even when no other device of the user is online,
 *   and signs the device with the master key sealed in the backup.
 *
 * Multi-step operations (sending, processing to-device payloads, topping up,
 * verifying) run one at a time, as the Rust client's `op` lock does. The
 * state is saved after every change, in order; whatever leaves the device
 * because of a change (an upload, an acknowledgement, a ciphertext) waits
 * until the change is saved. Failures not tied to a call (a refused payload,
 * a failed top-up or save) are `error` events, never silent.
 *
 * @module
 */
import type { ChatClient, SendOptions, SendResult } from "../client.js";
import type { CallSealer } from "../call.js";
import type { DeviceRef, MediaContent, Message, SealedSignal } from "../protocol.js";
import type { DeviceChange, DeviceTrust } from "./devices.js";
import { type E2eErrorCode } from "./errors.js";
import { Machine } from "./machine.js";
import { type SessionRef } from "./state.js";
import type { MachineStore } from "./store.js";
/** What {@link SecureChat.restoreBackup} did. */
export interface Restored {
    /** Conversation keys imported from the backup. */
    imported: number;
    /** Keys refused (tampered, moved to another conversation or session, malformed); each is an `error` event. */
    refused: number;
    /** Whether the master key sealed in the backup was unsealed and signed this device (it then shows as verified to everyone). */
    verified: boolean;
}
/** How {@link SecureChat} keeps its state. */
export interface SecureChatOptions {
    /** Where the encrypted state is saved. */
    store: MachineStore;
    /**
     * The AES-GCM key that encrypts the state at rest; kept by the application, never beside the state. A promise
     * (e.g. a key still being read from IndexedDB) lets the {@link SecureChat} be made at once, so that no push is
     * missed; a rejected one fails {@link SecureChat.start}.
     */
    key: CryptoKey | Promise<CryptoKey>;
    /** The clock (ms since the epoch); `Date.now` by default. */
    now?: () => number;
}
/** What a message says, as far as this device can read it. */
export type SecureBody = 
/** Not encrypted: the content is in the message as the server has it (plain text, or a notice). */
{
    type: "clear";
}
/** Decrypted: the text, the sending device, its trust, and whether the key came from another own device (history). */
 | {
    type: "text";
    text: string;
    sender: DeviceRef;
    trust: DeviceTrust;
    forwarded: boolean;
}
/**
 * Decrypted: a photo, file or voice message, its file encrypted ({@link decryptFile} with `content.encryption`)
 * and listed in the envelope.
 */
 | {
    type: "media";
    content: MediaContent;
    sender: DeviceRef;
    trust: DeviceTrust;
    forwarded: boolean;
}
/** Its key has not arrived yet: a `decrypted` event follows when it does. */
 | {
    type: "waiting";
    session: SessionRef;
}
/** It cannot be decrypted here, and never will be (sent before this device got the key, forged, replayed, malformed). */
 | {
    type: "undecryptable";
    reason: string;
    code?: E2eErrorCode;
};
/** A message with what this device reads of it. */
export interface SecureMessage {
    /** The message as the server stored it. */
    message: Message;
    /** Its content for this device. */
    body: SecureBody;
    /** The text: decrypted, or the plain text of an unencrypted message. */
    text?: string;
}
/** The events of {@link SecureChat}. */
export interface SecureChatEvents {
    /** A new message (pushed or synced), decrypted if it was encrypted. */
    message: SecureMessage;
    /** A message that was `waiting` became readable (or is now known to be undecryptable). */
    decrypted: SecureMessage;
    /** The devices or master key of tracked users changed: show it ("Bob added a new device", "Bob's safety number changed"). */
    devices: DeviceChange[];
    /** Another own device gave this one the user's master key: it can verify the user's later devices now. */
    masterkey: {
        from: DeviceRef;
    };
    /** An application payload sent over Olm. */
    custom: {
        from: DeviceRef;
        kind: string;
        data: Uint8Array;
    };
    /** A failure not tied to a call: a refused to-device payload, a failed top-up, save or acknowledgement. */
    error: {
        error: Error;
        context: string;
    };
}
/** See the module documentation. */
export declare class SecureChat {
    /** The connection, for everything that is not end-to-end specific (conversations, members, plain requests). */
    readonly client: ChatClient;
    private readonly options;
    private readonly key;
    private readonly now;
    private machineValue;
    private started;
    /** Pushes that arrived before {@link start} finished, replayed after it. */
    private early;
    /** One multi-step operation at a time. */
    private op;
    /** Pushes in the order they came. */
    private pushes;
    /** Saves in the order of the changes. */
    private saving;
    /** A {@link SecureChat.persistLater} save is queued for the end of this turn. */
    private laterQueued;
    private readonly waiting;
    /** A throwing handler stops neither the others nor the processing: reported as an `error` event (unless it is one). */
    private readonly events;
    private readonly unsubscribe;
    /**
     * Wraps `client` and starts listening to its pushes at once (they wait until {@link start} finished), so that
     * nothing pushed right after sign-in is missed: make it before signing in, then call {@link start}.
     */
    constructor(client: ChatClient, options: SecureChatOptions);
    /** Makes a {@link SecureChat} for a client that is signed in already and starts it. */
    static start(client: ChatClient, options: SecureChatOptions): Promise<SecureChat>;
    /**
     * Opens the device's saved state, or creates it when there is none or it belongs to another device (a login is a
     * new device); publishes the device's keys; on the user's first device, creates the master key. The client must
     * be signed in. A saved state that does not open (wrong key, tampered) is an error: nothing is overwritten.
     */
    start(): Promise<void>;
    private run;
    /** Stops listening to the client's pushes and frees the machine's memory (the saved state stays). */
    close(): void;
    /** The machine, for what this class does not wrap (trust, master keys). Throws before {@link start}. */
    get machine(): Machine;
    /** The user. */
    get user(): string;
    /** This device. */
    get device(): string;
    /** Calls `handler` on every `type` event; returns a function that stops it. */
    on<K extends keyof SecureChatEvents>(type: K, handler: (payload: SecureChatEvents[K]) => void): () => void;
    private emit;
    private fail;
    /** Runs pushes one after the other, in order; before `start` finished they wait. */
    private push;
    /** Runs `f` when no other operation runs. */
    private serial;
    /** Queues the state to be saved (snapshot taken now, so saves keep the order of changes); resolves once written. */
    private persist;
    /**
     * Queues a save nobody waits for, taken once the current turn is done: a page of history decrypts many messages,
     * and one snapshot after them saves what each would have (a failure is an `error` event).
     */
    private persistLater;
    private notify;
    /** Uploads what the machine has to publish given `counts`; with `ownFirst`, queries the own user and creates the master key if the user has none. */
    private publishKeys;
    /** The directory's answer about `users` (through `conv` when given), one {@link UserKeys} per user. */
    private queryUserKeys;
    /** Queries `users` and feeds the answer to the machine; the changes become a `devices` event. */
    private refreshKeys;
    /** Runs `f` until it needs no claims: claims what it asks for (through `conv`), gives it to the machine, tries again. */
    private withClaims;
    /**
     * Sends to-device messages in as many frames as they need; `conv` lets the server reach its members. Resolves
     * with the messages the server took (those it answered `undelivered` for are reported and left out).
     */
    private sendOut;
    /**
     * Encrypts `text` for the encrypted conversation `conv` and sends it: the members' devices are queried (a removed
     * member or a gone device rotates the key), keys go first to the devices that lack them, then the message. Every
     * device of every member reads it, the user's other devices included. Refused (nothing sent) when `conv` is not
     * encrypted. `clientId` as in {@link ChatClient.send}: a message sent again under the same id (after a reload)
     * is encrypted anew, with the keys of then, and the server stores it once. `rel` and `mentions` (a reply, edit or
     * reaction; see {@link ChatClient.send}) travel in the clear beside the ciphertext: the server routes by them.
     */
    sendEncrypted(conv: string, text: string, options?: SendOptions): Promise<SendResult>;
    /**
     * Sends a photo, file or voice message to the encrypted conversation `conv`: `content` names a file encrypted with
     * {@link encryptFile} and uploaded, with its `encryption`. The whole content, key included, is ciphertext; the
     * envelope's `media` lists the file in the clear (the server keeps it by that list). `options` as for
     * {@link SecureChat.sendEncrypted} (a reply's `rel`); their `media` is replaced by the content's file.
     */
    sendMedia(conv: string, content: MediaContent, options?: SendOptions): Promise<SendResult>;
    /** Encrypts the application content `bytes` (UTF-8 text or a structured content) for `conv` and sends it. */
    private sendBytes;
    /**
     * Decrypts a message as far as this device can; a `waiting` one is remembered and comes again as a `decrypted`
     * event when its key arrives.
     */
    decryptMessage(message: Message): SecureMessage;
    /** A page of `conv`'s history (as {@link ChatClient.history}), decrypted as far as this device can, `related` too. */
    history(conv: string, page?: {
        before?: number;
        limit?: number;
    }): Promise<{
        messages: SecureMessage[];
        more: boolean;
        related: SecureMessage[];
    }>;
    private onMessage;
    /** Queries the members of `conv` and retries the deferred to-device payloads. */
    private retryThrough;
    /** Turns what the machine made of to-device payloads into events, and decrypts the messages that waited for a key that came. */
    private absorb;
    private processToDevice;
    /**
     * Verifies the user's new `device` after the user confirmed on this device that it is theirs: signs it with the
     * master key (uploaded, so every device sees it verified), gives it the master key and forwards it the
     * conversation keys held here, so that it reads the earlier history. Needs the master key on this device.
     */
    verifyDevice(device: string): Promise<void>;
    /** The safety number of this user and `user` (from their master keys): the same on both sides, unchanged by new devices. */
    safetyNumber(user: string): Promise<string>;
    /** Whether `user`'s master key signed their `device`, as known here. */
    deviceTrust(user: string, device: string): DeviceTrust;
    /**
     * Sends an application payload (e.g. call signalling) to one device over Olm; it arrives there as a `custom`
     * event. The device's keys are queried first when they are not tracked yet; an unknown device is an error.
     */
    sendCustom(target: DeviceRef, kind: string, data: Uint8Array): Promise<void>;
    /**
     * Seals a call signal (PROTOCOL.md "Calls": the SDP or candidates, as bytes) for `devices` of `user`, or for every
     * device of theirs when absent (queried first, through `conv`): one `olm.v1` payload per device, as
     * {@link ChatClient.callInvite} and the other call requests take it in `signal.sealed`. Olm sessions are made as for
     * sharing conversation keys (claiming a one-time key of a device without one); a device that cannot be reached
     * that way is left out. Fails with `refused` when no device is left.
     */
    sealSignal(user: string, devices: string[] | undefined, data: Uint8Array, conv?: string): Promise<SealedSignal[]>;
    /**
     * Opens what `from` sealed for this device with {@link sealSignal} (a `call_signal`'s `sealed`); the sender's keys
     * are queried first when unknown. Throws an {@link E2eError} for a payload that does not open or is not a call signal.
     */
    openSignal(from: DeviceRef, sealed: string): Promise<Uint8Array>;
    /** The {@link CallSealer} of this SecureChat, for the call helper's `Phone`. */
    callSealer(): CallSealer;
    /**
     * Turns the encrypted key backup on (docs/E2E.md, "Key backup"): makes a new recovery key, creates the backup on the
     * server (it replaces any earlier one: the user's other devices follow the new one), uploads every conversation key
     * this device holds, and resolves with the recovery key's text, to show the user once. From then on every device of
     * the user backs up the keys it makes or receives. Needs the master key on this device (`no_master_key`).
     */
    enableBackup(): Promise<string>;
    /**
     * Restores the conversation keys from the backup with the recovery key the user typed (e.g. on a new device when no
     * other is online): pages through the backup's keys and imports them (the messages that waited for them come as
     * `decrypted` events; the history reads with {@link SecureChat.history}), then unseals the master key and signs this
     * device with it (the signature is uploaded), so that it is verified and can verify the next device.
     *
     * Errors ({@link E2eError} codes): `recovery_key` for a mistyped key (nothing is sent), `wrong_recovery_key` for
     * another backup's key, `bad_signature` for a backup the user's master key did not sign, `refused` when the user
     * has no backup.
     */
    restoreBackup(recoveryKey: string): Promise<Restored>;
    /**
     * Takes over the conversation keys of an earlier device of this user whose state this application kept (e.g. a
     * browser signed out with "keep keys" and signed in again: a new device): the state is opened with `key`, its keys
     * imported (marked forwarded), the messages waiting for them decrypted. Resolves with how many keys were taken; a
     * state of another user is refused, one that does not open is an {@link E2eError}.
     */
    adoptKeysOf(saved: Uint8Array, key: CryptoKey): Promise<number>;
    /** The version of the key backup this device adds its keys to; `undefined` when it follows none (none enabled, or its signature did not verify). */
    get backupVersion(): string | undefined;
    /** Whether the user has a key backup on the server (to offer {@link SecureChat.restoreBackup} on a new device). */
    hasBackup(): Promise<boolean>;
    /** Adopts the user's current backup, if any, after checking its signature (a backup that does not verify is not followed). Under `op`. */
    private followBackup;
    /**
     * Uploads the keys not yet in the adopted backup, at most {@link BACKUP_KEYS_PER_PUT} per request; when the server
     * no longer has that version (another device made a new backup), follows the new one and uploads everything again.
     * Under `op`, after the state holding the keys was saved.
     */
    private uploadBackup;
    /** {@link SecureChat.uploadBackup}, a failure an `error` event: the keys stay pending and go with the next upload. */
    private backUpQuietly;
    /** Resolves once every push received so far was processed and every save written (for tests and orderly shutdown). */
    idle(): Promise<void>;
}
