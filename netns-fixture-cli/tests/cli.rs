//! `netns-lab` as a person uses it: a command in a node, a shell in a node, the
//! exit code, Ctrl-C and SIGTERM, and mistakes.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn netns_lab() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_netns-lab"));
    command.stdin(Stdio::null());
    command
}

/// Runs it to completion, killing it after a minute.
fn output(command: &mut Command) -> Output {
    tests::output_within(command, Duration::from_secs(60))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn runs_a_command_in_the_default_node_and_prints_the_plan() {
    let out = output(netns_lab().args(["up", "pair", "--", "ip", "-o", "-4", "addr", "show"]));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("veth-1    inet 10.0.0.10/16"), "{stdout}");
    assert!(!stdout.contains("10.0.0.20"), "{stdout}");
    assert!(
        stderr.starts_with("lab pair\n  ns-1 (default node)\n    veth-1     10.0.0.10/16"),
        "{stderr}"
    );
    assert!(
        stderr.contains("netns-lab: running the command in node `ns-1` of lab `pair`"),
        "{stderr}"
    );
}

#[test]
fn runs_in_the_chosen_node_and_returns_its_exit_code() {
    let out = output(netns_lab().args([
        "up",
        "two_servers",
        "--node",
        "server2",
        "--",
        "sh",
        "-c",
        "ip -o -4 addr show veth3; echo node=$NETNS_NODE lab=$NETNS_LAB; exit 7",
    ]));
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    assert!(stdout.contains("inet 192.168.1.2/24"), "{stdout}");
    assert!(stdout.contains("node=server2 lab=two_servers"), "{stdout}");
}

#[test]
fn reads_a_topology_file() {
    let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-two-hosts.toml");
    std::fs::write(
        &file,
        r#"
default_node = "b"
[[nodes]]
name = "a"
[[nodes]]
name = "b"
[[links]]
a = { node = "a", interface = "left", addresses = ["10.77.0.1/30"] }
b = { node = "b", interface = "right", addresses = ["10.77.0.2/30"] }
"#,
    )
    .unwrap();
    let out = output(netns_lab().arg("up").arg(&file).args([
        "--",
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        "10.77.0.1",
    ]));
    std::fs::remove_file(&file).unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stderr.starts_with("lab cli-two-hosts\n"), "{stderr}");
    assert!(stdout.contains("1 received"), "{stdout}");
}

#[test]
fn unknown_node_and_topology_are_usage_errors() {
    let out = output(netns_lab().args(["up", "pair", "--node", "ns-3", "--", "true"]));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "netns-lab: lab `pair` has no node `ns-3` (nodes are: ns-1, ns-2)\n"
    );
    let out = output(netns_lab().args(["up", "no_such_lab", "--", "true"]));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "netns-lab: no built-in topology `no_such_lab` and no file of that name \
         (built-ins: pair, host_ns, lan, two_servers)\n"
    );
    let out = output(netns_lab().args(["up", "pair", "--", "no-such-program"]));
    assert_eq!(out.status.code(), Some(127));
    assert!(
        text(&out.stderr).contains("netns-lab: cannot start `no-such-program` in node `ns-1`"),
        "{}",
        text(&out.stderr)
    );
    let out = output(netns_lab().arg("frobnicate"));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown command `frobnicate`"));
}

#[test]
fn lists_builtins_and_draws_diagrams() {
    let out = output(netns_lab().arg("list"));
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("two_servers  nodes: client, router, server1, server2"));
    let out = output(netns_lab().args(["diagram", "lan"]));
    assert!(out.status.success());
    let svg = text(&out.stdout);
    assert!(
        svg.starts_with("<svg") && svg.contains("br0 (bridge)"),
        "{svg}"
    );
}

/// Every child of `pid`'s threads.
fn children_of(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        children.extend(
            list.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    children
}

fn netns_inode(pid: u32) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
    link.to_string_lossy()
        .trim_start_matches("net:[")
        .trim_end_matches(']')
        .parse()
        .ok()
}

