#!/bin/bash
# resilink against the ORIGINAL micropython-iot code, both ways round:
#   A. `resilink server`  <->  original micropython-iot client (mpiot_client.py)
#   B. original server (mpiot_server.py)  <->  `resilink client`
# N lines each way must arrive exactly once and in order.
# Usage: interop_test.sh PATH_TO_resilink
# Exit: 0 pass, 1 fail, 77 micropython-iot source not found (see find_mpiot.sh).
set -u
here=$(cd "$(dirname "$0")" && pwd)
resilink=${1:?usage: interop_test.sh PATH_TO_resilink}
N=${MPIOT_N:-40}
TO=${MPIOT_TIMEOUT:-1000}
LIMIT=${MPIOT_LIMIT:-90}

fail() { echo "interop: FAIL: $*" >&2; exit 1; }

src=$("$here/find_mpiot.sh"); rc=$?
if [ $rc -eq 77 ]; then
  echo "interop: SKIP: micropython-iot source not found; set MICROPYTHON_IOT_DIR" >&2
  exit 77
fi
[ $rc -eq 0 ] || fail "find_mpiot.sh exited $rc"
export MICROPYTHON_IOT_DIR=$src

work=$(mktemp -d "${TMPDIR:-/tmp}/resilink-interop.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  wait 2>/dev/null
  [ "${MPIOT_KEEP:-0}" = 1 ] && echo "interop: logs in $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

# Keeps a stdin open until FILE has at least N lines, so a bridge does not
# reach EOF before it has received everything.
feed_until() {  # feed_until INPUT FILE N
  cat "$1"
  for _ in $(seq 1 $((LIMIT * 5))); do
    [ "$(wc -l < "$2" 2>/dev/null || echo 0)" -ge "$3" ] && break
    sleep 0.2
  done
  # Stay connected a moment so the peer sees our last ACK before we leave:
  # micropython-iot's server polls for ACKs every 50 ms and gives up a write
  # whose link closed in that interval, even when the ACK had arrived.
  sleep 1
}

for i in $(seq 1 "$N"); do printf 'from client %03d {"n": %d} caf\xc3\xa9\n' "$i" "$i"; done > "$work/c2s"
for i in $(seq 1 "$N"); do printf 'from server %03d [%d]\n' "$i" "$i"; done > "$work/s2c"

check() {  # check NAME EXPECTED GOT
  cmp -s "$2" "$3" && return 0
  echo "interop: $1 differs (expected vs got):" >&2
  diff "$2" "$3" | head -20 >&2
  return 1
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ---- A: resilink server, original client
id=mpclient
sed "s/^/$id\t/" "$work/s2c" > "$work/a_server_in"
sed "s/^/$id\t/" "$work/c2s" > "$work/a_expect_server"
feed_until "$work/a_server_in" "$work/a_server_out" "$N" |
  timeout -k 5 "$LIMIT" "$resilink" server --address 127.0.0.1 --port 0 --port-file "$work/a_port" \
    --timeout-ms "$TO" --expect "$id" > "$work/a_server_out" 2> "$work/a_server_err" &
pids+=($!)
for _ in $(seq 1 100); do [ -s "$work/a_port" ] && break; sleep 0.05; done
[ -s "$work/a_port" ] || { cat "$work/a_server_err" >&2; fail "A: resilink server did not start"; }
timeout -k 5 "$LIMIT" python3 "$here/mpiot_client.py" --recv "$N" "$id" 127.0.0.1 "$(cat "$work/a_port")" "$TO" \
  < "$work/c2s" > "$work/a_client_out" 2> "$work/a_client_err"
a_rc=$?
for _ in $(seq 1 50); do [ "$(wc -l < "$work/a_server_out")" -ge "$N" ] && break; sleep 0.1; done
ok=1
[ $a_rc -eq 0 ] || { echo "interop: A: original client exited $a_rc" >&2; tail -20 "$work/a_client_err" >&2; ok=0; }
check "A: original client -> resilink server" "$work/a_expect_server" "$work/a_server_out" || ok=0
check "A: resilink server -> original client" "$work/s2c" "$work/a_client_out" || ok=0
[ $ok -eq 1 ] || { tail -20 "$work/a_server_err" >&2; fail "A failed"; }
echo "interop: A passed: resilink server <-> original micropython-iot client, $N lines each way" >&2

# ---- B: original server, resilink client
id=rlclient
port=$(free_port)
sed "s/^/$id\t/" "$work/s2c" > "$work/b_server_in"
sed "s/^/$id\t/" "$work/c2s" > "$work/b_expect_server"
timeout -k 5 "$LIMIT" python3 "$here/mpiot_server.py" --port "$port" --timeout "$TO" \
  --exit-on-eof --recv "$N" --ready-file "$work/b_ready" "$id" \
  < "$work/b_server_in" > "$work/b_server_out" 2> "$work/b_server_err" &
server_pid=$!
pids+=($server_pid)
for _ in $(seq 1 100); do [ -e "$work/b_ready" ] && break; sleep 0.1; done
[ -e "$work/b_ready" ] || { cat "$work/b_server_err" >&2; fail "B: original server did not start"; }
feed_until "$work/c2s" "$work/b_client_out" "$N" |
  timeout -k 5 "$LIMIT" "$resilink" client --id "$id" --server 127.0.0.1 --port "$port" --timeout-ms "$TO" \
    > "$work/b_client_out" 2> "$work/b_client_err"
b_rc=$?
wait "$server_pid"; s_rc=$?
ok=1
[ $b_rc -eq 0 ] || { echo "interop: B: resilink client exited $b_rc" >&2; tail -20 "$work/b_client_err" >&2; ok=0; }
[ $s_rc -eq 0 ] || { echo "interop: B: original server exited $s_rc" >&2; tail -20 "$work/b_server_err" >&2; ok=0; }
check "B: resilink client -> original server" "$work/b_expect_server" "$work/b_server_out" || ok=0
check "B: original server -> resilink client" "$work/s2c" "$work/b_client_out" || ok=0
[ $ok -eq 1 ] || fail "B failed"
echo "interop: B passed: original micropython-iot server <-> resilink client, $N lines each way" >&2
echo "interop: 2 passed, 0 failed"
