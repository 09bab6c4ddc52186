//! The `gopeek` command line: parse arguments, run one command, print the
//! error chain and exit with a documented code.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
mod cli;
use cli::analysis::{
    run_leaks, write_dump, DumpAnalysisArgs, DumpFormat, LeaksArgs, UsageError,
};
use gopeek::binary::elf::GoBinary;
use gopeek::binary::info::InfoReport;
use gopeek::binary::program::GoProgram;
use gopeek::snapshot::{snapshot_pid, SnapshotOptions};
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Snapshot every goroutine of a live Go process from the outside.
#[derive(Parser)]
#[command(name = "gopeek", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// What a Go binary (or running process) is and how gopeek reads it:
    /// Go version, modules, build settings, stripped or not, where the
    /// runtime's tables and globals are.
    Info {
        /// The executable to read.
        #[arg(required_unless_present = "pid", conflicts_with = "pid")]
        binary: Option<PathBuf>,
        /// Read the executable of this running process (without attaching).
        #[arg(long)]
        pid: Option<i32>,
        #[arg(long, value_enum, default_value_t = InfoFormat::Text)]
        format: InfoFormat,
    },
    /// Every goroutine of a running Go process, printed the way Go's own
    /// traceback prints it. The target is held only while its memory is
    /// copied (see pause_us in JSON).
    Dump {
        /// The process to inspect.
        #[arg(long)]
        pid: i32,
        #[arg(long, value_enum, default_value_t = DumpFormat::Text)]
        format: DumpFormat,
        /// Show runtime frames and system goroutines (GOTRACEBACK=system).
        #[arg(long)]
        system: bool,
        /// Print pprof labels on a line after each header (not in Go's text).
        #[arg(long)]
        labels: bool,
        /// Give up, detach and fail if the target would be held longer (ms).
        #[arg(long, default_value_t = 2000)]
        max_pause: u64,
        /// Never stop the whole process: stop only the threads running Go
        /// code (about a millisecond), read every other goroutine while it
        /// runs, and keep a goroutine only when two reads around its stack
        /// agree. Each goroutine is consistent; the dump is not one instant.
        #[arg(long)]
        nonblocking: bool,
        #[command(flatten)]
        analysis: DumpAnalysisArgs,
        /// Write the dump to FILE instead of stdout. Never follows a symlink;
        /// an existing file must be yours. Under sudo it is created as the
        /// invoking user, not root.
        #[arg(short = 'o', long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Several snapshots over time: clusters of goroutines (same creation
    /// site, status and stack) that persist and grow, ranked by growth.
    #[command(
        after_help = "Exit status: 10 if a growing cluster was found, 0 if not; \
                            1-6 as for `gopeek dump` (e.g. 5: the process exited)."
    )]
    Leaks(LeaksArgs),
    /// Addresses to function, file:line and every inlined frame, from the
    /// pclntab alone (so it works on stripped binaries, where addr2line
    /// has nothing to read).
    Symbolize {
        /// The executable to read.
        binary: PathBuf,
        /// Link-time addresses, hexadecimal (0x optional).
        #[arg(required_unless_present = "all_functions", value_parser = gopeek::binary::symbolize::parse_addr)]
        addrs: Vec<u64>,
        /// Symbolize the entry of every function in the pclntab.
        #[arg(long, conflicts_with = "addrs")]
        all_functions: bool,
        /// text: one `0xADDR NAME FILE:LINE` line per frame, innermost first,
        /// ending in ` inlined` for inlined frames;
        /// json: schema gopeek.symbolize/1, with Go's print names.
        #[arg(long, value_enum, default_value_t = InfoFormat::Text)]
        format: InfoFormat,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum InfoFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            let mut msg = format!("gopeek: {e}");
            for cause in e.chain().skip(1) {
                // Library errors often embed their source's text already.
                let text = cause.to_string();
                if !msg.contains(&text) {
                    msg.push_str(&format!("\n  caused by: {text}"));
                }
            }
            eprintln!("{msg}");
            ExitCode::from(exit_code_for(&e))
        }
    }
}

