/**
 * What the client knows of how far the other members received and read each
 * conversation, kept from `receipt` pushes and `receipts` replies, and a
 * message's receipt state drawn from it (PROTOCOL.md, *Changes from version 5*).
 *
 * Marks only rise and each covers every earlier seq, so a receipt told twice,
 * or out of order, changes nothing: {@link ReceiptBook.apply} keeps the
 * highest of each.
 *
 * @module
 */

import type { ReceiptInfo } from "./protocol.js";

/**
 * A message's state as its sender sees it: `sent` (stored), `delivered` (to
 * every other member: some device of each acknowledged it) or `read` (every
 * other member read it). In a group, the counts say how many of the others
 * have it.
 */
export interface MessageReceipt {
  state: "sent" | "delivered" | "read";
  /** How many of the other members some device of which received it. */
  delivered: number;
  /** How many of the other members read it (0 while either side does not share read receipts). */
  read: number;
  /** How many other members there are. */
  of: number;
}

/** One conversation's marks, by user, the `until` of the last `receipts` answer, and whether it was ever asked. */
interface ConvReceipts {
  marks: Map<string, ReceiptInfo>;
  until?: number;
  asked: boolean;
}

/** The other members' receipts, per conversation. */
export class ReceiptBook {
  private readonly convs = new Map<string, ConvReceipts>();

  private of(conv: string): ConvReceipts {
    let c = this.convs.get(conv);
    if (!c) {
      c = { marks: new Map(), asked: false };
      this.convs.set(conv, c);
    }
    return c;
  }

  /**
   * Raises `user`'s marks in `conv` to those of `info` (a mark never falls) and returns whether one rose. A `read`
   * of 0 after a higher one is the sharing turned off on one side: the read mark is then forgotten, since it is no
   * longer to be shown.
   */
  apply(conv: string, info: ReceiptInfo): boolean {
    const marks = this.of(conv).marks;
    const was = marks.get(info.user);
    const delivered = Math.max(was?.delivered ?? 0, info.delivered, info.read);
    const read = info.read === 0 ? 0 : Math.max(was?.read ?? 0, info.read);
    if (was && was.delivered === delivered && was.read === read) return false;
    marks.set(info.user, { user: info.user, delivered, read });
    return true;
  }

  /**
   * Takes a `receipts` answer: every receipt it lists, and its `until` for the next ask. `full`: the answer listed
   * every receipt (asked without `since`), so read marks it shows as 0 are 0. Returns the users whose marks changed.
   */
  take(conv: string, receipts: readonly ReceiptInfo[], until: number, full: boolean): string[] {
    const c = this.of(conv);
    const changed = new Set<string>();
    if (full) {
      for (const m of c.marks.values()) {
        if (m.read > 0 && !receipts.some((r) => r.user === m.user)) {
          m.read = 0;
          changed.add(m.user);
        }
      }
    }
    for (const r of receipts) if (this.apply(conv, r)) changed.add(r.user);
    c.until = until;
    c.asked = true;
    return [...changed];
  }

  /**
   * The next ask of every conversation is for all of its receipts, not what rose since: read marks withheld from
   * this user (read receipts off) are shown again once it shares its own.
   */
  askAllAgain(): void {
    for (const c of this.convs.values()) c.until = undefined;
  }

  /** The `since` of the next `receipts` ask for `conv`; `undefined` before the first answer. */
  until(conv: string): number | undefined {
    return this.convs.get(conv)?.until;
  }

  /** Conversations asked at least once (the ones to ask again after a reconnect). */
  asked(): string[] {
    return [...this.convs].filter(([, c]) => c.asked).map(([conv]) => conv);
  }

  /** `user`'s marks in `conv` (0 and 0 when nothing is known). */
  get(conv: string, user: string): ReceiptInfo {
    return this.convs.get(conv)?.marks.get(user) ?? { user, delivered: 0, read: 0 };
  }

  /** Every known mark in `conv`. */
  marks(conv: string): ReceiptInfo[] {
    return [...(this.convs.get(conv)?.marks.values() ?? [])];
  }

  /**
   * The state of a message at `seq` in `conv` as its sender sees it, among `others` (the conversation's members
   * other than the sender). `reads`: whether read marks count (not while the sender shares no read receipts).
   */
  status(conv: string, seq: number, others: readonly string[], reads = true): MessageReceipt {
    let delivered = 0;
    let read = 0;
    for (const user of others) {
      const m = this.get(conv, user);
      if (m.delivered >= seq) delivered++;
      if (reads && m.read >= seq) read++;
    }
    const of = others.length;
    const state = of > 0 && read === of ? "read" : of > 0 && delivered === of ? "delivered" : "sent";
    return { state, delivered, read, of };
  }

  /** Forgets everything (a new user on this client). */
  clear(): void {
    this.convs.clear();
  }
}
