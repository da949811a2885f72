//! The [`Registry`]: every instrumented function and named operation, and the
//! views over them (snapshot, report, exports).

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{OnceLock, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use crate::__private::CallsiteRef;
use crate::callsite::{Call, Callsite, CallsiteFigures};
use crate::clock::WindowIndex;
use crate::guard::Guard;
use crate::report::{Report, ReportConfig};
use crate::snapshot::{FunctionStats, Snapshot};

/// Instrumented functions and named operations, and their figures.
///
/// [`global()`] is the registry `#[monitor_performance]` records into; it
/// lists every instrumented function linked into the program, called or not.
/// A `Registry::new()` holds only the named operations recorded through it.
/// Every method takes `&self` and may run while other threads record.
pub struct Registry {
    include_static: bool,
    /// Named callsites. Boxed so their addresses stay put while the map grows;
    /// entries are never removed while the registry lives.
    named: RwLock<HashMap<Box<str>, Box<Callsite>>>,
    config: RwLock<ReportConfig>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("include_static", &self.include_static)
            .finish_non_exhaustive()
    }
}

static GLOBAL: OnceLock<Registry> = OnceLock::new();

/// The process-wide registry that instrumented functions record into.
pub fn global() -> &'static Registry {
    GLOBAL.get_or_init(|| Registry {
        include_static: true,
        ..Registry::new()
    })
}

/// Calibrates the clock and builds the global registry now, instead of on
/// the first recorded call (clock calibration takes from 0.5 ms to 200 ms).
/// Optional; call it early in `main` to keep that pause off a hot request.
pub fn init() -> &'static Registry {
    crate::clock::now_raw();
    global()
}

thread_local! {
    /// The last named callsites this thread used through [`guard`].
    static RECENT: RefCell<[Option<&'static Callsite>; 4]> = const { RefCell::new([None; 4]) };
}

/// Starts timing a named operation in the global registry; records on drop.
///
/// Names are interned: the first use of a name allocates its callsite, later
/// uses on the same thread hit a small cache. Use low-cardinality names.
///
/// ```
/// let g = monitor_core::guard("checkout");
/// g.fail();
/// drop(g);
/// assert_eq!(monitor_core::global().function("checkout").unwrap().failures, 1);
/// ```
#[inline]
pub fn guard(name: &str) -> Guard<'static> {
    if !crate::is_enabled() {
        return Guard::disabled();
    }
    let cached = RECENT
        .try_with(|recent| {
            recent
                .borrow()
                .iter()
                .flatten()
                .find(|c| c.name() == name)
                .copied()
        })
        .ok()
        .flatten();
    let callsite = match cached {
        Some(c) => c,
        None => {
            let c = global().callsite(name);
            let _ = RECENT.try_with(|recent| {
                let mut recent = recent.borrow_mut();
                recent.rotate_right(1);
                recent[0] = Some(c);
            });
            c
        }
    };
    Guard::new(callsite)
}

impl Registry {
    /// An empty registry of named operations.
    pub fn new() -> Self {
        crate::panic::install_panic_hook();
        Self {
            include_static: false,
            named: RwLock::new(HashMap::new()),
            config: RwLock::new(ReportConfig::default()),
        }
    }

    /// The callsite of a named operation, created on first use.
    pub fn callsite(&self, name: &str) -> &Callsite {
        crate::alloc::excluded(|| self.callsite_counted(name))
    }

    fn callsite_counted(&self, name: &str) -> &Callsite {
        let ptr: *const Callsite = {
            let named = self.named.read().unwrap_or_else(PoisonError::into_inner);
            match named.get(name) {
                Some(c) => &**c,
                None => {
                    drop(named);
                    let mut named = self.named.write().unwrap_or_else(PoisonError::into_inner);
                    &**named
                        .entry(name.into())
                        .or_insert_with(|| Box::new(Callsite::new_named(name.to_owned())))
                }
            }
        };
        // SAFETY: the callsite is boxed (its address survives map growth) and
        // entries are never removed while `self` lives, so it outlives `&self`.
        unsafe { &*ptr }
    }

