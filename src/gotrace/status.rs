//! Goroutine states as the runtime numbers them (runtime2.go's `_G*`
//! constants, stable across 1.19-1.27 apart from the additions noted) and
//! the status text of a traceback header.

/// `_Gscan`: OR-ed into the status while the GC scans the stack.
pub(crate) const G_SCAN: u32 = 0x1000;
/// `_Gidle`: just allocated, not yet initialised.
pub(crate) const G_IDLE: u32 = 0;
/// `_Grunnable`: on a run queue.
pub(crate) const G_RUNNABLE: u32 = 1;
/// `_Grunning`: on an M, its stack changing under us.
pub(crate) const G_RUNNING: u32 = 2;
/// `_Gsyscall`: in a system call, its Go stack frozen at `syscallsp`.
pub(crate) const G_SYSCALL: u32 = 3;
/// `_Gwaiting`: blocked; `waitreason` says on what.
pub(crate) const G_WAITING: u32 = 4;
/// `_Gdead`: exited or never used, kept for reuse.
pub(crate) const G_DEAD: u32 = 6;
/// Stopped by an asynchronous preemption request (suspendG), off any M.
pub(crate) const G_PREEMPTED: u32 = 9;
/// Go 1.26+: blocked forever, found by the leak detector.
pub(crate) const G_LEAKED: u32 = 10;
/// Go 1.26+: the dead g parked on an extra M for cgo callbacks.
pub(crate) const G_DEAD_EXTRA: u32 = 11;

/// `gStatusStrings` for versions without a generated table (the layout
/// tables carry each release's own list where one exists).
pub(crate) const DEFAULT_GSTATUS_NAMES: [&str; 10] = [
    "idle",
    "runnable",
    "running",
    "syscall",
    "waiting",
    "",
    "dead",
    "",
    "copystack",
    "preempted",
];

/// The status without the scan bit.
pub(crate) fn base_status(raw: u32) -> u32 {
    raw & !G_SCAN
}

/// The status text inside the header's brackets, before the first comma:
/// the wait reason for a waiting goroutine, ` (leaked)` and ` (scan)` as
/// the runtime appends them.
pub(crate) fn status_text(
    raw: u32,
    waitreason: u8,
    gstatus: &[String],
    wait_reasons: &[String],
) -> String {
    let st = base_status(raw);
    let mut s = gstatus
        .get(st as usize)
        .cloned()
        .unwrap_or_else(|| "???".to_string());
    if (st == G_WAITING || st == G_LEAKED) && waitreason != 0 {
        s = wait_reasons
            .get(waitreason as usize)
            .cloned()
            .unwrap_or_else(|| "unknown wait reason".to_string());
    }
    if st == G_LEAKED {
        s.push_str(" (leaked)");
    }
    if raw & G_SCAN != 0 {
        s.push_str(" (scan)");
    }
    s
}

/// The status text without the ` (scan)` suffix a GC in progress adds: the
/// same goroutine parked in the same place belongs in the same bucket
/// whether or not its stack was being scanned at that instant.
pub(crate) fn without_scan(status: &str) -> &str {
    status.strip_suffix(" (scan)").unwrap_or(status)
}

/// Whole minutes blocked, as Go computes them from `waitsince` and the
/// monotonic clock; `None` below one minute.
pub(crate) fn wait_minutes(raw: u32, waitsince: i64, now_nanotime: i64) -> Option<u64> {
    let st = base_status(raw);
    if (st == G_WAITING || st == G_SYSCALL) && waitsince != 0 {
        let m = now_nanotime.wrapping_sub(waitsince) / 60_000_000_000;
        if m >= 1 {
            return Some(m as u64);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_text_follows_the_runtime() {
        let names: Vec<String> = DEFAULT_GSTATUS_NAMES
            .iter()
            .map(|s| s.to_string())
            .collect();
        let reasons = vec![String::new(), "chan receive".to_string()];
        assert_eq!(status_text(G_RUNNABLE, 0, &names, &reasons), "runnable");
        assert_eq!(status_text(G_WAITING, 1, &names, &reasons), "chan receive");
        assert_eq!(
            status_text(G_WAITING | G_SCAN, 1, &names, &reasons),
            "chan receive (scan)"
        );
        assert_eq!(
            status_text(G_WAITING, 9, &names, &reasons),
            "unknown wait reason"
        );
        assert_eq!(status_text(77, 0, &names, &reasons), "???");
        assert_eq!(without_scan("chan receive (scan)"), "chan receive");
    }

    #[test]
    fn minutes_only_for_blocked_goroutines() {
        let min = 60_000_000_000i64;
        assert_eq!(wait_minutes(G_WAITING, 1, 3 * min + 1), Some(3));
        assert_eq!(wait_minutes(G_WAITING, 1, min / 2), None);
        assert_eq!(wait_minutes(G_RUNNABLE, 1, 3 * min), None);
        assert_eq!(wait_minutes(G_SYSCALL, 0, 3 * min), None);
    }
}
