/**
 * The one error class of the binding: protocol `error` frames and local
 * failures (connection lost, timeout, closed client) alike.
 *
 * @module
 */
/** A failed request, or a failure of the connection. */
export class ChatError extends Error {
    name = "ChatError";
    /** The protocol's stable code, or a {@link LocalErrorCode}. */
    code;
    /** The request field at fault (`conflict`: `username`, `email`, `phone`, `client_id`; `invalid_argument`; `too_large`). */
    field;
    /** Every broken password rule (`weak_password`); empty otherwise. */
    violations;
    /** When to retry (`rate_limited`). */
    retryAfterMs;
    /** The request's type (`register`, `send`, ...) when the error answers one. */
    request;
    /** The `error` frame itself, when the server sent one. */
    frame;
    constructor(code, message, details = {}) {
        super(message);
        this.code = code;
        this.field = details.field;
        this.violations = details.violations ?? [];
        this.retryAfterMs = details.retryAfterMs;
        this.request = details.request;
        this.frame = details.frame;
    }
    /** The error an `error` frame stands for. */
    static fromFrame(frame, request) {
        return new ChatError(frame.code, frame.message, {
            field: frame.field,
            violations: frame.violations,
            retryAfterMs: frame.retry_after_ms,
            request,
            frame,
        });
    }
}
