//! What `/proc` says about a live process: its executable, its mappings and
//! load bias, its threads and their states, who traces it.
//!
//! Everything here races with the target: threads appear and vanish between
//! two reads, and the process may exit at any moment. Functions therefore
//! return `io::Result` with the kernel's error kinds intact (`NotFound` /
//! ESRCH mean "gone", which callers treat as normal), read bounded amounts,
//! and never panic on odd contents (a `comm` may contain `)` or spaces).
//!
//! `/proc/PID/stat` is parsed by the `procfs` crate ([`Stat`]), opened here
//! so that open errors keep their errno. Kept by hand, on purpose:
//! `status` (procfs's parser rejects a status whose `Name:` is not UTF-8,
//! which is what a non-ASCII executable name cut at 15 bytes gives, and
//! requires some twenty fields that sandboxed kernels may not print),
//! `maps` (procfs's parser panics on a mapped file named `/SYSV1`, fails
//! the whole file on one odd line, and trims path text) and the thread
//! list (a plain directory listing; procfs opens every task directory,
//! 4-6 times slower, and the list is re-read while the target is held).

use super::ProcessError;
use crate::binary::elf::GoBinary;
use procfs::process::{Stat, StatFlags};
use procfs::{FromBufRead, FromRead, ProcError, ProcessCGroups};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// Largest `/proc` text file read whole (status, stat, comm are < 2 KiB).
const MAX_SMALL_FILE: u64 = 64 * 1024;
/// Upper bound on `/proc/PID/maps` lines read (the kernel's default
/// `vm.max_map_count` is 65530; this leaves room for raised limits).
const MAX_MAPS_LINES: usize = 4 << 20;
/// Upper bound on the threads listed for one process (Go's default
/// `debug.SetMaxThreads` is 10000).
const MAX_THREADS: usize = 1 << 20;

/// A small `/proc` text file, whole (bounded), invalid UTF-8 replaced:
/// a `Name:` or `comm` is whatever bytes the target chose, cut at 15.
pub(crate) fn read_small(path: &str) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut buf = Vec::with_capacity(2048);
    (&mut f).take(MAX_SMALL_FILE).read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Maps "process is gone" to [`ProcessError::NoSuchProcess`] and anything
/// else to [`ProcessError::Proc`], for callers that need a `ProcessError`.
pub(crate) fn proc_error(pid: i32, path: impl Into<PathBuf>, e: io::Error) -> ProcessError {
    if is_gone(&e) {
        ProcessError::NoSuchProcess { pid }
    } else {
        ProcessError::Proc {
            path: path.into(),
            source: e,
        }
    }
}

/// True when an error from `/proc` or a syscall means the process or
/// thread no longer exists (ENOENT, ESRCH): the normal end of a race, not
/// a failure.
pub(crate) fn is_gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH)
}

/// `/proc/PID/exe`, the path to *open* to read the target's executable.
///
/// Opening this magic link works even when the file was deleted or
/// replaced since the process started, and across mount namespaces (a
/// containerised target's `/usr/bin/app` is not gopeek's `/usr/bin/app`),
/// where the text of [`exe_path`] would name the wrong file or none.
pub fn exe_open_path(pid: i32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/exe"))
}

/// The target's executable path as the kernel prints it (for display and
/// reports; may end in " (deleted)" and is relative to the target's mount
/// namespace; open [`exe_open_path`] instead).
pub fn exe_path(pid: i32) -> io::Result<PathBuf> {
    std::fs::read_link(exe_open_path(pid))
}

/// The ELF `e_machine` of the target's executable, read from the file
/// behind `/proc/PID/exe` (not from memory), so that an unsupported target
/// (an i386 program, say) is refused before any thread is stopped.
pub(crate) fn exe_machine(pid: i32) -> io::Result<u16> {
    let mut hdr = [0u8; 20];
    File::open(exe_open_path(pid))?.read_exact(&mut hdr)?;
    if &hdr[..4] != b"\x7fELF" {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not an ELF executable",
        ));
    }
    Ok(u16::from_le_bytes([hdr[18], hdr[19]]))
}

