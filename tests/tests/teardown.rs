//! Nothing outlives a test: on success, panic, error return, timeout, and SIGKILL.

use netns_fixture::prelude::*;
use std::io::BufRead;
use std::panic::catch_unwind;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use tests::{still_held, MachineState};

/// Namespaces of the labs the tests below built, by test name.
static SEEN: Mutex<Vec<(&str, Vec<u64>)>> = Mutex::new(Vec::new());

fn record(test: &'static str, lab: &Lab) -> Vec<u64> {
    let inodes: Vec<u64> = lab.nodes().iter().map(|n| n.netns().inode()).collect();
    assert_eq!(inodes.len(), lab.topology().nodes().len());
    SEEN.lock().unwrap().push((test, inodes.clone()));
    inodes
}

fn recorded(test: &str) -> Vec<u64> {
    let seen = SEEN.lock().unwrap();
    let (_, inodes) = seen
        .iter()
        .rev()
        .find(|(t, _)| *t == test)
        .expect("the body ran");
    inodes.clone()
}

fn assert_released(test: &str) {
    let inodes = recorded(test);
    assert_eq!(
        still_held(&inodes),
        vec![],
        "namespaces of `{test}` are still held"
    );
}

#[netns_test(topology = "two_servers")]
fn succeeding_body(lab: &Lab) {
    record("succeeding_body", lab);
}

#[netns_test(topology = "two_servers")]
#[should_panic(expected = "the body failed")]
fn panicking_body(lab: &Lab) {
    record("panicking_body", lab);
    panic!("the body failed");
}

#[netns_test(topology = "lan")]
#[ignore = "returns Err on purpose; lab_is_gone_after_an_error_return calls it"]
fn failing_result_body(lab: &Lab) -> Result<(), String> {
    record("failing_result_body", lab);
    Err("the body returned an error".into())
}

#[netns_test(topology = "pair", timeout = "100ms")]
#[should_panic(expected = "exceeded its timeout of 100ms")]
async fn overrunning_async_body(lab: &Lab) {
    record("overrunning_async_body", lab);
    tokio::time::sleep(std::time::Duration::from_secs(30)).await;
}

#[netns_test(topology = "pair", timeout = "100ms")]
#[should_panic(expected = "exceeded its timeout of 100ms")]
fn overrunning_sync_body(lab: &Lab) {
    record("overrunning_sync_body", lab);
    std::thread::sleep(std::time::Duration::from_millis(400));
}

#[test]
fn lab_is_gone_after_success() {
    let before = MachineState::capture();
    succeeding_body();
    assert_released("succeeding_body");
    assert_eq!(MachineState::capture(), before);
}

#[test]
fn lab_is_gone_after_a_panic() {
    let before = MachineState::capture();
    let outcome = catch_unwind(panicking_body);
    assert!(outcome.is_err(), "the body panicked, so must the test");
    assert_released("panicking_body");
    assert_eq!(MachineState::capture(), before);
}

#[test]
fn lab_is_gone_after_an_error_return() {
    let before = MachineState::capture();
    assert_eq!(
        failing_result_body(),
        Err("the body returned an error".to_string())
    );
    assert_released("failing_result_body");
    assert_eq!(MachineState::capture(), before);
}

#[test]
fn lab_is_gone_after_an_async_timeout() {
    let before = MachineState::capture();
    let panic = catch_unwind(overrunning_async_body).unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(
        message.contains("exceeded its timeout of 100ms (lab `pair`, node `ns-1`)"),
        "{message}"
    );
    assert_released("overrunning_async_body");
    assert_eq!(MachineState::capture(), before);
}

#[test]
fn sync_timeout_fails_the_test_and_the_lab_goes_when_the_body_returns() {
    let before = MachineState::capture();
    let started = std::time::Instant::now();
    let panic = catch_unwind(overrunning_sync_body).unwrap_err();
    assert!(
        started.elapsed() < std::time::Duration::from_millis(350),
        "the timeout did not fire"
    );
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(
        message.contains("exceeded its timeout of 100ms"),
        "{message}"
    );
    // The body's thread cannot be stopped; its lab goes as soon as it returns.
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert_released("overrunning_sync_body");
    assert_eq!(MachineState::capture(), before);
}

/// Run by `sigkill_mid_body_leaves_nothing` as a child test process, which it kills.
#[netns_test(topology = "two_servers")]
#[ignore = "a child process of sigkill_mid_body_leaves_nothing; killed mid-body on purpose"]
fn sigkill_victim(lab: &Lab) {
    let inodes = record("sigkill_victim", lab);
    let line: Vec<String> = inodes.iter().map(u64::to_string).collect();
    println!("VICTIM-READY {}", line.join(" "));
    std::thread::sleep(std::time::Duration::from_secs(60));
    panic!("the victim was not killed");
}

#[test]
fn sigkill_mid_body_leaves_nothing() {
    let before = MachineState::capture();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sigkill_victim",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut inodes = Vec::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        // libtest prints `test sigkill_victim ... ` on the same line first.
        if let Some((_, rest)) = line.split_once("VICTIM-READY ") {
            inodes = rest.split(' ').map(|s| s.parse::<u64>().unwrap()).collect();
            break;
        }
    }
    assert_eq!(inodes.len(), 4, "the victim reported its four namespaces");
    let pid = child.id();
    assert!(
        inodes.iter().all(|&i| tests::holders_of(i).contains(&pid)),
        "the victim holds its namespaces while it runs"
    );
    child.kill().unwrap(); // SIGKILL: no destructor, no unwinding, nothing runs
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9));
    assert_eq!(
        still_held(&inodes),
        vec![],
        "no process holds the killed test's namespaces"
    );
    assert_eq!(MachineState::capture(), before);
}
