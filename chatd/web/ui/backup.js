// @ts-check
// The encrypted key backup in the page: turning it on (the recovery key shown
// once), restoring the history on a new device with the recovery key, and the
// banner that offers it when this device cannot read what came before it.
// The server keeps the keys encrypted to the backup's key; it never sees one.

import { $, dialog, field, form, show } from "./dom.js";
import { describe } from "./format.js";
import { invalidate, onRender, state } from "./store.js";
import { afterE2eStart, rereadAll } from "./e2e.js";

/** Whether the user has a backup on the server (null: not asked yet). */
const backup = { exists: /** @type {boolean | null} */ (null) };

/** Asks the server whether the user has a backup, once encryption has started (after a sign-in or reload). */
export function checkBackup() {
  backup.exists = null;
  afterE2eStart(() => {
    const secure = state.secure;
    if (!secure || state.e2e.status !== "ready") return;
    secure.hasBackup().then(
      (exists) => {
        if (state.secure !== secure) return;
        backup.exists = exists;
        invalidate("connection", "backup");
      },
      (e) => console.warn("chatcore: the key backup was not looked up:", e),
    );
  });
}

/** Whether this device is verified by the user's master key (a new device is not, until restored or verified). */
function thisDeviceVerified() {
  const secure = state.secure;
  const me = state.me;
  if (!secure || !me || state.e2e.status !== "ready") return true;
  try {
    return secure.deviceTrust(me.user, me.device) === "verified";
  } catch {
    return true;
  }
}

function renderBanner() {
  show($("e2e-banner"), backup.exists === true && !thisDeviceVerified());
}

function renderBackup() {
  if (!dialog("settings").open) return;
  const secure = state.secure;
  const status = $("backup-status");
  const ready = !!secure && state.e2e.status === "ready";
  let master = false;
  try {
    master = ready && !!secure?.machine.hasMasterKey();
  } catch {
    master = false;
  }
  if (!ready) status.textContent = "End-to-end encryption is not ready in this browser.";
  else if (backup.exists === null) status.textContent = "Looking up your key backup…";
  else if (!backup.exists) status.textContent = "Off: a new device reads your history only if another of your devices is signed in.";
  else if (secure?.backupVersion) status.textContent = "On: the keys of your conversations are backed up as they are made.";
  else status.textContent = "You have a key backup, but this device does not add to it yet: restore it with your recovery key.";
  const enable = $("backup-enable");
  enable.textContent = backup.exists ? "Make a new recovery key" : "Turn on key backup";
  // Made on a device that holds the master key (it signs the backup); a new device restores first.
  show(enable, ready && master && backup.exists !== null && $("backup-shown").hidden);
  show(form("restore-form"), ready && backup.exists === true && !thisDeviceVerified());
}

export function wireBackup() {
  $("settings-button").addEventListener("click", () => invalidate("backup"));
  $("e2e-banner-restore").addEventListener("click", () => {
    dialog("settings").showModal();
    invalidate("backup");
    setTimeout(() => field("restore-key").focus());
  });
  $("backup-enable").addEventListener("click", async () => {
    const secure = state.secure;
    if (!secure) return;
    if (backup.exists && !confirm("Make a new recovery key? The old one stops working, and the backup is made anew.")) return;
    $("backup-status").textContent = "Turning the key backup on…";
    try {
      const key = await secure.enableBackup();
      backup.exists = true;
      $("backup-key").textContent = key;
      show($("backup-shown"), true);
    } catch (err) {
      $("backup-status").textContent = `The key backup was not turned on: ${describe(err)}`;
      return;
    }
    invalidate("backup");
  });
  $("backup-saved").addEventListener("click", () => {
    $("backup-key").textContent = "";
    show($("backup-shown"), false);
    invalidate("backup");
  });
  const f = form("restore-form");
  f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const secure = state.secure;
    const input = field("restore-key");
    const error = $("restore-error");
    show(error, false);
    if (!secure || !input.value.trim()) return;
    $("backup-status").textContent = "Restoring your message history…";
    try {
      const restored = await secure.restoreBackup(input.value);
      input.value = "";
      rereadAll();
      $("backup-status").textContent =
        `Restored the keys of ${restored.imported} conversation sessions.` +
        (restored.verified ? " This device is verified now." : "") +
        (restored.refused ? ` ${restored.refused} keys were damaged and left out.` : "");
      show(f, false);
      invalidate("connection", "messages", "directory");
    } catch (err) {
      error.textContent = describe(err);
      show(error, true);
      $("backup-status").textContent = "";
    }
  });
}

onRender("connection", renderBanner);
onRender("backup", renderBackup);
