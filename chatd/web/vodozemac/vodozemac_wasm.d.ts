/* tslint:disable */
/* eslint-disable */

/**
 * A device's Olm account: its identity keys (Ed25519 to sign, Curve25519
 * to agree), the private halves of its one-time and fallback keys, and
 * the sessions it opens or accepts.
 */
export class Account {
    free(): void;
    [Symbol.dispose](): void;
    /**
     * The session a pre-key message (type 0) from the device with
     * Curve25519 identity key `identityKey` opens, with the message's
     * plaintext. Uses up the one-time key the message names.
     */
    createInboundSession(identityKey: string, messageType: number, body: Uint8Array | number[]): InboundSession;
    /**
     * A session to the device with Curve25519 identity key `identityKey`,
     * from one of its one-time (or fallback) keys, claimed from the
     * server. Check both keys' signatures first.
     */
    createOutboundSession(identityKey: string, oneTimeKey: string): Session;
    /**
     * The fallback key not yet marked as published, if any.
     */
    fallbackKey(): OneTimeKey | undefined;
    /**
     * The account from `pickle()`; throws (code `pickle`) when the key is
     * not the one it was pickled with or the text was altered.
     */
    static fromPickle(pickle: string, key: Uint8Array | number[]): Account;
    /**
     * Makes a new fallback key; the account keeps the previous one's
     * private half too, for pre-key messages already on their way.
     */
    generateFallbackKey(): void;
    /**
     * Makes `count` new one-time keys (at most `maxNumberOfOneTimeKeys`),
     * listed by `oneTimeKeys()` until `markKeysAsPublished()`.
     */
    generateOneTimeKeys(count: number): void;
    /**
     * The server accepted the keys listed by `oneTimeKeys()` and
     * `fallbackKey()`: they are no longer listed.
     */
    markKeysAsPublished(): void;
    /**
     * A new account with fresh identity keys and no one-time keys.
     */
    constructor();
    /**
     * The one-time keys not yet marked as published, in the order they
     * were made.
     */
    oneTimeKeys(): OneTimeKey[];
    /**
     * The account encrypted with a 32-byte key (base64 text).
     */
    pickle(key: Uint8Array | number[]): string;
    /**
     * The Ed25519 signature (base64) of `message` by the identity key.
     */
    sign(message: Uint8Array | number[]): string;
    /**
     * The Curve25519 identity key (base64): what peers open sessions to.
     */
    readonly curve25519Key: string;
    /**
     * The Ed25519 identity key (base64): what the account signs with.
     */
    readonly ed25519Key: string;
    /**
     * How many one-time keys may be published at once (50).
     */
    readonly maxNumberOfOneTimeKeys: number;
}

/**
 * A Megolm message decrypted: its plaintext and its index in the session
 * (an index seen twice under different message ids is a replay).
 */
export class DecryptedGroupMessage {
    private constructor();
    free(): void;
    [Symbol.dispose](): void;
    /**
     * The message's index in its session.
     */
    readonly messageIndex: number;
    /**
     * The plaintext.
     */
    readonly plaintext: Uint8Array;
}

/**
 * An Ed25519 key pair held by the application: the user's master key,
 * which signs the user's devices.
 */
export class Ed25519SecretKey {
    free(): void;
    [Symbol.dispose](): void;
    /**
     * The key pair from its private half (`toBase64()`).
     */
    static fromBase64(secret: string): Ed25519SecretKey;
    /**
     * A new random key pair.
     */
    constructor();
    /**
     * The signature (base64) of `message`.
     */
    sign(message: Uint8Array | number[]): string;
    /**
     * The private half (base64): keep it secret, encrypted at rest.
     */
    toBase64(): string;
    /**
     * The public half (base64).
     */
    readonly publicKey: string;
}

/**
 * A Megolm session to send with: a ratchet that moves one step per message.
 */
