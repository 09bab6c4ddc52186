//! The sudo policy: which targets a user may inspect through `sudo gopeek`,
//! and whether memory contents (pprof labels, later variables) may be shown.
//!
//! The policy lives in [`POLICY_PATH`] (fixed: never taken from the
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
//! show_memory = true             # labels may be shown (default false)
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
//! allowed, and memory contents are shown only for the invoking user's
//! own processes.
//!
//! User names are resolved through `/etc/passwd` only, so no NSS module is
//! loaded while privileged.

#![warn(missing_docs)]

use crate::process::proc_fs;
use procfs::{ProcessCGroup, ProcessCGroups};
use serde::Deserialize;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Where the policy is read from. Fixed on purpose: a path from the
/// environment or the command line would let the invoking user pick it.
pub const POLICY_PATH: &str = "/etc/gopeek/policy.toml";
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
pub struct TargetFacts {
    /// The target pid.
    pub pid: i32,
    /// Real, effective, saved and filesystem uid.
    pub uids: [u32; 4],
    /// `readlink /proc/PID/exe` (may end in " (deleted)").
    pub exe: String,
    /// The cgroup v2 path (or the systemd v1 hierarchy's), if any.
    pub cgroup: Option<String>,
}

impl TargetFacts {
    /// Reads the facts of `pid`.
    pub fn read(pid: i32) -> Result<Self, PolicyError> {
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
    pub fn euid(&self) -> u32 {
        self.uids[1]
    }

    /// True when any of the four uids is root.
    pub fn is_root_owned(&self) -> bool {
        self.uids.contains(&0)
    }

    /// The systemd unit: the deepest `.service` or `.scope` component of
    /// the cgroup path.
    pub fn unit(&self) -> Option<&str> {
        self.cgroup.as_deref().and_then(unit_of)
    }
}

/// The cgroup v2 path (hierarchy 0, no controllers), else the path in the
/// systemd v1 hierarchy (exactly `name=systemd`).
pub fn cgroup_path(cgroups: &ProcessCGroups) -> Option<String> {
    let find = |pred: &dyn Fn(&ProcessCGroup) -> bool| {
        cgroups.0.iter().find(|c| pred(c)).map(|c| &c.pathname)
    };
    let v2 = find(&|c| c.hierarchy == 0 && c.controllers.is_empty());
    let v1 = find(&|c| c.controllers == ["name=systemd"]);
    v2.or(v1).filter(|p| p.starts_with('/')).cloned()
}

/// The deepest `.service`/`.scope` component of a cgroup path.
pub fn unit_of(cgroup: &str) -> Option<&str> {
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
}

/// A loaded policy: the rules of [`POLICY_PATH`], or the built-in default
/// when the file does not exist.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `None`: the built-in default.
    source: Option<PathBuf>,
    rules: Vec<Rule>,
}

/// What the policy decided for an allowed target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Memory contents (labels) may be shown.
    pub show_memory: bool,
    /// Why it is allowed ("rule 2 of /etc/gopeek/policy.toml"), for the
    /// audit log.
    pub reason: String,
}

