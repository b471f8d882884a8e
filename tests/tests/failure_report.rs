//! When a test fails: its output shows the lab's state, a report directory holds
//! the state, the captures and a diagram, and `NETNS_FIXTURE_KEEP` keeps the lab for
//! a person to step inside.
//!
//! `deliberately_failing_port_forward` is the example: it fails on purpose, so it
//! is `#[ignore]`d and the other tests run it as a child process and check what it
//! printed and wrote. See it for yourself:
//!
//! ```sh
//! cargo test -p tests --test failure_report -- --ignored deliberately_failing_port_forward
//! NETNS_FIXTURE_KEEP=1 cargo test -p tests --test failure_report -- --ignored deliberately_failing_port_forward
//! ```

use netns_fixture::__private::on_failure;
use netns_fixture::prelude::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The example: server2 has no web server, so port 6001 of the router answers
/// with a reset and the test fails. The router's capture is still running when it
/// does; server1's was stopped and its packets checked earlier.
#[netns_test(topology = "two_servers")]
#[ignore = "fails on purpose: the other tests of this file run it and check its report"]
fn deliberately_failing_port_forward(lab: &Lab) {
    let _web = lab
        .node("server1")
        .serve_http(8080, Content::text("Hello from Flask!\n"))
        .unwrap();
    let outside = lab.node("router").capture("ens5", "tcp").unwrap();
    let server1 = lab
        .node("server1")
        .capture("veth1", "tcp port 8080")
        .unwrap();
    let first = lab
        .node("client")
        .http_get("http://10.0.0.233:6000/")
        .unwrap();
    assert_eq!(first.text(), "Hello from Flask!\n");
    let captured = server1.stop().unwrap();
    captured.assert_any(|p| p.dst_port() == Some(8080), "a packet to server1:8080");

    let second = lab.node("client").http_get("http://10.0.0.233:6001/");
    assert!(
        second.is_ok(),
        "port 6001 should reach the web server on server2: {second:?}"
    );
    drop(outside);
}

/// A passing twin, to check what a passing test writes.
#[netns_test(topology = "pair")]
#[ignore = "run by success_writes_a_report_only_when_asked"]
fn deliberately_passing(lab: &Lab) {
    lab.node("ns-1")
        .ping("ns-2", &PingOptions::default().count(1))
        .unwrap()
        .assert_all_replied();
}

/// The children write the same report directory: one at a time.
static CHILDREN: Mutex<()> = Mutex::new(());

fn child(test: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--ignored", "--exact", test, "--test-threads=1"])
        .env_remove("NETNS_FIXTURE_KEEP")
        .env_remove("NETNS_FIXTURE_REPORT")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null());
    // No controlling terminal: a hold must not wait on the terminal of whoever
    // runs these tests.
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    command
}

/// Runs `command` to completion, killing it after a minute.
fn output_within_a_minute(command: &mut Command) -> Output {
    tests::output_within(command, Duration::from_secs(60))
}

/// [`output_within_a_minute`] for a program that starts helpers: it runs in a
/// process group of its own, killed as a whole once the program has exited.
fn group_output_within_a_minute(command: &mut Command) -> Output {
    command.process_group(0);
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let group = child.id() as i32;
    let (done, wait) = std::sync::mpsc::channel();
    let watchdog = std::thread::spawn(move || {
        let _ = wait.recv_timeout(Duration::from_secs(60));
        // SAFETY: killing the process group of the child we started.
        unsafe { libc::kill(-group, libc::SIGKILL) };
    });
    let output = child.wait_with_output();
    let _ = done.send(());
    watchdog.join().unwrap();
    output.unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The report directory a child's output names.
fn report_dir_in(output: &str) -> PathBuf {
    let line = output
        .lines()
        .find_map(|l| l.strip_prefix("Report: "))
        .unwrap_or_else(|| panic!("no `Report:` line in\n{output}"));
    Path::new(line.trim()).parent().unwrap().to_path_buf()
}

fn assert_contains(haystack: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            haystack.contains(needle),
            "{needle:?} missing in\n{haystack}"
        );
    }
}

