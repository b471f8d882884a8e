//! Dual stack: every built-in carries IPv6 next to IPv4 (`fd00:a:b:c::d/64` next to
//! `a.b.c.d`), and every helper works over it: ping, HTTP, reachability, capture,
//! NAT66 (masquerade and port forwards) and node names. The lab's addresses skip
//! duplicate address detection, and `Lab::build` returns only once the kernel has
//! finished setting IPv6 up: no test waits for it
//! (`ipv6_is_usable_at_once_after_setup` checks that none needs to).

use netns_fixture::prelude::*;
use netns_fixture::probes::reach::Outcome::{Accepted, Dropped, Refused};
use netns_fixture::topology::builtin;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::time::Duration;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn at(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn twice() -> PingOptions {
    PingOptions::default()
        .count(2)
        .interval(Duration::from_millis(20))
}

const SHORT: Duration = Duration::from_millis(300);

/// The output of `program args...` run in `node`, which must succeed.
fn run_in(node: &Node, program: &str, args: &[&str]) -> String {
    let out = node.command(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?} in {}: {}",
        node.name(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The packet count of the rule of `listing` (`nft list ...` output) that
/// contains `rule`.
fn packets_of(listing: &str, rule: &str) -> u64 {
    let line = listing
        .lines()
        .find(|l| l.contains(rule))
        .unwrap_or_else(|| panic!("no rule {rule:?} in\n{listing}"));
    let after = line
        .split("counter packets ")
        .nth(1)
        .unwrap_or_else(|| panic!("no counter in {line:?}"));
    after.split_whitespace().next().unwrap().parse().unwrap()
}

/// Write-up 002 over IPv6: `tcpdump -i veth-2 icmp6` while ns-1 pings fd00:10::20.
#[netns_test(topology = "pair")]
fn pair_ipv6_ping_captured_with_an_icmp6_filter(lab: &Lab) {
    let capture = lab.node("ns-2").capture("veth-2", "icmp6").unwrap();
    ping(ip("fd00:10::20"), &twice())
        .unwrap()
        .assert_all_replied();
    let captured = capture.stop().unwrap();
    captured.assert_count(
        |p| p.is_icmp_echo_request_to(ip("fd00:10::20")),
        2,
        "ICMPv6 echo requests to fd00:10::20",
    );
    let reply = captured.assert_any(
        |p| p.is_icmp_echo_reply_from(ip("fd00:10::20")),
        "an ICMPv6 echo reply from fd00:10::20",
    );
    assert_eq!(reply.dst_ip(), Some(ip("fd00:10::10")));
    assert!(
        captured.iter().all(|p| p.ipv6().is_some() && p.is_icmp()),
        "the filter kept only ICMPv6:\n{captured}"
    );

    // tcpdump reads the capture as IPv6.
    let file = std::env::temp_dir().join(format!(
        "netns-fixture-dual-stack-{}.pcap",
        std::process::id()
    ));
    captured.write_pcap(&file).unwrap();
    let out = std::process::Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(&file)
        .output()
        .unwrap();
    std::fs::remove_file(&file).unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("IP6 fd00:10::10 > fd00:10::20: ICMP6, echo request"),
        "{text}"
    );
    assert!(
        text.contains("IP6 fd00:10::20 > fd00:10::10: ICMP6, echo reply"),
        "{text}"
    );
}

/// An `ip6` filter keeps the IPv6 ping and none of the IPv4 one.
#[netns_test(topology = "pair")]
fn an_ip6_filter_keeps_only_ipv6(lab: &Lab) {
    let capture = lab.node("ns-2").capture("veth-2", "ip6").unwrap();
    ping(ip("10.0.0.20"), &twice())
        .unwrap()
        .assert_all_replied();
    ping(ip("fd00:10::20"), &twice())
        .unwrap()
        .assert_all_replied();
    let captured = capture.stop().unwrap();
    captured.assert_count(
        |p| p.is_icmp_echo_reply_from(ip("fd00:10::20")),
        2,
        "ICMPv6 echo replies",
    );
    captured.assert_none(|p| p.ipv4().is_some(), "IPv4 packets");
}

/// Write-ups 001 and 004 over IPv6: ping both ways, and the web server inside
/// the namespace reached at its IPv6 address.
#[netns_test(topology = "host_ns", node = "host")]
fn host_ns_ping_and_http_over_ipv6(lab: &Lab) {
    ping(ip("fd00:10::11"), &twice())
        .unwrap()
        .assert_all_replied();
    lab.node("ns_rifky")
        .ping("fd00:10::10", &twice())
        .unwrap()
        .assert_all_replied();

    let server = lab
        .node("ns_rifky")
        .serve_http(4000, Content::text("Hello over IPv6\n"))
        .unwrap();
    let response = HttpRequest::get("http://[fd00:10::11]:4000/")
        .send()
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "Hello over IPv6\n");
    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].peer.ip(), ip("fd00:10::10"));
    // The same server answers IPv4 too: serve_http listens on [::].
    let v4 = lab.node("host").http_get("http://10.0.0.11:4000/").unwrap();
    assert_eq!(v4.text(), "Hello over IPv6\n");
    assert_eq!(server.requests()[1].peer.ip(), ip("10.0.0.10"));
}

