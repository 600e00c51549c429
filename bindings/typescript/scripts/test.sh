#!/usr/bin/env bash
# Tests of the TypeScript binding and of the web client, end to end:
#   Debian packages (chromium, an emoji font, coturn) -> chatd binary -> npm packages
#   -> committed vodozemac wasm is fresh -> tsc build -> unit tests (test
#   vectors, committed browser build is fresh, vodozemac in wasm)
#   -> binding against a real chatd -> web client in headless Chromium.
# Idempotent: installs only what is missing. Called by the repository's
# scripts/test; runs on its own too (as root on a fresh Debian for apt).
set -euo pipefail
pkg=$(cd "$(dirname "$0")/.." && pwd)
repo=$(cd "$pkg/../.." && pwd)
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

step() { printf '\n== typescript: %s\n' "$*"; }

step "Debian packages"
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
# Emoji in messages and screenshots; without it they render as boxes.
[ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || missing+=(fonts-noto-color-emoji)
# The wss:// tests make their certificates with the openssl CLI.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# The calls test (test/browser/calls.test.mjs) relays media through a private coturn.
command -v turnserver >/dev/null 2>&1 || missing+=(coturn)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install -y ${missing[*]})" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "chromium: $(/usr/bin/chromium --version 2>/dev/null | head -1)"

step "chatd binary, and the Rust e2e peer of the interop test"
(cd "$repo" && cargo build -q -p chatd --locked && cargo build -q -p chatcore-client --example e2e_peer --locked)

step "npm packages"
cd "$pkg"
stamp=node_modules/.chatcore-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  npm ci --no-audit --no-fund
  echo "$want" > "$stamp"
else
  echo "node_modules is up to date with package-lock.json"
fi

step "vodozemac wasm: chatd/web/vodozemac/ is a fresh build"
# Installs the rustup target and wasm-bindgen-cli (cached in .test-deps/) when
# missing, rebuilds the wasm and compares it with the committed bytes.
bash "$repo/bindings/vodozemac-wasm/build.sh" --check

step "tsc build (dist/)"
# Only dist/: chatd/web/chatcore/ is committed, and the unit tests compare it with a fresh build.
node_modules/.bin/tsc -p tsconfig.json

step "tsc type check of the web client (chatd/web, // @ts-check + JSDoc)"
node_modules/.bin/tsc -p tsconfig.webclient.json

step "unit tests: vectors in both codecs, delivery tracking, committed browser build, vodozemac"
node --test test/unit/

step "binding against a real chatd"
ws_flag=()
node -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)' || ws_flag=(--experimental-websocket)
node "${ws_flag[@]}" --test test/chatd/

step "web client in headless Chromium against a real chatd"
node --test test/browser/
