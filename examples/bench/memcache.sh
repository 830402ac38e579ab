#!/usr/bin/env bash
# Compares our memcache-server (polling, smol and uring backends) with Debian's memcached, in one run:
# the same load generator (memcaslap: 2 threads, 64 connections, 90 % get / 10 % set) drives
# each server in turn for ROUND_SECONDS, ROUNDS times; then each server holds IDLE idle
# connections. Prints TPS, the ratio to memcached, server CPU per request (from
# /proc/<pid>/stat) and RSS per idle connection.
#
# Needs: memcached and memcaslap (apt-get install memcached libmemcached-tools), python3.
# Usage: bash examples/bench/memcache.sh   (ROUNDS=5 ROUND_SECONDS=10 IDLE=9000 by default)
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS="${ROUNDS:-5}"
ROUND_SECONDS="${ROUND_SECONDS:-10}"
IDLE="${IDLE:-9000}"
THREADS=2

command -v memcached >/dev/null || { echo "memcached is not installed (apt-get install memcached)"; exit 1; }
command -v memcaslap >/dev/null || { echo "memcaslap is not installed (apt-get install libmemcached-tools)"; exit 1; }
ulimit -n $((IDLE + 1000))

cargo build --release -q -p concurrence-examples --bin memcache-server
# Where cargo put it: CARGO_TARGET_DIR when set (it was ignored, and the script failed).
server="${CARGO_TARGET_DIR:-target}/release/memcache-server"
[ -x "$server" ] || { echo "memcache-server was not built at $server"; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_listening() { # port
  for _ in $(seq 1 200); do
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),1)" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nothing listens on port $1"; exit 1
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

declare -A PORT PID
PORT[memcached]=$(free_port)
memcached -u "$(id -un)" -l 127.0.0.1 -p "${PORT[memcached]}" -U 0 -t $THREADS -c $((IDLE + 500)) -m 64 &
PID[memcached]=$!
PORT[polling]=$(free_port)
RUST_LOG=warn $server --backend polling -l 127.0.0.1 -p "${PORT[polling]}" -t $THREADS -c $((IDLE + 500)) -m 64 &
PID[polling]=$!
PORT[smol]=$(free_port)
RUST_LOG=warn $server --backend smol -l 127.0.0.1 -p "${PORT[smol]}" -t $THREADS -c $((IDLE + 500)) -m 64 &
PID[smol]=$!
PORT[uring]=$(free_port)
RUST_LOG=warn $server --backend uring -l 127.0.0.1 -p "${PORT[uring]}" -t $THREADS -c $((IDLE + 500)) -m 64 &
PID[uring]=$!
trap 'kill ${PID[memcached]} ${PID[polling]} ${PID[smol]} ${PID[uring]} 2>/dev/null || true' EXIT
for name in memcached polling smol uring; do wait_listening "${PORT[$name]}"; done

names=(memcached polling smol uring)
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# One load, ROUNDS rounds per server, servers alternating: prints each round, then the table of
# medians. $1 names the load, the rest are memcaslap's extra arguments.
load() {
  local label=$1; shift
  declare -A TPS CPU
  for round in $(seq 1 "$ROUNDS"); do
    for name in "${names[@]}"; do
      before=$(cpu_ticks "${PID[$name]}")
      out=$(memcaslap -s "127.0.0.1:${PORT[$name]}" -T $THREADS -c 64 -t "${ROUND_SECONDS}s" "$@" 2>&1)
      after=$(cpu_ticks "${PID[$name]}")
      ops=$(sed -n 's/.*Ops: \([0-9]*\) TPS: \([0-9]*\).*/\1/p' <<<"$out" | tail -n 1)
      tps=$(sed -n 's/.*Ops: \([0-9]*\) TPS: \([0-9]*\).*/\2/p' <<<"$out" | tail -n 1)
      # Clock ticks are 1/100 s: microseconds of server CPU per request.
      cpu=$(python3 -c "print(f'{($after - $before) * 10000 / max($ops, 1):.2f}')")
      TPS[$name]+="$tps "
      CPU[$name]+="$cpu "
      printf '%s round %s %-9s TPS %7s  server CPU %s us/request\n' "$label" "$round" "$name" "$tps" "$cpu"
    done
  done
  echo
  echo "$label:"
  echo
  echo "| server | TPS (median of $ROUNDS x ${ROUND_SECONDS}s) | ratio to memcached | server CPU per request | ratio to memcached |"
  echo "|---|---|---|---|---|"
  base=$(median "${TPS[memcached]}")
  base_cpu=$(median "${CPU[memcached]}")
  for name in "${names[@]}"; do
    tps=$(median "${TPS[$name]}")
    cpu=$(median "${CPU[$name]}")
    ratio=$(python3 -c "print(f'{$tps / $base:.2f}')")
    cpu_ratio=$(python3 -c "print(f'{$cpu / $base_cpu:.2f}')")
    echo "| $name | $tps | ${ratio}x | $cpu us | ${cpu_ratio}x |"
  done
  echo
}

# memcaslap's default mix: 90 % get, 10 % set, values of 1 to 1,024 bytes.
load "get/set 9:1"
# Multi-gets of 100 keys (memcaslap -d 100): one request holds a hundred keys.
load "multi-get of 100 keys" --division=100

# Idle connections: open IDLE connections that never send a byte, and read each server's RSS.
echo
echo "| server | RSS before | RSS with $IDLE idle connections | per idle connection |"
echo "|---|---|---|---|"
for name in "${names[@]}"; do
  before=$(rss_kib "${PID[$name]}")
  python3 - "${PORT[$name]}" "$IDLE" "${PID[$name]}" <<'PY'
import socket, sys, time
port, count, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
# Every connection accepted: one request on the last one is answered after the others were.
conns[-1].sendall(b"version\r\n")
conns[-1].recv(100)
time.sleep(1)
rss = [l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")][0].split()[1]
open("/tmp/memcache-bench-rss", "w").write(rss)
for c in conns:
    c.close()
PY
  during=$(cat /tmp/memcache-bench-rss)
  per=$(python3 -c "print(f'{($during - $before) / $IDLE:.2f}')")
  echo "| $name | $before KiB | $during KiB | $per KiB |"
  sleep 1
done
