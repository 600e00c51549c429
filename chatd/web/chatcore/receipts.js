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
/** The other members' receipts, per conversation. */
export class ReceiptBook {
    convs = new Map();
    of(conv) {
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
    apply(conv, info) {
        const marks = this.of(conv).marks;
        const was = marks.get(info.user);
        const delivered = Math.max(was?.delivered ?? 0, info.delivered, info.read);
        const read = info.read === 0 ? 0 : Math.max(was?.read ?? 0, info.read);
        if (was && was.delivered === delivered && was.read === read)
            return false;
        marks.set(info.user, { user: info.user, delivered, read });
        return true;
    }
    /**
     * Takes a `receipts` answer: every receipt it lists, and its `until` for the next ask. `full`: the answer listed
     * every receipt (asked without `since`), so read marks it shows as 0 are 0. Returns the users whose marks changed.
     */
    take(conv, receipts, until, full) {
        const c = this.of(conv);
        const changed = new Set();
        if (full) {
            for (const m of c.marks.values()) {
                if (m.read > 0 && !receipts.some((r) => r.user === m.user)) {
                    m.read = 0;
                    changed.add(m.user);
                }
            }
        }
        for (const r of receipts)
            if (this.apply(conv, r))
                changed.add(r.user);
        c.until = until;
        c.asked = true;
        return [...changed];
    }
    /**
     * The next ask of every conversation is for all of its receipts, not what rose since: read marks withheld from
     * this user (read receipts off) are shown again once it shares its own.
     */
    askAllAgain() {
        for (const c of this.convs.values())
            c.until = undefined;
    }
    /** The `since` of the next `receipts` ask for `conv`; `undefined` before the first answer. */
    until(conv) {
        return this.convs.get(conv)?.until;
    }
    /** Conversations asked at least once (the ones to ask again after a reconnect). */
    asked() {
        return [...this.convs].filter(([, c]) => c.asked).map(([conv]) => conv);
    }
    /** `user`'s marks in `conv` (0 and 0 when nothing is known). */
    get(conv, user) {
        return this.convs.get(conv)?.marks.get(user) ?? { user, delivered: 0, read: 0 };
    }
    /** Every known mark in `conv`. */
    marks(conv) {
        return [...(this.convs.get(conv)?.marks.values() ?? [])];
    }
    /**
     * The state of a message at `seq` in `conv` as its sender sees it, among `others` (the conversation's members
     * other than the sender). `reads`: whether read marks count (not while the sender shares no read receipts).
     */
    status(conv, seq, others, reads = true) {
        let delivered = 0;
        let read = 0;
        for (const user of others) {
            const m = this.get(conv, user);
            if (m.delivered >= seq)
                delivered++;
            if (reads && m.read >= seq)
                read++;
        }
        const of = others.length;
        const state = of > 0 && read === of ? "read" : of > 0 && delivered === of ? "delivered" : "sent";
        return { state, delivered, read, of };
    }
    /** Forgets everything (a new user on this client). */
    clear() {
        this.convs.clear();
    }
}
