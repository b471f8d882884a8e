//! Captured packets and their decoded layers: Ethernet (with 802.1Q tags), ARP,
//! IPv4, IPv6 (walking extension headers), ICMP, ICMPv6, TCP and UDP.
//!
//! The decoder is small and never panics: a layer that is cut short is simply
//! absent (and [`Packet::truncated_at`] names it), whatever the bytes are.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::SystemTime;

/// How frames on an interface begin: the first bytes the decoder expects.
///
/// ```
/// use netns_fixture::capture::LinkType;
/// assert_eq!(LinkType::Ethernet.pcap_linktype(), 1);
/// assert_eq!(LinkType::RawIp.pcap_linktype(), 101);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// An Ethernet header (veth, bridges, dummy, and `lo`, whose frames carry
    /// all-zero MAC addresses).
    Ethernet,
    /// The IP header itself, no link-layer header (tun, WireGuard, ipip, sit...).
    RawIp,
}

impl LinkType {
    /// The `LINKTYPE_*` number written in pcap files (1 Ethernet, 101 raw IP).
    pub fn pcap_linktype(self) -> u32 {
        match self {
            LinkType::Ethernet => 1,
            LinkType::RawIp => 101,
        }
    }

    /// The `DLT_*` number libpcap compiles filters for (1 Ethernet, 12 raw IP).
    pub(crate) fn dlt(self) -> i32 {
        match self {
            LinkType::Ethernet => 1,
            LinkType::RawIp => 12,
        }
    }
}

/// Whether the interface received or sent a packet.
///
/// ```
/// use netns_fixture::capture::Direction;
/// assert_eq!(Direction::Outgoing.to_string(), "Out");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Received by the interface (addressed to this host, broadcast, multicast
    /// or, in promiscuous setups, to another host).
    Incoming,
    /// Sent by the interface.
    Outgoing,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Incoming => "In",
            Direction::Outgoing => "Out",
        })
    }
}

/// A 48-bit Ethernet address; displays as `02:00:0a:00:00:01`.
///
/// ```
/// use netns_fixture::capture::MacAddr;
/// assert_eq!(MacAddr([2, 0, 10, 0, 0, 1]).to_string(), "02:00:0a:00:00:01");
/// assert!(MacAddr::BROADCAST.is_broadcast());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    /// Whether this is `ff:ff:ff:ff:ff:ff`.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// Whether all six bytes are zero (as on `lo`, or an unknown ARP target).
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An Ethernet header.
///
/// ```
/// # use netns_fixture::capture::Packet;
/// # let packet = Packet::from_ethernet_frame(vec![0xff; 14], std::time::SystemTime::UNIX_EPOCH);
/// if let Some(eth) = packet.ethernet() {
///     println!("{} > {}, ethertype {:#06x}", eth.src, eth.dst, eth.ethertype);
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ethernet {
    /// Destination address.
    pub dst: MacAddr,
    /// Source address.
    pub src: MacAddr,
    /// The ethertype of the payload, after any 802.1Q/802.1ad tags
    /// (0x0800 IPv4, 0x0806 ARP, 0x86dd IPv6).
    pub ethertype: u16,
    /// The VLAN IDs of the tags, outermost first (empty when untagged).
    pub vlans: Vec<u16>,
}

/// ARP operation codes.
pub mod arp_op {
    /// `Request who-has`.
    pub const REQUEST: u16 = 1;
    /// `Reply ... is-at`.
    pub const REPLY: u16 = 2;
}

/// An ARP message for IPv4 over Ethernet (the only kind decoded).
///
/// ```
/// # use netns_fixture::capture::Packet;
/// # let packet = Packet::from_ethernet_frame(vec![], std::time::SystemTime::UNIX_EPOCH);
/// if let Some(arp) = packet.arp() {
///     if arp.is_request() {
///         println!("who has {}? tell {}", arp.target_ip, arp.sender_ip);
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Arp {
    /// Operation: 1 request, 2 reply (see [`arp_op`]).
    pub operation: u16,
    /// Sender hardware address.
    pub sender_mac: MacAddr,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address (zero in most requests).
    pub target_mac: MacAddr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl Arp {
    /// Whether this is a request (`who-has`).
    pub fn is_request(&self) -> bool {
        self.operation == arp_op::REQUEST
    }

    /// Whether this is a reply (`is-at`).
    pub fn is_reply(&self) -> bool {
        self.operation == arp_op::REPLY
    }
}

/// IP protocol numbers used by the decoder.
pub mod ip_proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 hop-by-hop options.
    pub const HOPOPTS: u8 = 0;
    /// IPv6 routing header.
    pub const ROUTING: u8 = 43;
    /// IPv6 fragment header.
    pub const FRAGMENT: u8 = 44;
    /// IPv6 destination options.
    pub const DSTOPTS: u8 = 60;
    /// Authentication header.
    pub const AH: u8 = 51;
}

/// An IPv4 header.
///
/// ```
/// # use netns_fixture::capture::Packet;
/// # let packet = Packet::from_ethernet_frame(vec![], std::time::SystemTime::UNIX_EPOCH);
/// if let Some(ip) = packet.ipv4() {
///     println!("{} > {} ttl {} proto {}", ip.src, ip.dst, ip.ttl, ip.protocol);
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ipv4 {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Upper-layer protocol (1 ICMP, 6 TCP, 17 UDP, see [`ip_proto`]).
    pub protocol: u8,
    /// Time to live.
    pub ttl: u8,
    /// The type-of-service byte (DSCP and ECN).
    pub tos: u8,
    /// Identification.
    pub id: u16,
    /// Header length in bytes.
    pub header_length: usize,
    /// Total length from the header (header plus payload) in bytes.
    pub total_length: usize,
    /// Don't-fragment flag.
    pub dont_fragment: bool,
    /// More-fragments flag.
    pub more_fragments: bool,
    /// Fragment offset in bytes.
    pub fragment_offset: usize,
}

