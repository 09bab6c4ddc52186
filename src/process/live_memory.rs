//! [`LiveMemory`]: reading a running process's address space, read-only.
//!
//! The fast path is `process_vm_readv`, which copies many scattered ranges
//! in one syscall ([`LiveMemory::read_batch`] issues up to 1024 remote
//! ranges per call). When the kernel refuses it (EPERM after gopeek dropped
//! privileges; ENOSYS on kernels or sandboxes without it) reads fall back
//! to `pread` on `/proc/PID/mem`, opened `O_RDONLY` once and kept open: the
//! permission check happens at open, so an fd opened while privileged keeps
//! working after the privilege drop the design asks for.
//!
//! Nothing here can write: there is no `process_vm_writev` and the mem file
//! is never opened for writing (the seccomp filter enforces the same).

use crate::memory::{BatchRead, Memory, MemoryError};
use nix::errno::Errno;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// Requests closer than this are read as one span on the `/proc/PID/mem`
/// path (a page: g structs sit a few hundred bytes apart in their spans).
const PREAD_GAP: u64 = 4096;
/// Longest span read at once on that path.
const PREAD_SPAN: u64 = 1 << 20;
/// Remote iovecs per `process_vm_readv` call (the kernel's UIO_MAXIOV).
pub const IOV_MAX: usize = 1024;
/// Bytes per `process_vm_readv` call; the kernel silently caps one call at
/// about 2 GiB (MAX_RW_COUNT), so batches are split well below that.
const MAX_BYTES_PER_CALL: usize = 1 << 30;

/// The address space of a live process, read with `process_vm_readv` and
/// falling back to `/proc/PID/mem`.
///
/// Reads are not atomic with respect to the target: for a consistent
/// snapshot, read while the process is held by a
/// [`super::SeizedProcess`].
#[derive(Debug)]
pub struct LiveMemory {
    pid: i32,
    /// Set once `process_vm_readv` was refused: every later read uses the
    /// mem fd without trying it again.
    proc_mem_mode: AtomicBool,
    /// `/proc/PID/mem`, opened on first need (or eagerly by [`Self::open`]).
    mem: OnceLock<Result<File, String>>,
}

impl LiveMemory {
    /// Reads `pid`'s memory; `/proc/PID/mem` is opened only if
    /// `process_vm_readv` is refused.
    pub fn new(pid: i32) -> Self {
        LiveMemory {
            pid,
            proc_mem_mode: AtomicBool::new(false),
            mem: OnceLock::new(),
        }
    }

    /// Like [`Self::new`] but opens `/proc/PID/mem` now, so that reads keep
    /// working after gopeek drops root for the invoking user (the fd keeps
    /// the access granted at open).
    pub fn open(pid: i32) -> io::Result<Self> {
        let m = Self::new(pid);
        let f = File::open(format!("/proc/{pid}/mem"))?;
        let _ = m.mem.set(Ok(f));
        Ok(m)
    }

    /// Uses only `/proc/PID/mem` (opened now), never `process_vm_readv`:
    /// for environments known to refuse it, and to test the fallback.
    pub fn proc_mem_only(pid: i32) -> io::Result<Self> {
        let m = Self::open(pid)?;
        m.proc_mem_mode.store(true, Ordering::Relaxed);
        Ok(m)
    }

    /// The process being read.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// True once reads go through `/proc/PID/mem` (reported by `gopeek
    /// info` and useful when a read is slow).
    pub fn uses_proc_mem(&self) -> bool {
        self.proc_mem_mode.load(Ordering::Relaxed)
    }

