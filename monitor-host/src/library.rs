//! Loading plugin libraries and calling their plugins through the C ABI.

use std::collections::HashMap;
use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use monitor_plugin::abi::{
    self, CreateFn, CreateWithHostFn, DeclareFn, HostTable, OwnedBuffer, PluginKind, PluginVTable,
    Status, VersionFn,
};

/// Why a library could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file is not there.
    #[error("library `{}` does not exist; build it first (`cargo build --release`) or fix the path", .0.display())]
    Missing(PathBuf),
    /// The dynamic loader refused it: not a shared library, built for another architecture, or
    /// needing a symbol or library that is not there.
    #[error("cannot load library `{}`: {reason}", .path.display())]
    Open {
        /// The library.
        path: PathBuf,
        /// What the loader said, e.g. `undefined symbol: foo` or `invalid ELF header`.
        reason: String,
    },
    /// It does not export the version symbol, so it is not a monitor plugin library.
    #[error("`{}` is not a monitor plugin library: it does not export `monitor_plugin_abi_version`", .0.display())]
    NotAPlugin(PathBuf),
    /// It speaks another ABI version.
    #[error("`{}` was built for plugin ABI version {found}, but this host speaks ABI version {expected}; rebuild the plugin against a matching monitor-plugin", .path.display())]
    AbiMismatch {
        /// The library.
        path: PathBuf,
        /// What the library says.
        found: u32,
        /// What the host speaks.
        expected: u32,
    },
    /// The declaration is malformed.
    #[error("`{}` has a malformed plugin declaration: {reason}", .path.display())]
    BadDeclaration {
        /// The library.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Read in a process of its own (for an instance in process isolation), the library failed:
    /// the loader's error as that process reported it, or how that process died.
    #[error("{0}")]
    Isolated(String),
}

/// What a library declares about one plugin.
#[derive(Debug, Clone)]
pub struct PluginInfo {
    /// Collector, strategy or notifier.
    pub kind: PluginKind,
    /// Name selected by `plugin = "..."`.
    pub name: String,
    /// The plugin's version.
    pub version: String,
    /// `None` for a plugin only described by a process that loaded its library
    /// ([`PluginLibrary::from_declared`]): its instances can only run in such a process.
    functions: Option<Functions>,
}

/// A plugin's functions, copied out of its table as far as the table's `size` goes.
#[derive(Debug, Clone, Copy)]
struct Functions {
    create: CreateFn,
    call: abi::CallFn,
    shutdown: abi::ShutdownFn,
    destroy: abi::DestroyFn,
    /// Absent from tables built before it was appended.
    create_with_host: Option<CreateWithHostFn>,
}

impl PluginInfo {
    /// Whether instances are handed the host's table (they can then ask for a collection now).
    pub fn takes_host(&self) -> bool {
        self.functions.is_some_and(|f| f.create_with_host.is_some())
    }
}

/// What a library declares, as data: what the plugin runner answers when the host asks it to
/// read a library the host does not load itself (an instance in process isolation), so that a
/// library that crashes while it loads crashes that process, not the host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Declared {
    /// ABI version the library declared.
    pub abi_version: u32,
    /// SDK version it was built with.
    pub sdk_version: String,
    /// Its plugins: raw kind, name, version.
    pub plugins: Vec<(u32, String, String)>,
}

/// A loaded library and the plugins it declares. Never unloaded while the process runs.
#[derive(Debug)]
pub struct PluginLibrary {
    /// Where it was loaded from; `None` for plugins linked into the host itself.
    pub path: Option<PathBuf>,
    /// ABI version it declared.
    pub abi_version: u32,
    /// SDK version it was built with.
    pub sdk_version: String,
    /// Its plugins.
    pub plugins: Vec<PluginInfo>,
    // Keeps the code mapped; declared last so everything above drops first.
    _library: Option<libloading::Library>,
}

