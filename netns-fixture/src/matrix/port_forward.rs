//! Port forwards verified end to end: from a client node, each forwarded port
//! must reach the right server — told apart by what each answers — and the
//! server must see the source address the setup implies (the client's own, or
//! the router's when the router masquerades on the way).

use super::flow::Target;
use super::node_with_address;
use super::service::{RunningService, Service};
use super::table::TextTable;
use crate::probes::http::{Content, HttpRequest, HttpServer};
use crate::probes::reach::{Evidence, Protocol};
use crate::{Error, Lab, Node};
use netns_fixture_topology::{Firewall, InterfaceMatch, IpNet, PortForward};
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

/// The source address a server should see for forwarded traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpectedSource {
    /// One of the client's own addresses: nothing rewrites the source on the
    /// way in (a plain DNAT, as in write-up 003).
    Client,
    /// This address (e.g. the router's, when it masquerades towards the server).
    Address(IpAddr),
    /// Any: the source is not checked.
    Any,
}

impl fmt::Display for ExpectedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedSource::Client => f.write_str("the client"),
            ExpectedSource::Address(ip) => write!(f, "{ip}"),
            ExpectedSource::Any => f.write_str("anyone"),
        }
    }
}

/// One port forward to verify: what the client connects to, and which server
/// port it must end up at.
///
/// ```
/// use netns_fixture::matrix::{ExpectedSource, Forward};
/// let forward = Forward::tcp("10.0.0.233:6000", "server1", 8080).body("Hello from Flask!\n");
/// assert_eq!(forward.source, ExpectedSource::Client);
/// let masqueraded = Forward::tcp("10.0.0.233:6001", "server2", 8080).seen_from("192.168.1.1");
/// assert_eq!(masqueraded.source, ExpectedSource::Address("192.168.1.1".parse().unwrap()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// TCP (checked with an HTTP request) or UDP (an echo request).
    pub protocol: Protocol,
    /// What the client connects to: `ADDRESS:PORT` or `NODE:PORT`.
    pub entry: Target,
    /// The node the traffic must reach.
    pub server: String,
    /// The port on that node.
    pub port: u16,
    /// The source address the server must see (default: the client's).
    pub source: ExpectedSource,
    /// TCP: what the server answers (default `Hello from SERVER:PORT\n`), so the
    /// client can tell the servers apart.
    pub body: Option<String>,
}

impl Forward {
    /// A TCP forward from `entry` to `server`:`port`.
    ///
    /// # Panics
    /// If `entry` is not `ADDRESS:PORT` or `NODE:PORT`.
    #[track_caller]
    pub fn tcp(entry: &str, server: &str, port: u16) -> Forward {
        Forward::new(Protocol::Tcp, entry, server, port)
    }

    /// A UDP forward from `entry` to `server`:`port`; see [`Forward::tcp`].
    #[track_caller]
    pub fn udp(entry: &str, server: &str, port: u16) -> Forward {
        Forward::new(Protocol::Udp, entry, server, port)
    }

    #[track_caller]
    fn new(protocol: Protocol, entry: &str, server: &str, port: u16) -> Forward {
        Forward {
            protocol,
            entry: entry
                .parse()
                .unwrap_or_else(|e| panic!("port forward to {server}:{port}: {e}")),
            server: server.into(),
            port,
            source: ExpectedSource::Client,
            body: None,
        }
    }

    /// The server must see the traffic coming from `address` (e.g. the router's
    /// address on the server's side, when it masquerades).
    ///
    /// # Panics
    /// If `address` is not an IP address.
    #[track_caller]
    pub fn seen_from(mut self, address: &str) -> Forward {
        let ip = address
            .parse()
            .unwrap_or_else(|_| panic!("`{address}` is not an IP address"));
        self.source = ExpectedSource::Address(ip);
        self
    }

    /// The server must see the client's own address (the default).
    pub fn seen_from_client(mut self) -> Forward {
        self.source = ExpectedSource::Client;
        self
    }

    /// Do not check the source address.
    pub fn any_source(mut self) -> Forward {
        self.source = ExpectedSource::Any;
        self
    }

