/**
 * The frames of the chatcore protocol, version 4 (docs/PROTOCOL.md), as
 * TypeScript types, and the schema that puts any frame into its canonical
 * form: fields in the order the Rust types serialize them, absent optional
 * fields omitted, `null` only where Rust writes `None` as nil. Both codecs
 * encode the canonical form, which is what makes their bytes identical to
 * Rust's (tests/vectors/frames.json checks it).
 *
 * Field names are the wire names (`display_name`, `client_id`, ...) so that
 * an error's `field` names the very property a caller passed.
 *
 * @module
 */

/** The protocol version this binding speaks (5: `typing`; 6: receipts). */
export const PROTOCOL_VERSION = 9;

/** WebSocket subprotocol names; the codec is chosen by subprotocol. */
export const SUBPROTOCOL_MSGPACK = "chatcore.v1.msgpack";
/** See {@link SUBPROTOCOL_MSGPACK}. */
export const SUBPROTOCOL_JSON = "chatcore.v1.json";

/** Stable machine-readable reasons of an `error` frame. */
export type ErrorCode =
  | "unauthenticated"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "weak_password"
  | "rate_limited"
  | "limit_reached"
  | "too_large"
  | "invalid_frame"
  | "invalid_argument"
  | "unsupported_version"
  | "unavailable"
  | "internal";

/** Every {@link ErrorCode}, in the order of PROTOCOL.md. */
export const ERROR_CODES: readonly ErrorCode[] = [
  "unauthenticated",
  "forbidden",
  "not_found",
  "conflict",
  "weak_password",
  "rate_limited",
  "limit_reached",
  "too_large",
  "invalid_frame",
  "invalid_argument",
  "unsupported_version",
  "unavailable",
  "internal",
];

/** Password rules a `weak_password` error lists in `violations`. */
export type PasswordViolation =
  | "too_short"
  | "too_long"
  | "contains_username"
  | "contains_email"
  | "common"
  | "too_guessable";

/** A user's contact card. */
export interface Profile {
  user: string;
  username: string;
  display_name: string;
  about: string;
  /** Media id of the profile picture; absent when there is none. */
  avatar?: string;
}

/** Online now, or when last seen (ms since the epoch). */
export interface Presence {
  user: string;
  online: boolean;
  /** When the user's last device left; absent while online or if never seen. */
  last_seen?: number;
}

/** A member's role in a group, by power: `member` < `admin` < `owner`. */
export type Role = "member" | "admin" | "owner";

/** Every {@link Role}, from least to most power. */
export const ROLES: readonly Role[] = ["member", "admin", "owner"];

/** Whether a conversation is between two users or a group. */
export type ConversationKind = "direct" | "group";

/** A message a client sends, tagged by `kind`. */
export type TextContent = { kind: "text"; text: string };

/**
 * An end-to-end encrypted message (PROTOCOL.md "Encrypted conversations"): the server routes it and cannot read
 * it. `device` is the sending device, `session` the sender's Megolm session id; `ciphertext` is unpadded base64.
 */
export type EncryptedContent = {
  kind: "encrypted";
  algorithm: string;
  device: string;
  session: string;
  ciphertext: string;
};

/**
 * A notice: a change of a group that the server wrote into its log, in order
 * with the messages. Its sender (`Message.from`) is who made the change.
 */
export type NoticeContent =
  /** The sender created the group with these other members. */
  | { kind: "group_created"; title: string; members: string[] }
  /** The sender (an admin) added these users. */
  | { kind: "members_added"; users: string[] }
  /** The sender joined with an invite link. */
  | { kind: "member_joined" }
  /** The sender (an admin) removed `user`. */
  | { kind: "member_removed"; user: string }
  /** The sender left; when the sender owned the group, `new_owner` owns it now. */
  | { kind: "member_left"; new_owner?: string }
  /** The sender (the owner) gave `user` the role `role` (`owner`: handed ownership over). */
  | { kind: "role_changed"; user: string; role: Role }
  /** The sender (an admin) changed these settings; an empty description or avatar removes it. */
  | { kind: "group_updated"; title?: string; description?: string; avatar?: string; history_visible?: boolean }
  /** The sender turned end-to-end encryption on: from here on only encrypted messages. */
  | { kind: "encryption_enabled" }
  /** The sender set the disappearing-message timer (milliseconds; absent: off). */
  | { kind: "timer_changed"; expire_after?: number }
  /**
   * A call of the sender (the caller) ended, as `outcome` (PROTOCOL.md "Calls"); `duration_ms` from the answer, for
   * an answered call. A `missed` or `busy` one counts as unread and alerts.
   */
  | { kind: "call"; call: string; media: CallMedia; outcome: CallEnd; duration_ms?: number }
  /** A seq the store left without content: shows nothing. */
  | { kind: "void" };

/**
 * No content: the entry of a deletion (its `rel` names the target), and every entry whose content a deletion or the
 * conversation's timer removed (the tombstone keeps its envelope). A client sends it only as a deletion.
 */
export type DeletedContent = { kind: "deleted" };

/**
 * A message that carries an uploaded file (PROTOCOL.md, *Media messages*): the file's media id is also listed in the
 * message's `media`. In an encrypted conversation the same fields travel inside the ciphertext.
 */
export type MediaContent =
  | {
      kind: "image";
      media: string;
      mime: string;
      width: number;
      height: number;
      size: number;
      /** Unpadded base64 of a small preview (at most 8 KiB decoded). */
      thumbnail?: string;
      caption?: string;
      /** How the file was encrypted: inside an encrypted content only (the server refuses it in the clear). */
      encryption?: FileEncryption;
    }
  | { kind: "file"; media: string; name: string; mime: string; size: number; encryption?: FileEncryption }
  | {
      kind: "voice";
      media: string;
      mime: string;
      duration_ms: number;
      waveform?: number[];
      size: number;
      encryption?: FileEncryption;
    };

/**
 * How a client encrypted a file before uploading it (E2E.md, *Files*): AES-256-GCM under a random key used for this
 * file only ({@link encryptFile}). It travels only inside an encrypted content.
 */
export interface FileEncryption {
  /** The 32-byte key, unpadded standard base64. */
  key: string;
  /** The 12-byte nonce, unpadded standard base64. */
  iv: string;
  /** The SHA-256 of the uploaded bytes (ciphertext and tag), lowercase hex, as `POST /media` answered it. */
  sha256: string;
}

/** What an entry of a conversation's log carries, tagged by `kind`. */
export type Content = TextContent | EncryptedContent | MediaContent | DeletedContent | NoticeContent;

/** The most uploaded files one message carries. */
export const MAX_MEDIA = 10;

/** How an entry relates to the message it points at (PROTOCOL.md, *Message life*). */
export type RelKind = "reply" | "edit" | "reaction" | "delete";

/** Every {@link RelKind}. */
export const REL_KINDS: readonly RelKind[] = ["reply", "edit", "reaction", "delete"];

/** What an entry points at: a message of the same conversation, by id. */
export interface Rel {
  kind: RelKind;
  target: string;
}

/** The disappearing-message timers a conversation may have, in milliseconds: 1 hour, 1 day, 1 week, 90 days. */
export const DISAPPEARING_TIMERS: readonly number[] = [3_600_000, 86_400_000, 7 * 86_400_000, 90 * 86_400_000];

/** The most reactions one member keeps on one message. */
export const MAX_REACTIONS = 20;

/** The most members one message mentions. */
export const MAX_MENTIONS = 50;

/** Every notice `kind`. */
export const NOTICE_KINDS: readonly NoticeContent["kind"][] = [
  "group_created",
  "members_added",
  "member_joined",
  "member_removed",
  "member_left",
  "role_changed",
  "group_updated",
  "encryption_enabled",
  "timer_changed",
  "call",
  "void",
];

