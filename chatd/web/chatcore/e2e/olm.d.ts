/**
 * Olm channels between devices, carried by to-device messages: session setup
 * from claimed one-time keys, encryption for one device, and the receiving
 * side (pre-key and normal messages), processed exactly once per (sending
 * device, id) although the server delivers at least once.
 *
 * @module
 */
import type { ClaimedKey, DeviceRef } from "../protocol.js";
import { E2eError } from "./errors.js";
import { type OlmBody } from "./formats.js";
import { type MachineState, type SessionRef, type ToDeviceIn } from "./state.js";
/**
 * A to-device message to send (`send_to_device`). `payload` is the MessagePack envelope
 * `{type: "olm.v1", sender_key, message_type, body: bin}` (see formats.ts); `id` is unique per sending device.
 */
export interface ToDeviceOut {
    user: string;
    device: string;
    /** Always `olm.v1`. */
    kind: string;
    id: string;
    payload: Uint8Array;
}
/** What an incoming to-device message was. */
export type Received = 
/** It was processed before (a redelivery): nothing to do. */
{
    type: "duplicate";
}
/** The sender's device keys are unknown: the message is kept; query the user's keys, then {@link Machine.retryDeferred}. */
 | {
    type: "deferred";
    user: string;
}
/** A Megolm session key: messages of that session now decrypt (`waiting`: some waited for it). */
 | {
    type: "room_key";
    session: SessionRef;
    forwarded: boolean;
    waiting: boolean;
}
/** Another own device gave this one the master private key. */
 | {
    type: "master_key";
    from: DeviceRef;
}
/** An application payload sent with {@link Machine.encryptToDevice}. */
 | {
    type: "custom";
    from: DeviceRef;
    kind: string;
    data: Uint8Array;
};
/** What needs claims first, or is done. */
export type Outcome<T> = 
/** These devices have no Olm session with this one yet: claim a one-time key of each, give the answer to {@link Machine.receiveClaimedKeys} and call again. Nothing changed. */
{
    type: "needs_claims";
    devices: DeviceRef[];
}
/** Done. */
 | {
    type: "ready";
    value: T;
};
/** The message as the recipient's server delivers it, sent by `from` at `ts` (tests and loopbacks). */
export declare function delivered(message: ToDeviceOut, from: DeviceRef, ts: number): ToDeviceIn;
export declare function hasSession(s: MachineState, d: DeviceRef): boolean;
export declare function needsClaims(s: MachineState, devices: DeviceRef[], now: number): DeviceRef[];
export declare function receiveClaimedKeys(s: MachineState, requested: DeviceRef[], claimed: ClaimedKey[], now: number): {
    device: DeviceRef;
    error: E2eError;
}[];
/** Encrypts `body` for `target` over the newest Olm session with it. */
export declare function olmEncrypt(s: MachineState, target: DeviceRef, body: OlmBody): ToDeviceOut;
/** Encrypts a plaintext already encoded (tests forge plaintexts through it). */
export declare function olmEncryptBytes(s: MachineState, target: DeviceRef, bytes: Uint8Array): ToDeviceOut;
export declare function receiveToDevice(s: MachineState, message: ToDeviceIn, now: number): Received;
export declare function retryDeferred(s: MachineState, now: number): ({
    ok: Received;
} | {
    error: E2eError;
})[];
export declare function encryptToDevice(s: MachineState, target: DeviceRef, kind: string, data: Uint8Array, now: number): Outcome<ToDeviceOut>;
export declare function shareMasterKey(s: MachineState, device: string, now: number): Outcome<ToDeviceOut>;
