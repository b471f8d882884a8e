//! Packet capture for test bodies, tcpdump-style: start a capture on any
//! interface of any network namespace, make traffic, stop, then assert on the
//! decoded packets, print them as tcpdump lines, or save a pcap file.
//!
//! ```no_run
//! use netns_fixture::capture::Capture;
//! use std::os::fd::AsFd;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Any open /proc/.../ns/net; here the calling thread's own namespace.
//! let netns = std::fs::File::open("/proc/thread-self/ns/net")?;
//! let capture = Capture::start(netns.as_fd(), "lo", "udp port 9999")?;
//!
//! let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
//! socket.send_to(b"hello", "127.0.0.1:9999")?;
//!
//! let captured = capture.stop()?;
//! captured.assert_any(|p| p.dst_port() == Some(9999), "a datagram to port 9999");
//! assert_eq!(captured.count(|p| p.payload() == b"hello"), 1);
//! println!("{captured}"); // 12:00:00.000001 IP 127.0.0.1.41234 > 127.0.0.1.9999: UDP, length 5
//! captured.write_pcap("/tmp/lo.pcap")?; // tcpdump -r /tmp/lo.pcap -n
//! # Ok(())
//! # }
//! ```
//!
//! How it works: a short-lived thread enters the namespace (`setns`), opens an
//! `AF_PACKET` socket there (a socket stays in the namespace it was created in),
//! attaches the tcpdump filter compiled by libpcap as classic BPF, and binds the
//! socket to the interface, all before [`Capture::start`] returns. A reader
//! thread then drains the socket until [`Capture::stop`], which also collects
//! whatever is still queued. Both directions are captured, as with tcpdump; on
//! loopback interfaces each packet is seen once (the outgoing copy is skipped,
//! as libpcap does).

mod filter;
mod packet;
mod pcap_file;
mod registry;
mod render;
mod socket;
#[cfg(test)]
mod tests;

pub use filter::Filter;
pub use packet::{
    arp_op, icmp_type, ip_proto, Arp, Direction, Ethernet, Icmp, Ip, IpVersion, Ipv4, Ipv6,
    LinkType, MacAddr, Packet, Quoted, Tcp, TcpFlags, TcpOption, Udp,
};
pub(crate) use registry::{Registry, Snapshot};

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the reader wakes up with no traffic and no stop request.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// After a stop request, reading goes on until the socket has been idle this long...
const LINGER_IDLE: Duration = Duration::from_millis(10);
/// ...but no longer than this in total.
const LINGER_MAX: Duration = Duration::from_millis(200);
/// Packets read in one go before the reader checks for a stop request.
const BATCH: usize = 1024;

/// Why a capture could not start or finish. The messages name the interface,
/// the filter or the step that failed.
///
/// ```
/// use netns_fixture::capture::CaptureError;
/// let err = CaptureError::UnknownInterface {
///     interface: "veth-9".into(),
///     known: vec!["lo".into(), "veth-1".into()],
/// };
/// assert_eq!(
///     err.to_string(),
///     "no interface \"veth-9\" in the capture's network namespace; it has: lo, veth-1"
/// );
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum CaptureError {
    /// The process may not open packet sockets (needs CAP_NET_RAW).
    NotPrivileged(io::Error),
    /// Entering the network namespace failed (bad descriptor, or not a network
    /// namespace, or no CAP_SYS_ADMIN).
    Namespace {
        /// Why `setns` failed.
        source: io::Error,
    },
    /// The namespace has no interface of that name.
    UnknownInterface {
        /// The name asked for.
        interface: String,
        /// The interfaces the namespace has, in index order.
        known: Vec<String>,
    },
    /// The interface's link type is neither Ethernet-like nor raw IP.
    UnsupportedLinkType {
        /// The interface.
        interface: String,
        /// Its `ARPHRD_*` type, as `ip -d link` shows under `link/...`.
        arphrd: u16,
    },
    /// libpcap rejected the tcpdump filter expression.
    InvalidFilter {
        /// The expression.
        filter: String,
        /// libpcap's message, e.g. `can't parse filter expression: syntax error`.
        message: String,
    },
    /// A system call failed.
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        source: io::Error,
    },
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureError::NotPrivileged(e) => write!(
                f,
                "capturing packets needs CAP_NET_RAW (run the tests as root): {e}"
            ),
            CaptureError::Namespace { source } => write!(
                f,
                "cannot enter the network namespace to capture in (setns): {source}"
            ),
            CaptureError::UnknownInterface { interface, known } => {
                write!(
                    f,
                    "no interface {interface:?} in the capture's network namespace; "
                )?;
                if known.is_empty() {
                    f.write_str("it has none")
                } else {
                    write!(f, "it has: {}", known.join(", "))
                }
            }
            CaptureError::UnsupportedLinkType { interface, arphrd } => write!(
                f,
                "cannot capture on {interface:?}: its link type (ARPHRD {arphrd}) is not \
                 supported; Ethernet, loopback and raw-IP interfaces are"
            ),
            CaptureError::InvalidFilter { filter, message } => {
                write!(
                    f,
                    "invalid tcpdump filter {filter:?}: libpcap says: {message}"
                )
            }
            CaptureError::Io { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

impl std::error::Error for CaptureError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CaptureError::NotPrivileged(e)
            | CaptureError::Namespace { source: e }
            | CaptureError::Io { source: e, .. } => Some(e),
            _ => None,
        }
    }
}

