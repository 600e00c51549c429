// @ts-check
// The contact card, and one's own profile (the same dialog with a form).

import { $, dialog, form, setName, show } from "./dom.js";
import { paintAvatar } from "./avatar.js";
import { describe, presenceText } from "./format.js";
import { clearErrors, showError, submitting, values } from "./forms.js";
import { invalidate, onRender, rememberUser, state } from "./store.js";
import { openChatWith } from "./chat.js";
import { toast } from "./notify.js";
import { showTrust } from "./trust.js";

/** Opens the card of `user` (one's own: with the profile form). */
export async function openCard(/** @type {string} */ user) {
  const me = state.me;
  const client = state.client;
  if (!me || !client) return;
  const d = dialog("card");
  const mine = user === me.user;
  let entry = state.users.get(user);
  try {
    entry = await client.getProfile(user);
    rememberUser(entry);
  } catch (err) {
    if (!entry) {
      toast("Contact card", describe(err));
      return;
    }
  }
  d.dataset.user = user;
  paintAvatar($("card-avatar"), entry.profile);
  setName($("card-name"), entry.profile.display_name);
  $("card-username").textContent = `@${entry.profile.username}`;
  $("card-presence").textContent = mine ? "This is you" : presenceText(entry.presence);
  $("card-about").textContent = entry.profile.about || (mine ? "" : "No about text yet.");
  show($("card-message"), !mine);
  const f = form("profile-form");
  show(f, mine);
  if (mine) {
    clearErrors(f);
    /** @type {HTMLInputElement} */ (f.elements.namedItem("display_name")).value = entry.profile.display_name;
    /** @type {HTMLTextAreaElement} */ (f.elements.namedItem("about")).value = entry.profile.about;
  }
  show($("card-contact-error"), false);
  // The contact and block buttons (contacts.js) draw from the same state as the lists.
  invalidate("card");
  if (!d.open) d.showModal();
  // The safety number and devices (or one's own devices) fill in when known.
  void showTrust(user);
}

/** Live presence and profile on an open card (one's own form is left as typed). */
function renderCard() {
  const d = dialog("card");
  const user = d.dataset.user;
  if (!d.open || !user || user === state.me?.user) return;
  const u = state.users.get(user);
  $("card-presence").textContent = presenceText(u?.presence);
  if (!u) return;
  paintAvatar($("card-avatar"), u.profile);
  setName($("card-name"), u.profile.display_name);
  $("card-username").textContent = `@${u.profile.username}`;
  $("card-about").textContent = u.profile.about || "No about text yet.";
}

export function wireCard() {
  const d = dialog("card");
  $("card-message").addEventListener("click", () => {
    const user = d.dataset.user;
    d.close();
    if (user) void openChatWith(user);
  });
  const f = form("profile-form");
  f.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = values(f);
    void submitting(f, async () => {
      const client = state.client;
      if (!client) return;
      try {
        const entry = await client.updateProfile({ display_name: (v.display_name ?? "").trim(), about: v.about ?? "" });
        rememberUser(entry);
        if (state.me) state.me.profile = entry.profile;
        invalidate("me", "directory", "header");
        d.close();
      } catch (err) {
        showError("profile", err);
      }
    });
  });
  // A click on the backdrop closes the dialog.
  d.addEventListener("click", (ev) => {
    if (ev.target === d) d.close();
  });
}

onRender("card", renderCard);
