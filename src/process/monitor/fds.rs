//! Frames with a descriptor attached (`SCM_RIGHTS`): how the root monitor
//! hands the reader a perf event it opened for a thread created after the
//! privilege drop. The reader maps and reads the event's ring; it cannot
//! change what the event samples (the ioctls that could are refused by
//! its seccomp filter), and the descriptor names no process it could use.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

/// Room for one `int` of ancillary data, aligned as the kernel wants
/// (`CMSG_SPACE(sizeof(int))` is 24 on 64-bit Linux; 64 is ample).
const CMSG_BUF: usize = 64;

/// Writes one frame (4-byte length, payload) with `fd` attached to its
/// first byte.
pub(super) fn send_with_fd(sock: &mut UnixStream, payload: &[u8], fd: RawFd) -> io::Result<()> {
    let mut frame = Vec::with_capacity(4 + payload.len());
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(payload);
    let mut cbuf = [0u64; CMSG_BUF / 8];
    let mut iov = libc::iovec {
        iov_base: frame.as_mut_ptr().cast(),
        iov_len: frame.len(),
    };
    // SAFETY: msghdr is plain data; every pointer set below outlives the
    // sendmsg call, and the cmsg macros stay within `cbuf`, which is
    // CMSG_SPACE(sizeof(int)) or more and 8-aligned.
    let sent = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as _;
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<RawFd>(), fd);
        libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL)
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    // The descriptor went with the first byte; the rest, if the kernel
    // took less, follows as plain bytes.
    sock.write_all(&frame[sent as usize..])
}

/// Reads one frame and the descriptor that came with it, if any
/// (received close-on-exec). A frame that came with more than one
/// descriptor keeps the first; the others are closed.
pub(super) fn recv_with_fd(sock: &mut UnixStream) -> io::Result<(Vec<u8>, Option<OwnedFd>)> {
    let mut head = [0u8; 4];
    let mut cbuf = [0u64; CMSG_BUF / 8];
    let mut iov = libc::iovec {
        iov_base: head.as_mut_ptr().cast(),
        iov_len: head.len(),
    };
    // SAFETY: as in send_with_fd; the kernel writes at most
    // msg_controllen bytes into `cbuf` and at most 4 into `head`.
    let (n, msg) = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = CMSG_BUF as _;
        let n = libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
        (n, msg)
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut fds = Vec::new();
    // SAFETY: walking the control buffer the kernel filled, with the
    // kernel's own bounds (CMSG_NXTHDR checks msg_controllen).
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c);
                let len = ((*c).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize)
                    / std::mem::size_of::<RawFd>();
                for i in 0..len {
                    let fd = std::ptr::read_unaligned(data.cast::<RawFd>().add(i));
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    let fd = if fds.is_empty() {
        None
    } else {
        Some(fds.swap_remove(0))
    };
    if n == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    sock.read_exact(&mut head[n as usize..])?;
    let len = u32::from_le_bytes(head) as usize;
    if len == 0 || len > 4096 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad frame length",
        ));
    }
    let mut buf = vec![0u8; len];
    sock.read_exact(&mut buf)?;
    Ok((buf, fd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Seek;

    #[test]
    fn a_descriptor_crosses_with_its_frame() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"hello").unwrap();
        f.rewind().unwrap();
        send_with_fd(&mut a, &[15], f.as_raw_fd()).unwrap();
        drop(f);
        let (frame, fd) = recv_with_fd(&mut b).unwrap();
        assert_eq!(frame, vec![15]);
        let mut got = String::new();
        std::fs::File::from(fd.expect("a descriptor"))
            .read_to_string(&mut got)
            .unwrap();
        assert_eq!(got, "hello");
        // A frame without one: none, and the frame itself intact.
        super::super::wire::send(&mut a, &[12, 1]).unwrap();
        let (frame, fd) = recv_with_fd(&mut b).unwrap();
        assert_eq!((frame, fd.is_none()), (vec![12, 1], true));
        drop(a);
        assert!(recv_with_fd(&mut b).is_err());
    }
}
