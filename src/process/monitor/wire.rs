//! The monitor's few messages and their byte form: a 4-byte length, then
//! a tag and fixed little-endian fields. Both ends decode with bounds on
//! every count and length: the root end must survive a reader that a
//! hostile target has taken over (anything it cannot decode ends the
//! session, which releases the target).

use crate::process::{PauseStats, Registers, StopKind, ThreadState};
use std::io::{self, Read, Write};
use std::time::Duration;

/// Largest frame either end accepts.
const MAX_FRAME: usize = 8 << 20;
/// Most threads a hold may name or report.
pub(super) const MAX_THREADS: usize = 1 << 16;
/// Longest error message carried back.
const MAX_MESSAGE: usize = 4096;

/// What the unprivileged reader may ask of the root monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Request {
    /// Stop every thread (`None`) or these threads of the target.
    Hold {
        max_pause: Duration,
        only: Option<Vec<i32>>,
    },
    /// Is the current hold still within its budget?
    Budget,
    /// Let the target run again.
    Release,
    /// Open a sampling perf event on one thread of the target (a thread
    /// created after the privilege drop) and pass its descriptor back.
    /// Only in a profiling session.
    OpenPerf {
        tid: i32,
        period_ns: u64,
        stack_bytes: u32,
        kernel: bool,
    },
}

/// The monitor's answers.
#[derive(Debug, Clone)]
pub(super) enum Reply {
    Held(Vec<ThreadState>),
    Budget(bool),
    Released(PauseStats),
    /// The event asked for: its descriptor rides with this frame
    /// (SCM_RIGHTS).
    PerfFd,
    /// A refusal or failure: the error's exit code and text.
    Error {
        code: u8,
        message: String,
    },
}

const HOLD: u8 = 1;
const BUDGET: u8 = 2;
const RELEASE: u8 = 3;
const OPEN_PERF: u8 = 4;
const HELD: u8 = 11;
const BUDGET_OK: u8 = 12;
const RELEASED: u8 = 13;
const ERROR: u8 = 14;
const PERF_FD: u8 = 15;

/// Writes one frame.
pub(super) fn send(w: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    let mut frame = Vec::with_capacity(4 + payload.len());
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(payload);
    w.write_all(&frame)
}

/// Reads one frame (`UnexpectedEof` when the other end is gone).
pub(super) fn recv(r: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad frame length",
        ));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

/// A bounds-checked reader over one frame.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn count(&mut self, max: usize) -> Option<usize> {
        let n = self.u32()? as usize;
        (n <= max).then_some(n)
    }
    fn done(&self) -> bool {
        self.0.is_empty()
    }
}

impl Request {
    pub(super) fn encode(&self) -> Vec<u8> {
        match self {
            Request::Hold { max_pause, only } => {
                let mut b = vec![HOLD];
                let us = max_pause.as_micros().min(u64::MAX as u128) as u64;
                b.extend_from_slice(&us.to_le_bytes());
                match only {
                    None => b.extend_from_slice(&u32::MAX.to_le_bytes()),
                    Some(t) => {
                        b.extend_from_slice(&(t.len() as u32).to_le_bytes());
                        for tid in t {
                            b.extend_from_slice(&tid.to_le_bytes());
                        }
                    }
                }
                b
            }
            Request::Budget => vec![BUDGET],
            Request::Release => vec![RELEASE],
            Request::OpenPerf {
                tid,
                period_ns,
                stack_bytes,
                kernel,
            } => {
                let mut b = vec![OPEN_PERF];
                b.extend_from_slice(&tid.to_le_bytes());
                b.extend_from_slice(&period_ns.to_le_bytes());
                b.extend_from_slice(&stack_bytes.to_le_bytes());
                b.push(u8::from(*kernel));
                b
            }
        }
    }

