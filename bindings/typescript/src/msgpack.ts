/**
 * The MessagePack codec (`chatcore.v1.msgpack`, the protocol's default),
 * on `@msgpack/msgpack`. Kept apart from the dependency-free modules so the
 * browser build (JSON only) needs no bundler.
 *
 * Byte-compatibility with rmp-serde: maps with string keys in canonical field
 * order; integers in their smallest format (positive ones unsigned, as
 * rmp's `write_sint` does, which `@msgpack/msgpack` also does for safe
 * integers); strings as fixstr/str8/str16/str32 by length; `null` as nil.
 * Numbers here are always integers below 2^53, so no float is ever written.
 *
 * @module
 */

import { Decoder, Encoder } from "@msgpack/msgpack";
import { SUBPROTOCOL_MSGPACK } from "./protocol.js";
import type { Codec } from "./codec.js";

const encoder = new Encoder({ ignoreUndefined: true, forceIntegerToFloat: false, sortKeys: false });
const decoder = new Decoder({ useBigInt64: false });

/** MessagePack, sent as binary messages. */
export const msgpackCodec: Codec = {
  name: "msgpack",
  subprotocol: SUBPROTOCOL_MSGPACK,
  binary: true,
  write(value: unknown): Uint8Array {
    // `encode` returns a view into a reused buffer; copy so the caller owns it.
    return encoder.encode(value).slice();
  },
  read(data: string | ArrayBuffer | ArrayBufferView): unknown {
    if (typeof data === "string") throw new TypeError("a MessagePack frame must be a binary message");
    const bytes =
      data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    return decoder.decode(bytes);
  },
};
