//! Firewall and port-forward regression checks.
//!
//! A [`Matrix`] is a firewall regression test as a table: flows (from a node, to
//! an address and port, TCP or UDP) with the outcome each should get —
//! accepted, refused or dropped. It starts the [`Service`]s that make "accepted"
//! possible, runs every flow at once, and reports every flow that differs in one
//! table, not just the first:
//!
//! ```text
//! office router: 2 of 12 flows differ from what was expected
//!   from     to              proto  expected  got       detail
//!   outside  203.0.113.1:22  tcp    dropped   accepted  handshake completed in 0.083 ms, reached tcp router:22 from 203.0.113.10
//!            (no ssh from the internet, not even a refusal)
//!   lan      10.0.1.1:22     tcp    refused   accepted  handshake completed in 0.055 ms, reached tcp router:22 from 10.0.1.10
//!            (no ssh from the lan)
//! ```
//!
//! ```no_run
//! use netns_fixture::prelude::*;
//! use netns_fixture::topology::Topology;
//!
//! fn office() -> Topology {
//!     Topology::from_toml_file("labs/office.toml").unwrap()
//! }
//!
//! #[netns_test(topology = office)]
//! fn router_ruleset_still_behaves(lab: &Lab) {
//!     lab.node("router").load_nftables_file("rulesets/router.nft").unwrap();
//!     Matrix::new("router")
//!         .service(Service::tcp("router", 22))
//!         .service(Service::tcp("web", 80))
//!         .flow(Flow::tcp("admin", "10.0.2.1:22", Outcome::Accepted))
//!         .flow(Flow::tcp("outside", "203.0.113.1:22", Outcome::Dropped))
//!         .flow(Flow::tcp("outside", "203.0.113.1:80", Outcome::Accepted).note("http forward"))
//!         .check(lab);
//! }
//! ```
//!
//! [`PortForwardCheck`] verifies port forwards end to end: each forwarded port
//! reaches the right server, which sees the source address the setup implies.
//!
//! Outcomes are those of [`crate::probes::reach`]. Refusals by ICMP from a router
//! are rate-limited by the kernel (`net.ipv4.icmp_ratelimit`, default one per
//! second after a burst of about two, per destination), so every lab namespace
//! sets `net/ipv4/icmp_ratelimit` and `net/ipv6/icmp/ratelimit` to 0: otherwise
//! a matrix with several flows that a router rejects with ICMP would see most of
//! them as dropped. TCP resets (`reject with tcp reset`) are not limited.

mod flow;
mod port_forward;
mod report;
mod service;
mod table;

pub use flow::{Flow, FlowTableError, Target};
pub use port_forward::{
    ExpectedSource, Forward, ForwardResult, PortForwardCheck, PortForwardReport,
};
pub use report::{FlowResult, MatrixReport, NodeRuleHit, Reached};
pub use service::{Arrival, RunningService, Service};

use crate::probes::reach::{self, Evidence, Outcome, Protocol, Reach, DEFAULT_TIMEOUT};
use crate::{Error, Lab, Node};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many flows run at the same time by default.
pub const DEFAULT_CONCURRENCY: usize = 64;

/// A table-driven firewall check: flows, their expected outcomes, and the
/// services that must listen for "accepted" to be possible.
///
/// ```no_run
/// use netns_fixture::matrix::{Flow, Matrix, Service};
/// use netns_fixture::probes::reach::Outcome::*;
///
/// let lab = netns_fixture::Lab::builtin("two_servers").unwrap();
/// let report = Matrix::new("write-up 003")
///     .service(Service::tcp("server1", 8080))
///     .service(Service::tcp("server2", 8080))
///     .flow(Flow::tcp("client", "10.0.0.233:6000", Accepted).note("forward to server1"))
///     .flow(Flow::tcp("client", "10.0.0.233:6001", Accepted).note("forward to server2"))
///     .flow(Flow::tcp("client", "10.0.0.233:6002", Refused).note("no forward: the router's closed port"))
///     .run(&lab)
///     .unwrap();
/// println!("{report}");
/// report.assert_as_expected();
/// ```
#[derive(Debug, Clone)]
pub struct Matrix {
    name: String,
    flows: Vec<Flow>,
    services: Vec<Service>,
    timeout: Duration,
    concurrency: usize,
    explain_with: Vec<String>,
}