/// An IPv6 header, with the extension headers that follow it skipped.
///
/// ```
/// # use netns_fixture::capture::Packet;
/// # let packet = Packet::from_ethernet_frame(vec![], std::time::SystemTime::UNIX_EPOCH);
/// if let Some(ip6) = packet.ipv6() {
///     println!("{} > {} next header {}", ip6.src, ip6.dst, ip6.protocol);
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ipv6 {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Upper-layer protocol after the extension headers (58 ICMPv6, 6 TCP, 17 UDP).
    pub protocol: u8,
    /// The `next header` field of the fixed header.
    pub next_header: u8,
    /// Extension headers walked, in order (0 hop-by-hop, 43 routing, 44 fragment,
    /// 60 destination options, 51 AH).
    pub extension_headers: Vec<u8>,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label.
    pub flow_label: u32,
    /// Payload length from the header (extension headers included).
    pub payload_length: usize,
    /// The fragment offset in bytes, when a fragment header is present.
    pub fragment_offset: Option<usize>,
}

/// The version of an IP layer (also tells ICMP from ICMPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpVersion {
    /// IPv4 (ICMP).
    V4,
    /// IPv6 (ICMPv6).
    V6,
}

/// The IP layer of a packet, v4 or v6.
///
/// ```
/// # use netns_fixture::capture::Packet;
/// # let packet = Packet::from_ethernet_frame(vec![], std::time::SystemTime::UNIX_EPOCH);
/// if let Some(ip) = packet.ip() {
///     println!("{} > {} protocol {}", ip.src(), ip.dst(), ip.protocol());
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ip {
    /// IPv4.
    V4(Ipv4),
    /// IPv6.
    V6(Ipv6),
}

impl Ip {
    /// Source address.
    pub fn src(&self) -> IpAddr {
        match self {
            Ip::V4(h) => h.src.into(),
            Ip::V6(h) => h.src.into(),
        }
    }

    /// Destination address.
    pub fn dst(&self) -> IpAddr {
        match self {
            Ip::V4(h) => h.dst.into(),
            Ip::V6(h) => h.dst.into(),
        }
    }

    /// Upper-layer protocol (after IPv6 extension headers).
    pub fn protocol(&self) -> u8 {
        match self {
            Ip::V4(h) => h.protocol,
            Ip::V6(h) => h.protocol,
        }
    }

    /// TTL (IPv4) or hop limit (IPv6).
    pub fn hop_limit(&self) -> u8 {
        match self {
            Ip::V4(h) => h.ttl,
            Ip::V6(h) => h.hop_limit,
        }
    }

    /// IPv4 or IPv6.
    pub fn version(&self) -> IpVersion {
        match self {
            Ip::V4(_) => IpVersion::V4,
            Ip::V6(_) => IpVersion::V6,
        }
    }
}

/// ICMP and ICMPv6 type numbers used by the helpers.
pub mod icmp_type {
    /// ICMP echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// ICMP destination unreachable.
    pub const DEST_UNREACHABLE: u8 = 3;
    /// ICMP echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// ICMP time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// ICMPv6 destination unreachable.
    pub const V6_DEST_UNREACHABLE: u8 = 1;
    /// ICMPv6 packet too big.
    pub const V6_PACKET_TOO_BIG: u8 = 2;
    /// ICMPv6 time exceeded.
    pub const V6_TIME_EXCEEDED: u8 = 3;
    /// ICMPv6 echo request.
    pub const V6_ECHO_REQUEST: u8 = 128;
    /// ICMPv6 echo reply.
    pub const V6_ECHO_REPLY: u8 = 129;
    /// ICMPv6 router solicitation.
    pub const V6_ROUTER_SOLICITATION: u8 = 133;
    /// ICMPv6 router advertisement.
    pub const V6_ROUTER_ADVERTISEMENT: u8 = 134;
    /// ICMPv6 neighbor solicitation.
    pub const V6_NEIGHBOR_SOLICITATION: u8 = 135;
    /// ICMPv6 neighbor advertisement.
    pub const V6_NEIGHBOR_ADVERTISEMENT: u8 = 136;
    /// ICMPv6 multicast listener report v2.
    pub const V6_MLD2_REPORT: u8 = 143;
}

/// The IP header and first ports quoted inside an ICMP error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Quoted {
    /// Source of the packet that caused the error.
    pub src: IpAddr,
    /// Destination of the packet that caused the error.
    pub dst: IpAddr,
    /// Its upper-layer protocol.
    pub protocol: u8,
    /// Its TCP/UDP source port, when quoted.
    pub src_port: Option<u16>,
    /// Its TCP/UDP destination port, when quoted.
    pub dst_port: Option<u16>,
}

