// @ts-check
// Contacts, blocks and privacy (PROTOCOL.md, "Contacts, blocks and privacy"):
// the Contacts dialog (contacts with their presence, requests received and
// sent, blocked users), the contact and block buttons of the contact card and
// of a direct chat's header, the block confirmation, and the privacy settings
// (in the settings dialog). What this user's view of each pair is lives in
// `state.contacts`, loaded at sign-in and kept by replies and `contact` pushes,
// so every device shows the same lists.

import { $, dialog, h, nameNode, show } from "./dom.js";
import { avatar } from "./avatar.js";
import { describe, presenceText } from "./format.js";
import { contactOf, directWith, flush, invalidate, learnContact, onRender, openConv, rememberUser, state, userName } from "./store.js";
import { openChatWith, refreshConversation } from "./chat.js";
import { toast } from "./notify.js";

/** @typedef {import("../chatcore/web.js").ContactAction} ContactAction */
/** @typedef {import("../chatcore/web.js").ContactInfo} ContactInfo */
/** @typedef {import("../chatcore/web.js").Privacy} Privacy */
/** @typedef {"contacts" | "incoming" | "outgoing" | "blocked"} Tab */

/** The Contacts dialog's tab. @type {Tab} */
let tab = "contacts";

/** Every part that shows a pair's state. @type {import("./store.js").Part[]} */
const SHOWN_IN = ["contacts", "card", "header", "chat"];

/** The four lists, page after page, into `state.contacts` (after every sign-in or resume: pushes may have been missed). */
export async function loadContacts() {
  const client = state.client;
  const me = state.me;
  if (!client || !me) return;
  try {
    /** @type {ContactInfo[]} */
    const all = [];
    for (const list of /** @type {const} */ (["contacts", "incoming", "outgoing", "blocked"])) {
      /** @type {string | undefined} */
      let after;
      do {
        const page = await client.contacts(list, { limit: 100, ...(after ? { after } : {}) });
        all.push(...page.contacts);
        after = page.next;
      } while (after);
    }
    if (state.me !== me) return;
    state.contacts.clear();
    // A blocked user may be in two lists (blocked, and contacts): the entries agree on the pair.
    for (const info of all) learnContact(info);
    state.contactsLoaded = true;
    invalidate(...SHOWN_IN, "directory");
  } catch (err) {
    console.warn("contacts failed:", err);
  }
}

/** Forgets the lists (signed out, or another user on this page). */
export function resetContacts() {
  state.contacts.clear();
  state.contactsLoaded = false;
  for (const id of ["contacts", "block-confirm"]) if (dialog(id).open) dialog(id).close();
  invalidate(...SHOWN_IN);
}

/**
 * Takes in a reply or a push. A new contact's presence may be visible now (their setting may admit contacts only),
 * and neither says it: the profile fetch does.
 */
function take(/** @type {ContactInfo} */ info) {
  const was = state.contacts.get(info.profile.user)?.state;
  learnContact(info);
  // Contacts now: a message request between them is accepted by that (the server says so).
  if (info.state === "contact" && was !== "contact" && directWith(info.profile.user)?.request) {
    void refreshConversation(/** @type {import("./store.js").Conv} */ (directWith(info.profile.user)).id);
  }
  const client = state.client;
  if (client && info.state === "contact" && was !== "contact" && !info.presence) {
    client.getProfile(info.profile.user).then(
      (e) => {
        rememberUser(e);
        invalidate("contacts", "card", "header", "directory");
      },
      () => {},
    );
  }
}

/** Another device of this user, or the other user, changed the pair. */
export function onContact(/** @type {ContactInfo} */ info) {
  take(info);
  invalidate(...SHOWN_IN, "directory");
}

/** The privacy settings changed on another device (the client's session has them already). */
export function onPrivacy(/** @type {Privacy} */ p) {
  if (state.me) state.me.privacy = p;
  invalidate("privacy", "messages");
}

/**
 * Runs a contact request (`action` on `user`, or a block or unblock) and takes in the reply; a refusal is told
 * through `fail` (the server's words, as everywhere).
 * @param {string} user
 * @param {ContactAction | "block" | "unblock"} action
 * @param {(text: string) => void} fail
 */
async function act(user, action, fail) {
  const client = state.client;
  if (!client) return false;
  try {
    const info =
      action === "block" ? await client.block(user) : action === "unblock" ? await client.unblock(user) : await client.contact(user, action);
    take(info);
    invalidate(...SHOWN_IN, "directory");
    return true;
  } catch (err) {
    fail(describe(err));
    return false;
  }
}

/** The user the block confirmation is about. */
let blocking = "";

