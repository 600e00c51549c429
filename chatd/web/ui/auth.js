// @ts-check
// Signed out: sign in, sign up, forgotten password, reset from the mailed link.

import { ChatError } from "../chatcore/web.js";
import { $, field, form } from "./dom.js";
import { fieldError, showError, submitting, values } from "./forms.js";
import { state } from "./store.js";
import { showAuth } from "./shell.js";
import { ensureClient, enterApp } from "./session.js";
import { toast } from "./notify.js";

/** The token of a `#reset=<token>` link, if the page was opened with one. */
export function resetTokenFromHash() {
  const m = /^#reset=([A-Za-z0-9_-]+)$/.exec(location.hash);
  return m ? (m[1] ?? null) : null;
}

/** Shows the form the address asks for (a reset link, #forgot); false when it asks for none. */
export function route() {
  const reset = resetTokenFromHash();
  if (reset) {
    state.resetToken = reset;
    showAuth("reset");
    return true;
  }
  if (location.hash === "#forgot" && !state.me) {
    showAuth("forgot");
    return true;
  }
  return false;
}

/** Handles a submit: default prevented, the form busy while `work` runs with its values. */
function onSubmit(/** @type {string} */ id, /** @type {(form: HTMLFormElement, v: Record<string, string>) => Promise<void>} */ work) {
  const f = form(id);
  f.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = values(f);
    void submitting(f, () => work(f, v));
  });
}

export function wireAuth() {
  for (const tab of /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll("#auth-tabs .tab"))) {
    tab.addEventListener("click", () => showAuth(tab.dataset.view === "signup" ? "signup" : "signin"));
  }
  $("forgot-link").addEventListener("click", (ev) => {
    ev.preventDefault();
    const login = field("signin-login").value;
    if (login.includes("@")) field("forgot-email").value = login;
    showAuth("forgot");
  });
  for (const a of document.querySelectorAll(".back-to-signin")) {
    a.addEventListener("click", (/** @type {Event} */ ev) => {
      ev.preventDefault();
      if (location.hash) history.replaceState(null, "", location.pathname + location.search);
      state.resetToken = null;
      if (state.me) enterApp(false);
      else showAuth("signin");
    });
  }

  onSubmit("signin-form", async (f, v) => {
    const login = (v.login ?? "").trim();
    if (!login || !v.password) {
      showError("signin", new ChatError("invalid_argument", "Enter your username or email and your password."));
      return;
    }
    try {
      await ensureClient().login({ login, password: v.password });
      f.reset();
    } catch (err) {
      if (err instanceof ChatError && err.code === "unauthenticated") {
        showError("signin", new ChatError("unauthenticated", "Wrong username, email or password."));
      } else {
        showError("signin", err);
      }
    }
  });

  onSubmit("signup-form", async (f, v) => {
    const need = ["username", "display_name", "email", "phone", "password"];
    const missing = need.filter((k) => !String(v[k] ?? "").trim());
    if (missing.length) {
      for (const k of missing) fieldError("signup", k, ["Required."]);
      $(`signup-${missing[0]}`).focus();
      return;
    }
    try {
      await ensureClient().register({
        username: (v.username ?? "").trim(),
        email: (v.email ?? "").trim(),
        phone: (v.phone ?? "").trim(),
        display_name: (v.display_name ?? "").trim(),
        password: v.password ?? "",
      });
      f.reset();
    } catch (err) {
      // The form keeps what was typed: only the faulty field is marked.
      showError("signup", err);
    }
  });

  onSubmit("forgot-form", async (_f, v) => {
    const email = (v.email ?? "").trim();
    if (!email) {
      fieldError("forgot", "email", ["Enter the email address of your account."]);
      return;
    }
    try {
      await ensureClient().requestPasswordReset(email);
      // The mail holds a link and a code: the code can be typed here, on the device that asked.
      state.resetToken = null;
      showAuth("reset", `If an account uses ${email}, a mail to reset its password is on its way. Check your mail: open its link, or enter its code below.`);
    } catch (err) {
      showError("forgot", err);
    }
  });

  onSubmit("reset-form", async (f, v) => {
    const token = state.resetToken ?? (v.code ?? "").trim();
    if (!token) {
      fieldError("reset", "code", ["Enter the code from the mail."]);
      return;
    }
    try {
      await ensureClient().confirmPasswordReset(token, v.new_password ?? "");
      state.resetToken = null;
      f.reset();
      history.replaceState(null, "", location.pathname + location.search);
      if (state.me) {
        // Signed in here (as that account, the server's 4001 close signs this page out too).
        enterApp(false);
        toast("Password changed", "The password of that account was changed.");
      } else {
        showAuth("signin", "Your password was changed. Sign in with the new one.");
      }
    } catch (err) {
      if (err instanceof ChatError && err.code === "not_found") {
        if (state.resetToken) {
          showError("reset", new ChatError("not_found", "This reset link is invalid, already used or expired. Ask for a new one."));
        } else {
          fieldError("reset", "code", ["This code is wrong, already used or expired. Check the mail, or ask for a new one."]);
        }
      } else {
        showError("reset", err);
      }
    }
  });
}
