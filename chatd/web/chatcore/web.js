/**
 * Everything of the client, free of dependencies: protocol types, both
 * codecs (MessagePack, the protocol's default, and JSON), the connection.
 * Browsers load it without a bundler: chatd serves its compiled copy from
 * chatd/web/chatcore/web.js, beside `e2e/index.js` (end-to-end encryption)
 * and `vodozemac.js`.
 *
 * @module
 */
export * from "./protocol.js";
export * from "./codec.js";
export * from "./errors.js";
export * from "./delivery.js";
export * from "./receipts.js";
export * from "./life.js";
export * from "./client.js";
export * from "./files.js";
export * from "./call.js";
export { decodeMsgpack, encodeMsgpack, MAX_DEPTH, msgpackCodec } from "./msgpack.js";
