//! The modinfo text inside the build info record, parsed with the rules of
//! Go's `runtime/debug.ParseBuildInfo` (quoting included).

use super::*;

/// `runtime/debug.ParseBuildInfo`: the modinfo lines into a [`BuildInfo`]
/// (without the Go version). Unknown line kinds are skipped, and a final
/// line without a newline is ignored, as Go does.
pub(super) fn parse_modinfo(text: &str) -> Result<BuildInfo, BuildInfoError> {
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
pub(super) fn module_line(s: &str) -> Result<Module, String> {
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
pub(super) fn build_line(kv: &str) -> Result<(String, String), String> {
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
pub(super) fn needs_quoted_key(key: &str) -> bool {
    key.is_empty() || key.contains(['=', ' ', '\t', '\r', '\n', '"', '`'])
}

/// `runtime/debug.quoteValue`.
pub(super) fn needs_quoted_value(value: &str) -> bool {
    value.contains([' ', '\t', '\r', '\n', '"', '`'])
}

/// Go's `strconv.QuotedPrefix` + `strconv.Unquote` for `"..."` and
/// `` `...` ``: the decoded value and the number of bytes the literal used.
/// `\x` and octal escapes may produce bytes that are not UTF-8; they are
/// replaced with U+FFFD, the same as every other string here.
pub(super) fn unquote_prefix(s: &str) -> Option<(String, usize)> {
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
