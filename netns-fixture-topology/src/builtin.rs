//! The built-in labs: the topologies people build by hand in the usual `ip netns`
//! write-ups, with the same node names, interface names and addresses.

use crate::{
    CtStates, Firewall, ForwardRule, IpNet, Masquerade, PortForward, Protocol, Topology, Verdict,
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

/// Two namespaces joined by one veth pair (write-ups 002 and 004):
///
/// ```text
///  ns-1                         ns-2
///  veth-1 10.0.0.10/16 ──────── veth-2 10.0.0.20/16
/// ```
pub fn pair() -> Result<Topology, crate::TopologyError> {
    Topology::builder("pair")
        .node("ns-1", |n| n)
        .node("ns-2", |n| n)
        .link(
            ("ns-1", "veth-1", "10.0.0.10/16"),
            ("ns-2", "veth-2", "10.0.0.20/16"),
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
/// ```
pub fn host_ns() -> Result<Topology, crate::TopologyError> {
    Topology::builder("host_ns")
        .node("host", |n| n)
        .node("ns_rifky", |n| n)
        .link(
            ("host", "veth_rifky", "10.0.0.10/24"),
            ("ns_rifky", "veth_ns_rifky", "10.0.0.11/24"),
        )
        .build()
}

/// Namespaces on a bridge whose address is their default gateway; the host
/// forwards and masquerades towards "the internet" (write-ups 000 and 004):
///
/// ```text
///  ns1  veth1 192.168.0.2/24 ─┐
///                             ├─ br0 192.168.0.1/24  host  eth0 198.51.100.1/24 ── eth0 198.51.100.2/24  internet
///  ns2  veth2 192.168.0.3/24 ─┘  (ports veth1-br, veth2-br)
/// ```
///
/// The internet node has no route back to 192.168.0.0/24: a ping from `ns1` to
/// 198.51.100.2 works only because the host masquerades
/// (`-s 192.168.0.0/24 ! -o br0 -j MASQUERADE`).
pub fn lan() -> Result<Topology, crate::TopologyError> {
    let masquerade = Masquerade::from_network(net("192.168.0.0/24")).out_interface_not("br0");
    Topology::builder("lan")
        .node("ns1", |n| n.default_route("192.168.0.1"))
        .node("ns2", |n| n.default_route("192.168.0.1"))
        .node("host", |n| {
            n.forwarding()
                .bridge("br0", &["192.168.0.1/24"])
                .firewall(Firewall::default().masquerade(masquerade))
        })
        .node("internet", |n| n)
        .link(
            ("ns1", "veth1", "192.168.0.2/24"),
            ("host", "veth1-br").into_bridge_port("br0"),
        )
        .link(
            ("ns2", "veth2", "192.168.0.3/24"),
            ("host", "veth2-br").into_bridge_port("br0"),
        )
        .link(
            ("host", "eth0", "198.51.100.1/24"),
            ("internet", "eth0", "198.51.100.2/24"),
        )
        .build()
}

/// Two HTTP servers, both on port 8080 in their own namespaces, behind one router
/// that forwards port 6000 to server1 and 6001 to server2 (write-up 003). The
/// router's outside interface is `ens5` at 10.0.0.233, as in the write-up; `client`
/// is "the separate machine" on that network.
///
/// ```text
///  client eth0 10.0.0.2/24 ──── ens5 10.0.0.233/24  router  veth0 192.168.0.1/24 ──── veth1 192.168.0.2/24  server1
///                                                           veth2 192.168.1.1/24 ──── veth3 192.168.1.2/24  server2
/// ```
///
/// Router rules, as nftables equivalents of the write-up's iptables commands:
/// FORWARD policy drop; accept ens5<->veth0 and ens5<->veth2; accept new,
/// established and related TCP to 192.168.x.2:8080; DNAT tcp 6000 and 6001 arriving
/// on ens5; masquerade 192.168.0.0/24 and 192.168.1.0/24 leaving on ens5.
pub fn two_servers() -> Result<Topology, crate::TopologyError> {
    let mut firewall = Firewall::default().forward_policy(Verdict::Drop);
    for (subnet, router_if, server, port) in [
        ("192.168.0.0/24", "veth0", "192.168.0.2", 6000),
        ("192.168.1.0/24", "veth2", "192.168.1.2", 6001),
    ] {
        firewall = firewall
            .masquerade(Masquerade::from_network(net(subnet)).out_interface("ens5"))
            .forward(
                ForwardRule::accept()
                    .in_interface("ens5")
                    .out_interface(router_if),
            )
            .forward(
                ForwardRule::accept()
                    .in_interface(router_if)
                    .out_interface("ens5"),
            )
            .port_forward(
                PortForward::new(
                    Protocol::Tcp,
                    port,
                    format!("{server}:8080").parse().expect("built-in address"),
                )
                .in_interface("ens5"),
            )
            .forward(
                ForwardRule::accept()
                    .protocol(Protocol::Tcp)
                    .destination(net(&format!("{server}/32")))
                    .destination_port(8080)
                    .ct_states(CtStates::NEW_ESTABLISHED_RELATED),
            );
    }
    Topology::builder("two_servers")
        .node("client", |n| n)
        .node("router", |n| n.forwarding().firewall(firewall))
        .node("server1", |n| n.default_route("192.168.0.1"))
        .node("server2", |n| n.default_route("192.168.1.1"))
        .link(
            ("client", "eth0", "10.0.0.2/24"),
            ("router", "ens5", "10.0.0.233/24"),
        )
        .link(
            ("router", "veth0", "192.168.0.1/24"),
            ("server1", "veth1", "192.168.0.2/24"),
        )
        .link(
            ("router", "veth2", "192.168.1.1/24"),
            ("server2", "veth3", "192.168.1.2/24"),
        )
        .default_node("client")
        .build()
}

/// Shorthand for the bridge-port end of a link.
trait IntoBridgePort {
    fn into_bridge_port(self, bridge: &str) -> crate::EndpointSpec;
}

impl IntoBridgePort for (&str, &str) {
    fn into_bridge_port(self, bridge: &str) -> crate::EndpointSpec {
        crate::EndpointSpec::from(self).bridge(bridge)
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
            ["6000 -> 192.168.0.2:8080", "6001 -> 192.168.1.2:8080"]
        );
        assert_eq!(t.interfaces_of("router")[0].0, "ens5");
        assert_eq!(
            t.interfaces_of("router")[0].1[0].to_string(),
            "10.0.0.233/24"
        );
    }
}
