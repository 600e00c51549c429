// @ts-check
// Groups: the new-group dialog (title, description, members picked from the
// directory search), the group dialog opened from the chat header (members
// and roles; admins add and remove members, edit the title and description,
// make and revoke the invite link, and decide whether new members read the
// earlier history; the owner promotes, demotes and hands ownership over;
// anyone leaves), and joining by an invite link (`/#join=<token>`).

import { ChatError } from "../chatcore/web.js";
import { $, dialog, field, form, h, nameNode, setName, show } from "./dom.js";
import { avatar, groupProfile, paintAvatar } from "./avatar.js";
import { describe } from "./format.js";
import { clearErrors, fieldError, showError, submitting, values } from "./forms.js";
import { flush, invalidate, learnConversation, needUsers, onRender, rememberUser, state, userName } from "./store.js";
import { openChat, refreshConversation } from "./chat.js";
import { toast } from "./notify.js";

/** The invite link made on this page, per group (the server hands a token out once, when it is made). @type {Map<string, string>} */
const invites = new Map();

const JOIN_KEY = "chatcore.join";

// -- people picker: a search over the directory, with checkboxes; the chosen stay chosen across searches ---------

/**
 * @typedef {{ chosen: Map<string, string>, reset(): void, exclude: Set<string> }} Picker
 */

/** Wires the picker whose elements are `<prefix>-search`, `<prefix>-results`, `<prefix>-chosen`. */
function picker(/** @type {string} */ prefix) {
  /** @type {Picker} */
  const p = {
    chosen: new Map(),
    exclude: new Set(),
    reset() {
      p.chosen.clear();
      field(`${prefix}-search`).value = "";
      $(`${prefix}-results`).replaceChildren();
      renderChosen();
    },
  };
  let seq = 0;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const results = $(`${prefix}-results`);
  const renderChosen = () => {
    $(`${prefix}-chosen`).replaceChildren(
      ...[...p.chosen].map(([id, name]) =>
        h(
          "li",
          { class: "chip", dataset: { user: id } },
          nameNode(name),
          h(
            "button",
            {
              type: "button",
              class: "chip-remove",
              "aria-label": `Remove ${name}`,
              onclick: () => {
                p.chosen.delete(id);
                renderChosen();
                const box = /** @type {HTMLInputElement | null} */ (results.querySelector(`input[data-user="${CSS.escape(id)}"]`));
                if (box) box.checked = false;
              },
            },
            "×",
          ),
        ),
      ),
    );
  };
  const search = async (/** @type {string} */ query) => {
    const client = state.client;
    if (!client) return;
    const mine = ++seq;
    try {
      const page = await client.searchUsers(query, { limit: 20 });
      if (mine !== seq) return;
      for (const e of page.users) rememberUser(e);
      const people = page.users.filter((e) => e.profile.user !== state.me?.user && !p.exclude.has(e.profile.user));
      results.replaceChildren(
        ...people.map((e) => {
          const id = e.profile.user;
          const box = h("input", { type: "checkbox", dataset: { user: id, username: e.profile.username } });
          box.checked = p.chosen.has(id);
          box.addEventListener("change", () => {
            if (box.checked) p.chosen.set(id, e.profile.display_name);
            else p.chosen.delete(id);
            renderChosen();
          });
          return h(
            "li",
            {},
            h(
              "label",
              { class: "pick" },
              box,
              avatar(e.profile, undefined, "small"),
              h("span", { class: "pick-name" }, nameNode(e.profile.display_name)),
              h("span", { class: "pick-username" }, `@${e.profile.username}`),
            ),
          );
        }),
        people.length ? "" : h("li", { class: "empty" }, "Nobody found."),
      );
    } catch (err) {
      console.warn("search failed:", err);
    }
  };
  const input = field(`${prefix}-search`);
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => void search(input.value.trim()), 200);
  });
  // Enter in the search box must not submit the form around it.
  input.addEventListener("keydown", (ev) => {
    if (/** @type {KeyboardEvent} */ (ev).key === "Enter") ev.preventDefault();
  });
  return Object.assign(p, { search });
}