/** Whether `content` is a notice the server wrote rather than a message someone sent. */
export function isNotice(content: Content): content is NoticeContent {
  return !["text", "encrypted", "deleted", "image", "file", "voice"].includes(content.kind);
}

/**
 * Whether `message` is a message in its own right (text or encrypted, no `rel` or a reply): it counts as unread and
 * can be replied to, edited, reacted to and deleted. Edits, reactions and deletions point at one instead.
 */
export function standsAlone(message: Message): boolean {
  const c = message.content.kind;
  const isMessage = c === "text" || c === "encrypted" || c === "image" || c === "file" || c === "voice";
  return isMessage && (message.rel === undefined || message.rel.kind === "reply");
}

/** Whether `message` counts as unread and alerts: a message in its own right, or a call missed (or refused as busy). */
export function alerts(message: Message): boolean {
  const c = message.content;
  return standsAlone(message) || (c.kind === "call" && (c.outcome === "missed" || c.outcome === "busy"));
}

/** What a call carries. */
export type CallMedia = "voice" | "video";
export const CALL_MEDIA: readonly CallMedia[] = ["voice", "video"];

/** Why a call ended (PROTOCOL.md "Calls"). */
export type CallEnd = "hangup" | "cancelled" | "declined" | "busy" | "missed" | "failed" | "gone";
export const CALL_ENDS: readonly CallEnd[] = ["hangup", "cancelled", "declined", "busy", "missed", "failed", "gone"];

/** What a client says when it ends a call: hang up (or cancel, before an answer), decline, or fail. */
export type HangupReason = "hangup" | "declined" | "failed";
export const HANGUP_REASONS: readonly HangupReason[] = ["hangup", "declined", "failed"];

/** Where a call stands. */
export type CallStatus = "ringing" | "active" | "ended";

/** A call as `call_state` shows it. */
export interface CallInfo {
  call: string;
  conv: string;
  caller: string;
  caller_device: string;
  callee: string;
  media: CallMedia;
  state: CallStatus;
  /** A device of the callee rings. */
  ringing?: boolean;
  /** The callee's device in the call. */
  answered_by?: string;
  /** Why it ended, once `ended`. */
  reason?: CallEnd;
  started_at: number;
  answered_at?: number;
  ended_at?: number;
}

/** An ICE candidate, as `RTCIceCandidateInit` has it (snake case on the wire). */
export interface IceCandidate {
  candidate: string;
  sdp_mid?: string;
  sdp_m_line_index?: number;
}

/** A payload sealed (Olm, an `olm.v1` to-device payload) for one device. */
export interface SealedSignal {
  device: string;
  payload: string;
}

/** What a signalling request carries: plain (`sdp`, `candidates`) or `sealed` per device, never both. */
export interface CallSignal {
  sdp?: string;
  candidates?: IceCandidate[];
  sealed?: SealedSignal[];
}

/** The `call_signal` push: what the other side's `device` sent this device. */
export interface CallSignalFrame {
  type: "call_signal";
  call: string;
  device: string;
  sdp?: string;
  candidates?: IceCandidate[];
  sealed?: string;
}

/** Who a privacy setting lets in. */
export type Audience = "everyone" | "contacts" | "nobody";

/** Every {@link Audience}, from widest to narrowest. */
export const AUDIENCES: readonly Audience[] = ["everyone", "contacts", "nobody"];

/** A user's privacy settings, the same on all the user's devices (PROTOCOL.md, *Contacts, blocks and privacy*). */
export interface Privacy {
  /** Who may start a direct conversation with the user: `everyone` or `contacts` (`nobody` is refused). */
  direct: Audience;
  /**
   * Who may add the user to a group: `everyone`, or `contacts` (anyone else's add becomes an invitation the user
   * accepts or declines).
   */
  groups: Audience;
  /**
   * Who sees the user's online state and last seen. Reciprocal: the user sees another's presence only if their
   * own setting would admit the other. A hidden presence looks like a user who is offline and was never seen.
   */
  presence: Audience;
  /**
   * Whether the user's fellow members see how far it read (read receipts); absent means on. Reciprocal: while off,
   * the user is shown no one's read marks. Delivery shows either way.
   */
  read_receipts?: boolean;
}

/**
 * How far a fellow member received and read a conversation (`receipts`, `receipt`). Each mark covers every earlier
 * seq: a message at `seq` is delivered to `user` when `delivered >= seq`, read when `read >= seq`.
 */
export interface ReceiptInfo {
  user: string;
  /** The highest seq one of the member's devices acknowledged, or it read. */
  delivered: number;
  /** The highest seq it read; 0 while either side does not share read receipts. */
  read: number;
}

/** What a `contact` request does to the caller's link with a user. */
export type ContactAction =
  /** Ask the user to become contacts (accepts their request if they asked first). */
  | "request"
  /** Accept the user's request. */
  | "accept"
  /** Decline the user's request (the asker may not ask again for a while). */
  | "decline"
  /** Withdraw the caller's own request. */
  | "cancel"
  /** Stop being contacts. */
  | "remove";

/** Every {@link ContactAction}. */
export const CONTACT_ACTIONS: readonly ContactAction[] = ["request", "accept", "decline", "cancel", "remove"];

/** Which of the caller's lists `contacts` pages. */
export type ContactList =
  /** Contacts. */
  | "contacts"
  /** Requests received and not answered. */
  | "incoming"
  /** Requests sent and not answered. */
  | "outgoing"
  /** Users the caller blocks. */
  | "blocked";

/** Every {@link ContactList}. */
export const CONTACT_LISTS: readonly ContactList[] = ["contacts", "incoming", "outgoing", "blocked"];

/** Which list `conversations` pages. */
export type ConversationList =
  /** The conversations the caller accepted (the default). */
  | "main"
  /** Message requests and group invitations waiting for the caller's answer. */
  | "requests";

/** Every {@link ConversationList}. */
export const CONVERSATION_LISTS: readonly ConversationList[] = ["main", "requests"];

/**
 * A message request or group invitation as the one asked sees it: `by` wrote first (a message request) or
 * invited (a group invitation), `at` when.
 */
export interface RequestInfo {
  by: Profile;
  at: number;
}

/** The caller's contact state with a user. */
export type ContactState =
  /** Nothing. */
  | "none"
  /** The user asked the caller. */
  | "incoming"
  /** The caller asked the user. */
  | "outgoing"
  /** Contacts. */
  | "contact";

/** Every {@link ContactState}. */
export const CONTACT_STATES: readonly ContactState[] = ["none", "incoming", "outgoing", "contact"];

/**
 * A user as the caller's contacts show them: the caller's view of the pair. It never says whether the other user
 * blocks the caller.
 */
export interface ContactInfo {
  profile: Profile;
  state: ContactState;
  /** Whether the caller blocks the user. */
  blocked: boolean;
  /** When the state began; absent for `none`. */
  since?: number;
  /** The user's presence as the caller may see it; only in `contacts` pages. */
  presence?: Presence;
}

/** A stored message. */
export interface Message {
  id: string;
  conv: string;
  /** Position in the conversation: 1, 2, 3, ... without gaps. */
  seq: number;
  from: string;
  client_id: string;
  ts: number;
  /** The message this entry replies to, edits, reacts to or deletes. */
  rel?: Rel;
  /** The members a group message mentions. */
  mentions?: string[];
  /** The uploaded files it carries (media ids). */
  media?: string[];
  /** When the conversation's disappearing-message timer removes its content (absent: never). */
  expires_at?: number;
  content: Content;
}

/** Contact card and presence, as the directory lists them. */
export interface DirectoryEntry {
  profile: Profile;
  presence: Presence;
}

