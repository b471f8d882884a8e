//! Describing a topology in Rust, and checking it before anything is created.

use crate::pool::Pools;
use crate::spec::{BridgeSpec, EndpointSpec, LinkSpec, NodeSpec, RouteSpec, Topology};
use crate::{sysctl_path, Firewall, IpNet};
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Linux limits interface names to 15 bytes (IFNAMSIZ minus the NUL).
pub const MAX_INTERFACE_NAME: usize = 15;

/// Why a topology is invalid. Every variant names the node, interface or value at
/// fault, so the message alone tells the user what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopologyError {
    /// The topology has no node.
    NoNodes {
        /// The topology.
        topology: String,
    },
    /// Two nodes share a name.
    DuplicateNode {
        /// The name used twice.
        node: String,
    },
    /// A node or interface name is empty or has characters Linux refuses.
    BadName {
        /// What kind of name ("node", "interface").
        kind: &'static str,
        /// The name.
        name: String,
        /// What is wrong.
        why: String,
    },
    /// A node's sysctl key is not a per-namespace network key (see [`sysctl_path`]).
    BadSysctl {
        /// The node.
        node: String,
        /// What is wrong with the key.
        why: String,
    },
    /// An interface name is over 15 bytes.
    InterfaceNameTooLong {
        /// The node.
        node: String,
        /// The name.
        interface: String,
    },
    /// Two interfaces of one node share a name.
    DuplicateInterface {
        /// The node.
        node: String,
        /// The name used twice.
        interface: String,
    },
    /// A link, route or setting refers to a node the topology does not have.
    UnknownNode {
        /// What refers to it.
        context: String,
        /// The missing node.
        node: String,
        /// The nodes that exist.
        known: Vec<String>,
    },
    /// An endpoint names a bridge its node does not have.
    UnknownBridge {
        /// The node.
        node: String,
        /// The missing bridge.
        bridge: String,
    },
    /// A firewall rule names an interface its node does not have.
    UnknownInterface {
        /// The node.
        node: String,
        /// The missing interface.
        interface: String,
        /// The interfaces the node has.
        known: Vec<String>,
    },
    /// An address or prefix did not parse, or the prefix is out of range.
    BadAddress {
        /// Where it was given.
        context: String,
        /// The text given.
        value: String,
        /// What is wrong.
        why: String,
    },
    /// The same address is configured twice in the lab.
    DuplicateAddress {
        /// The address.
        address: IpAddr,
        /// Its first place (`node/interface`).
        first: String,
        /// Its second place.
        second: String,
    },
    /// An address pool has no free subnet left for a segment that needs one
    /// (see [`TopologyBuilder::ipv4_pool`]).
    PoolExhausted {
        /// The pool, as given.
        pool: IpNet,
        /// The size of subnet the segment needed (`/30`, `/24`, `/64`).
        prefix: u8,
        /// The segment that needed it: `link 3 (a/eth0 <-> b/eth0)` or
        /// ``bridge `br0` of node `r` ``.
        segment: String,
        /// How many subnets the pool had handed out before.
        handed_out: usize,
    },
    /// A segment that already has an address of a pooled family is numbered from
    /// that address's subnet, and the subnet has no free address left.
    SubnetFull {
        /// The explicit address whose subnet is full.
        subnet: IpNet,
        /// The interface left without an address (`node/interface`).
        interface: String,
        /// The segment: `link 3 (a/eth0 <-> b/eth0)` or ``bridge `br0` of node `r` ``.
        segment: String,
    },
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopologyError::NoNodes { topology } => {
                write!(f, "topology `{topology}` has no nodes")
            }
            TopologyError::DuplicateNode { node } => {
                write!(f, "duplicate node `{node}`: node names must be unique")
            }
            TopologyError::BadName { kind, name, why } => {
                write!(f, "invalid {kind} name `{}`: {why}", name.escape_debug())
            }
            TopologyError::BadSysctl { node, why } => write!(f, "node `{node}`: {why}"),
            TopologyError::InterfaceNameTooLong { node, interface } => write!(
                f,
                "interface name `{interface}` on node `{node}` is {} bytes; Linux allows at most {MAX_INTERFACE_NAME}",
                interface.len()
            ),
            TopologyError::DuplicateInterface { node, interface } => {
                write!(f, "node `{node}` has two interfaces called `{interface}`")
            }
            TopologyError::UnknownNode {
                context,
                node,
                known,
            } => write!(
                f,
                "{context} refers to unknown node `{node}` (nodes are: {})",
                known.join(", ")
            ),
            TopologyError::UnknownBridge { node, bridge } => {
                write!(f, "node `{node}` has no bridge `{bridge}` to attach a port to")
            }
            TopologyError::UnknownInterface {
                node,
                interface,
                known,
            } => write!(
                f,
                "a firewall rule on node `{node}` names interface `{interface}`, which the node does not have (it has: {})",
                known.join(", ")
            ),
            TopologyError::BadAddress {
                context,
                value,
                why,
            } => write!(f, "bad address `{value}` for {context}: {why}"),
            TopologyError::DuplicateAddress {
                address,
                first,
                second,
            } => write!(
                f,
                "duplicate address {address}: on {first} and again on {second}"
            ),
            TopologyError::PoolExhausted {
                pool,
                prefix,
                segment,
                handed_out,
            } => write!(
                f,
                "address pool {pool} is exhausted: no free /{prefix} left for {segment} ({handed_out} subnet{} handed out; subnets overlapping explicit addresses are skipped)",
                if *handed_out == 1 { "" } else { "s" }
            ),
            TopologyError::SubnetFull {
                subnet,
                interface,
                segment,
            } => write!(
                f,
                "no free address left in {subnet} for {interface}: {segment} has addresses there already, so its other interfaces are numbered from that subnet instead of the pool"
            ),
        }
    }
}

