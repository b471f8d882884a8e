//! What a capture keeps: a tcpdump filter expression compiled by libpcap and run
//! by the kernel, and Rust predicates run on the decoded packets.

use super::packet::{LinkType, Packet};
use super::CaptureError;
use std::fmt;
use std::sync::{Arc, Mutex};

/// The largest packet a capture keeps, as tcpdump's default snapshot length.
pub(crate) const SNAPLEN: u32 = 262_144;

type Predicate = Arc<dyn Fn(&Packet) -> bool + Send + Sync>;

/// Which packets a capture keeps.
///
/// A tcpdump expression (`"icmp"`, `"tcp port 8080"`, `"host 10.0.0.2 and not arp"`)
/// is compiled by libpcap to classic BPF and attached to the socket, so it has
/// exactly tcpdump's meaning and the kernel discards what does not match.
/// Predicates run in Rust on each decoded packet that the expression let through;
/// a packet is kept when the expression and every predicate accept it. A `&str`
/// or `String` converts into a tcpdump filter.
///
/// ```
/// use netns_fixture::capture::Filter;
/// let everything = Filter::all();
/// let pings = Filter::tcpdump("icmp");
/// let to_9999 = Filter::tcpdump("udp").and_predicate(|p| p.dst_port() == Some(9999));
/// let replies = Filter::predicate(|p| p.is_icmp_echo_reply());
/// let from_str: Filter = "arp or icmp".into();
/// assert_eq!(to_9999.to_string(), "\"udp\" + 1 predicate");
/// assert_eq!(everything.to_string(), "everything");
/// # let _ = (pings, replies, from_str);
/// ```
#[derive(Clone, Default)]
pub struct Filter {
    expression: Option<String>,
    predicates: Vec<Predicate>,
}

impl Filter {
    /// Keeps every packet.
    pub fn all() -> Filter {
        Filter::default()
    }

    /// Keeps the packets a tcpdump filter expression matches (see `man pcap-filter`).
    /// The expression is compiled when the capture starts; a malformed one makes
    /// [`Capture::start`](super::Capture::start) fail with
    /// [`CaptureError::InvalidFilter`].
    ///
    /// ```
    /// let f = netns_fixture::capture::Filter::tcpdump("tcp port 8080");
    /// assert_eq!(f.expression(), Some("tcp port 8080"));
    /// ```
    pub fn tcpdump(expression: impl Into<String>) -> Filter {
        Filter {
            expression: Some(expression.into()),
            predicates: Vec::new(),
        }
    }

    /// Keeps the packets for which `predicate` returns true.
    ///
    /// ```
    /// let f = netns_fixture::capture::Filter::predicate(|p| p.is_tcp_syn());
    /// assert_eq!(f.expression(), None);
    /// ```
    pub fn predicate(predicate: impl Fn(&Packet) -> bool + Send + Sync + 'static) -> Filter {
        Filter::all().and_predicate(predicate)
    }

    /// Also requires `predicate` to return true.
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// let f = netns_fixture::capture::Filter::tcpdump("icmp")
    ///     .and_predicate(|p| p.is_from(Ipv4Addr::new(10, 0, 0, 2)));
    /// # let _ = f;
    /// ```
    pub fn and_predicate(
        mut self,
        predicate: impl Fn(&Packet) -> bool + Send + Sync + 'static,
    ) -> Filter {
        self.predicates.push(Arc::new(predicate));
        self
    }

    /// Also requires a tcpdump expression to match (`(old) and (new)`).
    ///
    /// ```
    /// let f = netns_fixture::capture::Filter::tcpdump("udp").and_tcpdump("port 53");
    /// assert_eq!(f.expression(), Some("(udp) and (port 53)"));
    /// ```
    pub fn and_tcpdump(mut self, expression: impl Into<String>) -> Filter {
        let expression = expression.into();
        self.expression = Some(match self.expression.take() {
            Some(old) => format!("({old}) and ({expression})"),
            None => expression,
        });
        self
    }

    /// The tcpdump expression, if any.
    pub fn expression(&self) -> Option<&str> {
        self.expression.as_deref()
    }

    /// Whether every predicate accepts `packet` (the tcpdump expression is not
    /// consulted: the kernel applies it).
    ///
    /// ```
    /// # use netns_fixture::capture::{Filter, Packet};
    /// let p = Packet::from_ethernet_frame(vec![0; 14], std::time::SystemTime::now());
    /// assert!(Filter::tcpdump("icmp").predicates_accept(&p));
    /// assert!(!Filter::predicate(|p| p.is_udp()).predicates_accept(&p));
    /// ```
    pub fn predicates_accept(&self, packet: &Packet) -> bool {
        self.predicates.iter().all(|predicate| predicate(packet))
    }

