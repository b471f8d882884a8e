//! Node names resolve inside the lab: for in-process HTTP and for programs run in
//! nodes, without touching the machine's own /etc/hosts.

use netns_fixture::prelude::*;
use netns_fixture::probes::http::Content;

#[netns_test(topology = "pair")]
fn programs_in_nodes_see_the_labs_hosts_file(lab: &Lab) {
    let machine_hosts = std::fs::read_to_string("/etc/hosts").unwrap();
    let out = lab
        .node("ns-1")
        .command("getent")
        .args(["ahostsv4", "ns-2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer = String::from_utf8_lossy(&out.stdout);
    let first: Vec<&str> = answer
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(first.first(), Some(&"10.0.0.20"), "{answer}");
    assert_eq!(first.last(), Some(&"ns-2"), "{answer}");

    let server = lab
        .node("ns-2")
        .serve_http(8080, Content::text("by name\n"))
        .unwrap();
    let curl = lab
        .node("ns-1")
        .command("curl")
        .args(["-s", "http://ns-2:8080/"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&curl.stdout),
        "by name\n",
        "{}",
        String::from_utf8_lossy(&curl.stderr)
    );
    assert_eq!(
        lab.node("ns-1")
            .http_get("http://ns-2:8080/")
            .unwrap()
            .text(),
        "by name\n"
    );
    // `ns-2` has an IPv4 and an IPv6 address: curl follows getaddrinfo and its
    // own happy eyeballs (IPv6 here), in-process HTTP tries IPv4 first.
    let peers: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r.peer.ip().to_string())
        .collect();
    assert_eq!(peers.len(), 2, "{peers:?}");
    assert!(
        ["10.0.0.10", "fd00:10::10"].contains(&peers[0].as_str()),
        "{peers:?}"
    );
    assert_eq!(peers[1], "10.0.0.10");

    assert_eq!(
        std::fs::read_to_string("/etc/hosts").unwrap(),
        machine_hosts,
        "the machine's /etc/hosts is untouched"
    );
    let leftovers: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!(".netns-fixture-hosts-{}-", std::process::id()))
        })
        .collect();
    assert!(
        leftovers.is_empty(),
        "scratch hosts files left: {leftovers:?}"
    );
}

#[netns_test(topology = "host_ns")]
fn lab_resolves_every_node(lab: &Lab) {
    assert_eq!(lab.resolve("ns_rifky").unwrap().to_string(), "10.0.0.11");
    assert_eq!(
        lab.node("ns_rifky").resolve("host").unwrap().to_string(),
        "10.0.0.10"
    );
    assert_eq!(lab.resolve("nobody"), None);
}