/// Write-up 000 over IPv6: ns1 reaches its gateway, its neighbour across the
/// bridge, and the internet node only through the host's NAT66 masquerade.
#[netns_test(topology = "lan", node = "ns1")]
fn lan_ipv6_reaches_gateway_neighbour_and_internet_through_nat66(lab: &Lab) {
    ping(ip("fd00:192:168::1"), &twice())
        .unwrap()
        .assert_all_replied();
    ping(ip("fd00:192:168::3"), &twice())
        .unwrap()
        .assert_all_replied();

    let capture = lab.node("internet").capture("eth0", "icmp6").unwrap();
    ping(ip("fd00:198:51:100::2"), &twice())
        .unwrap()
        .assert_all_replied();
    let captured = capture.stop().unwrap();
    let request = captured.assert_any(
        |p| p.is_icmp_echo_request_to(ip("fd00:198:51:100::2")),
        "an ICMPv6 echo request on the internet side",
    );
    assert_eq!(
        request.src_ip(),
        Some(ip("fd00:198:51:100::1")),
        "masqueraded source:\n{captured}"
    );
    captured.assert_none(
        |p| p.src_ip() == Some(ip("fd00:192:168::2")) || p.dst_ip() == Some(ip("fd00:192:168::2")),
        "un-NATed packets of ns1",
    );

    // HTTP through the masquerade: the internet's server sees the host.
    let server = lab
        .node("internet")
        .serve_http(80, Content::text("the internet\n"))
        .unwrap();
    let response = HttpRequest::get("http://[fd00:198:51:100::2]/")
        .send()
        .unwrap();
    assert_eq!(response.text(), "the internet\n");
    assert_eq!(server.requests()[0].peer.ip(), ip("fd00:198:51:100::1"));

    // The rule is in the ip6 table, and the kernel counted what went through it.
    let rule = "ip6 saddr fd00:192:168::/64 oifname != \"br0\" counter masquerade";
    assert!(
        lab.node("host").firewall_rules().contains(rule),
        "{}",
        lab.node("host").firewall_rules()
    );
    let listing = run_in(
        lab.node("host"),
        "nft",
        &["list", "table", "ip6", "netns_fixture"],
    );
    assert!(
        packets_of(&listing, "ip6 saddr fd00:192:168::/64") >= 2,
        "the ping and the HTTP connection were masqueraded:\n{listing}"
    );

    // Without NAT in that direction, the internet has no way in.
    lab.node("internet")
        .tcp_connect(at("[fd00:192:168::2]:80"), SHORT)
        .assert_outcome(Refused);
}

/// Write-up 003 over IPv6: the same port forwards (DNAT to [server]:8080), the
/// same forward policy, the same masquerade.
#[netns_test(topology = "two_servers")]
fn two_servers_port_forwards_over_ipv6(lab: &Lab) {
    ping(ip("fd00:10::233"), &twice())
        .unwrap()
        .assert_all_replied();
    assert_eq!(
        tests::fetch_both_forwards(lab, ip("fd00:10::233")),
        [ip("fd00:10::2"); 2],
        "DNAT keeps the client's address"
    );

    // The router's ip6 table holds the forwards, and each counted its connection.
    let rules = lab.node("router").firewall_rules();
    for expected in [
        "table ip6 netns_fixture",
        "iifname \"ens5\" tcp dport 6000 counter dnat to [fd00:192:168::2]:8080",
        "iifname \"ens5\" tcp dport 6001 counter dnat to [fd00:192:168:1::2]:8080",
        "ip6 daddr fd00:192:168::2 tcp dport 8080 ct state established,related,new counter accept",
        "ip6 saddr fd00:192:168::/64 oifname \"ens5\" counter masquerade",
    ] {
        assert!(rules.contains(expected), "{expected:?} missing in\n{rules}");
    }
    let listing = run_in(
        lab.node("router"),
        "nft",
        &["list", "table", "ip6", "netns_fixture"],
    );
    assert_eq!(packets_of(&listing, "dnat to [fd00:192:168::2]:8080"), 1);
    assert_eq!(packets_of(&listing, "dnat to [fd00:192:168:1::2]:8080"), 1);
    assert!(listing.contains("policy drop;"), "{listing}");

    // A server's own traffic out is masqueraded to the router's outside address.
    let capture = lab.node("client").capture("eth0", "icmp6").unwrap();
    lab.node("server1")
        .ping("fd00:10::2", &twice())
        .unwrap()
        .assert_all_replied();
    let captured = capture.stop().unwrap();
    let request = captured.assert_any(
        |p| p.is_icmp_echo_request_to(ip("fd00:10::2")),
        "server1's ICMPv6 echo request",
    );
    assert_eq!(request.src_ip(), Some(ip("fd00:10::233")));
}

