//! What test bodies use to look at a lab from inside: ping, HTTP, and the
//! accepted / refused / dropped reachability checks of firewall tests. Each works
//! in the calling thread's namespace; the methods on [`crate::Node`] run them
//! inside a chosen node.

pub mod http;
pub mod ping;
pub mod reach;

/// The address without the IPv4-mapped IPv6 form (`::ffff:10.0.0.10`) that a
/// dual-stack socket reports for IPv4 peers.
pub(crate) fn canonical(address: std::net::SocketAddr) -> std::net::SocketAddr {
    std::net::SocketAddr::new(address.ip().to_canonical(), address.port())
}
