// @ts-check
// Trust, on the contact card: the safety number with a contact, marking them
// verified, and their devices; on one's own card, one's devices (every
// sign-in), renamed or signed out from here. The keys behind it are ui/e2e.js's.

import { $, dialog, h, show } from "./dom.js";
import { dayLabel, describe, timeFmt } from "./format.js";
import { onRender, state } from "./store.js";
import { devicesOf, isVerified, safetyNumberWith, setVerified } from "./e2e.js";

/** The card's user, while it is open. */
function cardUser() {
  const d = dialog("card");
  return d.open ? (d.dataset.user ?? null) : null;
}

/** Fills the card's encryption section for `user` (or one's devices, on one's own card). */
export async function showTrust(/** @type {string} */ user) {
  const mine = user === state.me?.user;
  show($("card-e2e"), !mine);
  show($("card-own-devices"), mine);
  if (mine) return loadOwnDevices();
  const number = $("card-safety");
  number.textContent = "…";
  // Nothing of the card shown before (another contact's number) stays while this one is computed.
  delete number.dataset.digits;
  $("card-verified-state").textContent = "";
  show($("card-verify"), false);
  $("card-devices").replaceChildren();
  try {
    const n = await safetyNumberWith(user);
    if (cardUser() !== user) return;
    // Twelve groups of five digits, as Signal shows them: read out in turns.
    number.textContent = n;
    number.dataset.digits = n.replace(/\D/g, "");
  } catch (err) {
    if (cardUser() !== user) return;
    number.textContent = "";
    delete number.dataset.digits;
    $("card-verified-state").textContent = `No safety number yet: ${describe(err)}`;
    show($("card-verify"), false);
    return;
  }
  renderTrust();
}

function renderTrust() {
  const user = cardUser();
  if (!user || user === state.me?.user || !$("card-safety").dataset.digits) return;
  const verified = isVerified(user);
  $("card-verified-state").textContent = verified
    ? "✓ Verified: you compared this safety number."
    : "Not verified. Compare the safety number to make sure.";
  const button = $("card-verify");
  button.textContent = verified ? "Remove verification" : "Mark as verified";
  show(button, true);
  void devicesOf(user).then((devices) => {
    if (cardUser() !== user) return;
    $("card-devices").replaceChildren(
      ...devices.map((d) =>
        h(
          "li",
          { dataset: { device: d.device } },
          h("span", { class: "device-name" }, `Device ${d.device.slice(0, 8)}`),
          h("span", { class: "hint" }, d.trust === "verified" ? "signed by their key" : "not signed by their key"),
        ),
      ),
    );
  });
}

// -- own devices

/** @type {import("../chatcore/web.js").DeviceInfo[]} */
let own = [];
/** The trust of each of one's other devices, as this device knows it. @type {Map<string, string>} */
let ownTrust = new Map();

async function loadOwnDevices() {
  const client = state.client;
  if (!client) return;
  show($("own-devices-error"), false);
  try {
    own = await client.devices();
    const me = state.me?.user;
    ownTrust = new Map(me ? (await devicesOf(me)).map((d) => [d.device, d.trust]) : []);
  } catch (err) {
    $("own-devices-error").textContent = describe(err);
    show($("own-devices-error"), true);
  }
  renderOwnDevices();
}

function renderOwnDevices() {
  $("own-devices").replaceChildren(
    ...own.map((d) =>
      h(
        "li",
        { dataset: { device: d.device } },
        h("span", { class: "device-name" }, d.name || "Unnamed device"),
        h("span", { class: "hint" }, d.current ? "This device" : `Active ${dayLabel(d.last_active)} ${timeFmt.format(d.last_active)}`),
        h("button", { type: "button", class: "ghost small", onclick: () => void renameDevice(d) }, "Rename"),
        // A new device of one's own reads the history once this one (holding the master key) vouches for it.
        !d.current && d.keys && canVerify() && ownTrust.get(d.device) !== "verified"
          ? h("button", { type: "button", class: "ghost small", dataset: { verify: d.device }, onclick: () => void verifyOwn(d) }, "Verify")
          : null,
        d.current ? null : h("button", { type: "button", class: "ghost small danger", onclick: () => void revokeDevice(d) }, "Sign out"),
      ),
    ),
  );
}

async function ownAction(/** @type {() => Promise<void>} */ f) {
  show($("own-devices-error"), false);
  try {
    await f();
  } catch (err) {
    $("own-devices-error").textContent = describe(err);
    show($("own-devices-error"), true);
  }
  await loadOwnDevices();
}

/** Whether this device holds the master key, so it can verify one's other devices. */
function canVerify() {
  try {
    return state.e2e.status === "ready" && !!state.secure?.machine.hasMasterKey();
  } catch {
    return false;
  }
}

async function verifyOwn(/** @type {import("../chatcore/web.js").DeviceInfo} */ d) {
  const secure = state.secure;
  const name = d.name || "Unnamed device";
  if (!secure || !confirm(`Is "${name}" your device, signed in by you? Verified, it reads your earlier messages.`)) return;
  await ownAction(() => secure.verifyDevice(d.device));
}

async function renameDevice(/** @type {import("../chatcore/web.js").DeviceInfo} */ d) {
  const name = prompt("Name of this device", d.name)?.trim();
  const client = state.client;
  if (!name || name === d.name || !client) return;
  await ownAction(() => client.renameDevice(d.device, name));
}

async function revokeDevice(/** @type {import("../chatcore/web.js").DeviceInfo} */ d) {
  const client = state.client;
  if (!client || !confirm(`Sign out "${d.name || "Unnamed device"}"? It loses its keys and reads no new messages.`)) return;
  await ownAction(() => client.revokeDevice(d.device));
}

export function wireTrust() {
  $("card-verify").addEventListener("click", () => {
    const user = cardUser();
    if (!user) return;
    setVerified(user, !isVerified(user)).catch((err) => {
      $("card-verified-state").textContent = describe(err);
    });
  });
}

onRender("card", renderTrust);