/// One line of `/proc/PID/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// First address of the mapping.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// `r`: readable by the process.
    pub readable: bool,
    /// `w`: writable by the process.
    pub writable: bool,
    /// `x`: executable.
    pub executable: bool,
    /// `s` (shared) rather than `p` (private, copy-on-write).
    pub shared: bool,
    /// Offset into the mapped file.
    pub offset: u64,
    /// Major number of the device of the mapped file (0 if anonymous).
    pub dev_major: u32,
    /// Minor number of that device.
    pub dev_minor: u32,
    /// Inode of the mapped file (0 if anonymous).
    pub inode: u64,
    /// The path or pseudo-name (`[heap]`, `[stack]`), possibly empty or
    /// ending in " (deleted)"; kept verbatim.
    pub path: String,
}

impl Mapping {
    /// Parses one maps line; `None` for a malformed line (skipped, never a
    /// panic).
    fn parse(line: &str) -> Option<Mapping> {
        let mut it = line.splitn(6, ' ');
        let range = it.next()?;
        let perms = it.next()?.as_bytes();
        let offset = it.next()?;
        let dev = it.next()?;
        let inode = it.next()?;
        let path = it
            .next()
            .unwrap_or("")
            .trim_start()
            .trim_end_matches('\n')
            .to_string();
        let (s, e) = range.split_once('-')?;
        let (maj, min) = dev.split_once(':')?;
        if perms.len() < 4 {
            return None;
        }
        Some(Mapping {
            start: u64::from_str_radix(s, 16).ok()?,
            end: u64::from_str_radix(e, 16).ok()?,
            readable: perms[0] == b'r',
            writable: perms[1] == b'w',
            executable: perms[2] == b'x',
            shared: perms[3] == b's',
            offset: u64::from_str_radix(offset, 16).ok()?,
            dev_major: u32::from_str_radix(maj, 16).ok()?,
            dev_minor: u32::from_str_radix(min, 16).ok()?,
            inode: inode.trim().parse().ok()?,
            path,
        })
    }
}

/// All mappings of the process, in address order (bounded; malformed lines
/// skipped): what [`exe_mapping`] searches, public for the tests that pick
/// readable ranges to compare.
pub fn read_maps(pid: i32) -> io::Result<Vec<Mapping>> {
    let f = File::open(format!("/proc/{pid}/maps"))?;
    let mut out = Vec::new();
    for line in BufReader::new(f).lines().take(MAX_MAPS_LINES) {
        if let Some(m) = Mapping::parse(&line?) {
            out.push(m);
        }
    }
    Ok(out)
}

/// The first mapping of the target's executable with file offset 0: the
/// anchor of the load bias and the place where the ELF header is mapped.
///
/// The executable is recognised by the device and inode of the file behind
/// `/proc/PID/exe` (via `stat`), not by path text, because the path may be
/// in another mount namespace or be marked " (deleted)". Fallbacks for
/// filesystems (overlayfs) whose `stat` device differs from the one maps
/// shows: the inode alone, then the path text.
pub fn exe_mapping(pid: i32) -> Result<Mapping, ProcessError> {
    let exe = exe_open_path(pid);
    let meta = std::fs::metadata(&exe).map_err(|e| proc_error(pid, &exe, e))?;
    let (maj, min) = (libc::major(meta.dev()), libc::minor(meta.dev()));
    let maps = read_maps(pid).map_err(|e| proc_error(pid, format!("/proc/{pid}/maps"), e))?;
    let first =
        |pred: &dyn Fn(&Mapping) -> bool| maps.iter().find(|m| m.offset == 0 && pred(m)).cloned();
    if let Some(m) = first(&|m| m.inode == meta.ino() && m.dev_major == maj && m.dev_minor == min) {
        return Ok(m);
    }
    if let Some(m) = first(&|m| m.inode == meta.ino() && m.inode != 0) {
        return Ok(m);
    }
    if let Ok(p) = exe_path(pid) {
        let p = p.to_string_lossy().into_owned();
        let p = p.strip_suffix(" (deleted)").unwrap_or(&p).to_string();
        if let Some(m) = first(&|m| m.path.strip_suffix(" (deleted)").unwrap_or(&m.path) == p) {
            return Ok(m);
        }
    }
    Err(ProcessError::ExeNotMapped { pid })
}

