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
import type { Message } from "./protocol.js";
/** One emoji's reactions on a message. */
export interface ReactionView {
    emoji: string;
    /** Who reacted with it, in the order they did (each once). */
    users: string[];
    /** This user's reaction entry with this emoji (to delete it: react again = take it back). */
    mine?: string;
}
/** A message as it is to be shown now. */
export interface MessageView {
    /** The latest edit's text, else the original; absent when it is deleted, expired or not read (yet). */
    text?: string;
    /** Whether an edit changed it. */
    edited: boolean;
    /** Deleted for everyone, or gone with the conversation's timer (see `expired`). */
    deleted: boolean;
    /** Its `expires_at` passed: the timer removed it (it is `deleted` too). */
    expired: boolean;
    /** Reactions by emoji, in the order each emoji first came. */
    reactions: ReactionView[];
    /** The message it replies to. */
    replyTo?: string;
    /** The entry, when the book has it (a quote's target may be missing: not loaded, or not readable). */
    message?: Message;
}
/** Options of {@link LifeBook}. */
export interface LifeBookOptions {
    /** This user's id: which reactions are `mine`. */
    me?: string;
    /** The clock (ms since the epoch) that decides what expired; `Date.now` by default. */
    now?: () => number;
}
/** The latest state of each message, from the entries that point at it. */
export declare class LifeBook {
    private readonly entries;
    /** Target id -> ids of the entries pointing at it. */
    private readonly pointing;
    /** This user's id. */
    me: string | undefined;
    private readonly now;
    constructor(options?: LifeBookOptions);
    /**
     * Takes in an entry (any: a message, reply, edit, reaction, deletion, notice) and its text if known; an entry
     * told again replaces what the book had (a tombstone replaces the content; a text decrypted later is added).
     * Returns the id of the message whose view it changes: its target, or the entry's own id.
     */
    apply(entry: Message, text?: string): string;
    /** The entry `id`, if the book has it. */
    get(id: string): Message | undefined;
    /** The text the book has for entry `id` (as given to {@link apply}). */
    textOf(id: string): string | undefined;
    private expired;
    /** Whether entry `id` is gone: a tombstone, deleted by an entry pointing at it, or expired. */
    private gone;
    /** The entries pointing at `id` of one kind, in seq order. */
    private pointers;
    /** Message `id` as it is to be shown now (`me`: whose reactions are `mine`; the book's `me` by default). */
    view(id: string, me?: string | undefined): MessageView;
    /**
     * This user's live reaction to `id` with `emoji`, if any: the entry to delete to take it back (reacting again with
     * the same emoji toggles it off); `undefined`: react.
     */
    myReaction(id: string, emoji: string, me?: string | undefined): string | undefined;
    /** The earliest `expires_at` still ahead (when the next entry expires), for a timer; `undefined`: none. */
    nextExpiry(): number | undefined;
    /** The entries whose `expires_at` passed and that still have content: the caller drops its copies of them. */
    expiredEntries(): Message[];
    /** Forgets entry `id` (dropped from the caller's copies: expired). */
    forget(id: string): void;
    /** Forgets everything (a new user on this client). */
    clear(): void;
}
