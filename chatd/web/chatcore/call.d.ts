/**
 * A small call helper over `RTCPeerConnection` and {@link ChatClient} (PROTOCOL.md "Calls"): one {@link Phone} per
 * signed-in client places and takes one call at a time, each a {@link Call} that gathers the media, makes and
 * applies the SDP offer and answer, trickles ICE candidates in small batches (buffering the other side's until its
 * description is set), and ends on either side. In an end-to-end encrypted conversation the signals are sealed per
 * device through {@link PhoneOptions.sealer} (the e2e layer's Olm sessions), so the server can neither read nor swap
 * the DTLS fingerprints; elsewhere they travel plain.
 *
 * When the media path breaks in an answered call (a device changed networks, a relay went away), the call shows
 * `reconnecting` and the caller's device restarts ICE: a new offer, answered by the other device, through the server
 * as any signal (PROTOCOL.md "ICE restart"); the call ends as `failed` only if media does not flow again within
 * {@link PhoneOptions.reconnectMs}.
 *
 * Glare (both users call each other at once): chatd keeps one call per user, so of two crossing invites the first
 * one it takes stands and the other is refused with `limit_reached`; the side refused answers the call that stands
 * instead of failing. Should both calls ever be seen live, {@link glareWinner} picks one deterministically (the
 * lower call id) on both sides, and the loser's caller drops its own call and answers the winner.
 *
 * Needs a browser (or any runtime with WebRTC); the pure parts ({@link glareWinner}, {@link CandidateQueue},
 * {@link CandidateBatcher}) run anywhere.
 *
 * @module
 */
import type { ChatClient } from "./client.js";
import type { CallInfo, CallMedia, CallSignal, HangupReason, IceCandidate, IceServer, SealedSignal } from "./protocol.js";
/** Seals and opens call signals for end-to-end encrypted conversations (the e2e layer's Olm sessions). */
export interface CallSealer {
    /** `data` sealed for each of `devices` of `user` (every device of theirs when absent), one payload each; `conv` the call's. */
    seal(user: string, devices: string[] | undefined, data: Uint8Array, conv: string): Promise<SealedSignal[]>;
    /** What `from`'s device sealed for this device. */
    unseal(from: {
        user: string;
        device: string;
    }, sealed: string): Promise<Uint8Array>;
}
/** What a sealed signal holds: the SDP or candidates, as a plain signal would carry them. */
interface SignalBody {
    sdp?: string;
    candidates?: IceCandidate[];
}
export interface PhoneOptions {
    /**
     * The sealer for conversations where `encrypted(conv)` says signals must be sealed; without one, signals are
     * plain (and chatd refuses them in an encrypted conversation).
     */
    sealer?: CallSealer;
    /** Whether conversation `conv` is end-to-end encrypted (its signals sealed). Default: never. */
    encrypted?: (conv: string) => boolean;
    /** The video constraints of a video call (default `true`); e.g. `{ width: 320, height: 240, frameRate: 15 }`. */
    video?: MediaTrackConstraints | boolean;
    /** `relay` forces every path through TURN (a debugging aid); default `all`. */
    iceTransportPolicy?: RTCIceTransportPolicy;
    /** How long local candidates gather before a batch is sent, in ms (default 50). */
    trickleMs?: number;
    /**
     * How long, in ms, an answered call's media path may stay broken (`reconnecting`) before the call ends as
     * `failed` (default 30000).
     */
    reconnectMs?: number;
    /**
     * How long, in ms, the caller's device waits for a path that went `disconnected` to come back by itself before
     * it restarts ICE (default 2000); a `failed` path is restarted at once.
     */
    restartAfterMs?: number;
    /** How often, in ms, the caller's device restarts ICE again while media does not flow (default 5000). */
    restartEveryMs?: number;
    /**
     * Whether another page of this device (a second tab sharing its session) holds call `call`. A call this device
     * holds that this page does not know is hung up (the page was reloaded mid-call), unless this says another page
     * has it: then it is left alone. Default: never.
     */
    heldElsewhere?: (call: string) => boolean;
    /** For tests: the peer connection and media sources. */
    RTCPeerConnection?: typeof RTCPeerConnection;
    getUserMedia?: (constraints: MediaStreamConstraints) => Promise<MediaStream>;
}
/** Where a call stands for this device. */
export type CallPhase = 
/** Outgoing: the invite is on its way, or the callee's devices were told but none rings yet. */
"calling"
/** Outgoing: a device of the callee rings. */
 | "ringing"
