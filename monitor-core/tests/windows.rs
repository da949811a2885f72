//! Time windows: calls in the last 24 hours, and trends judged recent
//! against earlier, with back-dated records and an explicit "now".

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use monitor_core::{Registry, ReportConfig, Trend};

fn minute(n: u64) -> SystemTime {
    // A fixed, minute-aligned origin keeps the test independent of the clock.
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 / 3600 * 3600 + n * 60)
}

fn feed(reg: &Registry, name: &str, from: u64, to: u64, per_minute: u64, latency: Duration) {
    for m in from..to {
        for i in 0..per_minute {
            reg.record_at(
                name,
                latency + Duration::from_nanos(i),
                true,
                minute(m) + Duration::from_secs(i % 60),
            );
        }
    }
}

#[test]
fn rising_latency_is_degrading_and_falling_is_improving() {
    let reg = Registry::new();
    feed(&reg, "up", 0, 55, 10, Duration::from_millis(10));
    feed(&reg, "up", 55, 60, 10, Duration::from_millis(15));
    feed(&reg, "down", 0, 55, 10, Duration::from_millis(10));
    feed(&reg, "down", 55, 60, 10, Duration::from_millis(5));
    feed(&reg, "flat", 0, 60, 10, Duration::from_millis(10));
    let snap = reg.snapshot_at(minute(59) + Duration::from_secs(30));
    let trend = |name: &str| {
        snap.functions
            .iter()
            .find(|f| f.name == name)
            .unwrap()
            .trend
    };
    assert_eq!(trend("up"), Trend::Degrading);
    assert_eq!(trend("down"), Trend::Improving);
    assert_eq!(trend("flat"), Trend::Stable);
    assert!(
        snap.warnings
            .iter()
            .any(|w| w.function == "up" && w.kind == "degrading")
    );
}

#[test]
fn too_few_samples_say_stable() {
    let reg = Registry::new();
    feed(&reg, "sparse", 0, 55, 1, Duration::from_millis(10));
    feed(&reg, "sparse", 55, 60, 1, Duration::from_millis(50));
    let snap = reg.snapshot_at(minute(59));
    assert_eq!(
        snap.functions[0].trend,
        Trend::Stable,
        "5 recent calls are under the default 30"
    );

    let mut config = ReportConfig::default();
    config.trend.min_samples = 5;
    reg.set_config(config);
    assert_eq!(
        reg.snapshot_at(minute(59)).functions[0].trend,
        Trend::Degrading
    );
}

#[test]
fn tolerance_is_configurable() {
    let reg = Registry::new();
    feed(&reg, "slight", 0, 55, 10, Duration::from_millis(100));
    feed(&reg, "slight", 55, 60, 10, Duration::from_millis(104));
    assert_eq!(
        reg.snapshot_at(minute(59)).functions[0].trend,
        Trend::Stable
    );
    let mut config = ReportConfig::default();
    config.trend.tolerance = 0.02;
    reg.set_config(config);
    assert_eq!(
        reg.snapshot_at(minute(59)).functions[0].trend,
        Trend::Degrading
    );
}

#[test]
fn calls_in_the_last_24_hours_drop_older_ones() {
    let reg = Registry::new();
    // One call per hour over 30 hours.
    for h in 0..30 {
        reg.record_at("hourly", Duration::from_millis(1), true, minute(h * 60));
    }
    let f = &reg.snapshot_at(minute(29 * 60 + 5)).functions[0];
    assert_eq!(f.calls, 30, "the histogram keeps every call");
    assert_eq!(f.calls_24h, 24, "the current hour and the 23 before it");
    let later = &reg.snapshot_at(minute(60 * 60)).functions[0];
    assert_eq!(later.calls_24h, 0);
}
