/**
 * The devices of the users this device talks to, as the key directory shows
 * them, each signature checked here (the server is not trusted); the
 * per-user master signing key that vouches for devices.
 *
 * A user's master key is pinned when first seen (an answer without one keeps
 * it); a later different one is adopted but reported (`master_key_changed`)
 * so the app can warn. A device whose identity keys change under the same id
 * is refused: the directory never allows it, so only a lying server shows it.
 *
 * @module
 */
import type { DeviceKeysInfo, DeviceRef, MasterKeyInfo } from "../protocol.js";
import { type MachineState } from "./state.js";
/** The directory's answer about one user: all of the user's devices. */
export interface UserKeys {
    user: string;
    /** The user's master key, once a device created it. */
    masterKey?: MasterKeyInfo;
    /** Every device of the user that uploaded keys. */
    devices: DeviceKeysInfo[];
}
/** What the first device of a user uploads after creating the master key. */
export interface MasterKeyUpload {
    /** The master key and its self-signature. */
    masterKey: MasterKeyInfo;
    /** This device, signed by the master key. */
    device: string;
    /** The master key's signature of this device. */
    deviceSignature: string;
}
/** A change in the devices of a user already tracked, to show ("Bob added a new device") or act on. */
export type DeviceChange = 
/** The user has a new device. */
{
    type: "added";
    device: DeviceRef;
}
/** A device is gone (signed out or revoked); conversation sessions shared with it are rotated. */
 | {
    type: "removed";
    device: DeviceRef;
}
/** The user's master key signed this device (it is now verified). */
 | {
    type: "signed";
    device: DeviceRef;
}
/** The user's master key is another one than before: warn, the safety number changed. */
 | {
    type: "master_key_changed";
    user: string;
    old?: string;
    new?: string;
}
/** Something in the answer did not verify and was ignored; `device` absent: the master key. */
 | {
    type: "rejected";
    user: string;
    device?: string;
    reason: string;
};
/** How far a device is trusted: its user's master key signed it, its keys verify but it is not signed, or it is not tracked. */
export type DeviceTrust = "verified" | "unverified" | "unknown";
/** Checks a device's self-signed identity keys; the reason when they do not verify. */
export declare function checkIdentity(s: MachineState, info: DeviceKeysInfo): string | null;
/** A device is gone: outbound sessions it got are not used again. */
export declare function deviceRemoved(s: MachineState, device: DeviceRef): void;
export declare function receiveDeviceKeys(s: MachineState, keys: UserKeys): DeviceChange[];
export declare function devicesOf(s: MachineState, users: string[]): DeviceRef[];
export declare function deviceTrust(s: MachineState, user: string, device: string): DeviceTrust;
export declare function masterKeyOf(s: MachineState, user: string): string | undefined;
export declare function createMasterKey(s: MachineState): MasterKeyUpload;
/** The master key held here, its self-signature and this device's signature again (Ed25519 signs deterministically). */
export declare function masterKeyUpload(s: MachineState): MasterKeyUpload;
export declare function signDevice(s: MachineState, device: DeviceKeysInfo): string;
/** Takes in the master private key forwarded by another own device: accepted only when its public half is the pinned master key. */
export declare function acceptMasterSecret(s: MachineState, secret: string): void;
