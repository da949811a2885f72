//! A collection's JSON written sample by sample, from borrowed names and labels.
//!
//! [`Collection::write_json`](crate::Collection::write_json) and [`CollectionWriter`] share the
//! functions here, so both write the same bytes for the same samples.

use serde_json::ser::{CompactFormatter, Formatter};

use crate::types::{Collection, Event, Sample, SampleKind};

/// Writes the JSON of a [`Collection`] one sample at a time, from borrowed names, labels and
/// values, into a buffer that can be kept from one call to the next: the bytes
/// [`Collection::write_json`] writes for the same samples, without building a [`Sample`] (an
/// owned name and label map) per value.
///
/// A collector that reports many values per call writes them here from
/// [`Collector::collect_into`](crate::Collector::collect_into); the SDK hands the finished buffer
/// to the host and reuses its memory for the next call.
///
/// ```
/// use monitor_plugin::{Collection, CollectionWriter, Sample, SampleKind};
///
/// let mut w = CollectionWriter::new();
/// w.sample("http.requests", 12.0, SampleKind::Counter)
///     .label("code", "200")
///     .label("method", "GET");
/// let json = w.finish();
///
/// let same = Collection {
///     samples: vec![
///         Sample::counter("http.requests", 12.0).with_label("method", "GET").with_label("code", "200"),
///     ],
///     events: vec![],
/// };
/// let mut expected = Vec::new();
/// same.write_json(&mut expected);
/// assert_eq!(json, expected);
/// ```
#[derive(Debug)]
pub struct CollectionWriter {
    out: Vec<u8>,
    samples: usize,
    events: Vec<Event>,
}

/// A point of a [`CollectionWriter`] to come back to with [`CollectionWriter::rewind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    bytes: usize,
    samples: usize,
    events: usize,
}

impl Default for CollectionWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl CollectionWriter {
    /// An empty collection in a new buffer.
    pub fn new() -> Self {
        Self::from_vec(Vec::new())
    }

    /// An empty collection written into `buf`, whose content is dropped and whose capacity is
    /// kept: a buffer sized by an earlier collection spares the copies of a growing one.
    pub fn from_vec(mut buf: Vec<u8>) -> Self {
        buf.clear();
        buf.extend_from_slice(OPEN);
        Self {
            out: buf,
            samples: 0,
            events: Vec::new(),
        }
    }

    /// Starts a sample; add its labels (in key order, each key once) and timestamp to the
    /// returned [`SampleWriter`], which completes the sample when dropped.
    ///
    /// Labels in key order are what [`Collection::write_json`] writes for a [`Labels`] map
    /// (the host reads them into one).
    ///
    /// [`Labels`]: crate::Labels
    pub fn sample(&mut self, name: &str, value: f64, kind: SampleKind) -> SampleWriter<'_> {
        open_sample(&mut self.out, self.samples == 0, name, value, kind);
        self.samples += 1;
        SampleWriter {
            writer: self,
            labels: false,
            timestamp_ms: None,
        }
    }

    /// Appends an owned sample.
    pub fn push_sample(&mut self, sample: &Sample) {
        write_sample(&mut self.out, self.samples == 0, sample);
        self.samples += 1;
    }

    /// Appends an event; events are written after the samples, by [`finish`](Self::finish).
    pub fn push_event(&mut self, event: Event) {
        self.events.push(event);
    }

    /// Appends a collection's samples and events.
    pub fn push_collection(&mut self, collection: Collection) {
        for s in &collection.samples {
            self.push_sample(s);
        }
        self.events.extend(collection.events);
    }

    /// How many samples were written.
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// The current point, to [`rewind`](Self::rewind) to: for instance before a batch of samples
    /// that is dropped when its source turns out malformed.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            bytes: self.out.len(),
            samples: self.samples,
            events: self.events.len(),
        }
    }

    /// Drops every sample and event written since `checkpoint` was taken from this writer.
    ///
    /// # Panics
    ///
    /// When `checkpoint` lies beyond what this writer holds (one taken from another writer).
    pub fn rewind(&mut self, checkpoint: Checkpoint) {
        assert!(
            checkpoint.bytes <= self.out.len()
                && checkpoint.samples <= self.samples
                && checkpoint.events <= self.events.len(),
            "rewind to a checkpoint this writer never had"
        );
        self.out.truncate(checkpoint.bytes);
        self.samples = checkpoint.samples;
        self.events.truncate(checkpoint.events);
    }

    /// Completes the collection and returns its JSON.
    pub fn finish(mut self) -> Vec<u8> {
        close(&mut self.out, &self.events);
        self.out
    }
}

