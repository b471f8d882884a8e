//! Reachability checks for firewall tests: a TCP connection attempt or a UDP
//! request, from the calling thread's network namespace, classified as
//! [`Outcome::Accepted`], [`Outcome::Refused`] or [`Outcome::Dropped`], with the
//! evidence (errno, ICMP message and its sender, reply bytes, elapsed time).
//!
//! Every check returns within its timeout (default [`DEFAULT_TIMEOUT`], 500 ms);
//! none blocks on the kernel's own retries.
//!
//! How Linux reports the answers (measured on kernel 6.18 by this module's
//! tests, IPv4 and IPv6, all within a millisecond unless said otherwise):
//!
//! - TCP RST (closed port, or `reject with tcp reset`): the non-blocking
//!   `connect` fails with `ECONNREFUSED`.
//! - ICMP "destination unreachable" for a TCP SYN, from a router or from a
//!   `reject` rule: Linux aborts the attempt at once, it does not retry the SYN
//!   until a timeout. `SO_ERROR` holds the kernel's errno for it (IPv4: host
//!   unreachable and administratively prohibited give `EHOSTUNREACH`, port
//!   unreachable `ECONNREFUSED`; IPv6: no route gives `ENETUNREACH`,
//!   administratively prohibited `EACCES`). The checks enable
//!   `IP_RECVERR`/`IPV6_RECVERR`, so the ICMP message itself (type, code,
//!   sender) is read from the socket's error queue, which also tells a RST
//!   from an ICMP "port unreachable". (From the kernel source: if the message
//!   arrives while the kernel holds the socket, it is only recorded as a soft
//!   error and the SYN is retried; the error queue still has it, so the check
//!   still reports refused, at the latest at its timeout.)
//! - UDP: a connected UDP socket without `IP_RECVERR` reports only "hard" ICMP
//!   errors (port unreachable, administratively prohibited) and ignores host and
//!   network unreachable; with it (as here) every ICMP error is reported, e.g.
//!   "host unreachable" from a router.
//! - Refused by this namespace's routes: `connect` fails at once with
//!   `ENETUNREACH` (no route), `EHOSTUNREACH` (`unreachable` route) or `EACCES`
//!   (`prohibit` route): refused. A `blackhole` route fails with `EINVAL`:
//!   dropped, as such a route discards silently.
//! - This namespace's own firewall (nftables OUTPUT hook): `drop` makes a UDP
//!   `send` fail with `EPERM` and silently swallows TCP SYNs (the kernel
//!   retries them): both are reported as dropped, after the timeout. `reject`
//!   also loops an ICMP error (or a RST) back to the socket: refused.
//! - A silent path (a drop rule on the way, a host that does not answer, a UDP
//!   server that does not reply): dropped, after exactly the timeout.
//!
//! ICMP errors are rate-limited. Measured: a router namespace with the default
//! `net.ipv4.icmp_ratelimit` (1000 ms) sent only 2 "host unreachable" in a
//! burst to one client, then nothing for over a second; with it set to 0, 5 in a
//! burst, then about one per second (that limit, `net.ipv4.route.error_cost` and
//! `error_burst`, is host-wide, not per namespace). Checks beyond the limit come
//! out as dropped. "Port unreachable" from the target host itself was not
//! limited (6 in a row); a router's ICMPv6 errors followed
//! `net.ipv6.icmp.ratelimit` (default 100 ms: one per 100 ms). Every lab
//! namespace therefore sets `net.ipv4.icmp_ratelimit` and
//! `net.ipv6.icmp.ratelimit` to 0; "host unreachable" from a router (no route, no
//! neighbour) stays under the host-wide limit, so keep such checks to a few per
//! second.
//!
//! ```no_run
//! use netns_fixture::probes::reach::{tcp_connect, Outcome, DEFAULT_TIMEOUT};
//!
//! let reach = tcp_connect("10.0.0.233:6000".parse().unwrap(), DEFAULT_TIMEOUT);
//! reach.assert_outcome(Outcome::Accepted);
//! println!("{reach}"); // tcp 10.0.0.233:6000: accepted (handshake completed from 10.0.0.10:41234) after 0.084 ms
//! ```

use super::ping::{read_error_queue, set_int, wait_for, ErrnoText, IcmpError, Rtt, Span};
use nix::errno::Errno;
use nix::sys::socket::{
    self, sockopt, AddressFamily, MsgFlags, SockFlag, SockType, SockaddrStorage,
};
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// A short timeout for checks inside a lab, where answers take well under a
/// millisecond: 500 ms.
///
/// ```no_run
/// use netns_fixture::probes::reach::{udp_request, DEFAULT_TIMEOUT};
/// let reach = udp_request("10.0.0.20:53".parse().unwrap(), b"\0", DEFAULT_TIMEOUT);
/// assert!(reach.elapsed() <= DEFAULT_TIMEOUT + std::time::Duration::from_millis(50));
/// ```
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);

/// The transport protocol of a check: the topology's own (`Protocol::Tcp` is
/// a TCP connection attempt, `Protocol::Udp` a datagram waiting for an answer).
///
/// ```
/// use netns_fixture::probes::reach::Protocol;
/// assert_eq!(Protocol::Udp.to_string(), "udp");
/// ```
pub use netns_fixture_topology::Protocol;

