//! The AF_PACKET socket: opened inside the target namespace by a short-lived
//! thread, filtered and bound before anyone reads, then read with `recvmsg`.

use super::filter::{self, Filter, SNAPLEN};
use super::packet::{Direction, LinkType};
use super::CaptureError;
use std::ffi::CString;
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Receive buffer asked for (SO_RCVBUFFORCE, else SO_RCVBUF capped by rmem_max).
const RECEIVE_BUFFER: libc::c_int = 16 << 20;

/// ARPHRD_RAWIP (not in the libc crate).
const ARPHRD_RAWIP: u16 = 519;

/// A bound, filtered packet socket and what is known about its interface.
pub(crate) struct Opened {
    pub(crate) socket: OwnedFd,
    pub(crate) link: LinkType,
    pub(crate) loopback: bool,
    /// The interface was down when bound (the kernel starts delivering when it comes up).
    pub(crate) was_down: bool,
}

/// Opens the capture socket on `interface` in `netns`, on a thread of its own so
/// that no caller thread ever changes namespace.
pub(crate) fn open(
    netns: BorrowedFd<'_>,
    interface: &str,
    filter: &Filter,
) -> Result<Opened, CaptureError> {
    std::thread::scope(|scope| {
        let opener = std::thread::Builder::new()
            .name("ncap-open".into())
            .spawn_scoped(scope, || {
                nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                    CaptureError::Namespace {
                        source: io::Error::from(e),
                    }
                })?;
                open_here(interface, filter)
            })
            .map_err(|e| io_error("spawning the thread that opens the socket", e))?;
        match opener.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

fn io_error(context: impl Into<String>, source: io::Error) -> CaptureError {
    CaptureError::Io {
        context: context.into(),
        source,
    }
}

/// The interfaces of the calling thread's namespace, in index order.
fn interface_names() -> Vec<String> {
    match nix::net::if_::if_nameindex() {
        Ok(list) => {
            let mut names: Vec<(u32, String)> = list
                .iter()
                .map(|i| (i.index(), i.name().to_string_lossy().into_owned()))
                .collect();
            names.sort();
            names.into_iter().map(|(_, name)| name).collect()
        }
        Err(_) => std::fs::read_to_string("/proc/thread-self/net/dev")
            .unwrap_or_default()
            .lines()
            .skip(2)
            .filter_map(|line| line.split(':').next())
            .map(|name| name.trim().to_string())
            .collect(),
    }
}

pub(crate) fn ifreq_for(name: &CString) -> libc::ifreq {
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
        *dst = *src as libc::c_char;
    }
    req
}

