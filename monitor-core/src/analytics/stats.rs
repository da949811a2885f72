//! Small statistical helpers shared by the analytics modules.

/// The lower bound of the Wilson score interval for a proportion of
/// `successes` out of `trials` at `z` standard deviations (1.96 for 95%).
/// Zero when `trials` is zero.
pub(crate) fn wilson_lower(successes: f64, trials: f64, z: f64) -> f64 {
    if trials <= 0.0 {
        return 0.0;
    }
    let p = successes / trials;
    let z2 = z * z;
    let centre = p + z2 / (2.0 * trials);
    let margin = z * (p * (1.0 - p) / trials + z2 / (4.0 * trials * trials)).sqrt();
    ((centre - margin) / (1.0 + z2 / trials)).clamp(0.0, 1.0)
}

/// The certainty factor of an observed probability against a base rate:
/// `(p - base) / (1 - base)`, clamped to [0, 1]. It is 0 when `p` is no better
/// than the base rate and 1 when `p` is 1; zero when `base` is 1.
pub(crate) fn certainty_factor(p: f64, base: f64) -> f64 {
    if base >= 1.0 {
        return 0.0;
    }
    ((p - base) / (1.0 - base)).clamp(0.0, 1.0)
}

/// The quantile function of the standard normal distribution (Acklam's
/// rational approximation, relative error below 1.2e-9). `p` in (0, 1).
pub(crate) fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let low = 0.02425;
    if p < low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -normal_quantile(1.0 - p)
    }
}

/// The two-sided critical value of Student's t with `dof` degrees of freedom
/// at confidence `level` (0.95 for 95%), from the normal quantile with the
/// Cornish-Fisher expansion (within 1% for `dof >= 3`).
pub(crate) fn t_critical(level: f64, dof: f64) -> f64 {
    let z = normal_quantile(0.5 + level.clamp(0.0, 0.999_999) / 2.0);
    if dof <= 0.0 || !dof.is_finite() {
        return z;
    }
    let z3 = z * z * z;
    let z5 = z3 * z * z;
    z + (z3 + z) / (4.0 * dof) + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * dof * dof)
}

/// The `p` quantile of the chi-square distribution with `dof` degrees of
/// freedom, by the Wilson-Hilferty approximation. In the lower tail it errs
/// low (by 10% at 5 degrees of freedom and p = 0.01, 2% at 10, 0.1% at 100),
/// which makes the bounds built on it slightly more conservative; never
/// below a tiny positive number.
pub(crate) fn chi_square_quantile(p: f64, dof: f64) -> f64 {
    let z = normal_quantile(p);
    let a = 2.0 / (9.0 * dof);
    (dof * (1.0 - a + z * a.sqrt()).max(0.0).powi(3)).max(1e-12)
}

/// The 99% upper confidence bound on a standard deviation estimated as `sd`
/// from `dof` degrees of freedom (normal data): `sd * sqrt(dof / chi2(0.01, dof))`.
pub(crate) fn sd_upper_99(sd: f64, dof: f64) -> f64 {
    sd * (dof / chi_square_quantile(0.01, dof)).sqrt()
}

/// Human text for a duration in milliseconds, with a unit fitting its size.
pub(crate) fn fmt_ms(ms: f64) -> String {
    let (scale, unit) = unit_for(ms);
    format!("{:.1} {unit}", ms / scale)
}

/// Human text for `value +/- spread` (both in milliseconds) in the unit of `value`.
pub(crate) fn fmt_ms_pm(value: f64, spread: f64) -> String {
    let (scale, unit) = unit_for(value);
    format!(
        "{:.1} {unit} (+/- {:.1} {unit})",
        value / scale,
        spread / scale
    )
}

fn unit_for(ms: f64) -> (f64, &'static str) {
    let a = ms.abs();
    if a < 1_000.0 {
        (1.0, "ms")
    } else if a < 60_000.0 {
        (1_000.0, "s")
    } else if a < 3_600_000.0 {
        (60_000.0, "min")
    } else if a < 86_400_000.0 {
        (3_600_000.0, "h")
    } else {
        (86_400_000.0, "d")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_tables() {
        assert!((normal_quantile(0.975) - 1.959_964).abs() < 1e-5);
        assert!((normal_quantile(0.5)).abs() < 1e-9);
        assert!((normal_quantile(0.001) + 3.090_232).abs() < 1e-5);
        // t(0.95, 10) = 2.228, t(0.95, 30) = 2.042
        assert!((t_critical(0.95, 10.0) - 2.228).abs() < 0.01);
        assert!((t_critical(0.95, 30.0) - 2.042).abs() < 0.005);
    }

    #[test]
    fn chi_square_matches_tables() {
        // chi2(0.01, 10) = 2.558, chi2(0.01, 100) = 70.065, chi2(0.99, 5) = 15.086
        assert!((chi_square_quantile(0.01, 10.0) - 2.558).abs() < 0.06);
        assert!((chi_square_quantile(0.01, 100.0) - 70.065).abs() < 0.1);
        assert!((chi_square_quantile(0.99, 5.0) - 15.086).abs() < 0.1);
        assert!(chi_square_quantile(0.01, 1.0) > 0.0);
        assert!(sd_upper_99(1.0, 1_000.0) < 1.08);
    }

    #[test]
    fn wilson_and_certainty() {
        assert!((wilson_lower(10.0, 10.0, 1.96) - 0.7225).abs() < 1e-3);
        assert_eq!(wilson_lower(0.0, 0.0, 1.96), 0.0);
        assert_eq!(certainty_factor(0.1, 0.1), 0.0);
        assert_eq!(certainty_factor(1.0, 0.3), 1.0);
        assert!((certainty_factor(0.75, 0.1) - 0.722).abs() < 1e-3);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(fmt_ms(250.0), "250.0 ms");
        assert_eq!(fmt_ms_pm(5_000.0, 200.0), "5.0 s (+/- 0.2 s)");
        assert_eq!(fmt_ms(5_400_000.0), "1.5 h");
    }
}