    /// Reads many ranges with as few syscalls as possible; one result per
    /// request, in order. A failing range (unmapped, process gone) fails
    /// alone: `process_vm_readv` stops at the first unreadable remote range,
    /// so the rest of that batch is re-issued.
    pub fn read_batch(&self, requests: &mut [(u64, &mut [u8])]) -> Vec<Result<(), MemoryError>> {
        let n = requests.len();
        let mut results: Vec<Result<(), MemoryError>> = vec![Ok(()); n];
        let mut i = 0;
        while i < n {
            if self.uses_proc_mem() {
                self.pread_batch(&mut requests[i..], &mut results[i..]);
                break;
            }
            // Gather one call's worth of non-empty, non-wrapping requests.
            let mut idx: Vec<usize> = Vec::new();
            let mut local: Vec<libc::iovec> = Vec::new();
            let mut remote: Vec<libc::iovec> = Vec::new();
            let mut total = 0usize;
            let mut j = i;
            while j < n && idx.len() < IOV_MAX {
                let (addr, buf) = &mut requests[j];
                let len = buf.len();
                if len == 0 {
                    j += 1;
                    continue;
                }
                if addr.checked_add(len as u64).is_none() || *addr > usize::MAX as u64 {
                    results[j] = Err(MemoryError::new(*addr, len, "address range wraps around"));
                    j += 1;
                    continue;
                }
                if !idx.is_empty() && total + len > MAX_BYTES_PER_CALL {
                    break;
                }
                idx.push(j);
                local.push(libc::iovec {
                    iov_base: buf.as_mut_ptr().cast(),
                    iov_len: len,
                });
                remote.push(libc::iovec {
                    iov_base: *addr as usize as *mut libc::c_void,
                    iov_len: len,
                });
                total += len;
                j += 1;
            }
            if idx.is_empty() {
                i = j;
                continue;
            }
            match vm_readv(self.pid, &local, &remote) {
                Ok(got) if got == total => i = j,
                Ok(got) => {
                    // Requests entirely inside `got` bytes are done; the one
                    // straddling the end failed; re-read it alone for its
                    // exact error, then go on after it.
                    let mut done = 0usize;
                    let mut k = 0;
                    while k < idx.len() && done + remote[k].iov_len <= got {
                        done += remote[k].iov_len;
                        k += 1;
                    }
                    let r = idx[k];
                    let (addr, buf) = &mut requests[r];
                    results[r] = self.read_one(*addr, buf);
                    i = r + 1;
                }
                Err(Errno::EFAULT) => {
                    // Nothing was read: the first range is unreadable.
                    let r = idx[0];
                    let (addr, buf) = &mut requests[r];
                    results[r] = self.read_one(*addr, buf);
                    i = r + 1;
                }
                Err(Errno::EPERM | Errno::ENOSYS) => {
                    self.proc_mem_mode.store(true, Ordering::Relaxed);
                    // `i` unchanged: the loop redoes this batch via the fd.
                }
                Err(Errno::ESRCH) => {
                    for (k, (addr, buf)) in requests.iter().enumerate().skip(i) {
                        if !buf.is_empty() && results[k].is_ok() {
                            results[k] =
                                Err(MemoryError::new(*addr, buf.len(), "the process has exited"));
                        }
                    }
                    break;
                }
                Err(_) => {
                    // ENOMEM/EINVAL and the like: fall back to one call per range.
                    for &r in &idx {
                        let (addr, buf) = &mut requests[r];
                        results[r] = self.read_one(*addr, buf);
                    }
                    i = j;
                }
            }
        }
        results
    }

