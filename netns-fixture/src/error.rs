//! The library's error type.

use netns_fixture_topology::TopologyError;
use std::io;

/// Everything that can go wrong while building or using a lab. The messages say what
/// failed and where, and what to do about it where there is something to do.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The process may not create network namespaces.
    NotPrivileged(io::Error),
    /// The topology description is invalid.
    Topology(TopologyError),
    /// A lab has no node of that name.
    UnknownNode {
        /// The lab.
        lab: String,
        /// The name asked for.
        node: String,
        /// The nodes it has.
        known: Vec<String>,
    },
    /// A node has no interface of that name.
    UnknownInterface {
        /// The node.
        node: String,
        /// The name asked for.
        interface: String,
        /// The interfaces it has.
        known: Vec<String>,
    },
    /// A step of building or changing a lab failed.
    Setup {
        /// The lab.
        lab: String,
        /// The node the step concerned.
        node: String,
        /// What was being done, e.g. "adding address 10.0.0.1/24 to eth0".
        step: String,
        /// Why it failed.
        source: io::Error,
    },
    /// Traffic shaping could not be applied.
    Shaping {
        /// The node.
        node: String,
        /// The interface.
        interface: String,
        /// Why.
        source: crate::shaping::ShapingError,
    },
    /// A packet capture could not start or stop.
    Capture(crate::capture::CaptureError),
    /// Rules could not be loaded into a node or read back (see [`crate::rules`]).
    Rules(crate::rules::RulesError),
    /// A check (see [`crate::matrix`]) cannot run as described.
    Check {
        /// The check, e.g. `port forwards from client`.
        check: String,
        /// Why it cannot run.
        why: String,
    },
    /// An I/O error outside any lab step.
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NotPrivileged(e) => write!(
                f,
                "not privileged enough to create a network namespace ({e}): netns-fixture needs \
                 CAP_SYS_ADMIN and CAP_NET_ADMIN. Run the tests as root (`sudo -E cargo test`), \
                 or give the test binary those capabilities"
            ),
            Error::Topology(e) => write!(f, "invalid topology: {e}"),
            Error::UnknownNode { lab, node, known } => write!(
                f,
                "lab `{lab}` has no node `{node}` (nodes are: {})",
                known.join(", ")
            ),
            Error::UnknownInterface {
                node,
                interface,
                known,
            } => write!(
                f,
                "node `{node}` has no interface `{interface}` (interfaces are: {})",
                known.join(", ")
            ),
            Error::Setup {
                lab,
                node,
                step,
                source,
            } => write!(f, "lab `{lab}`, node `{node}`: {step}: {source}"),
            Error::Capture(e) => write!(f, "capture: {e}"),
            Error::Rules(e) => write!(f, "{e}"),
            Error::Check { check, why } => write!(f, "{check}: {why}"),
            Error::Shaping {
                node,
                interface,
                source,
            } => write!(f, "node `{node}`, interface {interface}: {source}"),
            Error::Io { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::NotPrivileged(e)
            | Error::Setup { source: e, .. }
            | Error::Io { source: e, .. } => Some(e),
            Error::Topology(e) => Some(e),
            Error::Capture(e) => Some(e),
            Error::Rules(e) => Some(e),
            Error::Shaping { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<crate::capture::CaptureError> for Error {
    fn from(e: crate::capture::CaptureError) -> Self {
        Error::Capture(e)
    }
}

impl From<TopologyError> for Error {
    fn from(e: TopologyError) -> Self {
        Error::Topology(e)
    }
}
