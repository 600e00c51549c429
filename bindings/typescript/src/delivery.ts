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

interface ConvState {
  /** Everything up to here is received; `undefined` until known. */
  base: number | undefined;
  /** Seqs received above `base` (or all received while `base` is unknown). */
  above: Set<number>;
  /** Highest seq acknowledged (or being acknowledged) to the server. */
  acked: number;
}

/** Per-conversation receive state of one device. */
export class DeliveryTracker {
  private readonly convs = new Map<string, ConvState>();

  private state(conv: string): ConvState {
    let s = this.convs.get(conv);
    if (!s) {
      s = { base: undefined, above: new Set(), acked: 0 };
      this.convs.set(conv, s);
    }
    return s;
  }

  /**
   * Records a received message; returns false when it is a duplicate (already
   * received), true when it is new. `fromSync`: it came in a `sync` reply, in
   * order, so the first one of a conversation with an unknown base sets it.
   */
  receive(message: Pick<Message, "conv" | "seq">, fromSync = false): boolean {
    const s = this.state(message.conv);
    const seq = message.seq;
    if (s.base === undefined && (fromSync || seq === 1)) {
      s.base = seq - 1;
      for (const n of s.above) if (n <= s.base) s.above.delete(n);
      this.advance(s);
    }
    if ((s.base !== undefined && seq <= s.base) || s.above.has(seq)) return false;
    s.above.add(seq);
    this.advance(s);
    return true;
  }

  private advance(s: ConvState): void {
    if (s.base === undefined) return;
    while (s.above.delete(s.base + 1)) s.base += 1;
  }

  /**
   * The device acknowledges `conv` up to `seq` without having received it (the new-device flow): everything up to
   * `seq` counts as received, and as acknowledged.
   */
  skipTo(conv: string, seq: number): void {
    const s = this.state(conv);
    if (s.base === undefined || s.base < seq) {
      s.base = seq;
      for (const n of s.above) if (n <= seq) s.above.delete(n);
      this.advance(s);
    }
    s.acked = Math.max(s.acked, seq);
  }

  /** Whether the conversation's base is known (pushes there can be acknowledged). */
  hasBase(conv: string): boolean {
    return this.convs.get(conv)?.base !== undefined;
  }

  /**
   * The acknowledgements to send now: per conversation, the end of the run
   * received without gaps, when it moved past what was acknowledged. Marks
   * them as sent; call {@link ackFailed} if sending fails.
   */
  takeAcks(): { conv: string; seq: number }[] {
    const out: { conv: string; seq: number }[] = [];
    for (const [conv, s] of this.convs) {
      if (s.base !== undefined && s.base > s.acked) {
        out.push({ conv, seq: s.base });
        s.acked = s.base;
      }
    }
    return out;
  }

  /** An ack could not be sent: ask for it again next time. */
  ackFailed(conv: string, seq: number): void {
    const s = this.convs.get(conv);
    if (s && s.acked === seq) s.acked = 0;
  }

  /** Forgets everything (another user signed in). */
  clear(): void {
    this.convs.clear();
  }
}
