/**
 * The chatcore client for browsers and Node 20, without dependencies: the
 * same modules as `./web` (the name browsers load it by).
 *
 * ```ts
 * import { ChatClient, msgpackCodec } from "@chatcore/client";
 * const client = new ChatClient({ url: "ws://127.0.0.1:8080/ws", codec: msgpackCodec });
 * ```
 *
 * @module
 */

export * from "./web.js";
