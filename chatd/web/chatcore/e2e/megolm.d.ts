/**
 * Megolm sessions per conversation: an outbound session this device encrypts
 * with, shared over Olm with every member device; inbound sessions of every
 * sender (this device's own included, so that its messages read back), and
 * the forwarding of history to the user's own verified devices.
 *
 * Rotation: a new outbound session when a device it was shared with is no
 * longer a member (a member left or was removed, a device was removed or
 * revoked), after {@link MAX_SESSION_MESSAGES} messages or
 * {@link MAX_SESSION_AGE}. A device added to a conversation gets the current
 * session at its current index: it reads from the time it joined, not before.
 *
 * @module
 */
import type { DeviceRef } from "../protocol.js";
import { type DeviceTrust } from "./devices.js";
import { E2eError } from "./errors.js";
import { type Outcome, type Received, type ToDeviceOut } from "./olm.js";
import { type InboundSource, type MachineState, type SessionRef } from "./state.js";
/** Messages an outbound session encrypts before it is replaced. */
export declare const MAX_SESSION_MESSAGES = 100;
/** How long an outbound session is used before it is replaced (a week, in ms). */
export declare const MAX_SESSION_AGE: number;
/** An encrypted conversation content as the server stores it (the ciphertext as bytes here, base64 on the wire). */
export interface EncryptedContent {
    /** `megolm.v1`. */
    algorithm: string;
    /** The sending device. */
    device: string;
    /** The Megolm session id. */
    session: string;
    /** A vodozemac Megolm message whose plaintext is `{type: "content", conv, content: bin}`. */
    ciphertext: Uint8Array;
}
/** A content encrypted for a conversation. */
export interface Encrypted {
    /** To send to the conversation, after `toDevice`. */
    content: EncryptedContent;
    /** Room keys for the member devices that did not have the session yet: send them first. */
    toDevice: ToDeviceOut[];
    /** Member devices that got no key (keys unknown, or no one-time key could be claimed): they cannot read it. */
    withoutKey: DeviceRef[];
}
/** A decrypted conversation content, or why not yet. */
export type Decrypted = {
    type: "plain";
    /** The application's content bytes. */
    content: Uint8Array;
    /** The device that sent it. */
    sender: DeviceRef;
    /** The message's index in its session. */
    index: number;
    /** The key came from another own device, not from the sender. */
    forwarded: boolean;
    /** The sending device's trust now. */
    trust: DeviceTrust;
}
/** The session's key has not arrived yet: a `room_key` {@link Received} with `waiting` says when to try again. */
 | {
    type: "waiting";
    session: SessionRef;
};
export declare function encrypt(s: MachineState, conv: string, members: DeviceRef[], content: Uint8Array, now: number): Outcome<Encrypted>;
export declare function confirmShared(s: MachineState, conv: string, session: string, devices: DeviceRef[]): void;
export declare function updateMembers(s: MachineState, conv: string, members: DeviceRef[]): boolean;
export declare function rotate(s: MachineState, conv: string): void;
/** Adds an inbound session from a key received over Olm: `shared` by its creator, or `exported` by an own device. */
export declare function addInbound(s: MachineState, conv: string, session: string, source: InboundSource, key: {
    shared: string;
} | {
    exported: string;
}): Received;
export declare function decrypt(s: MachineState, conv: string, messageId: string, sender: string, content: EncryptedContent): Decrypted;
export declare function forwardKeys(s: MachineState, device: string, convs: string[] | undefined, now: number): Outcome<ToDeviceOut[]>;
/** A conversation key as {@link exportKeys} gives it: the session from its first known index, and whose it is. */
export interface ExportedRoomKey {
    conv: string;
    session: string;
    /** vodozemac's export of the inbound session at its first known index. */
    key: string;
    sender: DeviceRef;
    senderKey: string;
}
export declare function exportKeys(s: MachineState): ExportedRoomKey[];
export declare function importKeys(s: MachineState, keys: ExportedRoomKey[]): ({
    ok: Received;
} | {
    error: E2eError;
})[];
