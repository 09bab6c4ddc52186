//! Decoding the records of a perf ring buffer. The bytes come from the
//! kernel, but the stack copy inside a sample is the target's memory, so
//! every length is checked and nothing here can panic on any input (the
//! `perf_records` fuzz target runs it).

use super::attr::{reg, REGS_MASK};

/// `PERF_RECORD_LOST`: the ring was full, `lost` samples were dropped.
const RECORD_LOST: u32 = 2;
/// `PERF_RECORD_THROTTLE`: the kernel throttled the event (too many
/// samples per second for `perf_event_max_sample_rate`).
const RECORD_THROTTLE: u32 = 5;
/// `PERF_RECORD_SAMPLE`.
const RECORD_SAMPLE: u32 = 9;

/// The user registers of a sample (what the unwinder and the goroutine
/// lookup need).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserRegs {
    /// Instruction pointer (in user space: in a syscall, the instruction
    /// after it).
    pub ip: u64,
    /// Stack pointer.
    pub sp: u64,
    /// Frame pointer.
    pub bp: u64,
    /// The g register of Go's internal ABI (R14 on amd64, X28 on arm64).
    pub g: u64,
}

/// One sample of one thread, as the kernel recorded it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawSample {
    /// Thread id.
    pub tid: i32,
    /// CLOCK_MONOTONIC nanoseconds.
    pub time: u64,
    /// Where the sample hit (a kernel address when the thread was in the
    /// kernel).
    pub ip: u64,
    /// The user registers, `None` when the kernel had none to give.
    pub regs: Option<UserRegs>,
    /// The user stack from `regs.sp` up, as much as was copied.
    pub stack: Vec<u8>,
}

/// One decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A sample.
    Sample(RawSample),
    /// Samples the kernel dropped because the ring was full.
    Lost(u64),
    /// The kernel throttled sampling.
    Throttle,
    /// Any other record type (skipped).
    Other,
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(8)?)?;
    Some(u64::from_le_bytes(s.try_into().ok()?))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes(s.try_into().ok()?))
}

/// Decodes one whole record (header included); `None` if it is malformed.
pub fn decode_record(rec: &[u8]) -> Option<Record> {
    let ty = u32_at(rec, 0)?;
    match ty {
        RECORD_SAMPLE => decode_sample(rec).map(Record::Sample),
        RECORD_LOST => Some(Record::Lost(u64_at(rec, 16)?)),
        RECORD_THROTTLE => Some(Record::Throttle),
        _ => Some(Record::Other),
    }
}

fn decode_sample(rec: &[u8]) -> Option<RawSample> {
    let mut off = 8; // perf_event_header
    let ip = u64_at(rec, off)?;
    off += 8;
    let tid = u32_at(rec, off + 4)? as i32;
    off += 8;
    let time = u64_at(rec, off)?;
    off += 8;
    let abi = u64_at(rec, off)?;
    off += 8;
    let regs = if abi != 0 {
        // One u64 per bit of the mask, in bit order.
        let mut vals = [0u64; 64];
        let n = REGS_MASK.count_ones() as usize;
        for v in vals.iter_mut().take(n) {
            *v = u64_at(rec, off)?;
            off += 8;
        }
        let at = |bit: u32| {
            let idx = (REGS_MASK & ((1u64 << bit) - 1)).count_ones() as usize;
            vals[idx]
        };
        Some(UserRegs {
            ip: at(reg::IP),
            sp: at(reg::SP),
            bp: at(reg::BP),
            g: at(reg::R14),
        })
    } else {
        None
    };
    let size = usize::try_from(u64_at(rec, off)?).ok()?;
    off += 8;
    let mut stack = Vec::new();
    if size != 0 {
        let data = rec.get(off..off.checked_add(size)?)?;
        let dyn_size = usize::try_from(u64_at(rec, off + size)?).ok()?;
        stack.extend_from_slice(&data[..dyn_size.min(size)]);
    }
    Some(RawSample {
        tid,
        time,
        ip,
        regs,
        stack,
    })
}

