//! The one `perf_event_attr` gopeek ever passes to `perf_event_open`,
//! built here and nowhere else so that a unit test can pin every field
//! that matters for safety: a software task clock of one thread, sampled,
//! never `sigtrap` (which would send the target signals), never an event
//! a BPF program could be attached to, never inherited into children.

/// `PERF_TYPE_SOFTWARE`.
pub(crate) const PERF_TYPE_SOFTWARE: u32 = 1;
/// `PERF_COUNT_SW_TASK_CLOCK`: CPU time of the task in nanoseconds, the
/// clock Go's own profiler samples (`CLOCK_THREAD_CPUTIME_ID`).
pub(crate) const PERF_COUNT_SW_TASK_CLOCK: u64 = 1;

/// `PERF_SAMPLE_*` bits.
pub(crate) const SAMPLE_IP: u64 = 1 << 0;
pub(crate) const SAMPLE_TID: u64 = 1 << 1;
pub(crate) const SAMPLE_TIME: u64 = 1 << 2;
pub(crate) const SAMPLE_REGS_USER: u64 = 1 << 12;
pub(crate) const SAMPLE_STACK_USER: u64 = 1 << 13;

/// x86_64 `perf_regs.h` indices of the user registers copied with each
/// sample: BP and SP (unwinding, C frame pointers), IP, and R14 (the g
/// register of Go's ABIInternal).
#[cfg(target_arch = "x86_64")]
pub(crate) mod reg {
    pub(crate) const BP: u32 = 6;
    pub(crate) const SP: u32 = 7;
    pub(crate) const IP: u32 = 8;
    pub(crate) const R14: u32 = 22;
}
/// arm64 `perf_regs.h`: X28 is Go's g register there, X29 the frame
/// pointer, X30 the link register.
#[cfg(target_arch = "aarch64")]
pub(crate) mod reg {
    pub(crate) const BP: u32 = 29;
    pub(crate) const SP: u32 = 31;
    pub(crate) const IP: u32 = 32;
    pub(crate) const R14: u32 = 28;
}

/// The registers asked for, in the order the kernel writes them (by bit
/// number): [BP, SP, IP, g] on x86_64.
pub(crate) const REGS_MASK: u64 =
    (1 << reg::BP) | (1 << reg::SP) | (1 << reg::IP) | (1 << reg::R14);

/// Bits of the attribute's flag word (`perf_event_attr` bitfield); the
/// ones gopeek must never set are named too, for the test.
#[allow(dead_code)]
pub(crate) mod flag {
    pub(crate) const DISABLED: u64 = 1 << 0;
    pub(crate) const INHERIT: u64 = 1 << 1;
    pub(crate) const EXCLUDE_KERNEL: u64 = 1 << 5;
    pub(crate) const EXCLUDE_HV: u64 = 1 << 6;
    pub(crate) const ENABLE_ON_EXEC: u64 = 1 << 12;
    pub(crate) const USE_CLOCKID: u64 = 1 << 25;
    pub(crate) const REMOVE_ON_EXEC: u64 = 1 << 36;
    pub(crate) const SIGTRAP: u64 = 1 << 37;
}

/// `struct perf_event_attr` as of Linux 6.x (PERF_ATTR_SIZE_VER8, 136
/// bytes). Older kernels accept it as long as the fields they do not know
/// are zero, which they are.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PerfEventAttr {
    pub(crate) type_: u32,
    pub(crate) size: u32,
    pub(crate) config: u64,
    pub(crate) sample_period: u64,
    pub(crate) sample_type: u64,
    pub(crate) read_format: u64,
    pub(crate) flags: u64,
    pub(crate) wakeup_events: u32,
    pub(crate) bp_type: u32,
    pub(crate) config1: u64,
    pub(crate) config2: u64,
    pub(crate) branch_sample_type: u64,
    pub(crate) sample_regs_user: u64,
    pub(crate) sample_stack_user: u32,
    pub(crate) clockid: i32,
    pub(crate) sample_regs_intr: u64,
    pub(crate) aux_watermark: u32,
    pub(crate) sample_max_stack: u16,
    pub(crate) reserved_2: u16,
    pub(crate) aux_sample_size: u32,
    pub(crate) aux_action: u32,
    pub(crate) sig_data: u64,
    pub(crate) config3: u64,
}

