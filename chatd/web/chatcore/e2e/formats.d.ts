/**
 * The MessagePack payloads of docs/E2E.md "Formats", byte-compatible with
 * the Rust client (rmp-serde with named fields, in its field order):
 *
 * - the to-device envelope `{type: "olm.v1", sender_key, message_type, body: bin}`;
 * - the Olm plaintext `{sender, sender_device, sender_key, recipient,
 *   recipient_device, recipient_key, type, ...}` with `type` one of
 *   `room_key {conv, session, key}`, `forwarded_room_key {conv, session, key,
 *   session_user, session_device, session_sender_key}`, `master_key {key}`,
 *   `custom {kind, data: bin}`;
 * - the Megolm plaintext `{type: "content", conv, content: bin}`.
 *
 * Decoding checks every field's type: a payload that does not fit is a
 * `malformed` (or `unsupported`) {@link E2eError}, never a crash.
 *
 * @module
 */
/** MessagePack of `value` (maps in their insertion order, as rmp-serde writes struct fields). */
export declare function pack(value: unknown): Uint8Array;
/** Decodes MessagePack; a `malformed` error when it is not. */
export declare function unpack(bytes: Uint8Array): unknown;
/** The to-device envelope of kind `olm.v1`. */
export interface Envelope {
    /** The sender's Curve25519 key (base64). */
    senderKey: string;
    /** 0: a pre-key message, 1: a normal one. */
    messageType: number;
    /** The Olm message. */
    body: Uint8Array;
}
/** Encodes a to-device envelope. */
export declare function packEnvelope(e: Envelope): Uint8Array;
/** Decodes a to-device envelope. */
export declare function unpackEnvelope(bytes: Uint8Array): Envelope;
/** What an Olm plaintext carries, by its `type`. */
export type OlmBody = {
    type: "room_key";
    conv: string;
    session: string;
    key: string;
} | {
    type: "forwarded_room_key";
    conv: string;
    session: string;
    key: string;
    session_user: string;
    session_device: string;
    session_sender_key: string;
} | {
    type: "master_key";
    key: string;
} | {
    type: "custom";
    kind: string;
    data: Uint8Array;
};
/** An Olm plaintext: who sent it to whom (users, devices, Ed25519 keys) and its body. */
export interface OlmPlaintext {
    sender: string;
    sender_device: string;
    sender_key: string;
    recipient: string;
    recipient_device: string;
    recipient_key: string;
    body: OlmBody;
}
/** Encodes an Olm plaintext as one flat map. */
export declare function packOlmPlaintext(p: OlmPlaintext): Uint8Array;
/** Decodes an Olm plaintext; an unknown `type` is `malformed`, as in Rust. */
export declare function unpackOlmPlaintext(bytes: Uint8Array): OlmPlaintext;
/** The Megolm plaintext's `type`. */
export declare const CONTENT = "content";
/** Encodes a Megolm plaintext: the conversation it is for and the content bytes. */
export declare function packMegolmPlaintext(conv: string, content: Uint8Array): Uint8Array;
/** Decodes a Megolm plaintext. */
export declare function unpackMegolmPlaintext(bytes: Uint8Array): {
    type: string;
    conv: string;
    content: Uint8Array;
};
