//! The built-in labs: the topologies people build by hand in the usual `ip netns`
//! write-ups, with the same node names, interface names and IPv4 addresses.
//!
//! Every built-in is dual stack. Its IPv6 plan follows one rule: the IPv4 address
//! `a.b.c.d/n` gets the unique local address `fd00:a:b:c::d/64`, the decimal
//! numbers of the IPv4 address written as the groups of the IPv6 one (so
//! `192.168.0.2` is `fd00:192:168::2` and `10.0.0.233` is `fd00:10::233`). IPv6
//! default routes, masquerades, port forwards and forward rules mirror the IPv4 ones.

use crate::{
    CtStates, EndpointSpec, Firewall, ForwardRule, IpNet, Masquerade, PortForward, Protocol,
    Topology, Verdict,
};

/// The names of the built-in topologies.
///
/// ```
/// assert!(netns_fixture_topology::builtin::NAMES.contains(&"two_servers"));
/// ```
pub const NAMES: [&str; 4] = ["pair", "host_ns", "lan", "two_servers"];

/// The built-in topology called `name`, or `None`.
///
/// ```
/// let lab = netns_fixture_topology::builtin::get("two_servers").unwrap();
/// assert_eq!(lab.default_node(), "client");
/// assert!(netns_fixture_topology::builtin::get("nope").is_none());
/// ```
pub fn get(name: &str) -> Option<Topology> {
    let topology = match name {
        "pair" => pair(),
        "host_ns" => host_ns(),
        "lan" => lan(),
        "two_servers" => two_servers(),
        _ => return None,
    };
    Some(topology.expect("built-in topologies are valid"))
}

fn net(s: &str) -> IpNet {
    s.parse().expect("built-in address")
}

/// A link end with an IPv4 and an IPv6 address.
fn end(node: &str, interface: &str, v4: &str, v6: &str) -> EndpointSpec {
    EndpointSpec::new(node, interface).address(v4).address(v6)
}

/// Two namespaces joined by one veth pair (write-ups 002 and 004):
///
/// ```text
///  ns-1                         ns-2
///  veth-1 10.0.0.10/16 ──────── veth-2 10.0.0.20/16
///         fd00:10::10/64               fd00:10::20/64
/// ```
pub fn pair() -> Result<Topology, crate::TopologyError> {
    Topology::builder("pair")
        .node("ns-1", |n| n)
        .node("ns-2", |n| n)
        .link(
            end("ns-1", "veth-1", "10.0.0.10/16", "fd00:10::10/64"),
            end("ns-2", "veth-2", "10.0.0.20/16", "fd00:10::20/64"),
        )
        .build()
}

/// One namespace joined to "the host", which is a namespace of the lab too
/// (write-ups 001 and 004); the web server of write-up 001 listens on port 4000
/// inside `ns_rifky`:
///
/// ```text
///  host                               ns_rifky
///  veth_rifky 10.0.0.10/24 ────────── veth_ns_rifky 10.0.0.11/24
///             fd00:10::10/64                        fd00:10::11/64
/// ```
pub fn host_ns() -> Result<Topology, crate::TopologyError> {
    Topology::builder("host_ns")
        .node("host", |n| n)
        .node("ns_rifky", |n| n)
        .link(
            end("host", "veth_rifky", "10.0.0.10/24", "fd00:10::10/64"),
            end(
                "ns_rifky",
                "veth_ns_rifky",
                "10.0.0.11/24",
                "fd00:10::11/64",
            ),
        )
        .build()
}

/// Namespaces on a bridge whose address is their default gateway; the host
/// forwards and masquerades towards "the internet" (write-ups 000 and 004):
///
/// ```text
///  ns1  veth1 192.168.0.2/24 ──────┐
///             fd00:192:168::2/64   │
///                                  ├── br0 192.168.0.1/24      host  eth0 198.51.100.1/24 ──── eth0 198.51.100.2/24      internet
///  ns2  veth2 192.168.0.3/24 ──────┘       fd00:192:168::1/64             fd00:198:51:100::1/64     fd00:198:51:100::2/64
///             fd00:192:168::3/64       (ports veth1-br, veth2-br)
/// ```
///
/// `ns1` and `ns2` have default routes via 192.168.0.1 and fd00:192:168::1 (the
/// bridge). The internet node has no route back to 192.168.0.0/24 or
/// fd00:192:168::/64: a ping from `ns1` to 198.51.100.2 or fd00:198:51:100::2
/// works only because the host masquerades
/// (`-s 192.168.0.0/24 ! -o br0 -j MASQUERADE`, and the same for
/// `fd00:192:168::/64` in `ip6`).
pub fn lan() -> Result<Topology, crate::TopologyError> {
    let firewall = Firewall::default()
        .masquerade(Masquerade::from_network(net("192.168.0.0/24")).out_interface_not("br0"))
        .masquerade(Masquerade::from_network(net("fd00:192:168::/64")).out_interface_not("br0"));
    Topology::builder("lan")
        .node("ns1", |n| {
            n.default_route("192.168.0.1")
                .default_route("fd00:192:168::1")
        })
        .node("ns2", |n| {
            n.default_route("192.168.0.1")
                .default_route("fd00:192:168::1")
        })
        .node("host", |n| {
            n.forwarding()
                .bridge("br0", &["192.168.0.1/24", "fd00:192:168::1/64"])
                .firewall(firewall)
        })
        .node("internet", |n| n)
        .link(
            end("ns1", "veth1", "192.168.0.2/24", "fd00:192:168::2/64"),
            ("host", "veth1-br").into_bridge_port("br0"),
        )
        .link(
            end("ns2", "veth2", "192.168.0.3/24", "fd00:192:168::3/64"),
            ("host", "veth2-br").into_bridge_port("br0"),
        )
        .link(
            end("host", "eth0", "198.51.100.1/24", "fd00:198:51:100::1/64"),
            end(
                "internet",
                "eth0",
                "198.51.100.2/24",
                "fd00:198:51:100::2/64",
            ),
        )
        .build()
}

