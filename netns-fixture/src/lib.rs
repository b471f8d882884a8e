//! Test fixtures for Linux network namespaces.
//!
//! Put `#[netns_test(topology = "two_servers")]` on a test: before the body runs the
//! framework builds the lab's namespaces, veth pairs, bridges, routes and NAT; the
//! body runs inside one of its nodes; afterwards everything is gone, whatever
//! happened — the namespaces are anonymous and held only by this process, so even
//! a killed test leaves nothing behind.
//!
//! ```no_run
//! use netns_fixture::prelude::*;
//!
//! #[netns_test(topology = "pair")]
//! fn ns1_reaches_ns2(lab: &Lab) {
//!     let report = ping(lab.node("ns-2").ipv4().unwrap().into(), &PingOptions::default()).unwrap();
//!     report.assert_all_replied();
//! }
//! ```

#![warn(missing_docs)]

extern crate self as netns_fixture;

pub mod capture;
mod deadline;
pub mod diagram;
mod error;
pub mod inspect;
mod keep;
mod lab;
pub mod matrix;
mod namespace;
mod nat;
mod netlink;
pub mod probes;
mod process;
mod readiness;
mod report;
pub mod rules;
pub mod shaping;
mod signals;
mod sysctl;
mod userns;

#[doc(hidden)]
pub mod runner;

pub use error::Error;
pub use lab::{Interface, InterfaceKind, Lab, Node};
pub use namespace::{EnterGuard, Netns};
pub use netns_fixture_macros::netns_test;
pub use process::Process;
pub use userns::TestReturn;

/// The topology model: builder, validation, built-ins.
pub mod topology {
    pub use netns_fixture_topology::*;
}

#[doc(hidden)]
pub mod __private {
    pub use crate::report::on_failure;
    pub use crate::runner::*;
    pub use crate::signals::{signal_name, Signals};
    pub use crate::userns::enter_on_exec as enter_user_namespace_on_exec;
    pub use tokio;
}

/// Everything a test usually needs: `use netns_fixture::prelude::*;`.
pub mod prelude {
    pub use crate::capture::{Capture, Captured, Filter, Packet};
    pub use crate::matrix::{Flow, Forward, Matrix, PortForwardCheck, Service};
    pub use crate::probes::http::{Content, HttpRequest, HttpResponse};
    pub use crate::probes::ping::{ping, PingOptions, PingReport};
    pub use crate::probes::reach::{tcp_connect, udp_request, Outcome, Reach};
    pub use crate::{netns_test, Error, Lab, Node};
}