// -- new group -------------------------------------------------------------------------------------------------

/** @type {(Picker & { search(q: string): Promise<void> }) | null} */
let newPicker = null;

export function openNewGroup() {
  const f = form("newgroup-form");
  f.reset();
  clearErrors(f);
  newPicker?.reset();
  void newPicker?.search("");
  dialog("new-group").showModal();
  field("newgroup-title").focus();
}

// -- the group dialog ------------------------------------------------------------------------------------------

/** @type {(Picker & { search(q: string): Promise<void> }) | null} */
let addPicker = null;

/** Opens the dialog of group `id` (from the chat header). */
export function openGroup(/** @type {string} */ id) {
  const d = dialog("group");
  d.dataset.conv = id;
  const c = state.convs.get(id);
  const f = form("group-form");
  clearErrors(f);
  if (c) fillSettings(c);
  show($("group-leave-confirm"), false);
  show($("group-leave"), true);
  show($("group-members-error"), false);
  show($("group-add-error"), false);
  $("group-invite-status").textContent = "";
  $("group-add-status").textContent = "";
  addPicker?.reset();
  invalidate("group");
  void refreshConversation(id).then(() => {
    // The edit form shows what the group holds now (unless the user started typing).
    const now = state.convs.get(id);
    if (now && d.open && !f.contains(document.activeElement)) fillSettings(now);
  });
  if (!d.open) d.showModal();
}

/** The settings form shows what group `c` holds. */
function fillSettings(/** @type {import("./store.js").Conv} */ c) {
  field("group-title").value = c.title;
  field("group-description").value = c.description;
  /** @type {HTMLInputElement} */ (field("group-history")).checked = c.historyVisible;
}

function groupOfDialog() {
  const id = dialog("group").dataset.conv;
  return (id && state.convs.get(id)) || null;
}

const ROLE_LABEL = { owner: "Owner", admin: "Admin", member: "" };

/** What the signed-in user may do to `member` in `c`. */
function actionsFor(/** @type {import("./store.js").Conv} */ c, /** @type {import("./store.js").MemberInfo} */ m) {
  const me = state.me?.user;
  /** @type {Array<[string, string, () => Promise<unknown>]>} */
  const out = [];
  const client = state.client;
  if (!client || m.user === me || c.left) return out;
  const name = userName(m.user);
  // The accessible name starts with the visible text (so speech control finds it), then says whom it is about.
  if (c.role === "owner") {
    if (m.role === "member") out.push(["promote", `Make admin: ${name}`, () => client.setRole(c.id, m.user, "admin")]);
    if (m.role === "admin") out.push(["demote", `Dismiss as admin: ${name}`, () => client.setRole(c.id, m.user, "member")]);
    out.push(["owner", `Make owner: ${name}`, () => client.setRole(c.id, m.user, "owner")]);
  }
  const rank = { member: 0, admin: 1, owner: 2 };
  if ((c.role === "admin" || c.role === "owner") && rank[m.role] < rank[c.role]) {
    out.push(["remove", `Remove: ${name}`, () => client.removeMember(c.id, m.user)]);
  }
  return out;
}

/** Short visible labels of the member actions (the accessible names say whom they are about). @type {Record<string, string>} */
const ACTION_TEXT = { promote: "Make admin", demote: "Dismiss as admin", owner: "Make owner", remove: "Remove" };

