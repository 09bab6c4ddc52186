//! The audit trail of `sudo gopeek`: one system-log line per decision and
//! per outcome, so that an administrator can see who inspected which
//! process, how, and with what result.
//!
//! Lines go straight to the local syslog socket `/dev/log` (journald and
//! rsyslog both listen there) in RFC 3164 form with facility `authpriv`,
//! tag `gopeek[PID]`. No library, no configuration, no path from the
//! environment. The socket is connected while gopeek is still root, and
//! the connected descriptor keeps working after the privilege drop.
//!
//! The timestamp is UTC (local time would need the TZ database, which the
//! environment can redirect); every value is escaped so that a crafted
//! executable name or argument cannot forge a second line or field.

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::time::SystemTime;
use thiserror::Error;

/// The local syslog socket.
pub(crate) const DEV_LOG: &str = "/dev/log";
/// syslog facility `authpriv` (10), as used by sudo and su.
const FACILITY_AUTHPRIV: u8 = 10;
/// Longest line sent (RFC 3164 recommends 1024 bytes).
const MAX_LINE: usize = 1024;

/// Syslog severities gopeek uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Severity {
    /// A refused or failed inspection.
    Warning = 4,
    /// An allowed inspection and its outcome.
    Notice = 5,
}

/// Why the audit line could not be written. Under sudo gopeek refuses to
/// attach without an audit trail (exit code 4).
#[derive(Debug, Error)]
#[error("cannot write the audit record to the system log ({DEV_LOG}): {source}; under sudo gopeek does not attach without an audit trail (start rsyslog or systemd-journald)")]
pub struct AuditError {
    #[source]
    source: io::Error,
}

enum Sock {
    Dgram(UnixDatagram),
    Stream(UnixStream),
}

/// A connection to the system log.
pub(crate) struct AuditLog {
    sock: Sock,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditLog")
    }
}

/// Who inspected what: the fields of every audit line.
#[derive(Debug, Clone)]
pub(crate) struct AttachRecord {
    /// The invoking user's name (from sudo, sanitised).
    pub(crate) user: String,
    /// The invoking user's uid.
    pub(crate) uid: u32,
    /// The target pid.
    pub(crate) pid: i32,
    /// The target's effective uid, when known.
    pub(crate) target_uid: Option<u32>,
    /// The target's executable, when known.
    pub(crate) exe: Option<String>,
    /// gopeek's command line.
    pub(crate) command: Vec<OsString>,
}

impl AuditLog {
    /// Connects to [`DEV_LOG`] (datagram, or stream for syslog daemons
    /// that listen that way).
    pub(crate) fn connect() -> Result<AuditLog, AuditError> {
        let d = UnixDatagram::unbound().map_err(|source| AuditError { source })?;
        match d.connect(DEV_LOG) {
            Ok(()) => Ok(AuditLog {
                sock: Sock::Dgram(d),
            }),
            Err(e) if e.raw_os_error() == Some(libc::EPROTOTYPE) => {
                let s = UnixStream::connect(DEV_LOG).map_err(|source| AuditError { source })?;
                Ok(AuditLog {
                    sock: Sock::Stream(s),
                })
            }
            Err(source) => Err(AuditError { source }),
        }
    }

    /// A log that writes to one end of a socket pair, so that unit tests
    /// can read back what would have gone to [`DEV_LOG`].
    #[cfg(test)]
    pub(crate) fn from_datagram(d: UnixDatagram) -> AuditLog {
        AuditLog {
            sock: Sock::Dgram(d),
        }
    }

    /// Sends one line.
    pub(crate) fn send(
        &mut self,
        severity: Severity,
        rec: &AttachRecord,
        outcome: &str,
    ) -> Result<(), AuditError> {
        let line = format_line(
            severity,
            SystemTime::now(),
            std::process::id(),
            rec,
            outcome,
        );
        let r = match &mut self.sock {
            Sock::Dgram(d) => d.send(line.as_bytes()).map(|_| ()),
            Sock::Stream(s) => s.write_all(format!("{line}\n").as_bytes()),
        };
        r.map_err(|source| AuditError { source })
    }
}

