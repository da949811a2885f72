//! Failure details: the records kept for the report, the panic hook that
//! captures panic messages, and the probe that tells an `Err` from a value.

use std::cell::RefCell;
use std::sync::Once;
use std::time::SystemTime;

use serde::Serialize;

/// One failed call, as kept for the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailureRecord {
    /// When the call ended.
    #[serde(with = "crate::snapshot::unix_seconds")]
    pub at: SystemTime,
    /// What failed: the error's `Display` (or `Debug`) text, the panic
    /// message, or a note that the guard was failed by hand.
    pub message: String,
    /// Whether the call panicked.
    pub panicked: bool,
}

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

/// What a finished call's return value says about it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    /// The value is an `Err`.
    pub failed: bool,
    /// The error's text, when its type can be displayed.
    pub message: Option<String>,
}

/// Autoref-specialised probe: `__monitor_outcome!(&value)` picks the most
/// specific of these impls the value's type satisfies.
pub mod probe {
    use super::Outcome;
    use std::fmt::{Debug, Display};

    /// Wraps a reference to the value being judged.
    pub struct Probe<'a, T>(pub &'a T);

    /// `Err` of a displayable error: failure with its `Display` text.
    pub trait ErrDisplay {
        /// Judges the value.
        fn __monitor_outcome(&self) -> Outcome;
    }
    impl<T, E: Display> ErrDisplay for &&&Probe<'_, Result<T, E>> {
        fn __monitor_outcome(&self) -> Outcome {
            match self.0 {
                Ok(_) => Outcome::default(),
                Err(e) => Outcome {
                    failed: true,
                    // Formatting allocates; keep it out of the call's figures.
                    message: Some(crate::alloc::excluded(|| e.to_string())),
                },
            }
        }
    }

    /// `Err` of a debuggable error: failure with its `Debug` text.
    pub trait ErrDebug {
        /// Judges the value.
        fn __monitor_outcome(&self) -> Outcome;
    }
    impl<T, E: Debug> ErrDebug for &&Probe<'_, Result<T, E>> {
        fn __monitor_outcome(&self) -> Outcome {
            match self.0 {
                Ok(_) => Outcome::default(),
                Err(e) => Outcome {
                    failed: true,
                    message: Some(crate::alloc::excluded(|| format!("{e:?}"))),
                },
            }
        }
    }

    /// Any other `Err`: failure without text.
    pub trait ErrPlain {
        /// Judges the value.
        fn __monitor_outcome(&self) -> Outcome;
    }
    impl<T, E> ErrPlain for &Probe<'_, Result<T, E>> {
        fn __monitor_outcome(&self) -> Outcome {
            Outcome {
                failed: self.0.is_err(),
                message: None,
            }
        }
    }

    /// Anything that is not a `Result`: success.
    pub trait NotResult {
        /// Judges the value.
        fn __monitor_outcome(&self) -> Outcome;
    }
    impl<T> NotResult for Probe<'_, T> {
        fn __monitor_outcome(&self) -> Outcome {
            Outcome::default()
        }
    }
}

#[cfg(test)]
mod tests {
    struct Opaque;

    #[test]
    fn probe_picks_the_most_specific_judgement() {
        let ok: Result<u8, std::io::Error> = Ok(1);
        assert!(!crate::__monitor_outcome!(&ok).failed);
        let display: Result<u8, String> = Err("boom".into());
        assert_eq!(
            crate::__monitor_outcome!(&display).message.as_deref(),
            Some("boom")
        );
        #[derive(Debug)]
        struct OnlyDebug;
        let debug: Result<(), OnlyDebug> = Err(OnlyDebug);
        assert_eq!(
            crate::__monitor_outcome!(&debug).message.as_deref(),
            Some("OnlyDebug")
        );
        let plain: Result<(), Opaque> = Err(Opaque);
        let outcome = crate::__monitor_outcome!(&plain);
        assert!(outcome.failed && outcome.message.is_none());
        assert!(!crate::__monitor_outcome!(&42u32).failed);
        assert!(!crate::__monitor_outcome!(&Some(Opaque)).failed);
    }
}
