//! UDP generic segmentation offload (Linux `UDP_SEGMENT`): the datagrams one turn of a
//! session sends to one address go out in one `sendmsg`, and the kernel cuts them.
//!
//! A viewer's video frame is several RTP packets of the same size (the last one
//! shorter), all to the same address. Sent one by one, each paid the whole send path
//! (system call, route lookup, buffer set-up); that was the largest part of a WHEP
//! viewer's cost. The wire sees the same datagrams either way.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

/// The kernel's limit on segments per send.
const MAX_SEGMENTS: usize = 64;
/// The most bytes one send may carry (an IP datagram's limit, less headers).
const MAX_BYTES: usize = 65_000;

/// Datagrams waiting to go to one address: all of one size but the last, which may be
/// shorter and then closes the batch.
#[derive(Debug, Default)]
pub struct Batch {
    dest: Option<SocketAddr>,
    segment: usize,
    buf: Vec<u8>,
    count: usize,
    closed: bool,
}

impl Batch {
    /// Whether `len` bytes to `dest` can join what is waiting.
    pub fn fits(&self, dest: SocketAddr, len: usize) -> bool {
        self.count == 0
            || (self.dest == Some(dest)
                && !self.closed
                && len <= self.segment
                && self.count < MAX_SEGMENTS
                && self.buf.len() + len <= MAX_BYTES)
    }

    /// Adds a datagram (after [`Batch::fits`] said yes, or to an empty batch).
    pub fn push(&mut self, dest: SocketAddr, data: &[u8]) {
        if self.count == 0 {
            self.dest = Some(dest);
            self.segment = data.len();
        } else if data.len() < self.segment {
            self.closed = true;
        }
        self.buf.extend_from_slice(data);
        self.count += 1;
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Sends what is waiting (one `sendmsg` when `gso` holds and there are several) and
    /// empties the batch. A kernel without `UDP_SEGMENT` clears `gso`; the datagrams then
    /// go one by one, now and later.
    pub fn flush(&mut self, socket: &UdpSocket, gso: &mut bool) -> io::Result<()> {
        let Some(dest) = self.dest.take() else {
            return Ok(());
        };
        let result = if self.count > 1 && *gso {
            match send_segmented(socket, dest, &self.buf, self.segment) {
                Err(e) if unsupported(&e) => {
                    *gso = false;
                    send_each(socket, dest, &self.buf, self.segment)
                }
                other => other,
            }
        } else {
            send_each(socket, dest, &self.buf, self.segment)
        };
        self.buf.clear();
        self.count = 0;
        self.closed = false;
        result
    }
}

/// A socket's sends, batched per address: [`Sender::send`] queues, and whatever does not
/// fit, and [`Sender::flush`], sends.
pub struct Sender<'a> {
    socket: &'a UdpSocket,
    batch: Batch,
    /// `UDP_SEGMENT` works here (cleared at the first refusal).
    gso: bool,
}

impl<'a> Sender<'a> {
    pub fn new(socket: &'a UdpSocket) -> Self {
        Sender {
            socket,
            batch: Batch::default(),
            gso: true,
        }
    }

    pub fn send(&mut self, dest: SocketAddr, data: &[u8]) -> io::Result<()> {
        let mut result = Ok(());
        if !self.batch.fits(dest, data.len()) {
            result = self.flush();
        }
        self.batch.push(dest, data);
        result
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.batch.flush(self.socket, &mut self.gso)
    }
}

fn unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EIO | libc::EINVAL | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
    )
}

fn send_each(socket: &UdpSocket, dest: SocketAddr, buf: &[u8], segment: usize) -> io::Result<()> {
    let mut last = Ok(());
    for d in buf.chunks(segment.max(1)) {
        if let Err(e) = socket.send_to(d, dest) {
            last = Err(e);
        }
    }
    last
}

/// One `sendmsg` of `buf` to `dest`, cut by the kernel into `segment`-byte datagrams.
fn send_segmented(
    socket: &UdpSocket,
    dest: SocketAddr,
    buf: &[u8],
    segment: usize,
) -> io::Result<()> {
    let seg = u16::try_from(segment).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: every pointer handed to sendmsg points into a local that outlives the call
    // (the address, the iovec over `buf`, the aligned control buffer); the control message
    // is written inside the buffer, whose size CMSG_SPACE gives.
    unsafe {
        let mut addr: libc::sockaddr_storage = std::mem::zeroed();
        let addr_len = match dest {
            SocketAddr::V4(a) => {
                let sin = &mut *(&mut addr as *mut _ as *mut libc::sockaddr_in);
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = a.port().to_be();
                sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
                std::mem::size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(a) => {
                let sin6 = &mut *(&mut addr as *mut _ as *mut libc::sockaddr_in6);
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = a.port().to_be();
                sin6.sin6_addr.s6_addr = a.ip().octets();
                sin6.sin6_flowinfo = a.flowinfo();
                sin6.sin6_scope_id = a.scope_id();
                std::mem::size_of::<libc::sockaddr_in6>()
            }
        };
        let mut iov = libc::iovec {
            iov_base: buf.as_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        };
        let space = libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) as usize;
        let mut control = [0u64; 4];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_name = &mut addr as *mut _ as *mut libc::c_void;
        msg.msg_namelen = addr_len as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = space.min(std::mem::size_of_val(&control)) as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        (*cmsg).cmsg_level = libc::SOL_UDP;
        (*cmsg).cmsg_type = libc::UDP_SEGMENT;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut u16, seg);
        if libc::sendmsg(socket.as_raw_fd(), &msg, 0) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn a_batch_holds_equal_datagrams_to_one_address_and_closes_on_a_short_one() {
        let mut b = Batch::default();
        assert!(b.fits(addr(1), 1200));
        b.push(addr(1), &[0; 1200]);
        assert!(b.fits(addr(1), 1200));
        assert!(!b.fits(addr(2), 1200), "another address");
        assert!(!b.fits(addr(1), 1300), "a longer datagram");
        b.push(addr(1), &[0; 1200]);
        b.push(addr(1), &[0; 500]);
        assert!(!b.fits(addr(1), 500), "closed by the short one");
        assert_eq!(b.count, 3);
    }

    #[test]
    fn the_receiver_gets_each_datagram_whole_and_in_order() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        for mut gso in [true, false] {
            let mut b = Batch::default();
            for (i, len) in [1100usize, 1100, 1100, 700].into_iter().enumerate() {
                assert!(b.fits(to, len));
                b.push(to, &vec![i as u8; len]);
            }
            let tried = gso;
            b.flush(&tx, &mut gso).unwrap();
            assert!(b.is_empty());
            // Linux has had UDP_SEGMENT since 4.18: the one-send path was taken.
            assert_eq!(gso, tried, "UDP_SEGMENT refused");
            let mut buf = [0u8; 2048];
            for (i, len) in [1100usize, 1100, 1100, 700].into_iter().enumerate() {
                let (n, from) = rx.recv_from(&mut buf).unwrap();
                assert_eq!(from, tx.local_addr().unwrap());
                assert_eq!(n, len, "datagram {i}");
                assert!(buf[..n].iter().all(|&x| x == i as u8));
            }
        }
    }
}
