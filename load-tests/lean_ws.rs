//! A minimal websocket client for `load-realtime`'s worker processes: blocking handshakes, then
//! one thread that reads every socket through one epoll set.
//!
//! Why not tokio-tungstenite: its client took ~20 µs of CPU per received frame (a task wake, a
//! per-frame timer, a `String` per frame) on the two cores it shares with the hub, about
//! half of what the hub spends delivering the frame, so the load generator was measuring itself.
//! Here a frame costs a slice of one `recvmsg` and a scan for `"t":`.
//!
//! Each read also carries the kernel's receive time of its data (`SO_TIMESTAMPNS`), so a frame's
//! latency is reported twice: to its arrival at the client's socket (what the hub controls), and
//! to the moment this process read it (plus the client's own wait for a CPU on a shared box).
//! A read that drains several packets carries the latest one's time, so arrival figures err late.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

/// Server frame opcodes this client acts on.
pub const TEXT: u8 = 0x1;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;

/// Connects from `bind` to `addr`, upgrades `path` (with its query) to a websocket, and returns
/// the socket with any bytes read past the handshake answer. `timeout` bounds each read and
/// write of the handshake (the connect itself is the kernel's).
pub fn connect(
    addr: SocketAddr,
    bind: IpAddr,
    path: &str,
    timeout: Duration,
) -> io::Result<(TcpStream, Vec<u8>)> {
    let socket = socket_bound(bind)?;
    let mut stream = connect_from(socket, addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: bG9hZC1yZWFsdGltZS0xMg==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes())?;
    let (head, rest) = read_head(&mut stream)?;
    let status_line = head.lines().next().unwrap_or_default();
    if !status_line.starts_with("HTTP/1.1 101") {
        return Err(io::Error::other(format!("upgrade refused: {status_line}")));
    }
    Ok((stream, rest))
}

/// Reads an HTTP head (request or answer) up to its blank line: the head as text, and any
/// bytes read past it.
pub fn read_head(stream: &mut impl Read) -> io::Result<(String, Vec<u8>)> {
    let mut got = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed during the handshake",
            ));
        }
        got.extend_from_slice(&chunk[..n]);
        if let Some(at) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = got.split_off(at + 4);
            return Ok((String::from_utf8_lossy(&got).into_owned(), rest));
        }
        if got.len() > 16 * 1024 {
            return Err(io::Error::other("HTTP head too long"));
        }
    }
}

fn socket_bound(bind: IpAddr) -> io::Result<RawFd> {
    // SAFETY: plain socket calls on a descriptor this function owns until it returns it.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let IpAddr::V4(v4) = bind else {
            libc::close(fd);
            return Err(io::Error::other("IPv4 source addresses only"));
        };
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(v4.octets()),
            },
            sin_zero: [0; 8],
        };
        let on: libc::c_int = 1;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        );
        if libc::bind(
            fd,
            (&sa as *const libc::sockaddr_in).cast(),
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
        ) != 0
        {
            let e = io::Error::last_os_error();
            libc::close(fd);
            return Err(e);
        }
        Ok(fd)
    }
}

fn connect_from(fd: RawFd, addr: SocketAddr) -> io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    // SAFETY: `fd` is a fresh socket owned here; the TcpStream takes it over (and closes it).
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    let SocketAddr::V4(v4) = addr else {
        return Err(io::Error::other("IPv4 hub addresses only"));
    };
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(v4.ip().octets()),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: connect on the socket above with a valid sockaddr_in.
    let rc = unsafe {
        libc::connect(
            fd,
            (&sa as *const libc::sockaddr_in).cast(),
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(stream)
}

/// One `recvmsg`: bytes read (0 at end of stream) and the kernel's receive time of the data, µs
/// since the Unix epoch (0 if none was attached).
pub fn recv_timed(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, i64)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = [0u64; 16];
    // SAFETY: msghdr is plain data; every pointer in it outlives the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&control) as _;
    // SAFETY: reads into `buf` and `control`, both sized in `msg`.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut at_us = 0;
    // SAFETY: walks the control messages the kernel wrote into `control`.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                at_us = ts.tv_sec * 1_000_000 + ts.tv_nsec / 1_000;
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n as usize, at_us))
}

