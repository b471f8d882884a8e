//! ICMP echo ("ping") over IPv4 and IPv6, from the calling thread's network
//! namespace.
//!
//! [`ping`] sends `count` echo requests, `interval` apart, and waits up to
//! `timeout` for each answer. Every probe ends as a [`ProbeOutcome`]: an echo
//! reply, an ICMP error about it (e.g. "destination unreachable" from a router,
//! with the router's address), a send that failed in this namespace (e.g. no
//! route), or no answer. An unreachable target is therefore a *result*, never an
//! `Err`: `Err` means the probe could not be run at all (no socket, bad options).
//!
//! Sockets: a raw ICMP socket is tried first (it needs `CAP_NET_RAW`, which root
//! has in the namespaces it creates); on `EPERM`/`EACCES` the datagram ICMP socket
//! ("ping socket") is used, which needs the caller's group inside
//! `net.ipv4.ping_group_range` of the namespace. A fresh namespace has `1 0`
//! there, i.e. nobody: [`allow_unprivileged_ping`] opens it to every group.
//! [`PingOptions::socket`] forces one kind.
//!
//! Routers rate-limit ICMP errors: with Linux defaults a router namespace sends
//! only about 2 "destination unreachable" in a burst to one source (5 with
//! `net.ipv4.icmp_ratelimit = 0`, then about one per second, a host-wide
//! limit), so later probes show up as "no reply"; see [`super::reach`] for the
//! measurements.
//!
//! ```no_run
//! use netns_fixture::probes::ping::{ping, PingOptions};
//! use std::time::Duration;
//!
//! let options = PingOptions::default().count(3).timeout(Duration::from_millis(500));
//! let report = ping("127.0.0.1".parse().unwrap(), &options).unwrap();
//! report.assert_all_replied();
//! println!("{report}");
//! ```

use crate::deadline;
use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockProtocol, SockType,
    SockaddrIn, SockaddrIn6, SockaddrStorage,
};
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Where `ping_group_range` lives; the kernel resolves `/proc/sys/net` in the
/// network namespace of the thread that opens it.
const PING_GROUP_RANGE: &str = "/proc/sys/net/ipv4/ping_group_range";

/// The widest range the kernel accepts: every group.
const ALL_GROUPS: &str = "0 2147483647";

/// Lets every group open datagram ICMP sockets ("ping sockets") in the calling
/// thread's network namespace, by writing `0 2147483647` to
/// `/proc/sys/net/ipv4/ping_group_range`.
///
/// The setting belongs to the namespace the calling thread is in: call it only
/// from inside a namespace you created (a lab node), never from the machine's own.
///
/// ```no_run
/// use netns_fixture::probes::ping::allow_unprivileged_ping;
/// // On a thread inside a lab node's namespace:
/// allow_unprivileged_ping().unwrap();
/// ```
pub fn allow_unprivileged_ping() -> io::Result<()> {
    std::fs::write(PING_GROUP_RANGE, ALL_GROUPS).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("writing `{ALL_GROUPS}` to {PING_GROUP_RANGE}: {e}"),
        )
    })
}

/// Which kind of ICMP socket sends the probes.
///
/// ```
/// use netns_fixture::probes::ping::SocketKind;
/// assert_eq!(SocketKind::Datagram.to_string(), "datagram ICMP socket");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketKind {
    /// `SOCK_RAW` with `IPPROTO_ICMP`/`IPPROTO_ICMPV6`: needs `CAP_NET_RAW`. It
    /// sees every ICMP packet of the namespace; replies are told apart by
    /// identifier, sequence number and payload.
    Raw,
    /// `SOCK_DGRAM` with `IPPROTO_ICMP`/`IPPROTO_ICMPV6` (a "ping socket"): needs
    /// the caller's group in `net.ipv4.ping_group_range`. The kernel chooses the
    /// identifier and delivers only this socket's replies; ICMP errors arrive
    /// through the socket's error queue (`IP_RECVERR`).
    Datagram,
}

impl fmt::Display for SocketKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SocketKind::Raw => "raw ICMP socket",
            SocketKind::Datagram => "datagram ICMP socket",
        })
    }
}

/// How to ping. Defaults: 3 probes, 100 ms apart, 1 s timeout for each answer, no
/// overall deadline, 56 bytes of payload, the kernel's choice of source address
/// and interface, the default TTL, a raw socket with a datagram socket as
/// fall-back.
///
/// ```
/// use netns_fixture::probes::ping::{PingOptions, SocketKind};
/// use std::time::Duration;
///
/// let options = PingOptions::default()
///     .count(5)
///     .interval(Duration::from_millis(20))
///     .timeout(Duration::from_millis(300))
///     .deadline(Duration::from_secs(2))
///     .payload_size(1200)
///     .interface("veth-1")
///     .ttl(1)
///     .socket(SocketKind::Datagram);
/// assert_eq!(options.get_count(), 5);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingOptions {
    count: u16,
    interval: Duration,
    timeout: Duration,
    deadline: Option<Duration>,
    payload_size: usize,
    source: Option<IpAddr>,
    interface: Option<String>,
    ttl: Option<u8>,
    socket: Option<SocketKind>,
}

impl Default for PingOptions {
    fn default() -> Self {
        PingOptions {
            count: 3,
            interval: Duration::from_millis(100),
            timeout: Duration::from_secs(1),
            deadline: None,
            payload_size: 56,
            source: None,
            interface: None,
            ttl: None,
            socket: None,
        }
    }
}

impl PingOptions {
    /// How many echo requests to send (1 to 65535).
    pub fn count(mut self, count: u16) -> Self {
        self.count = count;
        self
    }
    /// Time between two requests (they are sent on schedule, whether or not the
    /// previous one was answered, like `ping -i`).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }
    /// How long to wait for the answer to each request (like `ping -W`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// Stops everything this long after the start, sent or not (like `ping -w`).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }
    /// Bytes of payload after the 8-byte ICMP header (like `ping -s`).
    pub fn payload_size(mut self, size: usize) -> Self {
        self.payload_size = size;
        self
    }
    /// Sends from this local address (it must belong to the namespace).
    pub fn source(mut self, address: IpAddr) -> Self {
        self.source = Some(address);
        self
    }
    /// Sends through this interface (`SO_BINDTODEVICE`, like `ping -I eth0`);
    /// needed for IPv6 link-local targets.
    pub fn interface(mut self, name: &str) -> Self {
        self.interface = Some(name.to_string());
        self
    }
    /// TTL (IPv4) or hop limit (IPv6) of the requests; e.g. 1 makes the first
    /// router answer "time exceeded".
    pub fn ttl(mut self, ttl: u8) -> Self {
        self.ttl = Some(ttl);
        self
    }
    /// Uses only this kind of socket, without fall-back.
    pub fn socket(mut self, kind: SocketKind) -> Self {
        self.socket = Some(kind);
        self
    }
    /// The number of requests.
    pub fn get_count(&self) -> u16 {
        self.count
    }
    /// The per-reply timeout.
    pub fn get_timeout(&self) -> Duration {
        self.timeout
    }
}

/// An ICMP or ICMPv6 error message, by type and code.
///
/// ```
/// use netns_fixture::probes::ping::IcmpError;
/// let error = IcmpError::V4 { icmp_type: 3, code: 1 };
/// assert_eq!(error.to_string(), "destination unreachable (host unreachable)");
/// assert!(error.is_unreachable());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IcmpError {
    /// ICMP for IPv4.
    V4 {
        /// Type (3 destination unreachable, 11 time exceeded, 12 parameter problem).
        icmp_type: u8,
        /// Code, e.g. 1 host unreachable, 3 port unreachable, 13 administratively
        /// prohibited.
        code: u8,
    },
    /// ICMPv6.
    V6 {
        /// Type (1 destination unreachable, 2 packet too big, 3 time exceeded,
        /// 4 parameter problem).
        icmp_type: u8,
        /// Code, e.g. 0 no route, 1 administratively prohibited, 3 address
        /// unreachable, 4 port unreachable.
        code: u8,
    },
}

impl IcmpError {
    /// The message type.
    pub fn icmp_type(&self) -> u8 {
        match *self {
            IcmpError::V4 { icmp_type, .. } | IcmpError::V6 { icmp_type, .. } => icmp_type,
        }
    }
    /// The message code.
    pub fn code(&self) -> u8 {
        match *self {
            IcmpError::V4 { code, .. } | IcmpError::V6 { code, .. } => code,
        }
    }
    /// Whether this is a "destination unreachable" message (any code).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            IcmpError::V4 { icmp_type: 3, .. } | IcmpError::V6 { icmp_type: 1, .. }
        )
    }
    /// Whether this is a "time exceeded" message (TTL / hop limit or reassembly).
    pub fn is_time_exceeded(&self) -> bool {
        matches!(
            self,
            IcmpError::V4 { icmp_type: 11, .. } | IcmpError::V6 { icmp_type: 3, .. }
        )
    }
    fn type_name(&self) -> &'static str {
        match *self {
            IcmpError::V4 { icmp_type, .. } => match icmp_type {
                3 => "destination unreachable",
                4 => "source quench",
                5 => "redirect",
                11 => "time exceeded",
                12 => "parameter problem",
                _ => "ICMP error",
            },
            IcmpError::V6 { icmp_type, .. } => match icmp_type {
                1 => "destination unreachable",
                2 => "packet too big",
                3 => "time exceeded",
                4 => "parameter problem",
                _ => "ICMPv6 error",
            },
        }
    }
    fn code_name(&self) -> Option<&'static str> {
        Some(match *self {
            IcmpError::V4 { icmp_type: 3, code } => match code {
                0 => "network unreachable",
                1 => "host unreachable",
                2 => "protocol unreachable",
                3 => "port unreachable",
                4 => "fragmentation needed",
                5 => "source route failed",
                6 => "destination network unknown",
                7 => "destination host unknown",
                8 => "source host isolated",
                9 => "network administratively prohibited",
                10 => "host administratively prohibited",
                11 => "network unreachable for TOS",
                12 => "host unreachable for TOS",
                13 => "communication administratively prohibited",
                14 => "host precedence violation",
                15 => "precedence cutoff in effect",
                _ => return None,
            },
            IcmpError::V4 {
                icmp_type: 11,
                code,
            } => match code {
                0 => "TTL exceeded in transit",
                1 => "fragment reassembly time exceeded",
                _ => return None,
            },
            IcmpError::V6 { icmp_type: 1, code } => match code {
                0 => "no route to destination",
                1 => "communication administratively prohibited",
                2 => "beyond scope of source address",
                3 => "address unreachable",
                4 => "port unreachable",
                5 => "source address failed ingress/egress policy",
                6 => "reject route to destination",
                _ => return None,
            },
            IcmpError::V6 { icmp_type: 3, code } => match code {
                0 => "hop limit exceeded in transit",
                1 => "fragment reassembly time exceeded",
                _ => return None,
            },
            _ => return None,
        })
    }
}

