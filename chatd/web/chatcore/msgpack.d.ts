/**
 * MessagePack, without a dependency: the codec of `chatcore.v1.msgpack` (the
 * protocol's default) and of the end-to-end payloads (e2e/formats.ts), small
 * enough for browsers to load without a bundler.
 *
 * Byte-compatibility with rmp-serde (`to_vec_named`): maps with string keys
 * in the order the object has them (the canonical field order); integers in
 * their smallest format, non-negative ones unsigned as rmp's `write_sint`
 * does; strings as fixstr/str8/str16/str32 by length; `null` as nil;
 * `Uint8Array` as bin; `undefined` fields left out. Numbers are integers
 * below 2^53 throughout the protocol; any other number is written as a
 * float64 so that nothing is lost silently.
 *
 * Decoding reads every format but ext (refused) and checks each length
 * against the bytes left before it allocates; maps become plain objects
 * (a `__proto__` key is refused), bin becomes a `Uint8Array` of its own, 64-bit
 * integers beyond 2^53 are refused rather than rounded, and nesting deeper
 * than {@link MAX_DEPTH} is refused, so no input can exhaust the stack.
 *
 * @module
 */
import type { Codec } from "./codec.js";
/** The deepest nesting of maps and arrays that {@link decodeMsgpack} reads. */
export declare const MAX_DEPTH = 64;
/** MessagePack of `value` (see the module documentation for the formats chosen). Throws a `TypeError` on what has none (functions, symbols, bigints). */
export declare function encodeMsgpack(value: unknown): Uint8Array;
/** Decodes one MessagePack value that fills `bytes` exactly; throws (`TypeError` or `RangeError`) on anything else. */
export declare function decodeMsgpack(bytes: Uint8Array): unknown;
/** MessagePack, sent as binary messages. */
export declare const msgpackCodec: Codec;
