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
}

impl fmt::Display for TomlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some((line, column)) => write!(f, "line {line}, column {column}: {}", self.message),
            None => f.write_str(&self.message),
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
            message: format!("cannot read {}: {e}", path.display()),
            location: None,
            span: None,
        })?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Topology::from_toml(&text, &stem).map_err(|e| TomlError {
            message: format!("{}: {}", path.display(), e.message),
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
}

impl Spans {
    fn note(&mut self, value: &Spanned<String>) -> String {
        self.values.push((value.get_ref().clone(), value.span()));
        value.get_ref().clone()
    }

    /// The place the error is about: the last place its value was written (for a
    /// duplicate, that is the second one).
    fn find(&self, e: &TopologyError) -> Option<Range<usize>> {
        let wanted: Box<dyn Fn(&str) -> bool> = match e {
            TopologyError::DuplicateNode { node } | TopologyError::UnknownNode { node, .. } => {
                let node = node.clone();
                Box::new(move |v| v == node)
            }
            TopologyError::InterfaceNameTooLong { interface, .. }
            | TopologyError::DuplicateInterface { interface, .. }
            | TopologyError::UnknownInterface { interface, .. } => {
                let interface = interface.clone();
                Box::new(move |v| v == interface || v.strip_prefix('!') == Some(&interface))
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

fn parse<T: std::str::FromStr>(value: &Spanned<String>, what: &str) -> Result<T, Problem>
where
    T::Err: fmt::Display,
{
    value.get_ref().parse().map_err(|e: T::Err| {
        Problem::At(
            format!("bad {what} `{}`: {e}", value.get_ref()),
            value.span(),
        )
    })
}

fn interface_match(spans: &mut Spans, value: &Spanned<String>) -> InterfaceMatch {
    let text = spans.note(value);
    match text.strip_prefix('!') {
        Some(name) => InterfaceMatch::IsNot(name.into()),
        None => InterfaceMatch::Is(text),
    }
}

impl File {
    fn into_topology(self, name: &str, spans: &mut Spans) -> Result<Topology, Problem> {
        let mut builder = Topology::builder(self.name.as_deref().unwrap_or(name));
        for node in self.nodes {
            let node_name = spans.note(&node.name);
            builder = builder.push_node(node.configure(NodeBuilder::new(&node_name), spans)?);
        }
        for link in self.links {
            let mut ends = Vec::with_capacity(2);
            for end in [link.a, link.b] {
                let mut spec =
                    EndpointSpec::new(&spans.note(&end.node), &spans.note(&end.interface));
                for address in &end.addresses {
                    spec = spec.address(&spans.note(address));
                }
                if let Some(bridge) = &end.bridge {
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
    fn configure(&self, mut node: NodeBuilder, spans: &mut Spans) -> Result<NodeBuilder, Problem> {
        if self.forwarding {
            node = node.forwarding();
        }
        for bridge in &self.bridges {
            let addresses: Vec<String> = bridge.addresses.iter().map(|a| spans.note(a)).collect();
            let addresses: Vec<&str> = addresses.iter().map(String::as_str).collect();
            node = node.bridge(&spans.note(&bridge.name), &addresses);
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
            node = node.firewall(firewall.to_firewall(spans)?);
        }
        Ok(node)
    }
}

impl FirewallToml {
    fn to_firewall(&self, spans: &mut Spans) -> Result<Firewall, Problem> {
        let mut firewall = Firewall::default().forward_policy(self.forward_policy.into());
        for rule in &self.forward {
            let mut r = ForwardRule {
                verdict: rule.verdict.into(),
                protocol: rule.protocol.map(Into::into),
                destination_port: rule.destination_port,
                ..ForwardRule::default()
            };
            r.in_interface = rule
                .in_interface
                .as_ref()
                .map(|i| interface_match(spans, i));
            r.out_interface = rule
                .out_interface
                .as_ref()
                .map(|i| interface_match(spans, i));
            r.source = rule.source.as_ref().map(parse_net).transpose()?;
            r.destination = rule.destination.as_ref().map(parse_net).transpose()?;
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
            let mut f = PortForward::new(
                forward.protocol.into(),
                forward.port,
                parse(&forward.to, "port-forward target")?,
            );
            if let Some(interface) = &forward.in_interface {
                f = f.in_interface(&spans.note(interface));
            }
            firewall = firewall.port_forward(f);
        }
        for masquerade in &self.masquerade {
            let mut m = match &masquerade.source {
                Some(source) => Masquerade::from_network(parse_net(source)?),
                None => Masquerade::all(),
            };
            m.out_interface = masquerade
                .out_interface
                .as_ref()
                .map(|i| interface_match(spans, i));
            firewall = firewall.masquerade(m);
        }
        Ok(firewall)
    }
}

/// A network or a single address (`10.0.0.2` means `10.0.0.2/32`).
fn parse_net(value: &Spanned<String>) -> Result<IpNet, Problem> {
    let text = value.get_ref();
    if text.contains('/') {
        return parse(value, "network");
    }
    let addr: std::net::IpAddr = parse(value, "address")?;
    let prefix = if addr.is_ipv4() { 32 } else { 128 };
    Ok(IpNet { addr, prefix })
}

#[cfg(test)]
mod tests {
    use super::*;
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
            "line 3, column 1: unknown field `forwardin`, expected one of `name`, `forwarding`, `default_route`, `routes`, `bridges`, `sysctls`, `firewall`"
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
            "line 3, column 66: bad port-forward target `10.0.0.1`: invalid socket address syntax"
        );
        assert_eq!(
            error("[[nodes]]\nname = \"r\"\nfirewall = { masquerade = [{ out_interface = \"!wan\" }] }\n"),
            "line 3, column 46: a firewall rule on node `r` names interface `wan`, which the node does not have (it has: lo)"
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
}
