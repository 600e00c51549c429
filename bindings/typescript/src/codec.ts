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

import {
  canonicalClientFrame,
  canonicalServerFrame,
  ProtocolError,
  SUBPROTOCOL_JSON,
  type ClientFrame,
  type ServerFrame,
} from "./protocol.js";

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

const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

function asText(data: string | ArrayBuffer | ArrayBufferView): string {
  if (typeof data === "string") return data;
  const bytes =
    data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return utf8Decoder.decode(bytes);
}

/**
 * JSON, sent as text messages (`chatcore.v1.json`). `JSON.stringify` of the
 * canonical form writes what serde_json writes: same field order, no spaces,
 * raw UTF-8 for non-ASCII, the same escapes.
 */
export const jsonCodec: Codec = {
  name: "json",
  subprotocol: SUBPROTOCOL_JSON,
  binary: false,
  write(value: unknown): string {
    return JSON.stringify(value);
  },
  read(data: string | ArrayBuffer | ArrayBufferView): unknown {
    return JSON.parse(asText(data));
  },
};

function wrap<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof ProtocolError) throw e;
    throw new ProtocolError(`${what}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Encodes a client frame (validated and put in canonical order first). */
export function encodeClientFrame(codec: Codec, frame: ClientFrame): WireData {
  return codec.write(canonicalClientFrame(frame));
}

/** Decodes a server frame; throws {@link ProtocolError} on anything that is not one. */
export function decodeServerFrame(codec: Codec, data: string | ArrayBuffer | ArrayBufferView): ServerFrame {
  return canonicalServerFrame(wrap("undecodable message", () => codec.read(data)));
}

/** Encodes a server frame: for tests and for servers written in JavaScript. */
export function encodeServerFrame(codec: Codec, frame: ServerFrame): WireData {
  return codec.write(canonicalServerFrame(frame));
}

/** Decodes a client frame: for tests and for servers written in JavaScript. */
export function decodeClientFrame(codec: Codec, data: string | ArrayBuffer | ArrayBufferView): ClientFrame {
  return canonicalClientFrame(wrap("undecodable message", () => codec.read(data)));
}
