#!/usr/bin/env bash
# Fuzzes a running tund from api/openapi.yaml with schemathesis: every operation, positive and negative
# cases, every check (no 5xx, statuses, content types, headers and bodies as the spec says). Bounded in
# examples per operation and in time. tund runs inside a private network namespace made for the run
# (unshare --net), since the fuzzer creates real devices, addresses and routes.
#
# The streaming endpoints (GET /events, GET /devices/{name}/capture) are left out: they answer with a
# body that ends only when the client leaves, which a request-response fuzzer reads as a timeout.
#   usage: scripts/fuzz.sh            knobs: MAX_EXAMPLES (50), MAX_TIME (300 s), SEED (1)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_debian_packages "${RUNTIME_PACKAGES[@]}" python3 python3-pip util-linux
command -v st >/dev/null 2>&1 || python3 -m pip install -q --disable-pip-version-check --break-system-packages schemathesis 2>/dev/null \
    || python3 -m pip install -q --disable-pip-version-check schemathesis
swift build --product tund
TUND_BIN="$(swift build --show-bin-path)/tund"
WORK="$(mktemp -d /tmp/tund-fuzz-XXXXXX)"
export TUND_BIN WORK MAX_EXAMPLES="${MAX_EXAMPLES:-50}" MAX_TIME="${MAX_TIME:-300}" SEED="${SEED:-1}"
exec unshare --net -- bash -c '
    set -u
    ip link set lo up
    "$TUND_BIN" --listen 127.0.0.1:18090 --database "$WORK/tund.db" --log-level warning 2>"$WORK/tund.log" &
    tund=$!
    for _ in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:18090/readyz && break; sleep 0.1; done
    timeout $((MAX_TIME + 120)) st --config-file api/schemathesis.toml run api/openapi.yaml --url http://127.0.0.1:18090 --checks all \
        --max-examples "$MAX_EXAMPLES" --max-time "$MAX_TIME" --seed "$SEED" --workers 1 --request-timeout 20 \
        --exclude-path-regex "^/events$|/capture$" --report junit --report-dir "$WORK/report"
    status=$?
    kill -TERM $tund; wait $tund
    echo "tund exit status after the run: $? (0: it was still serving); log and report in $WORK"
    grep -c "level=critical\|level=error" "$WORK/tund.log" | sed "s/^/tund log lines at error level or above: /"
    exit $status
'
