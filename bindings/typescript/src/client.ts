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

import { decodeServerFrame, encodeClientFrame, jsonCodec, type Codec, type WireData } from "./codec.js";
import { DeliveryTracker } from "./delivery.js";
import { ReceiptBook, type MessageReceipt } from "./receipts.js";
import { Emitter } from "./emitter.js";
import { ChatError } from "./errors.js";
import {
  canonicalClientFrame,
  PROTOCOL_VERSION,
  ProtocolError,
  type AlertFrame,
  type Audience,
  type BackupInfo,
  type BackupKeyInfo,
  type BackupKeyRef,
  type ClaimedKey,
  type ClientFrame,
  type ContactAction,
  type ContactInfo,
  type ContactList,
  type Content,
  type ErrorCode,
  type Rel,
  type ConversationList,
  type ConversationInfo,
  type ConversationSummary,
  type DeviceInfo,
  type DeviceKeysInfo,
  type DeviceRef,
  type DeviceSignature,
  type CallInfo,
  type CallMedia,
  type CallSignal,
  type CallSignalFrame,
  type DirectoryEntry,
  type HangupReason,
  type IceServer,
  type IdentityKeys,
  type KeyCounts,
  type MasterKeyInfo,
  type Message,
  type OutgoingToDevice,
  type Presence,
  type Privacy,
  type Profile,
  type ReadFrame,
  type TypingFrame,
  type ReceiptFrame,
  type ReceiptInfo,
  type SignedKey,
  type ToDeviceAck,
  type ToDeviceMessage,
  type Undelivered,
  type UserMasterKey,
  type Role,
  type ServerFrame,
  type ServerFrameOf,
} from "./protocol.js";

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
  | "disconnected"
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
  | "logout"
  /** Revoked by the server (close 4001: the device was revoked, or the password changed or reset elsewhere). */
  | "revoked"
  /** The token no longer works (`resume` answered `unauthenticated`). */
  | "expired";

/** The events of {@link ChatClient} and their payloads. */
export interface ClientEvents {
  /** A message new to this device (deduplicated by conv and seq), pushed or synced. */
  message: { message: Message; source: "push" | "sync" };
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
  answered: { conv: string; accepted: boolean };
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
  deviceschanged: { user: string };
  /** Signed in (`register`, `login`) or resumed (`resumed`: also after a reconnect). */
  session: { session: Session; resumed: boolean };
  /** The session ended; sign in again. */
  signedout: { reason: SignOutReason };
  /** The connection state changed. */
  state: ConnectionState;
  /** The WebSocket closed, with the server's code (see PROTOCOL.md). */
  close: { code: number; reason: string; willReconnect: boolean };
  /** A failure not tied to a request: an `error` frame without id, an undecodable frame, a failed background sync. */
  error: ChatError;
}

/** Where {@link ChatClient.send} sends: a conversation by its id, or a user (their direct conversation, opened if need be). */
export type SendTarget = { conv: string } | { to: string };

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

interface Pending {
  frame: RequestFrame;
  expect: ServerFrame["type"];
  /** Needs a signed-in connection: waits while a session is being resumed. */
  auth: boolean;
  /** Safe to repeat on a new connection (idempotent). */
  retry: boolean;
  resolve(frame: ServerFrame): void;
  reject(error: ChatError): void;
  timer?: ReturnType<typeof setTimeout> | undefined;
}

const OPEN = 1;
const CLOSING = 2;

