//! The `-o` file, created as the invoking user: by a short-lived thread
//! that switched only its own credentials, `O_CREAT|O_EXCL|O_NOFOLLOW`, an
//! existing file reused only if it is not a symlink and, when regular, is
//! owned by that user.

use super::{check, PrivilegeError, SudoContext};
use std::fs::File;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why the `-o` output file could not be created.
#[derive(Debug, Error)]
pub enum OutputFileError {
    /// The final component is a symbolic link (possibly planted by someone
    /// else to redirect a privileged write).
    #[error("refusing to write the output to {}: it is a symbolic link; give the real path", path.display())]
    Symlink {
        /// The path given to `-o`.
        path: PathBuf,
    },
    /// An existing regular file belongs to another user.
    #[error("refusing to overwrite {}: it exists and is owned by uid {owner}, not by uid {uid} (who runs gopeek); remove it or choose another path", path.display())]
    NotOwned {
        /// The path given to `-o`.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The user gopeek writes as.
        uid: u32,
    },
    /// Any other failure (no such directory, permission denied...), as the
    /// user the file is created for.
    #[error("cannot create the output file {}: {source}", path.display())]
    Io {
        /// The path given to `-o`.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

impl OutputFileError {
    /// True for the refusals made on purpose (symlink, foreign owner, or
    /// permission denied as the invoking user), which exit with code 4.
    pub fn is_refusal(&self) -> bool {
        match self {
            OutputFileError::Symlink { .. } | OutputFileError::NotOwned { .. } => true,
            OutputFileError::Io { source, .. } => source.kind() == io::ErrorKind::PermissionDenied,
        }
    }
}

/// Switches only the *calling thread* to the user (raw syscalls: glibc's
/// wrappers would switch every thread). Used on a throw-away thread.
fn become_user_this_thread(ctx: &SudoContext) -> Result<(), PrivilegeError> {
    let (uid, gid) = (ctx.uid as libc::c_long, ctx.gid as libc::c_long);
    let groups = [ctx.gid as libc::gid_t];
    // SAFETY: raw set*id syscalls with valid arguments; they affect only
    // this thread, which ends right after opening the file.
    unsafe {
        check(
            ctx.uid,
            "setgroups",
            libc::syscall(libc::SYS_setgroups, 1 as libc::c_long, groups.as_ptr()) as libc::c_int,
        )?;
        check(
            ctx.uid,
            "setresgid",
            libc::syscall(libc::SYS_setresgid, gid, gid, gid) as libc::c_int,
        )?;
        check(
            ctx.uid,
            "setresuid",
            libc::syscall(libc::SYS_setresuid, uid, uid, uid) as libc::c_int,
        )?;
    }
    Ok(())
}

fn open_output_here(path: &Path, owner: u32) -> Result<File, OutputFileError> {
    let io_err = |source: io::Error| {
        if source.raw_os_error() == Some(libc::ELOOP) {
            OutputFileError::Symlink { path: path.into() }
        } else {
            OutputFileError::Io {
                path: path.into(),
                source,
            }
        }
    };
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true) // O_CREAT|O_EXCL: never follows a final symlink
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY)
        .open(path);
    match created {
        Ok(f) => return Ok(f),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err(e)),
    }
    // It exists: reuse it only if it is not a symlink and, for a regular
    // file, is the writer's own (a FIFO or /dev/null is fine).
    let f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY)
        .open(path)
        .map_err(io_err)?;
    let meta = f.metadata().map_err(io_err)?;
    if meta.file_type().is_file() {
        if meta.uid() != owner {
            return Err(OutputFileError::NotOwned {
                path: path.into(),
                owner: meta.uid(),
                uid: owner,
            });
        }
        f.set_len(0).map_err(io_err)?;
    }
    Ok(f)
}

/// Opens `path` for the dump output. Under sudo (`as_user`), the file is
/// created *as the invoking user* (owner, group and permission checks are
/// theirs, never root's) by a helper thread that switches its own
/// credentials only and then ends. Never follows a symlink in the final
/// component (`O_NOFOLLOW`; `O_EXCL` for a new file); an existing regular
/// file must belong to the writer and is truncated.
///
/// Call it before installing the no-write-open seccomp filter.
pub fn create_output(path: &Path, as_user: Option<&SudoContext>) -> Result<File, OutputFileError> {
    match as_user {
        // SAFETY: geteuid cannot fail.
        None => open_output_here(path, unsafe { libc::geteuid() }),
        Some(ctx) => {
            let (ctx, p) = (ctx.clone(), path.to_path_buf());
            let opener = std::thread::Builder::new()
                .name("gopeek-output".into())
                .spawn(move || -> Result<File, OutputFileError> {
                    become_user_this_thread(&ctx).map_err(|e| OutputFileError::Io {
                        path: p.clone(),
                        source: io::Error::other(e.to_string()),
                    })?;
                    open_output_here(&p, ctx.uid)
                })
                .map_err(|source| OutputFileError::Io {
                    path: path.into(),
                    source,
                })?;
            opener.join().unwrap_or_else(|_| {
                Err(OutputFileError::Io {
                    path: path.into(),
                    source: io::Error::other("the output opener thread panicked"),
                })
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_never_follows_a_symlink_and_refuses_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("victim");
        std::fs::write(&target, "keep").unwrap();
        let link = dir.path().join("out.txt");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = create_output(&link, None).unwrap_err();
        assert!(matches!(e, OutputFileError::Symlink { .. }), "{e}");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(e.is_refusal());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        // A dangling symlink is not created through either.
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert!(matches!(
            create_output(&dangling, None).unwrap_err(),
            OutputFileError::Symlink { .. }
        ));
        assert!(!dir.path().join("nowhere").exists());
        // A new file is created; an existing own file is truncated.
        let new = dir.path().join("new.txt");
        use std::io::Write;
        create_output(&new, None)
            .unwrap()
            .write_all(b"abc")
            .unwrap();
        create_output(&new, None).unwrap();
        assert_eq!(std::fs::read(&new).unwrap(), b"");
        // A file owned by someone else is refused (only testable as root).
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            let foreign = dir.path().join("foreign.txt");
            std::fs::write(&foreign, "theirs").unwrap();
            std::os::unix::fs::chown(&foreign, Some(12345), None).unwrap();
            let e = create_output(&foreign, None).unwrap_err();
            assert!(
                matches!(e, OutputFileError::NotOwned { owner: 12345, .. }),
                "{e}"
            );
            assert_eq!(std::fs::read_to_string(&foreign).unwrap(), "theirs");
        }
    }

    #[test]
    fn output_is_created_as_the_invoking_user() {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("note: skipping, needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o1777),
        )
        .unwrap();
        let ctx = SudoContext {
            uid: 54321,
            gid: 54322,
            user: "t".into(),
        };
        let p = dir.path().join("o.txt");
        create_output(&p, Some(&ctx)).unwrap();
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!((m.uid(), m.gid()), (54321, 54322));
        // This thread (and so the process) is still root.
        // SAFETY: geteuid has no preconditions and cannot fail.
        assert_eq!(unsafe { libc::geteuid() }, 0);
        // Permission checks are the user's: a root-only directory is refused.
        let private = dir.path().join("private");
        std::fs::create_dir(&private).unwrap();
        std::fs::set_permissions(
            &private,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let e = create_output(&private.join("x"), Some(&ctx)).unwrap_err();
        assert!(e.is_refusal(), "{e}");
        assert!(!private.join("x").exists());
    }
}
