//! One `gopeek dump --pid`: from a PID to a [`DumpSnapshot`], holding the
//! target only while its memory is copied.

use crate::dump::{rfc3339, DumpSnapshot};
use crate::binary::elf::{ElfError, GoBinary};
use crate::layout::{gstatus_table, wait_reason_table, LayoutError};
use crate::process::{proc_fs, LiveMemory, ProcessError, SeizeOptions, SeizedProcess};
use crate::binary::program::{GoProgram, ProgramError};
use crate::walk::capture::{strategy, Hold, Mode};
use crate::walk::{build_goroutines, Capture, ThreadRegs, WalkConfig, WalkError};
use std::time::{Duration, SystemTime};
use thiserror::Error;

/// Why a snapshot failed as a whole.
#[derive(Debug, Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("cannot read the executable of process {pid}: {source}")]
    Exe { pid: i32, source: ElfError },
    #[error("process {pid} is not a Go program gopeek can read: {source}")]
    NotGo { pid: i32, source: ProgramError },
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("process {pid}: {source}")]
    Walk { pid: i32, source: WalkError },
    #[error("cannot read memory of process {pid}: {source}")]
    Memory { pid: i32, source: std::io::Error },
    #[error("process {pid} has no executable to read (a kernel thread?): only user-space Go programs can be inspected")]
    NoExecutable { pid: i32 },
    /// Under sudo gopeek must stop the target before it drops root, which
    /// is exactly what --nonblocking promises not to do.
    #[error("--nonblocking is not available under sudo: gopeek has to stop the process before it drops root privileges; run without --nonblocking (a consistent snapshot, target held while it is read)")]
    NonblockingUnderSudo,
    /// The [`SnapshotOptions::after_seize`] step refused (sudo policy
    /// re-check, privilege drop); the target was detached.
    #[error("{0}")]
    AfterSeize(#[source] crate::sudo::privilege::HookError),
}

/// Why a PID has no readable `/proc/PID/exe`: gone, a zombie, or a
/// kernel thread.
fn classify_missing(pid: i32) -> SnapshotError {
    match proc_fs::process_state(pid) {
        Err(_) => SnapshotError::Process(ProcessError::NoSuchProcess { pid }),
        Ok('Z') | Ok('X') => SnapshotError::Process(ProcessError::Zombie { pid }),
        Ok(_) if is_kernel_thread(pid) => SnapshotError::NoExecutable { pid },
        // Still listed but its memory is gone: it is exiting right now.
        Ok(_) => SnapshotError::Process(ProcessError::Exited { pid }),
    }
}

/// PF_KTHREAD in the flags field (9th) of `/proc/PID/stat`.
fn is_kernel_thread(pid: i32) -> bool {
    const PF_KTHREAD: u64 = 0x0020_0000;
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // Fields after the parenthesised comm, which may contain spaces.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return false;
    };
    rest.split_whitespace()
        .nth(6)
        .and_then(|f| f.parse::<u64>().ok())
        .is_some_and(|f| f & PF_KTHREAD != 0)
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
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
        }
    }
    e
}

/// Knobs of one snapshot.
#[derive(Debug, Clone)]
pub struct SnapshotOptions {
    /// Longest the target may be held (`--max-pause`).
    pub max_pause: Duration,
    /// `--nonblocking`: stop only the threads running Go code, read the
    /// rest while the process runs, each goroutine confirmed on its own.
    pub nonblocking: bool,
    /// Keep every frame's SP and FP (for `--system` text); costs one
    /// frame list per goroutine instead of one per distinct stack.
    pub frame_registers: bool,
    /// Under sudo: run once the target is seized, before its memory is read
    /// (policy re-check + privilege drop, see `crate::sudo::privilege`).
    pub after_seize: Option<crate::sudo::privilege::AfterSeize>,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions {
            max_pause: Duration::from_secs(2),
            nonblocking: false,
            frame_registers: false,
            after_seize: None,
        }
    }
}

fn thread_regs(seized: &SeizedProcess) -> Vec<ThreadRegs> {
    seized
        .threads()
        .iter()
        .map(|t| ThreadRegs {
            tid: t.tid,
            pc: t.regs.pc(),
            sp: t.regs.sp(),
            tls_base: t.regs.tls_base(),
        })
        .collect()
}

