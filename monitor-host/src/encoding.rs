//! The compact point encoding shared by the in-memory store's chunks and the history's blocks.
//!
//! A run of points is its first point, then for each later point its time's change of step (a
//! zigzag varint: one byte for a regular interval) and its value's XOR with the previous value
//! with leading and trailing zero bytes dropped (one byte for an unchanged value). A steady
//! series costs 2-4 bytes a point instead of 16.

/// Where decoding stands in a run: the point just read, the time step that led to it and where
/// the next point's bytes start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cursor {
    pub(crate) ts: u64,
    pub(crate) bits: u64,
    pub(crate) delta: i64,
    pub(crate) offset: usize,
}

impl Cursor {
    pub(crate) fn point(&self) -> (u64, f64) {
        (self.ts, f64::from_bits(self.bits))
    }

    /// The point after this one, read from `bytes`.
    pub(crate) fn step(self, bytes: &[u8]) -> Self {
        let mut offset = self.offset;
        let dod = unzigzag(read_varint(bytes, &mut offset));
        let delta = self.delta + dod;
        let x = read_xor(bytes, &mut offset);
        Self {
            ts: self.ts.wrapping_add_signed(delta),
            bits: self.bits ^ x,
            delta,
            offset,
        }
    }
}

/// Appends to `out` the point `(ts, bits)` following `last`; returns the cursor of the new point.
pub(crate) fn write_step(out: &mut Vec<u8>, last: &Cursor, ts: u64, bits: u64) -> Cursor {
    let delta = ts.wrapping_sub(last.ts) as i64;
    write_varint(out, zigzag(delta - last.delta));
    write_xor(out, bits ^ last.bits);
    Cursor {
        ts,
        bits,
        delta,
        offset: out.len(),
    }
}

/// A block being written, as the history stores it: the first point's time (varint) and value
/// bits (8 bytes, little-endian), then a step per later point.
#[derive(Debug, Clone, Default)]
pub(crate) struct BlockBuilder {
    data: Vec<u8>,
    last: Option<Cursor>,
    first_ts: u64,
    count: usize,
}

impl BlockBuilder {
    /// Appends a point; `ts` must not be older than the last one's.
    pub(crate) fn push(&mut self, ts: u64, v: f64) {
        let bits = v.to_bits();
        self.last = Some(match &self.last {
            Some(last) => write_step(&mut self.data, last, ts, bits),
            None => {
                self.first_ts = ts;
                write_varint(&mut self.data, ts);
                self.data.extend_from_slice(&bits.to_le_bytes());
                Cursor {
                    ts,
                    bits,
                    delta: 0,
                    offset: self.data.len(),
                }
            }
        });
        self.count += 1;
    }

    /// Points in the block.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// The first and the last point's times, when there is a point.
    pub(crate) fn span(&self) -> Option<(u64, u64)> {
        self.last.map(|l| (self.first_ts, l.ts))
    }

    /// The encoded block.
    pub(crate) fn data(&self) -> &[u8] {
        &self.data
    }

    /// Empties the block, keeping its buffer.
    pub(crate) fn clear(&mut self) {
        self.data.clear();
        self.last = None;
        self.count = 0;
    }
}

/// `points` (oldest first) as one block.
pub(crate) fn encode_block(points: &[(u64, f64)]) -> Vec<u8> {
    let mut b = BlockBuilder::default();
    for &(ts, v) in points {
        b.push(ts, v);
    }
    b.data
}

/// The `count` points of a block written by [`BlockBuilder`], oldest first. A block shorter than
/// its count (a damaged row) ends early rather than panicking.
pub(crate) fn decode_block(bytes: &[u8], count: usize) -> impl Iterator<Item = (u64, f64)> + '_ {
    let mut offset = 0;
    let head = try_read_varint(bytes, &mut offset).and_then(|ts| {
        let bits = bytes.get(offset..offset + 8)?;
        let bits = u64::from_le_bytes(bits.try_into().ok()?);
        Some(Cursor {
            ts,
            bits,
            delta: 0,
            offset: offset + 8,
        })
    });
    let mut at = head;
    (0..count).map_while(move |i| {
        let cur = at?;
        if i > 0 {
            // Checked, unlike `Cursor::step`: the bytes come from the disk.
            let next = checked_step(cur, bytes)?;
            at = Some(next);
            return Some(next.point());
        }
        Some(cur.point())
    })
}