impl PluginLibrary {
    /// The plugin of this kind and name, if the library has one.
    pub fn find(&self, kind: PluginKind, name: &str) -> Option<&PluginInfo> {
        self.plugins
            .iter()
            .find(|p| p.kind == kind && p.name == name)
    }

    /// What the library declares, as data (see [`Declared`]).
    pub fn declared(&self) -> Declared {
        Declared {
            abi_version: self.abi_version,
            sdk_version: self.sdk_version.clone(),
            plugins: (self.plugins.iter())
                .map(|p| (p.kind as u32, p.name.clone(), p.version.clone()))
                .collect(),
        }
    }

    /// The library at `path` as another process that loaded it declared it, without loading it
    /// here: its plugins can be found and listed, and their instances run only in a process of
    /// their own ([`PluginInstance::create`] refuses them).
    ///
    /// # Errors
    ///
    /// A different ABI version, or an unknown plugin kind.
    pub fn from_declared(path: &Path, declared: Declared) -> Result<PluginLibrary, LoadError> {
        if declared.abi_version != abi::ABI_VERSION {
            return Err(LoadError::AbiMismatch {
                path: path.to_owned(),
                found: declared.abi_version,
                expected: abi::ABI_VERSION,
            });
        }
        let plugins = (declared.plugins.into_iter())
            .map(|(kind, name, version)| {
                let kind = PluginKind::from_raw(kind).ok_or_else(|| LoadError::BadDeclaration {
                    path: path.to_owned(),
                    reason: format!("unknown plugin kind {kind}"),
                })?;
                Ok(PluginInfo {
                    kind,
                    name,
                    version,
                    functions: None,
                })
            })
            .collect::<Result<_, LoadError>>()?;
        Ok(PluginLibrary {
            path: Some(path.to_owned()),
            abi_version: declared.abi_version,
            sdk_version: declared.sdk_version,
            plugins,
            _library: None,
        })
    }

    /// Plugins registered in the current binary with `export_plugin!` (for tests and embedding).
    pub fn builtin() -> Arc<PluginLibrary> {
        static BUILTIN: OnceLock<Arc<PluginLibrary>> = OnceLock::new();
        BUILTIN
            .get_or_init(|| {
                let plugins = monitor_plugin::registered()
                    .filter_map(|vt| {
                        // SAFETY: vtables registered in this binary are static and well formed.
                        unsafe { info_of(vt) }.ok()
                    })
                    .collect();
                Arc::new(PluginLibrary {
                    path: None,
                    abi_version: abi::ABI_VERSION,
                    sdk_version: env!("CARGO_PKG_VERSION").to_owned(),
                    plugins,
                    _library: None,
                })
            })
            .clone()
    }

    /// Loads a plugin library, or returns the one already loaded from the same file.
    ///
    /// Libraries stay loaded until the process exits: unloading Rust code that used thread-locals
    /// can crash, and instances may still be running on worker threads.
    ///
    /// # Errors
    ///
    /// A missing file, a loader error, a library that is not a plugin library, a different ABI
    /// version (named with both numbers), or a malformed declaration.
    ///
    /// # Safety
    ///
    /// Loading a library runs its initialisers, and calling its entry points trusts it to follow the
    /// ABI in [`monitor_plugin::abi`]. Only load libraries you trust as much as the host.
    pub unsafe fn load(path: &Path) -> Result<Arc<PluginLibrary>, LoadError> {
        static LOADED: OnceLock<Mutex<HashMap<PathBuf, Arc<PluginLibrary>>>> = OnceLock::new();
        // Given a name without a directory (`libx.so`), the dynamic loader searches the system's
        // library paths, not the file that `exists` just found.
        let absolute = std::path::absolute(path);
        let path = absolute.as_deref().unwrap_or(path);
        if !path.exists() {
            return Err(LoadError::Missing(path.to_owned()));
        }
        let key = path.canonicalize().unwrap_or_else(|_| path.to_owned());
        let mut loaded = LOADED
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(lib) = loaded.get(&key) {
            return Ok(lib.clone());
        }
        // SAFETY: forwarded to the caller (see `# Safety`).
        let lib = Arc::new(unsafe { Self::open(path) }?);
        loaded.insert(key, lib.clone());
        Ok(lib)
    }