export class GroupSession {
    free(): void;
    [Symbol.dispose](): void;
    /**
     * Encrypts `plaintext` into a Megolm message (bytes) and moves the
     * ratchet on.
     */
    encrypt(plaintext: Uint8Array | number[]): Uint8Array;
    /**
     * The session from `pickle()`; throws (code `pickle`) on a wrong key.
     */
    static fromPickle(pickle: string, key: Uint8Array | number[]): GroupSession;
    /**
     * A new session with a random ratchet, at index 0.
     */
    constructor();
    /**
     * The session encrypted with a 32-byte key (base64 text).
     */
    pickle(key: Uint8Array | number[]): string;
    /**
     * The index the next message gets.
     */
    readonly messageIndex: number;
    /**
     * The session's id (base64): its Ed25519 public key.
     */
    readonly sessionId: string;
    /**
     * The key (base64) that lets its holder read from the current index
     * on, signed by the session: what goes to member devices over Olm.
     */
    readonly sessionKey: string;
}

/**
 * A Megolm session to receive with: reads the messages of one sending
 * session from its first known index on.
 */
export class InboundGroupSession {
    free(): void;
    [Symbol.dispose](): void;
    /**
     * Decrypts a Megolm message. Throws with code `unknown_index` (and
     * `firstKnownIndex`, `messageIndex`) for a message before this
     * session's first index, `invalid_message` for bytes that are not a
     * Megolm message, `decrypt` for one altered or of another session.
     */
    decrypt(message: Uint8Array | number[]): DecryptedGroupMessage;
    /**
     * The key to read all this session can read (base64).
     */
    exportAtFirstKnownIndex(): string;
    /**
     * The key to read from `index` on (base64), or undefined when `index`
     * is before the first known index.
     */
    exportAt(index: number): string | undefined;
    /**
     * The session from `pickle()`; throws (code `pickle`) on a wrong key.
     */
    static fromPickle(pickle: string, key: Uint8Array | number[]): InboundGroupSession;
    /**
     * From an exported key (`exportAt`, `exportAtFirstKnownIndex`), as
     * forwarded between a user's devices or restored from a backup.
     */
    static import(exportedKey: string): InboundGroupSession;
    /**
     * From a session key (`GroupSession.sessionKey`, signed by the
     * session); throws (code `invalid_key`) when it is malformed or its
     * signature does not verify.
     */
    constructor(sessionKey: string);
    /**
     * The session encrypted with a 32-byte key (base64 text).
     */
    pickle(key: Uint8Array | number[]): string;
    /**
     * The first message index this session can decrypt.
     */
    readonly firstKnownIndex: number;
    /**
     * The session's id (base64), the same as the sending session's.
     */
    readonly sessionId: string;
}

/**
 * What `Account.createInboundSession` returns: the new session and the
 * plaintext of the pre-key message that opened it.
 */
export class InboundSession {
    private constructor();
    free(): void;
    [Symbol.dispose](): void;
    /**
     * The new session; it can be taken once.
     */
    takeSession(): Session;
    /**
     * The plaintext of the pre-key message.
     */
    readonly plaintext: Uint8Array;
}

/**
 * An Olm message to send: its type (0 pre-key, 1 normal) and bytes.
 */
export class OlmEncrypted {
    private constructor();
    free(): void;
    [Symbol.dispose](): void;
    /**
     * The message's bytes.
     */
    readonly body: Uint8Array;
    /**
     * 0 for a pre-key message (until the peer answers), 1 otherwise.
     */
    readonly messageType: number;
}

/**
 * A one-time or fallback key: its id and its public Curve25519 key (base64).
 */
export class OneTimeKey {
    private constructor();
    free(): void;
    [Symbol.dispose](): void;
    /**
     * The key's id (base64), unique within the account.
     */
    readonly id: string;
    /**
     * The public Curve25519 key (base64).
     */
    readonly key: string;
}

/**
 * An Olm session: a Double Ratchet channel with one other device.
 */