impl Matrix {
    /// An empty matrix; `name` heads its reports.
    pub fn new(name: &str) -> Matrix {
        Matrix {
            name: name.into(),
            flows: Vec::new(),
            services: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            concurrency: DEFAULT_CONCURRENCY,
            explain_with: Vec::new(),
        }
    }

    /// A matrix from a flow table: one `FROM TO PROTO EXPECTED [NOTE]` line per
    /// flow (see [`Flow::parse_table`]) and `service NODE PROTO PORT...` lines
    /// for what listens, so that a whole suite lives in one file.
    ///
    /// ```
    /// use netns_fixture::matrix::Matrix;
    /// let matrix = Matrix::from_table("office router", "
    ///     service router tcp 22
    ///     service web    tcp 80 443
    ///     # from   to               proto  expected  note
    ///     outside  203.0.113.1:22   tcp    dropped   no ssh from the internet
    ///     outside  203.0.113.1:80   tcp    accepted  http forward
    /// ").unwrap();
    /// assert_eq!((matrix.flow_count(), matrix.service_count()), (2, 3));
    ///
    /// let err = Matrix::from_table("m", "service web tcp http").unwrap_err();
    /// assert_eq!(err.to_string(), "line 1: `http` is not a port number (0 to 65535): service web tcp http");
    /// ```
    pub fn from_table(name: &str, table: &str) -> Result<Matrix, FlowTableError> {
        let (flows, services) = flow::parse_table(table)?;
        Ok(Matrix::new(name).flows(flows).services(services))
    }

    /// How many flows it checks.
    pub fn flow_count(&self) -> usize {
        self.flows.len()
    }

    /// How many services it starts.
    pub fn service_count(&self) -> usize {
        self.services.len()
    }

    /// Adds a flow.
    pub fn flow(mut self, flow: Flow) -> Matrix {
        self.flows.push(flow);
        self
    }

    /// Adds flows, e.g. from [`Flow::parse_table`].
    ///
    /// ```no_run
    /// use netns_fixture::matrix::{Flow, Matrix};
    /// # let lab = netns_fixture::Lab::builtin("two_servers").unwrap();
    /// let flows = Flow::parse_table("
    ///     # from  to               proto  expected
    ///     client  10.0.0.233:22    tcp    refused
    ///     client  192.168.0.2:22   tcp    refused
    /// ").unwrap();
    /// Matrix::new("router").flows(flows).check(&lab);
    /// ```
    pub fn flows(mut self, flows: impl IntoIterator<Item = Flow>) -> Matrix {
        self.flows.extend(flows);
        self
    }

    /// Adds a service to start before the flows run (and stop after).
    pub fn service(mut self, service: Service) -> Matrix {
        self.services.push(service);
        self
    }

    /// Adds services.
    pub fn services(mut self, services: impl IntoIterator<Item = Service>) -> Matrix {
        self.services.extend(services);
        self
    }

    /// How long each flow waits for an answer before it counts as dropped
    /// (default [`DEFAULT_TIMEOUT`], 500 ms). A matrix takes about this long,
    /// whatever its size, when some flow is dropped.
    pub fn timeout(mut self, timeout: Duration) -> Matrix {
        self.timeout = timeout;
        self
    }

    /// How many flows run at the same time (default [`DEFAULT_CONCURRENCY`]);
    /// 1 runs them one after the other.
    pub fn concurrency(mut self, flows: usize) -> Matrix {
        self.concurrency = flows.max(1);
        self
    }

    /// When a flow differs from what was expected, runs it again alone and
    /// reads the rule counters of `node` before and after, to report which of
    /// its rules the flow hit (rules with a `counter`; iptables rules always
    /// count). Call it once per firewall node to watch.
    pub fn explain_with(mut self, node: &str) -> Matrix {
        self.explain_with.push(node.into());
        self
    }

