//! Sysctl keys are paths under `/proc/sys/`: only per-namespace network keys
//! (`net/...`) are accepted, and nothing that could name another place.

/// The path below `/proc/sys/` that `key` names, or why it is refused.
///
/// A key is written as a path (`net/ipv4/ip_forward`) or dotted
/// (`net.ipv4.ip_forward`); only keys under `net/` are accepted, since the others
/// (`kernel/hostname`, `vm/...`) are machine-wide, and a key with `..`, an empty
/// part, a NUL or a leading `/` is refused rather than resolved.
///
/// ```
/// use netns_fixture_topology::sysctl_path;
/// assert_eq!(sysctl_path("net.ipv4.ip_forward").unwrap(), "net/ipv4/ip_forward");
/// assert!(sysctl_path("../../tmp/x").is_err());
/// assert!(sysctl_path("kernel/hostname").is_err());
/// ```
pub fn sysctl_path(key: &str) -> Result<String, String> {
    let path = if key.contains('/') {
        key.to_string()
    } else {
        key.replace('.', "/")
    };
    let refuse = |why: &str| Err(format!("sysctl key `{}`: {why}", key.escape_debug()));
    if key.contains('\0') {
        return refuse("it contains a NUL byte");
    }
    if path.starts_with('/') {
        return refuse(
            "it is an absolute path; write it relative to /proc/sys, like `net/ipv4/ip_forward`",
        );
    }
    if let Some(part) = path
        .split('/')
        .find(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return refuse(&format!(
            "it has a path part `{part}`; a key names one file below /proc/sys/net"
        ));
    }
    if !path.starts_with("net/") {
        return refuse("only per-namespace network keys (`net/...`) can be set in a lab; the others are machine-wide");
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::sysctl_path;

    #[test]
    fn accepts_network_keys_in_both_spellings() {
        assert_eq!(
            sysctl_path("net/ipv4/conf/all/rp_filter").unwrap(),
            "net/ipv4/conf/all/rp_filter"
        );
        assert_eq!(
            sysctl_path("net.ipv6.conf.all.forwarding").unwrap(),
            "net/ipv6/conf/all/forwarding"
        );
    }

    #[test]
    fn refuses_keys_that_leave_net_or_proc_sys() {
        for (key, why) in [
            ("../../tmp/x", "path part `..`"),
            ("net/../../tmp/x", "path part `..`"),
            ("net/ipv4//ip_forward", "path part ``"),
            ("net/./ipv4/ip_forward", "path part `.`"),
            ("/proc/sys/net/ipv4/ip_forward", "absolute path"),
            ("net/ipv4/ip_forward\0x", "NUL"),
            ("kernel/hostname", "machine-wide"),
            ("kernel.hostname", "machine-wide"),
            ("", "path part ``"),
        ] {
            let err = sysctl_path(key).unwrap_err();
            assert!(err.contains(why), "{key:?}: {err}");
        }
    }
}
