//! A node's network state as it is right now: the facts `ip link`, `ip addr`,
//! `ip route`, `ip neigh`, `ss -ltnu` and `nft list ruleset` show, read from inside
//! the node. Links, addresses, routes and neighbours come over rtnetlink, sockets
//! from `/proc/thread-self/net/*` on a thread inside the node, and the ruleset from
//! the `nft` binary when it is installed (the state says so when it is not).
//!
//! ```no_run
//! let lab = netns_fixture::Lab::builtin("two_servers").unwrap();
//! let state = lab.node("router").state();
//! assert!(state.addresses.iter().any(|a| a.address.to_string() == "10.0.0.233/24"));
//! println!("{state}");
//! ```

use crate::netlink::RouteSocket;
use crate::{InterfaceKind, Node};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    LinkAttribute, LinkFlags, LinkInfo, LinkLayerType, LinkMessage, State,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netns_fixture_topology::IpNet;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Everything [`Node::state`] read from one node. `Display` prints it section by
/// section, each line as the matching `ip`/`ss`/`nft` command would show it.
///
/// ```no_run
/// let lab = netns_fixture::Lab::builtin("pair").unwrap();
/// let state = lab.node("ns-1").state();
/// assert_eq!(state.links[1].name, "veth-1");
/// assert!(state.problems.is_empty(), "{:?}", state.problems);
/// ```
#[derive(Debug, Clone)]
pub struct NodeState {
    /// The node's name.
    pub node: String,
    /// Every link, `lo` included, in index order.
    pub links: Vec<LinkEntry>,
    /// Every address, IPv4 and IPv6.
    pub addresses: Vec<AddressEntry>,
    /// The routes of the main table, IPv4 then IPv6.
    pub routes: Vec<RouteEntry>,
    /// The neighbour (ARP/NDP) cache, without `NOARP` entries.
    pub neighbours: Vec<NeighbourEntry>,
    /// TCP and UDP sockets: the listening ones and the TCP connections.
    pub sockets: Vec<SocketEntry>,
    /// Forwarding sysctls, as (key, value).
    pub sysctls: Vec<(String, String)>,
    /// The nftables ruleset with its counters.
    pub nftables: Nftables,
    /// What could not be read, and why.
    pub problems: Vec<String>,
}

/// One link, as `ip -s link` shows it.
///
/// ```no_run
/// let lab = netns_fixture::Lab::builtin("pair").unwrap();
/// let veth = lab.node("ns-1").state().links.into_iter().find(|l| l.name == "veth-1").unwrap();
/// assert_eq!(veth.peer.as_deref(), Some("ns-2/veth-2"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkEntry {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// Link kind (`veth`, `bridge`), if any.
    pub kind: Option<String>,
    /// Flags as `ip link` prints them: `UP`, `LOWER_UP`, `NO-CARRIER`...
    pub flags: Vec<String>,
    /// Operational state: `UP`, `DOWN`, `UNKNOWN`, `LOWERLAYERDOWN`...
    pub state: String,
    /// MTU.
    pub mtu: Option<u32>,
    /// Hardware address, `aa:bb:cc:dd:ee:ff`.
    pub mac: Option<String>,
    /// The bridge this link is a port of.
    pub controller: Option<String>,
    /// The other end of a veth of the lab, `node/interface`.
    pub peer: Option<String>,
    /// Packet and byte counters.
    pub stats: Option<LinkStats>,
}

/// A link's counters.
///
/// ```
/// let stats = netns_fixture::inspect::LinkStats::default();
/// assert_eq!(stats.to_string(), "rx 0 packets 0 bytes (0 dropped) tx 0 packets 0 bytes (0 dropped)");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Packets received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Received packets dropped.
    pub rx_dropped: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets dropped on sending.
    pub tx_dropped: u64,
}

/// One address, as `ip addr` shows it.
///
/// ```
/// use netns_fixture::inspect::AddressEntry;
/// let a = AddressEntry { interface: "eth0".into(), address: "10.0.0.2/24".parse().unwrap(), scope: "global".into() };
/// assert_eq!(a.to_string(), "eth0 inet 10.0.0.2/24 scope global");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressEntry {
    /// The interface's name.
    pub interface: String,
    /// The address with its prefix length.
    pub address: IpNet,
    /// `global`, `link` or `host`.
    pub scope: String,
}

