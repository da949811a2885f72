//! What one probe run found.

use std::time::Duration;

/// The result of one run of one probe.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub up: bool,
    /// From the start to the answer (or the failure), when the probe finished.
    pub latency: Option<Duration>,
    /// `http`: the answer's status code, when there was one.
    pub status: Option<u16>,
    /// `http` over TLS: seconds from now to the leaf certificate's `notAfter` (negative once
    /// expired).
    pub cert_expiry_seconds: Option<f64>,
    /// Why it is down.
    pub reason: Option<String>,
}

impl Outcome {
    pub fn up(latency: Duration) -> Self {
        Self {
            up: true,
            latency: Some(latency),
            ..Self::default()
        }
    }

    pub fn down(latency: Option<Duration>, reason: impl Into<String>) -> Self {
        Self {
            up: false,
            latency,
            reason: Some(reason.into()),
            ..Self::default()
        }
    }
}
