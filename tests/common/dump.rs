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
