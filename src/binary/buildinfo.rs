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
//! Layout (see notes.md §1.1 and Go's `debug/buildinfo`):
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
use crate::memory::{Memory, MemoryError};
use crate::binary::version::GoVersion;
use serde::Serialize;
use std::borrow::Cow;
use thiserror::Error;

/// The 14 bytes that start the build info record; exported so that other
/// readers (a live process, a core file) can find the record themselves.
pub const MAGIC: &[u8; 14] = b"\xff Go buildinf:";

/// Longest Go version string accepted. Real ones are under 100 bytes
/// (`devel go1.28-abcdef Tue Nov 28 ...`); the cap keeps a corrupt length
/// from becoming a huge allocation.
pub const MAX_VERSION_LEN: u64 = 256;

/// Longest modinfo string accepted (4 MiB). Large programs with thousands
/// of dependencies stay well under 1 MiB.
pub const MAX_MODINFO_LEN: u64 = 4 << 20;

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
pub struct Module {
    /// Module path (`golang.org/x/net`).
    pub path: String,
    /// Module version (`v0.21.0`, `(devel)` for the main module).
    pub version: String,
    /// go.sum checksum (`h1:...`), empty when unknown.
    pub sum: String,
    /// The `replace` directive target that was actually built, if any.
    pub replace: Option<Box<Module>>,
}

