//! `--state`, `--wait-reason`, `--match`, `--min-wait`, `--label` and
//! `--created-by`: which goroutines of a snapshot a command looks at.
//! Different flags combine with AND, repeated values of one flag with OR,
//! the way a person narrows a dump down step by step.

use crate::dump::{DumpSnapshot, GoroutineSnapshot};
use crate::gotrace::status::{
    without_scan, G_DEAD, G_IDLE, G_LEAKED, G_RUNNABLE, G_RUNNING, G_SYSCALL, G_WAITING,
};
use regex::Regex;
use std::fmt;

/// The scheduler state of a goroutine (`--state`), coarser than the status
/// Go prints: every wait reason is `waiting`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GState {
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

impl GState {
    /// The state of a raw `atomicstatus` (scan bit already removed).
    pub(crate) fn of_raw(raw: u32) -> GState {
        match raw {
            G_IDLE => GState::Idle,
            G_RUNNABLE => GState::Runnable,
            G_RUNNING => GState::Running,
            G_SYSCALL => GState::Syscall,
            G_WAITING => GState::Waiting,
            G_DEAD => GState::Dead,
            G_LEAKED => GState::Leaked,
            _ => GState::Other,
        }
    }
}

/// An invalid filter argument, reported as a usage error.
#[derive(Debug)]
pub struct FilterError(pub String);

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FilterError {}

/// A compiled set of filters; the default keeps everything.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Keep goroutines in one of these scheduler states.
    pub(crate) states: Vec<GState>,
    /// Keep goroutines whose status text (e.g. `chan receive`) equals one
    /// of these, ignoring case and a ` (scan)` suffix.
    pub(crate) wait_reasons: Vec<String>,
    /// Keep goroutines with a frame whose function or file matches
    /// (runtime frames included, so `--match chanrecv` works too).
    pub(crate) frame_match: Option<Regex>,
    /// Keep goroutines blocked at least this many minutes (as Go counts
    /// them: a goroutine without `, N minutes` counts as 0).
    pub(crate) min_wait: Option<u64>,
    /// Keep goroutines carrying every one of these pprof labels
    /// (`key=value`, or `key` alone for "has this label").
    pub(crate) labels: Vec<(String, Option<String>)>,
    /// Keep goroutines whose `created by` function or `file:line` matches.
    pub(crate) created_by: Option<Regex>,
}

impl Filter {
    /// Builds a filter from command-line strings, rejecting bad regexes
    /// and empty label keys with a message naming the flag.
    pub fn new(
        states: &[GState],
        wait_reasons: &[String],
        frame_match: Option<&str>,
        min_wait: Option<u64>,
        labels: &[String],
        created_by: Option<&str>,
    ) -> Result<Filter, FilterError> {
        let re = |flag: &str, s: Option<&str>| -> Result<Option<Regex>, FilterError> {
            s.map(|s| Regex::new(s).map_err(|e| FilterError(format!("{flag} {s:?}: {e}"))))
                .transpose()
        };
        let mut parsed = Vec::with_capacity(labels.len());
        for l in labels {
            let (k, v) = match l.split_once('=') {
                Some((k, v)) => (k, Some(v.to_string())),
                None => (l.as_str(), None),
            };
            if k.is_empty() {
                return Err(FilterError(format!(
                    "--label {l:?}: expected KEY=VALUE or KEY"
                )));
            }
            parsed.push((k.to_string(), v));
        }
        Ok(Filter {
            states: states.to_vec(),
            wait_reasons: wait_reasons
                .iter()
                .map(|s| s.trim().to_lowercase())
                .collect(),
            frame_match: re("--match", frame_match)?,
            min_wait,
            labels: parsed,
            created_by: re("--created-by", created_by)?,
        })
    }

    /// No filter is set: every goroutine is kept.
    pub(crate) fn is_empty(&self) -> bool {
        self.states.is_empty()
            && self.wait_reasons.is_empty()
            && self.frame_match.is_none()
            && self.min_wait.is_none()
            && self.labels.is_empty()
            && self.created_by.is_none()
    }

    /// Whether `g` passes every filter.
    pub(crate) fn keeps(&self, g: &GoroutineSnapshot) -> bool {
        if !self.states.is_empty() && !self.states.contains(&GState::of_raw(g.raw_status)) {
            return false;
        }
        if !self.wait_reasons.is_empty() {
            let s = without_scan(&g.status).to_lowercase();
            if !self.wait_reasons.contains(&s) {
                return false;
            }
        }
        if let Some(re) = &self.frame_match {
            if !g
                .frames
                .iter()
                .any(|f| re.is_match(&f.function) || re.is_match(&f.file))
            {
                return false;
            }
        }
        if let Some(m) = self.min_wait {
            if g.wait_minutes.unwrap_or(0) < m {
                return false;
            }
        }
        for (k, v) in &self.labels {
            let have = g.labels.as_ref().and_then(|l| l.get(k));
            match (have, v) {
                (None, _) => return false,
                (Some(h), Some(v)) if h != v => return false,
                _ => {}
            }
        }
        if let Some(re) = &self.created_by {
            let Some(c) = &g.created_by else { return false };
            if !re.is_match(&c.function) && !re.is_match(&format!("{}:{}", c.file, c.line)) {
                return false;
            }
        }
        true
    }

