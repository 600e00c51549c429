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
/** The other members' receipts, per conversation. */
export declare class ReceiptBook {
    private readonly convs;
    private of;
    /**
     * Raises `user`'s marks in `conv` to those of `info` (a mark never falls) and returns whether one rose. A `read`
     * of 0 after a higher one is the sharing turned off on one side: the read mark is then forgotten, since it is no
     * longer to be shown.
     */
    apply(conv: string, info: ReceiptInfo): boolean;
    /**
     * Takes a `receipts` answer: every receipt it lists, and its `until` for the next ask. `full`: the answer listed
     * every receipt (asked without `since`), so read marks it shows as 0 are 0. Returns the users whose marks changed.
     */
    take(conv: string, receipts: readonly ReceiptInfo[], until: number, full: boolean): string[];
    /**
     * The next ask of every conversation is for all of its receipts, not what rose since: read marks withheld from
     * this user (read receipts off) are shown again once it shares its own.
     */
    askAllAgain(): void;
    /** The `since` of the next `receipts` ask for `conv`; `undefined` before the first answer. */
    until(conv: string): number | undefined;
    /** Conversations asked at least once (the ones to ask again after a reconnect). */
    asked(): string[];
    /** `user`'s marks in `conv` (0 and 0 when nothing is known). */
    get(conv: string, user: string): ReceiptInfo;
    /** Every known mark in `conv`. */
    marks(conv: string): ReceiptInfo[];
    /**
     * The state of a message at `seq` in `conv` as its sender sees it, among `others` (the conversation's members
     * other than the sender). `reads`: whether read marks count (not while the sender shares no read receipts).
     */
    status(conv: string, seq: number, others: readonly string[], reads?: boolean): MessageReceipt;
    /** Forgets everything (a new user on this client). */
    clear(): void;
}
