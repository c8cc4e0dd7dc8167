# Sourced by scripts/run.sh and scripts/test.sh: installs what a fresh Debian machine lacks.
# Idempotent and quiet when everything is present.
set -euo pipefail

# The Swift toolchain: on PATH, or at /opt/swift (where this project's machines keep it).
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH=/opt/swift/usr/bin:$PATH
fi
command -v swift >/dev/null 2>&1 || {
    echo "error: no Swift toolchain found; install Swift 6 (https://www.swift.org/install/linux/) and put it on PATH" >&2
    exit 1
}

# Every package ensure_debian_packages was asked for in this run: the install list require_programs checks.
ENSURED_PACKAGES=()

# ensure_debian_packages PKG...: apt-get installs the ones dpkg does not know as installed.
ensure_debian_packages() {
    local missing=()
    local package
    ENSURED_PACKAGES+=("$@")
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing Debian packages: ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# require_programs LIST: stops, naming the program, when a program in LIST ("program package" lines)
# comes from a package that ensure_debian_packages was not asked for (the install list has drifted from
# what the tests run), or is not on PATH. Runs before any test, so a missing tool is named up front, not by a test
# that dies of it half an hour later.
require_programs() {
    local list="$1"
    local program package
    while read -r program package _; do
        case "$program" in ''|'#'*) continue ;; esac
        if [[ " ${ENSURED_PACKAGES[*]} " != *" $package "* ]]; then
            echo "error: the tests run $program, but its Debian package $package is not in the install list of scripts/test.sh" >&2
            exit 1
        fi
        if ! command -v "$program" >/dev/null 2>&1; then
            echo "error: the tests run $program, which is not on PATH (Debian package $package)" >&2
            exit 1
        fi
    done <"$list"
}

# What the benchmarks under Benchmarks/ run besides tund (workers.sh: baselines, load generators, peers;
# request-rate.sh: wrk).
BENCHMARK_PACKAGES=(iproute2 iputils-ping jq curl python3 coreutils util-linux gcc libc6-dev iperf3 socat openvpn wrk)

# What building and running tund needs.
RUNTIME_PACKAGES=(libmicrohttpd-dev libsqlite3-dev libssl-dev pkg-config iproute2 curl)