    /// `None` for anything but a well-formed request.
    pub(super) fn decode(b: &[u8]) -> Option<Request> {
        let mut f = Fields(b);
        let r = match f.u8()? {
            HOLD => {
                let max_pause = Duration::from_micros(f.u64()?);
                let n = f.u32()?;
                let only = if n == u32::MAX {
                    None
                } else {
                    if n as usize > MAX_THREADS {
                        return None;
                    }
                    Some((0..n).map(|_| f.i32()).collect::<Option<Vec<_>>>()?)
                };
                Request::Hold { max_pause, only }
            }
            BUDGET => Request::Budget,
            RELEASE => Request::Release,
            OPEN_PERF => Request::OpenPerf {
                tid: f.i32()?,
                period_ns: f.u64()?,
                stack_bytes: f.u32()?,
                kernel: match f.u8()? {
                    0 => false,
                    1 => true,
                    _ => return None,
                },
            },
            _ => return None,
        };
        f.done().then_some(r)
    }
}

fn stop_code(s: StopKind) -> (u8, i32) {
    match s {
        StopKind::Interrupt => (0, 0),
        StopKind::GroupStop { signal } => (1, signal),
        StopKind::SignalDelivery { signal } => (2, signal),
    }
}

impl Reply {
    pub(super) fn encode(&self) -> Vec<u8> {
        match self {
            Reply::Held(threads) => {
                let mut b = vec![HELD];
                b.extend_from_slice(&(threads.len() as u32).to_le_bytes());
                for t in threads {
                    b.extend_from_slice(&t.tid.to_le_bytes());
                    let state = if t.state_before.is_ascii() {
                        t.state_before as u8
                    } else {
                        b'?'
                    };
                    b.push(state);
                    let (kind, sig) = stop_code(t.stop);
                    b.push(kind);
                    b.extend_from_slice(&sig.to_le_bytes());
                    let words = t.regs.words();
                    b.extend_from_slice(&(words.len() as u32).to_le_bytes());
                    for w in words {
                        b.extend_from_slice(&w.to_le_bytes());
                    }
                }
                b
            }
            Reply::Budget(ok) => vec![BUDGET_OK, u8::from(*ok)],
            Reply::PerfFd => vec![PERF_FD],
            Reply::Released(s) => {
                let mut b = vec![RELEASED];
                for v in [
                    s.pause.as_micros() as u64,
                    s.stop_latency.as_micros() as u64,
                    s.threads as u64,
                    s.vanished as u64,
                    s.rescans as u64,
                    s.signals_reinjected as u64,
                    s.detach_errors as u64,
                ] {
                    b.extend_from_slice(&v.to_le_bytes());
                }
                b.push(u8::from(s.budget_exceeded));
                b
            }
            Reply::Error { code, message } => {
                let mut b = vec![ERROR, *code];
                let m: String = message.chars().take(MAX_MESSAGE / 4).collect();
                b.extend_from_slice(&(m.len() as u32).to_le_bytes());
                b.extend_from_slice(m.as_bytes());
                b
            }
        }
    }

