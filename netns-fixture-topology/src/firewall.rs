//! What a router does to forwarded traffic: the forward policy with its explicit
//! accepts, port forwards (DNAT) and masquerade, in the topology's own terms.
//!
//! The library turns a [`Firewall`] into one nf_tables table (`netns_fixture`) in the
//! node's namespace, over netlink.

use crate::IpNet;
use std::fmt;
use std::net::SocketAddr;

/// A transport protocol that rules can match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// TCP (IP protocol 6).
    Tcp,
    /// UDP (IP protocol 17).
    Udp,
}

impl Protocol {
    /// The IP protocol number.
    ///
    /// ```
    /// assert_eq!(netns_fixture_topology::Protocol::Udp.number(), 17);
    /// ```
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// What happens to a forwarded packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Verdict {
    /// Let it through.
    #[default]
    Accept,
    /// Silently discard it (the sender sees a timeout).
    Drop,
}

/// A match on an interface name, positive or negated (`! -o br0`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InterfaceMatch {
    /// The interface is this one.
    Is(String),
    /// The interface is anything but this one.
    IsNot(String),
}

impl InterfaceMatch {
    /// The interface name the match refers to.
    ///
    /// ```
    /// use netns_fixture_topology::InterfaceMatch;
    /// assert_eq!(InterfaceMatch::IsNot("br0".into()).name(), "br0");
    /// ```
    pub fn name(&self) -> &str {
        match self {
            InterfaceMatch::Is(n) | InterfaceMatch::IsNot(n) => n,
        }
    }
}

/// Connection-tracking states a forward rule can require (`-m state --state ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CtStates {
    /// The first packet of a connection.
    pub new: bool,
    /// Packets of a connection that has seen traffic both ways.
    pub established: bool,
    /// Packets related to a known connection (ICMP errors, FTP data, ...).
    pub related: bool,
}

impl CtStates {
    /// `NEW,ESTABLISHED,RELATED`, as in write-up 003.
    pub const NEW_ESTABLISHED_RELATED: CtStates = CtStates {
        new: true,
        established: true,
        related: true,
    };
    /// `ESTABLISHED,RELATED`: the usual "let replies back in" rule.
    pub const ESTABLISHED_RELATED: CtStates = CtStates {
        new: false,
        established: true,
        related: true,
    };
}

/// One rule of the forward chain. Unset fields match anything.
///
/// ```
/// use netns_fixture_topology::{ForwardRule, Protocol, Verdict};
/// let rule = ForwardRule::accept().in_interface("ens5").out_interface("veth0");
/// assert_eq!(rule.verdict, Verdict::Accept);
/// let rule = ForwardRule::accept().protocol(Protocol::Tcp).destination_port(8080);
/// assert_eq!(rule.destination_port, Some(8080));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ForwardRule {
    /// `-i`: the interface the packet came in on.
    pub in_interface: Option<InterfaceMatch>,
    /// `-o`: the interface the packet leaves on.
    pub out_interface: Option<InterfaceMatch>,
    /// `-s`: the source address or network.
    pub source: Option<IpNet>,
    /// `-d`: the destination address or network.
    pub destination: Option<IpNet>,
    /// `-p`: the transport protocol (needed for a port match).
    pub protocol: Option<Protocol>,
    /// `--dport`: the destination port.
    pub destination_port: Option<u16>,
    /// `-m state --state`: the connection-tracking states.
    pub ct_states: Option<CtStates>,
    /// What to do with a matching packet.
    pub verdict: Verdict,
}

impl ForwardRule {
    /// A rule that accepts what it matches.
    pub fn accept() -> Self {
        ForwardRule::default()
    }
    /// A rule that drops what it matches.
    pub fn drop() -> Self {
        ForwardRule {
            verdict: Verdict::Drop,
            ..ForwardRule::default()
        }
    }
    /// Match packets that came in on `name`.
    pub fn in_interface(mut self, name: &str) -> Self {
        self.in_interface = Some(InterfaceMatch::Is(name.into()));
        self
    }
    /// Match packets that leave on `name`.
    pub fn out_interface(mut self, name: &str) -> Self {
        self.out_interface = Some(InterfaceMatch::Is(name.into()));
        self
    }
    /// Match packets from `net`.
    pub fn source(mut self, net: IpNet) -> Self {
        self.source = Some(net);
        self
    }
    /// Match packets to `net`.
    pub fn destination(mut self, net: IpNet) -> Self {
        self.destination = Some(net);
        self
    }
    /// Match a transport protocol.
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = Some(protocol);
        self
    }
    /// Match a destination port (set [`ForwardRule::protocol`] too).
    pub fn destination_port(mut self, port: u16) -> Self {
        self.destination_port = Some(port);
        self
    }
    /// Match connection-tracking states.
    pub fn ct_states(mut self, states: CtStates) -> Self {
        self.ct_states = Some(states);
        self
    }
}

