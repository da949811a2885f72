//! File exports of a snapshot: the atomic JSON write and the HdrHistogram
//! interval log.

use std::io::{self, Write};
use std::path::Path;

use crate::snapshot::Snapshot;

/// Writes `bytes` to `path` through a temporary file and a rename.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a file path", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let context = |step: &str, e: io::Error| {
        let message = format!(
            "cannot write {} ({step} {}): {e}; the previous file is unchanged",
            path.display(),
            tmp.display()
        );
        io::Error::new(e.kind(), message)
    };
    let result = (|| {
        let mut file = std::fs::File::create(&tmp).map_err(|e| context("creating", e))?;
        file.write_all(bytes).map_err(|e| context("writing", e))?;
        file.sync_all().map_err(|e| context("flushing", e))?;
        std::fs::rename(&tmp, path).map_err(|e| context("renaming", e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    // Make the rename itself durable; not every platform can open a directory.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Writes each called function's latency histogram as one tagged interval.
pub(crate) fn write_hdr_log<W: Write>(snapshot: &Snapshot, out: &mut W) -> io::Result<()> {
    use hdrhistogram::serialization::V2DeflateSerializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

    let start = snapshot.generated_at;
    let mut serializer = V2DeflateSerializer::new();
    let mut writer = IntervalLogWriterBuilder::new()
        .add_comment("monitor-core latency histograms, values in nanoseconds")
        .with_start_time(start)
        .with_base_time(start)
        .with_max_value_divisor(1_000_000.0)
        .begin_log_with(out, &mut serializer)?;
    for function in snapshot.functions.iter().filter(|f| f.calls > 0) {
        let hdr = function.latency.to_hdr();
        // Tags may not contain spaces or commas; map them to underscores.
        let tag: String = function
            .name
            .chars()
            .map(|c| {
                if c.is_whitespace() || c == ',' {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        writer
            .write_histogram(
                &hdr,
                std::time::Duration::ZERO,
                std::time::Duration::ZERO,
                Tag::new(&tag),
            )
            .map_err(|e| io::Error::other(format!("histogram of {}: {e:?}", function.name)))?;
    }
    Ok(())
}
