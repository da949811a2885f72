//! Names the plugins that read Prometheus text give to what has no name of its own there.

/// The suffix of a summary's quantile gauge: `p50` for 0.5, `p99` for 0.99, `p999` for 0.999,
/// `p100` for 1.
pub fn quantile_suffix(q: f64) -> String {
    if q >= 1.0 {
        return "p100".into();
    }
    let digits = format!("{q}");
    let digits = digits.trim_start_matches("0.");
    format!("p{digits:0<2}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn quantile_names() {
        let got: Vec<String> = [0.5, 0.9, 0.95, 0.99, 0.999, 1.0]
            .map(super::quantile_suffix)
            .to_vec();
        assert_eq!(got, ["p50", "p90", "p95", "p99", "p999", "p100"]);
    }
}
