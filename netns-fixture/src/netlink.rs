//! Links, addresses and routes over rtnetlink, synchronously.
//!
//! Messages are built with `rtnetlink`'s builders and sent on a blocking
//! `NETLINK_ROUTE` socket, so building a lab needs no async runtime. The socket
//! belongs to the namespace of the thread that opened it, whichever thread uses it
//! later. `rtnetlink` changes its API on most minor releases: it stays behind this
//! module.

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteType};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use netns_fixture_topology::{IpNet, RouteSpec};
use rtnetlink::{
    AddressMessageBuilder, LinkBridge, LinkMessageBuilder, LinkUnspec, RouteMessageBuilder,
};
use std::cell::Cell;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

/// A blocking rtnetlink socket in one network namespace.
pub(crate) struct RouteSocket {
    socket: Socket,
    seq: Cell<u32>,
}

/// An IPv6 address as a dump reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ipv6AddressState {
    pub index: u32,
    pub address: Ipv6Addr,
    /// Still under duplicate address detection (`IFA_F_TENTATIVE`).
    pub tentative: bool,
    /// Found to be a duplicate (`IFA_F_DADFAILED`): it will never be usable.
    pub dad_failed: bool,
}

/// A link as a dump reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkState {
    pub index: u32,
    pub name: String,
    pub up: bool,
    pub kind: Option<String>,
    pub controller: Option<u32>,
}

