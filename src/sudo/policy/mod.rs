//! The sudo policy: which targets a user may inspect through `sudo gopeek`,
//! whether memory contents (pprof labels, argument values) may be shown,
//! and whether the target may be profiled (`record`, `top`).
//!
//! The policy lives in `/etc/gopeek/policy.toml` (fixed: never taken from the
//! environment or the command line). It is optional; it is *refused* (gopeek
//! stops, exit 4) unless the file and every directory above it are owned by
//! root and not writable by group or others, and unless it parses exactly
//! (unknown keys, unknown user names and rules without a criterion are
//! errors: a typo must not silently widen or narrow access).
//!
//! ```toml
//! # /etc/gopeek/policy.toml (root:root, 0644)
//! [[allow]]                      # any service of these users
//! users = ["www-data", 1001]
//! show_memory = true             # labels, arguments may be shown (default false)
//! profile = true                 # `record` and `top` allowed (default false)
//!
//! [[allow]]                      # one root service, by unit and binary
//! users = ["root"]
//! units = ["api.service"]
//! exe = ["/usr/local/bin/api"]   # exact path; "/opt/app/" = under it
//!
//! [[allow]]
//! cgroups = ["/system.slice/batch.slice"]   # that cgroup and below
//! ```
//!
//! A rule matches when every criterion it names matches; the first
//! matching rule decides. A target with any uid 0 (real, effective, saved,
//! filesystem) matches only rules whose `users` lists root explicitly.
//! Without a policy file: targets owned by root are refused, others are
//! allowed, and memory contents are shown, and profiling is allowed, only
//! for the invoking user's own processes.
//!
//! `profile` is a key of its own because profiling is more than one
//! reading: `record` and `top` sample the target for as long as asked
//! (perf events opened as root, or ptrace ticks made by the root monitor),
//! which costs the target CPU and shows what it does over time. A rule
//! that allows `dump` does not allow that unless it says `profile = true`.
//! `record --wall` is a profile too; its labels follow `show_memory`.
//!
//! User names are resolved through `/etc/passwd` only, so no NSS module is
//! loaded while privileged.

use crate::process::proc_fs;
use procfs::{ProcessCGroup, ProcessCGroups};
use serde::Deserialize;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Where the policy is read from. Fixed on purpose: a path from the
/// environment or the command line would let the invoking user pick it.
pub(crate) const POLICY_PATH: &str = "/etc/gopeek/policy.toml";
const PASSWD: &str = "/etc/passwd";
/// Largest policy file read (a policy is a few lines).
const MAX_POLICY_BYTES: u64 = 1 << 20;

/// Why the policy could not be used, or refused a target. Every variant
/// stops gopeek before it attaches (exit code 4).
#[derive(Debug, Error)]
pub enum PolicyError {
    /// The file or a directory above it could be changed by someone other
    /// than root.
    #[error("refusing the policy {}: {why}; it must be a regular file owned by root, in root-owned directories, none writable by group or others (chown root:root; chmod go-w)", path.display())]
    Insecure {
        /// The policy file.
        path: PathBuf,
        /// What is wrong, e.g. "it is writable by others (mode 0666)".
        why: String,
    },
    /// The file exists but cannot be read.
    #[error("cannot read the policy {}: {source}", path.display())]
    Read {
        /// The policy file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Not valid TOML, unknown keys, bad values, unknown users.
    #[error("malformed policy {}: {msg}", path.display())]
    Malformed {
        /// The policy file.
        path: PathBuf,
        /// The parser's message (with line and column) or the bad value.
        msg: String,
    },
    /// The policy does not allow this target.
    #[error("the sudo policy does not allow inspecting process {pid} ({exe}, uid {uid}): {why}")]
    Refused {
        /// The target.
        pid: i32,
        /// Its executable.
        exe: String,
        /// Its effective uid.
        uid: u32,
        /// Which rule is missing, in words.
        why: String,
    },
    /// What the policy matches on could not be read from `/proc`.
    #[error("cannot check process {pid} against the sudo policy: {source}")]
    Target {
        /// The target.
        pid: i32,
        /// Why.
        source: io::Error,
    },
    /// The target's owner, executable or cgroup changed between the check
    /// and the attach (an `exec`, or a recycled pid).
    #[error(
        "process {pid} changed while gopeek attached to it ({what}); refusing, it was detached"
    )]
    TargetChanged {
        /// The target.
        pid: i32,
        /// What changed.
        what: String,
    },
}

