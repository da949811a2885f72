//! Failure details: the records kept for the report and the probe that tells
//! an `Err` from a value.

use std::time::SystemTime;

use serde::Serialize;

/// One failed call, as kept for the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailureRecord {
    /// When the call ended.
    #[serde(with = "crate::clock::unix_seconds")]
    pub at: SystemTime,
    /// What failed: the error's `Display` (or `Debug`) text, the panic
    /// message, or a note that the guard was failed by hand.
    pub message: String,
    /// Whether the call panicked.
    pub panicked: bool,
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
