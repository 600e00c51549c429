/**
 * Why an end-to-end operation failed: the same cases as the Rust client's
 * `E2eError`, told apart by {@link E2eError.code}.
 *
 * @module
 */
/** An end-to-end failure; `code` says which, `message` says it for people. */
export class E2eError extends Error {
    name = "E2eError";
    /** Which failure. */
    code;
    /** With `before_key` and `replayed`: the message's index in its session. */
    index;
    /** With `before_key`: the first index this device can read. */
    firstKnown;
    /** With `replayed`: the id of the message that had the index first. */
    first;
    constructor(code, message, details = {}) {
        super(message);
        this.code = code;
        if (details.index !== undefined)
            this.index = details.index;
        if (details.firstKnown !== undefined)
            this.firstKnown = details.firstKnown;
        if (details.first !== undefined)
            this.first = details.first;
    }
}
/** Whether `e` is an {@link E2eError} (of `code`, if given). */
export function isE2eError(e, code) {
    return e instanceof E2eError && (code === undefined || e.code === code);
}
/** The message of any thrown value. */
export function messageOf(e) {
    return e instanceof Error ? e.message : String(e);
}