fn timing() -> bool {
    std::env::var_os("GOPEEK_DEBUG_TIMING").is_some()
}

/// Whether the target's runtime prints pprof labels in traceback headers:
/// `GODEBUG` in its environment wins, then the binary's `DefaultGODEBUG`,
/// then the release default (on from Go 1.27).
pub fn traceback_labels(pid: i32, prog: &GoProgram<'_>) -> bool {
    traceback_labels_in(
        std::fs::read(format!("/proc/{pid}/environ"))
            .ok()
            .as_deref(),
        prog,
    )
}

/// [`traceback_labels`] from the bytes of `/proc/PID/environ` read earlier
/// (under sudo they are read before the privilege drop, which makes the
/// file unreadable).
pub fn traceback_labels_in(environ: Option<&[u8]>, prog: &GoProgram<'_>) -> bool {
    let find = |s: &str| {
        s.split(',')
            .find_map(|kv| kv.trim().strip_prefix("tracebacklabels="))
            .map(|v| v == "1")
    };
    if let Some(env) = environ {
        for var in env.split(|&b| b == 0) {
            if let Some(v) = std::str::from_utf8(var)
                .ok()
                .and_then(|s| s.strip_prefix("GODEBUG="))
            {
                if let Some(on) = find(v) {
                    return on;
                }
            }
        }
    }
    if let Some(on) = prog.build_info.setting("DefaultGODEBUG").and_then(find) {
        return on;
    }
    prog.version.minor >= 27
}