/// One route, as `ip route` shows it.
///
/// ```
/// use netns_fixture::inspect::RouteEntry;
/// let r = RouteEntry {
///     kind: None,
///     destination: None,
///     gateway: Some("192.168.0.1".parse().unwrap()),
///     interface: Some("veth1".into()),
///     protocol: None,
///     scope: None,
///     source: None,
///     metric: None,
/// };
/// assert_eq!(r.to_string(), "default via 192.168.0.1 dev veth1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    /// `unreachable`, `blackhole`, `prohibit`... (`None` for a unicast route).
    pub kind: Option<String>,
    /// The destination network; `None` for the default route.
    pub destination: Option<IpNet>,
    /// The next hop.
    pub gateway: Option<IpAddr>,
    /// The outgoing interface.
    pub interface: Option<String>,
    /// Who made it (`kernel`, `static`), unless it is the usual `boot`.
    pub protocol: Option<String>,
    /// `link` or `host`, unless it is the usual `global`.
    pub scope: Option<String>,
    /// The preferred source address.
    pub source: Option<IpAddr>,
    /// The metric, when set.
    pub metric: Option<u32>,
}

/// One neighbour cache entry, as `ip neigh` shows it.
///
/// ```
/// use netns_fixture::inspect::NeighbourEntry;
/// let n = NeighbourEntry {
///     address: "10.0.0.1".parse().unwrap(),
///     interface: "eth0".into(),
///     mac: None,
///     state: "FAILED".into(),
/// };
/// assert_eq!(n.to_string(), "10.0.0.1 dev eth0 FAILED");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighbourEntry {
    /// The neighbour's IP address.
    pub address: IpAddr,
    /// The interface it is reached on.
    pub interface: String,
    /// Its hardware address, once resolved.
    pub mac: Option<String>,
    /// `REACHABLE`, `STALE`, `INCOMPLETE`, `FAILED`, `PERMANENT`...
    pub state: String,
}

/// One TCP or UDP socket, as `ss -tuan` shows it.
///
/// ```
/// use netns_fixture::inspect::SocketEntry;
/// let s = SocketEntry { protocol: "tcp", state: "LISTEN", local: "0.0.0.0:8080".parse().unwrap(), remote: None };
/// assert!(s.is_listening());
/// assert_eq!(s.to_string(), "tcp   LISTEN     0.0.0.0:8080");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketEntry {
    /// `tcp` or `udp` (either address family).
    pub protocol: &'static str,
    /// `LISTEN`, `ESTAB`, `SYN-SENT`, `UNCONN` (UDP, unconnected)...
    pub state: &'static str,
    /// The local address and port.
    pub local: SocketAddr,
    /// The peer, for connected sockets.
    pub remote: Option<SocketAddr>,
}

impl SocketEntry {
    /// Whether `ss -l` lists it: a listening TCP socket or an unconnected UDP one.
    pub fn is_listening(&self) -> bool {
        matches!(self.state, "LISTEN" | "UNCONN")
    }
}

/// The node's nftables ruleset, or why there is none to show.
///
/// ```
/// use netns_fixture::inspect::Nftables;
/// assert!(Nftables::NotInstalled { lab_firewall: String::new() }.to_string().contains("nft is not installed"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nftables {
    /// `nft list ruleset`'s output (empty when the node has no rules).
    Listed(String),
    /// The `nft` binary is missing; what the lab itself installed, in nft syntax
    /// without counters.
    NotInstalled {
        /// The topology's firewall for this node, as [`Node::firewall_rules`] renders it.
        lab_firewall: String,
    },
    /// `nft` ran but failed.
    Failed(String),
}

