//! A running lab: one namespace per node, wired as its [`Topology`] says.

use crate::namespace::{EnterGuard, Netns};
use crate::nat::Netfilter;
use crate::netlink::RouteSocket;
use crate::probes::http::{Content, HttpError, HttpRequest, HttpResponse, HttpServer};
use crate::probes::ping::{self, PingOptions, PingReport};
use crate::probes::reach::{self, Reach};
use crate::process::{enter_on_exec, Process, Spawner};
use crate::readiness::{
    close_in_background, wait_for_delivery, Ipv6Interface, Ipv6Readiness, Prober,
};
use crate::{sysctl, Error};
use netns_fixture_topology::{IpNet, NodeSpec, Topology};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A built lab. Dropping it removes everything it made: its namespaces, and with
/// them every interface, address, route and rule.
///
/// ```no_run
/// use netns_fixture::Lab;
/// let lab = Lab::builtin("pair").unwrap();
/// let ns2 = lab.node("ns-2");
/// assert_eq!(ns2.ipv4().unwrap().to_string(), "10.0.0.20");
/// ```
pub struct Lab {
    topology: Topology,
    nodes: Vec<Node>,
    spawner: Arc<Spawner>,
}

/// Node names and their addresses: what the lab's hosts file says.
#[derive(Debug, Default)]
struct Names {
    entries: Vec<(String, IpAddr)>,
}

impl Names {
    fn of(nodes: &[Node]) -> Names {
        let mut entries = Vec::new();
        for node in nodes {
            entries.extend(node.ipv4().map(|a| (node.name.clone(), IpAddr::V4(a))));
            entries.extend(node.ipv6().map(|a| (node.name.clone(), IpAddr::V6(a))));
        }
        Names { entries }
    }

    fn resolve(&self, name: &str) -> Option<IpAddr> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| *a)
    }

    /// The node names, each once, in lab order.
    fn nodes(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for (name, _) in &self.entries {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }

    fn hosts_file(&self) -> Vec<u8> {
        let mut text =
            String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
        for (name, address) in &self.entries {
            text.push_str(&format!("{address}\t{name}\n"));
        }
        text.into_bytes()
    }
}

/// One node of a lab: a network namespace with its interfaces.
pub struct Node {
    name: String,
    netns: Netns,
    interfaces: Vec<Interface>,
    route: Mutex<RouteSocket>,
    lab: String,
    spawner: Arc<Spawner>,
    firewall: Option<netns_fixture_topology::Firewall>,
    names: Arc<Names>,
    captures: crate::capture::Registry,
    /// The IPv6 readiness check, for a node with IPv6 addresses.
    ipv6_check: Option<Mutex<Ipv6Readiness>>,
}

/// An interface of a node, as the topology made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// The interface name inside the node.
    pub name: String,
    /// Its index inside the node's namespace.
    pub index: u32,
    /// Its addresses.
    pub addresses: Vec<IpNet>,
    /// What kind of interface it is.
    pub kind: InterfaceKind,
}

/// What an [`Interface`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterfaceKind {
    /// One end of a veth pair.
    Veth {
        /// The node holding the other end.
        peer_node: String,
        /// The other end's name.
        peer_interface: String,
        /// The bridge of this node this end is a port of, if any.
        bridge: Option<String>,
    },
    /// A bridge (switch).
    Bridge,
}

impl Lab {
    /// Builds the built-in topology `name` (see [`crate::topology::builtin`]).
    pub fn builtin(name: &str) -> Result<Lab, Error> {
        let topology = netns_fixture_topology::builtin::get(name).ok_or_else(|| {
            Error::Topology(netns_fixture_topology::TopologyError::UnknownNode {
                context: "the built-in topology list".into(),
                node: name.into(),
                known: netns_fixture_topology::builtin::NAMES
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            })
        })?;
        Lab::build(&topology)
    }

    /// Builds `topology`: namespaces, links, addresses, routes, sysctls and
    /// firewall rules. On error nothing is left behind.
    ///
    /// It returns once the lab is usable: every link carries frames, and where
    /// the topology has IPv6 addresses the kernel has finished setting them up
    /// (link-local addresses are not tentative, solicited-node groups are
    /// joined), so a test's first packet is not lost. Nodes with IPv6 addresses
    /// have duplicate address detection off (`net.ipv6.conf.{all,default}.accept_dad=0`);
    /// a node's own sysctls may turn it back on, and then building waits for it.
    ///
    /// ```no_run
    /// use netns_fixture::{topology::Topology, Lab};
    /// let topology = Topology::builder("mine")
    ///     .node("a", |n| n)
    ///     .node("b", |n| n)
    ///     .link(("a", "eth0", "10.9.0.1/30"), ("b", "eth0", "10.9.0.2/30"))
    ///     .build()?;
    /// let lab = Lab::build(&topology)?;
    /// assert_eq!(lab.nodes().len(), 2);
    /// # Ok::<(), netns_fixture::Error>(())
    /// ```
    pub fn build(topology: &Topology) -> Result<Lab, Error> {
        Builder::new(topology).build()
    }

