/**
 * {@link ChatClient}: one connection to a chatcore server, with requests as
 * promises, pushes as typed events, and the delivery rules of PROTOCOL.md
 * built in: sends keep their `client_id` across retries, a lost connection is
 * reopened with backoff and the session resumed with its token, and every
 * (re)sign-in is followed by a `sync` whose messages are acknowledged in
 * gap-free runs.
 *
 * @module
 */
import { type Codec } from "./codec.js";
import { type MessageReceipt } from "./receipts.js";
import { ChatError } from "./errors.js";
import { type AlertFrame, type Audience, type BackupInfo, type BackupKeyInfo, type BackupKeyRef, type ClaimedKey, type ClientFrame, type ContactAction, type ContactInfo, type ContactList, type Content, type Rel, type ConversationList, type ConversationInfo, type ConversationSummary, type DeviceInfo, type DeviceKeysInfo, type DeviceRef, type DeviceSignature, type CallInfo, type CallMedia, type CallSignal, type CallSignalFrame, type DirectoryEntry, type HangupReason, type IceServer, type IdentityKeys, type KeyCounts, type MasterKeyInfo, type Message, type OutgoingToDevice, type Presence, type Privacy, type Profile, type ReadFrame, type TypingFrame, type ReceiptFrame, type ReceiptInfo, type SignedKey, type ToDeviceAck, type ToDeviceMessage, type Undelivered, type UserMasterKey, type Role, type ServerFrame, type ServerFrameOf } from "./protocol.js";
/** The part of the WebSocket API the client uses (browsers', undici's in Node, or the `ws` package's). */
export interface WebSocketLike {
    readonly readyState: number;
    readonly protocol: string;
    binaryType: string;
    send(data: string | ArrayBufferLike | ArrayBufferView): void;
    close(code?: number, reason?: string): void;
    addEventListener(type: "open" | "message" | "close" | "error", listener: (event: any) => void): void;
}
/** A WebSocket constructor. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;
/** Reconnection backoff: exponential from `initialDelayMs` up to `maxDelayMs`, with jitter. */
export interface ReconnectOptions {
    initialDelayMs?: number;
    maxDelayMs?: number;
}
/** Options of {@link ChatClient}. */
export interface ClientOptions {
    /** The WebSocket endpoint, e.g. `ws://127.0.0.1:8080/ws`. */
    url: string;
    /** Wire codec: `jsonCodec` (default) or `msgpackCodec`. */
    codec?: Codec;
    /** WebSocket implementation; defaults to `globalThis.WebSocket` (Node 20: run with `--experimental-websocket`, or pass `ws`). */
    WebSocket?: WebSocketConstructor;
    /** Sent in `hello` for the server's log. */
    clientName?: string;
    /** Device name sent with `register` and `login` unless a call names one. */
    device?: string;
    /** A session token to resume on {@link ChatClient.connect} (e.g. kept from an earlier run). */
    token?: string;
    /** Sync after every sign-in and resume (default true). */
    autoSync?: boolean;
    /**
     * What a new device (after `register` or `login`; not after `resume`) fetches by itself at sign-in, with
     * `autoSync`: `"all"` (default) syncs the whole history; `"latest"` follows PROTOCOL.md's new-device flow
     * ({@link ChatClient.skipHistory}), so that only what arrives later is synced and the app pages `history` on demand.
     */
    newDeviceHistory?: "all" | "latest";
    /** Reconnect after an unexpected close while signed in (default on); `false` to never. */
    reconnect?: ReconnectOptions | false;
    /** How long a request may wait for its reply on an open connection (default 20000 ms). */
    requestTimeoutMs?: number;
    /** Messages per `sync` page (default 200, the server's maximum). */
    syncPageSize?: number;
    /** Frames larger than this are refused locally with `too_large` (default 65536, chatd's limit). */
    maxFrameBytes?: number;
}
/** A signed-in session. */
export interface Session {
    user: string;
    device: string;
    /** The secret for `resume`; keep it safe (the web client keeps it in localStorage). */
    token: string;
    expires_at: number;
    profile: Profile;
    /** The user's privacy settings; kept current by {@link ChatClient.setPrivacy} and the `privacy` event. */
    privacy: Privacy;
    /** What this device had left in the key directory when it signed in (the `keycounts` event says when claims run it low). */
    keys: KeyCounts;
}
/** Where the connection stands. */
export type ConnectionState = 
/** No connection; the next request opens one. */
"disconnected"
/** Opening the WebSocket and saying `hello`. */
 | "connecting"