/// What the policy matches on, read from `/proc` while privileged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TargetFacts {
    /// The target pid.
    pub(crate) pid: i32,
    /// Real, effective, saved and filesystem uid.
    pub(crate) uids: [u32; 4],
    /// `readlink /proc/PID/exe` (may end in " (deleted)").
    pub(crate) exe: String,
    /// The cgroup v2 path (or the systemd v1 hierarchy's), if any.
    pub(crate) cgroup: Option<String>,
}

impl TargetFacts {
    /// Reads the facts of `pid`.
    pub(crate) fn read(pid: i32) -> Result<Self, PolicyError> {
        let err = |source| PolicyError::Target { pid, source };
        // Read lossily: `Name:` is the target's choice and need not be UTF-8.
        let status = proc_fs::read_small(&format!("/proc/{pid}/status")).map_err(err)?;
        let uids = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|v| {
                let ids: Vec<u32> = v
                    .split_whitespace()
                    .filter_map(|t| t.parse().ok())
                    .collect();
                <[u32; 4]>::try_from(ids).ok()
            })
            .ok_or_else(|| err(io::Error::other("no Uid line in /proc/PID/status")))?;
        let exe = proc_fs::exe_path(pid)
            .map_err(err)?
            .to_string_lossy()
            .into_owned();
        let cgroup = proc_fs::cgroups(pid).ok().and_then(|c| cgroup_path(&c));
        Ok(TargetFacts {
            pid,
            uids,
            exe,
            cgroup,
        })
    }

    /// Effective uid (what `ps` shows as the owner).
    pub(crate) fn euid(&self) -> u32 {
        self.uids[1]
    }

    /// True when any of the four uids is root.
    pub(crate) fn is_root_owned(&self) -> bool {
        self.uids.contains(&0)
    }

    /// The systemd unit: the deepest `.service` or `.scope` component of
    /// the cgroup path.
    pub(crate) fn unit(&self) -> Option<&str> {
        self.cgroup.as_deref().and_then(unit_of)
    }
}

/// The cgroup v2 path (hierarchy 0, no controllers), else the path in the
/// systemd v1 hierarchy (exactly `name=systemd`).
fn cgroup_path(cgroups: &ProcessCGroups) -> Option<String> {
    let find = |pred: &dyn Fn(&ProcessCGroup) -> bool| {
        cgroups.0.iter().find(|c| pred(c)).map(|c| &c.pathname)
    };
    let v2 = find(&|c| c.hierarchy == 0 && c.controllers.is_empty());
    let v1 = find(&|c| c.controllers == ["name=systemd"]);
    v2.or(v1).filter(|p| p.starts_with('/')).cloned()
}

/// The deepest `.service`/`.scope` component of a cgroup path.
fn unit_of(cgroup: &str) -> Option<&str> {
    cgroup
        .split('/')
        .rev()
        .find(|c| c.ends_with(".service") || c.ends_with(".scope"))
}

/// A `users` entry: a name or a uid.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum UserSpec {
    Uid(u32),
    Name(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    users: Vec<UserSpec>,
    #[serde(default)]
    exe: Vec<String>,
    #[serde(default)]
    units: Vec<String>,
    #[serde(default)]
    cgroups: Vec<String>,
    #[serde(default)]
    show_memory: bool,
    #[serde(default)]
    profile: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    allow: Vec<RuleFile>,
}

/// One `[[allow]]` rule, validated.
#[derive(Debug, Clone)]
struct Rule {
    users: Vec<u32>,
    exe: Vec<String>,
    units: Vec<String>,
    cgroups: Vec<String>,
    show_memory: bool,
    profile: bool,
}

/// A loaded policy: the rules of [`POLICY_PATH`], or the built-in default
/// when the file does not exist.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    /// `None`: the built-in default.
    source: Option<PathBuf>,
    rules: Vec<Rule>,
}

