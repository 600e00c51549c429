/**
 * The dependency-free entry point: everything but the MessagePack codec.
 * Browsers load this without a bundler (chatd serves its compiled copy from
 * chatd/web/chatcore/web.js); it speaks the JSON codec.
 *
 * @module
 */
export * from "./protocol.js";
export * from "./codec.js";
export * from "./errors.js";
export * from "./delivery.js";
export * from "./client.js";
