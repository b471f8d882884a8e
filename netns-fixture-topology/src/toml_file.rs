//! Topology files: the builder's power in TOML, with errors that point at the line.
//!
//! ```toml
//! default_node = "pc1"
//!
//! [[nodes]]
//! name = "pc1"
//! default_route = "10.1.0.1"
//!
//! [[nodes]]
//! name = "router"
//! forwarding = true
//! bridges = [{ name = "br0", addresses = ["10.1.0.1/24"] }]
//! firewall = { masquerade = [{ source = "10.1.0.0/24", out_interface = "!br0" }] }
//!
//! [[links]]
//! a = { node = "pc1", interface = "eth0", addresses = ["10.1.0.2/24"] }
//! b = { node = "router", interface = "pc1-port", bridge = "br0" }
//! ```
//!
//! `bridge_netfilter = true` on a node passes frames crossing its bridges through
//! its IP firewall, as a Docker host does (off by default).
//!
//! `default_route` takes one gateway or an array of them, one per family
//! (`default_route = ["10.1.0.1", "fd00:1::1"]`).
//!
//! Interfaces without an address can be numbered automatically from address
//! pools (the rules are those of `TopologyBuilder::ipv4_pool`: a /30 or /64 per
//! link, a /24 or /64 per bridge with the bridge at `.1`, in declaration order,
//! never overlapping an explicit address):
//!
//! ```toml
//! [pools]
//! ipv4 = "10.99.0.0/16"
//! ipv6 = "fd00:99::/48"
//! ```
//!
//! Firewall tables: `forward_policy = "accept" | "drop"`; `forward = [{ in_interface,
//! out_interface, source, destination, protocol = "tcp" | "udp", destination_port,
//! ct_states = ["new", "established", "related"], verdict = "accept" | "drop" }]`;
//! `port_forwards = [{ protocol, port, to = "ADDR:PORT", in_interface }]`;
//! `masquerade = [{ source, out_interface }]`. An interface written `"!br0"` matches
//! every interface but `br0`.

use crate::{
    CtStates, EndpointSpec, Firewall, ForwardRule, InterfaceMatch, IpNet, Masquerade, NodeBuilder,
    PortForward, Protocol, Topology, TopologyError, Verdict,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use toml::Spanned;

/// A topology file that could not be read: what is wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TomlError {
    /// What is wrong.
    pub message: String,
    /// 1-based line and column of the offending text, when known.
    pub location: Option<(usize, usize)>,
    /// The same as a byte range of the file.
    pub span: Option<Range<usize>>,
    /// The file, when read with [`Topology::from_toml_file`].
    pub file: Option<std::path::PathBuf>,
}

/// `FILE:LINE:COLUMN: message` (as compilers write it), or
/// `line LINE, column COLUMN: message` for text that came from no file.
impl fmt::Display for TomlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.location) {
            (Some(file), Some((line, column))) => {
                write!(f, "{}:{line}:{column}: {}", file.display(), self.message)
            }
            (Some(file), None) => write!(f, "{}: {}", file.display(), self.message),
            (None, Some((line, column))) => {
                write!(f, "line {line}, column {column}: {}", self.message)
            }
            (None, None) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for TomlError {}

impl Topology {
    /// Reads a topology from TOML text; `name` is used when the file sets none.
    ///
    /// ```
    /// use netns_fixture_topology::Topology;
    /// let text = r#"
    /// [[nodes]]
    /// name = "a"
    /// [[nodes]]
    /// name = "b"
    /// [[links]]
    /// a = { node = "a", interface = "eth0", addresses = ["10.0.0.1/24"] }
    /// b = { node = "c", interface = "eth0", addresses = ["10.0.0.2/24"] }
    /// "#;
    /// let err = Topology::from_toml(text, "mine").unwrap_err();
    /// assert_eq!(err.location, Some((8, 14)));
    /// assert!(err.message.contains("unknown node `c`"));
    /// ```
    pub fn from_toml(text: &str, name: &str) -> Result<Topology, TomlError> {
        let file: File =
            toml::from_str(text).map_err(|e| locate(text, e.message().to_string(), e.span()))?;
        let mut spans = Spans::default();
        let result = file.into_topology(name, &mut spans);
        result.map_err(|e| match e {
            Problem::At(message, span) => locate(text, message, Some(span)),
            Problem::Topology(e) => {
                let span = spans.find(&e);
                locate(text, e.to_string(), span)
            }
        })
    }

    /// Reads a topology file; the file's stem is the name unless the file sets one.
    pub fn from_toml_file(path: impl AsRef<std::path::Path>) -> Result<Topology, TomlError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| TomlError {
            message: format!("cannot read it: {e}"),
            location: None,
            span: None,
            file: Some(path.to_path_buf()),
        })?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Topology::from_toml(&text, &stem).map_err(|e| TomlError {
            file: Some(path.to_path_buf()),
            ..e
        })
    }
}