fn setsockopt<T>(
    socket: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: value points to a live T of the given size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Runs in the target namespace.
fn open_here(interface: &str, filter: &Filter) -> Result<Opened, CaptureError> {
    let unknown = || CaptureError::UnknownInterface {
        interface: interface.to_string(),
        known: interface_names(),
    };
    let name = CString::new(interface).map_err(|_| unknown())?;
    if name.as_bytes().len() >= libc::IFNAMSIZ {
        return Err(unknown());
    }
    // SAFETY: name is a valid C string.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if ifindex == 0 {
        return Err(unknown());
    }

    // Protocol 0: the socket receives nothing until bind() names a protocol, so
    // no unfiltered packet can be queued before the filter is attached.
    // SAFETY: plain socket(2) call.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        let err = io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => CaptureError::NotPrivileged(err),
            _ => io_error("creating an AF_PACKET socket", err),
        });
    }
    // SAFETY: fd was just created and is owned by nobody else.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };

    // Link type and loopback-ness, asked through the socket (same namespace).
    let mut req = ifreq_for(&name);
    // SAFETY: SIOCGIFHWADDR fills ifr_hwaddr of the ifreq we own.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) } != 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ENODEV) {
            return Err(unknown());
        }
        return Err(io_error(
            format!("reading the link type of {interface}"),
            err,
        ));
    }
    // SAFETY: the kernel set the hwaddr member of the union.
    let arphrd = unsafe { req.ifr_ifru.ifru_hwaddr.sa_family };
    let mut req = ifreq_for(&name);
    // SAFETY: SIOCGIFFLAGS fills ifr_flags of the ifreq we own.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } != 0 {
        let err = io::Error::last_os_error();
        return Err(io_error(format!("reading the flags of {interface}"), err));
    }
    // SAFETY: the kernel set the flags member of the union.
    let flags = libc::c_int::from(unsafe { req.ifr_ifru.ifru_flags });
    let link = match arphrd {
        libc::ARPHRD_ETHER | libc::ARPHRD_LOOPBACK => LinkType::Ethernet,
        libc::ARPHRD_NONE
        | libc::ARPHRD_TUNNEL
        | libc::ARPHRD_TUNNEL6
        | libc::ARPHRD_SIT
        | ARPHRD_RAWIP => LinkType::RawIp,
        other => {
            return Err(CaptureError::UnsupportedLinkType {
                interface: interface.to_string(),
                arphrd: other,
            })
        }
    };
    let loopback = flags & libc::IFF_LOOPBACK != 0 || arphrd == libc::ARPHRD_LOOPBACK;

    let program = match filter.expression() {
        Some(expression) => Some(filter::compile(expression, link)?),
        None => None,
    };

    if setsockopt(
        &socket,
        libc::SOL_SOCKET,
        libc::SO_RCVBUFFORCE,
        &RECEIVE_BUFFER,
    )
    .is_err()
    {
        setsockopt(&socket, libc::SOL_SOCKET, libc::SO_RCVBUF, &RECEIVE_BUFFER)
            .map_err(|e| io_error("setting SO_RCVBUF", e))?;
    }
    let on: libc::c_int = 1;
    setsockopt(&socket, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &on)
        .map_err(|e| io_error("enabling SO_TIMESTAMPNS", e))?;
    setsockopt(&socket, libc::SOL_PACKET, libc::PACKET_AUXDATA, &on)
        .map_err(|e| io_error("enabling PACKET_AUXDATA", e))?;
    if let Some(program) = &program {
        let fprog = libc::sock_fprog {
            len: program.len() as libc::c_ushort,
            filter: program.as_ptr().cast_mut(),
        };
        setsockopt(&socket, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog).map_err(|e| {
            io_error(
                format!(
                    "attaching the BPF program of {:?} to the socket",
                    filter.expression().unwrap_or_default()
                ),
                e,
            )
        })?;
    }

    // SAFETY: sockaddr_ll is plain data; all-zero is valid.
    let mut addr: libc::sockaddr_ll = unsafe { zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    addr.sll_ifindex = ifindex as libc::c_int;
    // SAFETY: addr is a valid sockaddr_ll of the size passed.
    let rc = unsafe {
        libc::bind(
            socket.as_raw_fd(),
            (&addr as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        let err = io::Error::last_os_error();
        return Err(io_error(
            format!("binding the packet socket to {interface}"),
            err,
        ));
    }
    // No drain is needed: the socket had no protocol hook until bind(), which
    // came after SO_ATTACH_FILTER, so everything queued has passed the filter.
    let was_down = flags & libc::IFF_UP == 0;
    Ok(Opened {
        socket,
        link,
        loopback,
        was_down,
    })
}

/// One packet read from the socket.
pub(crate) struct Received {
    pub(crate) data: Vec<u8>,
    pub(crate) original_length: usize,
    pub(crate) timestamp: SystemTime,
    pub(crate) direction: Direction,
    pub(crate) outgoing: bool,
}

/// What a non-blocking read found.
pub(crate) enum Read {
    Packet(Received),
    /// Nothing queued.
    Empty,
    /// The kernel reported a condition on the socket (ENETDOWN: the interface
    /// went down; ENODEV: it was deleted); reading goes on.
    Condition(io::Error),
}

/// Reads one queued packet without blocking; longer packets are cut to `buffer`.
pub(crate) fn read(socket: &OwnedFd, link: LinkType, buffer: &mut [u8]) -> io::Result<Read> {
    // SAFETY: zeroed sockaddr_ll / msghdr are valid; every pointer set below
    // refers to a local that outlives the recvmsg call.
    let mut from: libc::sockaddr_ll = unsafe { zeroed() };
    let mut control = [0u64; 64];
    let mut iov = libc::iovec {
        iov_base: buffer.as_mut_ptr().cast(),
        iov_len: buffer.len(),
    };
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&mut from as *mut libc::sockaddr_ll).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 64]>() as _;
    // SAFETY: msg describes valid buffers (see above).
    let n = unsafe {
        libc::recvmsg(
            socket.as_raw_fd(),
            &mut msg,
            libc::MSG_DONTWAIT | libc::MSG_TRUNC,
        )
    };
    if n < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EAGAIN) => Ok(Read::Empty),
            Some(libc::EINTR) => read(socket, link, buffer),
            Some(libc::ENETDOWN | libc::ENODEV | libc::ENXIO) => Ok(Read::Condition(err)),
            _ => Err(err),
        };
    }
    // With MSG_TRUNC, n is the length the filter let through, even if larger than
    // the buffer.
    let captured = (n as usize).min(buffer.len());
    let mut original_length = n as usize;
    let mut timestamp = None;
    let mut vlan: Option<(u16, u16)> = None;
    // SAFETY: CMSG_* walk the control buffer the kernel filled, within msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let level = (*cmsg).cmsg_level;
            let kind = (*cmsg).cmsg_type;
            let data = libc::CMSG_DATA(cmsg);
            if level == libc::SOL_SOCKET && kind == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(data.cast());
                timestamp = Some(
                    UNIX_EPOCH
                        + Duration::new(
                            ts.tv_sec.max(0) as u64,
                            ts.tv_nsec.clamp(0, 999_999_999) as u32,
                        ),
                );
            } else if level == libc::SOL_PACKET && kind == libc::PACKET_AUXDATA {
                let aux: libc::tpacket_auxdata = std::ptr::read_unaligned(data.cast());
                original_length = aux.tp_len as usize;
                if aux.tp_status & libc::TP_STATUS_VLAN_VALID != 0 {
                    let tpid = if aux.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                        aux.tp_vlan_tpid
                    } else {
                        0x8100
                    };
                    vlan = Some((tpid, aux.tp_vlan_tci));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    let mut data = buffer[..captured].to_vec();
    // Like libpcap: put back the 802.1Q tag the kernel moved into metadata.
    if let (Some((tpid, tci)), LinkType::Ethernet) = (vlan, link) {
        if data.len() >= 12 {
            let mut tag = Vec::with_capacity(4);
            tag.extend_from_slice(&tpid.to_be_bytes());
            tag.extend_from_slice(&tci.to_be_bytes());
            data.splice(12..12, tag);
            original_length += 4;
        }
    }
    let outgoing = from.sll_pkttype == libc::PACKET_OUTGOING;
    Ok(Read::Packet(Received {
        original_length: original_length.max(data.len()),
        data,
        timestamp: timestamp.unwrap_or_else(SystemTime::now),
        direction: if outgoing {
            Direction::Outgoing
        } else {
            Direction::Incoming
        },
        outgoing,
    }))
}

/// The size of the read buffer: the snapshot length.
pub(crate) const BUFFER_SIZE: usize = SNAPLEN as usize;

/// Packets the kernel dropped because the receive buffer was full (PACKET_STATISTICS).
pub(crate) fn kernel_drops(socket: &OwnedFd) -> u64 {
    // SAFETY: tpacket_stats is plain data; getsockopt writes at most len bytes.
    let mut stats: libc::tpacket_stats = unsafe { zeroed() };
    let mut len = size_of::<libc::tpacket_stats>() as libc::socklen_t;
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&mut stats as *mut libc::tpacket_stats).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        u64::from(stats.tp_drops)
    } else {
        0
    }
}
