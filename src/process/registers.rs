//! The general-purpose registers of one stopped thread, per architecture.
//!
//! linux/amd64 reads them with PTRACE_GETREGS (`user_regs_struct`, which
//! includes `fs_base`, the anchor of Go's TLS `g`); linux/arm64 has no
//! GETREGS and uses PTRACE_GETREGSET with NT_PRSTATUS, plus NT_ARM_TLS for
//! TPIDR_EL0. The accessors give the unwinder the same vocabulary on both.

use nix::errno::Errno;

/// Registers of one thread, captured while it was stopped.
///
/// `raw` is the kernel's full `user_regs_struct`, kept whole so that
/// `gopeek threads` can print every register; the methods name the few the
/// goroutine walker needs.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[derive(Clone, Copy)]
pub struct Registers {
    /// The full register file as the kernel returned it.
    pub raw: libc::user_regs_struct,
    /// TPIDR_EL0 (the user TLS base) on arm64, read separately from the
    /// general-purpose set.
    #[cfg(target_arch = "aarch64")]
    pub tpidr_el0: u64,
}

/// Registers on an architecture the live reader does not support: never
/// constructed ([`super::SeizedProcess::seize`] refuses), present only so
/// that the crate builds there for offline (core file) use.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
#[derive(Clone, Copy, Debug)]
pub struct Registers {
    _private: (),
}

#[cfg(target_arch = "x86_64")]
impl Registers {
    /// Program counter (`rip`). For a thread stopped inside a syscall this is
    /// the address after the `syscall` instruction.
    pub fn pc(&self) -> u64 {
        self.raw.rip
    }
    /// Stack pointer (`rsp`).
    pub fn sp(&self) -> u64 {
        self.raw.rsp
    }
    /// The link register: amd64 has none (return addresses are on the
    /// stack).
    pub(crate) fn lr(&self) -> u64 {
        0
    }
    /// Frame pointer (`rbp`), the seed of a frame-pointer walk.
    pub(crate) fn fp(&self) -> u64 {
        self.raw.rbp
    }
    /// The thread-local storage base (`fs_base`); Go keeps the current `g`
    /// at `fs_base - 8` on linux/amd64.
    pub fn tls_base(&self) -> u64 {
        self.raw.fs_base
    }
    /// R14, the g register of Go's internal ABI (meaningful in Go code).
    pub(crate) fn go_g(&self) -> u64 {
        self.raw.r14
    }
}

#[cfg(target_arch = "aarch64")]
impl Registers {
    /// Program counter.
    pub fn pc(&self) -> u64 {
        self.raw.pc
    }
    /// Stack pointer.
    pub fn sp(&self) -> u64 {
        self.raw.sp
    }
    /// The link register (x30): the leaf frame's return address.
    pub(crate) fn lr(&self) -> u64 {
        self.raw.regs[30]
    }
    /// Frame pointer (x29).
    pub(crate) fn fp(&self) -> u64 {
        self.raw.regs[29]
    }
    /// TPIDR_EL0, the TLS base (Go's cgo TLS `g` is at an offset from it).
    pub fn tls_base(&self) -> u64 {
        self.tpidr_el0
    }
    /// X28, the g register of Go's internal ABI.
    pub(crate) fn go_g(&self) -> u64 {
        self.raw.regs[28]
    }
}

/// The registers gdb's `info registers` lists for linux/amd64, in its
/// order, so that `gopeek threads` can stand in for it.
#[cfg(target_arch = "x86_64")]
impl Registers {
    /// `(name, value)` in gdb's order (the segment registers as the kernel
    /// stores them, zero-extended).
    pub fn named(&self) -> Vec<(&'static str, u64)> {
        let r = &self.raw;
        vec![
            ("rax", r.rax),
            ("rbx", r.rbx),
            ("rcx", r.rcx),
            ("rdx", r.rdx),
            ("rsi", r.rsi),
            ("rdi", r.rdi),
            ("rbp", r.rbp),
            ("rsp", r.rsp),
            ("r8", r.r8),
            ("r9", r.r9),
            ("r10", r.r10),
            ("r11", r.r11),
            ("r12", r.r12),
            ("r13", r.r13),
            ("r14", r.r14),
            ("r15", r.r15),
            ("rip", r.rip),
            ("eflags", r.eflags),
            ("cs", r.cs),
            ("ss", r.ss),
            ("ds", r.ds),
            ("es", r.es),
            ("fs", r.fs),
            ("gs", r.gs),
            ("fs_base", r.fs_base),
            ("gs_base", r.gs_base),
        ]
    }
}