/// Exit codes (documented in the README): 1 generic failure, 2 usage,
/// 3 not a Go program or unsupported binary, 4 permission denied,
/// 5 no such process (or it exited), 6 pause budget exceeded; `leaks`
/// exits 10 when it found a growing cluster.
fn exit_code_for(e: &anyhow::Error) -> u8 {
    use gopeek::process::ProcessError as P;
    use gopeek::snapshot::SnapshotError as S;
    for cause in e.chain() {
        if cause.downcast_ref::<UsageError>().is_some() {
            return 2;
        }
        // Least-privilege refusals (issue 4): exit 4 like other permission errors.
        if cause
            .downcast_ref::<gopeek::sudo::privilege::PrivilegeError>()
            .is_some()
            || cause
                .downcast_ref::<gopeek::sudo::privilege::OutputFileError>()
                .is_some_and(|o| o.is_refusal())
        {
            return 4;
        }
        if cause.is::<gopeek::sudo::policy::PolicyError>() || cause.is::<gopeek::sudo::audit::AuditError>() {
            return 4;
        }
        if let Some(gopeek::binary::elf::ElfError::Open { .. }) =
            cause.downcast_ref::<gopeek::binary::elf::ElfError>()
        {
            return 1;
        }
        if cause
            .downcast_ref::<gopeek::binary::program::ProgramError>()
            .is_some()
            || cause.downcast_ref::<gopeek::binary::elf::ElfError>().is_some()
        {
            return 3;
        }
        let p = match cause.downcast_ref::<S>() {
            Some(S::Process(p)) => Some(p),
            // sudo: policy, audit log or privilege refusals exit 4.
            None => match cause.downcast_ref::<gopeek::sudo::SudoError>() {
                Some(gopeek::sudo::SudoError::Process(p)) => Some(p),
                Some(_) => return 4,
                None => cause.downcast_ref::<P>(),
            },
            Some(S::NotGo { .. } | S::Exe { .. } | S::Layout(_) | S::NoExecutable { .. }) => {
                return 3
            }
            Some(S::NonblockingUnderSudo) => return 4,
            _ => cause.downcast_ref::<P>(),
        };
        if let Some(p) = p {
            return match p {
                P::PermissionDenied { .. } | P::AlreadyTraced { .. } => 4,
                P::NoSuchProcess { .. } | P::Zombie { .. } | P::Exited { .. } => 5,
                P::PauseBudgetExceeded { .. } => 6,
                _ => 1,
            };
        }
    }
    1
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .map(|io| io.kind() == io::ErrorKind::BrokenPipe)
            .unwrap_or(false)
    })
}

