//! Flows: from a node, to an address and port, over TCP or UDP, with the outcome
//! a firewall should give them. Written in Rust or as a table of text.

use super::Service;
use crate::probes::reach::{Outcome, Protocol};
use crate::{Error, Lab};
use std::fmt;
use std::net::SocketAddr;

/// Where a flow goes: an address, or a node of the lab by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// `203.0.113.1:22`, `[2001:db8::1]:443`.
    Address(SocketAddr),
    /// `web:80`: the node's address in the lab (see [`crate::Node::resolve`]).
    Node {
        /// The node's name.
        name: String,
        /// The port.
        port: u16,
    },
}

impl Target {
    /// The socket address to connect to in `lab`.
    pub fn resolve(&self, lab: &Lab) -> Result<SocketAddr, Error> {
        match self {
            Target::Address(address) => Ok(*address),
            Target::Node { name, port } => lab
                .resolve(name)
                .map(|ip| SocketAddr::new(ip, *port))
                .ok_or_else(|| Error::UnknownNode {
                    lab: lab.name().into(),
                    node: name.clone(),
                    known: lab.nodes().iter().map(|n| n.name().to_string()).collect(),
                }),
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        match self {
            Target::Address(address) => address.port(),
            Target::Node { port, .. } => *port,
        }
    }
}

impl std::str::FromStr for Target {
    type Err = String;

    /// `ADDRESS:PORT` (IPv6 in brackets) or `NODE:PORT`.
    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(address) = s.parse::<SocketAddr>() {
            return Ok(Target::Address(address));
        }
        let (name, port) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("`{s}` is not ADDRESS:PORT or NODE:PORT"))?;
        let port = port
            .parse()
            .map_err(|_| format!("`{port}` in `{s}` is not a port number"))?;
        if name.is_empty()
            || name.contains(['[', ']', ':', ' '])
            || name.parse::<std::net::IpAddr>().is_ok()
        {
            return Err(format!("`{s}` is not ADDRESS:PORT or NODE:PORT"));
        }
        Ok(Target::Node {
            name: name.into(),
            port,
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Address(address) => address.fmt(f),
            Target::Node { name, port } => write!(f, "{name}:{port}"),
        }
    }
}

/// One flow of a [`crate::matrix::Matrix`] and the outcome expected for it.
///
/// ```
/// use netns_fixture::matrix::Flow;
/// use netns_fixture::probes::reach::Outcome;
/// let flow = Flow::tcp("outside", "203.0.113.1:22", Outcome::Dropped).note("no ssh from the internet");
/// assert_eq!(flow.to_string(), "tcp outside -> 203.0.113.1:22, expected dropped (no ssh from the internet)");
/// let by_name = Flow::udp("lan", "router:53", Outcome::Accepted);
/// assert_eq!(by_name.to.port(), 53);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Flow {
    /// The node the flow starts from.
    pub from: String,
    /// Where it goes.
    pub to: Target,
    /// TCP (a connection attempt) or UDP (a datagram that expects an answer).
    pub protocol: Protocol,
    /// What the firewall should do with it.
    pub expected: Outcome,
    /// Why, for the report.
    pub note: Option<String>,
}

impl Flow {
    /// A flow of `protocol` from node `from` to `to` (`"ADDRESS:PORT"` or
    /// `"NODE:PORT"`).
    ///
    /// # Panics
    /// If `to` is neither; [`Flow::parse_table`] returns such mistakes as errors.
    #[track_caller]
    pub fn new(protocol: Protocol, from: &str, to: &str, expected: Outcome) -> Flow {
        let to = to
            .parse()
            .unwrap_or_else(|e| panic!("flow from `{from}`: {e}"));
        Flow {
            from: from.into(),
            to,
            protocol,
            expected,
            note: None,
        }
    }

    /// A TCP connection attempt from `from` to `to`; see [`Flow::new`].
    #[track_caller]
    pub fn tcp(from: &str, to: &str, expected: Outcome) -> Flow {
        Flow::new(Protocol::Tcp, from, to, expected)
    }