/// Two HTTP servers, both on port 8080 in their own namespaces, behind one router
/// that forwards port 6000 to server1 and 6001 to server2 (write-up 003). The
/// router's outside interface is `ens5` at 10.0.0.233, as in the write-up; `client`
/// is "the separate machine" on that network.
///
/// ```text
///  client eth0 10.0.0.2/24 ──── ens5 10.0.0.233/24     router  veth0 192.168.0.1/24 ──── veth1 192.168.0.2/24     server1
///              fd00:10::2/64         fd00:10::233/64                 fd00:192:168::1/64        fd00:192:168::2/64
///                                                              veth2 192.168.1.1/24 ──── veth3 192.168.1.2/24     server2
///                                                                    fd00:192:168:1::1/64      fd00:192:168:1::2/64
/// ```
///
/// Router rules, as nftables equivalents of the write-up's iptables commands:
/// FORWARD policy drop (both families); accept ens5<->veth0 and ens5<->veth2 (both
/// families); accept new, established and related TCP to 192.168.x.2:8080 and
/// `[fd00:192:168:x::2]:8080`; DNAT tcp 6000 and 6001 arriving on ens5, to
/// 192.168.x.2:8080 in `ip` and to `[fd00:192:168:x::2]:8080` in `ip6`; masquerade
/// 192.168.0.0/24, 192.168.1.0/24, fd00:192:168::/64 and fd00:192:168:1::/64
/// leaving on ens5. The servers have default routes via the router (IPv4 and
/// IPv6); the client has none, as in the write-up.
pub fn two_servers() -> Result<Topology, crate::TopologyError> {
    let mut firewall = Firewall::default().forward_policy(Verdict::Drop);
    for (subnets, router_if, servers, port) in [
        (
            ["192.168.0.0/24", "fd00:192:168::/64"],
            "veth0",
            ["192.168.0.2", "fd00:192:168::2"],
            6000,
        ),
        (
            ["192.168.1.0/24", "fd00:192:168:1::/64"],
            "veth2",
            ["192.168.1.2", "fd00:192:168:1::2"],
            6001,
        ),
    ] {
        for subnet in subnets {
            firewall =
                firewall.masquerade(Masquerade::from_network(net(subnet)).out_interface("ens5"));
        }
        firewall = firewall
            .forward(
                ForwardRule::accept()
                    .in_interface("ens5")
                    .out_interface(router_if),
            )
            .forward(
                ForwardRule::accept()
                    .in_interface(router_if)
                    .out_interface("ens5"),
            );
        for server in servers {
            let target = std::net::SocketAddr::new(server.parse().expect("built-in address"), 8080);
            firewall = firewall
                .port_forward(PortForward::new(Protocol::Tcp, port, target).in_interface("ens5"));
        }
        for server in servers {
            let addr = server.parse().expect("built-in address");
            let host =
                IpNet::new(addr, if addr.is_ipv4() { 32 } else { 128 }).expect("host prefix");
            firewall = firewall.forward(
                ForwardRule::accept()
                    .protocol(Protocol::Tcp)
                    .destination(host)
                    .destination_port(8080)
                    .ct_states(CtStates::NEW_ESTABLISHED_RELATED),
            );
        }
    }
    Topology::builder("two_servers")
        .node("client", |n| n)
        .node("router", |n| n.forwarding().firewall(firewall))
        .node("server1", |n| {
            n.default_route("192.168.0.1")
                .default_route("fd00:192:168::1")
        })
        .node("server2", |n| {
            n.default_route("192.168.1.1")
                .default_route("fd00:192:168:1::1")
        })
        .link(
            end("client", "eth0", "10.0.0.2/24", "fd00:10::2/64"),
            end("router", "ens5", "10.0.0.233/24", "fd00:10::233/64"),
        )
        .link(
            end("router", "veth0", "192.168.0.1/24", "fd00:192:168::1/64"),
            end("server1", "veth1", "192.168.0.2/24", "fd00:192:168::2/64"),
        )
        .link(
            end("router", "veth2", "192.168.1.1/24", "fd00:192:168:1::1/64"),
            end("server2", "veth3", "192.168.1.2/24", "fd00:192:168:1::2/64"),
        )
        .default_node("client")
        .build()
}