impl Node {
    /// Reads the node's current network state (see [`NodeState`]). It never
    /// fails: what cannot be read is listed in [`NodeState::problems`].
    ///
    /// ```no_run
    /// let lab = netns_fixture::Lab::builtin("lan").unwrap();
    /// let host = lab.node("host").state();
    /// assert!(host.routes.iter().any(|r| r.interface.as_deref() == Some("br0")));
    /// assert!(host.sysctls.contains(&("net/ipv4/ip_forward".to_string(), "1".to_string())));
    /// ```
    pub fn state(&self) -> NodeState {
        let mut state = NodeState {
            node: self.name().to_string(),
            links: Vec::new(),
            addresses: Vec::new(),
            routes: Vec::new(),
            neighbours: Vec::new(),
            sockets: Vec::new(),
            sysctls: Vec::new(),
            nftables: Nftables::Listed(String::new()),
            problems: Vec::new(),
        };
        let (socket, sockets, sysctls) = self.run(|| {
            (
                RouteSocket::open(),
                read_sockets(),
                SYSCTLS
                    .iter()
                    .map(|key| {
                        let value = std::fs::read_to_string(format!("/proc/sys/{key}"));
                        (key, value.map(|v| v.trim().to_string()))
                    })
                    .collect::<Vec<_>>(),
            )
        });
        match socket {
            Ok(socket) => self.read_netlink(&socket, &mut state),
            Err(e) => state
                .problems
                .push(format!("opening a netlink socket in the node: {e}")),
        }
        match sockets {
            Ok(sockets) => state.sockets = sockets,
            Err(e) => state.problems.push(e),
        }
        for (key, value) in sysctls {
            match value {
                Ok(value) => state.sysctls.push((key.to_string(), value)),
                Err(e) => state.problems.push(format!("reading {key}: {e}")),
            }
        }
        state.nftables = self.nftables();
        state
    }

    fn read_netlink(&self, socket: &RouteSocket, state: &mut NodeState) {
        match socket.link_entries() {
            Ok(links) => state.links = links,
            Err(e) => state.problems.push(format!("listing links: {e}")),
        }
        let names: Vec<(u32, String)> = state
            .links
            .iter()
            .map(|l| (l.index, l.name.clone()))
            .collect();
        for link in &mut state.links {
            if let Some(controller) = &link.controller {
                if let Ok(index) = controller.parse::<u32>() {
                    link.controller = Some(
                        names
                            .iter()
                            .find(|(i, _)| *i == index)
                            .map(|(_, n)| n.clone())
                            .unwrap_or_else(|| format!("if{index}")),
                    );
                }
            }
            link.peer = self.interfaces().iter().find_map(|i| match &i.kind {
                InterfaceKind::Veth {
                    peer_node,
                    peer_interface,
                    ..
                } if i.name == link.name => Some(format!("{peer_node}/{peer_interface}")),
                _ => None,
            });
        }
        let name_of = |index: u32| {
            names
                .iter()
                .find(|(i, _)| *i == index)
                .map(|(_, n)| n.clone())
                .unwrap_or_else(|| format!("if{index}"))
        };
        match socket.address_entries(&name_of) {
            Ok(addresses) => state.addresses = addresses,
            Err(e) => state.problems.push(format!("listing addresses: {e}")),
        }
        match socket.route_entries(&name_of) {
            Ok(routes) => state.routes = routes,
            Err(e) => state.problems.push(format!("listing routes: {e}")),
        }
        match socket.neighbour_entries(&name_of) {
            Ok(neighbours) => state.neighbours = neighbours,
            Err(e) => state.problems.push(format!("listing neighbours: {e}")),
        }
    }