#[test]
fn ctrl_c_and_sigterm_tear_the_lab_down_promptly() {
    for (signal, name) in [(libc::SIGINT, "SIGINT"), (libc::SIGTERM, "SIGTERM")] {
        let mut child = netns_lab()
            .args(["up", "lan", "--node", "ns2", "--", "sleep", "30"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id();
        // The sleep, once it runs inside the node.
        let deadline = Instant::now() + Duration::from_secs(10);
        let (sleep, inode) = loop {
            let found = children_of(pid).into_iter().find_map(|c| {
                let comm = std::fs::read_to_string(format!("/proc/{c}/comm")).ok()?;
                (comm.trim() == "sleep").then_some(c).zip(netns_inode(c))
            });
            if let Some(found) = found {
                break found;
            }
            assert!(Instant::now() < deadline, "no sleep started");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_ne!(
            Some(inode),
            netns_inode(std::process::id()),
            "sleep runs in the node"
        );

        let sent = Instant::now();
        // SAFETY: signalling the child we started, by its pid.
        unsafe { libc::kill(pid as i32, signal) };
        let status = tests::wait_within(&mut child, Duration::from_secs(5));
        assert!(sent.elapsed() < Duration::from_secs(2), "{name}: slow");
        assert_eq!(status.code(), Some(128 + signal), "{name}");
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert!(
            stderr.ends_with(&format!("netns-lab: got {name}: tearing down lab `lan`.\n")),
            "{stderr}"
        );
        assert!(
            !std::path::Path::new(&format!("/proc/{sleep}")).exists(),
            "{name}: the sleep survived"
        );
        assert_eq!(
            tests::still_held(&[inode]),
            vec![],
            "{name}: the namespace survived"
        );
    }
}

#[test]
fn shell_reads_commands_with_a_prompt_naming_the_lab() {
    let mut child = netns_lab()
        .args(["up", "lan", "--node", "host"])
        .env("SHELL", "/bin/sh")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo \"prompt=$PS1\"\nip -o -4 addr show br0\nexit 3\n")
        .unwrap();
    let status = tests::wait_within(&mut child, Duration::from_secs(20));
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert_eq!(status.code(), Some(3), "{stdout}");
    // SAFETY: geteuid has no preconditions.
    let sign = if unsafe { libc::geteuid() } == 0 {
        "#"
    } else {
        "$"
    };
    assert!(
        stdout.contains(&format!("prompt=[netns-lab lan:host] {sign} ")),
        "{stdout}"
    );
    assert!(stdout.contains("br0    inet 192.168.0.1/24"), "{stdout}");
}

#[test]
fn interactive_bash_on_a_terminal_shows_the_lab_in_its_prompt() {
    let (controller, terminal) = tests::pseudo_terminal();
    let mut command = Command::new(env!("CARGO_BIN_EXE_netns-lab"));
    command
        .args(["up", "pair", "--node", "ns-2"])
        .env("SHELL", "/bin/bash")
        .env("TERM", "dumb");
    // The terminal becomes its controlling terminal, as a person's would be.
    tests::run_on_terminal(&mut command, terminal);
    let mut child = command.spawn().unwrap();
    drop(command);
    let mut writer = std::fs::File::from(controller.try_clone().unwrap());
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let reader = BufReader::new(std::fs::File::from(controller));
        for chunk in reader.split(b' ').map_while(Result::ok) {
            if tx.send(text(&chunk)).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let mut wait_for = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !seen.contains(needle) {
            assert!(Instant::now() < deadline, "{needle:?} never came:\n{seen}");
            if let Ok(chunk) = lines.recv_timeout(Duration::from_millis(100)) {
                seen.push_str(&chunk);
                seen.push(' ');
            }
        }
    };
    wait_for("[netns-lab pair:ns-2]");
    writer.write_all(b"ip -o -4 addr show veth-2\n").unwrap();
    wait_for("inet 10.0.0.20/16");
    writer.write_all(b"exit 4\n").unwrap();
    let status = tests::wait_within(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(4), "{seen}");
}