#[derive(Default)]
struct State {
    packets: Vec<Packet>,
    rejected: u64,
    notes: Vec<String>,
    status: registry::Status,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    arrived: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn note(&self, note: String) {
        let mut state = self.lock();
        if !state.notes.contains(&note) {
            state.notes.push(note);
        }
    }
}

/// A running capture. [`stop`](Capture::stop) it to get the packets; dropping it
/// stops it too (the reader thread is joined, nothing is leaked).
///
/// ```no_run
/// use netns_fixture::capture::{Capture, Filter};
/// use std::os::fd::AsFd;
/// use std::time::Duration;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let netns = std::fs::File::open("/proc/thread-self/ns/net")?;
/// let capture = Capture::start(netns.as_fd(), "lo", Filter::tcpdump("icmp"))?;
/// // ... something pings ...
/// let reply = capture.wait_for(|p| p.is_icmp_echo_reply(), Duration::from_secs(2));
/// let captured = capture.stop()?;
/// println!("{captured}");
/// # let _ = reply;
/// # Ok(())
/// # }
/// ```
pub struct Capture {
    shared: Arc<Shared>,
    wake: Arc<OwnedFd>,
    reader: Option<JoinHandle<io::Result<u64>>>,
    interface: String,
    filter: String,
    link: LinkType,
    /// A [`Registry`] keeps the packets: `stop` copies them instead of taking them.
    kept: bool,
}

impl fmt::Debug for Capture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Capture")
            .field("interface", &self.interface)
            .field("filter", &self.filter)
            .field("link", &self.link)
            .finish_non_exhaustive()
    }
}