    fn nftables(&self) -> Nftables {
        match self
            .command("nft")
            .args(["list", "ruleset"])
            .env("LC_ALL", "C")
            .output()
        {
            Ok(out) if out.status.success() => {
                Nftables::Listed(String::from_utf8_lossy(&out.stdout).into_owned())
            }
            Ok(out) => Nftables::Failed(format!(
                "nft list ruleset failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Nftables::NotInstalled {
                lab_firewall: self.firewall_rules(),
            },
            Err(e) => Nftables::Failed(format!("running nft list ruleset: {e}")),
        }
    }
}

const SYSCTLS: [&str; 2] = ["net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"];

/// Dumps of the namespace's addresses, routes and neighbours (the socket's own
/// namespace, whichever thread calls).
impl RouteSocket {
    fn link_entries(&self) -> io::Result<Vec<LinkEntry>> {
        let replies = self.dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))?;
        let mut links: Vec<LinkEntry> = replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(link) => Some(link_entry(&link)),
                _ => None,
            })
            .collect();
        links.sort_by_key(|l| l.index);
        Ok(links)
    }

    fn address_entries(&self, name_of: &dyn Fn(u32) -> String) -> io::Result<Vec<AddressEntry>> {
        let replies = self.dump(RouteNetlinkMessage::GetAddress(AddressMessage::default()))?;
        let mut out = Vec::new();
        for message in replies {
            let RouteNetlinkMessage::NewAddress(a) = message else {
                continue;
            };
            let mut local = None;
            let mut address = None;
            for attribute in &a.attributes {
                match attribute {
                    AddressAttribute::Local(ip) => local = Some(*ip),
                    AddressAttribute::Address(ip) => address = Some(*ip),
                    _ => {}
                }
            }
            let Some(ip) = local.or(address) else {
                continue;
            };
            let scope = match a.header.scope {
                AddressScope::Universe => "global".to_string(),
                other => other.to_string(),
            };
            let entry = AddressEntry {
                interface: name_of(a.header.index),
                address: IpNet {
                    addr: ip,
                    prefix: a.header.prefix_len,
                },
                scope,
            };
            out.push((a.header.index, entry));
        }
        // By link, IPv4 first, as `ip addr` shows them.
        out.sort_by_key(|(index, a)| (*index, a.address.addr.is_ipv6()));
        Ok(out.into_iter().map(|(_, a)| a).collect())
    }

    fn route_entries(&self, name_of: &dyn Fn(u32) -> String) -> io::Result<Vec<RouteEntry>> {
        let replies = self.dump(RouteNetlinkMessage::GetRoute(RouteMessage::default()))?;
        let mut out = Vec::new();
        for message in replies {
            let RouteNetlinkMessage::NewRoute(r) = message else {
                continue;
            };
            if let Some(entry) = route_entry(&r, name_of) {
                out.push((r.header.address_family == AddressFamily::Inet6, entry));
            }
        }
        out.sort_by_key(|(v6, _)| *v6);
        Ok(out.into_iter().map(|(_, r)| r).collect())
    }

    fn neighbour_entries(
        &self,
        name_of: &dyn Fn(u32) -> String,
    ) -> io::Result<Vec<NeighbourEntry>> {
        let replies = self.dump(RouteNetlinkMessage::GetNeighbour(
            NeighbourMessage::default(),
        ))?;
        let mut out = Vec::new();
        for message in replies {
            let RouteNetlinkMessage::NewNeighbour(n) = message else {
                continue;
            };
            if matches!(n.header.state, NeighbourState::Noarp | NeighbourState::None) {
                continue;
            }
            let mut address = None;
            let mut mac = None;
            for attribute in &n.attributes {
                match attribute {
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                        address = Some(IpAddr::V4(*v4))
                    }
                    NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                        address = Some(IpAddr::V6(*v6))
                    }
                    NeighbourAttribute::LinkLayerAddress(bytes) => mac = Some(hex_mac(bytes)),
                    _ => {}
                }
            }
            let Some(address) = address else { continue };
            out.push(NeighbourEntry {
                address,
                interface: name_of(n.header.ifindex),
                mac,
                state: n.header.state.to_string().to_uppercase(),
            });
        }
        Ok(out)
    }
}

fn link_entry(link: &LinkMessage) -> LinkEntry {
    let flags = link.header.flags;
    let mut names = Vec::new();
    for (flag, name) in [
        (LinkFlags::Loopback, "LOOPBACK"),
        (LinkFlags::Broadcast, "BROADCAST"),
        (LinkFlags::Pointopoint, "POINTOPOINT"),
        (LinkFlags::Multicast, "MULTICAST"),
        (LinkFlags::Noarp, "NOARP"),
        (LinkFlags::Promisc, "PROMISC"),
        (LinkFlags::Up, "UP"),
        (LinkFlags::LowerUp, "LOWER_UP"),
    ] {
        if flags.contains(flag) {
            names.push(name.to_string());
        }
    }
    if flags.contains(LinkFlags::Up) && !flags.contains(LinkFlags::Running) {
        names.insert(0, "NO-CARRIER".to_string());
    }
    let mut entry = LinkEntry {
        index: link.header.index,
        name: String::new(),
        kind: None,
        flags: names,
        state: "UNKNOWN".into(),
        mtu: None,
        mac: None,
        controller: None,
        peer: None,
        stats: None,
    };
    for attribute in &link.attributes {
        match attribute {
            LinkAttribute::IfName(name) => entry.name = name.clone(),
            LinkAttribute::Mtu(mtu) => entry.mtu = Some(*mtu),
            LinkAttribute::OperState(state) => {
                entry.state = match state {
                    State::Other(v) => format!("state {v}"),
                    other => other.to_string(),
                }
            }
            LinkAttribute::Address(bytes)
                if link.header.link_layer_type == LinkLayerType::Ether =>
            {
                entry.mac = Some(hex_mac(bytes))
            }
            // Resolved to a name once every link is known.
            LinkAttribute::Controller(index) => entry.controller = Some(index.to_string()),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    if let LinkInfo::Kind(kind) = info {
                        entry.kind = Some(kind.to_string());
                    }
                }
            }
            LinkAttribute::Stats64(s) => {
                entry.stats = Some(LinkStats {
                    rx_packets: s.rx_packets,
                    rx_bytes: s.rx_bytes,
                    rx_dropped: s.rx_dropped,
                    tx_packets: s.tx_packets,
                    tx_bytes: s.tx_bytes,
                    tx_dropped: s.tx_dropped,
                })
            }
            _ => {}
        }
    }
    entry
}