impl std::error::Error for TopologyError {}

/// Describes a topology step by step; [`TopologyBuilder::build`] checks it.
///
/// ```
/// use netns_fixture_topology::{Topology, TopologyError};
/// let err = Topology::builder("typo")
///     .node("a", |n| n)
///     .link(("a", "eth0", "10.0.0.1/24"), ("b", "eth0", "10.0.0.2/24"))
///     .build()
///     .unwrap_err();
/// assert!(matches!(err, TopologyError::UnknownNode { .. }));
/// assert!(err.to_string().contains("unknown node `b`"));
/// ```
#[derive(Debug, Clone)]
pub struct TopologyBuilder {
    name: String,
    nodes: Vec<NodeBuilder>,
    links: Vec<LinkSpec>,
    default_node: Option<String>,
    ipv4_pool: Option<String>,
    ipv6_pool: Option<String>,
}

impl TopologyBuilder {
    /// A new, empty topology called `name`.
    pub fn new(name: &str) -> Self {
        TopologyBuilder {
            name: name.into(),
            nodes: Vec::new(),
            links: Vec::new(),
            default_node: None,
            ipv4_pool: None,
            ipv6_pool: None,
        }
    }

    /// Adds a node; `configure` sets its routes, bridges, forwarding and firewall.
    ///
    /// ```
    /// use netns_fixture_topology::Topology;
    /// let t = Topology::builder("t")
    ///     .node("router", |n| n.forwarding())
    ///     .node("pc", |n| n.default_route("10.0.0.1"))
    ///     .link(("router", "eth0", "10.0.0.1/24"), ("pc", "eth0", "10.0.0.2/24"))
    ///     .build()
    ///     .unwrap();
    /// assert!(t.node("router").unwrap().forwarding);
    /// ```
    pub fn node(mut self, name: &str, configure: impl FnOnce(NodeBuilder) -> NodeBuilder) -> Self {
        self.nodes.push(configure(NodeBuilder::new(name)));
        self
    }