/// Shorthand for the bridge-port end of a link.
trait IntoBridgePort {
    fn into_bridge_port(self, bridge: &str) -> EndpointSpec;
}

impl IntoBridgePort for (&str, &str) {
    fn into_bridge_port(self, bridge: &str) -> EndpointSpec {
        EndpointSpec::from(self).bridge(bridge)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_builds_and_is_listed() {
        for name in NAMES {
            let t = get(name).unwrap();
            assert_eq!(t.name(), name);
            assert!(t.node(t.default_node()).is_some());
        }
    }

    #[test]
    fn two_servers_matches_write_up_003() {
        let t = get("two_servers").unwrap();
        let router = t.node("router").unwrap();
        assert!(router.forwarding);
        let fw = router.firewall.as_ref().unwrap();
        assert_eq!(fw.forward_policy, Verdict::Drop);
        let forwards: Vec<String> = fw
            .port_forwards
            .iter()
            .map(|p| format!("{} -> {}", p.port, p.to))
            .collect();
        assert_eq!(
            forwards,
            [
                "6000 -> 192.168.0.2:8080",
                "6000 -> [fd00:192:168::2]:8080",
                "6001 -> 192.168.1.2:8080",
                "6001 -> [fd00:192:168:1::2]:8080",
            ]
        );
        assert_eq!(t.interfaces_of("router")[0].0, "ens5");
        let ens5: Vec<String> = t.interfaces_of("router")[0]
            .1
            .iter()
            .map(IpNet::to_string)
            .collect();
        assert_eq!(ens5, ["10.0.0.233/24", "fd00:10::233/64"]);
        let accepted: Vec<String> = fw
            .forward_rules
            .iter()
            .filter_map(|r| r.destination)
            .map(|d| d.to_string())
            .collect();
        assert_eq!(
            accepted,
            [
                "192.168.0.2/32",
                "fd00:192:168::2/128",
                "192.168.1.2/32",
                "fd00:192:168:1::2/128"
            ]
        );
    }

    /// The IPv6 plan: `a.b.c.d/n` has `fd00:a:b:c::d/64` next to it, on every
    /// interface of every built-in, and every IPv4 route has its IPv6 twin.
    #[test]
    fn every_ipv4_address_has_its_ipv6_twin() {
        let twin = |net: &IpNet| -> String {
            let std::net::IpAddr::V4(v4) = net.addr else {
                panic!("{net} is not IPv4")
            };
            let [a, b, c, d] = v4.octets();
            let v6: std::net::Ipv6Addr = format!("fd00:{a}:{b}:{c}::{d}").parse().unwrap();
            format!("{v6}/64")
        };
        for name in NAMES {
            let t = get(name).unwrap();
            for node in t.nodes() {
                for (interface, nets) in t.interfaces_of(&node.name) {
                    let v4: Vec<&IpNet> = nets.iter().filter(|n| n.addr.is_ipv4()).collect();
                    let v6: Vec<String> = nets
                        .iter()
                        .filter(|n| n.addr.is_ipv6())
                        .map(IpNet::to_string)
                        .collect();
                    let expected: Vec<String> = v4.iter().map(|n| twin(n)).collect();
                    assert_eq!(v6, expected, "{name}: {}/{interface}", node.name);
                }
                let routes = |v4: bool| {
                    node.routes
                        .iter()
                        .filter(|r| r.destination.addr.is_ipv4() == v4)
                        .count()
                };
                assert_eq!(routes(true), routes(false), "{name}: {}", node.name);
            }
        }
    }

    #[test]
    fn lan_masquerades_both_families() {
        let t = get("lan").unwrap();
        let fw = t.node("host").unwrap().firewall.clone().unwrap();
        let sources: Vec<String> = fw
            .masquerades
            .iter()
            .map(|m| m.source.unwrap().to_string())
            .collect();
        assert_eq!(sources, ["192.168.0.0/24", "fd00:192:168::/64"]);
        assert!(fw
            .masquerades
            .iter()
            .all(|m| m.out_interface == Some(crate::InterfaceMatch::IsNot("br0".into()))));
        let route: Vec<String> = t
            .node("ns1")
            .unwrap()
            .routes
            .iter()
            .map(|r| format!("{} via {}", r.destination, r.gateway))
            .collect();
        assert_eq!(
            route,
            ["0.0.0.0/0 via 192.168.0.1", "::/0 via fd00:192:168::1"]
        );
    }
}
