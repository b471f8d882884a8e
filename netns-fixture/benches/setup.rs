//! Setup and teardown times of every built-in lab, next to the same `two_servers`
//! lab built the write-up's way (one `ip`/`iptables` process per step).
//!
//! Run as root: `cargo bench -p netns-fixture --bench setup`. It prints figures;
//! it asserts nothing about time. Options: `--iterations N` (default 200),
//! `--baseline-iterations N` (default 20).

use netns_fixture::probes::ping::{ping, PingOptions};
use netns_fixture::Lab;
use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

/// Per built-in: the node that pings and the address it pings.
const PINGS: [(&str, &str, &str); 4] = [
    ("pair", "ns-1", "10.0.0.20"),
    ("host_ns", "host", "10.0.0.11"),
    ("lan", "ns1", "198.51.100.2"),
    ("two_servers", "client", "10.0.0.233"),
];

fn main() {
    if std::env::args().any(|a| a == "--child-lab") {
        // One test's worth of work, in a re-executed child.
        let lab = Lab::builtin("two_servers").expect("building the lab");
        let options = PingOptions::default()
            .count(1)
            .timeout(Duration::from_secs(1));
        let report = lab
            .node("client")
            .run(|| ping("10.0.0.233".parse().unwrap(), &options))
            .unwrap();
        std::process::exit(if report.received() == 1 { 0 } else { 1 });
    }
    let mut args = std::env::args().skip(1);
    let (mut iterations, mut baseline_iterations) = (200usize, 20usize);
    while let Some(arg) = args.next() {
        let mut number = || args.next().and_then(|n| n.parse().ok()).expect("a number");
        match arg.as_str() {
            "--iterations" => iterations = number(),
            "--baseline-iterations" => baseline_iterations = number(),
            _ => {} // `cargo bench` passes `--bench`
        }
    }
    // The write-up's way names its namespaces (`ip netns add`, bind mounts under
    // /run/netns). In a private mount namespace of this process those mounts, and
    // so the namespaces, disappear with the process whatever happens.
    private_mount_namespace();

    println!("netns-fixture setup benchmark: {iterations} iterations per lab, medians (p90)");
    println!(
        "{:<13} {:>16} {:>16} {:>16} {:>16}",
        "lab", "up", "one ping", "down", "up+ping+down"
    );
    let mut ours_two_servers = Duration::ZERO;
    for (name, from, to) in PINGS {
        let target: IpAddr = to.parse().unwrap();
        let options = PingOptions::default()
            .count(1)
            .timeout(Duration::from_secs(1));
        let mut up = Vec::new();
        let mut pinging = Vec::new();
        let mut down = Vec::new();
        let mut total = Vec::new();
        for _ in 0..iterations {
            let start = Instant::now();
            let lab = Lab::builtin(name).expect("building the lab (run as root)");
            let built = Instant::now();
            let report = lab.node(from).run(|| ping(target, &options)).expect("ping");
            assert_eq!(report.received(), 1, "{name}: {report}");
            let pinged = Instant::now();
            drop(lab);
            let end = Instant::now();
            up.push(built - start);
            pinging.push(pinged - built);
            down.push(end - pinged);
            total.push(end - start);
        }
        if name == "two_servers" {
            ours_two_servers = median(&mut total.clone());
        }
        println!(
            "{name:<13} {:>16} {:>16} {:>16} {:>16}",
            stats(&mut up),
            stats(&mut pinging),
            stats(&mut down),
            stats(&mut total)
        );
    }

    let mut baseline = Vec::new();
    for _ in 0..baseline_iterations {
        let start = Instant::now();
        let processes = write_up_two_servers();
        baseline.push((start.elapsed(), processes));
    }
    let processes = baseline[0].1;
    let mut times: Vec<Duration> = baseline.into_iter().map(|(t, _)| t).collect();
    let theirs = median(&mut times.clone());
    println!(
        "{:<13} {:>16}   ({processes} ip/iptables/ping processes, {baseline_iterations} iterations)",
        "two_servers, write-up's way",
        stats(&mut times)
    );
    println!(
        "two_servers up+ping+down: netns-fixture {:.2} ms, write-up's way {:.1} ms: {:.0}x faster",
        ms(ours_two_servers),
        ms(theirs),
        theirs.as_secs_f64() / ours_two_servers.as_secs_f64()
    );
    let unprivileged = reexec_overhead(baseline_iterations.max(20), ours_two_servers);
    println!("{unprivileged}");
    println!("peak memory of this process: {}", peak_rss());
    println!(
        "(down = dropping the lab; the kernel dismantles namespaces asynchronously afterwards)"
    );
}