    fn read_one(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let len = buf.len();
        if len == 0 {
            return Ok(());
        }
        if addr.checked_add(len as u64).is_none() || addr > usize::MAX as u64 {
            return Err(MemoryError::new(addr, len, "address range wraps around"));
        }
        if !self.uses_proc_mem() {
            let local = [libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: len,
            }];
            let remote = [libc::iovec {
                iov_base: addr as usize as *mut libc::c_void,
                iov_len: len,
            }];
            match vm_readv(self.pid, &local, &remote) {
                Ok(n) if n == len => return Ok(()),
                Ok(n) => {
                    return Err(MemoryError::new(
                        addr,
                        len,
                        format!("only the first {n} bytes are mapped"),
                    ))
                }
                Err(Errno::EFAULT) => {
                    return Err(MemoryError::new(addr, len, "not mapped in the target"))
                }
                Err(Errno::ESRCH) => {
                    return Err(MemoryError::new(addr, len, "the process has exited"))
                }
                Err(Errno::EPERM | Errno::ENOSYS) => {
                    self.proc_mem_mode.store(true, Ordering::Relaxed)
                }
                Err(e) => {
                    return Err(MemoryError::new(
                        addr,
                        len,
                        format!("process_vm_readv: {}", e.desc()),
                    ))
                }
            }
        }
        self.pread_full(addr, buf)
    }

    /// The `/proc/PID/mem` path of [`LiveMemory::read_batch`] (under sudo,
    /// after the drop): one `pread` per request would cost a syscall per
    /// g struct, so requests are sorted and those within [`PREAD_GAP`] of
    /// each other read as one span (at most [`PREAD_SPAN`] bytes) and
    /// copied out. A span that cannot be read whole is read request by
    /// request, so each failure stays its own, as in the other path.
    fn pread_batch(
        &self,
        requests: &mut [(u64, &mut [u8])],
        results: &mut [Result<(), MemoryError>],
    ) {
        let mut order: Vec<usize> = (0..requests.len())
            .filter(|&k| !requests[k].1.is_empty())
            .collect();
        order.sort_by_key(|&k| requests[k].0);
        let mut scratch = Vec::new();
        let mut g = 0;
        while g < order.len() {
            let start = requests[order[g]].0;
            let mut end = start.saturating_add(requests[order[g]].1.len() as u64);
            let mut h = g + 1;
            while h < order.len() {
                let (a, len) = (requests[order[h]].0, requests[order[h]].1.len() as u64);
                let e = a.saturating_add(len).max(end);
                if a > end.saturating_add(PREAD_GAP) || e - start > PREAD_SPAN {
                    break;
                }
                end = e;
                h += 1;
            }
            let whole = h - g > 1 && {
                scratch.resize((end - start) as usize, 0);
                self.pread_full(start, &mut scratch).is_ok()
            };
            for &k in &order[g..h] {
                let (addr, buf) = &mut requests[k];
                if whole {
                    let off = (*addr - start) as usize;
                    let len = buf.len();
                    buf.copy_from_slice(&scratch[off..off + len]);
                } else {
                    results[k] = self.pread_full(*addr, buf);
                }
            }
            g = h;
        }
    }

    fn pread_full(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let len = buf.len();
        if len == 0 {
            return Ok(());
        }
        let file = match self.mem.get_or_init(|| {
            File::open(format!("/proc/{}/mem", self.pid))
                .map_err(|e| format!("cannot open /proc/{}/mem: {e}", self.pid))
        }) {
            Ok(f) => f,
            Err(msg) => return Err(MemoryError::new(addr, len, msg.clone())),
        };
        // The file offset is signed: addresses with the top bit set are
        // kernel space and never readable here.
        if addr > i64::MAX as u64 || (i64::MAX as u64 - addr) < len as u64 {
            return Err(MemoryError::new(
                addr,
                len,
                "address outside the user address space",
            ));
        }
        let mut done = 0usize;
        while done < len {
            match file.read_at(&mut buf[done..], addr + done as u64) {
                Ok(0) => {
                    let why = if done == 0 {
                        "not mapped, or the process has exited".to_string()
                    } else {
                        format!("only the first {done} bytes are mapped")
                    };
                    return Err(MemoryError::new(addr, len, why));
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::EIO) => {
                    let why = if done == 0 {
                        "not mapped in the target".to_string()
                    } else {
                        format!("only the first {done} bytes are mapped")
                    };
                    return Err(MemoryError::new(addr, len, why));
                }
                Err(e) => {
                    return Err(MemoryError::new(
                        addr,
                        len,
                        format!("/proc/{}/mem: {e}", self.pid),
                    ))
                }
            }
        }
        Ok(())
    }
}

impl Memory for LiveMemory {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.read_one(addr, buf)
    }
}

/// The walker reads through [`BatchRead`]; a live process answers with
/// batched `process_vm_readv` ([`LiveMemory::read_batch`]).
impl BatchRead for LiveMemory {
    fn read_batch(&self, requests: &mut [(u64, &mut [u8])]) -> Vec<Result<(), MemoryError>> {
        LiveMemory::read_batch(self, requests)
    }
}

