//! Per-namespace sysctls (`/proc/sys/net/...`).

use netns_fixture_topology::sysctl_path;
use std::io;

/// Writes `value` to `/proc/sys/<key>` in the calling thread's network namespace.
/// `key` is a path (`net/ipv4/ip_forward`) or dotted (`net.ipv4.ip_forward`), and
/// must be a per-namespace network key ([`sysctl_path`]); the file must exist
/// already (nothing is ever created).
pub(crate) fn write(key: &str, value: &str) -> io::Result<()> {
    let path = sysctl_path(key).map_err(|why| io::Error::new(io::ErrorKind::InvalidInput, why))?;
    let path = format!("/proc/sys/{path}");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut file| io::Write::write_all(&mut file, value.as_bytes()))
        .map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))
}