/// Everything `go version -m` shows about an executable: gopeek uses the
/// version to choose runtime layouts and `DefaultGODEBUG` to reproduce
/// runtime output exactly; the rest is reported by `gopeek info`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct BuildInfo {
    /// Toolchain version string as stored (`go1.27.3`, `devel go1.28-...`).
    pub go_version: String,
    /// Import path of the main package (`cmd/go`, `example.com/app/cmd/app`).
    pub path: Option<String>,
    /// The main module (absent for binaries built outside module mode).
    pub main: Option<Module>,
    /// Dependency modules, in the order the binary lists them.
    pub deps: Vec<Module>,
    /// `build\tKEY=VALUE` lines in order (`-buildmode`, `-compiler`,
    /// `-ldflags`, `-trimpath`, `CGO_ENABLED`, `GOARCH`, `GOOS`, `GOAMD64`,
    /// `vcs...`, `DefaultGODEBUG`), with quoted keys and values unquoted.
    pub settings: Vec<(String, String)>,
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
    /// form through `mem`: the static image of a [`GoBinary`] (link
    /// addresses), or a process's memory when `data` was read from that
    /// process too (its pointers are then already relocated). Lengths read
    /// through `mem` are capped like the inline ones.
    pub fn parse_with_memory<M: Memory + ?Sized>(
        data: &[u8],
        mem: &M,
    ) -> Result<BuildInfo, BuildInfoError> {
        let mem: &dyn Memory = &mem;
        read_raw(data, Some(mem))?.into_build_info()
    }

    /// The value of a `build` setting such as `GOARCH` or `-ldflags`, so that
    /// callers need not search the list by hand.
    pub fn setting(&self, key: &str) -> Option<&str> {
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

/// `runtime/debug.ParseBuildInfo`: the modinfo lines into a [`BuildInfo`]
/// (without the Go version). Unknown line kinds are skipped, and a final
/// line without a newline is ignored, as Go does.
fn parse_modinfo(text: &str) -> Result<BuildInfo, BuildInfoError> {
    let mut bi = BuildInfo::default();
    let mut last: Option<Last> = None;
    let mut rest = text;
    let mut line_no = 1usize;
    let err = |line: usize, reason: String| BuildInfoError::Modinfo { line, reason };
    while let Some((line, tail)) = rest.split_once('\n') {
        rest = tail;
        if let Some(p) = line.strip_prefix("path\t") {
            bi.path = Some(p.to_string());
        } else if let Some(m) = line.strip_prefix("mod\t") {
            bi.main = Some(module_line(m).map_err(|r| err(line_no, r))?);
            last = Some(Last::Main);
        } else if let Some(m) = line.strip_prefix("dep\t") {
            if bi.deps.len() >= MAX_MODULES {
                return Err(BuildInfoError::TooLong {
                    what: "dependency list",
                    len: bi.deps.len() as u64 + 1,
                    limit: MAX_MODULES as u64,
                });
            }
            bi.deps.push(module_line(m).map_err(|r| err(line_no, r))?);
            last = Some(Last::Dep(bi.deps.len() - 1));
        } else if let Some(m) = line.strip_prefix("=>\t") {
            let elem: Vec<&str> = m.split('\t').collect();
            if elem.len() != 3 {
                return Err(err(
                    line_no,
                    format!("expected 3 columns for replacement; got {}", elem.len()),
                ));
            }
            let target = match last.take() {
                Some(Last::Main) => bi.main.as_mut(),
                Some(Last::Dep(i)) => bi.deps.get_mut(i),
                None => None,
            }
            .ok_or_else(|| {
                err(
                    line_no,
                    "replacement with no module on previous line".to_string(),
                )
            })?;
            target.replace = Some(Box::new(Module {
                path: elem[0].to_string(),
                version: elem[1].to_string(),
                sum: elem[2].to_string(),
                replace: None,
            }));
        } else if let Some(kv) = line.strip_prefix("build\t") {
            if bi.settings.len() >= MAX_SETTINGS {
                return Err(BuildInfoError::TooLong {
                    what: "build settings list",
                    len: bi.settings.len() as u64 + 1,
                    limit: MAX_SETTINGS as u64,
                });
            }
            bi.settings
                .push(build_line(kv).map_err(|r| err(line_no, r))?);
        }
        line_no += 1;
    }
    Ok(bi)
}

/// `path\tversion[\tsum]` of a `mod` or `dep` line.
fn module_line(s: &str) -> Result<Module, String> {
    let elem: Vec<&str> = s.split('\t').collect();
    if elem.len() != 2 && elem.len() != 3 {
        return Err(format!("expected 2 or 3 columns; got {}", elem.len()));
    }
    Ok(Module {
        path: elem[0].to_string(),
        version: elem[1].to_string(),
        sum: elem.get(2).unwrap_or(&"").to_string(),
        replace: None,
    })
}

/// `KEY=VALUE` of a `build` line; either side may be Go-quoted.
fn build_line(kv: &str) -> Result<(String, String), String> {
    let (key, raw_value) = match kv.as_bytes().first() {
        None => return Err("build line missing '='".into()),
        Some(b'=') => return Err("build line with missing key".into()),
        Some(b'`' | b'"') => {
            let (key, used) = unquote_prefix(kv).ok_or("invalid quoted key in build line")?;
            match kv.as_bytes().get(used) {
                None => return Err("build line missing '=' after quoted key".into()),
                Some(b'=') => (key, &kv[used + 1..]),
                Some(&c) => {
                    return Err(format!(
                        "unexpected character after quoted key: {:?}",
                        char::from(c)
                    ));
                }
            }
        }
        Some(_) => {
            let (key, value) = kv
                .split_once('=')
                .ok_or("build line missing '=' after key")?;
            if needs_quoted_key(key) {
                return Err(format!("unquoted key {key:?} must be quoted"));
            }
            (key.to_string(), value)
        }
    };
    let value = match raw_value.as_bytes().first() {
        None => String::new(),
        Some(b'`' | b'"') => match unquote_prefix(raw_value) {
            Some((v, used)) if used == raw_value.len() => v,
            _ => return Err("invalid quoted value in build line".into()),
        },
        Some(_) => {
            if needs_quoted_value(raw_value) {
                return Err(format!("unquoted value {raw_value:?} must be quoted"));
            }
            raw_value.to_string()
        }
    };
    Ok((key, value))
}

/// `runtime/debug.quoteKey`.
fn needs_quoted_key(key: &str) -> bool {
    key.is_empty() || key.contains(['=', ' ', '\t', '\r', '\n', '"', '`'])
}

/// `runtime/debug.quoteValue`.
fn needs_quoted_value(value: &str) -> bool {
    value.contains([' ', '\t', '\r', '\n', '"', '`'])
}

/// Go's `strconv.QuotedPrefix` + `strconv.Unquote` for `"..."` and
/// `` `...` ``: the decoded value and the number of bytes the literal used.
/// `\x` and octal escapes may produce bytes that are not UTF-8; they are
/// replaced with U+FFFD, the same as every other string here.
fn unquote_prefix(s: &str) -> Option<(String, usize)> {
    let b = s.as_bytes();
    match *b.first()? {
        b'`' => {
            let end = s[1..].find('`')? + 1;
            Some((s[1..end].replace('\r', ""), end + 1))
        }
        b'"' => {
            let mut out = Vec::new();
            let mut i = 1;
            loop {
                let c = *b.get(i)?;
                match c {
                    b'"' => return Some((String::from_utf8_lossy(&out).into_owned(), i + 1)),
                    b'\n' => return None,
                    b'\\' => {
                        let e = *b.get(i + 1)?;
                        i += 2;
                        match e {
                            b'a' => out.push(0x07),
                            b'b' => out.push(0x08),
                            b'f' => out.push(0x0c),
                            b'n' => out.push(b'\n'),
                            b'r' => out.push(b'\r'),
                            b't' => out.push(b'\t'),
                            b'v' => out.push(0x0b),
                            b'\\' => out.push(b'\\'),
                            b'"' => out.push(b'"'),
                            b'x' | b'u' | b'U' => {
                                let n = match e {
                                    b'x' => 2,
                                    b'u' => 4,
                                    _ => 8,
                                };
                                let digits = b.get(i..i + n)?;
                                let mut v: u32 = 0;
                                for &d in digits {
                                    v = (v << 4) | char::from(d).to_digit(16)?;
                                }
                                i += n;
                                if e == b'x' {
                                    out.push(v as u8);
                                } else {
                                    let ch = char::from_u32(v)?;
                                    out.extend_from_slice(ch.encode_utf8(&mut [0u8; 4]).as_bytes());
                                }
                            }
                            b'0'..=b'7' => {
                                let digits = b.get(i..i + 2)?;
                                let mut v = u32::from(e - b'0');
                                for &d in digits {
                                    if !(b'0'..=b'7').contains(&d) {
                                        return None;
                                    }
                                    v = (v << 3) | u32::from(d - b'0');
                                }
                                i += 2;
                                out.push(u8::try_from(v).ok()?);
                            }
                            _ => return None,
                        }
                    }
                    _ => {
                        out.push(c);
                        i += 1;
                    }
                }
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::RegionMemory;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    const INFO_START: &[u8; 16] =
        b"\x30\x77\xaf\x0c\x92\x74\x08\x02\x41\xe1\xc1\x07\xe6\xd6\x18\xe6";
    const INFO_END: &[u8; 16] = b"\xf9\x32\x43\x31\x86\x18\x20\x72\x00\x82\x42\x10\x41\x16\xd8\xf2";

    fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    /// Modinfo as `cmd/go` embeds it: text between the two sentinels.
    fn wrap(modinfo: impl AsRef<[u8]>) -> Vec<u8> {
        let mut m = INFO_START.to_vec();
        m.extend_from_slice(modinfo.as_ref());
        m.extend_from_slice(INFO_END);
        m
    }

    /// A Go 1.18+ `.go.buildinfo` record with inline strings.
    fn inline_blob(version: &[u8], modinfo: &[u8]) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.push(8);
        b.push(FLAG_VERSION_INLINE);
        b.resize(HEADER_SIZE, 0);
        put_uvarint(&mut b, version.len() as u64);
        b.extend_from_slice(version);
        put_uvarint(&mut b, modinfo.len() as u64);
        b.extend_from_slice(modinfo);
        b
    }

    const NORMAL: &str = "path\texample.com/app/cmd/app\n\
        mod\texample.com/app\t(devel)\t\n\
        dep\tgolang.org/x/sys\tv0.20.0\th1:abc=\n\
        dep\tgithub.com/pkg/errors\tv0.9.1\n\
        build\t-buildmode=exe\n\
        build\t-compiler=gc\n\
        build\t-trimpath=true\n\
        build\tCGO_ENABLED=0\n\
        build\tGOARCH=amd64\n\
        build\tGOOS=linux\n\
        build\tGOAMD64=v1\n\
        build\tDefaultGODEBUG=httplaxcontentlength=1,tracebacklabels=0\n";

    #[test]
    fn parses_a_normal_record() {
        let bi = BuildInfo::parse(&inline_blob(b"go1.27.3", &wrap(NORMAL))).unwrap();
        assert_eq!(bi.go_version, "go1.27.3");
        assert_eq!(bi.version().unwrap().minor, 27);
        assert_eq!(bi.path.as_deref(), Some("example.com/app/cmd/app"));
        let main = bi.main.as_ref().unwrap();
        assert_eq!(
            (main.path.as_str(), main.version.as_str(), main.sum.as_str()),
            ("example.com/app", "(devel)", "")
        );
        assert_eq!(bi.deps.len(), 2);
        assert_eq!(bi.deps[0].sum, "h1:abc=");
        assert_eq!(bi.deps[1].sum, "");
        let keys: Vec<&str> = bi.settings.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "-buildmode",
                "-compiler",
                "-trimpath",
                "CGO_ENABLED",
                "GOARCH",
                "GOOS",
                "GOAMD64",
                "DefaultGODEBUG"
            ]
        );
        assert_eq!(bi.setting("GOARCH"), Some("amd64"));
        assert_eq!(bi.setting("nope"), None);
        assert_eq!(
            bi.default_godebug(),
            Some("httplaxcontentlength=1,tracebacklabels=0")
        );
        // Trailing bytes after the record (section padding) are ignored.
        let mut padded = inline_blob(b"go1.27.3", &wrap(NORMAL));
        padded.resize(padded.len() + 100, 0);
        assert_eq!(BuildInfo::parse(&padded).unwrap(), bi);
        let json = serde_json::to_string(&bi).unwrap();
        assert!(
            json.contains("\"settings\":[[\"-buildmode\",\"exe\"]"),
            "{json}"
        );
    }

    #[test]
    fn parses_replacements() {
        let text = "path\tex.com/a\nmod\tex.com/a\t(devel)\t\n\
            dep\tex.com/b\tv1.0.0\th1:b=\n\
            dep\tex.com/c\tv1.2.3\n=>\t../c\t(devel)\t\n\
            dep\tex.com/d\tv0.1.0\n=>\tex.com/fork/d\tv0.1.1\th1:d=\n";
        let bi = BuildInfo::parse(&inline_blob(b"go1.22.1", &wrap(text))).unwrap();
        assert!(bi.deps[0].replace.is_none());
        let c = bi.deps[1].replace.as_deref().unwrap();
        assert_eq!(
            (c.path.as_str(), c.version.as_str(), c.sum.as_str()),
            ("../c", "(devel)", "")
        );
        let d = bi.deps[2].replace.as_deref().unwrap();
        assert_eq!(
            (d.path.as_str(), d.version.as_str(), d.sum.as_str()),
            ("ex.com/fork/d", "v0.1.1", "h1:d=")
        );
        // The main module can be replaced too (Go's parser allows it).
        let bi = BuildInfo::parse(&inline_blob(
            b"go1.22.1",
            &wrap("mod\tm\tv1\n=>\tn\tv2\ts\n"),
        ))
        .unwrap();
        assert_eq!(bi.main.unwrap().replace.unwrap().path, "n");
    }

    #[test]
    fn unquotes_build_settings() {
        let text = concat!(
            "build\t-ldflags=\"-s -w -X \\\"main.version=1.2 3\\\" -X main.x=\\ttab\"\n",
            "build\t-gcflags=all=-N -l\n", // Go would reject this: unquoted space
        );
        let e = BuildInfo::parse(&inline_blob(b"go1.21.0", &wrap(text))).unwrap_err();
        assert!(matches!(e, BuildInfoError::Modinfo { line: 2, .. }), "{e}");
        assert!(e.to_string().contains("must be quoted"), "{e}");

        let text = concat!(
            "build\t-ldflags=\"-s -w -X \\\"main.version=1.2 3\\\" -X main.x=\\ttab\"\n",
            "build\t-tags=\n",
            "build\t\"we=ird key\"=`raw \"value\"`\n",
            "build\tesc=\"\\a\\b\\f\\n\\r\\v\\\\\\x41\\101\\u00e9\\U0001F600\"\n",
            "build\tCGO_CFLAGS=\n",
            "build\tvcs.modified=true\n",
        );
        let bi = BuildInfo::parse(&inline_blob(b"go1.21.0", &wrap(text))).unwrap();
        assert_eq!(
            bi.setting("-ldflags"),
            Some("-s -w -X \"main.version=1.2 3\" -X main.x=\ttab")
        );
        assert_eq!(bi.setting("-tags"), Some(""));
        assert_eq!(bi.setting("we=ird key"), Some("raw \"value\""));
        assert_eq!(bi.setting("esc"), Some("\x07\x08\x0c\n\r\x0b\\AAé😀"));
        assert_eq!(bi.setting("vcs.modified"), Some("true"));
        assert_eq!(bi.settings.len(), 6);
    }

    #[test]
    fn unquote_matches_go_strconv() {
        assert_eq!(unquote_prefix("\"a\"rest"), Some(("a".into(), 3)));
        assert_eq!(unquote_prefix("`a\r\nb`"), Some(("a\nb".into(), 6)));
        assert_eq!(unquote_prefix("\"\\xff\""), Some(("\u{fffd}".into(), 6)));
        for bad in [
            "\"",
            "\"abc",
            "\"\\q\"",
            "\"\\'\"",
            "\"\\x4\"",
            "\"\\xzz\"",
            "\"\\400\"",
            "\"\\18\"",
            "\"\\ud800\"",
            "\"\\U00110000\"",
            "\"a\nb\"",
            "`abc",
            "'a'",
            "\"\\",
            "\"\\u12",
        ] {
            assert_eq!(unquote_prefix(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rejects_malformed_modinfo_lines() {
        for (text, line, what) in [
            ("mod\tonly\n", 1, "2 or 3 columns"),
            ("dep\ta\tb\tc\td\n", 1, "2 or 3 columns"),
            ("path\tp\n=>\ta\tb\tc\n", 2, "no module"),
            ("dep\ta\tv\n=>\ta\tb\tc\n=>\ta\tb\tc\n", 3, "no module"),
            ("dep\ta\tv\n=>\ta\tb\n", 2, "3 columns"),
            ("build\t\n", 1, "missing '='"),
            ("build\t=v\n", 1, "missing key"),
            ("build\tkey\n", 1, "missing '=' after key"),
            ("build\t\"k\"\n", 1, "missing '=' after quoted key"),
            ("build\t\"k\"x\n", 1, "unexpected character"),
            ("build\t\"k\n", 1, "invalid quoted key"),
            ("build\tk=\"v\"x\n", 1, "invalid quoted value"),
            ("build\tk=v\"\n", 1, "must be quoted"),
            ("build\tk y=v\n", 1, "must be quoted"),
        ] {
            match BuildInfo::parse(&inline_blob(b"go1.21.0", &wrap(text))) {
                Err(BuildInfoError::Modinfo { line: l, reason }) => {
                    assert_eq!(l, line, "{text:?}");
                    assert!(reason.contains(what), "{text:?}: {reason}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
        // Unknown lines are skipped; a last line without '\n' is ignored
        // (through `parse`, the sentinel check already requires the '\n').
        let bi = parse_modinfo("go\tgo1.21\nfoo\nbuild\ta=b\nbuild\tc=d").unwrap();
        assert_eq!(bi.settings, [("a".to_string(), "b".to_string())]);
    }

    #[test]
    fn modinfo_without_sentinels_is_empty() {
        for m in [&b""[..], b"path\tx\n", &[b'x'; 40][..]] {
            let bi = BuildInfo::parse(&inline_blob(b"go1.19.8", m)).unwrap();
            assert_eq!(
                bi,
                BuildInfo {
                    go_version: "go1.19.8".into(),
                    ..Default::default()
                }
            );
        }
        // Non-UTF-8 bytes are replaced, not fatal.
        let bi = BuildInfo::parse(&inline_blob(b"go1.21\xff", &wrap(b"path\tp\xc3\n"))).unwrap();
        assert_eq!(bi.go_version, "go1.21\u{fffd}");
        assert_eq!(bi.path.as_deref(), Some("p\u{fffd}"));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let text = "path\tex.com/a\nmod\tex.com/a\t(devel)\t\ndep\tex.com/c\tv1.2.3\n=>\t../c\t(devel)\t\n\
            build\t-ldflags=\"-X \\\"a=b c\\\"\"\n";
        let blob = inline_blob(b"go1.27.3", &wrap(text));
        assert!(BuildInfo::parse(&blob).is_ok());
        for n in 0..blob.len() {
            let r = BuildInfo::parse(&blob[..n]);
            assert!(r.is_err(), "prefix {n} parsed: {r:?}");
        }
        assert!(matches!(
            BuildInfo::parse(&blob[..20]),
            Err(BuildInfoError::Truncated(_))
        ));
        assert!(matches!(
            BuildInfo::parse(&blob[..40]),
            Err(BuildInfoError::Truncated(_))
        ));
        let msg = BuildInfo::parse(&blob[..40]).unwrap_err().to_string();
        assert!(
            msg.contains("go.buildinfo") && msg.contains("offset"),
            "{msg}"
        );
    }

    #[test]
    fn bad_magic_and_empty_version() {
        let mut blob = inline_blob(b"go1.27.3", &wrap(NORMAL));
        blob[3] = b'X';
        let e = BuildInfo::parse(&blob).unwrap_err();
        assert!(matches!(e, BuildInfoError::BadMagic { .. }));
        assert!(
            e.to_string().contains("bad magic \"\\xff GX buildinf:\""),
            "{e}"
        );
        assert!(matches!(
            BuildInfo::parse(b"\x7fELF"),
            Err(BuildInfoError::BadMagic { .. })
        ));
        assert!(matches!(
            BuildInfo::parse(b""),
            Err(BuildInfoError::Truncated(_))
        ));
        assert_eq!(
            BuildInfo::parse(&inline_blob(b"", &wrap(NORMAL))),
            Err(BuildInfoError::EmptyVersion)
        );
    }

    #[test]
    fn huge_lengths_are_refused() {
        let mut b = inline_blob(b"", b"");
        b.truncate(HEADER_SIZE);
        let mut huge = b.clone();
        put_uvarint(&mut huge, u64::MAX);
        assert!(matches!(
            BuildInfo::parse(&huge),
            Err(BuildInfoError::TooLong {
                what: "Go version",
                ..
            })
        ));
        let mut over = b.clone();
        over.extend_from_slice(&[0xff; 11]);
        assert!(matches!(
            BuildInfo::parse(&over),
            Err(BuildInfoError::Truncated(ReadError::VarintOverflow {
                offset: 32,
                ..
            }))
        ));
        let mut big_mod = b.clone();
        put_uvarint(&mut big_mod, 2);
        big_mod.extend_from_slice(b"go");
        put_uvarint(&mut big_mod, MAX_MODINFO_LEN + 1);
        assert!(matches!(
            BuildInfo::parse(&big_mod),
            Err(BuildInfoError::TooLong {
                what: "module info",
                ..
            })
        ));
        // A length under the cap but past the end is truncation, not an allocation.
        let mut short = b;
        put_uvarint(&mut short, MAX_VERSION_LEN);
        assert!(matches!(
            BuildInfo::parse(&short),
            Err(BuildInfoError::Truncated(_))
        ));
    }

    #[test]
    fn entry_counts_are_capped() {
        let text = "dep\ta\tv\n".repeat(MAX_MODULES + 1);
        let e = BuildInfo::parse(&inline_blob(b"go1.21.0", &wrap(&text))).unwrap_err();
        assert!(
            matches!(
                e,
                BuildInfoError::TooLong {
                    what: "dependency list",
                    ..
                }
            ),
            "{e}"
        );
        let text = "build\ta=b\n".repeat(MAX_SETTINGS + 1);
        let e = BuildInfo::parse(&inline_blob(b"go1.21.0", &wrap(&text))).unwrap_err();
        assert!(
            matches!(
                e,
                BuildInfoError::TooLong {
                    what: "build settings list",
                    ..
                }
            ),
            "{e}"
        );
    }

    /// A pre-1.18 header whose pointers lead to Go string headers at `base`.
    fn pointer_blob(ptr_size: u8, big_endian: bool, base: u64) -> (Vec<u8>, RegionMemory) {
        let (hdr, regions) = pointer_parts(ptr_size, big_endian, base);
        let mut mem = RegionMemory::new();
        for (addr, bytes) in regions {
            mem.insert(addr, bytes);
        }
        (hdr, mem)
    }

    /// The header of a pre-1.18 record and the (address, bytes) it points to.
    fn pointer_parts(ptr_size: u8, big_endian: bool, base: u64) -> (Vec<u8>, Vec<(u64, Vec<u8>)>) {
        let ps = usize::from(ptr_size);
        let word = |v: u64| -> Vec<u8> {
            if big_endian {
                v.to_be_bytes()[8 - ps..].to_vec()
            } else {
                v.to_le_bytes()[..ps].to_vec()
            }
        };
        let mut hdr = MAGIC.to_vec();
        hdr.push(ptr_size);
        hdr.push(u8::from(big_endian));
        hdr.extend(word(base));
        hdr.extend(word(base + 0x10));
        hdr.resize(HEADER_SIZE, 0);
        let version = b"go1.17.13".to_vec();
        let modinfo = wrap("path\tex.com/old\nmod\tex.com/old\t(devel)\t\n");
        let mut strings = Vec::new();
        strings.extend(word(base + 0x100));
        strings.extend(word(version.len() as u64));
        strings.resize(0x10, 0);
        strings.extend(word(base + 0x200));
        strings.extend(word(modinfo.len() as u64));
        (
            hdr,
            vec![
                (base, strings),
                (base + 0x100, version),
                (base + 0x200, modinfo),
            ],
        )
    }

    #[test]
    fn pointer_format_through_memory() {
        for (ps, be) in [(8, false), (4, false), (8, true), (4, true)] {
            let (hdr, mem) = pointer_blob(ps, be, 0x50_0000);
            assert_eq!(BuildInfo::parse(&hdr), Err(BuildInfoError::PointerFormat));
            let bi = BuildInfo::parse_with_memory(&hdr, &mem).unwrap();
            assert_eq!(bi.go_version, "go1.17.13", "ptr {ps} be {be}");
            assert_eq!(bi.path.as_deref(), Some("ex.com/old"));
            assert_eq!(bi.main.unwrap().path, "ex.com/old");
        }
        let (mut hdr, mem) = pointer_blob(8, false, 0x50_0000);
        hdr[14] = 2;
        assert_eq!(
            BuildInfo::parse_with_memory(&hdr, &mem),
            Err(BuildInfoError::PointerSize(2))
        );
        // Pointers to nowhere and huge lengths fail cleanly.
        let (hdr, _) = pointer_blob(8, false, 0x50_0000);
        assert!(matches!(
            BuildInfo::parse_with_memory(&hdr, &RegionMemory::new()),
            Err(BuildInfoError::Memory(_))
        ));
        let mut mem = RegionMemory::new();
        let mut sh = 0x50_0100u64.to_le_bytes().to_vec();
        sh.extend(u64::MAX.to_le_bytes());
        mem.insert(0x50_0000, sh);
        assert!(matches!(
            BuildInfo::parse_with_memory(&hdr, &mem),
            Err(BuildInfoError::TooLong { .. })
        ));
    }

    /// One PT_LOAD program header: (p_flags, p_offset, p_vaddr, p_filesz, p_memsz).
    type Load = (u32, u64, u64, u64, u64);

    /// A minimal ELF64 x86-64 executable without section headers: the given
    /// PT_LOAD headers, then `body` placed at file offset `body_off`.
    fn elf_with_loads(loads: &[Load], body_off: usize, body: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
        f.extend(2u16.to_le_bytes()); // ET_EXEC
        f.extend(62u16.to_le_bytes()); // EM_X86_64
        f.extend(1u32.to_le_bytes());
        f.extend(0x40_1000u64.to_le_bytes()); // entry
        f.extend(64u64.to_le_bytes()); // phoff
        f.extend(0u64.to_le_bytes()); // shoff
        f.extend(0u32.to_le_bytes());
        f.extend(64u16.to_le_bytes());
        f.extend(56u16.to_le_bytes());
        f.extend((loads.len() as u16).to_le_bytes()); // phnum
        f.extend(64u16.to_le_bytes());
        f.extend(0u16.to_le_bytes());
        f.extend(0u16.to_le_bytes());
        for &(flags, off, va, filesz, memsz) in loads {
            f.extend(1u32.to_le_bytes()); // PT_LOAD
            f.extend(flags.to_le_bytes());
            f.extend(off.to_le_bytes());
            f.extend(va.to_le_bytes());
            f.extend(va.to_le_bytes());
            f.extend(filesz.to_le_bytes());
            f.extend(memsz.to_le_bytes());
            f.extend(0x1000u64.to_le_bytes());
        }
        assert!(f.len() <= body_off);
        f.resize(body_off, 0);
        f.extend_from_slice(body);
        f
    }

    /// One R+X segment for the headers and one RW segment holding `payload`
    /// at link address `vaddr` (the file offset is congruent mod 16).
    fn tiny_elf(vaddr: u64, payload: &[u8]) -> Vec<u8> {
        let data_off = 0x100 + (vaddr % 16);
        let len = payload.len() as u64;
        elf_with_loads(
            &[
                (5, 0, 0x40_0000, 0x100, 0x100),
                (6, data_off, vaddr, len, len + 0x40),
            ],
            data_off as usize,
            payload,
        )
    }

    /// Regression for a panic the `buildinfo` fuzz target found in
    /// `GoBinary::read_at` (src/elf.rs, `seg.file_offset + r` overflows when
    /// a segment's p_offset is near u64::MAX). A pre-1.18 record points into
    /// such a segment (fixed in elf.rs with checked arithmetic).
    #[test]
    fn pointer_into_segment_with_huge_file_offset_is_an_error() {
        let mut hdr = MAGIC.to_vec();
        hdr.extend([8, 0]);
        hdr.extend(0x60_0040u64.to_le_bytes()); // version string header
        hdr.extend(0x60_0050u64.to_le_bytes());
        hdr.resize(HEADER_SIZE, 0);
        let loads = [
            (6, 0x100, 0x50_0100, HEADER_SIZE as u64, 0x100),
            (6, u64::MAX, 0x60_0000, 0x100, 0x100),
        ];
        let bin = GoBinary::from_vec("huge-offset", elf_with_loads(&loads, 0x100, &hdr)).unwrap();
        assert!(BuildInfo::from_binary(&bin).is_err());
    }

    #[test]
    fn from_binary_scans_segments_without_sections() {
        let blob = inline_blob(b"go1.27.3", &wrap(NORMAL));
        // Aligned: found by the scan, behind a misaligned decoy and junk.
        let mut payload = vec![0u8; 0x20];
        payload[3..17].copy_from_slice(MAGIC);
        payload.extend_from_slice(&blob);
        let bin = GoBinary::from_vec("tiny", tiny_elf(0x60_0000, &payload)).unwrap();
        let bi = BuildInfo::from_binary(&bin).unwrap();
        assert_eq!(bi, BuildInfo::parse(&blob).unwrap());
        // The same bytes at a misaligned address are not build info.
        let bin = GoBinary::from_vec("tiny", tiny_elf(0x60_0008, &blob)).unwrap();
        assert_eq!(BuildInfo::from_binary(&bin), Err(BuildInfoError::NotFound));
        // A candidate that fails to parse reports its error.
        let bin = GoBinary::from_vec("tiny", tiny_elf(0x60_0000, &blob[..40])).unwrap();
        assert!(matches!(
            BuildInfo::from_binary(&bin),
            Err(BuildInfoError::Truncated(_))
        ));
        // Pre-1.18 pointers are followed through the binary's own image.
        let bin =
            GoBinary::from_vec("tiny", tiny_elf(0x60_0000, &pointer_image(0x60_0000))).unwrap();
        let bi = BuildInfo::from_binary(&bin).unwrap();
        assert_eq!(bi.go_version, "go1.17.13");
        assert_eq!(bi.path.as_deref(), Some("ex.com/old"));
    }

    /// A data segment image at `base` holding a pre-1.18 record at its start
    /// and the string headers and strings it points to after it.
    fn pointer_image(base: u64) -> Vec<u8> {
        let (mut image, regions) = pointer_parts(8, false, base + 0x40);
        image.resize(0x300, 0);
        for (addr, bytes) in regions {
            let off = (addr - base) as usize;
            image[off..off + bytes.len()].copy_from_slice(&bytes);
        }
        image
    }

    /// Writes the synthetic seeds of the fuzz corpus (run by hand:
    /// `cargo test --lib buildinfo::tests::write_fuzz_seeds -- --ignored`).
    #[test]
    #[ignore]
    fn write_fuzz_seeds() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/buildinfo");
        std::fs::create_dir_all(&dir).unwrap();
        let text = "path\tex.com/a\nmod\tex.com/a\t(devel)\t\ndep\tex.com/c\tv1.2.3\n=>\t../c\t(devel)\t\n\
            build\t-ldflags=\"-X \\\"a=b c\\\" \\x41\\u00e9\"\nbuild\t\"k y\"=`v`\n";
        let blob = inline_blob(b"go1.27.3", &wrap(text));
        std::fs::write(dir.join("synthetic-inline"), &blob).unwrap();
        std::fs::write(dir.join("synthetic-elf-inline"), tiny_elf(0x60_0000, &blob)).unwrap();
        std::fs::write(
            dir.join("synthetic-elf-pointer"),
            tiny_elf(0x60_0000, &pointer_image(0x60_0000)),
        )
        .unwrap();
    }

    // ---- real binaries --------------------------------------------------

    /// `go version -m FILE` parsed back: (version, modinfo text).
    fn go_version_m(go: &Path, file: &Path) -> Option<(String, String)> {
        let out = Command::new(go)
            .arg("version")
            .arg("-m")
            .arg(file)
            .env("GOTOOLCHAIN", "local")
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "note: {} version -m {} failed: {}",
                go.display(),
                file.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        let text = String::from_utf8(out.stdout).ok()?;
        let mut lines = text.lines();
        let first = lines.next()?;
        let version = first.rsplit_once(": ")?.1.to_string();
        let mut modinfo = String::new();
        for l in lines {
            modinfo.push_str(l.strip_prefix('\t')?);
            modinfo.push('\n');
        }
        Some((version, modinfo))
    }

    /// Section headers removed (`e_shoff`, `e_shnum`, `e_shstrndx` zeroed),
    /// so that only the segment scan can find the record.
    fn without_sections(mut file: Vec<u8>) -> Vec<u8> {
        file[0x28..0x30].fill(0);
        file[0x3c..0x40].fill(0);
        file
    }

    /// Checks one binary against the toolchain's own reading of it.
    fn check_real(go: &Path, file: &Path) -> bool {
        let Some((version, modinfo)) = go_version_m(go, file) else {
            return false;
        };
        let bin = GoBinary::open(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let bi = BuildInfo::from_binary(&bin).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut want = parse_modinfo(&modinfo)
            .unwrap_or_else(|e| panic!("{}: go's output: {e}", file.display()));
        want.go_version = version;
        assert_eq!(bi, want, "{}", file.display());
        // The raw text is byte-identical to what the toolchain prints.
        let raw = locate_raw(&bin).unwrap();
        assert_eq!(
            String::from_utf8_lossy(strip_sentinels(&raw.modinfo)),
            modinfo,
            "{}",
            file.display()
        );
        assert!(bi.version().is_some(), "{}", bi.go_version);
        // Same answer from the segment scan alone.
        let stripped =
            GoBinary::from_vec("stripped", without_sections(bin.data().to_vec())).unwrap();
        assert!(stripped.section(".go.buildinfo").is_none());
        assert_eq!(
            BuildInfo::from_binary(&stripped).unwrap(),
            bi,
            "{} without sections",
            file.display()
        );
        true
    }

    /// Builds a small module program with a replaced dependency and quoted
    /// `-ldflags`, offline, so that `dep`/`=>` lines and quoting are checked
    /// against real toolchain output too.
    fn build_module_program(go: &Path, dir: &Path, extra: &[&str]) -> Option<PathBuf> {
        let write = |p: &str, s: &str| {
            let p = dir.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, s).unwrap();
        };
        write(
            "go.mod",
            "module example.com/peektest\n\ngo 1.19\n\nrequire example.com/dep v1.2.3\n\nreplace example.com/dep v1.2.3 => ./dep\n",
        );
        write(
            "main.go",
            "package main\n\nimport \"example.com/dep\"\n\nvar greeting = \"x\"\n\nfunc main() { println(dep.Hello(), greeting) }\n",
        );
        write("dep/go.mod", "module example.com/dep\n\ngo 1.19\n");
        write(
            "dep/dep.go",
            "package dep\n\nfunc Hello() string { return \"hi\" }\n",
        );
        let out = dir.join("peektest");
        let res = Command::new(go)
            .current_dir(dir)
            .args(["build", "-o"])
            .arg(&out)
            .args(extra)
            .arg(".")
            .env("GOTOOLCHAIN", "local")
            .env("GOPROXY", "off")
            .env("GOFLAGS", "-mod=mod")
            .env("GOWORK", "off")
            .env("CGO_ENABLED", "0")
            .output()
            .ok()?;
        if !res.status.success() {
            eprintln!(
                "note: could not build a test program with {}: {}",
                go.display(),
                String::from_utf8_lossy(&res.stderr)
            );
            return None;
        }
        Some(out)
    }

    #[test]
    fn matches_go_version_m_on_real_binaries() {
        let mut checked = Vec::new();
        let go27 = Path::new("/usr/lib/go-1.27/bin/go");
        let go19 = Path::new("/usr/lib/go-1.19/bin/go");
        if go27.exists() && check_real(go27, go27) {
            checked.push(go27.to_path_buf());
        }
        if let Ok(rd) = std::fs::read_dir("/usr/lib/go-1.19/pkg/tool/linux_amd64") {
            let mut tools: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            tools.sort();
            for t in tools {
                if go19.exists() && check_real(go19, &t) {
                    checked.push(t);
                }
            }
        }
        for go in [go27, go19] {
            if !go.exists() {
                continue;
            }
            let dir = tempfile::tempdir().unwrap();
            // Not -trimpath: Go then leaves -ldflags out of the record.
            let flags = ["-ldflags=-s -w -X \"main.greeting=hello world\""];
            let Some(exe) = build_module_program(go, dir.path(), &flags) else {
                continue;
            };
            assert!(check_real(go, &exe));
            let bi = BuildInfo::from_binary(&GoBinary::open(&exe).unwrap()).unwrap();
            assert_eq!(
                bi.setting("-ldflags"),
                Some("-s -w -X \"main.greeting=hello world\"")
            );
            assert_eq!(bi.path.as_deref(), Some("example.com/peektest"));
            let dep = &bi.deps[0];
            assert_eq!(
                (dep.path.as_str(), dep.version.as_str()),
                ("example.com/dep", "v1.2.3")
            );
            assert_eq!(dep.replace.as_ref().unwrap().path, "./dep");
            if go == go27 {
                assert!(
                    bi.default_godebug()
                        .is_some_and(|g| g.contains("tracebacklabels=0")),
                    "{bi:?}"
                );
            }
            checked.push(exe);
        }
        if checked.is_empty() {
            eprintln!("note: no Go toolchain under /usr/lib/go-1.27 or /usr/lib/go-1.19; real-binary check skipped");
        } else {
            eprintln!(
                "checked {} real Go binaries against `go version -m`",
                checked.len()
            );
        }
    }
}