fn tcpdump_read(file: &Path) -> String {
    let out = Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(file)
        .output()
        .expect("running tcpdump (install it: scripts/setup-debian.sh)");
    assert!(out.status.success(), "tcpdump: {}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn failing_test_shows_the_state_and_writes_the_report() {
    let _one = CHILDREN.lock().unwrap_or_else(|p| p.into_inner());
    let output = output_within_a_minute(&mut child("deliberately_failing_port_forward"));
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(101),
        "{stdout}{}",
        text(&output.stderr)
    );

    // The test's own output: libtest shows the captured stderr of the failed test.
    assert_contains(
        &stdout,
        &[
            "---- deliberately_failing_port_forward stdout ----",
            "netns-fixture: test `deliberately_failing_port_forward` failed in lab `two_servers` (the body ran in node `client`)",
            "  | port 6001 should reach the web server on server2: Err(",
            "  | (panicked at tests/tests/failure_report.rs:",
            "Address plan:\nlab two_servers",
            // Every node, every kind of fact.
            "node client\n  links (ip -s link)",
            "2: eth0 <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 state UP veth peer router/ens5 link/ether ",
            "eth0 inet 10.0.0.2/24 scope global",
            "10.0.0.0/24 dev eth0 proto kernel scope link src 10.0.0.2",
            "node router",
            "ens5 inet 10.0.0.233/24 scope global",
            "192.168.0.0/24 dev veth0 proto kernel scope link src 192.168.0.1",
            "net/ipv4/ip_forward = 1",
            "node server1",
            "default via 192.168.0.1 dev veth1",
            "tcp   LISTEN     [::]:8080",
            "node server2",
            "nftables (nft list ruleset)",
            "table ip netns_fixture {",
            "dnat to 192.168.1.2:8080",
            // The captures, with their packets and files.
            "Captures (read them with `tcpdump -n -r FILE`):",
            "router/ens5 filter \"tcp\", running at the failure:",
            "server1/veth1 filter \"tcp port 8080\", stopped by the test:",
            "IP 10.0.0.2.",
            "> 10.0.0.233.6001: Flags [S]",
        ],
    );
    // The neighbours the traffic needed, resolved.
    let client = stdout
        .split("node client")
        .nth(1)
        .and_then(|s| s.split("node router").next())
        .unwrap();
    let neighbours = client.split("neighbours (ip neigh)").nth(1).unwrap();
    assert!(
        neighbours
            .lines()
            .take(3)
            .any(|l| l.contains("10.0.0.233 dev eth0 lladdr ")),
        "{client}"
    );
    // The port-6001 DNAT rule matched once; the counters are in the output.
    assert!(
        stdout.contains("iifname \"ens5\" tcp dport 6001 counter packets 1 "),
        "{stdout}"
    );

    // The report directory, with the same facts.
    let dir = report_dir_in(&stdout);
    assert!(
        dir.ends_with("netns-fixture/reports/deliberately_failing_port_forward"),
        "{dir:?}"
    );
    assert!(
        dir.starts_with(target_dir()),
        "{dir:?} outside the target directory"
    );
    let summary = std::fs::read_to_string(dir.join("summary.txt")).unwrap();
    assert_contains(&summary, &["node server2", "dnat to 192.168.1.2:8080"]);
    let router = std::fs::read_to_string(dir.join("nodes/router.txt")).unwrap();
    assert_contains(
        &router,
        &[
            "node router",
            "veth2 inet 192.168.1.1/24",
            "counter packets",
        ],
    );

    // The diagram: every node, interface and address of the lab.
    let svg = std::fs::read_to_string(dir.join("topology.svg")).unwrap();
    for needle in [
        ">client<",
        ">router<",
        ">server1<",
        ">server2<",
        ">ens5<",
        ">veth3<",
        "10.0.0.233/24",
        "192.168.1.2/24",
        "test failed here",
    ] {
        assert!(svg.contains(needle), "{needle} missing in the diagram");
    }
    assert_eq!(svg.matches("<path class=\"link\"").count(), 3);

    // The HTML page: self-contained, the diagram inline, one section per node.
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains(&svg), "the page embeds the diagram");
    assert_eq!(html.matches("<details class=\"node\"").count(), 4);
    assert!(html.contains("<details class=\"node\" id=\"node-client\" open>"));
    assert!(html.contains("default-src 'none'"));
    assert!(!html.contains("<script") && !html.contains("src=\"http"));
    assert!(html.contains("href=\"captures/router-ens5-1.pcap\""));

    // The kept captures are real pcap files.
    let outside = tcpdump_read(&dir.join("captures/router-ens5-1.pcap"));
    assert!(outside.contains("IP 10.0.0.2."), "{outside}");
    assert!(
        outside.contains("> 10.0.0.233.6001: Flags [S]"),
        "{outside}"
    );
    assert!(outside.contains("10.0.0.233.6001 > 10.0.0.2."), "{outside}");
    assert!(
        outside.contains("Flags [R.]"),
        "the reset is there: {outside}"
    );
    let inside = tcpdump_read(&dir.join("captures/server1-veth1-1.pcap"));
    assert!(inside.contains("192.168.0.2.8080"), "{inside}");
}