/// A sample being written by a [`CollectionWriter`]; dropping it completes the sample.
#[derive(Debug)]
pub struct SampleWriter<'w> {
    writer: &'w mut CollectionWriter,
    labels: bool,
    timestamp_ms: Option<u64>,
}

impl SampleWriter<'_> {
    /// Adds a label. Keys in order and each once, as [`CollectionWriter::sample`] says.
    pub fn label(&mut self, key: &str, value: &str) -> &mut Self {
        let out = &mut self.writer.out;
        out.extend_from_slice(if self.labels { b"," } else { LABELS });
        self.labels = true;
        json_str(out, key);
        out.push(b':');
        json_str(out, value);
        self
    }

    /// Sets the time of measurement, in milliseconds since the Unix epoch (the host's clock when
    /// not set).
    pub fn timestamp_ms(&mut self, ms: u64) -> &mut Self {
        self.timestamp_ms = Some(ms);
        self
    }
}

impl Drop for SampleWriter<'_> {
    fn drop(&mut self) {
        close_sample(&mut self.writer.out, self.labels, self.timestamp_ms);
    }
}

const OPEN: &[u8] = b"{\"samples\":[";
const LABELS: &[u8] = b",\"labels\":{";

/// Appends `collection`'s JSON to `out`; see [`Collection::write_json`].
pub(crate) fn write_collection(out: &mut Vec<u8>, collection: &Collection) {
    out.extend_from_slice(OPEN);
    for (i, s) in collection.samples.iter().enumerate() {
        write_sample(out, i == 0, s);
    }
    close(out, &collection.events);
}

fn write_sample(out: &mut Vec<u8>, first: bool, s: &Sample) {
    open_sample(out, first, &s.name, s.value, s.kind);
    let mut labels = false;
    for (k, v) in &s.labels {
        out.extend_from_slice(if labels { b"," } else { LABELS });
        labels = true;
        json_str(out, k);
        out.push(b':');
        json_str(out, v);
    }
    close_sample(out, labels, s.timestamp_ms);
}

/// Writes a sample up to its labels: `{"name":...,"value":...,"kind":...`.
fn open_sample(out: &mut Vec<u8>, first: bool, name: &str, value: f64, kind: SampleKind) {
    out.extend_from_slice(if first { b"{\"name\":" } else { b",{\"name\":" });
    json_str(out, name);
    out.extend_from_slice(b",\"value\":");
    match crate::number::non_finite_str(value) {
        Some(text) => json_str(out, text),
        // Writing to a Vec cannot fail.
        None => drop(CompactFormatter.write_f64(out, value)),
    }
    out.extend_from_slice(match kind {
        SampleKind::Gauge => b",\"kind\":\"gauge\"",
        SampleKind::Counter => b",\"kind\":\"counter\"",
    });
}

/// Writes the end of a sample: the labels' `}` when there were labels, the timestamp, `}`.
fn close_sample(out: &mut Vec<u8>, labels: bool, timestamp_ms: Option<u64>) {
    if labels {
        out.push(b'}');
    }
    if let Some(ms) = timestamp_ms {
        out.extend_from_slice(b",\"timestamp_ms\":");
        // Writing to a Vec cannot fail.
        drop(CompactFormatter.write_u64(out, ms));
    }
    out.push(b'}');
}

/// Writes the end of the samples, then the events and the closing `}`.
fn close(out: &mut Vec<u8>, events: &[Event]) {
    out.extend_from_slice(b"],\"events\":");
    // Few per call: serde's own path is cheap enough. Writing to a Vec cannot fail.
    drop(serde_json::to_writer(&mut *out, events));
    out.push(b'}');
}

