//! Keeping a failed test's lab alive so that a person can step inside it.
//!
//! With `NETNS_FIXTURE_KEEP=1`, a failed test prints, for each node, the command
//! that enters it (`nsenter --net=/proc/PID/fd/N`) and waits until Enter is pressed
//! on its terminal, or the process gets SIGINT or SIGTERM; then the lab is torn
//! down as usual. `NETNS_FIXTURE_KEEP=5m` (or `30s`, `1h`) waits at most that long,
//! and also works without a terminal (CI, scripts). With `1` and no terminal to
//! read Enter from, it says so and does not wait.
//!
//! The lab's namespaces belong to the test process: however the wait ends, even
//! by SIGKILL, nothing is left behind.

use crate::signals::{signal_name, Signals};
use crate::Lab;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The environment variable that keeps failed labs.
pub const KEEP_VAR: &str = "NETNS_FIXTURE_KEEP";

/// How long to keep a lab, from `NETNS_FIXTURE_KEEP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// Until Enter (or a signal).
    UntilEnter,
    /// Until Enter, a signal, or this long.
    AtMost(Duration),
}

fn keep_from(value: Option<&str>) -> Result<Option<Keep>, String> {
    let Some(value) = value.map(str::trim) else {
        return Ok(None);
    };
    match value {
        "" | "0" | "false" | "no" => Ok(None),
        "1" | "true" | "yes" => Ok(Some(Keep::UntilEnter)),
        other => parse_duration(other)
            .map(|d| Some(Keep::AtMost(d)))
            .ok_or_else(|| {
                format!("{KEEP_VAR}={other} is not understood: use 1, or a duration like 30s or 5m")
            }),
    }
}

fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(number)),
        "s" => Some(Duration::from_secs(number)),
        "m" => number.checked_mul(60).map(Duration::from_secs),
        "h" => number.checked_mul(3_600).map(Duration::from_secs),
        _ => None,
    }
}

/// The signal that ended a hold, to raise again once the lab is gone.
static INTERRUPTED: AtomicI32 = AtomicI32::new(0);
/// One hold at a time: parallel failing tests take turns.
static HOLD: Mutex<()> = Mutex::new(());

/// With `NETNS_FIXTURE_KEEP` set, keeps `lab` for inspection: prints how to enter
/// each node and waits for Enter, a signal (SIGINT, SIGTERM) or the time limit.
/// The messages go to the terminal (or, without one, straight to stderr), not to
/// the test's captured output, so they show while the test waits.
///
/// A signal ends the wait; call [`reraise_interrupt`] after the lab is dropped so
/// the process then stops as the person asked.
///
/// ```ignore
/// crate::keep::hold_for_inspection(&lab);
/// drop(lab);
/// crate::keep::reraise_interrupt();
/// ```
pub fn hold_for_inspection(lab: &Lab) {
    let keep = match keep_from(std::env::var(KEEP_VAR).ok().as_deref()) {
        Ok(Some(keep)) => keep,
        Ok(None) => return,
        Err(message) => {
            say(None, &format!("netns-fixture: {message}\n"));
            return;
        }
    };
    let _turn = HOLD.lock().unwrap_or_else(|p| p.into_inner());
    let tty = Terminal::open();
    say(tty.as_ref(), &instructions(lab, keep, tty.is_some()));
    if tty.is_none() && keep == Keep::UntilEnter {
        say(
            None,
            &format!(
                "netns-fixture: no terminal to read Enter from (the test runs without a \
                 controlling terminal, or in the background): not waiting. Set \
                 {KEEP_VAR}=5m to keep the lab for at most 5 minutes or until SIGINT/SIGTERM.\n"
            ),
        );
        return;
    }
    let limit = match keep {
        Keep::UntilEnter => None,
        Keep::AtMost(d) => Some(d),
    };
    let ended = match Signals::catch(&[libc::SIGINT, libc::SIGTERM]) {
        Ok(signals) => {
            let ended = wait(tty.as_ref(), &signals, limit);
            drop(signals);
            ended
        }
        Err(e) => Ended::Error(e),
    };
    let why = match ended {
        Ended::Enter => "Enter pressed".to_string(),
        Ended::Signal(signal) => {
            INTERRUPTED.store(signal, Ordering::SeqCst);
            format!("got {}", signal_name(signal))
        }
        Ended::Limit => "time limit reached".to_string(),
        Ended::Error(e) => format!("cannot wait: {e}"),
    };
    say(
        tty.as_ref(),
        &format!("netns-fixture: {why}: tearing down lab `{}`.\n", lab.name()),
    );
}

/// If a signal ended a hold, raises it again with its default action (the process
/// ends as that signal says). Call it after the held lab was dropped.
///
/// ```ignore
/// drop(lab);
/// crate::keep::reraise_interrupt();
/// ```
pub fn reraise_interrupt() {
    let signal = INTERRUPTED.swap(0, Ordering::SeqCst);
    if signal != 0 {
        // SAFETY: resetting a disposition to the default and raising a signal.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
    }
}