    /// # Safety
    ///
    /// As [`PluginLibrary::load`].
    unsafe fn open(path: &Path) -> Result<PluginLibrary, LoadError> {
        // SAFETY: the caller trusts the library's initialisers.
        let library = unsafe { open_now(path) }.map_err(|e| LoadError::Open {
            path: path.to_owned(),
            reason: loader_reason(&e, path),
        })?;
        // SAFETY: the version symbol's signature is fixed by the ABI for every version.
        let version: libloading::Symbol<'_, VersionFn> =
            unsafe { library.get(abi::VERSION_SYMBOL) }
                .map_err(|_| LoadError::NotAPlugin(path.to_owned()))?;
        // SAFETY: calling it takes no arguments and has no preconditions.
        let found = unsafe { version() };
        if found != abi::ABI_VERSION {
            return Err(LoadError::AbiMismatch {
                path: path.to_owned(),
                found,
                expected: abi::ABI_VERSION,
            });
        }
        let bad = |reason: &str| LoadError::BadDeclaration {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        // SAFETY: same ABI version, so the entry symbol has this signature.
        let declare: libloading::Symbol<'_, DeclareFn> = unsafe { library.get(abi::ENTRY_SYMBOL) }
            .map_err(|_| bad("it does not export `monitor_plugin_declare`"))?;
        // SAFETY: no arguments, no preconditions.
        let decl = unsafe { declare() };
        if decl.is_null() {
            return Err(bad("`monitor_plugin_declare` returned null"));
        }
        // SAFETY: non-null and, per the ABI, pointing to a declaration that lives as long as the
        // library, which we never unload.
        let decl = unsafe { &*decl };
        if (decl.size as usize) < size_of::<abi::Declaration>() {
            return Err(bad("declaration is smaller than this ABI version's"));
        }
        if decl.abi_version != abi::ABI_VERSION {
            return Err(LoadError::AbiMismatch {
                path: path.to_owned(),
                found: decl.abi_version,
                expected: abi::ABI_VERSION,
            });
        }
        if decl.plugin_count > 0 && decl.plugins.is_null() {
            return Err(bad("plugin list is null"));
        }
        let mut plugins = Vec::with_capacity(decl.plugin_count);
        for i in 0..decl.plugin_count {
            // SAFETY: `plugins` points to `plugin_count` entries per the ABI.
            let vt = unsafe { *decl.plugins.add(i) };
            if vt.is_null() {
                return Err(bad("a plugin entry is null"));
            }
            // SAFETY: non-null vtable, readable up to its `size`, that lives as long as the
            // never-unloaded library.
            plugins.push(unsafe { info_of(vt) }.map_err(|r| bad(&r))?);
        }
        // SAFETY: the declaration's strings live as long as the library.
        let sdk_version = unsafe { decl.sdk_version.to_string_lossy() };
        Ok(PluginLibrary {
            path: Some(path.to_owned()),
            abi_version: decl.abi_version,
            sdk_version,
            plugins,
            _library: Some(library),
        })
    }
}

/// Opens a library resolving every symbol now, so a missing one is a load error with its name
/// rather than a crash at the first call that needs it.
///
/// # Safety
///
/// As [`PluginLibrary::load`].
unsafe fn open_now(path: &Path) -> Result<libloading::Library, libloading::Error> {
    #[cfg(unix)]
    {
        use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
        // SAFETY: forwarded to the caller.
        unsafe { Library::open(Some(path), RTLD_NOW | RTLD_LOCAL) }.map(Into::into)
    }
    #[cfg(not(unix))]
    {
        // SAFETY: forwarded to the caller.
        unsafe { libloading::Library::new(path) }
    }
}

/// The loader's own reason: libloading's message is only "dlopen failed", with `dlerror`'s text
/// (which starts with the path again) as its source.
fn loader_reason(e: &libloading::Error, path: &Path) -> String {
    let Some(source) = std::error::Error::source(e) else {
        return e.to_string();
    };
    let text = source.to_string();
    let prefix = format!("{}: ", path.display());
    text.strip_prefix(&prefix).unwrap_or(&text).to_owned()
}

/// Reads a vtable: its header and functions, no field at or beyond its `size` (a table built
/// before a field was appended is shorter than [`PluginVTable`]; what it lacks counts as null).
///
/// # Safety
///
/// `vt` points to a vtable readable up to its `size` (at least up to `destroy`) whose strings
/// and functions outlive the process.
unsafe fn info_of(vt: *const PluginVTable) -> Result<PluginInfo, String> {
    // SAFETY: `size` is the first field of every version of the table.
    let size = unsafe { std::ptr::addr_of!((*vt).size).read() } as usize;
    if size < abi::PLUGIN_VTABLE_V1_SIZE {
        return Err("a plugin table is smaller than this ABI version's".into());
    }
    let fits = |offset: usize, len: usize| offset + len <= size;
    // SAFETY: every field read here lies within the first `PLUGIN_VTABLE_V1_SIZE` bytes, which
    // the table has (checked above); places are projected from the raw pointer, never through a
    // reference to the whole (possibly shorter) table.
    let (kind, name, version, create, call, shutdown, destroy) = unsafe {
        (
            (*vt).kind,
            (*vt).name,
            (*vt).version,
            (*vt).create,
            (*vt).call,
            (*vt).shutdown,
            (*vt).destroy,
        )
    };
    let create_with_host = if fits(
        std::mem::offset_of!(PluginVTable, create_with_host),
        size_of::<Option<CreateWithHostFn>>(),
    ) {
        // SAFETY: within `size`, checked just above.
        unsafe { (*vt).create_with_host }
    } else {
        None
    };
    let kind = PluginKind::from_raw(kind).ok_or_else(|| format!("unknown plugin kind {kind}"))?;
    // SAFETY: the caller guarantees the strings are valid.
    let (name, version) = unsafe { (name.to_string_lossy(), version.to_string_lossy()) };
    if name.is_empty() {
        return Err("a plugin has an empty name".into());
    }
    Ok(PluginInfo {
        kind,
        name,
        version,
        functions: Some(Functions {
            create,
            call,
            shutdown,
            destroy,
            create_with_host,
        }),
    })
}

/// What the host runs when an instance asks for a collection now (see
/// [`monitor_plugin::abi::HostTable`]): it must be quick and never block, and may run on any
/// thread.
#[derive(Clone)]
pub struct OnRequest(Arc<dyn Fn() + Send + Sync>);

impl OnRequest {
    /// Runs `f` on each request.
    pub fn new(f: impl Fn() + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// Runs it, as a request from the instance does.
    pub fn request(&self) {
        (self.0)();
    }
}

impl std::fmt::Debug for OnRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnRequest")
    }
}