impl fmt::Display for IcmpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code_name() {
            Some(code) => write!(f, "{} ({code})", self.type_name()),
            None => write!(
                f,
                "{} (type {}, code {})",
                self.type_name(),
                self.icmp_type(),
                self.code()
            ),
        }
    }
}

/// What became of one echo request.
///
/// ```no_run
/// use netns_fixture::probes::ping::{ping, PingOptions, ProbeOutcome};
///
/// let report = ping("10.0.0.99".parse().unwrap(), &PingOptions::default()).unwrap();
/// for probe in report.probes() {
///     match &probe.outcome {
///         ProbeOutcome::Reply { from, rtt, ttl, .. } => println!("{from}: {rtt:?}, ttl {ttl:?}"),
///         ProbeOutcome::IcmpError { from, error, .. } => println!("{error} from {from}"),
///         ProbeOutcome::SendFailed { errno } => println!("not sent: errno {errno}"),
///         ProbeOutcome::NoReply { waited } => println!("nothing within {waited:?}"),
///         _ => {}
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProbeOutcome {
    /// An echo reply came back.
    Reply {
        /// Who answered (normally the target).
        from: IpAddr,
        /// Round-trip time, measured in user space.
        rtt: Duration,
        /// TTL (IPv4) or hop limit (IPv6) of the reply, when the kernel told it.
        ttl: Option<u8>,
        /// Size of the ICMP message (header and payload).
        bytes: usize,
    },
    /// An ICMP error about this request came back, e.g. "destination
    /// unreachable" from a router (or from this namespace itself when neighbour
    /// resolution failed).
    IcmpError {
        /// Who sent the error.
        from: IpAddr,
        /// Type and code.
        error: IcmpError,
        /// Time from the request to the error.
        after: Duration,
    },
    /// The request could not be sent: the kernel refused it in this namespace,
    /// e.g. `ENETUNREACH` (no route), `EHOSTUNREACH` (unreachable route),
    /// `EACCES` (prohibit route), `EPERM` (firewall rule), `EINVAL` (blackhole
    /// route).
    SendFailed {
        /// The `errno` of `sendto`.
        errno: i32,
    },
    /// Nothing came back in time.
    NoReply {
        /// How long it was waited for.
        waited: Duration,
    },
}

/// One echo request and what became of it.
///
/// `Display` gives one line, e.g. `seq 2: no reply after 1 s`; `{:#}` adds TTL and
/// size of replies.
///
/// ```no_run
/// use netns_fixture::probes::ping::{ping, PingOptions};
///
/// let report = ping("127.0.0.1".parse().unwrap(), &PingOptions::default()).unwrap();
/// let first = &report.probes()[0];
/// assert_eq!(first.seq, 1);
/// println!("{first}"); // seq 1: reply from 127.0.0.1 in 0.045 ms
/// assert!(first.replied() && first.rtt().is_some());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Probe {
    /// Sequence number (the first request has 1).
    pub seq: u16,
    /// When it was sent, from the start of the ping.
    pub sent_at: Duration,
    /// What became of it.
    pub outcome: ProbeOutcome,
    /// Further echo replies with the same sequence number.
    pub duplicates: u32,
}

impl Probe {
    /// The round-trip time, if an echo reply came back.
    pub fn rtt(&self) -> Option<Duration> {
        match self.outcome {
            ProbeOutcome::Reply { rtt, .. } => Some(rtt),
            _ => None,
        }
    }
    /// Whether an echo reply came back.
    pub fn replied(&self) -> bool {
        matches!(self.outcome, ProbeOutcome::Reply { .. })
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seq {}: ", self.seq)?;
        match &self.outcome {
            ProbeOutcome::Reply {
                from,
                rtt,
                ttl,
                bytes,
            } => {
                write!(f, "reply from {from} in {}", Rtt(*rtt))?;
                if f.alternate() {
                    write!(f, " ({bytes} bytes")?;
                    if let Some(ttl) = ttl {
                        write!(f, ", ttl {ttl}")?;
                    }
                    f.write_str(")")?;
                }
            }
            ProbeOutcome::IcmpError { from, error, after } => {
                write!(f, "{error} from {from}")?;
                if f.alternate() {
                    write!(f, " after {}", Rtt(*after))?;
                }
            }
            ProbeOutcome::SendFailed { errno } => {
                write!(f, "not sent: {}", ErrnoText(*errno))?;
            }
            ProbeOutcome::NoReply { waited } => write!(f, "no reply after {}", Span(*waited))?,
        }
        if self.duplicates > 0 {
            write!(f, " (+{} duplicates)", self.duplicates)?;
        }
        Ok(())
    }
}

/// Minimum, average, maximum and mean deviation of the round-trip times.
///
/// ```no_run
/// use netns_fixture::probes::ping::{ping, PingOptions};
///
/// let report = ping("::1".parse().unwrap(), &PingOptions::default()).unwrap();
/// let rtt = report.rtt().expect("at least one reply");
/// assert!(rtt.min <= rtt.avg && rtt.avg <= rtt.max);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RttStats {
    /// Fastest reply.
    pub min: Duration,
    /// Mean.
    pub avg: Duration,
    /// Slowest reply.
    pub max: Duration,
    /// Mean deviation, as `ping` prints it.
    pub mdev: Duration,
}

/// What a [`ping`] did and saw.
///
/// `Display` prints the summary like `ping` does; `{:#}` prints every probe
/// first:
///
/// ```text
/// --- 10.0.0.20 ping statistics ---
/// 3 packets transmitted, 3 received, 0% packet loss, time 201 ms
/// rtt min/avg/max/mdev = 0.031/0.045/0.060/0.012 ms
/// ```
///
/// ```no_run
/// use netns_fixture::probes::ping::{ping, PingOptions, SocketKind};
///
/// let report = ping("10.0.0.20".parse().unwrap(), &PingOptions::default()).unwrap();
/// assert_eq!((report.sent(), report.received(), report.lost()), (3, 3, 0));
/// assert_eq!(report.loss_percent(), 0.0);
/// assert_eq!(report.socket_kind(), SocketKind::Raw); // as root
/// println!("{report:#}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingReport {
    target: IpAddr,
    socket: SocketKind,
    identifier: u16,
    requested: u16,
    payload_size: usize,
    timeout: Duration,
    deadline: Option<Duration>,
    probes: Vec<Probe>,
    elapsed: Duration,
}

impl PingReport {
    /// The pinged address.
    pub fn target(&self) -> IpAddr {
        self.target
    }
    /// The kind of socket that was used.
    pub fn socket_kind(&self) -> SocketKind {
        self.socket
    }
    /// The ICMP identifier of the requests (chosen by the kernel for datagram
    /// sockets).
    pub fn identifier(&self) -> u16 {
        self.identifier
    }
    /// Every request sent (or attempted), in order.
    pub fn probes(&self) -> &[Probe] {
        &self.probes
    }
    /// Requests sent (or attempted); fewer than asked when the deadline cut the
    /// ping short.
    pub fn sent(&self) -> usize {
        self.probes.len()
    }
    /// Requests answered by an echo reply.
    pub fn received(&self) -> usize {
        self.probes.iter().filter(|p| p.replied()).count()
    }
    /// Requests answered by an ICMP error or not sent at all.
    pub fn errors(&self) -> usize {
        self.probes
            .iter()
            .filter(|p| {
                matches!(
                    p.outcome,
                    ProbeOutcome::IcmpError { .. } | ProbeOutcome::SendFailed { .. }
                )
            })
            .count()
    }
    /// Requests without an echo reply.
    pub fn lost(&self) -> usize {
        self.sent() - self.received()
    }
    /// Lost requests in percent of those sent (100 when none was sent).
    pub fn loss_percent(&self) -> f64 {
        if self.probes.is_empty() {
            100.0
        } else {
            self.lost() as f64 * 100.0 / self.sent() as f64
        }
    }
    /// Round-trip statistics, if any echo reply came back.
    pub fn rtt(&self) -> Option<RttStats> {
        let rtts: Vec<f64> = self
            .probes
            .iter()
            .filter_map(Probe::rtt)
            .map(|d| d.as_secs_f64())
            .collect();
        if rtts.is_empty() {
            return None;
        }
        let n = rtts.len() as f64;
        let avg = rtts.iter().sum::<f64>() / n;
        let square = rtts.iter().map(|r| r * r).sum::<f64>() / n;
        let min = rtts.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = rtts.iter().cloned().fold(0.0, f64::max);
        Some(RttStats {
            min: Duration::from_secs_f64(min),
            avg: Duration::from_secs_f64(avg),
            max: Duration::from_secs_f64(max),
            mdev: Duration::from_secs_f64((square - avg * avg).max(0.0).sqrt()),
        })
    }
    /// How long the whole ping took.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }
    /// Whether at least one echo reply came back.
    pub fn is_reachable(&self) -> bool {
        self.received() > 0
    }
    /// Whether every requested probe was sent and answered by an echo reply.
    pub fn all_replied(&self) -> bool {
        self.sent() == usize::from(self.requested) && self.received() == self.sent()
    }

