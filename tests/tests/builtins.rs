//! Every built-in lab, checked the way its write-up checks it by hand.

use netns_fixture::prelude::*;
use netns_fixture::probes::reach::Outcome;
use std::net::IpAddr;
use std::time::Duration;

fn once() -> PingOptions {
    PingOptions::default()
        .count(2)
        .interval(Duration::from_millis(20))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Write-up 002: `ip netns exec ns-2 tcpdump -i veth-2 icmp` while ns-1 pings 10.0.0.20.
#[netns_test(topology = "pair")]
fn pair_ping_across_the_veth_while_capturing_on_the_far_end(lab: &Lab) {
    let capture = lab.node("ns-2").capture("veth-2", "icmp").unwrap();
    ping(ip("10.0.0.20"), &once()).unwrap().assert_all_replied();
    let captured = capture.stop().unwrap();
    captured.assert_count(
        |p| p.is_icmp_echo_request(),
        2,
        "echo requests from 10.0.0.10",
    );
    let reply = captured.assert_any(
        |p| p.is_icmp_echo_reply(),
        "an ICMP echo reply from 10.0.0.20",
    );
    assert_eq!(reply.src_ip(), Some(ip("10.0.0.20")));
    assert!(
        captured.iter().all(|p| p.is_icmp()),
        "the filter kept only ICMP:\n{captured}"
    );

    // The capture file is what real tcpdump reads.
    let file = std::env::temp_dir().join(format!("netns-fixture-pair-{}.pcap", std::process::id()));
    captured.write_pcap(&file).unwrap();
    let out = std::process::Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(&file)
        .output()
        .unwrap();
    std::fs::remove_file(&file).unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().count(),
        captured.len(),
        "tcpdump -r read:\n{text}"
    );
    assert!(
        text.contains("IP 10.0.0.10 > 10.0.0.20: ICMP echo request"),
        "{text}"
    );
    assert!(
        text.contains("IP 10.0.0.20 > 10.0.0.10: ICMP echo reply"),
        "{text}"
    );
}

/// Write-ups 001 and 004: the host and the namespace reach each other.
#[netns_test(topology = "host_ns", node = "host")]
fn host_ns_pings_both_ways(lab: &Lab) {
    ping(ip("10.0.0.11"), &once()).unwrap().assert_all_replied();
    lab.node("ns_rifky")
        .ping("host", &once())
        .unwrap()
        .assert_all_replied();
}

/// Write-up 000: ns1 reaches its gateway, its neighbour, and "the internet" only
/// through the host's masquerade.
#[netns_test(topology = "lan", node = "ns1")]
fn lan_reaches_gateway_neighbour_and_internet(lab: &Lab) {
    ping(ip("192.168.0.1"), &once())
        .unwrap()
        .assert_all_replied();
    ping(ip("192.168.0.3"), &once())
        .unwrap()
        .assert_all_replied();

    let capture = lab.node("internet").capture("eth0", "icmp").unwrap();
    ping(ip("198.51.100.2"), &once())
        .unwrap()
        .assert_all_replied();
    let captured = capture.stop().unwrap();
    // The internet node never sees 192.168.0.2: the host rewrote the source.
    let request = captured.assert_any(
        |p| p.is_icmp_echo_request(),
        "an echo request on the internet side",
    );
    assert_eq!(
        request.src_ip(),
        Some(ip("198.51.100.1")),
        "masqueraded source:\n{captured}"
    );
    captured.assert_none(
        |p| p.src_ip() == Some(ip("192.168.0.2")),
        "un-NATed packets from ns1",
    );

    let ruleset = lab.node("host").firewall_rules();
    assert!(
        ruleset.contains("ip saddr 192.168.0.0/24 oifname != \"br0\" counter masquerade"),
        "{ruleset}"
    );
}

/// Write-up 003: the client reaches the router, each forwarded port reaches its
/// server, the servers see the client's own address, and nothing else gets in.
#[netns_test(topology = "two_servers")]
fn two_servers_port_forwards_as_in_the_write_up(lab: &Lab) {
    ping(ip("10.0.0.233"), &once())
        .unwrap()
        .assert_all_replied();
    assert_eq!(
        tests::fetch_both_forwards(lab, ip("10.0.0.233")),
        [ip("10.0.0.2"); 2],
        "DNAT keeps the client's address"
    );
    // Only the forwarded ports are open on the outside.
    lab.node("client")
        .tcp_connect(
            "10.0.0.233:6002".parse().unwrap(),
            Duration::from_millis(300),
        )
        .assert_outcome(Outcome::Refused);
    // A server's own traffic out is masqueraded to the router's outside address.
    let capture = lab.node("client").capture("eth0", "icmp").unwrap();
    lab.node("server1")
        .ping("10.0.0.2", &once())
        .unwrap()
        .assert_all_replied();
    let captured = capture.stop().unwrap();
    let request = captured.assert_any(|p| p.is_icmp_echo_request(), "server1's echo request");
    assert_eq!(request.src_ip(), Some(ip("10.0.0.233")));
}

/// Many labs of one topology at once: no name, index or address collides.
#[test]
fn parallel_labs_of_the_same_topology_do_not_collide() {
    let threads: Vec<_> = (0..12)
        .map(|_| {
            std::thread::spawn(|| {
                let lab = Lab::builtin("two_servers").unwrap();
                let report = lab.node("client").ping("10.0.0.233", &once()).unwrap();
                report.assert_all_replied();
                lab.nodes()
                    .iter()
                    .map(|n| n.netns().inode())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut inodes: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let all = inodes.len();
    inodes.sort();
    inodes.dedup();
    assert_eq!(inodes.len(), all, "every lab had namespaces of its own");
}
