/**
 * The chatcore client for browsers and Node 20: everything of `./web` plus
 * the MessagePack codec (the protocol's default), which needs
 * `@msgpack/msgpack`.
 *
 * ```ts
 * import { ChatClient, msgpackCodec } from "@chatcore/client";
 * const client = new ChatClient({ url: "ws://127.0.0.1:8080/ws", codec: msgpackCodec });
 * ```
 *
 * @module
 */

export * from "./web.js";
export { msgpackCodec } from "./msgpack.js";
