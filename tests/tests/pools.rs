//! Automatic addressing: a lab whose addresses all come from address pools
//! (`TopologyBuilder::ipv4_pool`, `ipv6_pool`, `[pools]` in TOML) is numbered as
//! documented, and traffic crosses it in both families.

use netns_fixture::prelude::*;
use netns_fixture::topology::{EndpointSpec, Topology};
use std::net::IpAddr;
use std::time::Duration;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn twice() -> PingOptions {
    PingOptions::default()
        .count(2)
        .interval(Duration::from_millis(20))
}

/// A router with a switched LAN of two hosts and an uplink to `isp`; no address
/// is written by hand. The uplink is declared first, so it takes the first /30
/// and /64; the bridge takes the next /24 and /64 and is `.1` there.
fn pooled_lab() -> Topology {
    Topology::builder("pooled")
        .ipv4_pool("10.99.0.0/16")
        .ipv6_pool("fd00:99::/48")
        .node("router", |n| n.forwarding().bridge("br0", &[]))
        .node("h1", |n| {
            n.default_route("10.99.1.1").default_route("fd00:99:0:1::1")
        })
        .node("h2", |n| {
            n.default_route("10.99.1.1").default_route("fd00:99:0:1::1")
        })
        .node("isp", |n| {
            n.route("10.99.0.0/16", "10.99.0.1")
                .route("fd00:99::/48", "fd00:99::1")
        })
        .link(("router", "wan"), ("isp", "eth0"))
        .link(
            ("h1", "eth0"),
            EndpointSpec::new("router", "h1-port").bridge("br0"),
        )
        .link(
            ("h2", "eth0"),
            EndpointSpec::new("router", "h2-port").bridge("br0"),
        )
        .default_node("h1")
        .build()
        .unwrap()
}

/// Every address of `node`, as `interface address` strings.
fn plan_of(lab: &Lab, node: &str) -> Vec<String> {
    lab.node(node)
        .interfaces()
        .iter()
        .flat_map(|i| i.addresses.iter().map(move |a| format!("{} {a}", i.name)))
        .collect()
}

#[netns_test(topology = pooled_lab)]
fn a_pooled_lab_is_numbered_as_documented_and_carries_traffic(lab: &Lab) {
    println!("{lab}");
    assert_eq!(
        plan_of(lab, "router"),
        [
            "br0 10.99.1.1/24",
            "br0 fd00:99:0:1::1/64",
            "wan 10.99.0.1/30",
            "wan fd00:99::1/64",
        ]
    );
    assert_eq!(
        plan_of(lab, "h2"),
        ["eth0 10.99.1.3/24", "eth0 fd00:99:0:1::3/64"]
    );
    assert_eq!(
        plan_of(lab, "isp"),
        ["eth0 10.99.0.2/30", "eth0 fd00:99::2/64"]
    );

    // The body runs in h1: its neighbour on the switch, and the isp across the
    // router, in both families.
    for target in ["10.99.1.3", "fd00:99:0:1::3", "10.99.0.2", "fd00:99::2"] {
        ping(ip(target), &twice()).unwrap().assert_all_replied();
    }
    // The isp sees h1's own pooled addresses (no NAT in this lab).
    let capture = lab.node("isp").capture("eth0", "icmp or icmp6").unwrap();
    ping(ip("10.99.0.2"), &twice())
        .unwrap()
        .assert_all_replied();
    ping(ip("fd00:99::2"), &twice())
        .unwrap()
        .assert_all_replied();
    let captured = capture.stop().unwrap();
    for (target, source) in [("10.99.0.2", "10.99.1.2"), ("fd00:99::2", "fd00:99:0:1::2")] {
        let request = captured.assert_any(
            |p| p.is_icmp_echo_request_to(ip(target)),
            &format!("an echo request to {target}"),
        );
        assert_eq!(request.src_ip(), Some(ip(source)), "{captured}");
    }
}

/// The same lab as a TOML file with a `[pools]` table (tests/labs/pooled.toml):
/// the macro reads it at compile time, and it is numbered exactly as the builder's.
#[netns_test(topology = "labs/pooled.toml")]
fn a_pooled_topology_file_equals_the_builders(lab: &Lab) {
    assert_eq!(lab.topology(), &pooled_lab());
    lab.node("h2")
        .ping("10.99.1.2", &twice())
        .unwrap()
        .assert_all_replied();
    lab.node("isp")
        .ping("fd00:99:0:1::3", &twice())
        .unwrap()
        .assert_all_replied();
}
