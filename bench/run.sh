#!/usr/bin/env bash
# The whole benchmark in one command: chatd against the ceiling (a raw
# tokio-tungstenite relay) and the peer (Socket.IO 4 + MessagePack parser),
# servers pinned to CPU 0, the load generator (all clients, one process) to CPU 1.
#
#   bench/run.sh                      # every scenario (about 11 minutes)
#   bench/run.sh --only relay,rate    # a subset; any `bench all` option works
#   bench/run.sh --only fanout --fanout-groups 10x100   # one fan-out shape
#   bench/run.sh --only relay,rate --targets chatd,ejabberd --rate 3000   # against ejabberd
#   bench/run.sh --only relay,rate --targets chatd-sqlite,ejabberd-sqlite --rate 400   # durable
#   bench/run.sh --only fanout --targets chatd,ejabberd [--fanout-rate 3000]   # groups: MUC rooms
#   bench/run.sh --only idle --targets chatd,ejabberd --idle-n 10000   # idle connections
#   bench/run.sh --only relay,rate --targets chatd,chatd-2nodes,socketio,socketio-2nodes   # across two nodes on Redis
#   bench/run.sh --only cluster-idle --cluster-nodes 6 --cluster-conns 100000   # 100k idle across nodes on Redis
#
# Scenarios: relay (flat out), rate (fixed rate), idle, big (chatd idle at
# scale), churn, login (argon2 storm during the fixed-rate relay), fanout
# (group fan-out: chatd groups against Socket.IO rooms, 10 groups of 100
# and one of 1,000 by default). The relay's targets chatd-2nodes and
# socketio-2nodes run two nodes and a private Redis, all on CPU 0, with
# every pair split across the nodes (issue 21). Not default: media,
# cluster-idle (idle connections across several chatd nodes sharing a
# private Redis, the clients in several generator processes:
# docs/BENCHMARKS.md, issue 21).
#
# Installs what it lacks, idempotently: Debian's util-linux (taskset) and
# nodejs/npm, redis-server, and the Socket.IO packages (with its Redis
# adapter) into bench/socketio/node_modules.
# Raises the file-descriptor limits for 100k connections (root only).
# Loopback only: every client connects to 127.0.0.1, from 127.0.0.10 and up.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v taskset >/dev/null 2>&1 || need_apt+=(util-linux)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
# The multi-node scenarios share a private Redis (issue 21).
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
# The ejabberd peer (not a default target): `--targets chatd,ejabberd`.
case " $* " in
  *ejabberd*) command -v ejabberdctl >/dev/null 2>&1 || need_apt+=(ejabberd) ;;
esac
# ejabberd's SQL store on SQLite (target ejabberd-sqlite).
case " $* " in
  *ejabberd-sqlite*) dpkg -s erlang-p1-sqlite3 >/dev/null 2>&1 || need_apt+=(erlang-p1-sqlite3) ;;
esac
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if [ ! -d bench/socketio/node_modules/socket.io ] || [ ! -d bench/socketio/node_modules/socket.io-msgpack-parser ] \
   || [ ! -d bench/socketio/node_modules/@socket.io/redis-adapter ] || [ ! -d bench/socketio/node_modules/redis ] \
   ; then
  echo "== installing the Socket.IO peer (npm, into bench/socketio)"
  npm install --prefix bench/socketio --no-audit --no-fund --loglevel=error
fi

# 100k connections: ~200k sockets on this machine (both ends), split
# between the server and the generator.
want=1048576
if [ "$(cat /proc/sys/fs/nr_open)" -lt "$want" ]; then
  sysctl -q -w fs.nr_open="$want" || true
fi
if [ "$(cat /proc/sys/fs/file-max)" -lt $((want * 2)) ]; then
  sysctl -q -w fs.file-max=$((want * 2)) || true
fi
ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
# Accept bursts of connects without SYN drops.
sysctl -q -w net.core.somaxconn=65535 2>/dev/null || true
sysctl -q -w net.ipv4.tcp_max_syn_backlog=65535 2>/dev/null || true

echo "== building chatd and bench (release)"
cargo build -q --release -p chatd -p bench

echo "== running (ulimit -n $(ulimit -n))"
exec taskset -c 1 target/release/bench all --chatd target/release/chatd "$@"
