//! The Rust side of the SDK: the three plugin traits, their glue to the C ABI, and what the
//! library's entry symbols (emitted by `export_plugin!`) answer.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::abi::{
    self, Declaration, HostTable, OwnedBuffer, PluginKind, PluginVTable, Status, StrRef,
};
use super::host::Host;
use super::pool;
use super::types::{Collection, Failure, HealOutcome, Notification};
use super::writer::CollectionWriter;

/// An error a plugin reports to the host: a message, shown in the host's reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    message: String,
}

impl PluginError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PluginError {}

impl From<String> for PluginError {
    fn from(message: String) -> Self {
        Self { message }
    }
}

impl From<&str> for PluginError {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

impl From<std::io::Error> for PluginError {
    fn from(e: std::io::Error) -> Self {
        Self::new(e.to_string())
    }
}

impl From<serde_json::Error> for PluginError {
    fn from(e: serde_json::Error) -> Self {
        Self::new(e.to_string())
    }
}

/// Reads a plugin's `[...config]` table into a typed struct (use `#[serde(deny_unknown_fields)]`
/// on it to reject typos).
///
/// # Errors
///
/// The deserialisation error, as a [`PluginError`] whose message names the offending key.
pub fn parse_config<T: DeserializeOwned>(config: &serde_json::Value) -> Result<T, PluginError> {
    T::deserialize(config).map_err(|e| PluginError::new(format!("invalid config: {e}")))
}

/// A plugin that measures something on each call.
///
/// The host creates the value with `Default`, hands it the [`Host`] handle
/// ([`attach_host`](Self::attach_host)) when it offers one, calls [`configure`](Self::configure)
/// once with the instance's `[collector.config]` table, then [`collect`](Self::collect) every
/// interval on one dedicated thread, and [`shutdown`](Self::shutdown) once when it stops. A
/// collector that notices a change by itself (an event, a file watch, a process exit) asks for an
/// earlier collection through the handle.
pub trait Collector: Send + 'static {
    /// Receives the host's handle, before [`configure`](Self::configure); keep it to call
    /// [`Host::request_collection`] later, from any thread. Not called by a host that offers no
    /// handle (one older than this method): the collector is then only called on its schedule.
    fn attach_host(&mut self, host: Host) {
        let _ = host;
    }

    /// Applies the instance's configuration (`{}` when the config has none).
    ///
    /// # Errors
    ///
    /// A bad configuration; the host reports it against the config file and does not start.
    fn configure(&mut self, config: &serde_json::Value) -> Result<(), PluginError> {
        let _ = config;
        Ok(())
    }

    /// Measures and returns samples and events.
    ///
    /// # Errors
    ///
    /// A failed measurement; the host counts it and backs off if it keeps failing.
    fn collect(&mut self) -> Result<Collection, PluginError>;

    /// Measures and writes samples and events into `out`: what the host calls. The default
    /// writes what [`collect`](Self::collect) returns; a collector with many values per call
    /// overrides it to write each value from borrowed parts, without an owned [`Sample`] apiece.
    /// What `out` holds when this returns an error is dropped.
    ///
    /// [`Sample`]: crate::Sample
    ///
    /// # Errors
    ///
    /// As [`collect`](Self::collect).
    fn collect_into(&mut self, out: &mut CollectionWriter) -> Result<(), PluginError> {
        out.push_collection(self.collect()?);
        Ok(())
    }

    /// Releases resources before the host exits.
    ///
    /// # Errors
    ///
    /// Reported by the host; the instance is destroyed anyway.
    fn shutdown(&mut self) -> Result<(), PluginError> {
        Ok(())
    }
}

/// A plugin that tries to fix what an alert found.
pub trait HealingStrategy: Send + 'static {
    /// Applies the instance's `[strategy.config]` table.
    ///
    /// # Errors
    ///
    /// A bad configuration.
    fn configure(&mut self, config: &serde_json::Value) -> Result<(), PluginError> {
        let _ = config;
        Ok(())
    }

    /// Attempts a repair and says how it went. Return `Ok` with `success: false` for an attempt that
    /// ran but did not help; `Err` for one that could not run.
    ///
    /// # Errors
    ///
    /// The attempt could not be made.
    fn heal(&mut self, failure: &Failure) -> Result<HealOutcome, PluginError>;

    /// Releases resources before the host exits.
    ///
    /// # Errors
    ///
    /// Reported by the host.
    fn shutdown(&mut self) -> Result<(), PluginError> {
        Ok(())
    }
}