fn route_address(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// A route of the main table (what `ip route` and `ip -6 route` show), or `None`.
fn route_entry(route: &RouteMessage, name_of: &dyn Fn(u32) -> String) -> Option<RouteEntry> {
    let header = &route.header;
    if !matches!(
        header.address_family,
        AddressFamily::Inet | AddressFamily::Inet6
    ) {
        return None;
    }
    let mut table = u32::from(header.table);
    let mut destination = None;
    let mut entry = RouteEntry {
        kind: match header.kind {
            RouteType::Unicast => None,
            RouteType::BlackHole => Some("blackhole".into()),
            RouteType::Unreachable => Some("unreachable".into()),
            RouteType::Prohibit => Some("prohibit".into()),
            RouteType::Throw => Some("throw".into()),
            RouteType::Local => Some("local".into()),
            RouteType::Broadcast => Some("broadcast".into()),
            RouteType::Multicast => Some("multicast".into()),
            RouteType::Anycast => Some("anycast".into()),
            ref other => Some(format!("{other:?}").to_lowercase()),
        },
        destination: None,
        gateway: None,
        interface: None,
        protocol: match header.protocol {
            RouteProtocol::Boot | RouteProtocol::Unspec => None,
            other => Some(other.to_string()),
        },
        scope: match header.scope {
            RouteScope::Universe => None,
            other => Some(other.to_string()),
        },
        source: None,
        metric: None,
    };
    for attribute in &route.attributes {
        match attribute {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(d) => destination = route_address(d),
            RouteAttribute::Gateway(g) => entry.gateway = route_address(g),
            RouteAttribute::Oif(index) => entry.interface = Some(name_of(*index)),
            RouteAttribute::PrefSource(s) => entry.source = route_address(s),
            RouteAttribute::Priority(p) => entry.metric = Some(*p),
            _ => {}
        }
    }
    if table != u32::from(RouteHeader::RT_TABLE_MAIN) {
        return None;
    }
    // A /0 destination is the default route, written `default` as `ip route` does.
    let prefix = header.destination_prefix_length;
    entry.destination = destination
        .filter(|_| prefix > 0)
        .map(|addr| IpNet { addr, prefix });
    Some(entry)
}

fn hex_mac(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The TCP and UDP sockets of the calling thread's namespace.
fn read_sockets() -> Result<Vec<SocketEntry>, String> {
    let mut out = Vec::new();
    for (file, protocol) in [
        ("tcp", "tcp"),
        ("tcp6", "tcp"),
        ("udp", "udp"),
        ("udp6", "udp"),
    ] {
        let path = format!("/proc/thread-self/net/{file}");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            // No IPv6 in this kernel: no tcp6/udp6 table.
            Err(e) if e.kind() == io::ErrorKind::NotFound && file.ends_with('6') => continue,
            Err(e) => return Err(format!("reading {path}: {e}")),
        };
        out.extend(parse_socket_table(&text, protocol));
    }
    Ok(out)
}

/// Parses `/proc/net/{tcp,tcp6,udp,udp6}`.
fn parse_socket_table(text: &str, protocol: &'static str) -> Vec<SocketEntry> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = parse_socket_address(fields.get(1)?)?;
            let remote = parse_socket_address(fields.get(2)?)?;
            let code = u8::from_str_radix(fields.get(3)?, 16).ok()?;
            let state = match (protocol, code) {
                ("udp", 7) => "UNCONN",
                (_, code) => tcp_state(code),
            };
            let connected = !(remote.ip().is_unspecified() && remote.port() == 0);
            Some(SocketEntry {
                protocol,
                state,
                local,
                remote: connected.then_some(remote),
            })
        })
        .collect()
}

