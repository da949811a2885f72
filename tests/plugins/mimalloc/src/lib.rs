//! A plugin whose every allocation comes from mimalloc, not the host's allocator: payload buffers
//! must be released by the plugin's own `release` function, or the process would crash.

use monitor_plugin::{
    AlertNotifier, Collection, Collector, Event, Notification, PluginError, Sample,
};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Returns a few thousand samples with labels, and an event, on every call.
#[derive(Default)]
struct Churn {
    calls: u64,
}

impl Collector for Churn {
    fn collect(&mut self) -> Result<Collection, PluginError> {
        self.calls += 1;
        let samples = (0..2000)
            .map(|i| {
                Sample::gauge("mimalloc.churn", (self.calls * 2000 + i) as f64)
                    .with_label("i", i.to_string())
            })
            .collect();
        let events = vec![Event {
            kind: "churned".into(),
            message: "x".repeat(4096),
            labels: Default::default(),
            timestamp_ms: None,
        }];
        Ok(Collection { samples, events })
    }
}

/// Parses every notification into plugin-owned memory and rejects an empty alert name.
#[derive(Default)]
struct Sink {
    seen: Vec<Notification>,
}

impl AlertNotifier for Sink {
    fn notify(&mut self, n: &Notification) -> Result<(), PluginError> {
        if n.alert.is_empty() {
            return Err("empty alert name".into());
        }
        self.seen.push(n.clone());
        Ok(())
    }
}

monitor_plugin::export_plugin! {
    collector "churn" => Churn,
    notifier "sink" => Sink,
}
