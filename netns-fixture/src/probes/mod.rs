//! What test bodies use to look at a lab from inside: ping, HTTP, and the
//! accepted / refused / dropped reachability checks of firewall tests. Each works
//! in the calling thread's namespace; the methods on [`crate::Node`] run them
//! inside a chosen node.

pub mod http;
pub mod ping;
pub mod reach;