/// A plugin that tells someone about alerts firing and resolving.
pub trait AlertNotifier: Send + 'static {
    /// Applies the instance's `[notifier.config]` table.
    ///
    /// # Errors
    ///
    /// A bad configuration.
    fn configure(&mut self, config: &serde_json::Value) -> Result<(), PluginError> {
        let _ = config;
        Ok(())
    }

    /// Delivers one notification.
    ///
    /// # Errors
    ///
    /// Delivery failed; the host counts it.
    fn notify(&mut self, notification: &Notification) -> Result<(), PluginError>;

    /// Releases resources before the host exits.
    ///
    /// # Errors
    ///
    /// Reported by the host.
    fn shutdown(&mut self) -> Result<(), PluginError> {
        Ok(())
    }
}

/// Why a glued call failed, before it is turned into a status and a message (glue only).
#[doc(hidden)]
pub enum CallError {
    Plugin(PluginError),
    Input(String),
}

/// The uniform face the C glue needs; one adapter per plugin trait.
#[doc(hidden)]
pub trait Adapter: Sized + 'static {
    const KIND: PluginKind;
    fn create(config: &serde_json::Value, host: Option<Host>) -> Result<Self, PluginError>;
    fn call(&mut self, input: &[u8]) -> Result<Vec<u8>, CallError>;
    fn shutdown(&mut self) -> Result<(), PluginError>;
}

fn decode<T: DeserializeOwned>(input: &[u8]) -> Result<T, CallError> {
    serde_json::from_slice(input).map_err(|e| CallError::Input(format!("invalid input: {e}")))
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CallError> {
    serde_json::to_vec(value).map_err(|e| CallError::Plugin(PluginError::from(e)))
}

/// Glue for a [`Collector`].
#[doc(hidden)]
pub struct CollectorAdapter<T> {
    inner: T,
    /// The length of the previous answer: the next one is written into a buffer of at least
    /// that size, so a large collection is not copied as its buffer grows.
    last_len: usize,
}

impl<T: Collector + Default> Adapter for CollectorAdapter<T> {
    const KIND: PluginKind = PluginKind::Collector;
    fn create(config: &serde_json::Value, host: Option<Host>) -> Result<Self, PluginError> {
        let mut inner = T::default();
        if let Some(host) = host {
            inner.attach_host(host);
        }
        inner.configure(config)?;
        Ok(Self { inner, last_len: 0 })
    }
    fn call(&mut self, _input: &[u8]) -> Result<Vec<u8>, CallError> {
        // The previous answer's memory, given back by the host when it released it (see `pool`).
        let buf = pool::take(self.last_len + self.last_len / 8 + 64);
        let mut out = CollectionWriter::from_vec(buf);
        if let Err(e) = self.inner.collect_into(&mut out) {
            pool::give_back(out.finish());
            return Err(CallError::Plugin(e));
        }
        let bytes = out.finish();
        self.last_len = bytes.len();
        Ok(bytes)
    }
    fn shutdown(&mut self) -> Result<(), PluginError> {
        self.inner.shutdown()
    }
}

/// Glue for a [`HealingStrategy`].
#[doc(hidden)]
pub struct StrategyAdapter<T>(T);

impl<T: HealingStrategy + Default> Adapter for StrategyAdapter<T> {
    const KIND: PluginKind = PluginKind::Strategy;
    fn create(config: &serde_json::Value, _host: Option<Host>) -> Result<Self, PluginError> {
        let mut inner = T::default();
        inner.configure(config)?;
        Ok(Self(inner))
    }
    fn call(&mut self, input: &[u8]) -> Result<Vec<u8>, CallError> {
        let failure: Failure = decode(input)?;
        let out = self.0.heal(&failure).map_err(CallError::Plugin)?;
        encode(&out)
    }
    fn shutdown(&mut self) -> Result<(), PluginError> {
        self.0.shutdown()
    }
}

/// Glue for an [`AlertNotifier`].
#[doc(hidden)]
pub struct NotifierAdapter<T>(T);

impl<T: AlertNotifier + Default> Adapter for NotifierAdapter<T> {
    const KIND: PluginKind = PluginKind::Notifier;
    fn create(config: &serde_json::Value, _host: Option<Host>) -> Result<Self, PluginError> {
        let mut inner = T::default();
        inner.configure(config)?;
        Ok(Self(inner))
    }
    fn call(&mut self, input: &[u8]) -> Result<Vec<u8>, CallError> {
        let notification: Notification = decode(input)?;
        self.0.notify(&notification).map_err(CallError::Plugin)?;
        Ok(Vec::new())
    }
    fn shutdown(&mut self) -> Result<(), PluginError> {
        self.0.shutdown()
    }
}

/// The one-line text of a caught panic: its message and where it happened, as the SDK's panic hook
/// recorded them, then (after a line feed) the backtrace when one was captured
/// (`RUST_BACKTRACE`). The host shows the first line and logs the rest at debug level.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    let recorded = LAST_PANIC.with(|p| p.borrow_mut().take());
    let text = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        String::new()
    };
    let Some(r) = recorded else {
        return if text.is_empty() {
            "plugin panicked".to_owned()
        } else {
            format!("plugin panicked: {text}")
        };
    };
    let mut out = if text.is_empty() {
        format!("plugin panicked at {}", r.location)
    } else {
        // One line: a multi-line panic message would read as a backtrace.
        format!(
            "plugin panicked: {} at {}",
            text.replace('\n', " "),
            r.location
        )
    };
    if let Some(bt) = r.backtrace {
        out.push('\n');
        out.push_str(&bt);
    }
    out
}