export class Session {
    private constructor();
    free(): void;
    [Symbol.dispose](): void;
    /**
     * Decrypts a message of the peer; throws (code `decrypt`) when it was
     * altered, is not of this session, or was already decrypted.
     */
    decrypt(messageType: number, body: Uint8Array | number[]): Uint8Array;
    /**
     * Encrypts `plaintext` for the peer.
     */
    encrypt(plaintext: Uint8Array | number[]): OlmEncrypted;
    /**
     * The session from `pickle()`; throws (code `pickle`) on a wrong key.
     */
    static fromPickle(pickle: string, key: Uint8Array | number[]): Session;
    /**
     * Whether a pre-key message (type 0) belongs to this session, so that
     * it is decrypted here rather than opening a new one. False for a
     * normal message.
     */
    matchesPreKeyMessage(messageType: number, body: Uint8Array | number[]): boolean;
    /**
     * The session encrypted with a 32-byte key (base64 text).
     */
    pickle(key: Uint8Array | number[]): string;
    /**
     * The session's id (base64), the same on both sides.
     */
    readonly sessionId: string;
}

/**
 * The bytes of vodozemac's base64 (standard alphabet, no padding);
 * throws (code `invalid_argument`) on anything else.
 */
export function base64Decode(text: string): Uint8Array;

/**
 * `bytes` in vodozemac's base64 (standard alphabet, no padding).
 */
export function base64Encode(bytes: Uint8Array | number[]): string;

/**
 * Throws (code `invalid_key`) unless `key` is a Curve25519 public key (base64).
 */
export function checkCurve25519Key(key: string): void;

/**
 * Throws (code `invalid_key`) unless `key` is an Ed25519 public key (base64).
 */
export function checkEd25519Key(key: string): void;

/**
 * Whether `signature` (base64) is the Ed25519 signature of `message` by
 * `publicKey` (base64). False for a signature that does not match; throws
 * when the key or the signature is malformed.
 */
export function verifyEd25519(publicKey: string, message: Uint8Array | number[], signature: string): boolean;

export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;

