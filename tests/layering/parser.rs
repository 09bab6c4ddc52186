//! tests/layering.rs: the parser. Comments and literals out, then every
//! path into the crate (`crate::X`, `$crate::X`, `gopeek::X`, use groups).
//! Its tests are in tests/layering.rs.

/// `src` with every comment (line, block, nested, doc) and every string,
/// byte-string, raw-string and char literal replaced by spaces; newlines are
/// kept, so line numbers stay right. Lifetimes and labels stay.
pub fn strip_comments_and_literals(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        // Line comment (`//`, `///`, `//!`).
        if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                blank(&mut out, c[i]);
                i += 1;
            }
            continue;
        }
        // Block comment, nested.
        if ch == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    blank(&mut out, c[i]);
                    blank(&mut out, c[i + 1]);
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    blank(&mut out, c[i]);
                    blank(&mut out, c[i + 1]);
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            continue;
        }
        // Raw strings: r"..", r#".."#, br"..", cr#".."#.
        let prev_ident = i > 0 && ident(c[i - 1]);
        let raw_start = if ch == 'r' && !prev_ident {
            Some(i + 1)
        } else if (ch == 'b' || ch == 'c') && next == Some('r') && !prev_ident {
            Some(i + 2)
        } else {
            None
        };
        if let Some(mut j) = raw_start {
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) == Some(&'"') {
                // Keep the prefix, blank the rest up to the closing quote
                // and its hashes.
                for &k in &c[i..j] {
                    out.push(k);
                }
                blank(&mut out, c[j]);
                j += 1;
                loop {
                    if j >= c.len() {
                        break;
                    }
                    if c[j] == '"' && (1..=hashes).all(|h| c.get(j + h) == Some(&'#')) {
                        for _ in 0..=hashes {
                            out.push(' ');
                        }
                        j += hashes + 1;
                        break;
                    }
                    blank(&mut out, c[j]);
                    j += 1;
                }
                i = j;
                continue;
            }
        }
        // Plain (and byte, C) strings.
        if ch == '"' {
            blank(&mut out, ch);
            i += 1;
            while i < c.len() {
                if c[i] == '\\' {
                    blank(&mut out, c[i]);
                    if let Some(&e) = c.get(i + 1) {
                        blank(&mut out, e);
                    }
                    i += 2;
                    continue;
                }
                let end = c[i] == '"';
                blank(&mut out, c[i]);
                i += 1;
                if end {
                    break;
                }
            }
            continue;
        }
        // Char literals ('x', '\n', '\u{1F600}', b'x'); a lifetime or label
        // ('a, 'static) has no closing quote right after its first char.
        if ch == '\'' {
            if next == Some('\\') {
                // Past the escaped char, so that '\'' ends at the right quote.
                let mut j = i + 3;
                while j < c.len() && c[j] != '\'' && c[j] != '\n' {
                    j += 1;
                }
                if c.get(j) == Some(&'\'') {
                    for &k in &c[i..=j] {
                        blank(&mut out, k);
                    }
                    i = j + 1;
                    continue;
                }
            } else if next.is_some() && c.get(i + 2) == Some(&'\'') {
                for &k in &c[i..i + 3] {
                    blank(&mut out, k);
                }
                i += 3;
                continue;
            }
        }
        out.push(ch);
        i += 1;
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Other,
}

/// Tokens of stripped source, each with its 1-based line. `$crate` is
/// the ident `crate`.
fn tokens(stripped: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = stripped.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch.is_alphanumeric()
            || ch == '_'
            || (ch == '$' && c.get(i + 1).is_some_and(|n| n.is_alphabetic()))
        {
            let start = if ch == '$' { i + 1 } else { i };
            let mut j = start;
            while j < c.len() && (c[j].is_alphanumeric() || c[j] == '_') {
                j += 1;
            }
            let mut word: String = c[start..j].iter().collect();
            // Raw identifiers: r#crate is the ident crate.
            if word == "r" && c.get(j) == Some(&'#') {
                let mut k = j + 1;
                while k < c.len() && (c[k].is_alphanumeric() || c[k] == '_') {
                    k += 1;
                }
                word = c[j + 1..k].iter().collect();
                j = k;
            }
            out.push((Tok::Ident(word), line));
            i = j;
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push((Tok::PathSep, line));
            i += 2;
        } else {
            out.push((
                match ch {
                    '{' => Tok::Open,
                    '}' => Tok::Close,
                    ',' => Tok::Comma,
                    _ => Tok::Other,
                },
                line,
            ));
            i += 1;
        }
    }
    out
}

/// One path into the crate: `crate::walk::x` gives `("walk", line)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// The first segment after `crate::`/`gopeek::` (`*` for a glob).
    pub target: String,
    pub line: usize,
    /// `crate`, `gopeek`.
    pub via: String,
}

/// Every path into the crate in `src`: `crate::X`, `$crate::X`,
/// `gopeek::X`, and each item of `crate::{X::.., Y}` groups, nested or
/// over several lines. Comments and literals are ignored.
pub fn crate_references(src: &str) -> Vec<Reference> {
    let toks = tokens(&strip_comments_and_literals(src));
    let mut out = Vec::new();
    for i in 0..toks.len() {
        let Tok::Ident(root) = &toks[i].0 else {
            continue;
        };
        if root != "crate" && root != "gopeek" {
            continue;
        }
        // A path start only: not `foo::gopeek::x`.
        if i > 0 && toks[i - 1].0 == Tok::PathSep {
            continue;
        }
        if toks.get(i + 1).map(|t| &t.0) != Some(&Tok::PathSep) {
            continue;
        }
        let via = root.clone();
        match toks.get(i + 2) {
            Some((Tok::Ident(x), line)) => out.push(Reference {
                target: x.clone(),
                line: *line,
                via,
            }),
            Some((Tok::Open, _)) => group_items(&toks, i + 2, &via, &mut out),
            Some((Tok::Other, line)) => out.push(Reference {
                target: "*".into(),
                line: *line,
                via,
            }),
            _ => {}
        }
    }
    out
}

/// The first segment of every item of the group opening at `toks[open]`.
fn group_items(toks: &[(Tok, usize)], open: usize, via: &str, out: &mut Vec<Reference>) {
    let mut depth = 0;
    let mut at_item_start = false;
    for (t, line) in &toks[open..] {
        match t {
            Tok::Open => {
                depth += 1;
                if depth == 1 {
                    at_item_start = true;
                }
            }
            Tok::Close => {
                depth -= 1;
                if depth == 0 {
                    return;
                }
            }
            Tok::Comma if depth == 1 => at_item_start = true,
            Tok::Ident(x) if depth == 1 && at_item_start => {
                at_item_start = false;
                // `crate::{self, ..}` names the crate root itself.
                if x != "self" {
                    out.push(Reference {
                        target: x.clone(),
                        line: *line,
                        via: via.to_string(),
                    });
                }
            }
            Tok::Other if depth == 1 && at_item_start => {
                at_item_start = false;
                out.push(Reference {
                    target: "*".into(),
                    line: *line,
                    via: via.to_string(),
                });
            }
            _ => {}
        }
    }
}
