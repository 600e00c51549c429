/**
 * The one error class of the binding: protocol `error` frames and local
 * failures (connection lost, timeout, closed client) alike.
 *
 * @module
 */
import type { ErrorCode, ErrorFrame } from "./protocol.js";
/**
 * Codes of failures that happen on this side of the wire:
 * `disconnected` — the connection closed before the reply, and the request is
 * not one that is safe to repeat; `timeout` — no reply in time; `closed` — the
 * client was closed (or signed out) by the application; `protocol` — the server
 * sent something that is not a frame of this protocol.
 */
export type LocalErrorCode = "disconnected" | "timeout" | "closed" | "protocol";
/** A failed request, or a failure of the connection. */
export declare class ChatError extends Error {
    readonly name = "ChatError";
    /** The protocol's stable code, or a {@link LocalErrorCode}. */
    readonly code: ErrorCode | LocalErrorCode;
    /** The request field at fault (`conflict`: `username`, `email`, `phone`, `client_id`; `invalid_argument`; `too_large`). */
    readonly field: string | undefined;
    /** Every broken password rule (`weak_password`); empty otherwise. */
    readonly violations: readonly string[];
    /** When to retry (`rate_limited`). */
    readonly retryAfterMs: number | undefined;
    /** The request's type (`register`, `send`, ...) when the error answers one. */
    readonly request: string | undefined;
    /** The `error` frame itself, when the server sent one. */
    readonly frame: ErrorFrame | undefined;
    constructor(code: ErrorCode | LocalErrorCode, message: string, details?: {
        field?: string | undefined;
        violations?: readonly string[] | undefined;
        retryAfterMs?: number | undefined;
        request?: string | undefined;
        frame?: ErrorFrame | undefined;
    });
    /** The error an `error` frame stands for. */
    static fromFrame(frame: ErrorFrame, request?: string): ChatError;
}
