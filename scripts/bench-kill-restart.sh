#!/usr/bin/env bash
# Kill -> restarted: how long a killed service stays down under monitor-host (the `process`
# collector and the `restart-command` strategy, 1 s interval) and, when installed, under Monit
# (`check process ... with pidfile ... start program ...`, `set daemon 1`), on the same workload in
# one run, one after the other.
#
#   scripts/bench-kill-restart.sh              # KILLS=10 GAP=2.5
#
# The service is `sleep`, started by a supervisor shell that reaps it as soon as it dies (so the
# watched pid is not left a zombie) and writes its pid to a pid file. For each tool, the service is
# started, then killed (SIGKILL) KILLS times; each kill waits GAP seconds after the previous restart
# (so the tool has seen the service up again). The time measured is from the kill to the moment the
# pid file names another pid whose process runs (not a zombie), polled every 2 ms. Prints min,
# median and max per tool, and the ratio of the medians.
#
# Environment: KILLS (default 10), GAP (seconds, default 2.5), BIN (default target/release: build
# first with `cargo build --release -p monitor-host -p monitor-plugin-process
# -p monitor-plugin-restart-command`), MONIT (default `monit` on PATH; Debian package `monit`).
# Everything lives in a temporary directory removed at the end; nothing listens on the network.
set -euo pipefail

KILLS=${KILLS:-10}
GAP=${GAP:-2.5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${BIN:-$ROOT/target/release}" && pwd)
MONIT=${MONIT:-$(command -v monit || true)}

for f in monitor-host libmonitor_plugin_process.so libmonitor_plugin_restart_command.so; do
    if [ ! -e "$BIN/$f" ]; then
        echo "missing $BIN/$f: build with cargo build --release -p monitor-host -p monitor-plugin-process -p monitor-plugin-restart-command" >&2
        exit 2
    fi
done

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for f in "$WORK"/*.pid; do
        [ -e "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# Writes $WORK/start-$1.sh: starts the service under a supervisor shell that reaps it, its pid in
# $WORK/$1.pid. Returns at once.
start_script() {
    local script="$WORK/start-$1.sh"
    cat >"$script" <<EOF
#!/bin/sh
nohup sh -c 'sleep 1000000 & echo \$! > "$WORK/$1.pid.tmp" && mv "$WORK/$1.pid.tmp" "$WORK/$1.pid"; wait' >/dev/null 2>&1 &
EOF
    chmod +x "$script"
    echo "$script"
}

# Kills the service named by pid file $1 KILLS times and prints "min median max" in seconds.
measure() {
    python3 - "$1" "$KILLS" "$GAP" <<'EOF'
import os, signal, statistics, sys, time

pid_file, kills, gap = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])

def read():
    try:
        with open(pid_file) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None

def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")

def live_pid(other, limit):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        pid = read()
        if pid is not None and pid != other and alive(pid):
            return pid
        time.sleep(0.002)
    return None

pid = live_pid(None, 30)
if pid is None:
    sys.exit("the service never started")
times = []
for _ in range(kills):
    time.sleep(gap)
    pid = live_pid(None, 30)
    if pid is None:
        sys.exit("the service is not running")
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    new = live_pid(pid, 60)
    if new is None:
        sys.exit(f"no restart within 60 s of killing {pid}")
    times.append(time.monotonic() - t0)
print(f"{min(times):.3f} {statistics.median(times):.3f} {max(times):.3f}")
EOF
}

# --- monitor-host ----------------------------------------------------------------------------
HOST_START=$(start_script host)
cat >"$WORK/monitor.toml" <<EOF
[host]
interval = "1s"
listen = "off"
data_dir = "data"

[[collector]]
plugin = "process"
library = "$BIN/libmonitor_plugin_process.so"
[[collector.config.processes]]
name = "svc"
pid_file = "$WORK/host.pid"

[[alert]]
name = "svc_down"
metric = "process.up"
condition = "below"
threshold = 1
severity = "error"

[[strategy]]
plugin = "restart-command"
library = "$BIN/libmonitor_plugin_restart_command.so"
on = ["svc_down"]
max_attempts = 1000
within = "1h"
[strategy.config]
command = "$HOST_START"
EOF
"$HOST_START"
"$BIN/monitor-host" run --config "$WORK/monitor.toml" 2>"$WORK/host.log" &
HOST_PID=$!
PIDS+=("$HOST_PID")
host=$(measure "$WORK/host.pid") || { cat "$WORK/host.log" >&2; exit 1; }
kill -TERM "$HOST_PID"
wait "$HOST_PID" || true
kill "$(cat "$WORK/host.pid")" 2>/dev/null || true
read -r hmin hmed hmax <<<"$host"
printf '%-14s kills %-3s min %6.3f s  median %6.3f s  max %6.3f s\n' monitor-host "$KILLS" "$hmin" "$hmed" "$hmax"

# --- Monit -----------------------------------------------------------------------------------
if [ -z "$MONIT" ]; then
    echo "monit: not installed (Debian package \`monit\`); skipped"
    exit 0
fi
MONIT_START=$(start_script monit)
cat >"$WORK/monitrc" <<EOF
set daemon 1
set logfile $WORK/monit.log
set pidfile $WORK/monit.run.pid
set idfile $WORK/monit.id
set statefile $WORK/monit.state

check process svc with pidfile $WORK/monit.pid
    start program = "$MONIT_START"
EOF
chmod 600 "$WORK/monitrc"
"$MONIT_START"
"$MONIT" -I -c "$WORK/monitrc" >/dev/null 2>&1 &
MONIT_PID=$!
PIDS+=("$MONIT_PID")
monit=$(measure "$WORK/monit.pid") || { cat "$WORK/monit.log" >&2; exit 1; }
kill -TERM "$MONIT_PID"
wait "$MONIT_PID" || true
kill "$(cat "$WORK/monit.pid")" 2>/dev/null || true
read -r mmin mmed mmax <<<"$monit"
printf '%-14s kills %-3s min %6.3f s  median %6.3f s  max %6.3f s\n' monit "$KILLS" "$mmin" "$mmed" "$mmax"
awk -v h="$hmed" -v m="$mmed" 'BEGIN { printf "median ratio monitor-host/monit: %.3f\n", h / m }'