impl Capture {
    /// Starts capturing on `interface` of the network namespace `netns` (an open
    /// `/proc/.../ns/net`, or any descriptor `setns(CLONE_NEWNET)` accepts). When
    /// this returns, the socket is bound and filtered: every packet the interface
    /// sends or receives from then on is kept until [`stop`](Capture::stop).
    ///
    /// `filter` is a [`Filter`], or a tcpdump expression as `&str`/`String`.
    ///
    /// Errors: [`CaptureError::UnknownInterface`] (listing the interfaces that
    /// exist), [`CaptureError::InvalidFilter`] (quoting libpcap),
    /// [`CaptureError::NotPrivileged`], [`CaptureError::Namespace`].
    ///
    /// ```no_run
    /// use netns_fixture::capture::Capture;
    /// use std::os::fd::AsFd;
    /// let netns = std::fs::File::open("/proc/thread-self/ns/net").unwrap();
    /// let capture = Capture::start(netns.as_fd(), "lo", "host 127.0.0.1 and not arp").unwrap();
    /// # drop(capture);
    /// ```
    pub fn start(
        netns: BorrowedFd<'_>,
        interface: &str,
        filter: impl Into<Filter>,
    ) -> Result<Capture, CaptureError> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let filter = filter.into();
        let opened = socket::open(netns, interface, &filter)?;
        let shared = Arc::new(Shared::default());
        if opened.was_down {
            shared.note(format!(
                "{interface} was down when the capture started; packets arrive only once it is up"
            ));
        }
        // SAFETY: plain eventfd(2) call.
        let wake = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if wake < 0 {
            return Err(CaptureError::Io {
                context: "creating the eventfd that stops the capture".into(),
                source: io::Error::last_os_error(),
            });
        }
        // SAFETY: wake was just created and is owned by nobody else.
        let wake = Arc::new(unsafe { OwnedFd::from_raw_fd(wake) });
        let link = opened.link;
        let description = filter.to_string();
        let reader = {
            let shared = Arc::clone(&shared);
            let wake = Arc::clone(&wake);
            let interface = interface.to_string();
            std::thread::Builder::new()
                .name(format!("ncap-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed)))
                .spawn(move || read_until_stopped(opened, filter, &interface, &shared, &wake))
                .map_err(|source| CaptureError::Io {
                    context: "spawning the capture's reader thread".into(),
                    source,
                })?
        };
        Ok(Capture {
            shared,
            wake,
            reader: Some(reader),
            interface: interface.to_string(),
            filter: description,
            link,
            kept: false,
        })
    }

    /// [`start`](Capture::start) in the calling thread's own network namespace,
    /// e.g. inside a test body that already runs in a lab node.
    ///
    /// ```no_run
    /// let capture = netns_fixture::capture::Capture::start_here("lo", "icmp").unwrap();
    /// # drop(capture);
    /// ```
    pub fn start_here(interface: &str, filter: impl Into<Filter>) -> Result<Capture, CaptureError> {
        let netns = File::open("/proc/thread-self/ns/net").map_err(|source| CaptureError::Io {
            context: "opening /proc/thread-self/ns/net".into(),
            source,
        })?;
        Capture::start(netns.as_fd(), interface, filter)
    }

    /// The interface being captured on.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// Waits until a packet matching `predicate` has been captured (or already
    /// was), and returns a copy of the first one; `None` after `timeout`.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # let capture = netns_fixture::capture::Capture::start_here("lo", "icmp").unwrap();
    /// let reply = capture.wait_for(|p| p.is_icmp_echo_reply(), Duration::from_secs(2));
    /// assert!(reply.is_some(), "no reply yet");
    /// ```
    pub fn wait_for(
        &self,
        predicate: impl Fn(&Packet) -> bool,
        timeout: Duration,
    ) -> Option<Packet> {
        let deadline = crate::deadline::from_now(timeout);
        let mut checked = 0;
        let mut state = self.shared.lock();
        loop {
            if let Some(found) = state.packets[checked..].iter().find(|p| predicate(p)) {
                return Some(found.clone());
            }
            checked = state.packets.len();
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            state = self
                .shared
                .arrived
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// How many packets were kept so far.
    pub fn len_so_far(&self) -> usize {
        self.shared.lock().packets.len()
    }

    /// Stops the capture: reads whatever is still queued (going on until the
    /// socket has been idle for 10 ms, at most 200 ms, so packets still in
    /// flight inside the kernel are not missed), joins the reader thread, and
    /// returns the packets in capture order.
    ///
    /// A panic in a [`Filter`] predicate is resumed here.
    ///
    /// ```no_run
    /// # let capture = netns_fixture::capture::Capture::start_here("lo", "icmp").unwrap();
    /// let captured = capture.stop().unwrap();
    /// println!("{} packets:\n{captured}", captured.len());
    /// ```
    pub fn stop(mut self) -> Result<Captured, CaptureError> {
        let outcome = self.signal_and_join();
        let drops = match outcome {
            Some(Ok(Ok(drops))) => drops,
            Some(Ok(Err(source))) => {
                return Err(CaptureError::Io {
                    context: format!("reading packets captured on {}", self.interface),
                    source,
                })
            }
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => 0,
        };
        let state = registry::finish(&self.shared, self.kept);
        let mut notes = state.notes;
        if drops > 0 {
            notes.push(format!(
                "the kernel dropped {drops} packet(s): the receive buffer overflowed"
            ));
        }
        Ok(Captured {
            packets: state.packets,
            interface: std::mem::take(&mut self.interface),
            filter: std::mem::take(&mut self.filter),
            link: self.link,
            kernel_drops: drops,
            rejected_by_predicates: state.rejected,
            notes,
        })
    }

    fn signal_and_join(&mut self) -> Option<std::thread::Result<io::Result<u64>>> {
        let reader = self.reader.take()?;
        // SAFETY: writing 8 bytes to an eventfd we own.
        unsafe { libc::eventfd_write(self.wake.as_raw_fd(), 1) };
        Some(reader.join())
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.signal_and_join();
        registry::dropped(&self.shared);
    }
}

fn poll(fds: &mut [libc::pollfd], timeout: Duration) -> io::Result<usize> {
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    loop {
        // SAFETY: fds is a valid slice of pollfd.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

/// The reader thread: drain, poll (socket and stop eventfd), repeat; after the
/// stop request, linger until idle; returns the kernel's drop count.
fn read_until_stopped(
    opened: socket::Opened,
    filter: Filter,
    interface: &str,
    shared: &Shared,
    wake: &OwnedFd,
) -> io::Result<u64> {
    let mut buffer = vec![0u8; socket::BUFFER_SIZE];
    let socket = &opened.socket;
    loop {
        while drain(&opened, &filter, interface, shared, &mut buffer)? {}
        let mut fds = [
            libc::pollfd {
                fd: socket.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: wake.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        poll(&mut fds, POLL_INTERVAL)?;
        if fds[1].revents != 0 {
            break;
        }
    }
    let deadline = Instant::now() + LINGER_MAX;
    loop {
        let more = drain(&opened, &filter, interface, shared, &mut buffer)?;
        if Instant::now() >= deadline {
            break;
        }
        if !more {
            let mut fds = [libc::pollfd {
                fd: socket.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            if poll(&mut fds, LINGER_IDLE)? == 0 {
                break;
            }
        }
    }
    Ok(socket::kernel_drops(socket))
}

/// Reads up to [`BATCH`] queued packets; true if there may be more.
fn drain(
    opened: &socket::Opened,
    filter: &Filter,
    interface: &str,
    shared: &Shared,
    buffer: &mut [u8],
) -> io::Result<bool> {
    let mut kept = Vec::new();
    let mut rejected = 0;
    let mut more = true;
    for _ in 0..BATCH {
        match socket::read(&opened.socket, opened.link, buffer)? {
            socket::Read::Empty => {
                more = false;
                break;
            }
            socket::Read::Condition(err) => {
                let what = match err.raw_os_error() {
                    Some(libc::ENETDOWN) => "was down for part of the capture",
                    _ => "disappeared during the capture",
                };
                shared.note(format!("{interface} {what} ({err})"));
            }
            socket::Read::Packet(received) => {
                // On loopback every packet passes twice, out then in; keep one,
                // as libpcap does.
                if opened.loopback && received.outgoing {
                    continue;
                }
                let packet = Packet::new(
                    opened.link,
                    received.data,
                    received.original_length,
                    received.timestamp,
                    Some(received.direction),
                );
                if !filter.has_predicates() || filter.predicates_accept(&packet) {
                    kept.push(packet);
                } else {
                    rejected += 1;
                }
            }
        }
    }
    if !kept.is_empty() || rejected > 0 {
        let mut state = shared.lock();
        state.packets.append(&mut kept);
        state.rejected += rejected;
        drop(state);
        shared.arrived.notify_all();
    }
    Ok(more)
}

/// The packets of a stopped capture, in capture order, with assertions that
/// show every captured line when they fail. `Display` prints one tcpdump-like
/// line per packet.
///
/// ```no_run
/// # use std::net::Ipv4Addr;
/// # let captured = netns_fixture::capture::Capture::start_here("lo", "icmp").unwrap().stop().unwrap();
/// let server = Ipv4Addr::new(10, 0, 0, 20);
/// captured.assert_any(|p| p.is_icmp_echo_reply_from(server), "an ICMP echo reply from 10.0.0.20");
/// captured.assert_none(|p| p.is_tcp_rst(), "a TCP reset");
/// assert_eq!(captured.count(|p| p.is_icmp_echo_request()), 3);
/// captured.write_pcap("/tmp/ping.pcap").unwrap();
/// ```
#[derive(Clone)]
pub struct Captured {
    packets: Vec<Packet>,
    interface: String,
    filter: String,
    link: LinkType,
    kernel_drops: u64,
    rejected_by_predicates: u64,
    notes: Vec<String>,
}

impl Captured {
    /// The packets, in capture order.
    pub fn packets(&self) -> &[Packet] {
        &self.packets
    }

    /// Takes the packets out.
    pub fn into_packets(self) -> Vec<Packet> {
        self.packets
    }

    /// Iterates over the packets.
    pub fn iter(&self) -> std::slice::Iter<'_, Packet> {
        self.packets.iter()
    }

    /// Number of packets.
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    /// Whether nothing was captured.
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// The interface captured on.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// The filter, described (`"icmp"`, `"udp" + 1 predicate`, `everything`).
    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// How the packets' bytes begin (and the pcap file's link type).
    pub fn link_type(&self) -> LinkType {
        self.link
    }

    /// Packets the kernel dropped because the receive buffer overflowed (0 in
    /// any sane test).
    pub fn kernel_drops(&self) -> u64 {
        self.kernel_drops
    }

    /// Packets the tcpdump expression let through but a predicate rejected.
    pub fn rejected_by_predicates(&self) -> u64 {
        self.rejected_by_predicates
    }

    /// Remarks about the capture: the interface was down or disappeared, the
    /// kernel dropped packets.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// One tcpdump-like line per packet (see [`Packet`]'s `Display`).
    pub fn lines(&self) -> Vec<String> {
        self.packets.iter().map(Packet::to_string).collect()
    }

    /// The lines without timestamps ([`Packet::summary`]), handy for `assert_eq!`.
    ///
    /// ```no_run
    /// # let captured = netns_fixture::capture::Capture::start_here("lo", "icmp").unwrap().stop().unwrap();
    /// assert_eq!(
    ///     captured.summaries(),
    ///     ["IP 127.0.0.1 > 127.0.0.1: ICMP echo request, id 7, seq 1, length 64",
    ///      "IP 127.0.0.1 > 127.0.0.1: ICMP echo reply, id 7, seq 1, length 64"]
    /// );
    /// ```
    pub fn summaries(&self) -> Vec<String> {
        self.packets.iter().map(Packet::summary).collect()
    }

    /// How many packets match `predicate`.
    pub fn count(&self, predicate: impl Fn(&Packet) -> bool) -> usize {
        self.packets.iter().filter(|p| predicate(p)).count()
    }

    /// The packets matching `predicate`.
    pub fn matching(&self, predicate: impl Fn(&Packet) -> bool) -> Vec<&Packet> {
        self.packets.iter().filter(|p| predicate(p)).collect()
    }

    /// The first packet matching `predicate`.
    pub fn first(&self, predicate: impl Fn(&Packet) -> bool) -> Option<&Packet> {
        self.packets.iter().find(|p| predicate(p))
    }

    /// Returns the first packet matching `predicate`; panics otherwise with
    /// `expected {what}; saw:` and every captured line (or `nothing`).
    ///
    /// ```no_run
    /// # let captured = netns_fixture::capture::Capture::start_here("lo", "icmp").unwrap().stop().unwrap();
    /// let reply = captured.assert_any(|p| p.is_icmp_echo_reply(), "an ICMP echo reply");
    /// assert_eq!(reply.icmp().unwrap().echo, Some((7, 1)));
    /// ```
    #[track_caller]
    pub fn assert_any(&self, predicate: impl Fn(&Packet) -> bool, what: &str) -> &Packet {
        match self.first(&predicate) {
            Some(packet) => packet,
            None => panic!("expected {what}; saw:{}", self.evidence(|_| false)),
        }
    }

    /// Panics if any packet matches `predicate`, with every captured line, the
    /// matching ones marked `>`.
    ///
    /// ```no_run
    /// # let captured = netns_fixture::capture::Capture::start_here("eth0", "icmp").unwrap().stop().unwrap();
    /// captured.assert_none(|p| p.is_icmp_echo_reply(), "an ICMP echo reply (the firewall drops pings)");
    /// ```
    #[track_caller]
    pub fn assert_none(&self, predicate: impl Fn(&Packet) -> bool, what: &str) {
        let n = self.count(&predicate);
        if n > 0 {
            panic!(
                "expected no {what}; saw {n} (marked >) among:{}",
                self.evidence(predicate)
            );
        }
    }

    /// Panics unless exactly `expected` packets match `predicate`, with every
    /// captured line, the matching ones marked `>`.
    ///
    /// ```no_run
    /// # let captured = netns_fixture::capture::Capture::start_here("lo", "icmp").unwrap().stop().unwrap();
    /// captured.assert_count(|p| p.is_icmp_echo_request(), 3, "ICMP echo requests");
    /// ```
    #[track_caller]
    pub fn assert_count(&self, predicate: impl Fn(&Packet) -> bool, expected: usize, what: &str) {
        let n = self.count(&predicate);
        if n != expected {
            panic!(
                "expected {expected} {what}; saw {n} (marked >) among:{}",
                self.evidence(predicate)
            );
        }
    }

    /// The lines (marking those `marked` accepts) and the capture's context.
    fn evidence(&self, marked: impl Fn(&Packet) -> bool) -> String {
        let mut out = String::new();
        if self.packets.is_empty() {
            out.push_str(" nothing");
        }
        for packet in &self.packets {
            out.push_str(if marked(packet) { "\n> " } else { "\n  " });
            out.push_str(&packet.to_string());
        }
        let n = self.packets.len();
        out.push_str(&format!(
            "\n({n} packet{} captured on {:?} with filter {}",
            if n == 1 { "" } else { "s" },
            self.interface,
            self.filter
        ));
        if self.rejected_by_predicates > 0 {
            out.push_str(&format!(
                "; {} more rejected by its predicates",
                self.rejected_by_predicates
            ));
        }
        for note in &self.notes {
            out.push_str("; ");
            out.push_str(note);
        }
        out.push(')');
        out
    }

    /// Writes a classic pcap file (nanosecond timestamps, LINKTYPE_ETHERNET or
    /// LINKTYPE_RAW) that `tcpdump -r` and Wireshark read.
    ///
    /// ```no_run
    /// # let captured = netns_fixture::capture::Capture::start_here("lo", "icmp").unwrap().stop().unwrap();
    /// captured.write_pcap("/tmp/failure.pcap").unwrap();
    /// // $ tcpdump -r /tmp/failure.pcap -n
    /// ```
    pub fn write_pcap(&self, path: impl AsRef<Path>) -> Result<(), CaptureError> {
        let path = path.as_ref();
        let io = |source| CaptureError::Io {
            context: format!("writing pcap file {}", path.display()),
            source,
        };
        let file = File::create(path).map_err(io)?;
        self.write_pcap_to(io::BufWriter::new(file)).map_err(io)
    }

    /// Writes the pcap file format to any writer.
    ///
    /// ```no_run
    /// # let captured = netns_fixture::capture::Capture::start_here("lo", "icmp").unwrap().stop().unwrap();
    /// let mut bytes = Vec::new();
    /// captured.write_pcap_to(&mut bytes).unwrap();
    /// assert_eq!(&bytes[..4], &[0x4d, 0x3c, 0xb2, 0xa1]);
    /// ```
    pub fn write_pcap_to(&self, mut out: impl Write) -> io::Result<()> {
        pcap_file::write(&mut out, self.link, &self.packets)
    }
}

impl fmt::Display for Captured {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.packets.is_empty() {
            return write!(
                f,
                "(nothing captured on {:?} with filter {})",
                self.interface, self.filter
            );
        }
        for (i, packet) in self.packets.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{packet}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Captured {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Captured")
            .field("interface", &self.interface)
            .field("filter", &self.filter)
            .field("lines", &self.lines())
            .field("kernel_drops", &self.kernel_drops)
            .field("notes", &self.notes)
            .finish()
    }
}

impl<'a> IntoIterator for &'a Captured {
    type Item = &'a Packet;
    type IntoIter = std::slice::Iter<'a, Packet>;

    fn into_iter(self) -> Self::IntoIter {
        self.packets.iter()
    }
}

impl IntoIterator for Captured {
    type Item = Packet;
    type IntoIter = std::vec::IntoIter<Packet>;

    fn into_iter(self) -> Self::IntoIter {
        self.packets.into_iter()
    }
}
