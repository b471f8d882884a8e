//! Proof that a new lab carries packets before a test gets it.
//!
//! Right after a veth pair comes up, either end may still transmit into the kernel's
//! no-op queue for a moment and silently drop what is sent (measured here: about
//! one ARP request in 50 to 100 fresh labs was dropped with `QDISC_DROP`, costing
//! the first ping its one-second ARP retry). Neither link dumps, link
//! notifications nor an ethtool link query reliably tell when that window has
//! closed, so the lab tests the links themselves: each end sends a broadcast
//! frame of a local experimental ethertype until the other end has received one.
//!
//! IPv6 needs more: the kernel finishes setting up each address in a worker of
//! its own, after the request that added it has returned. Until then the
//! address's solicited-node group is not joined (neighbour solicitations for it
//! are dropped) and it has no local route (packets to it are not delivered).
//! An interface also needs a usable link-local address: a router solicits
//! neighbours from it when it forwards, so it forwards no IPv6 without one.
//! The namespaces of nodes with IPv6 addresses have duplicate address detection
//! off, so this takes well under a millisecond rather than the 1-2 s a tentative
//! link-local address takes; [`Ipv6Readiness`] tells when it is done.

use crate::netlink::RouteSocket;
use std::fs::File;
use std::io::{self, Read, Seek};
use std::net::Ipv6Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// IEEE 802 "local experimental" ethertype: no protocol of the lab answers it.
const PROBE_ETHERTYPE: u16 = 0x88b5;

/// A packet socket of one namespace, for sending and receiving probe frames.
/// Closing it waits for an RCU grace period (`synchronize_net()` in
/// `packet_release`): see [`close_in_background`].
pub(crate) struct Prober {
    fd: OwnedFd,
}

impl Prober {
    /// Opens the socket in the calling thread's namespace. It sees frames of
    /// every protocol (a bridge port hands specific protocols to the bridge
    /// before protocol sockets see them); only probes are looked at.
    pub fn open() -> io::Result<Prober> {
        let all = (libc::ETH_P_ALL as u16).to_be() as libc::c_int;
        // SAFETY: plain socket creation; the fd is owned at once.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                all,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh, valid descriptor.
        Ok(Prober {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    fn send(&self, ifindex: u32, token: u64) -> io::Result<()> {
        let mut frame = [0u8; 60];
        frame[..6].fill(0xff);
        frame[12..14].copy_from_slice(&PROBE_ETHERTYPE.to_be_bytes());
        frame[14..22].copy_from_slice(&token.to_be_bytes());
        // SAFETY: an all-zero sockaddr_ll is valid; the fields set are plain data.
        let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_protocol = PROBE_ETHERTYPE.to_be();
        address.sll_ifindex = ifindex as i32;
        address.sll_halen = 6;
        address.sll_addr[..6].fill(0xff);
        // SAFETY: sendto with a valid buffer and address of the stated sizes.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&address as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Whether probe `token` arrived on `ifindex`, waiting at most `wait`.
    fn received(&self, ifindex: u32, token: u64, wait: Duration) -> io::Result<bool> {
        let until = Instant::now() + wait;
        loop {
            let mut frame = [0u8; 128];
            // SAFETY: as above.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut from_len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            // SAFETY: recvfrom into a buffer and address of the stated sizes.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    frame.as_mut_ptr().cast(),
                    frame.len(),
                    0,
                    (&mut from as *mut libc::sockaddr_ll).cast(),
                    &mut from_len,
                )
            };
            if n >= 22 {
                let is_probe = frame[12..14] == PROBE_ETHERTYPE.to_be_bytes();
                if is_probe
                    && from.sll_ifindex == ifindex as i32
                    && frame[14..22] == token.to_be_bytes()
                {
                    return Ok(true);
                }
                continue;
            }
            let err = io::Error::last_os_error();
            if n >= 0 || err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            if err.kind() != io::ErrorKind::WouldBlock {
                return Err(err);
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            let mut poll = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut poll, 1, left.as_millis().clamp(1, 1000) as i32) };
        }
    }
}

/// Drops `sockets` on a short-lived thread of their own. Closing a packet socket
/// or an nf_tables netlink socket makes the kernel wait for an RCU grace period
/// (measured: about 15 ms for a lab's sockets), which a lab's setup need not pay.
pub(crate) fn close_in_background<T: Send + 'static>(sockets: T) {
    // If no thread can be made, the closure and the sockets are dropped right
    // here: slower, never wrong.
    let _ = std::thread::Builder::new()
        .name("netns-fixture-close".into())
        .spawn(move || drop(sockets));
}