/// Splits a contiguous run of records into whole records (a record's
/// size is in its header); stops at the first malformed size.
pub fn split_records(mut buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let size = buf
            .get(6..8)
            .map(|s| u16::from_le_bytes([s[0], s[1]]) as usize)?;
        if size < 8 || size > buf.len() {
            return None;
        }
        let (rec, rest) = buf.split_at(size);
        buf = rest;
        Some(rec)
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A sample record as the kernel lays it out for gopeek's attribute.
    pub(crate) fn sample_bytes(
        tid: u32,
        regs: Option<UserRegs>,
        stack: &[u8],
        copied: usize,
    ) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&RECORD_SAMPLE.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes()); // size, patched below
        b.extend_from_slice(&0xffff_ffff_8100_0000u64.to_le_bytes()); // ip
        b.extend_from_slice(&1234u32.to_le_bytes()); // pid
        b.extend_from_slice(&tid.to_le_bytes());
        b.extend_from_slice(&777u64.to_le_bytes()); // time
        match regs {
            Some(r) => {
                b.extend_from_slice(&2u64.to_le_bytes()); // PERF_SAMPLE_REGS_ABI_64
                let mut by_bit = [
                    (reg::BP, r.bp),
                    (reg::SP, r.sp),
                    (reg::IP, r.ip),
                    (reg::R14, r.g),
                ];
                by_bit.sort_by_key(|(b, _)| *b);
                for (_, v) in by_bit {
                    b.extend_from_slice(&v.to_le_bytes());
                }
            }
            None => b.extend_from_slice(&0u64.to_le_bytes()),
        }
        b.extend_from_slice(&(stack.len() as u64).to_le_bytes());
        b.extend_from_slice(stack);
        if !stack.is_empty() {
            b.extend_from_slice(&(copied as u64).to_le_bytes());
        }
        let n = b.len() as u16;
        b[6..8].copy_from_slice(&n.to_le_bytes());
        b
    }

    #[test]
    fn decodes_a_sample_lost_and_truncation() {
        let regs = UserRegs {
            ip: 0x401000,
            sp: 0xc000100000,
            bp: 0xc000100040,
            g: 0xc000002000,
        };
        let stack: Vec<u8> = (0..64u8).collect();
        let mut buf = sample_bytes(42, Some(regs), &stack, 40);
        let mut lost = Vec::new();
        lost.extend_from_slice(&RECORD_LOST.to_le_bytes());
        lost.extend_from_slice(&0u16.to_le_bytes());
        lost.extend_from_slice(&24u16.to_le_bytes());
        lost.extend_from_slice(&9u64.to_le_bytes());
        lost.extend_from_slice(&17u64.to_le_bytes());
        buf.extend_from_slice(&lost);
        let recs: Vec<Record> = split_records(&buf).filter_map(decode_record).collect();
        assert_eq!(recs.len(), 2);
        match &recs[0] {
            Record::Sample(s) => {
                assert_eq!(s.tid, 42);
                assert_eq!(s.time, 777);
                assert_eq!(s.regs, Some(regs));
                assert_eq!(s.stack, stack[..40].to_vec());
            }
            r => panic!("{r:?}"),
        }
        assert_eq!(recs[1], Record::Lost(17));
        // Every truncation of a record decodes to None or a record, never panics.
        let one = sample_bytes(1, Some(regs), &stack, 64);
        for n in 0..one.len() {
            let _ = decode_record(&one[..n]);
        }
        // A sample of a thread with no user registers.
        let none = sample_bytes(3, None, &[], 0);
        match decode_record(&none) {
            Some(Record::Sample(s)) => assert!(s.regs.is_none() && s.stack.is_empty()),
            r => panic!("{r:?}"),
        }
    }
}
