//! Least privilege under `sudo`: who invoked gopeek, dropping to that user
//! for good, and creating output files as that user.
//!
//! gopeek is meant to be whitelisted in sudoers for a low-privilege debug
//! user. Root is needed only to *open* the target (`/proc/PID/mem`, the
//! executable, `/proc/PID/maps`) and to `PTRACE_SEIZE` it; everything after
//! that (decoding the memory the target controls, formatting, writing the
//! output) runs as the invoking user, so that a hostile target that finds a
//! bug in a parser gains at most the invoking user's rights.
//!
//! * [`sudo_context`] recognises the sudo case (real and effective uid 0 with
//!   `SUDO_UID`/`SUDO_GID` set) and parses those variables strictly: they are
//!   strings from the environment, so anything but a plain decimal id fails.
//! * [`drop_to`] switches every thread to the invoking user with
//!   `setgroups` + `setresgid` + `setresuid` (real, effective and saved ids,
//!   so there is no way back), sets `PR_SET_NO_NEW_PRIVS` and
//!   `PR_SET_DUMPABLE=0` (the user must not be able to ptrace gopeek, which
//!   still holds root-opened descriptors), then *verifies* the result:
//!   `verify_dropped` checks the ids, the groups, that the capability sets
//!   are empty and that `setuid(0)` fails.
//! * [`create_output`] creates the `-o` file as the invoking user (from a
//!   short-lived thread that switched only its own credentials), with
//!   `O_CREAT|O_EXCL|O_NOFOLLOW`; an existing file is reused only if it is
//!   not a symlink and, when regular, is owned by that user.
//!
//! Nothing here reads a path or a program name from the environment, and
//! gopeek never executes anything (no pager, editor or plugin).

mod output;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use thiserror::Error;

pub use output::{create_output, OutputFileError};

/// The user who ran `sudo gopeek ...`, as sudo recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SudoContext {
    /// `SUDO_UID`: the invoking user's uid (never 0: root running sudo has
    /// nothing to drop to).
    pub uid: u32,
    /// `SUDO_GID`: the invoking user's primary gid.
    pub gid: u32,
    /// `SUDO_USER` if it is a plausible user name, for the audit log only
    /// (never used to decide anything).
    pub user: String,
}

/// Why the sudo context could not be established or privileges could not
/// be dropped. Any of these stops gopeek before it attaches.
#[derive(Debug, Error)]
pub enum PrivilegeError {
    /// A `SUDO_*` variable is missing or not a plain decimal id.
    #[error("refusing to run under sudo: {var}={value:?} is not a valid id (expected a decimal number); gopeek reads the invoking user from SUDO_UID and SUDO_GID, which sudo sets")]
    BadEnv {
        /// The variable.
        var: &'static str,
        /// Its (untrusted) value, quoted.
        value: String,
    },
    /// A system call of the drop failed.
    #[error("cannot drop privileges to uid {uid}: {step} failed: {errno}")]
    Drop {
        /// The uid gopeek tried to become.
        uid: u32,
        /// The call that failed.
        step: &'static str,
        /// The kernel's answer.
        errno: nix::errno::Errno,
    },
    /// The drop appeared to succeed but the process can still act as root.
    #[error("privilege drop to uid {uid} did not stick: {what}; refusing to continue")]
    StillPrivileged {
        /// The uid gopeek tried to become.
        uid: u32,
        /// What was found.
        what: String,
    },
}

/// Parses a uid/gid from the environment: 1 to 10 ASCII digits, no sign,
/// no spaces, no leading zero, below `u32::MAX` (which means "unchanged"
/// to the set*id calls).
fn parse_id(var: &'static str, value: &OsStr) -> Result<u32, PrivilegeError> {
    let bad = || PrivilegeError::BadEnv {
        var,
        value: value.to_string_lossy().chars().take(64).collect(),
    };
    let b = value.as_bytes();
    if b.is_empty() || b.len() > 10 || !b.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    if b.len() > 1 && b[0] == b'0' {
        return Err(bad());
    }
    let v: u64 = std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    if v >= u64::from(u32::MAX) {
        return Err(bad());
    }
    Ok(v as u32)
}

