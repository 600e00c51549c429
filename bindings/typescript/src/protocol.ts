/**
 * The frames of the chatcore protocol, version 1 (docs/PROTOCOL.md), as
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

/** The protocol version this binding speaks. */
export const PROTOCOL_VERSION = 1;

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

/** A message payload, tagged by `kind`. */
export type Content = { kind: "text"; text: string };

/** A stored message. */
export interface Message {
  id: string;
  conv: string;
  /** Position in the conversation: 1, 2, 3, ... without gaps. */
  seq: number;
  from: string;
  client_id: string;
  ts: number;
  content: Content;
}

/** Contact card and presence, as the directory lists them. */
export interface DirectoryEntry {
  profile: Profile;
  presence: Presence;
}

/** One conversation of the caller. */
export interface ConversationSummary {
  conv: string;
  peer?: string;
  last_seq: number;
  unread: number;
  last?: Message;
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
  | { type: "reset_request"; id: number; email: string }
  | { type: "reset_confirm"; id: number; token: string; new_password: string }
  | { type: "search_users"; id: number; query: string; after?: string; limit?: number }
  | { type: "get_profile"; id: number; user: string }
  | { type: "update_profile"; id: number; display_name?: string; about?: string; avatar?: string }
  | { type: "send"; id: number; to: string; client_id: string; content: Content }
  | { type: "history"; id: number; conv: string; before?: number; limit?: number }
  | { type: "sync"; id: number; limit?: number }
  | { type: "ack"; id: number; conv: string; seq: number }
  | { type: "read"; id: number; conv: string; seq: number }
  | { type: "focus"; id: number; conv?: string }
  | { type: "conversations"; id: number }
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
    }
  | { type: "ok"; id: number }
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
    }
  | { type: "messages"; id: number; conv: string; messages: Message[]; more: boolean }
  | { type: "synced"; id: number; messages: Message[]; more: boolean }
  | { type: "conversations"; id: number; conversations: ConversationSummary[] }
  | { type: "pong"; id: number }
  | ErrorFrame
  | { type: "message"; message: Message }
  | { type: "presence"; presence: Presence }
  | AlertFrame;

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

/** Push: a message arrived in a conversation this device is not focused on. */
export interface AlertFrame {
  type: "alert";
  conv: string;
  from: string;
  message_id: string;
  seq: number;
  unread: number;
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
 * `nonempty` = a `Vec` skipped when empty.
 */
type Mode = "required" | "optional" | "nonempty";

interface Field {
  name: string;
  kind: Kind;
  mode: Mode;
}

const req = (name: string, kind: Kind): Field => ({ name, kind, mode: "required" });
const opt = (name: string, kind: Kind): Field => ({ name, kind, mode: "optional" });
const vec = (name: string, kind: Kind): Field => ({ name, kind, mode: "nonempty" });

const id = req("id", "u32");
/** Millis is an i64 in Rust. */
const millis = "i64";

const CONTENT: Kind = { tagged: "kind", variants: { text: [req("text", "string")] } };

const MESSAGE: Kind = {
  struct: [
    req("id", "string"),
    req("conv", "string"),
    req("seq", "u64"),
    req("from", "string"),
    req("client_id", "string"),
    req("ts", millis),
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

const CONVERSATION_SUMMARY: Kind = {
  struct: [
    req("conv", "string"),
    opt("peer", "string"),
    req("last_seq", "u64"),
    req("unread", "u64"),
    opt("last", MESSAGE),
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
    send: [id, req("to", "string"), req("client_id", "string"), req("content", CONTENT)],
    history: [id, req("conv", "string"), opt("before", "u64"), opt("limit", "u32")],
    sync: [id, opt("limit", "u32")],
    ack: [id, req("conv", "string"), req("seq", "u64")],
    read: [id, req("conv", "string"), req("seq", "u64")],
    focus: [id, opt("conv", "string")],
    conversations: [id],
    ping: [id],
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
    ],
    ok: [id],
    users: [id, req("users", { list: DIRECTORY_ENTRY }), opt("next", "string")],
    profile: [id, req("entry", DIRECTORY_ENTRY)],
    sent: [
      id,
      req("message_id", "string"),
      req("conv", "string"),
      req("seq", "u64"),
      req("ts", millis),
      req("duplicate", "bool"),
    ],
    messages: [id, req("conv", "string"), req("messages", { list: MESSAGE }), req("more", "bool")],
    synced: [id, req("messages", { list: MESSAGE }), req("more", "bool")],
    conversations: [id, req("conversations", { list: CONVERSATION_SUMMARY })],
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
      req("unread", "u64"),
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
      if (f.mode === "required") fail(at, v === null ? "must not be null" : "missing");
      continue;
    }
    const c = canon(v, f.kind, at);
    if (f.mode === "nonempty" && Array.isArray(c) && c.length === 0) continue;
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

const utf8 = new TextEncoder();

function compareBytes(a: string, b: string): number {
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    if (x[i] !== y[i]) return x[i]! - y[i]!;
  }
  return x.length - y.length;
}

/**
 * The id of the 1:1 conversation of two users, `dm:<lower>:<higher>` (ordered
 * as UTF-8 byte strings, like the server), the same whichever side asks.
 */
export function directConversationId(a: string, b: string): string {
  return compareBytes(a, b) <= 0 ? `dm:${a}:${b}` : `dm:${b}:${a}`;
}

/** The other member of a 1:1 conversation, seen from `me`; `undefined` if `me` is not a member. */
export function peerOf(conv: string, me: string): string | undefined {
  const m = /^dm:([^:]+):([^:]+)$/.exec(conv);
  if (!m) return undefined;
  if (m[1] === me) return m[2];
  if (m[2] === me) return m[1];
  return undefined;
}
