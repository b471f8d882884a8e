//! The topology model: nodes (network namespaces), their bridges, the veth links
//! between them, addresses, routes, sysctls and firewalls.

use crate::{Firewall, IpNet};
use std::net::IpAddr;

/// A validated lab description. Build one with [`Topology::builder`], or take a
/// built-in from [`crate::builtin`].
///
/// ```
/// use netns_fixture_topology::Topology;
/// let topology = Topology::builder("pair")
///     .node("a", |n| n)
///     .node("b", |n| n)
///     .link(("a", "eth0", "10.0.0.1/24"), ("b", "eth0", "10.0.0.2/24"))
///     .build()
///     .unwrap();
/// assert_eq!(topology.default_node(), "a");
/// assert_eq!(topology.nodes().len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub(crate) name: String,
    pub(crate) nodes: Vec<NodeSpec>,
    pub(crate) links: Vec<LinkSpec>,
    pub(crate) default_node: String,
}

impl Topology {
    /// Starts describing a topology called `name`.
    pub fn builder(name: &str) -> crate::TopologyBuilder {
        crate::TopologyBuilder::new(name)
    }
    /// The topology's name (a built-in's name, or the one given to the builder).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The nodes, in the order they were declared (and are created).
    pub fn nodes(&self) -> &[NodeSpec] {
        &self.nodes
    }
    /// The veth links, in declaration order.
    pub fn links(&self) -> &[LinkSpec] {
        &self.links
    }
    /// The node a test body runs in when the test names none.
    pub fn default_node(&self) -> &str {
        &self.default_node
    }
    /// The node called `name`, if any.
    ///
    /// ```
    /// let lab = netns_fixture_topology::builtin::get("lan").unwrap();
    /// assert!(lab.node("host").unwrap().forwarding);
    /// ```
    pub fn node(&self, name: &str) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.name == name)
    }
    /// Every interface of `node` with its addresses: loopback excluded, bridges
    /// and veth ends included, in creation order.
    ///
    /// ```
    /// let lab = netns_fixture_topology::builtin::get("pair").unwrap();
    /// let ifaces = lab.interfaces_of("ns-2");
    /// assert_eq!(ifaces[0].0, "veth-2");
    /// assert_eq!(ifaces[0].1[0].to_string(), "10.0.0.20/16");
    /// ```
    pub fn interfaces_of<'a>(&'a self, node: &str) -> Vec<(&'a str, &'a [IpNet])> {
        let mut out = Vec::new();
        if let Some(spec) = self.node(node) {
            for bridge in &spec.bridges {
                out.push((bridge.name.as_str(), bridge.addresses.as_slice()));
            }
        }
        for link in &self.links {
            for end in [&link.a, &link.b] {
                if end.node == node {
                    out.push((end.interface.as_str(), end.addresses.as_slice()));
                }
            }
        }
        out
    }
}

/// One node: a network namespace of the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// The node's name, unique in the lab.
    pub name: String,
    /// Whether the node routes between its interfaces (`net.ipv4.ip_forward=1`,
    /// `net.ipv6.conf.all.forwarding=1`).
    pub forwarding: bool,
    /// Bridges (switches) that live in this node's namespace.
    pub bridges: Vec<BridgeSpec>,
    /// Routes beyond the connected networks.
    pub routes: Vec<RouteSpec>,
    /// Extra sysctls under `/proc/sys/`, as (key, value), e.g. `("net/ipv4/tcp_syncookies", "0")`.
    pub sysctls: Vec<(String, String)>,
    /// NAT and forwarding rules, if the node is a router that has any.
    pub firewall: Option<Firewall>,
    /// Whether frames crossing this node's bridges pass its IP firewall
    /// (`net.bridge.bridge-nf-call-iptables=1`, as on a Docker host). Off by
    /// default, so a lab behaves the same on machines with and without the
    /// kernel's `br_netfilter`.
    pub bridge_netfilter: bool,
}

/// A Linux bridge inside a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeSpec {
    /// Interface name of the bridge.
    pub name: String,
    /// Addresses of the bridge itself (what the attached nodes use as gateway).
    pub addresses: Vec<IpNet>,
}

/// A route: `destination` via `gateway`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// The destination network; `0.0.0.0/0` (or `::/0`) for the default route.
    pub destination: IpNet,
    /// The next hop.
    pub gateway: IpAddr,
}

/// A veth pair joining two nodes (or a node to a bridge in another, or the same, node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSpec {
    /// One end.
    pub a: EndpointSpec,
    /// The other end.
    pub b: EndpointSpec,
}

/// One end of a veth pair.
///
/// ```
/// use netns_fixture_topology::EndpointSpec;
/// let end = EndpointSpec::new("host", "veth1-br").bridge("br0");
/// assert_eq!(end.bridge.as_deref(), Some("br0"));
/// let end: EndpointSpec = ("ns1", "veth1", "192.168.0.2/24").into();
/// assert_eq!(end.addresses[0].to_string(), "192.168.0.2/24");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSpec {
    /// The node whose namespace holds this end.
    pub node: String,
    /// The interface name of this end in that namespace.
    pub interface: String,
    /// Addresses on this end.
    pub addresses: Vec<IpNet>,
    /// A bridge of the same node this end is a port of.
    pub bridge: Option<String>,
    /// Addresses that did not parse, reported by `build()`.
    pub(crate) bad_addresses: Vec<(String, String)>,
}

impl EndpointSpec {
    /// An end called `interface` in `node`, with no address.
    pub fn new(node: &str, interface: &str) -> Self {
        EndpointSpec {
            node: node.into(),
            interface: interface.into(),
            addresses: Vec::new(),
            bridge: None,
            bad_addresses: Vec::new(),
        }
    }
    /// Adds an address such as `"10.0.0.1/24"` (checked by `build()`).
    pub fn address(mut self, address: &str) -> Self {
        match address.parse() {
            Ok(net) => self.addresses.push(net),
            Err(why) => self.bad_addresses.push((address.into(), why)),
        }
        self
    }
    /// Makes this end a port of `bridge`, a bridge of the same node.
    pub fn bridge(mut self, bridge: &str) -> Self {
        self.bridge = Some(bridge.into());
        self
    }
}

impl From<(&str, &str)> for EndpointSpec {
    fn from((node, interface): (&str, &str)) -> Self {
        EndpointSpec::new(node, interface)
    }
}

impl From<(&str, &str, &str)> for EndpointSpec {
    fn from((node, interface, address): (&str, &str, &str)) -> Self {
        EndpointSpec::new(node, interface).address(address)
    }
}