    /// TCP: what the server answers.
    pub fn body(mut self, body: &str) -> Forward {
        self.body = Some(body.into());
        self
    }

    fn server_body(&self) -> String {
        self.body
            .clone()
            .unwrap_or_else(|| format!("Hello from {}:{}\n", self.server, self.port))
    }

    fn expected(&self) -> String {
        match self.source {
            ExpectedSource::Any => format!("{}:{}", self.server, self.port),
            source => format!("{}:{}, seeing {source}", self.server, self.port),
        }
    }
}

/// Verifies port forwards end to end from one client node.
///
/// ```no_run
/// use netns_fixture::matrix::{Forward, PortForwardCheck};
/// let lab = netns_fixture::Lab::builtin("two_servers").unwrap();
///
/// // The forwards the topology declares, with the sources its masquerades imply:
/// let report = PortForwardCheck::declared_in(&lab, "client").unwrap().run(&lab).unwrap();
/// println!("{report}");
/// report.assert_as_expected();
///
/// // Or spelled out, e.g. for rules loaded with `Node::load_nftables`:
/// PortForwardCheck::new("client")
///     .forward(Forward::tcp("10.0.0.233:6000", "server1", 8080).body("Hello from Flask!\n"))
///     .forward(Forward::tcp("10.0.0.233:6001", "server2", 8080).body("Hello from the other Flask!\n"))
///     .check(&lab);
/// ```
#[derive(Debug, Clone)]
pub struct PortForwardCheck {
    client: String,
    forwards: Vec<Forward>,
    timeout: Duration,
}

impl PortForwardCheck {
    /// A check from node `client`, with no forwards yet.
    pub fn new(client: &str) -> PortForwardCheck {
        PortForwardCheck {
            client: client.into(),
            forwards: Vec::new(),
            timeout: Duration::from_secs(2),
        }
    }

    /// Adds a forward to verify.
    pub fn forward(mut self, forward: Forward) -> PortForwardCheck {
        self.forwards.push(forward);
        self
    }

    /// How long each request may take (default 2 s).
    pub fn timeout(mut self, timeout: Duration) -> PortForwardCheck {
        self.timeout = timeout;
        self
    }

    /// The forwards to verify.
    pub fn forwards(&self) -> &[Forward] {
        &self.forwards
    }

    /// Every port forward the lab's topology declares (its nodes' [`Firewall`]s),
    /// reached from `client`: at the address of the forward's `in_interface` (else
    /// the router's address on the client's subnet), expecting the server to see
    /// the router's address if one of its masquerades applies to the client's
    /// traffic leaving towards the server, else the client's.
    pub fn declared_in(lab: &Lab, client: &str) -> Result<PortForwardCheck, Error> {
        let client_node = lab.try_node(client)?;
        let mut check = PortForwardCheck::new(client);
        for spec in lab.topology().nodes() {
            let Some(firewall) = &spec.firewall else {
                continue;
            };
            let router = lab.try_node(&spec.name)?;
            for forward in &firewall.port_forwards {
                check = check.forward(derive(lab, client_node, router, firewall, forward)?);
            }
        }
        if check.forwards.is_empty() {
            return Err(Error::Check {
                check: format!("port forwards from {client}"),
                why: format!("topology `{}` declares no port forward", lab.name()),
            });
        }
        Ok(check)
    }

