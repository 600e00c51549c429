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

interface Entry {
  message: Message;
  text?: string;
}

/** Options of {@link LifeBook}. */
export interface LifeBookOptions {
  /** This user's id: which reactions are `mine`. */
  me?: string;
  /** The clock (ms since the epoch) that decides what expired; `Date.now` by default. */
  now?: () => number;
}

/** The latest state of each message, from the entries that point at it. */
export class LifeBook {
  private readonly entries = new Map<string, Entry>();
  /** Target id -> ids of the entries pointing at it. */
  private readonly pointing = new Map<string, Set<string>>();
  /** This user's id. */
  me: string | undefined;
  private readonly now: () => number;

  constructor(options: LifeBookOptions = {}) {
    this.me = options.me;
    this.now = options.now ?? Date.now;
  }

  /**
   * Takes in an entry (any: a message, reply, edit, reaction, deletion, notice) and its text if known; an entry
   * told again replaces what the book had (a tombstone replaces the content; a text decrypted later is added).
   * Returns the id of the message whose view it changes: its target, or the entry's own id.
   */
  apply(entry: Message, text?: string): string {
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
        if (target?.rel?.kind === "reaction") return target.rel.target;
      }
      return rel.target;
    }
    return entry.id;
  }

  /** The entry `id`, if the book has it. */
  get(id: string): Message | undefined {
    return this.entries.get(id)?.message;
  }

  /** The text the book has for entry `id` (as given to {@link apply}). */
  textOf(id: string): string | undefined {
    return this.entries.get(id)?.text;
  }

  private expired(m: Message): boolean {
    return m.expires_at !== undefined && m.expires_at <= this.now();
  }

  /** Whether entry `id` is gone: a tombstone, deleted by an entry pointing at it, or expired. */
  private gone(id: string): boolean {
    const e = this.entries.get(id);
    if (e && (e.message.content.kind === "deleted" || this.expired(e.message))) return true;
    for (const p of this.pointing.get(id) ?? []) {
      const m = this.entries.get(p)?.message;
      if (m?.rel?.kind === "delete") return true;
    }
    return false;
  }

  /** The entries pointing at `id` of one kind, in seq order. */
  private pointers(id: string, kind: "edit" | "reaction"): Entry[] {
    const out: Entry[] = [];
    for (const p of this.pointing.get(id) ?? []) {
      const e = this.entries.get(p);
      if (e?.message.rel?.kind === kind) out.push(e);
    }
    return out.sort((a, b) => a.message.seq - b.message.seq);
  }

  /** Message `id` as it is to be shown now (`me`: whose reactions are `mine`; the book's `me` by default). */
  view(id: string, me: string | undefined = this.me): MessageView {
    const e = this.entries.get(id);
    const message = e?.message;
    const replyTo = message?.rel?.kind === "reply" ? message.rel.target : undefined;
    const expired = !!message && this.expired(message);
    const base = { ...(replyTo ? { replyTo } : {}), ...(message ? { message } : {}) };
    if (this.gone(id)) return { edited: false, deleted: true, expired, reactions: [], ...base };
    // Edits: only the sender's (the server refuses others'), the latest by seq wins.
    const edits = this.pointers(id, "edit").filter((x) => !message || x.message.from === message.from).filter((x) => !this.gone(x.message.id));
    const latest = edits.at(-1);
    const text = latest ? (latest.text ?? e?.text) : e?.text;
    const reactions: ReactionView[] = [];
    for (const r of this.pointers(id, "reaction")) {
      if (r.text === undefined || this.gone(r.message.id)) continue;
      let v = reactions.find((x) => x.emoji === r.text);
      if (!v) {
        v = { emoji: r.text, users: [] };
        reactions.push(v);
      }
      if (!v.users.includes(r.message.from)) v.users.push(r.message.from);
      if (me !== undefined && r.message.from === me && v.mine === undefined) v.mine = r.message.id;
    }
    return { ...(text !== undefined ? { text } : {}), edited: edits.length > 0, deleted: false, expired: false, reactions, ...base };
  }

  /**
   * This user's live reaction to `id` with `emoji`, if any: the entry to delete to take it back (reacting again with
   * the same emoji toggles it off); `undefined`: react.
   */
  myReaction(id: string, emoji: string, me: string | undefined = this.me): string | undefined {
    return this.view(id, me).reactions.find((r) => r.emoji === emoji)?.mine;
  }

  /** The earliest `expires_at` still ahead (when the next entry expires), for a timer; `undefined`: none. */
  nextExpiry(): number | undefined {
    const now = this.now();
    let next: number | undefined;
    for (const { message } of this.entries.values()) {
      const at = message.expires_at;
      if (at !== undefined && at > now && message.content.kind !== "deleted" && (next === undefined || at < next)) next = at;
    }
    return next;
  }

  /** The entries whose `expires_at` passed and that still have content: the caller drops its copies of them. */
  expiredEntries(): Message[] {
    const out: Message[] = [];
    for (const { message } of this.entries.values()) if (message.content.kind !== "deleted" && this.expired(message)) out.push(message);
    return out;
  }

  /** Forgets entry `id` (dropped from the caller's copies: expired). */
  forget(id: string): void {
    const e = this.entries.get(id);
    if (!e) return;
    // Kept as a tombstone: what points at it still finds it gone.
    this.entries.set(id, { message: { ...e.message, content: { kind: "deleted" } } });
  }

  /** Forgets everything (a new user on this client). */
  clear(): void {
    this.entries.clear();
    this.pointing.clear();
  }
}