/// Opens (does not parse) the target's executable, with the errors a user
/// should see: gone, a zombie or kernel thread, or not permitted.
fn open_exe(pid: i32) -> Result<(std::path::PathBuf, std::fs::File), SnapshotError> {
    let path = proc_fs::exe_open_path(pid);
    match std::fs::File::open(&path) {
        Ok(f) => Ok((path, f)),
        Err(io) if io.kind() == std::io::ErrorKind::NotFound => Err(classify_missing(pid)),
        // Reading /proc/PID/exe needs the same privilege as ptrace.
        Err(io) if io.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(SnapshotError::Process(ProcessError::PermissionDenied {
                pid,
                ptrace_scope: proc_fs::ptrace_scope(),
                target_uid: proc_fs::process_uid(pid).ok(),
                // SAFETY: geteuid cannot fail.
                our_euid: unsafe { libc::geteuid() },
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

/// Wait-reason and status names of the target's Go version.
fn walk_tables(prog: &GoProgram<'_>) -> (Vec<String>, Vec<String>) {
    let minor = prog.version.minor;
    let wait_reasons: Vec<String> = match &prog.wait_reasons_from_binary {
        Some(v) => v.clone(),
        None => wait_reason_table(minor)
            .map(|t| t.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default(),
    };
    let gstatus: Vec<String> = gstatus_table(minor)
        .map(|t| t.iter().map(|s| s.to_string()).collect())
        .unwrap_or_else(|| {
            [
                "idle",
                "runnable",
                "running",
                "syscall",
                "waiting",
                "",
                "dead",
                "",
                "copystack",
                "preempted",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect()
        });
    (wait_reasons, gstatus)
}

/// Takes a consistent snapshot of every goroutine of `pid`.
pub fn snapshot_pid(pid: i32, opts: &SnapshotOptions) -> Result<DumpSnapshot, SnapshotError> {
    let t_start = std::time::Instant::now();
    let exe_path = proc_fs::exe_path(pid)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| format!("/proc/{pid}/exe"));
    if opts.after_seize.is_some() {
        return snapshot_after_drop(pid, opts, t_start, exe_path);
    }
    let (exe_file_path, exe_file) = open_exe(pid)?;
    let bin = GoBinary::from_file(&exe_file_path, &exe_file)
        .map_err(|source| SnapshotError::Exe { pid, source })?;
    // The layout (it needs only the version) also lets the locator find
    // runtime.sched.
    let (prog, layout) =
        GoProgram::load_with_layout(&bin).map_err(|source| SnapshotError::NotGo { pid, source })?;
    let off = layout?.offsets()?;
    let minor = prog.version.minor;
    let (wait_reasons, gstatus) = walk_tables(&prog);
    let bias = proc_fs::load_bias(pid, &bin)?;
    let cfg = WalkConfig {
        prog: &prog,
        off: &off,
        bias,
        wait_reasons,
        gstatus,
        frame_registers: opts.frame_registers,
    };
    let mem = LiveMemory::open(pid).map_err(|source| match source.raw_os_error() {
        Some(libc::ESRCH) | Some(libc::ENOENT) => classify_missing(pid),
        _ => SnapshotError::Memory { pid, source },
    })?;
    let taken_at = rfc3339(SystemTime::now());
    let header_labels = minor >= 26 && traceback_labels(pid, &prog);

    let seize_opts = |only: Option<Vec<i32>>| SeizeOptions {
        max_pause: opts.max_pause,
        only_threads: only,
        ..SeizeOptions::default()
    };
    let mode = if opts.nonblocking {
        Mode::Nonblocking
    } else {
        Mode::Consistent
    };
    let mut capture = strategy(mode);
    let t_pre = std::time::Instant::now();
    // Read while the process runs: every g, and (default mode) the stacks
    // of every goroutine off CPU. Nothing is held yet.
    let hold = capture
        .before_hold(&cfg, &mem)
        .map_err(|source| exited_or(pid, SnapshotError::Walk { pid, source }))?;
    let pre_time = t_pre.elapsed();
    // --nonblocking stops only the threads running Go code, for their
    // registers and stacks, and confirms everything else with the process
    // running.
    let seized = SeizedProcess::seize(
        pid,
        &seize_opts(match hold {
            Hold::All => None,
            Hold::Threads(tids) => Some(tids),
        }),
    )?;
    let t_held = std::time::Instant::now();
    let held = capture.while_held(&cfg, &mem, thread_regs(&seized), &|| {
        seized.check_budget().is_ok()
    });
    let held_time = t_held.elapsed();
    let budget = seized.check_budget();
    let stats = seized.detach();
    budget?;
    let captured: Result<Capture, WalkError> =
        held.and_then(|()| capture.after_release(&cfg, &mem));
    let captured =
        captured.map_err(|source| exited_or(pid, SnapshotError::Walk { pid, source }))?;
    if timing() {
        let c = &captured.stats;
        eprintln!(
            "gopeek: timing: pause {} us, of which held reads {} us, stop latency {} us; \
             read while running {} us; reused {} stacks, re-read {} ({} bytes, {} ranges held), \
             retry rounds {}, changed {}, changing {}",
            stats.pause_us(),
            held_time.as_micros(),
            stats.stop_latency.as_micros(),
            pre_time.as_micros(),
            c.reused,
            c.reread,
            c.held_bytes,
            c.held_ranges,
            c.retry_rounds,
            c.changed,
            c.changing
        );
    }

    let t_build = std::time::Instant::now();
    let dump = assemble(
        &cfg,
        &captured,
        &stats,
        opts,
        pid,
        exe_path,
        taken_at,
        header_labels,
    );
    if timing() {
        eprintln!(
            "gopeek: timing: load {} us, symbolize {} us, total {} us",
            t_pre.duration_since(t_start).as_micros(),
            t_build.elapsed().as_micros(),
            t_start.elapsed().as_micros()
        );
    }
    Ok(dump)
}

/// The snapshot as plain data, once everything is read.
#[allow(clippy::too_many_arguments)]
fn assemble(
    cfg: &WalkConfig<'_, '_>,
    captured: &Capture,
    stats: &crate::process::PauseStats,
    opts: &SnapshotOptions,
    pid: i32,
    exe: String,
    taken_at: String,
    header_labels: bool,
) -> DumpSnapshot {
    let goroutines = build_goroutines(cfg, captured);
    let mut warnings = captured.warnings.clone();
    if opts.nonblocking {
        warnings.push(
            "--nonblocking: each goroutine was read consistently on its own, but not all at one instant"
                .to_string(),
        );
    }
    if stats.vanished > 0 {
        warnings.push(format!("{} threads exited during attach", stats.vanished));
    }
    DumpSnapshot {
        schema: "gopeek.dump/1",
        pid,
        exe,
        go_version: cfg.prog.version.raw.clone(),
        go_minor: cfg.prog.version.minor,
        header_labels,
        taken_at,
        pause_us: stats.pause_us(),
        mode: if opts.nonblocking {
            "nonblocking"
        } else {
            "consistent"
        },
        goroutines,
        warnings,
        note: None,
    }
}

/// Under sudo: nothing the target controls is parsed with root's
/// privileges. Root opens the executable, `/proc/PID/mem`, and reads the
/// raw bytes of what becomes unreadable after the drop (the exe mapping's
/// address, the environment); then it seizes the target and the session's
/// hook drops to the invoking user for good. Only then is the executable
/// parsed and the target's memory read, all while the target is held (the
/// pause of a full copy plus the parse: the price of never parsing as
/// root; `--nonblocking` cannot work this way and is refused).
fn snapshot_after_drop(
    pid: i32,
    opts: &SnapshotOptions,
    t_start: std::time::Instant,
    exe_path: String,
) -> Result<DumpSnapshot, SnapshotError> {
    let Some(hook) = &opts.after_seize else {
        return Err(SnapshotError::NonblockingUnderSudo);
    };
    if opts.nonblocking {
        return Err(SnapshotError::NonblockingUnderSudo);
    }
    let (exe_file_path, exe_file) = open_exe(pid)?;
    let exe_start = proc_fs::exe_mapping(pid).map(|m| m.start);
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok();
    let mem = LiveMemory::open(pid).map_err(|source| match source.raw_os_error() {
        Some(libc::ESRCH) | Some(libc::ENOENT) => classify_missing(pid),
        _ => SnapshotError::Memory { pid, source },
    })?;
    let taken_at = rfc3339(SystemTime::now());
    let seized = SeizedProcess::seize(
        pid,
        &SeizeOptions {
            max_pause: opts.max_pause,
            ..SeizeOptions::default()
        },
    )?;
    // Re-check the policy and drop to the invoking user (issue 4). Memory
    // is then read through the /proc/PID/mem fd opened above
    // (process_vm_readv gets EPERM; LiveMemory falls back by itself), and
    // ptrace requests keep working because this process is the tracer. On
    // any error below `seized` is dropped, which detaches.
    (hook.0)(seized.pid()).map_err(SnapshotError::AfterSeize)?;
    let t_held = std::time::Instant::now();
    let bin = GoBinary::from_file(&exe_file_path, &exe_file)
        .map_err(|source| SnapshotError::Exe { pid, source })?;
    let (prog, layout) =
        GoProgram::load_with_layout(&bin).map_err(|source| SnapshotError::NotGo { pid, source })?;
    let off = layout?.offsets()?;
    let (wait_reasons, gstatus) = walk_tables(&prog);
    let bias = if bin.is_position_independent() {
        exe_start?.wrapping_sub(bin.lowest_load_address().unwrap_or(0))
    } else {
        0
    };
    let cfg = WalkConfig {
        prog: &prog,
        off: &off,
        bias,
        wait_reasons,
        gstatus,
        frame_registers: opts.frame_registers,
    };
    // Nothing could be read before the hold: no before_hold.
    let mut capture = strategy(Mode::Held);
    let held = capture.while_held(&cfg, &mem, thread_regs(&seized), &|| {
        seized.check_budget().is_ok()
    });
    let held_time = t_held.elapsed();
    let budget = seized.check_budget();
    let stats = seized.detach();
    budget?;
    let captured = held
        .and_then(|()| capture.after_release(&cfg, &mem))
        .map_err(|source| exited_or(pid, SnapshotError::Walk { pid, source }))?;
    if timing() {
        eprintln!(
            "gopeek: timing: pause {} us, of which held reads {} us (parse and read, under sudo), stop latency {} us",
            stats.pause_us(),
            held_time.as_micros(),
            stats.stop_latency.as_micros()
        );
    }
    let header_labels = prog.version.minor >= 26 && traceback_labels_in(environ.as_deref(), &prog);
    let dump = assemble(
        &cfg,
        &captured,
        &stats,
        opts,
        pid,
        exe_path,
        taken_at,
        header_labels,
    );
    if timing() {
        eprintln!("gopeek: timing: total {} us", t_start.elapsed().as_micros());
    }
    Ok(dump)
}
