#!/bin/sh
# Restarts the demo service: stops the running one (if any) and starts a new one in the
# background. Run by the restart-command strategy from the repository root (the host's working
# directory), as configured in examples/monitor.toml.
set -u
dir=monitor-data
pid_file="$dir/demo.pid"
mkdir -p "$dir"
if [ -f "$pid_file" ]; then
    kill "$(cat "$pid_file")" 2>/dev/null
    sleep 0.2
fi
nohup target/release/demo-service --listen 127.0.0.1:9465 --pid-file "$pid_file" \
    >>"$dir/demo-service.log" 2>&1 &
exit 0