/// The load bias of the running executable: what to add to a link-time
/// address of `bin` to get the runtime address.
///
/// 0 for a non-PIE executable. For a PIE it is the start of the first
/// offset-0 mapping of the executable (see [`exe_mapping`]) minus the lowest
/// PT_LOAD address, page-aligned (Go PIE on amd64 links at 0x400000, not 0,
/// so the lowest address is not assumed to be 0).
pub fn load_bias(pid: i32, bin: &GoBinary) -> Result<u64, ProcessError> {
    if !bin.is_position_independent() {
        return Ok(0);
    }
    Ok(bias_of(exe_mapping(pid)?.start, bin))
}

/// [`load_bias`] from the start of the executable's mapping read earlier
/// (under sudo it is read before the privilege drop makes the maps file
/// unreadable). Only meaningful for a PIE.
pub(crate) fn bias_of(mapping_start: u64, bin: &GoBinary) -> u64 {
    mapping_start.wrapping_sub(bin.lowest_load_address().unwrap_or(0))
}

/// The thread ids of the process, sorted (from `/proc/PID/task`).
///
/// `NotFound` means the process is gone. Entries that are not numbers are
/// skipped; more than `MAX_THREADS` (2^20) threads is an error rather than a
/// silently truncated list.
pub fn thread_ids(pid: i32) -> io::Result<Vec<i32>> {
    let mut tids = Vec::new();
    for ent in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let ent = match ent {
            Ok(e) => e,
            Err(e) if is_gone(&e) => continue,
            Err(e) => return Err(e),
        };
        if let Some(tid) = ent.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) {
            tids.push(tid);
            if tids.len() > MAX_THREADS {
                return Err(io::Error::other(format!(
                    "process {pid} has more than {MAX_THREADS} threads"
                )));
            }
        }
    }
    tids.sort_unstable();
    Ok(tids)
}

/// Parses the text of a `/proc/.../stat` file (the command name may contain
/// spaces and `)`; the fields are found after the *last* `)`). A read error
/// keeps its errno; anything malformed is `InvalidData`.
fn parse_stat(r: impl Read) -> io::Result<Stat> {
    Stat::from_read(r).map_err(|e| match e {
        ProcError::Io(e, _) => e,
        ProcError::NotFound(_) => io::Error::from_raw_os_error(libc::ENOENT),
        ProcError::PermissionDenied(_) => io::Error::from_raw_os_error(libc::EACCES),
        _ => io::Error::new(io::ErrorKind::InvalidData, "malformed stat line"),
    })
}

/// Reads and parses one `/proc/.../stat` file (bounded).
fn read_stat(path: &str) -> io::Result<Stat> {
    parse_stat(File::open(path)?.take(MAX_SMALL_FILE))
}

/// The scheduler state letter of one thread (`t` = stopped by a tracer,
/// `T` = stopped by a signal, `Z` = zombie...), from
/// `/proc/PID/task/TID/stat`.
pub fn thread_state(pid: i32, tid: i32) -> io::Result<char> {
    Ok(read_stat(&format!("/proc/{pid}/task/{tid}/stat"))?.state)
}

/// The state letter of the process (of its main thread), from
/// `/proc/PID/stat`.
pub fn process_state(pid: i32) -> io::Result<char> {
    Ok(read_stat(&format!("/proc/{pid}/stat"))?.state)
}

/// True when `pid` is a kernel thread (PF_KTHREAD in the flags of
/// `/proc/PID/stat`): it has no executable and no user memory, so there is
/// nothing to inspect. False when the process is gone or unreadable.
pub(crate) fn is_kernel_thread(pid: i32) -> bool {
    read_stat(&format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.flags & StatFlags::PF_KTHREAD.bits() != 0)
}

/// The fields of `/proc/PID/status` gopeek uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcStatus {
    /// `Name:` (the comm, at most 15 bytes).
    pub name: String,
    /// First letter of `State:`.
    pub state: char,
    /// `Tgid:`: the process id.
    pub tgid: i32,
    /// `Pid:`: the thread id (equal to `tgid` for the main thread).
    pub pid: i32,
    /// `PPid:`: the parent process.
    pub ppid: i32,
    /// `TracerPid:`: the *thread* id of the tracer, 0 if untraced.
    pub tracer_pid: i32,
    /// Real, effective, saved and filesystem uid.
    pub uid: [u32; 4],
    /// Real, effective, saved and filesystem gid.
    pub gid: [u32; 4],
    /// `Threads:` (0 if absent).
    pub threads: u32,
}

