//! Test plugins. Behaviour is driven by files the test creates and removes, never by timing:
//! a flag file present means "misbehave now".

use std::io::Write as _;
use std::path::{Path, PathBuf};

use monitor_plugin::{
    AlertNotifier, Collection, Collector, Failure, HealOutcome, HealingStrategy, Host,
    Notification, PluginError, Sample, parse_config,
};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Common {
    /// Appended to with `kind:label` on shutdown.
    shutdown_log: Option<PathBuf>,
    /// Misbehave while this file exists.
    flag: Option<PathBuf>,
    /// Reads a number from here (file collector) or writes one (fixer).
    path: Option<PathBuf>,
    /// Value the fixer writes.
    value: Option<f64>,
    /// Whether the fixer reports success.
    succeed: Option<bool>,
    /// Samples the flood collector returns.
    samples: Option<usize>,
    /// Label for the shutdown log.
    label: Option<String>,
    /// How long the slow collector takes per call, in ms.
    sleep_ms: Option<u64>,
    /// The fixer's outcomes in turn, `1` a success and `0` a failure (`"11010"`: 60%), counted
    /// across calls and restarts in the file `counter`.
    pattern: Option<String>,
    /// Where the fixer counts its calls.
    counter: Option<PathBuf>,
    /// How the crashing plugins end the process: `segv`, `abort` or `exit`.
    crash: Option<String>,
    /// The crashing collector crashes in `configure` too while the flag exists.
    crash_in_configure: Option<bool>,
}

impl Common {
    fn flagged(&self) -> bool {
        self.flag.as_deref().is_some_and(Path::exists)
    }

    fn log_shutdown(&self, kind: &str) -> Result<(), PluginError> {
        if let Some(p) = &self.shutdown_log {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?;
            writeln!(f, "{kind}:{}", self.label.as_deref().unwrap_or("-"))?;
        }
        Ok(())
    }
}

/// Reads `path` and reports its number as `test.value`.
#[derive(Default)]
struct FileCollector(Common);

impl Collector for FileCollector {
    fn configure(&mut self, config: &serde_json::Value) -> Result<(), PluginError> {
        self.0 = parse_config(config)?;
        if self.0.path.is_none() {
            return Err("`path` is required: the file holding the value to report".into());
        }
        Ok(())
    }

    fn collect(&mut self) -> Result<Collection, PluginError> {
        let path = self.0.path.as_ref().expect("checked in configure");
        let text = std::fs::read_to_string(path)?;
        let value: f64 = text
            .trim()
            .parse()
            .map_err(|e| format!("not a number: {e}"))?;
        Ok(Collection {
            samples: vec![Sample::gauge("test.value", value).with_label("source", "file")],
            events: vec![],
        })
    }

    fn shutdown(&mut self) -> Result<(), PluginError> {
        self.0.log_shutdown("file")
    }
}

macro_rules! flag_collector {
    ($ty:ident, $kind:literal, |$c:ident| $misbehave:expr) => {
        #[derive(Default)]
        struct $ty(Common);

        impl Collector for $ty {
            fn configure(&mut self, config: &serde_json::Value) -> Result<(), PluginError> {
                self.0 = parse_config(config)?;
                Ok(())
            }

            fn collect(&mut self) -> Result<Collection, PluginError> {
                if self.0.flagged() {
                    let $c = &self.0;
                    return $misbehave;
                }
                Ok(Collection {
                    samples: vec![Sample::gauge(concat!("test.", $kind), 1.0)],
                    events: vec![],
                })
            }

            fn shutdown(&mut self) -> Result<(), PluginError> {
                self.0.log_shutdown($kind)
            }
        }
    };
}

flag_collector!(Flaky, "flaky", |_c| Err("failing on purpose".into()));
flag_collector!(Panicky, "panicky", |_c| panic_on_purpose());
flag_collector!(Sleepy, "sleepy", |c| {
    // Hang until the flag goes away: the host must abandon the call, not wait.
    while c.flagged() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok(Collection::default())
});
flag_collector!(Flood, "flood", |c| {
    let n = c.samples.unwrap_or(100_000);
    let samples = (0..n)
        .map(|i| Sample::gauge(format!("test.flood.series_with_a_long_name_{i}"), i as f64))
        .collect();
    Ok(Collection {
        samples,
        events: vec![],
    })
});

/// Takes `sleep_ms` (default 3000) per call, then reports `test.slow`.
#[derive(Default)]
struct Slow(Common);

impl Collector for Slow {
    fn configure(&mut self, config: &serde_json::Value) -> Result<(), PluginError> {
        self.0 = parse_config(config)?;
        Ok(())
    }