    /// `dump` holding only the goroutines that pass; the snapshot's
    /// metadata (pid, pause, warnings) is kept as is.
    pub fn apply(&self, mut dump: DumpSnapshot) -> DumpSnapshot {
        if !self.is_empty() {
            dump.goroutines.retain(|g| self.keeps(g));
        }
        dump
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::dump::{CreatedBy, Frame};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    /// A frame at `function` in `file:line`.
    pub(crate) fn frame(function: &str, file: &str, line: i64, runtime: bool) -> Frame {
        Frame {
            function: Arc::from(function),
            file: Arc::from(file),
            line,
            pc: 0x401000 + line as u64,
            inlined: false,
            runtime,
            offset: Some(0x10),
            sp: 0,
            fp: 0,
        }
    }

    /// A waiting goroutine parked in `frames`, created by `creator`.
    pub(crate) fn goroutine(
        id: u64,
        status: &str,
        frames: Vec<Frame>,
        creator: &str,
    ) -> GoroutineSnapshot {
        GoroutineSnapshot {
            id,
            status: status.into(),
            wait_minutes: None,
            locked_to_thread: false,
            thread: None,
            labels: None,
            created_by: Some(std::sync::Arc::new(CreatedBy {
                function: creator.to_string(),
                file: "/src/main.go".to_string(),
                line: 40,
                goroutine: Some(1),
                offset: 0x20,
                runtime: false,
            })),
            frames: frames.into(),
            error: None,
            args: None,
            raw_status: if status == "running" {
                G_RUNNING
            } else {
                G_WAITING
            },
            system: false,
            g_addr: 0,
            m: None,
        }
    }

    fn sample() -> Vec<GoroutineSnapshot> {
        let mut a = goroutine(
            1,
            "chan receive",
            vec![
                frame("runtime.gopark", "/go/proc.go", 1, true),
                frame("main.worker", "/src/work.go", 14, false),
            ],
            "main.startPool",
        );
        a.wait_minutes = Some(5);
        a.labels = Some(std::sync::Arc::new(BTreeMap::from([(
            "tenant".to_string(),
            "acme".to_string(),
        )])));
        let b = goroutine(
            2,
            "running",
            vec![frame("main.spin", "/src/spin.go", 3, false)],
            "main.main",
        );
        vec![a, b]
    }

    fn ids(f: &Filter) -> Vec<u64> {
        sample()
            .iter()
            .filter(|g| f.keeps(g))
            .map(|g| g.id)
            .collect()
    }

    #[test]
    fn each_filter_selects() {
        let f = |s: &[GState], w: &[&str], m, mw, l: &[&str], c| {
            let w: Vec<String> = w.iter().map(|s| s.to_string()).collect();
            let l: Vec<String> = l.iter().map(|s| s.to_string()).collect();
            Filter::new(s, &w, m, mw, &l, c).unwrap()
        };
        assert_eq!(ids(&Filter::default()), vec![1, 2]);
        assert_eq!(
            ids(&f(&[GState::Running], &[], None, None, &[], None)),
            vec![2]
        );
        assert_eq!(
            ids(&f(
                &[GState::Waiting, GState::Running],
                &[],
                None,
                None,
                &[],
                None
            )),
            vec![1, 2]
        );
        assert_eq!(
            ids(&f(&[], &["Chan Receive"], None, None, &[], None)),
            vec![1]
        );
        assert_eq!(
            ids(&f(&[], &[], Some("spin\\.go$"), None, &[], None)),
            vec![2]
        );
        // Runtime frames count for --match.
        assert_eq!(ids(&f(&[], &[], Some("gopark"), None, &[], None)), vec![1]);
        assert_eq!(ids(&f(&[], &[], None, Some(5), &[], None)), vec![1]);
        assert_eq!(
            ids(&f(&[], &[], None, Some(6), &[], None)),
            Vec::<u64>::new()
        );
        assert_eq!(
            ids(&f(&[], &[], None, None, &["tenant=acme"], None)),
            vec![1]
        );
        assert_eq!(ids(&f(&[], &[], None, None, &["tenant"], None)), vec![1]);
        assert_eq!(
            ids(&f(&[], &[], None, None, &["tenant=beta"], None)),
            Vec::<u64>::new()
        );
        assert_eq!(
            ids(&f(&[], &[], None, None, &[], Some("startPool"))),
            vec![1]
        );
        assert_eq!(
            ids(&f(&[], &[], None, None, &[], Some("main.go:40$"))),
            vec![1, 2]
        );
        // AND across flags.
        assert_eq!(
            ids(&f(
                &[GState::Running],
                &["chan receive"],
                None,
                None,
                &[],
                None
            )),
            Vec::<u64>::new()
        );
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(Filter::new(&[], &[], Some("("), None, &[], None).is_err());
        assert!(Filter::new(&[], &[], None, None, &[], Some("[")).is_err());
        assert!(Filter::new(&[], &[], None, None, &["=x".to_string()], None).is_err());
    }
}
