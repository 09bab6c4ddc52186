//! `gopeek print`: Go variables of a live process, read with the types its
//! DWARF describes, printed as `%#v` text or as `gopeek.print/1` JSON.

use super::error::{CliError, Doing, UsageError};
use super::{forbid_writes, open_target};
use gopeek::exit::{ExitStatus, PERMISSION};
use gopeek::snapshot::frame_select::FrameSel;
use gopeek::snapshot::values::{print_core, PrintOptions};
use gopeek::sudo::privilege::SudoContext;
use gopeek::sudo::SudoSession;
use gopeek::value::Limits;
use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

/// `gopeek print --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum PrintFormat {
    /// `EXPR = VALUE`, the value as Go's %#v writes it.
    Text,
    /// Schema gopeek.print/1: each value's typed tree and its
    /// encoding/json form.
    Json,
}

/// `gopeek print` arguments.
#[derive(clap::Args)]
pub(crate) struct PrintArgs {
    /// The process to read.
    #[arg(long, required_unless_present = "core", conflicts_with = "core")]
    pid: Option<i32>,
    /// Read a core file instead of a live process (globals, and with
    /// --goroutine a goroutine's locals); nothing is attached to.
    #[arg(long, value_name = "FILE")]
    core: Option<std::path::PathBuf>,
    /// With --core: the executable that wrote the core (default: the one
    /// the core names).
    #[arg(long, value_name = "BINARY", requires = "core")]
    exe: Option<std::path::PathBuf>,
    /// Go expressions: a global by its Go name (main.cfg,
    /// net/http.DefaultClient; a bare name means main.NAME), then
    /// .Field, [N], ["key"], *x, len(x), cap(x).
    /// In `--goroutine`'s frame, a name is first the frame's argument or
    /// local (`req`, `req.URL`).
    #[arg(required_unless_present = "locals", value_name = "EXPR")]
    exprs: Vec<String>,
    /// Read in this goroutine's frame (its arguments and locals by name),
    /// the innermost frame of user code unless --frame says which.
    #[arg(long, value_name = "N")]
    goroutine: Option<u64>,
    /// The frame, counted from 0 as `gopeek dump` prints the goroutine's
    /// frames (innermost first).
    #[arg(long, value_name = "K", requires = "goroutine")]
    frame: Option<usize>,
    /// Print every argument and local of the frame.
    #[arg(long, requires = "goroutine", conflicts_with = "exprs")]
    locals: bool,
    #[arg(long, value_enum, default_value_t = PrintFormat::Text)]
    format: PrintFormat,
    /// Nesting levels followed (fields, elements, pointees, interface
    /// values, map entries).
    #[arg(long, default_value_t = 16)]
    max_depth: u32,
    /// Elements shown of an array, slice or map, and bytes of a string.
    #[arg(long, default_value_t = 100)]
    max_len: u64,
    /// Bytes read from the target for all expressions together.
    #[arg(long, default_value_t = 16 << 20)]
    max_bytes: u64,
    /// Read everything under one brief hold of the whole process, instead
    /// of reading each value twice while it runs and keeping it only when
    /// both reads agree.
    #[arg(long)]
    consistent: bool,
    /// With --consistent: give up, detach and fail if the target would be
    /// held longer (ms).
    #[arg(long, default_value_t = 2000)]
    max_pause: u64,
}

/// The sudo policy does not let this target's memory be shown.
#[derive(Debug)]
struct MemoryNotAllowed(String);

impl std::fmt::Display for MemoryNotAllowed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "gopeek print shows the target's memory, which the sudo policy does not allow here ({}); an administrator can set show_memory = true in the matching [[allow]] rule of /etc/gopeek/policy.toml",
            self.0
        )
    }
}

impl std::error::Error for MemoryNotAllowed {}

impl ExitStatus for MemoryNotAllowed {
    fn exit_code(&self) -> u8 {
        PERMISSION
    }
}

/// Runs `gopeek print`.
pub(crate) fn run(a: PrintArgs, sudo: Option<&SudoContext>) -> Result<ExitCode, CliError> {
    if sudo.is_some() && a.core.is_some() {
        return Err(UsageError(
            "`gopeek print --core` needs no privilege: run it without sudo, as a user who can read the core".into(),
        )
        .into());
    }
    let session = match a.pid {
        Some(pid) => sudo.map(|ctx| SudoSession::begin(ctx, pid)).transpose()?,
        None => None,
    };
    if let Some(s) = &session {
        if !s.decision().show_memory {
            let e = MemoryNotAllowed(s.decision().reason.clone());
            s.finish(Err(e.to_string()));
            return Err(e.into());
        }
    }
    // sudo, as `dump`: the root monitor (forked while root and
    // single-threaded) makes the hold; the target is opened as root, then
    // root is dropped for good before its executable is parsed.
    let monitor = match &session {
        Some(s) => Some(s.start_monitor()?),
        None => None,
    };
    forbid_writes()?;
    let max_pause = Duration::from_millis(a.max_pause);
    let opts = PrintOptions {
        limits: Limits {
            max_depth: a.max_depth,
            max_len: a.max_len,
            max_bytes: a.max_bytes,
        },
        consistent: a.consistent,
        max_pause,
        frame: a.goroutine.map(|g| FrameSel {
            goroutine: g,
            frame: a.frame,
            all_locals: a.locals,
        }),
    };
    let result = match (&a.core, a.pid) {
        (Some(core), _) => {
            print_core(core, a.exe.as_deref(), &a.exprs, &opts).map_err(CliError::from)
        }
        (None, Some(pid)) => open_target(pid, monitor, session.as_deref())
            .and_then(|t| Ok(t.print_values(&a.exprs, &opts)?)),
        (None, None) => return Err(UsageError("give --pid PID or --core FILE".into()).into()),
    };
    if let Some(s) = &session {
        s.finish(match &result {
            Ok(r) => Ok(format!("print of {} expressions", r.values.len())),
            Err(e) => Err(e.to_string()),
        });
    }
    let r = result?;
    if super::timing::wanted() {
        eprintln!(
            "gopeek: timing: print total {} us, pause {} us",
            r.elapsed.as_micros(),
            r.pause_us.unwrap_or(0)
        );
    }
    let stdout = io::stdout();
    let mut w = io::BufWriter::new(stdout.lock());
    let pretty = io::stdout().is_terminal();
    match a.format {
        PrintFormat::Text => {
            gopeek::output::print::write_text_in(&r.values, r.frame.as_ref(), &mut w)
        }
        PrintFormat::Json => gopeek::output::print::write_json_in(
            &r.values,
            r.go_minor,
            r.frame.as_ref(),
            pretty,
            &mut w,
        ),
    }
    .doing("writing the values")?;
    w.flush()?;
    // With --locals, a local that is optimized out is an answer, not a
    // failure.
    let failed = r
        .values
        .iter()
        .filter(|v| v.error.is_some() && !(a.locals && v.optimized_out))
        .count();
    if failed > 0 {
        eprintln!(
            "gopeek: {failed} of {} expressions could not be printed",
            r.values.len()
        );
        return Ok(ExitCode::from(gopeek::exit::FAILURE));
    }
    Ok(ExitCode::SUCCESS)
}
