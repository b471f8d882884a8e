//! `netns-lab`: bring up the same lab a test uses, and step inside.
//!
//! ```text
//! netns-lab up two_servers                         # a shell in the default node
//! netns-lab up lan --node host -- nft list ruleset # one command in a node
//! netns-lab up examples/labs/office.toml --node router
//! netns-lab diagram lan > lan.svg                  # the topology as SVG
//! netns-lab list                                   # the built-in topologies
//! ```
//!
//! `up` prints the address plan (on stderr), then runs the command — or your
//! `$SHELL`, with a prompt naming the lab and node — inside the node, and tears
//! the lab down when it exits, on Ctrl-C (a command), or on SIGTERM/SIGHUP. Its
//! exit code is the command's. The lab's namespaces are anonymous and held by this
//! process only: even if it is killed, nothing is left behind.

use netns_fixture::__private::{signal_name, Signals};
use netns_fixture::diagram::Diagram;
use netns_fixture::topology::{builtin, Topology};
use netns_fixture::Lab;
use std::ffi::OsString;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::process::ExitCode;

const USAGE: &str = "\
usage: netns-lab up <TOPOLOGY> [--node NODE] [-- COMMAND [ARGS...]]
       netns-lab diagram <TOPOLOGY>
       netns-lab list

TOPOLOGY is a built-in (pair, host_ns, lan, two_servers) or a topology file (.toml).
`up` builds the lab, prints its address plan, and runs COMMAND in NODE (default:
the topology's default node) or, without COMMAND, your $SHELL there. The lab is torn
down when the command or shell exits, on Ctrl-C (while a command runs), SIGTERM or
SIGHUP. Needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN).";

/// A mistake in how `netns-lab` was called: exit code 2.
struct Usage(String);

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(Usage(message)) => {
            eprintln!("netns-lab: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[OsString]) -> Result<ExitCode, Usage> {
    let text = |a: &OsString| a.to_string_lossy().into_owned();
    match args.first().map(text).as_deref() {
        Some("up") => up(&args[1..]),
        Some("diagram") => {
            let [name] = &args[1..] else {
                return Err(Usage(format!("diagram takes one topology\n{USAGE}")));
            };
            let topology = load(&text(name))?;
            println!("{}", Diagram::new(&topology).to_svg());
            Ok(ExitCode::SUCCESS)
        }
        Some("list") => {
            for name in builtin::NAMES {
                let topology = builtin::get(name).expect("listed built-in");
                let nodes: Vec<&str> = topology.nodes().iter().map(|n| n.name.as_str()).collect();
                println!("{name:<12} nodes: {}", nodes.join(", "));
            }
            Ok(ExitCode::SUCCESS)
        }
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        Some(other) => Err(Usage(format!("unknown command `{other}`\n{USAGE}"))),
        None => Err(Usage(USAGE.to_string())),
    }
}

/// A built-in's name, or a topology file's path.
fn load(name: &str) -> Result<Topology, Usage> {
    if let Some(topology) = builtin::get(name) {
        return Ok(topology);
    }
    if Path::new(name).is_file() {
        return Topology::from_toml_file(name).map_err(|e| Usage(e.to_string()));
    }
    Err(Usage(format!(
        "no built-in topology `{name}` and no file of that name (built-ins: {})",
        builtin::NAMES.join(", ")
    )))
}

struct Up {
    topology: Topology,
    node: String,
    command: Vec<OsString>,
}

fn parse_up(args: &[OsString]) -> Result<Up, Usage> {
    let mut topology = None;
    let mut node = None;
    let mut command = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].to_string_lossy();
        if arg == "--" {
            command = args[i + 1..].to_vec();
            break;
        } else if arg == "--node" {
            let value = args
                .get(i + 1)
                .ok_or_else(|| Usage("--node needs a node name".into()))?;
            node = Some(value.to_string_lossy().into_owned());
            i += 1;
        } else if let Some(value) = arg.strip_prefix("--node=") {
            node = Some(value.to_string());
        } else if arg.starts_with('-') {
            return Err(Usage(format!("unknown option `{arg}`\n{USAGE}")));
        } else if topology.is_none() {
            topology = Some(load(&arg)?);
        } else {
            return Err(Usage(format!(
                "unexpected `{arg}` (put the command after `--`)\n{USAGE}"
            )));
        }
        i += 1;
    }
    let topology = topology.ok_or_else(|| Usage(format!("up needs a topology\n{USAGE}")))?;
    let node = node.unwrap_or_else(|| topology.default_node().to_string());
    if topology.node(&node).is_none() {
        let known: Vec<&str> = topology.nodes().iter().map(|n| n.name.as_str()).collect();
        return Err(Usage(format!(
            "lab `{}` has no node `{node}` (nodes are: {})",
            topology.name(),
            known.join(", ")
        )));
    }
    Ok(Up {
        topology,
        node,
        command,
    })
}

