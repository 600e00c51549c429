// Small helpers shared by the end-to-end tests.
// Several test files share one chatd, so each process draws its own run tag and phone block: a
// collision between two files is one in a million, never a matter of timing.
let counter = 0;
const run = Math.random().toString(36).slice(2, 6).padEnd(4, "0");
const phoneBlock = String(Math.floor(Math.random() * 1_000_000)).padStart(6, "0");

/** A fresh account (unique username, email and phone) with a strong password. */
export function newAccount(prefix = "user") {
  counter += 1;
  const username = `${prefix}${run}${counter}`;
  return {
    username,
    email: `${username}@example.test`,
    phone: `+44 7700 ${phoneBlock} ${String(counter).padStart(3, "0")}`,
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
