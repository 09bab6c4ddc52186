//! Go build information (`.go.buildinfo`): toolchain version, main package,
//! modules and build settings of a Go executable.
//!
//! gopeek picks struct layouts, wait-reason tables and traceback rules by the
//! Go version, and `DefaultGODEBUG` changes what the runtime itself would
//! print (for example `tracebacklabels`), so this is the first thing read
//! from a target. The record survives `-ldflags=-s -w`; when the section
//! headers are gone too, it is found by its magic in the data segments, the
//! way Go's own `debug/buildinfo` does.
//!
//! Layout (Go's `debug/buildinfo`, `cmd/link`'s `buildinfo` writer):
//!
//! ```text
//! +0   "\xff Go buildinf:"   14 bytes, 16-byte aligned
//! +14  pointer size          u8
//! +15  flags                 bit 0: big endian, bit 1: strings inline (Go 1.18+)
//! +16  (pre-1.18) pointer to the version string header, then to the modinfo one
//! +32  (1.18+) uvarint length + version, uvarint length + modinfo
//! ```
//!
//! The modinfo string is wrapped in two 16-byte sentinels and holds the
//! lines `runtime/debug.BuildInfo.String` writes; it is parsed with the
//! rules of `runtime/debug.ParseBuildInfo`. Everything in it is controlled
//! by whoever built the binary, so every length is bounded and every
//! malformed byte ends in a [`BuildInfoError`], never a panic.

use crate::binary::cursor::{slice_at, Cursor, ReadError};
use crate::binary::elf::GoBinary;
use crate::binary::version::GoVersion;
use crate::memory::{Memory, MemoryError};
use serde::Serialize;
use std::borrow::Cow;
use thiserror::Error;

/// The 14 bytes that start the build info record; exported so that other
/// readers (a live process, a core file) can find the record themselves.
pub(crate) const MAGIC: &[u8; 14] = b"\xff Go buildinf:";

/// Longest Go version string accepted. Real ones are under 100 bytes
/// (`devel go1.28-abcdef Tue Nov 28 ...`); the cap keeps a corrupt length
/// from becoming a huge allocation.
pub(crate) const MAX_VERSION_LEN: u64 = 256;

/// Longest modinfo string accepted (4 MiB). Large programs with thousands
/// of dependencies stay well under 1 MiB.
pub(crate) const MAX_MODINFO_LEN: u64 = 4 << 20;

/// Name used in [`ReadError`]s, so that a user knows which table was bad.
const WHAT: &str = "go.buildinfo";
const HEADER_SIZE: usize = 32;
const ALIGN: u64 = 16;
const FLAG_BIG_ENDIAN: u8 = 0x1;
const FLAG_VERSION_INLINE: u8 = 0x2;
/// The sentinel bytes `cmd/go` wraps modinfo in (`infoStart`/`infoEnd`).
const SENTINEL_LEN: usize = 16;
/// Caps on entries, so that 4 MiB of one-byte lines cannot turn into
/// hundreds of megabytes of empty strings.
const MAX_MODULES: usize = 100_000;
const MAX_SETTINGS: usize = 10_000;
/// Magic matches tried per segment when scanning a binary without section
/// headers (the magic can also occur as ordinary data, e.g. in programs
/// that link `debug/buildinfo`).
const MAX_CANDIDATES: usize = 16;