/// An ICMP or ICMPv6 message.
///
/// ```
/// # use netns_fixture::capture::Packet;
/// # let packet = Packet::from_ethernet_frame(vec![], std::time::SystemTime::UNIX_EPOCH);
/// if let Some(icmp) = packet.icmp() {
///     if let Some((id, seq)) = icmp.echo {
///         println!("echo type {} id {id} seq {seq}", icmp.icmp_type);
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Icmp {
    /// ICMP (v4) or ICMPv6.
    pub version: IpVersion,
    /// Type (see [`icmp_type`]).
    pub icmp_type: u8,
    /// Code.
    pub code: u8,
    /// Checksum as sent.
    pub checksum: u16,
    /// Identifier and sequence number of an echo request or reply.
    pub echo: Option<(u16, u16)>,
    /// Length of the whole ICMP message (header included) according to the IP header.
    pub length: usize,
    /// The offending packet quoted by an error message.
    pub quoted: Option<Quoted>,
    /// The target address of an ICMPv6 neighbor solicitation or advertisement.
    pub target: Option<Ipv6Addr>,
    /// The MTU of an ICMPv6 packet-too-big or ICMP fragmentation-needed message.
    pub mtu: Option<u32>,
    /// Number of group records in an MLDv2 report.
    pub group_records: Option<u16>,
}

impl Icmp {
    /// An echo request (ICMP type 8 or ICMPv6 type 128).
    pub fn is_echo_request(&self) -> bool {
        match self.version {
            IpVersion::V4 => self.icmp_type == icmp_type::ECHO_REQUEST,
            IpVersion::V6 => self.icmp_type == icmp_type::V6_ECHO_REQUEST,
        }
    }

    /// An echo reply (ICMP type 0 or ICMPv6 type 129).
    pub fn is_echo_reply(&self) -> bool {
        match self.version {
            IpVersion::V4 => self.icmp_type == icmp_type::ECHO_REPLY,
            IpVersion::V6 => self.icmp_type == icmp_type::V6_ECHO_REPLY,
        }
    }

    /// A destination-unreachable error (ICMP type 3 or ICMPv6 type 1).
    pub fn is_unreachable(&self) -> bool {
        match self.version {
            IpVersion::V4 => self.icmp_type == icmp_type::DEST_UNREACHABLE,
            IpVersion::V6 => self.icmp_type == icmp_type::V6_DEST_UNREACHABLE,
        }
    }
}

/// TCP header flags; displays like tcpdump's `Flags [S.]`.
///
/// ```
/// use netns_fixture::capture::TcpFlags;
/// let syn_ack = TcpFlags(TcpFlags::SYN.0 | TcpFlags::ACK.0);
/// assert!(syn_ack.contains(TcpFlags::SYN));
/// assert_eq!(syn_ack.to_string(), "S.");
/// assert_eq!(TcpFlags(0).to_string(), "none");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u16);

impl TcpFlags {
    /// FIN.
    pub const FIN: TcpFlags = TcpFlags(0x001);
    /// SYN.
    pub const SYN: TcpFlags = TcpFlags(0x002);
    /// RST.
    pub const RST: TcpFlags = TcpFlags(0x004);
    /// PSH.
    pub const PSH: TcpFlags = TcpFlags(0x008);
    /// ACK.
    pub const ACK: TcpFlags = TcpFlags(0x010);
    /// URG.
    pub const URG: TcpFlags = TcpFlags(0x020);
    /// ECE (ECN echo).
    pub const ECE: TcpFlags = TcpFlags(0x040);
    /// CWR (congestion window reduced).
    pub const CWR: TcpFlags = TcpFlags(0x080);
    /// AE (accurate ECN, formerly NS).
    pub const AE: TcpFlags = TcpFlags(0x100);

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // tcpdump's order and letters (print-tcp.c, tcp_flag_values).
        const LETTERS: [(TcpFlags, &str); 9] = [
            (TcpFlags::FIN, "F"),
            (TcpFlags::SYN, "S"),
            (TcpFlags::RST, "R"),
            (TcpFlags::PSH, "P"),
            (TcpFlags::ACK, "."),
            (TcpFlags::URG, "U"),
            (TcpFlags::ECE, "E"),
            (TcpFlags::CWR, "W"),
            (TcpFlags::AE, "e"),
        ];
        if self.0 == 0 {
            return f.write_str("none");
        }
        for (flag, letter) in LETTERS {
            if self.contains(flag) {
                f.write_str(letter)?;
            }
        }
        Ok(())
    }
}

/// A TCP option.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TcpOption {
    /// End of option list.
    EndOfList,
    /// No-operation (padding).
    Nop,
    /// Maximum segment size.
    Mss(u16),
    /// Window scale shift.
    WindowScale(u8),
    /// SACK permitted.
    SackPermitted,
    /// SACK blocks (left edge, right edge).
    Sack(Vec<(u32, u32)>),
    /// Timestamps.
    Timestamp {
        /// TS value.
        value: u32,
        /// TS echo reply.
        echo: u32,
    },
    /// Any other option, or one whose length is wrong.
    Other {
        /// Option kind.
        kind: u8,
        /// Option data (after kind and length).
        data: Vec<u8>,
    },
}

/// A TCP header.
///
/// ```
/// # use netns_fixture::capture::{Packet, TcpFlags};
/// # let packet = Packet::from_ethernet_frame(vec![], std::time::SystemTime::UNIX_EPOCH);
/// if let Some(tcp) = packet.tcp() {
///     if tcp.flags.contains(TcpFlags::SYN) {
///         println!("SYN {} -> {} seq {}", tcp.src_port, tcp.dst_port, tcp.seq);
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Tcp {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number (meaningful when ACK is set).
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Window (unscaled).
    pub window: u16,
    /// Urgent pointer.
    pub urgent: u16,
    /// Header length in bytes, options included.
    pub header_length: usize,
    /// Options, as far as they were captured.
    pub options: Vec<TcpOption>,
    /// Payload length according to the IP header.
    pub payload_length: usize,
}