/// Drops a caught panic's payload without letting a panicking `Drop` unwind out of an entry
/// point: the drop runs inside its own `catch_unwind`, and should that drop panic too, the second
/// payload is leaked with `mem::forget` (dropping it could panic again, with nothing left to catch
/// it). A leak of one small box per such panic is the price of never unwinding into the host.
fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = guarded(move || drop(payload)) {
        std::mem::forget(again);
    }
    // What the hook noted about a panicking drop is not reported.
    let _ = LAST_PANIC.try_with(|p| p.borrow_mut().take());
}

/// What the SDK's panic hook noted about the panic being caught on this thread.
struct RecordedPanic {
    location: String,
    backtrace: Option<String>,
}

thread_local! {
    /// Set while an entry point runs the plugin's code on this thread.
    static IN_ENTRY: Cell<bool> = const { Cell::new(false) };
    /// The latest panic caught inside an entry point on this thread.
    static LAST_PANIC: RefCell<Option<RecordedPanic>> =
        const { RefCell::new(None) };
}

/// Installs, once, a panic hook that keeps the panics of plugin code off stderr: a panic inside an
/// entry point is noted (location, and a backtrace when `RUST_BACKTRACE` asks for one) for the
/// error message the host receives and logs as one line; any other panic goes to the hook that was
/// installed before. Each plugin library has its own copy of the standard library, hence its own
/// hook; in a program that links plugins in, the program's hook still sees its own panics.
fn install_panic_hook() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    // Changing the hook while this thread panics would abort.
    if std::thread::panicking() {
        return;
    }
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_ENTRY.try_with(Cell::get).unwrap_or(false) {
                previous(info);
                return;
            }
            let location = info.location().map_or_else(
                || "an unknown place".to_owned(),
                |l| format!("{}:{}", l.file(), l.line()),
            );
            let bt = std::backtrace::Backtrace::capture();
            let backtrace =
                (bt.status() == std::backtrace::BacktraceStatus::Captured).then(|| bt.to_string());
            let _ = LAST_PANIC.try_with(|p| {
                *p.borrow_mut() = Some(RecordedPanic {
                    location,
                    backtrace,
                });
            });
        }));
    });
}

/// Runs plugin code with panics caught, noted by the SDK's hook instead of printed.
fn guarded<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    install_panic_hook();
    let outer = IN_ENTRY.with(|e| e.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    IN_ENTRY.with(|e| e.set(outer));
    result
}

