//! The diagnosis flags shared by `gopeek dump` and `gopeek leaks`
//! (filters, `--group`), turned into the library's plain types, and the
//! usage checks that run before the target is touched.

use super::dump::DumpFormat;
use super::error::UsageError;
use gopeek::analyze::filter::{Filter, GState};
use gopeek::analyze::group::Similarity;
use std::time::Duration;

/// `--state`: the scheduler state of a goroutine, coarser than the status
/// Go prints: every wait reason is `waiting`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum StateArg {
    /// Just allocated, not started.
    Idle,
    /// Ready, waiting for a P.
    Runnable,
    /// On a thread right now.
    Running,
    /// In a system call.
    Syscall,
    /// Parked (chan receive, IO wait, sleep...).
    Waiting,
    /// Finished, kept for reuse.
    Dead,
    /// Go 1.26+ goroutine leak detection marked it leaked.
    Leaked,
    /// Copying its stack or preempted: in between states.
    Other,
}

impl From<StateArg> for GState {
    fn from(s: StateArg) -> GState {
        match s {
            StateArg::Idle => GState::Idle,
            StateArg::Runnable => GState::Runnable,
            StateArg::Running => GState::Running,
            StateArg::Syscall => GState::Syscall,
            StateArg::Waiting => GState::Waiting,
            StateArg::Dead => GState::Dead,
            StateArg::Leaked => GState::Leaked,
            StateArg::Other => GState::Other,
        }
    }
}

/// `--similarity`: how alike two stacks must be to share a bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SimilarityArg {
    /// Same functions at the same file:line.
    #[default]
    Exact,
    /// Same functions, whatever the line (e.g. a loop parked at two
    /// different channel operations).
    Function,
}

impl From<SimilarityArg> for Similarity {
    fn from(s: SimilarityArg) -> Similarity {
        match s {
            SimilarityArg::Exact => Similarity::Exact,
            SimilarityArg::Function => Similarity::Function,
        }
    }
}

/// Which goroutines to keep; different flags combine with AND.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct FilterArgs {
    /// Keep goroutines in these scheduler states (repeat or comma-separate).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "STATE")]
    pub(crate) state: Vec<StateArg>,
    /// Keep goroutines whose status is this text, e.g. "chan receive",
    /// "sync.Mutex.Lock", "IO wait" (case-insensitive; repeatable).
    #[arg(long = "wait-reason", value_name = "TEXT")]
    pub(crate) wait_reason: Vec<String>,
    /// Keep goroutines with a frame whose function or file matches REGEX
    /// (runtime frames included).
    #[arg(long = "match", value_name = "REGEX")]
    pub(crate) frame_match: Option<String>,
    /// Keep goroutines blocked at least this many minutes (as Go counts
    /// them: the ", N minutes" of the header).
    #[arg(long, value_name = "MINUTES")]
    pub(crate) min_wait: Option<u64>,
    /// Keep goroutines carrying this pprof label (KEY=VALUE, or KEY for any
    /// value; repeat for several, all must match).
    #[arg(long, value_name = "KEY=VALUE")]
    pub(crate) label: Vec<String>,
    /// Keep goroutines whose "created by" function or file:line matches REGEX.
    #[arg(long, value_name = "REGEX")]
    pub(crate) created_by: Option<String>,
}

impl FilterArgs {
    /// The compiled filter; a bad regex or label is a usage error.
    pub(crate) fn build(&self) -> Result<Filter, UsageError> {
        let states: Vec<GState> = self.state.iter().map(|&s| s.into()).collect();
        Filter::new(
            &states,
            &self.wait_reason,
            self.frame_match.as_deref(),
            self.min_wait,
            &self.label,
            self.created_by.as_deref(),
        )
        .map_err(|e| UsageError(e.0))
    }
}

/// `--group` and its knobs.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct GroupArgs {
    /// Fold goroutines with the same status and stack into buckets,
    /// largest first (text or json).
    #[arg(long)]
    pub(crate) group: bool,
    /// exact: same functions at the same lines; function: same functions,
    /// any line.
    #[arg(long, value_enum, default_value_t = SimilarityArg::Exact, requires = "group")]
    pub(crate) similarity: SimilarityArg,
    /// Show only the N largest buckets.
    #[arg(long, value_name = "N", requires = "group")]
    pub(crate) top: Option<usize>,
}

/// Everything `gopeek dump` gained for diagnosis, flattened into it.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct DumpAnalysisArgs {
    /// Which goroutines to keep.
    #[command(flatten)]
    pub(crate) filter: FilterArgs,
    /// Buckets instead of goroutines.
    #[command(flatten)]
    pub(crate) group: GroupArgs,
}

impl DumpAnalysisArgs {
    /// Rejects combinations that cannot work, before the target is touched.
    pub(crate) fn check(
        &self,
        format: DumpFormat,
        stdout_is_terminal: bool,
    ) -> Result<Filter, UsageError> {
        if self.group.group && !matches!(format, DumpFormat::Text | DumpFormat::Json) {
            return Err(UsageError(
                "--group works with --format text or json (pprof, folded and svg aggregate stacks already)"
                    .into(),
            ));
        }
        if format == DumpFormat::Pprof && stdout_is_terminal {
            return Err(UsageError(
                "--format pprof writes a binary profile: redirect it to a file (gopeek dump ... > goroutines.pb.gz)"
                    .into(),
            ));
        }
        self.filter.build()
    }
}

/// Parses `500ms`, `2s`, `1.5s`, `3m`, `1h`, or a bare number of seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a duration like 500ms, 2s, 1m"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "" | "s" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    if !(0.0..=86_400.0 * 7.0).contains(&secs) {
        return Err(format!("{s:?}: out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("3m"), Ok(Duration::from_secs(180)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("").is_err());
    }
}