    /// Panics unless every requested probe got an echo reply, saying what was
    /// sent and what came back from where.
    ///
    /// ```no_run
    /// # use netns_fixture::probes::ping::{ping, PingOptions};
    /// let report = ping("10.0.0.20".parse().unwrap(), &PingOptions::default()).unwrap();
    /// report.assert_all_replied();
    /// // ping 10.0.0.20: expected 3 echo replies, got 1 (seq 1: reply from 10.0.0.20 in
    /// // 0.050 ms; seq 2: no reply after 1 s; seq 3: destination unreachable (host
    /// // unreachable) from 192.168.0.1)
    /// ```
    #[track_caller]
    pub fn assert_all_replied(&self) {
        if !self.all_replied() {
            panic!(
                "ping {}: expected {} echo {}, got {} ({})",
                self.target,
                self.requested,
                plural(usize::from(self.requested), "reply", "replies"),
                self.received(),
                self.evidence()
            );
        }
    }

    /// Panics unless at least one echo reply came back.
    ///
    /// ```no_run
    /// # use netns_fixture::probes::ping::{ping, PingOptions};
    /// let report = ping("10.0.0.20".parse().unwrap(), &PingOptions::default()).unwrap();
    /// report.assert_reachable();
    /// ```
    #[track_caller]
    pub fn assert_reachable(&self) {
        if !self.is_reachable() {
            panic!(
                "ping {}: expected at least one echo reply, got none ({})",
                self.target,
                self.evidence()
            );
        }
    }

    /// Panics if any echo reply came back. No reply, ICMP errors and sends
    /// refused locally all count as unreachable.
    ///
    /// ```no_run
    /// # use netns_fixture::probes::ping::{ping, PingOptions};
    /// let report = ping("10.0.0.99".parse().unwrap(), &PingOptions::default()).unwrap();
    /// report.assert_unreachable();
    /// ```
    #[track_caller]
    pub fn assert_unreachable(&self) {
        if self.is_reachable() {
            panic!(
                "ping {}: expected no echo reply, got {} ({})",
                self.target,
                self.received(),
                self.evidence()
            );
        }
    }

    /// Every probe on one line, separated by `; `.
    fn evidence(&self) -> String {
        let mut parts: Vec<String> = self.probes.iter().map(|p| p.to_string()).collect();
        if self.probes.len() < usize::from(self.requested) {
            let deadline = self.deadline.map(Span).map(|d| format!(" of {d}"));
            parts.push(format!(
                "only {} of {} sent before the deadline{}",
                self.probes.len(),
                self.requested,
                deadline.unwrap_or_default()
            ));
        }
        if parts.is_empty() {
            "nothing sent".into()
        } else {
            parts.join("; ")
        }
    }
}

impl fmt::Display for PingReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            writeln!(
                f,
                "PING {}: {} data bytes, {}, id {:#06x}",
                self.target, self.payload_size, self.socket, self.identifier
            )?;
            for probe in &self.probes {
                writeln!(f, "{probe:#}")?;
            }
            writeln!(f)?;
        }
        writeln!(f, "--- {} ping statistics ---", self.target)?;
        write!(
            f,
            "{} packets transmitted, {} received, ",
            self.sent(),
            self.received()
        )?;
        if self.errors() > 0 {
            write!(f, "+{} errors, ", self.errors())?;
        }
        let loss = self.loss_percent();
        if loss.fract() == 0.0 {
            write!(f, "{loss:.0}% packet loss")?;
        } else {
            write!(f, "{loss:.1}% packet loss")?;
        }
        write!(f, ", time {} ms", self.elapsed.as_millis())?;
        if let Some(rtt) = self.rtt() {
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            write!(
                f,
                "\nrtt min/avg/max/mdev = {:.3}/{:.3}/{:.3}/{:.3} ms",
                ms(rtt.min),
                ms(rtt.avg),
                ms(rtt.max),
                ms(rtt.mdev)
            )?;
        }
        Ok(())
    }
}

/// Why a ping could not be run at all. An unreachable target is not an error:
/// see [`PingReport`].
///
/// ```
/// use netns_fixture::probes::ping::{ping, PingError, PingOptions};
///
/// let error = ping("127.0.0.1".parse().unwrap(), &PingOptions::default().count(0)).unwrap_err();
/// assert!(matches!(error, PingError::InvalidOptions(_)));
/// assert_eq!(error.to_string(), "invalid ping options: count must be at least 1");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum PingError {
    /// No ICMP socket could be opened: no `CAP_NET_RAW` for a raw socket, and the
    /// caller's group is outside `net.ipv4.ping_group_range` for a datagram one.
    NotPermitted {
        /// The pinged address.
        target: IpAddr,
        /// Why the raw socket failed (`None` if it was not tried).
        raw: Option<io::Error>,
        /// Why the datagram socket failed (`None` if it was not tried).
        datagram: Option<io::Error>,
        /// The caller's effective group id.
        gid: u32,
        /// `net.ipv4.ping_group_range` of the calling thread's namespace, as read.
        ping_group_range: Option<String>,
    },
    /// Opening or setting up the socket failed otherwise (e.g. no such
    /// interface, source address not local).
    Socket {
        /// What was being done.
        context: String,
        /// Why it failed.
        source: io::Error,
    },
    /// The options cannot work (count 0, zero timeout, payload too large, source
    /// of the other address family, link-local target without interface).
    InvalidOptions(String),
}

impl fmt::Display for PingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PingError::NotPermitted {
                target,
                raw,
                datagram,
                gid,
                ping_group_range,
            } => {
                write!(f, "ping {target}: cannot open an ICMP socket:")?;
                if let Some(raw) = raw {
                    write!(f, " raw socket: {raw} (needs CAP_NET_RAW);")?;
                }
                if let Some(datagram) = datagram {
                    write!(f, " datagram ICMP socket: {datagram};")?;
                    let range = ping_group_range.as_deref().unwrap_or("unreadable");
                    write!(
                        f,
                        " net.ipv4.ping_group_range must include gid {gid} (it is `{range}` in \
                         this network namespace): write `{ALL_GROUPS}` to {PING_GROUP_RANGE} \
                         inside the namespace, e.g. with \
                         netns_fixture::probes::ping::allow_unprivileged_ping()"
                    )?;
                }
                Ok(())
            }
            PingError::Socket { context, source } => write!(f, "{context}: {source}"),
            PingError::InvalidOptions(why) => write!(f, "invalid ping options: {why}"),
        }
    }
}

impl std::error::Error for PingError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PingError::NotPermitted { datagram, raw, .. } => datagram
                .as_ref()
                .or(raw.as_ref())
                .map(|e| e as &(dyn std::error::Error + 'static)),
            PingError::Socket { source, .. } => Some(source),
            PingError::InvalidOptions(_) => None,
        }
    }
}

/// Pings `target` from the calling thread's network namespace and reports every
/// probe. Blocks until every probe is answered or timed out (or the deadline
/// passes).
///
/// Returns `Err` only when the ping cannot run (no socket, invalid options);
/// loss, ICMP errors and sends refused by the kernel are results in the report.
///
/// ```no_run
/// use netns_fixture::probes::ping::{ping, PingOptions, ProbeOutcome};
///
/// let report = ping("::1".parse().unwrap(), &PingOptions::default().count(1)).unwrap();
/// match &report.probes()[0].outcome {
///     ProbeOutcome::Reply { from, rtt, .. } => println!("{from} answered in {rtt:?}"),
///     other => println!("{other:?}"),
/// }
/// ```
pub fn ping(target: IpAddr, options: &PingOptions) -> Result<PingReport, PingError> {
    validate(target, options)?;
    let mut pinger = Pinger::open(target, options)?;
    Ok(pinger.run(options))
}

fn validate(target: IpAddr, options: &PingOptions) -> Result<(), PingError> {
    let invalid = |why: String| Err(PingError::InvalidOptions(why));
    if options.count == 0 {
        return invalid("count must be at least 1".into());
    }
    if options.timeout.is_zero() {
        return invalid("timeout must be more than zero".into());
    }
    // IPv4: 65535 - 20 (IP header) - 8 (ICMP header); IPv6: 65535 - 8.
    let max = if target.is_ipv4() { 65507 } else { 65527 };
    if options.payload_size > max {
        return invalid(format!(
            "payload of {} bytes is more than the {max} an ICMP{} echo can carry",
            options.payload_size,
            if target.is_ipv4() { "" } else { "v6" }
        ));
    }
    if let Some(source) = options.source {
        if source.is_ipv4() != target.is_ipv4() {
            return invalid(format!(
                "source {source} and target {target} are of different address families"
            ));
        }
    }
    if let IpAddr::V6(v6) = target {
        if is_link_local(&v6) && options.interface.is_none() {
            return invalid(format!(
                "link-local target {target} needs an interface (PingOptions::interface)"
            ));
        }
    }
    Ok(())
}

