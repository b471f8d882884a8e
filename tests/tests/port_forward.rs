//! Port forwards end to end (write-up 003): from a client, each forwarded port
//! reaches the right server — two servers both on 8080, told apart by what they
//! answer — and the server sees the source address the setup implies.

use netns_fixture::matrix::{ExpectedSource, PortForwardReport};
use netns_fixture::prelude::*;
use netns_fixture::probes::reach::Outcome::{Accepted, Refused};
use netns_fixture::topology::{Firewall, Masquerade, PortForward, Protocol, Topology};

/// Write-up 003's lab with the router's forwarding on and no rule at all: the
/// tests load the write-up's rules themselves.
fn write_up_003_without_rules() -> Topology {
    Topology::builder("write_up_003_bare")
        .node("client", |n| n)
        .node("router", |n| n.forwarding())
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
        .unwrap()
}

/// A router that masquerades towards its server, which has no route back: the
/// forwards work only because the server sees the router as the source.
fn masquerading_router() -> Topology {
    let firewall = Firewall::default()
        .port_forward(
            PortForward::new(Protocol::Tcp, 7000, "192.168.50.2:80".parse().unwrap())
                .in_interface("wan"),
        )
        .port_forward(
            PortForward::new(Protocol::Udp, 5353, "192.168.50.2:53".parse().unwrap())
                .in_interface("wan"),
        )
        .masquerade(Masquerade::all().out_interface("lan0"));
    Topology::builder("masquerading_router")
        .node("client", |n| n)
        .node("router", |n| n.forwarding().firewall(firewall))
        .node("server", |n| n)
        .link(
            ("client", "eth0", "10.0.0.2/24"),
            ("router", "wan", "10.0.0.1/24"),
        )
        .link(
            ("router", "lan0", "192.168.50.1/24"),
            ("server", "eth0", "192.168.50.2/24"),
        )
        .build()
        .unwrap()
}

/// The commands of write-up 003, as printed there (without the `# ` prompt).
const WRITE_UP_003_COMMANDS: &str = "
iptables -P FORWARD DROP
iptables -t nat -A POSTROUTING -s 192.168.0.0/255.255.255.0 -o ens5 -j MASQUERADE
iptables -A FORWARD -i ens5 -o veth0 -j ACCEPT
iptables -A FORWARD -o ens5 -i veth0 -j ACCEPT
iptables -t nat -A PREROUTING -p tcp -i ens5 --dport 6000 -j DNAT --to-destination 192.168.0.2:8080
iptables -A FORWARD -p tcp -d 192.168.0.2 --dport 8080 -m state --state NEW,ESTABLISHED,RELATED -j ACCEPT
iptables -t nat -A POSTROUTING -s 192.168.1.0/255.255.255.0 -o ens5 -j MASQUERADE
iptables -A FORWARD -i ens5 -o veth2 -j ACCEPT
iptables -A FORWARD -o ens5 -i veth2 -j ACCEPT
iptables -t nat -A PREROUTING -p tcp -i ens5 --dport 6001 -j DNAT --to-destination 192.168.1.2:8080
iptables -A FORWARD -p tcp -d 192.168.1.2 --dport 8080 -m state --state NEW,ESTABLISHED,RELATED -j ACCEPT
";

/// The check with the write-up's two Flask servers.
fn flask_check() -> PortForwardCheck {
    PortForwardCheck::new("client")
        .forward(Forward::tcp("10.0.0.233:6000", "server1", 8080).body("Hello from Flask!\n"))
        .forward(
            Forward::tcp("10.0.0.233:6001", "server2", 8080).body("Hello from the other Flask!\n"),
        )
}

/// `ENTRY -> NODE:PORT seeing SOURCE` for each forward.
fn answered(report: &PortForwardReport) -> Vec<String> {
    report
        .results()
        .iter()
        .map(|r| {
            let by = r
                .answered_by()
                .map_or("nobody".into(), |(n, p)| format!("{n}:{p}"));
            let seen = r.seen_from().map_or("nothing".into(), |ip| ip.to_string());
            format!("{} -> {by} seeing {seen}", r.forward().entry)
        })
        .collect()
}