    pub(super) fn decode(b: &[u8]) -> Option<Reply> {
        let mut f = Fields(b);
        let r = match f.u8()? {
            HELD => {
                let n = f.count(MAX_THREADS)?;
                let mut threads = Vec::with_capacity(n);
                for _ in 0..n {
                    let tid = f.i32()?;
                    let state_before = char::from(f.u8()?);
                    let (kind, signal) = (f.u8()?, f.i32()?);
                    let stop = match kind {
                        0 => StopKind::Interrupt,
                        1 => StopKind::GroupStop { signal },
                        2 => StopKind::SignalDelivery { signal },
                        _ => return None,
                    };
                    let nw = f.count(Registers::WORDS)?;
                    let words: Vec<u64> = (0..nw).map(|_| f.u64()).collect::<Option<_>>()?;
                    let regs = Registers::from_words(&words)?;
                    threads.push(ThreadState {
                        tid,
                        regs,
                        state_before,
                        stop,
                    });
                }
                Reply::Held(threads)
            }
            BUDGET_OK => Reply::Budget(f.u8()? != 0),
            PERF_FD => Reply::PerfFd,
            RELEASED => {
                let mut v = [0u64; 7];
                for x in &mut v {
                    *x = f.u64()?;
                }
                Reply::Released(PauseStats {
                    pause: Duration::from_micros(v[0]),
                    stop_latency: Duration::from_micros(v[1]),
                    threads: v[2] as usize,
                    vanished: v[3] as usize,
                    rescans: v[4] as usize,
                    signals_reinjected: v[5] as usize,
                    detach_errors: v[6] as usize,
                    budget_exceeded: f.u8()? != 0,
                })
            }
            ERROR => {
                let code = f.u8()?;
                let n = f.count(MAX_MESSAGE)?;
                let message = String::from_utf8_lossy(f.take(n)?).into_owned();
                Reply::Error { code, message }
            }
            _ => return None,
        };
        f.done().then_some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_garbage_is_refused() {
        for r in [
            Request::Hold {
                max_pause: Duration::from_millis(1500),
                only: None,
            },
            Request::Hold {
                max_pause: Duration::from_micros(7),
                only: Some(vec![1, 2, -3]),
            },
            Request::Budget,
            Request::Release,
            Request::OpenPerf {
                tid: 77,
                period_ns: 4_000_000,
                stack_bytes: 16384,
                kernel: true,
            },
        ] {
            assert_eq!(Request::decode(&r.encode()), Some(r.clone()));
            let e = r.encode();
            // Every truncation and any trailing byte is refused.
            for cut in 0..e.len() {
                assert_eq!(Request::decode(&e[..cut]), None, "{r:?} cut at {cut}");
            }
            let mut long = e.clone();
            long.push(0);
            assert_eq!(Request::decode(&long), None);
        }
        assert_eq!(Request::decode(&[99]), None);
        // A thread count beyond the cap is refused before anything is read.
        let mut huge = vec![HOLD];
        huge.extend_from_slice(&0u64.to_le_bytes());
        huge.extend_from_slice(&(MAX_THREADS as u32 + 1).to_le_bytes());
        assert_eq!(Request::decode(&huge), None);
        // A kernel flag other than 0 or 1 is malformed.
        let mut bad = Request::OpenPerf {
            tid: 1,
            period_ns: 1,
            stack_bytes: 8,
            kernel: false,
        }
        .encode();
        *bad.last_mut().unwrap() = 2;
        assert_eq!(Request::decode(&bad), None);
    }

    #[test]
    fn replies_round_trip() {
        let stats = PauseStats {
            pause: Duration::from_micros(1234),
            stop_latency: Duration::from_micros(56),
            threads: 7,
            vanished: 1,
            rescans: 2,
            signals_reinjected: 3,
            budget_exceeded: true,
            detach_errors: 0,
        };
        match Reply::decode(&Reply::Released(stats.clone()).encode()) {
            Some(Reply::Released(s)) => assert_eq!(s, stats),
            r => panic!("{r:?}"),
        }
        let words: Vec<u64> = (0..Registers::WORDS as u64).map(|i| i * 3 + 1).collect();
        let t = ThreadState {
            tid: 42,
            regs: Registers::from_words(&words).unwrap(),
            state_before: 'R',
            stop: StopKind::SignalDelivery { signal: 23 },
        };
        let e = Reply::Held(vec![t.clone(), t]).encode();
        match Reply::decode(&e) {
            Some(Reply::Held(ts)) => {
                assert_eq!(ts.len(), 2);
                assert_eq!(ts[1].tid, 42);
                assert_eq!(ts[1].state_before, 'R');
                assert_eq!(ts[1].stop, StopKind::SignalDelivery { signal: 23 });
                assert_eq!(ts[1].regs.words(), words);
            }
            r => panic!("{r:?}"),
        }
        for cut in 0..e.len() {
            assert!(Reply::decode(&e[..cut]).is_none(), "cut at {cut}");
        }
        match Reply::decode(
            &Reply::Error {
                code: 4,
                message: "no".into(),
            }
            .encode(),
        ) {
            Some(Reply::Error { code: 4, message }) => assert_eq!(message, "no"),
            r => panic!("{r:?}"),
        }
        assert!(matches!(
            Reply::decode(&Reply::Budget(true).encode()),
            Some(Reply::Budget(true))
        ));
    }
}