/// What the path to a service did with a check.
///
/// ```
/// use netns_fixture::probes::reach::Outcome;
/// assert_eq!(Outcome::Dropped.to_string(), "dropped");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The TCP handshake completed, or a UDP reply came back.
    Accepted,
    /// Something said no: a TCP RST, an ICMP error of any kind (from the target,
    /// a router, or this namespace), or the kernel of this namespace refused to
    /// send (no route, `unreachable`/`prohibit` route, firewall `reject`).
    Refused,
    /// Nothing came back before the timeout (or a `blackhole` route discarded
    /// the packet).
    Dropped,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Accepted => "accepted",
            Outcome::Refused => "refused",
            Outcome::Dropped => "dropped",
        })
    }
}

/// Why a check got its [`Outcome`].
///
/// ```
/// use netns_fixture::probes::ping::IcmpError;
/// use netns_fixture::probes::reach::Evidence;
///
/// assert_eq!(Evidence::Reset.to_string(), "connection refused, RST");
/// let icmp = Evidence::Icmp {
///     error: IcmpError::V4 { icmp_type: 3, code: 1 },
///     from: Some("192.168.0.1".parse().unwrap()),
///     errno: libc::EHOSTUNREACH,
/// };
/// assert_eq!(
///     icmp.to_string(),
///     "ICMP destination unreachable (host unreachable) from 192.168.0.1"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Evidence {
    /// TCP: the handshake completed.
    Connected {
        /// The local end of the connection.
        local: Option<SocketAddr>,
    },
    /// UDP: a datagram came back from the target.
    Reply {
        /// Its content.
        bytes: Vec<u8>,
    },
    /// TCP: the connection was refused without any ICMP message, i.e. by a RST.
    Reset,
    /// An ICMP or ICMPv6 error about the check's packet.
    Icmp {
        /// Type and code.
        error: IcmpError,
        /// Who sent it (a router, the target, or this namespace).
        from: Option<IpAddr>,
        /// The `errno` the kernel made of it.
        errno: i32,
    },
    /// The kernel of this namespace refused at once, e.g. `ENETUNREACH` (no
    /// route), `EHOSTUNREACH` (`unreachable` route), `EACCES` (`prohibit`
    /// route), `EINVAL` (`blackhole` route).
    Local {
        /// The `errno`.
        errno: i32,
        /// What failed: `"connect"` or `"send"`.
        during: &'static str,
    },
    /// The connection attempt failed with this `errno`, without an ICMP message
    /// in the error queue.
    Error {
        /// The `errno` from `SO_ERROR`.
        errno: i32,
    },
    /// Nothing came back before the timeout.
    NoAnswer {
        /// The timeout.
        waited: Duration,
        /// UDP: `send` failed with this `errno` (`EPERM`: a firewall rule of this
        /// namespace dropped the datagram) and no ICMP error followed.
        send_errno: Option<i32>,
    },
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Evidence::Connected { local } => {
                f.write_str("handshake completed")?;
                if let Some(local) = local {
                    write!(f, " from {local}")?;
                }
                Ok(())
            }
            Evidence::Reply { bytes } => {
                write!(f, "reply of {} bytes: \"", bytes.len())?;
                let shown = &bytes[..bytes.len().min(64)];
                write!(f, "{}", shown.escape_ascii())?;
                f.write_str(if shown.len() < bytes.len() {
                    "\"…"
                } else {
                    "\""
                })
            }
            Evidence::Reset => f.write_str("connection refused, RST"),
            Evidence::Icmp { error, from, .. } => {
                let version = match error {
                    IcmpError::V4 { .. } => "ICMP",
                    IcmpError::V6 { .. } => "ICMPv6",
                };
                write!(f, "{version} {error}")?;
                if let Some(from) = from {
                    write!(f, " from {from}")?;
                }
                Ok(())
            }
            Evidence::Local { errno, during } => {
                write!(f, "{during} failed: {}", ErrnoText(*errno))?;
                let why = match *errno {
                    libc::ENETUNREACH => "no route",
                    libc::EHOSTUNREACH => "an `unreachable` route",
                    libc::EACCES => "a `prohibit` route",
                    libc::EPERM => "a firewall rule",
                    libc::EINVAL => "a `blackhole` route",
                    _ => return Ok(()),
                };
                write!(f, ", {why} in this namespace")
            }
            Evidence::Error { errno } => write!(f, "{}", ErrnoText(*errno)),
            Evidence::NoAnswer { waited, send_errno } => {
                if let Some(errno) = send_errno {
                    write!(f, "send failed: {}", ErrnoText(*errno))?;
                    if *errno == libc::EPERM {
                        f.write_str(", a firewall rule of this namespace dropped it")?;
                    }
                    f.write_str("; ")?;
                }
                write!(f, "no answer within {}", Span(*waited))
            }
        }
    }
}

