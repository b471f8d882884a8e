//! Anonymous network namespaces held by file descriptors.
//!
//! A namespace is created with `unshare(CLONE_NEWNET)` and kept alive by an open
//! `/proc/thread-self/ns/net`; it is never bind-mounted or named, so when the last
//! descriptor (socket, process or thread inside it) goes away — including when the
//! process is killed — the kernel removes it with every interface in it.

use crate::Error;
use std::fs::File;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

/// A handle on a network namespace. The namespace lives at least as long as the handle.
///
/// ```no_run
/// use netns_fixture::Netns;
/// let ns = Netns::new().unwrap();
/// let inode = ns.run(|| Netns::current().unwrap().inode());
/// assert_eq!(inode, ns.inode());
/// ```
#[derive(Debug)]
pub struct Netns {
    fd: OwnedFd,
}

impl Netns {
    /// The calling thread's current network namespace.
    pub fn current() -> io::Result<Netns> {
        Ok(Netns {
            fd: File::open("/proc/thread-self/ns/net")?.into(),
        })
    }

    /// Creates a new, empty network namespace (only `lo`, down). The calling thread
    /// does not move.
    pub fn new() -> Result<Netns, Error> {
        let origin = Netns::current().map_err(|e| Error::io("opening the current namespace", e))?;
        let _back = origin.restore_on_drop();
        Netns::unshare()
    }

    /// Moves the calling thread into a new namespace and returns it; the caller
    /// restores the thread's namespace (see [`Netns::restore_on_drop`]).
    pub(crate) fn unshare() -> Result<Netns, Error> {
        // SAFETY: unshare has no memory-safety preconditions.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            let err = io::Error::last_os_error();
            return Err(match err.raw_os_error() {
                Some(libc::EPERM) => Error::NotPrivileged(err),
                _ => Error::io("creating a network namespace (unshare)", err),
            });
        }
        Netns::current().map_err(|e| Error::io("opening the new namespace", e))
    }

    /// Moves the calling thread into this namespace until the guard is dropped.
    ///
    /// ```no_run
    /// let ns = netns_fixture::Netns::new().unwrap();
    /// {
    ///     let _inside = ns.enter().unwrap();
    ///     // sockets opened here belong to `ns`
    /// }
    /// ```
    pub fn enter(&self) -> io::Result<EnterGuard> {
        let previous = Netns::current()?;
        self.set_current()?;
        Ok(EnterGuard {
            previous: Some(previous),
            _not_send: PhantomData,
        })
    }

    /// A guard that moves the calling thread back here when dropped.
    pub(crate) fn restore_on_drop(self) -> EnterGuard {
        EnterGuard {
            previous: Some(self),
            _not_send: PhantomData,
        }
    }

    fn set_current(&self) -> io::Result<()> {
        // SAFETY: setns on a valid namespace fd; it only changes this thread.
        if unsafe { libc::setns(self.fd.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Runs `f` on a new thread inside this namespace and returns its result; a
    /// panic in `f` is propagated. Threads `f` spawns start inside the namespace too.
    ///
    /// ```no_run
    /// let ns = netns_fixture::Netns::new().unwrap();
    /// let names = ns.run(|| std::fs::read_to_string("/proc/thread-self/net/dev").unwrap());
    /// assert!(names.contains("lo:"));
    /// ```
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        std::thread::scope(|scope| {
            let handle = scope.spawn(|| {
                self.set_current()
                    .unwrap_or_else(|e| panic!("netns-fixture: cannot enter namespace: {e}"));
                f()
            });
            match handle.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// The namespace's inode number, as `ls -l /proc/PID/ns/net` and `lsns` show it.
    pub fn inode(&self) -> u64 {
        File::from(self.fd.try_clone().expect("dup of a namespace fd"))
            .metadata()
            .map(|m| m.ino())
            .unwrap_or(0)
    }

    /// A path that names this namespace while this process lives, for
    /// `nsenter --net=PATH` or `ip netns exec`-style tools: `/proc/PID/fd/N`.
    pub fn path(&self) -> String {
        format!("/proc/{}/fd/{}", std::process::id(), self.fd.as_raw_fd())
    }
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Keeps the calling thread in a namespace; dropping it moves the thread back.
/// Not `Send`: it must be dropped on the thread that entered.
#[must_use = "the thread leaves the namespace when the guard is dropped"]
pub struct EnterGuard {
    previous: Option<Netns>,
    _not_send: PhantomData<*const ()>,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        if let Some(previous) = self.previous.take() {
            if let Err(e) = previous.set_current() {
                // Unprivileged, setns is refused even into the namespace the thread
                // is still in (when creating the first namespace failed): then there
                // is nothing to return from, and nothing to say.
                let stayed = Netns::current().is_ok_and(|now| now.inode() == previous.inode());
                if !stayed {
                    // Staying inside a lab namespace is the safe failure: nothing that
                    // follows can touch the machine's own namespace by mistake.
                    eprintln!("netns-fixture: could not return to the previous namespace: {e}");
                }
            }
        }
    }
}
