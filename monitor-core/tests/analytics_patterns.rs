//! Each pattern kind is found when planted in noise, and noise alone yields
//! nothing above the threshold.

mod common;

use common::{DAY, HOUR, MONDAY_MS, Rng, SECOND, merge, noise};
use monitor_core::analytics::{Event, Pattern, PatternConfig, PatternKind, PatternLearner};

fn learner_with(events: &[Event]) -> PatternLearner {
    let mut l = PatternLearner::new(PatternConfig {
        max_history_size: 1_000_000,
        ..PatternConfig::default()
    });
    l.record_all(events);
    l
}

fn of_kind(patterns: &[Pattern], kind: PatternKind) -> Vec<&Pattern> {
    patterns.iter().filter(|p| p.kind == kind).collect()
}

#[test]
fn noise_alone_yields_no_pattern_of_any_kind() {
    for seed in 1..=3 {
        let mut rng = Rng::new(seed);
        let events = noise(&mut rng, 20_000, 10, 3, MONDAY_MS, 28 * DAY);
        let patterns = learner_with(&events).learn_patterns();
        assert!(patterns.is_empty(), "seed {seed}: {patterns:#?}");
    }
}

#[test]
fn sparse_noise_over_many_groups_yields_nothing() {
    // A thousand (kind, agent) pairs with a handful of events each: some
    // look regular, sequential or bunched by luck, which the confidence
    // bounds must absorb.
    for seed in 1..=5 {
        let mut rng = Rng::new(seed);
        let events = noise(&mut rng, 7_000, 50, 20, MONDAY_MS, 7 * DAY);
        let patterns = learner_with(&events).learn_patterns();
        assert!(patterns.is_empty(), "seed {seed}: {patterns:#?}");
    }
}

#[test]
fn planted_sequence_is_found_as_one_maximal_pattern() {
    let mut rng = Rng::new(7);
    let mut events = Vec::new();
    let mut t = MONDAY_MS;
    for _ in 0..300 {
        for kind in ["task_start", "agent_assigned", "task_complete"] {
            t += rng.range(10, 500);
            events.push(Event::new(kind, t).with_agent("agent-0"));
        }
        for _ in 0..rng.range(1, 6) {
            t += rng.range(10, 500);
            let kind = format!("noise_{}", rng.below(10));
            events.push(Event::new(kind.as_str(), t).with_agent("agent-0"));
        }
    }
    let patterns = learner_with(&events).learn(PatternKind::Sequence);
    assert_eq!(patterns.len(), 1, "{patterns:#?}");
    let p = &patterns[0];
    assert_eq!(p.events, ["task_start", "agent_assigned", "task_complete"]);
    assert_eq!(p.id, "sequence:task_start>agent_assigned>task_complete");
    assert_eq!(p.occurrences, 300);
    // 300 of 300: the share's Wilson lower bound is 0.987; each step's
    // certainty factor against its kind's base rate (about one in six) is a
    // little lower.
    assert!(p.confidence > 0.98 && p.confidence < 1.0);
    assert_eq!(p.metadata["share"], 1.0);
    assert!(
        p.description
            .starts_with("task_start -> agent_assigned -> task_complete")
    );
    assert!(p.first_seen_ms < p.last_seen_ms);
}

/// `n` events per agent, one every 1-5 s, 80% `heartbeat` and the rest one
/// of ten noise kinds; with `planted`, a `deploy` followed by `rollback`
/// replaces an event of agent-0 about every 100.
fn heartbeat_dominated(seed: u64, n: usize, planted: bool) -> Vec<Event> {
    let mut rng = Rng::new(seed);
    let mut events = Vec::new();
    for agent in ["agent-0", "agent-1", "agent-2"] {
        let mut t = MONDAY_MS;
        for _ in 0..n {
            t += rng.range(SECOND, 5 * SECOND);
            if planted && agent == "agent-0" && rng.below(100) == 0 {
                events.push(Event::new("deploy", t).with_agent(agent));
                t += rng.range(SECOND, 5 * SECOND);
                events.push(Event::new("rollback", t).with_agent(agent));
                continue;
            }
            let kind = if rng.unit() < 0.8 {
                "heartbeat".to_owned()
            } else {
                format!("noise_{}", rng.below(10))
            };
            events.push(Event::new(kind.as_str(), t).with_agent(agent));
        }
    }
    merge(vec![events])
}

