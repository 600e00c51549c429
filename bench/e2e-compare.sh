#!/usr/bin/env bash
# The relay of encrypted content beside plain text (issue 16's target: the
# server does the same work whatever the content, within 10%), judged by
# the median of alternating runs, both by instructions per relayed message
# (bench/profile.sh, TARGET=chatd and TARGET=chatd-e2e) and by messages per
# server CPU-second (bench all --only relay, the two targets in one run,
# their order alternating).
#
#   bench/e2e-compare.sh        # 5 runs of each
#   bench/e2e-compare.sh 7      # 7 runs of each
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

instr() {
  TARGET="$1" bench/profile.sh 1 2>&1 |
    sed -nE 's/.*messages stored: ([0-9]+) instructions per relayed message.*/\1/p'
}

cargo build -q --release -p chatd -p bench
ulimit -n "$(ulimit -Hn)"
plain_i=() e2e_i=() plain_c=() e2e_c=()
for i in $(seq 1 "$runs"); do
  if [ $((i % 2)) -eq 1 ]; then order="chatd,chatd-e2e"; else order="chatd-e2e,chatd"; fi
  p="$(instr chatd)"
  e="$(instr chatd-e2e)"
  out="$(taskset -c 1 target/release/bench all --only relay --targets "$order" --secs 6)"
  pc="$(sed -nE 's/^  chatd +pairs=.*\(([0-9]+) per server CPU-second\).*/\1/p' <<<"$out")"
  ec="$(sed -nE 's/^  chatd-e2e +pairs=.*\(([0-9]+) per server CPU-second\).*/\1/p' <<<"$out")"
  echo "run $i ($order): instructions per message plain $p, encrypted $e; msg per server CPU-second plain $pc, encrypted $ec"
  plain_i+=("$p") e2e_i+=("$e") plain_c+=("$pc") e2e_c+=("$ec")
done
mp="$(printf '%s\n' "${plain_i[@]}" | median)"
me="$(printf '%s\n' "${e2e_i[@]}" | median)"
mpc="$(printf '%s\n' "${plain_c[@]}" | median)"
mec="$(printf '%s\n' "${e2e_c[@]}" | median)"
echo "== medians of $runs: instructions per relayed message plain $mp, encrypted $me (encrypted/plain $(ratio "$me" "$mp"), target <= 1.10)"
echo "== medians of $runs: messages per server CPU-second plain $mpc, encrypted $mec (encrypted/plain $(ratio "$mec" "$mpc"), target >= 0.90)"
