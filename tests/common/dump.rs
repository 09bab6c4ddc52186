//! Go-style goroutine dumps (runtime.Stack, SIGQUIT, gopeek text), parsed
//! for comparison.

/// One goroutine block of a Go-style text dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub id: u64,
    pub header: String,
    /// Status text: inside the brackets, before the first comma.
    pub status: String,
    /// Frame and created-by lines, with arguments normalised to `(...)`.
    pub lines: Vec<String>,
    /// The same lines exactly as printed, arguments included.
    pub exact: Vec<String>,
}

/// Splits a Go traceback (runtime.Stack or gopeek text) into blocks.
pub fn parse_dump(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    for chunk in text.split("\n\n") {
        let mut lines = chunk.lines().filter(|l| !l.is_empty());
        let Some(header) = lines.next() else { continue };
        let Some(rest) = header.strip_prefix("goroutine ") else {
            continue;
        };
        let id: u64 = rest
            .split(' ')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let inside = header.split_once('[').map(|(_, r)| r).unwrap_or("");
        let inside = inside.rsplit_once(']').map(|(l, _)| l).unwrap_or(inside);
        // Go 1.26 prints labels inside the brackets: ` labels:{...}`.
        let inside = inside.split(" labels:{").next().unwrap_or(inside);
        let status = inside.split(',').next().unwrap_or("").to_string();
        let exact: Vec<String> = lines.map(str::to_string).collect();
        let norm = exact
            .iter()
            .map(|l| {
                // Arguments are the last "(...)" of a function line (Go
                // prints them as {..} and 0x.., never with parentheses).
                if !l.starts_with('\t') && l.ends_with(')') && !l.starts_with("created by") {
                    if let Some(open) = l.rfind('(') {
                        return format!("{}(...)", &l[..open]);
                    }
                }
                l.to_string()
            })
            .collect();
        out.push(Block {
            id,
            header: header.to_string(),
            status,
            lines: norm,
            exact,
        });
    }
    out
}

/// A dump's blocks by goroutine id.
pub fn blocks_by_id(text: &str) -> std::collections::HashMap<u64, Block> {
    parse_dump(text).into_iter().map(|b| (b.id, b)).collect()
}

/// How [`differences`] compares a block of Go's with gopeek's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// Every line as printed, arguments included.
    Exact,
    /// Arguments normalised to `(...)` (where Go's own text of them is
    /// not the oracle).
    Lines,
}

/// Goroutine by goroutine, the blocks of Go's dump (`oracle`) that
/// gopeek's (`ours`) lacks or prints differently, as readable diffs, and
/// how many were compared. A GC may be scanning a stack at the instant
/// gopeek stops the target, and Go then prints " (scan)" too, so that
/// suffix of gopeek's header is not a difference. A goroutine missing
/// from gopeek's dump counts unless `missing_ok` (a dump read at another
/// moment than Go's).
pub fn differences<'a>(
    oracle: impl IntoIterator<Item = &'a Block>,
    ours: &std::collections::HashMap<u64, Block>,
    how: Compare,
    missing_ok: bool,
) -> (usize, Vec<String>) {
    let body = |b: &'a Block| match how {
        Compare::Exact => b.exact.join("\n"),
        Compare::Lines => b.lines.join("\n"),
    };
    let mut compared = 0;
    let mut failures = Vec::new();
    for want in oracle {
        let Some(got) = ours.get(&want.id) else {
            if !missing_ok {
                compared += 1;
                failures.push(format!(
                    "goroutine {} [{}] missing from gopeek's dump",
                    want.id, want.status
                ));
            }
            continue;
        };
        compared += 1;
        let (w, g) = (
            body(want),
            match how {
                Compare::Exact => got.exact.join("\n"),
                Compare::Lines => got.lines.join("\n"),
            },
        );
        if got.header.replace(" (scan)", "") != want.header || g != w {
            failures.push(format!(
                "goroutine {} differs:\n--- Go\n{}\n{w}\n--- gopeek\n{}\n{g}",
                want.id, want.header, got.header
            ));
        }
    }
    (compared, failures)
}