fn is_link_local(address: &Ipv6Addr) -> bool {
    address.segments()[0] & 0xffc0 == 0xfe80
}

/// What a received packet means for us.
enum Received {
    Reply {
        seq: u16,
        from: IpAddr,
        ttl: Option<u8>,
        bytes: usize,
    },
    Error {
        seq: u16,
        from: IpAddr,
        error: IcmpError,
    },
    Ignored,
}

struct Pinger {
    fd: OwnedFd,
    kind: SocketKind,
    target: IpAddr,
    destination: SockaddrStorage,
    identifier: u16,
    /// Start of the payload, echoed back; tells our replies from others' when
    /// identifiers collide (raw sockets see every ICMP packet).
    cookie: [u8; 8],
    payload: Vec<u8>,
}

impl Pinger {
    fn open(target: IpAddr, options: &PingOptions) -> Result<Pinger, PingError> {
        let (fd, kind) = open_icmp_socket(target, options.socket)?;
        let raw = fd.as_raw_fd();
        let setup = |context: &str, result: io::Result<()>| {
            result.map_err(|source| PingError::Socket {
                context: format!("ping {target}: {context}"),
                source,
            })
        };
        match (target.is_ipv4(), kind) {
            (true, SocketKind::Datagram) => {
                setup(
                    "enabling IP_RECVERR",
                    set_int(raw, libc::IPPROTO_IP, libc::IP_RECVERR, 1),
                )?;
                setup(
                    "enabling IP_RECVTTL",
                    set_int(raw, libc::IPPROTO_IP, libc::IP_RECVTTL, 1),
                )?;
            }
            (true, SocketKind::Raw) => {} // replies come with their IP header
            (false, kind) => {
                if kind == SocketKind::Datagram {
                    setup(
                        "enabling IPV6_RECVERR",
                        set_int(raw, libc::IPPROTO_IPV6, libc::IPV6_RECVERR, 1),
                    )?;
                }
                setup(
                    "enabling IPV6_RECVHOPLIMIT",
                    set_int(raw, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1),
                )?;
            }
        }
        if let Some(ttl) = options.ttl {
            let (level, name) = if target.is_ipv4() {
                (libc::IPPROTO_IP, libc::IP_TTL)
            } else {
                (libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS)
            };
            setup(
                &format!("setting TTL {ttl}"),
                set_int(raw, level, name, i32::from(ttl)),
            )?;
        }
        let mut scope_id = 0;
        if let Some(interface) = &options.interface {
            setup(
                &format!("binding to interface {interface}"),
                bind_to_device(raw, interface),
            )?;
            scope_id = nix::net::if_::if_nametoindex(interface.as_str()).map_err(|e| {
                PingError::Socket {
                    context: format!("ping {target}: looking up interface {interface}"),
                    source: e.into(),
                }
            })?;
        }
        // Datagram sockets get their identifier (the "port") when bound; bind
        // them even without a source address, to learn it.
        if options.source.is_some() || kind == SocketKind::Datagram {
            let local = options.source.unwrap_or(match target {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            });
            let address = sockaddr(local, 0);
            setup(
                &format!("binding to source {local}"),
                socket::bind(raw, &address).map_err(io::Error::from),
            )?;
        }
        let identifier = match kind {
            SocketKind::Raw => fresh_identifier(),
            SocketKind::Datagram => {
                let local: SockaddrStorage =
                    socket::getsockname(raw).map_err(|e| PingError::Socket {
                        context: format!("ping {target}: reading the ICMP identifier"),
                        source: e.into(),
                    })?;
                local
                    .as_sockaddr_in()
                    .map(|a| a.port())
                    .or_else(|| local.as_sockaddr_in6().map(|a| a.port()))
                    .unwrap_or(0)
            }
        };
        let cookie = random_u64().to_be_bytes();
        let payload = (0..options.payload_size)
            .map(|i| {
                if i < cookie.len() {
                    cookie[i]
                } else {
                    // ping's pattern: the byte's offset.
                    i as u8
                }
            })
            .collect();
        let destination = match target {
            IpAddr::V4(v4) => SockaddrStorage::from(SocketAddrV4::new(v4, 0)),
            IpAddr::V6(v6) => SockaddrStorage::from(SocketAddrV6::new(v6, 0, 0, scope_id)),
        };
        Ok(Pinger {
            fd,
            kind,
            target,
            destination,
            identifier,
            cookie,
            payload,
        })
    }

    fn run(&mut self, options: &PingOptions) -> PingReport {
        let start = Instant::now();
        let deadline = options.deadline.map(|d| deadline::after(start, d));
        let count = usize::from(options.count);
        // Per probe: when it was sent, and its outcome once known.
        let mut sent: Vec<(Instant, Option<ProbeOutcome>, u32)> = Vec::with_capacity(count);
        let mut next_send = start;
        loop {
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                break;
            }
            for (sent_at, outcome, _) in sent.iter_mut() {
                if outcome.is_none() && now >= deadline::after(*sent_at, options.timeout) {
                    *outcome = Some(ProbeOutcome::NoReply {
                        waited: options.timeout,
                    });
                }
            }
            if sent.len() < count && now >= next_send {
                let seq = (sent.len() + 1) as u16;
                let sent_at = Instant::now();
                let outcome = self.send(seq).err().map(|errno| ProbeOutcome::SendFailed {
                    errno: errno as i32,
                });
                sent.push((sent_at, outcome, 0));
                next_send = deadline::after(next_send, options.interval);
                continue;
            }
            let pending = sent.iter().filter(|(_, o, _)| o.is_none());
            let first_expiry = pending
                .map(|(at, _, _)| deadline::after(*at, options.timeout))
                .min();
            if sent.len() == count && first_expiry.is_none() {
                break;
            }
            let mut wake = first_expiry;
            if sent.len() < count {
                wake = Some(wake.map_or(next_send, |w| w.min(next_send)));
            }
            if let Some(d) = deadline {
                wake = Some(wake.map_or(d, |w| w.min(d)));
            }
            let wait = wake.map_or(Duration::ZERO, |w| w.saturating_duration_since(now));
            // Errors of poll (EINTR) only mean another turn of the loop.
            let _ = wait_for(self.fd.as_raw_fd(), libc::POLLIN, wait);
            self.drain(&mut sent);
        }
        let end = Instant::now();
        let probes = sent
            .into_iter()
            .enumerate()
            .map(|(i, (sent_at, outcome, duplicates))| Probe {
                seq: (i + 1) as u16,
                sent_at: sent_at - start,
                outcome: outcome.unwrap_or(ProbeOutcome::NoReply {
                    waited: end - sent_at,
                }),
                duplicates,
            })
            .collect();
        PingReport {
            target: self.target,
            socket: self.kind,
            identifier: self.identifier,
            requested: options.count,
            payload_size: options.payload_size,
            timeout: options.timeout,
            deadline: options.deadline,
            probes,
            elapsed: end - start,
        }
    }

    fn send(&self, seq: u16) -> Result<(), Errno> {
        let echo_request = if self.target.is_ipv4() { 8 } else { 128 };
        let mut packet = Vec::with_capacity(8 + self.payload.len());
        packet.extend_from_slice(&[echo_request, 0, 0, 0]);
        packet.extend_from_slice(&self.identifier.to_be_bytes());
        packet.extend_from_slice(&seq.to_be_bytes());
        packet.extend_from_slice(&self.payload);
        if self.target.is_ipv4() {
            // The kernel fills in ICMPv6 checksums (and those of datagram ICMP
            // sockets), but not those of raw IPv4 ICMP.
            let sum = checksum(&packet);
            packet[2..4].copy_from_slice(&sum.to_be_bytes());
        }
        loop {
            match socket::sendto(
                self.fd.as_raw_fd(),
                &packet,
                &self.destination,
                MsgFlags::empty(),
            ) {
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
                Ok(_) => return Ok(()),
            }
        }
    }

    /// Reads everything queued on the socket, the error queue first.
    fn drain(&self, sent: &mut [(Instant, Option<ProbeOutcome>, u32)]) {
        let fd = self.fd.as_raw_fd();
        if self.kind == SocketKind::Datagram {
            while let Ok(Some(queued)) = read_error_queue(fd) {
                let at = Instant::now();
                let (Some(error), Some(from)) = (queued.icmp, queued.offender) else {
                    continue; // local errors were already returned by sendto
                };
                if let Some(seq) = echo_request_seq(&queued.payload, self.target, None) {
                    self.record(sent, Received::Error { seq, from, error }, at);
                }
            }
        }
        let mut buffer = vec![0u8; 65536 + 60];
        let mut cmsg = vec![0u8; 1024];
        loop {
            let mut iov = [IoSliceMut::new(&mut buffer)];
            let message = socket::recvmsg::<SockaddrStorage>(
                fd,
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_DONTWAIT,
            );
            let at = Instant::now();
            let (len, from, ttl) = match message {
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => break,
                // A pending socket error (the error queue has the details).
                Err(_) => continue,
                Ok(message) => {
                    let mut ttl = None;
                    if let Ok(cmsgs) = message.cmsgs() {
                        for c in cmsgs {
                            match c {
                                ControlMessageOwned::Ipv4Ttl(t)
                                | ControlMessageOwned::Ipv6HopLimit(t) => {
                                    ttl = u8::try_from(t).ok()
                                }
                                _ => {}
                            }
                        }
                    }
                    let from = message.address.as_ref().and_then(ip_of);
                    (message.bytes, from, ttl)
                }
            };
            let Some(from) = from else { continue };
            let received = self.parse(&buffer[..len], from, ttl);
            self.record(sent, received, at);
        }
    }

    fn parse(&self, packet: &[u8], from: IpAddr, ttl: Option<u8>) -> Received {
        // Raw IPv4 sockets receive the IP header too.
        let (icmp, ttl) = if self.kind == SocketKind::Raw && self.target.is_ipv4() {
            match split_ipv4(packet) {
                Some((header, icmp)) if header[9] == 1 => (icmp, Some(header[8])),
                _ => return Received::Ignored,
            }
        } else {
            (packet, ttl)
        };
        if icmp.len() < 8 {
            return Received::Ignored;
        }
        let (icmp_type, code) = (icmp[0], icmp[1]);
        let id = u16::from_be_bytes([icmp[4], icmp[5]]);
        let seq = u16::from_be_bytes([icmp[6], icmp[7]]);
        let reply_type = if self.target.is_ipv4() { 0 } else { 129 };
        if icmp_type == reply_type && code == 0 {
            if id != self.identifier || !self.payload_matches(&icmp[8..]) {
                return Received::Ignored;
            }
            return Received::Reply {
                seq,
                from,
                ttl,
                bytes: icmp.len(),
            };
        }
        // Only raw sockets see ICMP errors as packets.
        let error = match (self.target.is_ipv4(), icmp_type) {
            (true, 3 | 11 | 12) => IcmpError::V4 { icmp_type, code },
            (false, 1..=4) => IcmpError::V6 { icmp_type, code },
            _ => return Received::Ignored,
        };
        let inner = if self.target.is_ipv4() {
            match split_ipv4(&icmp[8..]) {
                Some((header, rest))
                    if header[9] == 1 && header[16..20] == ip_octets(self.target)[..] =>
                {
                    rest
                }
                _ => return Received::Ignored,
            }
        } else {
            let header = &icmp[8..];
            // Next header ICMPv6 (no extension headers), destination the target.
            if header.len() < 40 || header[6] != 58 || header[24..40] != ip_octets(self.target)[..]
            {
                return Received::Ignored;
            }
            &header[40..]
        };
        match echo_request_seq(inner, self.target, Some(self.identifier)) {
            Some(seq) => Received::Error { seq, from, error },
            None => Received::Ignored,
        }
    }

    fn payload_matches(&self, payload: &[u8]) -> bool {
        let n = self.cookie.len().min(self.payload.len());
        payload.len() >= n && payload[..n] == self.payload[..n]
    }

    fn record(
        &self,
        sent: &mut [(Instant, Option<ProbeOutcome>, u32)],
        received: Received,
        at: Instant,
    ) {
        let (seq, outcome) = match received {
            Received::Ignored => return,
            Received::Reply {
                seq,
                from,
                ttl,
                bytes,
            } => (seq, (from, Some((ttl, bytes)), None)),
            Received::Error { seq, from, error } => (seq, (from, None, Some(error))),
        };
        let Some((sent_at, slot, duplicates)) = usize::from(seq)
            .checked_sub(1)
            .and_then(|i| sent.get_mut(i))
        else {
            return;
        };
        let elapsed = at.saturating_duration_since(*sent_at);
        let (from, reply, error) = outcome;
        match (slot.as_ref(), reply, error) {
            (None, Some((ttl, bytes)), _) => {
                *slot = Some(ProbeOutcome::Reply {
                    from,
                    rtt: elapsed,
                    ttl,
                    bytes,
                })
            }
            (Some(ProbeOutcome::Reply { .. }), Some(_), _) => *duplicates += 1,
            (None, None, Some(error)) => {
                *slot = Some(ProbeOutcome::IcmpError {
                    from,
                    error,
                    after: elapsed,
                })
            }
            // Late answers (after the timeout) and errors after a reply.
            _ => {}
        }
    }
}

