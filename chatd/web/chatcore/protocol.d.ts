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
export declare const PROTOCOL_VERSION = 1;
/** WebSocket subprotocol names; the codec is chosen by subprotocol. */
export declare const SUBPROTOCOL_MSGPACK = "chatcore.v1.msgpack";
/** See {@link SUBPROTOCOL_MSGPACK}. */
export declare const SUBPROTOCOL_JSON = "chatcore.v1.json";
/** Stable machine-readable reasons of an `error` frame. */
export type ErrorCode = "unauthenticated" | "forbidden" | "not_found" | "conflict" | "weak_password" | "rate_limited" | "limit_reached" | "too_large" | "invalid_frame" | "invalid_argument" | "unsupported_version" | "unavailable" | "internal";
/** Every {@link ErrorCode}, in the order of PROTOCOL.md. */
export declare const ERROR_CODES: readonly ErrorCode[];
/** Password rules a `weak_password` error lists in `violations`. */
export type PasswordViolation = "too_short" | "too_long" | "contains_username" | "contains_email" | "common" | "too_guessable";
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
export type Content = {
    kind: "text";
    text: string;
};
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
export type ClientFrame = {
    type: "hello";
    id: number;
    version: number;
    client?: string;
} | {
    type: "register";
    id: number;
    username: string;
    email: string;
    phone: string;
    display_name: string;
    password: string;
    device: string;
} | {
    type: "login";
    id: number;
    login: string;
    password: string;
    device: string;
} | {
    type: "resume";
    id: number;
    token: string;
} | {
    type: "logout";
    id: number;
} | {
    type: "change_password";
    id: number;
    old_password: string;
    new_password: string;
} | {
    type: "reset_request";
    id: number;
    email: string;
} | {
    type: "reset_confirm";
    id: number;
    token: string;
    new_password: string;
} | {
    type: "search_users";
    id: number;
    query: string;
    after?: string;
    limit?: number;
} | {
    type: "get_profile";
    id: number;
    user: string;
} | {
    type: "update_profile";
    id: number;
    display_name?: string;
    about?: string;
    avatar?: string;
} | {
    type: "send";
    id: number;
    to: string;
    client_id: string;
    content: Content;
} | {
    type: "history";
    id: number;
    conv: string;
    before?: number;
    limit?: number;
} | {
    type: "sync";
    id: number;
    limit?: number;
} | {
    type: "ack";
    id: number;
    conv: string;
    seq: number;
} | {
    type: "read";
    id: number;
    conv: string;
    seq: number;
} | {
    type: "focus";
    id: number;
    conv?: string;
} | {
    type: "conversations";
    id: number;
} | {
    type: "ping";
    id: number;
};
/** Frames a server sends: replies (with the request's `id`) and pushes (without). */
export type ServerFrame = {
    type: "welcome";
    id: number;
    version: number;
    server: string;
    time: number;
} | {
    type: "session";
    id: number;
    user: string;
    device: string;
    token?: string;
    expires_at: number;
    profile: Profile;
} | {
    type: "ok";
    id: number;
} | {
    type: "users";
    id: number;
    users: DirectoryEntry[];
    next?: string;
} | {
    type: "profile";
    id: number;
    entry: DirectoryEntry;
} | {
    type: "sent";
    id: number;
    message_id: string;
    conv: string;
    seq: number;
    ts: number;
    duplicate: boolean;
} | {
    type: "messages";
    id: number;
    conv: string;
    messages: Message[];
    more: boolean;
} | {
    type: "synced";
    id: number;
    messages: Message[];
    more: boolean;
} | {
    type: "conversations";
    id: number;
    conversations: ConversationSummary[];
} | {
    type: "pong";
    id: number;
} | ErrorFrame | {
    type: "message";
    message: Message;
} | {
    type: "presence";
    presence: Presence;
} | AlertFrame;
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
export type ClientFrameOf<T extends ClientFrame["type"]> = Extract<ClientFrame, {
    type: T;
}>;
/** The server frame of type `T`. */
export type ServerFrameOf<T extends ServerFrame["type"]> = Extract<ServerFrame, {
    type: T;
}>;
/** A frame that does not follow the schema (or bytes that are not a frame). */
export declare class ProtocolError extends Error {
    readonly name = "ProtocolError";
}
/**
 * The canonical form of a client frame: a new object with the fields in wire
 * order, absent optionals dropped. Throws {@link ProtocolError} when the value
 * is not a valid client frame.
 */
export declare function canonicalClientFrame(frame: unknown): ClientFrame;
/** The canonical form of a server frame; see {@link canonicalClientFrame}. */
export declare function canonicalServerFrame(frame: unknown): ServerFrame;
/** Every client frame type. */
export declare const CLIENT_FRAME_TYPES: ClientFrame["type"][];
/** Every server frame type. */
export declare const SERVER_FRAME_TYPES: ServerFrame["type"][];
/** Request types allowed before signing in (PROTOCOL.md, *Lifecycle*). */
export declare const SIGNED_OUT_TYPES: ReadonlySet<ClientFrame["type"]>;
/**
 * The id of the 1:1 conversation of two users, `dm:<lower>:<higher>` (ordered
 * as UTF-8 byte strings, like the server), the same whichever side asks.
 */
export declare function directConversationId(a: string, b: string): string;
/** The other member of a 1:1 conversation, seen from `me`; `undefined` if `me` is not a member. */
export declare function peerOf(conv: string, me: string): string | undefined;
