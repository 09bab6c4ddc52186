//! Seccomp filters gopeek installs *on itself* so that "read-only" is
//! enforced by the kernel, not only promised by the code.
//!
//! [`install_read_only_filter`] (before attaching) makes these fail:
//!
//! * `process_vm_writev` (EPERM);
//! * every `ptrace` request except an allowlist of reading ones plus
//!   SEIZE, INTERRUPT and DETACH (EPERM). An allowlist rather than a
//!   denylist, so that any future request that modifies a tracee is refused
//!   by default. Refused, among others: POKETEXT/POKEDATA/POKEUSER,
//!   SETREGS/SETFPREGS/SETREGSET, SETSIGINFO, SETSIGMASK, SETOPTIONS,
//!   SET_THREAD_AREA, ARCH_PRCTL, SET_SYSCALL_INFO, ATTACH (it sends
//!   SIGSTOP), KILL, CONT, SYSCALL, SINGLESTEP, SYSEMU, LISTEN. SEIZE is
//!   allowed only with options 0 (so never `PTRACE_O_EXITKILL`);
//! * `process_madvise` and `pidfd_getfd` (EPERM), which act on another
//!   process's memory or files;
//! * `bpf` (EPERM), and the perf ioctls that attach a BPF program,
//!   modify an event's attributes or set a filter (EPERM);
//! * `perf_event_open` (EPERM), except in [`install_sampling_filter`]
//!   (`gopeek record`/`top`), which admits it for one thread, any CPU,
//!   no group, flags CLOEXEC only;
//! * `io_uring_setup` (ENOSYS), because io_uring can open files and write
//!   without the syscalls these filters see;
//! * any syscall of a foreign ABI (i386 `int 0x80`, x32) (ENOSYS), whose
//!   numbers differ and would bypass the checks.
//!
//! [`forbid_open_for_write`] (after the output files are open) makes
//! `open`/`openat`/`open_by_handle_at` with O_WRONLY, O_RDWR, O_CREAT,
//! O_TRUNC or O_APPEND fail with EPERM, `creat` fail with EPERM, and
//! `openat2` (whose flags sit in a struct a filter cannot read) fail with
//! ENOSYS. This also closes the last write path into the target:
//! `/proc/PID/mem` opened for writing. Install both before attaching.
//!
//! Both set `PR_SET_NO_NEW_PRIVS` (required for an unprivileged filter; it
//! only affects `execve`, which gopeek does not do) and are synchronised to
//! every thread of gopeek (`SECCOMP_FILTER_FLAG_TSYNC`). Filters cannot be
//! removed: they last until gopeek exits.
//!
//! # Why the BPF is assembled by hand
//!
//! `seccompiler` (Firecracker's) was tried on these exact rules and does
//! not keep them: its architecture check is fixed to kill the process
//! (here a foreign-ABI syscall fails with ENOSYS, and with filters stacked
//! the kernel keeps the most severe action, so no extra filter can restore
//! that); it has no x32 check, so an x32 `openat(O_WRONLY)` or
//! `process_vm_writev` would be *allowed*; and one filter has one match
//! action, so ALLOW/EPERM/ENOSYS needs two filters per call (84 and 116
//! instructions against 38 and 16 here). The assembler below is 60 lines,
//! and the unit tests run every program through a BPF interpreter.

use super::ProcessError;
use nix::errno::Errno;

// BPF opcodes (linux/filter.h).
const LD_W_ABS: u16 = 0x20; // BPF_LD (0) | BPF_W (0) | BPF_ABS
const JEQ_K: u16 = 0x05 | 0x10; // BPF_JMP | BPF_JEQ | BPF_K
#[cfg(target_arch = "x86_64")]
const JGE_K: u16 = 0x05 | 0x30; // BPF_JMP | BPF_JGE | BPF_K
const JSET_K: u16 = 0x05 | 0x40; // BPF_JMP | BPF_JSET | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

const RET_ALLOW: u32 = 0x7fff_0000; // SECCOMP_RET_ALLOW
const RET_ERRNO: u32 = 0x0005_0000; // SECCOMP_RET_ERRNO

// struct seccomp_data offsets.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const fn arg_lo(i: u32) -> u32 {
    16 + 8 * i
}
const fn arg_hi(i: u32) -> u32 {
    20 + 8 * i
}

