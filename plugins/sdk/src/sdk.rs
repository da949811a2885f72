//! The Rust side of the SDK: the three plugin traits, their glue to the C ABI, and what the
//! library's entry symbols (emitted by `export_plugin!`) answer.

use std::any::Any;
use std::ffi::c_void;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::abi::{self, Declaration, OwnedBuffer, PluginKind, PluginVTable, Status, StrRef};
use super::types::{Collection, Failure, HealOutcome, Notification};

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
/// The host creates the value with `Default`, calls [`configure`](Self::configure) once with the
/// instance's `[collector.config]` table, then [`collect`](Self::collect) every interval on one
/// dedicated thread, and [`shutdown`](Self::shutdown) once when it stops.
pub trait Collector: Send + 'static {
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
    fn create(config: &serde_json::Value) -> Result<Self, PluginError>;
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
pub struct CollectorAdapter<T>(T);

impl<T: Collector + Default> Adapter for CollectorAdapter<T> {
    const KIND: PluginKind = PluginKind::Collector;
    fn create(config: &serde_json::Value) -> Result<Self, PluginError> {
        let mut inner = T::default();
        inner.configure(config)?;
        Ok(Self(inner))
    }
    fn call(&mut self, _input: &[u8]) -> Result<Vec<u8>, CallError> {
        let out: Collection = self.0.collect().map_err(CallError::Plugin)?;
        encode(&out)
    }
    fn shutdown(&mut self) -> Result<(), PluginError> {
        self.0.shutdown()
    }
}

/// Glue for a [`HealingStrategy`].
#[doc(hidden)]
pub struct StrategyAdapter<T>(T);

impl<T: HealingStrategy + Default> Adapter for StrategyAdapter<T> {
    const KIND: PluginKind = PluginKind::Strategy;
    fn create(config: &serde_json::Value) -> Result<Self, PluginError> {
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
    fn create(config: &serde_json::Value) -> Result<Self, PluginError> {
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

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        format!("plugin panicked: {s}")
    } else if let Some(s) = payload.downcast_ref::<String>() {
        format!("plugin panicked: {s}")
    } else {
        "plugin panicked".to_owned()
    }
}

/// Writes `bytes` into `*out` (if `out` is not null) and returns `status` as a raw value.
///
/// # Safety
///
/// `out` is null or valid for a write of an `OwnedBuffer`.
unsafe fn respond(out: *mut OwnedBuffer, status: Status, bytes: Vec<u8>) -> u32 {
    if !out.is_null() {
        // SAFETY: the caller guarantees `out` is valid for writes.
        unsafe { out.write(OwnedBuffer::from_vec(bytes)) };
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
        Err(p) => (Status::Panicked, panic_message(&*p).into_bytes()),
    }
}

unsafe extern "C" fn glue_create<A: Adapter>(
    config: *const u8,
    config_len: usize,
    instance: *mut *mut c_void,
    out: *mut OwnedBuffer,
) -> u32 {
    // SAFETY: the ABI requires `config` to point to `config_len` bytes for the call.
    let input = unsafe { bytes(config, config_len) };
    let result = catch_unwind(AssertUnwindSafe(|| {
        if instance.is_null() {
            return Err(CallError::Input("null instance pointer".into()));
        }
        let value: serde_json::Value = if input.is_empty() {
            serde_json::Value::Object(Default::default())
        } else {
            serde_json::from_slice(input)
                .map_err(|e| CallError::Input(format!("config is not JSON: {e}")))?
        };
        let adapter = A::create(&value).map_err(CallError::Plugin)?;
        let ptr = Box::into_raw(Box::new(adapter)).cast::<c_void>();
        // SAFETY: `instance` is non-null (checked above) and valid for writes per the ABI.
        unsafe { instance.write(ptr) };
        Ok(Vec::new())
    }));
    let (status, message) = outcome(result);
    // SAFETY: `out` is null or valid for writes per the ABI.
    unsafe { respond(out, status, message) }
}

unsafe extern "C" fn glue_call<A: Adapter>(
    instance: *mut c_void,
    input: *const u8,
    input_len: usize,
    out: *mut OwnedBuffer,
) -> u32 {
    // SAFETY: the ABI requires `input` to point to `input_len` bytes for the call.
    let input = unsafe { bytes(input, input_len) };
    let result = catch_unwind(AssertUnwindSafe(|| {
        if instance.is_null() {
            return Err(CallError::Input("null instance".into()));
        }
        // SAFETY: `instance` came from `glue_create::<A>` and the host uses it from one thread at
        // a time.
        let adapter = unsafe { &mut *instance.cast::<A>() };
        adapter.call(input)
    }));
    let (status, message) = outcome(result);
    // SAFETY: `out` is null or valid for writes per the ABI.
    unsafe { respond(out, status, message) }
}

unsafe extern "C" fn glue_shutdown<A: Adapter>(
    instance: *mut c_void,
    out: *mut OwnedBuffer,
) -> u32 {
    let result = catch_unwind(AssertUnwindSafe(|| {
        if instance.is_null() {
            return Err(CallError::Input("null instance".into()));
        }
        // SAFETY: `instance` came from `glue_create::<A>`; one thread at a time.
        let adapter = unsafe { &mut *instance.cast::<A>() };
        adapter
            .shutdown()
            .map(|()| Vec::new())
            .map_err(CallError::Plugin)
    }));
    let (status, message) = outcome(result);
    // SAFETY: `out` is null or valid for writes per the ABI.
    unsafe { respond(out, status, message) }
}

unsafe extern "C" fn glue_destroy<A: Adapter>(instance: *mut c_void) {
    if instance.is_null() {
        return;
    }
    // A panicking `Drop` must not unwind into the host, so it is caught and dropped on the floor.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `instance` came from `Box::into_raw` in `glue_create::<A>` and is destroyed once.
        drop(unsafe { Box::from_raw(instance.cast::<A>()) });
    }));
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
    catch_unwind(declaration).map_or(std::ptr::null(), |d| d as *const Declaration)
}