#[netns_test(topology = "two_servers")]
fn the_forwards_two_servers_declares_reach_both_servers(lab: &Lab) {
    let check = PortForwardCheck::declared_in(lab, "client").unwrap();
    // Every forward the topology declares (IPv4, and IPv6 where it has them), at
    // ens5's address; no masquerade applies to traffic towards the servers, so
    // they see the client.
    let declared: usize = lab
        .topology()
        .nodes()
        .iter()
        .filter_map(|n| n.firewall.as_ref())
        .map(|f| f.port_forwards.len())
        .sum();
    assert_eq!(check.forwards().len(), declared, "{:?}", check.forwards());
    assert!(check
        .forwards()
        .iter()
        .all(|f| f.source == ExpectedSource::Client));
    let report = check.run(lab).unwrap();
    println!("{report}");
    report.assert_as_expected();
    let ipv4: Vec<String> = answered(&report)
        .into_iter()
        .filter(|a| a.starts_with("10."))
        .collect();
    assert_eq!(
        ipv4,
        [
            "10.0.0.233:6000 -> server1:8080 seeing 10.0.0.2",
            "10.0.0.233:6001 -> server2:8080 seeing 10.0.0.2",
        ]
    );
    let bodies: Vec<&str> = report.results().iter().filter_map(|r| r.body()).collect();
    assert!(bodies.contains(&"Hello from server1:8080\n"), "{bodies:?}");
    assert!(bodies.contains(&"Hello from server2:8080\n"), "{bodies:?}");
}

#[netns_test(topology = "two_servers")]
fn the_flask_servers_of_the_write_up(lab: &Lab) {
    let report = flask_check().run(lab).unwrap();
    report.assert_as_expected();
    let bodies: Vec<&str> = report.results().iter().filter_map(|r| r.body()).collect();
    assert_eq!(
        bodies,
        ["Hello from Flask!\n", "Hello from the other Flask!\n"]
    );
    assert_eq!(
        report.to_string(),
        "port forwards from client: all 2 as expected
  entry            proto  expected                         got
  10.0.0.233:6000  tcp    server1:8080, seeing the client  server1:8080, seeing 10.0.0.2 (the client): \"Hello from Flask!\\n\"
  10.0.0.233:6001  tcp    server2:8080, seeing the client  server2:8080, seeing 10.0.0.2 (the client): \"Hello from the other Flask!\\n\"
"
    );
}

#[netns_test(topology = write_up_003_without_rules)]
fn the_write_ups_iptables_commands_pasted_as_they_are(lab: &Lab) {
    let router = lab.node("router");
    router.iptables_commands(WRITE_UP_003_COMMANDS).unwrap();
    flask_check().check(lab);
    // Each DNAT rule counted the one connection through it.
    let ruleset = router.ruleset().unwrap();
    println!("{ruleset}");
    for target in ["192.168.0.2:8080", "192.168.1.2:8080"] {
        let dnat = ruleset.rule_matching(&format!("--to-destination {target}"));
        assert_eq!(
            (dnat.table.as_str(), dnat.chain.as_str()),
            ("nat", "PREROUTING")
        );
        assert_eq!(dnat.packets(), 1, "{dnat}");
    }
    assert_eq!(
        ruleset
            .chain("ip", "filter", "FORWARD")
            .unwrap()
            .hook
            .as_ref()
            .unwrap()
            .policy
            .as_deref(),
        Some("drop")
    );
}

#[netns_test(topology = write_up_003_without_rules)]
fn the_same_forwards_written_in_nftables(lab: &Lab) {
    lab.node("router")
        .load_nftables(
            r#"
table ip nat {
	chain prerouting {
		type nat hook prerouting priority dstnat;
		iifname "ens5" tcp dport 6000 dnat to 192.168.0.2:8080
		iifname "ens5" tcp dport 6001 dnat to 192.168.1.2:8080
	}
}
table ip filter {
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		ct status dnat accept
	}
}
"#,
        )
        .unwrap();
    flask_check().check(lab);
}

