// @ts-check
// The connection's state, shown in the top bar.

import { $ } from "./dom.js";
import { onRender, state } from "./store.js";

/** @type {Record<string, string>} */
const TEXT = { ready: "", connected: "", connecting: "Connecting…", reconnecting: "Reconnecting…", disconnected: "Offline", closed: "Offline" };

function renderConnection() {
  const el = $("conn");
  el.textContent = TEXT[state.connection] ?? "";
  el.dataset.state = state.connection;
}

onRender("connection", renderConnection);