/** The newest entry of a conversation, as the chat list previews it. */
export interface LastEntry {
  seq: number;
  ts: number;
  from: string;
  /** Its content's `kind` (`text`, or a notice's kind). */
  kind: string;
  /** How it relates to an earlier message (an edit, a reaction, ...). */
  rel?: RelKind;
  /** The start of the text, when the content is plain text. */
  preview?: string;
}

/** One conversation of the caller, for the chat list. */
export interface ConversationSummary {
  conv: string;
  kind: ConversationKind;
  /** A group's title. */
  title?: string;
  /** A group's avatar (media id). */
  avatar?: string;
  /** The other user of a direct conversation. */
  peer?: Profile;
  /** How many members it has now. */
  members: number;
  /** The caller's role in a group; absent in a direct conversation and once the caller left or was removed. */
  role?: Role;
  /** The caller left or was removed: it reads up to that point, no further. Absent means false. */
  left?: boolean;
  /** Seq of the newest entry the caller may read. */
  last_seq: number;
  /** Messages from others after the caller's read marker. */
  unread: number;
  /** How many of those mention the caller (absent: none). */
  mentions?: number;
  /** The disappearing-message timer in milliseconds (absent: off). */
  expire_after?: number;
  last?: LastEntry;
  /** Whether it is end-to-end encrypted. Absent means false. */
  encrypted?: boolean;
  /** Whether alerts are muted now. Absent means false. */
  muted?: boolean;
  /** When a mute ends; absent for a mute until unmuted. */
  muted_until?: number;
  /** What waits for the caller's answer: a message request (`by` the sender) or a group invitation (`by` who invited). */
  request?: RequestInfo;
}

/** A member as a conversation lists it. */
export interface MemberInfo {
  user: string;
  /** `member` in a direct conversation. */
  role: Role;
  joined_at: number;
}

/** A conversation with its current members. */
export interface ConversationInfo {
  conv: string;
  kind: ConversationKind;
  title?: string;
  description?: string;
  avatar?: string;
  /** Whether new members see the history from before they joined. */
  history_visible: boolean;
  /** Whether it is end-to-end encrypted (it then takes only `encrypted` content). Absent means false. */
  encrypted?: boolean;
  /** The disappearing-message timer in milliseconds (absent: off). */
  expire_after?: number;
  created_at: number;
  /** The current members, longest-serving first. */
  members: MemberInfo[];
  /** The caller's role; absent once it left or was removed (and in a direct conversation it is `member`). */
  role?: Role;
  /** Seq of the newest entry the caller may read. */
  last_seq: number;
  /** The first seq the caller may read. */
  first_seq: number;
  /** A group's open invitations: users invited who have not answered. Absent when there are none. */
  invited?: string[];
  /** What waits for the caller's answer here, if anything (a message request, or an invitation to this group). */
  request?: RequestInfo;
}

/** Frames a client sends. Every request has an `id` its reply carries back. */
export type ClientFrame =
  | { type: "hello"; id: number; version: number; client?: string }
  | {
      type: "register";
      id: number;
      username: string;
      email: string;
      phone: string;
      display_name: string;
      password: string;
      device: string;
    }
  | { type: "login"; id: number; login: string; password: string; device: string }
  | { type: "resume"; id: number; token: string }
  | { type: "logout"; id: number }
  | { type: "change_password"; id: number; old_password: string; new_password: string }
  /** The caller's devices. Reply: `device_list`. */
  | { type: "devices"; id: number }
  /** Renames one of the caller's devices. Reply: `ok`. */
  | { type: "rename_device"; id: number; device: string; name: string }
  /** Ends one of the caller's devices (its sessions, keys and to-device queue); the caller's own: a logout. Reply: `ok`. */
  | { type: "revoke_device"; id: number; device: string }
  | { type: "reset_request"; id: number; email: string }
  | { type: "reset_confirm"; id: number; token: string; new_password: string }
  | { type: "search_users"; id: number; query: string; after?: string; limit?: number }
  | { type: "get_profile"; id: number; user: string }
  | { type: "update_profile"; id: number; display_name?: string; about?: string; avatar?: string }
  /** To a conversation the caller is a member of. */
  | {
      type: "send";
      id: number;
      conv: string;
      to?: never;
      client_id: string;
      rel?: Rel;
      mentions?: string[];
      media?: string[];
      content: Content;
    }
  /** To a user: the direct conversation with them, opened by this first send if need be. */
  | { type: "send"; id: number; to: string; conv?: never; client_id: string; rel?: never; mentions?: never; media?: string[]; content: Content }
  | { type: "history"; id: number; conv: string; before?: number; limit?: number }
  | { type: "sync"; id: number; limit?: number }
  | { type: "ack"; id: number; conv: string; seq: number }
  | { type: "read"; id: number; conv: string; seq: number }
  /** The user writes in `conv` (or stopped): the other members who are connected get a `typing` push. */
  | { type: "typing"; id: number; conv: string; typing: boolean }
  /** The other members' receipts in `conv` that rose at or after `since` (a previous reply's `until`; all when absent). */
  | { type: "receipts"; id: number; conv: string; since?: number }
  | { type: "focus"; id: number; conv?: string }
  /** `list` absent: the main list. */
  | { type: "conversations"; id: number; list?: ConversationList; after?: string; limit?: number }
  /** `encrypted`: turn end-to-end encryption on if it is not yet. */
  | { type: "open_direct"; id: number; user: string; encrypted?: boolean }
  | {
      type: "create_group";
      id: number;
      title: string;
      description?: string;
      avatar?: string;
      members?: string[];
      encrypted?: boolean;
    }
  | { type: "get_conversation"; id: number; conv: string }
  | {
      type: "update_group";
      id: number;
      conv: string;
      title?: string;
      description?: string;
      avatar?: string;
      history_visible?: boolean;
    }
  | { type: "add_members"; id: number; conv: string; users: string[] }
  | { type: "remove_member"; id: number; conv: string; user: string }
  | { type: "leave"; id: number; conv: string }
  | { type: "set_role"; id: number; conv: string; user: string; role: Role }
  | { type: "create_invite"; id: number; conv: string }
  | { type: "revoke_invite"; id: number; conv: string }
  | { type: "join"; id: number; token: string }
  | { type: "mute"; id: number; conv: string; until?: number }
  | { type: "unmute"; id: number; conv: string }
  | { type: "contact"; id: number; user: string; action: ContactAction }
  | { type: "block"; id: number; user: string }
  | { type: "unblock"; id: number; user: string }
  | { type: "contacts"; id: number; list: ContactList; after?: string; limit?: number }
  /** Absent settings stay. */
  | { type: "set_privacy"; id: number; direct?: Audience; groups?: Audience; presence?: Audience; read_receipts?: boolean }
  /** Accepts a message request or a group invitation. Reply: `conversation`. */
  | { type: "accept"; id: number; conv: string }
  /** Declines a group invitation, or deletes a message request (its messages so far). Reply: `ok`. */
  | { type: "decline"; id: number; conv: string }
  /** Reports `user` to the operator, about `conv` if given; `reason` up to 500 characters. Reply: `ok`. */
  | { type: "report"; id: number; user: string; conv?: string; reason?: string }
  /** Uploads the device's end-to-end encryption keys (PROTOCOL.md "Key directory"). Reply: `key_counts`. */
  | {
      type: "upload_keys";
      id: number;
      device_keys?: IdentityKeys;
      one_time_keys?: SignedKey[];
      fallback_key?: SignedKey;
      /** The user's master signing key (the first device creates it). */
      master_key?: MasterKeyInfo;
      /** The master key's signatures of devices of the user. */
      signatures?: DeviceSignature[];
    }
  /** The identity keys of the devices of `users` the caller may reach (through `conv` if given). Reply: `device_keys`. */
  | { type: "query_keys"; id: number; users: string[]; conv?: string }
  /** One key of each device named that the caller may reach. Reply: `claimed_keys`. */
  | { type: "claim_keys"; id: number; devices: DeviceRef[]; conv?: string }
  /** Queues opaque payloads for devices (PROTOCOL.md "To-device messages"). Reply: `to_device_sent`. */
  | { type: "send_to_device"; id: number; kind: string; messages: OutgoingToDevice[]; conv?: string }
  /** The device processed these payloads. Reply: `ok`. */
  | { type: "ack_to_device"; id: number; messages: ToDeviceAck[] }
  /** Turns end-to-end encryption on for good. Reply: `changed` (`seq` 0 if it was on already). */
  | { type: "encrypt"; id: number; conv: string }
  /** Sets the disappearing-message timer (one of {@link DISAPPEARING_TIMERS}; absent: off). Reply: `changed`. */
  | { type: "set_timer"; id: number; conv: string; expire_after?: number }
  /** Makes a new key backup the current one (PROTOCOL.md "Key backup"); the previous one and its keys go. Reply: `backup`. */
  | { type: "create_backup"; id: number; algorithm: string; auth_data: string }
  /** The caller's current key backup. Reply: `backup`; `not_found` when there is none. */
  | { type: "get_backup"; id: number }
  /** Replaces the current backup's `auth_data`. Reply: `backup`. */
  | { type: "update_backup"; id: number; version: string; auth_data: string }
  /** Deletes the current backup and its keys. Reply: `ok`. */
  | { type: "delete_backup"; id: number; version: string }
  /** Adds keys to the current backup, each where it is new or better than the copy kept. Reply: `backup`. */
  | { type: "put_backup_keys"; id: number; version: string; keys: BackupKeyInfo[] }
  /** A page of the current backup's keys, ordered by conversation and session. Reply: `backup_keys`. */
  | { type: "get_backup_keys"; id: number; version: string; after?: BackupKeyRef; limit?: number }
  /** Calls the other member of a direct conversation. Reply: `call_state` (`ringing`, or `ended` with `busy`). */
  | { type: "call_invite"; id: number; call: string; conv: string; media: CallMedia; signal: CallSignal }
  /** This device of the callee rings. Reply: `ok`. */
  | { type: "call_ringing"; id: number; call: string }
  /** Takes the call on this device with the SDP answer. Reply: `call_state` (`active`). */
  | { type: "call_answer"; id: number; call: string; signal: CallSignal }
  /** ICE candidates for the other side of the call. Reply: `ok`. */
  | { type: "call_candidates"; id: number; call: string; signal: CallSignal }
  /** Ends the call. Reply: `call_state` (`ended`). */
  | { type: "call_hangup"; id: number; call: string; reason: HangupReason }
  /** The STUN and TURN servers a call may use, with TURN credentials for this user. Reply: `ice_servers`. */
  | { type: "ice_servers"; id: number }
  | { type: "ping"; id: number };

