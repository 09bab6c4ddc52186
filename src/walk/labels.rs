//! pprof labels attached to a goroutine (`g.labels`), as set by
//! `pprof.Do`/`pprof.SetGoroutineLabels`.
//!
//! Two representations: up to Go 1.23, `g.labels` points at a
//! `map[string]string` variable (so, at a pointer to an `hmap`); from 1.24
//! it points at a struct whose first field is a `[]struct{key, value
//! string}` sorted by key. Everything is bounded: labels come from memory
//! the target controls.

use crate::memory::{Memory, MemoryExt};
use std::collections::BTreeMap;

/// Most labels read per goroutine.
pub(crate) const MAX_LABELS: u64 = 64;
/// Longest key or value read.
pub(crate) const MAX_LABEL_LEN: u64 = 4096;
/// Largest `hmap.B` accepted (2^B buckets).
const MAX_BUCKET_SHIFT: u8 = 6;
/// Longest overflow chain followed per bucket.
const MAX_OVERFLOW: usize = 8;

/// Bucket of a `map[string]string`: 8 tophash bytes, 8 keys, 8 values,
/// then the overflow pointer.
const BUCKET_SIZE: u64 = 8 + 8 * 16 + 8 * 16 + 8;
/// Go's `minTopHash`: smaller tophash values mark empty/evacuated slots.
const MIN_TOP_HASH: u8 = 5;

/// Reads the labels behind `g.labels`; `None` if there are none or they
/// cannot be read.
pub(crate) fn read_labels<M: Memory>(
    mem: &M,
    labels_ptr: u64,
    minor: u32,
) -> Option<BTreeMap<String, String>> {
    if labels_ptr == 0 {
        return None;
    }
    let out = if minor >= 24 {
        read_slice(mem, labels_ptr)?
    } else {
        read_map(mem, labels_ptr)?
    };
    if out.is_empty() {
        None
    } else {
        Some(out)
    }
}

fn read_slice<M: Memory>(mem: &M, at: u64) -> Option<BTreeMap<String, String>> {
    let ptr = mem.read_u64(at).ok()?;
    let len = mem.read_u64(at.wrapping_add(8)).ok()?;
    if len > MAX_LABELS {
        return None;
    }
    let mut out = BTreeMap::new();
    for i in 0..len {
        let e = ptr.checked_add(32 * i)?;
        let k = mem.read_go_string(e, MAX_LABEL_LEN).ok()?;
        let v = mem.read_go_string(e.wrapping_add(16), MAX_LABEL_LEN).ok()?;
        out.insert(k, v);
    }
    Some(out)
}

fn read_map<M: Memory>(mem: &M, at: u64) -> Option<BTreeMap<String, String>> {
    let hmap = mem.read_u64(at).ok()?;
    if hmap == 0 {
        return Some(BTreeMap::new());
    }
    let count = mem.read_u64(hmap).ok()?;
    if count > MAX_LABELS {
        return None;
    }
    let b = mem.read_u8(hmap.wrapping_add(9)).ok()?;
    if b > MAX_BUCKET_SHIFT {
        return None;
    }
    let buckets = mem.read_u64(hmap.wrapping_add(16)).ok()?;
    let mut out = BTreeMap::new();
    for i in 0..(1u64 << b) {
        let mut bucket = buckets.checked_add(i * BUCKET_SIZE)?;
        for _ in 0..=MAX_OVERFLOW {
            let mut tophash = [0u8; 8];
            mem.read_at(bucket, &mut tophash).ok()?;
            for (slot, &t) in tophash.iter().enumerate() {
                if t >= MIN_TOP_HASH {
                    let k = mem
                        .read_go_string(bucket.wrapping_add(8 + 16 * slot as u64), MAX_LABEL_LEN)
                        .ok()?;
                    let v = mem
                        .read_go_string(
                            bucket.wrapping_add(8 + 128 + 16 * slot as u64),
                            MAX_LABEL_LEN,
                        )
                        .ok()?;
                    out.insert(k, v);
                }
            }
            let next = mem.read_u64(bucket.wrapping_add(BUCKET_SIZE - 8)).ok()?;
            if next == 0 || out.len() as u64 >= count {
                break;
            }
            bucket = next;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::RegionMemory;

    fn gostr(m: &mut RegionMemory, hdr: u64, data: u64, s: &str) {
        m.insert(data, s.as_bytes().to_vec());
        let mut h = data.to_le_bytes().to_vec();
        h.extend((s.len() as u64).to_le_bytes());
        m.insert(hdr, h);
    }

    #[test]
    fn reads_slice_labels() {
        let mut m = RegionMemory::new();
        // labels -> {ptr=0x2000, len=1, cap=1}
        let mut s = 0x2000u64.to_le_bytes().to_vec();
        s.extend(1u64.to_le_bytes());
        s.extend(1u64.to_le_bytes());
        m.insert(0x1000, s);
        gostr(&mut m, 0x2000, 0x3000, "tenant");
        gostr(&mut m, 0x2010, 0x3100, "acme");
        let l = read_labels(&m, 0x1000, 27).unwrap();
        assert_eq!(l.get("tenant").map(String::as_str), Some("acme"));
        // A huge length is refused.
        let mut bad = 0x2000u64.to_le_bytes().to_vec();
        bad.extend((1u64 << 40).to_le_bytes());
        m.insert(0x5000, bad);
        assert!(read_labels(&m, 0x5000, 27).is_none());
    }

    #[test]
    fn reads_map_labels() {
        let mut m = RegionMemory::new();
        m.insert(0x1000, 0x4000u64.to_le_bytes().to_vec()); // *labelMap -> hmap
        let mut h = vec![0u8; 48];
        h[..8].copy_from_slice(&1u64.to_le_bytes()); // count
        h[9] = 0; // B
        h[16..24].copy_from_slice(&0x6000u64.to_le_bytes()); // buckets
        m.insert(0x4000, h);
        let mut bucket = vec![0u8; BUCKET_SIZE as usize];
        bucket[3] = 0x9a; // slot 3 live
        let mut put = |at: usize, ptr: u64, len: u64| {
            bucket[at..at + 8].copy_from_slice(&ptr.to_le_bytes());
            bucket[at + 8..at + 16].copy_from_slice(&len.to_le_bytes());
        };
        put(8 + 48, 0x7000, 7);
        put(8 + 128 + 48, 0x7100, 3);
        m.insert(0x6000, bucket);
        m.insert(0x7000, b"user id".to_vec());
        m.insert(0x7100, b"x y".to_vec());
        let l = read_labels(&m, 0x1000, 21).unwrap();
        assert_eq!(l.get("user id").map(String::as_str), Some("x y"));
    }
}
