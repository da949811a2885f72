//! The C ABI between the host and plugin libraries: the only definition of it.
//!
//! Everything here is `#[repr(C)]` or `#[repr(u32)]`; nothing Rust-specific (no `&str`, `String`,
//! `Box<dyn _>`, `Result`, no unwinding) crosses it. `include/monitor_plugin.h` describes the same
//! layout for C, and a test keeps the two in sync.
//!
//! # Shape
//!
//! A library exports two symbols:
//!
//! * [`VERSION_SYMBOL`] (`monitor_plugin_abi_version`): `uint32_t (void)`, returning
//!   [`ABI_VERSION`]. Its signature never changes, so the host can always ask it first.
//! * [`ENTRY_SYMBOL`] (`monitor_plugin_declare`): `const MonitorPluginDeclaration *(void)`, only
//!   called once the version matched.
//!
//! The declaration lists [`PluginVTable`]s, one per plugin. A vtable creates instances from a JSON
//! configuration, calls them with JSON input and returns JSON output in [`OwnedBuffer`]s, which carry
//! the function that frees them: a buffer is always released by the side that allocated it.
//!
//! A vtable may also offer [`PluginVTable::create_with_host`] (appended to version 1): the host
//! then creates instances through it, handing each a [`HostTable`] of host functions it may call
//! from any thread until it is destroyed; today one, `request_collection`, with which a collector
//! asks to be collected now. The SDK fills it in and hands Rust plugins a [`Host`](crate::Host).
//! A table without it (null, or a `size` that ends before it: a plugin built before it existed)
//! is created with `create` and collected on its schedule.
//!
//! # Versioning rule
//!
//! [`ABI_VERSION`] is bumped whenever a change would make an old host misread a new library or the
//! reverse: a field removed, reordered or retyped, a function signature changed, a status or kind
//! value renumbered, or a JSON payload field removed or given a new meaning. Appending a field at the
//! end of a table that starts with `size` (the host checks `size` before reading it) or adding an
//! optional JSON field does not bump it. The host refuses a library whose version differs from its own,
//! naming both, before calling anything else in it.

use std::ffi::c_void;

/// The ABI version this SDK speaks. See the module docs for when it changes.
pub const ABI_VERSION: u32 = 1;

/// Name of the version symbol, NUL-terminated: `uint32_t monitor_plugin_abi_version(void)`.
pub const VERSION_SYMBOL: &[u8] = b"monitor_plugin_abi_version\0";

/// Name of the entry symbol, NUL-terminated:
/// `const MonitorPluginDeclaration *monitor_plugin_declare(void)`.
pub const ENTRY_SYMBOL: &[u8] = b"monitor_plugin_declare\0";

/// Signature of the version symbol; it never changes.
pub type VersionFn = unsafe extern "C" fn() -> u32;

/// Signature of the entry symbol.
pub type DeclareFn = unsafe extern "C" fn() -> *const Declaration;

/// What an entry point reports. Anything but `Ok` comes with a UTF-8 message in the output buffer.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The call succeeded; the output buffer holds the result.
    Ok = 0,
    /// The plugin reported an error; the output buffer holds its message.
    Error = 1,
    /// The plugin panicked; the panic was caught and its message is in the output buffer.
    Panicked = 2,
    /// The input was not understood (bad JSON, wrong kind); the output buffer says why.
    Incompatible = 3,
}

impl Status {
    /// Reads a raw status coming from a library, which may be any number.
    pub fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            0 => Some(Self::Ok),
            1 => Some(Self::Error),
            2 => Some(Self::Panicked),
            3 => Some(Self::Incompatible),
            _ => None,
        }
    }
}

/// The kind of a plugin, which decides what its `call` receives and returns.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginKind {
    /// Input: nothing (empty). Output: a [`Collection`](super::Collection).
    Collector = 0,
    /// Input: a [`Failure`](super::Failure). Output: a [`HealOutcome`](super::HealOutcome).
    Strategy = 1,
    /// Input: a [`Notification`](super::Notification). Output: ignored (may be empty).
    Notifier = 2,
}

