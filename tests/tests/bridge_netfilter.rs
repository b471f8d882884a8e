//! Bridged frames skip a lab node's IP firewall on every machine (even where the
//! kernel's br_netfilter is loaded, as on this one and on any Docker host),
//! unless the node asks for Docker-like bridge netfilter.

use netns_fixture::prelude::*;
use netns_fixture::topology::{EndpointSpec, Topology};
use std::time::Duration;

/// Counts echo requests crossing the node's forward hook.
const COUNT_FORWARDED_ECHOES: &str = "table inet probe {
    chain forward {
        type filter hook forward priority 0; policy accept;
        icmp type echo-request counter comment \"forwarded echo\"
    }
}";

/// How many of three echo requests from `from` to `to` crossed `router`'s forward
/// hook (counted by a rule loaded for the call and removed after it).
fn echoes_forwarded(lab: &Lab, router: &str, from: &str, to: &str) -> u64 {
    let router = lab.node(router);
    router.load_nftables(COUNT_FORWARDED_ECHOES).unwrap();
    let pings = PingOptions::default()
        .count(3)
        .interval(Duration::from_millis(20));
    lab.node(from)
        .ping(to, &pings)
        .unwrap()
        .assert_all_replied();
    let counted = router
        .ruleset()
        .unwrap()
        .rule_with_comment("forwarded echo")
        .packets();
    router.load_nftables("delete table inet probe").unwrap();
    counted
}

/// Two pcs on one bridge of `switch`, with bridge netfilter as `docker_like` says.
fn switched(docker_like: bool) -> Topology {
    Topology::builder("switched")
        .node("switch", |n| {
            let n = n.bridge("br0", &["10.7.0.1/24"]);
            if docker_like {
                n.bridge_netfilter()
            } else {
                n
            }
        })
        .node("pc1", |n| n)
        .node("pc2", |n| n)
        .link(
            ("pc1", "eth0", "10.7.0.2/24"),
            EndpointSpec::new("switch", "p1").bridge("br0"),
        )
        .link(
            ("pc2", "eth0", "10.7.0.3/24"),
            EndpointSpec::new("switch", "p2").bridge("br0"),
        )
        .build()
        .unwrap()
}

/// Write-up 000/004's bridge lab: ns1 -> ns2 is switched by the host's bridge and
/// never seen by the host's forward hook.
#[netns_test(topology = "lan", node = "ns1")]
fn bridged_frames_skip_the_ip_firewall_by_default(lab: &Lab) {
    assert_eq!(
        echoes_forwarded(lab, "host", "ns1", "192.168.0.3"),
        0,
        "bridged echoes went through the host's forward hook"
    );
    // Routed traffic still does: the counter is live.
    assert_eq!(echoes_forwarded(lab, "host", "ns1", "198.51.100.2"), 3);
}

#[netns_test(topology = switched(false), node = "pc1")]
fn a_plain_bridge_node_does_not_filter_bridged_frames(lab: &Lab) {
    assert_eq!(echoes_forwarded(lab, "switch", "pc1", "10.7.0.3"), 0);
}

/// Where the kernel has br_netfilter, the opt-in passes bridged frames through the
/// node's forward hook; where it has not, building says which kernel option is missing.
#[test]
fn bridge_netfilter_on_request_passes_bridged_frames_through_the_firewall() {
    let kernel_has_it =
        std::path::Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables").exists();
    match Lab::build(&switched(true)) {
        Ok(lab) => {
            assert!(kernel_has_it, "built bridge netfilter without br_netfilter");
            assert_eq!(echoes_forwarded(&lab, "switch", "pc1", "10.7.0.3"), 3);
        }
        Err(e) => {
            assert!(!kernel_has_it, "building failed: {e}");
            assert!(e.to_string().contains("CONFIG_BRIDGE_NETFILTER"), "{e}");
        }
    }
}