    /// A UDP request from `from` to `to`; see [`Flow::new`].
    #[track_caller]
    pub fn udp(from: &str, to: &str, expected: Outcome) -> Flow {
        Flow::new(Protocol::Udp, from, to, expected)
    }

    /// Says why the flow should have its outcome (shown in reports).
    pub fn note(mut self, note: &str) -> Flow {
        self.note = Some(note.into());
        self
    }

    /// Reads flows from a table, one a line: `FROM TO PROTO EXPECTED [NOTE...]`.
    /// Blank lines, lines starting with `#`, and a header line starting with
    /// `from` are skipped; columns are separated by blanks; everything after the
    /// fourth column is the note.
    ///
    /// ```
    /// use netns_fixture::matrix::Flow;
    /// let flows = Flow::parse_table("
    ///     # from   to                 proto  expected  note
    ///     outside  203.0.113.1:80     tcp    accepted  http forward to the web server
    ///     outside  203.0.113.1:22     tcp    dropped
    ///     lan      router:53          udp    accepted
    /// ").unwrap();
    /// assert_eq!(flows.len(), 3);
    /// assert_eq!(flows[0].note.as_deref(), Some("http forward to the web server"));
    ///
    /// let err = Flow::parse_table("outside 203.0.113.1:80 tcp acepted").unwrap_err();
    /// assert_eq!(err.to_string(), "line 1: `acepted` is not an outcome (accepted, refused or dropped): outside 203.0.113.1:80 tcp acepted");
    /// ```
    ///
    /// `service NODE PROTO PORT...` lines (see [`crate::matrix::Matrix::from_table`])
    /// are not flows: they are skipped here.
    pub fn parse_table(text: &str) -> Result<Vec<Flow>, FlowTableError> {
        parse_table(text).map(|(flows, _)| flows)
    }
}

/// The flows and the `service` lines of a flow table.
pub(crate) fn parse_table(text: &str) -> Result<(Vec<Flow>, Vec<Service>), FlowTableError> {
    let mut flows = Vec::new();
    let mut services = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        let words: Vec<&str> = trimmed.split_whitespace().collect();
        if words.is_empty() || trimmed.starts_with('#') || words[0] == "from" {
            continue;
        }
        let error = |why: String| FlowTableError {
            line: index + 1,
            text: trimmed.to_string(),
            why,
        };
        if words[0] == "service" {
            let [_, node, protocol, ports @ ..] = words.as_slice() else {
                return Err(error(
                    "expected service NODE PROTO PORT..., e.g. `service web tcp 80 443`".into(),
                ));
            };
            let protocol = parse_protocol(protocol)
                .ok_or_else(|| error(format!("`{protocol}` is not a protocol (tcp or udp)")))?;
            if ports.is_empty() {
                return Err(error(
                    "expected service NODE PROTO PORT..., e.g. `service web tcp 80 443`".into(),
                ));
            }
            for port in ports {
                let port: u16 = port
                    .parse()
                    .map_err(|_| error(format!("`{port}` is not a port number (0 to 65535)")))?;
                services.push(match protocol {
                    Protocol::Tcp => Service::tcp(node, port),
                    Protocol::Udp => Service::udp(node, port),
                });
            }
            continue;
        }
        let [from, to, protocol, expected, note @ ..] = words.as_slice() else {
            return Err(error(
                "expected FROM TO PROTO EXPECTED, e.g. `outside 203.0.113.1:22 tcp dropped`".into(),
            ));
        };
        let to = to.parse().map_err(error)?;
        let protocol = parse_protocol(protocol)
            .ok_or_else(|| error(format!("`{protocol}` is not a protocol (tcp or udp)")))?;
        let expected = parse_outcome(expected).ok_or_else(|| {
            error(format!(
                "`{expected}` is not an outcome (accepted, refused or dropped)"
            ))
        })?;
        flows.push(Flow {
            from: from.to_string(),
            to,
            protocol,
            expected,
            note: (!note.is_empty()).then(|| note.join(" ")),
        });
    }
    Ok((flows, services))
}

fn parse_protocol(word: &str) -> Option<Protocol> {
    match word.to_ascii_lowercase().as_str() {
        "tcp" => Some(Protocol::Tcp),
        "udp" => Some(Protocol::Udp),
        _ => None,
    }
}

