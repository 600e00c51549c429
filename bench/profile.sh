#!/usr/bin/env bash
# Instructions per relayed message, by function: chatd (release code with
# line tables) under valgrind's callgrind while the relay scenario drives it.
# Instruction counts do not depend on what else the machine is doing, so
# two builds can be compared on a busy machine; user space only (the
# kernel's share, about a third of chatd's CPU in the relay, is not counted).
#
#   bench/profile.sh            # prints the totals and the top functions
#   bench/profile.sh 60         # more lines of the inclusive listing
#   KEEP=/tmp/cg bench/profile.sh   # also keeps the window's dump as /tmp/cg
#   TARGET=chatd-e2e bench/profile.sh   # the relay of encrypted content
#   TARGET=chatd-sqlite bench/profile.sh  # on the SQLite store (user space:
#                                         # the writer's fsyncs are the kernel's)
#   TARGET=chatd-2nodes bench/profile.sh  # across two nodes and Redis: both
#                                         # nodes' instructions (not Redis's)
#
# Installs valgrind (Debian) if missing. The profile covers one 4-second
# window in the middle of the measured run (callgrind's counters are dumped
# every 4 s; the benchmark kills the server, so the last window is lost).
set -euo pipefail
cd "$(dirname "$0")/.."
lines="${1:-40}"

command -v valgrind >/dev/null 2>&1 || {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
}
command -v taskset >/dev/null 2>&1 || {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq util-linux >/dev/null
}

echo "== building chatd (profiling profile) and bench (release)"
cargo build -q --profile profiling -p chatd
cargo build -q --release -p bench

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
cat >"$out/chatd" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file=$out/cg.out.%p "$PWD/target/profiling/chatd" "\$@"
EOF
chmod +x "$out/chatd"

ulimit -n "$(ulimit -Hn)"
(
  for _ in $(seq 1 60); do
    sleep 4
    for pid in $(pgrep -f "valgrind.*$out/cg.out" || true); do
      callgrind_control -d "$pid" >/dev/null 2>&1 || true
    done
  done
) &
dumper=$!
echo "== relay under callgrind (server CPU 0, generator CPU 1)"
taskset -c 1 target/release/bench all --chatd "$out/chatd" --only relay --targets "${TARGET:-chatd}" --secs 8 |
  grep -E '^\s+chatd' || true
kill "$dumper" 2>/dev/null || true

# Each node's second dump is a window of the steady relay (the first holds
# start-up); with two nodes, their windows are summed (each node stores the
# messages its users send).
total=0
msgs=0
dump=""
for d in "$out"/cg.out.*.2; do
  [ -s "$d" ] || continue
  dump="$d"
  tree="$(callgrind_annotate --tree=caller --inclusive=yes "$d" 2>/dev/null)"
  t="$(grep -m1 'PROGRAM TOTALS' <<<"$tree" | awk '{gsub(",","",$1); print $1}')"
  m="$(grep -E '< .*(Memory|Sqlite)MessageStore as .*MessageStore>::append \(' <<<"$tree" | head -1 |
    sed -E 's/.*\(([0-9,]+)x\).*/\1/; s/,//g')"
  total=$((total + t))
  msgs=$((msgs + ${m:-0}))
done
[ -n "$dump" ] && [ "$msgs" -gt 0 ] || { echo "no callgrind dump of the relay window" >&2; exit 1; }
[ -n "${KEEP:-}" ] && cp "$dump" "$KEEP"
echo "== window: $total instructions, $msgs messages stored: $((total / msgs)) instructions per relayed message"
echo "== inclusive cost by function (percent of the window$( [ "$(ls "$out"/cg.out.*.2 | wc -l)" -gt 1 ] && echo ", one node"))"
callgrind_annotate --inclusive=yes "$dump" 2>/dev/null |
  sed -E 's#/rustc/[0-9a-f]+/library/##; s#/root/.cargo/registry/src/index.crates.io-[0-9a-f]+/##' |
  grep -E '^ *[0-9,]+ \(' | grep -vE 'poll_fn|Pin<P>|clone.S|pthread_create|tokio-1\.|thread_start|call_once|task_tracker|Instrumented' |
  head -n "$lines" | cut -c1-160 || true  # head closes the pipe early: not a failure