    fn collect(&mut self) -> Result<Collection, PluginError> {
        let ms = self.0.sleep_ms.unwrap_or(3000);
        std::thread::sleep(std::time::Duration::from_millis(ms));
        Ok(Collection {
            samples: vec![Sample::gauge("test.slow", 1.0)],
            events: vec![],
        })
    }
}

/// A label that changes every call: `test.churn{id="<n>"} 1` with a new `n` each time, beside a
/// steady `test.churn.steady` whose value is the call number.
#[derive(Default)]
struct Churn {
    calls: u64,
}

impl Collector for Churn {
    fn configure(&mut self, config: &serde_json::Value) -> Result<(), PluginError> {
        let _: Common = parse_config(config)?;
        Ok(())
    }

    fn collect(&mut self) -> Result<Collection, PluginError> {
        self.calls += 1;
        let n = self.calls;
        Ok(Collection {
            samples: vec![
                Sample::gauge("test.churn.steady", n as f64),
                Sample::gauge("test.churn", 1.0).with_label("id", n.to_string()),
            ],
            events: vec![],
        })
    }
}

/// Ends the whole process the way `crash` says: a segmentation fault, an abort, or `exit(3)`.
fn crash(how: Option<&str>) -> ! {
    match how.unwrap_or("segv") {
        "abort" => std::process::abort(),
        "exit" => std::process::exit(3),
        _ => {
            // An address no process maps: a genuine invalid access, not a raised signal.
            let bad = std::ptr::without_provenance_mut::<u8>(16);
            // SAFETY: not safe at all, on purpose: this write faults, and the process dies with
            // SIGSEGV (the test plugin exists to show what isolation protects the host from).
            unsafe { bad.write_volatile(1) };
            unreachable!("the write above faults")
        }
    }
}

/// `crashy`: reports `test.crashy` 1, but while the flag file exists it ends the process
/// (`crash = "segv" | "abort" | "exit"`), in `collect`, and in `configure` too with
/// `crash_in_configure = true`.
#[derive(Default)]
struct Crashy(Common);

impl Collector for Crashy {
    fn configure(&mut self, config: &serde_json::Value) -> Result<(), PluginError> {
        self.0 = parse_config(config)?;
        if self.0.crash_in_configure == Some(true) && self.0.flagged() {
            crash(self.0.crash.as_deref());
        }
        Ok(())
    }

    fn collect(&mut self) -> Result<Collection, PluginError> {
        if self.0.flagged() {
            crash(self.0.crash.as_deref());
        }
        Ok(Collection {
            samples: vec![Sample::gauge("test.crashy", 1.0)],
            events: vec![],
        })
    }

    fn shutdown(&mut self) -> Result<(), PluginError> {
        self.0.log_shutdown("crashy")
    }
}

fn panic_on_purpose() -> Result<Collection, PluginError> {
    panic!("panicking on purpose")
}

/// A panic payload whose `Drop` panics as well.
struct DropPanics;

impl Drop for DropPanics {
    fn drop(&mut self) {
        panic!("the panic payload's drop panics too");
    }
}

/// Panics on every collect with a [`DropPanics`] payload.
#[derive(Default)]
struct Bomb;

impl Collector for Bomb {
    fn collect(&mut self) -> Result<Collection, PluginError> {
        std::panic::panic_any(DropPanics)
    }
}

/// `raw`: a collector that returns the bytes of the file `path` as its output, verbatim, so a test
/// can hand the host payloads the SDK would never write (`null` values, garbage, odd names). Built
/// on the ABI directly, as a plugin in another language would be.
mod raw {
    use std::ffi::c_void;
    use std::path::PathBuf;

    use monitor_plugin::abi::{OwnedBuffer, PluginKind, PluginVTable, Status, StrRef};

    unsafe fn respond(out: *mut OwnedBuffer, status: Status, bytes: Vec<u8>) -> u32 {
        if !out.is_null() {
            // SAFETY: the host passes a buffer valid for writes.
            unsafe { out.write(OwnedBuffer::from_vec(bytes)) };
        }
        status as u32
    }

    unsafe extern "C" fn create(
        config: *const u8,
        len: usize,
        instance: *mut *mut c_void,
        out: *mut OwnedBuffer,
    ) -> u32 {
        // SAFETY: the host passes `len` readable bytes.
        let config = unsafe { std::slice::from_raw_parts(config, len) };
        let path = serde_json::from_slice::<serde_json::Value>(config)
            .ok()
            .and_then(|v| v.get("path")?.as_str().map(PathBuf::from));
        let Some(path) = path else {
            // SAFETY: as above.
            return unsafe { respond(out, Status::Error, b"`path` is required".to_vec()) };
        };
        // SAFETY: the host passes a pointer valid for writes.
        unsafe { instance.write(Box::into_raw(Box::new(path)).cast()) };
        // SAFETY: as above.
        unsafe { respond(out, Status::Ok, Vec::new()) }
    }