    /// Starts a server on every forward's target (HTTP for TCP, UDP echo), sends
    /// one request through each forward from the client, stops the servers, and
    /// reports what each forward reached and the source the server saw.
    pub fn run(&self, lab: &Lab) -> Result<PortForwardReport, Error> {
        let client = lab.try_node(&self.client)?;
        let mut http: BTreeMap<(String, u16), HttpServer> = BTreeMap::new();
        let mut bodies: BTreeMap<String, (String, u16)> = BTreeMap::new();
        let mut udp: Vec<RunningService> = Vec::new();
        for forward in &self.forwards {
            let key = (forward.server.clone(), forward.port);
            match forward.protocol {
                Protocol::Tcp if http.contains_key(&key) => {
                    let served = bodies.iter().find(|(_, k)| **k == key).map(|(b, _)| b);
                    if forward.body.is_some() && served != Some(&forward.server_body()) {
                        return Err(Error::Check {
                            check: format!("port forwards from {}", self.client),
                            why: format!(
                                "two forwards to {}:{} expect different bodies ({:?} and {:?}): \
                                 one server cannot serve both",
                                key.0,
                                key.1,
                                served.map(String::as_str).unwrap_or_default(),
                                forward.server_body()
                            ),
                        });
                    }
                }
                Protocol::Tcp => {
                    let body = forward.server_body();
                    let server = lab
                        .try_node(&forward.server)?
                        .serve_http(forward.port, Content::text(&body))?;
                    bodies.insert(body, key.clone());
                    http.insert(key, server);
                }
                Protocol::Udp
                    if !udp.iter().any(|s| {
                        (s.service().node.as_str(), s.service().port) == (key.0.as_str(), key.1)
                    }) =>
                {
                    udp.push(Service::udp(&forward.server, forward.port).start(lab)?);
                }
                _ => {}
            }
        }
        let entries = self
            .forwards
            .iter()
            .map(|f| f.entry.resolve(lab))
            .collect::<Result<Vec<_>, _>>()?;
        let answers: Vec<Answer> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .forwards
                .iter()
                .zip(&entries)
                .enumerate()
                .map(|(i, (forward, entry))| {
                    let client = &client;
                    scope.spawn(move || self.send(client, forward.protocol, *entry, i))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Answer::Failed("the request panicked".into()))
                })
                .collect()
        });
        let mut results = Vec::new();
        for (i, (forward, answer)) in self.forwards.iter().zip(answers).enumerate() {
            let path = token_path(i);
            let arrived = match forward.protocol {
                Protocol::Tcp => http.iter().find_map(|((node, port), server)| {
                    server
                        .requests()
                        .into_iter()
                        .find(|r| r.path == path)
                        .map(|r| ((node.clone(), *port), r.peer.ip()))
                }),
                Protocol::Udp => udp.iter().find_map(|s| {
                    s.arrivals()
                        .into_iter()
                        .find(|a| a.payload == path.as_bytes())
                        .map(|a| ((s.service().node.clone(), s.service().port), a.peer.ip()))
                }),
            };
            let (body, error) = match answer {
                Answer::Body(body) => (Some(body), None),
                Answer::Echo => (None, None),
                Answer::Failed(e) => (None, Some(e)),
            };
            // The server that logged the request; else the one whose body came back.
            let answered_by = arrived
                .as_ref()
                .map(|(by, _)| by.clone())
                .or_else(|| body.as_ref().and_then(|b| bodies.get(b).cloned()));
            results.push(ForwardResult {
                forward: forward.clone(),
                client_addresses: client.addresses().map(|a| a.addr).collect(),
                answered_by,
                seen_from: arrived.map(|(_, peer)| peer),
                body,
                error,
            });
        }
        Ok(PortForwardReport {
            client: self.client.clone(),
            results,
        })
    }

    /// Runs the check and panics unless every forward reached its server from
    /// the expected source, with a table of every forward that did not.
    #[track_caller]
    pub fn check(&self, lab: &Lab) {
        match self.run(lab) {
            Ok(report) => report.assert_as_expected(),
            Err(e) => panic!("port forwards from {}: cannot run: {e}", self.client),
        }
    }

    fn send(
        &self,
        client: &Node,
        protocol: Protocol,
        entry: std::net::SocketAddr,
        i: usize,
    ) -> Answer {
        let path = token_path(i);
        match protocol {
            Protocol::Tcp => {
                let url = format!("http://{entry}{path}");
                match client.http(&HttpRequest::get(&url).timeout(self.timeout)) {
                    Ok(response) => Answer::Body(response.text()),
                    Err(e) => Answer::Failed(e.reason),
                }
            }
            Protocol::Udp => {
                let reach = client.udp_request(entry, path.as_bytes(), self.timeout);
                match reach.evidence() {
                    Evidence::Reply { .. } => Answer::Echo,
                    _ => Answer::Failed(super::report::describe(&reach)),
                }
            }
        }
    }
}

