/**
 * Each message's latest state, kept from the entries of its conversation's log as they arrive: pushes, `sync`,
 * `history` pages and their `related` (PROTOCOL.md, *Message life*). Replies, edits, reactions and deletions are
 * entries of their own that point at their target by id; the book applies them whatever order they come in, so a
 * reaction that arrives before its message (a `related` entry, a page loaded later) is counted once the message is
 * asked for.
 *
 * Texts are given with each entry ({@link LifeBook.apply}): the plain text, or what this device decrypted (in an
 * encrypted conversation the server cannot read an edit or a reaction's emoji, so the client does all of it).
 *
 * ```ts
 * const life = new LifeBook({ me: session.user });
 * for (const m of page.messages) life.apply(m, textOf(m));
 * for (const m of page.related) life.apply(m, textOf(m));
 * life.view(id); // { text, edited, deleted, reactions: [{ emoji: "👍", users: [...], mine: "..." }], replyTo }
 * ```
 *
 * @module
 */
/** The latest state of each message, from the entries that point at it. */
export class LifeBook {
    entries = new Map();
    /** Target id -> ids of the entries pointing at it. */
    pointing = new Map();
    /** This user's id. */
    me;
    now;
    constructor(options = {}) {
        this.me = options.me;
        this.now = options.now ?? Date.now;
    }
    /**
     * Takes in an entry (any: a message, reply, edit, reaction, deletion, notice) and its text if known; an entry
     * told again replaces what the book had (a tombstone replaces the content; a text decrypted later is added).
     * Returns the id of the message whose view it changes: its target, or the entry's own id.
     */
    apply(entry, text) {
        const was = this.entries.get(entry.id);
        const gone = entry.content.kind === "deleted";
        // A text once known stays with the entry, unless the entry is now a tombstone.
        const keep = gone ? undefined : (text ?? (was && was.message.content.kind === entry.content.kind ? was.text : undefined));
        this.entries.set(entry.id, { message: entry, ...(keep !== undefined ? { text: keep } : {}) });
        const rel = entry.rel;
        if (rel && rel.kind !== "reply") {
            let set = this.pointing.get(rel.target);
            if (!set) {
                set = new Set();
                this.pointing.set(rel.target, set);
            }
            set.add(entry.id);
            // A reaction taken back (a deletion of a reaction) changes the reaction's message.
            if (rel.kind === "delete") {
                const target = this.entries.get(rel.target)?.message;
                if (target?.rel?.kind === "reaction")
                    return target.rel.target;
            }
            return rel.target;
        }
        return entry.id;
    }
    /** The entry `id`, if the book has it. */
    get(id) {
        return this.entries.get(id)?.message;
    }
    /** The text the book has for entry `id` (as given to {@link apply}). */
    textOf(id) {
        return this.entries.get(id)?.text;
    }
    expired(m) {
        return m.expires_at !== undefined && m.expires_at <= this.now();
    }
    /** Whether entry `id` is gone: a tombstone, deleted by an entry pointing at it, or expired. */
    gone(id) {
        const e = this.entries.get(id);
        if (e && (e.message.content.kind === "deleted" || this.expired(e.message)))
            return true;
        for (const p of this.pointing.get(id) ?? []) {
            const m = this.entries.get(p)?.message;
            if (m?.rel?.kind === "delete")
                return true;
        }
        return false;
    }
    /** The entries pointing at `id` of one kind, in seq order. */
    pointers(id, kind) {
        const out = [];
        for (const p of this.pointing.get(id) ?? []) {
            const e = this.entries.get(p);
            if (e?.message.rel?.kind === kind)
                out.push(e);
        }
        return out.sort((a, b) => a.message.seq - b.message.seq);
    }
    /** Message `id` as it is to be shown now (`me`: whose reactions are `mine`; the book's `me` by default). */
    view(id, me = this.me) {
        const e = this.entries.get(id);
        const message = e?.message;
        const replyTo = message?.rel?.kind === "reply" ? message.rel.target : undefined;
        const expired = !!message && this.expired(message);
        const base = { ...(replyTo ? { replyTo } : {}), ...(message ? { message } : {}) };
        if (this.gone(id))
            return { edited: false, deleted: true, expired, reactions: [], ...base };
        // Edits: only the sender's (the server refuses others'), the latest by seq wins.
        const edits = this.pointers(id, "edit").filter((x) => !message || x.message.from === message.from).filter((x) => !this.gone(x.message.id));
        const latest = edits.at(-1);
        const text = latest ? (latest.text ?? e?.text) : e?.text;
        const reactions = [];
        for (const r of this.pointers(id, "reaction")) {
            if (r.text === undefined || this.gone(r.message.id))
                continue;
            let v = reactions.find((x) => x.emoji === r.text);
            if (!v) {
                v = { emoji: r.text, users: [] };
                reactions.push(v);
            }
            if (!v.users.includes(r.message.from))
                v.users.push(r.message.from);
            if (me !== undefined && r.message.from === me && v.mine === undefined)
                v.mine = r.message.id;
        }
        return { ...(text !== undefined ? { text } : {}), edited: edits.length > 0, deleted: false, expired: false, reactions, ...base };
    }
    /**
     * This user's live reaction to `id` with `emoji`, if any: the entry to delete to take it back (reacting again with
     * the same emoji toggles it off); `undefined`: react.
     */
    myReaction(id, emoji, me = this.me) {
        return this.view(id, me).reactions.find((r) => r.emoji === emoji)?.mine;
    }
    /** The earliest `expires_at` still ahead (when the next entry expires), for a timer; `undefined`: none. */
    nextExpiry() {
        const now = this.now();
        let next;
        for (const { message } of this.entries.values()) {
            const at = message.expires_at;
            if (at !== undefined && at > now && message.content.kind !== "deleted" && (next === undefined || at < next))
                next = at;
        }
        return next;
    }
    /** The entries whose `expires_at` passed and that still have content: the caller drops its copies of them. */
    expiredEntries() {
        const out = [];
        for (const { message } of this.entries.values())
            if (message.content.kind !== "deleted" && this.expired(message))
                out.push(message);
        return out;
    }
    /** Forgets entry `id` (dropped from the caller's copies: expired). */
    forget(id) {
        const e = this.entries.get(id);
        if (!e)
            return;
        // Kept as a tombstone: what points at it still finds it gone.
        this.entries.set(id, { message: { ...e.message, content: { kind: "deleted" } } });
    }
    /** Forgets everything (a new user on this client). */
    clear() {
        this.entries.clear();
        this.pointing.clear();
    }
}