    /// The lab's name (its topology's).
    pub fn name(&self) -> &str {
        self.topology.name()
    }

    /// The topology the lab was built from.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Every node, in topology order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The node called `name`.
    ///
    /// # Panics
    /// If there is none; the message lists the nodes there are. Use
    /// [`Lab::try_node`] to handle that case.
    pub fn node(&self, name: &str) -> &Node {
        self.try_node(name).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The node called `name`, or an error listing the nodes there are.
    pub fn try_node(&self, name: &str) -> Result<&Node, Error> {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| Error::UnknownNode {
                lab: self.name().into(),
                node: name.into(),
                known: self.nodes.iter().map(|n| n.name.clone()).collect(),
            })
    }

    /// The address node `name` resolves to inside the lab (see [`Node::resolve`]).
    pub fn resolve(&self, name: &str) -> Option<IpAddr> {
        self.nodes.first().and_then(|n| n.resolve(name))
    }

    /// The node test bodies run in unless they name another.
    pub fn default_node(&self) -> &Node {
        self.node(self.topology.default_node())
    }
}

/// The address plan, one node per block, as the README's diagrams show it:
///
/// ```text
/// lab pair
///   ns-1
///     veth-1     10.0.0.10/16       <-> ns-2/veth-2
///   ns-2
///     veth-2     10.0.0.20/16       <-> ns-1/veth-1
/// ```
impl std::fmt::Display for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "lab {}", self.name())?;
        for (node, spec) in self.nodes.iter().zip(self.topology.nodes()) {
            let mut notes = Vec::new();
            if node.name == self.topology.default_node() {
                notes.push("default node".to_string());
            }
            if spec.forwarding {
                notes.push("forwarding".to_string());
            }
            if spec.firewall.is_some() {
                notes.push("firewall".to_string());
            }
            match notes.is_empty() {
                true => writeln!(f, "  {}", node.name)?,
                false => writeln!(f, "  {} ({})", node.name, notes.join(", "))?,
            }
            for interface in &node.interfaces {
                let addresses: Vec<String> =
                    interface.addresses.iter().map(IpNet::to_string).collect();
                let addresses = if addresses.is_empty() {
                    "-".to_string()
                } else {
                    addresses.join(" ")
                };
                let what = match &interface.kind {
                    InterfaceKind::Bridge => "bridge".to_string(),
                    InterfaceKind::Veth {
                        peer_node,
                        peer_interface,
                        bridge,
                    } => {
                        let port = bridge
                            .as_ref()
                            .map(|b| format!(" (port of {b})"))
                            .unwrap_or_default();
                        format!("<-> {peer_node}/{peer_interface}{port}")
                    }
                };
                writeln!(f, "    {:<10} {:<18} {what}", interface.name, addresses)?;
            }
            for route in &spec.routes {
                writeln!(f, "    route {} via {}", route.destination, route.gateway)?;
            }
        }
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Background programs hold their namespace: they go first.
        self.spawner.kill_all();
    }
}

impl std::fmt::Debug for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab")
            .field("name", &self.name())
            .field("nodes", &self.nodes)
            .finish()
    }
}

impl Node {
    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node's namespace (for `setns`, `nsenter --net=`, or [`Netns::run`]).
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// The node's interfaces (without `lo`).
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    /// The interface called `name`, or an error listing the node's interfaces.
    pub fn interface(&self, name: &str) -> Result<&Interface, Error> {
        self.interfaces
            .iter()
            .find(|i| i.name == name)
            .ok_or_else(|| Error::UnknownInterface {
                node: self.name.clone(),
                interface: name.into(),
                known: self.interfaces.iter().map(|i| i.name.clone()).collect(),
            })
    }

    /// Every address of the node, in interface order.
    pub fn addresses(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.interfaces
            .iter()
            .flat_map(|i| i.addresses.iter().copied())
    }

