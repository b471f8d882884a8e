//! The forms of `#[netns_test]`: sync and async bodies, `Result` bodies,
//! `#[should_panic]`, `#[rstest]` cases, `#[serial]`, and where the body runs.

use netns_fixture::prelude::*;
use netns_fixture::topology::{EndpointSpec, Topology};
use rstest::rstest;
use serial_test::serial;

fn current_inode() -> u64 {
    netns_fixture::Netns::current().unwrap().inode()
}

#[netns_test(topology = "two_servers")]
fn runs_in_the_default_node(lab: &Lab) {
    assert_eq!(lab.topology().default_node(), "client");
    assert_eq!(current_inode(), lab.node("client").netns().inode());
}

#[netns_test(topology = "lan", node = "ns2")]
fn runs_in_the_named_node(lab: &Lab) {
    assert_eq!(current_inode(), lab.node("ns2").netns().inode());
    let dev = std::fs::read_to_string("/proc/thread-self/net/dev").unwrap();
    assert!(dev.contains("veth2:"), "{dev}");
}

#[netns_test(topology = "pair")]
fn needs_no_lab_parameter() {
    let dev = std::fs::read_to_string("/proc/thread-self/net/dev").unwrap();
    assert!(dev.contains("veth-1:"), "{dev}");
}

#[netns_test(topology = "pair")]
fn result_body_with_question_mark(lab: &Lab) -> Result<(), Error> {
    let node = lab.try_node("ns-2")?;
    assert_eq!(
        node.interface("veth-2")?.addresses[0].to_string(),
        "10.0.0.20/16"
    );
    Ok(())
}

#[netns_test(topology = "pair")]
#[should_panic(expected = "lab `pair` has no node `nope` (nodes are: ns-1, ns-2)")]
fn should_panic_sees_the_body_panic(lab: &Lab) {
    lab.node("nope");
}

#[netns_test(topology = "host_ns", node = "ns_rifky")]
async fn async_body_runs_in_the_node(lab: &Lab) -> Result<(), Error> {
    let inside = lab.node("ns_rifky").netns().inode();
    assert_eq!(current_inode(), inside);
    let spawned = tokio::spawn(async { current_inode() }).await.unwrap();
    assert_eq!(spawned, inside);
    let blocking = tokio::task::spawn_blocking(current_inode).await.unwrap();
    assert_eq!(blocking, inside);
    lab.try_node("host")?;
    Ok(())
}

#[netns_test(
    topology = "lan",
    node = "ns1",
    flavor = "multi_thread",
    worker_threads = 2
)]
async fn every_worker_thread_is_inside_the_node(lab: &Lab) {
    let inside = lab.node("ns1").netns().inode();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            tokio::spawn(async {
                tokio::task::yield_now().await;
                (std::thread::current().id(), current_inode())
            })
        })
        .collect();
    let mut threads = std::collections::HashSet::new();
    for task in tasks {
        let (thread, inode) = task.await.unwrap();
        threads.insert(thread);
        assert_eq!(inode, inside, "a task on {thread:?} ran outside the node");
    }
    let tcp = tokio::net::TcpListener::bind("192.168.0.2:0").await;
    assert!(tcp.is_ok(), "ns1's address is local: {tcp:?}");
}

#[netns_test(topology = "pair")]
#[rstest]
#[case("ns-1", "10.0.0.10")]
#[case("ns-2", "10.0.0.20")]
fn rstest_cases_reach_the_body(#[case] node: &str, #[case] address: &str, lab: &Lab) {
    assert_eq!(lab.node(node).ipv4().unwrap().to_string(), address);
}

#[netns_test(topology = "lan", node = "host")]
#[rstest]
fn rstest_values_compose(#[values("ns1", "ns2")] node: &str, lab: &Lab) {
    assert!(lab.node(node).ipv4().is_some());
    assert_eq!(current_inode(), lab.node("host").netns().inode());
}

