//! Listeners that make "accepted" possible: a TCP or UDP echo service on a port of
//! a node, which remembers every connection or datagram that arrived and from
//! which address (after whatever NAT happened on the way).

use crate::probes::canonical;
use crate::probes::reach::Protocol;
use crate::{Error, Lab, Node};
use nix::sys::socket::{
    self, sockopt, ControlMessage, ControlMessageOwned, MsgFlags, SockaddrStorage,
};
use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A service to run on a node for the length of a check: a TCP or UDP echo
/// listener on `port`, on every address of the node (IPv4 and IPv6).
///
/// ```no_run
/// use netns_fixture::matrix::Service;
/// let lab = netns_fixture::Lab::builtin("two_servers").unwrap();
/// let dns = Service::udp("server1", 53).start(&lab).unwrap();
/// lab.node("router").udp_request("192.168.0.2:53".parse().unwrap(), b"hello", std::time::Duration::from_millis(300))
///     .assert_accepted();
/// assert_eq!(dns.arrivals()[0].peer.ip().to_string(), "192.168.0.1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Service {
    /// The node it runs on.
    pub node: String,
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The port it listens on.
    pub port: u16,
}

impl Service {
    /// A TCP echo service on `port` of `node`: it accepts connections and sends
    /// back what it receives.
    pub fn tcp(node: &str, port: u16) -> Service {
        Service {
            node: node.into(),
            protocol: Protocol::Tcp,
            port,
        }
    }

    /// A UDP echo service on `port` of `node`: it answers each datagram with the
    /// same bytes, from the address the datagram was sent to.
    pub fn udp(node: &str, port: u16) -> Service {
        Service {
            node: node.into(),
            protocol: Protocol::Udp,
            port,
        }
    }

    /// Starts the service in its node; it stops when the returned handle is dropped.
    ///
    /// ```no_run
    /// use netns_fixture::matrix::Service;
    /// let lab = netns_fixture::Lab::builtin("pair").unwrap();
    /// let echo = Service::tcp("ns-2", 7).start(&lab).unwrap();
    /// lab.node("ns-1").tcp_connect("10.0.0.20:7".parse().unwrap(), std::time::Duration::from_millis(300))
    ///     .assert_accepted();
    /// ```
    pub fn start(&self, lab: &Lab) -> Result<RunningService, Error> {
        let node = lab.try_node(&self.node)?;
        let (wake_read, wake_write) = nix::unistd::pipe()
            .map_err(|e| Error::io("creating a pipe for a service", e.into()))?;
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let step = |e: io::Error| Error::Setup {
            lab: lab.name().to_string(),
            node: self.node.clone(),
            step: format!(
                "starting the {} service on port {}",
                self.protocol, self.port
            ),
            source: e,
        };
        let thread = match self.protocol {
            Protocol::Tcp => {
                let listener = node
                    .run(|| TcpListener::bind((Ipv6Addr::UNSPECIFIED, self.port)))
                    .map_err(step)?;
                listener.set_nonblocking(true).map_err(step)?;
                let arrivals = Arc::clone(&arrivals);
                spawn(format!("tcp-service-{}", self.port), move || {
                    serve_tcp(listener, wake_read, &arrivals)
                })
                .map_err(step)?
            }
            Protocol::Udp => {
                let sockets = node.run(|| udp_sockets(self.port)).map_err(step)?;
                let arrivals = Arc::clone(&arrivals);
                spawn(format!("udp-service-{}", self.port), move || {
                    serve_udp(&sockets, wake_read, &arrivals)
                })
                .map_err(step)?
            }
        };
        Ok(RunningService {
            service: self.clone(),
            arrivals,
            wake: Some(wake_write),
            thread: Some(thread),
        })
    }

    /// Whether this service would answer at `address` of `node`: same node, same
    /// protocol, same port.
    pub(crate) fn listens_at(&self, node: &Node, protocol: Protocol, port: u16) -> bool {
        self.node == node.name() && self.protocol == protocol && self.port == port
    }
}

/// `tcp web:80`
impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}:{}", self.protocol, self.node, self.port)
    }
}

/// A connection or datagram a service received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    /// Who sent it, as the service saw it (after NAT on the way).
    pub peer: SocketAddr,
    /// The address it was sent to, as the service saw it (after NAT).
    pub local: SocketAddr,
    /// UDP: the datagram's content (empty for TCP).
    pub payload: Vec<u8>,
}

/// A started [`Service`]; dropping it stops the service.
#[derive(Debug)]
pub struct RunningService {
    service: Service,
    arrivals: Arc<Mutex<Vec<Arrival>>>,
    wake: Option<OwnedFd>,
    thread: Option<JoinHandle<()>>,
}

impl RunningService {
    /// What is running.
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// Every connection (TCP) or datagram (UDP) received so far, in order.
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        // Closing the pipe's write end wakes the serving thread's poll.
        self.wake.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn spawn(name: String, f: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name).spawn(f)
}

/// Waits until one of `fds` is readable; `false` when `wake` says stop.
fn wait_readable(fds: &[&dyn AsFd], wake: &OwnedFd) -> Vec<bool> {
    let mut polled: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| fd.as_fd().as_raw_fd())
        .chain([wake.as_raw_fd()])
        .map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `polled` is a valid array of pollfd of the given length.
    let ready = unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, -1) };
    if ready < 0 {
        // EINTR: look again.
        return vec![false; fds.len()];
    }
    polled.iter().map(|p| p.revents != 0).collect()
}