fn up(args: &[OsString]) -> Result<ExitCode, Usage> {
    let up = parse_up(args)?;
    // Before building: a signal during the build tears down as well.
    let signals = Signals::catch(&[libc::SIGINT, libc::SIGTERM, libc::SIGHUP])
        .map_err(|e| Usage(format!("cannot handle signals: {e}")))?;
    let lab = match Lab::build(&up.topology) {
        Ok(lab) => lab,
        Err(e) => {
            eprintln!("netns-lab: cannot build lab `{}`: {e}", up.topology.name());
            return Ok(ExitCode::from(1));
        }
    };
    let node = lab.node(&up.node);
    let interactive = up.command.is_empty();
    let mut stderr = std::io::stderr();
    let _ = write!(stderr, "{lab}");
    let _ = writeln!(
        stderr,
        "netns-lab: {} in node `{}` of lab `{}`; {}.",
        if interactive {
            "a shell"
        } else {
            "running the command"
        },
        up.node,
        lab.name(),
        if interactive {
            "exit it to tear the lab down"
        } else {
            "Ctrl-C tears the lab down"
        }
    );
    if let Some(signal) = signals.pending() {
        let _ = writeln!(
            stderr,
            "netns-lab: got {}: tearing down.",
            signal_name(signal)
        );
        return Ok(ExitCode::from(128 + signal as u8));
    }
    let prompt = format!("[netns-lab {}:{}] ", lab.name(), up.node);
    let mut rcfile = None;
    let mut command = if interactive {
        let shell = std::env::var_os("SHELL").unwrap_or_else(|| "/bin/sh".into());
        let mut command = node.command(&shell);
        // SAFETY: geteuid has no preconditions.
        let sign = if unsafe { libc::geteuid() } == 0 {
            "#"
        } else {
            "$"
        };
        command.env("PS1", format!("{prompt}{sign} "));
        if Path::new(&shell).file_name().is_some_and(|n| n == "bash") {
            // bash sets PS1 in ~/.bashrc: read it, then put the lab in front.
            match bash_rcfile(&prompt) {
                Ok(fd) => {
                    command
                        .arg("--rcfile")
                        .arg(format!("/dev/fd/{}", fd.as_raw_fd()));
                    rcfile = Some(fd);
                }
                Err(e) => eprintln!("netns-lab: no prompt of its own for bash: {e}"),
            }
        }
        command
    } else {
        let mut command = node.command(&up.command[0]);
        command.args(&up.command[1..]);
        command
    };
    command
        .env("NETNS_LAB", lab.name())
        .env("NETNS_NODE", &up.node);
    let program = if interactive {
        "the shell".to_string()
    } else {
        format!("`{}`", up.command[0].to_string_lossy())
    };
    let process = match node.spawn(command) {
        Ok(process) => process,
        Err(e) => {
            eprintln!(
                "netns-lab: cannot start {program} in node `{}`: {e}",
                up.node
            );
            return Ok(ExitCode::from(127));
        }
    };
    drop(rcfile);
    let code = match wait(&process, &signals, interactive) {
        Waited::Exited => match process.wait() {
            Ok(status) => {
                use std::os::unix::process::ExitStatusExt;
                match (status.code(), status.signal()) {
                    (Some(code), _) => code.clamp(0, 255) as u8,
                    (None, Some(signal)) => 128 + signal as u8,
                    _ => 1,
                }
            }
            Err(e) => {
                eprintln!("netns-lab: waiting for {program}: {e}");
                1
            }
        },
        Waited::Signal(signal) => {
            let _ = writeln!(
                stderr,
                "netns-lab: got {}: tearing down lab `{}`.",
                signal_name(signal),
                lab.name()
            );
            128 + signal as u8
        }
        Waited::Error(e) => {
            eprintln!("netns-lab: waiting for {program}: {e}");
            1
        }
    };
    // The process first (killed if still running), then every namespace.
    drop(process);
    drop(lab);
    Ok(ExitCode::from(code))
}

/// A bash rc file in memory: the user's `~/.bashrc`, then the lab's prompt.
fn bash_rcfile(prompt: &str) -> std::io::Result<OwnedFd> {
    // SAFETY: memfd_create with a static name; the descriptor is inherited by the
    // shell (no MFD_CLOEXEC), which opens it as /dev/fd/N.
    let fd = unsafe { libc::memfd_create(c"netns-lab-bashrc".as_ptr(), 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: just created, owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let quoted = prompt.replace('\'', r"'\''");
    let text = format!("[ -f ~/.bashrc ] && . ~/.bashrc\nPS1='{quoted}'\"$PS1\"\n");
    std::fs::File::from(fd.try_clone()?).write_all(text.as_bytes())?;
    Ok(fd)
}

enum Waited {
    Exited,
    Signal(i32),
    Error(std::io::Error),
}

/// Waits for the process to exit or a signal to end the lab. An interactive shell
/// handles Ctrl-C itself: SIGINT does not end the lab then.
fn wait(process: &netns_fixture::Process, signals: &Signals, interactive: bool) -> Waited {
    // SAFETY: pidfd_open on the pid of our own, not yet reaped, child.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, process.id() as libc::pid_t, 0) };
    if pidfd < 0 {
        return Waited::Error(std::io::Error::last_os_error());
    }
    // SAFETY: a new descriptor we own.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) };
    loop {
        let mut fds = [
            libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: signals.fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: fds is a valid array of pollfd.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Waited::Error(e);
        }
        if fds[1].revents != 0 {
            if let Some(signal) = signals.pending() {
                if !(interactive && signal == libc::SIGINT) {
                    return Waited::Signal(signal);
                }
            }
        }
        if fds[0].revents != 0 {
            return Waited::Exited;
        }
    }
}
