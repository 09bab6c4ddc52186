//! ELF core files (ET_CORE) as a read-only image of a dead process: its
//! memory from the PT_LOAD segments, its threads and registers from the
//! NT_PRSTATUS notes, its command line (NT_PRPSINFO), its auxiliary vector
//! (NT_AUXV: where the executable was loaded) and its file mappings
//! (NT_FILE: which executable, and which ranges came from it).
//!
//! Cores written by the kernel, by gdb's `gcore` and by qemu-user have the
//! same shape. Everything here is bounds-checked: a truncated or corrupt
//! core gives an error that names what is missing, or memory reads that
//! fail for the ranges that are gone, never a panic.

pub mod exe;
mod memory;
mod notes;
#[cfg(test)]
mod tests;

pub use memory::{CoreMemory, ExeRange};
pub use notes::{CoreThread, FileMapping};

use crate::binary::cursor::Bytes;
use crate::binary::elf::Arch;
use object::elf::{FileHeader64, ProgramHeader64, ET_CORE, PF_W, PT_LOAD, PT_NOTE};
use object::read::elf::{FileHeader, ProgramHeader};
use object::LittleEndian as LE;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why a core file cannot be read.
#[allow(missing_docs)] // each variant's #[error] text documents it
#[derive(Debug, Error)]
pub enum CoreError {
    #[error("cannot open the core {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not an ELF core file ({why}); pass a core written by the kernel, gdb's gcore or qemu")]
    NotCore { path: PathBuf, why: String },
    #[error("{path}: the core is truncated or corrupt: {what}")]
    Corrupt { path: PathBuf, what: String },
    #[error("the executable {exe} does not belong to the core {core}: {why}; pass the binary that wrote the core with --exe")]
    ExeMismatch {
        core: PathBuf,
        exe: PathBuf,
        why: String,
    },
    #[error("{path}: the core names no executable (no NT_FILE note, no command line); pass it with --exe")]
    NoExecutable { path: PathBuf },
    #[error("{path}: unsupported core architecture (machine {machine}); gopeek reads linux/amd64 and linux/arm64 cores")]
    Architecture { path: PathBuf, machine: u16 },
}

impl crate::exit::ExitStatus for CoreError {
    fn exit_code(&self) -> u8 {
        match self {
            // Not a core of a program gopeek reads.
            CoreError::NotCore { .. }
            | CoreError::Architecture { .. }
            | CoreError::ExeMismatch { .. } => crate::exit::NOT_GO,
            CoreError::Open { .. } | CoreError::Corrupt { .. } => crate::exit::FAILURE,
            CoreError::NoExecutable { .. } => crate::exit::USAGE,
        }
    }
}

/// One PT_LOAD segment of the core: `memsz` bytes at `vaddr`, of which the
/// first `present` are in the file at `offset` (the rest were left out:
/// read-only file mappings, or a truncated file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreSegment {
    /// Start address in the dead process.
    pub vaddr: u64,
    /// Size of the mapping.
    pub memsz: u64,
    /// Where its bytes start in the core file.
    pub(crate) offset: u64,
    /// Bytes of it the core file really holds (filesz cut at the file's
    /// end).
    pub present: u64,
    /// What the segment header promised (`present < filesz`: truncated).
    pub filesz: u64,
    /// Mapped writable (never filled in from the executable).
    pub writable: bool,
}

/// A parsed core file.
pub struct CoreFile {
    path: PathBuf,
    bytes: Bytes,
    arch: Arch,
    segments: Vec<CoreSegment>,
    threads: Vec<CoreThread>,
    files: Vec<FileMapping>,
    auxv: Vec<(u64, u64)>,
    pid: Option<i32>,
    psargs: Option<String>,
    fname: Option<String>,
}

/// AT_PHDR: where the executable's program headers are in memory.
pub const AT_PHDR: u64 = 3;
/// AT_ENTRY: the executable's entry point in memory.
pub const AT_ENTRY: u64 = 9;

