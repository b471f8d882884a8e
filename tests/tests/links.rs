//! Links you can break at run time: partition and heal, MTU, rate, delay.

use netns_fixture::prelude::*;
use netns_fixture::shaping::{QdiscParams, Shaping, ShapingError};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn quick() -> PingOptions {
    PingOptions::default()
        .count(3)
        .interval(Duration::from_millis(50))
        .timeout(Duration::from_secs(2))
}

#[netns_test(topology = "pair")]
fn partition_and_heal(lab: &Lab) {
    let ns1 = lab.node("ns-1");
    ns1.ping("ns-2", &quick()).unwrap().assert_all_replied();
    ns1.set_link_up("veth-1", false).unwrap();
    ns1.ping(
        "ns-2",
        &PingOptions::default()
            .count(1)
            .timeout(Duration::from_millis(200)),
    )
    .unwrap()
    .assert_unreachable();
    ns1.set_link_up("veth-1", true).unwrap();
    ns1.ping("ns-2", &quick()).unwrap().assert_reachable();
}

/// A healed link carries IPv6 at once too: the addresses survive the partition
/// (IPv6 drops them on link down unless told to keep them) and `set_link_up`
/// returns once neighbour discovery works again.
#[netns_test(topology = "pair")]
fn partition_and_heal_over_ipv6(lab: &Lab) {
    let ns1 = lab.node("ns-1");
    let ns2 = "fd00:10::20";
    ns1.ping(ns2, &quick()).unwrap().assert_all_replied();
    for node in ["ns-1", "ns-2"] {
        let interface = if node == "ns-1" { "veth-1" } else { "veth-2" };
        lab.node(node).set_link_up(interface, false).unwrap();
        lab.node(node).set_link_up(interface, true).unwrap();
    }
    let out = ns1
        .command("ip")
        .args([
            "-6", "-o", "addr", "show", "dev", "veth-1", "scope", "global",
        ])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("fd00:10::10/64"), "{listing}");
    // Every probe answered, the first too: no neighbour-discovery retry.
    let report = ns1
        .ping(
            ns2,
            &PingOptions::default()
                .count(1)
                .timeout(Duration::from_millis(500)),
        )
        .unwrap();
    report.assert_all_replied();
}

#[netns_test(topology = "pair")]
fn mtu_changes(lab: &Lab) {
    lab.node("ns-1").set_mtu("veth-1", 1280).unwrap();
    let out = lab
        .node("ns-1")
        .command("ip")
        .args(["-o", "link", "show", "veth-1"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("mtu 1280"), "{text}");
    let err = lab.node("ns-1").set_mtu("veth-9", 1280).unwrap_err();
    assert_eq!(
        err.to_string(),
        "node `ns-1` has no interface `veth-9` (interfaces are: veth-1)"
    );
}

/// Sends for `seconds` from ns-1 to a sink in ns-2 and returns the goodput in bit/s,
/// as the receiver sees it (first byte to last: data still in the sender's socket
/// buffers when it stops writing drains at the link's rate).
fn goodput(lab: &Lab, seconds: f64) -> f64 {
    let listener = lab
        .node("ns-2")
        .run(|| std::net::TcpListener::bind("10.0.0.20:5201").unwrap());
    let sink = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0usize;
        let mut first = None;
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            first.get_or_insert_with(Instant::now);
            total += n;
        }
        (total, first.map(|f| f.elapsed()).unwrap_or_default())
    });
    lab.node("ns-1").run(|| {
        let mut stream = std::net::TcpStream::connect("10.0.0.20:5201").unwrap();
        let chunk = vec![0u8; 1 << 14];
        let start = Instant::now();
        while start.elapsed().as_secs_f64() < seconds {
            stream.write_all(&chunk).unwrap();
        }
    });
    let (received, took) = sink.join().unwrap();
    received as f64 * 8.0 / took.as_secs_f64()
}

#[netns_test(topology = "pair")]
fn rate_limit_really_limits(lab: &Lab) {
    lab.node("ns-1")
        .shape("veth-1", &Shaping::rate(8_000_000))
        .unwrap();
    let qdisc = lab
        .node("ns-1")
        .run(|| {
            netns_fixture::shaping::current(lab.node("ns-1").interface("veth-1").unwrap().index)
        })
        .unwrap()
        .expect("a root qdisc");
    assert!(matches!(qdisc.params, QdiscParams::Tbf { .. }), "{qdisc}");
    let bits = goodput(lab, 1.0);
    // tbf counts whole frames: TCP payload is about 1448/1514 of the rate.
    assert!(
        (0.80 * 8e6..=1.05 * 8e6).contains(&bits),
        "8 Mbit/s limit, measured {bits:.0} bit/s"
    );
    lab.node("ns-1").unshape("veth-1").unwrap();
    let unlimited = goodput(lab, 0.3);
    assert!(
        unlimited > 50e6,
        "after unshape, measured {unlimited:.0} bit/s"
    );
}

#[netns_test(topology = "pair")]
fn delay_needs_netem_and_says_so_where_the_kernel_lacks_it(lab: &Lab) {
    let asked = Shaping::new().delay(Duration::from_millis(50));
    match lab.node("ns-1").shape("veth-1", &asked) {
        Err(Error::Shaping {
            source: ShapingError::MissingKernelModule { module, .. },
            ..
        }) => {
            assert_eq!(module, "sch_netem");
            let message = lab
                .node("ns-1")
                .shape("veth-1", &asked)
                .unwrap_err()
                .to_string();
            assert!(
                message.contains("needs the kernel's sch_netem module"),
                "{message}"
            );
            assert!(
                message.starts_with("node `ns-1`, interface veth-1: "),
                "{message}"
            );
        }
        Ok(()) => {
            // A kernel with netem: the delay must show in the round trip.
            let report = lab.node("ns-1").ping("ns-2", &quick()).unwrap();
            report.assert_all_replied();
            assert!(
                report.rtt().unwrap().min >= Duration::from_millis(50),
                "{report}"
            );
        }
        Err(other) => panic!("unexpected error: {other}"),
    }
}