/// Writes `bytes` into `*out` (if `out` is not null) and returns `status` as a raw value.
///
/// # Safety
///
/// `out` is null or valid for a write of an `OwnedBuffer`.
unsafe fn respond(out: *mut OwnedBuffer, status: Status, bytes: Vec<u8>) -> u32 {
    if !out.is_null() {
        // SAFETY: the caller guarantees `out` is valid for writes.
        unsafe { out.write(pool::lend(bytes)) };
    }
    status as u32
}

/// Borrows `(ptr, len)` as a byte slice, empty when null.
///
/// # Safety
///
/// `ptr` is null or points to `len` readable bytes that outlive the returned slice.
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

/// Turns a caught result into the status and message the ABI carries.
fn outcome(result: std::thread::Result<Result<Vec<u8>, CallError>>) -> (Status, Vec<u8>) {
    match result {
        Ok(Ok(bytes)) => (Status::Ok, bytes),
        Ok(Err(CallError::Plugin(e))) => (Status::Error, e.message.into_bytes()),
        Ok(Err(CallError::Input(m))) => (Status::Incompatible, m.into_bytes()),
        Err(p) => {
            let message = panic_message(&*p);
            drop_payload(p);
            (Status::Panicked, message.into_bytes())
        }
    }
}

/// An instance as the glue holds it: the plugin and the host handle it was given, cut off from
/// the host when the instance is destroyed.
struct Instance<A> {
    adapter: A,
    host: Option<Host>,
}

/// Creates an instance for `create` and `create_with_host`.
///
/// # Safety
///
/// `config` points to `config_len` bytes for the call; `instance` and `out` are null or valid for
/// writes; `host` is as [`Host::from_table`] requires.
unsafe fn create_instance<A: Adapter>(
    config: *const u8,
    config_len: usize,
    host: Option<*const HostTable>,
    instance: *mut *mut c_void,
    out: *mut OwnedBuffer,
) -> u32 {
    // SAFETY: the ABI requires `config` to point to `config_len` bytes for the call.
    let input = unsafe { bytes(config, config_len) };
    // SAFETY: forwarded from the caller.
    let host = host.map(|t| unsafe { Host::from_table(t) });
    let given = host.clone();
    let result = guarded(|| {
        if instance.is_null() {
            return Err(CallError::Input("null instance pointer".into()));
        }
        let value: serde_json::Value = if input.is_empty() {
            serde_json::Value::Object(Default::default())
        } else {
            serde_json::from_slice(input)
                .map_err(|e| CallError::Input(format!("config is not JSON: {e}")))?
        };
        let adapter = A::create(&value, given.clone()).map_err(CallError::Plugin)?;
        let boxed = Box::new(Instance {
            adapter,
            host: given,
        });
        let ptr = Box::into_raw(boxed).cast::<c_void>();
        // SAFETY: `instance` is non-null (checked above) and valid for writes per the ABI.
        unsafe { instance.write(ptr) };
        Ok(Vec::new())
    });
    let (status, message) = outcome(result);
    if status != Status::Ok
        && let Some(h) = host
    {
        // The host's table is only valid until a failed create returns.
        h.revoke();
    }
    // SAFETY: `out` is null or valid for writes per the ABI.
    unsafe { respond(out, status, message) }
}

unsafe extern "C" fn glue_create<A: Adapter>(
    config: *const u8,
    config_len: usize,
    instance: *mut *mut c_void,
    out: *mut OwnedBuffer,
) -> u32 {
    // SAFETY: the ABI's requirements on the arguments are the function's.
    unsafe { create_instance::<A>(config, config_len, None, instance, out) }
}

unsafe extern "C" fn glue_create_with_host<A: Adapter>(
    config: *const u8,
    config_len: usize,
    host: *const HostTable,
    instance: *mut *mut c_void,
    out: *mut OwnedBuffer,
) -> u32 {
    // SAFETY: the ABI's requirements on the arguments are the function's; `host` is null or a
    // table valid until the instance is destroyed.
    unsafe { create_instance::<A>(config, config_len, Some(host), instance, out) }
}