#[cfg(target_arch = "x86_64")]
const NATIVE_AUDIT_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const NATIVE_AUDIT_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const NATIVE_AUDIT_ARCH: u32 = 0; // never installed there

/// ptrace requests gopeek may issue: reads, plus the three that attach and
/// release without changing the tracee.
const ALLOWED_PTRACE: &[u32] = &[
    1,      // PEEKTEXT
    2,      // PEEKDATA
    3,      // PEEKUSR
    12,     // GETREGS
    14,     // GETFPREGS
    17,     // DETACH
    18,     // GETFPXREGS
    25,     // GET_THREAD_AREA (x86)
    0x4201, // GETEVENTMSG
    0x4202, // GETSIGINFO
    0x4204, // GETREGSET
    0x4207, // INTERRUPT
    0x4209, // PEEKSIGINFO
    0x420a, // GETSIGMASK
    0x420c, // SECCOMP_GET_FILTER
    0x420d, // SECCOMP_GET_METADATA
    0x420e, // GET_SYSCALL_INFO
    0x420f, // GET_RSEQ_CONFIGURATION
    0x4211, // GET_SYSCALL_USER_DISPATCH_CONFIG
];
const PTRACE_SEIZE: u32 = 0x4206;
/// `PERF_FLAG_FD_CLOEXEC`, the only `perf_event_open` flag admitted.
const PERF_FLAG_FD_CLOEXEC: u32 = 8;
/// perf ioctls refused to every command: `PERF_EVENT_IOC_SET_BPF`,
/// `PERF_EVENT_IOC_MODIFY_ATTRIBUTES`, `PERF_EVENT_IOC_SET_FILTER`.
const REFUSED_PERF_IOCTLS: &[u32] = &[0x4004_2408, 0x4008_240b, 0x4008_2406];

/// Flags that make an open able to modify a file.
const WRITE_FLAGS: u32 =
    (libc::O_WRONLY | libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND) as u32;