function renderGroup() {
  const d = dialog("group");
  const c = groupOfDialog();
  if (!d.open || !c) return;
  const me = state.me?.user;
  const admin = !c.left && (c.role === "admin" || c.role === "owner");
  paintAvatar($("group-avatar"), groupProfile(c));
  setName($("group-name"), c.title || "Group");
  $("group-count").textContent = c.left ? "You are no longer a member" : c.memberCount === 1 ? "1 member" : `${c.memberCount} members`;
  $("group-about").textContent = c.description;
  // Admins change it in the form; everyone else reads it.
  const note = $("group-history-note");
  // Encrypted: the keys of earlier messages are not shared with new members, so there is nothing to choose.
  note.textContent = c.encrypted
    ? "End-to-end encrypted: new members read only what is sent after they join."
    : c.historyVisible
      ? "New members can read the messages from before they joined."
      : "New members read only what is sent after they join.";
  show(note, (!admin || c.encrypted) && !c.left);
  const historyChoice = field("group-history").closest("label");
  if (historyChoice) show(/** @type {HTMLElement} */ (historyChoice), !c.encrypted);
  show($("group-history-hint"), !c.encrypted);
  show(form("group-form"), admin);
  show($("group-invite-section"), admin);
  show($("group-add"), admin);
  show($("group-leave-section"), !c.left);
  const token = invites.get(c.id);
  show($("group-invite-row"), !!token);
  show($("group-invite-revoke"), !!token);
  $("group-invite-create").textContent = token ? "Make a new link" : "Create link";
  field("group-invite-link").value = token ? inviteUrl(token) : "";
  const members = c.members ?? [];
  if (addPicker) addPicker.exclude = new Set([...members.map((m) => m.user), ...c.invited]);
  needUsers([...members.map((m) => m.user), ...c.invited]);
  // Open invitations: users whose settings admit only their contacts' adds. Admins may withdraw them.
  show($("group-invited-section"), c.invited.length > 0 && !c.left);
  $("group-invited").replaceChildren(
    ...c.invited.map((user) => {
      const u = state.users.get(user);
      const client = state.client;
      return h(
        "li",
        { class: "member", dataset: { user, invited: "true" } },
        u ? avatar(u.profile, undefined, "small") : h("span", { class: "avatar small", "aria-hidden": "true" }),
        h("span", { class: "member-text" }, h("span", { class: "member-name" }, nameNode(userName(user))), h("span", { class: "role-badge" }, "Invited")),
        h(
          "span",
          { class: "member-actions" },
          admin && client
            ? h(
                "button",
                {
                  type: "button",
                  class: "ghost small danger",
                  dataset: { action: "withdraw" },
                  "aria-label": `Withdraw the invitation: ${userName(user)}`,
                  onclick: (/** @type {Event} */ ev) => void memberAction(/** @type {HTMLButtonElement} */ (ev.currentTarget), () => client.removeMember(c.id, user)),
                },
                "Withdraw",
              )
            : null,
        ),
      );
    }),
  );
  $("group-members").replaceChildren(
    ...members.map((m) => {
      const u = state.users.get(m.user);
      const role = ROLE_LABEL[m.role];
      return h(
        "li",
        { class: "member", dataset: { user: m.user, role: m.role } },
        u ? avatar(u.profile, u.presence, "small") : h("span", { class: "avatar small", "aria-hidden": "true" }),
        h(
          "span",
          { class: "member-text" },
          h("span", { class: "member-name" }, nameNode(userName(m.user)), m.user === me ? " (you)" : ""),
          role ? h("span", { class: `role-badge ${m.role}` }, role) : null,
        ),
        h(
          "span",
          { class: "member-actions" },
          ...actionsFor(c, m).map(([action, label, run]) =>
            h(
              "button",
              {
                type: "button",
                class: `ghost small ${action === "remove" ? "danger" : ""}`,
                dataset: { action },
                "aria-label": label,
                onclick: (/** @type {Event} */ ev) => void memberAction(/** @type {HTMLButtonElement} */ (ev.currentTarget), run),
              },
              ACTION_TEXT[action] ?? action,
            ),
          ),
        ),
      );
    }),
  );
}

/** Runs a member action from its button; an error shows under the list. */
async function memberAction(/** @type {HTMLButtonElement} */ button, /** @type {() => Promise<unknown>} */ run) {
  const err = $("group-members-error");
  show(err, false);
  button.disabled = true;
  try {
    await run();
    const c = groupOfDialog();
    if (c) await refreshConversation(c.id);
  } catch (e) {
    err.textContent = describe(e);
    show(err, true);
    button.disabled = false;
  }
}

