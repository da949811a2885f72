#!/usr/bin/env bash
# Runs monitor-host and, where installed, its peers on the same work in one run, one after the
# other, and prints each one's CPU (percent of one core), peak RSS and the ratio host/peer.
#
#   scripts/compare-peers.sh [SERIES...]      # default: 10000
#   scripts/compare-peers.sh small            # the small configuration only
#
# For each SERIES count: a generated Prometheus text target with that many series is served on
# loopback, then monitor-host (the bundled `prometheus` collector) and Debian's `prometheus` (when
# on PATH) each scrape it every second. Then the small configuration: monitor-host with only the
# `system` and `process` collectors against `collectd` (package `collectd-core`, when installed)
# with its `cpu`, `load`, `memory`, `df`, `interface` and `processes` plugins, every second.
#
# Each tool runs WARMUP seconds (default 10: the first scrapes create the series), then is measured
# over DURATION seconds (default 30) from /proc/<pid>/stat (user + system time) and
# /proc/<pid>/status (VmHWM). Nobody reads the tools' HTTP endpoints meanwhile.
#
# Environment: DURATION, WARMUP, REPEAT (default 1: how many times the small configuration's pair
# runs, host then peer, to show the noise of figures this small), BIN (default target/release: build first with
# `cargo build --release -p monitor-host -p monitor-plugin-prometheus -p monitor-plugin-system
# -p monitor-plugin-process`), PORT_BASE (default 19460). Everything listens on 127.0.0.1 only and
# lives in a temporary directory removed at the end.
set -euo pipefail

