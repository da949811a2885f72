//! The panic hook that captures panic messages for the guards a panic
//! unwinds through.

use std::cell::RefCell;
use std::sync::Once;

thread_local! {
    /// The message of the panic unwinding through this thread, if any.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Chains a panic hook that remembers each panic's message for the guards
/// it unwinds through. The previous hook still runs, unchanged. Installed on
/// a thread's first recorded call; a hook set later by the program replaces
/// it, and panics then show as "panicked" without their message.
pub(crate) fn install_panic_hook() {
    // The hook cannot be changed while this thread panics (that aborts): the
    // first call recorded during an unwind installs nothing; a later one will.
    if HOOK.is_completed() || std::thread::panicking() {
        return;
    }
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic with a non-string payload".to_owned());
            let location = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let _ = LAST_PANIC.try_with(|p| *p.borrow_mut() = Some(format!("{message}{location}")));
            previous(info);
        }));
    });
}

/// The message of the panic currently unwinding through this thread.
pub(crate) fn current_panic_message() -> String {
    LAST_PANIC
        .try_with(|p| p.borrow().clone())
        .ok()
        .flatten()
        .unwrap_or_else(|| "panicked".to_owned())
}