/** Connected, not signed in. */
 | "connected"
/** Signed in. */
 | "ready"
/** The connection was lost while signed in; reopening it with backoff and resuming. */
 | "reconnecting"
/** {@link ChatClient.close} was called; the client is done. */
 | "closed";
/** Why a session ended. */
export type SignOutReason = 
/** `logout` by this client. */
"logout"
/** Revoked by the server (close 4001: the device was revoked, or the password changed or reset elsewhere). */
 | "revoked"
/** The token no longer works (`resume` answered `unauthenticated`). */
 | "expired";
/** The events of {@link ChatClient} and their payloads. */
export interface ClientEvents {
    /** A message new to this device (deduplicated by conv and seq), pushed or synced. */
    message: {
        message: Message;
        source: "push" | "sync";
    };
    /** A watched user came online or left. */
    presence: Presence;
    /** A user changed their contact card: a watched user (see `presence`), or this user on another device. */
    profile: Profile;
    /** Someone registered; only while the latest {@link ChatClient.searchUsers} is the unfiltered first page (empty query, no `after`). */
    newuser: DirectoryEntry;
    /** A message from someone else arrived in a conversation this device is not focused on and that is not muted: count it as unread (+1). */
    alert: Omit<AlertFrame, "type">;
    /** Another device of the user read `conv` up to `seq`: its unread count is 0 now. */
    read: Omit<ReadFrame, "type">;
    /** `user` writes in `conv` (or stopped); show it for `ttl_ms` unless another `typing` event comes. */
    typing: Omit<TypingFrame, "type">;
    /**
     * A fellow member of `conv` received or read further ({@link ChatClient.receipts} holds it already): redraw the
     * state of this user's messages there ({@link ChatClient.receiptOf}).
     */
    receipt: Omit<ReceiptFrame, "type">;
    /**
     * The user's view of a pair changed: a contact request, answer or removal by the other user, or a change made
     * on another device of this user (including a block or unblock). Not for this connection's own requests (their
     * promise has the new view). A blocked user is never told of a block.
     */
    contact: ContactInfo;
    /** The user's privacy settings changed on another device ({@link ChatClient.session} has them already). */
    privacy: Privacy;
    /**
     * The user was invited to a group by someone their `groups` setting does not accept adds from: it waits in the
     * requests list ({@link ChatClient.requests}), as this summary shows it (`request.by` invited). The user is not a
     * member and receives nothing of the group until {@link ChatClient.accept}.
     */
    invited: ConversationSummary;
    /**
     * The user answered a message request or group invitation on another device: `accepted` (it is in the main list
     * now) or declined (it left the requests list). Not for this connection's own answers.
     */
    answered: {
        conv: string;
        accepted: boolean;
    };
    /**
     * To-device payloads for this device (PROTOCOL.md "To-device messages"), oldest first: live, and again after each
     * sign-in until acknowledged ({@link ChatClient.ackToDevice}). Process each (`from_device`, `id`) once.
     */
    todevice: ToDeviceMessage[];
    /** Claims left this device few one-time keys, or took its fallback key: top up ({@link ChatClient.uploadKeys}). */
    keycounts: KeyCounts;
    /**
     * A call of this user started, rings, was answered or ended (PROTOCOL.md "Calls"); not for this connection's own
     * requests (their promise has it). A device of the callee that is not `answered_by` rings while `state` is
     * `ringing`, and stops otherwise ("answered on another device" when `active`).
     */
    call: CallInfo;
    /** What the other side of a call sent this device: the SDP offer or answer, or ICE candidates; plain or sealed. */
    callsignal: Omit<CallSignalFrame, "type">;
    /**
     * The devices of `user` changed: this user's own (one signed in, was renamed, uploaded keys or was removed) or
     * those of someone who shares a conversation with this user (one uploaded keys or was removed). Query them again
     * ({@link ChatClient.devices} for one's own, {@link ChatClient.queryKeys} for others'). Not for this connection's
     * own change.
     */
    deviceschanged: {
        user: string;
    };
    /** Signed in (`register`, `login`) or resumed (`resumed`: also after a reconnect). */
    session: {
        session: Session;
        resumed: boolean;
    };
    /** The session ended; sign in again. */
    signedout: {
        reason: SignOutReason;
    };
    /** The connection state changed. */
    state: ConnectionState;
    /** The WebSocket closed, with the server's code (see PROTOCOL.md). */
    close: {
        code: number;
        reason: string;
        willReconnect: boolean;
    };
    /** A failure not tied to a request: an `error` frame without id, an undecodable frame, a failed background sync. */
    error: ChatError;
}
/** Where {@link ChatClient.send} sends: a conversation by its id, or a user (their direct conversation, opened if need be). */
export type SendTarget = {
    conv: string;
} | {
    to: string;
};
/** A page of {@link ChatClient.conversations}. */
export interface ConversationPage {
    conversations: ConversationSummary[];
    /** Pass as `after` for the next page; absent on the last one. */
    next?: string;
}
/** A page of {@link ChatClient.contacts}. */
export interface ContactPage {
    /** Each user with the caller's view of the pair and their presence as the caller may see it. */
    contacts: ContactInfo[];
    /** Pass as `after` for the next page; absent on the last one. */
    next?: string;
}
/** Result of {@link ChatClient.addMembers}. */
export interface AddResult {
    /** The seq of the `members_added` notice; 0 when nobody was added directly (everyone named was invited). */
    seq: number;
    /** Users invited rather than added: their settings admit only their contacts' adds. Empty when none. */
    invited: string[];
}
/** What {@link ChatClient.updateGroup} changes; absent fields stay, an empty description or avatar removes it. */
export interface GroupChanges {
    title?: string;
    description?: string;
    avatar?: string;
    history_visible?: boolean;
}
/** Result of {@link ChatClient.send}. */
/** What a message points at and whom it mentions (PROTOCOL.md, *Message life*). */
export interface SendOptions {
    /** The client id (fresh unless given: pass the same one to retry a send yourself). */
    clientId?: string;
    /** A reply to, edit of, reaction to or deletion of another message of the same conversation. */
    rel?: Rel;
    /** Members of the group it mentions (alerted even where they muted it). */
    mentions?: string[];
    /** The uploaded files it carries (media ids from `POST /media`), whatever its content says. */
    media?: string[];
}
/** A page of history with what its messages need to be shown in their latest state (see {@link ChatClient.history}). */
export interface HistoryPage {
    /** The page, ascending by seq. */
    messages: Message[];
    /** Whether older entries exist. */
    more: boolean;
    /** The edits, reactions and deletions of the page's messages and the messages its replies quote, from anywhere in the log. */
    related: Message[];
}
export interface SendResult {
    /** The stored message, as the recipient receives it. */
    message: Message;
    /** True when this `client_id` had been stored before (the send was a retry). */
    duplicate: boolean;
}
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A request frame before it gets its `id`. */
export type RequestFrame = DistributiveOmit<ClientFrame, "id">;
/** A fresh message `client_id` (a UUIDv4). */
export declare function newClientId(): string;
/**
 * A chatcore client. Create it, listen to its events, `connect()` (or just
 * call `login`/`register`: the connection opens on demand), and make requests.
 */
