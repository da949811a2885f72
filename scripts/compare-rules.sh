#!/usr/bin/env bash
# Evaluates the same 1,000 alerting rules over the same 10,000 series in monitor-host and in
# Debian's `prometheus`, in one run, and prints each one's rule evaluation time and the ratio.
#
#   scripts/compare-rules.sh
#
# The rules are those of `cargo bench -p monitor-host --bench rules` (10 groups of 100, a mix of
# `sum by (job) (rate(reqN_total[5m])) > 10`, `avg_over_time(gN[1h]) > 50`, `gN > 90` and
# `rate(reqN_total[1h]) > 1`), each group evaluated every 10 s. The series too: 50 counters
# `reqN_total` and 50 gauges `gN`, 100 series each (labels `instance`, `job`), served on loopback
# by a generator whose values are functions of the wall-clock second (counters grow at
# `(i % 7) * 0.2` per second, gauges cycle through 0..99), so both tools read the same values
# whenever they scrape. Both scrape it every SCRAPE (default 1s) at the same time.
#
# After WARMUP seconds (default 30: the series exist, every group has run), both are measured
# over DURATION seconds (default 120): Prometheus's `prometheus_rule_group_duration_seconds` and
# the host's `monitor_host_rule_group_duration_seconds` (summaries of every group evaluation's
# wall time: the increase of `_sum` over that of `_count` is the mean time of one group), times
# the 10 groups: the time one evaluation of the 1,000 rules takes. The sum of the last group
# durations (`*_rule_group_last_duration_seconds{rule_group}`) is printed too.
#
# Windows up to 1 h hold only what was scraped since the start: the default run compares both on
# the same 2-3 minutes of data; `DURATION=3600` (an hour) fills the 1 h windows as the bench does.
#
# Environment: DURATION, WARMUP, SCRAPE, BIN (default target/release: build first with
# `cargo build --release -p monitor-host -p monitor-plugin-prometheus`), PROMETHEUS (default
# `prometheus` on PATH), PORT_BASE (default 19470). Everything listens on 127.0.0.1 only and lives
# in a temporary directory removed at the end.
set -euo pipefail

DURATION=${DURATION:-120}
WARMUP=${WARMUP:-30}
SCRAPE=${SCRAPE:-1s}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/target/release}
PROMETHEUS=${PROMETHEUS:-prometheus}
PORT_BASE=${PORT_BASE:-19470}
TARGET_PORT=$PORT_BASE
HOST_PORT=$((PORT_BASE + 1))
PROM_PORT=$((PORT_BASE + 2))

for f in monitor-host libmonitor_plugin_prometheus.so; do
    if [ ! -e "$BIN/$f" ]; then
        echo "missing $BIN/$f: build with cargo build --release -p monitor-host -p monitor-plugin-prometheus" >&2
        exit 2
    fi
done
if ! command -v "$PROMETHEUS" >/dev/null; then
    echo "no $PROMETHEUS on PATH (Debian package prometheus)" >&2
    exit 2
fi

# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

# The rule file: the bench's `rule_file()`, each group evaluated every 10 s.
python3 - >"$WORK/rules.yml" <<'EOF'
METRICS, RULES, GROUPS = 50, 1000, 10
def rule(k):
    m = k % METRICS
    return [
        f"sum by (job) (rate(req{m}_total[5m])) > 10",
        f"avg_over_time(g{m}[1h]) > 50",
        f"g{m} > 90",
        f"rate(req{m}_total[1h]) > 1",
    ][k % 4]
out = ["groups:"]
for g in range(GROUPS):
    out += [f"  - name: g{g}", "    interval: 10s", "    rules:"]
    for k in range(g * RULES // GROUPS, (g + 1) * RULES // GROUPS):
        out += [f"      - alert: A{k}", f"        expr: {rule(k)}"]
print("\n".join(out))
EOF

# The target: the bench's series, their values a function of the current second.
cat >"$WORK/target.py" <<'EOF'
import http.server, sys, time
METRICS, PER = 50, 100
cache = {}
def body(now):
    if now not in cache:
        cache.clear()
        out = []
        for m in range(METRICS):
            out.append(f"# TYPE req{m}_total counter\n")
            for i in range(PER):
                out.append(f'req{m}_total{{instance="i{i}",job="j{i % 10}"}} {(i % 7) * 0.2 * now:.1f}\n')
            out.append(f"# TYPE g{m} gauge\n")
            for i in range(PER):
                out.append(f'g{m}{{instance="i{i}",job="j{i % 10}"}} {((now // 15) * 7 + i * 13) % 100}\n')
        cache[now] = "".join(out).encode()
    return cache[now]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = body(int(time.time()))
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
EOF
python3 "$WORK/target.py" "$TARGET_PORT" &
PIDS+=($!)
wait_http "$TARGET_PORT" /metrics

cat >"$WORK/host.toml" <<EOF
[host]
interval = "$SCRAPE"
listen = "127.0.0.1:$HOST_PORT"
data_dir = "$WORK/host-data"
rule_files = ["$WORK/rules.yml"]

[[collector]]
plugin = "prometheus"
name = "target"
library = "$BIN/libmonitor_plugin_prometheus.so"
[collector.config]
url = "http://127.0.0.1:$TARGET_PORT/metrics"
rates = false
EOF
cat >"$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: $SCRAPE
  evaluation_interval: 10s
rule_files: ["$WORK/rules.yml"]
scrape_configs:
  - job_name: target
    honor_labels: true
    static_configs:
      - targets: ["127.0.0.1:$TARGET_PORT"]
EOF

"$BIN/monitor-host" --log-level error run --config "$WORK/host.toml" >"$WORK/host.log" 2>&1 &
HOST_PID=$!
PIDS+=("$HOST_PID")
"$PROMETHEUS" --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prom-data" \
    --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn >"$WORK/prom.log" 2>&1 &
PROM_PID=$!
PIDS+=("$PROM_PID")
wait_http "$HOST_PORT" /healthz
wait_http "$PROM_PORT" /-/ready

# Prints, from the /metrics at $1, "<sum of sums> <sum of counts> <sum of last durations>
# <groups>" of the families named $2.
read_groups() {
    python3 - "$1" "$2" <<'EOF'
import sys, urllib.request
text = urllib.request.urlopen(sys.argv[1], timeout=120).read().decode()
family = sys.argv[2]
sums = counts = last = 0.0
groups = set()
for line in text.splitlines():
    if line.startswith("#") or " " not in line:
        continue
    name, value = line.rsplit(" ", 1)
    base = name.split("{", 1)[0]
    if base == family + "_duration_seconds_sum":
        sums += float(value)
    elif base == family + "_duration_seconds_count":
        counts += float(value)
    elif base == family + "_last_duration_seconds":
        last += float(value)
        groups.add(name)
print(sums, counts, last, len(groups))
EOF
}

# The sum of the samples of family $2 at the /metrics at $1 (0 when it has none).
family_sum() {
    python3 - "$1" "$2" <<'EOF'
import sys, urllib.request
text = urllib.request.urlopen(sys.argv[1], timeout=120).read().decode()
print(sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
          if not l.startswith("#") and l.split("{", 1)[0].split(" ", 1)[0] == sys.argv[2]))
EOF
}