impl ProcStatus {
    /// Parses the text of a status file; unknown or malformed fields are
    /// left at their defaults. `None` if there is no `Pid:` line at all.
    fn parse(text: &str) -> Option<ProcStatus> {
        let mut st = ProcStatus::default();
        let mut saw_pid = false;
        let ids = |v: &str| {
            let mut out = [0u32; 4];
            for (slot, tok) in out.iter_mut().zip(v.split_whitespace()) {
                *slot = tok.parse().unwrap_or(0);
            }
            out
        };
        for line in text.lines() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let v = v.trim();
            match k {
                "Name" => st.name = v.to_string(),
                "State" => st.state = v.chars().next().unwrap_or('?'),
                "Tgid" => st.tgid = v.parse().unwrap_or(0),
                "Pid" => {
                    st.pid = v.parse().unwrap_or(0);
                    saw_pid = true;
                }
                "PPid" => st.ppid = v.parse().unwrap_or(0),
                "TracerPid" => st.tracer_pid = v.parse().unwrap_or(0),
                "Uid" => st.uid = ids(v),
                "Gid" => st.gid = ids(v),
                "Threads" => st.threads = v.parse().unwrap_or(0),
                _ => {}
            }
        }
        saw_pid.then_some(st)
    }

    /// Reads `/proc/PID/status`.
    pub fn read(pid: i32) -> io::Result<ProcStatus> {
        Self::parse(&read_small(&format!("/proc/{pid}/status"))?)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed status file"))
    }

    /// Reads `/proc/PID/task/TID/status` (per-thread state and tracer).
    pub(crate) fn read_thread(pid: i32, tid: i32) -> io::Result<ProcStatus> {
        Self::parse(&read_small(&format!("/proc/{pid}/task/{tid}/status"))?)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed status file"))
    }
}

/// Who traces the process (its main thread): `Some(tracer thread id)` or
/// `None` when untraced. Public for the integration tests, which verify
/// that every detach path leaves the target untraced.
pub fn tracer_pid(pid: i32) -> io::Result<Option<i32>> {
    let t = ProcStatus::read(pid)?.tracer_pid;
    Ok((t != 0).then_some(t))
}

/// Like [`tracer_pid`] for one thread (threads are traced individually);
/// the integration tests check it for every thread after a release.
pub fn thread_tracer_pid(pid: i32, tid: i32) -> io::Result<Option<i32>> {
    let t = ProcStatus::read_thread(pid, tid)?.tracer_pid;
    Ok((t != 0).then_some(t))
}

/// The effective uid of the process (the `USER` column of `ps`); the
/// policy check and the permission hint use it. [`ProcStatus::uid`] has
/// all four.
pub(crate) fn process_uid(pid: i32) -> io::Result<u32> {
    Ok(ProcStatus::read(pid)?.uid[1])
}

/// The command name (`/proc/PID/comm`, trailing newline removed), e.g. to
/// name the tracer that already holds a target.
pub fn comm(pid: i32) -> io::Result<String> {
    Ok(read_small(&format!("/proc/{pid}/comm"))?
        .trim_end_matches('\n')
        .to_string())
}

/// True when the process has exited but is not reaped: its main thread is
/// `Z`/`X` and no live thread remains. (A main thread can also be a zombie
/// while other threads still run, after `pthread_exit` in main; that
/// process is alive and not reported as a zombie.)
pub fn is_zombie(pid: i32) -> io::Result<bool> {
    if !matches!(process_state(pid)?, 'Z' | 'X') {
        return Ok(false);
    }
    let tids = match thread_ids(pid) {
        Ok(t) => t,
        Err(e) if is_gone(&e) => return Ok(true),
        Err(e) => return Err(e),
    };
    Ok(tids
        .iter()
        .all(|&t| matches!(thread_state(pid, t), Ok('Z' | 'X') | Err(_))))
}

/// The control groups of the process (`/proc/PID/cgroup`, parsed by
/// procfs: one entry per hierarchy, the cgroup v2 one with hierarchy 0 and
/// no controllers). A malformed file is `InvalidData`.
pub(crate) fn cgroups(pid: i32) -> io::Result<ProcessCGroups> {
    let f = File::open(format!("/proc/{pid}/cgroup"))?;
    ProcessCGroups::from_buf_read(BufReader::new(f.take(MAX_SMALL_FILE))).map_err(|e| match e {
        ProcError::Io(e, _) => e,
        _ => io::Error::new(io::ErrorKind::InvalidData, "malformed cgroup file"),
    })
}