/// The result of a reachability check: outcome, evidence and timing.
///
/// `Display` gives one line, e.g. `tcp 192.168.0.2:8080: refused (connection
/// refused, RST) after 0.200 ms` or `udp 10.0.0.20:53: dropped (no answer within
/// 500 ms)`.
///
/// ```no_run
/// use netns_fixture::probes::reach::{tcp_connect, Evidence, Outcome, DEFAULT_TIMEOUT};
///
/// let reach = tcp_connect("10.0.0.20:80".parse().unwrap(), DEFAULT_TIMEOUT);
/// match (reach.outcome(), reach.evidence()) {
///     (Outcome::Refused, Evidence::Icmp { error, from, .. }) => {
///         println!("{error} from {from:?} after {:?}", reach.elapsed())
///     }
///     (outcome, evidence) => println!("{outcome}: {evidence}"),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    protocol: Protocol,
    target: SocketAddr,
    outcome: Outcome,
    evidence: Evidence,
    elapsed: Duration,
    timeout: Duration,
}

impl Reach {
    /// TCP or UDP.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }
    /// The address checked.
    pub fn target(&self) -> SocketAddr {
        self.target
    }
    /// Accepted, refused or dropped.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }
    /// Why.
    pub fn evidence(&self) -> &Evidence {
        &self.evidence
    }
    /// Time from the start of the check to its outcome.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }
    /// The timeout the check had.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
    /// UDP: the reply's content, if one came back.
    pub fn reply(&self) -> Option<&[u8]> {
        match &self.evidence {
            Evidence::Reply { bytes } => Some(bytes),
            _ => None,
        }
    }
    /// The `errno` involved, if any (e.g. `ECONNREFUSED` for a RST).
    pub fn errno(&self) -> Option<i32> {
        match self.evidence {
            Evidence::Reset => Some(libc::ECONNREFUSED),
            Evidence::Icmp { errno, .. }
            | Evidence::Local { errno, .. }
            | Evidence::Error { errno } => Some(errno),
            Evidence::NoAnswer { send_errno, .. } => send_errno,
            Evidence::Connected { .. } | Evidence::Reply { .. } => None,
        }
    }
    /// The ICMP error and its sender, if one came back.
    pub fn icmp(&self) -> Option<(IcmpError, Option<IpAddr>)> {
        match self.evidence {
            Evidence::Icmp { error, from, .. } => Some((error, from)),
            _ => None,
        }
    }
    /// Whether the check was accepted.
    pub fn is_accepted(&self) -> bool {
        self.outcome == Outcome::Accepted
    }
    /// Whether the check was refused.
    pub fn is_refused(&self) -> bool {
        self.outcome == Outcome::Refused
    }
    /// Whether the check was dropped.
    pub fn is_dropped(&self) -> bool {
        self.outcome == Outcome::Dropped
    }

    /// Panics unless the outcome is `expected`, with the evidence, e.g.
    /// `expected tcp 10.0.0.233:6000 to be accepted, but it was dropped (no
    /// answer within 500 ms)`.
    ///
    /// ```no_run
    /// use netns_fixture::probes::reach::{tcp_connect, Outcome, DEFAULT_TIMEOUT};
    /// tcp_connect("10.0.0.233:6000".parse().unwrap(), DEFAULT_TIMEOUT)
    ///     .assert_outcome(Outcome::Accepted);
    /// ```
    #[track_caller]
    pub fn assert_outcome(&self, expected: Outcome) {
        if self.outcome != expected {
            panic!(
                "expected {} {} to be {expected}, but it was {}",
                self.protocol,
                self.target,
                self.outcome_and_evidence()
            );
        }
    }
    /// Panics unless accepted; see [`Reach::assert_outcome`].
    ///
    /// ```no_run
    /// # use netns_fixture::probes::reach::{udp_request, DEFAULT_TIMEOUT};
    /// udp_request("10.0.0.20:53".parse().unwrap(), b"ping", DEFAULT_TIMEOUT).assert_accepted();
    /// ```
    #[track_caller]
    pub fn assert_accepted(&self) {
        self.assert_outcome(Outcome::Accepted)
    }
    /// Panics unless refused; see [`Reach::assert_outcome`].
    ///
    /// ```no_run
    /// # use netns_fixture::probes::reach::{tcp_connect, DEFAULT_TIMEOUT};
    /// tcp_connect("10.0.0.20:23".parse().unwrap(), DEFAULT_TIMEOUT).assert_refused();
    /// ```
    #[track_caller]
    pub fn assert_refused(&self) {
        self.assert_outcome(Outcome::Refused)
    }
    /// Panics unless dropped; see [`Reach::assert_outcome`].
    ///
    /// ```no_run
    /// # use netns_fixture::probes::reach::{tcp_connect, DEFAULT_TIMEOUT};
    /// tcp_connect("10.0.0.20:22".parse().unwrap(), DEFAULT_TIMEOUT).assert_dropped();
    /// ```
    #[track_caller]
    pub fn assert_dropped(&self) {
        self.assert_outcome(Outcome::Dropped)
    }

    fn outcome_and_evidence(&self) -> String {
        match self.evidence {
            Evidence::NoAnswer { .. } => format!("{} ({})", self.outcome, self.evidence),
            _ => format!(
                "{} ({}) after {}",
                self.outcome,
                self.evidence,
                Rtt(self.elapsed)
            ),
        }
    }
}

impl fmt::Display for Reach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.protocol,
            self.target,
            self.outcome_and_evidence()
        )
    }
}