/// Why a file or directory on the policy's path is unsafe, from its
/// metadata: not owned by root, writable by group or others, or (for the
/// file) not a regular file.
pub fn insecure_reason(uid: u32, mode: u32, is_file: bool, what: &str) -> Option<String> {
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
    pub fn load_system() -> Result<Policy, PolicyError> {
        Self::load(Path::new(POLICY_PATH), true)
    }

    /// Loads `path`; `check_dirs` also checks every directory above it
    /// (always true for the system policy; false lets unit tests use a
    /// temporary directory).
    pub fn load(path: &Path, check_dirs: bool) -> Result<Policy, PolicyError> {
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
    pub fn parse(text: &str, path: &Path, passwd: &str) -> Result<Policy, PolicyError> {
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
            });
        }
        Ok(Policy {
            source: Some(path.into()),
            rules,
        })
    }

    /// Whether the invoking user (`invoker_uid`) may inspect the target.
    pub fn decide(&self, t: &TargetFacts, invoker_uid: u32) -> Result<Decision, PolicyError> {
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
            return Ok(Decision {
                show_memory: t.uids.iter().all(|&u| u == invoker_uid),
                reason: "default policy (no policy file): target not owned by root".into(),
            });
        };
        for (i, r) in self.rules.iter().enumerate() {
            if r.matches(t) {
                return Ok(Decision {
                    show_memory: r.show_memory,
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
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\nalice:x:1000:1000::/home/alice:/bin/bash\n";

    fn facts(uid: u32, exe: &str, cgroup: Option<&str>) -> TargetFacts {
        TargetFacts {
            pid: 42,
            uids: [uid; 4],
            exe: exe.into(),
            cgroup: cgroup.map(Into::into),
        }
    }

    fn parse(text: &str) -> Result<Policy, PolicyError> {
        Policy::parse(text, Path::new("/etc/gopeek/policy.toml"), PASSWD)
    }

    #[test]
    fn default_policy_refuses_root_and_hides_other_users_memory() {
        let p = Policy {
            source: None,
            rules: vec![],
        };
        let e = p.decide(&facts(0, "/usr/bin/app", None), 1000).unwrap_err();
        assert!(e.to_string().contains("it runs as root"), "{e}");
        let mut f = facts(33, "/usr/bin/app", None);
        f.uids[2] = 0; // saved uid root counts as root-owned
        assert!(p.decide(&f, 1000).is_err());
        let d = p.decide(&facts(33, "/usr/bin/app", None), 1000).unwrap();
        assert!(!d.show_memory);
        let d = p.decide(&facts(1000, "/usr/bin/app", None), 1000).unwrap();
        assert!(d.show_memory);
    }

    #[test]
    fn rules_match_users_exe_units_and_cgroups() {
        let p = parse(
            r#"
            [[allow]]
            users = ["www-data", 1234]
            show_memory = true

            [[allow]]
            users = ["root"]
            units = ["api.service"]
            exe = ["/usr/local/bin/api"]

            [[allow]]
            exe = ["/opt/app/"]

            [[allow]]
            cgroups = ["/system.slice/batch.slice"]
            "#,
        )
        .unwrap();
        let d = p.decide(&facts(33, "/usr/bin/x", None), 1000).unwrap();
        assert_eq!(
            d,
            Decision {
                show_memory: true,
                reason: "rule 1 of /etc/gopeek/policy.toml".into()
            }
        );
        assert!(p.decide(&facts(1234, "/usr/bin/x", None), 1000).is_ok());
        // root: only rule 2, and only with both its unit and its exe.
        let api = facts(0, "/usr/local/bin/api", Some("/system.slice/api.service"));
        let d = p.decide(&api, 1000).unwrap();
        assert_eq!(d.reason, "rule 2 of /etc/gopeek/policy.toml");
        assert!(!d.show_memory);
        assert!(p
            .decide(
                &facts(0, "/usr/local/bin/api", Some("/system.slice/other.service")),
                1000
            )
            .is_err());
        assert!(p
            .decide(
                &facts(0, "/opt/app/bin", Some("/system.slice/api.service")),
                1000
            )
            .is_err());
        // exe prefix rule, but never for root and never for a deleted file.
        assert!(p
            .decide(&facts(1000, "/opt/app/bin/srv", None), 1000)
            .is_ok());
        assert!(p.decide(&facts(0, "/opt/app/bin/srv", None), 1000).is_err());
        assert!(p
            .decide(&facts(1000, "/opt/app/bin/srv (deleted)", None), 1000)
            .is_err());
        assert!(p
            .decide(&facts(1000, "/opt/application", None), 1000)
            .is_err());
        // cgroup subtree, on component boundaries.
        let cg = |c| facts(1000, "/usr/bin/x", Some(c));
        assert!(p.decide(&cg("/system.slice/batch.slice"), 1).is_ok());
        assert!(p
            .decide(&cg("/system.slice/batch.slice/job.service"), 1)
            .is_ok());
        let e = p.decide(&cg("/system.slice/batch.slicex"), 1).unwrap_err();
        assert!(e.to_string().contains("no [[allow]] rule"), "{e}");
        let e = p.decide(&facts(0, "/usr/bin/x", None), 1).unwrap_err();
        assert!(e.to_string().contains("users = [\"root\"]"), "{e}");
    }

    #[test]
    fn malformed_policies_are_errors_with_a_location() {
        for (text, needle) in [
            ("[[allow]\nusers = [1]", "line 1"),
            ("[[allow]]\nuser = [\"alice\"]", "unknown field `user`"),
            (
                "[[allow]]\nusers = [\"nobody-here\"]",
                "unknown user \"nobody-here\"",
            ),
            ("[[allow]]\nshow_memory = true", "names no users"),
            ("[[allow]]\nexe = [\"bin/app\"]", "absolute"),
            (
                "[[allow]]\ncgroups = [\"system.slice\"]",
                "must start with /",
            ),
            ("[[allow]]\nunits = [\"a/b\"]", "unit name"),
            ("[[allow]]\nusers = [-1]", "line 2"),
            ("allow = 3", "invalid type"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(matches!(e, PolicyError::Malformed { .. }), "{text}: {e}");
            let m = e.to_string();
            assert!(
                m.starts_with("malformed policy /etc/gopeek/policy.toml: "),
                "{m}"
            );
            assert!(m.contains(needle), "{text}: {m}");
        }
        // An empty file is a valid policy that allows nothing.
        let p = parse("").unwrap();
        assert!(p.decide(&facts(1000, "/x", None), 1000).is_err());
    }

    #[test]
    fn unsafe_files_and_directories_are_named() {
        let reg = libc::S_IFREG;
        let dir = libc::S_IFDIR;
        assert_eq!(insecure_reason(0, reg | 0o644, true, "the file"), None);
        assert_eq!(insecure_reason(0, dir | 0o755, false, "d"), None);
        assert_eq!(
            insecure_reason(0, reg | 0o666, true, "the file").unwrap(),
            "the file is writable by others (mode 0666)"
        );
        assert_eq!(
            insecure_reason(0, reg | 0o664, true, "the file").unwrap(),
            "the file is writable by its group (mode 0664)"
        );
        assert!(insecure_reason(1000, reg | 0o644, true, "the file")
            .unwrap()
            .contains("owned by uid 1000"));
        assert!(
            insecure_reason(0, dir | 0o1777, false, "the directory /tmp")
                .unwrap()
                .contains("writable by others")
        );
        assert!(insecure_reason(0, libc::S_IFIFO | 0o644, true, "the file").is_some());
    }

    #[test]
    fn cgroup_and_unit_parsing() {
        use procfs::FromBufRead;
        let cgroup_path = |text: &str| {
            ProcessCGroups::from_buf_read(text.as_bytes())
                .ok()
                .and_then(|c| super::cgroup_path(&c))
        };
        assert_eq!(
            cgroup_path("0::/system.slice/api.service\n").as_deref(),
            Some("/system.slice/api.service")
        );
        assert_eq!(
            cgroup_path("12:cpu:/x\n1:name=systemd:/system.slice/a.service\n").as_deref(),
            Some("/system.slice/a.service")
        );
        // A v1 cgroup whose *name* contains ":name=systemd:" is not the
        // systemd hierarchy.
        assert_eq!(
            cgroup_path(
                "4:memory:/x:name=systemd:/system.slice/b.slice\n1:name=systemd:/user.slice\n"
            )
            .as_deref(),
            Some("/user.slice")
        );
        assert_eq!(cgroup_path("garbage"), None);
        assert_eq!(
            unit_of("/user.slice/user-1000.slice/user@1000.service/app.slice/web.service"),
            Some("web.service")
        );
        assert_eq!(
            unit_of("/system.slice/api.service/sub"),
            Some("api.service")
        );
        assert_eq!(unit_of("/"), None);
    }

    #[test]
    fn facts_of_a_process_whose_name_is_not_utf8() {
        // A non-ASCII name cut at 15 bytes, inside a character.
        let mut sh = std::process::Command::new("/bin/sh")
            .args([
                "-c",
                r"printf '\303\251\303\251\303\251\303\251\303\251\303\251\303\251\303' > /proc/$$/comm; echo; read _",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(sh.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        let pid = sh.id() as i32;
        let raw = std::fs::read(format!("/proc/{pid}/status")).unwrap();
        assert!(std::str::from_utf8(&raw).is_err(), "the name was not set");
        let facts = TargetFacts::read(pid);
        drop(sh.stdin.take());
        sh.wait().unwrap();
        let facts = facts.unwrap();
        assert_eq!(facts.pid, pid);
        assert_eq!(facts.euid(), unsafe { libc::geteuid() });
    }

    #[test]
    fn load_refuses_symlinks_and_writable_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("policy.toml");
        // Missing: the built-in default.
        assert!(Policy::load(&p, false).unwrap().source.is_none());
        std::fs::write(&p, "[[allow]]\nusers = [0]\n").unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
        let owner_ok = unsafe { libc::geteuid() } == 0;
        let e = Policy::load(&p, false).unwrap_err().to_string();
        assert!(
            e.contains("writable by others") || (!owner_ok && e.contains("not root")),
            "{e}"
        );
        let link = d.path().join("link.toml");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        let e = Policy::load(&link, false).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        if owner_ok {
            std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o644))
                .unwrap();
            assert_eq!(Policy::load(&p, false).unwrap().rules.len(), 1);
            // A temporary directory is not a safe place for a policy.
            let e = Policy::load(&p, true).unwrap_err().to_string();
            assert!(e.contains("writable by others"), "{e}");
        }
    }
}
