//! Two routers, two switched LANs and the internet, dual stack, described in TOML
//! (`examples/labs/campus.toml`): pings from LAN 1 to LAN 2 across both routers and
//! from LAN 1 to the internet through r2's masquerade, in IPv4 and IPv6, each with
//! a capture on the far end that shows the source address that arrived there.
//! Exits non-zero if anything did not happen as the file says it should.
//!
//! `cargo run -p examples --example multi_router`

use netns_fixture::probes::ping::PingOptions;
use netns_fixture::topology::Topology;
use netns_fixture::Lab;
use std::net::IpAddr;
use std::time::Duration;

const CAMPUS: &str = include_str!("../labs/campus.toml");

/// One ping from `from` to `target`, captured on the `eth0` of node `to`.
struct Check {
    from: &'static str,
    to: &'static str,
    target: &'static str,
    /// The source address `to` should see.
    expected_source: &'static str,
    why: &'static str,
}

const CHECKS: [Check; 4] = [
    Check {
        from: "lan1-pc1",
        to: "lan2-pc1",
        target: "10.2.0.10",
        expected_source: "10.1.0.10",
        why: "routed by r1 and r2, not translated",
    },
    Check {
        from: "lan1-pc1",
        to: "lan2-pc1",
        target: "fd00:2::10",
        expected_source: "fd00:1::10",
        why: "routed by r1 and r2, not translated",
    },
    Check {
        from: "lan1-pc1",
        to: "internet",
        target: "203.0.113.2",
        expected_source: "203.0.113.1",
        why: "masqueraded by r2",
    },
    Check {
        from: "lan1-pc1",
        to: "internet",
        target: "2001:db8:113::2",
        expected_source: "2001:db8:113::1",
        why: "masqueraded by r2 (NAT66)",
    },
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let topology = Topology::from_toml(CAMPUS, "campus")?;
    let lab = Lab::build(&topology)?;
    println!("Built lab `{}`:\n\n{lab}", lab.name());
    println!("r2's firewall:");
    for line in lab.node("r2").firewall_rules().lines() {
        println!("  {line}");
    }

    let options = PingOptions::default()
        .count(3)
        .interval(Duration::from_millis(20))
        .timeout(Duration::from_secs(2));
    let mut failures = Vec::new();
    for check in &CHECKS {
        let capture = lab.node(check.to).capture("eth0", "icmp or icmp6")?;
        let report = lab.node(check.from).ping(check.target, &options)?;
        let captured = capture.stop()?;
        let target: IpAddr = check.target.parse()?;
        let sources: Vec<String> = captured
            .matching(|p| p.is_icmp_echo_request_to(target))
            .iter()
            .filter_map(|p| p.src_ip())
            .map(|ip| ip.to_string())
            .collect();
        println!(
            "\n{}$ ping {}   ({} of {} replied)\n{}$ tcpdump -i eth0 'icmp or icmp6'",
            check.from,
            check.target,
            report.received(),
            report.sent(),
            check.to
        );
        for line in captured.lines() {
            println!("  {line}");
        }
        let expected = check.expected_source.to_string();
        if !report.all_replied() {
            failures.push(format!(
                "{} -> {}: {} of {} echo requests answered\n{report:#}",
                check.from,
                check.target,
                report.received(),
                report.sent()
            ));
        } else if sources.is_empty() || sources.iter().any(|s| *s != expected) {
            failures.push(format!(
                "{} -> {}: {} saw echo requests from {sources:?}, expected only {expected} ({})",
                check.from, check.target, check.to, check.why
            ));
        } else {
            println!(
                "=> {} sees the requests coming from {expected}: {}",
                check.to, check.why
            );
        }
    }

    if failures.is_empty() {
        println!("\nEvery check passed.");
        Ok(())
    } else {
        Err(format!(
            "{} check(s) failed:\n{}",
            failures.len(),
            failures.join("\n")
        )
        .into())
    }
}