/// The registers gdb's `info registers` lists for linux/arm64 (general
/// purpose, sp, pc, cpsr), in its order.
#[cfg(target_arch = "aarch64")]
impl Registers {
    /// `(name, value)` in gdb's order.
    pub fn named(&self) -> Vec<(&'static str, u64)> {
        const X: [&str; 31] = [
            "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13",
            "x14", "x15", "x16", "x17", "x18", "x19", "x20", "x21", "x22", "x23", "x24", "x25",
            "x26", "x27", "x28", "x29", "x30",
        ];
        let r = &self.raw;
        let mut v: Vec<(&'static str, u64)> =
            X.iter().copied().zip(r.regs.iter().copied()).collect();
        v.extend([("sp", r.sp), ("pc", r.pc), ("cpsr", r.pstate)]);
        v
    }
}

/// No live registers on other architectures.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
impl Registers {
    /// Empty: never constructed here.
    pub fn named(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
impl std::fmt::Debug for Registers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registers")
            .field("pc", &format_args!("{:#x}", self.pc()))
            .field("sp", &format_args!("{:#x}", self.sp()))
            .field("fp", &format_args!("{:#x}", self.fp()))
            .field("tls_base", &format_args!("{:#x}", self.tls_base()))
            .finish_non_exhaustive()
    }
}

/// Reads the registers of a thread in ptrace-stop (must be called by the
/// tracer thread).
#[cfg(target_arch = "x86_64")]
pub(crate) fn read_registers(tid: i32) -> Result<Registers, Errno> {
    // SAFETY: user_regs_struct is plain integers; all-zero is valid.
    let mut raw: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    // SAFETY: PTRACE_GETREGS writes exactly one user_regs_struct to `data`.
    unsafe {
        super::sys::ptrace(
            super::sys::PTRACE_GETREGS,
            tid,
            0,
            &mut raw as *mut _ as usize,
        )?
    };
    Ok(Registers { raw })
}

/// Reads the registers of a thread in ptrace-stop (must be called by the
/// tracer thread).
#[cfg(target_arch = "aarch64")]
pub(crate) fn read_registers(tid: i32) -> Result<Registers, Errno> {
    const NT_PRSTATUS: usize = 1;
    const NT_ARM_TLS: usize = 0x401;
    // SAFETY: user_regs_struct is plain integers; all-zero is valid.
    let mut raw: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: &mut raw as *mut _ as *mut libc::c_void,
        iov_len: std::mem::size_of_val(&raw),
    };
    // SAFETY: GETREGSET writes at most iov_len bytes to iov_base.
    unsafe {
        super::sys::ptrace(
            super::sys::PTRACE_GETREGSET,
            tid,
            NT_PRSTATUS,
            &mut iov as *mut _ as usize,
        )?
    };
    let mut tls: u64 = 0;
    let mut iov = libc::iovec {
        iov_base: &mut tls as *mut _ as *mut libc::c_void,
        iov_len: 8,
    };
    // SAFETY: as above, 8 bytes.
    let tpidr_el0 = match unsafe {
        super::sys::ptrace(
            super::sys::PTRACE_GETREGSET,
            tid,
            NT_ARM_TLS,
            &mut iov as *mut _ as usize,
        )
    } {
        Ok(_) => tls,
        Err(Errno::ESRCH) => return Err(Errno::ESRCH),
        Err(_) => 0,
    };
    Ok(Registers { raw, tpidr_el0 })
}

/// The register file as plain 64-bit words, for the privilege-separated
/// monitor (`process/monitor`), which reads registers as root and hands
/// them to the unprivileged reader over a socket. Every field of the
/// kernel's `user_regs_struct` is a 64-bit integer on both architectures,
/// so any words make a valid value.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
impl Registers {
    /// Words in [`Registers::words`].
    pub(crate) const WORDS: usize = std::mem::size_of::<libc::user_regs_struct>() / 8
        + if cfg!(target_arch = "aarch64") { 1 } else { 0 };

    /// The registers as words (the kernel's order; TPIDR_EL0 last on arm64).
    pub(crate) fn words(&self) -> Vec<u64> {
        const N: usize = std::mem::size_of::<libc::user_regs_struct>() / 8;
        // SAFETY: user_regs_struct is N 64-bit integers with no padding.
        let words = unsafe { std::slice::from_raw_parts(&self.raw as *const _ as *const u64, N) };
        #[allow(unused_mut)]
        let mut out = words.to_vec();
        #[cfg(target_arch = "aarch64")]
        out.push(self.tpidr_el0);
        out
    }

    /// The inverse of [`Registers::words`]; `None` for the wrong count.
    pub(crate) fn from_words(w: &[u64]) -> Option<Registers> {
        const N: usize = std::mem::size_of::<libc::user_regs_struct>() / 8;
        if w.len() != Self::WORDS {
            return None;
        }
        // SAFETY: plain integers; all-zero is valid.
        let mut raw: libc::user_regs_struct = unsafe { std::mem::zeroed() };
        // SAFETY: as in words: N 64-bit words, written in place.
        unsafe { std::slice::from_raw_parts_mut(&mut raw as *mut _ as *mut u64, N) }
            .copy_from_slice(&w[..N]);
        Some(Registers {
            raw,
            #[cfg(target_arch = "aarch64")]
            tpidr_el0: w[N],
        })
    }
}
