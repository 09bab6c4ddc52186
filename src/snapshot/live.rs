//! The live process as a snapshot [`Source`]: `/proc/PID/exe`, its
//! mapping and environment read when it is opened (under sudo that is
//! before the privilege drop makes them unreadable), memory through
//! [`LiveMemory`], and [`SeizedProcess`] as the hold (or, under sudo,
//! a hold the root [`Monitor`] makes on request).

use super::source::{Source, Stopped};
use super::SnapshotError;
use crate::binary::elf::{ElfError, GoBinary};
use crate::process::monitor::Monitor;
use crate::process::permission::PermissionFacts;
use crate::process::{
    namespace, proc_fs, LiveMemory, PauseStats, ProcessError, SeizeOptions, SeizedProcess,
    ThreadState,
};
use crate::walk::capture::Hold;
use crate::walk::threads::HeldThread;
use crate::walk::{ThreadRegs, WalkError};
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A process opened for a snapshot (nothing is attached yet).
pub(crate) struct LiveProcess {
    pid: i32,
    exe_display: String,
    exe_path: PathBuf,
    exe: File,
    /// Where the executable is mapped, read at open (unreadable after a
    /// privilege drop).
    exe_start: Option<u64>,
    environ: Option<Vec<u8>>,
    /// Pid inside its own pid namespace, and its container, read at open.
    nspid: Option<i32>,
    container: Option<String>,
    mem: LiveMemory,
    /// Under sudo: who holds the target (root), on request.
    monitor: Option<Arc<Monitor>>,
}

impl LiveProcess {
    /// Opens what a snapshot needs, with the errors a user should see:
    /// gone, a zombie or kernel thread, or not permitted. With a
    /// `monitor`, holds are asked of it instead of made here.
    pub(crate) fn open(
        pid: i32,
        monitor: Option<Arc<Monitor>>,
    ) -> Result<LiveProcess, SnapshotError> {
        let exe_display = proc_fs::exe_path(pid)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| format!("/proc/{pid}/exe"));
        let (exe_path, exe) = open_exe(pid)?;
        let exe_start = proc_fs::exe_mapping(pid).ok().map(|m| m.start);
        let environ = std::fs::read(format!("/proc/{pid}/environ")).ok();
        let mem = LiveMemory::open(pid).map_err(|source| match source.raw_os_error() {
            Some(libc::ESRCH) | Some(libc::ENOENT) => classify_missing(pid),
            _ => SnapshotError::Memory { pid, source },
        })?;
        Ok(LiveProcess {
            pid,
            exe_display,
            exe_path,
            exe,
            exe_start,
            environ,
            nspid: namespace::inner_pid(pid).ok(),
            container: namespace::container_id(pid),
            mem,
            monitor,
        })
    }
}

impl Source for LiveProcess {
    type Memory = LiveMemory;
    type Stopped<'s> = Seized;

    fn pid(&self) -> i32 {
        self.pid
    }

    fn exe_display(&self) -> String {
        self.exe_display.clone()
    }

    fn nspid(&self) -> Option<i32> {
        self.nspid
    }

    fn container(&self) -> Option<String> {
        self.container.clone()
    }

    fn parse_executable(&self) -> Result<GoBinary, SnapshotError> {
        GoBinary::from_file(&self.exe_path, &self.exe).map_err(|source| SnapshotError::Exe {
            pid: self.pid,
            source,
        })
    }

    fn environ(&self) -> Option<&[u8]> {
        self.environ.as_deref()
    }

    fn load_bias(&self, bin: &GoBinary) -> Result<u64, SnapshotError> {
        if !bin.is_position_independent() {
            return Ok(0);
        }
        let start = match self.exe_start {
            Some(s) => s,
            // Read again for the error it gives.
            None => proc_fs::exe_mapping(self.pid)?.start,
        };
        Ok(proc_fs::bias_of(start, bin))
    }

    fn memory(&self) -> &LiveMemory {
        &self.mem
    }

    fn stop(&self, which: Hold, max_pause: Duration) -> Result<Seized, SnapshotError> {
        if let Some(m) = &self.monitor {
            let only = match which {
                Hold::All => None,
                Hold::Threads(tids) => Some(tids),
            };
            let threads = m.hold(only, max_pause)?;
            return Ok(Seized::Remote(RemoteHold {
                monitor: Arc::clone(m),
                threads,
                max_pause,
                released: false,
            }));
        }
        let opts = SeizeOptions {
            max_pause,
            only_threads: match which {
                Hold::All => None,
                Hold::Threads(tids) => Some(tids),
            },
            ..SeizeOptions::default()
        };
        Ok(Seized::Local(SeizedProcess::seize(self.pid, &opts)?))
    }