/// Why a binary's build information could not be read. Each message says
/// what was wrong in terms a user can act on.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BuildInfoError {
    /// Neither a `.go.buildinfo` section nor the magic in a data segment.
    #[error("no Go build information: not a Go binary, or built before Go 1.13")]
    NotFound,
    /// The bytes handed in do not start with [`MAGIC`].
    #[error("not Go build information: bad magic \"{}\" (expected \"\\xff Go buildinf:\")", .found.escape_ascii())]
    BadMagic {
        /// The first (up to 14) bytes that were found instead.
        found: Vec<u8>,
    },
    /// The pre-Go 1.18 form stores pointers, which can only be followed with
    /// the binary's memory image; [`BuildInfo::parse`] has only the bytes.
    #[error("build info uses the pointer format of Go 1.17 and older, which needs the binary's data segments: use BuildInfo::from_binary or BuildInfo::parse_with_memory")]
    PointerFormat,
    /// The pre-1.18 header declared a pointer size Go never used.
    #[error(
        "build info declares a pointer size of {0} bytes (only 4 and 8 exist): corrupt binary"
    )]
    PointerSize(u8),
    /// The record ended early, or a varint in it was corrupt.
    #[error("build info is truncated or corrupt: {0}")]
    Truncated(#[from] ReadError),
    /// A length field exceeds the sanity cap ([`MAX_VERSION_LEN`],
    /// [`MAX_MODINFO_LEN`]), or the module info has too many entries.
    #[error("build info {what} is too long: {len} (limit {limit}): corrupt binary")]
    TooLong {
        /// Which field ("Go version", "module info", "dependency list", ...).
        what: &'static str,
        /// The declared length or count.
        len: u64,
        /// The cap it exceeded.
        limit: u64,
    },
    /// A pre-1.18 pointer led outside the file-backed image.
    #[error("build info points outside the binary's data: {0}")]
    Memory(#[from] MemoryError),
    /// Go itself treats an empty version as "not a Go executable".
    #[error("build info has an empty Go version: corrupt binary")]
    EmptyVersion,
    /// A modinfo line that `runtime/debug.ParseBuildInfo` would also reject.
    #[error("malformed module information, line {line}: {reason}")]
    Modinfo {
        /// 1-based line number inside the modinfo text.
        line: usize,
        /// What was wrong with it.
        reason: String,
    },
}

/// A module as recorded in the binary, so that `gopeek info` can show the
/// exact dependency versions a process runs (the `mod`, `dep` and `=>`
/// lines of `go version -m`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub(crate) struct Module {
    /// Module path (`golang.org/x/net`).
    pub(crate) path: String,
    /// Module version (`v0.21.0`, `(devel)` for the main module).
    pub(crate) version: String,
    /// go.sum checksum (`h1:...`), empty when unknown.
    pub(crate) sum: String,
    /// The `replace` directive target that was actually built, if any.
    pub(crate) replace: Option<Box<Module>>,
}

/// Everything `go version -m` shows about an executable: gopeek uses the
/// version to choose runtime layouts and `DefaultGODEBUG` to reproduce
/// runtime output exactly; the rest is reported by `gopeek info`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct BuildInfo {
    /// Toolchain version string as stored (`go1.27.3`, `devel go1.28-...`).
    pub(crate) go_version: String,
    /// Import path of the main package (`cmd/go`, `example.com/app/cmd/app`).
    pub(crate) path: Option<String>,
    /// The main module (absent for binaries built outside module mode).
    pub(crate) main: Option<Module>,
    /// Dependency modules, in the order the binary lists them.
    pub(crate) deps: Vec<Module>,
    /// `build\tKEY=VALUE` lines in order (`-buildmode`, `-compiler`,
    /// `-ldflags`, `-trimpath`, `CGO_ENABLED`, `GOARCH`, `GOOS`, `GOAMD64`,
    /// `vcs...`, `DefaultGODEBUG`), with quoted keys and values unquoted.
    pub(crate) settings: Vec<(String, String)>,
}

impl BuildInfo {
    /// Reads the build info of an executable: the `.go.buildinfo` section
    /// when the section headers survived, otherwise a scan of the
    /// file-backed data segments for [`MAGIC`] at 16-byte aligned link
    /// addresses. Pre-1.18 pointers are followed through the binary's
    /// static image.
    pub fn from_binary(bin: &GoBinary) -> Result<BuildInfo, BuildInfoError> {
        let raw = locate_raw(bin)?;
        raw.into_build_info()
    }

    /// Parses the bytes of a `.go.buildinfo` section (or any buffer that
    /// starts at the magic), for callers that found the record themselves.
    /// Only the Go 1.18+ inline form can be read this way; the older pointer
    /// form yields [`BuildInfoError::PointerFormat`].
    pub fn parse(data: &[u8]) -> Result<BuildInfo, BuildInfoError> {
        read_raw(data, None)?.into_build_info()
    }