#[test]
fn a_dominant_kind_makes_no_sequence() {
    // Four in five events of any kind are followed by a heartbeat, which is
    // no pattern: heartbeats follow everything that often.
    for seed in 1..=3 {
        let events = heartbeat_dominated(seed, 10_000, false);
        let patterns = learner_with(&events).learn(PatternKind::Sequence);
        assert!(patterns.is_empty(), "seed {seed}: {patterns:#?}");
    }
}

#[test]
fn a_planted_sequence_stands_out_of_dominant_noise() {
    let events = heartbeat_dominated(4, 10_000, true);
    let patterns = learner_with(&events).learn(PatternKind::Sequence);
    let ids: Vec<&str> = patterns.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["sequence:deploy>rollback"], "{patterns:#?}");
    let p = &patterns[0];
    assert!(p.occurrences >= 50, "{p:#?}");
    // Every deploy is followed by a rollback, which is rare otherwise.
    assert!(p.confidence > 0.9, "{p:#?}");
    // Rounded to four decimals in the metadata.
    assert!(p.metadata["step_confidence"].as_f64().unwrap() >= p.confidence - 1e-4);
}

#[test]
fn sequences_do_not_cross_agents() {
    // a -> b on agent-0 and c on agent-1 interleaved in time: "a -> c" and
    // "c -> b" are adjacent in the merged stream but not within one agent.
    let mut events = Vec::new();
    for i in 0..50u64 {
        let t = MONDAY_MS + i * 10 * SECOND;
        events.push(Event::new("a", t).with_agent("agent-0"));
        events.push(Event::new("c", t + 1).with_agent("agent-1"));
        events.push(Event::new("b", t + 2).with_agent("agent-0"));
    }
    let patterns = learner_with(&events).learn(PatternKind::Sequence);
    let ids: Vec<&str> = patterns.iter().map(|p| p.id.as_str()).collect();
    assert!(ids.contains(&"sequence:a>b"), "{ids:?}");
    assert!(
        !ids.iter()
            .any(|id| id.contains("a>c") || id.contains("c>b")),
        "{ids:?}"
    );
}

#[test]
fn a_long_pause_ends_a_sequence() {
    // "a" at the end of one burst, "b" opening the next an hour later.
    let mut events = Vec::new();
    for i in 0..50u64 {
        let t = MONDAY_MS + i * HOUR;
        events.push(Event::new("b", t));
        events.push(Event::new("c", t + SECOND));
        events.push(Event::new("a", t + 2 * SECOND));
    }
    let ids = |l: &PatternLearner| -> Vec<String> {
        l.learn(PatternKind::Sequence)
            .into_iter()
            .map(|p| p.id)
            .collect()
    };
    let unlimited = learner_with(&events);
    assert!(
        ids(&unlimited).iter().any(|id| id.contains("a>b")),
        "{:?}",
        ids(&unlimited)
    );
    let mut gapped = PatternLearner::new(PatternConfig {
        max_sequence_gap_ms: Some(60 * SECOND),
        ..PatternConfig::default()
    });
    gapped.record_all(&events);
    assert_eq!(ids(&gapped), ["sequence:b>c>a"]);
}

#[test]
fn an_empty_history_learns_nothing() {
    assert!(PatternLearner::default().learn_patterns().is_empty());
    let mut one = PatternLearner::default();
    one.record("x", None, 1);
    assert!(one.learn_patterns().is_empty());
}

