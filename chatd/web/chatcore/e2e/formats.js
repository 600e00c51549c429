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
import { decodeMsgpack, encodeMsgpack } from "../msgpack.js";
import { E2eError, messageOf } from "./errors.js";
import { OLM_V1 } from "./texts.js";
/** MessagePack of `value` (maps in their insertion order, as rmp-serde writes struct fields). */
export function pack(value) {
    return encodeMsgpack(value);
}
/** Decodes MessagePack; a `malformed` error when it is not. */
export function unpack(bytes) {
    try {
        return decodeMsgpack(bytes);
    }
    catch (e) {
        throw new E2eError("malformed", `not MessagePack: ${messageOf(e)}`);
    }
}
function asMap(value, what) {
    if (typeof value !== "object" || value === null || Array.isArray(value) || value instanceof Uint8Array) {
        throw new E2eError("malformed", `${what} is not a map`);
    }
    return value;
}
function str(m, field) {
    const v = m[field];
    if (typeof v !== "string")
        throw new E2eError("malformed", `missing field or not a string: ${field}`);
    return v;
}
function bin(m, field) {
    const v = m[field];
    if (!(v instanceof Uint8Array))
        throw new E2eError("malformed", `missing field or not bytes: ${field}`);
    return v;
}
/** Encodes a to-device envelope. */
export function packEnvelope(e) {
    return pack({ type: OLM_V1, sender_key: e.senderKey, message_type: e.messageType, body: e.body });
}
/** Decodes a to-device envelope. */
export function unpackEnvelope(bytes) {
    const m = asMap(unpack(bytes), "the to-device payload");
    const type = str(m, "type");
    if (type !== OLM_V1)
        throw new E2eError("unsupported", `unsupported kind or algorithm "${type}"`);
    const messageType = m["message_type"];
    if (messageType !== 0 && messageType !== 1)
        throw new E2eError("malformed", "message_type is 0 or 1");
    return { senderKey: str(m, "sender_key"), messageType, body: bin(m, "body") };
}
/** Encodes an Olm plaintext as one flat map. */
export function packOlmPlaintext(p) {
    return pack({
        sender: p.sender,
        sender_device: p.sender_device,
        sender_key: p.sender_key,
        recipient: p.recipient,
        recipient_device: p.recipient_device,
        recipient_key: p.recipient_key,
        ...p.body,
    });
}
/** Decodes an Olm plaintext; an unknown `type` is `malformed`, as in Rust. */
export function unpackOlmPlaintext(bytes) {
    const m = asMap(unpack(bytes), "the Olm plaintext");
    const type = str(m, "type");
    let body;
    switch (type) {
        case "room_key":
            body = { type, conv: str(m, "conv"), session: str(m, "session"), key: str(m, "key") };
            break;
        case "forwarded_room_key":
            body = {
                type,
                conv: str(m, "conv"),
                session: str(m, "session"),
                key: str(m, "key"),
                session_user: str(m, "session_user"),
                session_device: str(m, "session_device"),
                session_sender_key: str(m, "session_sender_key"),
            };
            break;
        case "master_key":
            body = { type, key: str(m, "key") };
            break;
        case "custom":
            body = { type, kind: str(m, "kind"), data: bin(m, "data") };
            break;
        default:
            throw new E2eError("malformed", `unknown Olm plaintext type "${type}"`);
    }
    return {
        sender: str(m, "sender"),
        sender_device: str(m, "sender_device"),
        sender_key: str(m, "sender_key"),
        recipient: str(m, "recipient"),
        recipient_device: str(m, "recipient_device"),
        recipient_key: str(m, "recipient_key"),
        body,
    };
}
/** The Megolm plaintext's `type`. */
export const CONTENT = "content";
/** Encodes a Megolm plaintext: the conversation it is for and the content bytes. */
export function packMegolmPlaintext(conv, content) {
    return pack({ type: CONTENT, conv, content });
}
/** Decodes a Megolm plaintext. */
export function unpackMegolmPlaintext(bytes) {
    const m = asMap(unpack(bytes), "the Megolm plaintext");
    return { type: str(m, "type"), conv: str(m, "conv"), content: bin(m, "content") };
}