/// The request of forward `i`: an HTTP path, or a UDP payload.
fn token_path(i: usize) -> String {
    format!("/netns-fixture/forward/{i}")
}

enum Answer {
    Body(String),
    Echo,
    Failed(String),
}

/// The forward `forward` of `router`, as `client` should see it.
fn derive(
    lab: &Lab,
    client: &Node,
    router: &Node,
    firewall: &Firewall,
    forward: &PortForward,
) -> Result<Forward, Error> {
    let check = format!("port forwards from {}", client.name());
    let fail = |why: String| Error::Check {
        check: check.clone(),
        why,
    };
    let family_of = |ip: &IpAddr| ip.is_ipv4();
    let target_family = family_of(&forward.to.ip());
    let entry: Option<IpNet> = match &forward.in_interface {
        Some(name) => router
            .interface(name)?
            .addresses
            .iter()
            .copied()
            .find(|a| family_of(&a.addr) == target_family),
        None => router.addresses().find(|a| {
            family_of(&a.addr) == target_family && client.addresses().any(|c| c.contains(a.addr))
        }),
    };
    let entry = entry.ok_or_else(|| {
        fail(format!(
            "cannot tell which address of `{}` the client uses for the forward of {} port {}: \
             describe it with Forward::{}(\"ADDRESS:{}\", ...)",
            router.name(),
            forward.protocol,
            forward.port,
            forward.protocol,
            forward.port
        ))
    })?;
    let server = node_with_address(lab, forward.to.ip()).ok_or_else(|| {
        fail(format!(
            "the forward of {} port {} on `{}` goes to {}, which no node of the lab has",
            forward.protocol,
            forward.port,
            router.name(),
            forward.to.ip()
        ))
    })?;
    let client_ip = client
        .addresses()
        .find(|c| c.contains(entry.addr))
        .or_else(|| {
            client
                .addresses()
                .find(|c| family_of(&c.addr) == target_family)
        })
        .map(|c| c.addr);
    let egress = router
        .interfaces()
        .iter()
        .find(|i| i.addresses.iter().any(|a| a.contains(forward.to.ip())));
    let masquerading_address = egress.and_then(|egress| {
        let applies = firewall.masquerades.iter().any(|m| {
            let source_fits = match (m.source, client_ip) {
                (None, _) => true,
                (Some(net), Some(ip)) => net.contains(ip),
                (Some(_), None) => false,
            };
            let interface_fits = match &m.out_interface {
                None => true,
                Some(InterfaceMatch::Is(name)) => *name == egress.name,
                Some(InterfaceMatch::IsNot(name)) => *name != egress.name,
            };
            source_fits && interface_fits
        });
        applies
            .then(|| {
                egress
                    .addresses
                    .iter()
                    .find(|a| family_of(&a.addr) == target_family)
                    .map(|a| a.addr)
            })
            .flatten()
    });
    Ok(Forward {
        protocol: forward.protocol,
        entry: Target::Address(std::net::SocketAddr::new(entry.addr, forward.port)),
        server: server.name().to_string(),
        port: forward.to.port(),
        source: masquerading_address.map_or(ExpectedSource::Client, ExpectedSource::Address),
        body: None,
    })
}

/// What one forward reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardResult {
    forward: Forward,
    client_addresses: Vec<IpAddr>,
    answered_by: Option<(String, u16)>,
    seen_from: Option<IpAddr>,
    body: Option<String>,
    error: Option<String>,
}

impl ForwardResult {
    /// The forward.
    pub fn forward(&self) -> &Forward {
        &self.forward
    }

    /// The server (node, port) that answered, if one of the check's servers did.
    pub fn answered_by(&self) -> Option<(&str, u16)> {
        self.answered_by.as_ref().map(|(n, p)| (n.as_str(), *p))
    }

    /// The source address the server saw.
    pub fn seen_from(&self) -> Option<IpAddr> {
        self.seen_from
    }