/// Sends probes from `from` (out of `from_ifindex`) until `to` receives one on
/// `to_ifindex`, or `deadline` passes (then `Ok(false)`).
pub(crate) fn wait_for_delivery(
    from: &Prober,
    from_ifindex: u32,
    to: &Prober,
    to_ifindex: u32,
    deadline: Instant,
) -> io::Result<bool> {
    let mut token: u64 = (u64::from(from_ifindex) << 32) | u64::from(to_ifindex);
    while Instant::now() < deadline {
        token = token.wrapping_add(1 << 16);
        from.send(from_ifindex, token)?;
        // Delivery on a veth is immediate: a probe not seen within half a
        // millisecond was dropped, and the next one goes out.
        if to.received(to_ifindex, token, Duration::from_micros(500))? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// An interface whose IPv6 set-up a lab waits for.
pub(crate) struct Ipv6Interface<'a> {
    pub name: &'a str,
    pub index: u32,
    /// The addresses the lab gave it.
    pub addresses: Vec<Ipv6Addr>,
}

/// Tells whether the kernel has finished setting up IPv6 on interfaces of one
/// namespace (see the module documentation).
pub(crate) struct Ipv6Readiness {
    /// The namespace's `/proc/net/igmp6`, opened from inside it: the file keeps
    /// showing that namespace whichever thread reads it.
    igmp6: File,
    text: String,
}

impl Ipv6Readiness {
    /// Opens the check for the calling thread's namespace.
    pub fn open() -> io::Result<Ipv6Readiness> {
        Ok(Ipv6Readiness {
            igmp6: File::open("/proc/thread-self/net/igmp6")?,
            text: String::new(),
        })
    }

    /// What is not set up yet on `interfaces` (empty when everything is), read
    /// through `route`, a socket of the same namespace: for each interface, a
    /// link-local address that is not tentative, and for it and each of the
    /// interface's addresses the solicited-node group and the local route.
    pub fn missing(
        &mut self,
        route: &RouteSocket,
        interfaces: &[Ipv6Interface<'_>],
    ) -> io::Result<Vec<String>> {
        let addresses = route.ipv6_addresses()?;
        let local = route.ipv6_local_routes()?;
        self.text.clear();
        self.igmp6.rewind()?;
        self.igmp6.read_to_string(&mut self.text)?;
        let joined = joined_groups(&self.text);
        let mut missing = Vec::new();
        for interface in interfaces {
            let link_local = addresses
                .iter()
                .find(|a| a.index == interface.index && a.address.is_unicast_link_local());
            let mut wanted = interface.addresses.clone();
            match link_local {
                None => {
                    missing.push(format!("{}: a link-local address", interface.name));
                    // Its set-up may wait for a carrier change the kernel
                    // applies up to a second late; asking for the link applies it.
                    route.sync_link(interface.index)?;
                }
                Some(a) if a.dad_failed => missing.push(format!(
                    "{}: a link-local address ({} failed duplicate address detection)",
                    interface.name, a.address
                )),
                Some(a) if a.tentative => missing.push(format!(
                    "{}: a link-local address that is not tentative ({} is)",
                    interface.name, a.address
                )),
                Some(a) => wanted.push(a.address),
            }
            for address in wanted {
                let group = solicited_node(address);
                if !joined.contains(&(interface.index, group)) {
                    missing.push(format!(
                        "{}: solicited-node group {group} of {address}",
                        interface.name
                    ));
                }
                if !local.contains(&address) {
                    missing.push(format!("{}: local route of {address}", interface.name));
                }
            }
        }
        Ok(missing)
    }
}

/// The solicited-node multicast group of `address` (RFC 4291): ff02::1:ff00:0/104
/// and the address's low 24 bits.
fn solicited_node(address: Ipv6Addr) -> Ipv6Addr {
    Ipv6Addr::from(0xff02_0000_0000_0000_0000_0001_ff00_0000 | (u128::from(address) & 0xff_ffff))
}

/// The (interface index, group) pairs of `/proc/net/igmp6` text, whose lines read
/// `index name group users flags timer` with the group in 32 hex digits.
fn joined_groups(igmp6: &str) -> Vec<(u32, Ipv6Addr)> {
    igmp6
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let index = fields.next()?.parse().ok()?;
            let group = u128::from_str_radix(fields.nth(1)?, 16).ok()?;
            Some((index, Ipv6Addr::from(group)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solicited_node_groups_keep_the_low_24_bits() {
        let address: Ipv6Addr = "fd00:192:168::2".parse().unwrap();
        assert_eq!(solicited_node(address).to_string(), "ff02::1:ff00:2");
        let link_local: Ipv6Addr = "fe80::a883:deff:fe11:c2b9".parse().unwrap();
        assert_eq!(solicited_node(link_local).to_string(), "ff02::1:ff11:c2b9");
    }

    #[test]
    fn igmp6_lines_give_index_and_group() {
        let text = "1    lo              ff020000000000000000000000000001     1 0000000C 0\n\
                    2    veth-1          ff0200000000000000000001ff000010     1 00000004 0\n";
        assert_eq!(
            joined_groups(text),
            [
                (1, "ff02::1".parse().unwrap()),
                (2, "ff02::1:ff00:10".parse().unwrap())
            ]
        );
    }
}