/**
 * What else the block confirmation does: the conversation a report is about, and what follows a block (a message
 * request is deleted too).
 * @type {{ conv?: string, after?: () => Promise<void> }}
 */
let blockingWith = {};

/**
 * Asks whether to block `user`; blocks on yes, and on "Block and report" reports them to the server's operator
 * first (about `with.conv`, or the open direct conversation with them). `with.after` runs once blocked.
 */
export function confirmBlock(/** @type {string} */ user, /** @type {{ conv?: string, after?: () => Promise<void> }} */ options = {}) {
  blocking = user;
  const open = openConv();
  blockingWith = { ...options, conv: options.conv ?? (open?.kind === "direct" && open.peer === user ? open.id : undefined) };
  const d = dialog("block-confirm");
  $("block-question").replaceChildren("Block ", nameNode(userName(user)), "?");
  show($("block-error"), false);
  d.showModal();
  // The safe choice has the focus: Enter right away does not block anyone.
  $("block-no").focus();
}

/** What the state button of a card or header does, and says, for the pair with `user` (null: no button). */
function stateAction(/** @type {string} */ user) {
  const c = contactOf(user);
  if (!state.contactsLoaded || c.blocked) return null;
  switch (c.state) {
    case "none":
      return { action: /** @type {ContactAction} */ ("request"), label: "Add contact" };
    case "outgoing":
      return { action: /** @type {ContactAction} */ ("cancel"), label: "Cancel request" };
    case "incoming":
      return { action: /** @type {ContactAction} */ ("accept"), label: "Accept" };
    default:
      return null;
  }
}

/** Shows a card's or header's contact buttons for `user`: `prefix`-action, `prefix`-block, `prefix`-state. */
function paintButtons(/** @type {string} */ prefix, /** @type {string} */ user) {
  const a = stateAction(user);
  const button = $(`${prefix}-action`);
  show(button, !!a);
  if (a) {
    button.textContent = a.label;
    button.dataset.action = a.action;
  }
  const c = contactOf(user);
  const block = $(`${prefix}-block`);
  block.textContent = c.blocked ? "Unblock" : "Block";
  block.dataset.action = c.blocked ? "unblock" : "block";
  // Red for blocking only: unblocking undoes nothing the user would regret.
  block.classList.toggle("danger", !c.blocked);
  show(block, state.contactsLoaded);
  const label = $(`${prefix}-state`);
  label.textContent = c.blocked ? "Blocked" : c.state === "contact" ? "Contact" : c.state === "incoming" ? "Wants to be your contact" : "";
  show(label, !!label.textContent);
}

function renderCardButtons() {
  const d = dialog("card");
  const user = d.dataset.user;
  const mine = !user || user === state.me?.user;
  show($("card-contact"), !mine);
  if (!d.open || mine || !user) return;
  paintButtons("card-contact", user);
  show($("card-decline"), contactOf(user).state === "incoming" && !contactOf(user).blocked && state.contactsLoaded);
}

function renderHeaderButtons() {
  const c = openConv();
  const direct = !!c && c.kind === "direct" && !!c.peer;
  show($("chat-contact"), direct);
  if (c && direct) paintButtons("chat-contact", c.peer);
}

/** The Contacts button's badge: requests waiting for an answer. */
function incoming() {
  return [...state.contacts.values()].filter((c) => c.state === "incoming" && !c.blocked);
}

/** The entries of a tab, by name. */
function entries(/** @type {Tab} */ t) {
  const all = [...state.contacts.values()];
  const list =
    t === "blocked"
      ? all.filter((c) => c.blocked)
      : t === "incoming"
        ? incoming()
        : all.filter((c) => c.state === (t === "contacts" ? "contact" : t) && !c.blocked);
  const name = (/** @type {ContactInfo} */ c) => (c.profile.display_name || c.profile.username).toLocaleLowerCase();
  return list.sort((a, b) => name(a).localeCompare(name(b)));
}

const EMPTY = {
  contacts: "No contacts yet. Open someone's card to add them.",
  incoming: "No requests waiting.",
  outgoing: "No requests sent.",
  blocked: "You block nobody.",
};

/** A button of a row: visible `label`, and for a screen reader whom it is about. */
function rowButton(/** @type {string} */ label, /** @type {string} */ about, /** @type {string} */ cls, /** @type {() => void} */ onclick) {
  return h("button", { type: "button", class: `ghost small ${cls}`, dataset: { action: label.toLowerCase() }, onclick }, label, h("span", { class: "visually-hidden" }, ` ${about}`));
}