fn locate(text: &str, message: String, span: Option<Range<usize>>) -> TomlError {
    let location = span.as_ref().map(|s| {
        let before = &text[..s.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        (line, column)
    });
    TomlError {
        message,
        location,
        span,
        file: None,
    }
}

enum Problem {
    At(String, Range<usize>),
    Topology(TopologyError),
}

/// Where each name and address was written, to point a validation error at it.
#[derive(Default)]
struct Spans {
    values: Vec<(String, Range<usize>)>,
    /// Interfaces by (node, name): where links and bridges create them.
    interfaces: Vec<(String, String, Range<usize>)>,
    /// Interfaces by (node, name, without the `!`): where firewall rules name them.
    firewall_interfaces: Vec<(String, String, Range<usize>)>,
    /// Bridges by (node, name): where link ends are made their ports.
    bridge_ports: Vec<(String, String, Range<usize>)>,
}

impl Spans {
    fn note(&mut self, value: &Spanned<String>) -> String {
        self.values.push((value.get_ref().clone(), value.span()));
        value.get_ref().clone()
    }

    /// Notes where `node` gets the interface `value`.
    fn note_interface(&mut self, node: &str, value: &Spanned<String>) -> String {
        self.interfaces
            .push((node.into(), value.get_ref().clone(), value.span()));
        self.note(value)
    }

    /// Notes where a firewall rule of `node` names the interface `value`
    /// (`"!br0"` names `br0`), and returns the name without the `!`.
    fn note_firewall_interface(&mut self, node: &str, value: &Spanned<String>) -> String {
        let text = value.get_ref();
        let name = text.strip_prefix('!').unwrap_or(text);
        self.firewall_interfaces
            .push((node.into(), name.into(), value.span()));
        name.into()
    }

    /// The place the error is about. An error about an interface or bridge of a
    /// node is looked up by (node, name): the same name may belong to another
    /// node. Otherwise it is the last place its value was written (for a
    /// duplicate, that is the second one).
    fn find(&self, e: &TopologyError) -> Option<Range<usize>> {
        let keyed = match e {
            TopologyError::UnknownInterface {
                node, interface, ..
            } => first(&self.firewall_interfaces, node, interface),
            TopologyError::InterfaceNameTooLong { node, interface } => {
                first(&self.interfaces, node, interface)
            }
            TopologyError::DuplicateInterface { node, interface } => {
                last(&self.interfaces, node, interface)
            }
            TopologyError::UnknownBridge { node, bridge } => {
                first(&self.bridge_ports, node, bridge)
            }
            _ => None,
        };
        if keyed.is_some() {
            return keyed;
        }
        let wanted: Box<dyn Fn(&str) -> bool> = match e {
            TopologyError::DuplicateNode { node }
            | TopologyError::UnknownNode { node, .. }
            | TopologyError::BadSysctl { node, .. } => {
                let node = node.clone();
                Box::new(move |v| v == node)
            }
            TopologyError::InterfaceNameTooLong { interface, .. }
            | TopologyError::DuplicateInterface { interface, .. }
            | TopologyError::UnknownInterface { interface, .. } => {
                let interface = interface.clone();
                Box::new(move |v| v == interface)
            }
            TopologyError::UnknownBridge { bridge, .. } => {
                let bridge = bridge.clone();
                Box::new(move |v| v == bridge)
            }
            TopologyError::BadName { name, .. } => {
                let name = name.clone();
                Box::new(move |v| v == name)
            }
            TopologyError::BadAddress { value, .. } => {
                let value = value.clone();
                Box::new(move |v| v == value)
            }
            TopologyError::DuplicateAddress { address, .. } => {
                let prefix = format!("{address}/");
                Box::new(move |v| v.starts_with(&prefix))
            }
            TopologyError::PoolExhausted { pool: net, .. }
            | TopologyError::SubnetFull { subnet: net, .. } => {
                let net = *net;
                Box::new(move |v| v.parse::<IpNet>() == Ok(net))
            }
            TopologyError::NoNodes { .. } => return None,
        };
        self.values
            .iter()
            .rev()
            .find(|(v, _)| wanted(v))
            .map(|(_, s)| s.clone())
    }
}

type ByNode = [(String, String, Range<usize>)];

/// The first place `node`'s `name` was noted in `list`.
fn first(list: &ByNode, node: &str, name: &str) -> Option<Range<usize>> {
    list.iter()
        .find(|(n, v, _)| n == node && v == name)
        .map(|(_, _, s)| s.clone())
}

/// The last place `node`'s `name` was noted in `list`.
fn last(list: &ByNode, node: &str, name: &str) -> Option<Range<usize>> {
    list.iter()
        .rev()
        .find(|(n, v, _)| n == node && v == name)
        .map(|(_, _, s)| s.clone())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: Option<String>,
    default_node: Option<Spanned<String>>,
    #[serde(default)]
    nodes: Vec<NodeToml>,
    #[serde(default)]
    links: Vec<LinkToml>,
    pools: Option<PoolsToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolsToml {
    ipv4: Option<Spanned<String>>,
    ipv6: Option<Spanned<String>>,
}

/// `default_route = "10.1.0.1"` or `default_route = ["10.1.0.1", "fd00:1::1"]`.
enum Gateways {
    One(String),
    Many(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for Gateways {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Gateways;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a gateway address or an array of them")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Gateways, E> {
                Ok(Gateways::One(v.into()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Gateways, A::Error> {
                let mut all = Vec::new();
                while let Some(gateway) = seq.next_element()? {
                    all.push(gateway);
                }
                Ok(Gateways::Many(all))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeToml {
    name: Spanned<String>,
    #[serde(default)]
    forwarding: bool,
    default_route: Option<Spanned<Gateways>>,
    #[serde(default)]
    routes: Vec<RouteToml>,
    #[serde(default)]
    bridges: Vec<BridgeToml>,
    #[serde(default)]
    sysctls: BTreeMap<String, String>,
    firewall: Option<FirewallToml>,
    #[serde(default)]
    bridge_netfilter: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteToml {
    to: Spanned<String>,
    via: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BridgeToml {
    name: Spanned<String>,
    #[serde(default)]
    addresses: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkToml {
    a: EndToml,
    b: EndToml,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndToml {
    node: Spanned<String>,
    interface: Spanned<String>,
    #[serde(default)]
    addresses: Vec<Spanned<String>>,
    bridge: Option<Spanned<String>>,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum VerdictToml {
    #[default]
    Accept,
    Drop,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum ProtocolToml {
    Tcp,
    Udp,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum CtToml {
    New,
    Established,
    Related,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FirewallToml {
    #[serde(default)]
    forward_policy: VerdictToml,
    #[serde(default)]
    forward: Vec<ForwardToml>,
    #[serde(default)]
    port_forwards: Vec<PortForwardToml>,
    #[serde(default)]
    masquerade: Vec<MasqueradeToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForwardToml {
    in_interface: Option<Spanned<String>>,
    out_interface: Option<Spanned<String>>,
    source: Option<Spanned<String>>,
    destination: Option<Spanned<String>>,
    protocol: Option<ProtocolToml>,
    destination_port: Option<u16>,
    ct_states: Option<Vec<CtToml>>,
    #[serde(default)]
    verdict: VerdictToml,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PortForwardToml {
    protocol: ProtocolToml,
    port: u16,
    to: Spanned<String>,
    in_interface: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MasqueradeToml {
    source: Option<Spanned<String>>,
    out_interface: Option<Spanned<String>>,
}

impl From<VerdictToml> for Verdict {
    fn from(v: VerdictToml) -> Self {
        match v {
            VerdictToml::Accept => Verdict::Accept,
            VerdictToml::Drop => Verdict::Drop,
        }
    }
}

impl From<ProtocolToml> for Protocol {
    fn from(p: ProtocolToml) -> Self {
        match p {
            ProtocolToml::Tcp => Protocol::Tcp,
            ProtocolToml::Udp => Protocol::Udp,
        }
    }
}

fn interface_match(spans: &mut Spans, node: &str, value: &Spanned<String>) -> InterfaceMatch {
    let name = spans.note_firewall_interface(node, value);
    if value.get_ref().starts_with('!') {
        InterfaceMatch::IsNot(name)
    } else {
        InterfaceMatch::Is(name)
    }
}

/// For each node, an address the file gives it (IPv4 first), to suggest in an
/// error; `None` for a node whose addresses all come from a pool.
type NodeAddresses = BTreeMap<String, Option<IpAddr>>;

impl File {
    fn node_addresses(&self) -> NodeAddresses {
        let mut all: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
        for node in &self.nodes {
            let addresses = node.bridges.iter().flat_map(|b| &b.addresses);
            all.entry(node.name.get_ref().clone()).or_default().extend(
                addresses
                    .filter_map(|a| a.get_ref().parse::<IpNet>().ok())
                    .map(|n| n.addr),
            );
        }
        for end in self.links.iter().flat_map(|l| [&l.a, &l.b]) {
            if let Some(addresses) = all.get_mut(end.node.get_ref()) {
                let parsed = end.addresses.iter();
                addresses.extend(
                    parsed
                        .filter_map(|a| a.get_ref().parse::<IpNet>().ok())
                        .map(|n| n.addr),
                );
            }
        }
        all.into_iter()
            .map(|(node, addresses)| {
                let v4 = addresses.iter().find(|a| a.is_ipv4());
                (node, v4.or(addresses.first()).copied())
            })
            .collect()
    }

    fn into_topology(self, name: &str, spans: &mut Spans) -> Result<Topology, Problem> {
        let addresses = self.node_addresses();
        let mut builder = Topology::builder(self.name.as_deref().unwrap_or(name));
        for node in self.nodes {
            let node_name = spans.note(&node.name);
            let configured = node.configure(NodeBuilder::new(&node_name), spans, &addresses)?;
            builder = builder.push_node(configured);
        }
        for link in self.links {
            let mut ends = Vec::with_capacity(2);
            for end in [link.a, link.b] {
                let node = spans.note(&end.node);
                let mut spec =
                    EndpointSpec::new(&node, &spans.note_interface(&node, &end.interface));
                for address in &end.addresses {
                    spec = spec.address(&spans.note(address));
                }
                if let Some(bridge) = &end.bridge {
                    spans.bridge_ports.push((
                        node.clone(),
                        bridge.get_ref().clone(),
                        bridge.span(),
                    ));
                    spec = spec.bridge(&spans.note(bridge));
                }
                ends.push(spec);
            }
            let b = ends.pop().expect("two ends");
            let a = ends.pop().expect("two ends");
            builder = builder.link(a, b);
        }
        if let Some(default) = &self.default_node {
            builder = builder.default_node(&spans.note(default));
        }
        if let Some(pools) = &self.pools {
            if let Some(pool) = &pools.ipv4 {
                builder = builder.ipv4_pool(&spans.note(pool));
            }
            if let Some(pool) = &pools.ipv6 {
                builder = builder.ipv6_pool(&spans.note(pool));
            }
        }
        builder.build().map_err(Problem::Topology)
    }
}

impl NodeToml {
    fn configure(
        &self,
        mut node: NodeBuilder,
        spans: &mut Spans,
        addresses: &NodeAddresses,
    ) -> Result<NodeBuilder, Problem> {
        let name = self.name.get_ref();
        if self.forwarding {
            node = node.forwarding();
        }
        if self.bridge_netfilter {
            node = node.bridge_netfilter();
        }
        for bridge in &self.bridges {
            let addresses: Vec<String> = bridge.addresses.iter().map(|a| spans.note(a)).collect();
            let addresses: Vec<&str> = addresses.iter().map(String::as_str).collect();
            node = node.bridge(&spans.note_interface(name, &bridge.name), &addresses);
        }
        match self.default_route.as_ref().map(|g| (g.get_ref(), g.span())) {
            Some((Gateways::One(gateway), span)) => {
                let gateway = Spanned::new(span, gateway.clone());
                node = node.default_route(&spans.note(&gateway));
            }
            Some((Gateways::Many(gateways), _)) => {
                for gateway in gateways {
                    node = node.default_route(&spans.note(gateway));
                }
            }
            None => {}
        }
        for route in &self.routes {
            node = node.route(&spans.note(&route.to), &spans.note(&route.via));
        }
        for (key, value) in &self.sysctls {
            node = node.sysctl(key, value);
        }
        if let Some(firewall) = &self.firewall {
            node = node.firewall(firewall.to_firewall(name, spans, addresses)?);
        }
        Ok(node)
    }
}

impl FirewallToml {
    fn to_firewall(
        &self,
        node: &str,
        spans: &mut Spans,
        addresses: &NodeAddresses,
    ) -> Result<Firewall, Problem> {
        let mut firewall = Firewall::default().forward_policy(self.forward_policy.into());
        for (i, rule) in self.forward.iter().enumerate() {
            let place = format!("node `{node}`, forward rule {}", i + 1);
            let mut r = ForwardRule {
                verdict: rule.verdict.into(),
                protocol: rule.protocol.map(Into::into),
                destination_port: rule.destination_port,
                ..ForwardRule::default()
            };
            r.in_interface = rule
                .in_interface
                .as_ref()
                .map(|i| interface_match(spans, node, i));
            r.out_interface = rule
                .out_interface
                .as_ref()
                .map(|i| interface_match(spans, node, i));
            r.source = rule
                .source
                .as_ref()
                .map(|s| parse_net(s, &place, "source network"))
                .transpose()?;
            r.destination = rule
                .destination
                .as_ref()
                .map(|d| parse_net(d, &place, "destination network"))
                .transpose()?;
            r.ct_states = rule.ct_states.as_ref().map(|states| {
                let mut ct = CtStates::default();
                for state in states {
                    match state {
                        CtToml::New => ct.new = true,
                        CtToml::Established => ct.established = true,
                        CtToml::Related => ct.related = true,
                    }
                }
                ct
            });
            firewall = firewall.forward(r);
        }
        for forward in &self.port_forwards {
            let to = port_forward_target(forward.to.get_ref(), addresses)
                .map_err(|message| Problem::At(message, forward.to.span()))?;
            let mut f = PortForward::new(forward.protocol.into(), forward.port, to);
            if let Some(interface) = &forward.in_interface {
                f = f.in_interface(&spans.note_firewall_interface(node, interface));
            }
            firewall = firewall.port_forward(f);
        }
        for (i, masquerade) in self.masquerade.iter().enumerate() {
            let place = format!("node `{node}`, masquerade {}", i + 1);
            let mut m = match &masquerade.source {
                Some(source) => Masquerade::from_network(parse_net(source, &place, "network")?),
                None => Masquerade::all(),
            };
            m.out_interface = masquerade
                .out_interface
                .as_ref()
                .map(|i| interface_match(spans, node, i));
            firewall = firewall.masquerade(m);
        }
        Ok(firewall)
    }
}

/// A network or a single address (`10.0.0.2` means `10.0.0.2/32`), for the rule
/// at `place` (``node `r`, masquerade 1``); `what` is the field (`source network`).
fn parse_net(value: &Spanned<String>, place: &str, what: &str) -> Result<IpNet, Problem> {
    let text = value.get_ref();
    let net = if text.contains('/') {
        text.parse()
    } else {
        text.parse::<IpAddr>()
            .map(|addr| IpNet {
                addr,
                prefix: if addr.is_ipv4() { 32 } else { 128 },
            })
            .map_err(|_| format!("`{text}` is not an IP address or network"))
    };
    net.map_err(|why| Problem::At(format!("{place}: bad {what} `{text}`: {why}"), value.span()))
}

/// What a port-forward target should look like.
const TARGET_FORM: &str = "ADDRESS:PORT, e.g. `192.168.0.2:8080` or `[fd00::2]:8080`";

/// A port-forward target, `192.168.0.2:8080` or `[fd00::2]:8080`, or an error
/// that says what is wrong with it (a node name is not an address).
fn port_forward_target(text: &str, addresses: &NodeAddresses) -> Result<SocketAddr, String> {
    let why = match text.parse() {
        Ok(target) => return Ok(target),
        Err(_) => target_problem(text, addresses),
    };
    Err(format!("bad port-forward target `{text}`: {why}"))
}

fn target_problem(text: &str, addresses: &NodeAddresses) -> String {
    let example = |addr: IpAddr, port: u16| SocketAddr::new(addr, port).to_string();
    match text.parse::<IpAddr>() {
        Ok(addr @ IpAddr::V4(_)) => {
            return format!(
                "needs ADDRESS:PORT, e.g. `{}` or `[fd00::2]:8080`",
                example(addr, 8080)
            )
        }
        Ok(addr @ IpAddr::V6(_)) => {
            return format!(
                "needs ADDRESS:PORT, with an IPv6 address in brackets, e.g. `{}`",
                example(addr, 8080)
            )
        }
        Err(_) => {}
    }
    // Split into host and port: `[v6]:port`, `host:port` or a lone `host`.
    let (host, port, bracketed) = match text.strip_prefix('[').and_then(|t| t.split_once(']')) {
        Some((host, rest)) => match rest.strip_prefix(':') {
            Some(port) => (host, Some(port), true),
            None if rest.is_empty() => (host, None, true),
            None => return format!("needs {TARGET_FORM}"),
        },
        None => match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port), false),
            None => (text, None, false),
        },
    };
    if host.is_empty() {
        return format!("needs {TARGET_FORM}");
    }
    let number = port.and_then(|p| p.parse::<u16>().ok());
    if let Ok(addr) = host.parse::<IpAddr>() {
        return match (port, number) {
            (None, _) | (Some(""), _) => format!(
                "the port is missing: needs ADDRESS:PORT, e.g. `{}`",
                example(addr, 8080)
            ),
            (Some(port), None) => format!(
                "`{port}` is not a port number (0 to 65535): needs ADDRESS:PORT, e.g. `{}`",
                example(addr, 8080)
            ),
            (Some(_), Some(number)) if addr.is_ipv6() && !bracketed => format!(
                "needs ADDRESS:PORT, with an IPv6 address in brackets, e.g. `{}`",
                example(addr, number)
            ),
            _ if addr.is_ipv4() && bracketed => format!(
                "only an IPv6 address goes in brackets, e.g. `{}`",
                example(addr, number.unwrap_or(8080))
            ),
            _ => format!("needs {TARGET_FORM}"),
        };
    }
    match addresses.get(host) {
        Some(Some(addr)) => format!(
            "`{host}` is a node, and node names are not accepted here: it needs one of the node's addresses, e.g. `{}`",
            example(*addr, number.unwrap_or(8080))
        ),
        Some(None) => format!(
            "`{host}` is a node, and node names are not accepted here: it needs one of the node's addresses, as {TARGET_FORM}"
        ),
        None => format!(
            "`{host}` is not an IP address (host and node names are not accepted here): needs {TARGET_FORM}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_errors_read_like_a_compilers() {
        let dir = std::env::temp_dir().join(format!("netns-fixture-toml-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("bad.toml");
        std::fs::write(&file, "name = \"bad\"\n\n[[nodes]]\nnam = \"a\"\n").unwrap();
        let e = Topology::from_toml_file(&file).unwrap_err();
        assert_eq!(e.file.as_deref(), Some(file.as_path()));
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!("{}:4:1: unknown field `nam`", file.display())),
            "{shown}"
        );
        let missing = dir.join("missing.toml");
        let e = Topology::from_toml_file(&missing).unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("{}: cannot read it: ", missing.display())),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
    use crate::builtin;

    #[test]
    fn a_file_has_the_builders_power() {
        let text = include_str!("../../tests/labs/two_servers.toml");
        let from_file = Topology::from_toml(text, "ignored").unwrap();
        assert_eq!(from_file, builtin::get("two_servers").unwrap());
    }

    fn error(text: &str) -> String {
        Topology::from_toml(text, "t").unwrap_err().to_string()
    }

    const TWO: &str = "[[nodes]]\nname = \"a\"\n[[nodes]]\nname = \"b\"\n";

    #[test]
    fn errors_point_at_the_line() {
        assert_eq!(
            error("[[nodes]]\nname = \"a\"\nforwardin = true\n"),
            "line 3, column 1: unknown field `forwardin`, expected one of `name`, `forwarding`, `default_route`, `routes`, `bridges`, `sysctls`, `firewall`, `bridge_netfilter`"
        );
        assert_eq!(
            error(&format!("{TWO}[[nodes]]\nname = \"a\"\n")),
            "line 6, column 8: duplicate node `a`: node names must be unique"
        );
        assert_eq!(
            error(&format!("{TWO}[[links]]\na = {{ node = \"a\", interface = \"e0\", addresses = [\"10.0.0.1/24\"] }}\nb = {{ node = \"b\", interface = \"e0\", addresses = [\"10.0.0.1/24\"] }}\n")),
            "line 7, column 50: duplicate address 10.0.0.1: on a/e0 and again on b/e0"
        );
        assert_eq!(
            error(&format!("{TWO}[[links]]\na = {{ node = \"a\", interface = \"e0\", addresses = [\"10.0.0.1/99\"] }}\nb = {{ node = \"b\", interface = \"e0\" }}\n")),
            "line 6, column 50: bad address `10.0.0.1/99` for interface `e0` of node `a`: prefix length /99 is too long for 10.0.0.1 (at most /32)"
        );
        assert_eq!(
            error(&format!("{TWO}[[links]]\na = {{ node = \"a\", interface = \"interface-too-long\" }}\nb = {{ node = \"b\", interface = \"e0\" }}\n")),
            "line 6, column 31: interface name `interface-too-long` on node `a` is 18 bytes; Linux allows at most 15"
        );
        assert_eq!(
            error(&format!("default_node = \"z\"\n{TWO}")),
            "line 1, column 16: the default node refers to unknown node `z` (nodes are: a, b)"
        );
        assert_eq!(
            error("[[nodes]]\nname = \"r\"\nfirewall = { port_forwards = [{ protocol = \"tcp\", port = 1, to = \"10.0.0.1\" }] }\n"),
            "line 3, column 66: bad port-forward target `10.0.0.1`: needs ADDRESS:PORT, e.g. `10.0.0.1:8080` or `[fd00::2]:8080`"
        );
        assert_eq!(
            error("[[nodes]]\nname = \"r\"\nfirewall = { masquerade = [{ out_interface = \"!wan\" }] }\n"),
            "line 3, column 46: a firewall rule on node `r` names interface `wan`, which the node does not have (it has: lo)"
        );
    }

    /// The error's message, with its line and the text its span covers.
    fn blame(text: &str) -> (usize, &str, String) {
        let e = Topology::from_toml(text, "t").unwrap_err();
        let span = e.span.clone().expect("a span");
        (e.location.expect("a location").0, &text[span], e.message)
    }

    /// A router `r` with a firewall table `firewall` (inline TOML) on line 3,
    /// linked to `pc` by `r/lan0` and `pc/eth1` (line 7).
    fn router_with(firewall: &str) -> String {
        format!(
            "[[nodes]]\nname = \"r\"\nfirewall = {firewall}\n\
             [[nodes]]\nname = \"pc\"\n\
             [[links]]\n\
             a = {{ node = \"pc\", interface = \"eth1\", addresses = [\"10.1.0.2/24\"] }}\n\
             b = {{ node = \"r\", interface = \"lan0\", addresses = [\"10.1.0.1/24\"] }}\n"
        )
    }

    #[test]
    fn a_firewall_error_points_at_the_rule_not_at_another_nodes_interface() {
        let unknown = "a firewall rule on node `r` names interface `eth1`, which the node does not have (it has: lo, lan0)";
        // `eth1` is pc's (line 7); the error is about r's rule on line 3.
        assert_eq!(
            blame(&router_with(
                "{ forward = [{ in_interface = \"eth1\", out_interface = \"lan0\" }] }"
            )),
            (3, "\"eth1\"", unknown.into())
        );
        assert_eq!(
            blame(&router_with(
                "{ masquerade = [{ out_interface = \"!lan0\" }, { out_interface = \"!eth1\" }] }"
            )),
            (3, "\"!eth1\"", unknown.into())
        );
        assert_eq!(
            blame(&router_with(
                "{ port_forwards = [{ protocol = \"tcp\", port = 1, to = \"10.1.0.2:2\", in_interface = \"eth1\" }] }"
            )),
            (3, "\"eth1\"", unknown.into())
        );
        // Two rules name it: the error is about the first.
        let text = router_with(
            "{ forward = [{ out_interface = \"eth1\" }], masquerade = [{ out_interface = \"eth1\" }] }",
        );
        let e = Topology::from_toml(&text, "t").unwrap_err();
        assert_eq!(e.span.unwrap().start, text.find("\"eth1\"").unwrap());
        // The repro of tests/ui/labs/firewall_interface_of_another_node.toml.
        let text = include_str!("../../tests/ui/labs/firewall_interface_of_another_node.toml");
        let (line, at, message) = blame(text);
        assert_eq!(text.lines().nth(line - 1), Some("in_interface = \"eth1\""));
        assert_eq!(at, "\"eth1\"");
        assert_eq!(message, "a firewall rule on node `router` names interface `eth1`, which the node does not have (it has: lo, lan0)");
    }

    #[test]
    fn interface_and_bridge_errors_point_at_their_node() {
        let link = |a: &str, b: &str| {
            format!("[[links]]\na = {{ node = \"a\", interface = \"{a}\" }}\nb = {{ node = \"b\", interface = \"{b}\" }}\n")
        };
        // a has e0 on lines 6 and 9; b's e0 on line 13 is fine.
        let text = format!(
            "{TWO}{}{}{}",
            link("e0", "e1"),
            link("e0", "e2"),
            link("e3", "e0")
        );
        assert_eq!(
            blame(&text),
            (
                9,
                "\"e0\"",
                "node `a` has two interfaces called `e0`".into()
            )
        );
        // A firewall rule of b naming a's too-long name does not take the blame.
        let text = format!(
            "[[nodes]]\nname = \"a\"\n[[nodes]]\nname = \"b\"\n\
             firewall = {{ masquerade = [{{ out_interface = \"interface-too-long\" }}] }}\n{}",
            link("interface-too-long", "e0")
        );
        assert_eq!(blame(&text).0, 7, "the link line, not the rule on line 5");
        // b has no bridge br0 (line 7); a's port of br0 on line 10 is fine.
        let text = "[[nodes]]\nname = \"a\"\nbridges = [{ name = \"br0\" }]\n[[nodes]]\nname = \"b\"\n\
                    [[links]]\na = { node = \"b\", interface = \"p0\", bridge = \"br0\" }\nb = { node = \"a\", interface = \"e0\" }\n\
                    [[links]]\na = { node = \"a\", interface = \"p1\", bridge = \"br0\" }\nb = { node = \"b\", interface = \"e1\" }\n";
        assert_eq!(
            blame(text),
            (
                7,
                "\"br0\"",
                "node `b` has no bridge `br0` to attach a port to".into()
            )
        );
    }

    /// The error for a port forward of `r` to `to`; `server` has addresses,
    /// `pooled` has none in the file.
    fn target_error(to: &str) -> (usize, String, String) {
        let text = format!(
            "[[nodes]]\nname = \"r\"\nfirewall = {{ port_forwards = [{{ protocol = \"tcp\", port = 1, to = \"{to}\" }}] }}\n\
             [[nodes]]\nname = \"server\"\n[[nodes]]\nname = \"pooled\"\n\
             [[links]]\n\
             a = {{ node = \"r\", interface = \"veth0\", addresses = [\"fd00::1/64\", \"192.168.0.1/24\"] }}\n\
             b = {{ node = \"server\", interface = \"veth1\", addresses = [\"fd00::2/64\", \"192.168.0.2/24\"] }}\n"
        );
        let (line, at, message) = blame(&text);
        (line, at.to_string(), message)
    }

    #[test]
    fn a_port_forward_target_needs_an_address_and_a_port() {
        for (to, message) in [
            ("192.168.0.2", "needs ADDRESS:PORT, e.g. `192.168.0.2:8080` or `[fd00::2]:8080`"),
            ("fd00::2", "needs ADDRESS:PORT, with an IPv6 address in brackets, e.g. `[fd00::2]:8080`"),
            ("fd00::2:http", "`http` is not a port number (0 to 65535): needs ADDRESS:PORT, e.g. `[fd00::2]:8080`"),
            ("[fd00::2]", "the port is missing: needs ADDRESS:PORT, e.g. `[fd00::2]:8080`"),
            ("[fd00::2]8080", "needs ADDRESS:PORT, e.g. `192.168.0.2:8080` or `[fd00::2]:8080`"),
            ("192.168.0.2:", "the port is missing: needs ADDRESS:PORT, e.g. `192.168.0.2:8080`"),
            ("192.168.0.2:http", "`http` is not a port number (0 to 65535): needs ADDRESS:PORT, e.g. `192.168.0.2:8080`"),
            ("192.168.0.2:65536", "`65536` is not a port number (0 to 65535): needs ADDRESS:PORT, e.g. `192.168.0.2:8080`"),
            ("[192.168.0.2]:80", "only an IPv6 address goes in brackets, e.g. `192.168.0.2:80`"),
            ("server:8080", "`server` is a node, and node names are not accepted here: it needs one of the node's addresses, e.g. `192.168.0.2:8080`"),
            ("server", "`server` is a node, and node names are not accepted here: it needs one of the node's addresses, e.g. `192.168.0.2:8080`"),
            ("pooled:80", "`pooled` is a node, and node names are not accepted here: it needs one of the node's addresses, as ADDRESS:PORT, e.g. `192.168.0.2:8080` or `[fd00::2]:8080`"),
            ("example.com:80", "`example.com` is not an IP address (host and node names are not accepted here): needs ADDRESS:PORT, e.g. `192.168.0.2:8080` or `[fd00::2]:8080`"),
            ("", "needs ADDRESS:PORT, e.g. `192.168.0.2:8080` or `[fd00::2]:8080`"),
        ] {
            assert_eq!(
                target_error(to),
                (
                    3,
                    format!("\"{to}\""),
                    format!("bad port-forward target `{to}`: {message}")
                ),
            );
        }
        // A node's IPv6 address is suggested when the file gives it no IPv4 one.
        let text = "[[nodes]]\nname = \"r\"\nfirewall = { port_forwards = [{ protocol = \"udp\", port = 1, to = \"s:53\" }] }\n\
                    [[nodes]]\nname = \"s\"\n[[links]]\n\
                    a = { node = \"r\", interface = \"e0\", addresses = [\"fd00::1/64\"] }\n\
                    b = { node = \"s\", interface = \"e0\", addresses = [\"fd00::2/64\"] }\n";
        assert_eq!(
            error(text),
            "line 3, column 66: bad port-forward target `s:53`: `s` is a node, and node names are not accepted here: it needs one of the node's addresses, e.g. `[fd00::2]:53`"
        );
    }

    #[test]
    fn a_bad_network_names_the_node_and_the_rule() {
        assert_eq!(
            blame(&router_with(
                "{ masquerade = [{ source = \"10.1.0.0/24\" }, { source = \"10.1.0.0/33\", out_interface = \"lan0\" }] }"
            )),
            (3, "\"10.1.0.0/33\"", "node `r`, masquerade 2: bad network `10.1.0.0/33`: prefix length /33 is too long for 10.1.0.0 (at most /32)".into())
        );
        assert_eq!(
            blame(&router_with("{ masquerade = [{ source = \"10.1.0.300\" }] }")),
            (3, "\"10.1.0.300\"", "node `r`, masquerade 1: bad network `10.1.0.300`: `10.1.0.300` is not an IP address or network".into())
        );
        assert_eq!(
            blame(&router_with(
                "{ forward = [{ in_interface = \"lan0\" }, { source = \"10.1.0.2\", destination = \"fd00::/129\" }] }"
            )),
            (3, "\"fd00::/129\"", "node `r`, forward rule 2: bad destination network `fd00::/129`: prefix length /129 is too long for fd00:: (at most /128)".into())
        );
        assert_eq!(
            blame(&router_with("{ forward = [{ source = \"10.1.0.0/x\" }] }")),
            (3, "\"10.1.0.0/x\"", "node `r`, forward rule 1: bad source network `10.1.0.0/x`: `/x` in `10.1.0.0/x` is not a prefix length (write it in plain digits, like `/24`)".into())
        );
    }

    #[test]
    fn default_route_takes_one_gateway_or_an_array() {
        let text = "[[nodes]]\nname = \"one\"\ndefault_route = \"10.1.0.1\"\n\
                    [[nodes]]\nname = \"both\"\ndefault_route = [\"10.1.0.1\", \"fd00:1::1\"]\n";
        let t = Topology::from_toml(text, "t").unwrap();
        let routes = |node: &str| -> Vec<String> {
            t.node(node)
                .unwrap()
                .routes
                .iter()
                .map(|r| format!("{} via {}", r.destination, r.gateway))
                .collect()
        };
        assert_eq!(routes("one"), ["0.0.0.0/0 via 10.1.0.1"]);
        assert_eq!(
            routes("both"),
            ["0.0.0.0/0 via 10.1.0.1", "::/0 via fd00:1::1"]
        );
        let builder = Topology::builder("t")
            .node("one", |n| n.default_route("10.1.0.1"))
            .node("both", |n| {
                n.default_route("10.1.0.1").default_route("fd00:1::1")
            })
            .build()
            .unwrap();
        assert_eq!(t, builder);

        assert_eq!(
            error("[[nodes]]\nname = \"a\"\ndefault_route = [\"10.1.0.1\", \"fd00::1::1\"]\n"),
            "line 3, column 30: bad address `fd00::1::1` for a route gateway of node `a`: `fd00::1::1` is not an IP address"
        );
        assert_eq!(
            error("[[nodes]]\nname = \"a\"\ndefault_route = \"10.1.0.300\"\n"),
            "line 3, column 17: bad address `10.1.0.300` for a route gateway of node `a`: `10.1.0.300` is not an IP address"
        );
        assert_eq!(
            error("[[nodes]]\nname = \"a\"\ndefault_route = 5\n"),
            "line 3, column 17: invalid type: integer `5`, expected a gateway address or an array of them"
        );
        assert_eq!(
            error("[[nodes]]\nname = \"a\"\ndefault_route = [\"10.1.0.1\", 5]\n"),
            "line 3, column 30: invalid type: integer `5`, expected a string"
        );
    }

    /// The builder's `pool::tests::campus()` lab, in TOML.
    const POOLED: &str = r#"
[pools]
ipv4 = "10.99.0.0/16"
ipv6 = "fd00:99::/48"

[[nodes]]
name = "r"
forwarding = true
bridges = [{ name = "br0" }]

[[nodes]]
name = "h1"
default_route = ["10.99.1.1", "fd00:99:0:1::1"]

[[nodes]]
name = "up"

[[links]]
a = { node = "r", interface = "wan" }
b = { node = "up", interface = "eth0" }

[[links]]
a = { node = "h1", interface = "eth0" }
b = { node = "r", interface = "h1-port", bridge = "br0" }
"#;

    #[test]
    fn pools_in_a_file_equal_pools_in_the_builder() {
        let from_file = Topology::from_toml(POOLED, "pooled").unwrap();
        let built = Topology::builder("pooled")
            .ipv4_pool("10.99.0.0/16")
            .ipv6_pool("fd00:99::/48")
            .node("r", |n| n.forwarding().bridge("br0", &[]))
            .node("h1", |n| {
                n.default_route("10.99.1.1").default_route("fd00:99:0:1::1")
            })
            .node("up", |n| n)
            .link(("r", "wan"), ("up", "eth0"))
            .link(
                ("h1", "eth0"),
                EndpointSpec::new("r", "h1-port").bridge("br0"),
            )
            .build()
            .unwrap();
        assert_eq!(from_file, built);
        let h1: Vec<String> = from_file.interfaces_of("h1")[0]
            .1
            .iter()
            .map(IpNet::to_string)
            .collect();
        assert_eq!(h1, ["10.99.1.2/24", "fd00:99:0:1::2/64"]);
    }

    /// With a pool, the `lan` built-in needs only its gateway's and uplink's
    /// addresses: the hosts on the bridge are numbered from the bridge's subnets.
    #[test]
    fn a_pool_completes_subnets_written_by_hand() {
        let text = r#"
pools = { ipv4 = "10.255.0.0/16", ipv6 = "fd00:255::/48" }

[[nodes]]
name = "ns1"
default_route = ["192.168.0.1", "fd00:192:168::1"]

[[nodes]]
name = "ns2"
default_route = ["192.168.0.1", "fd00:192:168::1"]

[[nodes]]
name = "host"
forwarding = true
bridges = [{ name = "br0", addresses = ["192.168.0.1/24", "fd00:192:168::1/64"] }]
firewall = { masquerade = [
    { source = "192.168.0.0/24", out_interface = "!br0" },
    { source = "fd00:192:168::/64", out_interface = "!br0" },
] }

[[nodes]]
name = "internet"

[[links]]
a = { node = "ns1", interface = "veth1" }
b = { node = "host", interface = "veth1-br", bridge = "br0" }

[[links]]
a = { node = "ns2", interface = "veth2" }
b = { node = "host", interface = "veth2-br", bridge = "br0" }

[[links]]
a = { node = "host", interface = "eth0", addresses = ["198.51.100.1/24", "fd00:198:51:100::1/64"] }
b = { node = "internet", interface = "eth0", addresses = ["198.51.100.2/24", "fd00:198:51:100::2/64"] }
"#;
        assert_eq!(
            Topology::from_toml(text, "lan").unwrap(),
            builtin::get("lan").unwrap()
        );
    }

    #[test]
    fn pool_errors_point_at_the_pool() {
        assert_eq!(
            error("[pools]\nipv4 = \"fd00::/48\"\n[[nodes]]\nname = \"a\"\n"),
            "line 2, column 8: bad address `fd00::/48` for the IPv4 pool: it is an IPv6 network"
        );
        assert_eq!(
            error("[pools]\nipv4 = \"10.0.0.0/8\"\nipv5 = \"10.0.0.0/8\"\n"),
            "line 3, column 1: unknown field `ipv5`, expected `ipv4` or `ipv6`"
        );
        assert_eq!(
            error(&format!("[pools]\nipv6 = \"fd00::/64\"\n{TWO}[[links]]\na = {{ node = \"a\", interface = \"e0\" }}\nb = {{ node = \"b\", interface = \"e0\" }}\n[[links]]\na = {{ node = \"a\", interface = \"e1\" }}\nb = {{ node = \"b\", interface = \"e1\" }}\n")),
            "line 2, column 8: address pool fd00::/64 is exhausted: no free /64 left for link 2 (a/e1 <-> b/e1) (1 subnet handed out; subnets overlapping explicit addresses are skipped)"
        );
        assert_eq!(
            error(&format!("[pools]\nipv4 = \"10.0.0.0/8\"\n{TWO}[[links]]\na = {{ node = \"a\", interface = \"e0\", addresses = [\"10.1.0.1/32\"] }}\nb = {{ node = \"b\", interface = \"e0\" }}\n")),
            "line 8, column 50: no free address left in 10.1.0.1/32 for b/e0: link 1 (a/e0 <-> b/e0) has addresses there already, so its other interfaces are numbered from that subnet instead of the pool"
        );
    }

    #[test]
    fn a_sysctl_key_outside_proc_sys_net_is_refused() {
        assert_eq!(
            error("[[nodes]]\nname = \"a\"\nsysctls = { \"../../tmp/x\" = \"1\" }\n"),
            "line 2, column 8: node `a`: sysctl key `../../tmp/x`: it has a path part `..`; a key names one file below /proc/sys/net"
        );
        assert!(
            error("[[nodes]]\nname = \"a\"\nsysctls = { \"kernel.hostname\" = \"x\" }\n")
                .contains("machine-wide")
        );
    }
}