/// What the policy decided for an allowed target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Memory contents (labels, argument values) may be shown.
    pub show_memory: bool,
    /// The target may be profiled (`record`, `top`): sampled for as long
    /// as asked, not read once.
    pub profile: bool,
    /// Why it is allowed ("rule 2 of /etc/gopeek/policy.toml"), for the
    /// audit log.
    pub reason: String,
}

/// Why a file or directory on the policy's path is unsafe, from its
/// metadata: not owned by root, writable by group or others, or (for the
/// file) not a regular file.
fn insecure_reason(uid: u32, mode: u32, is_file: bool, what: &str) -> Option<String> {
    let kind = mode & libc::S_IFMT;
    if is_file && kind != libc::S_IFREG {
        return Some(format!("{what} is not a regular file"));
    }
    if !is_file && kind != libc::S_IFDIR {
        return Some(format!("{what} is not a directory"));
    }
    if uid != 0 {
        return Some(format!("{what} is owned by uid {uid}, not root"));
    }
    if mode & 0o022 != 0 {
        let who = if mode & 0o002 != 0 {
            "others"
        } else {
            "its group"
        };
        return Some(format!(
            "{what} is writable by {who} (mode {:04o})",
            mode & 0o7777
        ));
    }
    None
}

impl Policy {
    /// The policy in force for `sudo gopeek`: [`POLICY_PATH`] if it exists
    /// (checked and parsed strictly), else the built-in default.
    pub(crate) fn load_system() -> Result<Policy, PolicyError> {
        Self::load(Path::new(POLICY_PATH), true)
    }

