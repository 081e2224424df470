//! Listening sockets for the shards. glommio's own `bind` sets SO_REUSEPORT but not
//! SO_REUSEADDR, so a daemon restarted within a minute of closing connections itself
//! (TIME_WAIT on its port) could not bind; these set both, plus the backlog and the UDP
//! receive buffer the options ask for.

use std::io;
use std::net::SocketAddrV4;
use std::os::fd::{FromRawFd, IntoRawFd};

use glommio::net::{TcpListener, UdpSocket};
use nix::sys::socket::{
    bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType,
    SockaddrIn,
};

fn bound(addr: SocketAddrV4, ty: SockType) -> io::Result<std::os::fd::OwnedFd> {
    let fd = socket(AddressFamily::Inet, ty, SockFlag::SOCK_CLOEXEC, None)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    setsockopt(&fd, sockopt::ReusePort, &true)?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(addr),
    )?;
    Ok(fd)
}

/// A TCP listener on `addr` for the current executor.
pub fn tcp_listener(addr: SocketAddrV4, backlog: i32) -> io::Result<TcpListener> {
    let fd = bound(addr, SockType::Stream)?;
    let backlog = Backlog::new(backlog.clamp(1, i32::MAX)).unwrap_or(Backlog::MAXCONN);
    listen(&fd, backlog)?;
    // SAFETY: a bound, listening socket we own; ownership moves to the listener.
    Ok(unsafe { TcpListener::from_raw_fd(fd.into_raw_fd()) })
}

/// A UDP socket on `addr` for the current executor, with `SO_RCVBUF` = `rcvbuf` bytes.
pub fn udp_socket(addr: SocketAddrV4, rcvbuf: usize) -> io::Result<UdpSocket> {
    let fd = bound(addr, SockType::Datagram)?;
    let _ = setsockopt(&fd, sockopt::RcvBuf, &rcvbuf);
    // SAFETY: a bound socket we own; ownership moves to the glommio socket.
    Ok(unsafe { UdpSocket::from_raw_fd(fd.into_raw_fd()) })
}

/// Connect to `host:port` from an executor: the name is resolved afresh on the
/// blocking pool (never on the executor), IPv4 addresses first, and each address is
/// tried with a 10 s timeout. `None` when none answers.
pub async fn connect_host(host: &str, port: u16) -> Option<glommio::net::TcpStream> {
    let h = host.to_string();
    let addrs = glommio::executor()
        .spawn_blocking(move || {
            use std::net::ToSocketAddrs;
            let mut v: Vec<std::net::SocketAddr> = (h.as_str(), port)
                .to_socket_addrs()
                .map(|a| a.collect())
                .unwrap_or_default();
            v.sort_by_key(|a| !a.is_ipv4());
            v
        })
        .await;
    for a in addrs {
        if let Ok(s) =
            glommio::net::TcpStream::connect_timeout(a, std::time::Duration::from_secs(10)).await
        {
            return Some(s);
        }
    }
    None
}