/// Accepted, refused and dropped over IPv6, each for the reason the write-up's
/// rules give.
#[netns_test(topology = "two_servers")]
fn reachability_over_ipv6(lab: &Lab) {
    let _one = lab
        .node("server1")
        .serve_http(8080, Content::text("one\n"))
        .unwrap();
    let client = lab.node("client");

    // Accepted: the forwarded port, through DNAT to [fd00:192:168::2]:8080.
    let accepted = client.tcp_connect(at("[fd00:10::233]:6000"), SHORT);
    accepted.assert_outcome(Accepted);
    // Refused: a port the router does not forward (its own closed port: RST).
    let refused = client.tcp_connect(at("[fd00:10::233]:6002"), SHORT);
    refused.assert_outcome(Refused);
    assert_eq!(refused.errno(), Some(libc::ECONNREFUSED), "{refused}");
    // Refused: the client has no route to the inside, as in the write-up.
    let no_route = client.tcp_connect(at("[fd00:192:168::2]:8080"), SHORT);
    no_route.assert_outcome(Refused);
    assert_eq!(no_route.errno(), Some(libc::ENETUNREACH), "{no_route}");

    // Dropped: server1 to server2 is forwarded veth0 -> veth2, which no rule
    // accepts, so the forward policy drops it. server2 does listen there: the
    // router itself (not forwarding) gets in.
    let listener = lab
        .node("server2")
        .run(|| TcpListener::bind("[::]:9000").unwrap());
    lab.node("router")
        .tcp_connect(at("[fd00:192:168:1::2]:9000"), SHORT)
        .assert_outcome(Accepted);
    let dropped = lab
        .node("server1")
        .tcp_connect(at("[fd00:192:168:1::2]:9000"), SHORT);
    dropped.assert_outcome(Dropped);
    assert!(dropped.elapsed() >= SHORT, "{dropped}");
    drop(listener);
}

/// Node names have their IPv6 address in the lab's hosts file.
#[netns_test(topology = "pair")]
fn node_names_resolve_to_ipv6_for_programs(lab: &Lab) {
    let ns1 = lab.node("ns-1");
    let v6 = run_in(ns1, "getent", &["ahostsv6", "ns-2"]);
    let first: Vec<&str> = v6.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(first.first(), Some(&"fd00:10::20"), "{v6}");
    assert_eq!(first.last(), Some(&"ns-2"), "{v6}");
    let v4 = run_in(ns1, "getent", &["ahostsv4", "ns-2"]);
    assert!(v4.starts_with("10.0.0.20 "), "{v4}");

    // curl -6 by name goes over IPv6, curl -4 over IPv4.
    let server = lab
        .node("ns-2")
        .serve_http(8080, Content::text("by name\n"))
        .unwrap();
    for (flag, peer) in [("-6", "fd00:10::10"), ("-4", "10.0.0.10")] {
        let body = run_in(ns1, "curl", &["-s", flag, "http://ns-2:8080/"]);
        assert_eq!(body, "by name\n", "curl {flag}");
        let last = server.requests().last().unwrap().peer.ip();
        assert_eq!(last, ip(peer), "curl {flag}");
    }
}

#[netns_test(topology = "two_servers")]
fn node_names_resolve_to_ipv6_across_a_router(lab: &Lab) {
    let v6 = run_in(lab.node("client"), "getent", &["ahostsv6", "server1"]);
    assert!(v6.starts_with("fd00:192:168::2 "), "{v6}");
    let v6 = run_in(lab.node("server1"), "getent", &["ahostsv6", "router"]);
    assert!(v6.starts_with("fd00:10::233 "), "{v6}");
}

