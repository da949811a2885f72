#!/usr/bin/env bash
# Refreshes the dashboard screenshots under docs/screenshots/: runs the browser test (which needs
# Debian's chromium), then copies what it saved in target/dashboard-screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
MONITOR_REQUIRE_PROMTOOL=1 cargo test -p monitor-tests --test dashboard
mkdir -p docs/screenshots
for page in overview overview-phone series applications alerts; do
    cp "$target/dashboard-screenshots/$page.png" "docs/screenshots/dashboard-$page.png"
done
ls -l docs/screenshots/