/// Tries to connect to `target` over TCP from the calling thread's namespace and
/// closes the connection at once. Never blocks longer than `timeout`.
///
/// # Panics
///
/// If no socket can be opened or set up (e.g. out of file descriptors), or the
/// kernel answers in a way no firewall causes (e.g. no local address to use):
/// [`try_tcp_connect`] returns these as errors instead.
///
/// ```no_run
/// use netns_fixture::probes::reach::{tcp_connect, Outcome};
/// use std::time::Duration;
///
/// let reach = tcp_connect("192.168.0.2:8080".parse().unwrap(), Duration::from_millis(200));
/// assert_eq!(reach.outcome(), Outcome::Refused, "{reach}");
/// ```
#[track_caller]
pub fn tcp_connect(target: SocketAddr, timeout: Duration) -> Reach {
    try_tcp_connect(target, timeout).unwrap_or_else(|e| panic!("tcp {target}: {e}"))
}

/// Like [`tcp_connect`], but returns socket errors instead of panicking.
///
/// ```no_run
/// use netns_fixture::probes::reach::{try_tcp_connect, DEFAULT_TIMEOUT};
/// let reach = try_tcp_connect("[2001:db8::2]:443".parse().unwrap(), DEFAULT_TIMEOUT)?;
/// println!("{reach}");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn try_tcp_connect(target: SocketAddr, timeout: Duration) -> io::Result<Reach> {
    let check = Check::new(Protocol::Tcp, target, timeout);
    let fd = open(target, SockType::Stream)?;
    let raw = fd.as_raw_fd();
    match socket::connect(raw, &SockaddrStorage::from(target)) {
        Ok(()) => return Ok(check.done(Outcome::Accepted, connected(raw))),
        Err(Errno::EINPROGRESS) => {}
        Err(e) => return check.local_failure(e, "connect"),
    }
    loop {
        let remaining = check.remaining();
        if remaining.is_zero() {
            break;
        }
        let events = match wait_for(raw, libc::POLLOUT, remaining) {
            Ok(events) => events,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if events == 0 {
            continue;
        }
        let error = socket::getsockopt(&fd, sockopt::SocketError).map_err(io::Error::from)?;
        let queued = queued_icmp(raw)?;
        if error == 0 && events & libc::POLLOUT != 0 {
            return Ok(check.done(Outcome::Accepted, connected(raw)));
        }
        if let Some(evidence) = queued {
            // Also a soft error: the kernel still retries, but the path said no.
            return Ok(check.done(Outcome::Refused, evidence));
        }
        match error {
            0 => {
                // Woken without a verdict (e.g. a local error already consumed).
                // Nothing to decide yet.
                std::thread::sleep(Duration::from_micros(100).min(check.remaining()));
            }
            libc::ECONNREFUSED => return Ok(check.done(Outcome::Refused, Evidence::Reset)),
            libc::ETIMEDOUT => break,
            errno => {
                let outcome = match refusal(errno) {
                    Some(outcome) => outcome,
                    None => return Err(io::Error::from_raw_os_error(errno)),
                };
                return Ok(check.done(outcome, Evidence::Error { errno }));
            }
        }
    }
    // Last look: an ICMP error may have come as a soft error.
    if let Some(evidence) = queued_icmp(raw)? {
        return Ok(check.done(Outcome::Refused, evidence));
    }
    Ok(check.no_answer(None))
}

/// Sends `payload` over UDP to `target` from the calling thread's namespace and
/// waits for any datagram back (accepted) or an ICMP error (refused). Never
/// blocks longer than `timeout`.
///
/// # Panics
///
/// If no socket can be opened or set up, or the kernel refuses the datagram for
/// a reason no firewall causes (e.g. `EMSGSIZE`): [`try_udp_request`] returns
/// these as errors instead.
///
/// ```no_run
/// use netns_fixture::probes::reach::{udp_request, DEFAULT_TIMEOUT};
///
/// let reach = udp_request("10.0.0.20:7".parse().unwrap(), b"hello", DEFAULT_TIMEOUT);
/// reach.assert_accepted();
/// assert_eq!(reach.reply(), Some(&b"hello"[..]));
/// ```
#[track_caller]
pub fn udp_request(target: SocketAddr, payload: &[u8], timeout: Duration) -> Reach {
    try_udp_request(target, payload, timeout).unwrap_or_else(|e| panic!("udp {target}: {e}"))
}