    unsafe extern "C" fn call(
        instance: *mut c_void,
        _input: *const u8,
        _len: usize,
        out: *mut OwnedBuffer,
    ) -> u32 {
        // SAFETY: `instance` came from `create`.
        let path = unsafe { &*instance.cast::<PathBuf>() };
        match std::fs::read(path) {
            // SAFETY: as above.
            Ok(bytes) => unsafe { respond(out, Status::Ok, bytes) },
            // SAFETY: as above.
            Err(e) => unsafe { respond(out, Status::Error, e.to_string().into_bytes()) },
        }
    }

    unsafe extern "C" fn shutdown(_instance: *mut c_void, out: *mut OwnedBuffer) -> u32 {
        // SAFETY: as above.
        unsafe { respond(out, Status::Ok, Vec::new()) }
    }

    unsafe extern "C" fn destroy(instance: *mut c_void) {
        // SAFETY: `instance` came from `Box::into_raw` in `create` and is destroyed once.
        drop(unsafe { Box::from_raw(instance.cast::<PathBuf>()) });
    }

    static VTABLE: PluginVTable = PluginVTable {
        size: size_of::<PluginVTable>() as u32,
        kind: PluginKind::Collector as u32,
        name: StrRef::from_static("raw"),
        version: StrRef::from_static("0"),
        create,
        call,
        shutdown,
        destroy,
        create_with_host: None,
    };

    monitor_plugin::__private::inventory::submit! {
        monitor_plugin::__private::Registration(&VTABLE)
    }
}

/// Appends every notification, as one JSON line, to `path`.
#[derive(Default)]
struct Recorder(Common);

impl AlertNotifier for Recorder {
    fn configure(&mut self, config: &serde_json::Value) -> Result<(), PluginError> {
        self.0 = parse_config(config)?;
        Ok(())
    }

    fn notify(&mut self, n: &Notification) -> Result<(), PluginError> {
        let path = self.0.path.as_ref().ok_or("`path` is required")?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        writeln!(f, "{}", serde_json::to_string(n)?)?;
        Ok(())
    }

    fn shutdown(&mut self) -> Result<(), PluginError> {
        self.0.log_shutdown("recorder")
    }
}

/// Writes `value` to `path` (repairing what the file collector reads) and reports `succeed`, or
/// with a `pattern`, succeeds (and repairs) on the calls it marks. Without `path`, it reports
/// success and repairs nothing.
#[derive(Default)]
struct Fixer(Common);

impl HealingStrategy for Fixer {
    fn configure(&mut self, config: &serde_json::Value) -> Result<(), PluginError> {
        self.0 = parse_config(config)?;
        Ok(())
    }

    fn heal(&mut self, failure: &Failure) -> Result<HealOutcome, PluginError> {
        let mut succeed = self.0.succeed.unwrap_or(true);
        if let (Some(pattern), Some(counter)) = (&self.0.pattern, &self.0.counter) {
            let n: usize = std::fs::read_to_string(counter)
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0);
            std::fs::write(counter, (n + 1).to_string())?;
            succeed = pattern.as_bytes()[n % pattern.len()] == b'1';
        }
        if let (true, Some(p)) = (succeed, &self.0.path) {
            std::fs::write(p, self.0.value.unwrap_or(0.0).to_string())?;
        }
        Ok(HealOutcome {
            success: succeed,
            message: format!("attempt {} on {}", failure.attempt, failure.alert),
            duration_ms: 1,
        })
    }

    fn shutdown(&mut self) -> Result<(), PluginError> {
        self.0.log_shutdown("fixer")
    }
}

/// Asks the host for another collection from inside every collection: the most eager collector
/// there can be. Counts its calls in `test.asker.calls`.
#[derive(Default)]
struct Asker {
    host: Option<Host>,
    calls: u64,
}

impl Collector for Asker {
    fn attach_host(&mut self, host: Host) {
        self.host = Some(host);
    }

    fn collect(&mut self) -> Result<Collection, PluginError> {
        self.calls += 1;
        let asked = self.host.as_ref().is_some_and(Host::request_collection);
        if !asked {
            return Err("no host to ask".into());
        }
        Ok(Collection {
            samples: vec![Sample::counter("test.asker.calls", self.calls as f64)],
            events: vec![],
        })
    }
}

monitor_plugin::export_plugin! {
    collector "asker" => Asker,
    collector "file" => FileCollector,
    collector "flaky" => Flaky,
    collector "panicky" => Panicky,
    collector "sleepy" => Sleepy,
    collector "flood" => Flood,
    collector "panicky-drop" => Bomb,
    collector "slow" => Slow,
    collector "label-churn" => Churn,
    collector "crashy" => Crashy,
    notifier "recorder" => Recorder,
    strategy "fixer" => Fixer,
}