/// The host's table handed to an instance, and what it calls; boxed so that the table's address
/// (the instance keeps it) and its context stay put until the instance is destroyed.
struct HostState {
    table: HostTable,
    on_request: OnRequest,
}

impl HostState {
    fn new(on_request: OnRequest) -> Box<Self> {
        let mut state = Box::new(Self {
            table: HostTable {
                size: size_of::<HostTable>() as u32,
                context: std::ptr::null_mut(),
                request_collection: Some(request_collection),
            },
            on_request,
        });
        state.table.context = std::ptr::from_mut::<HostState>(&mut state).cast();
        state
    }
}

/// The host's `request_collection`: runs the instance's [`OnRequest`], never unwinding into the
/// plugin.
///
/// # Safety
///
/// `context` is the context of a live [`HostState`]'s table.
unsafe extern "C" fn request_collection(context: *mut c_void) {
    if context.is_null() {
        return;
    }
    // SAFETY: the context of a table the host made, alive until the instance is destroyed (the
    // ABI forbids calls after that); only read here.
    let state = unsafe { &*context.cast::<HostState>() };
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (state.on_request.0)()));
}

/// How a call into a plugin ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallFailure {
    /// The plugin returned an error.
    Error(String),
    /// The plugin panicked (caught on its side).
    Panicked(String),
    /// The plugin did not understand its input, or returned output the host cannot read.
    Invalid(String),
}

