/**
 * Codecs: frames to WebSocket messages and back. Both encode the canonical
 * form of a frame (see protocol.ts), so their output is byte-identical to the
 * Rust codec's: JSON as serde_json writes it, MessagePack as rmp-serde's
 * `to_vec_named` does.
 *
 * The JSON codec is here; the MessagePack one is in msgpack.ts.
 *
 * @module
 */
import { canonicalClientFrame, canonicalServerFrame, ProtocolError, SUBPROTOCOL_JSON, } from "./protocol.js";
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });
function asText(data) {
    if (typeof data === "string")
        return data;
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    return utf8Decoder.decode(bytes);
}
/**
 * JSON, sent as text messages (`chatcore.v1.json`). `JSON.stringify` of the
 * canonical form writes what serde_json writes: same field order, no spaces,
 * raw UTF-8 for non-ASCII, the same escapes.
 */
export const jsonCodec = {
    name: "json",
    subprotocol: SUBPROTOCOL_JSON,
    binary: false,
    write(value) {
        return JSON.stringify(value);
    },
    read(data) {
        return JSON.parse(asText(data));
    },
};
function wrap(what, f) {
    try {
        return f();
    }
    catch (e) {
        if (e instanceof ProtocolError)
            throw e;
        throw new ProtocolError(`${what}: ${e instanceof Error ? e.message : String(e)}`);
    }
}
/** Encodes a client frame (validated and put in canonical order first). */
export function encodeClientFrame(codec, frame) {
    return codec.write(canonicalClientFrame(frame));
}
/** Decodes a server frame; throws {@link ProtocolError} on anything that is not one. */
export function decodeServerFrame(codec, data) {
    return canonicalServerFrame(wrap("undecodable message", () => codec.read(data)));
}
/** Encodes a server frame: for tests and for servers written in JavaScript. */
export function encodeServerFrame(codec, frame) {
    return codec.write(canonicalServerFrame(frame));
}
/** Decodes a client frame: for tests and for servers written in JavaScript. */
export function decodeClientFrame(codec, data) {
    return canonicalClientFrame(wrap("undecodable message", () => codec.read(data)));
}