/// Like [`udp_request`], but returns socket errors instead of panicking.
///
/// ```no_run
/// use netns_fixture::probes::reach::{try_udp_request, DEFAULT_TIMEOUT};
/// let reach = try_udp_request("[::1]:53".parse().unwrap(), b"\0", DEFAULT_TIMEOUT)?;
/// println!("{reach}");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn try_udp_request(target: SocketAddr, payload: &[u8], timeout: Duration) -> io::Result<Reach> {
    let check = Check::new(Protocol::Udp, target, timeout);
    let fd = open(target, SockType::Datagram)?;
    let raw = fd.as_raw_fd();
    if let Err(e) = socket::connect(raw, &SockaddrStorage::from(target)) {
        return check.local_failure(e, "connect");
    }
    let mut send_errno = None;
    loop {
        match socket::send(raw, payload, MsgFlags::empty()) {
            Ok(_) => break,
            Err(Errno::EINTR) => continue,
            // Dropped or rejected by a firewall rule of this namespace: a
            // `reject` also sends an ICMP error, which decides below.
            Err(Errno::EPERM) => {
                send_errno = Some(libc::EPERM);
                break;
            }
            Err(e) => return check.local_failure(e, "send"),
        }
    }
    let mut buffer = vec![0u8; 65536];
    loop {
        let remaining = check.remaining();
        if remaining.is_zero() {
            break;
        }
        let events = match wait_for(raw, libc::POLLIN, remaining) {
            Ok(events) => events,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if events & libc::POLLERR != 0 {
            if let Some(evidence) = queued_icmp(raw)? {
                return Ok(check.done(Outcome::Refused, evidence));
            }
        }
        if events & (libc::POLLIN | libc::POLLERR) == 0 {
            continue;
        }
        match socket::recv(raw, &mut buffer, MsgFlags::MSG_DONTWAIT) {
            Ok(n) => {
                let bytes = buffer[..n].to_vec();
                return Ok(check.done(Outcome::Accepted, Evidence::Reply { bytes }));
            }
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            // A pending error: the details, if any, are in the error queue.
            Err(e) => {
                if let Some(evidence) = queued_icmp(raw)? {
                    return Ok(check.done(Outcome::Refused, evidence));
                }
                let errno = e as i32;
                if let Some(outcome) = refusal(errno) {
                    return Ok(check.done(outcome, Evidence::Error { errno }));
                }
                return Err(e.into());
            }
        }
    }
    if let Some(evidence) = queued_icmp(raw)? {
        return Ok(check.done(Outcome::Refused, evidence));
    }
    Ok(check.no_answer(send_errno))
}

/// A check in progress.
struct Check {
    protocol: Protocol,
    target: SocketAddr,
    timeout: Duration,
    start: Instant,
}

impl Check {
    fn new(protocol: Protocol, target: SocketAddr, timeout: Duration) -> Check {
        Check {
            protocol,
            target,
            timeout,
            start: Instant::now(),
        }
    }
    fn remaining(&self) -> Duration {
        self.timeout.saturating_sub(self.start.elapsed())
    }
    fn done(&self, outcome: Outcome, evidence: Evidence) -> Reach {
        Reach {
            protocol: self.protocol,
            target: self.target,
            outcome,
            evidence,
            elapsed: self.start.elapsed(),
            timeout: self.timeout,
        }
    }
    fn no_answer(&self, send_errno: Option<i32>) -> Reach {
        self.done(
            Outcome::Dropped,
            Evidence::NoAnswer {
                waited: self.timeout,
                send_errno,
            },
        )
    }
    /// `connect` or `send` failed at once.
    fn local_failure(&self, errno: Errno, during: &'static str) -> io::Result<Reach> {
        let errno = errno as i32;
        let outcome = match errno {
            // A blackhole route: discarded silently, by design.
            libc::EINVAL => Outcome::Dropped,
            _ => refusal(errno).ok_or_else(|| {
                io::Error::new(
                    io::Error::from_raw_os_error(errno).kind(),
                    format!("{during} failed: {}", ErrnoText(errno)),
                )
            })?,
        };
        Ok(self.done(outcome, Evidence::Local { errno, during }))
    }
}

/// The errno values a refusing network produces.
fn refusal(errno: i32) -> Option<Outcome> {
    match errno {
        libc::ECONNREFUSED
        | libc::EHOSTUNREACH
        | libc::ENETUNREACH
        | libc::EACCES
        | libc::EPERM
        | libc::EHOSTDOWN
        | libc::ENONET
        | libc::ENOPROTOOPT
        | libc::EPROTO
        | libc::ECONNRESET => Some(Outcome::Refused),
        libc::ETIMEDOUT => Some(Outcome::Dropped),
        _ => None,
    }
}

