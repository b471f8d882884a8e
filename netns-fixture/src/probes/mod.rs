//! What test bodies use to look at a lab from inside: HTTP, and (below) ping
//! and reachability checks. Each works in the calling thread's namespace; the
//! methods on [`crate::Node`] run them inside a chosen node.

pub mod http;