impl PluginKind {
    /// Reads a raw kind coming from a library.
    pub fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            0 => Some(Self::Collector),
            1 => Some(Self::Strategy),
            2 => Some(Self::Notifier),
            _ => None,
        }
    }

    /// The lowercase name used in configs and reports: `collector`, `strategy`, `notifier`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Collector => "collector",
            Self::Strategy => "strategy",
            Self::Notifier => "notifier",
        }
    }
}

/// A borrowed UTF-8 string: pointer and length in bytes, no terminator required.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct StrRef {
    /// First byte; may be null when `len` is 0.
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

impl StrRef {
    /// Borrows a `'static` string for a declaration.
    pub const fn from_static(s: &'static str) -> Self {
        Self {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// Reads the string, replacing invalid UTF-8.
    ///
    /// # Safety
    ///
    /// `ptr` must point to `len` readable bytes (or be null with `len == 0`) for the duration of the
    /// call.
    pub unsafe fn to_string_lossy(&self) -> String {
        if self.ptr.is_null() || self.len == 0 {
            return String::new();
        }
        // SAFETY: the caller guarantees `ptr..ptr+len` is readable.
        let bytes = unsafe { std::slice::from_raw_parts(self.ptr, self.len) };
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// Frees a buffer's bytes; supplied by whoever allocated them.
pub type ReleaseFn = unsafe extern "C" fn(ptr: *mut u8, len: usize);

/// A buffer handed from one side to the other, with the function that frees it.
///
/// The receiver reads `len` bytes at `ptr`, then calls `release(ptr, len)` exactly once (if
/// `release` is not null). It never frees the bytes any other way, so each side's allocator only
/// ever sees its own pointers.
#[repr(C)]
#[derive(Debug)]
pub struct OwnedBuffer {
    /// First byte; null for an empty buffer.
    pub ptr: *mut u8,
    /// Length in bytes.
    pub len: usize,
    /// Frees `ptr`; null when there is nothing to free.
    pub release: Option<ReleaseFn>,
}

impl OwnedBuffer {
    /// An empty buffer that owns nothing.
    pub const fn empty() -> Self {
        Self {
            ptr: std::ptr::null_mut(),
            len: 0,
            release: None,
        }
    }

    /// Moves bytes into a buffer released by this side's allocator.
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        if bytes.is_empty() {
            return Self::empty();
        }
        let boxed = bytes.into_boxed_slice();
        let len = boxed.len();
        let ptr = Box::into_raw(boxed).cast::<u8>();
        Self {
            ptr,
            len,
            release: Some(release_boxed_slice),
        }
    }
}

/// Releases a buffer made by [`OwnedBuffer::from_vec`] in the same library.
///
/// # Safety
///
/// `ptr` and `len` must come from one `OwnedBuffer::from_vec` of this copy of the SDK and be released
/// once.
unsafe extern "C" fn release_boxed_slice(ptr: *mut u8, len: usize) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: `ptr`/`len` are the parts of a `Box<[u8]>` leaked by `from_vec` in this library, so
    // rebuilding and dropping it frees the bytes with the allocator that made them.
    drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) });
}

/// Creates a configured instance.
///
/// `config` is the plugin's `[...config]` table as JSON (`{}` when absent). On `Ok`, `*instance` is
/// set to an opaque pointer handed back to `call`, `shutdown` and `destroy`. On anything else, `out`
/// holds the message.
pub type CreateFn = unsafe extern "C" fn(
    config: *const u8,
    config_len: usize,
    instance: *mut *mut c_void,
    out: *mut OwnedBuffer,
) -> u32;

/// Calls an instance: collect, heal or notify depending on the kind; JSON in, JSON out.
pub type CallFn = unsafe extern "C" fn(
    instance: *mut c_void,
    input: *const u8,
    input_len: usize,
    out: *mut OwnedBuffer,
) -> u32;

/// Asks an instance to release what it holds; called once before `destroy` at shutdown.
pub type ShutdownFn = unsafe extern "C" fn(instance: *mut c_void, out: *mut OwnedBuffer) -> u32;

/// Frees an instance; it is not used afterwards.
pub type DestroyFn = unsafe extern "C" fn(instance: *mut c_void);

/// Asks the host to collect the instance now; see [`HostTable`].
pub type RequestCollectionFn = unsafe extern "C" fn(context: *mut c_void);