    /// The node's first IPv4 address.
    pub fn ipv4(&self) -> Option<Ipv4Addr> {
        self.addresses().find_map(|n| match n.addr {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
    }

    /// The node's first IPv6 address.
    pub fn ipv6(&self) -> Option<Ipv6Addr> {
        self.addresses().find_map(|n| match n.addr {
            IpAddr::V6(v6) => Some(v6),
            IpAddr::V4(_) => None,
        })
    }

    /// Runs `f` on a new thread inside the node's namespace and returns its result.
    ///
    /// ```no_run
    /// let lab = netns_fixture::Lab::builtin("pair").unwrap();
    /// let dev = lab.node("ns-2").run(|| std::fs::read_to_string("/proc/thread-self/net/dev").unwrap());
    /// assert!(dev.contains("veth-2"));
    /// ```
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.netns.run(f)
    }

    /// Moves the calling thread into the node's namespace until the guard drops.
    pub fn enter(&self) -> io::Result<EnterGuard> {
        self.netns.enter()
    }

    /// Sets interface `name` up or down: `false` cuts the link (a partition),
    /// `true` heals it.
    ///
    /// ```no_run
    /// let lab = netns_fixture::Lab::builtin("pair").unwrap();
    /// lab.node("ns-1").set_link_up("veth-1", false).unwrap();
    /// ```
    pub fn set_link_up(&self, name: &str, up: bool) -> Result<(), Error> {
        let index = self.interface(name)?.index;
        let state = if up { "up" } else { "down" };
        self.route_socket()
            .set_up(index, up)
            .map_err(|e| self.setup_error(format!("setting {name} {state}"), e))?;
        if up {
            // Healed as the lab was built: IPv6 usable when this returns.
            self.wait_for_ipv6(|i| i.index == index, Instant::now() + IPV6_TIMEOUT)?;
        }
        Ok(())
    }

    /// Sets the MTU of interface `name`.
    pub fn set_mtu(&self, name: &str, mtu: u32) -> Result<(), Error> {
        let index = self.interface(name)?.index;
        self.route_socket()
            .set_mtu(index, mtu)
            .map_err(|e| self.setup_error(format!("setting the MTU of {name} to {mtu}"), e))
    }

    /// Shapes the traffic leaving interface `name`: a rate limit (tbf), or delay,
    /// jitter and loss (netem, where the kernel has it; otherwise the error names
    /// the missing `sch_netem` module).
    ///
    /// ```no_run
    /// use netns_fixture::shaping::Shaping;
    /// let lab = netns_fixture::Lab::builtin("pair").unwrap();
    /// lab.node("ns-1").shape("veth-1", &Shaping::rate(8_000_000)).unwrap();
    /// ```
    pub fn shape(&self, name: &str, shaping: &crate::shaping::Shaping) -> Result<(), Error> {
        let index = self.interface(name)?.index;
        self.run(|| crate::shaping::apply(index, shaping))
            .map_err(|e| Error::Shaping {
                node: self.name.clone(),
                interface: name.into(),
                source: e,
            })
    }

    /// Removes any shaping from interface `name`.
    pub fn unshape(&self, name: &str) -> Result<(), Error> {
        let index = self.interface(name)?.index;
        self.run(|| crate::shaping::clear(index))
            .map_err(|e| Error::Shaping {
                node: self.name.clone(),
                interface: name.into(),
                source: e,
            })
    }

    /// The names of the links in the namespace as the kernel reports them now
    /// (including `lo`), in index order.
    pub fn link_names(&self) -> Result<Vec<String>, Error> {
        let links = self
            .route_socket()
            .links()
            .map_err(|e| self.setup_error("listing links".into(), e))?;
        Ok(links.into_iter().map(|l| l.name).collect())
    }

    /// The node's NAT and forward rules as installed, in `nft` syntax (empty if
    /// the node has none).
    ///
    /// ```no_run
    /// let lab = netns_fixture::Lab::builtin("two_servers").unwrap();
    /// assert!(lab.node("router").firewall_rules().contains("dnat to 192.168.0.2:8080"));
    /// ```
    pub fn firewall_rules(&self) -> String {
        self.firewall
            .as_ref()
            .map(crate::nat::render)
            .unwrap_or_default()
    }

    /// A `Command` for `program` that runs inside the node, like
    /// `ip netns exec NODE program`. Run it to completion with `output()`/`status()`,
    /// start it in the background with [`Node::spawn`], or convert it with
    /// `tokio::process::Command::from`.
    ///
    /// ```no_run
    /// let lab = netns_fixture::Lab::builtin("pair").unwrap();
    /// let out = lab.node("ns-2").command("cat").arg("/proc/net/dev").output().unwrap();
    /// assert!(String::from_utf8_lossy(&out.stdout).contains("veth-2"));
    /// ```
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        enter_on_exec(&mut command, self.netns.as_fd(), &self.names.hosts_file());
        command
    }

