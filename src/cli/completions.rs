//! `gopeek completions SHELL` and the man page, both generated from the
//! clap definitions so that they can never disagree with the real flags.

use super::error::{CliError, UsageError};
use super::Cli;
use clap::CommandFactory;
use std::io::{self, Write};
use std::process::ExitCode;

/// The shells completion scripts are written for.
#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// `gopeek completions` arguments.
#[derive(clap::Args)]
#[command(after_help = "Install, e.g.:\n  \
    gopeek completions bash > /etc/bash_completion.d/gopeek\n  \
    gopeek completions zsh > \"${fpath[1]}/_gopeek\"\n  \
    gopeek completions fish > ~/.config/fish/completions/gopeek.fish")]
pub(crate) struct CompletionsArgs {
    /// The shell to write a completion script for.
    #[arg(value_enum)]
    shell: Shell,
}

/// Writes the completion script on stdout.
pub(crate) fn run(a: CompletionsArgs) -> Result<ExitCode, CliError> {
    let shell = match a.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "gopeek", &mut buf);
    write_all(&buf)
}

/// `gopeek manpage` arguments.
#[derive(clap::Args)]
pub(crate) struct ManpageArgs {
    /// Write gopeek-SUBCOMMAND(1) instead of gopeek(1).
    subcommand: Option<String>,
}

/// `gopeek manpage [SUBCOMMAND]`: gopeek(1), or gopeek-SUBCOMMAND(1) with
/// every option of that command, in roff (scripts/release writes them all
/// under target/). Hidden: it is for packagers, not users.
pub(crate) fn run_manpage(a: ManpageArgs) -> Result<ExitCode, CliError> {
    let cmd = Cli::command();
    let page = match &a.subcommand {
        None => cmd,
        Some(name) => {
            let sub = cmd
                .get_subcommands()
                .find(|s| s.get_name() == name && !s.is_hide_set())
                .ok_or_else(|| UsageError(format!("no subcommand {name:?} (see gopeek --help)")))?;
            sub.clone()
                .name(format!("gopeek-{name}"))
                .version(env!("CARGO_PKG_VERSION"))
        }
    };
    let mut buf = Vec::new();
    clap_mangen::Man::new(page).render(&mut buf)?;
    write_all(&buf)
}

fn write_all(buf: &[u8]) -> Result<ExitCode, CliError> {
    let mut out = io::stdout().lock();
    out.write_all(buf)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