/// One `process_vm_readv` call: bytes read, or the errno when nothing was.
fn vm_readv(pid: i32, local: &[libc::iovec], remote: &[libc::iovec]) -> Result<usize, Errno> {
    loop {
        // SAFETY: every local iovec points into a live, exclusively borrowed
        // buffer of iov_len bytes; remote iovecs are only addresses in the
        // other process and are validated by the kernel.
        let r = unsafe {
            libc::process_vm_readv(
                pid,
                local.as_ptr(),
                local.len() as libc::c_ulong,
                remote.as_ptr(),
                remote.len() as libc::c_ulong,
                0,
            )
        };
        if r >= 0 {
            return Ok(r as usize);
        }
        match Errno::last() {
            Errno::EINTR => continue,
            e => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryExt;

    #[test]
    fn reads_own_memory_both_ways() {
        let me = std::process::id() as i32;
        let data: Vec<u8> = (0..=255u8).collect();
        let addr = data.as_ptr() as u64;
        for m in [LiveMemory::new(me), LiveMemory::proc_mem_only(me).unwrap()] {
            let mut b = [0u8; 16];
            m.read_at(addr + 10, &mut b).unwrap();
            assert_eq!(&b[..], &data[10..26]);
            assert!(m.read_at(0, &mut b).is_err());
            assert!(m.read_u64(u64::MAX - 3).is_err());
            let mut a = [0u8; 4];
            let mut z = [0u8; 8];
            let mut c = [0u8; 4];
            let mut reqs: Vec<(u64, &mut [u8])> =
                vec![(addr, &mut a), (8, &mut z), (addr + 252, &mut c)];
            let r = m.read_batch(&mut reqs);
            assert!(r[0].is_ok() && r[1].is_err() && r[2].is_ok(), "{r:?}");
            assert_eq!(a, [0, 1, 2, 3]);
            assert_eq!(c, [252, 253, 254, 255]);
        }
    }

    #[test]
    fn batch_continues_after_a_range_that_runs_into_unmapped_memory() {
        let me = std::process::id() as i32;
        // Two pages, the second unmapped: a read across the end is partial.
        // SAFETY: fresh anonymous mapping, unmapped again below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                8192,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        // SAFETY: p is a valid 2-page mapping; the first page stays mapped.
        unsafe {
            std::ptr::write_bytes(p.cast::<u8>(), 0xab, 4096);
            libc::munmap(p.cast::<u8>().add(4096).cast(), 4096);
        }
        let page = p as u64;
        let data = [7u8; 32];
        let ok = data.as_ptr() as u64;
        for m in [LiveMemory::new(me), LiveMemory::proc_mem_only(me).unwrap()] {
            let (mut a, mut b, mut c, mut d) = ([0u8; 8], [0u8; 16], [0u8; 8], [0u8; 8]);
            let mut reqs: Vec<(u64, &mut [u8])> = vec![
                (ok, &mut a),
                (page + 4088, &mut b),
                (page + 4096, &mut c),
                (ok + 8, &mut d),
            ];
            let r = m.read_batch(&mut reqs);
            assert!(r[0].is_ok() && r[3].is_ok(), "{r:?}");
            assert!(
                r[1].as_ref()
                    .unwrap_err()
                    .reason
                    .contains("only the first 8 bytes"),
                "{r:?}"
            );
            assert!(r[2].is_err(), "{r:?}");
            assert_eq!((a, d), ([7; 8], [7; 8]));
        }
        // SAFETY: unmapping the first page of our own mapping.
        unsafe { libc::munmap(p, 4096) };
    }

    #[test]
    fn batch_larger_than_iov_max() {
        let me = std::process::id() as i32;
        let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        let base = data.as_ptr() as u64;
        let ranges: Vec<(u64, usize)> = (0..2500u64)
            .map(|i| {
                if i % 700 == 5 {
                    (0x10, 1)
                } else {
                    (base + i, 1)
                }
            })
            .collect();
        for m in [LiveMemory::new(me), LiveMemory::proc_mem_only(me).unwrap()] {
            let mut bufs = vec![[0u8; 1]; ranges.len()];
            let mut reqs: Vec<(u64, &mut [u8])> = ranges
                .iter()
                .zip(bufs.iter_mut())
                .map(|(&(addr, _), b)| (addr, &mut b[..]))
                .collect();
            let results = m.read_batch(&mut reqs);
            assert_eq!(results.iter().filter(|r| r.is_err()).count(), 4);
            assert_eq!(results.len(), 2500);
            assert_eq!(bufs[2499][0], data[2499]);
            assert_eq!(bufs[1234][0], data[1234]);
            assert_eq!(
                bufs[5][0], 0,
                "an unreadable range leaves its buffer untouched"
            );
        }
    }

    /// The `/proc/PID/mem` path reads nearby requests as one span: each
    /// buffer gets exactly its own bytes, in any request order, with
    /// overlapping and zero-length requests.
    #[test]
    fn proc_mem_spans_copy_each_request_exactly() {
        let me = std::process::id() as i32;
        let data: Vec<u8> = (0..20000u32).map(|i| (i * 7 % 253) as u8).collect();
        let base = data.as_ptr() as u64;
        let wanted: Vec<(u64, usize)> = vec![
            (9000, 40),
            (10, 5),
            (12, 30),
            (5000, 0),
            (19990, 10),
            (100, 1),
            (14000, 3000),
        ];
        let m = LiveMemory::proc_mem_only(me).unwrap();
        let mut bufs: Vec<Vec<u8>> = wanted.iter().map(|&(_, n)| vec![0xee; n]).collect();
        let mut reqs: Vec<(u64, &mut [u8])> = wanted
            .iter()
            .zip(bufs.iter_mut())
            .map(|(&(off, _), b)| (base + off, &mut b[..]))
            .collect();
        let r = m.read_batch(&mut reqs);
        assert!(r.iter().all(|x| x.is_ok()), "{r:?}");
        for (&(off, n), b) in wanted.iter().zip(&bufs) {
            assert_eq!(&b[..], &data[off as usize..off as usize + n], "at {off}");
        }
    }
}
