#!/usr/bin/env bash
# Builds vodozemac-wasm into chatd/web/vodozemac/ (committed: chatd embeds
# it at compile time, the TypeScript binding loads it from there through the
# link bindings/typescript/vodozemac):
#   vodozemac_wasm_bg.wasm  the module (wasm32-unknown-unknown, profile wasm-release)
#   vodozemac_wasm.js       wasm-bindgen's glue, `--target web` (browsers; Node with initSync)
#   vodozemac_wasm.d.ts     its types
#
#   build.sh           build and write the files
#   build.sh --check   build in a temporary folder and fail if the committed files differ
#
# Installs what it lacks, idempotently: the rustup target, and wasm-bindgen-cli
# at exactly the version of the wasm-bindgen crate in Cargo.lock, from crates.io,
# into .test-deps/wasm-bindgen-cli-<version>/ (git-ignored; kept between runs;
# WASM_BINDGEN_CLI_ROOT overrides the folder). Never wasm-pack: it downloads binaries.
#
# Reproducible: the paths of the checkout, the cargo home and the target folder
# are remapped, so a clone in another folder builds the same bytes with the
# same rustc (the one recorded in built-with.txt).
set -euo pipefail
crate=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$crate/../.." && pwd)
committed=$repo/chatd/web/vodozemac
check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

# The CLI must be the crate's exact version: they share an ABI.
version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' "$repo/Cargo.lock")
if [ -z "$version" ]; then
  echo "no wasm-bindgen in Cargo.lock" >&2
  exit 1
fi
if ! grep -q "^wasm-bindgen = \"=$version\"" "$crate/Cargo.toml"; then
  echo "bindings/vodozemac-wasm/Cargo.toml must pin wasm-bindgen = \"=$version\" (the version in Cargo.lock)" >&2
  exit 1
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  echo "== vodozemac-wasm: rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

cli_root=${WASM_BINDGEN_CLI_ROOT:-$repo/.test-deps/wasm-bindgen-cli-$version}
cli=$cli_root/bin/wasm-bindgen
if [ "$("$cli" --version 2>/dev/null || true)" != "wasm-bindgen $version" ]; then
  echo "== vodozemac-wasm: installing wasm-bindgen-cli $version into $cli_root"
  # --locked first (the CLI's own lock file); a registry mirror that lacks one
  # of those exact versions falls back to the newest compatible ones.
  cargo install --quiet --locked --version "=$version" --root "$cli_root" wasm-bindgen-cli \
    || cargo install --quiet --version "=$version" --root "$cli_root" wasm-bindgen-cli
fi

target_dir=${CARGO_TARGET_DIR:-$repo/target}
cargo_home=${CARGO_HOME:-$HOME/.cargo}
# Only for the wasm target, so host builds of the workspace keep their flags
# and are not rebuilt. The last matching remap wins: the target folder may
# sit inside the checkout.
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="--remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$repo=/chatcore --remap-path-prefix=$target_dir=/target"
(cd "$repo" && nice cargo build --quiet --locked -p vodozemac-wasm --lib \
  --target wasm32-unknown-unknown --profile wasm-release)

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# Function names and the producers section only help debugging: about 50 KiB of gzip.
"$cli" --target web --remove-name-section --remove-producers-section --out-dir "$out" --out-name vodozemac_wasm \
  "$target_dir/wasm32-unknown-unknown/wasm-release/vodozemac_wasm.wasm"
# The raw exports' types: nothing imports them, chatd would only serve them.
rm -f "$out/vodozemac_wasm_bg.wasm.d.ts"

# The bytes depend on the compiler too: what built the committed files is
# recorded beside this script, so a failed check on another toolchain says so.
toolchain="$(rustc --version) / wasm-bindgen $version"
built_with=$crate/built-with.txt

if [ "$check" = 1 ]; then
  stale=0
  if [ "$(cat "$built_with" 2>/dev/null)" != "$toolchain" ]; then
    echo "note: the committed files were built with $(cat "$built_with" 2>/dev/null || echo '?'), this is $toolchain" >&2
  fi
  want=$(cd "$out" && ls | sort | tr '\n' ' ')
  have=$(cd "$committed" 2>/dev/null && ls | sort | tr '\n' ' ' || true)
  if [ "$want" != "$have" ]; then
    echo "chatd/web/vodozemac/ holds [ $have], the build makes [ $want]" >&2
    stale=1
  fi
  for f in $want; do
    if ! cmp -s "$out/$f" "$committed/$f"; then
      echo "chatd/web/vodozemac/$f differs from a fresh build" >&2
      stale=1
    fi
  done
  if [ "$stale" = 1 ]; then
    echo "run bindings/vodozemac-wasm/build.sh and commit chatd/web/vodozemac/" >&2
    exit 1
  fi
  echo "chatd/web/vodozemac/ is a fresh build (wasm-bindgen $version)"
else
  mkdir -p "$committed"
  rm -f "$committed"/*
  cp "$out"/* "$committed/"
  echo "$toolchain" > "$built_with"
  (cd "$committed" && sha256sum -- *)
fi