export interface InitOutput {
    readonly memory: WebAssembly.Memory;
    readonly __wbg_account_free: (a: number, b: number) => void;
    readonly __wbg_decryptedgroupmessage_free: (a: number, b: number) => void;
    readonly __wbg_ed25519secretkey_free: (a: number, b: number) => void;
    readonly __wbg_groupsession_free: (a: number, b: number) => void;
    readonly __wbg_inboundgroupsession_free: (a: number, b: number) => void;
    readonly __wbg_inboundsession_free: (a: number, b: number) => void;
    readonly __wbg_olmencrypted_free: (a: number, b: number) => void;
    readonly __wbg_onetimekey_free: (a: number, b: number) => void;
    readonly __wbg_session_free: (a: number, b: number) => void;
    readonly account_createInboundSession: (a: number, b: number, c: number, d: number, e: number, f: number) => [number, number, number];
    readonly account_createOutboundSession: (a: number, b: number, c: number, d: number, e: number) => [number, number, number];
    readonly account_curve25519Key: (a: number) => [number, number];
    readonly account_ed25519Key: (a: number) => [number, number];
    readonly account_fallbackKey: (a: number) => number;
    readonly account_fromPickle: (a: number, b: number, c: number, d: number) => [number, number, number];
    readonly account_generateFallbackKey: (a: number) => void;
    readonly account_generateOneTimeKeys: (a: number, b: number) => [number, number];
    readonly account_markKeysAsPublished: (a: number) => void;
    readonly account_maxNumberOfOneTimeKeys: (a: number) => number;
    readonly account_new: () => number;
    readonly account_oneTimeKeys: (a: number) => [number, number];
    readonly account_pickle: (a: number, b: number, c: number) => [number, number, number, number];
    readonly account_sign: (a: number, b: number, c: number) => [number, number];
    readonly base64Decode: (a: number, b: number) => [number, number, number, number];
    readonly base64Encode: (a: number, b: number) => [number, number];
    readonly checkCurve25519Key: (a: number, b: number) => [number, number];
    readonly checkEd25519Key: (a: number, b: number) => [number, number];
    readonly decryptedgroupmessage_messageIndex: (a: number) => number;
    readonly decryptedgroupmessage_plaintext: (a: number) => [number, number];
    readonly ed25519secretkey_fromBase64: (a: number, b: number) => [number, number, number];
    readonly ed25519secretkey_new: () => number;
    readonly ed25519secretkey_publicKey: (a: number) => [number, number];
    readonly ed25519secretkey_sign: (a: number, b: number, c: number) => [number, number];
    readonly ed25519secretkey_toBase64: (a: number) => [number, number];
    readonly groupsession_encrypt: (a: number, b: number, c: number) => [number, number];
    readonly groupsession_fromPickle: (a: number, b: number, c: number, d: number) => [number, number, number];
    readonly groupsession_messageIndex: (a: number) => number;
    readonly groupsession_new: () => number;
    readonly groupsession_pickle: (a: number, b: number, c: number) => [number, number, number, number];
    readonly groupsession_sessionId: (a: number) => [number, number];
    readonly groupsession_sessionKey: (a: number) => [number, number];
    readonly inboundgroupsession_decrypt: (a: number, b: number, c: number) => [number, number, number];
    readonly inboundgroupsession_exportAt: (a: number, b: number) => [number, number];
    readonly inboundgroupsession_exportAtFirstKnownIndex: (a: number) => [number, number];
    readonly inboundgroupsession_firstKnownIndex: (a: number) => number;
    readonly inboundgroupsession_fromPickle: (a: number, b: number, c: number, d: number) => [number, number, number];
    readonly inboundgroupsession_import: (a: number, b: number) => [number, number, number];
    readonly inboundgroupsession_new: (a: number, b: number) => [number, number, number];
    readonly inboundgroupsession_pickle: (a: number, b: number, c: number) => [number, number, number, number];
    readonly inboundgroupsession_sessionId: (a: number) => [number, number];
    readonly inboundsession_plaintext: (a: number) => [number, number];
    readonly inboundsession_takeSession: (a: number) => [number, number, number];
    readonly olmencrypted_body: (a: number) => [number, number];
    readonly olmencrypted_messageType: (a: number) => number;
    readonly onetimekey_id: (a: number) => [number, number];
    readonly onetimekey_key: (a: number) => [number, number];
    readonly session_decrypt: (a: number, b: number, c: number, d: number) => [number, number, number, number];
    readonly session_encrypt: (a: number, b: number, c: number) => [number, number, number];
    readonly session_fromPickle: (a: number, b: number, c: number, d: number) => [number, number, number];
    readonly session_matchesPreKeyMessage: (a: number, b: number, c: number, d: number) => [number, number, number];
    readonly session_pickle: (a: number, b: number, c: number) => [number, number, number, number];
    readonly session_sessionId: (a: number) => [number, number];
    readonly verifyEd25519: (a: number, b: number, c: number, d: number, e: number, f: number) => [number, number, number];
    readonly __wbindgen_exn_store: (a: number) => void;
    readonly __externref_table_alloc: () => number;
    readonly __wbindgen_externrefs: WebAssembly.Table;
    readonly __wbindgen_malloc: (a: number, b: number) => number;
    readonly __wbindgen_realloc: (a: number, b: number, c: number, d: number) => number;
    readonly __wbindgen_free: (a: number, b: number, c: number) => void;
    readonly __externref_table_dealloc: (a: number) => void;
    readonly __externref_drop_slice: (a: number, b: number) => void;
    readonly __wbindgen_start: () => void;
}

export type SyncInitInput = BufferSource | WebAssembly.Module;

/**
 * Instantiates the given `module`, which can either be bytes or
 * a precompiled `WebAssembly.Module`.
 *
 * @param {{ module: SyncInitInput }} module - Passing `SyncInitInput` directly is deprecated.
 *
 * @returns {InitOutput}
 */
export function initSync(module: { module: SyncInitInput } | SyncInitInput): InitOutput;

/**
 * If `module_or_path` is {RequestInfo} or {URL}, makes a request and
 * for everything else, calls `WebAssembly.instantiate` directly.
 *
 * @param {{ module_or_path: InitInput | Promise<InitInput> }} module_or_path - Passing `InitInput` directly is deprecated.
 *
 * @returns {Promise<InitOutput>}
 */
export default function __wbg_init (module_or_path?: { module_or_path: InitInput | Promise<InitInput> } | InitInput | Promise<InitInput>): Promise<InitOutput>;