/** Incoming: this device rings. */
 | "incoming"
/** Answered: the media path is being set up. */
 | "connecting"
/** Media flows. */
 | "connected"
/** Answered, media flowed, and its path broke: ICE is being restarted. */
 | "reconnecting"
/** Over; see {@link Call.reason}. */
 | "ended";
/** Why a call ended here: the server's reason, or `elsewhere` (answered on another device of this user). */
export type CallEndReason = NonNullable<CallInfo["reason"]> | "elsewhere";
/** The call of two sides that crossed (glare) that stands: the lower id, the same on both sides. */
export declare function glareWinner(a: string, b: string): string;
/**
 * Remote candidates that arrive before the remote description: kept in order and handed over once it is set;
 * after that, handed over at once.
 */
export declare class CandidateQueue {
    private readonly add;
    private waiting;
    private open;
    constructor(add: (c: IceCandidate) => Promise<void> | void);
    /** Whether the remote description is set (candidates pass straight through). */
    get ready(): boolean;
    /** How many wait. */
    get size(): number;
    push(candidates: IceCandidate[]): Promise<void>;
    /** The remote description is set: the waiting candidates go in, in order. */
    release(): Promise<void>;
}
/**
 * Local candidates, gathered for `delayMs` and sent as one batch (at most 50 a frame, the server's limit), only
 * once the call exists on the server (`open()`): before that they wait.
 */
