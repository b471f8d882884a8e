//! The campus lab (examples/labs/campus.toml): two switched LANs, r1 joining LAN 1
//! to a transit link, r2 joining LAN 2 and the transit link to the internet with
//! a masquerade, dual stack. Traffic between the LANs crosses both routers with
//! its addresses intact; traffic to the internet leaves with r2's outside address,
//! in IPv4 and IPv6.

use netns_fixture::prelude::*;
use std::net::IpAddr;
use std::time::Duration;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn three() -> PingOptions {
    PingOptions::default()
        .count(3)
        .interval(Duration::from_millis(20))
}

/// The body runs in `lan1-pc1` (10.1.0.10, fd00:1::10).
#[netns_test(topology = "../examples/labs/campus.toml")]
fn lan1_reaches_lan2_across_both_routers(lab: &Lab) {
    for (target, source) in [("10.2.0.10", "10.1.0.10"), ("fd00:2::10", "fd00:1::10")] {
        let on_transit = lab.node("r2").capture("transit", "icmp or icmp6").unwrap();
        let arriving = lab
            .node("lan2-pc1")
            .capture("eth0", "icmp or icmp6")
            .unwrap();
        ping(ip(target), &three()).unwrap().assert_all_replied();
        let transit = on_transit.stop().unwrap();
        let arrived = arriving.stop().unwrap();

        // It went over the transit link between r1 and r2...
        transit.assert_count(
            |p| p.is_icmp_echo_request_to(ip(target)),
            3,
            &format!("echo requests to {target} on the transit link"),
        );
        // ...and reached LAN 2 with its source untouched, two hops down.
        arrived.assert_count(
            |p| p.is_icmp_echo_request_to(ip(target)) && p.src_ip() == Some(ip(source)),
            3,
            &format!("echo requests from {source} to {target}"),
        );
        let request =
            arrived.assert_any(|p| p.is_icmp_echo_request_to(ip(target)), "an echo request");
        assert_eq!(
            request.ip().unwrap().hop_limit(),
            62,
            "routed by exactly two routers:\n{arrived}"
        );
    }
    // And back the other way, from the other host of LAN 2 to the other of LAN 1.
    for target in ["10.1.0.11", "fd00:1::11"] {
        lab.node("lan2-pc2")
            .ping(target, &three())
            .unwrap()
            .assert_all_replied();
    }
}

#[netns_test(topology = "../examples/labs/campus.toml")]
fn the_internet_sees_r2s_outside_address_in_both_families(lab: &Lab) {
    let capture = lab
        .node("internet")
        .capture("eth0", "icmp or icmp6")
        .unwrap();
    ping(ip("203.0.113.2"), &three())
        .unwrap()
        .assert_all_replied();
    ping(ip("2001:db8:113::2"), &three())
        .unwrap()
        .assert_all_replied();
    lab.node("lan2-pc1")
        .ping("203.0.113.2", &three())
        .unwrap()
        .assert_all_replied();
    let captured = capture.stop().unwrap();

    for (target, outside, count) in [
        ("203.0.113.2", "203.0.113.1", 6),
        ("2001:db8:113::2", "2001:db8:113::1", 3),
    ] {
        captured.assert_count(
            |p| p.is_icmp_echo_request_to(ip(target)) && p.src_ip() == Some(ip(outside)),
            count,
            &format!("echo requests to {target} masqueraded to {outside}"),
        );
    }
    for inside in ["10.1.0.10", "fd00:1::10", "10.2.0.10"] {
        captured.assert_none(
            |p| p.src_ip() == Some(ip(inside)),
            &format!("packets from {inside} (un-NATed)"),
        );
    }
    let ruleset = lab.node("r2").firewall_rules();
    assert!(
        ruleset.contains("ip saddr 10.0.0.0/8 oifname \"wan\" counter masquerade")
            && ruleset.contains("ip6 saddr fd00::/8 oifname \"wan\" counter masquerade"),
        "{ruleset}"
    );
}

/// The internet has no route to the campus: only the masquerade lets answers in.
#[netns_test(topology = "../examples/labs/campus.toml", node = "internet")]
fn the_internet_cannot_reach_into_the_campus(lab: &Lab) {
    let once = PingOptions::default()
        .count(1)
        .timeout(Duration::from_millis(300));
    for target in ["10.1.0.10", "fd00:1::10", "10.2.0.10", "fd00:2::10"] {
        ping(ip(target), &once).unwrap().assert_unreachable();
    }
    // r2's own outside address answers.
    lab.node("internet")
        .ping("203.0.113.1", &once)
        .unwrap()
        .assert_all_replied();
}
