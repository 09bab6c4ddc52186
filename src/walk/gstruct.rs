//! Decoding one `runtime.g` from copied bytes with the version's offsets.

use crate::layout::offsets::GOffsets;

/// `_Gscan`: OR-ed into the status while the GC scans the stack.
pub const G_SCAN: u32 = 0x1000;
pub const G_IDLE: u32 = 0;
pub const G_RUNNABLE: u32 = 1;
pub const G_RUNNING: u32 = 2;
pub const G_SYSCALL: u32 = 3;
pub const G_WAITING: u32 = 4;
pub const G_DEAD: u32 = 6;
/// Go 1.26+: blocked forever, found by the leak detector.
pub const G_LEAKED: u32 = 10;
/// Go 1.26+: the dead g parked on an extra M for cgo callbacks.
pub const G_DEAD_EXTRA: u32 = 11;

/// The fields of a `g` the dump uses, decoded from its copied bytes.
#[derive(Debug, Clone, Default)]
pub struct GRecord {
    pub addr: u64,
    pub goid: u64,
    /// `atomicstatus` as stored (scan bit included).
    pub status: u32,
    pub waitreason: u8,
    pub waitsince: i64,
    pub stack_lo: u64,
    pub stack_hi: u64,
    pub m: u64,
    pub sched_sp: u64,
    pub sched_pc: u64,
    pub sched_lr: u64,
    pub sched_g: u64,
    pub syscallsp: u64,
    pub syscallpc: u64,
    pub lockedm: u64,
    pub gopc: u64,
    pub startpc: u64,
    pub parent_goid: u64,
    pub labels: u64,
}

fn word(b: &[u8], off: u64) -> u64 {
    let o = off as usize;
    b.get(o..o + 8)
        .map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
        .unwrap_or(0)
}

impl GRecord {
    /// Decodes `bytes` (a copy of `off.size` bytes at `addr`); fields past
    /// the end of a short copy read as zero.
    pub fn decode(addr: u64, bytes: &[u8], off: &GOffsets) -> GRecord {
        let u32_at = |o: u64| {
            bytes
                .get(o as usize..o as usize + 4)
                .map(|s| u32::from_le_bytes(s.try_into().unwrap_or([0; 4])))
                .unwrap_or(0)
        };
        GRecord {
            addr,
            goid: word(bytes, off.goid),
            status: u32_at(off.atomicstatus),
            waitreason: bytes.get(off.waitreason as usize).copied().unwrap_or(0),
            waitsince: word(bytes, off.waitsince) as i64,
            stack_lo: word(bytes, off.stack_lo),
            stack_hi: word(bytes, off.stack_hi),
            m: word(bytes, off.m),
            sched_sp: word(bytes, off.sched_sp),
            sched_pc: word(bytes, off.sched_pc),
            sched_lr: word(bytes, off.sched_lr),
            sched_g: word(bytes, off.sched_g),
            syscallsp: word(bytes, off.syscallsp),
            syscallpc: word(bytes, off.syscallpc),
            lockedm: word(bytes, off.lockedm),
            gopc: word(bytes, off.gopc),
            startpc: word(bytes, off.startpc),
            parent_goid: off.parent_goid.map(|o| word(bytes, o)).unwrap_or(0),
            labels: word(bytes, off.labels),
        }
    }

    /// How many bytes from the start of a g [`GRecord::decode`] looks at:
    /// the copy taken while the target is held stops there (a Go 1.27 g is
    /// 456 bytes, of which the walker needs the first ~360).
    pub fn bytes_needed(off: &GOffsets) -> u64 {
        let words = [
            off.goid,
            off.waitsince,
            off.stack_lo,
            off.stack_hi,
            off.m,
            off.sched_sp,
            off.sched_pc,
            off.sched_lr,
            off.sched_g,
            off.syscallsp,
            off.syscallpc,
            off.lockedm,
            off.gopc,
            off.startpc,
            off.labels,
            off.parent_goid.unwrap_or(0),
        ];
        let end = words
            .iter()
            .map(|o| o + 8)
            .max()
            .unwrap_or(0)
            .max(off.atomicstatus + 4)
            .max(off.waitreason + 1);
        end.min(off.size)
    }

    /// Status without the scan bit.
    pub fn base_status(&self) -> u32 {
        self.status & !G_SCAN
    }

    /// Go's tracebacks skip these.
    pub fn is_dead(&self) -> bool {
        matches!(self.base_status(), G_DEAD | G_DEAD_EXTRA)
    }

    /// Cheap sanity check that the bytes really are a g: the runtime keeps
    /// `g.sched.g == g` for every g, and a live stack has `lo < hi`.
    pub fn looks_valid(&self) -> bool {
        (self.sched_g == self.addr || self.sched_g == 0)
            && (self.is_dead()
                || (self.stack_lo < self.stack_hi && self.stack_hi - self.stack_lo <= 1 << 30))
    }
}
