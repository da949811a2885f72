//! The pipe protocol between the host and an isolated plugin's process: length-prefixed frames
//! carrying the same byte payloads the in-process path uses.
//!
//! A frame is a little-endian `u32` length, then that many bytes: a tag byte and the payload. The
//! host sends the config JSON first ([`CONFIG`]), then [`CALL`]s and one [`SHUTDOWN`] (or only
//! [`DESCRIBE`], to read the library's declaration without running the plugin); the child
//! answers each with one frame whose tag is the call's status ([`OK`], [`ERROR`], [`PANICKED`],
//! [`INVALID`]) and whose payload is the output or the failure's text. Between answers, an
//! isolated collector's process may send [`REQUEST`] frames, which are not answers: the instance
//! asks for a collection now.

use std::io::{self, Read, Write};

use crate::library::CallFailure;

/// Host to child: the instance's config JSON, to create and configure it.
pub const CONFIG: u8 = 0;
/// Host to child: a call's input.
pub const CALL: u8 = 1;
/// Host to child: call `shutdown`, destroy the instance, exit.
pub const SHUTDOWN: u8 = 2;
/// Host to child, instead of [`CONFIG`]: load the library, answer with its declaration
/// ([`Declared`](crate::library::Declared) as JSON) or the load error, and exit.
pub const DESCRIBE: u8 = 3;

/// Child to host: success; the payload is the output.
pub const OK: u8 = 0;
/// Child to host: the plugin returned an error.
pub const ERROR: u8 = 1;
/// Child to host: the plugin panicked.
pub const PANICKED: u8 = 2;
/// Child to host: the input or the output could not be understood.
pub const INVALID: u8 = 3;
/// Child to host, at any time and never an answer: the instance asks for a collection now (its
/// host table's `request_collection`). Empty payload.
pub const REQUEST: u8 = 4;

/// Writes one frame with a single `write_all`, so a frame is never interleaved.
///
/// # Errors
///
/// The pipe's error (`BrokenPipe` when the other side is gone), or a payload over 4 GiB.
pub fn write(out: &mut impl Write, tag: u8, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len() + 1)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame over 4 GiB"))?;
    let mut frame = Vec::with_capacity(payload.len() + 5);
    frame.extend_from_slice(&len.to_le_bytes());
    frame.push(tag);
    frame.extend_from_slice(payload);
    out.write_all(&frame)?;
    out.flush()
}

/// Reads one frame whose payload is at most `limit` bytes; `None` at a clean end of the stream.
///
/// # Errors
///
/// The pipe's error, a stream cut inside a frame, an empty frame or one over `limit`.
pub fn read(input: &mut impl Read, limit: usize) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut header = [0u8; 4];
    let mut filled = 0;
    while filled < header.len() {
        match input.read(&mut header[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_le_bytes(header) as usize;
    if len == 0 || len - 1 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes; the limit is {} bytes", limit + 1),
        ));
    }
    let mut tag = [0u8; 1];
    input.read_exact(&mut tag)?;
    let mut payload = vec![0u8; len - 1];
    input.read_exact(&mut payload)?;
    Ok(Some((tag[0], payload)))
}

/// The answer frame's tag and payload for a call's result.
pub fn encode(result: &Result<Vec<u8>, CallFailure>) -> (u8, &[u8]) {
    match result {
        Ok(bytes) => (OK, bytes),
        Err(CallFailure::Error(m)) => (ERROR, m.as_bytes()),
        Err(CallFailure::Panicked(m)) => (PANICKED, m.as_bytes()),
        Err(CallFailure::Invalid(m)) => (INVALID, m.as_bytes()),
    }
}

/// Writes the answer frame for a call's result.
///
/// # Errors
///
/// As [`write`].
pub fn answer(out: &mut impl Write, result: &Result<Vec<u8>, CallFailure>) -> io::Result<()> {
    let (tag, payload) = encode(result);
    write(out, tag, payload)
}

/// A call's result from an answer frame.
pub fn decode(tag: u8, payload: Vec<u8>) -> Result<Vec<u8>, CallFailure> {
    let text = |p: Vec<u8>| String::from_utf8_lossy(&p).into_owned();
    match tag {
        OK => Ok(payload),
        ERROR => Err(CallFailure::Error(text(payload))),
        PANICKED => Err(CallFailure::Panicked(text(payload))),
        INVALID => Err(CallFailure::Invalid(text(payload))),
        other => Err(CallFailure::Invalid(format!(
            "the plugin's process answered with unknown status {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_end_cleanly() {
        let mut pipe = Vec::new();
        write(&mut pipe, CALL, b"{\"a\":1}").unwrap();
        write(&mut pipe, SHUTDOWN, b"").unwrap();
        let mut r = pipe.as_slice();
        assert_eq!(
            read(&mut r, 64).unwrap(),
            Some((CALL, b"{\"a\":1}".to_vec()))
        );
        assert_eq!(read(&mut r, 64).unwrap(), Some((SHUTDOWN, Vec::new())));
        assert_eq!(read(&mut r, 64).unwrap(), None);
    }

    #[test]
    fn a_frame_over_the_limit_is_refused_before_it_is_read() {
        let mut pipe = Vec::new();
        write(&mut pipe, OK, &[7; 100]).unwrap();
        let e = read(&mut pipe.as_slice(), 99).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(read(&mut pipe.as_slice(), 100).unwrap().is_some());
    }

    #[test]
    fn a_stream_cut_inside_a_frame_is_an_error_not_an_end() {
        let mut pipe = Vec::new();
        write(&mut pipe, OK, b"payload").unwrap();
        for cut in 1..pipe.len() {
            let e = read(&mut &pipe[..cut], 64).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "cut at {cut}");
        }
        let empty = 0u32.to_le_bytes();
        assert!(read(&mut empty.as_slice(), 64).is_err());
    }

    #[test]
    fn every_result_survives_the_pipe() {
        let results = [
            Ok(b"out".to_vec()),
            Err(CallFailure::Error("e".into())),
            Err(CallFailure::Panicked("p".into())),
            Err(CallFailure::Invalid("i".into())),
        ];
        for r in results {
            let (tag, payload) = encode(&r);
            assert_eq!(decode(tag, payload.to_vec()), r);
        }
        assert!(matches!(decode(9, vec![]), Err(CallFailure::Invalid(_))));
    }
}