    pub(crate) fn push_node(mut self, node: NodeBuilder) -> Self {
        self.nodes.push(node);
        self
    }

    /// Joins two endpoints with a veth pair.
    pub fn link(mut self, a: impl Into<EndpointSpec>, b: impl Into<EndpointSpec>) -> Self {
        self.links.push(LinkSpec {
            a: a.into(),
            b: b.into(),
        });
        self
    }

    /// The node test bodies run in unless they name another (default: the first node).
    pub fn default_node(mut self, name: &str) -> Self {
        self.default_node = Some(name.into());
        self
    }

    /// Numbers every interface that has no IPv4 address from `pool`
    /// (`"10.99.0.0/16"`), when the topology is built.
    ///
    /// The lab is cut into segments: a veth link between two addressed ends, or a
    /// bridge with every end attached to its ports. Segments take subnets in
    /// the order of the first link that touches them (bridges no link touches
    /// last): a /30 for a point-to-point link, a /24 for a bridged segment (more if
    /// over 253 interfaces need an address), in increasing order, skipping
    /// every subnet that overlaps the network of an explicit address anywhere in
    /// the topology. In a subnet, bridges come first (`.1`: the bridge is the
    /// gateway), then the link ends in link order (`a` before `b`). A segment
    /// that already has an IPv4 address is completed from that address's subnet
    /// instead. Bridge ports never get an address. A pool without room is a
    /// [`TopologyError::PoolExhausted`] naming it.
    ///
    /// ```
    /// use netns_fixture_topology::{EndpointSpec, Topology};
    /// let t = Topology::builder("pooled")
    ///     .ipv4_pool("10.99.0.0/16")
    ///     .node("router", |n| n.forwarding().bridge("br0", &[]))
    ///     .node("pc", |n| n.default_route("10.99.1.1"))
    ///     .node("isp", |n| n)
    ///     .link(("router", "wan"), ("isp", "eth0"))
    ///     .link(("pc", "eth0"), EndpointSpec::new("router", "pc-port").bridge("br0"))
    ///     .build()
    ///     .unwrap();
    /// let first = |node: &str, interface: &str| {
    ///     let ifaces = t.interfaces_of(node);
    ///     let (_, nets) = ifaces.iter().find(|(i, _)| *i == interface).unwrap();
    ///     nets[0].to_string()
    /// };
    /// assert_eq!(first("router", "wan"), "10.99.0.1/30");
    /// assert_eq!(first("isp", "eth0"), "10.99.0.2/30");
    /// assert_eq!(first("router", "br0"), "10.99.1.1/24");
    /// assert_eq!(first("pc", "eth0"), "10.99.1.2/24");
    /// ```
    pub fn ipv4_pool(mut self, pool: &str) -> Self {
        self.ipv4_pool = Some(pool.into());
        self
    }

    /// Numbers every interface that has no IPv6 address from `pool`
    /// (`"fd00:99::/48"`), when the topology is built: one /64 per segment,
    /// by the rules of [`TopologyBuilder::ipv4_pool`].
    ///
    /// ```
    /// use netns_fixture_topology::Topology;
    /// let t = Topology::builder("pooled")
    ///     .ipv6_pool("fd00:99::/48")
    ///     .node("a", |n| n)
    ///     .node("b", |n| n)
    ///     .link(("a", "eth0", "10.0.0.1/24"), ("b", "eth0", "10.0.0.2/24"))
    ///     .link(("a", "eth1"), ("b", "eth1"))
    ///     .build()
    ///     .unwrap();
    /// let b: Vec<String> = t.interfaces_of("b").iter()
    ///     .map(|(i, nets)| format!("{i} {}", nets.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(" ")))
    ///     .collect();
    /// assert_eq!(b, ["eth0 10.0.0.2/24 fd00:99::2/64", "eth1 fd00:99:0:1::2/64"]);
    /// ```
    pub fn ipv6_pool(mut self, pool: &str) -> Self {
        self.ipv6_pool = Some(pool.into());
        self
    }