fn tcp_state(code: u8) -> &'static str {
    match code {
        1 => "ESTAB",
        2 => "SYN-SENT",
        3 => "SYN-RECV",
        4 => "FIN-WAIT-1",
        5 => "FIN-WAIT-2",
        6 => "TIME-WAIT",
        7 => "CLOSE",
        8 => "CLOSE-WAIT",
        9 => "LAST-ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        _ => "UNKNOWN",
    }
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6); each 32-bit word is
/// printed by the kernel in host byte order.
fn parse_socket_address(text: &str) -> Option<SocketAddr> {
    let (address, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let mut bytes = Vec::with_capacity(16);
    for chunk in address.as_bytes().chunks(8) {
        let word = u32::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
        bytes.extend_from_slice(&word.to_ne_bytes());
    }
    let ip = match bytes.len() {
        4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

impl fmt::Display for LinkStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rx {} packets {} bytes ({} dropped) tx {} packets {} bytes ({} dropped)",
            self.rx_packets,
            self.rx_bytes,
            self.rx_dropped,
            self.tx_packets,
            self.tx_bytes,
            self.tx_dropped
        )
    }
}

impl fmt::Display for LinkEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} <{}>",
            self.index,
            self.name,
            self.flags.join(",")
        )?;
        if let Some(mtu) = self.mtu {
            write!(f, " mtu {mtu}")?;
        }
        if let Some(controller) = &self.controller {
            write!(f, " master {controller}")?;
        }
        write!(f, " state {}", self.state)?;
        if let Some(kind) = &self.kind {
            write!(f, " {kind}")?;
        }
        if let Some(peer) = &self.peer {
            write!(f, " peer {peer}")?;
        }
        if let Some(mac) = &self.mac {
            write!(f, " link/ether {mac}")?;
        }
        Ok(())
    }
}

impl fmt::Display for AddressEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let family = if self.address.addr.is_ipv4() {
            "inet"
        } else {
            "inet6"
        };
        write!(
            f,
            "{} {family} {} scope {}",
            self.interface, self.address, self.scope
        )
    }
}

impl fmt::Display for RouteEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(kind) = &self.kind {
            write!(f, "{kind} ")?;
        }
        match &self.destination {
            Some(destination) => write!(f, "{destination}")?,
            None => f.write_str("default")?,
        }
        if let Some(gateway) = &self.gateway {
            write!(f, " via {gateway}")?;
        }
        if let Some(interface) = &self.interface {
            write!(f, " dev {interface}")?;
        }
        if let Some(protocol) = &self.protocol {
            write!(f, " proto {protocol}")?;
        }
        if let Some(scope) = &self.scope {
            write!(f, " scope {scope}")?;
        }
        if let Some(source) = &self.source {
            write!(f, " src {source}")?;
        }
        if let Some(metric) = &self.metric {
            write!(f, " metric {metric}")?;
        }
        Ok(())
    }
}

impl fmt::Display for NeighbourEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} dev {}", self.address, self.interface)?;
        if let Some(mac) = &self.mac {
            write!(f, " lladdr {mac}")?;
        }
        write!(f, " {}", self.state)
    }
}

impl fmt::Display for SocketEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<5} {:<10} {}", self.protocol, self.state, self.local)?;
        if let Some(remote) = &self.remote {
            write!(f, " -> {remote}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Nftables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Nftables::Listed(text) if text.trim().is_empty() => f.write_str("(no rules)"),
            Nftables::Listed(text) => f.write_str(text.trim_end()),
            Nftables::NotInstalled { lab_firewall } => {
                f.write_str(
                    "nft is not installed (Debian package nftables): the ruleset and its \
                     counters cannot be listed",
                )?;
                if !lab_firewall.is_empty() {
                    write!(
                        f,
                        "\nthe firewall the lab installed (without counters):\n{}",
                        lab_firewall.trim_end()
                    )?;
                }
                Ok(())
            }
            Nftables::Failed(why) => f.write_str(why),
        }
    }
}

