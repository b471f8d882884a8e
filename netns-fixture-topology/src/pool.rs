//! Automatic addressing: link ends and bridges that give no address of a family
//! get one from the topology's address pool of that family.
//!
//! The lab is cut into *segments* (layer-2 networks): a veth link between two
//! addressed ends is one segment; a bridge, every end attached to it through its
//! ports, and any bridge trunked to it by a port-to-port link are one segment.
//! For each family that has a pool, in this order:
//!
//! - Segments are visited in the order of the first link that touches them
//!   (bridges no link touches come last, in node order).
//! - A segment where nothing has an address of the family takes the next free
//!   subnet of the pool: a /30 (IPv4) or /64 (IPv6) for a point-to-point link, a
//!   /24 (larger if more than 253 places need an address) or /64 for a bridged
//!   segment. Its bridges get the first host addresses (`.1`, `::1`: the bridge is
//!   the gateway), then its ends in link order (end `a` before end `b`).
//! - A segment where something already has an address of the family is completed
//!   from that address's subnet instead: the ends without one get its lowest free
//!   host addresses (so `a = 10.0.0.1/24` with a bare `b` gives `b` 10.0.0.2/24).
//! - Subnets are handed out in increasing order and never overlap the network of
//!   any explicit address in the topology; a pool with no room left is a
//!   [`TopologyError::PoolExhausted`].
//!
//! Bridge ports never get an address. Without a pool nothing changes.

use crate::net::{from_bits, host_mask, range, width};
use crate::spec::Topology;
use crate::{IpNet, TopologyError};
use std::collections::HashSet;
use std::net::IpAddr;

/// The pools a topology's builder was given, already parsed and checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Pools {
    pub(crate) ipv4: Option<IpNet>,
    pub(crate) ipv6: Option<IpNet>,
}

impl Pools {
    pub(crate) fn is_empty(&self) -> bool {
        self.ipv4.is_none() && self.ipv6.is_none()
    }
}

/// Something that can hold an address: a bridge, or a link end that is not a
/// bridge port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// (node index, bridge index).
    Bridge(usize, usize),
    /// (link index, 0 for `a` / 1 for `b`).
    End(usize, usize),
}

struct Segment {
    /// Bridges first (node order), then ends (link order).
    members: Vec<Place>,
    /// How errors name the segment.
    label: String,
    /// Whether the segment is switched (has a bridge), so gets a bigger subnet.
    bridged: bool,
}

/// Fills in every missing address the pools cover. `topology` must already be
/// valid (every node and bridge a link names exists).
pub(crate) fn assign(topology: &mut Topology, pools: &Pools) -> Result<(), TopologyError> {
    if pools.is_empty() {
        return Ok(());
    }
    let segments = segments(topology);
    let explicit: Vec<IpNet> = topology
        .nodes
        .iter()
        .flat_map(|n| topology.interfaces_of(&n.name))
        .flat_map(|(_, nets)| nets.iter().copied())
        .collect();
    let mut used: HashSet<IpAddr> = explicit.iter().map(|n| n.addr).collect();
    let mut allocators: Vec<Allocator> = [pools.ipv4, pools.ipv6]
        .into_iter()
        .flatten()
        .map(|pool| Allocator::new(pool, &explicit))
        .collect();

    for segment in &segments {
        for allocator in &mut allocators {
            let v4 = allocator.pool.addr.is_ipv4();
            let has = |place: &Place| {
                addresses(topology, *place)
                    .iter()
                    .any(|a| a.addr.is_ipv4() == v4)
            };
            let missing: Vec<Place> = segment
                .members
                .iter()
                .copied()
                .filter(|p| !has(p))
                .collect();
            if missing.is_empty() {
                continue;
            }
            let existing = segment
                .members
                .iter()
                .flat_map(|p| addresses(topology, *p).iter())
                .find(|a| a.addr.is_ipv4() == v4)
                .copied();
            let assigned: Vec<IpNet> = match existing {
                Some(subnet) => fill(subnet, missing.len(), &used).map_err(|taken| {
                    TopologyError::SubnetFull {
                        subnet,
                        interface: place_name(topology, missing[taken]),
                        segment: segment.label.clone(),
                    }
                })?,
                None => allocator.allocate(segment)?,
            };
            for (place, net) in missing.iter().zip(assigned) {
                used.insert(net.addr);
                addresses_mut(topology, *place).push(net);
            }
        }
    }
    Ok(())
}