impl std::fmt::Display for CallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Error(m) => write!(f, "error: {m}"),
            Self::Panicked(m) => write!(f, "panic: {m}"),
            Self::Invalid(m) => write!(f, "invalid: {m}"),
        }
    }
}

/// A live plugin instance. Not `Sync`: the host uses each from one worker thread.
pub struct PluginInstance {
    ptr: *mut c_void,
    functions: Functions,
    max_payload: usize,
    destroyed: bool,
    // The table the instance may call until it is destroyed: dropped after `destroy` (in `Drop`).
    _host: Option<Box<HostState>>,
    // Declared after the instance pointer so the instance is destroyed before the library could go.
    _library: Arc<PluginLibrary>,
}

// SAFETY: the ABI requires instances to be usable from whichever single thread calls them; the host
// moves an instance to its worker once and never shares it.
unsafe impl Send for PluginInstance {}

impl std::fmt::Debug for PluginInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginInstance")
            .field("ptr", &self.ptr)
            .finish()
    }
}

/// Copies a plugin's buffer into host memory and hands it back to the plugin's allocator.
///
/// # Safety
///
/// `buf` was filled by the plugin per the ABI.
unsafe fn take(buf: OwnedBuffer, limit: usize) -> Result<Vec<u8>, usize> {
    let result = if buf.len > limit {
        Err(buf.len)
    } else if buf.ptr.is_null() || buf.len == 0 {
        Ok(Vec::new())
    } else {
        // SAFETY: the plugin guarantees `len` readable bytes at `ptr` until released.
        Ok(unsafe { std::slice::from_raw_parts(buf.ptr, buf.len) }.to_vec())
    };
    if let Some(release) = buf.release {
        // SAFETY: released exactly once, by the function the plugin supplied for it.
        unsafe { release(buf.ptr, buf.len) };
    }
    result
}

fn decode_status(
    raw: u32,
    bytes: Result<Vec<u8>, usize>,
    limit: usize,
) -> Result<Vec<u8>, CallFailure> {
    let text = |b: &Result<Vec<u8>, usize>| match b {
        Ok(v) => String::from_utf8_lossy(v).into_owned(),
        Err(n) => format!("message of {n} bytes dropped"),
    };
    match Status::from_raw(raw) {
        Some(Status::Ok) => bytes.map_err(|n| {
            CallFailure::Invalid(format!(
                "payload of {n} bytes exceeds the limit of {limit} bytes: raise `[host] max_payload_bytes` if the plugin is right to send that much"
            ))
        }),
        Some(Status::Error) => Err(CallFailure::Error(text(&bytes))),
        Some(Status::Panicked) => Err(CallFailure::Panicked(text(&bytes))),
        Some(Status::Incompatible) => Err(CallFailure::Invalid(text(&bytes))),
        None => Err(CallFailure::Invalid(format!(
            "unknown status {raw}: {}",
            text(&bytes)
        ))),
    }
}

impl PluginInstance {
    /// Creates and configures an instance of `plugin` from `library`.
    ///
    /// `max_payload` bounds every buffer the instance returns, in bytes.
    ///
    /// # Errors
    ///
    /// The plugin's `configure` error, a panic, or an unreadable answer.
    pub fn create(
        library: &Arc<PluginLibrary>,
        plugin: &PluginInfo,
        config: &serde_json::Value,
        max_payload: usize,
    ) -> Result<Self, CallFailure> {
        Self::create_with_requests(library, plugin, config, max_payload, None)
    }