impl NodeState {
    /// The listening sockets (what `ss -ltnu` shows).
    ///
    /// ```no_run
    /// let lab = netns_fixture::Lab::builtin("pair").unwrap();
    /// let _server = lab.node("ns-2").serve_http(8080, netns_fixture::probes::http::Content::text("hi")).unwrap();
    /// assert!(lab.node("ns-2").state().listening().any(|s| s.local.port() == 8080));
    /// ```
    pub fn listening(&self) -> impl Iterator<Item = &SocketEntry> {
        self.sockets.iter().filter(|s| s.is_listening())
    }

    /// The sections of `Display`, as (title, lines), for reports.
    pub(crate) fn sections(&self) -> Vec<(&'static str, Vec<String>)> {
        fn lines<T: fmt::Display>(items: impl IntoIterator<Item = T>) -> Vec<String> {
            items.into_iter().map(|i| i.to_string()).collect()
        }
        let mut links = Vec::new();
        for link in &self.links {
            links.push(link.to_string());
            if let Some(stats) = &link.stats {
                links.push(format!("    {stats}"));
            }
        }
        let connections: Vec<&SocketEntry> =
            self.sockets.iter().filter(|s| !s.is_listening()).collect();
        let mut sections = vec![
            ("links (ip -s link)", links),
            ("addresses (ip addr)", lines(&self.addresses)),
            ("routes (ip route; ip -6 route)", lines(&self.routes)),
            ("neighbours (ip neigh)", lines(&self.neighbours)),
            ("listening sockets (ss -ltnu)", lines(self.listening())),
        ];
        if !connections.is_empty() {
            sections.push(("TCP connections (ss -tn)", lines(connections)));
        }
        sections.push((
            "sysctls",
            self.sysctls
                .iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect(),
        ));
        sections.push((
            "nftables (nft list ruleset)",
            self.nftables
                .to_string()
                .lines()
                .map(str::to_string)
                .collect(),
        ));
        if !self.problems.is_empty() {
            sections.push(("could not read", self.problems.clone()));
        }
        sections
    }
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "node {}", self.node)?;
        for (title, lines) in self.sections() {
            writeln!(f, "  {title}")?;
            if lines.is_empty() {
                writeln!(f, "    (none)")?;
            }
            for line in lines {
                writeln!(f, "    {line}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_net_tables() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0\n   1: 0200000A:A1B2 E900000A:1770 02 00000001:00000000 01:00000064 00000002     0        0 0 2 0000000000000000 100 0 0 10 0\n";
        let entries = parse_socket_table(tcp, "tcp");
        assert_eq!(entries[0].to_string(), "tcp   LISTEN     127.0.0.1:8080");
        assert_eq!(
            entries[1].to_string(),
            "tcp   SYN-SENT   10.0.0.2:41394 -> 10.0.0.233:6000"
        );
        let udp6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n  1: 00000000000000000000000000000000:0035 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 0\n  2: 000080FE00000000FF000000010000FE:0222 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 0\n";
        let entries = parse_socket_table(udp6, "udp");
        assert_eq!(entries[0].to_string(), "udp   UNCONN     [::]:53");
        assert!(entries[0].is_listening());
        assert_eq!(entries[1].local.to_string(), "[fe80::ff:fe00:1]:546");
    }

    #[test]
    fn route_lines_read_like_ip_route() {
        let route = RouteEntry {
            kind: None,
            destination: Some("10.0.0.0/24".parse().unwrap()),
            gateway: None,
            interface: Some("ens5".into()),
            protocol: Some("kernel".into()),
            scope: Some("link".into()),
            source: Some("10.0.0.233".parse().unwrap()),
            metric: None,
        };
        assert_eq!(
            route.to_string(),
            "10.0.0.0/24 dev ens5 proto kernel scope link src 10.0.0.233"
        );
        let unreachable = RouteEntry {
            kind: Some("unreachable".into()),
            destination: Some("10.9.0.0/16".parse().unwrap()),
            gateway: None,
            interface: None,
            protocol: None,
            scope: None,
            source: None,
            metric: Some(10),
        };
        assert_eq!(unreachable.to_string(), "unreachable 10.9.0.0/16 metric 10");
    }
}
