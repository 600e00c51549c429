// Small helpers shared by the end-to-end tests.
let counter = 0;
const run = Date.now().toString(36).slice(-4);

/** A fresh account (unique username, email and phone) with a strong password. */
export function newAccount(prefix = "user") {
  counter += 1;
  const username = `${prefix}${run}${counter}`;
  return {
    username,
    email: `${username}@example.test`,
    phone: `+44 20 7946 ${String(1000 + counter * 37 + (Date.now() % 1000)).slice(-4)}`,
    display_name: `${prefix[0].toUpperCase()}${prefix.slice(1)} Tester ${counter}`,
    password: `velvet harbour lantern ${counter} quietly`,
  };
}

/** Resolves with the next `type` event of `client` that satisfies `pred` (rejects after `ms`). */
export function nextEvent(client, type, pred = () => true, ms = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${type} event within ${ms} ms`));
    }, ms);
    const off = client.on(type, (payload) => {
      if (!pred(payload)) return;
      clearTimeout(timer);
      off();
      resolve(payload);
    });
  });
}

/** Collects every `type` event of `client` into an array. */
export function collect(client, type) {
  const items = [];
  client.on(type, (payload) => items.push(payload));
  return items;
}

/** Polls `cond` until it is truthy (rejects after `ms`). */
export async function until(cond, ms = 10_000, what = "condition") {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
