#!/bin/bash
# Self-test of the interop harness: the ORIGINAL micropython-iot client
# (mpiot_client.py) talks to the ORIGINAL server (mpiot_server.py) over
# 127.0.0.1 and both directions must deliver N lines exactly once, in order.
#
# Environment (all optional):
#   MPIOT_PORT     TCP port (default: first free port from 18123)
#   MPIOT_N        lines per direction (default 50)
#   MPIOT_TIMEOUT  link timeout in ms (default 2000)
#   MPIOT_LIMIT    overall time limit in seconds (default 120)
#   MPIOT_KEEP=1   keep the work directory (logs) for inspection
#   MICROPYTHON_IOT_DIR / MICROPYTHON_IOT_REPO: see find_mpiot.sh
# Exit: 0 pass, 1 fail, 77 micropython-iot source not found.
set -u

here=$(cd "$(dirname "$0")" && pwd)
N=${MPIOT_N:-50}
TO=${MPIOT_TIMEOUT:-2000}
LIMIT=${MPIOT_LIMIT:-120}
ID=selftest1

fail() { echo "selftest: FAIL: $*" >&2; exit 1; }

src=$("$here/find_mpiot.sh")
rc=$?
if [ $rc -eq 77 ]; then
    echo "selftest: SKIP: micropython-iot source not found; set MICROPYTHON_IOT_DIR" >&2
    exit 77
elif [ $rc -ne 0 ]; then
    fail "find_mpiot.sh exited $rc"
fi
export MICROPYTHON_IOT_DIR=$src

if [ -n "${MPIOT_PORT:-}" ]; then
    PORT=$MPIOT_PORT
else
    PORT=$(python3 - <<'PY'
import socket
for port in list(range(18123, 18173)) + [0]:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    found = s.getsockname()[1]
    s.close()
    print(found)
    break
PY
)
fi
[ -n "$PORT" ] || fail "no free port found"

work=$(mktemp -d "${TMPDIR:-/tmp}/mpiot-selftest.XXXXXX")
srv_pid=""
cleanup() {
    if [ -n "$srv_pid" ] && kill -0 "$srv_pid" 2>/dev/null; then
        kill -TERM "$srv_pid" 2>/dev/null
        wait "$srv_pid" 2>/dev/null
    fi
    if [ "${MPIOT_KEEP:-0}" = 1 ]; then
        echo "selftest: logs kept in $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Test data: varied payloads incl. spaces, a TAB, punctuation and UTF-8.
for i in $(seq 1 "$N"); do
    printf 'c2s %03d: hello from client {"n": %d}\tcol2 h\xc3\xa9llo!\n' "$i" "$i"
done > "$work/c2s.txt"
for i in $(seq 1 "$N"); do
    printf '%s\ts2c %03d: greetings from server [%d] caf\xc3\xa9 ~$#\n' "$ID" "$i" "$i"
done > "$work/s2c.txt"
sed "s/^/$ID\t/" "$work/c2s.txt" > "$work/expect_srv.txt"
cut -f2- "$work/s2c.txt" > "$work/expect_cli.txt"

echo "selftest: source $src, port $PORT, timeout $TO ms, $N lines each way" >&2
start=$(date +%s)

timeout -k 5 "$LIMIT" python3 "$here/mpiot_server.py" --port "$PORT" \
    --timeout "$TO" --exit-on-eof --recv "$N" --ready-file "$work/ready" "$ID" \
    < "$work/s2c.txt" > "$work/srv.out" 2> "$work/srv.err" &
srv_pid=$!

for _ in $(seq 1 100); do
    [ -e "$work/ready" ] && break
    kill -0 "$srv_pid" 2>/dev/null || break
    sleep 0.1
done
if [ ! -e "$work/ready" ]; then
    cat "$work/srv.err" >&2
    fail "server did not start listening"
fi

timeout -k 5 "$LIMIT" python3 "$here/mpiot_client.py" --recv "$N" \
    "$ID" 127.0.0.1 "$PORT" "$TO" \
    < "$work/c2s.txt" > "$work/cli.out" 2> "$work/cli.err"
cli_rc=$?
wait "$srv_pid"
srv_rc=$?
srv_pid=""
elapsed=$(( $(date +%s) - start ))

ok=1
if [ $cli_rc -ne 0 ]; then
    echo "selftest: client exited $cli_rc; stderr:" >&2; cat "$work/cli.err" >&2; ok=0
fi
if [ $srv_rc -ne 0 ]; then
    echo "selftest: server exited $srv_rc; stderr:" >&2; cat "$work/srv.err" >&2; ok=0
fi
if ! cmp -s "$work/expect_srv.txt" "$work/srv.out"; then
    echo "selftest: client->server lines differ (expected vs got):" >&2
    diff "$work/expect_srv.txt" "$work/srv.out" | head -20 >&2; ok=0
fi
if ! cmp -s "$work/expect_cli.txt" "$work/cli.out"; then
    echo "selftest: server->client lines differ (expected vs got):" >&2
    diff "$work/expect_cli.txt" "$work/cli.out" | head -20 >&2; ok=0
fi
[ $ok -eq 1 ] || fail "see above (work dir $work; MPIOT_KEEP=1 keeps it)"
echo "selftest: PASS: $N lines each way, none lost/duplicated/reordered (${elapsed}s)" >&2
exit 0