/** Frames a server sends: replies (with the request's `id`) and pushes (without). */
export type ServerFrame =
  | { type: "welcome"; id: number; version: number; server: string; time: number }
  | {
      type: "session";
      id: number;
      user: string;
      device: string;
      token?: string;
      expires_at: number;
      profile: Profile;
      privacy: Privacy;
      /** What this device has left in the key directory, so that it tops up. */
      keys: KeyCounts;
    }
  | { type: "ok"; id: number }
  /** Reply to `devices`: the caller's live devices, oldest sign-in first. */
  | { type: "device_list"; id: number; devices: DeviceInfo[] }
  | DevicesChangedFrame
  | { type: "users"; id: number; users: DirectoryEntry[]; next?: string }
  | { type: "profile"; id: number; entry: DirectoryEntry }
  | {
      type: "sent";
      id: number;
      message_id: string;
      conv: string;
      seq: number;
      ts: number;
      duplicate: boolean;
      /** When the conversation's disappearing-message timer removes it (absent: never). */
      expires_at?: number;
    }
  | { type: "messages"; id: number; conv: string; messages: Message[]; more: boolean; related?: Message[] }
  | { type: "synced"; id: number; messages: Message[]; more: boolean }
  | { type: "conversations"; id: number; conversations: ConversationSummary[]; next?: string }
  | { type: "conversation"; id: number; conversation: ConversationInfo }
  /**
   * `seq`: the notice's (0 when the change wrote none, as when every user named was invited); `invited`: users
   * invited rather than added (their settings admit only their contacts' adds), absent when none.
   */
  | { type: "changed"; id: number; conv: string; seq: number; invited?: string[] }
  | { type: "invite"; id: number; conv: string; token: string }
  | { type: "pong"; id: number }
  | { type: "contacts"; id: number; contacts: ContactInfo[]; next?: string }
  /** Reply to `contact`, `block` and `unblock`; without `id`, a push: the user's view of a pair changed. */
  | ContactFrame
  /** Reply to `set_privacy`; without `id`, a push: the settings changed on another device. */
  | PrivacyFrame
  | ErrorFrame
  | { type: "message"; message: Message }
  | { type: "presence"; presence: Presence }
  | AlertFrame
  | ReadFrame
  | ReceiptsFrame
  | ReceiptFrame
  | TypingFrame
  | { type: "profile_changed"; profile: Profile }
  | { type: "new_user"; entry: DirectoryEntry }
  | InvitedFrame
  | AnsweredFrame
  /** Reply to `upload_keys`: what the device has left on the server; without `id`, a push: claims left it low. */
  | { type: "key_counts"; id?: number; one_time: number; fallback_unused: boolean }
  /** Reply to `send_to_device`: how many were queued, and the targets that got nothing. */
  | { type: "to_device_sent"; id: number; queued: number; undelivered?: Undelivered[] }
  /** Push: payloads for this device, oldest first; acknowledge each once processed. */
  | ToDeviceFrame
  /** Reply to `query_keys`: each device that uploaded keys. */
  | { type: "device_keys"; id: number; devices: DeviceKeysInfo[]; master_keys?: UserMasterKey[] }
  /** Reply to `claim_keys`: one key per device that had one. */
  | { type: "claimed_keys"; id: number; keys: ClaimedKey[] }
  /** Reply to `create_backup`, `get_backup`, `update_backup`, `put_backup_keys`: the current key backup. */
  | { type: "backup"; id: number; backup: BackupInfo }
  /** Reply to `get_backup_keys`: a page; `more` when another follows. */
  | { type: "backup_keys"; id: number; keys: BackupKeyInfo[]; more: boolean }
  /** Reply to `ice_servers`: `RTCPeerConnection`'s `iceServers`; `expires_at` when the TURN credentials expire. */
  | { type: "ice_servers"; id: number; servers: IceServer[]; expires_at?: number }
  /** Reply to `call_invite`, `call_answer`, `call_hangup`, and push (no `id`) when a call changes. */
  | CallStateFrame
  /** Push: what the other side of a call sent this device. */
  | CallSignalFrame;

/** `call_state`: a reply (with `id`) or a push. */
export interface CallStateFrame {
  type: "call_state";
  id?: number;
  call: CallInfo;
}

/**
 * A STUN or TURN server (PROTOCOL.md "Calls"): the shape of WebRTC's `RTCIceServer`. TURN servers carry a
 * `username` (`expiry:user`) and `credential` made for this user by the server.
 */
export interface IceServer {
  urls: string[];
  username?: string;
  credential?: string;
}

/** A user's master signing key with its own signature (PROTOCOL.md "Key directory", master keys). */
export interface MasterKeyInfo {
  key: string;
  signature: string;
}

/** The master key's signature of one of the user's devices. */
export interface DeviceSignature {
  device: string;
  signature: string;
}

/** A user's master key as `query_keys` shows it. */
export interface UserMasterKey {
  user: string;
  master_key: MasterKeyInfo;
}

