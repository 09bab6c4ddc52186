//! The command line: clap's types, and the glue from each command to the
//! library (one file per command). Nothing in the library depends on this
//! layer; `main.rs` parses, dispatches here and maps errors to exit codes.

pub(crate) mod analysis;
pub(crate) mod completions;
pub(crate) mod dump;
pub(crate) mod error;
pub(crate) mod info;
pub(crate) mod leaks;
pub(crate) mod print;
pub(crate) mod ps;
pub(crate) mod record;
pub(crate) mod sched;
pub(crate) mod threads;
pub(crate) mod timing;
pub(crate) mod top;

use clap::{Parser, Subcommand, ValueEnum};
use error::{CliError, Doing};
use std::io::{self, Write};

/// Snapshot every goroutine of a live Go process from the outside.
#[derive(Parser)]
#[command(name = "gopeek", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// What a Go binary (or running process) is and how gopeek reads it:
    /// Go version, modules, build settings, stripped or not, where the
    /// runtime's tables and globals are.
    Info(info::InfoArgs),
    /// Every goroutine of a running Go process, printed the way Go's own
    /// traceback prints it. The target is held only while its memory is
    /// copied (see pause_us in JSON).
    Dump(dump::DumpArgs),
    /// Several snapshots over time: clusters of goroutines (same creation
    /// site, status and stack) that persist and grow, ranked by growth.
    #[command(
        after_help = "Exit status: 10 if a growing cluster was found, 0 if not; \
                            1-6 as for `gopeek dump` (e.g. 5: the process exited)."
    )]
    Leaks(leaks::LeaksArgs),
    /// Addresses to function, file:line and every inlined frame, from the
    /// pclntab alone (so it works on stripped binaries, where addr2line
    /// has nothing to read).
    Symbolize(info::SymbolizeArgs),
    /// The Go processes on this machine: pid (and pid inside its
    /// container), user, Go version, main module, RSS, goroutines,
    /// container id. Nothing is stopped.
    Ps(ps::PsArgs),
    /// A shell completion script (bash, zsh, fish) on stdout.
    Completions(completions::CompletionsArgs),
    /// gopeek(1) or gopeek-SUBCOMMAND(1) in roff, for packagers.
    #[command(hide = true)]
    Manpage(completions::ManpageArgs),
    /// Go variables of a running process (globals by Go name), read
    /// without stopping it, printed as Go's %#v or as JSON. Needs the
    /// binary's DWARF.
    Print(print::PrintArgs),
    /// A CPU profile of a running Go process, sampled from outside without
    /// stopping it: per function (inlined frames too), goroutine and pprof
    /// label, as pprof, speedscope, folded stacks or a flame graph.
    Record(record::RecordArgs),
    /// A live view of where a running Go process spends CPU, refreshed
    /// every second: per function, goroutine, pprof label or thread, with
    /// GC, syscall and cgo shares. `--once` for scripts.
    Top(top::TopArgs),
    /// The scheduler as the target's own GODEBUG=schedtrace prints it (P,
    /// M and G lines with --detail), after a plain-words analysis of any
    /// pending stop-the-world: who started it, why, which P it waits for.
    Sched(sched::SchedArgs),
    /// Every thread of a running Go process, held briefly: its M, P and
    /// goroutine (or g0/gsignal), registers as gdb's `info registers`, a
    /// Go-aware backtrace, and with --disasm N the code at its PC.
    Threads(threads::ThreadsArgs),
}

/// `--format` of the report commands (`info`, `symbolize`).
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ReportFormat {
    Text,
    Json,
}

/// From here on gopeek may not write to another process nor open a file
/// for writing (/proc/PID/mem included): it writes only to stdout or to a
/// file opened before this call.
pub(crate) fn forbid_writes() -> Result<(), CliError> {
    // What the kernel's EPERM may have been caused by must be read before
    // gopeek's own filter hides an inherited one.
    gopeek::process::permission::note_inherited_seccomp();
    gopeek::process::seccomp::install_read_only_filter()
        .doing("installing the read-only seccomp filter")?;
    gopeek::process::seccomp::forbid_open_for_write()
        .doing("installing the no-write-open seccomp filter")?;
    Ok(())
}

/// [`forbid_writes`] for a command that reads only files (a core and its
/// executable): where the kernel (or an emulator such as qemu-user, which
/// runs the aarch64 gopeek on other machines) has no seccomp, gopeek says
/// so and goes on, since no process is touched; any other failure stops it.
pub(crate) fn forbid_writes_offline() -> Result<(), CliError> {
    use gopeek::process::ProcessError;
    let no_seccomp = |e: &ProcessError| {
        matches!(e, ProcessError::Seccomp { errno, .. }
            if *errno == nix::errno::Errno::ENOSYS || *errno == nix::errno::Errno::EINVAL)
    };
    match gopeek::process::seccomp::install_read_only_filter() {
        Ok(()) => {}
        Err(e) if no_seccomp(&e) => {
            eprintln!(
                "gopeek: note: no seccomp here ({e}); reading files only, no process is touched"
            );
            return Ok(());
        }
        Err(e) => return Err(e).doing("installing the read-only seccomp filter"),
    }
    gopeek::process::seccomp::forbid_open_for_write()
        .doing("installing the no-write-open seccomp filter")?;
    Ok(())
}

/// The live target, opened as root under sudo (with the root monitor that
/// will make its holds), then root dropped for good before anything of it
/// is parsed: the one order every live command keeps.
pub(crate) fn open_target(
    pid: i32,
    monitor: Option<std::sync::Arc<gopeek::process::monitor::Monitor>>,
    session: Option<&gopeek::sudo::SudoSession>,
) -> Result<gopeek::snapshot::LiveTarget, CliError> {
    let t = gopeek::snapshot::LiveTarget::open(pid, monitor)?;
    if let Some(s) = session {
        s.drop_privileges()?;
    }
    Ok(t)
}

/// A report on stdout, as text or as one JSON document (`pretty`:
/// indented).
pub(crate) fn write_report(
    format: ReportFormat,
    text: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    json: &(impl serde::Serialize + ?Sized),
    pretty: bool,
) -> Result<(), CliError> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match format {
        ReportFormat::Text => text(&mut out)?,
        ReportFormat::Json => {
            gopeek::output::write_json(json, pretty, &mut out).doing("writing JSON")?
        }
    }
    out.flush()?;
    Ok(())
}