    /// Checks the description and returns the topology, or the first problem found.
    pub fn build(self) -> Result<Topology, TopologyError> {
        let pools = Pools {
            ipv4: parse_pool(self.ipv4_pool.as_deref(), true)?,
            ipv6: parse_pool(self.ipv6_pool.as_deref(), false)?,
        };
        let mut nodes = Vec::with_capacity(self.nodes.len());
        for node in self.nodes {
            if let Some((context, value, why)) = node.errors.into_iter().next() {
                return Err(TopologyError::BadAddress {
                    context: format!("{context} of node `{}`", node.spec.name),
                    value,
                    why,
                });
            }
            nodes.push(node.spec);
        }
        let default_node = match self.default_node {
            Some(name) => name,
            None => {
                nodes
                    .first()
                    .map(|n| n.name.clone())
                    .ok_or_else(|| TopologyError::NoNodes {
                        topology: self.name.clone(),
                    })?
            }
        };
        let mut topology = Topology {
            name: self.name,
            nodes,
            links: self.links,
            default_node,
        };
        validate(&topology)?;
        if !pools.is_empty() {
            crate::pool::assign(&mut topology, &pools)?;
            validate(&topology)?;
        }
        Ok(topology)
    }
}

/// The pool of one family, checked.
fn parse_pool(pool: Option<&str>, v4: bool) -> Result<Option<IpNet>, TopologyError> {
    let Some(text) = pool else {
        return Ok(None);
    };
    let bad = |why: String| TopologyError::BadAddress {
        context: format!("the IPv{} pool", if v4 { 4 } else { 6 }),
        value: text.into(),
        why,
    };
    let net: IpNet = text.parse().map_err(bad)?;
    if net.addr.is_ipv4() != v4 {
        return Err(bad(format!(
            "it is an IPv{} network",
            if v4 { 6 } else { 4 }
        )));
    }
    // A pool's subnets are handed out from its start: one holding the unspecified
    // or the loopback address would number an interface `::1` or `0.0.0.1`.
    let special: [IpAddr; 2] = if v4 {
        [Ipv4Addr::UNSPECIFIED.into(), Ipv4Addr::LOCALHOST.into()]
    } else {
        [Ipv6Addr::UNSPECIFIED.into(), Ipv6Addr::LOCALHOST.into()]
    };
    if let Some(addr) = special.iter().find(|a| net.network().contains(**a)) {
        return Err(bad(format!(
            "it holds the special address {addr}; use a private range such as {}",
            if v4 { "10.99.0.0/16" } else { "fd00:99::/48" }
        )));
    }
    Ok(Some(net))
}

/// Describes one node; handed to the closure of [`TopologyBuilder::node`].
#[derive(Debug, Clone)]
pub struct NodeBuilder {
    spec: NodeSpec,
    errors: Vec<(String, String, String)>,
}

impl NodeBuilder {
    pub(crate) fn new(name: &str) -> Self {
        NodeBuilder {
            spec: NodeSpec {
                name: name.into(),
                forwarding: false,
                bridges: Vec::new(),
                routes: Vec::new(),
                sysctls: Vec::new(),
                bridge_netfilter: false,
                firewall: None,
            },
            errors: Vec::new(),
        }
    }

    fn parse<T: std::str::FromStr<Err = String>>(
        &mut self,
        context: &str,
        value: &str,
    ) -> Option<T> {
        match value.parse() {
            Ok(v) => Some(v),
            Err(why) => {
                self.errors.push((context.into(), value.into(), why));
                None
            }
        }
    }

    /// Turns on IP forwarding (IPv4 and IPv6): the node is a router.
    pub fn forwarding(mut self) -> Self {
        self.spec.forwarding = true;
        self
    }

