//! What the target's runtime was told to print: `GODEBUG` in its
//! environment, else the binary's `DefaultGODEBUG`, else the release
//! default.

use crate::binary::program::GoProgram;

/// Whether the target's runtime prints pprof labels in traceback headers
/// (`tracebacklabels=1`, on by default from Go 1.27).
pub(crate) fn traceback_labels(environ: Option<&[u8]>, prog: &GoProgram<'_>) -> bool {
    let find = |s: &str| {
        s.split(',')
            .find_map(|kv| kv.trim().strip_prefix("tracebacklabels="))
            .map(|v| v == "1")
    };
    if let Some(env) = environ {
        for var in env.split(|&b| b == 0) {
            if let Some(v) = std::str::from_utf8(var)
                .ok()
                .and_then(|s| s.strip_prefix("GODEBUG="))
            {
                if let Some(on) = find(v) {
                    return on;
                }
            }
        }
    }
    if let Some(on) = prog.build_info.setting("DefaultGODEBUG").and_then(find) {
        return on;
    }
    prog.version.minor >= 27
}