function inviteUrl(/** @type {string} */ token) {
  return `${location.origin}/#join=${token}`;
}

// -- joining by a link -----------------------------------------------------------------------------------------

/** The token of a `#join=<token>` address. */
function tokenFromHash() {
  return /^#join=([A-Za-z0-9_-]+)$/.exec(location.hash)?.[1] ?? null;
}

/**
 * Joins the group of the invite link in the address (or kept from before signing in), then opens it; an invalid
 * link is said in a dialog. Signed out, the token waits (in this tab) for the sign-in.
 */
export async function joinFromLink() {
  const fromHash = tokenFromHash();
  if (fromHash) {
    sessionStorage.setItem(JOIN_KEY, fromHash);
    history.replaceState(null, "", location.pathname + location.search);
  }
  const token = sessionStorage.getItem(JOIN_KEY);
  const client = state.client;
  if (!token || !state.me || !client) return;
  sessionStorage.removeItem(JOIN_KEY);
  try {
    const info = await client.join(token);
    learnConversation(info);
    needUsers(info.members.map((m) => m.user));
    invalidate("directory");
    await openChat(info.conv);
  } catch (err) {
    const text =
      err instanceof ChatError && err.code === "not_found"
        ? "This invite link is not valid. It may have been revoked or replaced; ask for a new one."
        : describe(err);
    $("join-text").textContent = text;
    dialog("join").showModal();
  }
}