    /// Like [`BuildInfo::parse`], but follows the pointers of the pre-1.18
    /// form through `mem` (the unit tests' way into the pointer form;
    /// [`BuildInfo::from_binary`] takes the same path with the binary's
    /// static image).
    #[cfg(test)]
    pub(crate) fn parse_with_memory<M: Memory + ?Sized>(
        data: &[u8],
        mem: &M,
    ) -> Result<BuildInfo, BuildInfoError> {
        let mem: &dyn Memory = &mem;
        read_raw(data, Some(mem))?.into_build_info()
    }

    /// The value of a `build` setting such as `GOARCH` or `-ldflags`, so that
    /// callers need not search the list by hand.
    pub(crate) fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The `DefaultGODEBUG` setting (Go 1.21+): the GODEBUG defaults baked in
    /// from go.mod's `go` line, which decide e.g. whether tracebacks print
    /// pprof labels. `None` when the binary records none.
    pub fn default_godebug(&self) -> Option<&str> {
        self.setting("DefaultGODEBUG")
    }

    /// The toolchain version, parsed, for choosing per-version layouts.
    /// `None` when the string does not name a Go 1.x release.
    pub fn version(&self) -> Option<GoVersion> {
        GoVersion::parse(&self.go_version)
    }
}

/// The two strings of the record before the modinfo lines are parsed;
/// `modinfo` still has its sentinels.
struct Raw<'a> {
    version: Cow<'a, [u8]>,
    modinfo: Cow<'a, [u8]>,
}

impl Raw<'_> {
    fn into_build_info(self) -> Result<BuildInfo, BuildInfoError> {
        if self.version.is_empty() {
            return Err(BuildInfoError::EmptyVersion);
        }
        let go_version = String::from_utf8_lossy(&self.version).into_owned();
        let text = String::from_utf8_lossy(strip_sentinels(&self.modinfo));
        let mut bi = parse_modinfo(&text)?;
        bi.go_version = go_version;
        Ok(bi)
    }
}

/// Go keeps the modinfo only if it looks wrapped (`len >= 33` and a newline
/// just before the end sentinel); otherwise it is treated as empty.
fn strip_sentinels(m: &[u8]) -> &[u8] {
    let n = m.len();
    if n > 2 * SENTINEL_LEN && m[n - SENTINEL_LEN - 1] == b'\n' {
        &m[SENTINEL_LEN..n - SENTINEL_LEN]
    } else {
        &[]
    }
}

/// Decodes the header at the start of `data` and returns the two strings.
fn read_raw<'a>(data: &'a [u8], mem: Option<&dyn Memory>) -> Result<Raw<'a>, BuildInfoError> {
    let head = &data[..data.len().min(MAGIC.len())];
    if head != &MAGIC[..head.len()] {
        return Err(BuildInfoError::BadMagic {
            found: head.to_vec(),
        });
    }
    let hdr = slice_at(data, 0, HEADER_SIZE, WHAT)?;
    let ptr_size = hdr[14];
    let flags = hdr[15];
    if flags & FLAG_VERSION_INLINE != 0 {
        let mut c = Cursor::at(data, HEADER_SIZE, WHAT);
        let version = inline_string(&mut c, "Go version", MAX_VERSION_LEN)?;
        let modinfo = inline_string(&mut c, "module info", MAX_MODINFO_LEN)?;
        return Ok(Raw {
            version: Cow::Borrowed(version),
            modinfo: Cow::Borrowed(modinfo),
        });
    }
    let mem = mem.ok_or(BuildInfoError::PointerFormat)?;
    let ptr = Pointers {
        size: ptr_size,
        big_endian: flags & FLAG_BIG_ENDIAN != 0,
    };
    if ptr.size != 4 && ptr.size != 8 {
        return Err(BuildInfoError::PointerSize(ptr.size));
    }
    let ps = usize::from(ptr.size);
    let version_hdr = ptr.word(&hdr[16..16 + ps]);
    let modinfo_hdr = ptr.word(&hdr[16 + ps..16 + 2 * ps]);
    let version = ptr.go_string(mem, version_hdr, "Go version", MAX_VERSION_LEN)?;
    let modinfo = ptr.go_string(mem, modinfo_hdr, "module info", MAX_MODINFO_LEN)?;
    Ok(Raw {
        version: Cow::Owned(version),
        modinfo: Cow::Owned(modinfo),
    })
}