/** A fresh message `client_id` (a UUIDv4). */
export function newClientId(): string {
  const c = globalThis.crypto;
  if (typeof c.randomUUID === "function") return c.randomUUID();
  // randomUUID needs a secure context in browsers; getRandomValues does not.
  const b = c.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const utf8 = new TextEncoder();

function byteLength(data: WireData): number {
  return typeof data === "string" ? utf8.encode(data).length : data.byteLength;
}

/**
 * A chatcore client. Create it, listen to its events, `connect()` (or just
 * call `login`/`register`: the connection opens on demand), and make requests.
 */
export class ChatClient {
  private readonly url: string;
  private readonly codec: Codec;
  private readonly WS: WebSocketConstructor;
  private readonly opts: Required<Pick<ClientOptions, "autoSync" | "newDeviceHistory" | "requestTimeoutMs" | "syncPageSize" | "maxFrameBytes">> & {
    clientName: string;
    device: string;
    reconnect: Required<ReconnectOptions> | false;
  };

  private ws: WebSocketLike | null = null;
  private welcomed = false;
  private opening: Promise<void> | null = null;
  private restoring: Promise<Session> | null = null;
  private signedIn = false;
  private closedByUser = false;
  private stateValue: ConnectionState = "disconnected";
  private sessionValue: Session | null = null;
  private token: string | null;
  private nextId = 1;
  private readonly inflight = new Map<number, Pending>();
  /** Auth requests waiting for the session to be resumed. */
  private waiting: Pending[] = [];
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private attempt = 0;
  private focused: string | undefined;
  private readonly tracker = new DeliveryTracker();
  /** The other members' receipts, per conversation (see {@link receipts}). */
  private readonly receiptBook = new ReceiptBook();
  private syncChain: Promise<unknown> = Promise.resolve();
  private syncScheduled = false;
  /** The round of acks of pushed messages on its way; `ackAgain`: more arrived meanwhile, acknowledged after it. */
  private ackRound: Promise<void> | null = null;
  private ackAgain = false;
  private serverTimeOffset = 0;
  /** A failing handler must not break the connection's bookkeeping: its error is thrown apart. */
  private readonly events = new Emitter<ClientEvents>((_type, e) =>
    queueMicrotask(() => {
      throw e;
    }),
  );

  constructor(options: ClientOptions) {
    this.url = options.url;
    this.codec = options.codec ?? jsonCodec;
    const WS = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) {
      throw new TypeError(
        "no WebSocket implementation: pass options.WebSocket (e.g. from the `ws` package) or run Node with --experimental-websocket",
      );
    }
    this.WS = WS;
    this.token = options.token ?? null;
    const clientName = options.clientName ?? "chatcore-ts/0.1";
    this.opts = {
      clientName,
      device: options.device ?? clientName,
      autoSync: options.autoSync ?? true,
      newDeviceHistory: options.newDeviceHistory ?? "all",
      requestTimeoutMs: options.requestTimeoutMs ?? 20_000,
      syncPageSize: options.syncPageSize ?? 200,
      maxFrameBytes: options.maxFrameBytes ?? 65_536,
      reconnect:
        options.reconnect === false
          ? false
          : { initialDelayMs: options.reconnect?.initialDelayMs ?? 250, maxDelayMs: options.reconnect?.maxDelayMs ?? 30_000 },
    };
  }

  // -- events ---------------------------------------------------------------

  /** Calls `handler` on every `type` event; returns a function that stops it. */
  on<K extends keyof ClientEvents>(type: K, handler: (payload: ClientEvents[K]) => void): () => void {
    return this.events.on(type, handler);
  }

  /** Removes a handler added with {@link on}. */
  off<K extends keyof ClientEvents>(type: K, handler: (payload: ClientEvents[K]) => void): void {
    this.events.off(type, handler);
  }

  private emit<K extends keyof ClientEvents>(type: K, payload: ClientEvents[K]): void {
    this.events.emit(type, payload);
  }

  private setState(state: ConnectionState): void {
    if (this.stateValue !== state) {
      this.stateValue = state;
      this.emit("state", state);
    }
  }

  // -- state ----------------------------------------------------------------

  /** The connection state. */
  get state(): ConnectionState {
    return this.stateValue;
  }

  /** The current session, or `null` when signed out. */
  get session(): Session | null {
    return this.sessionValue;
  }

  /** The signed-in user's id, or `undefined`. */
  get me(): string | undefined {
    return this.sessionValue?.user;
  }

  /** Server clock minus local clock, in ms, as of the last `welcome`. */
  get clockOffsetMs(): number {
    return this.serverTimeOffset;
  }

  // -- connection -----------------------------------------------------------

  /**
   * Opens the connection (and resumes the session if a token is known).
   * Requests open it on demand too; call this to connect early or to learn
   * whether a kept token still works: it rejects with `unauthenticated` if not.
   */
  async connect(): Promise<void> {
    if (this.closedByUser) throw new ChatError("closed", "the client was closed");
    if (this.token && !this.signedIn) {
      await this.restore();
    } else {
      await this.ensureOpen();
    }
  }

  /** Closes the connection for good (1000); pending requests fail with `closed`. */
  close(): void {
    this.closedByUser = true;
    clearTimeout(this.reconnectTimer);
    const err = new ChatError("closed", "the client was closed");
    this.failAll(err);
    const ws = this.ws;
    this.ws = null;
    this.welcomed = false;
    this.signedIn = false;
    if (ws && ws.readyState <= OPEN) ws.close(1000);
    this.setState("closed");
  }

  /**
   * Treats the connection as lost now: for a dead link (a ping went unanswered while the socket still looks
   * open, as after a Wi-Fi drop), which the browser would only notice minutes later. Requests that are safe to
   * repeat (sends keep their `client_id`) wait for the next connection; the client reconnects with backoff and
   * resumes as after any lost connection. Nothing happens when no connection is open.
   */
  dropConnection(): void {
    const ws = this.ws;
    if (!ws || this.closedByUser) return;
    // Abnormal closure: the close handshake cannot cross a dead link, so its close event is not awaited (and is
    // ignored when it comes: this socket is no longer the client's).
    this.onClose(ws, 1006, "dead link");
    try {
      ws.close();
    } catch {
      // Already closing.
    }
  }

  private failAll(err: ChatError): void {
    for (const p of this.inflight.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.inflight.clear();
    const waiting = this.waiting;
    this.waiting = [];
    for (const p of waiting) p.reject(err);
  }

  /** Opens the WebSocket and says hello, once; resolves when `welcome` arrived. */
  private ensureOpen(): Promise<void> {
    if (this.closedByUser) return Promise.reject(new ChatError("closed", "the client was closed"));
    if (this.ws && this.welcomed && this.ws.readyState === OPEN) return Promise.resolve();
    if (this.opening) return this.opening;
    if (this.ws && this.ws.readyState === CLOSING) {
      // The server is closing this socket (its close frame is in, the close event not yet): its close code
      // decides what comes next (4001: signed out), so wait for it rather than open another socket past it,
      // whose close event would be ignored (a revocation then went unnoticed).
      return new Promise<void>((resolve, reject) => {
        const off = this.on("close", () => {
          off();
          this.ensureOpen().then(resolve, reject);
        });
      });
    }
    const opening = new Promise<void>((resolve, reject) => {
      let ws: WebSocketLike;
      try {
        ws = new this.WS(this.url, [this.codec.subprotocol]);
      } catch (e) {
        reject(new ChatError("disconnected", `cannot open ${this.url}: ${String(e)}`));
        return;
      }
      ws.binaryType = "arraybuffer";
      this.ws = ws;
      this.welcomed = false;
      if (!this.signedIn && this.stateValue !== "reconnecting") this.setState("connecting");
      const guard = setTimeout(() => ws.close(), this.opts.requestTimeoutMs);
      const hello: Pending = {
        frame: { type: "hello", version: PROTOCOL_VERSION, client: this.opts.clientName },
        expect: "welcome",
        auth: false,
        retry: false,
        resolve: (f) => {
          clearTimeout(guard);
          const w = f as ServerFrameOf<"welcome">;
          this.serverTimeOffset = w.time - Date.now();
          this.welcomed = true;
          if (this.stateValue === "connecting" || this.stateValue === "disconnected") this.setState("connected");
          resolve();
        },
        reject: (e) => {
          clearTimeout(guard);
          reject(e);
        },
      };
      ws.addEventListener("open", () => {
        if (ws.protocol && ws.protocol !== this.codec.subprotocol) {
          // Browsers refuse this themselves; other WebSocket implementations may not.
          this.emit("error", new ChatError("protocol", `the server chose subprotocol ${ws.protocol}, not ${this.codec.subprotocol}`));
          ws.close(1000);
          return;
        }
        this.transmit(hello, ws);
      });
      ws.addEventListener("message", (ev: { data: string | ArrayBuffer }) => this.onData(ws, ev.data));
      ws.addEventListener("close", (ev: { code: number; reason: string }) => {
        clearTimeout(guard);
        if (!this.welcomed) reject(new ChatError("disconnected", `connection closed (${ev.code}) before welcome`));
        this.onClose(ws, ev.code ?? 1006, ev.reason ?? "");
      });
    });
    this.opening = opening;
    const clear = () => {
      if (this.opening === opening) this.opening = null;
    };
    opening.then(clear, clear);
    return opening;
  }

  /** Reopens the connection and resumes the session with the kept token, once at a time. */
  private restore(): Promise<Session> {
    if (this.restoring) return this.restoring;
    const token = this.token;
    if (!token) return Promise.reject(new ChatError("unauthenticated", "no session to resume"));
    const run = (async () => {
      try {
        await this.ensureOpen();
        const frame = await this.request({ type: "resume", token }, "session", { auth: false, retry: false });
        return this.onSession(frame, token, true);
      } catch (e) {
        const err = e instanceof ChatError ? e : new ChatError("disconnected", String(e));
        if (err.code === "unauthenticated" && this.token === token) {
          this.signOut("expired", err);
        } else if (this.token && !this.closedByUser) {
          this.scheduleReconnect();
        }
        throw err;
      }
    })();
    this.restoring = run;
    const clear = () => {
      if (this.restoring === run) this.restoring = null;
    };
    run.then(clear, clear);
    return run;
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer !== undefined || this.closedByUser || !this.opts.reconnect) return;
    const { initialDelayMs, maxDelayMs } = this.opts.reconnect;
    const ceiling = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(this.attempt, 20));
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.attempt += 1;
    this.setState("reconnecting");
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.restore().catch(() => {
        /* restore() reschedules or signs out by itself */
      });
    }, delay);
  }

  private onClose(ws: WebSocketLike, code: number, reason: string): void {
    if (ws !== this.ws) return;
    this.ws = null;
    this.welcomed = false;
    const wasSignedIn = this.signedIn;
    this.signedIn = false;
    if (this.closedByUser) return;

    if (code === 4001) this.signOut("revoked", new ChatError("unauthenticated", "session revoked by the server"));
    // 1000 (normal, or our logout) and 1008 (policy) say: do not come back on your own.
    const willReconnect =
      !!this.token && !!this.opts.reconnect && code !== 1000 && code !== 1008 && (wasSignedIn || this.restoring !== null);

    const lost = [...this.inflight.values()];
    this.inflight.clear();
    const retryLater: Pending[] = [];
    for (const p of lost) {
      clearTimeout(p.timer);
      p.timer = undefined;
      if (code === 1009) {
        p.reject(new ChatError("too_large", "the server refused a frame as too large (1009)", { request: p.frame.type }));
      } else if (p.retry && willReconnect) {
        retryLater.push(p);
      } else {
        p.reject(new ChatError("disconnected", `connection closed (${code}) before the reply`, { request: p.frame.type }));
      }
    }
    this.waiting = [...retryLater, ...this.waiting];
    this.emit("close", { code, reason, willReconnect });
    if (willReconnect) {
      this.scheduleReconnect();
    } else {
      const waiting = this.waiting;
      this.waiting = [];
      for (const p of waiting) p.reject(new ChatError("disconnected", `connection closed (${code})`, { request: p.frame.type }));
      this.setState("disconnected");
    }
  }

  private signOut(reason: SignOutReason, err: ChatError): void {
    const had = this.token !== null || this.sessionValue !== null;
    this.token = null;
    this.sessionValue = null;
    this.signedIn = false;
    this.focused = undefined;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const waiting = this.waiting;
    this.waiting = [];
    for (const p of waiting) p.reject(err);
    if (this.ws && this.welcomed) this.setState("connected");
    else if (!this.ws) this.setState("disconnected");
    if (had) this.emit("signedout", { reason });
  }

  /** The user's settings now (a reply or a push). Read receipts on again: others' read marks are asked again in full. */
  private onPrivacy(privacy: Privacy): void {
    if (this.sessionValue?.privacy.read_receipts === false && privacy.read_receipts !== false) this.receiptBook.askAllAgain();
    if (this.sessionValue) this.sessionValue.privacy = privacy;
  }

  private onSession(frame: ServerFrameOf<"session">, token: string | undefined, resumed: boolean): Session {
    const previous = this.sessionValue;
    const session: Session = {
      user: frame.user,
      device: frame.device,
      token: frame.token ?? token ?? "",
      expires_at: frame.expires_at,
      profile: frame.profile,
      privacy: frame.privacy,
      keys: frame.keys,
    };
    // Delivery cursors belong to a device: a new device starts from nothing.
    if (!previous || previous.device !== session.device) this.tracker.clear();
    if (!previous || previous.user !== session.user) this.receiptBook.clear();
    this.sessionValue = session;
    this.token = session.token;
    this.signedIn = true;
    this.attempt = 0;
    this.setState("ready");
    this.emit("session", { session, resumed });
    const waiting = this.waiting;
    this.waiting = [];
    for (const p of waiting) this.dispatch(p);
    if (this.focused !== undefined && resumed) {
      this.request({ type: "focus", conv: this.focused }, "ok", { auth: true, retry: true }).catch(() => {});
    }
    // Receipts that rose while the connection was down: asked again for every conversation asked before.
    if (resumed) for (const conv of this.receiptBook.asked()) this.receipts(conv).catch(() => {});
    if (this.opts.autoSync) {
      const fail = (e: unknown) => this.emit("error", e instanceof ChatError ? e : new ChatError("protocol", String(e)));
      // A new device that wants no old history: acknowledged up to each conversation's newest entry first.
      if (!resumed && this.opts.newDeviceHistory === "latest") this.skipHistory().catch(fail);
      this.sync().catch(fail);
    }
    return session;
  }

  // -- requests -------------------------------------------------------------

  /**
   * Sends any request and resolves with its reply of type `expect` (rejects
   * with a {@link ChatError} for an `error` reply). `auth`: needs a session
   * (waits while one is being resumed); `retry`: safe to repeat after a
   * reconnect. The typed methods below cover every request.
   */
  request<T extends ServerFrame["type"]>(
    frame: RequestFrame,
    expect: T,
    opts: { auth?: boolean; retry?: boolean } = {},
  ): Promise<ServerFrameOf<T>> {
    return new Promise<ServerFrameOf<T>>((resolve, reject) => {
      try {
        // Validate now, so a malformed request fails at the caller's line.
        canonicalClientFrame({ ...frame, id: 0 });
      } catch (e) {
        reject(new ChatError("invalid_argument", e instanceof Error ? e.message : String(e), { request: frame.type }));
        return;
      }
      this.dispatch({
        frame,
        expect,
        auth: opts.auth ?? true,
        retry: opts.retry ?? false,
        resolve: resolve as (f: ServerFrame) => void,
        reject,
      });
    });
  }

  private dispatch(p: Pending): void {
    if (this.closedByUser) {
      p.reject(new ChatError("closed", "the client was closed", { request: p.frame.type }));
      return;
    }
    if (p.auth && !this.signedIn && this.token) {
      // A session exists but this connection is not (yet) signed in: wait for the resume.
      this.waiting.push(p);
      if (!this.restoring && this.reconnectTimer === undefined) this.restore().catch(() => {});
      return;
    }
    this.ensureOpen().then(
      () => {
        if (this.ws && this.welcomed) this.transmit(p, this.ws);
        else this.dispatch(p);
      },
      (e: unknown) => p.reject(e instanceof ChatError ? e : new ChatError("disconnected", String(e))),
    );
  }

  private transmit(p: Pending, ws: WebSocketLike): void {
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffff_ffff ? 1 : this.nextId + 1;
    let data: WireData;
    try {
      data = encodeClientFrame(this.codec, { ...p.frame, id } as ClientFrame);
    } catch (e) {
      p.reject(new ChatError("invalid_argument", e instanceof Error ? e.message : String(e), { request: p.frame.type }));
      return;
    }
    if (byteLength(data) > this.opts.maxFrameBytes) {
      p.reject(new ChatError("too_large", `the ${p.frame.type} frame is larger than ${this.opts.maxFrameBytes} bytes`, { request: p.frame.type }));
      return;
    }
    this.inflight.set(id, p);
    p.timer = setTimeout(() => {
      if (this.inflight.delete(id)) {
        p.reject(new ChatError("timeout", `no reply to ${p.frame.type} within ${this.opts.requestTimeoutMs} ms`, { request: p.frame.type }));
      }
    }, this.opts.requestTimeoutMs);
    try {
      ws.send(data);
    } catch {
      // The socket is closing: its close event settles this request.
    }
  }

  private onData(ws: WebSocketLike, data: string | ArrayBuffer): void {
    if (ws !== this.ws) return;
    let frame: ServerFrame;
    try {
      frame = decodeServerFrame(this.codec, data);
    } catch (e) {
      this.emit("error", new ChatError("protocol", e instanceof ProtocolError ? e.message : String(e)));
      return;
    }
    switch (frame.type) {
      case "message":
        this.onPushedMessage(frame.message);
        return;
      case "presence":
        this.emit("presence", frame.presence);
        return;
      case "alert": {
        const { type: _type, ...alert } = frame;
        this.emit("alert", alert);
        return;
      }
      case "read":
        this.emit("read", { conv: frame.conv, seq: frame.seq });
        return;
      case "typing": {
        const { type: _type, ...typing } = frame;
        this.emit("typing", typing);
        return;
      }
      case "receipt": {
        const { type: _type, conv, ...info } = frame;
        if (this.receiptBook.apply(conv, info)) this.emit("receipt", { conv, ...info });
        return;
      }
      case "profile_changed":
        if (this.sessionValue && frame.profile.user === this.sessionValue.user) this.sessionValue.profile = frame.profile;
        this.emit("profile", frame.profile);
        return;
      case "new_user":
        this.emit("newuser", frame.entry);
        return;
      case "invited":
        this.emit("invited", frame.conversation);
        return;
      case "answered":
        this.emit("answered", { conv: frame.conv, accepted: frame.accepted });
        return;
      case "to_device":
        this.emit("todevice", frame.messages);
        return;
      case "key_counts":
        if (frame.id !== undefined) this.onReply(frame.id, frame);
        else this.emit("keycounts", { one_time: frame.one_time, fallback_unused: frame.fallback_unused });
        return;
      case "devices_changed":
        this.emit("deviceschanged", { user: frame.user });
        return;
      // Replies with an id, pushes without.
      case "contact":
        if (frame.id !== undefined) this.onReply(frame.id, frame);
        else this.emit("contact", frame.contact);
        return;
      case "call_state":
        if (frame.id !== undefined) this.onReply(frame.id, frame);
        else this.emit("call", frame.call);
        return;
      case "call_signal": {
        const { type: _type, ...signal } = frame;
        this.emit("callsignal", signal);
        return;
      }
      case "privacy":
        if (frame.id !== undefined) {
          this.onReply(frame.id, frame);
        } else {
          this.onPrivacy(frame.privacy);
          this.emit("privacy", frame.privacy);
        }
        return;
      case "error": {
        const p = frame.id !== undefined ? this.inflight.get(frame.id) : undefined;
        if (!p || frame.id === undefined) {
          this.emit("error", ChatError.fromFrame(frame));
          return;
        }
        this.inflight.delete(frame.id);
        clearTimeout(p.timer);
        p.reject(ChatError.fromFrame(frame, p.frame.type));
        return;
      }
      default:
        this.onReply(frame.id, frame);
    }
  }

  private onReply(id: number, frame: ServerFrame): void {
    const p = this.inflight.get(id);
    if (!p) return; // a reply after its timeout
    this.inflight.delete(id);
    clearTimeout(p.timer);
    if (frame.type !== p.expect) {
      p.reject(new ChatError("protocol", `expected ${p.expect} in reply to ${p.frame.type}, got ${frame.type}`, { request: p.frame.type }));
    } else {
      p.resolve(frame);
    }
  }

  // -- delivery -------------------------------------------------------------

  private onPushedMessage(message: Message): void {
    if (this.tracker.receive(message, false)) this.emit("message", { message, source: "push" });
    if (this.tracker.hasBase(message.conv)) this.flushAcks();
    else this.scheduleSync();
  }

  private scheduleSync(): void {
    if (this.syncScheduled) return;
    this.syncScheduled = true;
    setTimeout(() => {
      this.syncScheduled = false;
      if (this.signedIn) this.sync().catch((e) => this.emit("error", e instanceof ChatError ? e : new ChatError("protocol", String(e))));
    }, 20);
  }

  private sendAcks(): Promise<void>[] {
    return this.tracker.takeAcks().map(({ conv, seq }) =>
      this.request({ type: "ack", conv, seq }, "ok", { auth: true, retry: true }).then(
        () => undefined,
        () => this.tracker.ackFailed(conv, seq),
      ),
    );
  }

  /**
   * Acknowledges what pushes completed, one round at a time: pushes that arrive while an ack is on its way are
   * acknowledged together once it is answered. A burst of pushes costs a few acks (each with its reply), not one
   * per message, which would double the frames both ways and the client's work per message.
   */
  private flushAcks(): void {
    if (this.ackRound) {
      this.ackAgain = true;
      return;
    }
    const acks = this.sendAcks();
    if (acks.length === 0) return;
    this.ackRound = Promise.all(acks).then(() => {
      this.ackRound = null;
      if (!this.ackAgain) return;
      this.ackAgain = false;
      this.flushAcks();
    });
  }

  /**
   * Fetches everything this device has not acknowledged, emits each new
   * message as a `message` event (`source: "sync"`), acknowledges the gap-free
   * runs, and repeats while the server says `more`. Resolves with the new
   * messages. Runs after every sign-in by itself (unless `autoSync: false`).
   */
  sync(): Promise<Message[]> {
    const run = this.syncChain.then(() => this.runSync());
    this.syncChain = run.catch(() => undefined);
    return run;
  }

  private async runSync(): Promise<Message[]> {
    const delivered: Message[] = [];
    for (;;) {
      const page = await this.request({ type: "sync", limit: this.opts.syncPageSize }, "synced", { auth: true, retry: true });
      for (const message of page.messages) {
        if (this.tracker.receive(message, true)) {
          delivered.push(message);
          this.emit("message", { message, source: "sync" });
        }
      }
      const acks = this.sendAcks();
      // A round of push acks on its way moves the cursor too: it may hold this page's seqs already (received by
      // push before a reconnect, acknowledged by an ack sent again since), so the page asks for no ack of its own.
      const round = this.ackRound;
      await Promise.all(round ? [...acks, round] : acks);
      // Without a new acknowledgement the next page would be this one again.
      if (!page.more || (acks.length === 0 && !round)) break;
    }
    return delivered;
  }

  /**
   * The new-device flow of PROTOCOL.md: acknowledges every conversation up to its newest entry (`last_seq` of
   * `conversations`, page after page, the main list and then the requests list), so that `sync` returns only what arrives from now on; older entries stay
   * readable with {@link history}. Resolves with the conversations listed. Runs in turn with {@link sync} (a sync
   * asked meanwhile waits for it), and by itself after `register` and `login` with `newDeviceHistory: "latest"`.
   */
  skipHistory(): Promise<ConversationSummary[]> {
    const run = this.syncChain.then(() => this.runSkipHistory());
    this.syncChain = run.catch(() => undefined);
    return run;
  }

  private async runSkipHistory(): Promise<ConversationSummary[]> {
    const all: ConversationSummary[] = [];
    // Message requests are delivered like any conversation, but listed apart: both lists.
    for (const list of ["main", "requests"] as const) {
      let after: string | undefined;
      do {
        const page = await this.conversations({ ...(list === "main" ? {} : { list }), limit: 100, ...(after === undefined ? {} : { after }) });
        const acks = page.conversations
          .filter((c) => c.last_seq > 0)
          .map(async ({ conv, last_seq }) => {
            this.tracker.skipTo(conv, last_seq);
            await this.ackPaced(conv, last_seq);
          });
        await Promise.all(acks);
        all.push(...page.conversations);
        after = page.next;
      } while (after !== undefined);
    }
    // Pushes received meanwhile above the skipped entries may now form runs to acknowledge.
    this.flushAcks();
    return all;
  }

  /** An ack that waits and tries again while the server answers `rate_limited` (many conversations at once). */
  private async ackPaced(conv: string, seq: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.request({ type: "ack", conv, seq }, "ok", { auth: true, retry: true });
        return;
      } catch (e) {
        if (!(e instanceof ChatError) || e.code !== "rate_limited" || attempt >= 20) {
          this.tracker.ackFailed(conv, seq);
          throw e;
        }
        await new Promise((resolve) => setTimeout(resolve, Math.max(e.retryAfterMs ?? 100, 20)));
      }
    }
  }

  /**
   * Acknowledges `conv` up to `seq` as received by this device. The client
   * does this by itself for gap-free runs; call it only if you track delivery
   * yourself (an ack beyond a gap loses the messages in the gap for this device).
   */
  async ack(conv: string, seq: number): Promise<void> {
    await this.request({ type: "ack", conv, seq }, "ok", { auth: true, retry: true });
  }

  // -- account --------------------------------------------------------------

  /** Creates an account and signs in as a new device. */
  async register(account: {
    username: string;
    email: string;
    phone: string;
    display_name: string;
    password: string;
    device?: string;
  }): Promise<Session> {
    const frame = await this.request(
      { type: "register", ...account, device: account.device ?? this.opts.device },
      "session",
      { auth: false },
    );
    return this.onSession(frame, undefined, false);
  }

  /** Signs in by username or email as a new device. */
  async login(credentials: { login: string; password: string; device?: string }): Promise<Session> {
    const frame = await this.request(
      { type: "login", ...credentials, device: credentials.device ?? this.opts.device },
      "session",
      { auth: false },
    );
    return this.onSession(frame, undefined, false);
  }

  /** Signs in with the token of an earlier session (same device, same delivery cursors). */
  async resume(token: string): Promise<Session> {
    this.token = token;
    return this.restore();
  }

  /** Revokes this session; the server then closes the connection. */
  async logout(): Promise<void> {
    await this.request({ type: "logout" }, "ok", { auth: true });
    this.signOut("logout", new ChatError("closed", "signed out"));
  }

  /** Changes the password; the server revokes every other session of the user. */
  async changePassword(old_password: string, new_password: string): Promise<void> {
    await this.request({ type: "change_password", old_password, new_password }, "ok", { auth: true });
  }

  /** This user's devices (each live sign-in), oldest first; `current` marks this client's. */
  async devices(): Promise<DeviceInfo[]> {
    const reply = await this.request({ type: "devices" }, "device_list", { auth: true, retry: true });
    return reply.devices;
  }

  /** Renames one of this user's devices (`not_found` when it is not theirs). */
  async renameDevice(device: string, name: string): Promise<void> {
    await this.request({ type: "rename_device", device, name }, "ok", { auth: true, retry: true });
  }

  /**
   * Signs one of this user's devices out for good: its connections close (4001), its keys and to-device queue are
   * deleted. This client's own device: a {@link ChatClient.logout}.
   */
  async revokeDevice(device: string): Promise<void> {
    if (device === this.sessionValue?.device) return this.logout();
    await this.request({ type: "revoke_device", device }, "ok", { auth: true });
  }

  /** Asks for a password-reset mail (the reply is the same whether or not the account exists). */
  async requestPasswordReset(email: string): Promise<void> {
    await this.request({ type: "reset_request", email }, "ok", { auth: false });
  }

  /** Sets a new password with the token from the reset mail. */
  async confirmPasswordReset(token: string, new_password: string): Promise<void> {
    await this.request({ type: "reset_confirm", token, new_password }, "ok", { auth: false });
  }

  // -- directory and profiles -----------------------------------------------

  /** Users whose username or a display-name word starts with `query`; their presence is pushed while listed. */
  async searchUsers(query: string, page: { after?: string; limit?: number } = {}): Promise<{ users: DirectoryEntry[]; next?: string }> {
    const r = await this.request({ type: "search_users", query, ...page }, "users", { auth: true, retry: true });
    return r.next === undefined ? { users: r.users } : { users: r.users, next: r.next };
  }

  /** One user's contact card and presence. */
  async getProfile(user: string): Promise<DirectoryEntry> {
    return (await this.request({ type: "get_profile", user }, "profile", { auth: true, retry: true })).entry;
  }

  /** Changes the caller's own profile; absent fields stay; `avatar: ""` removes the picture. */
  async updateProfile(changes: { display_name?: string; about?: string; avatar?: string }): Promise<DirectoryEntry> {
    const { entry } = await this.request({ type: "update_profile", ...changes }, "profile", { auth: true, retry: true });
    if (this.sessionValue && entry.profile.user === this.sessionValue.user) this.sessionValue.profile = entry.profile;
    return entry;
  }

  // -- media (PROTOCOL.md "Media (HTTP)") --------------------------------------

  /** The HTTP address of chatd's `path`, from the WebSocket URL (`ws://host/ws` → `http://host/media`). */
  private httpUrl(path: string): string {
    const u = new URL(this.url);
    u.protocol = u.protocol === "wss:" ? "https:" : "http:";
    u.pathname = path;
    u.search = "";
    return u.toString();
  }

  /** The session token for HTTP requests (in `Authorization`, never in the URL). */
  private bearer(): string {
    if (!this.token) throw new ChatError("unauthenticated", "sign in before uploading or downloading media");
    return `Bearer ${this.token}`;
  }

  /** The error an HTTP answer of chatd's media endpoints stands for. */
  private static async mediaError(r: Response): Promise<ChatError> {
    let body: { error?: string; message?: string } = {};
    try {
      body = (await r.json()) as typeof body;
    } catch {
      // Not JSON: the status says enough.
    }
    const byStatus: Record<number, ErrorCode> = {
      400: "invalid_argument",
      401: "unauthenticated",
      404: "not_found",
      413: "too_large",
      416: "invalid_argument",
      429: "rate_limited",
    };
    const code = (body.error as ErrorCode | undefined) ?? byStatus[r.status] ?? "unavailable";
    const retry = Number(r.headers.get("retry-after"));
    return new ChatError(code, body.message ?? `HTTP ${r.status}`, {
      retryAfterMs: Number.isFinite(retry) && retry > 0 ? retry * 1000 : undefined,
    });
  }

  /**
   * Uploads a file to chatd (`POST /media`) as it is: encrypt it first for an encrypted conversation. Returns its
   * media id (for a message's `media` list and content), its size and the SHA-256 of the bytes stored, which the
   * caller may check. Refused with `too_large` past the server's limit, `rate_limited` past the upload rate.
   */
  async upload(
    data: Uint8Array | Blob,
    options: { signal?: AbortSignal; onProgress?: (sent: number, total: number) => void } = {},
  ): Promise<{ id: string; size: number; sha256: string }> {
    const url = this.httpUrl("/media");
    const headers = { Authorization: this.bearer(), "Content-Type": "application/octet-stream" };
    const total = data instanceof Uint8Array ? data.byteLength : data.size;
    // Browsers tell how far an upload is only through XMLHttpRequest; elsewhere (Node) fetch, and progress at the end.
    const r =
      options.onProgress && typeof XMLHttpRequest !== "undefined"
        ? await xhrPost(url, headers, data, options.onProgress, options.signal)
        : await fetch(url, { method: "POST", headers, body: data as BodyInit, signal: options.signal });
    if (r.status !== 201) throw await ChatClient.mediaError(r);
    options.onProgress?.(total, total);
    return (await r.json()) as { id: string; size: number; sha256: string };
  }

  /**
   * Downloads media `id` (`GET /media/{id}`): all of it, or bytes `range[0]` to `range[1]` (inclusive; to the end
   * when absent), as a client seeking in a voice note does. The bytes as stored: decrypt them if they were encrypted.
   */
  async download(id: string, options: { range?: [number, number?]; signal?: AbortSignal } = {}): Promise<Uint8Array> {
    if (!/^[0-9a-f]{32}$/.test(id)) throw new ChatError("invalid_argument", `not a media id: ${JSON.stringify(id)}`);
    const headers: Record<string, string> = { Authorization: this.bearer() };
    if (options.range) headers.Range = `bytes=${options.range[0]}-${options.range[1] ?? ""}`;
    const r = await fetch(this.httpUrl(`/media/${id}`), { headers, signal: options.signal });
    if (r.status !== 200 && r.status !== 206) throw await ChatClient.mediaError(r);
    return new Uint8Array(await r.arrayBuffer());
  }

  // -- messaging --------------------------------------------------------------

  /**
   * Sends a message to a conversation (`{ conv }`) or to a user (`{ to }`:
   * the direct conversation with them, opened by this first send if need
   * be). The `client_id` (fresh unless given: pass the same one to retry a
   * send yourself) is kept when the request is repeated after a reconnect, so
   * the message is stored once.
   */
  async send(target: SendTarget, content: string | Content, options: SendOptions = {}): Promise<SendResult> {
    const client_id = options.clientId ?? newClientId();
    const body: Content = typeof content === "string" ? { kind: "text", text: content } : content;
    const { rel } = options;
    const mentions = options.mentions?.length ? options.mentions : undefined;
    const media = options.media?.length ? options.media : undefined;
    if ((rel || mentions) && !("conv" in target)) {
      throw new ChatError("invalid_argument", "a message that points at another or mentions members names its conv");
    }
    const frame: RequestFrame =
      "conv" in target
        ? {
            type: "send",
            conv: target.conv,
            client_id,
            ...(rel ? { rel } : {}),
            ...(mentions ? { mentions } : {}),
            ...(media ? { media } : {}),
            content: body,
          }
        : { type: "send", to: target.to, client_id, ...(media ? { media } : {}), content: body };
    const sent = await this.request(frame, "sent", { auth: true, retry: true });
    const message: Message = {
      id: sent.message_id,
      conv: sent.conv,
      seq: sent.seq,
      from: this.sessionValue?.user ?? "",
      client_id,
      ts: sent.ts,
      ...(rel ? { rel } : {}),
      ...(mentions ? { mentions } : {}),
      ...(media ? { media } : {}),
      ...(sent.expires_at !== undefined ? { expires_at: sent.expires_at } : {}),
      content: body,
    };
    // Our own message is part of the conversation's run: it must not block acks, nor come back as new.
    this.tracker.receive(message, false);
    if (this.tracker.hasBase(message.conv)) this.flushAcks();
    return { message, duplicate: sent.duplicate };
  }

  /**
   * A page of history: the newest `limit` messages before seq `before` (all if absent), ascending, with `related`:
   * the edits, reactions and deletions pointing at them and the messages their replies quote, wherever they are.
   */
  async history(conv: string, page: { before?: number; limit?: number } = {}): Promise<HistoryPage> {
    const r = await this.request({ type: "history", conv, ...page }, "messages", { auth: true, retry: true });
    return { messages: r.messages, more: r.more, related: r.related ?? [] };
  }

  /**
   * Deletes `target` (a message of `conv`, or one's own reaction) for everyone: its content, and that of its edits
   * and reactions, is removed from the server. The sender's own messages; in a group, admins delete any.
   */
  deleteMessage(conv: string, target: string, options: { clientId?: string } = {}): Promise<SendResult> {
    return this.send({ conv }, { kind: "deleted" }, { ...options, rel: { kind: "delete", target } });
  }

  /** Sets the disappearing-message timer of `conv` (one of {@link DISAPPEARING_TIMERS}, or `undefined`: off). */
  async setTimer(conv: string, expireAfter: number | undefined): Promise<number> {
    const frame: RequestFrame =
      expireAfter === undefined ? { type: "set_timer", conv } : { type: "set_timer", conv, expire_after: expireAfter };
    const reply = await this.request(frame, "changed", { auth: true, retry: true });
    this.fetchNotice();
    return reply.seq;
  }

  /** Marks `conv` read up to `seq` (unread counts drop). */
  async read(conv: string, seq: number): Promise<void> {
    await this.request({ type: "read", conv, seq }, "ok", { auth: true, retry: true });
  }

  /**
   * How far the other members of `conv` received and read it: asks the server what rose since the last answer (all
   * of it the first time), keeps it with what `receipt` pushes told, and resolves with every mark known. Asked again
   * by itself after a reconnect for every conversation asked once; between, `receipt` events keep it current.
   * Emits `receipt` for each mark that rose.
   */
  async receipts(conv: string): Promise<ReceiptInfo[]> {
    const since = this.receiptBook.until(conv);
    const r = await this.request(since === undefined ? { type: "receipts", conv } : { type: "receipts", conv, since }, "receipts", {
      auth: true,
      retry: true,
    });
    const changed = this.receiptBook.take(conv, r.receipts, r.until, since === undefined);
    for (const user of changed) this.emit("receipt", { conv, ...this.receiptBook.get(conv, user) });
    return this.receiptBook.marks(conv);
  }

  /**
   * The state of this user's message at `seq` in `conv` from what is known (see {@link receipts}): `sent`,
   * `delivered` to every member in `others` (the conversation's other members), or `read` by every one, with the
   * counts for "read by 3 of 7". Read marks count for nothing while this user does not share read receipts.
   */
  receiptOf(conv: string, seq: number, others: readonly string[]): MessageReceipt {
    return this.receiptBook.status(conv, seq, others, this.sessionValue?.privacy.read_receipts !== false);
  }

  /**
   * Tells the other members of `conv` who are connected that this user writes there (`true`; send it again about
   * every half of the `ttl_ms` the pushes carry while the user writes) or stopped (`false`). Nothing is stored; past
   * the connection's budget the server drops it. Not retried: a late typing is no use.
   */
  async typing(conv: string, typing: boolean): Promise<void> {
    await this.request({ type: "typing", conv, typing }, "ok", { auth: true });
  }

  /** Tells the server which conversation is on screen (`undefined`: none); kept across reconnects. */
  async focus(conv: string | undefined): Promise<void> {
    this.focused = conv;
    await this.request(conv === undefined ? { type: "focus" } : { type: "focus", conv }, "ok", { auth: true, retry: true });
  }

  /**
   * A page of the caller's conversations, newest activity first, with unread counts; `after`: the `next` of the
   * previous page. `list`: `main` (the default: what the caller accepted) or `requests` (see {@link requests}).
   */
  async conversations(page: { list?: ConversationList; after?: string; limit?: number } = {}): Promise<ConversationPage> {
    const r = await this.request({ type: "conversations", ...page }, "conversations", { auth: true, retry: true });
    return r.next === undefined ? { conversations: r.conversations } : { conversations: r.conversations, next: r.next };
  }

  /**
   * A page of what waits for the caller's answer, newest first: message requests (a direct conversation a
   * non-contact started; `request.by` is the sender) and group invitations (`request.by` invited). Answer with
   * {@link accept} or {@link decline}.
   */
  async requests(after?: string, limit?: number): Promise<ConversationPage> {
    return this.conversations({ list: "requests", ...(after === undefined ? {} : { after }), ...(limit === undefined ? {} : { limit }) });
  }

  /** Every conversation of a list (the main one by default), page after page (`limit` per page). */
  async allConversations(limit?: number, list?: ConversationList): Promise<ConversationSummary[]> {
    const all: ConversationSummary[] = [];
    let after: string | undefined;
    do {
      const page = await this.conversations({
        ...(list === undefined ? {} : { list }),
        ...(after === undefined ? {} : { after }),
        ...(limit === undefined ? {} : { limit }),
      });
      all.push(...page.conversations);
      after = page.next;
    } while (after !== undefined);
    return all;
  }

  // -- message requests, invitations and reports -------------------------------

  /**
   * Accepts a message request (the caller may write in it from now on) or a group invitation (the caller joins:
   * a `member_joined` notice). Resolves with the conversation; the caller's other devices get an `answered` event.
   * Fails with `not_found` when nothing waits for the caller there (also when answered already); not repeated
   * after a reconnect.
   */
  async accept(conv: string): Promise<ConversationInfo> {
    const { conversation } = await this.request({ type: "accept", conv }, "conversation", { auth: true });
    if (conversation.kind === "group") this.fetchNotice();
    return conversation;
  }

  /**
   * Declines a group invitation, or deletes a message request: its messages so far are no longer readable by the
   * caller and it leaves the requests list (a later message from the sender makes it a request again). The sender
   * is not told. Fails with `not_found` when nothing waits for the caller there.
   */
  async decline(conv: string): Promise<void> {
    await this.request({ type: "decline", conv }, "ok", { auth: true });
  }

  /**
   * Reports `user` to the server's operator, about `conv` if given (a conversation the caller is or was in, with
   * the user in it or invited), with the caller's words (`reason`, up to 500 characters). One report per user: a
   * repeat replaces it. Combine with {@link block} to also stop them.
   */
  async report(user: string, conv?: string, reason?: string): Promise<void> {
    await this.request(
      { type: "report", user, ...(conv === undefined ? {} : { conv }), ...(reason === undefined ? {} : { reason }) },
      "ok",
      { auth: true, retry: true },
    );
  }

  // -- key directory (end-to-end encryption, first part) ---------------------

  /**
   * Uploads this device's keys (PROTOCOL.md "Key directory"): its identity (the first time; the same again is
   * accepted, other keys fail with `conflict`), new one-time keys, a new fallback key. Resolves with what the device
   * has left on the server, to top up.
   */
  async uploadKeys(keys: {
    identity?: IdentityKeys;
    oneTimeKeys?: SignedKey[];
    fallbackKey?: SignedKey;
    /** The user's master signing key (the first device creates it). */
    masterKey?: MasterKeyInfo;
    /** The master key's signatures of devices of the user. */
    signatures?: DeviceSignature[];
  }): Promise<{ oneTime: number; fallbackUnused: boolean }> {
    const reply = await this.request(
      {
        type: "upload_keys",
        ...(keys.identity === undefined ? {} : { device_keys: keys.identity }),
        ...(keys.oneTimeKeys === undefined || keys.oneTimeKeys.length === 0 ? {} : { one_time_keys: keys.oneTimeKeys }),
        ...(keys.fallbackKey === undefined ? {} : { fallback_key: keys.fallbackKey }),
        ...(keys.masterKey === undefined ? {} : { master_key: keys.masterKey }),
        ...(keys.signatures === undefined || keys.signatures.length === 0 ? {} : { signatures: keys.signatures }),
      },
      "key_counts",
      { auth: true, retry: true },
    );
    return { oneTime: reply.one_time, fallbackUnused: reply.fallback_unused };
  }

  /** The identity keys of the devices of `users` the caller may reach (through `conv`, a conversation of theirs, if given). */
  async queryKeys(users: string[], conv?: string): Promise<DeviceKeysInfo[]> {
    return (await this.queryKeysAndMasters(users, conv)).devices;
  }

  /** As {@link ChatClient.queryKeys}, with the master key of each of `users` that has one. */
  async queryKeysAndMasters(users: string[], conv?: string): Promise<{ devices: DeviceKeysInfo[]; masterKeys: UserMasterKey[] }> {
    const reply = await this.request(
      { type: "query_keys", users, ...(conv === undefined ? {} : { conv }) },
      "device_keys",
      { auth: true, retry: true },
    );
    return { devices: reply.devices, masterKeys: reply.master_keys ?? [] };
  }

  /** One one-time key (or the fallback key) of each device named that the caller may reach. */
  async claimKeys(devices: DeviceRef[], conv?: string): Promise<ClaimedKey[]> {
    const reply = await this.request(
      { type: "claim_keys", devices, ...(conv === undefined ? {} : { conv }) },
      "claimed_keys",
      { auth: true },
    );
    return reply.keys;
  }

  /**
   * Queues opaque payloads of `kind` for devices (PROTOCOL.md "To-device messages"): each to a device, or to every
   * device with keys of its user when `device` is absent. Resolves with how many were queued (a retry with the same
   * ids counts again, stored once) and the targets that got nothing.
   */
  async sendToDevice(kind: string, messages: OutgoingToDevice[], conv?: string): Promise<{ queued: number; undelivered: Undelivered[] }> {
    const reply = await this.request(
      { type: "send_to_device", kind, messages, ...(conv === undefined ? {} : { conv }) },
      "to_device_sent",
      { auth: true, retry: true },
    );
    return { queued: reply.queued, undelivered: reply.undelivered ?? [] };
  }

  /** This device processed these to-device payloads: the server deletes them and delivers them no more. */
  async ackToDevice(messages: ToDeviceAck[]): Promise<void> {
    await this.request({ type: "ack_to_device", messages }, "ok", { auth: true, retry: true });
  }

  /** Turns end-to-end encryption on for `conv`, for good; resolves with its notice's seq (0 if it was on already). */
  async encrypt(conv: string): Promise<number> {
    const reply = await this.request({ type: "encrypt", conv }, "changed", { auth: true, retry: true });
    this.fetchNotice();
    return reply.seq;
  }

  // -- key backup (PROTOCOL.md "Key backup") ----------------------------------

  /** Makes a new key backup this user's current one; the previous one and its keys are deleted. Not retried: a second one would replace the first. */
  async createBackup(algorithm: string, authData: string): Promise<BackupInfo> {
    const reply = await this.request({ type: "create_backup", algorithm, auth_data: authData }, "backup", { auth: true });
    return reply.backup;
  }

  /** This user's current key backup, or `null` when there is none. */
  async getBackup(): Promise<BackupInfo | null> {
    try {
      return (await this.request({ type: "get_backup" }, "backup", { auth: true, retry: true })).backup;
    } catch (e) {
      if (e instanceof ChatError && e.code === "not_found") return null;
      throw e;
    }
  }

  /** Replaces the current backup's `auth_data`; `not_found` when `version` is no longer the current backup. */
  async updateBackup(version: string, authData: string): Promise<BackupInfo> {
    const reply = await this.request({ type: "update_backup", version, auth_data: authData }, "backup", { auth: true, retry: true });
    return reply.backup;
  }

  /** Deletes the current backup and its keys; `not_found` when `version` is no longer the current backup. */
  async deleteBackup(version: string): Promise<void> {
    await this.request({ type: "delete_backup", version }, "ok", { auth: true });
  }

  /**
   * Adds keys (at most 1,000 per call) to the current backup; resolves with the backup's count and etag now.
   * `not_found` when another device made a new backup since (`getBackup` tells which); `limit_reached` when the
   * backup is full (nothing stored).
   */
  async putBackupKeys(version: string, keys: BackupKeyInfo[]): Promise<BackupInfo> {
    const reply = await this.request({ type: "put_backup_keys", version, keys }, "backup", { auth: true, retry: true });
    return reply.backup;
  }

  /** A page of the current backup's keys (ordered by conversation, then session), after `after` when given. */
  async getBackupKeys(version: string, after?: BackupKeyRef, limit?: number): Promise<{ keys: BackupKeyInfo[]; more: boolean }> {
    const frame = {
      type: "get_backup_keys" as const,
      version,
      ...(after === undefined ? {} : { after }),
      ...(limit === undefined ? {} : { limit }),
    };
    const reply = await this.request(frame, "backup_keys", { auth: true, retry: true });
    return { keys: reply.keys, more: reply.more };
  }

  // -- conversations and groups ----------------------------------------------

  /** The direct conversation with `user`, opened if need be; with `encrypted`, end-to-end encryption is turned on if it is not yet. */
  async openDirect(user: string, options: { encrypted?: boolean } = {}): Promise<ConversationInfo> {
    const frame = options.encrypted ? { type: "open_direct" as const, user, encrypted: true } : { type: "open_direct" as const, user };
    return (await this.request(frame, "conversation", { auth: true, retry: true })).conversation;
  }

  /**
   * The server pushes the notice of a change to every member's devices but the connection that asked (it has
   * its reply, which carries only the seq): this one fetches it by a sync, so it arrives as a `message` event
   * here too, in order with the rest.
   */
  private fetchNotice(): void {
    if (this.opts.autoSync) this.sync().catch((e) => this.emit("error", e instanceof ChatError ? e : new ChatError("protocol", String(e))));
  }

  /**
   * Creates a group owned by the caller, with `members` besides the caller. Members whose `groups` setting admits
   * only their contacts' adds are invited instead: they are in the result's `invited`, not in its `members`.
   */
  async createGroup(group: {
    title: string;
    description?: string;
    avatar?: string;
    members?: string[];
    encrypted?: boolean;
  }): Promise<ConversationInfo> {
    const { conversation } = await this.request({ type: "create_group", ...group }, "conversation", { auth: true });
    this.fetchNotice();
    return conversation;
  }

  /** One conversation with its members (the caller is or was a member). */
  async getConversation(conv: string): Promise<ConversationInfo> {
    return (await this.request({ type: "get_conversation", conv }, "conversation", { auth: true, retry: true })).conversation;
  }

  /** Changes a group's settings (admins); resolves with the seq of the notice. */
  async updateGroup(conv: string, changes: GroupChanges): Promise<number> {
    const { seq } = await this.request({ type: "update_group", conv, ...changes }, "changed", { auth: true });
    this.fetchNotice();
    return seq;
  }

  /**
   * Adds users to a group (admins); resolves with the seq of the notice and the users invited instead of added
   * (their `groups` setting admits only their contacts' adds: they get an `invited` event and join if they accept).
   */
  async addMembers(conv: string, users: string[]): Promise<AddResult> {
    const { seq, invited } = await this.request({ type: "add_members", conv, users }, "changed", { auth: true });
    if (seq > 0) this.fetchNotice();
    return { seq, invited: invited ?? [] };
  }

  /** Removes a member (admins; never the owner, and an admin only by the owner); resolves with the notice's seq. */
  async removeMember(conv: string, user: string): Promise<number> {
    const { seq } = await this.request({ type: "remove_member", conv, user }, "changed", { auth: true });
    this.fetchNotice();
    return seq;
  }

  /** Leaves a group; resolves with the seq of the notice. */
  async leave(conv: string): Promise<number> {
    const { seq } = await this.request({ type: "leave", conv }, "changed", { auth: true });
    this.fetchNotice();
    return seq;
  }

  /** Gives a member a role (the owner); `owner` hands ownership over (the caller becomes an admin). */
  async setRole(conv: string, user: string, role: Role): Promise<number> {
    const { seq } = await this.request({ type: "set_role", conv, user, role }, "changed", { auth: true });
    this.fetchNotice();
    return seq;
  }

  /** Creates the group's invite token, replacing any earlier one (admins). */
  async createInvite(conv: string): Promise<string> {
    return (await this.request({ type: "create_invite", conv }, "invite", { auth: true })).token;
  }

  /** Revokes the group's invite token (admins). */
  async revokeInvite(conv: string): Promise<void> {
    await this.request({ type: "revoke_invite", conv }, "ok", { auth: true, retry: true });
  }

  /** Joins a group by an invite token; an unknown, revoked or replaced token all fail with `not_found`. */
  async join(token: string): Promise<ConversationInfo> {
    const { conversation } = await this.request({ type: "join", token }, "conversation", { auth: true, retry: true });
    this.fetchNotice();
    return conversation;
  }

  /** No alerts for `conv` until `until` (ms since the epoch, server time), or until unmuted when absent. */
  async mute(conv: string, until?: number): Promise<void> {
    await this.request(until === undefined ? { type: "mute", conv } : { type: "mute", conv, until }, "ok", { auth: true, retry: true });
  }

  /** Alerts for `conv` again. */
  async unmute(conv: string): Promise<void> {
    await this.request({ type: "unmute", conv }, "ok", { auth: true, retry: true });
  }

  // -- contacts, blocks and privacy ------------------------------------------

  /**
   * Changes the contact link with `user`: `request` (if they asked already, this accepts), `accept`, `decline`,
   * `cancel` (the caller's own request), `remove` (a contact). Resolves with the caller's view now; the other
   * devices of both users whose view changed get a `contact` event. Not repeated after a reconnect: a second
   * `request` would fail with `conflict`, a second answer with `not_found`.
   */
  async contact(user: string, action: ContactAction): Promise<ContactInfo> {
    return (await this.request({ type: "contact", user, action }, "contact", { auth: true })).contact;
  }

  /**
   * Blocks `user` (withdrawing the caller's request to them, if any): neither can message the other in their
   * direct conversation, start one or add the other to a group, and neither sees the other's presence. The
   * blocked user is not told. Fails with `conflict` if blocked already.
   */
  async block(user: string): Promise<ContactInfo> {
    return (await this.request({ type: "block", user }, "contact", { auth: true })).contact;
  }

  /** Stops blocking `user`; a contact request they made meanwhile is dropped. Fails with `not_found` if not blocked. */
  async unblock(user: string): Promise<ContactInfo> {
    return (await this.request({ type: "unblock", user }, "contact", { auth: true })).contact;
  }

  /**
   * A page of one of the caller's lists: `contacts`, `incoming` (requests received), `outgoing` (requests sent)
   * or `blocked`; `after`: the `next` of the previous page. Each entry has the user's presence as the caller may
   * see it.
   */
  async contacts(list: ContactList, page: { after?: string; limit?: number } = {}): Promise<ContactPage> {
    const r = await this.request({ type: "contacts", list, ...page }, "contacts", { auth: true, retry: true });
    return r.next === undefined ? { contacts: r.contacts } : { contacts: r.contacts, next: r.next };
  }

  /**
   * Changes the privacy settings; absent fields stay (`direct: "nobody"` and `groups: "nobody"` are refused with
   * `invalid_argument`).
   * Resolves with the settings now, which {@link session} holds too; the user's other devices get a `privacy`
   * event.
   */
  async setPrivacy(changes: { direct?: Audience; groups?: Audience; presence?: Audience; read_receipts?: boolean }): Promise<Privacy> {
    const { privacy } = await this.request({ type: "set_privacy", ...changes }, "privacy", { auth: true, retry: true });
    this.onPrivacy(privacy);
    return privacy;
  }

  /**
   * Calls the other member of direct conversation `conv` (PROTOCOL.md "Calls"): `call` is a fresh random id (a
   * UUID), `signal` the SDP offer (plain, or sealed for the callee's devices). Resolves with the call as it stands:
   * `ringing`, or `ended` with reason `busy`. Not retried: a lost invite is a call that did not ring.
   */
  async callInvite(conv: string, call: string, media: CallMedia, signal: CallSignal): Promise<CallInfo> {
    const reply = await this.request({ type: "call_invite", conv, call, media, signal }, "call_state", { auth: true });
    return reply.call;
  }

  /** Tells the caller that this device (of the callee) rings. */
  async callRinging(call: string): Promise<void> {
    await this.request({ type: "call_ringing", call }, "ok", { auth: true, retry: true });
  }

  /** Takes the call on this device with the SDP answer; `not_found` when another device answered first or it is over. */
  async callAnswer(call: string, signal: CallSignal): Promise<CallInfo> {
    return (await this.request({ type: "call_answer", call, signal }, "call_state", { auth: true })).call;
  }

  /** Sends ICE candidates to the other side of the call. */
  async callCandidates(call: string, signal: CallSignal): Promise<void> {
    await this.request({ type: "call_candidates", call, signal }, "ok", { auth: true, retry: true });
  }

  /** Ends the call: hangs up (or cancels, before an answer), declines, or reports a failure. */
  async callHangup(call: string, reason: HangupReason = "hangup"): Promise<CallInfo> {
    return (await this.request({ type: "call_hangup", call, reason }, "call_state", { auth: true, retry: true })).call;
  }

  /**
   * The STUN and TURN servers a call may use (PROTOCOL.md "Calls"), as `RTCPeerConnection`'s `iceServers`, with
   * TURN credentials made for this user; `expiresAt` (ms since the epoch) when TURN stops accepting them, absent
   * without TURN. Ask again before each call. An empty list: the server has none, and a call connects only where
   * the two devices reach each other directly.
   */
  async iceServers(): Promise<{ servers: IceServer[]; expiresAt?: number }> {
    const reply = await this.request({ type: "ice_servers" }, "ice_servers", { auth: true, retry: true });
    return reply.expires_at === undefined ? { servers: reply.servers } : { servers: reply.servers, expiresAt: reply.expires_at };
  }

  /** Application-level ping; resolves with the round-trip time in ms. */
  async ping(): Promise<number> {
    const start = Date.now();
    await this.request({ type: "ping" }, "pong", { auth: false });
    return Date.now() - start;
  }
}

/** A POST through XMLHttpRequest, reporting the bytes sent; its answer as a fetch `Response`. */
function xhrPost(
  url: string,
  headers: Record<string, string>,
  body: Uint8Array | Blob,
  onProgress: (sent: number, total: number) => void,
  signal: AbortSignal | undefined,
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    xhr.responseType = "arraybuffer";
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.total);
    xhr.onload = () => {
      const h = new Headers();
      const retry = xhr.getResponseHeader("retry-after");
      if (retry) h.set("retry-after", retry);
      resolve(new Response(xhr.status === 304 ? null : (xhr.response as ArrayBuffer), { status: xhr.status, headers: h }));
    };
    xhr.onerror = () => reject(new ChatError("disconnected", "the upload failed"));
    xhr.onabort = () => reject(new ChatError("closed", "the upload was cancelled"));
    if (signal) {
      if (signal.aborted) return reject(new ChatError("closed", "the upload was cancelled"));
      signal.addEventListener("abort", () => xhr.abort(), { once: true });
    }
    xhr.send(body as XMLHttpRequestBodyInit);
  });
}