/// `/proc/sys/kernel/yama/ptrace_scope`, or `None` when Yama is not
/// enabled; quoted in the permission-denied message.
pub(crate) fn ptrace_scope() -> Option<u32> {
    read_small("/proc/sys/kernel/yama/ptrace_scope")
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_maps_lines() {
        let l = "00400000-0048f000 r-xp 00000000 fe:00 1234                               /usr/bin/app (deleted)";
        let m = Mapping::parse(l).unwrap();
        assert_eq!(
            (m.start, m.end, m.offset, m.inode),
            (0x400000, 0x48f000, 0, 1234)
        );
        assert!(m.readable && !m.writable && m.executable && !m.shared);
        assert_eq!((m.dev_major, m.dev_minor), (0xfe, 0));
        assert_eq!(m.path, "/usr/bin/app (deleted)");
        let anon = Mapping::parse("7ffd1000-7ffd2000 rw-p 00000000 00:00 0 ").unwrap();
        assert_eq!(anon.path, "");
        let anon = Mapping::parse("7ffd1000-7ffd2000 rw-p 00000000 00:00 0").unwrap();
        assert_eq!(anon.path, "");
        assert!(Mapping::parse("garbage").is_none());
        assert!(Mapping::parse("1-2 r 0 0:0 0").is_none());
    }

    #[test]
    fn stat_survives_odd_comm() {
        let line = |comm: &str, state: char| {
            format!(
                "12 ({comm}) {state} 1 12 12 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 4 0 \
                 1234 1000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
            )
        };
        let st = parse_stat(line("a) b", 'T').as_bytes()).unwrap();
        assert_eq!((st.pid, st.comm.as_str(), st.state), (12, "a) b", 'T'));
        let st = parse_stat(line("x\ny", 't').as_bytes()).unwrap();
        assert_eq!(st.state, 't');
        assert_eq!(st.flags, 4194560);
        // Not UTF-8 (a name cut inside a character) is read lossily.
        let raw: Vec<u8> = line("ab@", 'S')
            .bytes()
            .map(|b| if b == b'@' { 0xc3 } else { b })
            .collect();
        assert_eq!(parse_stat(&raw[..]).unwrap().state, 'S');
        let e = parse_stat(&b"12 (x"[..]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(e.to_string(), "malformed stat line");
    }

    #[test]
    fn parses_status() {
        let s = "Name:\tapp\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t10\nNgid:\t0\nPid:\t11\nPPid:\t1\n\
                 TracerPid:\t99\nUid:\t1000\t1001\t1002\t1003\nGid:\t5\t6\t7\t8\nThreads:\t4\n";
        let st = ProcStatus::parse(s).unwrap();
        assert_eq!(st.name, "app");
        assert_eq!(st.state, 'S');
        assert_eq!(
            (st.tgid, st.pid, st.ppid, st.tracer_pid, st.threads),
            (10, 11, 1, 99, 4)
        );
        assert_eq!(st.uid, [1000, 1001, 1002, 1003]);
        assert_eq!(st.gid, [5, 6, 7, 8]);
        assert!(ProcStatus::parse("Name: x\n").is_none());
    }

    #[test]
    fn reads_own_process() {
        let me = std::process::id() as i32;
        let st = ProcStatus::read(me).unwrap();
        assert_eq!(st.tgid, me);
        assert!(thread_ids(me).unwrap().contains(&me));
        assert!(matches!(thread_state(me, me).unwrap(), 'R' | 'S'));
        assert!(!is_zombie(me).unwrap());
        assert!(exe_mapping(me).is_ok());
        assert!(is_gone(&thread_ids(i32::MAX).unwrap_err()));
        assert!(is_gone(&process_state(i32::MAX).unwrap_err()));
        assert!(!is_kernel_thread(me));
        if let Some(kthreadd) = ProcStatus::read(2).ok().filter(|s| s.name == "kthreadd") {
            assert!(is_kernel_thread(kthreadd.pid));
        }
    }
}
