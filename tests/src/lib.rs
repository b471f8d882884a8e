//! Helpers for the integration tests: what the machine's own network namespace
//! looks like, who still holds a namespace, and running a child test or program
//! with a deadline.

use netns_fixture::prelude::{Content, HttpRequest, Lab};
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// Waits for `child` to exit; kills it and panics if it takes longer than `limit`.
///
/// ```no_run
/// let mut child = std::process::Command::new("true").spawn().unwrap();
/// assert!(tests::wait_within(&mut child, std::time::Duration::from_secs(5)).success());
/// ```
pub fn wait_within(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("waiting for the child") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the child (pid {}) did not exit within {limit:?}",
                child.id()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `command` to completion with its output captured, killing it (SIGKILL)
/// if it runs longer than `limit`: a hung child fails its test instead of
/// hanging the suite.
///
/// ```no_run
/// let out = tests::output_within(&mut std::process::Command::new("true"), std::time::Duration::from_secs(5));
/// assert!(out.status.success());
/// ```
pub fn output_within(command: &mut Command, limit: Duration) -> Output {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
    let pid = child.id() as i32;
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if wait.recv_timeout(limit).is_err() {
            // SAFETY: killing the child we started, by its pid (not yet reaped:
            // `done` is sent only after `wait_with_output` returned).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    let output = child.wait_with_output().expect("waiting for the child");
    let _ = done.send(());
    watchdog.join().expect("the watchdog thread");
    output
}

/// The facts about the machine's own network namespace that a lab must never change.
///
/// Named namespaces (`ip netns list`) are not among them: the library makes only
/// anonymous ones, so that list can change only by other programs on the machine;
/// a lab's leftover namespaces are found by [`holders_of`] instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineState {
    /// Link names from `ip -o link`.
    pub links: BTreeSet<String>,
    /// `nft list ruleset`.
    pub ruleset: String,
    /// A few sysctls a lab sets inside its own namespaces.
    pub sysctls: Vec<(String, String)>,
}

impl MachineState {
    /// Reads the state. Must be called from a thread in the machine's namespace.
    pub fn capture() -> MachineState {
        let links = run("ip", &["-o", "link", "show"])
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|name| name.split('@').next().unwrap_or(name).to_string())
            .collect();
        let sysctls = [
            "net/ipv4/ip_forward",
            "net/ipv6/conf/all/forwarding",
            "net/ipv4/ping_group_range",
        ]
        .iter()
        .map(|k| {
            let v = std::fs::read_to_string(format!("/proc/sys/{k}")).unwrap_or_default();
            (k.to_string(), v.trim().to_string())
        })
        .collect();
        MachineState {
            links,
            ruleset: run("nft", &["list", "ruleset"]),
            sysctls,
        }
    }
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program} (install it: see README): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every process (pid) that still holds the network namespace with inode `inode`,
/// through a thread inside it or an open file descriptor.
pub fn holders_of(inode: u64) -> Vec<u32> {
    let target = format!("net:[{inode}]");
    let mut holders = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let mut links = Vec::new();
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for task in tasks.flatten() {
                links.push(task.path().join("ns/net"));
            }
        }
        if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
            links.extend(fds.flatten().map(|fd| fd.path()));
        }
        if links
            .iter()
            .any(|l| std::fs::read_link(l).is_ok_and(|t| t.to_string_lossy() == target))
        {
            holders.push(pid);
        }
    }
    holders
}

/// Waits up to a second for `inodes` to have no holder left, then returns the
/// ones that still have (threads that are finishing release theirs a little late).
pub fn still_held(inodes: &[u64]) -> Vec<(u64, Vec<u32>)> {
    let mut held = Vec::new();
    for _ in 0..100 {
        held = inodes
            .iter()
            .map(|&i| (i, holders_of(i)))
            .filter(|(_, h)| !h.is_empty())
            .collect();
        if held.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    held
}

/// Write-up 003's check in a `two_servers` lab, from the calling thread (a test
/// body in `client`): starts the two web servers on 8080, fetches through the
/// router's ports 6000 and 6001 at `router`, checks that each port reached its
/// own server, and returns the source address each server saw.
///
/// ```no_run
/// # fn body(lab: &netns_fixture::Lab) {
/// let seen = tests::fetch_both_forwards(lab, "10.0.0.233".parse().unwrap());
/// assert_eq!(seen, ["10.0.0.2".parse::<std::net::IpAddr>().unwrap(); 2]);
/// # }
/// ```
pub fn fetch_both_forwards(lab: &Lab, router: IpAddr) -> [IpAddr; 2] {
    let bodies = ["Hello from Flask!\n", "Hello from the other Flask!\n"];
    let servers = [("server1", bodies[0]), ("server2", bodies[1])].map(|(node, body)| {
        lab.node(node)
            .serve_http(8080, Content::text(body))
            .unwrap_or_else(|e| panic!("serving HTTP in {node}: {e}"))
    });
    for (port, body) in [6000, 6001].into_iter().zip(bodies) {
        let url = format!("http://{}/", SocketAddr::new(router, port));
        let response = HttpRequest::get(&url)
            .send()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(response.text(), body, "{url}");
    }
    servers.map(|server| {
        let peers: Vec<IpAddr> = server
            .requests()
            .iter()
            .map(|r| r.peer.ip().to_canonical())
            .collect();
        assert_eq!(peers.len(), 1, "one request per server: {peers:?}");
        peers[0]
    })
}

/// Opens a pseudo-terminal: (controller, terminal). Give the terminal to a child
/// as its stdin/stdout/stderr (and controlling terminal) to test what a person at
/// a terminal sees; read and write the controller.
///
/// ```no_run
/// let (controller, terminal) = tests::pseudo_terminal();
/// # drop((controller, terminal));
/// ```
pub fn pseudo_terminal() -> (OwnedFd, OwnedFd) {
    let (mut controller, mut terminal) = (0, 0);
    // SAFETY: openpty fills two descriptors we then own.
    let r = unsafe {
        libc::openpty(
            &mut controller,
            &mut terminal,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
    // openpty does not set close-on-exec: without it every child started meanwhile
    // (by this or a parallel test) inherits the controller, so the terminal is never
    // hung up when the test process dies and whatever waits on it lives on.
    for fd in [controller, terminal] {
        // SAFETY: fcntl on descriptors we just opened.
        let r = unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        assert_eq!(r, 0, "FD_CLOEXEC: {}", std::io::Error::last_os_error());
    }
    // SAFETY: both were just opened and are owned by nobody else.
    unsafe {
        (
            OwnedFd::from_raw_fd(controller),
            OwnedFd::from_raw_fd(terminal),
        )
    }
}

/// Makes `terminal` (from [`pseudo_terminal`]) the standard input, output and
/// error of `command` and its controlling terminal, as a person's terminal is.
///
/// ```no_run
/// let (controller, terminal) = tests::pseudo_terminal();
/// let mut command = std::process::Command::new("tty");
/// tests::run_on_terminal(&mut command, terminal);
/// # drop(controller);
/// ```
pub fn run_on_terminal(command: &mut Command, terminal: OwnedFd) {
    let copy = || terminal.try_clone().expect("duplicating the terminal");
    command
        .stdin(Stdio::from(copy()))
        .stdout(Stdio::from(copy()))
        .stderr(Stdio::from(terminal));
    // SAFETY: setsid and ioctl are async-signal-safe.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            libc::setsid();
            if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