#[netns_test(topology = write_up_003_without_rules)]
fn a_forward_to_the_wrong_server_is_caught(lab: &Lab) {
    // A copy-paste slip: 6001 also goes to server1.
    let slipped = WRITE_UP_003_COMMANDS.replace(
        "--dport 6001 -j DNAT --to-destination 192.168.1.2:8080",
        "--dport 6001 -j DNAT --to-destination 192.168.0.2:8080",
    );
    lab.node("router").iptables_commands(&slipped).unwrap();
    let report = flask_check().run(lab).unwrap();
    assert!(!report.is_as_expected());
    assert_eq!(
        report.mismatch_table(),
        "port forwards from client: 1 of 2 differs from what was expected
  entry            proto  expected                         got
  10.0.0.233:6001  tcp    server2:8080, seeing the client  server1:8080, seeing 10.0.0.2 (the client): \"Hello from Flask!\\n\"
"
    );
}

#[netns_test(topology = masquerading_router)]
fn masqueraded_forwards_are_seen_from_the_router(lab: &Lab) {
    let check = PortForwardCheck::declared_in(lab, "client").unwrap();
    let router_side = ExpectedSource::Address("192.168.50.1".parse().unwrap());
    assert!(
        check.forwards().iter().all(|f| f.source == router_side),
        "{:?}",
        check.forwards()
    );
    let report = check.run(lab).unwrap();
    println!("{report}");
    report.assert_as_expected();
    assert_eq!(
        answered(&report),
        [
            "10.0.0.1:7000 -> server:80 seeing 192.168.50.1",
            "10.0.0.1:5353 -> server:53 seeing 192.168.50.1",
        ]
    );
}

#[netns_test(topology = masquerading_router)]
fn a_source_other_than_the_expected_one_is_caught(lab: &Lab) {
    let report = PortForwardCheck::new("client")
        .forward(Forward::tcp("10.0.0.1:7000", "server", 80).seen_from_client())
        .run(lab)
        .unwrap();
    assert!(!report.is_as_expected());
    let result = &report.results()[0];
    assert_eq!(result.answered_by(), Some(("server", 80)));
    assert_eq!(result.seen_from().unwrap().to_string(), "192.168.50.1");
}

#[netns_test(topology = "two_servers")]
fn the_router_exposes_only_its_forwards(lab: &Lab) {
    let report = Matrix::new("write-up 003")
        .service(Service::tcp("server1", 8080))
        .service(Service::tcp("server2", 8080))
        .flow(Flow::tcp("client", "10.0.0.233:6000", Accepted).note("forward to server1"))
        .flow(Flow::tcp("client", "10.0.0.233:6001", Accepted).note("forward to server2"))
        .flow(
            Flow::tcp("client", "10.0.0.233:6002", Refused)
                .note("no forward: the router's own closed port"),
        )
        .flow(
            Flow::tcp("client", "192.168.0.2:8080", Refused)
                .note("no route from the outside network"),
        )
        .run(lab)
        .unwrap();
    println!("{report}");
    report.assert_as_expected();
    let reached: Vec<String> = report
        .results()
        .iter()
        .filter_map(|r| r.reached())
        .map(|r| format!("{} from {}", r.service, r.arrival.peer.ip()))
        .collect();
    assert_eq!(
        reached,
        [
            "tcp server1:8080 from 10.0.0.2",
            "tcp server2:8080 from 10.0.0.2"
        ]
    );
}

#[netns_test(topology = "pair")]
fn a_topology_without_forwards_cannot_be_checked_for_them(lab: &Lab) {
    let err = PortForwardCheck::declared_in(lab, "ns-1").unwrap_err();
    assert_eq!(
        err.to_string(),
        "port forwards from ns-1: topology `pair` declares no port forward"
    );
}

#[netns_test(topology = "pair")]
fn commands_pasted_with_their_prompts_are_not_silently_ignored(lab: &Lab) {
    let err = lab
        .node("ns-2")
        .iptables_commands(
            "# iptables -P FORWARD DROP\n# iptables -A FORWARD -i ens5 -o veth0 -j ACCEPT\n",
        )
        .unwrap_err();
    assert!(err.to_string().contains("no command to run"), "{err}");
}

#[netns_test(topology = "two_servers")]
fn two_bodies_for_one_server_are_a_clear_error(lab: &Lab) {
    let error = PortForwardCheck::new("client")
        .forward(Forward::tcp("10.0.0.233:6000", "server1", 8080).body("one\n"))
        .forward(Forward::tcp("10.0.0.233:6001", "server1", 8080).body("two\n"))
        .run(lab)
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "port forwards from client: two forwards to server1:8080 expect different bodies \
         (\"one\\n\" and \"two\\n\"): one server cannot serve both"
    );
}