export declare class CandidateBatcher {
    private readonly send;
    private readonly delayMs;
    private waiting;
    private timer;
    private open_;
    private closed;
    constructor(send: (batch: IceCandidate[]) => Promise<void>, delayMs?: number);
    push(c: IceCandidate): void;
    /** The call exists on the server: what waits goes out. */
    open(): void;
    /** Holds what is gathered until {@link open} again (an ICE restart's new candidates wait for its SDP to go first). */
    hold(): void;
    close(): void;
    private schedule;
    /** Sends what waits now. */
    flush(): Promise<void>;
}
type CallEvents = {
    /** The phase changed. */
    phase: CallPhase;
    /** The other side's media arrived (a stream with its tracks). */
    remote: MediaStream;
    /** The local media is ready. */
    local: MediaStream;
};
/** One call of this device. */
export declare class Call {
    private readonly phone;
    readonly id: string;
    readonly conv: string;
    /** The other user. */
    readonly peer: string;
    readonly media: CallMedia;
    readonly direction: "outgoing" | "incoming";
    phase: CallPhase;
    reason: CallEndReason | undefined;
    /** The server's view, as last seen. */
    info: CallInfo | undefined;
    /** The other side's device, once known (the caller's for an incoming call; the device that answered). */
    peerDevice: string | undefined;
    pc: RTCPeerConnection | undefined;
    local: MediaStream | undefined;
    remote: MediaStream | undefined;
    /** Whether the other side sealed its signals (then this side seals too), once one arrived. */
    sealedSignals: boolean | undefined;
    /** When media started to flow (ms since the epoch). */
    connectedAt: number | undefined;
    /** The offer of an incoming call, once it arrived. */
    private offer;
    private offerWaiters;
    private readonly remoteCandidates;
    private readonly localCandidates;
    private readonly events;
    /** Signals handled one after the other (each may need unsealing). */
    private signals;
    private muted_;
    private cameraOff_;
    /** While `reconnecting`: when the call gives up, and when the caller restarts ICE. */
    private giveUp;
    private restartTimer;
    /** The ICE restart under way, if any (one at a time). */
    private restarting;
    /** @internal */
    constructor(phone: Phone, init: {
        id: string;
        conv: string;
        peer: string;
        media: CallMedia;
        direction: "outgoing" | "incoming";
        peerDevice?: string;
    });
    on<K extends keyof CallEvents>(type: K, handler: (payload: CallEvents[K]) => void): () => void;
    private emit;
    /** @internal */
    setPhase(phase: CallPhase): void;
    /** Whether the call is over. */
    get over(): boolean;
    get muted(): boolean;
    get cameraOff(): boolean;
    /** Mutes (or unmutes) the microphone. */
    setMuted(muted: boolean): void;
    /** Turns the camera off (black frames) or on. */
    setCameraOff(off: boolean): void;
    /** Whether the call sends video (a camera track). */
    get hasVideo(): boolean;
    /** @internal Gets the media and the peer connection ready. */
    prepare(media: CallMedia): Promise<void>;
    /**
     * The media path of the answered call broke (`disconnected` or `failed`): the call shows `reconnecting`, the
     * caller's device restarts ICE (after {@link PhoneOptions.restartAfterMs} if the path may still come back by
     * itself, at once if it failed), and the call ends as `failed` if media does not flow again in time.
     */
    private reconnect;
    /**
     * An ICE restart in `ms`, then another every {@link PhoneOptions.restartEveryMs} while media does not flow: an
     * offer or its answer may be lost (the server does not keep signals for a device whose connection is down, as it
     * may be while its network changes).
     */
    private scheduleRestart;
    private stopReconnecting;
    /**
     * Restarts ICE (PROTOCOL.md "ICE restart"): a new offer with new ICE credentials, sent to the device that
     * answered, which answers it; the candidates gathered for it follow the offer. An earlier restart still waiting
     * for its answer is taken back first (its offer or answer was lost). Only the caller's device restarts (so that
     * two offers never cross; on the other device this does nothing, and a broken path there is noticed by the
     * caller's device too), and only in an answered call; it does so by itself when the path breaks, and an app may
     * call it when it knows the network changed. Calls made while one runs share it.
     */
    restartIce(): Promise<void>;
    private restartNow;
    /** The caller's ICE restart offer, on the device that answered: applied and answered. */
    private answerRestart;
    /** @internal The call exists on the server (invited, answered): local candidates may go. */
    openTrickle(): void;
    /** @internal A signal from the other side, in order. */
    receive(signal: SignalBody, from: string): Promise<void>;
    private waitOffer;
    /**
     * Takes an incoming call on this device, with `media` (the call's by default; `voice` answers without the camera).
     * Resolves quietly when the call ended meanwhile (hung up, or taken on another device: see the phase); rejects
     * when the media or the connection could not be set up (the call is then ended as `failed`).
     */
    answer(media?: CallMedia): Promise<void>;
    /** Declines an incoming call (every device of this user stops ringing). */
    decline(): Promise<void>;
    /** Ends the call: hangs up (or cancels, before an answer), declines, or reports a failure. */
    hangup(reason?: HangupReason): Promise<void>;
    /** @internal Ends the call here (no request): releases the media and the connection. */
    end(reason: CallEndReason): void;
}
type PhoneEvents = {
    /** A call rings on this device. */
    incoming: Call;
    /** A call of this user is on another device (the UI may say so); informational. */
    elsewhere: CallInfo;
};
/** Places and takes the calls of one signed-in client; one call at a time. */
export declare class Phone {
    readonly client: ChatClient;
    readonly options: PhoneOptions;
    /** The call of this device, if any. */
    current: Call | undefined;
    /** The ICE servers of the last call (empty: no TURN nor STUN, calls only where the devices reach each other). */
    lastIceServers: IceServer[] | undefined;
    private readonly events;
    private offs;
    /** Signals of calls not known yet (the signal may overtake the state): kept a little while. */
    private early;
    /** An incoming call from the peer while this device's own invite is on its way (glare). */
    private crossing;
    constructor(client: ChatClient, options?: PhoneOptions);
    close(): void;
    on<K extends keyof PhoneEvents>(type: K, handler: (payload: PhoneEvents[K]) => void): () => void;
    private emit;
    private get me();
    /** @internal */
    forget(call: Call): void;
    /**
     * Calls `peer` in direct conversation `conv`. Resolves once the callee's devices were told (or the call ended at
     * once: busy); media and phases follow as events of the call. When the peer calls this user at the same time,
     * the call that stands is answered instead (glare), and that one is returned.
     */
    start(conv: string, peer: string, media: CallMedia): Promise<Call>;
    /** An incoming call from `peer` in `conv` that rings here, waited for up to `ms`. */
    private incomingFrom;
    private onState;
    private takeEarly;
    private onSignal;
    private deliver;
    /** @internal The signal `body` for the other side of `call`: sealed for its device(s) in an encrypted conversation. */
    makeSignal(call: Call, body: SignalBody): Promise<CallSignal>;
    /** @internal */
    sendSignal(call: Call, body: SignalBody): Promise<void>;
}
export {};