fn open_icmp_socket(
    target: IpAddr,
    preference: Option<SocketKind>,
) -> Result<(OwnedFd, SocketKind), PingError> {
    let (family, protocol) = match target {
        IpAddr::V4(_) => (AddressFamily::Inet, SockProtocol::Icmp),
        IpAddr::V6(_) => (AddressFamily::Inet6, SockProtocol::IcmpV6),
    };
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let open = |ty| socket::socket(family, ty, flags, protocol);
    let not_permitted = |raw: Option<Errno>, datagram: Option<Errno>| PingError::NotPermitted {
        target,
        raw: raw.map(io::Error::from),
        datagram: datagram.map(io::Error::from),
        // SAFETY: getegid cannot fail.
        gid: unsafe { libc::getegid() },
        ping_group_range: std::fs::read_to_string(PING_GROUP_RANGE)
            .ok()
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" ")),
    };
    let other = |kind: &str, e: Errno| PingError::Socket {
        context: format!("ping {target}: opening a {kind} ICMP socket"),
        source: e.into(),
    };
    let mut raw_error = None;
    if preference != Some(SocketKind::Datagram) {
        match open(SockType::Raw) {
            Ok(fd) => return Ok((fd, SocketKind::Raw)),
            Err(e @ (Errno::EPERM | Errno::EACCES)) => {
                if preference == Some(SocketKind::Raw) {
                    return Err(not_permitted(Some(e), None));
                }
                raw_error = Some(e);
            }
            Err(e) => return Err(other("raw", e)),
        }
    }
    match open(SockType::Datagram) {
        Ok(fd) => Ok((fd, SocketKind::Datagram)),
        Err(e @ (Errno::EPERM | Errno::EACCES)) => Err(not_permitted(raw_error, Some(e))),
        Err(e) => Err(other("datagram", e)),
    }
}

/// The sequence number of the echo request at the start of `icmp` (our
/// identifier, when given), as quoted in ICMP errors.
fn echo_request_seq(icmp: &[u8], target: IpAddr, identifier: Option<u16>) -> Option<u16> {
    let request = if target.is_ipv4() { 8 } else { 128 };
    if icmp.len() < 8 || icmp[0] != request {
        return None;
    }
    let id = u16::from_be_bytes([icmp[4], icmp[5]]);
    if identifier.is_some_and(|expected| expected != id) {
        return None;
    }
    Some(u16::from_be_bytes([icmp[6], icmp[7]]))
}

/// An IPv4 packet's header and payload.
fn split_ipv4(packet: &[u8]) -> Option<(&[u8], &[u8])> {
    let first = *packet.first()?;
    let header_len = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || header_len < 20 || packet.len() < header_len {
        return None;
    }
    Some(packet.split_at(header_len))
}

fn ip_octets(address: IpAddr) -> Vec<u8> {
    match address {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// The Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// An identifier for a raw socket's requests, different for each ping of this
/// process.
fn fresh_identifier() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    (random_u64() as u16) ^ (n as u16).wrapping_mul(0x9e37)
}

// ---------------------------------------------------------------------------
// Socket helpers shared with `reach`.

/// Sets an integer socket option.
pub(crate) fn set_int(fd: RawFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: the pointer and length describe `value`, which outlives the call.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn bind_to_device(fd: RawFd, interface: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe the name's bytes.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            interface.as_ptr().cast(),
            interface.len() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Waits until `fd` has one of `events` (or an error) or `timeout` passes;
/// returns the events seen (0 on timeout).
pub(crate) fn wait_for(fd: RawFd, events: i16, timeout: Duration) -> io::Result<i16> {
    let mut poll = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let timeout = libc::timespec {
        tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: one valid pollfd, a valid timespec, no signal mask.
    let r = unsafe { libc::ppoll(&mut poll, 1, &timeout, std::ptr::null()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(poll.revents)
    }
}

pub(crate) fn sockaddr(ip: IpAddr, port: u16) -> SockaddrStorage {
    match ip {
        IpAddr::V4(v4) => SockaddrStorage::from(SocketAddrV4::new(v4, port)),
        IpAddr::V6(v6) => SockaddrStorage::from(SocketAddrV6::new(v6, port, 0, 0)),
    }
}

fn ip_of(address: &SockaddrStorage) -> Option<IpAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(IpAddr::V4(v4.ip()));
    }
    address.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
}

/// An entry of a socket's error queue (`IP_RECVERR` / `IPV6_RECVERR`).
#[derive(Debug, Clone)]
pub(crate) struct QueuedError {
    /// The error as an errno (e.g. `EHOSTUNREACH` for host unreachable).
    pub(crate) errno: i32,
    /// The ICMP message, when the error came from one.
    pub(crate) icmp: Option<IcmpError>,
    /// Who sent the ICMP message.
    pub(crate) offender: Option<IpAddr>,
    /// The start of the offending packet's payload (for ICMP sockets: the echo
    /// request's ICMP header).
    pub(crate) payload: Vec<u8>,
}

/// Reads one entry of the socket's error queue without blocking; `None` when the
/// queue is empty.
pub(crate) fn read_error_queue(fd: RawFd) -> io::Result<Option<QueuedError>> {
    let mut buffer = [0u8; 512];
    // Room for every control message the socket may add (the hop limit comes
    // before the error on IPv6 sockets with IPV6_RECVHOPLIMIT).
    let mut cmsg = vec![0u8; 1024];
    loop {
        let mut iov = [IoSliceMut::new(&mut buffer)];
        let message = socket::recvmsg::<SockaddrStorage>(
            fd,
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
        );
        let message = match message {
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return Ok(None),
            Err(e) => return Err(e.into()),
            Ok(message) => message,
        };
        let bytes = message.bytes;
        let mut queued = None;
        for c in message.cmsgs().map_err(io::Error::from)? {
            let (err, offender) = match c {
                ControlMessageOwned::Ipv4RecvErr(err, addr) => (
                    err,
                    addr.filter(|a| a.sin_family == libc::AF_INET as libc::sa_family_t)
                        .map(|a| IpAddr::V4(SockaddrIn::from(a).ip())),
                ),
                ControlMessageOwned::Ipv6RecvErr(err, addr) => (
                    err,
                    addr.filter(|a| a.sin6_family == libc::AF_INET6 as libc::sa_family_t)
                        .map(|a| ipv6_or_mapped(SockaddrIn6::from(a).ip())),
                ),
                _ => continue,
            };
            let icmp = match err.ee_origin {
                libc::SO_EE_ORIGIN_ICMP => Some(IcmpError::V4 {
                    icmp_type: err.ee_type,
                    code: err.ee_code,
                }),
                libc::SO_EE_ORIGIN_ICMP6 => Some(IcmpError::V6 {
                    icmp_type: err.ee_type,
                    code: err.ee_code,
                }),
                _ => None,
            };
            queued = Some(QueuedError {
                errno: err.ee_errno as i32,
                icmp,
                offender,
                payload: Vec::new(),
            });
        }
        match queued {
            Some(mut queued) => {
                queued.payload = buffer[..bytes.min(buffer.len())].to_vec();
                return Ok(Some(queued));
            }
            None => continue,
        }
    }
}

/// IPv4-mapped IPv6 addresses (from dual-stack sockets) as IPv4.
fn ipv6_or_mapped(v6: Ipv6Addr) -> IpAddr {
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

/// `errno` as text, e.g. `network is unreachable (ENETUNREACH)`.
pub(crate) struct ErrnoText(pub(crate) i32);

impl fmt::Display for ErrnoText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errno = Errno::from_raw(self.0);
        let desc = errno.desc();
        let mut chars = desc.chars();
        if let Some(first) = chars.next() {
            write!(f, "{}{}", first.to_lowercase(), chars.as_str())?;
        }
        write!(f, " ({errno:?})")
    }
}

/// A round-trip time: `0.045 ms`.
pub(crate) struct Rtt(pub(crate) Duration);

impl fmt::Display for Rtt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3} ms", self.0.as_secs_f64() * 1000.0)
    }
}