impl CoreFile {
    /// Maps and parses the core at `path`.
    pub fn open(path: &Path) -> Result<CoreFile, CoreError> {
        let file = std::fs::File::open(path).map_err(|source| CoreError::Open {
            path: path.into(),
            source,
        })?;
        // SAFETY: a private read-only mapping; a file truncated under us
        // may fault, the risk every reader of a mapped file takes.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|source| CoreError::Open {
            path: path.into(),
            source,
        })?;
        Self::parse(path.into(), Bytes::Mapped(map))
    }

    /// Parses a core held in memory (unit tests, the fuzzer).
    pub fn from_vec(name: &str, data: Vec<u8>) -> Result<CoreFile, CoreError> {
        Self::parse(PathBuf::from(name), Bytes::Owned(data))
    }

    fn parse(path: PathBuf, bytes: Bytes) -> Result<CoreFile, CoreError> {
        let not_core = |why: &str| CoreError::NotCore {
            path: path.clone(),
            why: why.to_string(),
        };
        let corrupt = |what: String| CoreError::Corrupt {
            path: path.clone(),
            what,
        };
        let data: &[u8] = &bytes;
        let hdr = FileHeader64::<LE>::parse(data)
            .map_err(|_| not_core("no 64-bit little-endian ELF header"))?;
        let e = LE;
        if hdr.e_type(e) != ET_CORE {
            return Err(not_core(&format!(
                "ELF type {} is not ET_CORE (4); is this the executable?",
                hdr.e_type(e)
            )));
        }
        let arch = match hdr.e_machine(e) {
            object::elf::EM_X86_64 => Arch::Amd64,
            object::elf::EM_AARCH64 => Arch::Arm64,
            machine => return Err(CoreError::Architecture { path, machine }),
        };
        let phdrs: &[ProgramHeader64<LE>] = hdr
            .program_headers(e, data)
            .map_err(|_| corrupt("the program headers are missing".into()))?;
        let mut segments = Vec::new();
        let mut parsed = notes::Parsed::default();
        let mut saw_notes = false;
        for ph in phdrs {
            match ph.p_type(e) {
                PT_LOAD => {
                    let offset = ph.p_offset(e);
                    let filesz = ph.p_filesz(e);
                    let avail = (data.len() as u64).saturating_sub(offset);
                    segments.push(CoreSegment {
                        vaddr: ph.p_vaddr(e),
                        memsz: ph.p_memsz(e),
                        offset,
                        present: filesz.min(avail).min(ph.p_memsz(e)),
                        filesz,
                        writable: ph.p_flags(e) & PF_W != 0,
                    });
                }
                PT_NOTE => {
                    let mut it = match ph.notes(e, data) {
                        Ok(Some(it)) => it,
                        Ok(None) => continue,
                        Err(_) => {
                            return Err(corrupt(format!(
                                "the PT_NOTE segment at file offset {:#x} ({} bytes) is cut off",
                                ph.p_offset(e),
                                ph.p_filesz(e)
                            )))
                        }
                    };
                    saw_notes = true;
                    loop {
                        match it.next() {
                            Ok(Some(n)) => parsed.add(arch, n.name(), n.n_type(e), n.desc()),
                            Ok(None) => break,
                            Err(_) => {
                                return Err(corrupt(
                                    "a note in the PT_NOTE segment is malformed".into(),
                                ))
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        if !saw_notes {
            return Err(corrupt(
                "it has no PT_NOTE segment (no threads, registers or file mappings)".into(),
            ));
        }
        if parsed.threads.is_empty() {
            return Err(corrupt(
                "it has no NT_PRSTATUS note (no thread registers)".into(),
            ));
        }
        segments.sort_by_key(|s| s.vaddr);
        Ok(CoreFile {
            path,
            bytes,
            arch,
            segments,
            threads: parsed.threads,
            files: parsed.files,
            auxv: parsed.auxv,
            pid: parsed.pid,
            psargs: parsed.psargs,
            fname: parsed.fname,
        })
    }

    /// The core's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The dead process's architecture.
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// Its PT_LOAD segments, sorted by address.
    pub fn segments(&self) -> &[CoreSegment] {
        &self.segments
    }

    /// Its threads, in note order (the first is the one that got the
    /// signal).
    pub fn threads(&self) -> &[CoreThread] {
        &self.threads
    }

    /// The NT_FILE mappings (empty when the writer left the note out, as
    /// qemu does).
    pub fn files(&self) -> &[FileMapping] {
        &self.files
    }

    /// One entry of the auxiliary vector.
    pub fn auxv(&self, key: u64) -> Option<u64> {
        self.auxv.iter().find(|(k, _)| *k == key).map(|&(_, v)| v)
    }

    /// The process id (NT_PRPSINFO, else the first thread's).
    pub fn pid(&self) -> i32 {
        self.pid
            .or_else(|| self.threads.first().map(|t| t.tid))
            .unwrap_or(0)
    }

    /// The command line's first 80 bytes (NT_PRPSINFO).
    pub fn psargs(&self) -> Option<&str> {
        self.psargs.as_deref()
    }

    /// The executable's name, cut at 15 bytes (NT_PRPSINFO).
    pub fn fname(&self) -> Option<&str> {
        self.fname.as_deref()
    }

    /// How many segments the file cuts short (a truncated core).
    pub fn truncated_segments(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| s.present < s.filesz.min(s.memsz))
            .count()
    }

    /// The executable's path, as the NT_FILE note names it: the mapping
    /// that contains AT_ENTRY, else the first mapping at file offset 0.
    pub fn exe_path_from_notes(&self) -> Option<&str> {
        if let Some(entry) = self.auxv(AT_ENTRY) {
            if let Some(f) = self
                .files
                .iter()
                .find(|f| f.start <= entry && entry < f.end)
            {
                return Some(&f.path);
            }
        }
        self.files
            .iter()
            .find(|f| f.file_offset == 0)
            .map(|f| f.path.as_str())
    }

    /// Bytes at `addr` that the core file itself holds (no executable
    /// fill-in): what the exe check compares against.
    pub fn core_bytes(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let i = self
            .segments
            .partition_point(|s| s.vaddr <= addr)
            .checked_sub(1)?;
        let s = &self.segments[i];
        let off = addr - s.vaddr;
        let end = off.checked_add(len as u64)?;
        if end > s.present {
            return None;
        }
        let start = s.offset.checked_add(off)?;
        self.bytes
            .get(usize::try_from(start).ok()?..usize::try_from(start + len as u64).ok()?)
    }
}
