//! One line per packet in the style of `tcpdump -n -S` (numeric addresses and
//! ports, absolute TCP sequence numbers, no link-layer header).

use super::packet::{
    icmp_type, ip_proto, Arp, Icmp, Ip, IpVersion, Network, Packet, Quoted, Tcp, TcpOption,
    Transport,
};
use std::fmt::Write;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

/// `HH:MM:SS.uuuuuu` in local time, as tcpdump prints it.
pub(crate) fn timestamp(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as libc::time_t;
    // SAFETY: localtime_r only writes into the tm we pass; a zeroed tm is valid.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = !unsafe { libc::localtime_r(&secs, &mut tm) }.is_null();
    let (h, m, s) = if ok {
        (tm.tm_hour, tm.tm_min, tm.tm_sec)
    } else {
        let day = since.as_secs() % 86_400;
        (
            (day / 3600) as i32,
            (day / 60 % 60) as i32,
            (day % 60) as i32,
        )
    };
    format!("{h:02}:{m:02}:{s:02}.{:06}", since.subsec_micros())
}

pub(crate) fn summary(p: &Packet, out: &mut String) {
    let layers = p.layers();
    if let Some("ether" | "vlan") = layers.truncated {
        let _ = write!(out, "[|{}]", layers.truncated.unwrap_or("ether"));
        return;
    }
    match &layers.network {
        Network::Arp(arp) => render_arp(arp, layers.network_length, out),
        Network::Ip(ip) => render_ip(p, ip, out),
        Network::None => match (layers.truncated, p.ethernet()) {
            (Some("ip6"), _) => out.push_str("IP6 [|ip6]"),
            (Some("ip"), _) => out.push_str("IP [|ip]"),
            (Some(layer), _) => {
                let _ = write!(out, "[|{layer}]");
            }
            (None, Some(eth)) => {
                let name = match eth.ethertype {
                    0x0806 => "ARP",
                    0x0800 => "IPv4",
                    0x86dd => "IPv6",
                    0x8035 => "Reverse ARP",
                    0x88cc => "LLDP",
                    0x8847 => "MPLS unicast",
                    0x8848 => "MPLS multicast",
                    0x888e => "EAPOL",
                    _ => "Unknown",
                };
                let _ = write!(
                    out,
                    "{} > {}, ethertype {name} (0x{:04x}), length {}",
                    eth.src,
                    eth.dst,
                    eth.ethertype,
                    p.original_length()
                );
            }
            (None, None) => {
                let _ = write!(out, "unknown packet, length {}", p.original_length());
            }
        },
    }
}

fn render_arp(arp: &Arp, length: usize, out: &mut String) {
    let _ = match arp.operation {
        1 => {
            let _ = write!(out, "ARP, Request who-has {}", arp.target_ip);
            if !arp.target_mac.is_zero() {
                let _ = write!(out, " ({})", arp.target_mac);
            }
            write!(out, " tell {}", arp.sender_ip)
        }
        2 => write!(out, "ARP, Reply {} is-at {}", arp.sender_ip, arp.sender_mac),
        3 => write!(
            out,
            "ARP, Reverse Request who-is {} tell {}",
            arp.target_mac, arp.sender_mac
        ),
        4 => write!(
            out,
            "ARP, Reverse Reply {} at {}",
            arp.target_mac, arp.target_ip
        ),
        op => write!(out, "ARP, Unknown ({op})"),
    };
    let _ = write!(out, ", length {length}");
}

/// `10.0.0.1.80` / `::1.80`: tcpdump joins address and port with a dot.
fn endpoint(ip: IpAddr, port: Option<u16>) -> String {
    match port {
        Some(port) => format!("{ip}.{port}"),
        None => ip.to_string(),
    }
}

fn render_ip(p: &Packet, ip: &Ip, out: &mut String) {
    let layers = p.layers();
    out.push_str(match ip {
        Ip::V4(_) => "IP ",
        Ip::V6(_) => "IP6 ",
    });
    let (src, dst) = (ip.src(), ip.dst());
    let _ = write!(
        out,
        "{} > {}: ",
        endpoint(src, p.src_port()),
        endpoint(dst, p.dst_port())
    );
    if let Ip::V6(h) = ip {
        for ext in &h.extension_headers {
            match *ext {
                ip_proto::HOPOPTS => out.push_str("HBH "),
                ip_proto::DSTOPTS => out.push_str("DSTOPT "),
                ip_proto::ROUTING => out.push_str("srcrt "),
                ip_proto::FRAGMENT => {
                    let _ = write!(out, "frag ({}) ", h.fragment_offset.unwrap_or(0));
                }
                ip_proto::AH => out.push_str("AH "),
                _ => {}
            }
        }
    }
    match &layers.transport {
        Transport::Icmp(icmp) => match icmp.version {
            IpVersion::V4 => render_icmp(icmp, out),
            IpVersion::V6 => render_icmp6(icmp, out),
        },
        Transport::Udp(udp) => {
            let _ = write!(out, "UDP, length {}", udp.payload_length());
        }
        Transport::Tcp(tcp) => render_tcp(tcp, out),
        Transport::None => {
            if let Some(layer) = layers.truncated {
                let _ = write!(out, "[|{layer}]");
                return;
            }
            let (protocol, length) = match ip {
                Ip::V4(h) => (h.protocol, h.total_length.saturating_sub(h.header_length)),
                Ip::V6(h) => (h.protocol, layers.payload.len()),
            };
            let fragment = match ip {
                Ip::V4(h) => h.fragment_offset != 0,
                Ip::V6(h) => h.fragment_offset.unwrap_or(0) != 0,
            };
            if fragment {
                let _ = write!(out, "ip-proto-{protocol}");
            } else {
                // tcpdump prints two spaces here (": " then " ip-proto-N").
                let _ = write!(out, " ip-proto-{protocol} {length}");
            }
        }
    }
}