    /// Loads `path`; `check_dirs` also checks every directory above it
    /// (always true for the system policy; false lets unit tests use a
    /// temporary directory).
    pub(crate) fn load(path: &Path, check_dirs: bool) -> Result<Policy, PolicyError> {
        let insecure = |why: String| PolicyError::Insecure {
            path: path.into(),
            why,
        };
        // O_NOFOLLOW: a symlink in place of the file is refused (ELOOP).
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Policy {
                    source: None,
                    rules: Vec::new(),
                })
            }
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(insecure("it is a symbolic link".into()))
            }
            Err(source) => {
                return Err(PolicyError::Read {
                    path: path.into(),
                    source,
                })
            }
        };
        let meta = file.metadata().map_err(|source| PolicyError::Read {
            path: path.into(),
            source,
        })?;
        if let Some(why) = insecure_reason(meta.uid(), meta.mode(), true, "the file") {
            return Err(insecure(why));
        }
        if check_dirs {
            for dir in path.ancestors().skip(1) {
                if dir.as_os_str().is_empty() {
                    continue;
                }
                let m = std::fs::symlink_metadata(dir).map_err(|source| PolicyError::Read {
                    path: dir.into(),
                    source,
                })?;
                let what = format!("the directory {}", dir.display());
                if let Some(why) = insecure_reason(m.uid(), m.mode(), false, &what) {
                    return Err(insecure(why));
                }
            }
        }
        let mut text = String::new();
        file.take(MAX_POLICY_BYTES)
            .read_to_string(&mut text)
            .map_err(|source| PolicyError::Read {
                path: path.into(),
                source,
            })?;
        let passwd = std::fs::read_to_string(PASSWD).unwrap_or_default();
        Self::parse(&text, path, &passwd)
    }

    /// Parses policy text; `passwd` is the text of `/etc/passwd`, used to
    /// resolve user names.
    pub(crate) fn parse(text: &str, path: &Path, passwd: &str) -> Result<Policy, PolicyError> {
        let bad = |msg: String| PolicyError::Malformed {
            path: path.into(),
            msg,
        };
        let file: PolicyFile = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        let mut rules = Vec::new();
        for (i, r) in file.allow.into_iter().enumerate() {
            let n = i + 1;
            if r.users.is_empty() && r.exe.is_empty() && r.units.is_empty() && r.cgroups.is_empty()
            {
                return Err(bad(format!(
                    "rule {n} ([[allow]]) names no users, exe, units or cgroups; a rule must say what it allows"
                )));
            }
            let mut users = Vec::new();
            for u in r.users {
                users.push(match u {
                    UserSpec::Uid(uid) => uid,
                    UserSpec::Name(name) => uid_of(passwd, &name).ok_or_else(|| {
                        bad(format!(
                            "rule {n}: unknown user {name:?} (not in /etc/passwd)"
                        ))
                    })?,
                });
            }
            for e in &r.exe {
                if !e.starts_with('/') || e.contains("/../") || e.contains("/./") {
                    return Err(bad(format!(
                        "rule {n}: exe {e:?} must be an absolute, normalised path"
                    )));
                }
            }
            for c in &r.cgroups {
                if !c.starts_with('/') {
                    return Err(bad(format!(
                        "rule {n}: cgroup {c:?} must start with / (as in /proc/PID/cgroup)"
                    )));
                }
            }
            for u in &r.units {
                if u.is_empty() || u.contains('/') {
                    return Err(bad(format!(
                        "rule {n}: unit {u:?} must be a unit name such as app.service"
                    )));
                }
            }
            rules.push(Rule {
                users,
                exe: r.exe,
                units: r.units,
                cgroups: r.cgroups,
                show_memory: r.show_memory,
                profile: r.profile,
            });
        }
        Ok(Policy {
            source: Some(path.into()),
            rules,
        })
    }

    /// Whether the invoking user (`invoker_uid`) may inspect the target.
    pub(crate) fn decide(
        &self,
        t: &TargetFacts,
        invoker_uid: u32,
    ) -> Result<Decision, PolicyError> {
        let refuse = |why: String| PolicyError::Refused {
            pid: t.pid,
            exe: t.exe.clone(),
            uid: t.euid(),
            why,
        };
        let Some(source) = &self.source else {
            if t.is_root_owned() {
                return Err(refuse(format!(
                    "it runs as root, and without {POLICY_PATH} root's processes are refused; \
                     an administrator can allow it there with users = [\"root\"] plus its exe or unit"
                )));
            }
            let own = t.uids.iter().all(|&u| u == invoker_uid);
            return Ok(Decision {
                show_memory: own,
                profile: own,
                reason: "default policy (no policy file): target not owned by root".into(),
            });
        };
        for (i, r) in self.rules.iter().enumerate() {
            if r.matches(t) {
                return Ok(Decision {
                    show_memory: r.show_memory,
                    profile: r.profile,
                    reason: format!("rule {} of {}", i + 1, source.display()),
                });
            }
        }
        let root_hint = if t.is_root_owned() {
            " (it runs as root: only a rule listing users = [\"root\"] can allow it)"
        } else {
            ""
        };
        Err(refuse(format!(
            "no [[allow]] rule of {} matches it{root_hint}",
            source.display()
        )))
    }
}

impl Rule {
    fn matches(&self, t: &TargetFacts) -> bool {
        // Root's processes only by explicit mention of root.
        if t.is_root_owned() && !self.users.contains(&0) {
            return false;
        }
        if !self.users.is_empty() && !self.users.iter().any(|&u| t.uids.iter().all(|&x| x == u)) {
            return false;
        }
        if !self.exe.is_empty() {
            if t.exe.ends_with(" (deleted)") {
                return false;
            }
            let ok = self.exe.iter().any(|e| {
                if e.ends_with('/') {
                    t.exe.starts_with(e.as_str())
                } else {
                    t.exe == *e
                }
            });
            if !ok {
                return false;
            }
        }
        if !self.units.is_empty() && !t.unit().is_some_and(|u| self.units.iter().any(|x| x == u)) {
            return false;
        }
        if !self.cgroups.is_empty() {
            let Some(cg) = t.cgroup.as_deref() else {
                return false;
            };
            let ok = self.cgroups.iter().any(|c| {
                let c = c.trim_end_matches('/');
                cg == c || c.is_empty() || cg.starts_with(&format!("{c}/"))
            });
            if !ok {
                return false;
            }
        }
        true
    }
}

/// The uid of `name` in passwd-format text.
fn uid_of(passwd: &str, name: &str) -> Option<u32> {
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then_some(())?;
        f.nth(1)?.parse().ok()
    })
}

#[cfg(test)]
mod tests;