/** What a device has left in the key directory. */
export interface KeyCounts {
  one_time: number;
  fallback_unused: boolean;
}

/** A payload for a device, in `send_to_device`; `device` absent: every device with keys of `user`. */
export interface OutgoingToDevice {
  user: string;
  device?: string;
  /** The sender's id for it: a retry with the same id is stored once. */
  id: string;
  /** Unpadded standard base64. */
  payload: string;
}

/** A processed payload, by its sending device and id. */
export interface ToDeviceAck {
  from_device: string;
  id: string;
}

/** A payload delivered to this device. */
export interface ToDeviceMessage {
  id: string;
  from_user: string;
  from_device: string;
  kind: string;
  /** Unpadded standard base64. */
  payload: string;
  ts: number;
}

/** A target of `send_to_device` that got nothing: its queue is `full`, or it is `unknown` (or unreachable). */
export interface Undelivered {
  user: string;
  device?: string;
  reason: "full" | "unknown";
}

/** Push: to-device payloads for this device. */
export interface ToDeviceFrame {
  type: "to_device";
  messages: ToDeviceMessage[];
}

/** A failed request (`id` absent when the server could not read one). */
export interface ErrorFrame {
  type: "error";
  id?: number;
  code: ErrorCode;
  message: string;
  field?: string;
  violations?: string[];
  retry_after_ms?: number;
}

/**
 * Push: a message from someone else arrived in a conversation this device is
 * not focused on and the user has not muted. The client counts it as unread
 * (+1); the server's count comes with `conversations`.
 */
export interface AlertFrame {
  type: "alert";
  conv: string;
  from: string;
  message_id: string;
  seq: number;
}

/** Push: another device of the user read `conv` up to `seq` (its unread count is 0 now). */
export interface ReadFrame {
  type: "read";
  conv: string;
  seq: number;
}

/** Reply to `receipts`: the other members' receipts that rose since the time asked; `until` is the next `since`. */
export interface ReceiptsFrame {
  type: "receipts";
  id: number;
  conv: string;
  receipts: ReceiptInfo[];
  until: number;
}

/** Push: a fellow member of `conv` received or read further (one push per rise, covering every earlier seq). */
export interface ReceiptFrame {
  type: "receipt";
  conv: string;
  user: string;
  delivered: number;
  read: number;
}

/** Push: `user` writes in `conv` (`typing`) or stopped; the state holds `ttl_ms` unless another push comes. */
export interface TypingFrame {
  type: "typing";
  conv: string;
  user: string;
  typing: boolean;
  ttl_ms: number;
}

/**
 * Reply to `contact`, `block` and `unblock` (with the request's `id`): the caller's view of the pair now.
 * Without `id`, a push to each other connection of a user whose view of a pair changed (on another device, or
 * by the other user).
 */
export interface ContactFrame {
  type: "contact";
  id?: number;
  contact: ContactInfo;
}

/** Reply to `set_privacy` (with `id`): the settings now. Without `id`, a push: they changed on another device. */
export interface PrivacyFrame {
  type: "privacy";
  id?: number;
  privacy: Privacy;
}

/**
 * A device's identity keys as uploaded: algorithm `olm.v1`, a signing key (Ed25519) and a key-agreement key
 * (Curve25519), unpadded base64, and the signing key's signature over
 * `chatcore-device-keys-v1\n<user>\n<device>\n<algorithm>\n<signing_key>\n<agreement_key>`.
 */
export interface IdentityKeys {
  algorithm: string;
  signing_key: string;
  agreement_key: string;
  signature: string;
}

/** A one-time or fallback key with the device's signature over `chatcore-one-time-key-v1\n<user>\n<device>\n<id>\n<key>`. */
export interface SignedKey {
  id: string;
  key: string;
  signature: string;
}

/** A device of a user. */
export interface DeviceRef {
  user: string;
  device: string;
}

/** A device's identity keys as the directory shows them. */
export interface DeviceKeysInfo {
  user: string;
  device: string;
  keys: IdentityKeys;
  /** The user's current master key's signature of the device; absent: unverified. */
  master_signature?: string;
}

/** A key handed out by `claim_keys`; `fallback` when it is the device's fallback key (no one-time key was left). */
export interface ClaimedKey {
  user: string;
  device: string;
  key: SignedKey;
  fallback?: boolean;
}

/** A user's key backup (PROTOCOL.md "Key backup"): `algorithm` and `auth_data` are the client's, never read by the server. */
export interface BackupInfo {
  version: string;
  algorithm: string;
  auth_data: string;
  /** Keys stored. */
  count: number;
  /** Changes whenever a key is stored. */
  etag: number;
  /** When it was created (ms since the epoch). */
  created_at: number;
}

/**
 * One conversation key in a backup: `data` is the key encrypted by the client (unpadded base64); the rest is in clear
 * so the server keeps the better copy of a session: verified first, then the lower `first_index`, then fewer forwards.
 */
export interface BackupKeyInfo {
  conv: string;
  session: string;
  first_index: number;
  forwarded: number;
  verified: boolean;
  data: string;
}

/** Where a page of backup keys starts: after this key. */
export interface BackupKeyRef {
  conv: string;
  session: string;
}

/** One of the caller's devices, as `device_list` shows it. */
export interface DeviceInfo {
  device: string;
  /** The name its client gave it (at sign-in, or by `rename_device`). */
  name: string;
  /** When it signed in (ms since the epoch). */
  created_at: number;
  /** When it last signed in or resumed. */
  last_active: number;
  /** Whether it uploaded its identity keys (others can encrypt to it). */
  keys: boolean;
  /** Whether it is the asking device. */
  current: boolean;
}

/** Push: the devices of `user` (the caller's own, or a conversation partner's) changed: query them again. */
export interface DevicesChangedFrame {
  type: "devices_changed";
  user: string;
}

/** Push: the user was invited to a group; it waits in the `requests` list, as `conversation` shows it. */
export interface InvitedFrame {
  type: "invited";
  conversation: ConversationSummary;
}

/** Push: the user answered a message request or invitation on another device: accepted (it is in the main list now) or declined. */
export interface AnsweredFrame {
  type: "answered";
  conv: string;
  accepted: boolean;
}

/** The client frame of type `T`. */
export type ClientFrameOf<T extends ClientFrame["type"]> = Extract<ClientFrame, { type: T }>;
/** The server frame of type `T`. */
export type ServerFrameOf<T extends ServerFrame["type"]> = Extract<ServerFrame, { type: T }>;

/** A frame that does not follow the schema (or bytes that are not a frame). */
export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
}

// ---------------------------------------------------------------------------
// Schema. Mirrors chatcore/src/protocol/frame.rs and model.rs; the vector test
// fails when the two disagree.

/** How a value is checked. */
type Kind =
  | "string"
  | "u32"
  | "u64"
  | "i64"
  | "bool"
  | { list: Kind }
  | { struct: Field[] }
  | { tagged: string; variants: Record<string, Field[]> }
  | { oneOf: readonly string[] };

/**
 * How a field's absence is written, following the serde attributes:
 * `required`; `optional` = `Option` with `skip_serializing_if` (omitted when
 * absent, `null` accepted on input; every `Option` of the protocol is one);
 * `nonempty` = a `Vec` skipped when empty; `flag` = a `bool` that defaults
 * to false and is skipped when false; `defaulted` = a `Vec` that defaults to
 * empty when absent and is always written; `on` = a `bool` that defaults to
 * true and is skipped when true.
 */
type Mode = "required" | "optional" | "nonempty" | "flag" | "defaulted" | "on";

interface Field {
  name: string;
  kind: Kind;
  mode: Mode;
}

