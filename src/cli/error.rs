//! The one error type the commands return: any library error, which says
//! its own exit code ([`gopeek::exit::ExitStatus`]), with an optional
//! note of what gopeek was doing. `main` prints it once and exits with its
//! code.

use gopeek::exit::{ExitStatus, FAILURE, USAGE};
use std::fmt;

/// A bad combination of arguments found after parsing: exit code 2, like
/// clap's own usage errors.
#[derive(Debug)]
pub(crate) struct UsageError(pub(crate) String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

impl ExitStatus for UsageError {
    fn exit_code(&self) -> u8 {
        USAGE
    }
}

/// Any failure of a command. Every error type of the library carries its
/// causes' text in its own message, so printing this once says it all.
pub(crate) struct CliError {
    doing: Option<&'static str>,
    inner: Box<dyn ExitStatus + Send + Sync>,
    broken_pipe: bool,
}

impl<E: ExitStatus + Send + Sync + 'static> From<E> for CliError {
    fn from(e: E) -> Self {
        let broken_pipe = is_broken_pipe(&e);
        CliError {
            doing: None,
            inner: Box::new(e),
            broken_pipe,
        }
    }
}

fn is_broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        {
            return true;
        }
        cur = c.source();
    }
    false
}

impl CliError {
    /// The documented exit code (README, "Exit status").
    pub(crate) fn exit_code(&self) -> u8 {
        match self.inner.exit_code() {
            0 => FAILURE,
            c => c,
        }
    }

    /// A reader that went away (`gopeek dump | head`) is not a failure.
    pub(crate) fn is_broken_pipe(&self) -> bool {
        self.broken_pipe
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.doing {
            Some(doing) => write!(f, "{doing}: {}", self.inner),
            None => write!(f, "{}", self.inner),
        }
    }
}

/// Says what gopeek was doing when an error happened.
pub(crate) trait Doing<T> {
    /// `what` prefixes the message ("installing the read-only seccomp
    /// filter: ...").
    fn doing(self, what: &'static str) -> Result<T, CliError>;
}

impl<T, E: ExitStatus + Send + Sync + 'static> Doing<T> for Result<T, E> {
    fn doing(self, what: &'static str) -> Result<T, CliError> {
        self.map_err(|e| CliError {
            doing: Some(what),
            ..CliError::from(e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages_come_from_the_error() {
        let e = CliError::from(UsageError("bad".into()));
        assert_eq!((e.exit_code(), e.to_string()), (2, "bad".to_string()));
        let io: Result<(), _> = Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        let e = io.doing("writing JSON").unwrap_err();
        assert!(e.is_broken_pipe());
        assert_eq!(e.exit_code(), 1);
        assert!(e.to_string().starts_with("writing JSON: "), "{e}");
    }
}