/// A configured span of time: `1 s`, `500 ms`, `1.5 s`, `0.250 ms`.
pub(crate) struct Span(pub(crate) Duration);

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.subsec_nanos() == 0 {
            write!(f, "{} s", d.as_secs())
        } else if d.as_nanos().is_multiple_of(1_000_000) {
            if d.as_millis() >= 1000 {
                write!(f, "{} s", d.as_secs_f64())
            } else {
                write!(f, "{} ms", d.as_millis())
            }
        } else {
            Rtt(d).fmt(f)
        }
    }
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// Test namespaces: each test builds its own, and everything in them (links,
/// routes, nftables rules, sysctls) disappears when the last handle is dropped.
#[cfg(test)]
pub(crate) mod testnet {
    use nix::sched::CloneFlags;
    use std::fs::File;
    use std::os::fd::{AsFd, AsRawFd, OwnedFd};
    use std::os::unix::fs::MetadataExt;
    use std::process::{Command, Stdio};

    fn thread_ns_inode() -> u64 {
        std::fs::metadata("/proc/thread-self/ns/net")
            .expect("reading /proc/thread-self/ns/net")
            .ino()
    }

    /// A fresh network namespace with `lo` up.
    pub(crate) struct TestNs {
        fd: OwnedFd,
        inode: u64,
    }

    impl TestNs {
        pub(crate) fn new() -> TestNs {
            std::thread::spawn(|| {
                let machine = std::fs::metadata("/proc/1/ns/net").map(|m| m.ino()).ok();
                // SAFETY: plain syscall; only this thread changes namespace.
                let r = unsafe { libc::unshare(libc::CLONE_NEWNET) };
                assert_eq!(
                    r,
                    0,
                    "unshare(CLONE_NEWNET): {} (these tests need root)",
                    std::io::Error::last_os_error()
                );
                let inode = thread_ns_inode();
                assert_ne!(Some(inode), machine, "still in the machine's namespace");
                set_up("lo");
                // No duplicate address detection: addresses, link-local ones
                // included, work at once (DAD keeps them tentative for ~1 s).
                for conf in ["all", "default"] {
                    let path = format!("/proc/sys/net/ipv6/conf/{conf}/accept_dad");
                    std::fs::write(path, "0").expect("disabling DAD");
                }
                let fd = File::open("/proc/thread-self/ns/net").expect("opening the namespace");
                TestNs {
                    fd: fd.into(),
                    inode,
                }
            })
            .join()
            .expect("creating a test namespace")
        }

        /// Runs `f` on a thread inside the namespace.
        pub(crate) fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
            std::thread::scope(|scope| {
                let thread = scope.spawn(|| {
                    nix::sched::setns(self.fd.as_fd(), CloneFlags::CLONE_NEWNET).expect("setns");
                    assert_eq!(thread_ns_inode(), self.inode, "not in the test namespace");
                    f()
                });
                match thread.join() {
                    Ok(r) => r,
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            })
        }

        /// Runs a shell script inside the namespace; panics if it fails.
        pub(crate) fn sh(&self, script: &str) {
            let output = self.run(|| {
                Command::new("sh")
                    .arg("-ec")
                    .arg(script)
                    .stdin(Stdio::null())
                    .output()
                    .expect("running sh")
            });
            assert!(
                output.status.success(),
                "in a test namespace, `{script}` failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }

        /// A path naming the namespace, for `ip link ... netns PATH`.
        pub(crate) fn path(&self) -> String {
            format!("/proc/{}/fd/{}", std::process::id(), self.fd.as_raw_fd())
        }

        /// Reads a sysctl of the namespace, e.g. `net/ipv4/ping_group_range`.
        pub(crate) fn sysctl(&self, key: &str) -> String {
            let path = format!("/proc/sys/{key}");
            self.run(|| std::fs::read_to_string(&path).expect("reading a sysctl"))
                .trim()
                .to_string()
        }
    }

    /// Sets an interface of the calling thread's namespace up (no `ip` needed).
    pub(crate) fn set_up(name: &str) {
        use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
        let sock = socket(
            AddressFamily::Inet,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .expect("socket for ioctl");
        // SAFETY: ifreq is plain data; zero is a valid value.
        let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in request.ifr_name.iter_mut().zip(name.bytes()) {
            *dst = src as libc::c_char;
        }
        // SAFETY: valid socket and ifreq for SIOCGIFFLAGS/SIOCSIFFLAGS.
        unsafe {
            assert_eq!(
                libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request),
                0
            );
            request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            assert_eq!(
                libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &mut request),
                0,
                "setting {name} up"
            );
        }
    }

    /// A client and a router on one veth:
    ///
    /// ```text
    /// client c0 10.50.0.2/24 2001:db8:50::2/64 ── r0 10.50.0.1/24 2001:db8:50::1/64 router
    /// ```
    ///
    /// Neighbour entries are permanent (fixed MAC addresses), so nothing waits for
    /// ARP or neighbour discovery: a freshly created veth may ignore the first
    /// neighbour solicitation, which costs a 1 s retransmission. The client's
    /// default routes go to the router, which forwards and has:
    /// `unreachable` routes for 10.99.0.0/16 and 2001:db8:99::/48, `prohibit`
    /// routes for 10.97.0.0/16 and 2001:db8:97::/48, and a route for 10.98.0.0/16
    /// via 10.50.0.3, a neighbour that never answers (so packets to it vanish).
    pub(crate) struct Routed {
        pub(crate) client: TestNs,
        pub(crate) router: TestNs,
    }

    impl Routed {
        pub(crate) fn new() -> Routed {
            let client = TestNs::new();
            let router = TestNs::new();
            client.sh(&format!(
                "ip link add c0 address 02:00:00:00:50:02 type veth \
                   peer name r0 address 02:00:00:00:50:01 netns {}
                 ip neigh add 10.50.0.1 lladdr 02:00:00:00:50:01 dev c0 nud permanent
                 ip -6 neigh add 2001:db8:50::1 lladdr 02:00:00:00:50:01 dev c0 nud permanent
                 ip addr add 10.50.0.2/24 dev c0
                 ip -6 addr add 2001:db8:50::2/64 dev c0 nodad
                 ip link set c0 up
                 ip route add default via 10.50.0.1
                 ip -6 route add default via 2001:db8:50::1",
                router.path()
            ));
            router.sh("echo 1 > /proc/sys/net/ipv4/ip_forward
                 echo 1 > /proc/sys/net/ipv6/conf/all/forwarding
                 echo 0 > /proc/sys/net/ipv4/icmp_ratelimit
                 echo 0 > /proc/sys/net/ipv6/icmp/ratelimit
                 ip addr add 10.50.0.1/24 dev r0
                 ip -6 addr add 2001:db8:50::1/64 dev r0 nodad
                 ip link set r0 up
                 ip neigh add 10.50.0.2 lladdr 02:00:00:00:50:02 dev r0 nud permanent
                 ip -6 neigh add 2001:db8:50::2 lladdr 02:00:00:00:50:02 dev r0 nud permanent
                 ip route add unreachable 10.99.0.0/16
                 ip -6 route add unreachable 2001:db8:99::/48
                 ip route add prohibit 10.97.0.0/16
                 ip -6 route add prohibit 2001:db8:97::/48
                 ip neigh add 10.50.0.3 lladdr 02:00:00:00:00:03 dev r0 nud permanent
                 ip route add 10.98.0.0/16 via 10.50.0.3");
            Routed { client, router }
        }
    }

