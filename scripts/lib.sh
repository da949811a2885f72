# Shared by the comparison scripts (`compare-peers.sh`, `compare-rules.sh`); sourced, not run.
#
# Makes a temporary directory `WORK`, removed at exit together with every process whose pid the
# script adds to `PIDS`, and defines `wait_http` and `cpu_ticks`.

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# Waits until http://127.0.0.1:$1$2 answers, for at most $3 tenths of a second (default 300).
wait_http() {
    for _ in $(seq "${3:-300}"); do
        if python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" \
            "http://127.0.0.1:$1$2" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing answers on 127.0.0.1:$1$2" >&2
    return 1
}

# The CPU time process $1 has used so far, in clock ticks (user + system).
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}