    pub(crate) fn has_predicates(&self) -> bool {
        !self.predicates.is_empty()
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.predicates.len();
        let plural = if n == 1 { "" } else { "s" };
        match (&self.expression, n) {
            (None, 0) => f.write_str("everything"),
            (None, n) => write!(f, "{n} predicate{plural}"),
            (Some(e), 0) => write!(f, "{e:?}"),
            (Some(e), n) => write!(f, "{e:?} + {n} predicate{plural}"),
        }
    }
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter")
            .field("expression", &self.expression)
            .field("predicates", &self.predicates.len())
            .finish()
    }
}

impl From<&str> for Filter {
    fn from(expression: &str) -> Filter {
        Filter::tcpdump(expression)
    }
}

impl From<String> for Filter {
    fn from(expression: String) -> Filter {
        Filter::tcpdump(expression)
    }
}

impl From<&String> for Filter {
    fn from(expression: &String) -> Filter {
        Filter::tcpdump(expression.as_str())
    }
}

// libpcap's parser state is per handle in 1.10, but older releases shared
// globals; compiling under a lock costs nothing here.
static COMPILE_LOCK: Mutex<()> = Mutex::new(());

const BPF_RET: u16 = 0x06;
const BPF_K: u16 = 0x00;

/// Compiles `expression` for `link` with libpcap (as tcpdump would, optimised) into
/// a classic BPF program for `SO_ATTACH_FILTER`.
pub(crate) fn compile(
    expression: &str,
    link: LinkType,
) -> Result<Vec<libc::sock_filter>, CaptureError> {
    let invalid = |message: String| CaptureError::InvalidFilter {
        filter: expression.to_string(),
        message,
    };
    let _guard = COMPILE_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dead =
        pcap::Capture::dead(pcap::Linktype(link.dlt())).map_err(|e| invalid(e.to_string()))?;
    let program = dead.compile(expression, true).map_err(|e| {
        invalid(match e {
            pcap::Error::PcapError(message) => message,
            other => other.to_string(),
        })
    })?;
    let instructions = program.get_instructions();
    const _: () = assert!(
        std::mem::size_of::<pcap::BpfInstruction>() == std::mem::size_of::<libc::sock_filter>()
    );
    // SAFETY: pcap::BpfInstruction is #[repr(transparent)] over libpcap's
    // `struct bpf_insn { u_short code; u_char jt; u_char jf; bpf_u_int32 k; }`,
    // which is the kernel's `struct sock_filter` field for field (same sizes,
    // checked above); the slice stays borrowed from `program` while copied.
    let raw = unsafe {
        std::slice::from_raw_parts(
            instructions.as_ptr().cast::<libc::sock_filter>(),
            instructions.len(),
        )
    };
    Ok(raw
        .iter()
        .map(|insn| {
            let mut insn = *insn;
            // A dead handle compiles "accept" as `ret #65535`; the kernel would cut
            // packets on `lo` (MTU 65536) to that, so keep up to tcpdump's snaplen.
            if insn.code == BPF_RET | BPF_K && insn.k != 0 {
                insn.k = SNAPLEN;
            }
            insn
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_like_tcpdump_and_widens_the_snaplen() {
        let program = compile("icmp", LinkType::Ethernet).unwrap();
        // ldh [12]; jeq #0x800; ldb [23]; jeq #1; ret #snaplen; ret #0
        let codes: Vec<(u16, u32)> = program.iter().map(|i| (i.code, i.k)).collect();
        assert_eq!(
            codes,
            vec![
                (0x28, 12),
                (0x15, 0x0800),
                (0x30, 23),
                (0x15, 1),
                (0x06, SNAPLEN),
                (0x06, 0)
            ]
        );
        let raw = compile("icmp", LinkType::RawIp).unwrap();
        assert_eq!(
            (raw[0].code, raw[0].k),
            (0x30, 0),
            "raw IP starts at the IP header"
        );
    }

    #[test]
    fn a_malformed_expression_quotes_libpcap() {
        let err = compile("tcp prot 80", LinkType::Ethernet).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("\"tcp prot 80\""), "{text}");
        assert!(text.contains("syntax error"), "{text}");
        let err = compile("host 999.1.1.1", LinkType::Ethernet).unwrap_err();
        assert!(err.to_string().contains("invalid IPv4 address"), "{err}");
    }

    #[test]
    fn combines_and_describes() {
        let f = Filter::from("udp")
            .and_tcpdump("port 9")
            .and_predicate(|_| true);
        assert_eq!(f.expression(), Some("(udp) and (port 9)"));
        assert_eq!(f.to_string(), "\"(udp) and (port 9)\" + 1 predicate");
        assert_eq!(
            format!("{f:?}"),
            "Filter { expression: Some(\"(udp) and (port 9)\"), predicates: 1 }"
        );
        assert!(Filter::all().and_tcpdump("icmp").expression() == Some("icmp"));
        assert_eq!(
            Filter::predicate(|_| true)
                .and_predicate(|_| false)
                .to_string(),
            "2 predicates"
        );
    }
}