    /// Like [`create`](Self::create); besides, when the plugin takes the host's table
    /// ([`PluginInfo::takes_host`]) and `on_request` is given, the instance may call `on_request`
    /// (from any of its threads) to ask for a collection now, until it is destroyed.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create), and a plugin whose library is not loaded in this process
    /// ([`PluginLibrary::from_declared`]).
    pub fn create_with_requests(
        library: &Arc<PluginLibrary>,
        plugin: &PluginInfo,
        config: &serde_json::Value,
        max_payload: usize,
        on_request: Option<OnRequest>,
    ) -> Result<Self, CallFailure> {
        let Some(f) = plugin.functions else {
            return Err(CallFailure::Invalid(format!(
                "{} `{}` is not loaded in this process; it runs in a process of its own",
                plugin.kind.as_str(),
                plugin.name
            )));
        };
        let input = serde_json::to_vec(config).expect("JSON values always serialise");
        let mut out = OwnedBuffer::empty();
        let mut ptr: *mut c_void = std::ptr::null_mut();
        let (raw, host) = match (f.create_with_host, on_request) {
            (Some(create), Some(on_request)) => {
                let host = HostState::new(on_request);
                // SAFETY: as below; the table stays valid until the instance is destroyed (it
                // lives in the instance, dropped after `destroy`) or, on failure, until the
                // call returns.
                let raw =
                    unsafe { create(input.as_ptr(), input.len(), &host.table, &mut ptr, &mut out) };
                (raw, Some(host))
            }
            // SAFETY: valid input buffer for the call, valid out-pointers, per the ABI.
            _ => (
                unsafe { (f.create)(input.as_ptr(), input.len(), &mut ptr, &mut out) },
                None,
            ),
        };
        // SAFETY: `out` was filled (or left empty) by the plugin.
        let bytes = unsafe { take(out, max_payload) };
        decode_status(raw, bytes, max_payload)?;
        if ptr.is_null() {
            return Err(CallFailure::Invalid("create returned no instance".into()));
        }
        Ok(Self {
            ptr,
            functions: f,
            max_payload,
            destroyed: false,
            _host: host,
            _library: library.clone(),
        })
    }

    /// Calls the instance with a JSON input and returns its JSON output, copied into host memory.
    ///
    /// # Errors
    ///
    /// The plugin's error, a caught panic, or output over the payload limit.
    pub fn call(&mut self, input: &[u8]) -> Result<Vec<u8>, CallFailure> {
        let mut out = OwnedBuffer::empty();
        // SAFETY: live instance, valid input for the call, valid out-pointer.
        let raw = unsafe { (self.functions.call)(self.ptr, input.as_ptr(), input.len(), &mut out) };
        // SAFETY: `out` was filled by the plugin.
        let bytes = unsafe { take(out, self.max_payload) };
        decode_status(raw, bytes, self.max_payload)
    }

    /// Calls `shutdown` and destroys the instance; later calls are not allowed.
    ///
    /// # Errors
    ///
    /// What `shutdown` reported; the instance is destroyed anyway.
    pub fn shutdown(mut self) -> Result<(), CallFailure> {
        let mut out = OwnedBuffer::empty();
        // SAFETY: live instance, valid out-pointer.
        let raw = unsafe { (self.functions.shutdown)(self.ptr, &mut out) };
        // SAFETY: `out` was filled by the plugin.
        let bytes = unsafe { take(out, self.max_payload) };
        self.destroy();
        decode_status(raw, bytes, self.max_payload).map(drop)
    }

    fn destroy(&mut self) {
        if !self.destroyed {
            self.destroyed = true;
            // SAFETY: live instance, destroyed once.
            unsafe { (self.functions.destroy)(self.ptr) };
        }
    }
}

impl Drop for PluginInstance {
    fn drop(&mut self) {
        self.destroy();
    }
}