    /// Starts timing a named operation of this registry; records on drop.
    pub fn guard(&self, name: &str) -> Guard<'_> {
        if !crate::is_enabled() {
            return Guard::disabled();
        }
        Guard::new(self.callsite(name))
    }

    /// Records one call of a named operation measured elsewhere.
    pub fn record(&self, name: &str, duration: Duration, success: bool) {
        if !crate::is_enabled() {
            return;
        }
        let call = Call {
            duration_ns: duration.as_nanos() as u64,
            failed: !success,
            ..Call::default()
        };
        let callsite = self.callsite(name);
        callsite.record(&call, crate::clock::now_raw());
        if !success {
            callsite.push_failure(crate::failure::FailureRecord {
                at: SystemTime::now(),
                message: "failed".to_owned(),
                panicked: false,
            });
        }
    }

    /// Records one call of a named operation that ended at `at` (back-filling).
    pub fn record_at(&self, name: &str, duration: Duration, success: bool, at: SystemTime) {
        let call = Call {
            duration_ns: duration.as_nanos() as u64,
            failed: !success,
            ..Call::default()
        };
        self.callsite(name).record_at(&call, at);
    }

    /// Every callsite this registry lists: instrumented functions (global
    /// registry only) then named operations.
    pub fn callsites(&self) -> Vec<&Callsite> {
        let mut all: Vec<&Callsite> = Vec::new();
        if self.include_static {
            all.extend(inventory::iter::<CallsiteRef>.into_iter().map(|r| r.0));
        }
        let named = self.named.read().unwrap_or_else(PoisonError::into_inner);
        for callsite in named.values() {
            let ptr: *const Callsite = &**callsite;
            // SAFETY: as in `callsite`: boxed, never removed while `self` lives.
            all.push(unsafe { &*ptr });
        }
        all
    }

    /// The report thresholds and trend settings in use.
    pub fn config(&self) -> ReportConfig {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the report thresholds and trend settings.
    pub fn set_config(&self, config: ReportConfig) {
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = config;
    }

    /// Per-name figures merged across callsites sharing a name, sorted by name.
    /// Only callsites that `keep` accepts are read.
    fn figures(
        &self,
        now: WindowIndex,
        keep: impl Fn(&Callsite) -> bool,
    ) -> Vec<(&Callsite, CallsiteFigures)> {
        let mut merged: Vec<(&Callsite, CallsiteFigures)> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for callsite in self.callsites().into_iter().filter(|c| keep(c)) {
            let figures = callsite.read(now);
            match index.get(callsite.name()) {
                Some(&i) => merged[i].1.merge(&figures),
                None => {
                    index.insert(callsite.name(), merged.len());
                    merged.push((callsite, figures));
                }
            }
        }
        merged.sort_by(|a, b| a.0.name().cmp(b.0.name()));
        merged
    }

    /// Every function's figures now. Exact once recording has stopped.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot_at(SystemTime::now())
    }

    /// Every function's figures, with time windows judged as of `now`.
    pub fn snapshot_at(&self, now: SystemTime) -> Snapshot {
        let config = self.config();
        let functions: Vec<FunctionStats> = self
            .figures(WindowIndex::of_time(now), |_| true)
            .into_iter()
            .map(|(callsite, figures)| stats(callsite, &figures, &config))
            .collect();
        Snapshot {
            generated_at: now,
            allocator: crate::alloc::is_active(),
            warnings: config.warnings(&functions),
            functions,
        }
    }

    /// One function's figures by name (reads only that function's callsites).
    pub fn function(&self, name: &str) -> Option<FunctionStats> {
        let (callsite, figures) = self
            .figures(WindowIndex::now(), |c| c.name() == name)
            .into_iter()
            .next()?;
        Some(stats(callsite, &figures, &self.config()))
    }

    /// The `n` functions with the highest mean latency (called ones only).
    pub fn slowest(&self, n: usize) -> Vec<FunctionStats> {
        let mut functions: Vec<_> = self
            .snapshot()
            .functions
            .into_iter()
            .filter(|f| f.calls > 0)
            .collect();
        functions.sort_by(|a, b| b.duration_ns.mean.total_cmp(&a.duration_ns.mean));
        functions.truncate(n);
        functions
    }

    /// The `n` functions with the most calls (called ones only).
    pub fn most_called(&self, n: usize) -> Vec<FunctionStats> {
        let mut functions: Vec<_> = self
            .snapshot()
            .functions
            .into_iter()
            .filter(|f| f.calls > 0)
            .collect();
        functions.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.name.cmp(&b.name)));
        functions.truncate(n);
        functions
    }

    /// The human report: a table of functions and the warnings that apply.
    pub fn report(&self) -> Report {
        Report::new(self.snapshot())
    }

    /// Writes the Prometheus text exposition (format 0.0.4) of every function.
    ///
    /// # Errors
    /// Whatever `out` returns.
    pub fn write_prometheus<W: Write>(&self, out: &mut W) -> io::Result<()> {
        crate::prometheus::write(&self.snapshot(), out)
    }

    /// Writes the snapshot as JSON to `path` atomically: a temporary file in
    /// the same directory, flushed to disk, then renamed over `path`. A crash
    /// or a full disk never leaves a truncated file at `path`.
    ///
    /// # Errors
    /// An I/O error naming the file that could not be written.
    pub fn export_json(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(&self.snapshot()).map_err(io::Error::other)?;
        crate::export::write_atomically(path.as_ref(), &json)
    }

    /// Writes every called function's latency histogram (ns) to `out` in the
    /// HdrHistogram interval-log format (V2 compressed histograms, one
    /// interval per function, tagged with the function's name), readable by
    /// HdrHistogram's own tools such as `HistogramLogProcessor`.
    ///
    /// # Errors
    /// Whatever `out` returns, or a serialisation failure.
    pub fn write_hdr_log<W: Write>(&self, out: &mut W) -> io::Result<()> {
        crate::export::write_hdr_log(&self.snapshot(), out)
    }

    /// Forgets every figure recorded so far; functions stay listed.
    pub fn reset(&self) {
        for callsite in self.callsites() {
            callsite.reset();
        }
    }
}

/// One callsite's figures with its trend judged under `config`.
fn stats(callsite: &Callsite, figures: &CallsiteFigures, config: &ReportConfig) -> FunctionStats {
    FunctionStats::new(callsite, figures, config.trend.judge(&figures.minutes))
}