    /// The address of the node called `name` in this lab (its first IPv4 address,
    /// else its first IPv6 one): what programs in the lab's nodes find in
    /// `/etc/hosts`, and what [`Node::http`] resolves host names to.
    ///
    /// ```no_run
    /// let lab = netns_fixture::Lab::builtin("two_servers").unwrap();
    /// assert_eq!(lab.node("client").resolve("server1").unwrap().to_string(), "192.168.0.2");
    /// ```
    pub fn resolve(&self, name: &str) -> Option<IpAddr> {
        self.names.resolve(name)
    }

    /// Starts `command` (from [`Node::command`]) in the background. It is killed and
    /// reaped when the returned handle or the lab is dropped, even on panic.
    pub fn spawn(&self, command: Command) -> Result<Process, Error> {
        let program = command.get_program().to_string_lossy().into_owned();
        self.spawner
            .spawn(command, &self.name)
            .map_err(|e| self.setup_error(format!("starting {program}"), e))
    }

    /// Waits until a TCP connection from this node to `address` succeeds, or
    /// fails after `timeout` saying what the last attempt got.
    pub fn wait_for_tcp(&self, address: SocketAddr, timeout: Duration) -> Result<(), Error> {
        self.run(|| {
            let start = Instant::now();
            loop {
                let attempt = TcpStream::connect_timeout(&address, Duration::from_millis(200));
                match attempt {
                    Ok(_) => return Ok(()),
                    Err(e) if start.elapsed() >= timeout => {
                        return Err(self.setup_error(
                            format!("waiting {timeout:?} for {address} to accept TCP connections"),
                            e,
                        ))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        })
    }

    /// Pings `target` (an address, or a node name of this lab) from this node.
    ///
    /// ```no_run
    /// use netns_fixture::probes::ping::PingOptions;
    /// let lab = netns_fixture::Lab::builtin("pair").unwrap();
    /// let report = lab.node("ns-1").ping("ns-2", &PingOptions::default().count(1)).unwrap();
    /// report.assert_all_replied();
    /// ```
    pub fn ping(&self, target: &str, options: &PingOptions) -> Result<PingReport, Error> {
        let address = self.address_of(target)?;
        self.run(|| ping::ping(address, options)).map_err(|e| {
            self.setup_error(format!("pinging {target}"), io::Error::other(e.to_string()))
        })
    }

    /// Checks whether a TCP connection from this node to `target` is accepted,
    /// refused or dropped, waiting at most `timeout`.
    ///
    /// ```no_run
    /// use netns_fixture::probes::reach::Outcome;
    /// let lab = netns_fixture::Lab::builtin("two_servers").unwrap();
    /// let reach = lab.node("client").tcp_connect("10.0.0.233:22".parse().unwrap(), std::time::Duration::from_millis(300));
    /// reach.assert_outcome(Outcome::Refused);
    /// ```
    pub fn tcp_connect(&self, target: SocketAddr, timeout: Duration) -> Reach {
        self.run(|| reach::tcp_connect(target, timeout))
    }

    /// Sends `payload` over UDP from this node to `target` and reports whether an
    /// answer came (accepted), an ICMP error (refused) or nothing (dropped).
    pub fn udp_request(&self, target: SocketAddr, payload: &[u8], timeout: Duration) -> Reach {
        self.run(|| reach::udp_request(target, payload, timeout))
    }

    /// `target` as an address: an IP address, or the name of a node of the lab.
    fn address_of(&self, target: &str) -> Result<IpAddr, Error> {
        target
            .parse()
            .ok()
            .or_else(|| self.resolve(target))
            .ok_or_else(|| Error::UnknownNode {
                lab: self.lab.clone(),
                node: target.into(),
                known: self.names.nodes(),
            })
    }

    /// Starts capturing on interface `interface` of this node, like
    /// `ip netns exec NODE tcpdump -i INTERFACE FILTER`. `filter` is a tcpdump filter
    /// string (`"icmp"`, `"tcp port 8080"`) or a [`Filter`](crate::capture::Filter).
    /// Every packet from the moment this returns until [`Capture::stop`](crate::capture::Capture::stop) is kept.
    ///
    /// ```no_run
    /// let lab = netns_fixture::Lab::builtin("pair").unwrap();
    /// let capture = lab.node("ns-2").capture("veth-2", "icmp").unwrap();
    /// // ... ping 10.0.0.20 from ns-1 ...
    /// let captured = capture.stop().unwrap();
    /// captured.assert_any(|p| p.is_icmp_echo_reply(), "an ICMP echo reply");
    /// ```
    pub fn capture(
        &self,
        interface: &str,
        filter: impl Into<crate::capture::Filter>,
    ) -> Result<crate::capture::Capture, crate::capture::CaptureError> {
        let mut capture = crate::capture::Capture::start(self.netns.as_fd(), interface, filter)?;
        self.captures.register(&mut capture);
        Ok(capture)
    }

    /// The captures started with [`Node::capture`], for failure reports.
    pub(crate) fn captures(&self) -> &crate::capture::Registry {
        &self.captures
    }

    /// Starts an HTTP server in this node on `port` (all addresses), serving `content`.
    pub fn serve_http(&self, port: u16, content: Content) -> Result<HttpServer, Error> {
        let address = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
        self.run(|| HttpServer::start(address, content))
            .map_err(|e| self.setup_error(format!("starting an HTTP server on port {port}"), e))
    }

    /// Sends `request` from this node (like `ip netns exec NODE curl ...`); node
    /// names in the URL resolve to the nodes' addresses.
    pub fn http(&self, request: &HttpRequest) -> Result<HttpResponse, HttpError> {
        let mut request = request.clone();
        for (name, address) in &self.names.entries {
            request = request.resolve(name, *address);
        }
        self.run(|| request.send())
    }

    /// GETs `url` from this node with the default timeout.
    pub fn http_get(&self, url: &str) -> Result<HttpResponse, HttpError> {
        self.http(&HttpRequest::get(url))
    }

    /// Waits until IPv6 is usable on this node's interfaces that `which` picks
    /// and that have IPv6 addresses (see [`crate::readiness`]); a node without
    /// IPv6 addresses returns at once.
    fn wait_for_ipv6(
        &self,
        which: impl Fn(&Interface) -> bool,
        deadline: Instant,
    ) -> Result<(), Error> {
        let Some(check) = &self.ipv6_check else {
            return Ok(());
        };
        let mut check = check.lock().unwrap_or_else(|p| p.into_inner());
        let interfaces: Vec<Ipv6Interface<'_>> = self
            .interfaces
            .iter()
            .filter(|i| which(i))
            .map(|i| Ipv6Interface {
                name: &i.name,
                index: i.index,
                addresses: i
                    .addresses
                    .iter()
                    .filter_map(|a| match a.addr {
                        IpAddr::V6(v6) => Some(v6),
                        IpAddr::V4(_) => None,
                    })
                    .collect(),
            })
            .filter(|i| !i.addresses.is_empty())
            .collect();
        let step = || format!("waiting {IPV6_TIMEOUT:?} for IPv6 to be set up");
        // Usually ready at the first look; otherwise mostly within a millisecond
        // (longer when other work holds the kernel's rtnl lock).
        let mut pause = Duration::from_micros(50);
        loop {
            let missing = check
                .missing(&self.route_socket(), &interfaces)
                .map_err(|e| self.setup_error(step(), e))?;
            if missing.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let what = format!("still missing: {}", missing.join("; "));
                return Err(self.setup_error(step(), io::Error::new(io::ErrorKind::TimedOut, what)));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }

    fn route_socket(&self) -> std::sync::MutexGuard<'_, RouteSocket> {
        self.route
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn setup_error(&self, step: String, source: io::Error) -> Error {
        Error::Setup {
            lab: self.lab.clone(),
            node: self.name.clone(),
            step,
            source,
        }
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.name)
            .field("interfaces", &self.interfaces)
            .finish()
    }
}

/// Builds a lab step by step, keeping what each step needs.
struct Builder<'t> {
    topology: &'t Topology,
    nodes: Vec<Node>,
    netfilters: Vec<Option<Netfilter>>,
    probers: Vec<Prober>,
    next_index: Vec<u32>,
    spawner: Arc<Spawner>,
}

impl<'t> Builder<'t> {
    fn new(topology: &'t Topology) -> Self {
        Builder {
            topology,
            nodes: Vec::with_capacity(topology.nodes().len()),
            netfilters: Vec::with_capacity(topology.nodes().len()),
            probers: Vec::with_capacity(topology.nodes().len()),
            // Index 1 is `lo` in every fresh namespace.
            next_index: vec![2; topology.nodes().len()],
            spawner: Arc::new(Spawner::new()),
        }
    }

    fn error(&self, node: &str, step: impl Into<String>) -> impl FnOnce(io::Error) -> Error + '_ {
        let lab = self.topology.name().to_string();
        let node = node.to_string();
        let step = step.into();
        move |source| Error::Setup {
            lab,
            node,
            step,
            source,
        }
    }

    fn position(&self, node: &str) -> usize {
        self.topology
            .nodes()
            .iter()
            .position(|n| n.name == node)
            .expect("validated topology")
    }

    fn build(mut self) -> Result<Lab, Error> {
        self.create_namespaces()?;
        let topology = self.topology;
        for (i, spec) in topology.nodes().iter().enumerate() {
            for bridge in &spec.bridges {
                let index = self.take_index(i);
                let node = &self.nodes[i];
                let socket = node.route_socket();
                socket
                    .add_bridge(&bridge.name, index)
                    .map_err(self.error(&spec.name, format!("creating bridge {}", bridge.name)))?;
                drop(socket);
                self.add_interface(
                    i,
                    &bridge.name,
                    index,
                    &bridge.addresses,
                    InterfaceKind::Bridge,
                )?;
            }
        }
        for link in topology.links() {
            let (a, b) = (self.position(&link.a.node), self.position(&link.b.node));
            let (a_index, b_index) = (self.take_index(a), self.take_index(b));
            let step = format!(
                "creating veth {} <-> {}/{}",
                link.a.interface, link.b.node, link.b.interface
            );
            self.nodes[a]
                .route_socket()
                .add_veth(
                    &link.a.interface,
                    a_index,
                    &link.b.interface,
                    b_index,
                    self.nodes[b].netns.as_fd(),
                )
                .map_err(self.error(&link.a.node, step))?;
            for (end, peer, position, index) in [
                (&link.a, &link.b, a, a_index),
                (&link.b, &link.a, b, b_index),
            ] {
                let kind = InterfaceKind::Veth {
                    peer_node: peer.node.clone(),
                    peer_interface: peer.interface.clone(),
                    bridge: end.bridge.clone(),
                };
                self.add_interface(position, &end.interface, index, &end.addresses, kind)?;
            }
        }
        for (i, spec) in topology.nodes().iter().enumerate() {
            let node = &self.nodes[i];
            let socket = node.route_socket();
            for route in &spec.routes {
                let step = format!("adding route {} via {}", route.destination, route.gateway);
                socket
                    .add_route(route)
                    .map_err(self.error(&spec.name, step))?;
            }
            drop(socket);
            if let (Some(firewall), Some(netfilter)) = (&spec.firewall, &self.netfilters[i]) {
                netfilter.apply(firewall).map_err(|e| Error::Setup {
                    lab: topology.name().into(),
                    node: spec.name.clone(),
                    step: "installing the firewall".into(),
                    source: io::Error::other(e.to_string()),
                })?;
            }
        }
        self.prove_links()?;
        self.wait_for_ipv6()?;
        close_in_background((
            std::mem::take(&mut self.probers),
            std::mem::take(&mut self.netfilters),
        ));
        let names = Arc::new(Names::of(&self.nodes));
        for node in &mut self.nodes {
            node.names = Arc::clone(&names);
        }
        Ok(Lab {
            topology: topology.clone(),
            nodes: self.nodes,
            spawner: self.spawner,
        })
    }

    /// Proves that every veth carries frames both ways (see [`crate::readiness`]).
    fn prove_links(&self) -> Result<(), Error> {
        let deadline = Instant::now() + Duration::from_secs(3);
        for link in self.topology.links() {
            let (a, b) = (self.position(&link.a.node), self.position(&link.b.node));
            let index = |node: usize, name: &str| {
                self.nodes[node]
                    .interfaces
                    .iter()
                    .find(|i| i.name == name)
                    .map(|i| i.index)
                    .expect("created")
            };
            let (a_index, b_index) = (index(a, &link.a.interface), index(b, &link.b.interface));
            for (from, from_index, to, to_index, end) in [
                (a, a_index, b, b_index, &link.a),
                (b, b_index, a, a_index, &link.b),
            ] {
                let step = format!("checking that {} carries packets", end.interface);
                let delivered = wait_for_delivery(
                    &self.probers[from],
                    from_index,
                    &self.probers[to],
                    to_index,
                    deadline,
                )
                .map_err(self.error(&end.node, step.clone()))?;
                if !delivered {
                    return Err(self.error(&end.node, step)(io::ErrorKind::TimedOut.into()));
                }
            }
        }
        Ok(())
    }

    /// Waits until the kernel has finished setting up IPv6 on every interface
    /// with IPv6 addresses (see [`crate::readiness`]); labs without IPv6
    /// addresses skip this.
    fn wait_for_ipv6(&self) -> Result<(), Error> {
        let deadline = Instant::now() + IPV6_TIMEOUT;
        for node in &self.nodes {
            node.wait_for_ipv6(|_| true, deadline)?;
        }
        Ok(())
    }

    fn take_index(&mut self, node: usize) -> u32 {
        let index = self.next_index[node];
        self.next_index[node] += 1;
        index
    }

    /// Creates every namespace from this thread, doing what must be done from
    /// inside each (sockets, sysctls) before moving on; then returns home.
    fn create_namespaces(&mut self) -> Result<(), Error> {
        let origin = Netns::current().map_err(|e| Error::io("opening the current namespace", e))?;
        let _back = origin.restore_on_drop();
        for spec in self.topology.nodes() {
            let netns = Netns::unshare()?;
            let route =
                RouteSocket::open().map_err(self.error(&spec.name, "opening a netlink socket"))?;
            route
                .set_up(1, true)
                .map_err(self.error(&spec.name, "setting lo up"))?;
            let prober =
                Prober::open().map_err(self.error(&spec.name, "opening a packet socket"))?;
            self.probers.push(prober);
            let ipv6 = has_ipv6(self.topology, spec);
            for (key, value) in node_sysctls(spec, ipv6) {
                let step = format!("setting sysctl {key}={value}");
                sysctl::write(&key, &value)
                    .or_else(|e| match key.as_str() {
                        // In a user namespace only its mapped groups may be named.
                        PING_GROUP_RANGE => sysctl::write(&key, &mapped_groups()),
                        _ => Err(e),
                    })
                    .map_err(self.error(&spec.name, step))?;
            }
            set_bridge_netfilter(spec)
                .map_err(self.error(&spec.name, "setting bridge netfilter"))?;
            let check = match ipv6 {
                true => Some(
                    Ipv6Readiness::open()
                        .map_err(self.error(&spec.name, "opening /proc/net/igmp6"))?,
                ),
                false => None,
            };
            let netfilter = match spec.firewall {
                Some(_) => Some(
                    Netfilter::open()
                        .map_err(self.error(&spec.name, "opening a netfilter socket"))?,
                ),
                None => None,
            };
            self.netfilters.push(netfilter);
            self.nodes.push(Node {
                name: spec.name.clone(),
                netns,
                interfaces: Vec::new(),
                route: Mutex::new(route),
                lab: self.topology.name().into(),
                spawner: Arc::clone(&self.spawner),
                firewall: spec.firewall.clone(),
                names: Arc::default(),
                captures: Default::default(),
                ipv6_check: check.map(Mutex::new),
            });
        }
        Ok(())
    }

    fn add_interface(
        &mut self,
        node: usize,
        name: &str,
        index: u32,
        addresses: &[IpNet],
        kind: InterfaceKind,
    ) -> Result<(), Error> {
        let bridges: HashMap<&str, u32> = self.nodes[node]
            .interfaces
            .iter()
            .filter(|i| i.kind == InterfaceKind::Bridge)
            .map(|i| (i.name.as_str(), i.index))
            .collect();
        let node_name = self.nodes[node].name.clone();
        {
            let socket = self.nodes[node].route_socket();
            if let InterfaceKind::Veth {
                bridge: Some(bridge),
                ..
            } = &kind
            {
                let step = format!("adding {name} to bridge {bridge}");
                socket
                    .set_controller(index, bridges[bridge.as_str()])
                    .map_err(self.error(&node_name, step))?;
            }
            for net in addresses {
                let step = format!("adding address {net} to {name}");
                socket
                    .add_address(index, *net)
                    .map_err(self.error(&node_name, step))?;
            }
            socket
                .set_up(index, true)
                .map_err(self.error(&node_name, format!("setting {name} up")))?;
        }
        self.nodes[node].interfaces.push(Interface {
            name: name.into(),
            index,
            addresses: addresses.to_vec(),
            kind,
        });
        Ok(())
    }
}

const PING_GROUP_RANGE: &str = "net/ipv4/ping_group_range";

/// How long a lab waits for the kernel to set up IPv6 (usually well under 1 ms).
const IPV6_TIMEOUT: Duration = Duration::from_secs(5);

/// For nodes with IPv6 addresses, set before any interface exists there:
/// - duplicate address detection off, so a link-local address is never
///   tentative (a tentative one stays so for 1-2 s, and a router forwards no IPv6
///   meanwhile); the lab's own addresses are added without DAD anyway. The kernel
///   checks both `all` and the interface's own setting, which starts as
///   `default`. IPv4-only nodes keep the kernel's default: finishing their
///   link-local addresses at once costs a lab about 0.5 ms of kernel work that
///   nothing there needs;
/// - addresses kept while a link is down, so a partition healed with
///   `set_link_up` keeps them, as IPv4 does.
const IPV6_SYSCTLS: [(&str, &str); 4] = [
    ("net/ipv6/conf/all/accept_dad", "0"),
    ("net/ipv6/conf/default/accept_dad", "0"),
    ("net/ipv6/conf/all/keep_addr_on_down", "1"),
    ("net/ipv6/conf/default/keep_addr_on_down", "1"),
];

/// Whether the topology gives node `spec` any IPv6 address.
fn has_ipv6(topology: &Topology, spec: &NodeSpec) -> bool {
    topology
        .interfaces_of(&spec.name)
        .iter()
        .any(|(_, nets)| nets.iter().any(|n| n.addr.is_ipv6()))
}

/// The group ids mapped in this process's user namespace, as a `ping_group_range`.
fn mapped_groups() -> String {
    let map = std::fs::read_to_string("/proc/self/gid_map").unwrap_or_default();
    let (first, count) = map
        .lines()
        .filter_map(|l| {
            let f: Vec<u64> = l
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect();
            (f.len() == 3).then(|| (f[0], f[2]))
        })
        .next()
        .unwrap_or((0, 1));
    format!("{first} {}", (first + count - 1).min(2_147_483_647))
}

/// What every lab namespace gets, what a node with IPv6 addresses (`ipv6`)
/// gets, then what the node asks for.
fn node_sysctls(spec: &NodeSpec, ipv6: bool) -> Vec<(String, String)> {
    // Datagram ICMP sockets for every group, so ping works without raw sockets.
    let mut sysctls = vec![(
        "net/ipv4/ping_group_range".to_string(),
        "0 2147483647".to_string(),
    )];
    // ICMP errors (port unreachable, reject rules) unlimited: a matrix of
    // concurrent refused flows must not read as dropped.
    sysctls.push(("net/ipv4/icmp_ratelimit".into(), "0".into()));
    if ipv6 {
        sysctls.push(("net/ipv6/icmp/ratelimit".into(), "0".into()));
        sysctls.extend(IPV6_SYSCTLS.map(|(key, value)| (key.to_string(), value.to_string())));
    }
    if spec.forwarding {
        sysctls.push(("net/ipv4/ip_forward".into(), "1".into()));
        sysctls.push(("net/ipv6/conf/all/forwarding".into(), "1".into()));
    }
    sysctls.extend(spec.sysctls.iter().cloned());
    sysctls
}

/// Where the kernel's `br_netfilter` is loaded, each new namespace starts with
/// bridged frames passing its IP firewall; a lab turns that off in every node
/// with bridges, unless the node asks for it ([`NodeSpec::bridge_netfilter`]).
const BRIDGE_NETFILTER_SYSCTLS: [&str; 3] = [
    "net/bridge/bridge-nf-call-iptables",
    "net/bridge/bridge-nf-call-ip6tables",
    "net/bridge/bridge-nf-call-arptables",
];

/// Sets bridge netfilter in the calling thread's namespace as `spec` asks.
fn set_bridge_netfilter(spec: &NodeSpec) -> io::Result<()> {
    if spec.bridges.is_empty() && !spec.bridge_netfilter {
        return Ok(());
    }
    let value = if spec.bridge_netfilter { "1" } else { "0" };
    for key in BRIDGE_NETFILTER_SYSCTLS {
        match sysctl::write(key, value) {
            Ok(()) => {}
            // Without br_netfilter bridged frames skip the IP firewall already.
            Err(e) if e.kind() == io::ErrorKind::NotFound && !spec.bridge_netfilter => {
                return Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(io::Error::other(format!(
                    "bridge_netfilter needs the kernel's bridge netfilter \
                     (CONFIG_BRIDGE_NETFILTER, module br_netfilter loaded): {e}"
                )))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