    /// Passes frames that cross this node's bridges through its IP firewall
    /// (iptables, ip6tables and arptables hooks), as a Docker host with
    /// `br_netfilter` does. By default bridged frames skip it in every lab
    /// namespace, whatever the machine has loaded. Building fails with a clear
    /// error where the kernel lacks `br_netfilter`.
    ///
    /// ```
    /// use netns_fixture_topology::Topology;
    /// let t = Topology::builder("docker-like")
    ///     .node("host", |n| n.forwarding().bridge("br0", &["10.0.0.1/24"]).bridge_netfilter())
    ///     .build()
    ///     .unwrap();
    /// assert!(t.node("host").unwrap().bridge_netfilter);
    /// ```
    pub fn bridge_netfilter(mut self) -> Self {
        self.spec.bridge_netfilter = true;
        self
    }

    /// Adds a bridge (switch) called `name` with the given addresses.
    pub fn bridge(mut self, name: &str, addresses: &[&str]) -> Self {
        let addresses = addresses
            .iter()
            .filter_map(|a| self.parse::<IpNet>(&format!("bridge `{name}`"), a))
            .collect();
        self.spec.bridges.push(BridgeSpec {
            name: name.into(),
            addresses,
        });
        self
    }

    /// Adds a route to `destination` (`"10.1.0.0/16"`) via `gateway`.
    pub fn route(mut self, destination: &str, gateway: &str) -> Self {
        let destination = self.parse::<IpNet>("a route destination", destination);
        let gateway = self.parse::<ParsedIp>("a route gateway", gateway);
        if let (Some(destination), Some(ParsedIp(gateway))) = (destination, gateway) {
            self.spec.routes.push(RouteSpec {
                destination: destination.network(),
                gateway,
            });
        }
        self
    }

    /// Adds a default route via `gateway` (IPv4 or IPv6, by the gateway's family).
    pub fn default_route(self, gateway: &str) -> Self {
        let any = if gateway.contains(':') {
            "::/0"
        } else {
            "0.0.0.0/0"
        };
        self.route(any, gateway)
    }

    /// Sets `/proc/sys/<key>` (e.g. `"net/ipv4/tcp_syncookies"`) in the node.
    pub fn sysctl(mut self, key: &str, value: &str) -> Self {
        self.spec.sysctls.push((key.into(), value.into()));
        self
    }

    /// Gives the node NAT and forwarding rules.
    pub fn firewall(mut self, firewall: Firewall) -> Self {
        self.spec.firewall = Some(firewall);
        self
    }
}

/// An IP address whose parse error is a sentence, like [`IpNet`]'s.
struct ParsedIp(IpAddr);

impl std::str::FromStr for ParsedIp {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.parse()
            .map(ParsedIp)
            .map_err(|_| format!("`{s}` is not an IP address"))
    }
}

fn check_name(kind: &'static str, name: &str) -> Result<(), TopologyError> {
    let why = if name.is_empty() {
        Some("it is empty".to_string())
    } else if let Some(c) = name
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || *c == '/' || *c == ':')
    {
        Some(format!("it contains {c:?}"))
    } else if kind == "interface" && name.contains('%') {
        // The kernel reads `%d` in a new link's name as "the next free number".
        Some("it contains '%', which the kernel reads as a number template".to_string())
    } else if name == "." || name == ".." {
        Some("it is a path component".to_string())
    } else {
        None
    };
    match why {
        Some(why) => Err(TopologyError::BadName {
            kind,
            name: name.into(),
            why,
        }),
        None => Ok(()),
    }
}

