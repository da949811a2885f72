//! The recording helpers feed the process-wide event stream.

use std::time::Duration;

use monitor_core::analytics::event::events;
use monitor_core::analytics::{EventKind, PatternLearner, record_agent_task, record_api_request};

#[test]
fn helpers_feed_the_event_stream() {
    record_api_request("/orders", "POST", 201, Duration::from_millis(12));
    record_api_request("/orders", "POST", 503, Duration::from_millis(900));
    record_agent_task("planner", "plan_trip", Duration::from_secs(2), false);
    let held = events().snapshot();
    assert_eq!(held.len(), 3);
    assert_eq!(held[0].kind.as_str(), "api_request");
    assert_eq!(held[0].metadata["endpoint"], "/orders");
    assert_eq!(held[1].kind.as_str(), "api_error");
    assert_eq!(held[1].duration_ms, Some(900.0));
    assert_eq!(held[2].kind, EventKind::TaskFailed);
    assert_eq!(held[2].task_id.as_deref(), Some("plan_trip"));
    assert!(
        held[0].timestamp_ms > 1_600_000_000_000,
        "wall-clock milliseconds"
    );

    let registry = monitor_core::global();
    let api = registry.function("api.POST /orders").expect("registered");
    assert_eq!((api.calls, api.failures), (2, 1));
    let task = registry
        .function("agent.planner.plan_trip")
        .expect("registered");
    assert_eq!((task.calls, task.failures), (1, 1));

    let mut learner = PatternLearner::default();
    learner.record_all(&held);
    assert_eq!(learner.len(), 3);
}

#[test]
fn analytics_types_are_send_and_sync() {
    use monitor_core::analytics::healing::{HealingLog, HealingReport};
    use monitor_core::analytics::predict::{AnomalyDetector, HoltWintersModel, SeriesAnalysis};
    use monitor_core::analytics::{Event, EventLog, Pattern};
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Event>();
    send_sync::<EventLog>();
    send_sync::<PatternLearner>();
    send_sync::<Pattern>();
    send_sync::<HealingLog>();
    send_sync::<HealingReport>();
    send_sync::<AnomalyDetector>();
    send_sync::<HoltWintersModel>();
    send_sync::<SeriesAnalysis>();
}

#[test]
fn event_log_keeps_the_newest_under_two_writers() {
    use monitor_core::analytics::{Event, EventLog};
    let log = EventLog::new(1_000);
    std::thread::scope(|s| {
        for writer in 0..2u64 {
            let log = &log;
            s.spawn(move || {
                for i in 0..10_000u64 {
                    log.push(Event::new("tick", i).with_agent(format!("w{writer}")));
                }
            });
        }
    });
    assert_eq!(log.len(), 1_000);
    assert_eq!(log.dropped(), 19_000);
    // Each writer's events stay in its own order.
    let held = log.snapshot();
    for w in ["w0", "w1"] {
        let ts: Vec<u64> = held
            .iter()
            .filter(|e| e.agent_id.as_deref() == Some(w))
            .map(|e| e.timestamp_ms)
            .collect();
        assert!(ts.is_sorted());
    }
}