/// What the unprivileged path adds to a test: re-executing the test binary, as
/// root of a fresh user namespace, to build two_servers and ping across it —
/// next to the same child without a user namespace and the in-process root path.
fn reexec_overhead(iterations: usize, in_process: Duration) -> String {
    let exe = std::env::current_exe().unwrap();
    let time = |user_namespace: bool| {
        let mut times = Vec::new();
        for _ in 0..iterations {
            let start = Instant::now();
            let mut command = Command::new(&exe);
            command.arg("--child-lab");
            if user_namespace {
                netns_fixture::__private::enter_user_namespace_on_exec(&mut command, 2);
            }
            let status = command.status().expect("re-executing the benchmark");
            assert!(status.success(), "the child lab failed: {status}");
            times.push(start.elapsed());
        }
        median(&mut times)
    };
    let plain = time(false);
    let userns = time(true);
    format!(
        "unprivileged path, two_servers up+ping+down per test: {:.2} ms re-executed in a user namespace, \
         {:.2} ms re-executed as root, {:.2} ms in process as root\n  \
         => the re-exec costs {:.2} ms, the user namespace {:.2} ms more",
        ms(userns),
        ms(plain),
        ms(in_process),
        ms(plain.saturating_sub(in_process)),
        ms(userns.saturating_sub(plain)),
    )
}

fn private_mount_namespace() {
    // SAFETY: called while the process has one thread, as CLONE_NEWNS requires.
    unsafe {
        assert_eq!(
            libc::unshare(libc::CLONE_NEWNS),
            0,
            "unshare(CLONE_NEWNS): run as root"
        );
        let root = c"/";
        let r = libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        );
        assert_eq!(r, 0, "making / private");
    }
}

/// Write-up 003's lab, one process per step, as a person types it (with the veths
/// created directly in their namespaces: the machine's own namespace is not touched).
fn write_up_two_servers() -> usize {
    let suffix = std::process::id();
    let ns = |n: &str| format!("{n}-{suffix}");
    let (client, router, server1, server2) =
        (ns("client"), ns("router"), ns("server1"), ns("server2"));
    let mut steps: Vec<Vec<String>> = Vec::new();
    let mut ip = |args: &str| steps.push(args.split(' ').map(String::from).collect());
    for n in [&client, &router, &server1, &server2] {
        ip(&format!("ip netns add {n}"));
    }
    ip(&format!(
        "ip -n {client} link add eth0 type veth peer name ens5 netns {router}"
    ));
    ip(&format!(
        "ip -n {router} link add veth0 type veth peer name veth1 netns {server1}"
    ));
    ip(&format!(
        "ip -n {router} link add veth2 type veth peer name veth3 netns {server2}"
    ));
    for (n, dev, addr) in [
        (&client, "eth0", "10.0.0.2/24"),
        (&router, "ens5", "10.0.0.233/24"),
        (&router, "veth0", "192.168.0.1/24"),
        (&server1, "veth1", "192.168.0.2/24"),
        (&router, "veth2", "192.168.1.1/24"),
        (&server2, "veth3", "192.168.1.2/24"),
    ] {
        ip(&format!("ip -n {n} addr add {addr} dev {dev}"));
        ip(&format!("ip -n {n} link set dev {dev} up"));
    }
    for n in [&client, &router, &server1, &server2] {
        ip(&format!("ip -n {n} link set dev lo up"));
    }
    ip(&format!(
        "ip -n {server1} route add default via 192.168.0.1"
    ));
    ip(&format!(
        "ip -n {server2} route add default via 192.168.1.1"
    ));
    let exec = format!("ip netns exec {router}");
    ip(&format!("{exec} sysctl -q -w net.ipv4.ip_forward=1"));
    ip(&format!("{exec} iptables -P FORWARD DROP"));
    for (subnet, dev, server, port) in [
        ("192.168.0.0/24", "veth0", "192.168.0.2", 6000),
        ("192.168.1.0/24", "veth2", "192.168.1.2", 6001),
    ] {
        ip(&format!(
            "{exec} iptables -t nat -A POSTROUTING -s {subnet} -o ens5 -j MASQUERADE"
        ));
        ip(&format!(
            "{exec} iptables -A FORWARD -i ens5 -o {dev} -j ACCEPT"
        ));
        ip(&format!(
            "{exec} iptables -A FORWARD -o ens5 -i {dev} -j ACCEPT"
        ));
        ip(&format!(
            "{exec} iptables -t nat -A PREROUTING -p tcp -i ens5 --dport {port} -j DNAT --to-destination {server}:8080"
        ));
        ip(&format!(
            "{exec} iptables -A FORWARD -p tcp -d {server} --dport 8080 -m state --state NEW,ESTABLISHED,RELATED -j ACCEPT"
        ));
    }
    ip(&format!("ip netns exec {client} ping -c 1 -W 1 10.0.0.233"));
    for n in [&client, &router, &server1, &server2] {
        ip(&format!("ip netns del {n}"));
    }
    for step in &steps {
        let out = Command::new(&step[0])
            .args(&step[1..])
            .output()
            .expect("running ip");
        assert!(
            out.status.success(),
            "{}: {}",
            step.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    steps.len()
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn stats(times: &mut [Duration]) -> String {
    times.sort();
    let p90 = times[(times.len() * 9 / 10).min(times.len() - 1)];
    format!("{:.2} ({:.2}) ms", ms(times[times.len() / 2]), ms(p90))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "unknown".into())
}
