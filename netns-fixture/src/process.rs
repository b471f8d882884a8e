//! Programs run inside a node, like `ip netns exec`.
//!
//! [`Node::command`](crate::Node::command) gives a `std::process::Command` whose
//! child enters the node's namespace before `exec` (convert it with
//! `tokio::process::Command::from` for async code). [`Node::spawn`](crate::Node::spawn)
//! starts one in the background: it is killed and reaped when its [`Process`] handle
//! or the lab is dropped, and the kernel kills it (`PR_SET_PDEATHSIG`) if the test
//! process dies first.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// Makes `command`'s child enter the namespace `netns`, see `hosts` as its
/// `/etc/hosts` (in a mount namespace of its own), and die with its parent thread.
pub(crate) fn enter_on_exec(command: &mut Command, netns: BorrowedFd<'_>, hosts: &[u8]) {
    static SPAWNS: AtomicU64 = AtomicU64::new(0);
    let fd: RawFd = netns.as_raw_fd();
    // Everything the child needs is allocated here, before fork.
    let scratch = std::env::temp_dir().join(format!(
        ".netns-fixture-hosts-{}-{}",
        std::process::id(),
        SPAWNS.fetch_add(1, Ordering::Relaxed)
    ));
    let scratch = CString::new(scratch.into_os_string().into_vec()).expect("no NUL in a temp path");
    let hosts = hosts.to_vec();
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
    // system calls on data allocated before the fork. `fd` stays open in the child:
    // it is inherited from the parent, which keeps it open for the lab's lifetime.
    unsafe {
        command.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            mount_hosts(&scratch, &hosts)
        });
    }
}

/// In the child: a private mount namespace whose `/etc/hosts` is `hosts`. The kernel
/// refuses to bind-mount an unlinked file (memfd, `O_TMPFILE`: EINVAL), so the file
/// gets a name just long enough to be mounted; the mount keeps it alive after unlink.
unsafe fn mount_hosts(scratch: &CString, hosts: &[u8]) -> io::Result<()> {
    let check = |r: libc::c_int| {
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
    };
    check(libc::unshare(libc::CLONE_NEWNS))?;
    let root = c"/";
    let none = std::ptr::null();
    check(libc::mount(
        none,
        root.as_ptr(),
        none,
        libc::MS_REC | libc::MS_PRIVATE,
        std::ptr::null(),
    ))?;
    let file = check(libc::open(
        scratch.as_ptr(),
        libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_CLOEXEC,
        0o644,
    ))?;
    let written = libc::write(file, hosts.as_ptr().cast(), hosts.len());
    libc::close(file);
    let mounted = if written == hosts.len() as isize {
        check(libc::mount(
            scratch.as_ptr(),
            c"/etc/hosts".as_ptr(),
            none,
            libc::MS_BIND,
            std::ptr::null(),
        ))
    } else {
        Err(io::Error::last_os_error())
    };
    libc::unlink(scratch.as_ptr());
    mounted.map(drop)
}

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// A thread that lives as long as the lab and forks its background processes:
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked a child ends, so the
/// forking thread must not be a short-lived one.
pub(crate) struct Spawner {
    requests: Mutex<Option<mpsc::Sender<SpawnRequest>>>,
    children: Mutex<Vec<Arc<Mutex<Child>>>>,
}

impl Spawner {
    pub fn new() -> Self {
        Spawner {
            requests: Mutex::new(None),
            children: Mutex::new(Vec::new()),
        }
    }

    fn spawn_child(&self, command: Command) -> io::Result<Child> {
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        let sender = requests.get_or_insert_with(|| {
            let (tx, rx) = mpsc::channel::<SpawnRequest>();
            std::thread::Builder::new()
                .name("netns-fixture-spawner".into())
                .spawn(move || {
                    for (mut command, reply) in rx {
                        let _ = reply.send(command.spawn());
                    }
                })
                .expect("spawning the process spawner thread");
            tx
        });
        let (reply, answer) = mpsc::channel();
        sender
            .send((command, reply))
            .map_err(|_| io::Error::other("the spawner thread is gone"))?;
        answer
            .recv()
            .map_err(|_| io::Error::other("the spawner thread is gone"))?
    }

    /// Starts `command` in the background and keeps it for teardown.
    pub fn spawn(&self, command: Command, node: &str) -> io::Result<Process> {
        let program = command.get_program().to_string_lossy().into_owned();
        let child = Arc::new(Mutex::new(self.spawn_child(command)?));
        self.children
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::clone(&child));
        Ok(Process {
            child,
            program,
            node: node.into(),
        })
    }

    /// Kills and reaps every background process still running.
    pub fn kill_all(&self) {
        let children =
            std::mem::take(&mut *self.children.lock().unwrap_or_else(|p| p.into_inner()));
        for child in children {
            kill_and_reap(&mut child.lock().unwrap_or_else(|p| p.into_inner()));
        }
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        self.kill_all();
    }
}

fn kill_and_reap(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A program running in the background in a node. Dropping the handle kills and
/// reaps it; so does dropping the lab.
///
/// ```no_run
/// let lab = netns_fixture::Lab::builtin("host_ns").unwrap();
/// let node = lab.node("ns_rifky");
/// let mut command = node.command("python3");
/// command.args(["-m", "http.server", "4000"]);
/// let server = node.spawn(command).unwrap();
/// node.wait_for_tcp("10.0.0.11:4000".parse().unwrap(), std::time::Duration::from_secs(5)).unwrap();
/// assert!(server.is_running());
/// ```
#[derive(Debug)]
pub struct Process {
    child: Arc<Mutex<Child>>,
    program: String,
    node: String,
}

impl Process {
    /// The process id.
    pub fn id(&self) -> u32 {
        self.lock().id()
    }

    /// The program's name as given to [`crate::Node::command`].
    pub fn program(&self) -> &str {
        &self.program
    }

    /// The node it runs in.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Whether it is still running.
    pub fn is_running(&self) -> bool {
        matches!(self.lock().try_wait(), Ok(None))
    }

    /// Kills it (SIGKILL) and waits for it.
    pub fn kill(&self) -> io::Result<ExitStatus> {
        let mut child = self.lock();
        if child.try_wait()?.is_none() {
            child.kill()?;
        }
        child.wait()
    }

    /// Waits for it to exit by itself.
    pub fn wait(&self) -> io::Result<ExitStatus> {
        self.lock().wait()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Child> {
        self.child.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        kill_and_reap(&mut self.lock());
    }
}