fn checked_step(c: Cursor, bytes: &[u8]) -> Option<Cursor> {
    let mut offset = c.offset;
    let dod = unzigzag(try_read_varint(bytes, &mut offset)?);
    let head = *bytes.get(offset)?;
    let n = if head == 0xff {
        0
    } else {
        8usize.checked_sub(usize::from(head >> 4) + usize::from(head & 0xf))?
    };
    bytes.get(offset + 1..offset + 1 + n)?;
    let x = read_xor(bytes, &mut offset);
    let delta = c.delta.wrapping_add(dod);
    Some(Cursor {
        ts: c.ts.wrapping_add_signed(delta),
        bits: c.bits ^ x,
        delta,
        offset,
    })
}

pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(crate) fn unzigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

pub(crate) fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn read_varint(bytes: &[u8], at: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = bytes[*at];
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return v;
        }
        shift += 7;
    }
}

/// [`read_varint`] for bytes read from the disk: `None` past the end or past 64 bits.
pub(crate) fn try_read_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = *bytes.get(*at)?;
        *at += 1;
        if shift > 63 {
            return None;
        }
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
        shift += 7;
    }
}

/// An XOR of two values' bits: one byte `0xff` when they are equal, else a byte with the
/// number of leading zero bytes (high nibble) and trailing zero bytes (low nibble), then the
/// bytes between, least significant first.
pub(crate) fn write_xor(out: &mut Vec<u8>, x: u64) {
    if x == 0 {
        out.push(0xff);
        return;
    }
    let lead = x.leading_zeros() / 8;
    let trail = x.trailing_zeros() / 8;
    out.push(((lead << 4) | trail) as u8);
    let kept = (x >> (trail * 8)).to_le_bytes();
    out.extend_from_slice(&kept[..(8 - lead - trail) as usize]);
}

pub(crate) fn read_xor(bytes: &[u8], at: &mut usize) -> u64 {
    let head = bytes[*at];
    *at += 1;
    if head == 0xff {
        return 0;
    }
    let (lead, trail) = (u32::from(head >> 4), u32::from(head & 0xf));
    let n = (8 - lead - trail) as usize;
    let mut kept = [0u8; 8];
    kept[..n].copy_from_slice(&bytes[*at..*at + n]);
    *at += n;
    u64::from_le_bytes(kept) << (trail * 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_read_back_exactly() {
        let mut pts = Vec::new();
        let mut t = 1_700_000_000_000u64;
        for i in 0..500u64 {
            t += [1000, 0, 997, 3_600_000, 1003][(i % 5) as usize];
            let v = match i % 4 {
                0 => 0.0,
                1 => -1.5e-300 * i as f64,
                2 => f64::MAX / (i as f64 + 1.0),
                _ => 42.0,
            };
            pts.push((t, v));
        }
        for n in [0, 1, 2, 120, 500] {
            let data = encode_block(&pts[..n]);
            let got: Vec<_> = decode_block(&data, n).collect();
            assert!(
                got.iter()
                    .map(|p| (p.0, p.1.to_bits()))
                    .eq(pts[..n].iter().map(|p| (p.0, p.1.to_bits())))
            );
        }
    }

    #[test]
    fn a_truncated_or_garbage_block_ends_early_without_panicking() {
        let pts: Vec<_> = (0..50u64).map(|i| (i * 1000, i as f64 * 0.3)).collect();
        let data = encode_block(&pts);
        for cut in 0..data.len() {
            let got: Vec<_> = decode_block(&data[..cut], 50).collect();
            assert!(got.len() < 50, "{cut}");
            assert!(got.iter().zip(&pts).all(|(a, b)| a == b));
        }
        let garbage = vec![0xffu8; 40];
        assert!(decode_block(&garbage, 10).count() <= 10);
        let nibbles = [1u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99, 1, 2];
        assert_eq!(decode_block(&nibbles, 5).count(), 1);
    }
}