fn run(cli: Cli) -> Result<ExitCode> {
    // Under sudo: who to drop to (issue 4, see gopeek::sudo::privilege). Commands
    // that need no privilege drop at once; dump and info --pid drop once
    // the target is open.
    let sudo = gopeek::sudo::privilege::sudo_context()?;
    match cli.command {
        Command::Info {
            binary,
            pid,
            format,
        } => {
            let path = match (binary, pid) {
                (Some(b), _) => b,
                (None, Some(pid)) => PathBuf::from(format!("/proc/{pid}/exe")),
                (None, None) => unreachable!("clap requires one"),
            };
            // sudo: open as root (a target's /proc/PID/exe needs it), parse
            // as the invoking user; a path given by the user is opened as
            // the user.
            let bin = match (&sudo, pid) {
                (Some(ctx), Some(pid)) => {
                    let session = gopeek::sudo::SudoSession::begin(ctx, pid)?;
                    let file = std::fs::File::open(&path)
                        .with_context(|| format!("cannot open {}", path.display()));
                    session.finish(match &file {
                        Ok(_) => Ok("executable opened for gopeek info".into()),
                        Err(e) => Err(format!("{e:#}")),
                    });
                    let file = file?;
                    gopeek::sudo::privilege::drop_to(ctx)?;
                    GoBinary::from_file(&path, &file)?
                }
                (Some(ctx), None) => {
                    gopeek::sudo::privilege::drop_to(ctx)?;
                    GoBinary::open(&path)?
                }
                (None, _) => GoBinary::open(&path)?,
            };
            let (program, layout) = GoProgram::load_with_layout(&bin)?;
            let layout_source = match &layout {
                Ok(l) => l.source.to_string(),
                Err(e) => format!("unavailable: {e}"),
            };
            let report = InfoReport::new(&program, Some(layout_source));
            let stdout = io::stdout();
            let mut out = stdout.lock();
            match format {
                InfoFormat::Text => report.write_text(&mut out)?,
                InfoFormat::Json => {
                    serde_json::to_writer_pretty(&mut out, &report).context("writing JSON")?;
                    writeln!(out)?;
                }
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Dump {
            pid,
            format,
            system,
            labels,
            max_pause,
            nonblocking,
            analysis,
            output,
        } => {
            // Usage errors (bad regex, pprof to a terminal) before anything
            // is opened or logged.
            let filter = analysis.check(format, output.is_none() && io::stdout().is_terminal())?;
            if sudo.is_some() && nonblocking {
                return Err(gopeek::snapshot::SnapshotError::NonblockingUnderSudo.into());
            }
            // -o: created now (as the invoking user under sudo), before the
            // no-write-open filter below.
            // sudo: policy check and audit line before anything is opened.
            let session = match &sudo {
                Some(ctx) => Some(gopeek::sudo::SudoSession::begin(ctx, pid)?),
                None => None,
            };
            let out_file = match &output {
                Some(p) => match gopeek::sudo::privilege::create_output(p, sudo.as_ref()) {
                    Ok(f) => Some(f),
                    Err(e) => {
                        if let Some(s) = &session {
                            s.finish(Err(e.to_string()));
                        }
                        return Err(e.into());
                    }
                },
                None => None,
            };
            // gopeek writes only to stdout or the file just opened: from here
            // on nothing may write to another process or open a file for
            // writing (/proc/PID/mem included).
            gopeek::process::seccomp::install_read_only_filter()
                .context("installing the read-only seccomp filter")?;
            gopeek::process::seccomp::forbid_open_for_write()
                .context("installing the no-write-open seccomp filter")?;
            let max_pause = std::time::Duration::from_millis(max_pause);
            let opts = SnapshotOptions {
                max_pause,
                nonblocking,
                frame_registers: system && matches!(format, DumpFormat::Text),
                // sudo: re-check the policy and drop privileges once seized.
                after_seize: session.as_ref().map(|s| s.after_seize(max_pause)),
            };
            let result = snapshot_pid(pid, &opts);
            if let Some(s) = &session {
                s.finish(match &result {
                    Ok(d) => Ok(format!(
                        "pause_us={} goroutines={}",
                        d.pause_us,
                        d.goroutines.len()
                    )),
                    Err(e) => Err(e.to_string()),
                });
            }
            let mut dump = filter.apply(result?);
            if let Some(s) = session.as_ref().filter(|s| !s.decision().show_memory) {
                let why = format!("not allowed by the sudo policy ({})", s.decision().reason);
                dump.hide_memory_contents(&why);
                eprintln!("gopeek: note: labels are not shown: {why}");
            }
            // JSON is indented for a person at a terminal, compact for pipes
            // (a 100k-goroutine dump is several times smaller).
            let pretty = out_file.is_none() && io::stdout().is_terminal();
            let stdout = io::stdout();
            let sink: Box<dyn Write> = match out_file {
                Some(f) => Box::new(f),
                None => Box::new(stdout.lock()),
            };
            let mut w = io::BufWriter::with_capacity(1 << 16, sink);
            let t_out = std::time::Instant::now();
            write_dump(&dump, format, system, labels, &analysis, pretty, &mut w)?;
            w.flush()?;
            if std::env::var_os("GOPEEK_DEBUG_TIMING").is_some() {
                eprintln!("gopeek: timing: output {} us", t_out.elapsed().as_micros());
            }
            let broken = dump
                .goroutines
                .iter()
                .filter(|g| g.error.is_some() && !g.frames.is_empty())
                .count();
            if broken > 0 && matches!(format, DumpFormat::Text) {
                eprintln!(
                    "gopeek: {broken} goroutine stacks are incomplete; --format json says why"
                );
            }
            for w in &dump.warnings {
                eprintln!("gopeek: warning: {w}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Leaks(args) => {
            if sudo.is_some() {
                return Err(
                    gopeek::sudo::privilege::PrivilegeError::NotUnderSudo { command: "leaks" }.into(),
                );
            }
            gopeek::process::seccomp::install_read_only_filter()
                .context("installing the read-only seccomp filter")?;
            gopeek::process::seccomp::forbid_open_for_write()
                .context("installing the no-write-open seccomp filter")?;
            Ok(ExitCode::from(run_leaks(&args)?))
        }
        Command::Symbolize {
            binary,
            addrs,
            all_functions,
            format,
        } => {
            use gopeek::binary::symbolize::{
                symbolize_addr, symbolize_all_functions, write_text, SymbolizeReport,
            };
            if let Some(ctx) = &sudo {
                gopeek::sudo::privilege::drop_to(ctx)?;
            }
            let bin = GoBinary::open(&binary)?;
            let program = GoProgram::load(&bin, None)?;
            let answers = if all_functions {
                symbolize_all_functions(&program.pclntab)
            } else {
                addrs
                    .iter()
                    .map(|&a| symbolize_addr(&program.pclntab, a))
                    .collect()
            };
            let stdout = io::stdout();
            let mut out = io::BufWriter::new(stdout.lock());
            match format {
                InfoFormat::Text => write_text(&answers, &mut out)?,
                InfoFormat::Json => {
                    let report = SymbolizeReport {
                        schema: "gopeek.symbolize/1",
                        path: binary.display().to_string(),
                        go_version: program.version.raw.clone(),
                        addresses: answers,
                    };
                    serde_json::to_writer_pretty(&mut out, &report).context("writing JSON")?;
                    writeln!(out)?;
                }
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