    /// Starts the services, runs every flow (concurrently), stops the services,
    /// and reports. Errors only if the matrix cannot run (an unknown node, a
    /// service that cannot listen); flows that differ are in the report.
    pub fn run(&self, lab: &Lab) -> Result<MatrixReport, Error> {
        let start = Instant::now();
        let mut planned = Vec::with_capacity(self.flows.len());
        for flow in &self.flows {
            planned.push((lab.try_node(&flow.from)?, flow.to.resolve(lab)?));
        }
        for node in &self.explain_with {
            lab.try_node(node)?;
        }
        let running = self
            .services
            .iter()
            .map(|s| s.start(lab))
            .collect::<Result<Vec<_>, _>>()?;

        let probes = self.probe_all(&planned);
        await_tcp_arrivals(&probes, &running, self.timeout);
        let mut results: Vec<FlowResult> = self
            .flows
            .iter()
            .zip(&planned)
            .zip(probes)
            .enumerate()
            .map(|(i, ((flow, (_, target)), probe))| {
                let reached = probe
                    .as_ref()
                    .ok()
                    .and_then(|reach| reached(reach, &token(i), &running));
                let hint = probe
                    .as_ref()
                    .ok()
                    .and_then(|reach| self.missing_service_hint(lab, flow, reach));
                FlowResult {
                    flow: flow.clone(),
                    target: *target,
                    probe,
                    reached,
                    hint,
                    again: None,
                    rules_hit: None,
                }
            })
            .collect();
        if !self.explain_with.is_empty() {
            for (i, result) in results.iter_mut().enumerate() {
                if !result.is_as_expected() {
                    self.explain(lab, planned[i].0, i, result)?;
                }
            }
        }
        drop(running);
        Ok(MatrixReport {
            name: self.name.clone(),
            results,
            elapsed: start.elapsed(),
            timeout: self.timeout,
        })
    }

    /// Runs the matrix and panics unless every flow had its expected outcome,
    /// with the table of every flow that differs.
    ///
    /// # Panics
    /// Also if the matrix cannot run at all (the message says why).
    #[track_caller]
    pub fn check(&self, lab: &Lab) {
        match self.run(lab) {
            Ok(report) => report.assert_as_expected(),
            Err(e) => panic!("{}: cannot run: {e}", self.name),
        }
    }

    fn probe_all(&self, planned: &[(&Node, SocketAddr)]) -> Vec<Result<Reach, String>> {
        let slots: Vec<Mutex<Option<Result<Reach, String>>>> =
            planned.iter().map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let workers = self.concurrency.min(planned.len());
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((node, target)) = planned.get(i) else {
                        break;
                    };
                    let probe = probe(
                        node,
                        self.flows[i].protocol,
                        *target,
                        &token(i),
                        self.timeout,
                    );
                    *slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(probe);
                });
            }
        });
        slots
            .into_iter()
            .map(|slot| {
                slot.into_inner()
                    .unwrap_or_else(|p| p.into_inner())
                    .unwrap_or_else(|| Err("the check did not run".into()))
            })
            .collect()
    }

    /// Runs flow `i` again alone, between two readings of the rule counters.
    fn explain(
        &self,
        lab: &Lab,
        from: &Node,
        i: usize,
        result: &mut FlowResult,
    ) -> Result<(), Error> {
        let watched: Vec<&Node> = self
            .explain_with
            .iter()
            .map(|name| lab.try_node(name))
            .collect::<Result<_, _>>()?;
        let before = watched
            .iter()
            .map(|node| node.ruleset())
            .collect::<Result<Vec<_>, _>>()?;
        let again = probe(
            from,
            result.flow.protocol,
            result.target,
            &token(i),
            self.timeout,
        );
        let mut hits = Vec::new();
        for (node, before) in watched.iter().zip(&before) {
            for hit in node.ruleset()?.hits_since(before) {
                hits.push(NodeRuleHit {
                    node: node.name().to_string(),
                    hit,
                });
            }
        }
        result.again = Some(again);
        result.rules_hit = Some(hits);
        Ok(())
    }

    /// For an accepted-expected flow turned away by the target itself: says that
    /// nothing listens there when no service of the matrix does.
    fn missing_service_hint(&self, lab: &Lab, flow: &Flow, reach: &Reach) -> Option<String> {
        if flow.expected != Outcome::Accepted || reach.outcome() != Outcome::Refused {
            return None;
        }
        let target = reach.target();
        let from_target = match reach.evidence() {
            Evidence::Reset => true,
            Evidence::Icmp { from, .. } => *from == Some(target.ip()),
            _ => false,
        };
        let owner = node_with_address(lab, target.ip())?;
        let served = self
            .services
            .iter()
            .any(|s| s.listens_at(owner, flow.protocol, target.port()));
        (from_target && !served).then(|| {
            format!(
                "nothing listens on {}:{}: add Service::{}(\"{}\", {})",
                owner.name(),
                target.port(),
                flow.protocol,
                owner.name(),
                target.port()
            )
        })
    }
}

