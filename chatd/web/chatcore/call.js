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
import { Emitter } from "./emitter.js";
import { ChatError } from "./errors.js";
/** The call of two sides that crossed (glare) that stands: the lower id, the same on both sides. */
export function glareWinner(a, b) {
    return a < b ? a : b;
}
/**
 * Remote candidates that arrive before the remote description: kept in order and handed over once it is set;
 * after that, handed over at once.
 */
export class CandidateQueue {
    add;
    waiting = [];
    open = false;
    constructor(add) {
        this.add = add;
    }
    /** Whether the remote description is set (candidates pass straight through). */
    get ready() {
        return this.open;
    }
    /** How many wait. */
    get size() {
        return this.waiting.length;
    }
    async push(candidates) {
        if (!this.open) {
            this.waiting.push(...candidates);
            return;
        }
        for (const c of candidates)
            await this.add(c);
    }
    /** The remote description is set: the waiting candidates go in, in order. */
    async release() {
        this.open = true;
        const waiting = this.waiting.splice(0);
        for (const c of waiting)
            await this.add(c);
    }
}
/**
 * Local candidates, gathered for `delayMs` and sent as one batch (at most 50 a frame, the server's limit), only
 * once the call exists on the server (`open()`): before that they wait.
 */
export class CandidateBatcher {
    send;
    delayMs;
    waiting = [];
    timer;
    open_ = false;
    closed = false;
    constructor(send, delayMs = 50) {
        this.send = send;
        this.delayMs = delayMs;
    }
    push(c) {
        if (this.closed)
            return;
        this.waiting.push(c);
        this.schedule();
    }
    /** The call exists on the server: what waits goes out. */
    open() {
        this.open_ = true;
        this.schedule();
    }
    /** Holds what is gathered until {@link open} again (an ICE restart's new candidates wait for its SDP to go first). */
    hold() {
        this.open_ = false;
        if (this.timer !== undefined)
            clearTimeout(this.timer);
        this.timer = undefined;
    }
    close() {
        this.closed = true;
        this.waiting = [];
        if (this.timer !== undefined)
            clearTimeout(this.timer);
    }
    schedule() {
        if (!this.open_ || this.closed || this.timer !== undefined || this.waiting.length === 0)
            return;
        this.timer = setTimeout(() => {
            this.timer = undefined;
            void this.flush();
        }, this.delayMs);
    }
    /** Sends what waits now. */
    async flush() {
        while (this.open_ && !this.closed && this.waiting.length > 0) {
            const batch = this.waiting.splice(0, 50);
            try {
                await this.send(batch);
            }
            catch {
                // A lost batch: ICE copes with fewer candidates, or the call fails and says so.
            }
        }
    }
}
/** One call of this device. */
export class Call {
    phone;
    id;
    conv;
    /** The other user. */
    peer;
    media;
    direction;
    phase;
    reason;
    /** The server's view, as last seen. */
    info;
    /** The other side's device, once known (the caller's for an incoming call; the device that answered). */
    peerDevice;
    pc;
    local;
    remote;
    /** Whether the other side sealed its signals (then this side seals too), once one arrived. */
    sealedSignals;
    /** When media started to flow (ms since the epoch). */
    connectedAt;
    /** The offer of an incoming call, once it arrived. */
    offer;
    offerWaiters = [];
    remoteCandidates;
    localCandidates;
    events = new Emitter((_type, e) => console.error("chatcore call: a handler failed:", e));
    /** Signals handled one after the other (each may need unsealing). */
    signals = Promise.resolve();
    muted_ = false;
    cameraOff_ = false;
    /** While `reconnecting`: when the call gives up, and when the caller restarts ICE. */
    giveUp;
    restartTimer;
    /** The ICE restart under way, if any (one at a time). */
    restarting;
    /** @internal */
    constructor(phone, init) {
        this.phone = phone;
        this.id = init.id;
        this.conv = init.conv;
        this.peer = init.peer;
        this.media = init.media;
        this.direction = init.direction;
        this.peerDevice = init.peerDevice;
        this.phase = init.direction === "outgoing" ? "calling" : "incoming";
        this.remoteCandidates = new CandidateQueue(async (c) => {
            // An empty line is the end of the other side's candidates.
            await (c.candidate === "" ? this.pc?.addIceCandidate() : this.pc?.addIceCandidate(toRtc(c)))?.catch(() => { });
        });
        this.localCandidates = new CandidateBatcher((batch) => this.phone.sendSignal(this, { candidates: batch }), phone.options.trickleMs ?? 50);
    }
    on(type, handler) {
        return this.events.on(type, handler);
    }
    emit(type, payload) {
        this.events.emit(type, payload);
    }
    /** @internal */
    setPhase(phase) {
        if (this.phase === phase || this.phase === "ended")
            return;
        this.phase = phase;
        this.emit("phase", phase);
    }
    /** Whether the call is over. */
    get over() {
        return this.phase === "ended";
    }
    get muted() {
        return this.muted_;
    }
    get cameraOff() {
        return this.cameraOff_;
    }
    /** Mutes (or unmutes) the microphone. */
    setMuted(muted) {
        this.muted_ = muted;
        for (const t of this.local?.getAudioTracks() ?? [])
            t.enabled = !muted;
    }
    /** Turns the camera off (black frames) or on. */
    setCameraOff(off) {
        this.cameraOff_ = off;
        for (const t of this.local?.getVideoTracks() ?? [])
            t.enabled = !off;
    }
    /** Whether the call sends video (a camera track). */
    get hasVideo() {
        return (this.local?.getVideoTracks().length ?? 0) > 0;
    }
    /** @internal Gets the media and the peer connection ready. */
    async prepare(media) {
        const gum = this.phone.options.getUserMedia ?? ((c) => navigator.mediaDevices.getUserMedia(c));
        const video = this.phone.options.video ?? true;
        this.local = await gum(media === "video" ? { audio: true, video } : { audio: true, video: false });
        if (this.phase === "ended") {
            stopTracks(this.local);
            return;
        }
        this.emit("local", this.local);
        const { servers } = await this.phone.client.iceServers().catch(() => ({ servers: [] }));
        this.phone.lastIceServers = servers;
        const PC = this.phone.options.RTCPeerConnection ?? RTCPeerConnection;
        const pc = new PC({
            iceServers: servers.map((s) => ({ urls: s.urls, ...(s.username ? { username: s.username } : {}), ...(s.credential ? { credential: s.credential } : {}) })),
            iceTransportPolicy: this.phone.options.iceTransportPolicy ?? "all",
        });
        this.pc = pc;
        for (const track of this.local.getTracks())
            pc.addTrack(track, this.local);
        pc.onicecandidate = (ev) => {
            // The end of candidates is an empty line, as in WebRTC.
            const c = ev.candidate;
            this.localCandidates.push(c ? { candidate: c.candidate, ...(c.sdpMid != null ? { sdp_mid: c.sdpMid } : {}), ...(c.sdpMLineIndex != null ? { sdp_m_line_index: c.sdpMLineIndex } : {}) } : { candidate: "" });
        };
        pc.ontrack = (ev) => {
            const stream = ev.streams[0] ?? this.remote ?? new MediaStream();
            if (!ev.streams[0])
                stream.addTrack(ev.track);
            this.remote = stream;
            this.emit("remote", stream);
        };
        pc.onconnectionstatechange = () => {
            if (this.phase === "ended")
                return;
            const state = pc.connectionState;
            if (state === "connected") {
                this.connectedAt ??= Date.now();
                this.stopReconnecting();
                this.setPhase("connected");
            }
            else if ((state === "disconnected" || state === "failed") && this.connectedAt !== undefined) {
                this.reconnect(state);
            }
            else if (state === "failed") {
                void this.hangup("failed");
            }
        };
    }
    /**
     * The media path of the answered call broke (`disconnected` or `failed`): the call shows `reconnecting`, the
     * caller's device restarts ICE (after {@link PhoneOptions.restartAfterMs} if the path may still come back by
     * itself, at once if it failed), and the call ends as `failed` if media does not flow again in time.
     */
    reconnect(state) {
        this.setPhase("reconnecting");
        this.giveUp ??= setTimeout(() => {
            this.giveUp = undefined;
            if (this.pc?.connectionState !== "connected")
                void this.hangup("failed");
        }, this.phone.options.reconnectMs ?? 30000);
        if (this.direction !== "outgoing")
            return;
        if (state === "failed" && this.restartTimer !== undefined) {
            clearTimeout(this.restartTimer);
            this.restartTimer = undefined;
        }
        this.scheduleRestart(state === "failed" ? 0 : (this.phone.options.restartAfterMs ?? 2000));
    }
    /**
     * An ICE restart in `ms`, then another every {@link PhoneOptions.restartEveryMs} while media does not flow: an
     * offer or its answer may be lost (the server does not keep signals for a device whose connection is down, as it
     * may be while its network changes).
     */
    scheduleRestart(ms) {
        this.restartTimer ??= setTimeout(() => {
            this.restartTimer = undefined;
            if (this.over || this.pc?.connectionState === "connected")
                return;
            void this.restartIce().catch((e) => {
                // Ended meanwhile (the connection closed under it): nothing failed.
                if (!this.over)
                    console.warn("chatcore call: the ICE restart failed:", e);
            });
            this.scheduleRestart(this.phone.options.restartEveryMs ?? 5000);
        }, ms);
    }
    stopReconnecting() {
        if (this.giveUp !== undefined)
            clearTimeout(this.giveUp);
        if (this.restartTimer !== undefined)
            clearTimeout(this.restartTimer);
        this.giveUp = this.restartTimer = undefined;
    }
    /**
     * Restarts ICE (PROTOCOL.md "ICE restart"): a new offer with new ICE credentials, sent to the device that
     * answered, which answers it; the candidates gathered for it follow the offer. An earlier restart still waiting
     * for its answer is taken back first (its offer or answer was lost). Only the caller's device restarts (so that
     * two offers never cross; on the other device this does nothing, and a broken path there is noticed by the
     * caller's device too), and only in an answered call; it does so by itself when the path breaks, and an app may
     * call it when it knows the network changed. Calls made while one runs share it.
     */
    restartIce() {
        this.restarting ??= this.restartNow().finally(() => {
            this.restarting = undefined;
        });
        return this.restarting;
    }
    async restartNow() {
        const pc = this.pc;
        if (!pc || this.over || this.direction !== "outgoing" || !this.info?.answered_by)
            return;
        this.localCandidates.hold();
        try {
            if (pc.signalingState === "have-local-offer")
                await pc.setLocalDescription({ type: "rollback" });
            if (pc.signalingState !== "stable")
                return;
            const offer = await pc.createOffer({ iceRestart: true });
            await pc.setLocalDescription(offer);
            try {
                await this.phone.sendSignal(this, { sdp: offer.sdp ?? "" });
            }
            catch (e) {
                // Not sent: taken back, so that the next restart starts from a stable state.
                await pc.setLocalDescription({ type: "rollback" }).catch(() => { });
                throw e;
            }
        }
        finally {
            this.localCandidates.open();
        }
    }
    /** The caller's ICE restart offer, on the device that answered: applied and answered. */
    async answerRestart(pc, sdp) {
        this.localCandidates.hold();
        try {
            await pc.setRemoteDescription({ type: "offer", sdp });
            const answer = await pc.createAnswer();
            await pc.setLocalDescription(answer);
            await this.phone.sendSignal(this, { sdp: answer.sdp ?? "" });
        }
        finally {
            this.localCandidates.open();
        }
    }
    /** @internal The call exists on the server (invited, answered): local candidates may go. */
    openTrickle() {
        this.localCandidates.open();
    }
    /** @internal A signal from the other side, in order. */
    receive(signal, from) {
        this.signals = this.signals.then(async () => {
            if (this.phase === "ended")
                return;
            if (signal.sdp !== undefined) {
                const pc = this.pc;
                if (this.direction === "incoming" && pc?.currentRemoteDescription) {
                    // Answered, and a new offer from the caller's device: an ICE restart (the first offer again is not).
                    if (signal.sdp !== this.offer && from === this.peerDevice)
                        await this.answerRestart(pc, signal.sdp);
                }
                else if (this.direction === "incoming") {
                    this.peerDevice ??= from;
                    this.offer ??= signal.sdp;
                    for (const w of this.offerWaiters.splice(0))
                        w(signal.sdp);
                }
                else if (pc && !pc.currentRemoteDescription) {
                    this.peerDevice = from;
                    await pc.setRemoteDescription({ type: "answer", sdp: signal.sdp });
                    await this.remoteCandidates.release();
                }
                else if (pc && pc.signalingState === "have-local-offer" && from === this.peerDevice) {
                    // The answer to this device's ICE restart.
                    await pc.setRemoteDescription({ type: "answer", sdp: signal.sdp });
                }
            }
            if (signal.candidates?.length)
                await this.remoteCandidates.push(signal.candidates);
        }).catch((e) => {
            console.warn("chatcore call: a signal was not applied:", e);
        });
        return this.signals;
    }
    waitOffer() {
        if (this.offer !== undefined)
            return Promise.resolve(this.offer);
        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error("the caller's offer did not arrive")), 15000);
            this.offerWaiters.push((sdp) => {
                clearTimeout(timer);
                resolve(sdp);
            });
        });
    }
    /**
     * Takes an incoming call on this device, with `media` (the call's by default; `voice` answers without the camera).
     * Resolves quietly when the call ended meanwhile (hung up, or taken on another device: see the phase); rejects
     * when the media or the connection could not be set up (the call is then ended as `failed`).
     */
    async answer(media = this.media) {
        if (this.direction !== "incoming" || this.phase !== "incoming")
            throw new Error("there is no incoming call to answer");
        this.setPhase("connecting");
        try {
            const offer = await this.waitOffer();
            await this.prepare(media);
            const pc = this.pc;
            if (!pc || this.over)
                return;
            await pc.setRemoteDescription({ type: "offer", sdp: offer });
            await this.remoteCandidates.release();
            const answer = await pc.createAnswer();
            await pc.setLocalDescription(answer);
            const signal = await this.phone.makeSignal(this, { sdp: answer.sdp ?? "" });
            this.info = await this.phone.client.callAnswer(this.id, signal);
            this.openTrickle();
        }
        catch (e) {
            // Hung up or ended meanwhile: nothing failed.
            if (this.over)
                return;
            if (e instanceof ChatError && e.code === "not_found") {
                // Taken on another device first (or over): the phase says so.
                this.end("elsewhere");
                return;
            }
            await this.hangup("failed");
            throw e;
        }
    }
    /** Declines an incoming call (every device of this user stops ringing). */
    decline() {
        return this.hangup("declined");
    }
    /** Ends the call: hangs up (or cancels, before an answer), declines, or reports a failure. */
    async hangup(reason = "hangup") {
        if (this.phase === "ended")
            return;
        this.end(reason === "hangup" && this.direction === "outgoing" && !this.info?.answered_by ? "cancelled" : reason);
        await this.phone.client.callHangup(this.id, reason).catch(() => { });
    }
    /** @internal Ends the call here (no request): releases the media and the connection. */
    end(reason) {
        if (this.phase === "ended")
            return;
        this.reason = reason;
        this.stopReconnecting();
        this.localCandidates.close();
        stopTracks(this.local);
        try {
            this.pc?.close();
        }
        catch {
            // closed already
        }
        this.phase = "ended";
        this.phone.forget(this);
        this.emit("phase", "ended");
    }
}
/** Places and takes the calls of one signed-in client; one call at a time. */
export class Phone {
    client;
    options;
    /** The call of this device, if any. */
    current;
    /** The ICE servers of the last call (empty: no TURN nor STUN, calls only where the devices reach each other). */
    lastIceServers;
    events = new Emitter((_type, e) => console.error("chatcore call: a handler failed:", e));
    offs = [];
    /** Signals of calls not known yet (the signal may overtake the state): kept a little while. */
    early = new Map();
    /** An incoming call from the peer while this device's own invite is on its way (glare). */
    crossing;
    constructor(client, options = {}) {
        this.client = client;
        this.options = options;
        this.offs.push(client.on("call", (info) => this.onState(info)), client.on("callsignal", (frame) => void this.onSignal(frame)));
    }
    close() {
        for (const off of this.offs.splice(0))
            off();
        if (this.current)
            void this.current.hangup();
    }
    on(type, handler) {
        return this.events.on(type, handler);
    }
    emit(type, payload) {
        this.events.emit(type, payload);
    }
    get me() {
        const s = this.client.session;
        if (!s)
            throw new Error("not signed in");
        return { user: s.user, device: s.device };
    }
    /** @internal */
    forget(call) {
        if (this.current === call)
            this.current = undefined;
        if (this.crossing === call)
            this.crossing = undefined;
    }
    /**
     * Calls `peer` in direct conversation `conv`. Resolves once the callee's devices were told (or the call ended at
     * once: busy); media and phases follow as events of the call. When the peer calls this user at the same time,
     * the call that stands is answered instead (glare), and that one is returned.
     */
    async start(conv, peer, media) {
        const waiting = this.current;
        if (waiting && waiting.direction === "incoming" && waiting.phase === "incoming" && waiting.peer === peer && waiting.conv === conv) {
            // They called first: take their call.
            await waiting.answer(media);
            return waiting;
        }
        if (waiting && waiting.phase !== "ended")
            throw new ChatError("limit_reached", "a call is on already: end it first");
        const call = new Call(this, { id: crypto.randomUUID(), conv, peer, media, direction: "outgoing" });
        this.current = call;
        try {
            await call.prepare(media);
            const pc = call.pc;
            if (!pc)
                return call;
            const offer = await pc.createOffer();
            await pc.setLocalDescription(offer);
            const signal = await this.makeSignal(call, { sdp: offer.sdp ?? "" });
            const info = await this.client.callInvite(conv, call.id, media, signal);
            if (call.over) {
                // Cancelled while the invite was on its way: end it on the server too, so nothing rings on.
                if (info.state !== "ended")
                    await this.client.callHangup(call.id, "hangup").catch(() => { });
                return call;
            }
            call.info = info;
            if (info.state === "ended") {
                call.end(info.reason ?? "busy");
                return call;
            }
            call.openTrickle();
            if (info.ringing)
                call.setPhase("ringing");
            // A call of theirs came in meanwhile: should both stand, the lower id wins on both sides.
            const theirs = this.crossing;
            this.crossing = undefined;
            if (theirs && theirs.phase === "incoming" && glareWinner(call.id, theirs.id) === theirs.id) {
                call.end("cancelled");
                await this.client.callHangup(call.id, "hangup").catch(() => { });
                this.current = theirs;
                await theirs.answer(media);
                return theirs;
            }
            if (theirs && theirs.phase === "incoming") {
                theirs.end("declined");
                await this.client.callHangup(theirs.id, "declined").catch(() => { });
            }
            return call;
        }
        catch (e) {
            const theirs = this.crossing;
            this.crossing = undefined;
            if (e instanceof ChatError && e.code === "limit_reached" && call.phase !== "ended") {
                // Refused: this user is in a call already, the one the peer just placed (glare): take it.
                const other = theirs ?? (await this.incomingFrom(peer, conv, 2000));
                if (other) {
                    call.end("cancelled");
                    this.current = other;
                    await other.answer(media);
                    return other;
                }
            }
            if (call.phase !== "ended")
                call.end("failed");
            throw e;
        }
    }
    /** An incoming call from `peer` in `conv` that rings here, waited for up to `ms`. */
    incomingFrom(peer, conv, ms) {
        const match = (c) => c.direction === "incoming" && c.phase === "incoming" && c.peer === peer && c.conv === conv;
        const now = [this.crossing, this.current].find((c) => c && match(c));
        if (now)
            return Promise.resolve(now);
        return new Promise((resolve) => {
            const timer = setTimeout(() => {
                off();
                resolve(undefined);
            }, ms);
            const off = this.on("incoming", (c) => {
                if (!match(c))
                    return;
                clearTimeout(timer);
                off();
                resolve(c);
            });
        });
    }
    onState(info) {
        let me;
        try {
            me = this.me;
        }
        catch {
            return;
        }
        const call = this.current?.id === info.call ? this.current : this.crossing?.id === info.call ? this.crossing : undefined;
        if (call) {
            call.info = info;
            if (info.state === "ended")
                call.end(info.reason ?? "hangup");
            else if (info.state === "active" &&
                call.direction === "incoming" &&
                info.answered_by &&
                // Another device answered, or this device on another page (a second tab: this one still rings).
                (info.answered_by !== me.device || call.phase === "incoming"))
                call.end("elsewhere");
            else if (info.state === "active" && call.phase === "reconnecting") {
                // This device's connection came back (the server says so on its sign-in): an offer or answer may have been
                // lost meanwhile, so the caller's device restarts now rather than at its next try.
                if (call.direction === "outgoing")
                    void call.restartIce().catch(() => { });
            }
            else if (info.state === "active" && call.direction === "outgoing") {
                call.peerDevice = info.answered_by;
                call.setPhase(call.pc?.connectionState === "connected" ? "connected" : "connecting");
            }
            else if (info.state === "ringing" && info.ringing && call.direction === "outgoing")
                call.setPhase("ringing");
            return;
        }
        if (info.callee === me.user && info.state === "ringing" && !info.answered_by) {
            const busy = this.current && this.current.phase !== "ended";
            const peer = info.caller;
            const incoming = new Call(this, { id: info.call, conv: info.conv, peer, media: info.media, direction: "incoming", peerDevice: info.caller_device });
            incoming.info = info;
            if (busy) {
                const mine = this.current;
                if (mine.direction === "outgoing" && mine.peer === peer && !mine.info) {
                    // Our invite is on its way and theirs came: decided once ours is answered (see start()).
                    this.crossing = incoming;
                    this.takeEarly(incoming);
                    return;
                }
                // chatd answers busy for a user in a call: this is another device's business.
                return;
            }
            this.current = incoming;
            this.takeEarly(incoming);
            void this.client.callRinging(info.call).catch(() => { });
            this.emit("incoming", incoming);
            return;
        }
        const mine = (info.caller === me.user && info.caller_device === me.device) || (info.callee === me.user && info.answered_by === me.device);
        if (mine && info.state !== "ended" && !this.options.heldElsewhere?.(info.call)) {
            // A call this device holds, which this page does not know: it was reloaded (or closed) mid-call and the call
            // cannot be taken up again here, so it ends now, rather than when the other side gives up waiting for media.
            void this.client.callHangup(info.call, "failed").catch(() => { });
            return;
        }
        if (info.state !== "ended")
            this.emit("elsewhere", info);
    }
    takeEarly(call) {
        const early = this.early.get(call.id);
        this.early.delete(call.id);
        for (const e of early ?? [])
            void this.deliver(call, e.frame);
    }
    async onSignal(frame) {
        const call = this.current?.id === frame.call ? this.current : this.crossing?.id === frame.call ? this.crossing : undefined;
        if (!call) {
            const now = Date.now();
            for (const [id, list] of this.early)
                if (list.every((e) => now - e.at > 10000))
                    this.early.delete(id);
            const list = this.early.get(frame.call) ?? [];
            if (list.length < 100)
                list.push({ frame, at: now });
            this.early.set(frame.call, list);
            return;
        }
        await this.deliver(call, frame);
    }
    async deliver(call, frame) {
        let body;
        call.sealedSignals ??= frame.sealed !== undefined;
        if (frame.sealed !== undefined) {
            const sealer = this.options.sealer;
            if (!sealer)
                return;
            try {
                const bytes = await sealer.unseal({ user: call.peer, device: frame.device }, frame.sealed);
                const sealed = JSON.parse(new TextDecoder().decode(bytes));
                if (sealed.call !== call.id)
                    throw new Error("the sealed signal is of another call");
                body = { ...(sealed.sdp !== undefined ? { sdp: sealed.sdp } : {}), ...(sealed.candidates ? { candidates: sealed.candidates } : {}) };
            }
            catch (e) {
                console.warn("chatcore call: a sealed signal did not open:", e);
                return;
            }
        }
        else {
            body = { ...(frame.sdp !== undefined ? { sdp: frame.sdp } : {}), ...(frame.candidates ? { candidates: frame.candidates } : {}) };
        }
        await call.receive(body, frame.device);
    }
    /** @internal The signal `body` for the other side of `call`: sealed for its device(s) in an encrypted conversation. */
    async makeSignal(call, body) {
        const sealed = call.sealedSignals ?? this.options.encrypted?.(call.conv) ?? false;
        if (!sealed)
            return body;
        const sealer = this.options.sealer;
        if (!sealer)
            throw new Error("this conversation is end-to-end encrypted: its call signals must be sealed, and there is no sealer");
        const devices = call.peerDevice === undefined ? undefined : [call.peerDevice];
        const sealedBody = { call: call.id, ...body };
        return { sealed: await sealer.seal(call.peer, devices, new TextEncoder().encode(JSON.stringify(sealedBody)), call.conv) };
    }
    /** @internal */
    async sendSignal(call, body) {
        if (call.phase === "ended")
            return;
        await this.client.callCandidates(call.id, await this.makeSignal(call, body));
    }
}
function toRtc(c) {
    return { candidate: c.candidate, ...(c.sdp_mid !== undefined ? { sdpMid: c.sdp_mid } : {}), ...(c.sdp_m_line_index !== undefined ? { sdpMLineIndex: c.sdp_m_line_index } : {}) };
}
function stopTracks(stream) {
    for (const t of stream?.getTracks() ?? [])
        t.stop();
}