/// A UDP header.
///
/// ```
/// # use netns_fixture::capture::Packet;
/// # let packet = Packet::from_ethernet_frame(vec![], std::time::SystemTime::UNIX_EPOCH);
/// if let Some(udp) = packet.udp() {
///     println!("{} -> {}, {} bytes", udp.src_port, udp.dst_port, udp.payload_length());
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Udp {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// The length field: header plus payload, in bytes.
    pub length: u16,
    /// Checksum as sent.
    pub checksum: u16,
}

impl Udp {
    /// Payload length according to the UDP header (`length - 8`).
    pub fn payload_length(&self) -> usize {
        usize::from(self.length).saturating_sub(8)
    }
}

/// What the bytes after the link layer turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Network {
    None,
    Arp(Arp),
    Ip(Ip),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Transport {
    None,
    Icmp(Icmp),
    Tcp(Tcp),
    Udp(Udp),
}

/// Everything decoded from one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layers {
    pub(crate) ethernet: Option<Ethernet>,
    pub(crate) network: Network,
    pub(crate) transport: Transport,
    /// Length of the link-layer payload (after Ethernet and tags), from the wire length.
    pub(crate) network_length: usize,
    /// Captured bytes of the innermost decoded layer's payload.
    pub(crate) payload: std::ops::Range<usize>,
    /// The layer that was cut short, in tcpdump's words ("ether", "ip", "tcp"...).
    pub(crate) truncated: Option<&'static str>,
}

/// One captured packet: when, which way, the bytes, and the decoded layers.
///
/// `Display` renders one line in the style of `tcpdump -n -S` (absolute TCP
/// sequence numbers), local time first:
/// `12:00:00.000001 IP 10.0.0.10 > 10.0.0.20: ICMP echo request, id 1, seq 1, length 64`.
///
/// ```
/// use netns_fixture::capture::Packet;
/// use std::time::SystemTime;
/// let frame = [
///     &[0xff; 6][..], &[2, 0, 0, 0, 0, 1], &[0x08, 0x06],          // Ethernet, ARP
///     &[0, 1, 8, 0, 6, 4, 0, 1], &[2, 0, 0, 0, 0, 1], &[10, 0, 0, 1], // request from 10.0.0.1
///     &[0; 6], &[10, 0, 0, 2],                                        // who has 10.0.0.2
/// ].concat();
/// let packet = Packet::from_ethernet_frame(frame, SystemTime::now());
/// assert!(packet.is_arp_request());
/// assert_eq!(packet.summary(), "ARP, Request who-has 10.0.0.2 tell 10.0.0.1, length 28");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    timestamp: SystemTime,
    direction: Option<Direction>,
    link_type: LinkType,
    data: Vec<u8>,
    original_length: usize,
    layers: Layers,
}

impl Packet {
    /// Decodes an Ethernet frame (as captured; the original length is taken to be
    /// its length). Never fails: what cannot be decoded is absent.
    ///
    /// ```
    /// let p = netns_fixture::capture::Packet::from_ethernet_frame(vec![0; 10], std::time::SystemTime::now());
    /// assert_eq!(p.truncated_at(), Some("ether"));
    /// ```
    pub fn from_ethernet_frame(data: impl Into<Vec<u8>>, timestamp: SystemTime) -> Packet {
        let data = data.into();
        let len = data.len();
        Packet::new(LinkType::Ethernet, data, len, timestamp, None)
    }

    /// Decodes a packet that begins with its IP header (raw-IP link types).
    ///
    /// ```
    /// let p = netns_fixture::capture::Packet::from_ip_packet(vec![0x45], std::time::SystemTime::now());
    /// assert!(p.ip().is_none());
    /// ```
    pub fn from_ip_packet(data: impl Into<Vec<u8>>, timestamp: SystemTime) -> Packet {
        let data = data.into();
        let len = data.len();
        Packet::new(LinkType::RawIp, data, len, timestamp, None)
    }

    pub(crate) fn new(
        link_type: LinkType,
        data: Vec<u8>,
        original_length: usize,
        timestamp: SystemTime,
        direction: Option<Direction>,
    ) -> Packet {
        let original_length = original_length.max(data.len());
        let layers = decode(link_type, &data, original_length);
        Packet {
            timestamp,
            direction,
            link_type,
            data,
            original_length,
            layers,
        }
    }

    /// When the kernel received or sent the packet.
    pub fn timestamp(&self) -> SystemTime {
        self.timestamp
    }

    /// Received or sent by the captured interface; `None` for packets built by hand.
    pub fn direction(&self) -> Option<Direction> {
        self.direction
    }

    /// How the captured bytes begin.
    pub fn link_type(&self) -> LinkType {
        self.link_type
    }

    /// The captured bytes, link-layer header first.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The packet's length on the wire (at least `data().len()`).
    pub fn original_length(&self) -> usize {
        self.original_length
    }

