/**
 * The machine's state, shared by the modules that work on it (account,
 * devices, olm, megolm, safety, store). Internal: the public face is
 * {@link Machine} in machine.ts.
 *
 * @module
 */

import type {
  Account,
  Ed25519SecretKey,
  GroupSession,
  InboundGroupSession,
  Session,
  Vodozemac,
} from "../vodozemac.js";
import type { DeviceRef } from "../protocol.js";
import { decodeBase64 } from "./texts.js";

/** A device as tracked: its identity keys, and the master signature that verified. */
export interface TrackedDevice {
  signingKey: string;
  agreementKey: string;
  /** The master key's signature that verified against the user's current master key. */
  masterSignature?: string;
}

/** A user as tracked: the pinned master key and the devices by id. */
export interface TrackedUser {
  masterKey?: string;
  devices: Map<string, TrackedDevice>;
}

/** A Megolm session: its conversation, the device that created it, its id. */
export interface SessionRef {
  conv: string;
  user: string;
  device: string;
  session: string;
}

/** A to-device message as the server delivers it (its payload decoded from base64). */
export interface ToDeviceIn {
  from_user: string;
  from_device: string;
  kind: string;
  id: string;
  payload: Uint8Array;
  /** When the server stored it (ms since the epoch). */
  ts: number;
}

/** Who an inbound session's key came from. */
export interface InboundSource {
  /** The device that created the session. */
  sender: DeviceRef;
  /** Its Curve25519 key: of the Olm session that delivered the key, or as the forwarding own device stated it. */
  senderKey: string;
  forwarded: boolean;
}

export interface Outbound {
  session: GroupSession;
  created: number;
  /**
   * Devices (by {@link deviceKey}) that were sent the session, and from which index: whether or not the send reached
   * the server, they may hold it (a device that leaves makes the session rotate).
   */
  sharedWith: Map<string, number>;
  /**
   * Those of {@link Outbound.sharedWith} whose room key the server has not yet been seen to take (the send may have
   * died with the link): they are sent the key again with the next message until it is confirmed.
   */
  unconfirmed: Set<string>;
}

export interface Inbound {
  session: InboundGroupSession;
  conv: string;
  source: InboundSource;
  /** The message id each index arrived with, to refuse replays. */
  seen: Map<number, string>;
}

/** The key backup this device adds its keys to (backup.ts). */
export interface BackupState {
  /** The server's version of the backup. */
  version: string;
  /** Its Curve25519 public key (unpadded base64), checked against the master key's signature when adopted. */
  publicKey: string;
  /** Sessions (by {@link inboundKey}) in this version, with the first index backed up. */
  backedUp: Map<string, number>;
}

/** The whole state of one device. */
export class MachineState {
  users = new Map<string, TrackedUser>();
  masterSecret: Ed25519SecretKey | null = null;
  /** Olm sessions per peer Curve25519 key, the one to encrypt with first. */
  sessions = new Map<string, Session[]>();
  /** Processed to-device messages by {@link processedKey}, oldest first. */
  processed: string[] = [];
  processedSet = new Set<string>();
  deferred: ToDeviceIn[] = [];
  /** Devices (by {@link deviceKey}) whose claim failed, and when. */
  claimFailed = new Map<string, number>();
  outbound = new Map<string, Outbound>();
  /** By {@link inboundKey}. */
  inbound = new Map<string, Inbound>();
  /** Awaited sessions by {@link sessionRefKey}. */
  waiting = new Map<string, SessionRef>();
  /** The adopted key backup, if any. */
  backup: BackupState | null = null;

  constructor(
    readonly vz: Vodozemac,
    readonly user: string,
    readonly device: string,
    public account: Account,
    public identityPublished: boolean,
  ) {}

  me(): DeviceRef {
    return { user: this.user, device: this.device };
  }

  tracked(user: string, device: string): TrackedDevice | undefined {
    return this.users.get(user)?.devices.get(device);
  }

  /** This device's Ed25519 key (base64). */
  signingKey(): string {
    return this.account.ed25519Key;
  }

  /** This device's Curve25519 key (base64). */
  agreementKey(): string {
    return this.account.curve25519Key;
  }
}

/** A map key for a device. */
export function deviceKey(d: DeviceRef): string {
  return JSON.stringify([d.user, d.device]);
}

/** The device of a {@link deviceKey}. */
export function deviceOfKey(key: string): DeviceRef {
  const [user, device] = JSON.parse(key) as [string, string];
  return { user, device };
}

/** A map key for an inbound session: its creating device and id. */
export function inboundKey(user: string, device: string, session: string): string {
  return JSON.stringify([user, device, session]);
}

/** A map key for a processed to-device message. */
export function processedKey(user: string, device: string, id: string): string {
  return JSON.stringify([user, device, id]);
}

/** A map key for a {@link SessionRef}. */
export function sessionRefKey(s: SessionRef): string {
  return JSON.stringify([s.conv, s.user, s.device, s.session]);
}

/** Checks an Ed25519 signature (all base64) over `text`, as `chatcore::e2e::verify`: false for malformed input. */
export function verify(vz: Vodozemac, key: string, text: string, signature: string): boolean {
  if (decodeBase64(key)?.length !== 32 || decodeBase64(signature)?.length !== 64) return false;
  try {
    return vz.verifyEd25519(key, new TextEncoder().encode(text), signature);
  } catch {
    return false;
  }
}