#[netns_test(topology = "pair")]
#[rstest]
#[case(1)]
#[case(2)]
async fn rstest_async_cases(#[case] n: u32, lab: &Lab) {
    assert_eq!(lab.nodes().len(), 2);
    assert_eq!(current_inode(), lab.node("ns-1").netns().inode());
    // The case value reaches the async body: `n` echo requests, `n` replies.
    let report = tokio::task::spawn_blocking(move || {
        ping(
            "10.0.0.20".parse().unwrap(),
            &PingOptions::default().count(n as u16),
        )
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(report.received(), n as usize);
}

static IN_SERIAL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn exclusive() {
    use std::sync::atomic::Ordering;
    assert!(
        !IN_SERIAL.swap(true, Ordering::SeqCst),
        "two #[serial] tests overlapped"
    );
    std::thread::sleep(std::time::Duration::from_millis(30));
    IN_SERIAL.store(false, Ordering::SeqCst);
}

#[netns_test(topology = "pair")]
#[serial]
fn serial_one(lab: &Lab) {
    exclusive();
    assert_eq!(lab.name(), "pair");
}

#[netns_test(topology = "pair")]
#[serial]
fn serial_two(lab: &Lab) {
    exclusive();
    assert_eq!(lab.name(), "pair");
}

/// `n` nodes `a`, `b`, `c`, ... on one switch: `a` holds the bridge `br0`
/// (10.9.0.1/24) and every other node's `eth0` (10.9.0.2/24, 10.9.0.3/24, ...)
/// is a port of it.
fn servers(n: usize) -> Topology {
    assert!((1..=26).contains(&n), "servers(n) names nodes a to z");
    let names: Vec<String> = (0..n)
        .map(|i| char::from(b'a' + i as u8).to_string())
        .collect();
    let mut builder = Topology::builder("servers").node("a", |a| a.bridge("br0", &["10.9.0.1/24"]));
    for (i, name) in names.iter().enumerate().skip(1) {
        builder = builder.node(name, |n| n).link(
            (
                name.as_str(),
                "eth0",
                format!("10.9.0.{}/24", i + 1).as_str(),
            ),
            EndpointSpec::new("a", &format!("port-{name}")).bridge("br0"),
        );
    }
    builder.build().expect("servers(n) is valid")
}

fn addresses(lab: &Lab) -> Vec<(String, String)> {
    lab.nodes()
        .iter()
        .map(|n| {
            (
                n.name().to_string(),
                n.ipv4().map(|a| a.to_string()).unwrap_or_default(),
            )
        })
        .collect()
}

fn pair_of(lab: &Lab, a: &str, b: &str) {
    lab.node(a)
        .ping(b, &PingOptions::default().count(1))
        .unwrap()
        .assert_all_replied();
}

#[netns_test(topology = servers(3))]
fn computed_topology(lab: &Lab) {
    assert_eq!(lab.name(), "servers");
    assert_eq!(
        addresses(lab),
        [("a", "10.9.0.1"), ("b", "10.9.0.2"), ("c", "10.9.0.3")]
            .map(|(n, a)| (n.to_string(), a.to_string()))
    );
    // The default node is the first one.
    assert_eq!(current_inode(), lab.node("a").netns().inode());
    pair_of(lab, "a", "b");
    pair_of(lab, "b", "c");
}

#[netns_test(topology = servers(2), node = "b")]
async fn computed_topology_async_in_a_named_node(lab: &Lab) -> Result<(), Error> {
    assert_eq!(current_inode(), lab.node("b").netns().inode());
    assert_eq!(
        lab.node("b").interface("eth0")?.addresses[0].to_string(),
        "10.9.0.2/24"
    );
    pair_of(lab, "b", "a");
    Ok(())
}

mod labs {
    pub fn lab() -> netns_fixture::topology::Topology {
        super::servers(2)
    }
}

#[netns_test(topology = labs::lab(), timeout = "30s")]
fn computed_by_a_path_call(lab: &Lab) {
    assert_eq!(lab.nodes().len(), 2);
    pair_of(lab, "a", "b");
}

#[netns_test(topology = {
    let n = 1 + 1;
    servers(n)
})]
fn computed_by_a_block(lab: &Lab) {
    assert_eq!(lab.nodes().len(), 2);
}

#[netns_test(topology = (|n: usize| servers(2 * n))(2))]
#[allow(clippy::redundant_closure_call)]
fn computed_by_a_closure_call(lab: &Lab) {
    assert_eq!(lab.nodes().len(), 4);
    pair_of(lab, "b", "d");
}

fn four_servers() -> Topology {
    servers(4)
}

#[netns_test(topology = four_servers)]
fn a_function_path_still_works(lab: &Lab) {
    assert_eq!(lab.nodes().len(), 4);
}

// rstest's case parameters do not change the topology here: every case gets
// `servers(3)`.
#[netns_test(topology = servers(3))]
#[rstest]
#[case("b", "10.9.0.2")]
#[case("c", "10.9.0.3")]
fn computed_topology_with_rstest_cases(#[case] node: &str, #[case] address: &str, lab: &Lab) {
    assert_eq!(lab.nodes().len(), 3);
    assert_eq!(lab.node(node).ipv4().unwrap().to_string(), address);
    pair_of(lab, "a", node);
}

// The expression is evaluated in the test function, where rstest's parameters
// are: a case can size its own topology.
#[netns_test(topology = servers(n))]
#[rstest]
#[case(2)]
#[case(5)]
fn rstest_case_sizes_the_topology(#[case] n: usize, lab: &Lab) {
    assert_eq!(lab.nodes().len(), n);
    let last = lab.nodes().last().unwrap().name().to_string();
    assert_eq!(
        lab.node(&last).ipv4().unwrap().to_string(),
        format!("10.9.0.{n}")
    );
    pair_of(lab, "a", &last);
}

// A computed topology is known only at run time: a `node` it lacks fails the
// test before the body runs.
#[netns_test(topology = servers(2), node = "c")]
#[should_panic(
    expected = "netns-fixture: could not set up lab `servers`: lab `servers` has no node `c` (nodes are: a, b)"
)]
fn computed_topology_without_the_node() {
    unreachable!("the body does not run");
}

// A case parameter's name is the case's value, not a function.
#[netns_test(topology = topology)]
#[rstest]
#[case(servers(2), "b")]
#[case(servers(3), "c")]
fn rstest_case_gives_the_topology(#[case] topology: Topology, #[case] last: &str, lab: &Lab) {
    assert_eq!(lab.nodes().last().unwrap().name(), last);
    pair_of(lab, "a", last);
}
