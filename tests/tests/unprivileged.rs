//! Without root: `#[netns_test]` tests re-run themselves in a user namespace, with
//! nothing in the test code. These tests run as root and start this same test
//! binary as the unprivileged user `nobody` on the victims below.

use netns_fixture::prelude::*;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const NOBODY: u32 = 65534;

fn as_nobody(victim: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", victim, "--include-ignored", "--nocapture"])
        .current_dir("/")
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(Stdio::null());
    command
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[netns_test(topology = "two_servers")]
#[ignore = "run as `nobody` by unprivileged_tests_pass_in_a_user_namespace"]
fn victim_uses_every_helper(lab: &Lab) {
    assert_ne!(
        std::fs::read_to_string("/proc/self/uid_map")
            .unwrap()
            .trim(),
        "0 0 4294967295",
        "not in a user namespace"
    );
    ping(
        "10.0.0.233".parse().unwrap(),
        &PingOptions::default().count(2),
    )
    .unwrap()
    .assert_all_replied();
    let _server = lab
        .node("server1")
        .serve_http(8080, Content::text("hello\n"))
        .unwrap();
    assert_eq!(
        HttpRequest::get("http://10.0.0.233:6000/")
            .send()
            .unwrap()
            .text(),
        "hello\n"
    );
    let capture = lab.node("router").capture("ens5", "tcp port 6000").unwrap();
    let curl = lab
        .node("client")
        .command("curl")
        .args(["-s", "http://10.0.0.233:6000/"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&curl.stdout), "hello\n");
    capture
        .stop()
        .unwrap()
        .assert_any(|p| p.is_tcp_syn(), "the SYN of curl's connection");
    lab.node("client")
        .tcp_connect("10.0.0.233:22".parse().unwrap(), Duration::from_millis(300))
        .assert_outcome(Outcome::Refused);
    println!("VICTIM-OK");
}

#[netns_test(topology = "pair")]
#[ignore = "run as `nobody` by failures_are_reported_as_the_tests_own"]
fn victim_panics() {
    panic!("the victim's own message");
}

#[netns_test(topology = "pair")]
#[should_panic(expected = "expected message")]
#[ignore = "run as `nobody` by failures_are_reported_as_the_tests_own"]
fn victim_should_panic() {
    panic!("an expected message");
}

#[netns_test(topology = "pair")]
#[ignore = "run as `nobody` by failures_are_reported_as_the_tests_own"]
fn victim_returns_err() -> Result<(), String> {
    Err("the victim's error".into())
}

#[netns_test(topology = "pair")]
#[ignore = "run as `nobody` by killing_the_parent_ends_the_child"]
fn victim_sleeps() {
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn unprivileged_tests_pass_in_a_user_namespace() {
    let output = as_nobody("victim_uses_every_helper").output().unwrap();
    let text = text(&output);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("VICTIM-OK"), "the body ran:\n{text}");
    assert!(text.contains("test result: ok. 1 passed"), "{text}");
}

#[test]
fn failures_are_reported_as_the_tests_own() {
    let panicked = as_nobody("victim_panics").output().unwrap();
    assert!(!panicked.status.success());
    assert!(
        text(&panicked).contains("the victim's own message"),
        "{}",
        text(&panicked)
    );

    let expected = as_nobody("victim_should_panic").output().unwrap();
    assert!(
        expected.status.success(),
        "should_panic holds across the re-run:\n{}",
        text(&expected)
    );

    let err = as_nobody("victim_returns_err").output().unwrap();
    assert!(!err.status.success());
    assert!(
        text(&err).contains("Error: \"the victim's error\""),
        "{}",
        text(&err)
    );
}

#[test]
fn disabled_user_namespaces_give_a_clear_error() {
    // A user namespace of our own whose limit of nested user namespaces is 0, and
    // a victim that is root there without capabilities (SECBIT_NOROOT): it must
    // take the unprivileged path and be refused, like on a machine with
    // `user.max_user_namespaces = 0`. The machine's own setting is untouched.
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args([
        "--exact",
        "victim_uses_every_helper",
        "--include-ignored",
        "--nocapture",
    ]);
    // SAFETY: only system calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let check = |ok: bool| {
                if ok {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            };
            check(libc::unshare(libc::CLONE_NEWUSER) == 0)?;
            for (path, text) in [
                ("/proc/self/setgroups\0", "deny"),
                ("/proc/self/uid_map\0", "0 0 1"),
                ("/proc/self/gid_map\0", "0 0 1"),
                ("/proc/sys/user/max_user_namespaces\0", "0"),
            ] {
                let fd = libc::open(path.as_ptr().cast(), libc::O_WRONLY);
                check(fd >= 0)?;
                check(libc::write(fd, text.as_ptr().cast(), text.len()) == text.len() as isize)?;
                libc::close(fd);
            }
            const SECBIT_NOROOT: libc::c_ulong = 1;
            const SECBIT_NOROOT_LOCKED: libc::c_ulong = 2;
            check(
                libc::prctl(
                    libc::PR_SET_SECUREBITS,
                    SECBIT_NOROOT | SECBIT_NOROOT_LOCKED,
                ) == 0,
            )
        });
    }
    let output = command.output().unwrap();
    let text = text(&output);
    assert!(!output.status.success(), "{text}");
    // Only the actionable lines: the thread never left its namespace.
    assert!(
        !text.contains("could not return to the previous namespace"),
        "{text}"
    );
    assert!(
        text.contains("not root, and a user namespace to run the test in was refused (unshare: No space left on device"),
        "{text}"
    );
    assert!(
        text.contains("user namespaces are disabled (user.max_user_namespaces = 0)"),
        "{text}"
    );
    assert!(
        text.contains("sysctl -w user.max_user_namespaces="),
        "{text}"
    );
    assert_ne!(
        std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
            .unwrap()
            .trim(),
        "0"
    );
}

fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        out.extend(
            list.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    out
}

#[test]
fn killing_the_parent_ends_the_child() {
    let mut parent = as_nobody("victim_sleeps")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let child = loop {
        if let Some(&child) = children_of(parent.id()).first() {
            break child;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the user-namespace child never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let uid_map = std::fs::read_to_string(format!("/proc/{child}/uid_map")).unwrap();
    assert_eq!(
        uid_map.split_whitespace().collect::<Vec<_>>(),
        ["0", "65534", "1"],
        "the child is root of its own user namespace"
    );
    parent.kill().unwrap();
    parent.wait().unwrap();
    let killed = Instant::now();
    while std::path::Path::new(&format!("/proc/{child}")).exists() {
        let state = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        if state.contains(") Z") {
            break; // dead, waiting to be reaped by init
        }
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "the child outlived its parent"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