/// The attribute for sampling one thread every `period_ns` of its CPU
/// time, with `stack_bytes` of its user stack per sample. `kernel`: count
/// time spent in the kernel too (as Go's profiler does, attributed to the
/// user registers at kernel entry); refused to unprivileged users when
/// `perf_event_paranoid` is 2 or more, then the caller retries without.
pub(crate) fn sampling_attr(period_ns: u64, stack_bytes: u32, kernel: bool) -> PerfEventAttr {
    let mut flags = flag::DISABLED | flag::EXCLUDE_HV | flag::USE_CLOCKID;
    if !kernel {
        flags |= flag::EXCLUDE_KERNEL;
    }
    PerfEventAttr {
        type_: PERF_TYPE_SOFTWARE,
        size: std::mem::size_of::<PerfEventAttr>() as u32,
        config: PERF_COUNT_SW_TASK_CLOCK,
        sample_period: period_ns.max(1),
        sample_type: SAMPLE_IP | SAMPLE_TID | SAMPLE_TIME | SAMPLE_REGS_USER | SAMPLE_STACK_USER,
        flags,
        sample_regs_user: REGS_MASK,
        // The kernel wants a multiple of 8.
        sample_stack_user: stack_bytes & !7,
        clockid: libc::CLOCK_MONOTONIC,
        ..PerfEventAttr::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attr_is_exactly_a_sampled_task_clock_without_signals() {
        assert_eq!(std::mem::size_of::<PerfEventAttr>(), 136);
        for kernel in [false, true] {
            let a = sampling_attr(10_000_000, 16 * 1024 + 3, kernel);
            assert_eq!(a.type_, PERF_TYPE_SOFTWARE);
            assert_eq!(a.config, PERF_COUNT_SW_TASK_CLOCK);
            assert_eq!(a.size, 136);
            assert_eq!(a.sample_period, 10_000_000);
            assert_eq!(a.sample_type, 0b11_0000_0000_0111);
            assert_eq!(a.sample_stack_user, 16 * 1024);
            assert_eq!(a.read_format, 0);
            // Never a signal to the target, never inherited, never armed
            // across an exec, never a hardware breakpoint or BPF-capable
            // tracepoint (those are other types).
            assert_eq!(a.flags & flag::SIGTRAP, 0);
            assert_eq!(a.sig_data, 0);
            assert_eq!(a.flags & flag::INHERIT, 0);
            assert_eq!(a.flags & flag::ENABLE_ON_EXEC, 0);
            assert_eq!(a.flags & flag::REMOVE_ON_EXEC, 0);
            assert_ne!(a.flags & flag::DISABLED, 0);
            assert_eq!(a.flags & flag::EXCLUDE_KERNEL == 0, kernel);
            assert_eq!(a.bp_type, 0);
            assert_eq!((a.config1, a.config2, a.config3), (0, 0, 0));
            assert_eq!(a.branch_sample_type, 0);
            assert_eq!(a.sample_regs_intr, 0);
            assert_eq!(a.aux_sample_size, 0);
            // Only the flag bits named here: the rest of the bitfield
            // (mmap, comm, context_switch, bpf_event...) stays 0.
            let known =
                flag::DISABLED | flag::EXCLUDE_KERNEL | flag::EXCLUDE_HV | flag::USE_CLOCKID;
            assert_eq!(a.flags & !known, 0);
        }
        #[cfg(target_arch = "x86_64")]
        assert_eq!(REGS_MASK, (1 << 6) | (1 << 7) | (1 << 8) | (1 << 22));
    }
}
