//! The topology model of [netns-fixture](https://docs.rs/netns-fixture): what a lab
//! is made of, checked before anything is created.
//!
//! This crate is pure data (no system calls), so that the `#[netns_test]` macro can
//! validate topologies at compile time and the library can build them at run time
//! from the same description.
//!
//! ```
//! use netns_fixture_topology::{builtin, Topology};
//! let lan = builtin::get("lan").unwrap();
//! assert_eq!(lan.node("ns1").unwrap().routes[0].gateway.to_string(), "192.168.0.1");
//!
//! let mine = Topology::builder("mine")
//!     .node("a", |n| n)
//!     .node("b", |n| n)
//!     .link(("a", "eth0", "10.9.0.1/30"), ("b", "eth0", "10.9.0.2/30"))
//!     .build()
//!     .unwrap();
//! assert_eq!(mine.links().len(), 1);
//! ```

#![warn(missing_docs)]

mod builder;
pub mod builtin;
mod firewall;
mod net;
mod pool;
mod spec;
mod sysctl_key;
mod toml_file;

pub use builder::{NodeBuilder, TopologyBuilder, TopologyError, MAX_INTERFACE_NAME};
pub use firewall::{
    CtStates, Firewall, ForwardRule, InterfaceMatch, Masquerade, PortForward, Protocol, Verdict,
};
pub use net::IpNet;
pub use spec::{BridgeSpec, EndpointSpec, LinkSpec, NodeSpec, RouteSpec, Topology};
pub use sysctl_key::sysctl_path;
pub use toml_file::TomlError;