    /// TCP: the body the client got.
    pub fn body(&self) -> Option<&str> {
        self.body.as_deref()
    }

    /// Why no answer came, if none did.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Whether the right server answered and saw the expected source.
    pub fn is_as_expected(&self) -> bool {
        let right_server =
            self.answered_by() == Some((self.forward.server.as_str(), self.forward.port));
        let right_source = match (self.forward.source, self.seen_from) {
            (ExpectedSource::Any, _) => true,
            (ExpectedSource::Client, Some(ip)) => self.client_addresses.contains(&ip),
            (ExpectedSource::Address(expected), Some(ip)) => expected == ip,
            (_, None) => false,
        };
        let right_body = match &self.forward.body {
            Some(expected) => self.body.as_ref() == Some(expected),
            None => true,
        };
        right_server && right_source && right_body
    }

    fn got(&self) -> String {
        if let Some(error) = &self.error {
            return format!("no answer: {error}");
        }
        let mut got = match &self.answered_by {
            Some((node, port)) => format!("{node}:{port}"),
            None => "an unknown server".into(),
        };
        if let Some(ip) = self.seen_from {
            let whose = if self.client_addresses.contains(&ip) {
                " (the client)"
            } else {
                ""
            };
            got.push_str(&format!(", seeing {ip}{whose}"));
        }
        if let Some(body) = &self.body {
            got.push_str(&format!(": {:?}", body));
        }
        got
    }
}

/// The results of a [`PortForwardCheck`]. `Display` lists every forward;
/// [`PortForwardReport::assert_as_expected`] panics with the ones that failed:
///
/// ```text
/// port forwards from client: 1 of 2 differs from what was expected
///   entry            proto  expected                         got
///   10.0.0.233:6001  tcp    server2:8080, seeing the client  server1:8080, seeing 10.0.0.2 (the client): "Hello from Flask!\n"
/// ```
#[derive(Debug, Clone)]
pub struct PortForwardReport {
    client: String,
    results: Vec<ForwardResult>,
}

impl PortForwardReport {
    /// Every forward's result, in the check's order.
    pub fn results(&self) -> &[ForwardResult] {
        &self.results
    }

    /// Whether every forward reached its server from the expected source.
    pub fn is_as_expected(&self) -> bool {
        self.results.iter().all(ForwardResult::is_as_expected)
    }

    /// The summary line and a table of the forwards that differ (just the
    /// summary if none does).
    pub fn mismatch_table(&self) -> String {
        let failed: Vec<&ForwardResult> = self
            .results
            .iter()
            .filter(|r| !r.is_as_expected())
            .collect();
        match failed.is_empty() {
            true => format!("{}\n", self.summary()),
            false => format!("{}\n{}", self.summary(), table(&failed)),
        }
    }

    /// Panics unless [`PortForwardReport::is_as_expected`], with
    /// [`PortForwardReport::mismatch_table`].
    #[track_caller]
    pub fn assert_as_expected(&self) {
        if !self.is_as_expected() {
            panic!("{}", self.mismatch_table());
        }
    }

    fn summary(&self) -> String {
        let total = self.results.len();
        let differ = self.results.iter().filter(|r| !r.is_as_expected()).count();
        let client = &self.client;
        match differ {
            0 => format!("port forwards from {client}: all {total} as expected"),
            1 => {
                format!("port forwards from {client}: 1 of {total} differs from what was expected")
            }
            n => {
                format!("port forwards from {client}: {n} of {total} differ from what was expected")
            }
        }
    }
}

impl fmt::Display for PortForwardReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all: Vec<&ForwardResult> = self.results.iter().collect();
        write!(f, "{}\n{}", self.summary(), table(&all))
    }
}

fn table(results: &[&ForwardResult]) -> String {
    let mut table = TextTable::new(&["entry", "proto", "expected", "got"]);
    for result in results {
        table.row(
            vec![
                result.forward.entry.to_string(),
                result.forward.protocol.to_string(),
                result.forward.expected(),
                result.got(),
            ],
            Vec::new(),
        );
    }
    table.render("  ")
}
