// A loopback TCP proxy in front of chatd that a test can pause and resume:
// paused, it keeps every connection open but lets no byte through in either
// direction (new connections are accepted and held), as a Wi-Fi drop does to
// an open WebSocket; resumed, everything held flows on. Playwright's
// setOffline cannot do this: it does not cut an open WebSocket.
import net from "node:net";

/**
 * `{ url, target, pause(), resume(), close() }`; `url` is http://127.0.0.1:<port>. `target` (host:port) may be
 * set after the start: chatd must know the proxy's origin (--allowed-origin) before it starts.
 */
export async function startProxy(target = "") {
  let paused = false;
  let pauses = 0;
  const flows = new Set();
  const server = net.createServer((client) => {
    const [host, port] = proxy.target.split(":");
    const upstream = net.connect(Number(port), host);
    const flow = { client, upstream, held: [], pausedAt: paused ? pauses : -1 };
    flows.add(flow);
    const forward = (from, to) => {
      from.on("data", (chunk) => {
        if (paused) flow.held.push(() => to.write(chunk));
        else to.write(chunk);
      });
    };
    forward(client, upstream);
    forward(upstream, client);
    const end = () => {
      flows.delete(flow);
      client.destroy();
      upstream.destroy();
    };
    // A close while paused is held too: the other side must not learn of it before the link is back.
    client.on("close", () => (paused ? flow.held.push(end) : end()));
    upstream.on("close", () => (paused ? flow.held.push(end) : end()));
    client.on("error", () => {});
    upstream.on("error", () => {});
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  const proxy = {
    target,
    url: `http://127.0.0.1:${addr.port}`,
    pause() {
      paused = true;
      pauses += 1;
    },
    /**
     * Lets bytes through again. `cut`: the connections that were open when the link went down are reset instead
     * (what they held is lost, as when a long outage kills them); those opened meanwhile go on.
     */
    resume({ cut = false } = {}) {
      paused = false;
      for (const flow of [...flows]) {
        if (cut && flow.pausedAt !== pauses) {
          flow.held.length = 0;
          flows.delete(flow);
          flow.client.resetAndDestroy();
          flow.upstream.resetAndDestroy();
          continue;
        }
        for (const f of flow.held.splice(0)) f();
      }
    },
    async close() {
      for (const flow of flows) {
        flow.client.destroy();
        flow.upstream.destroy();
      }
      await new Promise((resolve) => server.close(resolve));
    },
  };
  return proxy;
}
