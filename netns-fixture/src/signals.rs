//! Signals delivered through a self-pipe, so that a wait can `poll` for them
//! next to other descriptors (a terminal, a child's pidfd).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// The write end of the self-pipe of the live [`Signals`], or -1.
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(signal: libc::c_int) {
    let fd: RawFd = SIGNAL_PIPE.load(Ordering::SeqCst);
    if fd >= 0 {
        let byte = signal as u8;
        // SAFETY: write(2) is async-signal-safe; the pipe outlives the handler.
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
}

/// Handlers for some signals that write each signal's number to a pipe, for as
/// long as this lives; the previous handlers come back on drop. One at a time
/// per process.
///
/// ```no_run
/// # use netns_fixture::__private::Signals;
/// let signals = Signals::catch(&[libc::SIGINT, libc::SIGTERM]).unwrap();
/// // poll(2) on signals.fd() with other descriptors, then:
/// if let Some(signal) = signals.pending() {
///     eprintln!("got {}", netns_fixture::__private::signal_name(signal));
/// }
/// ```
pub struct Signals {
    read: OwnedFd,
    /// Kept open while the handlers may write to it.
    _write: OwnedFd,
    previous: Vec<(i32, libc::sigaction)>,
}

impl Signals {
    /// Catches `signals` until the returned value is dropped.
    pub fn catch(signals: &[i32]) -> io::Result<Signals> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills two descriptors we then own.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both were just created and are owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        SIGNAL_PIPE.store(write.as_raw_fd(), Ordering::SeqCst);
        let mut caught = Signals {
            read,
            _write: write,
            previous: Vec::new(),
        };
        for &signal in signals {
            // SAFETY: installing a handler that only calls write(2); `old` receives
            // the previous action, restored on drop.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signal, &action, &mut old) != 0 {
                    return Err(io::Error::last_os_error());
                }
                caught.previous.push((signal, old));
            }
        }
        Ok(caught)
    }

    /// The descriptor that becomes readable when a signal arrives.
    pub fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// A signal received and not yet taken, if any.
    pub fn pending(&self) -> Option<i32> {
        let mut byte = 0u8;
        // SAFETY: a non-blocking one-byte read into a local.
        let n = unsafe { libc::read(self.read.as_raw_fd(), (&mut byte as *mut u8).cast(), 1) };
        (n == 1).then_some(i32::from(byte))
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for (signal, old) in &self.previous {
            // SAFETY: restoring the action saved by `catch`.
            unsafe { libc::sigaction(*signal, old, std::ptr::null_mut()) };
        }
        SIGNAL_PIPE.store(-1, Ordering::SeqCst);
    }
}

/// `SIGINT`, `SIGTERM`, `SIGHUP`, else `signal N`.
pub fn signal_name(signal: i32) -> String {
    match signal {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGHUP => "SIGHUP".into(),
        other => format!("signal {other}"),
    }
}