impl RouteSocket {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        // Extended acks give the kernel's own explanation with an error.
        let _ = socket.set_ext_ack(true);
        Ok(RouteSocket {
            socket,
            seq: Cell::new(0),
        })
    }

    fn send(&self, message: RouteNetlinkMessage, flags: u16) -> io::Result<u32> {
        let seq = self.seq.get().wrapping_add(1);
        self.seq.set(seq);
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = seq;
        let mut request = NetlinkMessage::new(header, NetlinkPayload::from(message));
        request.finalize();
        let mut buf = vec![0; request.buffer_len()];
        request.serialize(&mut buf);
        self.socket.send(&buf, 0)?;
        Ok(seq)
    }

    /// Reads replies to `seq` until the ack (or the end of a dump), collecting messages.
    fn replies(&self, seq: u32) -> io::Result<Vec<RouteNetlinkMessage>> {
        let mut out = Vec::new();
        loop {
            let (buf, _) = self.socket.recv_from_full()?;
            let mut offset = 0;
            while offset < buf.len() {
                let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[offset..])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = message.header.length as usize;
                offset += len.max(1).next_multiple_of(4);
                if message.header.sequence_number != seq {
                    continue;
                }
                match message.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(out),
                            Some(_) => Err(e.to_io()),
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    _ => {}
                }
            }
        }
    }

    /// Sends one request and waits for the kernel's ack.
    fn request(&self, message: RouteNetlinkMessage, create: bool) -> io::Result<()> {
        let mut flags = NLM_F_REQUEST | NLM_F_ACK;
        if create {
            flags |= NLM_F_CREATE | NLM_F_EXCL;
        }
        let seq = self.send(message, flags)?;
        self.replies(seq).map(drop)
    }

    pub(crate) fn dump(
        &self,
        message: RouteNetlinkMessage,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        let seq = self.send(message, NLM_F_REQUEST | NLM_F_DUMP)?;
        self.replies(seq)
    }

    /// Creates a veth pair: `name` (index `index`) in this socket's namespace and
    /// `peer` (index `peer_index`) in `peer_netns`. Choosing the indexes ourselves
    /// saves a lookup per link; in a fresh namespace they are free.
    pub fn add_veth(
        &self,
        name: &str,
        index: u32,
        peer: &str,
        peer_index: u32,
        peer_netns: BorrowedFd<'_>,
    ) -> io::Result<()> {
        let mut peer_message = LinkUnspec::new_with_name(peer).build();
        peer_message.header.index = peer_index;
        peer_message
            .attributes
            .push(LinkAttribute::NetNsFd(peer_netns.as_raw_fd()));
        let mut message = LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(InfoKind::Veth)
            .name(name.to_string())
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_message)))
            .build();
        message.header.index = index;
        self.request(RouteNetlinkMessage::NewLink(message), true)
    }

    /// Creates a bridge. Bridged frames skip the IP firewall of this namespace
    /// (`nf_call_iptables` off): the bridge behaves as a plain switch even where
    /// `br_netfilter` is loaded.
    pub fn add_bridge(&self, name: &str, index: u32) -> io::Result<()> {
        let mut message = LinkBridge::new(name)
            .nf_call_iptables(false)
            .nf_call_ip6tables(false)
            .nf_call_arptables(false)
            .build();
        message.header.index = index;
        self.request(RouteNetlinkMessage::NewLink(message), true)
    }

    /// Sets a link up or down.
    pub fn set_up(&self, index: u32, up: bool) -> io::Result<()> {
        let builder = LinkUnspec::new_with_index(index);
        let message = if up { builder.up() } else { builder.down() }.build();
        self.request(RouteNetlinkMessage::SetLink(message), false)
    }

    /// Makes link `index` a port of the bridge `bridge_index`.
    pub fn set_controller(&self, index: u32, bridge_index: u32) -> io::Result<()> {
        let message = LinkUnspec::new_with_index(index)
            .controller(bridge_index)
            .build();
        self.request(RouteNetlinkMessage::SetLink(message), false)
    }

    /// Sets the MTU of link `index`.
    pub fn set_mtu(&self, index: u32, mtu: u32) -> io::Result<()> {
        let message = LinkUnspec::new_with_index(index).mtu(mtu).build();
        self.request(RouteNetlinkMessage::SetLink(message), false)
    }

    /// Adds an address; IPv6 addresses skip duplicate address detection so they
    /// are usable at once.
    pub fn add_address(&self, index: u32, net: IpNet) -> io::Result<()> {
        let message: AddressMessage = match net.addr {
            IpAddr::V4(v4) => AddressMessageBuilder::<Ipv4Addr>::new()
                .index(index)
                .address(v4, net.prefix)
                .build(),
            IpAddr::V6(v6) => {
                let mut m = AddressMessageBuilder::<Ipv6Addr>::new()
                    .index(index)
                    .address(v6, net.prefix)
                    .build();
                m.header.flags = AddressHeaderFlags::Nodad;
                m.attributes
                    .push(AddressAttribute::Flags(AddressFlags::Nodad));
                m
            }
        };
        self.request(RouteNetlinkMessage::NewAddress(message), true)
    }

    /// Adds a route in the main table.
    pub fn add_route(&self, route: &RouteSpec) -> io::Result<()> {
        let message: RouteMessage = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(route.destination.addr, route.destination.prefix)
            .and_then(|b| b.gateway(route.gateway))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?
            .build();
        self.request(RouteNetlinkMessage::NewRoute(message), true)
    }

    /// Every IPv6 address of the namespace.
    pub fn ipv6_addresses(&self) -> io::Result<Vec<Ipv6AddressState>> {
        let mut request = AddressMessage::default();
        request.header.family = AddressFamily::Inet6;
        let replies = self.dump(RouteNetlinkMessage::GetAddress(request))?;
        let mut out = Vec::new();
        for reply in replies {
            let RouteNetlinkMessage::NewAddress(message) = reply else {
                continue;
            };
            // IFA_FLAGS has every flag; the header only the first eight.
            let mut flags = AddressFlags::from_bits_retain(u32::from(message.header.flags.bits()));
            let mut address = None;
            for attribute in &message.attributes {
                match attribute {
                    AddressAttribute::Address(IpAddr::V6(v6)) => address = Some(*v6),
                    AddressAttribute::Flags(f) => flags = *f,
                    _ => {}
                }
            }
            out.extend(address.map(|address| Ipv6AddressState {
                index: message.header.index,
                address,
                tentative: flags.contains(AddressFlags::Tentative),
                dad_failed: flags.contains(AddressFlags::Dadfailed),
            }));
        }
        Ok(out)
    }

    /// The IPv6 addresses the namespace delivers to itself: the destinations of
    /// its local routes (the kernel adds an address's local route last, when it
    /// has finished setting the address up).
    pub fn ipv6_local_routes(&self) -> io::Result<Vec<Ipv6Addr>> {
        let mut request = RouteMessage::default();
        request.header.address_family = AddressFamily::Inet6;
        let replies = self.dump(RouteNetlinkMessage::GetRoute(request))?;
        Ok(replies
            .into_iter()
            .filter_map(|reply| match reply {
                RouteNetlinkMessage::NewRoute(route)
                    if route.header.kind == RouteType::Local
                        && route.header.destination_prefix_length == 128 =>
                {
                    route.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Destination(RouteAddress::Inet6(v6)) => Some(*v6),
                        _ => None,
                    })
                }
                _ => None,
            })
            .collect())
    }

    /// Asks for link `index`. Answering makes the kernel apply a carrier change
    /// of the link it has not applied yet (`linkwatch_sync_dev`, Linux 6.8 and
    /// later) instead of up to a second later, which is when the link's IPv6
    /// set-up starts.
    pub fn sync_link(&self, index: u32) -> io::Result<()> {
        let mut request = LinkMessage::default();
        request.header.index = index;
        self.request(RouteNetlinkMessage::GetLink(request), false)
    }

    /// Every link of the namespace.
    pub fn links(&self) -> io::Result<Vec<LinkState>> {
        let replies = self.dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(link) => Some(link_state(&link)),
                _ => None,
            })
            .collect())
    }
}

fn link_state(link: &LinkMessage) -> LinkState {
    let mut state = LinkState {
        index: link.header.index,
        name: String::new(),
        up: link.header.flags.contains(LinkFlags::Up),
        kind: None,
        controller: None,
    };
    for attr in &link.attributes {
        match attr {
            LinkAttribute::IfName(name) => state.name = name.clone(),
            LinkAttribute::Controller(c) => state.controller = Some(*c),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    if let LinkInfo::Kind(kind) = info {
                        state.kind = Some(kind.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    state
}
