//! tests/sudo.rs: run a system call *inside* another process, as gdb's
//! `call` does, to see what that process may do: the test (root) seizes
//! the thread while it sleeps in a system call, points its registers at
//! the `syscall` instruction it stopped after, single-steps it and reads
//! the result, then puts every register and byte back and detaches. The
//! call runs with the thread's own credentials and seccomp filters, so
//! gopeek needs no test-only code for it. linux/amd64 only.

use std::time::Duration;

/// One thread of another process, seized and stopped at a system call.
pub struct Injected {
    tid: i32,
    saved: libc::user_regs_struct,
    /// Address of the `syscall` instruction the thread stopped after.
    insn: u64,
    /// Words overwritten by [`Injected::put`], restored on detach.
    poked: Vec<(u64, u64)>,
    /// Where the next [`Injected::put`] ends (it writes below).
    below: u64,
}

fn ptrace(req: libc::c_uint, tid: i32, addr: u64, data: u64) -> Result<i64, String> {
    // SAFETY: plain ptrace requests on a thread this test seized; the
    // register requests pass a valid user_regs_struct.
    let r = unsafe {
        libc::ptrace(
            req,
            tid,
            addr as *mut libc::c_void,
            data as *mut libc::c_void,
        )
    };
    if r == -1 && std::io::Error::last_os_error().raw_os_error() != Some(0) {
        return Err(format!(
            "ptrace({req}) of {tid}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(r)
}

fn wait_stop(tid: i32) -> Result<i32, String> {
    let mut st = 0;
    // SAFETY: waiting for a thread this test traces.
    let r = unsafe { libc::waitpid(tid, &mut st, libc::__WALL) };
    if r != tid || !libc::WIFSTOPPED(st) {
        return Err(format!("thread {tid} did not stop (status {st:#x})"));
    }
    Ok(libc::WSTOPSIG(st))
}

impl Injected {
    /// Seizes `tid` and stops it; it must be sleeping in a system call
    /// (its PC right after a `syscall` instruction), else `Err` and it is
    /// left running.
    pub fn attach(tid: i32) -> Result<Injected, String> {
        ptrace(libc::PTRACE_SEIZE, tid, 0, 0)?;
        let mut me = Injected {
            tid,
            // SAFETY: all-zero is a valid user_regs_struct.
            saved: unsafe { std::mem::zeroed() },
            insn: 0,
            poked: Vec::new(),
            below: 0,
        };
        let r = (|| {
            ptrace(libc::PTRACE_INTERRUPT, tid, 0, 0)?;
            wait_stop(tid)?;
            me.saved = me.regs()?;
            me.below = me.saved.rsp - 1024;
            me.insn = me.saved.rip.wrapping_sub(2);
            let word = me.peek(me.insn)?;
            if word & 0xffff != 0x050f {
                return Err(format!(
                    "thread {tid} is not stopped after a syscall instruction (rip {:#x})",
                    me.saved.rip
                ));
            }
            Ok(())
        })();
        match r {
            Ok(()) => Ok(me),
            Err(e) => {
                let _ = ptrace(libc::PTRACE_DETACH, tid, 0, 0);
                Err(e)
            }
        }
    }

    fn regs(&self) -> Result<libc::user_regs_struct, String> {
        // SAFETY: all-zero is a valid user_regs_struct.
        let mut r: libc::user_regs_struct = unsafe { std::mem::zeroed() };
        ptrace(libc::PTRACE_GETREGS, self.tid, 0, &mut r as *mut _ as u64)?;
        Ok(r)
    }

    fn set_regs(&self, r: &libc::user_regs_struct) -> Result<(), String> {
        ptrace(libc::PTRACE_SETREGS, self.tid, 0, r as *const _ as u64).map(|_| ())
    }

    fn peek(&self, addr: u64) -> Result<u64, String> {
        // SAFETY: errno is cleared so that a word of all ones is told
        // apart from an error.
        unsafe { *libc::__errno_location() = 0 };
        ptrace(libc::PTRACE_PEEKDATA, self.tid, addr, 0).map(|w| w as u64)
    }

    /// Writes `bytes` (NUL-padded to whole words) below the thread's stack
    /// pointer, past the red zone and below what earlier calls wrote;
    /// returns their address.
    pub fn put(&mut self, bytes: &[u8]) -> Result<u64, String> {
        let words = bytes.len().div_ceil(8) + 1;
        let addr = (self.below - 8 * words as u64) & !15;
        self.below = addr;
        for (i, chunk) in bytes
            .chunks(8)
            .chain(std::iter::once(&[0u8][..]))
            .enumerate()
        {
            let a = addr + 8 * i as u64;
            self.poked.push((a, self.peek(a)?));
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            ptrace(libc::PTRACE_POKEDATA, self.tid, a, u64::from_le_bytes(w))?;
        }
        Ok(addr)
    }

    /// Runs system call `nr` with `args` in the thread; its return value
    /// (a negative errno on failure).
    pub fn syscall(&self, nr: i64, args: [u64; 4]) -> Result<i64, String> {
        let mut r = self.saved;
        r.rip = self.insn;
        r.rax = nr as u64;
        // No syscall to restart: the kernel leaves rip and rax alone.
        r.orig_rax = u64::MAX;
        (r.rdi, r.rsi, r.rdx, r.r10) = (args[0], args[1], args[2], args[3]);
        self.set_regs(&r)?;
        ptrace(libc::PTRACE_SINGLESTEP, self.tid, 0, 0)?;
        let sig = wait_stop(self.tid)?;
        if sig != libc::SIGTRAP {
            return Err(format!("thread {} stopped by signal {sig}", self.tid));
        }
        Ok(self.regs()?.rax as i64)
    }

    /// Puts back the bytes and registers (the interrupted sleep restarts)
    /// and lets the thread go.
    pub fn detach(self) -> Result<(), String> {
        for &(a, w) in self.poked.iter().rev() {
            ptrace(libc::PTRACE_POKEDATA, self.tid, a, w)?;
        }
        self.set_regs(&self.saved)?;
        ptrace(libc::PTRACE_DETACH, self.tid, 0, 0)?;
        // Let the detach land before anyone looks at TracerPid.
        std::thread::sleep(Duration::from_millis(20));
        Ok(())
    }
}