export declare class ChatClient {
    private readonly url;
    private readonly codec;
    private readonly WS;
    private readonly opts;
    private ws;
    private welcomed;
    private opening;
    private restoring;
    private signedIn;
    private closedByUser;
    private stateValue;
    private sessionValue;
    private token;
    private nextId;
    private readonly inflight;
    /** Auth requests waiting for the session to be resumed. */
    private waiting;
    private reconnectTimer;
    private attempt;
    private focused;
    private readonly tracker;
    /** The other members' receipts, per conversation (see {@link receipts}). */
    private readonly receiptBook;
    private syncChain;
    private syncScheduled;
    /** The round of acks of pushed messages on its way; `ackAgain`: more arrived meanwhile, acknowledged after it. */
    private ackRound;
    private ackAgain;
    private serverTimeOffset;
    /** A failing handler must not break the connection's bookkeeping: its error is thrown apart. */
    private readonly events;
    constructor(options: ClientOptions);
    /** Calls `handler` on every `type` event; returns a function that stops it. */
    on<K extends keyof ClientEvents>(type: K, handler: (payload: ClientEvents[K]) => void): () => void;
    /** Removes a handler added with {@link on}. */
    off<K extends keyof ClientEvents>(type: K, handler: (payload: ClientEvents[K]) => void): void;
    private emit;
    private setState;
    /** The connection state. */
    get state(): ConnectionState;
    /** The current session, or `null` when signed out. */
    get session(): Session | null;
    /** The signed-in user's id, or `undefined`. */
    get me(): string | undefined;
    /** Server clock minus local clock, in ms, as of the last `welcome`. */
    get clockOffsetMs(): number;
    /**
     * Opens the connection (and resumes the session if a token is known).
     * Requests open it on demand too; call this to connect early or to learn
     * whether a kept token still works: it rejects with `unauthenticated` if not.
     */
    connect(): Promise<void>;
    /** Closes the connection for good (1000); pending requests fail with `closed`. */
    close(): void;
    /**
     * Treats the connection as lost now: for a dead link (a ping went unanswered while the socket still looks
     * open, as after a Wi-Fi drop), which the browser would only notice minutes later. Requests that are safe to
     * repeat (sends keep their `client_id`) wait for the next connection; the client reconnects with backoff and
     * resumes as after any lost connection. Nothing happens when no connection is open.
     */
    dropConnection(): void;
    private failAll;
    /** Opens the WebSocket and says hello, once; resolves when `welcome` arrived. */
    private ensureOpen;
    /** Reopens the connection and resumes the session with the kept token, once at a time. */
    private restore;
    private scheduleReconnect;
    private onClose;
    private signOut;
    /** The user's settings now (a reply or a push). Read receipts on again: others' read marks are asked again in full. */
    private onPrivacy;
    private onSession;
    /**
     * Sends any request and resolves with its reply of type `expect` (rejects
     * with a {@link ChatError} for an `error` reply). `auth`: needs a session
     * (waits while one is being resumed); `retry`: safe to repeat after a
     * reconnect. The typed methods below cover every request.
     */
    request<T extends ServerFrame["type"]>(frame: RequestFrame, expect: T, opts?: {
        auth?: boolean;
        retry?: boolean;
    }): Promise<ServerFrameOf<T>>;
    private dispatch;
    private transmit;
    private onData;
    private onReply;
    private onPushedMessage;
    private scheduleSync;
    private sendAcks;
    /**
     * Acknowledges what pushes completed, one round at a time: pushes that arrive while an ack is on its way are
     * acknowledged together once it is answered. A burst of pushes costs a few acks (each with its reply), not one
     * per message, which would double the frames both ways and the client's work per message.
     */
    private flushAcks;
    /**
     * Fetches everything this device has not acknowledged, emits each new
     * message as a `message` event (`source: "sync"`), acknowledges the gap-free
     * runs, and repeats while the server says `more`. Resolves with the new
     * messages. Runs after every sign-in by itself (unless `autoSync: false`).
     */
    sync(): Promise<Message[]>;
    private runSync;
    /**
     * The new-device flow of PROTOCOL.md: acknowledges every conversation up to its newest entry (`last_seq` of
     * `conversations`, page after page, the main list and then the requests list), so that `sync` returns only what arrives from now on; older entries stay
     * readable with {@link history}. Resolves with the conversations listed. Runs in turn with {@link sync} (a sync
     * asked meanwhile waits for it), and by itself after `register` and `login` with `newDeviceHistory: "latest"`.
     */
    skipHistory(): Promise<ConversationSummary[]>;
    private runSkipHistory;
    /** An ack that waits and tries again while the server answers `rate_limited` (many conversations at once). */
    private ackPaced;
    /**
     * Acknowledges `conv` up to `seq` as received by this device. The client
     * does this by itself for gap-free runs; call it only if you track delivery
     * yourself (an ack beyond a gap loses the messages in the gap for this device).
     */
    ack(conv: string, seq: number): Promise<void>;
    /** Creates an account and signs in as a new device. */
    register(account: {
        username: string;
        email: string;
        phone: string;
        display_name: string;
        password: string;
        device?: string;
    }): Promise<Session>;
    /** Signs in by username or email as a new device. */
    login(credentials: {
        login: string;
        password: string;
        device?: string;
    }): Promise<Session>;
    /** Signs in with the token of an earlier session (same device, same delivery cursors). */
    resume(token: string): Promise<Session>;
    /** Revokes this session; the server then closes the connection. */
    logout(): Promise<void>;
    /** Changes the password; the server revokes every other session of the user. */
    changePassword(old_password: string, new_password: string): Promise<void>;
    /** This user's devices (each live sign-in), oldest first; `current` marks this client's. */
    devices(): Promise<DeviceInfo[]>;
    /** Renames one of this user's devices (`not_found` when it is not theirs). */
    renameDevice(device: string, name: string): Promise<void>;
    /**
     * Signs one of this user's devices out for good: its connections close (4001), its keys and to-device queue are
     * deleted. This client's own device: a {@link ChatClient.logout}.
     */
    revokeDevice(device: string): Promise<void>;
    /** Asks for a password-reset mail (the reply is the same whether or not the account exists). */
    requestPasswordReset(email: string): Promise<void>;
    /** Sets a new password with the token from the reset mail. */
    confirmPasswordReset(token: string, new_password: string): Promise<void>;
    /** Users whose username or a display-name word starts with `query`; their presence is pushed while listed. */
    searchUsers(query: string, page?: {
        after?: string;
        limit?: number;
    }): Promise<{
        users: DirectoryEntry[];
        next?: string;
    }>;
    /** One user's contact card and presence. */
    getProfile(user: string): Promise<DirectoryEntry>;
    /** Changes the caller's own profile; absent fields stay; `avatar: ""` removes the picture. */
    updateProfile(changes: {
        display_name?: string;
        about?: string;
        avatar?: string;
    }): Promise<DirectoryEntry>;
    /** The HTTP address of chatd's `path`, from the WebSocket URL (`ws://host/ws` → `http://host/media`). */
    private httpUrl;
    /** The session token for HTTP requests (in `Authorization`, never in the URL). */
    private bearer;
    /** The error an HTTP answer of chatd's media endpoints stands for. */
    private static mediaError;
    /**
     * Uploads a file to chatd (`POST /media`) as it is: encrypt it first for an encrypted conversation. Returns its
     * media id (for a message's `media` list and content), its size and the SHA-256 of the bytes stored, which the
     * caller may check. Refused with `too_large` past the server's limit, `rate_limited` past the upload rate.
     */
    upload(data: Uint8Array | Blob, options?: {
        signal?: AbortSignal;
        onProgress?: (sent: number, total: number) => void;
    }): Promise<{
        id: string;
        size: number;
        sha256: string;
    }>;
    /**
     * Downloads media `id` (`GET /media/{id}`): all of it, or bytes `range[0]` to `range[1]` (inclusive; to the end
     * when absent), as a client seeking in a voice note does. The bytes as stored: decrypt them if they were encrypted.
     */
    download(id: string, options?: {
        range?: [number, number?];
        signal?: AbortSignal;
    }): Promise<Uint8Array>;
    /**
     * Sends a message to a conversation (`{ conv }`) or to a user (`{ to }`:
     * the direct conversation with them, opened by this first send if need
     * be). The `client_id` (fresh unless given: pass the same one to retry a
     * send yourself) is kept when the request is repeated after a reconnect, so
     * the message is stored once.
     */
    send(target: SendTarget, content: string | Content, options?: SendOptions): Promise<SendResult>;
    /**
     * A page of history: the newest `limit` messages before seq `before` (all if absent), ascending, with `related`:
     * the edits, reactions and deletions pointing at them and the messages their replies quote, wherever they are.
     */
    history(conv: string, page?: {
        before?: number;
        limit?: number;
    }): Promise<HistoryPage>;
    /**
     * Deletes `target` (a message of `conv`, or one's own reaction) for everyone: its content, and that of its edits
     * and reactions, is removed from the server. The sender's own messages; in a group, admins delete any.
     */
    deleteMessage(conv: string, target: string, options?: {
        clientId?: string;
    }): Promise<SendResult>;
    /** Sets the disappearing-message timer of `conv` (one of {@link DISAPPEARING_TIMERS}, or `undefined`: off). */
    setTimer(conv: string, expireAfter: number | undefined): Promise<number>;
    /** Marks `conv` read up to `seq` (unread counts drop). */
    read(conv: string, seq: number): Promise<void>;
    /**
     * How far the other members of `conv` received and read it: asks the server what rose since the last answer (all
     * of it the first time), keeps it with what `receipt` pushes told, and resolves with every mark known. Asked again
     * by itself after a reconnect for every conversation asked once; between, `receipt` events keep it current.
     * Emits `receipt` for each mark that rose.
     */
    receipts(conv: string): Promise<ReceiptInfo[]>;
    /**
     * The state of this user's message at `seq` in `conv` from what is known (see {@link receipts}): `sent`,
     * `delivered` to every member in `others` (the conversation's other members), or `read` by every one, with the
     * counts for "read by 3 of 7". Read marks count for nothing while this user does not share read receipts.
     */
    receiptOf(conv: string, seq: number, others: readonly string[]): MessageReceipt;
    /**
     * Tells the other members of `conv` who are connected that this user writes there (`true`; send it again about
     * every half of the `ttl_ms` the pushes carry while the user writes) or stopped (`false`). Nothing is stored; past
     * the connection's budget the server drops it. Not retried: a late typing is no use.
     */
    typing(conv: string, typing: boolean): Promise<void>;
    /** Tells the server which conversation is on screen (`undefined`: none); kept across reconnects. */
    focus(conv: string | undefined): Promise<void>;
    /**
     * A page of the caller's conversations, newest activity first, with unread counts; `after`: the `next` of the
     * previous page. `list`: `main` (the default: what the caller accepted) or `requests` (see {@link requests}).
     */
    conversations(page?: {
        list?: ConversationList;
        after?: string;
        limit?: number;
    }): Promise<ConversationPage>;
    /**
     * A page of what waits for the caller's answer, newest first: message requests (a direct conversation a
     * non-contact started; `request.by` is the sender) and group invitations (`request.by` invited). Answer with
     * {@link accept} or {@link decline}.
     */
    requests(after?: string, limit?: number): Promise<ConversationPage>;
    /** Every conversation of a list (the main one by default), page after page (`limit` per page). */
    allConversations(limit?: number, list?: ConversationList): Promise<ConversationSummary[]>;
    /**
     * Accepts a message request (the caller may write in it from now on) or a group invitation (the caller joins:
     * a `member_joined` notice). Resolves with the conversation; the caller's other devices get an `answered` event.
     * Fails with `not_found` when nothing waits for the caller there (also when answered already); not repeated
     * after a reconnect.
     */
    accept(conv: string): Promise<ConversationInfo>;
    /**
     * Declines a group invitation, or deletes a message request: its messages so far are no longer readable by the
     * caller and it leaves the requests list (a later message from the sender makes it a request again). The sender
     * is not told. Fails with `not_found` when nothing waits for the caller there.
     */
    decline(conv: string): Promise<void>;
    /**
     * Reports `user` to the server's operator, about `conv` if given (a conversation the caller is or was in, with
     * the user in it or invited), with the caller's words (`reason`, up to 500 characters). One report per user: a
     * repeat replaces it. Combine with {@link block} to also stop them.
     */
    report(user: string, conv?: string, reason?: string): Promise<void>;
    /**
     * Uploads this device's keys (PROTOCOL.md "Key directory"): its identity (the first time; the same again is
     * accepted, other keys fail with `conflict`), new one-time keys, a new fallback key. Resolves with what the device
     * has left on the server, to top up.
     */
    uploadKeys(keys: {
        identity?: IdentityKeys;
        oneTimeKeys?: SignedKey[];
        fallbackKey?: SignedKey;
        /** The user's master signing key (the first device creates it). */
        masterKey?: MasterKeyInfo;
        /** The master key's signatures of devices of the user. */
        signatures?: DeviceSignature[];
    }): Promise<{
        oneTime: number;
        fallbackUnused: boolean;
    }>;
    /** The identity keys of the devices of `users` the caller may reach (through `conv`, a conversation of theirs, if given). */
    queryKeys(users: string[], conv?: string): Promise<DeviceKeysInfo[]>;
    /** As {@link ChatClient.queryKeys}, with the master key of each of `users` that has one. */
    queryKeysAndMasters(users: string[], conv?: string): Promise<{
        devices: DeviceKeysInfo[];
        masterKeys: UserMasterKey[];
    }>;
    /** One one-time key (or the fallback key) of each device named that the caller may reach. */
    claimKeys(devices: DeviceRef[], conv?: string): Promise<ClaimedKey[]>;
    /**
     * Queues opaque payloads of `kind` for devices (PROTOCOL.md "To-device messages"): each to a device, or to every
     * device with keys of its user when `device` is absent. Resolves with how many were queued (a retry with the same
     * ids counts again, stored once) and the targets that got nothing.
     */
    sendToDevice(kind: string, messages: OutgoingToDevice[], conv?: string): Promise<{
        queued: number;
        undelivered: Undelivered[];
    }>;
    /** This device processed these to-device payloads: the server deletes them and delivers them no more. */
    ackToDevice(messages: ToDeviceAck[]): Promise<void>;
    /** Turns end-to-end encryption on for `conv`, for good; resolves with its notice's seq (0 if it was on already). */
    encrypt(conv: string): Promise<number>;
    /** Makes a new key backup this user's current one; the previous one and its keys are deleted. Not retried: a second one would replace the first. */
    createBackup(algorithm: string, authData: string): Promise<BackupInfo>;
    /** This user's current key backup, or `null` when there is none. */
    getBackup(): Promise<BackupInfo | null>;
    /** Replaces the current backup's `auth_data`; `not_found` when `version` is no longer the current backup. */
    updateBackup(version: string, authData: string): Promise<BackupInfo>;
    /** Deletes the current backup and its keys; `not_found` when `version` is no longer the current backup. */
    deleteBackup(version: string): Promise<void>;
    /**
     * Adds keys (at most 1,000 per call) to the current backup; resolves with the backup's count and etag now.
     * `not_found` when another device made a new backup since (`getBackup` tells which); `limit_reached` when the
     * backup is full (nothing stored).
     */
    putBackupKeys(version: string, keys: BackupKeyInfo[]): Promise<BackupInfo>;
    /** A page of the current backup's keys (ordered by conversation, then session), after `after` when given. */
    getBackupKeys(version: string, after?: BackupKeyRef, limit?: number): Promise<{
        keys: BackupKeyInfo[];
        more: boolean;
    }>;
    /** The direct conversation with `user`, opened if need be; with `encrypted`, end-to-end encryption is turned on if it is not yet. */
    openDirect(user: string, options?: {
        encrypted?: boolean;
    }): Promise<ConversationInfo>;
    /**
     * The server pushes the notice of a change to every member's devices but the connection that asked (it has
     * its reply, which carries only the seq): this one fetches it by a sync, so it arrives as a `message` event
     * here too, in order with the rest.
     */
    private fetchNotice;
    /**
     * Creates a group owned by the caller, with `members` besides the caller. Members whose `groups` setting admits
     * only their contacts' adds are invited instead: they are in the result's `invited`, not in its `members`.
     */
    createGroup(group: {
        title: string;
        description?: string;
        avatar?: string;
        members?: string[];
        encrypted?: boolean;
    }): Promise<ConversationInfo>;
    /** One conversation with its members (the caller is or was a member). */
    getConversation(conv: string): Promise<ConversationInfo>;
    /** Changes a group's settings (admins); resolves with the seq of the notice. */
    updateGroup(conv: string, changes: GroupChanges): Promise<number>;
    /**
     * Adds users to a group (admins); resolves with the seq of the notice and the users invited instead of added
     * (their `groups` setting admits only their contacts' adds: they get an `invited` event and join if they accept).
     */
    addMembers(conv: string, users: string[]): Promise<AddResult>;
    /** Removes a member (admins; never the owner, and an admin only by the owner); resolves with the notice's seq. */
    removeMember(conv: string, user: string): Promise<number>;
    /** Leaves a group; resolves with the seq of the notice. */
    leave(conv: string): Promise<number>;
    /** Gives a member a role (the owner); `owner` hands ownership over (the caller becomes an admin). */
    setRole(conv: string, user: string, role: Role): Promise<number>;
    /** Creates the group's invite token, replacing any earlier one (admins). */
    createInvite(conv: string): Promise<string>;
    /** Revokes the group's invite token (admins). */
    revokeInvite(conv: string): Promise<void>;
    /** Joins a group by an invite token; an unknown, revoked or replaced token all fail with `not_found`. */
    join(token: string): Promise<ConversationInfo>;
    /** No alerts for `conv` until `until` (ms since the epoch, server time), or until unmuted when absent. */
    mute(conv: string, until?: number): Promise<void>;
    /** Alerts for `conv` again. */
    unmute(conv: string): Promise<void>;
    /**
     * Changes the contact link with `user`: `request` (if they asked already, this accepts), `accept`, `decline`,
     * `cancel` (the caller's own request), `remove` (a contact). Resolves with the caller's view now; the other
     * devices of both users whose view changed get a `contact` event. Not repeated after a reconnect: a second
     * `request` would fail with `conflict`, a second answer with `not_found`.
     */
    contact(user: string, action: ContactAction): Promise<ContactInfo>;
    /**
     * Blocks `user` (withdrawing the caller's request to them, if any): neither can message the other in their
     * direct conversation, start one or add the other to a group, and neither sees the other's presence. The
     * blocked user is not told. Fails with `conflict` if blocked already.
     */
    block(user: string): Promise<ContactInfo>;
    /** Stops blocking `user`; a contact request they made meanwhile is dropped. Fails with `not_found` if not blocked. */
    unblock(user: string): Promise<ContactInfo>;
    /**
     * A page of one of the caller's lists: `contacts`, `incoming` (requests received), `outgoing` (requests sent)
     * or `blocked`; `after`: the `next` of the previous page. Each entry has the user's presence as the caller may
     * see it.
     */
    contacts(list: ContactList, page?: {
        after?: string;
        limit?: number;
    }): Promise<ContactPage>;
    /**
     * Changes the privacy settings; absent fields stay (`direct: "nobody"` and `groups: "nobody"` are refused with
     * `invalid_argument`).
     * Resolves with the settings now, which {@link session} holds too; the user's other devices get a `privacy`
     * event.
     */
    setPrivacy(changes: {
        direct?: Audience;
        groups?: Audience;
        presence?: Audience;
        read_receipts?: boolean;
    }): Promise<Privacy>;
    /**
     * Calls the other member of direct conversation `conv` (PROTOCOL.md "Calls"): `call` is a fresh random id (a
     * UUID), `signal` the SDP offer (plain, or sealed for the callee's devices). Resolves with the call as it stands:
     * `ringing`, or `ended` with reason `busy`. Not retried: a lost invite is a call that did not ring.
     */
    callInvite(conv: string, call: string, media: CallMedia, signal: CallSignal): Promise<CallInfo>;
    /** Tells the caller that this device (of the callee) rings. */
    callRinging(call: string): Promise<void>;
    /** Takes the call on this device with the SDP answer; `not_found` when another device answered first or it is over. */
    callAnswer(call: string, signal: CallSignal): Promise<CallInfo>;
    /** Sends ICE candidates to the other side of the call. */
    callCandidates(call: string, signal: CallSignal): Promise<void>;
    /** Ends the call: hangs up (or cancels, before an answer), declines, or reports a failure. */
    callHangup(call: string, reason?: HangupReason): Promise<CallInfo>;
    /**
     * The STUN and TURN servers a call may use (PROTOCOL.md "Calls"), as `RTCPeerConnection`'s `iceServers`, with
     * TURN credentials made for this user; `expiresAt` (ms since the epoch) when TURN stops accepting them, absent
     * without TURN. Ask again before each call. An empty list: the server has none, and a call connects only where
     * the two devices reach each other directly.
     */
    iceServers(): Promise<{
        servers: IceServer[];
        expiresAt?: number;
    }>;
    /** Application-level ping; resolves with the round-trip time in ms. */
    ping(): Promise<number>;
}
export {};