fn validate(topology: &Topology) -> Result<(), TopologyError> {
    let known: Vec<String> = topology.nodes.iter().map(|n| n.name.clone()).collect();
    let unknown = |context: String, node: &str| TopologyError::UnknownNode {
        context,
        node: node.into(),
        known: known.clone(),
    };

    let mut seen_nodes = Vec::new();
    for node in &topology.nodes {
        check_name("node", &node.name)?;
        if seen_nodes.contains(&&node.name) {
            return Err(TopologyError::DuplicateNode {
                node: node.name.clone(),
            });
        }
        seen_nodes.push(&node.name);
        for (key, _) in &node.sysctls {
            sysctl_path(key).map_err(|why| TopologyError::BadSysctl {
                node: node.name.clone(),
                why,
            })?;
        }
    }
    if !known.contains(&topology.default_node) {
        return Err(unknown("the default node".into(), &topology.default_node));
    }

    for (i, link) in topology.links.iter().enumerate() {
        for end in [&link.a, &link.b] {
            let context = format!(
                "link {} ({}/{} <-> {}/{})",
                i + 1,
                link.a.node,
                link.a.interface,
                link.b.node,
                link.b.interface
            );
            if !known.contains(&end.node) {
                return Err(unknown(context, &end.node));
            }
            if let Some((value, why)) = end.bad_addresses.first() {
                return Err(TopologyError::BadAddress {
                    context: format!("interface `{}` of node `{}`", end.interface, end.node),
                    value: value.clone(),
                    why: why.clone(),
                });
            }
            if let Some(bridge) = &end.bridge {
                let node = topology.node(&end.node).expect("checked above");
                if !node.bridges.iter().any(|b| &b.name == bridge) {
                    return Err(TopologyError::UnknownBridge {
                        node: end.node.clone(),
                        bridge: bridge.clone(),
                    });
                }
            }
        }
    }

    let mut addresses: HashMap<IpAddr, String> = HashMap::new();
    for node in &topology.nodes {
        let interfaces = topology.interfaces_of(&node.name);
        let mut names: Vec<&str> = vec!["lo"];
        for (interface, nets) in &interfaces {
            check_name("interface", interface)?;
            if interface.len() > MAX_INTERFACE_NAME {
                return Err(TopologyError::InterfaceNameTooLong {
                    node: node.name.clone(),
                    interface: interface.to_string(),
                });
            }
            if names.contains(interface) {
                return Err(TopologyError::DuplicateInterface {
                    node: node.name.clone(),
                    interface: interface.to_string(),
                });
            }
            names.push(interface);
            for net in nets.iter() {
                let place = format!("{}/{}", node.name, interface);
                if let Some(first) = addresses.insert(net.addr, place.clone()) {
                    return Err(TopologyError::DuplicateAddress {
                        address: net.addr,
                        first,
                        second: place,
                    });
                }
            }
        }
        if let Some(firewall) = &node.firewall {
            for interface in firewall.interface_names() {
                if !names.contains(&interface) {
                    return Err(TopologyError::UnknownInterface {
                        node: node.name.clone(),
                        interface: interface.into(),
                        known: names.iter().map(|s| s.to_string()).collect(),
                    });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Topology;

    fn two() -> TopologyBuilder {
        Topology::builder("t").node("a", |n| n).node("b", |n| n)
    }

    fn err(builder: TopologyBuilder) -> String {
        builder.build().unwrap_err().to_string()
    }

    #[test]
    fn rejects_names_the_kernel_reads_differently() {
        let bad_interface = |name: &str| err(two().link(("a", name), ("b", "eth0")));
        assert_eq!(
            bad_interface("eth\0x"),
            "invalid interface name `eth\\0x`: it contains '\\0'"
        );
        assert_eq!(
            bad_interface("x%d"),
            "invalid interface name `x%d`: it contains '%', which the kernel reads as a number template"
        );
        assert_eq!(
            err(two().node("c\0d", |n| n)),
            "invalid node name `c\\0d`: it contains '\\0'"
        );
        for prefix in ["+24", "024", "-1", " 24"] {
            let address = format!("10.0.0.1/{prefix}");
            assert_eq!(
                err(two().link(("a", "eth0", address.as_str()), ("b", "eth0"))),
                format!("bad address `{address}` for interface `eth0` of node `a`: `/{prefix}` in `{address}` is not a prefix length (write it in plain digits, like `/24`)")
            );
        }
    }

    #[test]
    fn rejects_pools_that_hold_special_addresses() {
        let pool_err = |b: TopologyBuilder| b.node("a", |n| n).build().unwrap_err().to_string();
        assert_eq!(
            pool_err(Topology::builder("t").ipv6_pool("::/0")),
            "bad address `::/0` for the IPv6 pool: it holds the special address ::; use a private range such as fd00:99::/48"
        );
        assert!(pool_err(Topology::builder("t").ipv4_pool("127.0.0.0/16"))
            .contains("special address 127.0.0.1"));
        assert!(pool_err(Topology::builder("t").ipv4_pool("0.0.0.0/0")).contains("0.0.0.0"));
    }

    #[test]
    fn rejects_sysctl_keys_outside_the_namespace() {
        assert_eq!(
            err(two().node("c", |n| n.sysctl("../../tmp/x", "1"))),
            "node `c`: sysctl key `../../tmp/x`: it has a path part `..`; a key names one file below /proc/sys/net"
        );
        assert!(err(two().node("c", |n| n.sysctl("kernel/hostname", "x"))).contains("machine-wide"));
        assert!(two()
            .node("c", |n| n.sysctl("net.ipv4.tcp_syncookies", "0"))
            .build()
            .is_ok());
    }

    #[test]
    fn rejects_each_kind_of_mistake() {
        assert_eq!(
            err(two().node("a", |n| n)),
            "duplicate node `a`: node names must be unique"
        );
        assert_eq!(
            err(two().link(("a", "eth0"), ("c", "eth0"))),
            "link 1 (a/eth0 <-> c/eth0) refers to unknown node `c` (nodes are: a, b)"
        );
        assert_eq!(
            err(two().link(("a", "this-name-is-too-long"), ("b", "eth0"))),
            "interface name `this-name-is-too-long` on node `a` is 21 bytes; Linux allows at most 15"
        );
        assert_eq!(
            err(two().link(("a", "eth0", "10.0.0.1/24"), ("b", "eth0", "10.0.0.1/24"))),
            "duplicate address 10.0.0.1: on a/eth0 and again on b/eth0"
        );
        assert_eq!(
            err(two().link(("a", "eth0", "10.0.0.1/40"), ("b", "eth0"))),
            "bad address `10.0.0.1/40` for interface `eth0` of node `a`: prefix length /40 is too long for 10.0.0.1 (at most /32)"
        );
        assert_eq!(
            err(two()
                .link(("a", "eth0"), ("b", "eth0"))
                .link(("a", "eth0"), ("b", "eth1"))),
            "node `a` has two interfaces called `eth0`"
        );
        assert_eq!(
            err(two().link(("a", "lo"), ("b", "eth0"))),
            "node `a` has two interfaces called `lo`"
        );
        assert_eq!(
            err(two().default_node("z")),
            "the default node refers to unknown node `z` (nodes are: a, b)"
        );
        assert_eq!(
            err(two().node("c", |n| n.default_route("10.0.0.300"))),
            "bad address `10.0.0.300` for a route gateway of node `c`: `10.0.0.300` is not an IP address"
        );
        assert_eq!(
            err(two().link(EndpointSpec::new("a", "p0").bridge("br0"), ("b", "eth0"))),
            "node `a` has no bridge `br0` to attach a port to"
        );
        assert_eq!(
            err(Topology::builder("t").node("bad name", |n| n)),
            "invalid node name `bad name`: it contains ' '"
        );
        assert_eq!(
            err(Topology::builder("empty")),
            "topology `empty` has no nodes"
        );
    }

    #[test]
    fn firewall_interfaces_must_exist() {
        use crate::{Firewall, Masquerade};
        let e = err(two()
            .node("r", |n| {
                n.firewall(Firewall::default().masquerade(Masquerade::all().out_interface("wan0")))
            })
            .link(("r", "eth0"), ("a", "eth0")));
        assert_eq!(
            e,
            "a firewall rule on node `r` names interface `wan0`, which the node does not have (it has: lo, eth0)"
        );
    }
}
