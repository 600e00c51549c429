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
import type { InboundGroupSession } from "../vodozemac.js";
import { isVodozemacError } from "../vodozemac.js";
import { type DeviceTrust, deviceTrust } from "./devices.js";
import { E2eError, messageOf } from "./errors.js";
import { CONTENT, type OlmBody, packMegolmPlaintext, unpackMegolmPlaintext } from "./formats.js";
import { hasSession, needsClaims, olmEncrypt, type Outcome, type Received, type ToDeviceOut } from "./olm.js";
import {
  deviceKey,
  type InboundSource,
  inboundKey,
  type MachineState,
  type SessionRef,
  sessionRefKey,
} from "./state.js";
import { MEGOLM_V1 } from "./texts.js";

/** Messages an outbound session encrypts before it is replaced. */
export const MAX_SESSION_MESSAGES = 100;
/** How long an outbound session is used before it is replaced (a week, in ms). */
export const MAX_SESSION_AGE = 7 * 24 * 60 * 60 * 1000;
/** Sessions remembered as awaited. */
const MAX_WAITING = 1024;
/** Message ids remembered per inbound session (the lowest indices go first). */
const MAX_SEEN_PER_SESSION = 1024;

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
export type Decrypted =
  | {
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
  | { type: "waiting"; session: SessionRef };

function freeOutbound(s: MachineState, conv: string): void {
  const o = s.outbound.get(conv);
  if (o) {
    o.session.free();
    s.outbound.delete(conv);
  }
}

function newOutbound(s: MachineState, conv: string, now: number): void {
  freeOutbound(s, conv);
  const session = new s.vz.GroupSession();
  // This device reads its own messages back (and forwards them).
  const inbound = new s.vz.InboundGroupSession(session.sessionKey);
  s.inbound.set(inboundKey(s.user, s.device, session.sessionId), {
    session: inbound,
    conv,
    source: { sender: s.me(), senderKey: s.agreementKey(), forwarded: false },
    seen: new Map(),
  });
  s.outbound.set(conv, { session, created: now, sharedWith: new Map(), unconfirmed: new Set() });
}

export function encrypt(s: MachineState, conv: string, members: DeviceRef[], content: Uint8Array, now: number): Outcome<Encrypted> {
  const me = deviceKey(s.me());
  const memberSet = new Set<string>();
  let targets: DeviceRef[] = [];
  const withoutKey: DeviceRef[] = [];
  const seen = new Set<string>();
  for (const d of members) {
    const key = deviceKey(d);
    if (key === me || seen.has(key)) continue;
    seen.add(key);
    // A device no longer tracked (removed, revoked) counts as gone even if the app still lists it.
    if (s.tracked(d.user, d.device)) {
      memberSet.add(key);
      targets.push(d);
    } else {
      withoutKey.push(d);
    }
  }
  const current = s.outbound.get(conv);
  const rotate =
    !current ||
    current.session.messageIndex >= MAX_SESSION_MESSAGES ||
    now - current.created >= MAX_SESSION_AGE ||
    [...current.sharedWith.keys()].some((k) => !memberSet.has(k));
  // A device whose key was sent but not confirmed gets it again: the first send may have been lost with the link.
  if (!rotate && current) targets = targets.filter((d) => !current.sharedWith.has(deviceKey(d)) || current.unconfirmed.has(deviceKey(d)));
  const claims = needsClaims(s, targets, now);
  if (claims.length > 0) return { type: "needs_claims", devices: claims };
  if (rotate) newOutbound(s, conv, now);
  const outbound = s.outbound.get(conv);
  if (!outbound) throw new E2eError("refused", "refused: no outbound session");
  const session = outbound.session.sessionId;
  const key = outbound.session.sessionKey;
  const index = outbound.session.messageIndex;

  const toDevice: ToDeviceOut[] = [];
  const shared: string[] = [];
  for (const target of targets) {
    if (!hasSession(s, target)) {
      withoutKey.push(target);
      continue;
    }
    const body: OlmBody = { type: "room_key", conv, session, key };
    toDevice.push(olmEncrypt(s, target, body));
    shared.push(deviceKey(target));
  }
  // Counted as holding the key at once (for rotation), but unconfirmed until the server took the room keys.
  for (const k of shared) {
    if (!outbound.sharedWith.has(k)) outbound.sharedWith.set(k, index);
    outbound.unconfirmed.add(k);
  }
  const ciphertext = outbound.session.encrypt(packMegolmPlaintext(conv, content));
  return {
    type: "ready",
    value: { content: { algorithm: MEGOLM_V1, device: s.device, session, ciphertext }, toDevice, withoutKey },
  };
}

export function confirmShared(s: MachineState, conv: string, session: string, devices: DeviceRef[]): void {
  const o = s.outbound.get(conv);
  if (!o || o.session.sessionId !== session) return;
  for (const d of devices) o.unconfirmed.delete(deviceKey(d));
}

export function updateMembers(s: MachineState, conv: string, members: DeviceRef[]): boolean {
  const set = new Set(members.map(deviceKey));
  const me = deviceKey(s.me());
  const o = s.outbound.get(conv);
  const stale = o !== undefined && [...o.sharedWith.keys()].some((k) => k !== me && !set.has(k));
  if (stale) freeOutbound(s, conv);
  return stale;
}

export function rotate(s: MachineState, conv: string): void {
  freeOutbound(s, conv);
}

/** Adds an inbound session from a key received over Olm: `shared` by its creator, or `exported` by an own device. */
export function addInbound(
  s: MachineState,
  conv: string,
  session: string,
  source: InboundSource,
  key: { shared: string } | { exported: string },
): Received {
  let created: InboundGroupSession;
  try {
    created = "shared" in key ? new s.vz.InboundGroupSession(key.shared) : s.vz.InboundGroupSession.import(key.exported);
  } catch (e) {
    throw new E2eError("malformed", `malformed payload: ${messageOf(e)}`);
  }
  if (created.sessionId !== session) {
    created.free();
    throw new E2eError("misbound", "the message does not belong here: the key is not the named session's");
  }
  const mapKey = inboundKey(source.sender.user, source.sender.device, session);
  const ref: SessionRef = { conv, user: source.sender.user, device: source.sender.device, session };
  const old = s.inbound.get(mapKey);
  if (old) {
    if (old.conv !== conv || old.source.senderKey !== source.senderKey) {
      created.free();
      throw new E2eError("misbound", "the message does not belong here: the session is known for another conversation or sender key");
    }
    // Keep whichever reads further back, if it is the same ratchet.
    const oldFirst = old.session.firstKnownIndex;
    if (created.firstKnownIndex < oldFirst && created.exportAt(oldFirst) === old.session.exportAtFirstKnownIndex()) {
      old.session.free();
      old.session = created;
    } else {
      created.free();
    }
  } else {
    s.inbound.set(mapKey, { session: created, conv, source, seen: new Map() });
  }
  const waiting = s.waiting.delete(sessionRefKey(ref));
  return { type: "room_key", session: ref, forwarded: source.forwarded, waiting };
}

export function decrypt(s: MachineState, conv: string, messageId: string, sender: string, content: EncryptedContent): Decrypted {
  if (content.algorithm !== MEGOLM_V1) throw new E2eError("unsupported", `unsupported kind or algorithm "${content.algorithm}"`);
  const key = inboundKey(sender, content.device, content.session);
  const inbound = s.inbound.get(key);
  if (!inbound) {
    for (const i of s.inbound.values()) {
      // Another device delivered a key of this very session id: a forgery of the sender.
      if (i.session.sessionId === content.session) {
        throw new E2eError("misbound", "the message does not belong here: the session's key came from another device than the claimed sender");
      }
    }
    const session: SessionRef = { conv, user: sender, device: content.device, session: content.session };
    if (s.waiting.size < MAX_WAITING) s.waiting.set(sessionRefKey(session), session);
    return { type: "waiting", session };
  }
  if (inbound.conv !== conv) throw new E2eError("wrong_conversation", "the message was encrypted for another conversation");
  let plaintext: Uint8Array;
  let index: number;
  try {
    const d = inbound.session.decrypt(content.ciphertext);
    plaintext = d.plaintext;
    index = d.messageIndex;
    d.free();
  } catch (e) {
    if (isVodozemacError(e) && e.code === "unknown_index") {
      const first = e.firstKnownIndex ?? 0;
      const at = e.messageIndex ?? 0;
      throw new E2eError("before_key", `the message (index ${at}) predates this device's key (from index ${first})`, {
        index: at,
        firstKnown: first,
      });
    }
    if (isVodozemacError(e) && e.code === "invalid_message") throw new E2eError("malformed", `malformed payload: ${e.message}`);
    throw new E2eError("megolm_decrypt", `the encrypted message does not decrypt: ${messageOf(e)}`);
  }
  const p = unpackMegolmPlaintext(plaintext);
  if (p.type !== CONTENT) throw new E2eError("unsupported", `unsupported kind or algorithm "${p.type}"`);
  if (p.conv !== conv) throw new E2eError("wrong_conversation", "the message was encrypted for another conversation");
  const trust = deviceTrust(s, sender, content.device);
  // A tracked device must still have the key that delivered the session.
  const d = s.tracked(sender, content.device);
  if (d && inbound.source.senderKey !== d.agreementKey) {
    throw new E2eError("misbound", "the message does not belong here: the session was not delivered by the sending device");
  }
  const first = inbound.seen.get(index);
  if (first !== undefined && first !== messageId) {
    throw new E2eError("replayed", `the message replays index ${index} of its session, first seen as message ${first}`, {
      index,
      first,
    });
  }
  if (first === undefined) {
    inbound.seen.set(index, messageId);
    if (inbound.seen.size > MAX_SEEN_PER_SESSION) inbound.seen.delete(Math.min(...inbound.seen.keys()));
  }
  return {
    type: "plain",
    content: p.content,
    sender: { user: sender, device: content.device },
    index,
    forwarded: inbound.source.forwarded,
    trust,
  };
}

export function forwardKeys(s: MachineState, device: string, convs: string[] | undefined, now: number): Outcome<ToDeviceOut[]> {
  const target = { user: s.user, device };
  if (device === s.device || deviceTrust(s, s.user, device) !== "verified") {
    throw new E2eError("refused", "refused: keys are forwarded only to the user's other devices that the master key signed");
  }
  const claims = needsClaims(s, [target], now);
  if (claims.length > 0) return { type: "needs_claims", devices: claims };
  const out: ToDeviceOut[] = [];
  for (const [k, i] of s.inbound) {
    if (convs && !convs.includes(i.conv)) continue;
    const [user, dev, session] = JSON.parse(k) as [string, string, string];
    out.push(
      olmEncrypt(s, target, {
        type: "forwarded_room_key",
        conv: i.conv,
        session,
        key: i.session.exportAtFirstKnownIndex(),
        session_user: user,
        session_device: dev,
        session_sender_key: i.source.senderKey,
      }),
    );
  }
  return { type: "ready", value: out };
}

/** A conversation key as {@link exportKeys} gives it: the session from its first known index, and whose it is. */
export interface ExportedRoomKey {
  conv: string;
  session: string;
  /** vodozemac's export of the inbound session at its first known index. */
  key: string;
  sender: DeviceRef;
  senderKey: string;
}

export function exportKeys(s: MachineState): ExportedRoomKey[] {
  const out: ExportedRoomKey[] = [];
  for (const [k, i] of s.inbound) {
    const [user, device, session] = JSON.parse(k) as [string, string, string];
    out.push({ conv: i.conv, session, key: i.session.exportAtFirstKnownIndex(), sender: { user, device }, senderKey: i.source.senderKey });
  }
  return out;
}

export function importKeys(s: MachineState, keys: ExportedRoomKey[]): ({ ok: Received } | { error: E2eError })[] {
  return keys.map((k) => {
    try {
      return { ok: addInbound(s, k.conv, k.session, { sender: k.sender, senderKey: k.senderKey, forwarded: true }, { exported: k.key }) };
    } catch (e) {
      return { error: e instanceof E2eError ? e : new E2eError("malformed", messageOf(e)) };
    }
  });
}