/// Writes `s` as a JSON string, escaped as serde_json escapes it.
fn json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        // Writing to a Vec cannot fail.
        drop(serde_json::to_writer(&mut *out, s));
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Labels;

    fn odd_samples() -> Vec<Sample> {
        let mut stamped = Sample::counter("with \"quotes\" \\ and \n\u{1} é ☃ 𝄞", -0.0)
            .with_label("k\t", "v\"\r")
            .with_label("plain", "x")
            .with_label("ünï", "\u{7f}\u{2028}");
        stamped.timestamp_ms = Some(u64::MAX);
        let mut zero = Sample::gauge("zero_ts", 1.0);
        zero.timestamp_ms = Some(0);
        vec![
            Sample::gauge("a", 1.0),
            Sample::gauge("b", f64::NAN).with_label("x", "y"),
            Sample::counter("c", f64::INFINITY),
            Sample::gauge("d", f64::NEG_INFINITY).with_label("", ""),
            Sample::gauge("e", 1e300).with_label("empty", ""),
            Sample::gauge("f", 1.5e-7),
            Sample::gauge("g", 123_456_789.0),
            Sample::gauge("h", f64::MIN_POSITIVE),
            Sample::gauge("", 0.1 + 0.2),
            Sample::gauge("neg", -1.0),
            stamped,
            zero,
        ]
    }

    fn events() -> Vec<Event> {
        vec![Event {
            kind: "k".into(),
            message: "m\n".into(),
            labels: Labels::from([("a".to_owned(), "b".to_owned())]),
            timestamp_ms: Some(7),
        }]
    }

    /// Writes `samples` through the borrowed-parts API.
    fn borrowed(samples: &[Sample], events: &[Event], buf: Vec<u8>) -> Vec<u8> {
        let mut w = CollectionWriter::from_vec(buf);
        for s in samples {
            let mut sw = w.sample(&s.name, s.value, s.kind);
            for (k, v) in &s.labels {
                sw.label(k.as_str(), v.as_str());
            }
            if let Some(ms) = s.timestamp_ms {
                sw.timestamp_ms(ms);
            }
        }
        for e in events {
            w.push_event(e.clone());
        }
        assert_eq!(w.samples(), samples.len());
        w.finish()
    }

    #[test]
    fn the_writer_writes_what_write_json_and_serde_json_write() {
        for (samples, events) in [
            (vec![], vec![]),
            (odd_samples(), vec![]),
            (odd_samples(), events()),
            (vec![Sample::gauge("only", 2.5)], events()),
        ] {
            let c = Collection {
                samples: samples.clone(),
                events: events.clone(),
            };
            let mut expected = Vec::new();
            c.write_json(&mut expected);
            assert_eq!(expected, serde_json::to_vec(&c).unwrap());
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            // Into a buffer holding an earlier answer: its content goes, its memory stays.
            let ours = borrowed(&samples, &events, b"stale bytes".to_vec());
            assert_eq!(text(&ours), text(&expected));
            let mut owned = CollectionWriter::new();
            owned.push_collection(c.clone());
            assert_eq!(text(&owned.finish()), text(&expected));
        }
    }

    #[test]
    fn rewinding_drops_what_came_after_the_checkpoint() {
        let mut w = CollectionWriter::new();
        w.sample("kept", 1.0, SampleKind::Gauge).label("a", "b");
        let at = w.checkpoint();
        w.sample("dropped", 2.0, SampleKind::Counter);
        w.push_event(events().remove(0));
        w.rewind(at);
        assert_eq!(w.samples(), 1);
        w.sample("after", 3.0, SampleKind::Gauge);
        let expected = Collection {
            samples: vec![
                Sample::gauge("kept", 1.0).with_label("a", "b"),
                Sample::gauge("after", 3.0),
            ],
            events: vec![],
        };
        assert_eq!(w.finish(), serde_json::to_vec(&expected).unwrap());
        let mut empty = CollectionWriter::new();
        let start = empty.checkpoint();
        empty.sample("x", 1.0, SampleKind::Gauge);
        empty.rewind(start);
        assert_eq!(empty.finish(), br#"{"samples":[],"events":[]}"#);
    }

    #[test]
    #[should_panic(expected = "rewind to a checkpoint this writer never had")]
    fn a_checkpoint_of_a_longer_writer_is_refused() {
        let mut long = CollectionWriter::new();
        long.sample("x", 1.0, SampleKind::Gauge);
        let beyond = long.checkpoint();
        CollectionWriter::new().rewind(beyond);
    }
}