const req = (name: string, kind: Kind): Field => ({ name, kind, mode: "required" });
const opt = (name: string, kind: Kind): Field => ({ name, kind, mode: "optional" });
const vec = (name: string, kind: Kind): Field => ({ name, kind, mode: "nonempty" });
const flag = (name: string): Field => ({ name, kind: "bool", mode: "flag" });
const always = (name: string, kind: Kind): Field => ({ name, kind, mode: "defaulted" });
const on = (name: string): Field => ({ name, kind: "bool", mode: "on" });

const id = req("id", "u32");
/** Millis is an i64 in Rust. */
const millis = "i64";

const ROLE: Kind = { oneOf: ROLES };
const AUDIENCE: Kind = { oneOf: AUDIENCES };
const CONVERSATION_KIND: Kind = { oneOf: ["direct", "group"] };

const FILE_ENCRYPTION: Kind = { struct: [req("key", "string"), req("iv", "string"), req("sha256", "string")] };

const CALL_MEDIA_KIND: Kind = { oneOf: CALL_MEDIA };
const CALL_END_KIND: Kind = { oneOf: CALL_ENDS };

const CONTENT: Kind = {
  tagged: "kind",
  variants: {
    text: [req("text", "string")],
    encrypted: [req("algorithm", "string"), req("device", "string"), req("session", "string"), req("ciphertext", "string")],
    group_created: [req("title", "string"), req("members", { list: "string" })],
    members_added: [req("users", { list: "string" })],
    member_joined: [],
    member_removed: [req("user", "string")],
    member_left: [opt("new_owner", "string")],
    role_changed: [req("user", "string"), req("role", ROLE)],
    group_updated: [
      opt("title", "string"),
      opt("description", "string"),
      opt("avatar", "string"),
      opt("history_visible", "bool"),
    ],
    encryption_enabled: [],
    void: [],
    deleted: [],
    timer_changed: [opt("expire_after", millis)],
    call: [req("call", "string"), req("media", CALL_MEDIA_KIND), req("outcome", CALL_END_KIND), opt("duration_ms", "u64")],
    image: [
      req("media", "string"),
      req("mime", "string"),
      req("width", "u32"),
      req("height", "u32"),
      req("size", "u64"),
      opt("thumbnail", "string"),
      opt("caption", "string"),
      opt("encryption", FILE_ENCRYPTION),
    ],
    file: [
      req("media", "string"),
      req("name", "string"),
      req("mime", "string"),
      req("size", "u64"),
      opt("encryption", FILE_ENCRYPTION),
    ],
    voice: [
      req("media", "string"),
      req("mime", "string"),
      req("duration_ms", "u32"),
      vec("waveform", { list: "u32" }),
      req("size", "u64"),
      opt("encryption", FILE_ENCRYPTION),
    ],
  },
};

const REL: Kind = { struct: [req("kind", { oneOf: REL_KINDS }), req("target", "string")] };

const MESSAGE: Kind = {
  struct: [
    req("id", "string"),
    req("conv", "string"),
    req("seq", "u64"),
    req("from", "string"),
    req("client_id", "string"),
    req("ts", millis),
    opt("rel", REL),
    vec("mentions", { list: "string" }),
    vec("media", { list: "string" }),
    opt("expires_at", millis),
    req("content", CONTENT),
  ],
};

const PROFILE: Kind = {
  struct: [
    req("user", "string"),
    req("username", "string"),
    req("display_name", "string"),
    req("about", "string"),
    opt("avatar", "string"),
  ],
};

const PRESENCE: Kind = {
  struct: [req("user", "string"), req("online", "bool"), opt("last_seen", millis)],
};

const DIRECTORY_ENTRY: Kind = { struct: [req("profile", PROFILE), req("presence", PRESENCE)] };

const PRIVACY: Kind = {
  struct: [req("direct", AUDIENCE), req("groups", AUDIENCE), req("presence", AUDIENCE), on("read_receipts")],
};

const RECEIPT_INFO: Kind = { struct: [req("user", "string"), req("delivered", "u64"), req("read", "u64")] };

const REQUEST_INFO: Kind = { struct: [req("by", PROFILE), req("at", millis)] };

const CONTACT_INFO: Kind = {
  struct: [
    req("profile", PROFILE),
    req("state", { oneOf: CONTACT_STATES }),
    req("blocked", "bool"),
    opt("since", millis),
    opt("presence", PRESENCE),
  ],
};

const LAST_ENTRY: Kind = {
  struct: [
    req("seq", "u64"),
    req("ts", millis),
    req("from", "string"),
    req("kind", "string"),
    opt("rel", { oneOf: REL_KINDS }),
    opt("preview", "string"),
  ],
};

const CONVERSATION_SUMMARY: Kind = {
  struct: [
    req("conv", "string"),
    req("kind", CONVERSATION_KIND),
    opt("title", "string"),
    opt("avatar", "string"),
    opt("peer", PROFILE),
    req("members", "u32"),
    opt("role", ROLE),
    flag("left"),
    req("last_seq", "u64"),
    req("unread", "u64"),
    opt("mentions", "u64"),
    opt("expire_after", millis),
    opt("last", LAST_ENTRY),
    flag("encrypted"),
    flag("muted"),
    opt("muted_until", millis),
    opt("request", REQUEST_INFO),
  ],
};

const MEMBER_INFO: Kind = { struct: [req("user", "string"), req("role", ROLE), req("joined_at", millis)] };

const CONVERSATION_INFO: Kind = {
  struct: [
    req("conv", "string"),
    req("kind", CONVERSATION_KIND),
    opt("title", "string"),
    opt("description", "string"),
    opt("avatar", "string"),
    req("history_visible", "bool"),
    flag("encrypted"),
    opt("expire_after", millis),
    req("created_at", millis),
    req("members", { list: MEMBER_INFO }),
    opt("role", ROLE),
    req("last_seq", "u64"),
    req("first_seq", "u64"),
    vec("invited", { list: "string" }),
    opt("request", REQUEST_INFO),
  ],
};

const IDENTITY_KEYS: Kind = {
  struct: [req("algorithm", "string"), req("signing_key", "string"), req("agreement_key", "string"), req("signature", "string")],
};

const SIGNED_KEY: Kind = { struct: [req("id", "string"), req("key", "string"), req("signature", "string")] };

const DEVICE_REF: Kind = { struct: [req("user", "string"), req("device", "string")] };

const DEVICE_KEYS_INFO: Kind = {
  struct: [req("user", "string"), req("device", "string"), req("keys", IDENTITY_KEYS), opt("master_signature", "string")],
};

const MASTER_KEY_INFO: Kind = { struct: [req("key", "string"), req("signature", "string")] };

const DEVICE_SIGNATURE: Kind = { struct: [req("device", "string"), req("signature", "string")] };

const USER_MASTER_KEY: Kind = { struct: [req("user", "string"), req("master_key", MASTER_KEY_INFO)] };

const CLAIMED_KEY: Kind = {
  struct: [req("user", "string"), req("device", "string"), req("key", SIGNED_KEY), flag("fallback")],
};

const BACKUP_INFO: Kind = {
  struct: [
    req("version", "string"),
    req("algorithm", "string"),
    req("auth_data", "string"),
    req("count", "u64"),
    req("etag", "u64"),
    req("created_at", millis),
  ],
};

const ICE_SERVER: Kind = {
  struct: [req("urls", { list: "string" }), opt("username", "string"), opt("credential", "string")],
};

const ICE_CANDIDATE: Kind = {
  struct: [req("candidate", "string"), opt("sdp_mid", "string"), opt("sdp_m_line_index", "u32")],
};

const CALL_SIGNAL: Kind = {
  struct: [
    opt("sdp", "string"),
    vec("candidates", { list: ICE_CANDIDATE }),
    vec("sealed", { list: { struct: [req("device", "string"), req("payload", "string")] } }),
  ],
};