DURATION=${DURATION:-30}
WARMUP=${WARMUP:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/target/release}
PORT_BASE=${PORT_BASE:-19460}
TARGET_PORT=$PORT_BASE
HOST_PORT=$((PORT_BASE + 1))
PROM_PORT=$((PORT_BASE + 2))
REPEAT=${REPEAT:-1}
SERIES=("$@")
[ ${#SERIES[@]} -eq 0 ] && SERIES=(10000)
[ "${SERIES[*]}" = small ] && SERIES=()

for f in monitor-host libmonitor_plugin_prometheus.so libmonitor_plugin_system.so libmonitor_plugin_process.so; do
    if [ ! -e "$BIN/$f" ]; then
        echo "missing $BIN/$f: build with cargo build --release -p monitor-host -p monitor-plugin-prometheus -p monitor-plugin-system -p monitor-plugin-process" >&2
        exit 2
    fi
done

# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

clk=$(getconf CLK_TCK)

# Prints "<cpu percent of one core> <peak RSS MiB>" for $1 over DURATION seconds after WARMUP.
measure() {
    local pid=$1 t0 t1 c0 c1
    sleep "$WARMUP"
    kill -0 "$pid" 2>/dev/null || { echo "exited early" >&2; return 1; }
    c0=$(cpu_ticks "$pid")
    t0=$(date +%s.%N)
    sleep "$DURATION"
    c1=$(cpu_ticks "$pid")
    t1=$(date +%s.%N)
    local hwm
    hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
    awk -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v hz="$clk" -v hwm="$hwm" \
        'BEGIN { printf "%.2f %.1f\n", 100 * (c1 - c0) / hz / (t1 - t0), hwm / 1024 }'
}

stop() {
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

row() { # tool cpu rss host_cpu host_rss
    awk -v t="$1" -v c="$2" -v r="$3" -v hc="${4-}" -v hr="${5-}" 'BEGIN {
        if (hc == "") printf "  %-12s cpu %7.2f%%  peak rss %8.1f MiB\n", t, c, r
        else printf "  %-12s cpu %7.2f%%  peak rss %8.1f MiB   host/peer: cpu %.2f, rss %.2f\n",
            t, c, r, (c > 0 ? hc / c : 0), (r > 0 ? hr / r : 0) }'
}

run_host() { # config; prints measure's output
    "$BIN/monitor-host" --log-level warn run --config "$1" >"$WORK/host.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    wait_http "$HOST_PORT" /healthz
    measure "$pid"
    stop "$pid"
}

scrape_run() {
    local n=$1 dir="$WORK/scrape-$1"
    mkdir -p "$dir/www"
    python3 - "$n" >"$dir/www/metrics" <<'EOF'
import sys
n = int(sys.argv[1])
per = 100  # series per metric name
out = []
for m in range(0, (n + per - 1) // per):
    out.append(f"# HELP gen_metric_{m} generated\n# TYPE gen_metric_{m} gauge\n")
    for i in range(min(per, n - m * per)):
        out.append(f'gen_metric_{m}{{instance="i{i}",job="gen"}} {(m * per + i) * 0.5}\n')
sys.stdout.write("".join(out))
EOF
    (cd "$dir/www" && exec python3 -m http.server --bind 127.0.0.1 "$TARGET_PORT") >/dev/null 2>&1 &
    local server=$!
    PIDS+=("$server")
    wait_http "$TARGET_PORT" /metrics

    cat >"$dir/host.toml" <<EOF
[host]
interval = "1s"
listen = "127.0.0.1:$HOST_PORT"
data_dir = "$dir/host-data"

[[collector]]
plugin = "prometheus"
library = "$BIN/libmonitor_plugin_prometheus.so"
[collector.config]
url = "http://127.0.0.1:$TARGET_PORT/metrics"
rates = false
EOF
    echo "$n series, scraped every 1 s, measured over ${DURATION} s after ${WARMUP} s:"
    local host hc hr
    host=$(run_host "$dir/host.toml")
    read -r hc hr <<<"$host"
    row monitor-host "$hc" "$hr"
    if command -v prometheus >/dev/null; then
        cat >"$dir/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: gen
    static_configs:
      - targets: ["127.0.0.1:$TARGET_PORT"]
EOF
        prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/prom-data" \
            --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn >"$WORK/prom.log" 2>&1 &
        local pid=$!
        PIDS+=("$pid")
        wait_http "$PROM_PORT" /-/ready
        local pc pr
        read -r pc pr <<<"$(measure "$pid")"
        stop "$pid"
        row prometheus "$pc" "$pr" "$hc" "$hr"
    else
        echo "  prometheus   not installed (Debian package prometheus)"
    fi
    stop "$server"
}

small_run() {
    local dir="$WORK/small"
    rm -rf "$dir"
    mkdir -p "$dir"
    cat >"$dir/host.toml" <<EOF
[host]
interval = "1s"
listen = "127.0.0.1:$HOST_PORT"
data_dir = "$dir/host-data"

[[collector]]
plugin = "system"
library = "$BIN/libmonitor_plugin_system.so"

[[collector]]
plugin = "process"
library = "$BIN/libmonitor_plugin_process.so"
[[collector.config.processes]]
name = "init"
process_name = "init"
EOF
    echo "small configuration (system and process collectors), every 1 s:"
    local hc hr
    read -r hc hr <<<"$(run_host "$dir/host.toml")"
    row monitor-host "$hc" "$hr"
    local collectd
    collectd=$(command -v collectd || ls /usr/sbin/collectd 2>/dev/null || true)
    if [ -n "$collectd" ]; then
        cat >"$dir/collectd.conf" <<EOF
Interval 1
BaseDir "$dir"
PIDFile "$dir/collectd.pid"
PluginDir "/usr/lib/collectd"
LoadPlugin cpu
LoadPlugin load
LoadPlugin memory
LoadPlugin df
LoadPlugin interface
LoadPlugin processes
<Plugin processes>
  Process "init"
</Plugin>
EOF
        "$collectd" -f -C "$dir/collectd.conf" >"$WORK/collectd.log" 2>&1 &
        local pid=$!
        PIDS+=("$pid")
        local cc cr
        read -r cc cr <<<"$(measure "$pid")"
        stop "$pid"
        row collectd "$cc" "$cr" "$hc" "$hr"
    else
        echo "  collectd     not installed (Debian package collectd-core)"
    fi
}

for n in "${SERIES[@]}"; do scrape_run "$n"; done
for _ in $(seq "$REPEAT"); do small_run; done