    /// A namespace where 10.60.0.2 and 2001:db8:60::2 are on a link but never
    /// answer: a veth whose peer end has no address, with permanent neighbour
    /// entries so nothing waits for ARP/ND.
    pub(crate) fn silent_link() -> TestNs {
        let ns = TestNs::new();
        ns.sh("ip link add s0 type veth peer name s1
             ip link set s0 up
             ip link set s1 up
             ip addr add 10.60.0.1/24 dev s0
             ip -6 addr add 2001:db8:60::1/64 dev s0 nodad
             ip neigh add 10.60.0.2 lladdr 02:00:00:00:00:02 dev s0 nud permanent
             ip -6 neigh add 2001:db8:60::2 lladdr 02:00:00:00:00:02 dev s0 nud permanent");
        ns
    }

    /// Drops CAP_NET_RAW from the calling thread only (capabilities are per
    /// thread), as if it were not root for raw sockets.
    pub(crate) fn drop_cap_net_raw() {
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Clone, Copy, Default)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        const VERSION_3: u32 = 0x2008_0522;
        const CAP_NET_RAW: u32 = 13;
        let mut header = Header {
            version: VERSION_3,
            pid: 0,
        };
        let mut data = [Data::default(); 2];
        // SAFETY: capget/capset with a v3 header and two data structs.
        unsafe {
            assert_eq!(
                libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()),
                0
            );
            data[0].effective &= !(1 << CAP_NET_RAW);
            data[0].permitted &= !(1 << CAP_NET_RAW);
            assert_eq!(
                libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()),
                0,
                "capset: {}",
                std::io::Error::last_os_error()
            );
        }
    }

    /// Runs `f`, expecting it to panic; returns the panic message.
    pub(crate) fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let panic = std::panic::catch_unwind(f).expect_err("expected a panic");
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::testnet::{drop_cap_net_raw, panic_message, silent_link, Routed, TestNs};
    use super::*;

    fn quick(count: u16) -> PingOptions {
        PingOptions::default()
            .count(count)
            .interval(Duration::from_millis(10))
            .timeout(Duration::from_millis(300))
    }

