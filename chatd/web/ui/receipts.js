// @ts-check
// Ticks on this user's messages: one grey (sent: stored), two grey (delivered:
// a device of every other member has it), two blue (read by every other
// member); in a group, "read by 2 of 3" and the names on request. The client
// keeps the members' marks from the server's `receipt` pushes and `receipts`
// answers (bindings/typescript/src/receipts.ts); this module draws them.

import { h } from "./dom.js";
import { invalidate, state, userName } from "./store.js";
import { toast } from "./notify.js";

/** The other members of `c`, whose marks make a message's state (a group's once its members are fetched). */
function others(/** @type {import("./store.js").Conv} */ c) {
  const me = state.me?.user;
  if (c.kind !== "group") return c.peer ? [c.peer] : [];
  return (c.members ?? []).map((m) => m.user).filter((u) => u !== me);
}

/** What the ticks of this user's message at `seq` say, and a key that changes when they do. */
export function receiptOf(/** @type {import("./store.js").Conv} */ c, /** @type {number} */ seq) {
  const client = state.client;
  const who = others(c);
  const r = client ? client.receiptOf(c.id, seq, who) : { state: "sent", delivered: 0, read: 0, of: who.length };
  const group = c.kind === "group";
  const label =
    r.state === "read"
      ? group ? "Read by everyone" : "Read"
      : group && r.read > 0
        ? `Read by ${r.read} of ${r.of}`
        : r.state === "delivered"
          ? group ? "Delivered to everyone" : "Delivered"
          : group && r.delivered > 0
            ? `Delivered to ${r.delivered} of ${r.of}`
            : "Sent";
  return { state: r.state, label, key: `${r.state} ${label}` };
}

/** The ticks of this user's message at `seq` in `c`: in a group, a button that lists who has it. */
export function ticks(/** @type {import("./store.js").Conv} */ c, /** @type {number} */ seq) {
  const { state: s, label, key } = receiptOf(c, seq);
  const marks = s === "sent" ? "✓" : "✓✓";
  const dataset = { receipt: key };
  if (c.kind !== "group") return h("span", { class: `ticks ${s}`, role: "img", "aria-label": label, title: label, dataset }, marks);
  return h(
    "button",
    { type: "button", class: `ticks ${s}`, "aria-label": `${label}: who has it`, title: label, onclick: () => showWho(c, seq), dataset },
    marks,
  );
}

/** Brings the ticks in the row `li` of this user's message at `seq` up to date, in place (the row is kept). */
export function refreshTicks(/** @type {HTMLElement} */ li, /** @type {import("./store.js").Conv} */ c, /** @type {number} */ seq) {
  const old = /** @type {HTMLElement | null} */ (li.querySelector(".ticks"));
  if (!old || old.dataset.receipt === receiptOf(c, seq).key) return;
  // The focus stays on a group's ticks button when it is replaced.
  const focused = document.activeElement === old;
  const now = ticks(c, seq);
  old.replaceWith(now);
  if (focused) now.focus();
}

/** "Read by Bob, Carol · Delivered to Dave · Not yet: Erin", for a group message. */
function showWho(/** @type {import("./store.js").Conv} */ c, /** @type {number} */ seq) {
  const client = state.client;
  if (!client) return;
  /** @type {string[]} */ const read = [];
  /** @type {string[]} */ const delivered = [];
  /** @type {string[]} */ const waiting = [];
  for (const user of others(c)) {
    const r = client.receiptOf(c.id, seq, [user]);
    (r.state === "read" ? read : r.state === "delivered" ? delivered : waiting).push(userName(user));
  }
  const parts = [];
  if (read.length) parts.push(`Read by ${read.join(", ")}`);
  if (delivered.length) parts.push(`Delivered to ${delivered.join(", ")}`);
  if (waiting.length) parts.push(`Not yet delivered to ${waiting.join(", ")}`);
  toast("Message info", parts.join(" · ") || "Nobody else is in this group.", undefined, `receipts ${c.id} ${seq}`);
}

/** Asks what rose in `c` since this page last asked (all the first time), and redraws its ticks. */
export function loadReceipts(/** @type {import("./store.js").Conv} */ c) {
  const client = state.client;
  if (!client || c.request) return;
  client.receipts(c.id).then(
    () => {
      if (state.open === c.id) invalidate("messages");
    },
    () => {},
  );
}

/** A `receipt` push: a member of `conv` received or read further. */
export function onReceipt(/** @type {{ conv: string }} */ r) {
  if (state.open === r.conv) invalidate("messages");
}
