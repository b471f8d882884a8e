//! Per-namespace sysctls (`/proc/sys/net/...`).

use std::io;

/// Writes `value` to `/proc/sys/<key>` in the calling thread's network namespace.
/// `key` is a path (`net/ipv4/ip_forward`) or dotted (`net.ipv4.ip_forward`).
pub(crate) fn write(key: &str, value: &str) -> io::Result<()> {
    let path = if key.contains('/') {
        format!("/proc/sys/{key}")
    } else {
        format!("/proc/sys/{}", key.replace('.', "/"))
    };
    std::fs::write(&path, value).map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))
}