    fn assert_replies(report: &PingReport, from: IpAddr, kind: SocketKind) {
        report.assert_all_replied();
        assert_eq!(report.socket_kind(), kind, "{report:#}");
        for (i, probe) in report.probes().iter().enumerate() {
            assert_eq!(usize::from(probe.seq), i + 1);
            assert_eq!(probe.duplicates, 0, "{report:#}");
            match &probe.outcome {
                ProbeOutcome::Reply {
                    from: f, ttl, rtt, ..
                } => {
                    assert_eq!(*f, from);
                    assert_eq!(*ttl, Some(64), "{report:#}");
                    assert!(*rtt < Duration::from_millis(300));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn raw_ping_of_loopback_v4_and_v6() {
        let ns = TestNs::new();
        for target in ["127.0.0.1", "::1"] {
            let target: IpAddr = target.parse().unwrap();
            let report = ns.run(|| ping(target, &quick(3))).unwrap();
            assert_replies(&report, target, SocketKind::Raw);
            assert_eq!(report.sent(), 3);
            assert_eq!(report.received(), 3);
            assert_eq!(report.loss_percent(), 0.0);
            let rtt = report.rtt().unwrap();
            assert!(rtt.min <= rtt.avg && rtt.avg <= rtt.max);
            let summary = report.to_string();
            assert!(
                summary.starts_with(&format!(
                    "--- {target} ping statistics ---\n3 packets transmitted, 3 received, 0% packet loss, time "
                )),
                "{summary}"
            );
            assert!(summary.contains("\nrtt min/avg/max/mdev = "), "{summary}");
            let transcript = format!("{report:#}");
            assert!(transcript.contains("seq 2: reply from"), "{transcript}");
            assert!(transcript.contains("(64 bytes, ttl 64)"), "{transcript}");
        }
    }

    #[test]
    fn fresh_namespace_has_no_ping_group_and_refuses_datagram_sockets() {
        let ns = TestNs::new();
        assert_eq!(ns.sysctl("net/ipv4/ping_group_range"), "1\t0");
        for target in ["127.0.0.1", "::1"] {
            let options = quick(1).socket(SocketKind::Datagram);
            let error = ns
                .run(|| ping(target.parse().unwrap(), &options))
                .unwrap_err();
            assert!(matches!(error, PingError::NotPermitted { .. }), "{error:?}");
            assert_eq!(
                error.to_string(),
                format!(
                    "ping {target}: cannot open an ICMP socket: datagram ICMP socket: Permission \
                     denied (os error 13); net.ipv4.ping_group_range must include gid 0 (it is \
                     `1 0` in this network namespace): write `0 2147483647` to \
                     /proc/sys/net/ipv4/ping_group_range inside the namespace, e.g. with \
                     netns_fixture::probes::ping::allow_unprivileged_ping()"
                )
            );
        }
    }

    #[test]
    fn datagram_sockets_after_allow_unprivileged_ping() {
        let ns = TestNs::new();
        ns.run(allow_unprivileged_ping).unwrap();
        assert_eq!(ns.sysctl("net/ipv4/ping_group_range"), "0\t2147483647");
        // Only that namespace changed.
        assert_eq!(TestNs::new().sysctl("net/ipv4/ping_group_range"), "1\t0");
        for target in ["127.0.0.1", "::1"] {
            let target: IpAddr = target.parse().unwrap();
            let options = quick(3).socket(SocketKind::Datagram);
            let report = ns.run(|| ping(target, &options)).unwrap();
            assert_replies(&report, target, SocketKind::Datagram);
            assert!(format!("{report:#}").contains("datagram ICMP socket"));
        }
    }

    #[test]
    fn without_cap_net_raw_falls_back_to_datagram_sockets_or_explains() {
        let ns = TestNs::new();
        let error = ns
            .run(|| {
                drop_cap_net_raw();
                ping("127.0.0.1".parse().unwrap(), &quick(1))
            })
            .unwrap_err();
        assert!(
            error.to_string().starts_with(
                "ping 127.0.0.1: cannot open an ICMP socket: raw socket: Operation not permitted \
                 (os error 1) (needs CAP_NET_RAW); datagram ICMP socket: Permission denied (os \
                 error 13); net.ipv4.ping_group_range must include gid 0 (it is `1 0` in this \
                 network namespace)"
            ),
            "{error}"
        );
        ns.run(allow_unprivileged_ping).unwrap();
        for target in ["127.0.0.1", "::1"] {
            let target: IpAddr = target.parse().unwrap();
            let report = ns
                .run(|| {
                    drop_cap_net_raw();
                    ping(target, &quick(2))
                })
                .unwrap();
            assert_replies(&report, target, SocketKind::Datagram);
        }
        // Forcing raw without the capability is an error, not a fall-back.
        let error = ns
            .run(|| {
                drop_cap_net_raw();
                ping("::1".parse().unwrap(), &quick(1).socket(SocketKind::Raw))
            })
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "ping ::1: cannot open an ICMP socket: raw socket: Operation not permitted (os error \
             1) (needs CAP_NET_RAW);"
        );
    }

    #[test]
    fn no_route_is_a_result_not_an_error() {
        let ns = TestNs::new();
        ns.run(allow_unprivileged_ping).unwrap();
        for kind in [SocketKind::Raw, SocketKind::Datagram] {
            let options = quick(2).socket(kind);
            let report = ns
                .run(|| ping("10.77.0.1".parse().unwrap(), &options))
                .unwrap();
            report.assert_unreachable();
            assert_eq!(
                (report.sent(), report.received(), report.errors()),
                (2, 0, 2)
            );
            assert_eq!(
                report.probes()[0].outcome,
                ProbeOutcome::SendFailed {
                    errno: libc::ENETUNREACH
                }
            );
            let message = panic_message(|| report.assert_all_replied());
            assert_eq!(
                message,
                "ping 10.77.0.1: expected 2 echo replies, got 0 (seq 1: not sent: network is \
                 unreachable (ENETUNREACH); seq 2: not sent: network is unreachable \
                 (ENETUNREACH))"
            );
            let message = panic_message(|| report.assert_reachable());
            assert!(
                message.starts_with(
                    "ping 10.77.0.1: expected at least one echo reply, got none (seq 1: not sent"
                ),
                "{message}"
            );
            assert!(report
                .to_string()
                .contains("2 packets transmitted, 0 received, +2 errors, 100% packet loss"));
        }
    }

    #[test]
    fn silent_neighbour_is_loss() {
        let ns = silent_link();
        ns.run(allow_unprivileged_ping).unwrap();
        for (target, kind) in [
            ("10.60.0.2", SocketKind::Raw),
            ("10.60.0.2", SocketKind::Datagram),
            ("2001:db8:60::2", SocketKind::Raw),
            ("2001:db8:60::2", SocketKind::Datagram),
        ] {
            let options = quick(2).timeout(Duration::from_millis(200)).socket(kind);
            let start = Instant::now();
            let report = ns.run(|| ping(target.parse().unwrap(), &options)).unwrap();
            let took = start.elapsed();
            assert!(
                took >= Duration::from_millis(200) && took < Duration::from_secs(1),
                "{took:?}"
            );
            report.assert_unreachable();
            assert_eq!(
                (report.sent(), report.received(), report.errors()),
                (2, 0, 0)
            );
            assert_eq!(
                panic_message(|| report.assert_all_replied()),
                format!(
                    "ping {target}: expected 2 echo replies, got 0 (seq 1: no reply after 200 ms; \
                     seq 2: no reply after 200 ms)"
                )
            );
            assert!(report
                .to_string()
                .contains("2 packets transmitted, 0 received, 100% packet loss"));
            assert!(report.rtt().is_none());
        }
    }

    #[test]
    fn router_errors_are_recorded_with_their_sender() {
        let cases = [
            (
                "10.99.0.5",
                "10.50.0.1",
                "destination unreachable (host unreachable)",
            ),
            (
                "10.97.0.5",
                "10.50.0.1",
                "destination unreachable (communication administratively prohibited)",
            ),
            (
                "2001:db8:99::5",
                "2001:db8:50::1",
                "destination unreachable (no route to destination)",
            ),
            (
                "2001:db8:97::5",
                "2001:db8:50::1",
                "destination unreachable (communication administratively prohibited)",
            ),
        ];
        for (target, router, error) in cases {
            // A router namespace sends at most 5 IPv4 "unreachable" errors in a
            // burst to one source (net.ipv4.route.error_cost/error_burst, which
            // are host-wide): a fresh lab for each target.
            let lab = Routed::new();
            lab.client.run(allow_unprivileged_ping).unwrap();
            for kind in [SocketKind::Raw, SocketKind::Datagram] {
                let options = quick(2).socket(kind);
                let ping_once = || {
                    lab.client
                        .run(|| ping(target.parse().unwrap(), &options))
                        .unwrap()
                };
                let mut report = ping_once();
                // The limit is host-wide: another test's lab (run at the same
                // time, e.g. by nextest) may have used the burst. A silent probe
                // gets one more try once the limit has refilled (one error per
                // second); a wrong answer does not.
                if report.errors() < 2
                    && report.probes().iter().all(|p| {
                        matches!(
                            p.outcome,
                            ProbeOutcome::IcmpError { .. } | ProbeOutcome::NoReply { .. }
                        )
                    })
                {
                    std::thread::sleep(Duration::from_millis(2100));
                    report = ping_once();
                }
                report.assert_unreachable();
                assert_eq!(report.errors(), 2, "{kind}: {report:#}");
                for probe in report.probes() {
                    let ProbeOutcome::IcmpError {
                        from,
                        error: e,
                        after,
                    } = &probe.outcome
                    else {
                        panic!("{kind}: {report:#}");
                    };
                    assert_eq!(from.to_string(), router);
                    assert_eq!(e.to_string(), error);
                    assert!(*after < Duration::from_millis(300));
                }
                assert_eq!(
                    panic_message(|| report.assert_all_replied()),
                    format!(
                        "ping {target}: expected 2 echo replies, got 0 (seq 1: {error} from \
                         {router}; seq 2: {error} from {router})"
                    )
                );
            }
        }
        // The router itself answers.
        let lab = Routed::new();
        for target in ["10.50.0.1", "2001:db8:50::1"] {
            let report = lab
                .client
                .run(|| ping(target.parse().unwrap(), &quick(2)))
                .unwrap();
            report.assert_all_replied();
        }
    }

    #[test]
    fn ttl_one_gets_time_exceeded_from_the_first_router() {
        let lab = Routed::new();
        lab.client.run(allow_unprivileged_ping).unwrap();
        for kind in [SocketKind::Raw, SocketKind::Datagram] {
            let options = quick(1).ttl(1).socket(kind);
            let report = lab
                .client
                .run(|| ping("10.98.0.2".parse().unwrap(), &options))
                .unwrap();
            let probe = &report.probes()[0];
            assert_eq!(
                probe.to_string(),
                "seq 1: time exceeded (TTL exceeded in transit) from 10.50.0.1",
                "{kind}"
            );
            // With the default TTL, the packet is forwarded to a neighbour that
            // never answers.
            let options = quick(1).timeout(Duration::from_millis(200)).socket(kind);
            let report = lab
                .client
                .run(|| ping("10.98.0.2".parse().unwrap(), &options))
                .unwrap();
            assert_eq!(
                report.probes()[0].to_string(),
                "seq 1: no reply after 200 ms"
            );
        }
        let _ = &lab.router;
    }

    #[test]
    fn deadline_cuts_the_ping_short() {
        let ns = TestNs::new();
        let options = PingOptions::default()
            .count(10)
            .interval(Duration::from_millis(100))
            .deadline(Duration::from_millis(250));
        let start = Instant::now();
        let report = ns
            .run(|| ping("127.0.0.1".parse().unwrap(), &options))
            .unwrap();
        assert!(start.elapsed() < Duration::from_millis(650));
        assert_eq!((report.sent(), report.received()), (3, 3));
        report.assert_reachable();
        let message = panic_message(|| report.assert_all_replied());
        assert!(
            message.starts_with(
                "ping 127.0.0.1: expected 10 echo replies, got 3 (seq 1: reply from 127.0.0.1 in "
            ),
            "{message}"
        );
        assert!(
            message.ends_with("; only 3 of 10 sent before the deadline of 250 ms)"),
            "{message}"
        );
        let message = panic_message(|| report.assert_unreachable());
        assert!(
            message.starts_with(
                "ping 127.0.0.1: expected no echo reply, got 3 (seq 1: reply from 127.0.0.1 in "
            ),
            "{message}"
        );
    }

    #[test]
    fn concurrent_raw_pings_only_count_their_own_replies() {
        let ns = TestNs::new();
        ns.run(|| {
            std::thread::scope(|scope| {
                let pings: Vec<_> = (0..4)
                    .map(|i| {
                        let target: IpAddr = if i % 2 == 0 { "127.0.0.1" } else { "::1" }
                            .parse()
                            .unwrap();
                        scope.spawn(move || {
                            // Still inside the namespace: threads spawned here inherit it.
                            ping(target, &quick(5).interval(Duration::from_millis(5))).unwrap()
                        })
                    })
                    .collect();
                let reports: Vec<PingReport> =
                    pings.into_iter().map(|p| p.join().unwrap()).collect();
                for report in &reports {
                    assert_eq!(report.socket_kind(), SocketKind::Raw);
                    assert_replies(report, report.target(), SocketKind::Raw);
                }
            })
        });
    }

    #[test]
    fn options_source_interface_payload() {
        let ns = TestNs::new();
        ns.run(allow_unprivileged_ping).unwrap();
        for kind in [SocketKind::Raw, SocketKind::Datagram] {
            for (target, source) in [("127.0.0.1", "127.0.0.1"), ("::1", "::1")] {
                for size in [0, 7, 8, 2000] {
                    let options = quick(2)
                        .socket(kind)
                        .source(source.parse().unwrap())
                        .interface("lo")
                        .payload_size(size);
                    let report = ns.run(|| ping(target.parse().unwrap(), &options)).unwrap();
                    report.assert_all_replied();
                    match report.probes()[0].outcome {
                        ProbeOutcome::Reply { bytes, .. } => assert_eq!(bytes, 8 + size),
                        ref other => panic!("{other:?}"),
                    }
                }
            }
        }
        let error = ns
            .run(|| ping("127.0.0.1".parse().unwrap(), &quick(1).interface("nope0")))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "ping 127.0.0.1: binding to interface nope0: No such device (os error 19)"
        );
        let error = ns
            .run(|| {
                ping(
                    "127.0.0.1".parse().unwrap(),
                    &quick(1).source("10.1.2.3".parse().unwrap()),
                )
            })
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "ping 127.0.0.1: binding to source 10.1.2.3: Cannot assign requested address (os error 99)"
        );
    }

    #[test]
    fn invalid_options_are_errors() {
        // Checked before any socket is opened: no namespace needed.
        let check = |target: &str, options: PingOptions, expected: &str| {
            let error = ping(target.parse().unwrap(), &options).unwrap_err();
            assert_eq!(error.to_string(), expected);
        };
        check(
            "127.0.0.1",
            quick(0),
            "invalid ping options: count must be at least 1",
        );
        check(
            "127.0.0.1",
            quick(1).timeout(Duration::ZERO),
            "invalid ping options: timeout must be more than zero",
        );
        check(
            "127.0.0.1",
            quick(1).payload_size(65508),
            "invalid ping options: payload of 65508 bytes is more than the 65507 an ICMP echo can carry",
        );
        check(
            "::1",
            quick(1).source("127.0.0.1".parse().unwrap()),
            "invalid ping options: source 127.0.0.1 and target ::1 are of different address families",
        );
        check(
            "fe80::1",
            quick(1),
            "invalid ping options: link-local target fe80::1 needs an interface (PingOptions::interface)",
        );
    }

    #[test]
    fn formats() {
        // RFC 1071 example.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
        assert_eq!(Span(Duration::from_secs(1)).to_string(), "1 s");
        assert_eq!(Span(Duration::from_millis(1500)).to_string(), "1.5 s");
        assert_eq!(Span(Duration::from_millis(500)).to_string(), "500 ms");
        assert_eq!(Span(Duration::from_micros(250)).to_string(), "0.250 ms");
        assert_eq!(
            ErrnoText(libc::EHOSTUNREACH).to_string(),
            "no route to host (EHOSTUNREACH)"
        );
        assert_eq!(
            IcmpError::V4 {
                icmp_type: 3,
                code: 99
            }
            .to_string(),
            "destination unreachable (type 3, code 99)"
        );
        assert_eq!(
            IcmpError::V6 {
                icmp_type: 3,
                code: 0
            }
            .to_string(),
            "time exceeded (hop limit exceeded in transit)"
        );
    }
}
