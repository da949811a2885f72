//! Trend classification shared by the registry, the analytics and the host:
//! a recent window against the earlier ones, direction-aware, with a tolerance band.

use serde::{Deserialize, Serialize};

/// Which way a figure is heading, judged by whether that direction is good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Trend {
    /// The figure moved in its good direction by more than the tolerance.
    Improving,
    /// Within the tolerance, or too few samples to say.
    #[default]
    Stable,
    /// The figure moved in its bad direction by more than the tolerance.
    Degrading,
}

impl Trend {
    /// The lowercase name used in JSON and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Trend::Improving => "improving",
            Trend::Stable => "stable",
            Trend::Degrading => "degrading",
        }
    }
}

impl std::fmt::Display for Trend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a rising figure is bad (latency, failures) or good (throughput, success rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Rising is degrading (latency, error counts, memory).
    #[default]
    LowerIsBetter,
    /// Rising is improving (success rate, throughput).
    HigherIsBetter,
}

/// Compares a recent value against an earlier baseline.
///
/// `tolerance` is relative (0.05 = +/-5%). With a baseline of zero, any
/// positive recent value counts as a change in the rising direction.
pub fn classify(earlier: f64, recent: f64, direction: Direction, tolerance: f64) -> Trend {
    if !earlier.is_finite() || !recent.is_finite() {
        return Trend::Stable;
    }
    let change = if earlier == 0.0 {
        if recent == 0.0 {
            0.0
        } else {
            f64::INFINITY.copysign(recent)
        }
    } else {
        (recent - earlier) / earlier.abs()
    };
    let rising = change > tolerance;
    let falling = change < -tolerance;
    match (direction, rising, falling) {
        (Direction::LowerIsBetter, true, _) | (Direction::HigherIsBetter, _, true) => {
            Trend::Degrading
        }
        (Direction::LowerIsBetter, _, true) | (Direction::HigherIsBetter, true, _) => {
            Trend::Improving
        }
        _ => Trend::Stable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_decides_good_and_bad() {
        assert_eq!(
            classify(100.0, 120.0, Direction::LowerIsBetter, 0.05),
            Trend::Degrading
        );
        assert_eq!(
            classify(100.0, 120.0, Direction::HigherIsBetter, 0.05),
            Trend::Improving
        );
        assert_eq!(
            classify(100.0, 80.0, Direction::LowerIsBetter, 0.05),
            Trend::Improving
        );
        assert_eq!(
            classify(100.0, 104.0, Direction::LowerIsBetter, 0.05),
            Trend::Stable
        );
        assert_eq!(
            classify(0.0, 0.0, Direction::LowerIsBetter, 0.05),
            Trend::Stable
        );
        assert_eq!(
            classify(0.0, 1.0, Direction::LowerIsBetter, 0.05),
            Trend::Degrading
        );
    }
}
