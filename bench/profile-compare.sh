#!/usr/bin/env bash
# Instructions per relayed message of this tree against another revision,
# judged by the median of alternating runs (the count moves with how the
# relay batches on the day, so one run each proves little).
#
#   bench/profile-compare.sh e02de05       # 5 runs each, alternating
#   bench/profile-compare.sh e02de05 7     # 7 runs each
#
# The other revision is checked out once into target/profile-base/<commit>
# with its own target directory, and measured with this tree's
# bench/profile.sh (the same method on both sides); each side drives its own
# chatd with its own bench client, so both speak their own protocol.
set -euo pipefail
cd "$(dirname "$0")/.."
rev="${1:?usage: bench/profile-compare.sh <base revision> [runs]}"
runs="${2:-5}"
base_commit="$(git rev-parse --verify "$rev^{commit}")"
# PROFILE_BASE_DIR: a checkout of the base revision to use (built in place).
base_dir="${PROFILE_BASE_DIR:-$PWD/target/profile-base/$base_commit}"

if [ ! -e "$base_dir/.git" ]; then
  mkdir -p "$(dirname "$base_dir")"
  git worktree add --detach "$base_dir" "$base_commit" >/dev/null
fi
[ "$(git -C "$base_dir" rev-parse HEAD)" = "$base_commit" ] || { echo "$base_dir is not at $base_commit" >&2; exit 1; }
cp bench/profile.sh "$base_dir/bench/profile.sh"

# One run: prints the instructions per relayed message of the tree in $1.
measure() {
  (cd "$1" && CARGO_TARGET_DIR="$1/target" bench/profile.sh 1 2>&1 || true) |
    sed -nE 's/.*messages stored: ([0-9]+) instructions per relayed message.*/\1/p'
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }

echo "== base $base_commit in $base_dir, head $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with local changes)')"
base_runs=()
head_runs=()
for i in $(seq 1 "$runs"); do
  b="$(measure "$base_dir")"
  h="$(measure "$PWD")"
  [ -n "$b" ] && [ -n "$h" ] || { echo "run $i: no count (see bench/profile.sh)" >&2; exit 1; }
  base_runs+=("$b")
  head_runs+=("$h")
  echo "run $i: base $b, head $h"
done
mb="$(printf '%s\n' "${base_runs[@]}" | median)"
mh="$(printf '%s\n' "${head_runs[@]}" | median)"
echo "== median instructions per relayed message: base $mb, head $mh ($(awk -v b="$mb" -v h="$mh" 'BEGIN {printf "%+.1f%%", (h - b) * 100 / b}'))"