/// Escapes a value for a `key="value"` field: backslash, quote and every
/// control or non-ASCII byte become `\xNN`; truncated to `max` bytes.
fn escape(s: &str, max: usize) -> String {
    let mut out = String::new();
    for &b in s.as_bytes() {
        if out.len() >= max {
            out.push_str("...");
            break;
        }
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// `Mmm dd hh:mm:ss` (RFC 3164), UTC.
fn timestamp(t: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // Reuse the RFC 3339 formatter: YYYY-MM-DDThh:mm:ssZ.
    let s = crate::dump::rfc3339(t);
    let month: usize = s[5..7].parse().unwrap_or(1);
    let day: u32 = s[8..10].parse().unwrap_or(1);
    format!(
        "{} {day:>2} {}",
        MONTHS[(month.clamp(1, 12)) - 1],
        &s[11..19]
    )
}

/// The full RFC 3164 line, e.g.
/// `<85>Nov 28 05:07:22 gopeek[77]: user="alice" uid=1000 pid=4242
/// target_uid=33 exe="/usr/bin/app" command="gopeek dump --pid 4242"
/// outcome="ok"`.
fn format_line(
    severity: Severity,
    t: SystemTime,
    my_pid: u32,
    rec: &AttachRecord,
    outcome: &str,
) -> String {
    let pri = FACILITY_AUTHPRIV * 8 + severity as u8;
    let command = rec
        .command
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let mut line = format!(
        "<{pri}>{} gopeek[{my_pid}]: user=\"{}\" uid={} pid={} target_uid={} exe=\"{}\" command=\"{}\" outcome=\"{}\"",
        timestamp(t),
        escape(&rec.user, 32),
        rec.uid,
        rec.pid,
        rec.target_uid
            .map(|u| u.to_string())
            .unwrap_or_else(|| "?".into()),
        escape(rec.exe.as_deref().unwrap_or("?"), 256),
        escape(&command, 300),
        escape(outcome, 300),
    );
    if line.len() > MAX_LINE {
        // Only ASCII is left after escaping, so any byte index is a char
        // boundary.
        line.truncate(MAX_LINE);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rec() -> AttachRecord {
        AttachRecord {
            user: "alice".into(),
            uid: 1000,
            pid: 4242,
            target_uid: Some(0),
            exe: Some("/usr/bin/app".into()),
            command: vec![
                "gopeek".into(),
                "dump".into(),
                "--pid".into(),
                "4242".into(),
            ],
        }
    }

    #[test]
    fn line_is_rfc3164_authpriv() {
        // 2026-11-28T05:07:02Z
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_842_422);
        let l = format_line(Severity::Notice, t, 77, &rec(), "ok");
        assert_eq!(
            l,
            "<85>Nov 28 05:07:02 gopeek[77]: user=\"alice\" uid=1000 pid=4242 target_uid=0 \
             exe=\"/usr/bin/app\" command=\"gopeek dump --pid 4242\" outcome=\"ok\""
        );
        let l = format_line(Severity::Warning, SystemTime::UNIX_EPOCH, 1, &rec(), "x");
        assert!(l.starts_with("<84>Jan  1 00:00:00 gopeek[1]: "), "{l}");
    }

    #[test]
    fn values_cannot_forge_lines_or_fields() {
        let mut r = rec();
        r.exe = Some("/tmp/a\" outcome=\"ok\nfake".into());
        r.command.push("x\ry\u{7f}é".into());
        let l = format_line(Severity::Notice, SystemTime::UNIX_EPOCH, 1, &r, "o");
        assert!(!l.contains('\n') && !l.contains('\r'), "{l}");
        assert!(l.contains(r#"exe="/tmp/a\" outcome=\"ok\x0afake""#), "{l}");
        assert!(l.contains(r#"x\x0dy\x7f\xc3\xa9"#), "{l}");
        assert_eq!(l.matches(" outcome=\"").count(), 1, "{l}");
        let mut r = rec();
        r.command = vec!["a".repeat(5000).into()];
        let l = format_line(Severity::Notice, SystemTime::UNIX_EPOCH, 1, &r, "o");
        assert!(l.len() <= MAX_LINE, "{}", l.len());
    }
}
