# Sourced by the benchmarks that run tund in one network namespace of their own (density.sh,
# self-loop-cpu.sh): run as root, the release build (or TUND_BIN), and a namespace with lo up whose
# processes are killed and which is deleted on exit, with a scratch directory.
#   usage: source Benchmarks/lib-namespace.sh NAME     sets TUND_BIN, NS (NAME-PID), WORK
(( EUID == 0 )) || { echo "run as root (creates a network namespace)" >&2; exit 1; }
if [ -z "${TUND_BIN:-}" ]; then
    swift build -c release --product tund >&2
    TUND_BIN="$(swift build -c release --show-bin-path)/tund"
fi
NS="$1-$$"
WORK="$(mktemp -d)"
cleanup_namespace() {
    ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup_namespace EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up
in_ns() { ip netns exec "$NS" "$@"; }