/// The lab's own IPv6 addresses are added without duplicate address detection,
/// and its namespaces have DAD turned off for the link-local addresses the
/// kernel makes: none is tentative (DAD would hold each one back for a second or
/// more) when `Lab::build` returns.
#[test]
fn ipv6_addresses_skip_duplicate_address_detection() {
    for name in builtin::NAMES {
        let lab = Lab::builtin(name).unwrap();
        for node in lab.nodes() {
            let listing = run_in(node, "ip", &["-6", "-o", "addr", "show", "scope", "global"]);
            let mut seen = 0;
            for address in node.addresses().filter(|a| a.addr.is_ipv6()) {
                let line = listing
                    .lines()
                    .find(|l| l.contains(&format!(" {address} ")))
                    .unwrap_or_else(|| {
                        panic!("{name}/{}: no {address} in\n{listing}", node.name())
                    });
                assert!(line.contains("nodad"), "{name}/{}: {line}", node.name());
                assert!(
                    !line.contains("tentative") && !line.contains("dadfailed"),
                    "{name}/{}: {line}",
                    node.name()
                );
                seen += 1;
            }
            assert_eq!(
                seen,
                listing.lines().count(),
                "{name}/{}: exactly the topology's global addresses:\n{listing}",
                node.name()
            );
            let link_local = run_in(node, "ip", &["-6", "-o", "addr", "show", "scope", "link"]);
            for interface in node.interfaces() {
                if !interface.addresses.iter().any(|a| a.addr.is_ipv6()) {
                    continue;
                }
                let line = link_local
                    .lines()
                    .find(|l| l.split_whitespace().nth(1) == Some(interface.name.as_str()))
                    .unwrap_or_else(|| {
                        panic!(
                            "{name}/{}: no link-local address on {} in\n{link_local}",
                            node.name(),
                            interface.name
                        )
                    });
                assert!(
                    !line.contains("tentative"),
                    "{name}/{}: {line}",
                    node.name()
                );
            }
        }
    }
}

/// The first packet of each kind works in a fresh lab, with no wait: a ping from
/// every node to every on-link neighbour's IPv6 address, a connection through
/// `two_servers`' IPv6 port forward, a ping through `lan`'s NAT66. Many labs are
/// built at once, as in a test suite, since the kernel's IPv6 set-up runs in
/// its own workers and lags most under load.
///
/// Each probe gets one packet and 300 ms: a dropped neighbour solicitation is
/// retried only after a second, so any set-up the kernel has not finished
/// fails the test. (Before `Lab::build` waited for it, about 1 fresh lab in 30
/// dropped the first solicitation, and a router forwarded no IPv6 for 1-2 s
/// while its link-local address was tentative.)
#[test]
fn ipv6_is_usable_at_once_after_setup() {
    let quick = PingOptions::default()
        .count(1)
        .timeout(Duration::from_millis(300));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let quick = quick.clone();
            std::thread::spawn(move || {
                let mut pinged = 0;
                for _ in 0..5 {
                    for name in builtin::NAMES {
                        let lab = Lab::builtin(name).unwrap();
                        // Through the routers first, while no neighbour is known
                        // yet: the router solicits the next hop from its own
                        // link-local address (a forwarded packet's source is
                        // not its own), which must not be tentative.
                        match name {
                            // No server: each server's RST proves the forward path.
                            "two_servers" => {
                                for port in [6000, 6001] {
                                    lab.node("client")
                                        .tcp_connect(at(&format!("[fd00:10::233]:{port}")), SHORT)
                                        .assert_outcome(Refused);
                                }
                            }
                            "lan" => lab
                                .node("ns1")
                                .ping("fd00:198:51:100::2", &quick)
                                .unwrap()
                                .assert_all_replied(),
                            _ => {}
                        }
                        for from in lab.nodes() {
                            for to in lab.nodes() {
                                for target in to.addresses().filter(|a| a.addr.is_ipv6()) {
                                    let on_link = from
                                        .addresses()
                                        .any(|a| a.addr != target.addr && a.contains(target.addr));
                                    if from.name() == to.name() || !on_link {
                                        continue;
                                    }
                                    let report =
                                        from.ping(&target.addr.to_string(), &quick).unwrap();
                                    assert!(
                                        report.all_replied(),
                                        "{name}: {} -> {}: {report}",
                                        from.name(),
                                        target.addr
                                    );
                                    pinged += 1;
                                }
                            }
                        }
                    }
                }
                pinged
            })
        })
        .collect();
    for thread in threads {
        // pair 2, host_ns 2, lan 8 (ns1, ns2 and the bridge: 6; host and
        // internet: 2), two_servers 6 (three links, both ways); five rounds.
        assert_eq!(thread.join().unwrap(), 5 * (2 + 2 + 8 + 6));
    }
}