/// The segments of `topology`, in the order they take subnets.
fn segments(topology: &Topology) -> Vec<Segment> {
    // Union-find over places: bridges first, then two slots per link.
    let bridges: Vec<(usize, usize)> = topology
        .nodes
        .iter()
        .enumerate()
        .flat_map(|(n, node)| (0..node.bridges.len()).map(move |b| (n, b)))
        .collect();
    let end_slot = |link: usize, side: usize| bridges.len() + 2 * link + side;
    let mut parent: Vec<usize> = (0..bridges.len() + 2 * topology.links.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let attachment = |link: usize, side: usize| -> usize {
        let end = if side == 0 {
            &topology.links[link].a
        } else {
            &topology.links[link].b
        };
        match &end.bridge {
            Some(bridge) => {
                let n = topology
                    .nodes
                    .iter()
                    .position(|n| n.name == end.node)
                    .expect("validated: the node exists");
                let b = topology.nodes[n]
                    .bridges
                    .iter()
                    .position(|b| &b.name == bridge)
                    .expect("validated: the bridge exists");
                bridges
                    .iter()
                    .position(|&x| x == (n, b))
                    .expect("every bridge is listed")
            }
            None => end_slot(link, side),
        }
    };
    for link in 0..topology.links.len() {
        let (a, b) = (attachment(link, 0), attachment(link, 1));
        let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
        if ra != rb {
            parent[ra.max(rb)] = ra.min(rb);
        }
    }

    // Order: first link touching the segment, then untouched bridges.
    let mut order: Vec<usize> = Vec::new();
    for link in 0..topology.links.len() {
        for side in 0..2 {
            let r = root(&mut parent, attachment(link, side));
            if !order.contains(&r) {
                order.push(r);
            }
        }
    }
    for b in 0..bridges.len() {
        let r = root(&mut parent, b);
        if !order.contains(&r) {
            order.push(r);
        }
    }

    order
        .into_iter()
        .map(|r| {
            let mut members = Vec::new();
            for (i, &(n, b)) in bridges.iter().enumerate() {
                if root(&mut parent, i) == r {
                    members.push(Place::Bridge(n, b));
                }
            }
            let mut first_link = None;
            for (l, link) in topology.links.iter().enumerate() {
                for (side, end) in [&link.a, &link.b].into_iter().enumerate() {
                    if end.bridge.is_none() && root(&mut parent, end_slot(l, side)) == r {
                        members.push(Place::End(l, side));
                        first_link.get_or_insert(l);
                    }
                }
            }
            let bridged = members.iter().any(|m| matches!(m, Place::Bridge(..)));
            let label = match members.first() {
                Some(Place::Bridge(n, b)) => format!(
                    "bridge `{}` of node `{}`",
                    topology.nodes[*n].bridges[*b].name, topology.nodes[*n].name
                ),
                _ => {
                    let l = first_link.expect("an unbridged segment is a link");
                    let link = &topology.links[l];
                    format!(
                        "link {} ({}/{} <-> {}/{})",
                        l + 1,
                        link.a.node,
                        link.a.interface,
                        link.b.node,
                        link.b.interface
                    )
                }
            };
            Segment {
                members,
                label,
                bridged,
            }
        })
        .collect()
}

fn addresses(topology: &Topology, place: Place) -> &[IpNet] {
    match place {
        Place::Bridge(n, b) => &topology.nodes[n].bridges[b].addresses,
        Place::End(l, 0) => &topology.links[l].a.addresses,
        Place::End(l, _) => &topology.links[l].b.addresses,
    }
}

fn addresses_mut(topology: &mut Topology, place: Place) -> &mut Vec<IpNet> {
    match place {
        Place::Bridge(n, b) => &mut topology.nodes[n].bridges[b].addresses,
        Place::End(l, 0) => &mut topology.links[l].a.addresses,
        Place::End(l, _) => &mut topology.links[l].b.addresses,
    }
}

/// `node/interface` of a place.
fn place_name(topology: &Topology, place: Place) -> String {
    match place {
        Place::Bridge(n, b) => format!(
            "{}/{}",
            topology.nodes[n].name, topology.nodes[n].bridges[b].name
        ),
        Place::End(l, side) => {
            let link = &topology.links[l];
            let end = if side == 0 { &link.a } else { &link.b };
            format!("{}/{}", end.node, end.interface)
        }
    }
}

/// `count` free host addresses of `subnet`'s network, lowest first; on failure the
/// index of the first one that did not fit.
fn fill(subnet: IpNet, count: usize, used: &HashSet<IpAddr>) -> Result<Vec<IpNet>, usize> {
    let v4 = subnet.addr.is_ipv4();
    let (mut first, mut last) = range(&subnet);
    let host_bits = width(v4) - u32::from(subnet.prefix);
    if host_bits >= 2 {
        // The network address (and the IPv4 broadcast) are not host addresses.
        first += 1;
        if v4 {
            last -= 1;
        }
    }
    let mut out = Vec::with_capacity(count);
    let mut next = Some(first);
    while out.len() < count {
        let Some(candidate) = next.filter(|c| *c <= last) else {
            return Err(out.len());
        };
        let addr = from_bits(candidate, v4);
        if !used.contains(&addr) {
            out.push(IpNet {
                addr,
                prefix: subnet.prefix,
            });
        }
        next = candidate.checked_add(1);
    }
    Ok(out)
}

/// Hands out subnets of one pool in increasing order.
struct Allocator {
    /// The pool as given (for messages).
    pool: IpNet,
    /// Where the next subnet may start; `None` once past the end of the address space.
    cursor: Option<u128>,
    /// Networks of the explicit addresses of the pool's family.
    reserved: Vec<(u128, u128)>,
    handed_out: usize,
}

impl Allocator {
    fn new(pool: IpNet, explicit: &[IpNet]) -> Self {
        let v4 = pool.addr.is_ipv4();
        Allocator {
            pool,
            cursor: Some(range(&pool).0),
            reserved: explicit
                .iter()
                .filter(|n| n.addr.is_ipv4() == v4)
                .map(range)
                .collect(),
            handed_out: 0,
        }
    }

    /// The subnet size `segment` needs.
    fn prefix_for(&self, segment: &Segment) -> u8 {
        if self.pool.addr.is_ipv6() {
            return 64;
        }
        // Room for every member plus the network and broadcast addresses.
        let needed = segment.members.len() as u128 + 2;
        let host_bits = (128 - (needed - 1).leading_zeros()).max(2);
        let fits = 32u32.saturating_sub(host_bits) as u8;
        fits.min(if segment.bridged { 24 } else { 30 })
    }

    fn allocate(&mut self, segment: &Segment) -> Result<Vec<IpNet>, TopologyError> {
        let v4 = self.pool.addr.is_ipv4();
        let prefix = self.prefix_for(segment);
        let pool = self.pool;
        let exhausted = |handed_out| TopologyError::PoolExhausted {
            pool,
            prefix,
            segment: segment.label.clone(),
            handed_out,
        };
        let (_, pool_end) = range(&self.pool);
        if prefix < self.pool.prefix {
            return Err(exhausted(self.handed_out));
        }
        let mask = host_mask(v4, prefix);
        let start = loop {
            let candidate = self
                .cursor
                .and_then(|c| c.checked_add(mask))
                .map(|c| c & !mask);
            let Some(candidate) = candidate.filter(|c| c | mask <= pool_end) else {
                return Err(exhausted(self.handed_out));
            };
            let end = candidate | mask;
            let clash = self
                .reserved
                .iter()
                .filter(|(s, e)| *s <= end && candidate <= *e)
                .map(|(_, e)| *e)
                .max();
            match clash {
                Some(clash_end) => self.cursor = clash_end.max(end).checked_add(1),
                None => {
                    self.cursor = end.checked_add(1);
                    break candidate;
                }
            }
        };
        self.handed_out += 1;
        Ok((1..=segment.members.len() as u128)
            .map(|i| IpNet {
                addr: from_bits(start + i, v4),
                prefix,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use crate::{EndpointSpec, Topology, TopologyBuilder, TopologyError};

    /// `node/interface address...` for every interface, in node order.
    fn plan(t: &Topology) -> Vec<String> {
        let mut out = Vec::new();
        for node in t.nodes() {
            for (interface, nets) in t.interfaces_of(&node.name) {
                let nets: Vec<String> = nets.iter().map(|n| n.to_string()).collect();
                out.push(
                    format!("{}/{interface} {}", node.name, nets.join(" "))
                        .trim()
                        .to_string(),
                );
            }
        }
        out
    }

    /// A router with a bridged LAN of two hosts and a point-to-point uplink.
    fn campus() -> TopologyBuilder {
        Topology::builder("pooled")
            .ipv4_pool("10.99.0.0/16")
            .ipv6_pool("fd00:99::/48")
            .node("r", |n| n.forwarding().bridge("br0", &[]))
            .node("h1", |n| n)
            .node("h2", |n| n)
            .node("up", |n| n)
            .link(("r", "wan"), ("up", "eth0"))
            .link(
                ("h1", "eth0"),
                EndpointSpec::new("r", "h1-port").bridge("br0"),
            )
            .link(
                ("h2", "eth0"),
                EndpointSpec::new("r", "h2-port").bridge("br0"),
            )
    }

    #[test]
    fn the_plan_is_deterministic_and_follows_declaration_order() {
        let t = campus().build().unwrap();
        assert_eq!(
            plan(&t),
            [
                "r/br0 10.99.1.1/24 fd00:99:0:1::1/64",
                "r/wan 10.99.0.1/30 fd00:99::1/64",
                "r/h1-port",
                "r/h2-port",
                "h1/eth0 10.99.1.2/24 fd00:99:0:1::2/64",
                "h2/eth0 10.99.1.3/24 fd00:99:0:1::3/64",
                "up/eth0 10.99.0.2/30 fd00:99::2/64",
            ]
        );
        assert_eq!(t, campus().build().unwrap(), "same input, same plan");
    }

    #[test]
    fn explicit_addresses_are_kept_completed_and_avoided() {
        let t = Topology::builder("t")
            .ipv4_pool("10.99.0.0/16")
            .node("a", |n| n)
            .node("b", |n| n)
            .node("c", |n| n)
            // Explicit on both ends: left alone.
            .link(("a", "e0", "10.99.0.5/30"), ("b", "e0", "10.99.0.6/30"))
            // Explicit on one end: the other end is completed from its subnet,
            // skipping the explicit address of c/e9 in it.
            .link(("a", "e1", "192.168.7.1/24"), ("b", "e1"))
            .link(("c", "e9", "192.168.7.2/24"), ("b", "e9", "192.168.7.3/24"))
            // Bare links: pooled subnets, skipping 10.99.0.4/30 (a/e0's network)
            // and 10.99.1.0/24 (an explicit /24 elsewhere).
            .link(("a", "e2"), ("c", "e2"))
            .link(("a", "e3"), ("c", "e3"))
            .link(("a", "e4"), ("c", "e4"))
            .link(("a", "e5"), ("c", "e5", "10.99.1.200/24"))
            // A bridged segment needs a /24: 10.99.1.0/24 is taken, so 10.99.2.0/24.
            .node("s", |n| n.bridge("br0", &[]))
            .link(("a", "e7"), EndpointSpec::new("s", "a").bridge("br0"))
            .link(("a", "e6"), ("c", "e6"))
            .build()
            .unwrap();
        let p = plan(&t);
        for expected in [
            "a/e0 10.99.0.5/30",
            "b/e0 10.99.0.6/30",
            "a/e1 192.168.7.1/24",
            "b/e1 192.168.7.4/24",
            "a/e2 10.99.0.1/30",
            "c/e2 10.99.0.2/30",
            "a/e3 10.99.0.9/30",
            "a/e4 10.99.0.13/30",
            "a/e5 10.99.1.1/24",
            "a/e7 10.99.2.2/24",
            "s/br0 10.99.2.1/24",
            "a/e6 10.99.3.1/30",
            "c/e6 10.99.3.2/30",
        ] {
            assert!(
                p.contains(&expected.to_string()),
                "{expected} not in {p:#?}"
            );
        }

        // Nothing taken from the pool lies in the network of an explicit address.
        let explicit: Vec<crate::IpNet> = ["10.99.0.5/30", "10.99.1.200/24", "192.168.7.1/24"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        for line in &p {
            let mut words = line.split(' ');
            let place = words.next().unwrap();
            if !["/e2", "/e3", "/e4", "/e6", "/e7", "/br0"]
                .iter()
                .any(|i| place.ends_with(i))
            {
                continue;
            }
            for net in words {
                let net: crate::IpNet = net.parse().unwrap();
                assert!(
                    !explicit.iter().any(|e| e.contains(net.addr)),
                    "{place} {net} collides with an explicit network: {p:#?}"
                );
            }
        }
    }

    #[test]
    fn bridges_trunked_together_share_one_subnet() {
        let t = Topology::builder("t")
            .ipv4_pool("10.0.0.0/8")
            .node("s1", |n| n.bridge("br0", &[]))
            .node("s2", |n| n.bridge("br0", &[]))
            .node("a", |n| n)
            .node("b", |n| n)
            .link(("a", "eth0"), EndpointSpec::new("s1", "a").bridge("br0"))
            .link(
                EndpointSpec::new("s1", "trunk").bridge("br0"),
                EndpointSpec::new("s2", "trunk").bridge("br0"),
            )
            .link(("b", "eth0"), EndpointSpec::new("s2", "b").bridge("br0"))
            .build()
            .unwrap();
        assert_eq!(
            plan(&t),
            [
                "s1/br0 10.0.0.1/24",
                "s1/a",
                "s1/trunk",
                "s2/br0 10.0.0.2/24",
                "s2/trunk",
                "s2/b",
                "a/eth0 10.0.0.3/24",
                "b/eth0 10.0.0.4/24",
            ]
        );
    }

    #[test]
    fn a_pool_that_runs_out_is_an_error_naming_it() {
        let three_links = |pool: &str| {
            Topology::builder("t")
                .ipv4_pool(pool)
                .node("a", |n| n)
                .node("b", |n| n)
                .link(("a", "e0"), ("b", "e0"))
                .link(("a", "e1"), ("b", "e1"))
                .link(("a", "e2"), ("b", "e2"))
                .build()
        };
        assert!(three_links("10.0.0.0/28").is_ok());
        let err = three_links("10.0.0.0/29").unwrap_err();
        assert_eq!(
            err,
            TopologyError::PoolExhausted {
                pool: "10.0.0.0/29".parse().unwrap(),
                prefix: 30,
                segment: "link 3 (a/e2 <-> b/e2)".into(),
                handed_out: 2,
            }
        );
        assert_eq!(
            err.to_string(),
            "address pool 10.0.0.0/29 is exhausted: no free /30 left for link 3 (a/e2 <-> b/e2) (2 subnets handed out; subnets overlapping explicit addresses are skipped)"
        );
        // A bridged segment needs a /24: a /25 pool cannot hold one.
        let err = Topology::builder("t")
            .ipv4_pool("10.0.0.0/25")
            .node("s", |n| n.bridge("br0", &[]))
            .build()
            .unwrap_err();
        assert!(
            err.to_string().starts_with("address pool 10.0.0.0/25 is exhausted: no free /24 left for bridge `br0` of node `s`"),
            "{err}"
        );
        // Explicit addresses can use up a pool too.
        let err = Topology::builder("t")
            .ipv6_pool("fd00::/63")
            .node("a", |n| n)
            .node("b", |n| n)
            .link(("a", "e0", "fd00::1/64"), ("b", "e0", "fd00::2/64"))
            .link(("a", "e1", "fd00:0:0:1::1/64"), ("b", "e1"))
            .link(("a", "e2"), ("b", "e2"))
            .build()
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("address pool fd00::/63 is exhausted: no free /64 left for link 3"),
            "{err}"
        );
        // A completed subnet with no room left.
        let err = Topology::builder("t")
            .ipv4_pool("10.0.0.0/8")
            .node("a", |n| n)
            .node("b", |n| n)
            .link(("a", "e0", "192.168.0.1/32"), ("b", "e0"))
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no free address left in 192.168.0.1/32 for b/e0: link 1 (a/e0 <-> b/e0) has addresses there already, so its other interfaces are numbered from that subnet instead of the pool"
        );
    }

    #[test]
    fn bad_pools_are_reported() {
        let err = |b: TopologyBuilder| b.node("a", |n| n).build().unwrap_err().to_string();
        assert_eq!(
            err(Topology::builder("t").ipv4_pool("fd00::/48")),
            "bad address `fd00::/48` for the IPv4 pool: it is an IPv6 network"
        );
        assert_eq!(
            err(Topology::builder("t").ipv6_pool("10.0.0.0/8")),
            "bad address `10.0.0.0/8` for the IPv6 pool: it is an IPv4 network"
        );
        assert_eq!(
            err(Topology::builder("t").ipv4_pool("10.0.0.0")),
            "bad address `10.0.0.0` for the IPv4 pool: `10.0.0.0` has no prefix length (write it like `10.0.0.1/24`)"
        );
    }

    #[test]
    fn without_pools_nothing_is_added() {
        let t = Topology::builder("t")
            .node("a", |n| n)
            .node("b", |n| n)
            .link(("a", "e0"), ("b", "e0"))
            .build()
            .unwrap();
        assert_eq!(plan(&t), ["a/e0", "b/e0"]);
        // Only the families that have a pool are filled in.
        let t = Topology::builder("t")
            .ipv6_pool("fd00:1::/48")
            .node("a", |n| n)
            .node("b", |n| n)
            .link(("a", "e0", "10.0.0.1/24"), ("b", "e0", "10.0.0.2/24"))
            .build()
            .unwrap();
        assert_eq!(
            plan(&t),
            [
                "a/e0 10.0.0.1/24 fd00:1::1/64",
                "b/e0 10.0.0.2/24 fd00:1::2/64"
            ]
        );
    }
}