unsafe extern "C" fn glue_call<A: Adapter>(
    instance: *mut c_void,
    input: *const u8,
    input_len: usize,
    out: *mut OwnedBuffer,
) -> u32 {
    // SAFETY: the ABI requires `input` to point to `input_len` bytes for the call.
    let input = unsafe { bytes(input, input_len) };
    let result = guarded(|| {
        if instance.is_null() {
            return Err(CallError::Input("null instance".into()));
        }
        // SAFETY: `instance` came from `create_instance::<A>` and the host uses it from one thread
        // at a time.
        let instance = unsafe { &mut *instance.cast::<Instance<A>>() };
        instance.adapter.call(input)
    });
    let (status, message) = outcome(result);
    // SAFETY: `out` is null or valid for writes per the ABI.
    unsafe { respond(out, status, message) }
}

unsafe extern "C" fn glue_shutdown<A: Adapter>(
    instance: *mut c_void,
    out: *mut OwnedBuffer,
) -> u32 {
    let result = guarded(|| {
        if instance.is_null() {
            return Err(CallError::Input("null instance".into()));
        }
        // SAFETY: `instance` came from `create_instance::<A>`; one thread at a time.
        let instance = unsafe { &mut *instance.cast::<Instance<A>>() };
        instance
            .adapter
            .shutdown()
            .map(|()| Vec::new())
            .map_err(CallError::Plugin)
    });
    let (status, message) = outcome(result);
    // SAFETY: `out` is null or valid for writes per the ABI.
    unsafe { respond(out, status, message) }
}

unsafe extern "C" fn glue_destroy<A: Adapter>(instance: *mut c_void) {
    if instance.is_null() {
        return;
    }
    // SAFETY: `instance` came from `Box::into_raw` in `create_instance::<A>` and is destroyed
    // once.
    let boxed = unsafe { Box::from_raw(instance.cast::<Instance<A>>()) };
    let host = boxed.host.clone();
    // A panicking `Drop` must not unwind into the host: it is caught, and its payload dropped
    // inside a `catch_unwind` of its own.
    let result = guarded(move || drop(boxed));
    if let Err(p) = result {
        drop_payload(p);
    }
    // The plugin's threads may still hold clones: from now on they reach nothing.
    if let Some(h) = host {
        h.revoke();
    }
}

/// Builds the vtable of a plugin; used by [`export_plugin!`](crate::export_plugin).
#[doc(hidden)]
pub const fn vtable<A: Adapter>(name: &'static str, version: &'static str) -> PluginVTable {
    PluginVTable {
        size: size_of::<PluginVTable>() as u32,
        kind: A::KIND as u32,
        name: StrRef::from_static(name),
        version: StrRef::from_static(version),
        create: glue_create::<A>,
        call: glue_call::<A>,
        shutdown: glue_shutdown::<A>,
        destroy: glue_destroy::<A>,
        create_with_host: Some(glue_create_with_host::<A>),
    }
}

/// One plugin registered with [`export_plugin!`](crate::export_plugin) in this binary or library.
#[doc(hidden)]
pub struct Registration(pub &'static PluginVTable);

inventory::collect!(Registration);

/// Every plugin registered in the current binary (or, from inside a plugin library, in that
/// library), in no particular order.
///
/// The host uses this for plugins linked into it; libraries answer the same list through
/// [`abi::ENTRY_SYMBOL`].
pub fn registered() -> impl Iterator<Item = &'static PluginVTable> {
    inventory::iter::<Registration>.into_iter().map(|r| r.0)
}

struct DeclarationHolder {
    declaration: Declaration,
    // Owns the array `declaration.plugins` points into.
    _plugins: Box<[*const PluginVTable]>,
}

// SAFETY: built once, never mutated; the pointers refer to `'static` vtables.
unsafe impl Sync for DeclarationHolder {}
// SAFETY: as above.
unsafe impl Send for DeclarationHolder {}