const CALL_INFO: Kind = {
  struct: [
    req("call", "string"),
    req("conv", "string"),
    req("caller", "string"),
    req("caller_device", "string"),
    req("callee", "string"),
    req("media", CALL_MEDIA_KIND),
    req("state", { oneOf: ["ringing", "active", "ended"] }),
    flag("ringing"),
    opt("answered_by", "string"),
    opt("reason", CALL_END_KIND),
    req("started_at", millis),
    opt("answered_at", millis),
    opt("ended_at", millis),
  ],
};

const BACKUP_KEY_INFO: Kind = {
  struct: [
    req("conv", "string"),
    req("session", "string"),
    req("first_index", "u32"),
    req("forwarded", "u32"),
    req("verified", "bool"),
    req("data", "string"),
  ],
};

const BACKUP_KEY_REF: Kind = { struct: [req("conv", "string"), req("session", "string")] };

const KEY_COUNTS: Kind = { struct: [req("one_time", "u32"), req("fallback_unused", "bool")] };

const OUTGOING_TO_DEVICE: Kind = {
  struct: [req("user", "string"), opt("device", "string"), req("id", "string"), req("payload", "string")],
};

const TO_DEVICE_ACK: Kind = { struct: [req("from_device", "string"), req("id", "string")] };

const TO_DEVICE_MESSAGE: Kind = {
  struct: [
    req("id", "string"),
    req("from_user", "string"),
    req("from_device", "string"),
    req("kind", "string"),
    req("payload", "string"),
    req("ts", millis),
  ],
};

const UNDELIVERED: Kind = {
  struct: [req("user", "string"), opt("device", "string"), req("reason", { oneOf: ["full", "unknown"] })],
};

const DEVICE_INFO: Kind = {
  struct: [
    req("device", "string"),
    req("name", "string"),
    req("created_at", millis),
    req("last_active", millis),
    req("keys", "bool"),
    req("current", "bool"),
  ],
};

const CLIENT_FRAME: Kind = {
  tagged: "type",
  variants: {
    hello: [id, req("version", "u32"), opt("client", "string")],
    register: [
      id,
      req("username", "string"),
      req("email", "string"),
      req("phone", "string"),
      req("display_name", "string"),
      req("password", "string"),
      req("device", "string"),
    ],
    login: [id, req("login", "string"), req("password", "string"), req("device", "string")],
    resume: [id, req("token", "string")],
    logout: [id],
    change_password: [id, req("old_password", "string"), req("new_password", "string")],
    devices: [id],
    rename_device: [id, req("device", "string"), req("name", "string")],
    revoke_device: [id, req("device", "string")],
    reset_request: [id, req("email", "string")],
    reset_confirm: [id, req("token", "string"), req("new_password", "string")],
    search_users: [id, req("query", "string"), opt("after", "string"), opt("limit", "u32")],
    get_profile: [id, req("user", "string")],
    update_profile: [
      id,
      opt("display_name", "string"),
      opt("about", "string"),
      opt("avatar", "string"),
    ],
    send: [
      id,
      opt("conv", "string"),
      opt("to", "string"),
      req("client_id", "string"),
      opt("rel", REL),
      vec("mentions", { list: "string" }),
      vec("media", { list: "string" }),
      req("content", CONTENT),
    ],
    history: [id, req("conv", "string"), opt("before", "u64"), opt("limit", "u32")],
    sync: [id, opt("limit", "u32")],
    ack: [id, req("conv", "string"), req("seq", "u64")],
    read: [id, req("conv", "string"), req("seq", "u64")],
    typing: [id, req("conv", "string"), req("typing", "bool")],
    receipts: [id, req("conv", "string"), opt("since", millis)],
    focus: [id, opt("conv", "string")],
    conversations: [id, opt("list", { oneOf: CONVERSATION_LISTS }), opt("after", "string"), opt("limit", "u32")],
    ping: [id],
    open_direct: [id, req("user", "string"), flag("encrypted")],
    create_group: [
      id,
      req("title", "string"),
      opt("description", "string"),
      opt("avatar", "string"),
      always("members", { list: "string" }),
      flag("encrypted"),
    ],
    get_conversation: [id, req("conv", "string")],
    update_group: [
      id,
      req("conv", "string"),
      opt("title", "string"),
      opt("description", "string"),
      opt("avatar", "string"),
      opt("history_visible", "bool"),
    ],
    add_members: [id, req("conv", "string"), req("users", { list: "string" })],
    remove_member: [id, req("conv", "string"), req("user", "string")],
    leave: [id, req("conv", "string")],
    set_role: [id, req("conv", "string"), req("user", "string"), req("role", ROLE)],
    create_invite: [id, req("conv", "string")],
    revoke_invite: [id, req("conv", "string")],
    join: [id, req("token", "string")],
    mute: [id, req("conv", "string"), opt("until", millis)],
    unmute: [id, req("conv", "string")],
    contact: [id, req("user", "string"), req("action", { oneOf: CONTACT_ACTIONS })],
    block: [id, req("user", "string")],
    unblock: [id, req("user", "string")],
    contacts: [id, req("list", { oneOf: CONTACT_LISTS }), opt("after", "string"), opt("limit", "u32")],
    set_privacy: [
      id,
      opt("direct", AUDIENCE),
      opt("groups", AUDIENCE),
      opt("presence", AUDIENCE),
      opt("read_receipts", "bool"),
    ],
    accept: [id, req("conv", "string")],
    decline: [id, req("conv", "string")],
    report: [id, req("user", "string"), opt("conv", "string"), opt("reason", "string")],
    upload_keys: [
      id,
      opt("device_keys", IDENTITY_KEYS),
      vec("one_time_keys", { list: SIGNED_KEY }),
      opt("fallback_key", SIGNED_KEY),
      opt("master_key", MASTER_KEY_INFO),
      vec("signatures", { list: DEVICE_SIGNATURE }),
    ],
    query_keys: [id, req("users", { list: "string" }), opt("conv", "string")],
    claim_keys: [id, req("devices", { list: DEVICE_REF }), opt("conv", "string")],
    send_to_device: [id, req("kind", "string"), req("messages", { list: OUTGOING_TO_DEVICE }), opt("conv", "string")],
    ack_to_device: [id, req("messages", { list: TO_DEVICE_ACK })],
    encrypt: [id, req("conv", "string")],
    set_timer: [id, req("conv", "string"), opt("expire_after", millis)],
    create_backup: [id, req("algorithm", "string"), req("auth_data", "string")],
    get_backup: [id],
    update_backup: [id, req("version", "string"), req("auth_data", "string")],
    delete_backup: [id, req("version", "string")],
    put_backup_keys: [id, req("version", "string"), req("keys", { list: BACKUP_KEY_INFO })],
    get_backup_keys: [id, req("version", "string"), opt("after", BACKUP_KEY_REF), opt("limit", "u32")],
    call_invite: [id, req("call", "string"), req("conv", "string"), req("media", CALL_MEDIA_KIND), req("signal", CALL_SIGNAL)],
    call_ringing: [id, req("call", "string")],
    call_answer: [id, req("call", "string"), req("signal", CALL_SIGNAL)],
    call_candidates: [id, req("call", "string"), req("signal", CALL_SIGNAL)],
    call_hangup: [id, req("call", "string"), req("reason", { oneOf: HANGUP_REASONS })],
    ice_servers: [id],
  },
};

