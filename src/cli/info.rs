//! `gopeek info` and `gopeek symbolize`: the executable alone, no process
//! attached. Under sudo the file is opened as root (a target's
//! /proc/PID/exe needs it) and parsed as the invoking user.

use super::error::CliError;
use super::{write_report, ReportFormat};
use gopeek::binary::elf::GoBinary;
use gopeek::binary::info::InfoReport;
use gopeek::binary::program::GoProgram;
use gopeek::binary::symbolize::{parse_addr, symbolize_addr, symbolize_all_functions};
use gopeek::output::symbolize::SymbolizeReport;
use gopeek::sudo::privilege::{drop_to, SudoContext};
use gopeek::sudo::SudoSession;
use std::path::PathBuf;
use std::process::ExitCode;

/// `gopeek info` arguments.
#[derive(clap::Args)]
pub(crate) struct InfoArgs {
    /// The executable to read.
    #[arg(required_unless_present_any = ["pid", "core"], conflicts_with_all = ["pid", "core"])]
    binary: Option<PathBuf>,
    /// Read the executable of this running process (without attaching).
    #[arg(long, conflicts_with = "core")]
    pid: Option<i32>,
    /// Read the executable a core file belongs to (the one its NT_FILE
    /// note names, or --exe), checked against the core.
    #[arg(long, value_name = "FILE")]
    core: Option<PathBuf>,
    /// With --core: the executable that wrote the core.
    #[arg(long, value_name = "BINARY", requires = "core")]
    exe: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
}

/// `gopeek symbolize` arguments.
#[derive(clap::Args)]
pub(crate) struct SymbolizeArgs {
    /// The executable to read.
    binary: PathBuf,
    /// Link-time addresses, hexadecimal (0x optional).
    #[arg(required_unless_present = "all_functions", value_parser = parse_addr)]
    addrs: Vec<u64>,
    /// Symbolize the entry of every function in the pclntab.
    #[arg(long, conflicts_with = "addrs")]
    all_functions: bool,
    /// text: one `0xADDR NAME FILE:LINE` line per frame, innermost first,
    /// ending in ` inlined` for inlined frames;
    /// json: schema gopeek.symbolize/1, with Go's print names.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
}

/// Runs `gopeek info`.
pub(crate) fn run_info(a: InfoArgs, sudo: Option<&SudoContext>) -> Result<ExitCode, CliError> {
    if sudo.is_some() && a.core.is_some() {
        // A core is a file: no reason to parse it as root.
        return Err(super::error::UsageError(
            "`gopeek info --core` needs no privilege: run it without sudo".into(),
        )
        .into());
    }
    let path = match (a.binary, a.pid, &a.core) {
        (Some(b), _, _) => b,
        (None, Some(pid), _) => PathBuf::from(format!("/proc/{pid}/exe")),
        (None, None, Some(core)) => gopeek::snapshot::core_executable(core, a.exe.as_deref())?,
        (None, None, None) => unreachable!("clap requires one"),
    };
    // sudo: open as root (a target's /proc/PID/exe needs it), parse as the
    // invoking user; a path given by the user is opened as the user.
    let bin = match (sudo, a.pid) {
        (Some(ctx), Some(pid)) => {
            let session = SudoSession::begin(ctx, pid)?;
            let file = std::fs::File::open(&path);
            session.finish(match &file {
                Ok(_) => Ok("executable opened for gopeek info".into()),
                Err(e) => Err(format!("cannot open {}: {e}", path.display())),
            });
            let file = file.map_err(|source| gopeek::binary::elf::ElfError::Open {
                path: path.clone(),
                source,
            })?;
            drop_to(ctx)?;
            GoBinary::from_file(&path, &file)?
        }
        (Some(ctx), None) => {
            drop_to(ctx)?;
            GoBinary::open(&path)?
        }
        (None, _) => GoBinary::open(&path)?,
    };
    let (program, layout) = gopeek::layout::load_program(&bin)?;
    let layout_source = match &layout {
        Ok(l) => l.source.to_string(),
        Err(e) => format!("unavailable: {e}"),
    };
    let report = InfoReport::new(&program, Some(layout_source));
    write_report(
        a.format,
        |w| gopeek::output::info::write_text(&report, w),
        &report,
        true,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `gopeek symbolize`.
pub(crate) fn run_symbolize(
    a: SymbolizeArgs,
    sudo: Option<&SudoContext>,
) -> Result<ExitCode, CliError> {
    if let Some(ctx) = sudo {
        drop_to(ctx)?;
    }
    let bin = GoBinary::open(&a.binary)?;
    let program = GoProgram::load(&bin, None)?;
    let answers = if a.all_functions {
        symbolize_all_functions(&program.pclntab)
    } else {
        a.addrs
            .iter()
            .map(|&addr| symbolize_addr(&program.pclntab, addr))
            .collect()
    };
    let report = SymbolizeReport {
        schema: "gopeek.symbolize/1",
        path: a.binary.display().to_string(),
        go_version: program.version.raw.clone(),
        addresses: answers,
    };
    write_report(
        a.format,
        |w| gopeek::output::symbolize::write_text(&report.addresses, w),
        &report,
        true,
    )?;
    Ok(ExitCode::SUCCESS)
}