/// A tiny BPF assembler with forward labels (the programs are short, so
/// every jump fits the 8-bit offset; this is checked).
struct Prog {
    insns: Vec<(u16, u32, Target, Target)>,
    labels: Vec<(&'static str, usize)>,
}

#[derive(Clone, Copy)]
enum Target {
    Next,
    To(&'static str),
}

impl Prog {
    fn new() -> Self {
        Prog {
            insns: Vec::new(),
            labels: Vec::new(),
        }
    }
    fn label(&mut self, name: &'static str) {
        self.labels.push((name, self.insns.len()));
    }
    fn ld(&mut self, off: u32) {
        self.insns.push((LD_W_ABS, off, Target::Next, Target::Next));
    }
    fn jmp(&mut self, op: u16, k: u32, jt: Target, jf: Target) {
        self.insns.push((op, k, jt, jf));
    }
    fn ret(&mut self, k: u32) {
        self.insns.push((RET_K, k, Target::Next, Target::Next));
    }
    fn build(self) -> Vec<libc::sock_filter> {
        let pos = |l: &str| {
            self.labels
                .iter()
                .find(|(n, _)| *n == l)
                .map(|&(_, p)| p)
                .expect("BPF label defined")
        };
        let off = |i: usize, t: Target| -> u8 {
            match t {
                Target::Next => 0,
                Target::To(l) => {
                    let p = pos(l);
                    assert!(p > i, "BPF jumps go forward");
                    u8::try_from(p - i - 1).expect("BPF jump fits in 8 bits")
                }
            }
        };
        self.insns
            .iter()
            .enumerate()
            .map(|(i, &(code, k, jt, jf))| libc::sock_filter {
                code,
                jt: off(i, jt),
                jf: off(i, jf),
                k,
            })
            .collect()
    }
}

fn arch_check(p: &mut Prog) {
    p.ld(OFF_ARCH);
    p.jmp(JEQ_K, NATIVE_AUDIT_ARCH, Target::Next, Target::To("enosys"));
    p.ld(OFF_NR);
    // x32 syscalls share AUDIT_ARCH_X86_64 but have their own numbers.
    #[cfg(target_arch = "x86_64")]
    p.jmp(JGE_K, 0x4000_0000, Target::To("enosys"), Target::Next);
}

fn common_returns(p: &mut Prog) {
    p.label("allow");
    p.ret(RET_ALLOW);
    p.label("eperm");
    p.ret(RET_ERRNO | libc::EPERM as u32);
    p.label("enosys");
    p.ret(RET_ERRNO | libc::ENOSYS as u32);
}

/// The BPF of [`install_read_only_filter`].
#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code)
)]
fn read_only_program(perf: bool) -> Vec<libc::sock_filter> {
    let mut p = Prog::new();
    arch_check(&mut p);
    p.jmp(
        JEQ_K,
        libc::SYS_bpf as u32,
        Target::To("eperm"),
        Target::Next,
    );
    p.jmp(
        JEQ_K,
        libc::SYS_perf_event_open as u32,
        Target::To("perf"),
        Target::Next,
    );
    p.jmp(
        JEQ_K,
        libc::SYS_ioctl as u32,
        Target::To("ioctl"),
        Target::Next,
    );
    for nr in [
        libc::SYS_process_vm_writev,
        libc::SYS_process_madvise,
        libc::SYS_pidfd_getfd,
    ] {
        p.jmp(JEQ_K, nr as u32, Target::To("eperm"), Target::Next);
    }
    p.jmp(
        JEQ_K,
        libc::SYS_io_uring_setup as u32,
        Target::To("enosys"),
        Target::Next,
    );
    p.jmp(
        JEQ_K,
        libc::SYS_ptrace as u32,
        Target::Next,
        Target::To("allow"),
    );
    // ptrace: args[0] is the request.
    p.ld(arg_lo(0));
    p.jmp(JEQ_K, PTRACE_SEIZE, Target::To("seize"), Target::Next);
    for &req in ALLOWED_PTRACE {
        p.jmp(JEQ_K, req, Target::To("allow"), Target::Next);
    }
    p.ret(RET_ERRNO | libc::EPERM as u32);
    // SEIZE: args[3] (data) holds the options; only 0 is allowed.
    p.label("seize");
    p.ld(arg_lo(3));
    p.jmp(JEQ_K, 0, Target::Next, Target::To("eperm"));
    p.ld(arg_hi(3));
    p.jmp(JEQ_K, 0, Target::To("allow"), Target::To("eperm"));
    // perf_event_open(attr, pid, cpu, group_fd, flags): only for `gopeek
    // record`/`top`, and only one thread's event on any CPU (cpu -1), in
    // no group (-1), with flags CLOEXEC alone. The attribute itself is a
    // pointer a filter cannot read; process/perf/attr.rs builds the only
    // one gopeek passes (no sigtrap), and a unit test pins it.
    p.label("perf");
    if perf {
        p.ld(arg_lo(2));
        p.jmp(JEQ_K, u32::MAX, Target::Next, Target::To("eperm"));
        p.ld(arg_lo(3));
        p.jmp(JEQ_K, u32::MAX, Target::Next, Target::To("eperm"));
        p.ld(arg_hi(4));
        p.jmp(JEQ_K, 0, Target::Next, Target::To("eperm"));
        p.ld(arg_lo(4));
        p.jmp(
            JEQ_K,
            PERF_FLAG_FD_CLOEXEC,
            Target::To("allow"),
            Target::To("eperm"),
        );
    } else {
        p.ret(RET_ERRNO | libc::EPERM as u32);
    }
    // ioctl: the perf requests that attach a BPF program, change an
    // event's attributes (which could turn sigtrap on) or set a filter.
    p.label("ioctl");
    p.ld(arg_lo(1));
    for req in REFUSED_PERF_IOCTLS {
        p.jmp(JEQ_K, *req, Target::To("eperm"), Target::Next);
    }
    p.ret(RET_ALLOW);
    common_returns(&mut p);
    p.build()
}

/// The BPF of [`install_no_ptrace_filter`]: every `ptrace` call fails.
#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code)
)]
fn no_ptrace_program() -> Vec<libc::sock_filter> {
    let mut p = Prog::new();
    arch_check(&mut p);
    p.jmp(
        JEQ_K,
        libc::SYS_ptrace as u32,
        Target::To("eperm"),
        Target::To("allow"),
    );
    common_returns(&mut p);
    p.build()
}