function contactRow(/** @type {ContactInfo} */ c) {
  const id = c.profile.user;
  const name = c.profile.display_name || c.profile.username;
  const u = state.users.get(id);
  const fail = (/** @type {string} */ text) => showListError(text);
  /** @type {HTMLElement[]} */
  const buttons = [];
  if (tab === "contacts") buttons.push(rowButton("Remove", name, "danger", () => void act(id, "remove", fail)));
  if (tab === "incoming") {
    buttons.push(rowButton("Accept", `${name}'s request`, "", () => void act(id, "accept", fail)));
    buttons.push(rowButton("Decline", `${name}'s request`, "danger", () => void act(id, "decline", fail)));
  }
  if (tab === "outgoing") buttons.push(rowButton("Cancel", `the request to ${name}`, "danger", () => void act(id, "cancel", fail)));
  if (tab === "blocked") buttons.push(rowButton("Unblock", name, "", () => void act(id, "unblock", fail)));
  const presence = u?.presence ?? c.presence;
  return h(
    "li",
    { class: "member contact-row", dataset: { user: id, username: c.profile.username } },
    avatar(c.profile, tab === "contacts" ? presence : undefined, "small"),
    h(
      "button",
      {
        type: "button",
        class: "contact-open",
        title: "Send a message",
        onclick: () => {
          dialog("contacts").close();
          void openChatWith(id);
        },
      },
      h("span", { class: "member-name" }, nameNode(name)),
      h("span", { class: "pick-username" }, `@${c.profile.username}`),
      tab === "contacts" ? h("span", { class: `presence ${presence?.online ? "online" : ""}` }, presenceText(presence)) : null,
    ),
    h("span", { class: "member-actions" }, ...buttons),
  );
}

function showListError(/** @type {string} */ text) {
  const e = $("contacts-error");
  e.textContent = text;
  show(e, !!text);
}

function renderContacts() {
  const n = incoming().length;
  const badge = $("contacts-badge");
  badge.textContent = String(n);
  show(badge, n > 0);
  $("contacts-button").setAttribute("aria-label", n ? `Contacts, ${n === 1 ? "1 request" : `${n} requests`}` : "Contacts");
  $("contacts-tab-incoming").textContent = n ? `Requests (${n})` : "Requests";
  const d = dialog("contacts");
  if (!d.open) return;
  for (const b of /** @type {NodeListOf<HTMLElement>} */ (d.querySelectorAll(".tabs .tab"))) b.setAttribute("aria-pressed", String(b.dataset.tab === tab));
  const list = entries(tab);
  // Rows are rebuilt: the focus, if it was in the list, goes back to the same button of the same row if it remains.
  const active = /** @type {HTMLElement | null} */ (document.activeElement);
  const row = /** @type {HTMLElement | null} */ (active?.closest(".contact-row") ?? null);
  const focusKey = row && active ? { user: row.dataset.user, action: active.dataset.action } : null;
  const ul = $("contacts-list");
  ul.setAttribute("aria-label", $(`contacts-tab-${tab}`).textContent ?? "");
  ul.replaceChildren(...list.map(contactRow));
  const empty = $("contacts-empty");
  empty.textContent = state.contactsLoaded ? EMPTY[tab] : "Loading…";
  show(empty, list.length === 0);
  if (focusKey) {
    const again = ul.querySelector(`.contact-row[data-user="${CSS.escape(focusKey.user ?? "")}"] [data-action="${CSS.escape(focusKey.action ?? "")}"]`);
    if (again) /** @type {HTMLElement} */ (again).focus();
    else if (!ul.contains(document.activeElement)) $(`contacts-tab-${tab}`).focus();
  }
}

function renderPrivacy() {
  const p = state.me?.privacy;
  if (!p) return;
  for (const name of /** @type {const} */ (["direct", "groups", "presence"])) {
    const input = /** @type {HTMLInputElement | null} */ (document.getElementById(`privacy-${name}-${p[name]}`));
    if (input) input.checked = true;
  }
  /** @type {HTMLInputElement} */ ($("privacy-read-receipts")).checked = p.read_receipts !== false;
}

/** Opens the Contacts dialog on `t`. */
export function openContacts(/** @type {Tab} */ t = tab) {
  tab = t;
  showListError("");
  const d = dialog("contacts");
  if (!d.open) d.showModal();
  invalidate("contacts");
  renderContacts();
  $(`contacts-tab-${tab}`).focus();
}