    fn walk_error(&self, source: WalkError) -> SnapshotError {
        exited_or(
            self.pid,
            SnapshotError::Walk {
                pid: self.pid,
                source,
            },
        )
    }
}

/// The live hold: every (or the named) thread seized by ptrace, here or
/// by the root monitor.
pub(crate) enum Seized {
    Local(SeizedProcess),
    Remote(RemoteHold),
}

/// A hold the root monitor made; released when dropped.
pub(crate) struct RemoteHold {
    monitor: Arc<Monitor>,
    threads: Vec<ThreadState>,
    max_pause: Duration,
    released: bool,
}

impl RemoteHold {
    fn release(mut self) -> Result<PauseStats, SnapshotError> {
        self.released = true;
        let stats = self.monitor.release()?;
        if stats.budget_exceeded {
            return Err(ProcessError::PauseBudgetExceeded {
                pid: self.monitor.pid(),
                budget: self.max_pause,
                elapsed: stats.pause.min(self.max_pause),
                phase: "copying memory",
            }
            .into());
        }
        Ok(stats)
    }
}

impl Drop for RemoteHold {
    /// A hold dropped on an error path is released too.
    fn drop(&mut self) {
        if !self.released {
            self.released = true;
            let _ = self.monitor.release();
        }
    }
}

impl Stopped for Seized {
    fn threads(&self) -> Vec<ThreadRegs> {
        let threads = match self {
            Seized::Local(s) => s.threads(),
            Seized::Remote(r) => &r.threads,
        };
        threads
            .iter()
            .map(|t| ThreadRegs {
                tid: t.tid,
                pc: t.regs.pc(),
                sp: t.regs.sp(),
                lr: t.regs.lr(),
                fp: t.regs.fp(),
            })
            .collect()
    }

    fn held_threads(&self) -> Vec<HeldThread> {
        let threads = match self {
            Seized::Local(s) => s.threads(),
            Seized::Remote(r) => &r.threads,
        };
        threads
            .iter()
            .map(|t| HeldThread {
                regs: ThreadRegs {
                    tid: t.tid,
                    pc: t.regs.pc(),
                    sp: t.regs.sp(),
                    lr: t.regs.lr(),
                    fp: t.regs.fp(),
                },
                state: t.state_before,
                registers: t.regs.named(),
            })
            .collect()
    }

    fn within_budget(&self) -> bool {
        match self {
            Seized::Local(s) => s.check_budget().is_ok(),
            Seized::Remote(r) => r.monitor.within_budget(),
        }
    }

    fn release(self) -> Result<PauseStats, SnapshotError> {
        match self {
            Seized::Local(s) => {
                let budget = s.check_budget();
                let stats = s.detach();
                budget?;
                Ok(stats)
            }
            Seized::Remote(r) => r.release(),
        }
    }
}

/// Why a PID has no readable `/proc/PID/exe`: gone, a zombie, or a
/// kernel thread.
fn classify_missing(pid: i32) -> SnapshotError {
    match proc_fs::process_state(pid) {
        Err(_) => SnapshotError::Process(ProcessError::NoSuchProcess { pid }),
        Ok('Z') | Ok('X') => SnapshotError::Process(ProcessError::Zombie { pid }),
        Ok(_) if proc_fs::is_kernel_thread(pid) => SnapshotError::NoExecutable { pid },
        // Still listed but its memory is gone: it is exiting right now.
        Ok(_) => SnapshotError::Process(ProcessError::Exited { pid }),
    }
}

/// Maps a failure while the target was held to "the process exited" when
/// that is what happened (its memory vanished under us).
/// A process killed while held takes a moment to become a zombie, so the
/// state is polled briefly (only on this error path).
fn exited_or(pid: i32, e: SnapshotError) -> SnapshotError {
    for _ in 0..20 {
        match proc_fs::process_state(pid) {
            Err(_) | Ok('Z') | Ok('X') => {
                return SnapshotError::Process(ProcessError::Exited { pid })
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    e
}

/// Opens (does not parse) the target's executable, with the errors a user
/// should see: gone, a zombie or kernel thread, or not permitted.
fn open_exe(pid: i32) -> Result<(PathBuf, File), SnapshotError> {
    let path = proc_fs::exe_open_path(pid);
    match File::open(&path) {
        Ok(f) => Ok((path, f)),
        Err(io) if io.kind() == std::io::ErrorKind::NotFound => Err(classify_missing(pid)),
        // Reading /proc/PID/exe needs the same privilege as ptrace.
        Err(io) if io.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(SnapshotError::Process(ProcessError::PermissionDenied {
                pid,
                facts: Box::new(PermissionFacts::gather(pid)),
            }))
        }
        Err(source) => Err(SnapshotError::Exe {
            pid,
            source: ElfError::Open {
                path: path.clone(),
                source,
            },
        }),
    }
}
