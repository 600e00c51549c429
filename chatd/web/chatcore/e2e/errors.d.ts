/**
 * Why an end-to-end operation failed: the same cases as the Rust client's
 * `E2eError`, told apart by {@link E2eError.code}.
 *
 * @module
 */
/** The kind of an {@link E2eError}. */
export type E2eErrorCode = 
/** The stored state does not open with this key, or was altered. */
"store_decrypt"
/** The stored state decrypts but is not in a format this version reads. */
 | "store_format"
/** The stored state was written by a newer version of this library. */
 | "store_too_new"
/** A signature did not verify, or a key was malformed. */
 | "bad_signature"
/** The device's keys are not tracked: query its user's keys first. */
 | "unknown_device"
/** No Olm session with the device: claim a one-time key first. */
 | "no_session"
/** A payload could not be decoded. */
 | "malformed"
/** The kind or algorithm is not one this machine handles. */
 | "unsupported"
/** An Olm message did not decrypt. */
 | "olm_decrypt"
/** A Megolm message did not decrypt (e.g. a tampered ciphertext). */
 | "megolm_decrypt"
/** The message predates the key this device holds (it got the session later). */
 | "before_key"
/** The inner fields of a message do not match where it came from or arrived: replayed or forged. */
 | "misbound"
/** The message repeats the session index of an earlier message under another message id. */
 | "replayed"
/** The message was encrypted for another conversation. */
 | "wrong_conversation"
/** This device does not hold the user's master private key. */
 | "no_master_key"
/** A typed recovery key is malformed (mistyped, wrong length or character): nothing was tried with it. */
 | "recovery_key"
/** The recovery key does not open this key backup. */
 | "wrong_recovery_key"
/** The operation is not allowed (the message says why). */
 | "refused"
/** This environment keeps no end-to-end state (a browser without IndexedDB, e.g. in a private mode). */
 | "unavailable";
/** An end-to-end failure; `code` says which, `message` says it for people. */
export declare class E2eError extends Error {
    readonly name = "E2eError";
    /** Which failure. */
    readonly code: E2eErrorCode;
    /** With `before_key` and `replayed`: the message's index in its session. */
    readonly index?: number;
    /** With `before_key`: the first index this device can read. */
    readonly firstKnown?: number;
    /** With `replayed`: the id of the message that had the index first. */
    readonly first?: string;
    constructor(code: E2eErrorCode, message: string, details?: {
        index?: number;
        firstKnown?: number;
        first?: string;
    });
}
/** Whether `e` is an {@link E2eError} (of `code`, if given). */
export declare function isE2eError(e: unknown, code?: E2eErrorCode): e is E2eError;
/** The message of any thrown value. */
export declare function messageOf(e: unknown): string;