HOST_URL="http://127.0.0.1:$HOST_PORT/metrics"
PROM_URL="http://127.0.0.1:$PROM_PORT/metrics"
echo "1,000 rules in 10 groups every 10 s over 10,000 series scraped every $SCRAPE; measured over ${DURATION} s after ${WARMUP} s:"
sleep "$WARMUP"
read -r hs0 hc0 _ _ <<<"$(read_groups "$HOST_URL" monitor_host_rule_group)"
read -r ps0 pc0 _ _ <<<"$(read_groups "$PROM_URL" prometheus_rule_group)"
hm0=$(family_sum "$HOST_URL" monitor_host_rule_group_iterations_missed_total)
pm0=$(family_sum "$PROM_URL" prometheus_rule_group_iterations_missed_total)
hcpu0=$(cpu_ticks "$HOST_PID")
pcpu0=$(cpu_ticks "$PROM_PID")
sleep "$DURATION"
hcpu1=$(cpu_ticks "$HOST_PID")
pcpu1=$(cpu_ticks "$PROM_PID")
read -r hs1 hc1 hl hg <<<"$(read_groups "$HOST_URL" monitor_host_rule_group)"
read -r ps1 pc1 pl pg <<<"$(read_groups "$PROM_URL" prometheus_rule_group)"
hm1=$(family_sum "$HOST_URL" monitor_host_rule_group_iterations_missed_total)
pm1=$(family_sum "$PROM_URL" prometheus_rule_group_iterations_missed_total)
if [ "$hg" != 10 ] || [ "$pg" != 10 ]; then
    echo "expected 10 rule groups, found $hg in monitor-host, $pg in prometheus" >&2
    tail -n 5 "$WORK/host.log" "$WORK/prom.log" >&2
    exit 1
fi
awk -v hs="$(awk -v a="$hs0" -v b="$hs1" 'BEGIN { print b - a }')" \
    -v hc="$(awk -v a="$hc0" -v b="$hc1" 'BEGIN { print b - a }')" \
    -v ps="$(awk -v a="$ps0" -v b="$ps1" 'BEGIN { print b - a }')" \
    -v pc="$(awk -v a="$pc0" -v b="$pc1" 'BEGIN { print b - a }')" \
    -v hl="$hl" -v pl="$pl" -v tick="$(getconf CLK_TCK)" -v dur="$DURATION" \
    -v hcpu="$((hcpu1 - hcpu0))" -v pcpu="$((pcpu1 - pcpu0))" \
    -v hm="$(awk -v a="$hm0" -v b="$hm1" 'BEGIN { print b - a }')" \
    -v pm="$(awk -v a="$pm0" -v b="$pm1" 'BEGIN { print b - a }')" 'BEGIN {
    if (hc == 0 || pc == 0) { print "no group evaluated during the measurement" > "/dev/stderr"; exit 1 }
    h = 10 * hs / hc; p = 10 * ps / pc
    printf "  %-12s %8.1f ms per evaluation of the 1,000 rules (%d group evaluations; last ones %.1f ms)\n", "monitor-host", 1000 * h, hc, 1000 * hl
    printf "  %-12s %8.1f ms per evaluation of the 1,000 rules (%d group evaluations; last ones %.1f ms)\n", "prometheus", 1000 * p, pc, 1000 * pl
    printf "  host/prometheus: %.2f\n", h / p
    printf "  %-12s %6.1f%% of a core in all (scraping, storing, evaluating); %d group iterations missed\n", "monitor-host", 100 * hcpu / tick / dur, hm
    printf "  %-12s %6.1f%% of a core in all (scraping, storing, evaluating); %d group iterations missed\n", "prometheus", 100 * pcpu / tick / dur, pm
    printf "  (%d group evaluations were due in %d s)\n", int(dur / 10) * 10, dur
}'