#[test]
fn planted_frequency_is_found_with_its_interval() {
    let mut rng = Rng::new(11);
    let span = 2 * HOUR;
    let beats: Vec<Event> = (0..(span / (5 * SECOND)))
        .map(|i| {
            let t = MONDAY_MS + i * 5 * SECOND + rng.below(400);
            Event::new("heartbeat", t).with_agent("agent-0")
        })
        .collect();
    let events = merge(vec![beats, noise(&mut rng, 3_000, 10, 1, MONDAY_MS, span)]);
    let patterns = learner_with(&events).learn(PatternKind::Frequency);
    assert_eq!(patterns.len(), 1, "{patterns:#?}");
    let p = &patterns[0];
    assert_eq!(p.id, "frequency:heartbeat@agent-0");
    let mean = p.metadata["mean_interval_ms"].as_f64().unwrap();
    let sd = p.metadata["std_interval_ms"].as_f64().unwrap();
    assert!((mean - 5_000.0).abs() < 20.0, "{mean}");
    assert!(sd > 50.0 && sd < 250.0, "{sd}");
    assert!(p.confidence > 0.9);
    assert!(
        p.description
            .starts_with("heartbeat every 5.0 s (+/- 0.2 s)"),
        "{}",
        p.description
    );
}

#[test]
fn planted_correlation_is_found_with_direction_and_lift() {
    let mut rng = Rng::new(23);
    let span = 12 * HOUR;
    let mut planted = Vec::new();
    for _ in 0..200 {
        let t = MONDAY_MS + rng.below(span);
        planted.push(Event::new("high_token_usage", t));
        if rng.unit() < 0.85 {
            planted.push(Event::new("task_failed", t + rng.range(SECOND, 8 * SECOND)));
        }
    }
    // Unrelated failures too, so task_failed has a base rate.
    for _ in 0..150 {
        planted.push(Event::new("task_failed", MONDAY_MS + rng.below(span)));
    }
    let events = merge(vec![
        planted,
        noise(&mut rng, 4_000, 10, 0, MONDAY_MS, span),
    ]);
    let patterns = learner_with(&events).learn(PatternKind::Correlation);
    assert_eq!(patterns.len(), 1, "{patterns:#?}");
    let p = &patterns[0];
    assert_eq!(p.events, ["high_token_usage", "task_failed"]);
    let cond = p.metadata["conditional_probability"].as_f64().unwrap();
    let lift = p.metadata["lift"].as_f64().unwrap();
    assert!((cond - 0.87).abs() < 0.06, "{cond}");
    assert!(lift > 5.0, "{lift}");
    assert!(p.confidence >= 0.7 && p.confidence <= cond);
    assert!(p.description.contains("within 10.0 s"), "{}", p.description);
    let evidence = p.metadata["evidence"].as_array().unwrap();
    assert_eq!(evidence.len(), 5);
    for pair in evidence {
        let (a, b) = (pair[0].as_u64().unwrap(), pair[1].as_u64().unwrap());
        assert!(a < b && b - a <= 10 * SECOND, "{pair}");
    }
    let max = p.metadata["max_delay_ms"].as_u64().unwrap();
    assert!(max <= 10 * SECOND && max as f64 >= p.metadata["mean_delay_ms"].as_f64().unwrap());
}

#[test]
fn planted_temporal_patterns_are_found() {
    let mut rng = Rng::new(5);
    let mut planted = Vec::new();
    for day in 0..28 {
        for _ in 0..5 {
            let t = MONDAY_MS + day * DAY + 2 * HOUR + rng.below(HOUR);
            planted.push(Event::new("backup", t));
        }
        if day % 7 == 0 {
            for _ in 0..10 {
                let t = MONDAY_MS + day * DAY + rng.below(DAY);
                planted.push(Event::new("weekly_report", t));
            }
        }
    }
    let events = merge(vec![
        planted,
        noise(&mut rng, 10_000, 10, 0, MONDAY_MS, 28 * DAY),
    ]);
    let patterns = learner_with(&events).learn(PatternKind::Temporal);
    let hour = patterns
        .iter()
        .find(|p| p.events == ["backup"] && p.metadata["scale"] == "hour_of_day")
        .unwrap_or_else(|| panic!("{patterns:#?}"));
    assert_eq!(hour.metadata["window"], "02:00-03:00 UTC");
    assert_eq!(hour.occurrences, 140);
    let day = patterns
        .iter()
        .find(|p| p.events == ["weekly_report"] && p.metadata["scale"] == "day_of_week")
        .unwrap_or_else(|| panic!("{patterns:#?}"));
    assert_eq!(day.metadata["window"], "Mon");
    assert!(
        patterns.iter().all(|p| !p.events[0].starts_with("noise_")),
        "{patterns:#?}"
    );
}