/// A user name fit for a log line: what `useradd` accepts (letters, digits,
/// `_`, `.`, `-`, a trailing `$`), at most 32 bytes; anything else is
/// replaced by `?` so that a crafted `SUDO_USER` cannot forge log content.
fn sanitize_user(v: Option<&OsStr>) -> String {
    let Some(v) = v else { return "?".into() };
    let b = v.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 32
        && b.iter().enumerate().all(|(i, &c)| {
            c.is_ascii_alphanumeric()
                || c == b'_'
                || c == b'.'
                || c == b'-'
                || (c == b'$' && i == b.len() - 1)
        });
    if ok {
        String::from_utf8_lossy(b).into_owned()
    } else {
        "?".into()
    }
}

/// The sudo context from explicit values (split out of [`sudo_context`] so
/// the parsing is testable without being root).
fn context_from(
    real_uid: u32,
    effective_uid: u32,
    sudo_uid: Option<&OsStr>,
    sudo_gid: Option<&OsStr>,
    sudo_user: Option<&OsStr>,
) -> Result<Option<SudoContext>, PrivilegeError> {
    // Only a real root process has something to drop. (A set-uid install of
    // gopeek is not supported: real uid != 0 means "run as is".)
    if real_uid != 0 || effective_uid != 0 {
        return Ok(None);
    }
    let Some(sudo_uid) = sudo_uid else {
        return Ok(None);
    };
    let uid = parse_id("SUDO_UID", sudo_uid)?;
    let gid = match sudo_gid {
        Some(g) => parse_id("SUDO_GID", g)?,
        None => {
            return Err(PrivilegeError::BadEnv {
                var: "SUDO_GID",
                value: "(unset)".into(),
            })
        }
    };
    if uid == 0 {
        // root ran `sudo gopeek`: it is root either way.
        return Ok(None);
    }
    Ok(Some(SudoContext {
        uid,
        gid,
        user: sanitize_user(sudo_user),
    }))
}

/// `Some` when gopeek runs as root through `sudo` for a non-root user, so
/// that the policy, the audit log and the privilege drop apply.
pub fn sudo_context() -> Result<Option<SudoContext>, PrivilegeError> {
    // SAFETY: getuid/geteuid cannot fail.
    let (ruid, euid) = unsafe { (libc::getuid(), libc::geteuid()) };
    context_from(
        ruid,
        euid,
        std::env::var_os("SUDO_UID").as_deref(),
        std::env::var_os("SUDO_GID").as_deref(),
        std::env::var_os("SUDO_USER").as_deref(),
    )
}

fn check(uid: u32, step: &'static str, rc: libc::c_int) -> Result<(), PrivilegeError> {
    if rc == 0 {
        Ok(())
    } else {
        Err(PrivilegeError::Drop {
            uid,
            step,
            errno: nix::errno::Errno::last(),
        })
    }
}

/// Becomes `ctx.uid`/`ctx.gid` for the rest of the process's life, on every
/// thread (glibc broadcasts set*id calls to all threads), with the primary
/// group as the only group, no capabilities, `NO_NEW_PRIVS`, and not
/// dumpable (so the invoking user cannot ptrace gopeek and borrow its
/// root-opened `/proc/PID/mem`). Then verifies the drop.
///
/// Descriptors opened before (`/proc/PID/mem`, the output file, the
/// syslog socket) and the ptrace attachment survive: the kernel checks
/// access when they are opened or attached, not when they are used.
pub fn drop_to(ctx: &SudoContext) -> Result<(), PrivilegeError> {
    let (uid, gid) = (ctx.uid, ctx.gid);
    let groups = [gid as libc::gid_t];
    // SAFETY: plain syscalls with valid arguments.
    unsafe {
        check(uid, "setgroups", libc::setgroups(1, groups.as_ptr()))?;
        check(uid, "setresgid", libc::setresgid(gid, gid, gid))?;
        check(uid, "setresuid", libc::setresuid(uid, uid, uid))?;
        check(
            uid,
            "prctl(PR_SET_NO_NEW_PRIVS)",
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0),
        )?;
        check(
            uid,
            "prctl(PR_SET_DUMPABLE)",
            libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0),
        )?;
    }
    verify_dropped(ctx)
}

