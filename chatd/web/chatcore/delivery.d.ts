/**
 * What this device has received, per conversation, to deduplicate messages
 * (push and sync may both deliver one) and to acknowledge only runs without
 * gaps (PROTOCOL.md, *Delivery semantics*). Pure bookkeeping, no I/O: the
 * client feeds it and sends the `ack`s it asks for.
 *
 * Per conversation it keeps a *base*: the highest seq up to which everything
 * has been received (what may be acknowledged), and the seqs received above
 * it. The base is unknown until something proves it: a `sync` reply (it
 * returns everything after the server's cursor, so its first message of a
 * conversation sits right after the cursor), a seq of 1, or an ack sent.
 * A push in a conversation with no known base is delivered but not
 * acknowledged; the client then syncs, which establishes the base.
 *
 * @module
 */
import type { Message } from "./protocol.js";
/** Per-conversation receive state of one device. */
export declare class DeliveryTracker {
    private readonly convs;
    private state;
    /**
     * Records a received message; returns false when it is a duplicate (already
     * received), true when it is new. `fromSync`: it came in a `sync` reply, in
     * order, so the first one of a conversation with an unknown base sets it.
     */
    receive(message: Pick<Message, "conv" | "seq">, fromSync?: boolean): boolean;
    private advance;
    /**
     * The device acknowledges `conv` up to `seq` without having received it (the new-device flow): everything up to
     * `seq` counts as received, and as acknowledged.
     */
    skipTo(conv: string, seq: number): void;
    /** Whether the conversation's base is known (pushes there can be acknowledged). */
    hasBase(conv: string): boolean;
    /**
     * The acknowledgements to send now: per conversation, the end of the run
     * received without gaps, when it moved past what was acknowledged. Marks
     * them as sent; call {@link ackFailed} if sending fails.
     */
    takeAcks(): {
        conv: string;
        seq: number;
    }[];
    /** An ack could not be sent: ask for it again next time. */
    ackFailed(conv: string, seq: number): void;
    /** Forgets everything (another user signed in). */
    clear(): void;
}