#[test]
fn all_four_kinds_from_one_stream() {
    let mut rng = Rng::new(99);
    let span = 14 * DAY;
    let mut planted = Vec::new();
    let mut t = MONDAY_MS;
    while t < MONDAY_MS + span {
        planted.push(Event::new("heartbeat", t + rng.below(300)).with_agent("agent-9"));
        t += 60 * SECOND;
    }
    for day in 0..14 {
        let t = MONDAY_MS + day * DAY + 3 * HOUR + rng.below(HOUR);
        for (i, kind) in ["backup_start", "backup_copy", "backup_done"]
            .iter()
            .enumerate()
        {
            planted.push(Event::new(*kind, t + i as u64 * 500).with_agent("backup"));
        }
    }
    let events = merge(vec![
        planted,
        noise(&mut rng, 20_000, 10, 3, MONDAY_MS, span),
    ]);
    let patterns = learner_with(&events).learn_patterns();
    for kind in PatternKind::ALL {
        assert!(
            !of_kind(&patterns, kind).is_empty(),
            "no {kind:?} in {patterns:#?}"
        );
    }
    for p in &patterns {
        assert!((0.0..=1.0).contains(&p.confidence));
        assert!(p.occurrences >= 5);
    }
    // Sorted by kind, then confidence.
    let kinds: Vec<PatternKind> = patterns.iter().map(|p| p.kind).collect();
    assert!(kinds.is_sorted());
    let json = serde_json::to_value(&patterns[0]).unwrap();
    for key in [
        "id",
        "kind",
        "description",
        "events",
        "confidence",
        "occurrences",
        "first_seen_ms",
        "last_seen_ms",
        "metadata",
    ] {
        assert!(json.get(key).is_some(), "{key}");
    }
}

#[test]
fn history_bound_and_shared_recording() {
    use std::sync::{Arc, Mutex};
    let learner = Arc::new(Mutex::new(PatternLearner::new(PatternConfig {
        max_history_size: 1_000,
        ..PatternConfig::default()
    })));
    let threads: Vec<_> = (0..2u64)
        .map(|a| {
            let learner = Arc::clone(&learner);
            std::thread::spawn(move || {
                for i in 0..5_000u64 {
                    let e = Event::new("heartbeat", MONDAY_MS + i * SECOND)
                        .with_agent(format!("agent-{a}"));
                    learner.lock().unwrap().record_event(&e);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let learner = learner.lock().unwrap();
    assert_eq!(learner.len(), 1_000);
    // Arrivals from two agents in whatever interleaving the threads made;
    // each agent's beat is perfect, whichever of them the last 1,000 hold.
    let f = learner.learn(PatternKind::Frequency);
    assert!(!f.is_empty() && f.len() <= 2, "{f:#?}");
    assert!(f.iter().all(|p| p.confidence > 0.99));
}

#[test]
fn a_weekday_schedule_is_one_weekly_pattern_against_the_clock() {
    use monitor_core::analytics::TemporalBaseline;
    let mut l = PatternLearner::new(PatternConfig {
        temporal_baseline: TemporalBaseline::Clock,
        ..PatternConfig::default()
    });
    for day in 0..28 {
        if day % 7 < 5 {
            l.record(
                "nightly_job_slow",
                None,
                MONDAY_MS + day * DAY + 3 * HOUR + 60_000,
            );
        }
    }
    let patterns = l.learn(PatternKind::Temporal);
    let weekly = patterns
        .iter()
        .find(|p| p.metadata["scale"] == "weekly")
        .unwrap_or_else(|| panic!("{patterns:#?}"));
    assert_eq!(weekly.metadata["window"], "Mon-Fri 03:00-04:00 UTC");
    assert_eq!(weekly.occurrences, 20);
    assert!(weekly.confidence > 0.8, "{}", weekly.confidence);
    assert!(
        patterns
            .iter()
            .all(|p| p.metadata["scale"] != "hour_of_day"),
        "the weekly pattern replaces the hour: {patterns:#?}"
    );
}