/// What the host offers an instance: its functions the plugin may call. Starts with `size`;
/// fields are only ever appended, and a plugin reads no field at or beyond `size` bytes.
///
/// The host passes one to [`PluginVTable::create_with_host`]. The table and its `context` stay
/// valid from that call until `destroy` returns for the instance (when `create_with_host` fails,
/// until it returns); the plugin must stop using them then, including on its own threads.
#[repr(C)]
#[derive(Debug)]
pub struct HostTable {
    /// `size_of::<HostTable>()` as the host built it.
    pub size: u32,
    /// Opaque; handed back as the first argument of every function below.
    pub context: *mut c_void,
    /// Asks the host to call this instance's `call` (a collection) as soon as it can, out of its
    /// schedule, and to evaluate the alert rules over the result at once. Safe to call from any
    /// thread at any time, including during a `call`; never blocks. Requests made before the
    /// collection starts are coalesced into one, and the host rate-limits them (by default one
    /// collection per 50 ms at most). Only collectors use it; for other kinds it does nothing.
    pub request_collection: Option<RequestCollectionFn>,
}

/// Creates a configured instance, like [`CreateFn`], given the host's functions.
///
/// `host` points to a [`HostTable`] that stays valid until `destroy` returns for the instance;
/// the plugin may keep the pointer (not copy the table) and use it from any thread until then.
pub type CreateWithHostFn = unsafe extern "C" fn(
    config: *const u8,
    config_len: usize,
    host: *const HostTable,
    instance: *mut *mut c_void,
    out: *mut OwnedBuffer,
) -> u32;

/// The size of a [`PluginVTable`] before [`PluginVTable::create_with_host`] was appended: the
/// smallest table the host accepts.
pub const PLUGIN_VTABLE_V1_SIZE: usize = std::mem::offset_of!(PluginVTable, create_with_host);

/// One plugin of a library. Starts with `size`; fields are only ever appended.
///
/// Every function must be safe to call from any single thread at a time per instance (the host
/// gives each instance its own thread) and must not unwind.
///
/// A table may end before any appended field (its `size` says where): the host reads no field at
/// or beyond `size` bytes and treats a missing one as null. The smallest accepted table ends after
/// `destroy` ([`PLUGIN_VTABLE_V1_SIZE`]).
#[repr(C)]
#[derive(Debug)]
pub struct PluginVTable {
    /// `size_of::<PluginVTable>()` as built; the host reads no field beyond it.
    pub size: u32,
    /// A [`PluginKind`] value.
    pub kind: u32,
    /// The name the config's `plugin = "..."` selects.
    pub name: StrRef,
    /// The plugin's own version, free text (usually its crate version).
    pub version: StrRef,
    /// Creates a configured instance.
    pub create: CreateFn,
    /// Collect, heal or notify.
    pub call: CallFn,
    /// Releases an instance's resources before destruction.
    pub shutdown: ShutdownFn,
    /// Frees an instance.
    pub destroy: DestroyFn,
    /// Appended (the ABI version stays 1): when present and within `size`, the host creates
    /// instances with it instead of `create`, handing them its [`HostTable`]. Null: the host uses
    /// `create`.
    pub create_with_host: Option<CreateWithHostFn>,
}

// SAFETY: a vtable is immutable after construction; its string pointers refer to static data and
// its function pointers are plain code addresses.
unsafe impl Sync for PluginVTable {}
// SAFETY: as above; nothing in it is tied to a thread.
unsafe impl Send for PluginVTable {}

/// What a library declares. Starts with `size`; fields are only ever appended.
#[repr(C)]
#[derive(Debug)]
pub struct Declaration {
    /// `size_of::<Declaration>()` as built.
    pub size: u32,
    /// [`ABI_VERSION`] of the SDK the library was built with.
    pub abi_version: u32,
    /// Version of the SDK (or the C header) the library was built with, free text.
    pub sdk_version: StrRef,
    /// Array of `plugin_count` pointers to vtables.
    pub plugins: *const *const PluginVTable,
    /// Number of plugins.
    pub plugin_count: usize,
}

// SAFETY: a declaration is immutable after construction and points to static or leaked data.
unsafe impl Sync for Declaration {}
// SAFETY: as above.
unsafe impl Send for Declaration {}