/// A port forward: traffic to `port` on this node is sent on to `to` (DNAT).
///
/// ```
/// use netns_fixture_topology::{PortForward, Protocol};
/// let fwd = PortForward::new(Protocol::Tcp, 6000, "192.168.0.2:8080".parse().unwrap())
///     .in_interface("ens5");
/// assert_eq!(fwd.to.port(), 8080);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortForward {
    /// The protocol forwarded.
    pub protocol: Protocol,
    /// Only traffic that arrives on this interface (`-i ens5`), if set.
    pub in_interface: Option<String>,
    /// The port clients connect to.
    pub port: u16,
    /// Where the traffic goes.
    pub to: SocketAddr,
}

impl PortForward {
    /// Forward `protocol` traffic for `port` to `to`.
    pub fn new(protocol: Protocol, port: u16, to: SocketAddr) -> Self {
        PortForward {
            protocol,
            in_interface: None,
            port,
            to,
        }
    }
    /// Only forward traffic that arrives on `name`.
    pub fn in_interface(mut self, name: &str) -> Self {
        self.in_interface = Some(name.into());
        self
    }
}

/// Source NAT to the outgoing interface's address (`-j MASQUERADE`).
///
/// ```
/// use netns_fixture_topology::{InterfaceMatch, Masquerade};
/// let m = Masquerade::from_network("192.168.0.0/24".parse().unwrap())
///     .out_interface_not("br0");
/// assert_eq!(m.out_interface, Some(InterfaceMatch::IsNot("br0".into())));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Masquerade {
    /// Only packets from this network (`-s`), if set.
    pub source: Option<IpNet>,
    /// Only packets leaving on (or not on) this interface (`-o` / `! -o`), if set.
    pub out_interface: Option<InterfaceMatch>,
}

impl Masquerade {
    /// Masquerade everything leaving this node.
    pub fn all() -> Self {
        Masquerade::default()
    }
    /// Masquerade packets from `source`.
    pub fn from_network(source: IpNet) -> Self {
        Masquerade {
            source: Some(source.network()),
            out_interface: None,
        }
    }
    /// Only packets leaving on `name`.
    pub fn out_interface(mut self, name: &str) -> Self {
        self.out_interface = Some(InterfaceMatch::Is(name.into()));
        self
    }
    /// Only packets not leaving on `name`.
    pub fn out_interface_not(mut self, name: &str) -> Self {
        self.out_interface = Some(InterfaceMatch::IsNot(name.into()));
        self
    }
}

/// A node's NAT and forwarding rules.
///
/// ```
/// use netns_fixture_topology::{Firewall, ForwardRule, Masquerade, Verdict};
/// let fw = Firewall::default()
///     .forward_policy(Verdict::Drop)
///     .forward(ForwardRule::accept().in_interface("ens5").out_interface("veth0"))
///     .masquerade(Masquerade::from_network("192.168.0.0/24".parse().unwrap()).out_interface("ens5"));
/// assert_eq!(fw.forward_rules.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Firewall {
    /// The forward chain's policy: what happens to forwarded packets no rule accepts.
    pub forward_policy: Verdict,
    /// The forward chain's rules, in order.
    pub forward_rules: Vec<ForwardRule>,
    /// Port forwards (DNAT in prerouting).
    pub port_forwards: Vec<PortForward>,
    /// Masquerade rules (in postrouting).
    pub masquerades: Vec<Masquerade>,
}

impl Firewall {
    /// Sets the forward policy.
    pub fn forward_policy(mut self, verdict: Verdict) -> Self {
        self.forward_policy = verdict;
        self
    }
    /// Appends a forward rule.
    pub fn forward(mut self, rule: ForwardRule) -> Self {
        self.forward_rules.push(rule);
        self
    }
    /// Appends a port forward.
    pub fn port_forward(mut self, forward: PortForward) -> Self {
        self.port_forwards.push(forward);
        self
    }
    /// Appends a masquerade rule.
    pub fn masquerade(mut self, masquerade: Masquerade) -> Self {
        self.masquerades.push(masquerade);
        self
    }
    /// Every interface name the rules mention, for validation.
    pub fn interface_names(&self) -> impl Iterator<Item = &str> {
        let forward = self
            .forward_rules
            .iter()
            .flat_map(|r| [r.in_interface.as_ref(), r.out_interface.as_ref()])
            .flatten()
            .map(InterfaceMatch::name);
        let dnat = self
            .port_forwards
            .iter()
            .filter_map(|p| p.in_interface.as_deref());
        let masq = self
            .masquerades
            .iter()
            .filter_map(|m| m.out_interface.as_ref().map(InterfaceMatch::name));
        forward.chain(dnat).chain(masq)
    }
}
