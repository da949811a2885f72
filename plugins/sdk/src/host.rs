//! What the host offers a plugin instance besides calling it: a way to ask for a collection now.

use std::ffi::c_void;
use std::fmt;
use std::mem::{offset_of, size_of};
use std::sync::{Arc, Mutex, PoisonError};

use super::abi::{HostTable, RequestCollectionFn};

/// The host that created an instance, as a handle the plugin may keep and use from any thread.
///
/// A [`Collector`](crate::Collector) receives one in
/// [`attach_host`](crate::Collector::attach_host) when its host offers it (a host that predates
/// it does not: the collector then keeps to its schedule). Clones share one handle. Once the
/// instance is destroyed, every clone goes quiet: [`request_collection`](Self::request_collection)
/// does nothing and returns `false`, so a thread that outlives the instance cannot reach a host
/// that forgot it.
#[derive(Clone)]
pub struct Host(Arc<Mutex<Target>>);

enum Target {
    /// Detached, or the instance was destroyed.
    Gone,
    /// A host through the C ABI.
    Table {
        request: RequestCollectionFn,
        context: *mut c_void,
    },
    /// A function in the same program (tests, embedding).
    Local(Arc<dyn Fn() + Send + Sync>),
}

// SAFETY: the ABI makes a host table's functions callable from any thread with its context, and
// the context is only handed back to them, never dereferenced here.
unsafe impl Send for Target {}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let attached = !matches!(*self.lock(), Target::Gone);
        f.debug_struct("Host").field("attached", &attached).finish()
    }
}

impl Host {
    /// A handle on no host: [`request_collection`](Self::request_collection) does nothing.
    pub fn detached() -> Self {
        Self(Arc::new(Mutex::new(Target::Gone)))
    }

    /// A handle whose requests call `on_request`, in the calling thread: for tests of a plugin,
    /// and for programs that drive plugins themselves.
    pub fn from_fn(on_request: impl Fn() + Send + Sync + 'static) -> Self {
        Self(Arc::new(Mutex::new(Target::Local(Arc::new(on_request)))))
    }

    /// Reads the host's table.
    ///
    /// # Safety
    ///
    /// `table` is null or points to a [`HostTable`] of at least `size` bytes whose functions may
    /// be called with its context until [`revoke`](Self::revoke).
    pub(crate) unsafe fn from_table(table: *const HostTable) -> Self {
        if table.is_null() {
            return Self::detached();
        }
        // SAFETY: non-null, and the caller guarantees the table is readable up to its `size`;
        // `size` is the first field of every version of it.
        let size = unsafe { std::ptr::addr_of!((*table).size).read() } as usize;
        let end =
            offset_of!(HostTable, request_collection) + size_of::<Option<RequestCollectionFn>>();
        if size < end {
            return Self::detached();
        }
        // SAFETY: both fields lie within `size` bytes, checked above.
        let (context, request) = unsafe { ((*table).context, (*table).request_collection) };
        match request {
            Some(request) => Self(Arc::new(Mutex::new(Target::Table { request, context }))),
            None => Self::detached(),
        }
    }

    /// Asks the host to collect this instance now, out of its schedule; the host evaluates its
    /// alert rules over the result at once. Never blocks (beyond a short lock shared with
    /// clones) and may be called from any thread, also from inside `collect`. The host coalesces
    /// requests made before the collection starts and rate-limits them, so calling it once per
    /// event is fine.
    ///
    /// Returns whether a host received the request: `false` for a detached handle or once the
    /// instance was destroyed.
    pub fn request_collection(&self) -> bool {
        // The lock is held during the call so that `revoke` waits for a request in progress:
        // after it returns, the host's context is never used again.
        let target = self.lock();
        match &*target {
            Target::Gone => false,
            Target::Table { request, context } => {
                // SAFETY: the table's function is callable with its context from any thread
                // until the instance is destroyed, which `revoke` (run at `destroy`) rules out.
                unsafe { request(*context) };
                true
            }
            Target::Local(f) => {
                f();
                true
            }
        }
    }

    /// Whether requests reach a host.
    pub fn is_attached(&self) -> bool {
        !matches!(*self.lock(), Target::Gone)
    }

    /// Cuts every clone off the host; called when the instance is destroyed.
    pub(crate) fn revoke(&self) {
        *self.lock() = Target::Gone;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Target> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    static CALLS: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C" fn count(context: *mut c_void) {
        assert_eq!(context as usize, 42);
        CALLS.fetch_add(1, Ordering::SeqCst);
    }

    #[test]
    fn a_table_host_is_called_until_revoked_and_a_short_table_is_detached() {
        let table = HostTable {
            size: size_of::<HostTable>() as u32,
            context: 42 as *mut c_void,
            request_collection: Some(count),
        };
        // SAFETY: a complete table on the stack, used within this test only.
        let host = unsafe { Host::from_table(&table) };
        let clone = host.clone();
        let before = CALLS.load(Ordering::SeqCst);
        assert!(
            std::thread::spawn(move || clone.request_collection())
                .join()
                .unwrap()
        );
        assert_eq!(CALLS.load(Ordering::SeqCst), before + 1);
        host.revoke();
        assert!(!host.request_collection());
        assert_eq!(CALLS.load(Ordering::SeqCst), before + 1);

        // A table that ends before `request_collection` is not read past its size.
        let short = HostTable {
            size: offset_of!(HostTable, request_collection) as u32,
            ..table
        };
        // SAFETY: as above.
        let host = unsafe { Host::from_table(&short) };
        assert!(!host.is_attached());
        assert!(!host.request_collection());
        // SAFETY: null is allowed.
        assert!(!unsafe { Host::from_table(std::ptr::null()) }.is_attached());
    }
}
