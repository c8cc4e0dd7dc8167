#!/usr/bin/env bash
# Builds tund and runs the whole test suite: Swift unit and kernel tests, then the end-to-end tests
# against the release binaries users run. Everything that touches the network runs inside a network namespace made for
# this run (unshare --net) that disappears with it. Installs missing Debian and Python packages first.
#
# As root (CI): every privileged test runs; none may skip. Not root: unit tests run, and the privileged
# ones skip saying why -- unless CI=true, where that is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
# What the tests run (every program in scripts/test-programs.txt comes from one of these) and what
# pytest imports; require_programs checks the list against what this line asked for.
ensure_debian_packages "${RUNTIME_PACKAGES[@]}" iproute2 iputils-ping iperf3 tshark prometheus jq curl openssl util-linux mount coreutils procps dash python3 python3-pip python3-yaml python3-pytest python3-jsonschema containernetworking-plugins wireguard-go wireguard-tools
require_programs scripts/test-programs.txt

python3 - <<'PY' 2>/dev/null || python3 -m pip install -q --disable-pip-version-check --break-system-packages openapi-spec-validator pyyaml jsonschema pytest 2>/dev/null || python3 -m pip install -q --disable-pip-version-check openapi-spec-validator pyyaml jsonschema pytest
import openapi_spec_validator, yaml, jsonschema, pytest
PY

# Unit and kernel tests run in a debug build under AddressSanitizer (a pointer used outside its
# withUnsafe... scope, an overflow: caught where it happens). The end-to-end tests drive the release
# binaries that scripts/run.sh ships, since the optimizer can change what the code does (undefined
# behaviour showed only there). Leak checking is off: XCTest's own runner leaks a few objects at exit.
UNIT=(--sanitize=address --build-path .build-asan)
swift build --build-tests "${UNIT[@]}"
swift build -c release
export TUND_BIN="$(swift build -c release --show-bin-path)/tund"
export TUND_CNI_BIN="$(swift build -c release --show-bin-path)/tund-cni"
export ASAN_OPTIONS=detect_leaks=0

# The machine's own namespace, so the tests can refuse to run in it (/proc/1 may be unreadable here).
TUND_HOST_NETNS="$(stat -L -c %i /proc/self/ns/net)"
export TUND_HOST_NETNS

if [ "$(id -u)" -eq 0 ]; then
    # One fresh namespace for the whole run: Swift tasks hop threads, so per-thread setns would be unsafe.
    # Bounded: a test phase that hangs fails after TUND_TEST_PHASE_SECONDS (conftest.py) with every
    # thread's stack; these bounds catch anything else, and SIGINT still makes pytest print its summary.
    unshare --net -- sh -c 'ip link set lo up && timeout -k 30 1200 swift test --skip-build "$@" &&
        PYTHONUNBUFFERED=1 timeout -s INT -k 60 3000 python3 -m pytest -q --durations=10 Tests/e2e' sh "${UNIT[@]}"
else
    [ "${CI:-}" = "true" ] && { echo "error: CI=true but not root: the privileged tests cannot run" >&2; exit 1; }
    echo "NOTE: not root -- kernel and end-to-end tests will skip (run as root to run them)" >&2
    swift test --skip-build "${UNIT[@]}"
    python3 -m pytest -q Tests/e2e
fi