#[test]
fn without_nft_the_state_says_so_and_shows_the_labs_own_rules() {
    let _one = CHILDREN.lock().unwrap_or_else(|p| p.into_inner());
    // nft lives in /usr/sbin: a PATH without it.
    let output = output_within_a_minute(
        child("deliberately_failing_port_forward").env("PATH", "/usr/bin:/bin"),
    );
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(101), "{stdout}");
    assert_contains(
        &stdout,
        &[
            "nft is not installed (Debian package nftables): the ruleset and its counters cannot be listed",
            "the firewall the lab installed (without counters):",
            "dnat to 192.168.1.2:8080",
            "ens5 inet 10.0.0.233/24 scope global",
        ],
    );
    assert!(!stdout.contains("could not read"), "{stdout}");
}

/// `target/`, from this test executable's path (`target/debug/deps/...`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors()
        .find(|d| d.join("CACHEDIR.TAG").is_file())
        .expect("running from a cargo target directory")
        .to_path_buf()
}

#[test]
fn success_writes_a_report_only_when_asked() {
    let _one = CHILDREN.lock().unwrap_or_else(|p| p.into_inner());
    let dir = target_dir().join("netns-fixture/reports/deliberately_passing");
    let asked =
        output_within_a_minute(child("deliberately_passing").env("NETNS_FIXTURE_REPORT", "always"));
    assert!(asked.status.success(), "{}", text(&asked.stdout));
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        html.contains("<span class=\"badge\">PASSED</span>"),
        "{html}"
    );
    assert!(html.contains("test ran here"));

    let quiet = output_within_a_minute(&mut child("deliberately_passing"));
    assert!(quiet.status.success(), "{}", text(&quiet.stdout));
    assert!(!dir.exists(), "a passing test leaves no report behind");
    assert!(!text(&quiet.stdout).contains("netns-fixture: test"));
}

/// Reads `stream` line by line on a thread, forwarding lines to a channel.
fn lines_of(stream: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_for_line(
    lines: &std::sync::mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    predicate: impl Fn(&str) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match lines.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let found = predicate(&line);
                seen.push(line);
                if found {
                    return;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => break,
        }
    }
    panic!("the expected line never came; got:\n{}", seen.join("\n"));
}

#[test]
fn kept_lab_can_be_entered_and_goes_on_sigterm() {
    let _one = CHILDREN.lock().unwrap_or_else(|p| p.into_inner());
    let mut child = child("deliberately_failing_port_forward")
        .env("NETNS_FIXTURE_KEEP", "60s")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    wait_for_line(&lines, &mut seen, |l| {
        l.starts_with("Tearing it down on SIGINT/SIGTERM")
    });
    let pid = child.id();
    // One `nsenter` line per node, with the node's addresses.
    let commands: Vec<(String, String)> = seen
        .iter()
        .filter_map(|l| {
            let (node, rest) = l.trim().split_once("  nsenter --net=")?;
            let path = rest.split_whitespace().next()?;
            Some((node.trim().to_string(), path.to_string()))
        })
        .collect();
    let nodes: Vec<&str> = commands.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        nodes,
        ["client", "router", "server1", "server2"],
        "{}",
        seen.join("\n")
    );
    assert!(seen
        .iter()
        .any(|l| l.contains("nsenter --net=") && l.contains("# 10.0.0.2/24")));
    let mut inodes = Vec::new();
    for (node, path) in &commands {
        assert!(path.starts_with(&format!("/proc/{pid}/fd/")), "{path}");
        let link = std::fs::read_link(path).unwrap();
        let inode: u64 = link
            .to_string_lossy()
            .trim_start_matches("net:[")
            .trim_end_matches(']')
            .parse()
            .unwrap();
        inodes.push(inode);
        // Stepping inside works, and it is that node.
        let out = Command::new("nsenter")
            .arg(format!("--net={path}"))
            .args(["ip", "-o", "-4", "addr", "show"])
            .output()
            .unwrap();
        let addresses = text(&out.stdout);
        let expected = match node.as_str() {
            "client" => "10.0.0.2/24",
            "router" => "10.0.0.233/24",
            "server1" => "192.168.0.2/24",
            _ => "192.168.1.2/24",
        };
        assert!(addresses.contains(expected), "{node}: {addresses}");
    }

    // SIGTERM ends the wait; the lab is torn down, then the process stops.
    let started = Instant::now();
    // SAFETY: signalling the child we started, by its pid.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let status = tests::wait_within(&mut child, Duration::from_secs(10));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    let rest: Vec<String> = lines.try_iter().collect();
    assert!(
        rest.iter()
            .any(|l| l == "netns-fixture: got SIGTERM: tearing down lab `two_servers`."),
        "{rest:?}"
    );
    assert_eq!(tests::still_held(&inodes), vec![], "namespaces left behind");
}