fn parse_outcome(word: &str) -> Option<Outcome> {
    match word.to_ascii_lowercase().as_str() {
        "accepted" | "accept" => Some(Outcome::Accepted),
        "refused" | "reject" | "rejected" => Some(Outcome::Refused),
        "dropped" | "drop" => Some(Outcome::Dropped),
        _ => None,
    }
}

/// `tcp outside -> 203.0.113.1:22, expected dropped (why)`
impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} -> {}, expected {}",
            self.protocol, self.from, self.to, self.expected
        )?;
        if let Some(note) = &self.note {
            write!(f, " ({note})")?;
        }
        Ok(())
    }
}

/// A line of a flow table that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowTableError {
    /// The line (1-based).
    pub line: usize,
    /// Its text.
    pub text: String,
    /// What is wrong.
    pub why: String,
}

impl fmt::Display for FlowTableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}: {}", self.line, self.why, self.text)
    }
}

impl std::error::Error for FlowTableError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            "10.0.0.1:22".parse::<Target>(),
            Ok(Target::Address("10.0.0.1:22".parse().unwrap()))
        );
        assert_eq!(
            "[2001:db8::1]:443".parse::<Target>().unwrap().to_string(),
            "[2001:db8::1]:443"
        );
        assert_eq!(
            "web:80".parse::<Target>(),
            Ok(Target::Node {
                name: "web".into(),
                port: 80
            })
        );
        assert_eq!(
            "web:http".parse::<Target>().unwrap_err(),
            "`http` in `web:http` is not a port number"
        );
        assert_eq!(
            "10.0.0.1".parse::<Target>().unwrap_err(),
            "`10.0.0.1` is not ADDRESS:PORT or NODE:PORT"
        );
        assert_eq!(
            "2001:db8::1:80".parse::<Target>().unwrap_err(),
            "`2001:db8::1:80` is not ADDRESS:PORT or NODE:PORT"
        );
    }

    #[test]
    fn table_errors_name_the_line() {
        let text = "# header\nfrom to proto expected\n\noutside 203.0.113.1:22\n";
        let e = Flow::parse_table(text).unwrap_err();
        assert_eq!(e.line, 4);
        assert_eq!(
            e.why,
            "expected FROM TO PROTO EXPECTED, e.g. `outside 203.0.113.1:22 tcp dropped`"
        );
        let e = Flow::parse_table("a b:1 sctp accepted").unwrap_err();
        assert_eq!(e.why, "`sctp` is not a protocol (tcp or udp)");
        let e = Flow::parse_table("a 10.0.0.1 tcp accepted").unwrap_err();
        assert_eq!(e.why, "`10.0.0.1` is not ADDRESS:PORT or NODE:PORT");
    }

    #[test]
    fn service_lines_are_read_and_checked() {
        let (flows, services) =
            parse_table("service web tcp 80 443\nservice dns udp 53\nlan web:80 tcp accepted\n")
                .unwrap();
        assert_eq!(flows.len(), 1);
        let listed: Vec<String> = services
            .iter()
            .map(|s| format!("{} {} {}", s.node, s.protocol, s.port))
            .collect();
        assert_eq!(listed, ["web tcp 80", "web tcp 443", "dns udp 53"]);
        assert_eq!(Flow::parse_table("service web tcp 80").unwrap(), []);
        let e = parse_table("\nservice web tcp").unwrap_err();
        assert_eq!(
            (e.line, e.why.as_str()),
            (
                2,
                "expected service NODE PROTO PORT..., e.g. `service web tcp 80 443`"
            )
        );
        let e = parse_table("service web icmp 1").unwrap_err();
        assert_eq!(e.why, "`icmp` is not a protocol (tcp or udp)");
    }

    #[test]
    #[should_panic(expected = "flow from `lan`: `router` is not ADDRESS:PORT or NODE:PORT")]
    fn a_flow_without_a_port_panics_with_the_reason() {
        Flow::tcp("lan", "router", Outcome::Accepted);
    }
}