/// Effective and permitted capability sets of the calling thread.
fn capabilities() -> Result<(u64, u64), nix::errno::Errno> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut hdr = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget with a v3 header and room for two data structs.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) };
    if rc != 0 {
        return Err(nix::errno::Errno::last());
    }
    let eff = u64::from(data[0].effective) | (u64::from(data[1].effective) << 32);
    let prm = u64::from(data[0].permitted) | (u64::from(data[1].permitted) << 32);
    Ok((eff, prm))
}

/// Checks that the calling process is `ctx.uid`/`ctx.gid` with nothing to
/// regain: all three uids and gids, the group list, empty capability
/// sets, and `setuid(0)` / `setgid(0)` refused.
fn verify_dropped(ctx: &SudoContext) -> Result<(), PrivilegeError> {
    let fail = |what: String| PrivilegeError::StillPrivileged { uid: ctx.uid, what };
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: out-pointers to locals.
    unsafe { libc::getresuid(&mut r, &mut e, &mut s) };
    if (r, e, s) != (ctx.uid, ctx.uid, ctx.uid) {
        return Err(fail(format!("uids are {r}/{e}/{s}")));
    }
    // SAFETY: as above.
    unsafe { libc::getresgid(&mut r, &mut e, &mut s) };
    if (r, e, s) != (ctx.gid, ctx.gid, ctx.gid) {
        return Err(fail(format!("gids are {r}/{e}/{s}")));
    }
    let mut groups = [0 as libc::gid_t; 64];
    // SAFETY: the buffer holds 64 entries.
    let n = unsafe { libc::getgroups(64, groups.as_mut_ptr()) };
    if n < 0 || groups[..n as usize].iter().any(|&g| g != ctx.gid) {
        return Err(fail("supplementary groups remain".into()));
    }
    match capabilities() {
        Ok((0, 0)) => {}
        Ok((eff, prm)) => {
            return Err(fail(format!(
                "capabilities remain (effective {eff:#x}, permitted {prm:#x})"
            )))
        }
        Err(e) => return Err(fail(format!("capget failed: {e}"))),
    }
    // SAFETY: these must fail; if one succeeded we report it and the
    // caller exits at once.
    if unsafe { libc::setuid(0) } == 0 {
        return Err(fail("setuid(0) succeeded".into()));
    }
    // SAFETY: as above.
    if unsafe { libc::setgid(0) } == 0 {
        return Err(fail("setgid(0) succeeded".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    #[test]
    fn ids_are_parsed_strictly() {
        assert_eq!(parse_id("SUDO_UID", os("1000")).unwrap(), 1000);
        assert_eq!(parse_id("SUDO_UID", os("0")).unwrap(), 0);
        assert_eq!(parse_id("SUDO_UID", os("4294967294")).unwrap(), 4294967294);
        for bad in [
            "",
            " 1000",
            "1000 ",
            "+1000",
            "-1",
            "01000",
            "0x3e8",
            "1e3",
            "4294967295",
            "99999999999",
            "1000\n",
            "١٠٠٠",
        ] {
            let e = parse_id("SUDO_UID", os(bad)).unwrap_err().to_string();
            assert!(e.contains("SUDO_UID="), "{bad:?}: {e}");
        }
    }

    #[test]
    fn context_only_for_real_root_with_sudo_vars() {
        let ctx = context_from(0, 0, Some(os("1000")), Some(os("1001")), Some(os("alice")))
            .unwrap()
            .unwrap();
        assert_eq!(
            ctx,
            SudoContext {
                uid: 1000,
                gid: 1001,
                user: "alice".into()
            }
        );
        // Not root, or root without sudo, or root that ran sudo: nothing to drop.
        assert!(context_from(1000, 1000, Some(os("5")), Some(os("5")), None)
            .unwrap()
            .is_none());
        assert!(context_from(0, 0, None, None, None).unwrap().is_none());
        assert!(context_from(0, 0, Some(os("0")), Some(os("0")), None)
            .unwrap()
            .is_none());
        // Half a sudo environment is refused, not guessed.
        assert!(context_from(0, 0, Some(os("1000")), None, None).is_err());
        assert!(context_from(0, 0, Some(os("1000")), Some(os("x")), None).is_err());
        // A crafted SUDO_USER cannot reach the log verbatim.
        let c = context_from(0, 0, Some(os("7")), Some(os("7")), Some(os("a b\nc")))
            .unwrap()
            .unwrap();
        assert_eq!(c.user, "?");
    }
}