#[test]
fn kept_lab_waits_for_enter_on_the_terminal() {
    let _one = CHILDREN.lock().unwrap_or_else(|p| p.into_inner());
    let (controller, terminal) = tests::pseudo_terminal();
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--ignored",
            "--exact",
            "deliberately_failing_port_forward",
            "--test-threads=1",
            "--color=never",
        ])
        .env("NETNS_FIXTURE_KEEP", "1")
        .env_remove("NETNS_FIXTURE_REPORT");
    // The terminal becomes its controlling terminal, as a person's would be.
    tests::run_on_terminal(&mut command, terminal);
    let mut child = command.spawn().unwrap();
    drop(command);
    let reader = std::fs::File::from(controller.try_clone().unwrap());
    let mut writer = std::fs::File::from(controller);
    let lines = lines_of(reader);
    let mut seen = Vec::new();
    wait_for_line(&lines, &mut seen, |l| l.starts_with("Press Enter here"));
    assert!(seen.iter().any(|l| l.contains("nsenter --net=/proc/")));
    writer.write_all(b"\n").unwrap();
    let status = tests::wait_within(&mut child, Duration::from_secs(15));
    // Torn down, and the test fails as usual.
    assert_eq!(status.code(), Some(101), "{status:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut rest = Vec::new();
    while Instant::now() < deadline {
        match lines.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => rest.push(line),
            Err(_) => break,
        }
    }
    let rest = rest.join("\n");
    assert!(
        rest.contains("netns-fixture: Enter pressed: tearing down lab `two_servers`."),
        "{rest}"
    );
    assert!(rest.contains("test result: FAILED"), "{rest}");
}

#[test]
fn report_page_renders_in_chromium() {
    let chromium = ["chromium", "chromium-browser"]
        .iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .unwrap_or_else(|| {
            panic!("chromium is not installed: run scripts/setup-debian.sh (it installs the `chromium` package)")
        });
    // A lab with a bridge and IPv6, failing in-process.
    let lab = Lab::builtin("lan").unwrap();
    let test = "failure_report::report_page_renders_in_chromium";
    let capture = lab.node("host").capture("eth0", "icmp").unwrap();
    lab.node("ns1")
        .ping("198.51.100.2", &PingOptions::default().count(1))
        .unwrap()
        .assert_all_replied();
    let dir = on_failure(
        &lab,
        "ns1",
        test,
        "assertion `left == right` failed\n  left: 1\n right: 2",
    )
    .expect("a report directory");
    drop(capture);
    drop(lab);
    let page = dir.join("report.html");
    let screenshot = dir.join("screenshot.png");
    // Short: chromium's socket path must fit in 108 bytes.
    let profile =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("chromium-{}", std::process::id()));
    std::fs::create_dir_all(profile.join("tmp")).unwrap();
    let run = |extra: &[String]| {
        let mut command = Command::new(chromium);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--hide-scrollbars",
                "--window-size=1400,1500",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(format!("file://{}", page.display()))
            .env("HOME", &profile)
            .env("TMPDIR", profile.join("tmp"))
            .stdin(Stdio::null());
        group_output_within_a_minute(&mut command)
    };
    let shot = run(&[format!("--screenshot={}", screenshot.display())]);
    assert!(shot.status.success(), "{}", text(&shot.stderr));
    let dom = run(&["--dump-dom".to_string()]);
    assert!(dom.status.success(), "{}", text(&dom.stderr));
    std::fs::remove_dir_all(&profile).unwrap();

    let png = std::fs::read(&screenshot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(png.len() > 30_000, "a blank page? {} bytes", png.len());
    // What the browser built from the page.
    let dom = text(&dom.stdout);
    assert_contains(
        &dom,
        &[
            "<span class=\"badge\">FAILED</span>",
            "failure_report::report_page_renders_in_chromium",
            "left: 1",
            "<svg",
            ">ns1<",
            ">internet<",
            "br0 (bridge)",
            "192.168.0.1/24",
            "198.51.100.2/24",
            "test failed here",
            "<details class=\"node\" id=\"node-ns1\" open=\"\">",
            "host/eth0: 2 packet(s)",
            "ICMP echo request",
        ],
    );
    assert_eq!(dom.matches("<details class=\"node\"").count(), 4);
}

