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
import { type ClientFrame, type ServerFrame } from "./protocol.js";
/** A WebSocket message: text for JSON, bytes for MessagePack. */
export type WireData = string | Uint8Array;
/** Turns plain values into WebSocket messages and back, without any schema. */
export interface Codec {
    /** `json` or `msgpack`. */
    readonly name: string;
    /** The WebSocket subprotocol that selects this codec. */
    readonly subprotocol: string;
    /** Whether messages travel as binary (MessagePack) rather than text (JSON). */
    readonly binary: boolean;
    /** Encodes an already canonical value. */
    write(value: unknown): WireData;
    /** Decodes a message (text, or an ArrayBuffer / Uint8Array) to a plain value. Throws on bad input. */
    read(data: string | ArrayBuffer | ArrayBufferView): unknown;
}
/**
 * JSON, sent as text messages (`chatcore.v1.json`). `JSON.stringify` of the
 * canonical form writes what serde_json writes: same field order, no spaces,
 * raw UTF-8 for non-ASCII, the same escapes.
 */
export declare const jsonCodec: Codec;
/** Encodes a client frame (validated and put in canonical order first). */
export declare function encodeClientFrame(codec: Codec, frame: ClientFrame): WireData;
/** Decodes a server frame; throws {@link ProtocolError} on anything that is not one. */
export declare function decodeServerFrame(codec: Codec, data: string | ArrayBuffer | ArrayBufferView): ServerFrame;
/** Encodes a server frame: for tests and for servers written in JavaScript. */
export declare function encodeServerFrame(codec: Codec, frame: ServerFrame): WireData;
/** Decodes a client frame: for tests and for servers written in JavaScript. */
export declare function decodeClientFrame(codec: Codec, data: string | ArrayBuffer | ArrayBufferView): ClientFrame;
