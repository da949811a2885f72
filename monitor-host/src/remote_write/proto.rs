//! The remote-write 1.0 wire format: the four protobuf messages of `prometheus.WriteRequest`,
//! encoded by hand (varints, length-delimited fields, fixed64 doubles) rather than generated, then
//! snappy block compression.
//!
//! ```text
//! message WriteRequest { repeated TimeSeries timeseries = 1; }
//! message TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
//! message Label        { string name = 1; string value = 2; }
//! message Sample       { double value = 1; int64 timestamp = 2; }  // timestamp in ms
//! ```

/// One series of a write request: labels sorted by name (`__name__` among them), samples oldest
/// first as `(ms since the Unix epoch, value)`.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeSeries {
    /// `(name, value)`, sorted by name, no empty values.
    pub labels: Vec<(String, String)>,
    /// `(timestamp ms, value)`.
    pub samples: Vec<(i64, f64)>,
}

// Field keys: (field number << 3) | wire type (0 varint, 1 fixed64, 2 length-delimited).
const KEY_TIMESERIES: u8 = 1 << 3 | 2;
const KEY_LABELS: u8 = 1 << 3 | 2;
const KEY_SAMPLES: u8 = 2 << 3 | 2;
const KEY_NAME: u8 = 1 << 3 | 2;
const KEY_VALUE_STRING: u8 = 2 << 3 | 2;
const KEY_VALUE_DOUBLE: u8 = 1 << 3 | 1;
const KEY_TIMESTAMP: u8 = 2 << 3;

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Key, length and body of a length-delimited field whose body is `len` bytes.
fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

fn label_len(name: &str, value: &str) -> usize {
    field_len(name.len()) + field_len(value.len())
}

fn sample_len(ts: i64) -> usize {
    // int64 is encoded as its two's complement u64: negative times take ten bytes.
    1 + 8 + 1 + varint_len(ts as u64)
}

fn series_len(s: &TimeSeries) -> usize {
    let labels: usize = s
        .labels
        .iter()
        .map(|(n, v)| field_len(label_len(n, v)))
        .sum();
    let samples: usize = s
        .samples
        .iter()
        .map(|(t, _)| field_len(sample_len(*t)))
        .sum();
    labels + samples
}

fn put_bytes(out: &mut Vec<u8>, key: u8, bytes: &[u8]) {
    out.push(key);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// The protobuf encoding of a `WriteRequest` holding `series`.
pub fn encode(series: &[TimeSeries]) -> Vec<u8> {
    let total: usize = series.iter().map(|s| field_len(series_len(s))).sum();
    let mut out = Vec::with_capacity(total);
    for s in series {
        out.push(KEY_TIMESERIES);
        put_varint(&mut out, series_len(s) as u64);
        for (name, value) in &s.labels {
            out.push(KEY_LABELS);
            put_varint(&mut out, label_len(name, value) as u64);
            put_bytes(&mut out, KEY_NAME, name.as_bytes());
            put_bytes(&mut out, KEY_VALUE_STRING, value.as_bytes());
        }
        for &(ts, value) in &s.samples {
            out.push(KEY_SAMPLES);
            put_varint(&mut out, sample_len(ts) as u64);
            out.push(KEY_VALUE_DOUBLE);
            out.extend_from_slice(&value.to_le_bytes());
            out.push(KEY_TIMESTAMP);
            put_varint(&mut out, ts as u64);
        }
    }
    debug_assert_eq!(out.len(), total);
    out
}

/// The body of a remote-write POST: the request encoded, then snappy block-compressed (the raw
/// format, not the framed one).
pub fn body(series: &[TimeSeries]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&encode(series))
        .expect("snappy compresses any input below 4 GiB")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
        TimeSeries {
            labels: labels
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            samples: samples.to_vec(),
        }
    }

    #[test]
    fn varints() {
        let enc = |v: u64| {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v));
            out
        };
        assert_eq!(enc(0), [0x00]);
        assert_eq!(enc(1), [0x01]);
        assert_eq!(enc(127), [0x7f]);
        assert_eq!(enc(128), [0x80, 0x01]);
        assert_eq!(enc(300), [0xac, 0x02]);
        assert_eq!(enc(u64::MAX).len(), 10);
    }

    #[test]
    fn one_series_one_sample() {
        // Worked out by hand from the protobuf encoding rules.
        let got = encode(&[series(&[("__name__", "up")], &[(1000, 1.0)])]);
        let want: &[u8] = &[
            0x0a, 0x1e, // timeseries, 30 bytes
            0x0a, 0x0e, // labels, 14 bytes
            0x0a, 0x08, b'_', b'_', b'n', b'a', b'm', b'e', b'_', b'_', // name
            0x12, 0x02, b'u', b'p', // value
            0x12, 0x0c, // samples, 12 bytes
            0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf0, 0x3f, // value 1.0, fixed64
            0x10, 0xe8, 0x07, // timestamp 1000, varint
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn two_series_with_several_labels_and_samples() {
        let got = encode(&[
            series(&[("__name__", "a"), ("job", "x")], &[(1, 0.5), (2, -2.0)]),
            series(&[("__name__", "b")], &[(1_700_000_000_000, 0.0)]),
        ]);
        let want: &[u8] = &[
            0x0a, 0x33, // timeseries 1, 51 bytes
            0x0a, 0x0d, 0x0a, 0x08, b'_', b'_', b'n', b'a', b'm', b'e', b'_', b'_', 0x12, 0x01,
            b'a', // __name__="a"
            0x0a, 0x08, 0x0a, 0x03, b'j', b'o', b'b', 0x12, 0x01, b'x', // job="x"
            0x12, 0x0b, 0x09, 0, 0, 0, 0, 0, 0, 0xe0, 0x3f, 0x10, 0x01, // 0.5 @ 1
            0x12, 0x0b, 0x09, 0, 0, 0, 0, 0, 0, 0x00, 0xc0, 0x10, 0x02, // -2.0 @ 2
            0x0a, 0x21, // timeseries 2, 33 bytes
            0x0a, 0x0d, 0x0a, 0x08, b'_', b'_', b'n', b'a', b'm', b'e', b'_', b'_', 0x12, 0x01,
            b'b', // __name__="b"
            0x12, 0x10, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, // 0.0
            0x10, 0x80, 0xd0, 0x95, 0xff, 0xbc, 0x31, // @ 1700000000000
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn an_empty_request_is_empty() {
        assert!(encode(&[]).is_empty());
    }

    #[test]
    fn the_body_is_raw_snappy_of_the_encoding() {
        let s = [series(&[("__name__", "up"), ("host", "h")], &[(5, 1.0)])];
        let body = body(&s);
        let plain = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        assert_eq!(plain, encode(&s));
        // The framed format would start with its stream identifier chunk.
        assert_ne!(body.first(), Some(&0xff));
    }
}
