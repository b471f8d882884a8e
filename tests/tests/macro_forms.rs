//! The forms of `#[netns_test]`: sync and async bodies, `Result` bodies,
//! `#[should_panic]`, `#[rstest]` cases, `#[serial]`, and where the body runs.

use netns_fixture::prelude::*;
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
    assert_eq!(lab.nodes().len() as u32 + n - n, 2);
    assert_eq!(current_inode(), lab.node("ns-1").netns().inode());
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