fn serve_tcp(listener: TcpListener, wake: OwnedFd, arrivals: &Mutex<Vec<Arrival>>) {
    // Open connections, to close when the service stops: nothing of it (no
    // thread, no socket holding the namespace) outlives the handle.
    let mut connections: Vec<(TcpStream, JoinHandle<()>)> = Vec::new();
    loop {
        let ready = wait_readable(&[&listener], &wake);
        if ready[1] {
            break;
        }
        connections.retain(|(_, thread)| !thread.is_finished());
        while let Ok((stream, peer)) = listener.accept() {
            let local = stream
                .local_addr()
                .unwrap_or_else(|_| SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)));
            arrivals
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(Arrival {
                    peer: canonical(peer),
                    local: canonical(local),
                    payload: Vec::new(),
                });
            let Ok(handle) = stream.try_clone() else {
                continue;
            };
            if let Ok(thread) = spawn("tcp-service-echo".into(), move || echo(stream)) {
                connections.push((handle, thread));
            }
        }
    }
    for (stream, thread) in connections {
        let _ = stream.shutdown(std::net::Shutdown::Both);
        let _ = thread.join();
    }
}

/// Sends back what arrives until the peer closes or the service stops.
fn echo(mut stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    let mut buffer = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buffer) {
        if n == 0 || stream.write_all(&buffer[..n]).is_err() {
            break;
        }
    }
}

/// One socket per family, each told to report the address a datagram was sent
/// to, so that answers come from that address.
fn udp_sockets(port: u16) -> io::Result<Vec<UdpSocket>> {
    let v4 = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port))?;
    socket::setsockopt(&v4, sockopt::Ipv4PacketInfo, &true)?;
    let mut sockets = vec![v4];
    // SAFETY: a plain socket(2) call; the result is checked and owned at once.
    let fd = unsafe { libc::socket(libc::AF_INET6, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        // No IPv6 in this namespace: IPv4 only.
        return Ok(sockets);
    }
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    let v6 = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    socket::setsockopt(&v6, sockopt::Ipv6V6Only, &true)?;
    socket::setsockopt(&v6, sockopt::Ipv6RecvPacketInfo, &true)?;
    socket::bind(
        v6.as_raw_fd(),
        &SockaddrStorage::from(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))),
    )?;
    sockets.push(UdpSocket::from(v6));
    Ok(sockets)
}

fn serve_udp(sockets: &[UdpSocket], wake: OwnedFd, arrivals: &Mutex<Vec<Arrival>>) {
    let fds: Vec<&dyn AsFd> = sockets.iter().map(|s| s as &dyn AsFd).collect();
    loop {
        let ready = wait_readable(&fds, &wake);
        if ready[sockets.len()] {
            return;
        }
        for (socket, ready) in sockets.iter().zip(ready) {
            if ready {
                if let Some(arrival) = answer_one(socket) {
                    arrivals
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(arrival);
                }
            }
        }
    }
}

/// Receives one datagram and sends it back from the address it was sent to.
fn answer_one(socket: &UdpSocket) -> Option<Arrival> {
    let fd = socket.as_raw_fd();
    let mut buffer = vec![0u8; 65536];
    let mut control = nix::cmsg_space!(libc::in6_pktinfo);
    let (peer, length, destination) = {
        let mut iov = [IoSliceMut::new(&mut buffer)];
        let message = socket::recvmsg::<SockaddrStorage>(
            fd,
            &mut iov,
            Some(&mut control),
            MsgFlags::MSG_DONTWAIT,
        )
        .ok()?;
        let mut destination = None;
        for cmsg in message.cmsgs().ok()? {
            match cmsg {
                ControlMessageOwned::Ipv4PacketInfo(info) => {
                    destination = Some(Destination::V4(info))
                }
                ControlMessageOwned::Ipv6PacketInfo(info) => {
                    destination = Some(Destination::V6(info))
                }
                _ => {}
            }
        }
        (message.address?, message.bytes, destination)
    };
    let payload = buffer[..length].to_vec();
    let iov = [IoSlice::new(&payload)];
    // The answer's source: the datagram's destination (for IPv4 that goes in
    // `ipi_spec_dst`; the interface is left to routing).
    let v4_source = match &destination {
        Some(Destination::V4(info)) => Some(libc::in_pktinfo {
            ipi_ifindex: 0,
            ipi_spec_dst: info.ipi_addr,
            ipi_addr: info.ipi_addr,
        }),
        _ => None,
    };
    let reply_from: Vec<ControlMessage> = match (&destination, &v4_source) {
        (_, Some(source)) => vec![ControlMessage::Ipv4PacketInfo(source)],
        (Some(Destination::V6(info)), _) => vec![ControlMessage::Ipv6PacketInfo(info)],
        _ => vec![],
    };
    let _ = socket::sendmsg(fd, &iov, &reply_from, MsgFlags::empty(), Some(&peer));
    let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
    let local_ip = match destination {
        Some(Destination::V4(info)) => {
            IpAddr::V4(Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr)))
        }
        Some(Destination::V6(info)) => IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)),
        None => socket
            .local_addr()
            .map(|a| a.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
    };
    let peer = peer
        .as_sockaddr_in()
        .map(|a| SocketAddr::from((a.ip(), a.port())))
        .or_else(|| {
            peer.as_sockaddr_in6()
                .map(|a| SocketAddr::from((a.ip(), a.port())))
        })?;
    Some(Arrival {
        peer: canonical(peer),
        local: SocketAddr::new(local_ip, port),
        payload,
    })
}

/// Where a datagram was sent, and so where its answer must come from.
enum Destination {
    V4(libc::in_pktinfo),
    V6(libc::in6_pktinfo),
}
