//! Running a test without root: the test is re-run in a child process that is
//! root of a fresh user namespace (owning a fresh network namespace), and the
//! child's outcome becomes the test's.
//!
//! The test harness is multi-threaded, and `unshare(CLONE_NEWUSER)` refuses
//! multi-threaded callers (EINVAL): the child does it between `fork` and `exec`,
//! where it is single-threaded. It then runs only this test (`--exact`), and tells
//! the parent over an inherited pipe whether the body returned, returned an error
//! or panicked (and with what message). `PR_SET_PDEATHSIG` ends it with its parent.

use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// Set in the child: the fd its outcome is written to.
const OUTCOME_FD: &str = "NETNS_FIXTURE_OUTCOME_FD";

/// What a test body can return, so the parent can reproduce a child's success.
pub trait TestReturn {
    /// The value a passing test returns.
    fn succeeded() -> Self;
    /// Why the test failed, if this value is a failure (an `Err`).
    fn failure(&self) -> Option<String>;
}

impl TestReturn for () {
    fn succeeded() -> Self {}
    fn failure(&self) -> Option<String> {
        None
    }
}

impl<T: TestReturn, E: std::fmt::Debug> TestReturn for Result<T, E> {
    fn succeeded() -> Self {
        Ok(T::succeeded())
    }
    fn failure(&self) -> Option<String> {
        match self {
            Ok(t) => t.failure(),
            Err(e) => Some(format!("Error: {e:?}")),
        }
    }
}

/// Whether this process is such a child.
pub(crate) fn in_child() -> bool {
    std::env::var_os(OUTCOME_FD).is_some()
}

/// In the child: tells the parent how the body ended.
pub(crate) fn report(outcome: &str) {
    let Some(fd) = std::env::var(OUTCOME_FD)
        .ok()
        .and_then(|v| v.parse::<RawFd>().ok())
    else {
        return;
    };
    // SAFETY: the parent passed this fd for exactly this; it is written once.
    let mut pipe = unsafe { std::fs::File::from_raw_fd(fd) };
    use std::io::Write;
    let _ = pipe.write_all(outcome.as_bytes());
}

/// How a child's run ended.
enum ChildOutcome {
    Returned,
    Failed(String),
    Panicked(String),
    Refused(String),
    Crashed(String),
}

/// Runs the current test again in a child that is root of a new user namespace and
/// returns (or panics) as the child's body did. `function` is the test function's
/// name, to check that the running test is the one this body belongs to.
pub(crate) fn run_in_child<R: TestReturn>(function: &str, privilege_error: &io::Error) -> R {
    let test = std::thread::current().name().unwrap_or("").to_string();
    if in_child() || !test.split("::").any(|segment| segment == function) {
        panic!(
            "netns-fixture: not privileged enough to create a network namespace ({privilege_error}), \
             and `{function}` is not running as a test of its own (thread `{test}`), so it cannot be \
             re-run in a user namespace: run it as a test, or as root"
        );
    }
    let (output, outcome) = spawn_child(&test).unwrap_or_else(|e| panic!("netns-fixture: {e}"));
    // The child's output is the test's output: libtest shows it for failures.
    print!("{output}");
    match outcome {
        ChildOutcome::Returned => R::succeeded(),
        ChildOutcome::Panicked(message) => std::panic::resume_unwind(Box::new(message)),
        ChildOutcome::Failed(why) => panic!("{why}"),
        ChildOutcome::Refused(why) => panic!("netns-fixture: {why}"),
        ChildOutcome::Crashed(why) => {
            panic!("netns-fixture: the test's user-namespace child {why}; its output is above")
        }
    }
}