/// The declaration this copy of the SDK answers through [`abi::ENTRY_SYMBOL`].
pub fn declaration() -> &'static Declaration {
    static HOLDER: OnceLock<DeclarationHolder> = OnceLock::new();
    &HOLDER
        .get_or_init(|| {
            let plugins: Box<[*const PluginVTable]> =
                registered().map(|v| v as *const PluginVTable).collect();
            DeclarationHolder {
                declaration: Declaration {
                    size: size_of::<Declaration>() as u32,
                    abi_version: abi::ABI_VERSION,
                    sdk_version: StrRef::from_static(env!("CARGO_PKG_VERSION")),
                    plugins: plugins.as_ptr(),
                    plugin_count: plugins.len(),
                },
                _plugins: plugins,
            }
        })
        .declaration
}

/// What a library's entry symbol returns: the declaration, or null if building it panicked.
/// Called by the `monitor_plugin_declare` that [`export_plugin!`](crate::export_plugin) emits.
#[doc(hidden)]
pub fn declare() -> *const Declaration {
    // Building the declaration allocates and could in theory panic; never unwind into the host.
    match guarded(declaration) {
        Ok(d) => d as *const Declaration,
        Err(p) => {
            drop_payload(p);
            std::ptr::null()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Sample;

    /// A panic payload whose own `Drop` panics.
    struct Bomb;

    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("the payload's drop panics too");
        }
    }

    #[derive(Default)]
    struct Detonator;

    impl Collector for Detonator {
        fn collect(&mut self) -> Result<Collection, PluginError> {
            std::panic::panic_any(Bomb)
        }
    }

    impl Drop for Detonator {
        fn drop(&mut self) {
            std::panic::panic_any(Bomb);
        }
    }

    /// Reads and releases a buffer an entry point wrote.
    fn take(out: std::mem::MaybeUninit<OwnedBuffer>) -> String {
        // SAFETY: the entry point wrote the buffer.
        let b = unsafe { out.assume_init() };
        // SAFETY: `ptr` is null or points to `len` bytes until released.
        let text = String::from_utf8_lossy(unsafe { bytes(b.ptr, b.len) }).into_owned();
        if let Some(release) = b.release {
            // SAFETY: released once, by the function that came with it.
            unsafe { release(b.ptr, b.len) };
        }
        text
    }

    #[test]
    fn a_payload_whose_drop_panics_never_unwinds_out_of_an_entry_point() {
        let vt = vtable::<CollectorAdapter<Detonator>>("detonator", "0");
        let mut instance = std::ptr::null_mut();
        let mut out = std::mem::MaybeUninit::<OwnedBuffer>::uninit();
        // SAFETY: valid pointers for the call, as the host passes them.
        let status = unsafe { (vt.create)(std::ptr::null(), 0, &mut instance, out.as_mut_ptr()) };
        assert_eq!(status, Status::Ok as u32);
        take(out);
        let mut out = std::mem::MaybeUninit::<OwnedBuffer>::uninit();
        // SAFETY: as above; `instance` came from `create`.
        let status = unsafe { (vt.call)(instance, std::ptr::null(), 0, out.as_mut_ptr()) };
        assert_eq!(status, Status::Panicked as u32);
        let message = take(out);
        assert!(message.starts_with("plugin panicked at "), "{message}");
        assert!(message.contains("sdk.rs:"), "{message}");
        // SAFETY: `instance` came from `create` and is destroyed once; its Drop panics.
        unsafe { (vt.destroy)(instance) };
    }

    #[test]
    fn non_finite_sample_values_cross_as_strings() {
        let c = Collection {
            samples: vec![
                Sample::gauge("a", f64::NAN),
                Sample::gauge("b", f64::INFINITY),
                Sample::counter("c", f64::NEG_INFINITY),
                Sample::gauge("d", 0.25),
            ],
            events: vec![],
        };
        let mut bytes = Vec::new();
        c.write_json(&mut bytes);
        let json = String::from_utf8(bytes).unwrap();
        for part in [
            r#""value":"NaN""#,
            r#""value":"+Inf""#,
            r#""value":"-Inf""#,
            r#""value":0.25"#,
        ] {
            assert!(json.contains(part), "{part} in {json}");
        }
        let back: Collection = serde_json::from_str(&json).unwrap();
        assert!(back.samples[0].value.is_nan());
        assert_eq!(back.samples[1].value, f64::INFINITY);
        assert_eq!(back.samples[2].value, f64::NEG_INFINITY);
    }
}