fn instructions(lab: &Lab, keep: Keep, tty: bool) -> String {
    let sudo = if std::env::var_os("SUDO_USER").is_some() {
        "sudo "
    } else {
        ""
    };
    // Running unprivileged, as root of a user namespace of our own: enter it first.
    let user = if in_user_namespace() {
        format!("--user=/proc/{}/ns/user ", std::process::id())
    } else {
        String::new()
    };
    let mut text = format!(
        "\nnetns-fixture: keeping lab `{}` for inspection ({KEEP_VAR} is set).\n\
         Enter a node from another terminal (its shell, or add a command):\n",
        lab.name()
    );
    let width = lab
        .nodes()
        .iter()
        .map(|n| n.name().len())
        .max()
        .unwrap_or(0);
    for node in lab.nodes() {
        let addresses: Vec<String> = node.addresses().map(|a| a.to_string()).collect();
        text.push_str(&format!(
            "  {:<width$}  {sudo}nsenter {user}--net={}   # {}\n",
            node.name(),
            node.netns().path(),
            if addresses.is_empty() {
                "no address".to_string()
            } else {
                addresses.join(" ")
            }
        ));
    }
    if let Some(first) = lab.nodes().first() {
        text.push_str(&format!(
            "  e.g. {sudo}nsenter {user}--net={} ip -s link\n",
            first.netns().path()
        ));
    }
    let pid = std::process::id();
    let how = match (keep, tty) {
        (Keep::UntilEnter, _) => format!("Press Enter here to tear it down (or kill -INT {pid})."),
        (Keep::AtMost(d), true) => {
            format!("Press Enter here to tear it down (or kill -INT {pid}); at most {d:?}.")
        }
        (Keep::AtMost(d), false) => {
            format!("Tearing it down on SIGINT/SIGTERM (kill -INT {pid}) or after {d:?}.")
        }
    };
    text.push_str(&how);
    text.push('\n');
    text
}

/// Whether this process runs in a user namespace other than the initial one
/// (whose uid map is the identity over every uid).
fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .map(|map| {
            let fields: Vec<&str> = map.split_whitespace().collect();
            fields != ["0", "0", "4294967295"]
        })
        .unwrap_or(false)
}

/// Writes to the terminal, else to file descriptor 2 directly (the test
/// harness's output capture only sees `eprint!`).
fn say(tty: Option<&Terminal>, text: &str) {
    if let Some(tty) = tty {
        if (&tty.file).write_all(text.as_bytes()).is_ok() {
            return;
        }
    }
    let _ = io::stderr().write_all(text.as_bytes());
}

/// The controlling terminal, when this process is in its foreground (reading it
/// from the background would stop the process).
struct Terminal {
    file: File,
}

impl Terminal {
    fn open() -> Option<Terminal> {
        let file = File::options()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .ok()?;
        // SAFETY: plain queries on an open descriptor.
        let foreground = unsafe { libc::tcgetpgrp(file.as_raw_fd()) == libc::getpgrp() };
        foreground.then_some(Terminal { file })
    }
}

enum Ended {
    Enter,
    Signal(i32),
    Limit,
    Error(io::Error),
}

fn wait(tty: Option<&Terminal>, signals: &Signals, limit: Option<Duration>) -> Ended {
    let deadline = limit.map(crate::deadline::from_now);
    loop {
        let mut fds = vec![libc::pollfd {
            fd: signals.fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if let Some(tty) = tty {
            fds.push(libc::pollfd {
                fd: tty.file.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let timeout = match deadline {
            None => -1,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ended::Limit;
                }
                left.as_millis().min(i32::MAX as u128) as libc::c_int
            }
        };
        // SAFETY: fds is a valid array of pollfd.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Ended::Error(e);
        }
        if fds[0].revents != 0 {
            if let Some(signal) = signals.pending() {
                return Ended::Signal(signal);
            }
        }
        if let (Some(tty), Some(fd)) = (tty, fds.get(1)) {
            if fd.revents & libc::POLLIN != 0 {
                let mut buf = [0u8; 256];
                match (&tty.file).read(&mut buf) {
                    // A line (canonical mode returns whole lines) or end of input.
                    Ok(0) => return Ended::Enter,
                    Ok(n) if buf[..n].contains(&b'\n') => return Ended::Enter,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Ended::Error(e),
                }
            } else if fd.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                return Ended::Enter;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_values_are_read() {
        assert_eq!(keep_from(None), Ok(None));
        assert_eq!(keep_from(Some("0")), Ok(None));
        assert_eq!(keep_from(Some("1")), Ok(Some(Keep::UntilEnter)));
        assert_eq!(
            keep_from(Some("5m")),
            Ok(Some(Keep::AtMost(Duration::from_secs(300))))
        );
        assert_eq!(
            keep_from(Some("250ms")),
            Ok(Some(Keep::AtMost(Duration::from_millis(250))))
        );
        assert!(keep_from(Some("soon"))
            .unwrap_err()
            .contains("not understood"));
    }

    #[test]
    fn huge_keep_values_are_errors_or_saturate_never_panics() {
        assert!(keep_from(Some("18446744073709551615m"))
            .unwrap_err()
            .contains("not understood"));
        assert!(keep_from(Some("18446744073709551615h")).is_err());
        let Ok(Some(Keep::AtMost(huge))) = keep_from(Some("18446744073709551615s")) else {
            panic!("a number of seconds that fits is a duration");
        };
        assert!(crate::deadline::from_now(huge) > Instant::now());
    }
}