    /// The layer that was cut short by the end of the captured bytes, in tcpdump's
    /// words (`"ether"`, `"arp"`, `"ip"`, `"ip6"`, `"icmp"`, `"icmp6"`, `"tcp"`, `"udp"`).
    pub fn truncated_at(&self) -> Option<&'static str> {
        self.layers.truncated
    }

    /// The Ethernet header (absent on raw-IP links or if the frame is too short).
    pub fn ethernet(&self) -> Option<&Ethernet> {
        self.layers.ethernet.as_ref()
    }

    /// The ARP message, if this is ARP for IPv4 over Ethernet.
    pub fn arp(&self) -> Option<&Arp> {
        match &self.layers.network {
            Network::Arp(arp) => Some(arp),
            _ => None,
        }
    }

    /// The IP layer, v4 or v6.
    pub fn ip(&self) -> Option<&Ip> {
        match &self.layers.network {
            Network::Ip(ip) => Some(ip),
            _ => None,
        }
    }

    /// The IPv4 header.
    pub fn ipv4(&self) -> Option<&Ipv4> {
        match self.ip() {
            Some(Ip::V4(h)) => Some(h),
            _ => None,
        }
    }

    /// The IPv6 header.
    pub fn ipv6(&self) -> Option<&Ipv6> {
        match self.ip() {
            Some(Ip::V6(h)) => Some(h),
            _ => None,
        }
    }

    /// The ICMP or ICMPv6 message.
    pub fn icmp(&self) -> Option<&Icmp> {
        match &self.layers.transport {
            Transport::Icmp(icmp) => Some(icmp),
            _ => None,
        }
    }

    /// The TCP header.
    pub fn tcp(&self) -> Option<&Tcp> {
        match &self.layers.transport {
            Transport::Tcp(tcp) => Some(tcp),
            _ => None,
        }
    }

    /// The UDP header.
    pub fn udp(&self) -> Option<&Udp> {
        match &self.layers.transport {
            Transport::Udp(udp) => Some(udp),
            _ => None,
        }
    }

    /// The captured bytes after the innermost decoded header: TCP or UDP data,
    /// the body of an ICMP message after its 8-byte header, or the payload of an
    /// undecoded layer.
    ///
    /// ```
    /// # let p = netns_fixture::capture::Packet::from_ethernet_frame(vec![], std::time::SystemTime::now());
    /// if p.udp().is_some() {
    ///     println!("{}", String::from_utf8_lossy(p.payload()));
    /// }
    /// ```
    pub fn payload(&self) -> &[u8] {
        self.data.get(self.layers.payload.clone()).unwrap_or(&[])
    }

    /// Source IP address.
    pub fn src_ip(&self) -> Option<IpAddr> {
        self.ip().map(Ip::src)
    }

    /// Destination IP address.
    pub fn dst_ip(&self) -> Option<IpAddr> {
        self.ip().map(Ip::dst)
    }

    /// TCP or UDP source port.
    pub fn src_port(&self) -> Option<u16> {
        match &self.layers.transport {
            Transport::Tcp(t) => Some(t.src_port),
            Transport::Udp(u) => Some(u.src_port),
            _ => None,
        }
    }

    /// TCP or UDP destination port.
    pub fn dst_port(&self) -> Option<u16> {
        match &self.layers.transport {
            Transport::Tcp(t) => Some(t.dst_port),
            Transport::Udp(u) => Some(u.dst_port),
            _ => None,
        }
    }

    /// Whether the IP source is `ip` (an ARP sender counts too).
    ///
    /// ```
    /// # let p = netns_fixture::capture::Packet::from_ethernet_frame(vec![], std::time::SystemTime::now());
    /// let from_server = p.is_from(std::net::Ipv4Addr::new(10, 0, 0, 2));
    /// # assert!(!from_server);
    /// ```
    pub fn is_from(&self, ip: impl Into<IpAddr>) -> bool {
        let ip = ip.into();
        match &self.layers.network {
            Network::Ip(h) => h.src() == ip,
            Network::Arp(a) => IpAddr::from(a.sender_ip) == ip,
            Network::None => false,
        }
    }

    /// Whether the IP destination is `ip` (an ARP target counts too).
    pub fn is_to(&self, ip: impl Into<IpAddr>) -> bool {
        let ip = ip.into();
        match &self.layers.network {
            Network::Ip(h) => h.dst() == ip,
            Network::Arp(a) => IpAddr::from(a.target_ip) == ip,
            Network::None => false,
        }
    }

    /// An ARP message.
    pub fn is_arp(&self) -> bool {
        self.arp().is_some()
    }

    /// An ARP request.
    pub fn is_arp_request(&self) -> bool {
        self.arp().is_some_and(Arp::is_request)
    }

    /// An ARP reply.
    pub fn is_arp_reply(&self) -> bool {
        self.arp().is_some_and(Arp::is_reply)
    }

    /// An ICMP or ICMPv6 message.
    pub fn is_icmp(&self) -> bool {
        self.icmp().is_some()
    }

    /// A TCP segment.
    pub fn is_tcp(&self) -> bool {
        self.tcp().is_some()
    }

    /// A UDP datagram.
    pub fn is_udp(&self) -> bool {
        self.udp().is_some()
    }

    /// An ICMP or ICMPv6 echo request.
    pub fn is_icmp_echo_request(&self) -> bool {
        self.icmp().is_some_and(Icmp::is_echo_request)
    }

    /// An ICMP or ICMPv6 echo reply.
    pub fn is_icmp_echo_reply(&self) -> bool {
        self.icmp().is_some_and(Icmp::is_echo_reply)
    }

    /// An ICMP or ICMPv6 echo request sent to `ip`.
    ///
    /// ```
    /// # let p = netns_fixture::capture::Packet::from_ethernet_frame(vec![], std::time::SystemTime::now());
    /// let ping = p.is_icmp_echo_request_to(std::net::Ipv4Addr::new(10, 0, 0, 20));
    /// # assert!(!ping);
    /// ```
    pub fn is_icmp_echo_request_to(&self, ip: impl Into<IpAddr>) -> bool {
        self.is_icmp_echo_request() && self.is_to(ip)
    }

    /// An ICMP or ICMPv6 echo reply sent by `ip`.
    ///
    /// ```
    /// # let p = netns_fixture::capture::Packet::from_ethernet_frame(vec![], std::time::SystemTime::now());
    /// let pong = p.is_icmp_echo_reply_from(std::net::Ipv4Addr::new(10, 0, 0, 20));
    /// # assert!(!pong);
    /// ```
    pub fn is_icmp_echo_reply_from(&self, ip: impl Into<IpAddr>) -> bool {
        self.is_icmp_echo_reply() && self.is_from(ip)
    }

    /// A TCP segment with SYN set and ACK not set (a connection attempt).
    pub fn is_tcp_syn(&self) -> bool {
        self.tcp()
            .is_some_and(|t| t.flags.contains(TcpFlags::SYN) && !t.flags.contains(TcpFlags::ACK))
    }

    /// A TCP segment with RST set.
    pub fn is_tcp_rst(&self) -> bool {
        self.tcp().is_some_and(|t| t.flags.contains(TcpFlags::RST))
    }

    /// The tcpdump-style line without the timestamp, e.g.
    /// `IP 127.0.0.1.41234 > 127.0.0.1.9999: UDP, length 5`.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        super::render::summary(self, &mut out);
        out
    }

    pub(crate) fn layers(&self) -> &Layers {
        &self.layers
    }
}