/// What a UDP flow sends, so that the service it reaches can be told.
fn token(flow: usize) -> Vec<u8> {
    format!("netns-fixture flow {flow}").into_bytes()
}

fn probe(
    node: &Node,
    protocol: Protocol,
    target: SocketAddr,
    token: &[u8],
    timeout: Duration,
) -> Result<Reach, String> {
    node.run(|| match protocol {
        Protocol::Tcp => reach::try_tcp_connect(target, timeout),
        Protocol::Udp => reach::try_udp_request(target, token, timeout),
    })
    .map_err(|e| e.to_string())
}

/// The node that has `ip` on one of its interfaces.
pub(crate) fn node_with_address(lab: &Lab, ip: IpAddr) -> Option<&Node> {
    lab.nodes()
        .iter()
        .find(|n| n.addresses().any(|a| a.addr == ip))
}

/// Which service an accepted flow reached: for UDP the one that got its token;
/// for TCP the one that accepted a connection from the client's port (the
/// address may differ, if a NAT rewrote it).
fn reached(reach: &Reach, token: &[u8], running: &[service::RunningService]) -> Option<Reached> {
    let found = |service: &service::RunningService, fits: &dyn Fn(&Arrival) -> bool| {
        service
            .arrivals()
            .into_iter()
            .find(|a| fits(a))
            .map(|arrival| Reached {
                service: service.service().clone(),
                arrival,
            })
    };
    match (reach.protocol(), reach.evidence()) {
        (Protocol::Udp, Evidence::Reply { .. }) => running
            .iter()
            .filter(|s| s.service().protocol == Protocol::Udp)
            .find_map(|s| found(s, &|a| a.payload == token)),
        (Protocol::Tcp, Evidence::Connected { local: Some(local) }) => {
            let tcp = || {
                running
                    .iter()
                    .filter(|s| s.service().protocol == Protocol::Tcp)
            };
            tcp()
                .find_map(|s| found(s, &|a| a.peer == *local))
                .or_else(|| tcp().find_map(|s| found(s, &|a| a.peer.port() == local.port())))
        }
        _ => None,
    }
}

/// A TCP handshake completes before the service's `accept` returns: waits (at
/// most `limit`) until every accepted TCP flow's connection has arrived.
fn await_tcp_arrivals(
    probes: &[Result<Reach, String>],
    running: &[service::RunningService],
    limit: Duration,
) {
    let locals: Vec<SocketAddr> = probes
        .iter()
        .filter_map(|p| match p.as_ref().ok()?.evidence() {
            Evidence::Connected { local: Some(local) } => Some(*local),
            _ => None,
        })
        .collect();
    if locals.is_empty()
        || !running
            .iter()
            .any(|s| s.service().protocol == Protocol::Tcp)
    {
        return;
    }
    let deadline = Instant::now() + limit.min(Duration::from_millis(50));
    loop {
        let ports: Vec<u16> = running
            .iter()
            .flat_map(|s| s.arrivals())
            .map(|a| a.peer.port())
            .collect();
        let arrived = locals.iter().all(|l| ports.contains(&l.port()));
        if arrived || Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