fn render_tcp(tcp: &Tcp, out: &mut String) {
    use super::packet::TcpFlags;
    let _ = write!(out, "Flags [{}]", tcp.flags);
    let length = tcp.payload_length;
    if length > 0
        || tcp.flags.contains(TcpFlags::SYN)
        || tcp.flags.contains(TcpFlags::FIN)
        || tcp.flags.contains(TcpFlags::RST)
    {
        let _ = write!(out, ", seq {}", tcp.seq);
        if length > 0 {
            let _ = write!(out, ":{}", tcp.seq.wrapping_add(length as u32));
        }
    }
    if tcp.flags.contains(TcpFlags::ACK) {
        let _ = write!(out, ", ack {}", tcp.ack);
    }
    let _ = write!(out, ", win {}", tcp.window);
    if tcp.flags.contains(TcpFlags::URG) {
        let _ = write!(out, ", urg {}", tcp.urgent);
    }
    if !tcp.options.is_empty() {
        out.push_str(", options [");
        for (i, option) in tcp.options.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = match option {
                TcpOption::EndOfList => write!(out, "eol"),
                TcpOption::Nop => write!(out, "nop"),
                TcpOption::Mss(mss) => write!(out, "mss {mss}"),
                TcpOption::WindowScale(shift) => write!(out, "wscale {shift}"),
                TcpOption::SackPermitted => write!(out, "sackOK"),
                TcpOption::Sack(blocks) => {
                    let _ = write!(out, "sack {}", blocks.len());
                    for (left, right) in blocks {
                        let _ = write!(out, " {{{left}:{right}}}");
                    }
                    Ok(())
                }
                TcpOption::Timestamp { value, echo } => write!(out, "TS val {value} ecr {echo}"),
                TcpOption::Other { kind, .. } => write!(out, "unknown-{kind}"),
            };
        }
        out.push(']');
    }
    let _ = write!(out, ", length {length}");
}

fn quoted_dst(q: Option<&Quoted>) -> String {
    q.map_or_else(|| "?".to_string(), |q| q.dst.to_string())
}

fn render_icmp(icmp: &Icmp, out: &mut String) {
    let q = icmp.quoted.as_ref();
    let text = match (icmp.icmp_type, icmp.code) {
        (icmp_type::ECHO_REPLY | icmp_type::ECHO_REQUEST, _) => {
            let (id, seq) = icmp.echo.unwrap_or_default();
            let kind = if icmp.icmp_type == icmp_type::ECHO_REPLY {
                "reply"
            } else {
                "request"
            };
            format!("echo {kind}, id {id}, seq {seq}")
        }
        (icmp_type::DEST_UNREACHABLE, code) => {
            let dst = quoted_dst(q);
            match code {
                0 => format!("net {dst} unreachable"),
                1 => format!("host {dst} unreachable"),
                2 => format!("{dst} protocol {} unreachable", q.map_or(0, |q| q.protocol)),
                3 => match (q.map(|q| q.protocol), q.and_then(|q| q.dst_port)) {
                    (Some(ip_proto::TCP), Some(port)) => {
                        format!("{dst} tcp port {port} unreachable")
                    }
                    (Some(ip_proto::UDP), Some(port)) => {
                        format!("{dst} udp port {port} unreachable")
                    }
                    (Some(protocol), port) => format!(
                        "{dst} protocol {protocol} port {} unreachable",
                        port.unwrap_or(0)
                    ),
                    (None, _) => format!("{dst} port unreachable"),
                },
                4 => match icmp.mtu {
                    Some(mtu) if mtu != 0 => {
                        format!("{dst} unreachable - need to frag (mtu {mtu})")
                    }
                    _ => format!("{dst} unreachable - need to frag"),
                },
                5 => format!("{dst} unreachable - source route failed"),
                6 => format!("net {dst} unreachable - unknown"),
                7 => format!("host {dst} unreachable - unknown"),
                8 => format!("{dst} unreachable - source host isolated"),
                9 => format!("net {dst} unreachable - admin prohibited"),
                10 => format!("host {dst} unreachable - admin prohibited"),
                11 => format!("net {dst} unreachable - tos prohibited"),
                12 => format!("host {dst} unreachable - tos prohibited"),
                13 => format!("host {dst} unreachable - admin prohibited filter"),
                14 => format!("host {dst} unreachable - host precedence violation"),
                15 => format!("host {dst} unreachable - precedence cutoff"),
                code => format!("{dst} unreachable - #{code}"),
            }
        }
        (icmp_type::TIME_EXCEEDED, 0) => "time exceeded in-transit".to_string(),
        (icmp_type::TIME_EXCEEDED, 1) => "ip reassembly time exceeded".to_string(),
        (icmp_type::TIME_EXCEEDED, code) => format!("time exceeded-#{code}"),
        (4, _) => "source quench".to_string(),
        (5, _) => "redirect".to_string(),
        (9, _) => "router advertisement".to_string(),
        (10, _) => "router solicitation".to_string(),
        (12, _) => "parameter problem".to_string(),
        (13, _) => "time stamp request".to_string(),
        (14, _) => "time stamp reply".to_string(),
        (15, _) => "information request".to_string(),
        (16, _) => "information reply".to_string(),
        (17, _) => "address mask request".to_string(),
        (18, _) => "address mask reply".to_string(),
        (t, _) => format!("type-#{t}"),
    };
    let _ = write!(out, "ICMP {text}, length {}", icmp.length);
}

