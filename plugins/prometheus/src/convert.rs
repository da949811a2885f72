//! From a scraped body to the collector's samples: kinds, summary quantiles, histogram buckets,
//! the `include` filter, the extra labels and the rates of counters.
//!
//! Samples go to a [`Sink`]: straight into the JSON the host receives (a [`CollectionWriter`],
//! what the collector does), or into a [`Collection`] of owned samples.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::time::Instant;

use monitor_plugin::{Checkpoint, Collection, CollectionWriter, Event, Sample, SampleKind};
use monitor_plugin_common::prometheus::quantile_suffix;

use crate::parse::{self, Kind, ParseError, Parser, Part};

/// Where converted samples go.
pub trait Sink {
    /// A point to come back to when the rest of a scrape turns out malformed.
    type Mark: Copy;
    /// The current point.
    fn mark(&self) -> Self::Mark;
    /// Drops what was added since `mark`.
    fn rewind(&mut self, mark: Self::Mark);
    /// Adds a sample; `labels` are in key order, each key once.
    fn sample(&mut self, name: &str, value: f64, kind: SampleKind, labels: &[(&str, Cow<'_, str>)]);
    /// Adds an event.
    fn event(&mut self, event: Event);
}

impl Sink for CollectionWriter {
    type Mark = Checkpoint;

    fn mark(&self) -> Checkpoint {
        self.checkpoint()
    }

    fn rewind(&mut self, mark: Checkpoint) {
        CollectionWriter::rewind(self, mark);
    }

    fn sample(
        &mut self,
        name: &str,
        value: f64,
        kind: SampleKind,
        labels: &[(&str, Cow<'_, str>)],
    ) {
        let mut s = CollectionWriter::sample(self, name, value, kind);
        for (k, v) in labels {
            s.label(k, v);
        }
    }

    fn event(&mut self, event: Event) {
        self.push_event(event);
    }
}

impl Sink for Collection {
    type Mark = (usize, usize);

    fn mark(&self) -> (usize, usize) {
        (self.samples.len(), self.events.len())
    }

    fn rewind(&mut self, (samples, events): (usize, usize)) {
        self.samples.truncate(samples);
        self.events.truncate(events);
    }

    fn sample(
        &mut self,
        name: &str,
        value: f64,
        kind: SampleKind,
        labels: &[(&str, Cow<'_, str>)],
    ) {
        self.samples.push(Sample {
            name: name.to_owned(),
            value,
            kind,
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone().into_owned()))
                .collect(),
            timestamp_ms: None,
        });
    }

    fn event(&mut self, event: Event) {
        self.events.push(event);
    }
}

/// Turns scrapes into samples, keeping what the rates need from one scrape to the next.
#[derive(Debug, Default)]
pub struct Converter {
    /// Name prefixes to keep; all when empty.
    pub include: Vec<String>,
    /// Labels added to every sample (they win over scraped ones).
    pub labels: BTreeMap<String, String>,
    /// Whether every counter also yields `<name>_rate`.
    pub rates: bool,
    /// Whether histogram buckets are kept, as counters `<name>_bucket` with their `le` label.
    pub buckets: bool,
    /// Previous counter values and when they were read, by a hash of the series as written
    /// (name and label text): only the series of the last scrape, so a churning label does not
    /// grow it, and no copy of names or labels is kept.
    previous: HashMap<u64, (f64, Instant), BuildHasherDefault<Prehashed>>,
    /// Keys the series hash, so a target cannot choose series that collide.
    hasher: RandomState,
    /// A derived name (`<name>_rate`, `<name>_p99`), kept to reuse its memory.
    name: String,
}

/// The labels of one sample, sorted, borrowed from the body and the config.
type LabelList<'a> = Vec<(&'a str, Cow<'a, str>)>;

impl Converter {
    /// The samples of one scrape's `text`, read at `now`, into `out`. Rates come from the
    /// previous scrape; the state of series absent from this one is dropped.
    ///
    /// # Errors
    ///
    /// The first malformed line, by number: nothing of the scrape is kept then.
    pub fn convert<S: Sink>(
        &mut self,
        text: &str,
        now: Instant,
        out: &mut S,
    ) -> Result<(), ParseError> {
        let mark = out.mark();
        let result = self.convert_all(text, now, out);
        if result.is_err() {
            // The state stays: a scrape read to its middle does not say which series are gone.
            out.rewind(mark);
            return result;
        }
        // Series gone from the target (a churning label) take their state with them.
        self.previous.retain(|_, (_, at)| *at == now);
        result
    }

    /// How many series the rate state holds.
    pub fn tracked(&self) -> usize {
        self.previous.len()
    }

    fn convert_all<S: Sink>(
        &mut self,
        text: &str,
        now: Instant,
        out: &mut S,
    ) -> Result<(), ParseError> {
        // Borrowed apart: the label list borrows the extra labels while the rate state changes.
        let Self {
            include,
            labels: extra,
            rates,
            buckets,
            previous,
            hasher,
            name,
        } = self;
        let mut rate_of = |series: &str, v: f64| {
            if !*rates {
                return None;
            }
            let key = hasher.hash_one(series);
            previous.insert(key, (v, now)).and_then(|(old, at)| {
                let dt = now.duration_since(at).as_secs_f64();
                // A counter that went down was reset: its new value is the increase.
                let inc = if v >= old { v - old } else { v };
                (dt > 0.0).then(|| inc / dt)
            })
        };
        // One list for every sample of the scrape: its memory is reused from line to line.
        let mut labels: LabelList<'_> = Vec::new();
        for sample in Parser::new(text) {
            let sample = sample?;
            if !include.is_empty() && !include.iter().any(|p| sample.name.starts_with(p)) {
                continue;
            }
            let counter = match (sample.kind, sample.part) {
                (Kind::Counter, Part::Whole) | (_, Part::Sum | Part::Count) => true,
                (Kind::Untyped, Part::Whole) => {
                    sample.name.ends_with("_sum") || sample.name.ends_with("_count")
                }
                (Kind::Summary, Part::Whole) => {
                    if let Some(q) = sample.labels.get("quantile") {
                        let q = q.parse::<f64>().map_err(|_| ParseError {
                            line: sample.line,
                            message: format!("`{}`: `quantile` `{q}` is not a number", sample.name),
                        })?;
                        name.clear();
                        // Writing to a String cannot fail.
                        let _ = write!(name, "{}_{}", sample.name, quantile_suffix(q));
                        labels_of(extra, &sample, Some("quantile"), &mut labels);
                        out.sample(name, sample.value, SampleKind::Gauge, &labels);
                        continue;
                    }
                    false
                }
                (Kind::Histogram, Part::Bucket) => {
                    let le = sample.labels.get("le");
                    if le.as_deref().and_then(|v| v.parse::<f64>().ok()).is_none() {
                        return Err(ParseError {
                            line: sample.line,
                            message: format!(
                                "`{}`: a bucket needs an `le` label with a number",
                                sample.series
                            ),
                        });
                    }
                    // Each bucket is a series: kept only when asked (`histogram_quantile`); the
                    // `_sum` and `_count` (above) carry the mean.
                    if *buckets {
                        labels_of(extra, &sample, None, &mut labels);
                        out.sample(sample.name, sample.value, SampleKind::Counter, &labels);
                    }
                    continue;
                }
                _ => false,
            };
            labels_of(extra, &sample, None, &mut labels);
            if !counter {
                out.sample(sample.name, sample.value, SampleKind::Gauge, &labels);
                continue;
            }
            let v = sample.value;
            out.sample(sample.name, v, SampleKind::Counter, &labels);
            if let Some(rate) = rate_of(sample.series, v) {
                name.clear();
                name.push_str(sample.name);
                name.push_str("_rate");
                out.sample(name, rate, SampleKind::Gauge, &labels);
            }
        }
        Ok(())
    }
}

/// Fills `labels` with the sample's labels (but `skip`) and the configured `extra` ones (which
/// win), in key order.
fn labels_of<'a>(
    extra: &'a BTreeMap<String, String>,
    sample: &parse::Sample<'a>,
    skip: Option<&str>,
    labels: &mut LabelList<'a>,
) {
    labels.clear();
    for (k, v) in sample.labels.iter() {
        if Some(k) != skip && (extra.is_empty() || !extra.contains_key(k)) {
            labels.push((k, v));
        }
    }
    for (k, v) in extra {
        labels.push((k, Cow::Borrowed(v)));
    }
    // Targets usually write labels in order already; the parser refused repeated names.
    if !labels.is_sorted_by(|a, b| a.0 <= b.0) {
        labels.sort_unstable_by(|a, b| a.0.cmp(b.0));
    }
}

/// A hasher for keys that are already hashes.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys reach it; fold anything else rather than lose it.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use monitor_plugin::{Collection, CollectionWriter, SampleKind};

    use super::Converter;

    const BODY: &str = "\
# TYPE calls_total counter
calls_total{fn=\"a\"} 10
# TYPE temp gauge
temp 21.5
loose 3
loose_count 4
# TYPE lat histogram
lat_bucket{le=\"0.1\"} 1
lat_bucket{le=\"+Inf\"} 2
lat_sum 0.3
lat_count 2
# TYPE rpc summary
rpc{quantile=\"0.5\"} 7
rpc{quantile=\"0.999\"} 9
rpc_sum 30
rpc_count 4
";

    fn run(c: &mut Converter, body: &str, now: Instant) -> Vec<(String, f64, SampleKind, String)> {
        let mut out = Collection::default();
        c.convert(body, now, &mut out).unwrap();
        out.samples
            .into_iter()
            .map(|s| {
                let labels = s
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",");
                (s.name, s.value, s.kind, labels)
            })
            .collect()
    }

    fn names(samples: &[(String, f64, SampleKind, String)]) -> Vec<&str> {
        samples.iter().map(|s| s.0.as_str()).collect()
    }

    #[test]
    fn kinds_quantiles_and_sums_as_before() {
        use SampleKind::{Counter, Gauge};
        let mut c = Converter::default();
        let got = run(&mut c, BODY, Instant::now());
        let expect = [
            ("calls_total", 10.0, Counter, "fn=a"),
            ("temp", 21.5, Gauge, ""),
            ("loose", 3.0, Gauge, ""),
            ("loose_count", 4.0, Counter, ""),
            ("lat_sum", 0.3, Counter, ""),
            ("lat_count", 2.0, Counter, ""),
            ("rpc_p50", 7.0, Gauge, ""),
            ("rpc_p999", 9.0, Gauge, ""),
            ("rpc_sum", 30.0, Counter, ""),
            ("rpc_count", 4.0, Counter, ""),
        ];
        let expect: Vec<_> = expect
            .iter()
            .map(|(n, v, k, l)| ((*n).to_owned(), *v, *k, (*l).to_owned()))
            .collect();
        assert_eq!(got, expect);
        assert_eq!(c.tracked(), 0, "no rate state without `rates`");
    }

    #[test]
    fn buckets_are_counters_with_their_le_when_asked() {
        let mut c = Converter {
            buckets: true,
            rates: true,
            ..Converter::default()
        };
        let start = Instant::now();
        run(&mut c, BODY, start);
        let got = run(&mut c, BODY, start + Duration::from_secs(1));
        let buckets: Vec<_> = got.iter().filter(|s| s.0 == "lat_bucket").collect();
        assert_eq!(buckets.len(), 2, "{got:?}");
        assert_eq!(buckets[0].2, SampleKind::Counter);
        assert_eq!((buckets[0].1, buckets[0].3.as_str()), (1.0, "le=0.1"));
        assert_eq!((buckets[1].1, buckets[1].3.as_str()), (2.0, "le=+Inf"));
        assert!(
            !names(&got).contains(&"lat_bucket_rate"),
            "buckets get no rate gauge: {got:?}"
        );
        assert!(names(&got).contains(&"lat_count_rate"), "{got:?}");
    }

    #[test]
    fn include_and_extra_labels() {
        let mut c = Converter {
            include: vec!["rpc".into(), "temp".into()],
            labels: [("fn", "mine"), ("app", "x")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into(),
            ..Converter::default()
        };
        let got = run(
            &mut c,
            &format!("{BODY}temp2{{fn=\"theirs\"}} 1\n"),
            Instant::now(),
        );
        assert_eq!(
            names(&got),
            [
                "temp",
                "rpc_p50",
                "rpc_p999",
                "rpc_sum",
                "rpc_count",
                "temp2"
            ]
        );
        assert!(
            got.iter().all(|s| s.3.starts_with("app=x,fn=mine")),
            "{got:?}"
        );
    }

    #[test]
    fn rates_follow_each_series_and_survive_a_reset() {
        let mut c = Converter {
            rates: true,
            ..Converter::default()
        };
        let start = Instant::now();
        let body =
            |a: u32, b: u32| format!("# TYPE c counter\nc{{s=\"a\"}} {a}\nc{{s=\"b\"}} {b}\n");
        assert_eq!(names(&run(&mut c, &body(10, 100), start)), ["c", "c"]);
        let got = run(&mut c, &body(30, 5), start + Duration::from_secs(2));
        let rates: Vec<_> = got
            .iter()
            .filter(|s| s.0 == "c_rate")
            .map(|s| (s.3.as_str(), s.1))
            .collect();
        // `b` went down: a reset, so its whole value is the increase.
        assert_eq!(rates, [("s=a", 10.0), ("s=b", 2.5)]);
    }

    #[test]
    fn a_malformed_line_keeps_nothing_of_the_scrape() {
        let mut c = Converter {
            rates: true,
            ..Converter::default()
        };
        let mut out = Collection::default();
        let err = c
            .convert("# TYPE c counter\nc 1\nc{ 2\n", Instant::now(), &mut out)
            .unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        assert!(out.samples.is_empty(), "{:?}", out.samples);
        assert_eq!(c.tracked(), 1);
        c.convert("# TYPE d counter\nd 1\n", Instant::now(), &mut out)
            .unwrap();
        c.convert("# TYPE d counter\nd 1\n}\n", Instant::now(), &mut out)
            .unwrap_err();
        assert_eq!(c.tracked(), 1, "a failed scrape drops no state");
        for (body, what) in [
            ("# TYPE h histogram\nh_bucket 1\n", "needs an `le` label"),
            (
                "# TYPE h histogram\nh_bucket{le=\"x\"} 1\n",
                "needs an `le` label",
            ),
            (
                "# TYPE s summary\ns{quantile=\"p\"} 1\n",
                "`quantile` `p` is not a number",
            ),
        ] {
            let err = c.convert(body, Instant::now(), &mut out).unwrap_err();
            assert_eq!(err.line, 2, "{body:?}: {err}");
            assert!(err.message.contains(what), "{body:?}: {err}");
        }
    }

    #[test]
    fn the_writer_gets_the_json_of_the_owned_samples() {
        let body = format!(
            "{BODY}unsorted{{zz=\"1\",fn=\"theirs\",aa=\"a\\\"q\\\\\\n\"}} NaN\nneg -Inf 17\n"
        );
        let make = || Converter {
            rates: true,
            buckets: true,
            labels: [("fn", "mine"), ("m", "é")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into(),
            ..Converter::default()
        };
        let (mut owned, mut borrowed) = (make(), make());
        let start = Instant::now();
        let mut buf = Vec::new();
        for i in 0..3 {
            let now = start + Duration::from_secs(i);
            let mut c = Collection::default();
            owned.convert(&body, now, &mut c).unwrap();
            let mut expected = Vec::new();
            c.write_json(&mut expected);
            let mut w = CollectionWriter::from_vec(std::mem::take(&mut buf));
            borrowed.convert(&body, now, &mut w).unwrap();
            buf = w.finish();
            assert_eq!(
                String::from_utf8_lossy(&buf),
                String::from_utf8_lossy(&expected),
                "scrape {i}"
            );
            let names: Vec<_> = c.samples.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(names.contains(&"calls_total_rate"), i > 0, "{names:?}");
            let unsorted = c.samples.iter().find(|s| s.name == "unsorted").unwrap();
            let keys: Vec<_> = unsorted.labels.keys().map(String::as_str).collect();
            assert_eq!(keys, ["aa", "fn", "m", "zz"]);
            assert_eq!(unsorted.labels["aa"], "a\"q\\\n");
            assert_eq!(unsorted.labels["fn"], "mine");
        }
        // A malformed scrape leaves the writer as it was.
        let mut w = CollectionWriter::new();
        w.sample("kept", 1.0, SampleKind::Gauge);
        let err = borrowed
            .convert("ok 1\nbad{ 2\n", start, &mut w)
            .unwrap_err();
        assert_eq!(err.line, 2);
        assert_eq!(w.samples(), 1);
        let json = String::from_utf8(w.finish()).unwrap();
        assert_eq!(
            json,
            r#"{"samples":[{"name":"kept","value":1.0,"kind":"gauge"}],"events":[]}"#
        );
    }
}