/// Every way a `#[netns_test]` body fails is reported; an expected panic is not.
#[netns_test(topology = "pair")]
#[ignore = "fails on purpose: run by every_kind_of_failure_is_reported"]
fn deliberately_returning_err() -> Result<(), String> {
    Err("the firewall let it through".to_string())
}

#[netns_test(topology = "pair", node = "ns-2", timeout = "300ms")]
#[ignore = "fails on purpose: run by every_kind_of_failure_is_reported"]
fn deliberately_overrunning() {
    std::thread::sleep(Duration::from_secs(3));
}

#[netns_test(topology = "pair", flavor = "multi_thread")]
#[ignore = "fails on purpose: run by every_kind_of_failure_is_reported"]
async fn deliberately_failing_async() {
    let report = tokio::task::spawn_blocking(|| {
        ping(
            "10.0.0.99".parse().unwrap(),
            &PingOptions::default()
                .count(1)
                .timeout(Duration::from_millis(100)),
        )
        .unwrap()
    })
    .await
    .unwrap();
    report.assert_all_replied();
}

#[netns_test(topology = "pair")]
#[should_panic(expected = "on purpose")]
#[ignore = "run by every_kind_of_failure_is_reported"]
fn deliberately_expected_panic() {
    panic!("on purpose");
}

#[test]
fn every_kind_of_failure_is_reported() {
    let _one = CHILDREN.lock().unwrap_or_else(|p| p.into_inner());
    for (test, node, message) in [
        (
            "deliberately_returning_err",
            "ns-1",
            "  | Error: \"the firewall let it through\"",
        ),
        (
            "deliberately_overrunning",
            "ns-2",
            "  | netns-fixture: test body exceeded its timeout of 300ms (lab `pair`, node `ns-2`)",
        ),
        (
            "deliberately_failing_async",
            "ns-1",
            "  | ping 10.0.0.99: expected 1 echo reply, got 0 (seq 1: no reply after 100 ms)",
        ),
    ] {
        let output = output_within_a_minute(&mut child(test));
        let stdout = text(&output.stdout);
        assert_eq!(output.status.code(), Some(101), "{test}: {stdout}");
        assert_contains(
            &stdout,
            &[
                &format!(
                    "netns-fixture: test `{test}` failed in lab `pair` (the body ran in node `{node}`)"
                ),
                message,
                "node ns-2\n  links (ip -s link)",
                "veth-2 inet 10.0.0.20/16 scope global",
            ],
        );
        let dir = report_dir_in(&stdout);
        assert!(dir.ends_with(test), "{dir:?}");
        let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
        assert!(
            html.contains("<span class=\"badge\">FAILED</span>"),
            "{test}"
        );
    }

    let dir = target_dir().join("netns-fixture/reports/deliberately_expected_panic");
    let expected = output_within_a_minute(&mut child("deliberately_expected_panic"));
    let stdout = text(&expected.stdout);
    assert!(expected.status.success(), "{stdout}");
    assert!(!stdout.contains("netns-fixture: test"), "{stdout}");
    assert!(!dir.exists(), "an expected panic writes no report");
}

/// Overruns its timeout, then returns as if it passed: too late, the test failed.
#[netns_test(topology = "pair", timeout = "200ms")]
#[ignore = "fails on purpose: run by a_body_that_returns_after_its_timeout_keeps_the_timeout_report"]
fn deliberately_overrunning_then_returning() {
    std::thread::sleep(Duration::from_millis(600));
}

/// Keeps the process alive while the overrunning body above comes back.
#[test]
#[ignore = "run by a_body_that_returns_after_its_timeout_keeps_the_timeout_report"]
fn deliberately_lingering() {
    std::thread::sleep(Duration::from_millis(1500));
}

#[test]
fn a_body_that_returns_after_its_timeout_keeps_the_timeout_report() {
    let _one = CHILDREN.lock().unwrap_or_else(|p| p.into_inner());
    let output = output_within_a_minute(
        child("deliberately_overrunning_then_returning").arg("deliberately_lingering"),
    );
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(101), "{stdout}");
    assert!(
        stdout.contains("test deliberately_lingering ... ok"),
        "the body returned while the process still ran: {stdout}"
    );
    // One report, the timeout's, still there after the body came back.
    assert_eq!(
        stdout.matches("netns-fixture: test `").count(),
        1,
        "{stdout}"
    );
    let dir = report_dir_in(&stdout);
    let summary = std::fs::read_to_string(dir.join("summary.txt")).unwrap();
    assert!(
        summary.contains("test body exceeded its timeout of 200ms"),
        "{summary}"
    );
}