export function wireContacts() {
  const d = dialog("contacts");
  $("contacts-button").addEventListener("click", () => openContacts(incoming().length ? "incoming" : tab));
  for (const b of /** @type {NodeListOf<HTMLElement>} */ (d.querySelectorAll(".tabs .tab"))) {
    b.addEventListener("click", () => {
      tab = /** @type {Tab} */ (b.dataset.tab);
      showListError("");
      renderContacts();
    });
  }
  d.addEventListener("click", (ev) => {
    if (ev.target === d) d.close();
  });

  // The card's and the header's buttons.
  const cardError = (/** @type {string} */ text) => {
    const e = $("card-contact-error");
    e.textContent = text;
    show(e, true);
  };
  const headerError = (/** @type {string} */ text) => toast(userName(openConv()?.peer ?? ""), text);
  /** @type {Array<[string, () => string, (text: string) => void]>} */
  const places = [
    ["card-contact", () => dialog("card").dataset.user ?? "", cardError],
    ["chat-contact", () => openConv()?.peer ?? "", headerError],
  ];
  for (const [prefix, who, fail] of places) {
    $(`${prefix}-action`).addEventListener("click", () => {
      const action = /** @type {ContactAction} */ ($(`${prefix}-action`).dataset.action);
      show($("card-contact-error"), false);
      const user = who();
      if (!user || !action) return;
      void act(user, action, fail).then(() => {
        // Accepted: the button goes; the focus stays in the same place, on the button beside it.
        flush();
        const button = $(`${prefix}-action`);
        if (button.hidden && (document.activeElement === button || document.activeElement === document.body)) $(`${prefix}-block`).focus();
      });
    });
    $(`${prefix}-block`).addEventListener("click", () => {
      const user = who();
      if (!user) return;
      show($("card-contact-error"), false);
      if (contactOf(user).blocked) void act(user, "unblock", fail);
      else confirmBlock(user);
    });
  }
  $("card-decline").addEventListener("click", () => {
    const user = dialog("card").dataset.user;
    if (user) void act(user, "decline", cardError);
  });
  $("chat-unblock").addEventListener("click", () => {
    const c = openConv();
    if (c?.peer) void act(c.peer, "unblock", headerError).then((ok) => ok && $("composer-text").focus());
  });

  const confirm = dialog("block-confirm");
  $("block-no").addEventListener("click", () => confirm.close());
  const blockError = (/** @type {string} */ text) => {
    const e = $("block-error");
    e.textContent = text;
    show(e, true);
  };
  const block = async (/** @type {boolean} */ report) => {
    const user = blocking;
    const { conv, after } = blockingWith;
    const client = state.client;
    if (!client) return;
    const buttons = [$("block-yes"), $("block-report"), $("block-no")].map((b) => /** @type {HTMLButtonElement} */ (b));
    for (const b of buttons) b.disabled = true;
    try {
      if (report) {
        try {
          await client.report(user, conv, "Reported from the web client");
        } catch (err) {
          blockError(describe(err));
          return;
        }
      }
      // Blocked already (an earlier try stopped after the block): only what follows is left to do.
      const ok = contactOf(user).blocked || (await act(user, "block", blockError));
      if (!ok) return;
      try {
        await after?.();
      } catch (err) {
        blockError(describe(err));
        return;
      }
      confirm.close();
      // From a request, the Requests view says what became of it.
      if (report && after) $("requests-status").textContent = `${userName(user)} was blocked and reported; the request was deleted.`;
    } finally {
      for (const b of buttons) b.disabled = false;
    }
  };
  $("block-yes").addEventListener("click", () => void block(false));
  $("block-report").addEventListener("click", () => void block(true));
  confirm.addEventListener("click", (ev) => {
    if (ev.target === confirm) confirm.close();
  });

  // Privacy: saved as soon as it is chosen; a refusal puts the choice back.
  for (const input of /** @type {NodeListOf<HTMLInputElement>} */ (document.querySelectorAll('#privacy input'))) {
    input.addEventListener("change", () => {
      const client = state.client;
      if (!client || (input.type === "radio" && !input.checked)) return;
      const status = $("privacy-status");
      const error = $("privacy-error");
      show(error, false);
      status.textContent = "Saving…";
      const which = input.name === "privacy-direct" ? "direct" : input.name === "privacy-groups" ? "groups" : "presence";
      const value = /** @type {import("../chatcore/web.js").Audience} */ (input.value);
      const change = input.type === "checkbox" ? { read_receipts: input.checked } : { [which]: value };
      client.setPrivacy(change).then(
        (p) => {
          if (state.me) state.me.privacy = p;
          status.textContent = "Saved.";
          // Whether read ticks show depends on this user's own setting too.
          invalidate("privacy", "messages");
        },
        (/** @type {unknown} */ err) => {
          status.textContent = "";
          error.textContent = describe(err);
          show(error, true);
          renderPrivacy();
        },
      );
    });
  }
  $("settings-button").addEventListener("click", () => {
    $("privacy-status").textContent = "";
    show($("privacy-error"), false);
    renderPrivacy();
  });
}

onRender("contacts", renderContacts);
onRender("card", renderCardButtons);
onRender("header", renderHeaderButtons);
onRender("privacy", renderPrivacy);