const SERVER_FRAME: Kind = {
  tagged: "type",
  variants: {
    welcome: [id, req("version", "u32"), req("server", "string"), req("time", millis)],
    session: [
      id,
      req("user", "string"),
      req("device", "string"),
      opt("token", "string"),
      req("expires_at", millis),
      req("profile", PROFILE),
      req("privacy", PRIVACY),
      req("keys", KEY_COUNTS),
    ],
    ok: [id],
    device_list: [id, req("devices", { list: DEVICE_INFO })],
    devices_changed: [req("user", "string")],
    users: [id, req("users", { list: DIRECTORY_ENTRY }), opt("next", "string")],
    profile: [id, req("entry", DIRECTORY_ENTRY)],
    sent: [
      id,
      req("message_id", "string"),
      req("conv", "string"),
      req("seq", "u64"),
      req("ts", millis),
      req("duplicate", "bool"),
      opt("expires_at", millis),
    ],
    messages: [id, req("conv", "string"), req("messages", { list: MESSAGE }), req("more", "bool"), vec("related", { list: MESSAGE })],
    synced: [id, req("messages", { list: MESSAGE }), req("more", "bool")],
    conversations: [id, req("conversations", { list: CONVERSATION_SUMMARY }), opt("next", "string")],
    conversation: [id, req("conversation", CONVERSATION_INFO)],
    changed: [id, req("conv", "string"), req("seq", "u64"), vec("invited", { list: "string" })],
    invite: [id, req("conv", "string"), req("token", "string")],
    pong: [id],
    error: [
      opt("id", "u32"),
      req("code", { oneOf: ERROR_CODES }),
      req("message", "string"),
      opt("field", "string"),
      vec("violations", { list: "string" }),
      opt("retry_after_ms", "u64"),
    ],
    message: [req("message", MESSAGE)],
    presence: [req("presence", PRESENCE)],
    alert: [
      req("conv", "string"),
      req("from", "string"),
      req("message_id", "string"),
      req("seq", "u64"),
    ],
    read: [req("conv", "string"), req("seq", "u64")],
    typing: [req("conv", "string"), req("user", "string"), req("typing", "bool"), req("ttl_ms", "u32")],
    receipts: [id, req("conv", "string"), req("receipts", { list: RECEIPT_INFO }), req("until", millis)],
    receipt: [req("conv", "string"), req("user", "string"), req("delivered", "u64"), req("read", "u64")],
    profile_changed: [req("profile", PROFILE)],
    new_user: [req("entry", DIRECTORY_ENTRY)],
    contact: [opt("id", "u32"), req("contact", CONTACT_INFO)],
    contacts: [id, req("contacts", { list: CONTACT_INFO }), opt("next", "string")],
    privacy: [opt("id", "u32"), req("privacy", PRIVACY)],
    invited: [req("conversation", CONVERSATION_SUMMARY)],
    answered: [req("conv", "string"), req("accepted", "bool")],
    key_counts: [opt("id", "u32"), req("one_time", "u32"), req("fallback_unused", "bool")],
    to_device_sent: [id, req("queued", "u32"), vec("undelivered", { list: UNDELIVERED })],
    to_device: [req("messages", { list: TO_DEVICE_MESSAGE })],
    device_keys: [id, req("devices", { list: DEVICE_KEYS_INFO }), vec("master_keys", { list: USER_MASTER_KEY })],
    claimed_keys: [id, req("keys", { list: CLAIMED_KEY })],
    backup: [id, req("backup", BACKUP_INFO)],
    backup_keys: [id, req("keys", { list: BACKUP_KEY_INFO }), req("more", "bool")],
    ice_servers: [id, req("servers", { list: ICE_SERVER }), opt("expires_at", millis)],
    call_state: [opt("id", "u32"), req("call", CALL_INFO)],
    call_signal: [
      req("call", "string"),
      req("device", "string"),
      opt("sdp", "string"),
      vec("candidates", { list: ICE_CANDIDATE }),
      opt("sealed", "string"),
    ],
  },
};

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function fail(path: string, what: string): never {
  throw new ProtocolError(`${path || "frame"}: ${what}`);
}

function canonFields(obj: Record<string, unknown>, fields: Field[], out: Record<string, unknown>, path: string, skip?: string): void {
  const known = new Set(fields.map((f) => f.name));
  for (const key of Object.keys(obj)) {
    if (key !== skip && !known.has(key)) fail(path, `unknown field \`${key}\``);
  }
  for (const f of fields) {
    const v = obj[f.name];
    const at = path ? `${path}.${f.name}` : f.name;
    if (v === undefined || v === null) {
      if (f.mode === "required" || (v === null && f.mode !== "optional")) fail(at, v === null ? "must not be null" : "missing");
      if (f.mode === "defaulted") out[f.name] = [];
      continue;
    }
    const c = canon(v, f.kind, at);
    if (f.mode === "nonempty" && Array.isArray(c) && c.length === 0) continue;
    if ((f.mode === "flag" && c === false) || (f.mode === "on" && c === true)) continue;
    out[f.name] = c;
  }
}

function canon(v: unknown, kind: Kind, path: string): unknown {
  switch (kind) {
    case "string":
      if (typeof v !== "string") fail(path, "expected a string");
      return v;
    case "bool":
      if (typeof v !== "boolean") fail(path, "expected a boolean");
      return v;
    case "u32":
    case "u64":
    case "i64": {
      // MessagePack decoders may hand out bigints for 64-bit values.
      const n = typeof v === "bigint" && v >= -BigInt(Number.MAX_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
      if (typeof n !== "number" || !Number.isSafeInteger(n)) fail(path, "expected an integer (|n| < 2^53)");
      if (kind !== "i64" && n < 0) fail(path, "expected an unsigned integer");
      if (kind === "u32" && n > 0xffff_ffff) fail(path, "expected a u32");
      return n;
    }
  }
  if ("list" in kind) {
    if (!Array.isArray(v)) fail(path, "expected an array");
    return v.map((item, i) => canon(item, kind.list, `${path}[${i}]`));
  }
  if ("oneOf" in kind) {
    if (typeof v !== "string" || !kind.oneOf.includes(v)) fail(path, `unknown value ${JSON.stringify(v)}`);
    return v;
  }
  if (!isPlainObject(v)) fail(path, "expected a map");
  if ("struct" in kind) {
    const out: Record<string, unknown> = {};
    canonFields(v, kind.struct, out, path);
    return out;
  }
  const tag = v[kind.tagged];
  if (typeof tag !== "string") fail(path, `missing \`${kind.tagged}\``);
  const fields = Object.prototype.hasOwnProperty.call(kind.variants, tag) ? kind.variants[tag] : undefined;
  if (!fields) fail(path, `unknown ${kind.tagged} \`${tag}\``);
  const out: Record<string, unknown> = { [kind.tagged]: tag };
  canonFields(v, fields, out, path, kind.tagged);
  return out;
}

/**
 * The canonical form of a client frame: a new object with the fields in wire
 * order, absent optionals dropped. Throws {@link ProtocolError} when the value
 * is not a valid client frame.
 */
export function canonicalClientFrame(frame: unknown): ClientFrame {
  return canon(frame, CLIENT_FRAME, "") as ClientFrame;
}

/** The canonical form of a content (as a decrypted one is checked); see {@link canonicalClientFrame}. */
export function canonicalContent(content: unknown): Content {
  return canon(content, CONTENT, "content") as Content;
}

/** The canonical form of a server frame; see {@link canonicalClientFrame}. */
export function canonicalServerFrame(frame: unknown): ServerFrame {
  return canon(frame, SERVER_FRAME, "") as ServerFrame;
}

/** Every client frame type. */
export const CLIENT_FRAME_TYPES = Object.keys((CLIENT_FRAME as { variants: object }).variants) as ClientFrame["type"][];
/** Every server frame type. */
export const SERVER_FRAME_TYPES = Object.keys((SERVER_FRAME as { variants: object }).variants) as ServerFrame["type"][];

/** Request types allowed before signing in (PROTOCOL.md, *Lifecycle*). */
export const SIGNED_OUT_TYPES: ReadonlySet<ClientFrame["type"]> = new Set([
  "hello",
  "register",
  "login",
  "resume",
  "reset_request",
  "reset_confirm",
  "ping",
]);