impl fmt::Display for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&super::render::timestamp(self.timestamp))?;
        f.write_str(" ")?;
        f.write_str(&self.summary())
    }
}

// ---------------------------------------------------------------------------
// Decoding

fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(d.get(at..at + 2)?.try_into().ok()?))
}

fn be32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(d.get(at..at + 4)?.try_into().ok()?))
}

fn mac(d: &[u8], at: usize) -> Option<MacAddr> {
    Some(MacAddr(d.get(at..at + 6)?.try_into().ok()?))
}

fn ipv4_at(d: &[u8], at: usize) -> Option<Ipv4Addr> {
    let b: [u8; 4] = d.get(at..at + 4)?.try_into().ok()?;
    Some(Ipv4Addr::from(b))
}

fn ipv6_at(d: &[u8], at: usize) -> Option<Ipv6Addr> {
    let b: [u8; 16] = d.get(at..at + 16)?.try_into().ok()?;
    Some(Ipv6Addr::from(b))
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;

fn decode(link: LinkType, data: &[u8], original_length: usize) -> Layers {
    let mut layers = Layers {
        ethernet: None,
        network: Network::None,
        transport: Transport::None,
        network_length: original_length,
        payload: 0..data.len(),
        truncated: None,
    };
    let (ethertype, offset) = match link {
        LinkType::RawIp => match data.first().map(|b| b >> 4) {
            Some(4) => (ETHERTYPE_IPV4, 0),
            Some(6) => (ETHERTYPE_IPV6, 0),
            Some(_) => return layers,
            None => {
                layers.truncated = Some("ip");
                return layers;
            }
        },
        LinkType::Ethernet => {
            let (Some(dst), Some(src), Some(mut ethertype)) =
                (mac(data, 0), mac(data, 6), be16(data, 12))
            else {
                layers.truncated = Some("ether");
                return layers;
            };
            let mut offset = 14;
            let mut vlans = Vec::new();
            while matches!(
                ethertype,
                ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD
            ) {
                let (Some(tci), Some(inner)) = (be16(data, offset), be16(data, offset + 2)) else {
                    layers.truncated = Some("vlan");
                    break;
                };
                vlans.push(tci & 0x0fff);
                ethertype = inner;
                offset += 4;
            }
            layers.ethernet = Some(Ethernet {
                dst,
                src,
                ethertype,
                vlans,
            });
            layers.payload = offset.min(data.len())..data.len();
            layers.network_length = original_length.saturating_sub(offset);
            if layers.truncated.is_some() {
                return layers;
            }
            (ethertype, offset)
        }
    };
    let body = &data[offset.min(data.len())..];
    match ethertype {
        ETHERTYPE_ARP => match decode_arp(body) {
            Ok(Some(arp)) => {
                layers.network = Network::Arp(arp);
                layers.payload = data.len()..data.len();
            }
            Ok(None) => {}
            Err(()) => layers.truncated = Some("arp"),
        },
        ETHERTYPE_IPV4 => decode_ipv4(body, offset, &mut layers),
        ETHERTYPE_IPV6 => decode_ipv6(body, offset, &mut layers),
        _ => {}
    }
    layers
}

/// `Ok(None)`: ARP for something other than IPv4 over Ethernet.
fn decode_arp(d: &[u8]) -> Result<Option<Arp>, ()> {
    let (Some(htype), Some(ptype), Some(hlen), Some(plen), Some(operation)) =
        (be16(d, 0), be16(d, 2), d.get(4), d.get(5), be16(d, 6))
    else {
        return Err(());
    };
    if htype != 1 || ptype != ETHERTYPE_IPV4 || *hlen != 6 || *plen != 4 {
        return Ok(None);
    }
    let (Some(sender_mac), Some(sender_ip), Some(target_mac), Some(target_ip)) =
        (mac(d, 8), ipv4_at(d, 14), mac(d, 18), ipv4_at(d, 24))
    else {
        return Err(());
    };
    Ok(Some(Arp {
        operation,
        sender_mac,
        sender_ip,
        target_mac,
        target_ip,
    }))
}

fn decode_ipv4(d: &[u8], base: usize, layers: &mut Layers) {
    let Some(&vihl) = d.first() else {
        layers.truncated = Some("ip");
        return;
    };
    if vihl >> 4 != 4 {
        return;
    }
    let header_length = usize::from(vihl & 0x0f) * 4;
    if header_length < 20 || d.len() < header_length {
        layers.truncated = Some("ip");
        return;
    }
    let (Some(total_length), Some(id), Some(frag), Some(src), Some(dst)) = (
        be16(d, 2),
        be16(d, 4),
        be16(d, 6),
        ipv4_at(d, 12),
        ipv4_at(d, 16),
    ) else {
        layers.truncated = Some("ip");
        return;
    };
    let total_length = usize::from(total_length);
    let header = Ipv4 {
        src,
        dst,
        protocol: d[9],
        ttl: d[8],
        tos: d[1],
        id,
        header_length,
        total_length,
        dont_fragment: frag & 0x4000 != 0,
        more_fragments: frag & 0x2000 != 0,
        fragment_offset: usize::from(frag & 0x1fff) * 8,
    };
    // The payload ends where the IP header says, or where the capture does.
    let end = total_length.clamp(header_length, d.len());
    let payload_length = total_length.saturating_sub(header_length);
    let first_fragment = header.fragment_offset == 0;
    let protocol = header.protocol;
    layers.payload = base + header_length..base + end;
    layers.network = Network::Ip(Ip::V4(header));
    if first_fragment {
        decode_transport(
            IpVersion::V4,
            protocol,
            &d[header_length..end],
            base + header_length,
            payload_length,
            layers,
        );
    }
}

fn decode_ipv6(d: &[u8], base: usize, layers: &mut Layers) {
    let (Some(first), Some(payload_length), Some(src), Some(dst)) =
        (be32(d, 0), be16(d, 4), ipv6_at(d, 8), ipv6_at(d, 24))
    else {
        if d.first().is_some_and(|b| b >> 4 != 6) {
            return;
        }
        layers.truncated = Some("ip6");
        return;
    };
    if first >> 28 != 6 {
        return;
    }
    let payload_length = usize::from(payload_length);
    let end = (40 + payload_length).min(d.len());
    let mut header = Ipv6 {
        src,
        dst,
        protocol: d[6],
        next_header: d[6],
        extension_headers: Vec::new(),
        hop_limit: d[7],
        traffic_class: ((first >> 20) & 0xff) as u8,
        flow_label: first & 0x000f_ffff,
        payload_length,
        fragment_offset: None,
    };
    let mut at = 40;
    let mut truncated = false;
    loop {
        let length = match header.protocol {
            ip_proto::HOPOPTS | ip_proto::ROUTING | ip_proto::DSTOPTS => {
                d.get(at + 1).map(|l| (usize::from(*l) + 1) * 8)
            }
            ip_proto::AH => d.get(at + 1).map(|l| (usize::from(*l) + 2) * 4),
            ip_proto::FRAGMENT => {
                if let Some(off) = be16(d, at + 2) {
                    header.fragment_offset = Some(usize::from(off & 0xfff8));
                }
                Some(8)
            }
            _ => break,
        };
        match (length, d.get(at)) {
            (Some(length), Some(&next)) if at + length <= end => {
                header.extension_headers.push(header.protocol);
                header.protocol = next;
                at += length;
            }
            _ => {
                truncated = true;
                break;
            }
        }
    }
    let protocol = header.protocol;
    let first_fragment = header.fragment_offset.unwrap_or(0) == 0;
    let upper_length = (40 + payload_length).saturating_sub(at);
    layers.payload = base + at.min(end)..base + end;
    layers.network = Network::Ip(Ip::V6(header));
    if truncated {
        layers.truncated = Some("ip6");
    } else if first_fragment {
        decode_transport(
            IpVersion::V6,
            protocol,
            &d[at..end],
            base + at,
            upper_length,
            layers,
        );
    }
}

fn decode_transport(
    version: IpVersion,
    protocol: u8,
    d: &[u8],
    base: usize,
    length: usize,
    layers: &mut Layers,
) {
    match (version, protocol) {
        (IpVersion::V4, ip_proto::ICMP) | (IpVersion::V6, ip_proto::ICMPV6) => {
            match decode_icmp(version, d, length) {
                Some(icmp) => {
                    layers.transport = Transport::Icmp(icmp);
                    layers.payload = base + 8..base + d.len();
                }
                None => {
                    layers.truncated = Some(match version {
                        IpVersion::V4 => "icmp",
                        IpVersion::V6 => "icmp6",
                    })
                }
            }
        }
        (_, ip_proto::UDP) => {
            let (Some(src_port), Some(dst_port), Some(udp_length), Some(checksum)) =
                (be16(d, 0), be16(d, 2), be16(d, 4), be16(d, 6))
            else {
                layers.truncated = Some("udp");
                return;
            };
            let end = usize::from(udp_length).clamp(8, d.len());
            layers.payload = base + 8..base + end;
            layers.transport = Transport::Udp(Udp {
                src_port,
                dst_port,
                length: udp_length,
                checksum,
            });
        }
        (_, ip_proto::TCP) => match decode_tcp(d, length) {
            Some(tcp) => {
                layers.payload = base + tcp.header_length.min(d.len())..base + d.len();
                layers.transport = Transport::Tcp(tcp);
            }
            None => layers.truncated = Some("tcp"),
        },
        _ => {}
    }
}

fn decode_icmp(version: IpVersion, d: &[u8], length: usize) -> Option<Icmp> {
    let (&icmp_type, &code, checksum) = (d.first()?, d.get(1)?, be16(d, 2)?);
    let mut icmp = Icmp {
        version,
        icmp_type,
        code,
        checksum,
        echo: None,
        length,
        quoted: None,
        target: None,
        mtu: None,
        group_records: None,
    };
    let rest_u16 = be16(d, 6);
    match (version, icmp_type) {
        (IpVersion::V4, icmp_type::ECHO_REQUEST | icmp_type::ECHO_REPLY)
        | (IpVersion::V6, icmp_type::V6_ECHO_REQUEST | icmp_type::V6_ECHO_REPLY) => {
            icmp.echo = Some((be16(d, 4)?, be16(d, 6)?));
        }
        (IpVersion::V4, icmp_type::DEST_UNREACHABLE | icmp_type::TIME_EXCEEDED) => {
            if icmp_type == icmp_type::DEST_UNREACHABLE && code == 4 {
                icmp.mtu = rest_u16.map(u32::from);
            }
            icmp.quoted = quoted(d.get(8..).unwrap_or(&[]));
        }
        (IpVersion::V6, icmp_type::V6_DEST_UNREACHABLE | icmp_type::V6_TIME_EXCEEDED) => {
            icmp.quoted = quoted(d.get(8..).unwrap_or(&[]));
        }
        (IpVersion::V6, icmp_type::V6_PACKET_TOO_BIG) => {
            icmp.mtu = be32(d, 4);
            icmp.quoted = quoted(d.get(8..).unwrap_or(&[]));
        }
        (
            IpVersion::V6,
            icmp_type::V6_NEIGHBOR_SOLICITATION | icmp_type::V6_NEIGHBOR_ADVERTISEMENT,
        ) => {
            icmp.target = ipv6_at(d, 8);
        }
        (IpVersion::V6, icmp_type::V6_MLD2_REPORT) => {
            icmp.group_records = rest_u16;
        }
        _ => {}
    }
    Some(icmp)
}

/// The IP header (and ports) an ICMP error quotes.
fn quoted(d: &[u8]) -> Option<Quoted> {
    let version = d.first()? >> 4;
    let (src, dst, protocol, at): (IpAddr, IpAddr, u8, usize) = match version {
        4 => (
            ipv4_at(d, 12)?.into(),
            ipv4_at(d, 16)?.into(),
            *d.get(9)?,
            usize::from(d[0] & 0x0f) * 4,
        ),
        6 => {
            // Skip extension headers to find the upper layer, as far as quoted.
            let mut protocol = *d.get(6)?;
            let mut at = 40;
            while let ip_proto::HOPOPTS | ip_proto::ROUTING | ip_proto::DSTOPTS = protocol {
                let next = *d.get(at)?;
                at += (usize::from(*d.get(at + 1)?) + 1) * 8;
                protocol = next;
            }
            (ipv6_at(d, 8)?.into(), ipv6_at(d, 24)?.into(), protocol, at)
        }
        _ => return None,
    };
    let ports = matches!(protocol, ip_proto::TCP | ip_proto::UDP);
    Some(Quoted {
        src,
        dst,
        protocol,
        src_port: be16(d, at).filter(|_| ports),
        dst_port: be16(d, at + 2).filter(|_| ports),
    })
}

fn decode_tcp(d: &[u8], length: usize) -> Option<Tcp> {
    let header_length = usize::from(*d.get(12)? >> 4) * 4;
    let flag_bits = be16(d, 12)? & 0x01ff;
    let mut tcp = Tcp {
        src_port: be16(d, 0)?,
        dst_port: be16(d, 2)?,
        seq: be32(d, 4)?,
        ack: be32(d, 8)?,
        flags: TcpFlags(flag_bits),
        window: be16(d, 14)?,
        urgent: be16(d, 18)?,
        header_length,
        options: Vec::new(),
        payload_length: length.saturating_sub(header_length),
    };
    if header_length < 20 {
        return None;
    }
    let options = d.get(20..header_length.min(d.len())).unwrap_or(&[]);
    tcp.options = tcp_options(options);
    Some(tcp)
}

fn tcp_options(mut d: &[u8]) -> Vec<TcpOption> {
    let mut out = Vec::new();
    while let Some(&kind) = d.first() {
        match kind {
            0 => {
                out.push(TcpOption::EndOfList);
                break;
            }
            1 => {
                out.push(TcpOption::Nop);
                d = &d[1..];
                continue;
            }
            _ => {}
        }
        let Some(&len) = d.get(1) else { break };
        let len = usize::from(len);
        if len < 2 || len > d.len() {
            break;
        }
        let data = &d[2..len];
        out.push(match (kind, data.len()) {
            (2, 2) => TcpOption::Mss(u16::from_be_bytes([data[0], data[1]])),
            (3, 1) => TcpOption::WindowScale(data[0]),
            (4, 0) => TcpOption::SackPermitted,
            (5, n) if n % 8 == 0 => TcpOption::Sack(
                data.chunks_exact(8)
                    .map(|c| {
                        (
                            u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                            u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
                        )
                    })
                    .collect(),
            ),
            (8, 8) => TcpOption::Timestamp {
                value: u32::from_be_bytes([data[0], data[1], data[2], data[3]]),
                echo: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
            },
            _ => TcpOption::Other {
                kind,
                data: data.to_vec(),
            },
        });
        d = &d[len..];
    }
    out
}