fn spawn_child(test: &str) -> Result<(String, ChildOutcome), String> {
    let (read, write) = pipe().map_err(|e| format!("creating a pipe: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| format!("finding the test binary: {e}"))?;
    let write_fd = write.as_raw_fd();
    let mut command = Command::new(exe);
    command
        .args([
            test,
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "--include-ignored",
        ])
        .env(OUTCOME_FD, write_fd.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    enter_on_exec(&mut command, write_fd);
    let child = command.spawn();
    drop(write);
    let mut outcome = String::new();
    let mut read = std::fs::File::from(read);
    let child = match child {
        Ok(child) => child,
        Err(e) => {
            let _ = read.read_to_string(&mut outcome);
            let report = outcome.strip_prefix("setup ").unwrap_or("");
            return Ok((
                String::new(),
                ChildOutcome::Refused(explain_refusal(report, &e)),
            ));
        }
    };
    let output = child
        .wait_with_output()
        .map_err(|e| format!("waiting for the test's child: {e}"))?;
    let _ = read.read_to_string(&mut outcome);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let outcome = if let Some(message) = outcome.strip_prefix("panicked\n") {
        ChildOutcome::Panicked(message.to_string())
    } else if let Some(why) = outcome.strip_prefix("failed\n") {
        ChildOutcome::Failed(why.to_string())
    } else if outcome == "returned\n" {
        ChildOutcome::Returned
    } else if let Some(step) = outcome.strip_prefix("setup ") {
        ChildOutcome::Refused(explain_refusal(step, &io::Error::other("refused")))
    } else {
        ChildOutcome::Crashed(format!(
            "ended ({}) without reporting an outcome",
            output.status
        ))
    };
    Ok((text, outcome))
}

/// Makes `command`'s child root of a new user namespace owning a new network
/// namespace, ended with its parent; setup failures are written to `outcome`.
pub fn enter_on_exec(command: &mut Command, outcome: RawFd) {
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let uid_map = CString::new(format!("0 {uid} 1")).expect("no NUL");
    let gid_map = CString::new(format!("0 {gid} 1")).expect("no NUL");
    // SAFETY: between fork and exec only async-signal-safe calls on data prepared
    // before the fork.
    unsafe {
        command.pre_exec(move || enter_user_namespace(outcome, &uid_map, &gid_map));
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds are fresh and owned here.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// In the forked child: become root of a new user namespace that owns a new
/// network namespace. On failure, writes `setup <step> <errno>` to the pipe.
fn enter_user_namespace(outcome: RawFd, uid_map: &CString, gid_map: &CString) -> io::Result<()> {
    let fail = |step: &[u8]| -> io::Error {
        let err = io::Error::last_os_error();
        let errno = err.raw_os_error().unwrap_or(0);
        let mut digits = [0u8; 12];
        let mut n = errno.unsigned_abs();
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        // SAFETY: writes of valid buffers to an fd this process owns.
        unsafe {
            libc::write(outcome, b"setup ".as_ptr().cast(), 6);
            libc::write(outcome, step.as_ptr().cast(), step.len());
            libc::write(outcome, b" ".as_ptr().cast(), 1);
            libc::write(outcome, digits[at..].as_ptr().cast(), digits.len() - at);
        }
        err
    };
    let write_file = |path: &std::ffi::CStr, text: &[u8]| -> bool {
        // SAFETY: open/write/close on a NUL-terminated path and a valid buffer.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return false;
            }
            let ok = libc::write(fd, text.as_ptr().cast(), text.len()) == text.len() as isize;
            libc::close(fd);
            ok
        }
    };
    // SAFETY: plain system calls; this process is single-threaded here.
    unsafe {
        if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) != 0 {
            return Err(fail(b"unshare"));
        }
        if !write_file(c"/proc/self/setgroups", b"deny") {
            return Err(fail(b"setgroups"));
        }
        if !write_file(c"/proc/self/uid_map", uid_map.as_bytes()) {
            return Err(fail(b"uid_map"));
        }
        if !write_file(c"/proc/self/gid_map", gid_map.as_bytes()) {
            return Err(fail(b"gid_map"));
        }
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            return Err(fail(b"pdeathsig"));
        }
        // The outcome pipe survives exec; everything else keeps CLOEXEC.
        if libc::fcntl(outcome, libc::F_SETFD, 0) != 0 {
            return Err(fail(b"fcntl"));
        }
    }
    Ok(())
}

fn read_setting(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Says which restriction kept the child from its user namespace, and how to lift it.
fn explain_refusal(report: &str, spawn_error: &io::Error) -> String {
    let mut words = report.split_whitespace();
    let step = words.next().unwrap_or("starting the child");
    let errno: i32 = words
        .next()
        .and_then(|e| e.parse().ok())
        .or(spawn_error.raw_os_error())
        .unwrap_or(0);
    let os = io::Error::from_raw_os_error(errno);
    let prefix =
        format!("not root, and a user namespace to run the test in was refused ({step}: {os}): ");
    let why = if read_setting("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        "user namespaces are disabled (user.max_user_namespaces = 0). Enable them with \
         `sudo sysctl -w user.max_user_namespaces=15000`, or run the tests as root"
            .to_string()
    } else if errno == libc::ENOSPC {
        "the limit of user namespaces is reached (user.max_user_namespaces). Raise it with \
         `sudo sysctl -w user.max_user_namespaces=15000`, or run the tests as root"
            .to_string()
    } else if read_setting("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref()
        == Some("1")
    {
        "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1, \
         as on Ubuntu 24.04). Lift it with `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`, \
         give the test binaries an AppArmor profile with `userns,`, or run the tests as root"
            .to_string()
    } else if read_setting("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0). Enable them with \
         `sudo sysctl -w kernel.unprivileged_userns_clone=1`, or run the tests as root"
            .to_string()
    } else if seccomp_filtered() {
        "a seccomp filter refuses it (this process runs under one: `Seccomp: 2` in /proc/self/status; \
         container runtimes' default profiles do this). Allow unshare(CLONE_NEWUSER) in the container's \
         seccomp profile, or run the tests as root"
            .to_string()
    } else {
        "the kernel refused it. Run the tests as root, or with CAP_SYS_ADMIN and CAP_NET_ADMIN"
            .to_string()
    };
    prefix + &why
}

fn seccomp_filtered() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Seccomp:") && l.trim_end().ends_with('2'))
        })
        .unwrap_or(false)
}
