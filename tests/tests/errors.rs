//! Bad input and missing privileges give clear errors, and leave nothing behind.

use netns_fixture::topology::{builtin, Firewall, Masquerade, Topology};
use netns_fixture::{Error, Lab};
use tests::MachineState;

/// Runs `f` on a thread whose effective capabilities lack CAP_SYS_ADMIN (capset
/// changes only the calling thread), as for an unprivileged user.
fn without_cap_sys_admin<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|s| {
        s.spawn(|| {
            #[repr(C)]
            struct Header {
                version: u32,
                pid: i32,
            }
            #[repr(C)]
            #[derive(Clone, Copy, Default)]
            struct Data {
                effective: u32,
                permitted: u32,
                inheritable: u32,
            }
            const VERSION_3: u32 = 0x2008_0522;
            const CAP_SYS_ADMIN: u32 = 21;
            let mut header = Header {
                version: VERSION_3,
                pid: 0,
            };
            let mut data = [Data::default(); 2];
            // SAFETY: capget/capset with a v3 header and two data words, per capget(2).
            unsafe {
                assert_eq!(
                    libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()),
                    0
                );
                data[0].effective &= !(1 << CAP_SYS_ADMIN);
                assert_eq!(
                    libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()),
                    0
                );
            }
            f()
        })
        .join()
        .unwrap()
    })
}

#[test]
fn not_privileged_says_what_to_do() {
    let before = MachineState::capture();
    let err = without_cap_sys_admin(|| Lab::builtin("two_servers").unwrap_err());
    assert!(matches!(err, Error::NotPrivileged(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with("not privileged enough to create a network namespace"),
        "{message}"
    );
    assert!(
        message.contains("CAP_SYS_ADMIN and CAP_NET_ADMIN"),
        "{message}"
    );
    assert!(message.contains("Run the tests as root"), "{message}");
    assert_eq!(MachineState::capture(), before);
}

#[test]
fn a_failing_step_names_lab_node_and_step_and_leaves_nothing() {
    // Valid as a description, refused by the kernel: a /0 address on a veth is
    // fine, but a route via a gateway that no interface can reach is not.
    let topology = Topology::builder("unreachable_gateway")
        .node("a", |n| n.route("10.99.0.0/16", "172.31.0.1"))
        .node("b", |n| n)
        .link(("a", "eth0", "10.0.0.1/24"), ("b", "eth0", "10.0.0.2/24"))
        .build()
        .unwrap();
    let before = MachineState::capture();
    let err = Lab::build(&topology).unwrap_err();
    assert_eq!(
        err.to_string(),
        "lab `unreachable_gateway`, node `a`: adding route 10.99.0.0/16 via 172.31.0.1: Network is unreachable (os error 101)"
    );
    assert_eq!(MachineState::capture(), before);
}

#[test]
fn invalid_topologies_are_refused_before_anything_is_created() {
    let cases: Vec<(Result<Topology, _>, &str)> = vec![
        (
            Topology::builder("t").node("a", |n| n).node("a", |n| n).build(),
            "duplicate node `a`: node names must be unique",
        ),
        (
            Topology::builder("t")
                .node("a", |n| n)
                .node("b", |n| n)
                .link(("a", "eth0", "10.0.0.1/24"), ("b", "eth0", "10.0.0.1/24"))
                .build(),
            "duplicate address 10.0.0.1: on a/eth0 and again on b/eth0",
        ),
        (
            Topology::builder("t")
                .node("a", |n| n)
                .node("b", |n| n)
                .link(("a", "eth0", "10.0.0.1/33"), ("b", "eth0"))
                .build(),
            "bad address `10.0.0.1/33` for interface `eth0` of node `a`: prefix length /33 is too long for 10.0.0.1 (at most /32)",
        ),
        (
            Topology::builder("t")
                .node("a", |n| n)
                .node("b", |n| n)
                .link(("a", "a-very-long-name0"), ("b", "eth0"))
                .build(),
            "interface name `a-very-long-name0` on node `a` is 17 bytes; Linux allows at most 15",
        ),
        (
            Topology::builder("t").node("a", |n| n).link(("a", "eth0"), ("ghost", "eth0")).build(),
            "link 1 (a/eth0 <-> ghost/eth0) refers to unknown node `ghost` (nodes are: a)",
        ),
        (
            Topology::builder("t")
                .node("r", |n| n.firewall(Firewall::default().masquerade(Masquerade::all().out_interface("wan"))))
                .build(),
            "a firewall rule on node `r` names interface `wan`, which the node does not have (it has: lo)",
        ),
    ];
    for (result, expected) in cases {
        let err = Error::from(result.unwrap_err());
        assert_eq!(err.to_string(), format!("invalid topology: {expected}"));
    }
}

#[test]
fn unknown_nodes_and_interfaces_list_what_exists() {
    let lab = Lab::builtin("pair").unwrap();
    assert_eq!(
        lab.try_node("ns-3").unwrap_err().to_string(),
        "lab `pair` has no node `ns-3` (nodes are: ns-1, ns-2)"
    );
    assert_eq!(
        lab.node("ns-1").interface("eth0").unwrap_err().to_string(),
        "node `ns-1` has no interface `eth0` (interfaces are: veth-1)"
    );
    assert!(Lab::builtin("three_servers")
        .unwrap_err()
        .to_string()
        .contains("pair, host_ns, lan, two_servers"));
    assert!(builtin::get("three_servers").is_none());
}

#[test]
fn probe_mistakes_are_clear_errors() {
    use netns_fixture::probes::ping::PingOptions;
    let lab = Lab::builtin("pair").unwrap();
    let ns2 = lab.node("ns-2");
    let malformed = ns2
        .capture("veth-2", "tcp prot 80")
        .unwrap_err()
        .to_string();
    assert!(
        malformed.contains("invalid tcpdump filter \"tcp prot 80\""),
        "{malformed}"
    );
    let unknown = ns2.capture("eth9", "icmp").unwrap_err().to_string();
    assert!(unknown.contains("no interface \"eth9\""), "{unknown}");
    assert!(
        unknown.contains("veth-2"),
        "the error lists what exists: {unknown}"
    );
    let nobody = lab
        .node("ns-1")
        .ping("ns-9", &PingOptions::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        nobody,
        "lab `pair` has no node `ns-9` (nodes are: ns-1, ns-2)"
    );
    let spawn = ns2
        .spawn(ns2.command("/nonexistent/program"))
        .unwrap_err()
        .to_string();
    assert!(
        spawn.starts_with("lab `pair`, node `ns-2`: starting /nonexistent/program: "),
        "{spawn}"
    );
}

/// `Duration::MAX` as a ping interval, timeout or deadline, or as a capture's wait,
/// means "as long as it takes" instead of "overflow when adding duration to instant".
#[netns_fixture::netns_test(topology = "pair", node = "ns-1")]
fn huge_durations_saturate_instead_of_panicking(lab: &Lab) {
    use netns_fixture::probes::ping::PingOptions;
    use std::time::Duration;
    let huge = PingOptions::default()
        .count(1)
        .interval(Duration::MAX)
        .timeout(Duration::MAX)
        .deadline(Duration::MAX);
    let capture = lab.node("ns-2").capture("veth-2", "icmp").unwrap();
    lab.node("ns-1")
        .ping("10.0.0.20", &huge)
        .unwrap()
        .assert_all_replied();
    let request = capture.wait_for(|p| p.is_icmp_echo_request(), Duration::MAX);
    assert!(request.is_some(), "the echo request was captured");
}