export function wireGroups() {
  newPicker = picker("newgroup");
  addPicker = picker("groupadd");
  $("new-group-button").addEventListener("click", openNewGroup);

  const nf = form("newgroup-form");
  nf.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = values(nf);
    void submitting(nf, async () => {
      const client = state.client;
      if (!client || !newPicker) return;
      const title = (v.title ?? "").trim();
      if (!title) {
        fieldError("newgroup", "title", ["Give the group a name."]);
        return;
      }
      try {
        const description = (v.description ?? "").trim();
        const names = new Map(newPicker.chosen);
        const info = await client.createGroup({
          title,
          ...(description ? { description } : {}),
          members: [...newPicker.chosen.keys()],
          // Every group this page makes is end-to-end encrypted.
          encrypted: true,
        });
        learnConversation(info);
        dialog("new-group").close();
        await openChat(info.conv);
        const invited = info.invited ?? [];
        if (invited.length) {
          const who = invited.map((u) => names.get(u) ?? userName(u)).join(", ");
          toast(title, `Invited ${who}: they join if they accept.`, () => openGroup(info.conv), info.conv);
        }
      } catch (err) {
        showError("newgroup", err);
      }
    });
  });

  const gf = form("group-form");
  gf.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = values(gf);
    void submitting(gf, async () => {
      const client = state.client;
      const c = groupOfDialog();
      if (!client || !c) return;
      const title = (v.title ?? "").trim();
      const description = (v.description ?? "").trim();
      const historyVisible = /** @type {HTMLInputElement} */ (field("group-history")).checked;
      /** @type {{ title?: string, description?: string, history_visible?: boolean }} */
      const changes = {};
      if (title !== c.title) changes.title = title;
      if (description !== c.description) changes.description = description;
      if (historyVisible !== c.historyVisible) changes.history_visible = historyVisible;
      if (!Object.keys(changes).length) {
        $("group-edit-status").textContent = "Nothing to save.";
        return;
      }
      try {
        await client.updateGroup(c.id, changes);
        await refreshConversation(c.id);
        $("group-edit-status").textContent = "Saved.";
      } catch (err) {
        showError("group", err);
      }
    });
  });
  gf.addEventListener("input", () => {
    $("group-edit-status").textContent = "";
  });

  $("group-invite-create").addEventListener("click", async () => {
    const client = state.client;
    const c = groupOfDialog();
    if (!client || !c) return;
    try {
      invites.set(c.id, await client.createInvite(c.id));
      $("group-invite-status").textContent = "Anyone with this link can join the group.";
      invalidate("group");
      flush();
      field("group-invite-link").select();
    } catch (err) {
      $("group-invite-status").textContent = describe(err);
    }
  });
  $("group-invite-copy").addEventListener("click", async () => {
    const link = field("group-invite-link").value;
    try {
      await navigator.clipboard.writeText(link);
      $("group-invite-status").textContent = "Link copied.";
    } catch {
      // No clipboard permission: the link is selected for the user to copy.
      field("group-invite-link").select();
      $("group-invite-status").textContent = "Press Ctrl+C (⌘C) to copy the selected link.";
    }
  });
  $("group-invite-revoke").addEventListener("click", async () => {
    const client = state.client;
    const c = groupOfDialog();
    if (!client || !c) return;
    try {
      await client.revokeInvite(c.id);
      invites.delete(c.id);
      $("group-invite-status").textContent = "The link was revoked: it no longer works.";
      invalidate("group");
      $("group-invite-create").focus();
    } catch (err) {
      $("group-invite-status").textContent = describe(err);
    }
  });

  $("group-add-button").addEventListener("click", async () => {
    const client = state.client;
    const c = groupOfDialog();
    if (!client || !c || !addPicker) return;
    const err = $("group-add-error");
    show(err, false);
    const users = [...addPicker.chosen.keys()];
    if (!users.length) {
      err.textContent = "Pick someone to add first.";
      show(err, true);
      field("groupadd-search").focus();
      return;
    }
    const names = new Map(addPicker.chosen);
    $("group-add-status").textContent = "";
    try {
      const { invited } = await client.addMembers(c.id, users);
      addPicker.reset();
      // Who was invited rather than added: said where the add was made.
      const added = users.filter((u) => !invited.includes(u));
      const said = (/** @type {string[]} */ ids) => ids.map((u) => names.get(u) ?? userName(u)).join(", ");
      $("group-add-status").textContent = invited.length
        ? `${added.length ? `Added ${said(added)}. ` : ""}Invited ${said(invited)}: their settings let only their contacts add them, so they join if they accept.`
        : `Added ${said(added)}.`;
      await refreshConversation(c.id);
    } catch (e) {
      err.textContent = e instanceof ChatError && e.code === "conflict" ? "They are members already." : describe(e);
      show(err, true);
    }
  });
  const addSearch = field("groupadd-search");
  addSearch.addEventListener("focus", () => {
    if (addPicker && !$("groupadd-results").childElementCount) void addPicker.search(addSearch.value.trim());
  });

  $("group-leave").addEventListener("click", () => {
    const c = groupOfDialog();
    $("group-leave-question").textContent = `Leave “${c?.title ?? "this group"}”? You will no longer receive its messages.`;
    show($("group-leave"), false);
    show($("group-leave-confirm"), true);
    $("group-leave-no").focus();
  });
  $("group-leave-no").addEventListener("click", () => {
    show($("group-leave-confirm"), false);
    show($("group-leave"), true);
    $("group-leave").focus();
  });
  $("group-leave-yes").addEventListener("click", async () => {
    const client = state.client;
    const c = groupOfDialog();
    if (!client || !c) return;
    try {
      await client.leave(c.id);
      c.left = true;
      c.role = undefined;
      dialog("group").close();
      invalidate("chat", "header", "directory");
      void refreshConversation(c.id);
    } catch (err) {
      $("group-members-error").textContent = describe(err);
      show($("group-members-error"), true);
    }
  });

  // A field's error goes as soon as the field is changed.
  for (const f of [nf, gf]) {
    f.addEventListener("input", (ev) => {
      const input = /** @type {HTMLElement} */ (ev.target);
      if (!input.id || input.getAttribute("aria-invalid") !== "true") return;
      input.removeAttribute("aria-invalid");
      const err = document.getElementById(`${input.id}-error`);
      if (err) show(err, false);
    });
  }
  for (const id of ["group", "new-group", "join"]) {
    const d = dialog(id);
    d.addEventListener("click", (ev) => {
      if (ev.target === d) d.close();
    });
  }
  window.addEventListener("hashchange", () => {
    if (tokenFromHash()) void joinFromLink();
  });
}

onRender("group", renderGroup);