fn open(target: SocketAddr, ty: SockType) -> io::Result<OwnedFd> {
    let family = match target {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = socket::socket(
        family,
        ty,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // Queue ICMP errors (type, code, sender) on the socket's error queue.
    match target {
        SocketAddr::V4(_) => set_int(fd.as_raw_fd(), libc::IPPROTO_IP, libc::IP_RECVERR, 1)?,
        SocketAddr::V6(_) => set_int(fd.as_raw_fd(), libc::IPPROTO_IPV6, libc::IPV6_RECVERR, 1)?,
    }
    Ok(fd)
}

/// The first ICMP error in the socket's error queue, as evidence.
fn queued_icmp(fd: RawFd) -> io::Result<Option<Evidence>> {
    while let Some(queued) = read_error_queue(fd)? {
        if let Some(error) = queued.icmp {
            return Ok(Some(Evidence::Icmp {
                error,
                from: queued.offender,
                errno: queued.errno,
            }));
        }
    }
    Ok(None)
}

fn connected(fd: RawFd) -> Evidence {
    let local = socket::getsockname::<SockaddrStorage>(fd)
        .ok()
        .and_then(|a| {
            a.as_sockaddr_in()
                .map(|v4| SocketAddr::from(std::net::SocketAddrV4::from(*v4)))
                .or_else(|| {
                    a.as_sockaddr_in6()
                        .map(|v6| SocketAddr::from(std::net::SocketAddrV6::from(*v6)))
                })
        });
    Evidence::Connected { local }
}

#[cfg(test)]
mod tests {
    use super::super::ping::testnet::{panic_message, Routed, TestNs};
    use super::*;
    use std::net::{TcpListener, UdpSocket};

    const SHORT: Duration = Duration::from_millis(300);

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// Prints a measurement (visible with `--nocapture`).
    fn measured(what: &str, reach: &Reach) {
        eprintln!("measured: {what}: {reach}");
    }

    fn assert_fast(reach: &Reach) {
        assert!(reach.elapsed() < Duration::from_millis(200), "{reach}");
    }

    fn assert_timed_out(reach: &Reach, timeout: Duration) {
        assert!(
            reach.elapsed() >= timeout && reach.elapsed() < timeout + Duration::from_millis(400),
            "{reach}"
        );
    }

    #[test]
    fn tcp_accepted_by_a_listener() {
        let ns = TestNs::new();
        ns.run(|| {
            for local in ["127.0.0.1:0", "[::1]:0"] {
                let listener = TcpListener::bind(local).unwrap();
                let target = listener.local_addr().unwrap();
                let reach = tcp_connect(target, SHORT);
                measured("tcp to a listener", &reach);
                reach.assert_accepted();
                assert_fast(&reach);
                let Evidence::Connected { local: Some(local) } = reach.evidence() else {
                    panic!("{reach}");
                };
                assert_eq!(local.ip(), target.ip());
                let text = reach.to_string();
                assert!(
                    text.starts_with(&format!(
                        "tcp {target}: accepted (handshake completed from {local}) after "
                    )),
                    "{text}"
                );
                assert!(text.contains(") after ") && text.ends_with(" ms"), "{text}");
                let message = panic_message(|| reach.assert_dropped());
                assert!(
                    message.starts_with(&format!(
                        "expected tcp {target} to be dropped, but it was accepted (handshake completed from "
                    )),
                    "{message}"
                );
                assert_eq!((reach.errno(), reach.icmp(), reach.reply()), (None, None, None));
            }
        });
    }

    #[test]
    fn tcp_refused_by_rst_from_a_closed_port() {
        let ns = TestNs::new();
        for target in ["127.0.0.1:9", "[::1]:9"] {
            let reach = ns.run(|| tcp_connect(addr(target), SHORT));
            measured("tcp to a closed port", &reach);
            reach.assert_refused();
            assert_eq!(reach.evidence(), &Evidence::Reset);
            assert_eq!(reach.errno(), Some(libc::ECONNREFUSED));
            assert_fast(&reach);
            let text = reach.to_string();
            assert!(
                text.starts_with(&format!(
                    "tcp {target}: refused (connection refused, RST) after "
                )),
                "{text}"
            );
            let message = panic_message(|| reach.assert_accepted());
            assert!(
                message.starts_with(&format!(
                    "expected tcp {target} to be accepted, but it was refused (connection refused, RST) after "
                )),
                "{message}"
            );
        }
    }

    /// A firewall of the namespace, in the input hook (as on a server) or the
    /// output hook (as on a client).
    fn firewall(ns: &TestNs, hook: &str, rules: &str) {
        ns.sh(&format!(
            "nft -f - <<'EOF'
table inet test {{
  chain {hook} {{
    type filter hook {hook} priority 0; policy accept;
{rules}
  }}
}}
EOF"
        ));
    }

    #[test]
    fn tcp_dropped_by_a_drop_rule_never_hangs() {
        let ns = TestNs::new();
        firewall(&ns, "input", "tcp dport 9 drop");
        for target in ["127.0.0.1:9", "[::1]:9"] {
            let reach = ns.run(|| tcp_connect(addr(target), SHORT));
            measured("tcp into an input drop rule", &reach);
            reach.assert_dropped();
            assert_timed_out(&reach, SHORT);
            assert_eq!(
                reach.to_string(),
                format!("tcp {target}: dropped (no answer within 300 ms)")
            );
            assert_eq!(
                panic_message(|| reach.assert_outcome(Outcome::Accepted)),
                format!("expected tcp {target} to be accepted, but it was dropped (no answer within 300 ms)")
            );
        }
        // The default timeout.
        let reach = ns.run(|| tcp_connect(addr("127.0.0.1:9"), DEFAULT_TIMEOUT));
        assert_timed_out(&reach, DEFAULT_TIMEOUT);
        assert_eq!(
            panic_message(|| reach.assert_accepted()),
            "expected tcp 127.0.0.1:9 to be accepted, but it was dropped (no answer within 500 ms)"
        );
    }

    #[test]
    fn tcp_local_firewall_drop_is_dropped_and_reject_is_refused() {
        let ns = TestNs::new();
        firewall(
            &ns,
            "output",
            "tcp dport 1 drop
             tcp dport 2 reject with tcp reset
             tcp dport 3 reject
             tcp dport 4 reject with icmpx type admin-prohibited",
        );
        for host in ["127.0.0.1", "[::1]"] {
            let reach = ns.run(|| tcp_connect(addr(&format!("{host}:1")), SHORT));
            measured("tcp into an output drop rule", &reach);
            reach.assert_dropped();
            assert_timed_out(&reach, SHORT);

            let reach = ns.run(|| tcp_connect(addr(&format!("{host}:2")), SHORT));
            measured("tcp into an output reject-with-reset rule", &reach);
            reach.assert_refused();
            assert_eq!(reach.evidence(), &Evidence::Reset);
            assert_fast(&reach);

            let v6 = host.starts_with('[');
            let (prefix, port_unreachable, prohibited) = if v6 {
                (
                    "ICMPv6",
                    "port unreachable",
                    "communication administratively prohibited",
                )
            } else {
                (
                    "ICMP",
                    "port unreachable",
                    "communication administratively prohibited",
                )
            };
            let from = host.trim_matches(['[', ']']);
            let prohibited_errno = if v6 { libc::EACCES } else { libc::EHOSTUNREACH };
            for (port, code, errno) in [
                (3, port_unreachable, libc::ECONNREFUSED),
                (4, prohibited, prohibited_errno),
            ] {
                let reach = ns.run(|| tcp_connect(addr(&format!("{host}:{port}")), SHORT));
                measured("tcp into an output reject rule", &reach);
                reach.assert_refused();
                assert_fast(&reach);
                assert_eq!(reach.errno(), Some(errno), "{reach}");
                let text = reach.to_string();
                assert!(
                    text.starts_with(&format!(
                        "tcp {host}:{port}: refused ({prefix} destination unreachable ({code}) from {from}) after "
                    )),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn tcp_refused_quickly_by_icmp_from_a_router() {
        // At most 5 IPv4 errors per router namespace in a burst (host-wide
        // net.ipv4.route.error_cost/error_burst): one lab per two targets.
        let cases = [
            ("10.99.0.5:80", "ICMP destination unreachable (host unreachable) from 10.50.0.1", libc::EHOSTUNREACH),
            ("10.97.0.5:80", "ICMP destination unreachable (communication administratively prohibited) from 10.50.0.1", libc::EHOSTUNREACH),
            ("[2001:db8:99::5]:80", "ICMPv6 destination unreachable (no route to destination) from 2001:db8:50::1", libc::ENETUNREACH),
            ("[2001:db8:97::5]:80", "ICMPv6 destination unreachable (communication administratively prohibited) from 2001:db8:50::1", libc::EACCES),
        ];
        for pair in cases.chunks(2) {
            let lab = Routed::new();
            for (target, evidence, errno) in pair {
                let reach = lab.client.run(|| tcp_connect(addr(target), SHORT));
                measured("tcp SYN answered by ICMP from a router", &reach);
                reach.assert_refused();
                assert_fast(&reach);
                assert_eq!(reach.errno(), Some(*errno), "{reach}");
                assert!(
                    reach
                        .to_string()
                        .starts_with(&format!("tcp {target}: refused ({evidence}) after ")),
                    "{reach}"
                );
            }
        }
        // Forwarded to a neighbour that never answers: dropped.
        let lab = Routed::new();
        let reach = lab.client.run(|| tcp_connect(addr("10.98.0.2:80"), SHORT));
        measured("tcp SYN forwarded into silence", &reach);
        reach.assert_dropped();
        assert_timed_out(&reach, SHORT);
        let _ = &lab.router;
    }

    #[test]
    fn local_routes_refuse_or_drop_at_once() {
        let ns = TestNs::new();
        ns.sh("ip route add unreachable 10.91.0.0/16
             ip route add prohibit 10.92.0.0/16
             ip route add blackhole 10.93.0.0/16");
        let cases = [
            ("10.77.0.1:80", Outcome::Refused, "connect failed: network is unreachable (ENETUNREACH), no route in this namespace"),
            ("10.91.0.1:80", Outcome::Refused, "connect failed: no route to host (EHOSTUNREACH), an `unreachable` route in this namespace"),
            ("10.92.0.1:80", Outcome::Refused, "connect failed: permission denied (EACCES), a `prohibit` route in this namespace"),
            ("10.93.0.1:80", Outcome::Dropped, "connect failed: invalid argument (EINVAL), a `blackhole` route in this namespace"),
        ];
        for (target, outcome, evidence) in cases {
            for protocol in [Protocol::Tcp, Protocol::Udp] {
                let reach = ns.run(|| match protocol {
                    Protocol::Tcp => tcp_connect(addr(target), SHORT),
                    Protocol::Udp => udp_request(addr(target), b"x", SHORT),
                });
                measured("local route", &reach);
                reach.assert_outcome(outcome);
                assert_fast(&reach);
                assert!(
                    reach.to_string().starts_with(&format!(
                        "{protocol} {target}: {outcome} ({evidence}) after "
                    )),
                    "{reach}"
                );
            }
        }
    }

    /// Answers every datagram with its content, reversed, until `stop`.
    fn echo_server(socket: UdpSocket, stop: &std::sync::atomic::AtomicBool) {
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let mut buffer = [0u8; 2048];
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok((n, from)) = socket.recv_from(&mut buffer) {
                let mut reply = buffer[..n].to_vec();
                reply.reverse();
                socket.send_to(&reply, from).unwrap();
            }
        }
    }

    #[test]
    fn udp_accepted_by_an_echo_server() {
        let ns = TestNs::new();
        ns.run(|| {
            for local in ["127.0.0.1:0", "[::1]:0"] {
                let server = UdpSocket::bind(local).unwrap();
                let target = server.local_addr().unwrap();
                let stop = std::sync::atomic::AtomicBool::new(false);
                let reach = std::thread::scope(|scope| {
                    scope.spawn(|| echo_server(server, &stop));
                    let reach = udp_request(target, b"hello", SHORT);
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    reach
                });
                measured("udp to an echo server", &reach);
                reach.assert_accepted();
                assert_fast(&reach);
                assert_eq!(reach.reply(), Some(&b"olleh"[..]));
                let text = reach.to_string();
                assert!(
                    text.starts_with(&format!(
                        "udp {target}: accepted (reply of 5 bytes: \"olleh\") after "
                    )),
                    "{text}"
                );
            }
        });
    }

    #[test]
    fn udp_refused_by_port_unreachable_from_a_closed_port() {
        let ns = TestNs::new();
        for (target, evidence) in [
            (
                "127.0.0.1:9",
                "ICMP destination unreachable (port unreachable) from 127.0.0.1",
            ),
            (
                "[::1]:9",
                "ICMPv6 destination unreachable (port unreachable) from ::1",
            ),
        ] {
            let reach = ns.run(|| udp_request(addr(target), b"x", SHORT));
            measured("udp to a closed port", &reach);
            reach.assert_refused();
            assert_fast(&reach);
            assert_eq!(reach.errno(), Some(libc::ECONNREFUSED));
            let message = panic_message(|| reach.assert_accepted());
            assert!(
                message.starts_with(&format!(
                    "expected udp {target} to be accepted, but it was refused ({evidence}) after "
                )),
                "{message}"
            );
        }
    }

    #[test]
    fn udp_dropped_by_a_silent_server_or_a_drop_rule() {
        let ns = TestNs::new();
        firewall(&ns, "input", "udp dport 9 drop");
        ns.run(|| {
            let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
            let target = silent.local_addr().unwrap();
            let reach = udp_request(target, b"x", SHORT);
            measured("udp to a server that never answers", &reach);
            reach.assert_dropped();
            assert_timed_out(&reach, SHORT);
            assert_eq!(
                reach.to_string(),
                format!("udp {target}: dropped (no answer within 300 ms)")
            );
        });
        for target in ["127.0.0.1:9", "[::1]:9"] {
            let reach = ns.run(|| udp_request(addr(target), b"x", SHORT));
            measured("udp into an input drop rule", &reach);
            reach.assert_dropped();
            assert_timed_out(&reach, SHORT);
        }
    }

    #[test]
    fn udp_local_firewall_drop_is_dropped_and_reject_is_refused() {
        let ns = TestNs::new();
        firewall(
            &ns,
            "output",
            "udp dport 1 drop
             udp dport 2 reject",
        );
        for (host, from, icmp) in [
            ("127.0.0.1", "127.0.0.1", "ICMP"),
            ("[::1]", "::1", "ICMPv6"),
        ] {
            let target = addr(&format!("{host}:1"));
            let reach = ns.run(|| udp_request(target, b"x", SHORT));
            measured("udp into an output drop rule", &reach);
            reach.assert_dropped();
            assert_timed_out(&reach, SHORT);
            assert_eq!(reach.errno(), Some(libc::EPERM));
            assert_eq!(
                reach.to_string(),
                format!(
                    "udp {target}: dropped (send failed: operation not permitted (EPERM), a firewall \
                     rule of this namespace dropped it; no answer within 300 ms)"
                )
            );
            let target = addr(&format!("{host}:2"));
            let reach = ns.run(|| udp_request(target, b"x", SHORT));
            measured("udp into an output reject rule", &reach);
            reach.assert_refused();
            assert_fast(&reach);
            assert!(
                reach.to_string().starts_with(&format!(
                    "udp {target}: refused ({icmp} destination unreachable (port unreachable) from {from}) after "
                )),
                "{reach}"
            );
        }
    }

    #[test]
    fn udp_refused_by_host_unreachable_from_a_router() {
        // Host/network unreachable are "soft" errors a UDP socket ignores without
        // IP_RECVERR; with it they are reported at once.
        let lab = Routed::new();
        for (target, evidence) in [
            (
                "10.99.0.5:53",
                "ICMP destination unreachable (host unreachable) from 10.50.0.1",
            ),
            (
                "[2001:db8:99::5]:53",
                "ICMPv6 destination unreachable (no route to destination) from 2001:db8:50::1",
            ),
        ] {
            let reach = lab.client.run(|| udp_request(addr(target), b"x", SHORT));
            measured("udp answered by ICMP from a router", &reach);
            reach.assert_refused();
            assert_fast(&reach);
            assert!(
                reach
                    .to_string()
                    .starts_with(&format!("udp {target}: refused ({evidence}) after ")),
                "{reach}"
            );
        }
        let reach = lab
            .client
            .run(|| udp_request(addr("10.98.0.2:53"), b"x", SHORT));
        measured("udp forwarded into silence", &reach);
        reach.assert_dropped();
        assert_timed_out(&reach, SHORT);
        let _ = &lab.router;
    }

    #[test]
    fn evidence_formats() {
        let reach = Reach {
            protocol: Protocol::Udp,
            target: addr("10.0.0.20:53"),
            outcome: Outcome::Accepted,
            evidence: Evidence::Reply {
                bytes: [b"\x00\x01abc".as_slice(), &[b'x'; 70]].concat(),
            },
            elapsed: Duration::from_micros(200),
            timeout: DEFAULT_TIMEOUT,
        };
        assert_eq!(
            reach.to_string(),
            format!(
                "udp 10.0.0.20:53: accepted (reply of 75 bytes: \"\\x00\\x01abc{}\"…) after 0.200 ms",
                "x".repeat(59)
            )
        );
    }
}