fn render_icmp6(icmp: &Icmp, out: &mut String) {
    let q = icmp.quoted.as_ref();
    let name = match icmp.icmp_type {
        1 => "destination unreachable",
        2 => "packet too big",
        3 => "time exceeded in-transit",
        4 => "parameter problem",
        128 => "echo request",
        129 => "echo reply",
        130 => "multicast listener query",
        131 => "multicast listener report",
        132 => "multicast listener done",
        133 => "router solicitation",
        134 => "router advertisement",
        135 => "neighbor solicitation",
        136 => "neighbor advertisement",
        137 => "redirect",
        138 => "router renumbering",
        139 => "node information query",
        140 => "node information reply",
        141 => "inverse neighbor solicitation",
        142 => "inverse neighbor advertisement",
        143 => "multicast listener report v2",
        t => {
            let _ = write!(
                out,
                "ICMP6, unknown icmp6 type ({t}), length {}",
                icmp.length
            );
            return;
        }
    };
    let _ = write!(out, "ICMP6, {name}");
    match icmp.icmp_type {
        icmp_type::V6_DEST_UNREACHABLE => {
            let dst = quoted_dst(q);
            let _ = match icmp.code {
                0 => write!(out, ", unreachable route {dst}"),
                1 => write!(out, ", unreachable prohibited {dst}"),
                2 => write!(
                    out,
                    ", beyond scope {dst}, source address {}",
                    q.map_or_else(|| "?".to_string(), |q| q.src.to_string())
                ),
                3 => write!(out, ", unreachable address {dst}"),
                4 => match (q.map(|q| q.protocol), q.and_then(|q| q.dst_port)) {
                    (Some(ip_proto::TCP), Some(port)) => {
                        write!(out, ", unreachable port, {dst} tcp port {port}")
                    }
                    (Some(ip_proto::UDP), Some(port)) => {
                        write!(out, ", unreachable port, {dst} udp port {port}")
                    }
                    (protocol, port) => write!(
                        out,
                        ", unreachable port, {dst} protocol {} port {} unreachable",
                        protocol.unwrap_or(0),
                        port.unwrap_or(0)
                    ),
                },
                code => write!(out, ", unknown unreach code ({code})"),
            };
        }
        icmp_type::V6_PACKET_TOO_BIG => {
            let _ = write!(out, ", mtu {}", icmp.mtu.unwrap_or(0));
        }
        icmp_type::V6_TIME_EXCEEDED => {
            let _ = match icmp.code {
                0 => write!(out, " for {}", quoted_dst(q)),
                1 => write!(out, " (reassembly)"),
                code => write!(out, ", unknown code ({code})"),
            };
        }
        icmp_type::V6_ECHO_REQUEST | icmp_type::V6_ECHO_REPLY => {
            let (id, seq) = icmp.echo.unwrap_or_default();
            let _ = write!(out, ", id {id}, seq {seq}");
        }
        icmp_type::V6_NEIGHBOR_SOLICITATION => {
            if let Some(target) = icmp.target {
                let _ = write!(out, ", who has {target}");
            }
        }
        icmp_type::V6_NEIGHBOR_ADVERTISEMENT => {
            if let Some(target) = icmp.target {
                let _ = write!(out, ", tgt is {target}");
            }
        }
        icmp_type::V6_MLD2_REPORT => {
            let _ = write!(out, ", {} group record(s)", icmp.group_records.unwrap_or(0));
        }
        _ => {}
    }
    let _ = write!(out, ", length {}", icmp.length);
}
