//! Go release numbers, as read from the build info of a binary.

use std::fmt;

/// A Go toolchain version such as `go1.27.3`. Layout tables, wait-reason
/// tables and traceback rules are keyed by `minor`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GoVersion {
    /// 1 for every supported release.
    pub major: u32,
    /// The number everything version-specific is keyed by.
    pub minor: u32,
    pub(crate) patch: u32,
    /// The string as the binary holds it (`go1.21.13`, `go1.22rc1`,
    /// `go1.24.4 X:nocoverageredesign`, `devel go1.28-abcdef ...`).
    pub raw: String,
}

impl GoVersion {
    /// Parses the version string from `.go.buildinfo` or `runtime.buildVersion`.
    /// Returns `None` when it does not name a 1.x release.
    pub fn parse(s: &str) -> Option<GoVersion> {
        let raw = s.trim().to_string();
        let start = raw.find("go1.")?;
        let rest = &raw[start + 2..];
        let mut nums = [0u32; 3];
        let mut idx = 0;
        let mut cur = String::new();
        for c in rest.chars() {
            if c.is_ascii_digit() {
                cur.push(c);
            } else if c == '.' && idx < 2 {
                nums[idx] = cur.parse().ok()?;
                cur.clear();
                idx += 1;
            } else {
                break;
            }
        }
        if !cur.is_empty() {
            nums[idx] = cur.parse().ok()?;
        } else if idx < 1 {
            return None;
        }
        Some(GoVersion {
            major: nums[0],
            minor: nums[1],
            patch: nums[2],
            raw,
        })
    }

    /// `true` if this is `1.minor` or newer.
    pub(crate) fn at_least(&self, minor: u32) -> bool {
        self.major > 1 || (self.major == 1 && self.minor >= minor)
    }
}

impl fmt::Display for GoVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_release_and_devel_strings() {
        let v = GoVersion::parse("go1.27.3").unwrap();
        assert_eq!((v.major, v.minor, v.patch), (1, 27, 3));
        let v = GoVersion::parse("go1.22rc1").unwrap();
        assert_eq!((v.minor, v.patch), (22, 0));
        let v = GoVersion::parse("go1.24.4 X:nocoverageredesign").unwrap();
        assert_eq!(v.minor, 24);
        let v = GoVersion::parse("devel go1.28-abc123 Tue").unwrap();
        assert_eq!(v.minor, 28);
        assert!(GoVersion::parse("rust").is_none());
        assert!(v.at_least(19));
    }
}