/// A uvarint length followed by that many bytes, with the length capped.
fn inline_string<'a>(
    c: &mut Cursor<'a>,
    what: &'static str,
    limit: u64,
) -> Result<&'a [u8], BuildInfoError> {
    let len = c.uvarint()?;
    if len > limit {
        return Err(BuildInfoError::TooLong { what, len, limit });
    }
    // `len <= limit` fits in usize on every supported target.
    Ok(c.bytes(len as usize)?)
}

/// Pointer decoding for the pre-1.18 form.
struct Pointers {
    size: u8,
    big_endian: bool,
}

impl Pointers {
    /// One pointer-sized word; `b` is exactly `size` bytes long.
    fn word(&self, b: &[u8]) -> u64 {
        let mut a = [0u8; 8];
        if self.big_endian {
            a[8 - b.len()..].copy_from_slice(b);
            u64::from_be_bytes(a)
        } else {
            a[..b.len()].copy_from_slice(b);
            u64::from_le_bytes(a)
        }
    }

    /// A Go string header `{data, len}` at `addr`, and the bytes it names.
    fn go_string(
        &self,
        mem: &dyn Memory,
        addr: u64,
        what: &'static str,
        limit: u64,
    ) -> Result<Vec<u8>, BuildInfoError> {
        let ps = usize::from(self.size);
        let mut hdr = [0u8; 16];
        let hdr = &mut hdr[..2 * ps];
        mem.read_at(addr, hdr)?;
        let ptr = self.word(&hdr[..ps]);
        let len = self.word(&hdr[ps..]);
        if len > limit {
            return Err(BuildInfoError::TooLong { what, len, limit });
        }
        let mut out = vec![0u8; len as usize];
        if !out.is_empty() {
            mem.read_at(ptr, &mut out)?;
        }
        Ok(out)
    }
}

/// Finds the record in an executable: section first, then a segment scan.
/// A record that fails to parse in one place does not stop the search, but
/// its error is what the caller sees if nothing better turns up.
fn locate_raw(bin: &GoBinary) -> Result<Raw<'_>, BuildInfoError> {
    let mut first_err = None;
    if let Some(data) = bin.section_data(".go.buildinfo") {
        match read_raw(data, Some(bin)) {
            Ok(raw) => return Ok(raw),
            Err(e) => first_err = Some(e),
        }
    }
    // Go puts the record at the start of the first writable, non-executable
    // PT_LOAD (Go 1.19's debug/buildinfo looks exactly there); read-only
    // data segments are a fallback for unusual links.
    for writable in [true, false] {
        for seg in bin
            .segments()
            .iter()
            .filter(|s| !s.executable && s.writable == writable && s.filesz > 0)
        {
            let Some(bytes) = segment_bytes(bin.data(), seg.file_offset, seg.filesz) else {
                continue;
            };
            for off in magic_offsets(bytes, seg.vaddr).take(MAX_CANDIDATES) {
                match read_raw(&bytes[off..], Some(bin)) {
                    Ok(raw) => return Ok(raw),
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
        }
    }
    Err(first_err.unwrap_or(BuildInfoError::NotFound))
}

/// The file bytes of a segment, clipped to the file (a truncated binary
/// still yields what it has).
fn segment_bytes(file: &[u8], offset: u64, filesz: u64) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    let end = usize::try_from(offset.saturating_add(filesz))
        .unwrap_or(usize::MAX)
        .min(file.len());
    file.get(start..end)
}

/// Offsets into `bytes` (which start at link address `vaddr`) where
/// [`MAGIC`] sits at a 16-byte aligned address.
fn magic_offsets(bytes: &[u8], vaddr: u64) -> impl Iterator<Item = usize> + '_ {
    let first = ((ALIGN - vaddr % ALIGN) % ALIGN) as usize;
    (first..bytes.len())
        .step_by(ALIGN as usize)
        .filter(move |&off| bytes.get(off..off + MAGIC.len()) == Some(&MAGIC[..]))
}

/// Which module a `=>` line replaces.
#[derive(Clone, Copy)]
enum Last {
    Main,
    Dep(usize),
}

mod modinfo;
use modinfo::parse_modinfo;

#[cfg(test)]
mod real_tests;
#[cfg(test)]
mod tests;