/// Splits a server's byte stream into frames (servers never mask); keeps a partial frame
/// until the rest arrives.
#[derive(Default)]
pub struct Frames {
    partial: Vec<u8>,
}

impl Frames {
    /// Calls `on_frame(opcode, payload)` for every whole frame in what was buffered plus `data`.
    pub fn feed(&mut self, data: &[u8], mut on_frame: impl FnMut(u8, &[u8])) -> io::Result<()> {
        if self.partial.is_empty() {
            let used = split(data, &mut on_frame)?;
            self.partial.extend_from_slice(&data[used..]);
        } else {
            self.partial.extend_from_slice(data);
            let used = split(&self.partial, &mut on_frame)?;
            self.partial.drain(..used);
        }
        Ok(())
    }
}

/// Whole frames at the front of `data`; returns the bytes they took.
fn split(data: &[u8], on_frame: &mut impl FnMut(u8, &[u8])) -> io::Result<usize> {
    let mut at = 0;
    loop {
        let rest = &data[at..];
        if rest.len() < 2 {
            return Ok(at);
        }
        if rest[1] & 0x80 != 0 {
            return Err(io::Error::other("masked frame from the server"));
        }
        let (len, head) = match rest[1] & 0x7f {
            126 if rest.len() >= 4 => (u16::from_be_bytes([rest[2], rest[3]]) as usize, 4),
            127 if rest.len() >= 10 => (
                u64::from_be_bytes(rest[2..10].try_into().expect("8 bytes")) as usize,
                10,
            ),
            126 | 127 => return Ok(at),
            n => (n as usize, 2),
        };
        if rest.len() < head + len {
            return Ok(at);
        }
        on_frame(rest[0] & 0x0f, &rest[head..head + len]);
        at += head + len;
    }
}

/// A server frame (unmasked), as the `floor` workload's server writes them.
pub fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + 10);
    f.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => f.push(n as u8),
        n if n <= u16::MAX as usize => {
            f.push(126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(payload);
    f
}

/// A client frame (clients must mask; the zero mask keeps the payload as it is).
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126, "control-sized frames only");
    let mut f = Vec::with_capacity(6 + payload.len());
    f.extend_from_slice(&[0x80 | opcode, 0x80 | payload.len() as u8, 0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

/// A level-triggered epoll set of sockets, each known by its index.
pub struct Epoll {
    fd: RawFd,
}

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: creates a descriptor owned by the returned value.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Epoll { fd })
    }

    pub fn add(&self, socket: &impl AsRawFd, index: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: index,
        };
        // SAFETY: registers a live socket with this epoll set.
        if unsafe { libc::epoll_ctl(self.fd, libc::EPOLL_CTL_ADD, socket.as_raw_fd(), &mut ev) }
            != 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn remove(&self, socket: &impl AsRawFd) {
        // SAFETY: deregistering a descriptor that may or may not be in the set is harmless.
        unsafe {
            libc::epoll_ctl(
                self.fd,
                libc::EPOLL_CTL_DEL,
                socket.as_raw_fd(),
                std::ptr::null_mut(),
            );
        }
    }

    /// Indexes of ready sockets into `ready` (cleared first); waits at most `timeout_ms`.
    pub fn wait(&self, ready: &mut Vec<u64>, timeout_ms: i32) -> io::Result<()> {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 512];
        // SAFETY: the kernel writes at most `events.len()` entries.
        let n = unsafe {
            libc::epoll_wait(
                self.fd,
                events.as_mut_ptr(),
                events.len() as i32,
                timeout_ms,
            )
        };
        ready.clear();
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(e)
            };
        }
        ready.extend(events[..n as usize].iter().map(|e| e.u64));
        Ok(())
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: closes the descriptor this value owns.
        unsafe {
            libc::close(self.fd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_across_reads_come_out_whole() {
        let sizes = [1, 300, 70_000, 2];
        let stream: Vec<u8> = sizes
            .iter()
            .flat_map(|&n| server_frame(TEXT, "x".repeat(n).as_bytes()))
            .collect();
        let mut frames = Frames::default();
        let mut seen = Vec::new();
        for piece in stream.chunks(4099) {
            frames
                .feed(piece, |op, p| seen.push((op, p.len())))
                .unwrap();
        }
        assert_eq!(seen, sizes.map(|n| (TEXT, n)).to_vec());
    }
}