/// The BPF of [`forbid_open_for_write`].
#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code)
)]
fn no_write_open_program() -> Vec<libc::sock_filter> {
    let mut p = Prog::new();
    arch_check(&mut p);
    #[cfg(target_arch = "x86_64")]
    {
        p.jmp(
            JEQ_K,
            libc::SYS_open as u32,
            Target::To("flags1"),
            Target::Next,
        );
        p.jmp(
            JEQ_K,
            libc::SYS_creat as u32,
            Target::To("eperm"),
            Target::Next,
        );
    }
    p.jmp(
        JEQ_K,
        libc::SYS_openat as u32,
        Target::To("flags2"),
        Target::Next,
    );
    p.jmp(
        JEQ_K,
        libc::SYS_open_by_handle_at as u32,
        Target::To("flags2"),
        Target::Next,
    );
    p.jmp(
        JEQ_K,
        libc::SYS_openat2 as u32,
        Target::To("enosys"),
        Target::To("allow"),
    );
    #[cfg(target_arch = "x86_64")]
    {
        p.label("flags1");
        p.ld(arg_lo(1));
        p.jmp(
            JSET_K,
            WRITE_FLAGS,
            Target::To("eperm"),
            Target::To("allow"),
        );
    }
    p.label("flags2");
    p.ld(arg_lo(2));
    p.jmp(
        JSET_K,
        WRITE_FLAGS,
        Target::To("eperm"),
        Target::To("allow"),
    );
    common_returns(&mut p);
    p.build()
}

#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code)
)]
fn install(what: &'static str, mut prog: Vec<libc::sock_filter>) -> Result<(), ProcessError> {
    let fprog = libc::sock_fprog {
        len: prog.len() as libc::c_ushort,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(ProcessError::Seccomp {
            what,
            errno: Errno::last(),
        });
    }
    // SAFETY: `fprog` points at `prog`, alive for the call; the kernel
    // copies the program.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
            libc::SECCOMP_FILTER_FLAG_TSYNC,
            &fprog as *const libc::sock_fprog,
        )
    };
    match r {
        0 => Ok(()),
        -1 => Err(ProcessError::Seccomp {
            what,
            errno: Errno::last(),
        }),
        // TSYNC: a thread could not be synchronised (it has another filter).
        _ => Err(ProcessError::Seccomp {
            what,
            errno: Errno::EBUSY,
        }),
    }
}

/// Makes every thread of gopeek unable to modify another process: see the
/// module documentation for the exact list. Call before attaching.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub fn install_read_only_filter() -> Result<(), ProcessError> {
    install("read-only", read_only_program(false))
}

/// [`install_read_only_filter`], admitting also the `perf_event_open` of
/// a per-thread sampler (`gopeek record`, `gopeek top`): any CPU, no
/// group, flags CLOEXEC only. Everything else stays refused as there.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub fn install_sampling_filter() -> Result<(), ProcessError> {
    install("read-only+perf", read_only_program(true))
}

/// Makes every `ptrace` call fail (EPERM) from now on: under sudo, the
/// part of gopeek dropped to the invoking user, whose holds the root
/// monitor makes (`process::monitor`), never traces anything itself.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub fn install_no_ptrace_filter() -> Result<(), ProcessError> {
    install("no-ptrace", no_ptrace_program())
}

/// Makes opening files for writing fail from now on (output files must be
/// open already). Call after opening outputs, before attaching.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub fn forbid_open_for_write() -> Result<(), ProcessError> {
    install("no-write-open", no_write_open_program())
}

/// Not available on this architecture: the syscall tables differ.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub fn install_read_only_filter() -> Result<(), ProcessError> {
    Err(ProcessError::UnsupportedArchitecture {
        arch: std::env::consts::ARCH.into(),
    })
}

/// Not available on this architecture: the syscall tables differ.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub fn install_sampling_filter() -> Result<(), ProcessError> {
    install_read_only_filter()
}

/// Not available on this architecture: the syscall tables differ.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub fn install_no_ptrace_filter() -> Result<(), ProcessError> {
    install_read_only_filter()
}

/// Not available on this architecture: the syscall tables differ.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub fn forbid_open_for_write() -> Result<(), ProcessError> {
    Err(ProcessError::UnsupportedArchitecture {
        arch: std::env::consts::ARCH.into(),
    })
}

#[cfg(test)]
#[path = "seccomp_tests.rs"]
mod tests;
