//! The seccomp programs run through a BPF interpreter, decision by decision.
use super::*;

/// Runs a program the way the kernel does, on a fake seccomp_data.
fn run(prog: &[libc::sock_filter], arch: u32, nr: i64, args: [u64; 6]) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&(nr as i32).to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    let (mut acc, mut pc) = (0u32, 0usize);
    loop {
        let f = &prog[pc];
        pc += 1;
        match f.code {
            LD_W_ABS => {
                acc = u32::from_le_bytes(data[f.k as usize..f.k as usize + 4].try_into().unwrap())
            }
            RET_K => return f.k,
            op => {
                let taken = match op {
                    JEQ_K => acc == f.k,
                    JSET_K => acc & f.k != 0,
                    0x35 => acc >= f.k,
                    _ => panic!("unexpected opcode {op:#x}"),
                };
                pc += if taken { f.jt } else { f.jf } as usize;
            }
        }
    }
}

const EPERM: u32 = RET_ERRNO | libc::EPERM as u32;
const ENOSYS: u32 = RET_ERRNO | libc::ENOSYS as u32;

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[test]
fn no_ptrace_program_decisions() {
    let p = no_ptrace_program();
    let a = NATIVE_AUDIT_ARCH;
    let nr = libc::SYS_ptrace;
    for req in [0x4206u64, 0x4207, 12, 17, 0] {
        assert_eq!(
            run(&p, a, nr, [req, 1, 0, 0, 0, 0]),
            EPERM,
            "request {req:#x}"
        );
    }
    assert_eq!(run(&p, a, libc::SYS_read, [0; 6]), RET_ALLOW);
    assert_eq!(run(&p, a, libc::SYS_process_vm_readv, [0; 6]), RET_ALLOW);
    assert_eq!(run(&p, 0x4000_0003, nr, [0; 6]), ENOSYS);
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[test]
fn read_only_program_decisions() {
    let p = read_only_program(false);
    let a = NATIVE_AUDIT_ARCH;
    let pt = |req: u64, data: u64| run(&p, a, libc::SYS_ptrace, [req, 1, 0, data, 0, 0]);
    assert_eq!(run(&p, a, libc::SYS_process_vm_writev, [0; 6]), EPERM);
    assert_eq!(run(&p, a, libc::SYS_process_vm_readv, [0; 6]), RET_ALLOW);
    assert_eq!(run(&p, a, libc::SYS_read, [0; 6]), RET_ALLOW);
    assert_eq!(run(&p, a, libc::SYS_io_uring_setup, [0; 6]), ENOSYS);
    // i386 (foreign audit arch).
    assert_eq!(run(&p, 0x4000_0003, libc::SYS_read, [0; 6]), ENOSYS);
    // x32 shares AUDIT_ARCH_X86_64; its process_vm_writev is 0x40000000 | 540.
    #[cfg(target_arch = "x86_64")]
    assert_eq!(run(&p, a, 0x4000_0000 | 540, [0; 6]), ENOSYS);
    for req in [
        4u64, 5, 6, 7, 8, 9, 13, 15, 16, 24, 26, 30, 31, 0x4200, 0x4203, 0x4205, 0x4208, 0x420b,
    ] {
        assert_eq!(pt(req, 0), EPERM, "request {req:#x}");
    }
    for req in [1u64, 2, 3, 12, 17, 0x4202, 0x4204, 0x4207] {
        assert_eq!(pt(req, 0), RET_ALLOW, "request {req:#x}");
    }
    assert_eq!(pt(0x4206, 0), RET_ALLOW);
    assert_eq!(pt(0x4206, 0x0010_0000), EPERM); // PTRACE_O_EXITKILL
    assert_eq!(pt(0x4206, 1 << 40), EPERM);
    // High bits of the request never turn a denied request into an allowed one.
    assert_eq!(pt((1 << 32) | 5, 0), EPERM);
    // No perf events, no BPF, for the commands that do not sample.
    let m1 = u64::MAX;
    let perf = |p: &[libc::sock_filter], cpu: u64, group: u64, flags: u64| {
        run(
            p,
            a,
            libc::SYS_perf_event_open,
            [0x1000, 42, cpu, group, flags, 0],
        )
    };
    assert_eq!(perf(&p, m1, m1, 8), EPERM);
    assert_eq!(run(&p, a, libc::SYS_bpf, [0; 6]), EPERM);
    // The sampling variant: one thread on any CPU, no group, CLOEXEC.
    let s = read_only_program(true);
    assert_eq!(perf(&s, m1, m1, 8), RET_ALLOW);
    assert_eq!(perf(&s, 0, m1, 8), EPERM, "a per-CPU event");
    assert_eq!(perf(&s, m1, 3, 8), EPERM, "a group");
    assert_eq!(perf(&s, m1, m1, 8 | 4), EPERM, "PERF_FLAG_PID_CGROUP");
    assert_eq!(perf(&s, m1, m1, 8 | (1 << 32)), EPERM);
    assert_eq!(run(&s, a, libc::SYS_bpf, [0; 6]), EPERM);
    for q in [&p, &s] {
        let ioctl = |req: u64| run(q, a, libc::SYS_ioctl, [5, req, 0, 0, 0, 0]);
        assert_eq!(ioctl(0x2400), RET_ALLOW, "PERF_EVENT_IOC_ENABLE");
        #[allow(clippy::unnecessary_cast)] // c_ulong or c_int by target
        let tcgets = libc::TCGETS as u64;
        assert_eq!(ioctl(tcgets), RET_ALLOW);
        assert_eq!(ioctl(0x4004_2408), EPERM, "PERF_EVENT_IOC_SET_BPF");
        assert_eq!(ioctl(0x4008_240b), EPERM, "MODIFY_ATTRIBUTES");
        assert_eq!(ioctl(0x4008_2406), EPERM, "SET_FILTER");
        // Everything the plain filter refuses stays refused.
        assert_eq!(run(q, a, libc::SYS_process_vm_writev, [0; 6]), EPERM);
        assert_eq!(run(q, a, libc::SYS_ptrace, [4, 1, 0, 0, 0, 0]), EPERM);
        assert_eq!(run(q, 0x4000_0003, libc::SYS_read, [0; 6]), ENOSYS);
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[test]
fn no_write_open_program_decisions() {
    let p = no_write_open_program();
    let a = NATIVE_AUDIT_ARCH;
    let openat = |flags: i32| {
        run(
            &p,
            a,
            libc::SYS_openat,
            [libc::AT_FDCWD as u64, 0, flags as u64, 0, 0, 0],
        )
    };
    assert_eq!(openat(libc::O_RDONLY | libc::O_CLOEXEC), RET_ALLOW);
    assert_eq!(openat(libc::O_RDONLY | libc::O_DIRECTORY), RET_ALLOW);
    assert_eq!(openat(libc::O_WRONLY), EPERM);
    assert_eq!(openat(libc::O_RDWR | libc::O_CLOEXEC), EPERM);
    assert_eq!(openat(libc::O_RDONLY | libc::O_CREAT), EPERM);
    assert_eq!(openat(libc::O_RDONLY | libc::O_TRUNC), EPERM);
    assert_eq!(run(&p, a, libc::SYS_openat2, [0; 6]), ENOSYS);
    assert_eq!(run(&p, a, libc::SYS_write, [1, 0, 0, 0, 0, 0]), RET_ALLOW);
    // The openat of i386 (295) and of x32 (0x40000000 | 257).
    assert_eq!(run(&p, 0x4000_0003, 295, [0, 0, 1, 0, 0, 0]), ENOSYS);
    #[cfg(target_arch = "x86_64")]
    assert_eq!(run(&p, a, 0x4000_0000 | 257, [0, 0, 1, 0, 0, 0]), ENOSYS);
    #[cfg(target_arch = "x86_64")]
    {
        assert_eq!(
            run(
                &p,
                a,
                libc::SYS_open,
                [0, libc::O_WRONLY as u64, 0, 0, 0, 0]
            ),
            EPERM
        );
        assert_eq!(
            run(
                &p,
                a,
                libc::SYS_open,
                [0, libc::O_RDONLY as u64, 0, 0, 0, 0]
            ),
            RET_ALLOW
        );
        assert_eq!(run(&p, a, libc::SYS_creat, [0; 6]), EPERM);
    }
}
