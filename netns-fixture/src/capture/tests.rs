//! Tests: hand-built frames through the decoder and renderer (checked against
//! the real `tcpdump -r`), and live captures in namespaces made by the tests.

use super::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

// ---------------------------------------------------------------------------
// Frame builders

const MAC_A: [u8; 6] = [0x02, 0, 0x0a, 0, 0, 0x01];
const MAC_B: [u8; 6] = [0x02, 0, 0x0a, 0, 0, 0x02];

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    [&dst[..], &src, &ethertype.to_be_bytes(), payload].concat()
}

fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, protocol, 0, 0]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    let sum = checksum(&h);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    [h, payload.to_vec()].concat()
}

fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next, 255]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    [h, payload.to_vec()].concat()
}

fn udp(src: u16, dst: u16, payload: &[u8]) -> Vec<u8> {
    let len = (8 + payload.len()) as u16;
    [
        &src.to_be_bytes()[..],
        &dst.to_be_bytes(),
        &len.to_be_bytes(),
        &[0, 0],
        payload,
    ]
    .concat()
}

fn tcp(
    src: u16,
    dst: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let offset = ((20 + options.len()) / 4) as u8;
    [
        &src.to_be_bytes()[..],
        &dst.to_be_bytes(),
        &seq.to_be_bytes(),
        &ack.to_be_bytes(),
        &[offset << 4, flags],
        &502u16.to_be_bytes(),
        &[0, 0, 0, 0],
        options,
        payload,
    ]
    .concat()
}

fn icmp(kind: u8, code: u8, rest: [u8; 4], body: &[u8]) -> Vec<u8> {
    let mut m = vec![kind, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(body);
    let sum = checksum(&m);
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    m
}

fn arp(op: u16, sha: [u8; 6], spa: Ipv4Addr, tha: [u8; 6], tpa: Ipv4Addr) -> Vec<u8> {
    [
        &[0, 1, 8, 0, 6, 4][..],
        &op.to_be_bytes(),
        &sha,
        &spa.octets(),
        &tha,
        &tpa.octets(),
    ]
    .concat()
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn at(secs: u64, nanos: u32) -> SystemTime {
    UNIX_EPOCH + Duration::new(secs, nanos)
}

fn frame(data: Vec<u8>) -> Packet {
    Packet::from_ethernet_frame(data, at(1_700_000_000, 1_000))
}

fn ipv4_frame(src: &str, dst: &str, protocol: u8, payload: &[u8]) -> Packet {
    frame(eth(
        MAC_B,
        MAC_A,
        0x0800,
        &ipv4(v4(src), v4(dst), protocol, payload),
    ))
}

fn ipv6_frame(src: &str, dst: &str, next: u8, payload: &[u8]) -> Packet {
    frame(eth(
        MAC_B,
        MAC_A,
        0x86dd,
        &ipv6(v6(src), v6(dst), next, payload),
    ))
}

const SYN_OPTIONS: [u8; 20] = [
    2, 4, 0x05, 0xb4, // mss 1460
    4, 2, // sackOK
    8, 10, 0, 0, 0, 1, 0, 0, 0, 0, // TS val 1 ecr 0
    1, // nop
    3, 3, 7, // wscale 7
];

/// A few frames of every kind the decoder knows, with the line expected for each.
fn zoo() -> Vec<(Packet, &'static str)> {
    let ping_body: Vec<u8> = (0..56).collect();
    let mut ns_body = v6("fe80::2").octets().to_vec();
    ns_body.extend_from_slice(&[1, 1]);
    ns_body.extend_from_slice(&MAC_A);
    let na_body = v6("fe80::2").octets().to_vec();
    // MLDv2 report: HBH (router alert) then ICMPv6 143 with one record.
    let hbh = [58u8, 0, 5, 2, 0, 0, 1, 0];
    let mut record = vec![4, 0, 0, 0];
    record.extend_from_slice(&v6("ff02::1:ff00:2").octets());
    let mld = icmp(143, 0, [0, 0, 0, 1], &record);
    let mut mld_payload = hbh.to_vec();
    mld_payload.extend_from_slice(&mld);
    let quoted_udp = ipv4(v4("10.0.0.1"), v4("10.0.0.3"), 17, &udp(40000, 9999, b"hi"));
    let quoted_udp6 = ipv6(
        v6("2001:db8::1"),
        v6("2001:db8::3"),
        17,
        &udp(40000, 9999, b"hi"),
    );
    let vlan_frame = [
        &MAC_B[..],
        &MAC_A,
        &[0x81, 0x00, 0x00, 0x64],
        &[0x08, 0x00],
        &ipv4(v4("10.1.0.1"), v4("10.1.0.2"), 17, &udp(1234, 5678, b"abc")),
    ]
    .concat();
    let mut padded = eth(
        MAC_B,
        MAC_A,
        0x0800,
        &ipv4(v4("10.0.0.1"), v4("10.0.0.2"), 17, &udp(1111, 2222, b"x")),
    );
    padded.resize(60, 0);
    vec![
        (
            frame(eth([0xff; 6], MAC_A, 0x0806, &arp(1, MAC_A, v4("10.0.0.10"), [0; 6], v4("10.0.0.20")))),
            "ARP, Request who-has 10.0.0.20 tell 10.0.0.10, length 28",
        ),
        (
            frame(eth(MAC_A, MAC_B, 0x0806, &arp(2, MAC_B, v4("10.0.0.20"), MAC_A, v4("10.0.0.10")))),
            "ARP, Reply 10.0.0.20 is-at 02:00:0a:00:00:02, length 28",
        ),
        (
            frame(eth([0xff; 6], MAC_A, 0x0806, &arp(1, MAC_A, v4("10.0.0.10"), MAC_B, v4("10.0.0.20")))),
            "ARP, Request who-has 10.0.0.20 (02:00:0a:00:00:02) tell 10.0.0.10, length 28",
        ),
        (
            ipv4_frame("10.0.0.10", "10.0.0.20", 1, &icmp(8, 0, [0, 1, 0, 1], &ping_body)),
            "IP 10.0.0.10 > 10.0.0.20: ICMP echo request, id 1, seq 1, length 64",
        ),
        (
            ipv4_frame("10.0.0.20", "10.0.0.10", 1, &icmp(0, 0, [0x12, 0x34, 0, 9], &ping_body)),
            "IP 10.0.0.20 > 10.0.0.10: ICMP echo reply, id 4660, seq 9, length 64",
        ),
        (
            ipv4_frame("10.0.0.3", "10.0.0.1", 1, &icmp(3, 3, [0; 4], &quoted_udp)),
            "IP 10.0.0.3 > 10.0.0.1: ICMP 10.0.0.3 udp port 9999 unreachable, length 38",
        ),
        (
            ipv4_frame("10.0.0.254", "10.0.0.1", 1, &icmp(3, 1, [0; 4], &quoted_udp)),
            "IP 10.0.0.254 > 10.0.0.1: ICMP host 10.0.0.3 unreachable, length 38",
        ),
        (
            ipv4_frame("10.0.0.254", "10.0.0.1", 1, &icmp(11, 0, [0; 4], &quoted_udp)),
            "IP 10.0.0.254 > 10.0.0.1: ICMP time exceeded in-transit, length 38",
        ),
        (
            ipv4_frame("10.0.0.2", "192.168.0.2", 6, &tcp(41234, 8080, 1000, 0, 0x02, &SYN_OPTIONS, b"")),
            "IP 10.0.0.2.41234 > 192.168.0.2.8080: Flags [S], seq 1000, win 502, options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7], length 0",
        ),
        (
            ipv4_frame("192.168.0.2", "10.0.0.2", 6, &tcp(8080, 41234, 5000, 1001, 0x12, &SYN_OPTIONS, b"")),
            "IP 192.168.0.2.8080 > 10.0.0.2.41234: Flags [S.], seq 5000, ack 1001, win 502, options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7], length 0",
        ),
        (
            ipv4_frame("10.0.0.2", "192.168.0.2", 6, &tcp(41234, 9, 1001, 5001, 0x18, &[], b"hello")),
            "IP 10.0.0.2.41234 > 192.168.0.2.9: Flags [P.], seq 1001:1006, ack 5001, win 502, length 5",
        ),
        (
            ipv4_frame("10.0.0.2", "192.168.0.2", 6, &tcp(41234, 9, 1006, 5001, 0x11, &[], b"")),
            "IP 10.0.0.2.41234 > 192.168.0.2.9: Flags [F.], seq 1006, ack 5001, win 502, length 0",
        ),
        (
            ipv4_frame("192.168.0.2", "10.0.0.2", 6, &tcp(9, 41234, 0, 1007, 0x14, &[], b"")),
            "IP 192.168.0.2.9 > 10.0.0.2.41234: Flags [R.], seq 0, ack 1007, win 502, length 0",
        ),
        (
            ipv4_frame("10.0.0.2", "192.168.0.2", 6, &tcp(41234, 9, 7, 0, 0xc2, &[], b"")),
            "IP 10.0.0.2.41234 > 192.168.0.2.9: Flags [SEW], seq 7, win 502, length 0",
        ),
        (
            ipv4_frame("10.0.0.2", "192.168.0.2", 6, &tcp(41234, 9, 7, 0, 0x00, &[], b"")),
            "IP 10.0.0.2.41234 > 192.168.0.2.9: Flags [none], win 502, length 0",
        ),
        (
            ipv4_frame("10.0.0.1", "10.0.0.2", 17, &udp(41234, 9999, b"hello")),
            "IP 10.0.0.1.41234 > 10.0.0.2.9999: UDP, length 5",
        ),
        (
            ipv4_frame("10.0.0.1", "10.0.0.2", 253, b"0123456789"),
            "IP 10.0.0.1 > 10.0.0.2:  ip-proto-253 10",
        ),
        (
            frame(padded),
            "IP 10.0.0.1.1111 > 10.0.0.2.2222: UDP, length 1",
        ),
        (
            frame(vlan_frame),
            "IP 10.1.0.1.1234 > 10.1.0.2.5678: UDP, length 3",
        ),
        (
            ipv6_frame("2001:db8::1", "2001:db8::2", 58, &icmp(128, 0, [0, 7, 0, 3], &ping_body)),
            "IP6 2001:db8::1 > 2001:db8::2: ICMP6, echo request, id 7, seq 3, length 64",
        ),
        (
            ipv6_frame("2001:db8::2", "2001:db8::1", 58, &icmp(129, 0, [0, 7, 0, 3], &ping_body)),
            "IP6 2001:db8::2 > 2001:db8::1: ICMP6, echo reply, id 7, seq 3, length 64",
        ),
        (
            ipv6_frame("fe80::1", "ff02::1:ff00:2", 58, &icmp(135, 0, [0; 4], &ns_body)),
            "IP6 fe80::1 > ff02::1:ff00:2: ICMP6, neighbor solicitation, who has fe80::2, length 32",
        ),
        (
            ipv6_frame("fe80::2", "fe80::1", 58, &icmp(136, 0, [0x60, 0, 0, 0], &na_body)),
            "IP6 fe80::2 > fe80::1: ICMP6, neighbor advertisement, tgt is fe80::2, length 24",
        ),
        (
            ipv6_frame("fe80::1", "ff02::16", 0, &mld_payload),
            "IP6 fe80::1 > ff02::16: HBH ICMP6, multicast listener report v2, 1 group record(s), length 28",
        ),
        (
            ipv6_frame("fe80::1", "ff02::2", 58, &icmp(133, 0, [0; 4], &[])),
            "IP6 fe80::1 > ff02::2: ICMP6, router solicitation, length 8",
        ),
        (
            ipv6_frame("2001:db8::3", "2001:db8::1", 58, &icmp(1, 4, [0; 4], &quoted_udp6)),
            "IP6 2001:db8::3 > 2001:db8::1: ICMP6, destination unreachable, unreachable port, 2001:db8::3 udp port 9999, length 58",
        ),
        (
            ipv6_frame("2001:db8::1", "2001:db8::2", 17, &udp(40001, 9999, b"hey")),
            "IP6 2001:db8::1.40001 > 2001:db8::2.9999: UDP, length 3",
        ),
        (
            ipv6_frame("2001:db8::1", "2001:db8::2", 6, &tcp(40000, 9, 1, 0, 0x02, &[], b"")),
            "IP6 2001:db8::1.40000 > 2001:db8::2.9: Flags [S], seq 1, win 502, length 0",
        ),
        (
            frame(eth([0xff; 6], MAC_A, 0x88b5, &[0u8; 46])),
            "02:00:0a:00:00:01 > ff:ff:ff:ff:ff:ff, ethertype Unknown (0x88b5), length 60",
        ),
    ]
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("netns-capture-{}-{name}.pcap", std::process::id()))
}

/// Runs `tcpdump -r FILE -n EXTRA...`: its exit status, stdout lines and stderr.
fn tcpdump_read(path: &Path, extra: &[&str]) -> (bool, Vec<String>, String) {
    let output = Command::new("tcpdump")
        .arg("-r")
        .arg(path)
        .arg("-n")
        .args(extra)
        .output()
        .expect("these tests run the real tcpdump: apt-get install tcpdump");
    let lines = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    (
        output.status.success(),
        lines,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn captured_of(packets: Vec<Packet>, link: LinkType) -> Captured {
    Captured {
        packets,
        interface: "test0".into(),
        filter: "everything".into(),
        link,
        kernel_drops: 0,
        rejected_by_predicates: 0,
        notes: Vec::new(),
    }
}

/// Writes `captured` as pcap, reads it back with tcpdump, removes the file.
fn through_tcpdump(captured: &Captured, name: &str, extra: &[&str]) -> Vec<String> {
    let path = temp_path(name);
    captured.write_pcap(&path).unwrap();
    let (ok, lines, stderr) = tcpdump_read(&path, extra);
    std::fs::remove_file(&path).unwrap();
    assert!(ok, "tcpdump -r {} failed: {stderr}", path.display());
    lines
}

// ---------------------------------------------------------------------------
// Decoder and renderer on hand-built frames

#[test]
fn hand_built_frames_render_as_expected() {
    for (packet, expected) in zoo() {
        assert_eq!(packet.summary(), expected, "{packet:?}");
        assert_eq!(packet.truncated_at(), None, "{expected}");
    }
}

#[test]
fn hand_built_frames_render_like_the_real_tcpdump() {
    let (packets, _): (Vec<Packet>, Vec<&str>) = zoo().into_iter().unzip();
    let captured = captured_of(packets, LinkType::Ethernet);
    let theirs: Vec<String> = through_tcpdump(&captured, "zoo", &["-S"])
        .into_iter()
        // tcpdump hex-dumps frames of unknown ethertypes after "length N: ".
        .filter(|line| !line.starts_with('\t'))
        .map(|line| line.trim_end_matches(": ").to_string())
        .collect();
    assert_eq!(theirs, captured.lines(), "ours vs tcpdump -n -S");
}

#[test]
fn arp_fields() {
    let p = frame(eth(
        [0xff; 6],
        MAC_A,
        0x0806,
        &arp(1, MAC_A, v4("10.0.0.10"), [0; 6], v4("10.0.0.20")),
    ));
    let a = p.arp().unwrap();
    assert!(a.is_request() && !a.is_reply());
    assert_eq!(a.sender_mac, MacAddr(MAC_A));
    assert_eq!(
        (a.sender_ip, a.target_ip),
        (v4("10.0.0.10"), v4("10.0.0.20"))
    );
    assert!(p.ethernet().unwrap().dst.is_broadcast());
    assert!(p.is_arp_request() && p.is_from(v4("10.0.0.10")) && p.is_to(v4("10.0.0.20")));
    assert!(p.ip().is_none() && p.icmp().is_none());
    assert!(p.payload().is_empty());
}

#[test]
fn ipv6_and_icmpv6_fields() {
    let body: Vec<u8> = (0..56).collect();
    let p = ipv6_frame(
        "2001:db8::1",
        "2001:db8::2",
        58,
        &icmp(128, 0, [0, 7, 0, 3], &body),
    );
    let ip6 = p.ipv6().unwrap();
    assert_eq!(
        (ip6.src, ip6.dst, ip6.protocol, ip6.hop_limit),
        (v6("2001:db8::1"), v6("2001:db8::2"), 58, 255)
    );
    assert_eq!(ip6.payload_length, 64);
    let i = p.icmp().unwrap();
    assert_eq!(
        (i.version, i.icmp_type, i.code, i.echo, i.length),
        (IpVersion::V6, 128, 0, Some((7, 3)), 64)
    );
    assert!(p.is_icmp_echo_request_to(v6("2001:db8::2")));
    assert!(!p.is_icmp_echo_reply());
    assert_eq!(p.payload(), &body[..]);
    assert_eq!(p.ip().unwrap().version(), IpVersion::V6);

    let (mld, _) = zoo().into_iter().find(|(_, l)| l.contains("HBH")).unwrap();
    let ip6 = mld.ipv6().unwrap();
    assert_eq!((ip6.next_header, ip6.protocol), (0, 58));
    assert_eq!(ip6.extension_headers, vec![0]);
    assert_eq!(mld.icmp().unwrap().group_records, Some(1));

    let (ns, _) = zoo()
        .into_iter()
        .find(|(_, l)| l.contains("who has"))
        .unwrap();
    assert_eq!(ns.icmp().unwrap().target, Some(v6("fe80::2")));
}

#[test]
fn tcp_fields_and_flags() {
    let p = ipv4_frame(
        "10.0.0.2",
        "192.168.0.2",
        6,
        &tcp(41234, 8080, 1000, 0, 0x02, &SYN_OPTIONS, b""),
    );
    assert!(p.is_tcp_syn() && !p.is_tcp_rst());
    let t = p.tcp().unwrap();
    assert_eq!(
        (
            t.src_port,
            t.dst_port,
            t.seq,
            t.header_length,
            t.payload_length
        ),
        (41234, 8080, 1000, 40, 0)
    );
    assert_eq!(
        t.options,
        vec![
            TcpOption::Mss(1460),
            TcpOption::SackPermitted,
            TcpOption::Timestamp { value: 1, echo: 0 },
            TcpOption::Nop,
            TcpOption::WindowScale(7),
        ]
    );
    let p = ipv4_frame(
        "10.0.0.2",
        "192.168.0.2",
        6,
        &tcp(41234, 9, 1001, 5001, 0x18, &[], b"hello"),
    );
    let t = p.tcp().unwrap();
    assert!(t.flags.contains(TcpFlags::PSH) && t.flags.contains(TcpFlags::ACK));
    assert!(!t.flags.contains(TcpFlags::SYN) && !p.is_tcp_syn());
    assert_eq!((t.ack, t.payload_length), (5001, 5));
    assert_eq!(p.payload(), b"hello");
    assert_eq!((p.src_port(), p.dst_port()), (Some(41234), Some(9)));
    assert_eq!(p.src_ip(), Some(IpAddr::from(v4("10.0.0.2"))));
    let ip = p.ipv4().unwrap();
    assert_eq!(
        (ip.ttl, ip.id, ip.dont_fragment, ip.total_length),
        (64, 0x1234, true, 45)
    );
    let synack = TcpFlags(TcpFlags::SYN.0 | TcpFlags::ACK.0);
    assert_eq!(synack.to_string(), "S.");
    assert_eq!(TcpFlags(0x1ff).to_string(), "FSRP.UEWe");
}

#[test]
fn udp_fields_and_padding() {
    let (p, _) = zoo().into_iter().find(|(_, l)| l.contains("1111")).unwrap();
    assert_eq!(p.data().len(), 60);
    let u = p.udp().unwrap();
    assert_eq!(
        (u.src_port, u.dst_port, u.length, u.payload_length()),
        (1111, 2222, 9, 1)
    );
    assert_eq!(p.payload(), b"x", "Ethernet padding is not payload");

    let (p, _) = zoo()
        .into_iter()
        .find(|(_, l)| l.contains("10.1.0.1"))
        .unwrap();
    assert_eq!(p.ethernet().unwrap().vlans, vec![100]);
    assert_eq!(p.ethernet().unwrap().ethertype, 0x0800);
    assert_eq!(p.payload(), b"abc");
}

#[test]
fn icmp_errors_quote_the_offending_packet() {
    let (p, _) = zoo()
        .into_iter()
        .find(|(_, l)| l.contains("udp port 9999 unreachable"))
        .unwrap();
    let i = p.icmp().unwrap();
    assert!(i.is_unreachable());
    let q = i.quoted.as_ref().unwrap();
    assert_eq!(
        (q.src, q.dst, q.protocol),
        (
            IpAddr::from(v4("10.0.0.1")),
            IpAddr::from(v4("10.0.0.3")),
            17
        )
    );
    assert_eq!((q.src_port, q.dst_port), (Some(40000), Some(9999)));
}

#[test]
fn raw_ip_packets_decode_without_a_link_header() {
    let p = Packet::from_ip_packet(
        ipv4(v4("10.9.0.1"), v4("10.9.0.2"), 17, &udp(1, 2, b"z")),
        at(0, 0),
    );
    assert!(p.ethernet().is_none());
    assert_eq!(p.summary(), "IP 10.9.0.1.1 > 10.9.0.2.2: UDP, length 1");
    assert_eq!(p.link_type(), LinkType::RawIp);
    let p6 = Packet::from_ip_packet(ipv6(v6("::1"), v6("::2"), 17, &udp(1, 2, b"z")), at(0, 0));
    assert_eq!(p6.summary(), "IP6 ::1.1 > ::2.2: UDP, length 1");
    let captured = captured_of(vec![p, p6], LinkType::RawIp);
    let theirs = through_tcpdump(&captured, "rawip", &[]);
    assert_eq!(theirs, captured.lines());
}

#[test]
fn truncated_frames_never_panic_and_say_where_they_stop() {
    for (packet, line) in zoo() {
        let data = packet.data();
        for cut in 0..data.len() {
            let p = Packet::from_ethernet_frame(data[..cut].to_vec(), at(0, 0));
            let summary = p.summary();
            assert!(!summary.is_empty(), "{line} cut at {cut}");
            let _ = (
                p.payload(),
                p.src_port(),
                p.is_icmp_echo_reply(),
                p.to_string(),
            );
        }
    }
    let short = Packet::from_ethernet_frame(vec![0; 10], at(0, 0));
    assert_eq!(
        (short.truncated_at(), short.summary().as_str()),
        (Some("ether"), "[|ether]")
    );

    let syn = ipv4_frame(
        "10.0.0.2",
        "192.168.0.2",
        6,
        &tcp(41234, 8080, 1000, 0, 0x02, &SYN_OPTIONS, b""),
    );
    let cut = Packet::from_ethernet_frame(syn.data()[..14 + 20 + 10].to_vec(), at(0, 0));
    assert_eq!(cut.truncated_at(), Some("tcp"));
    assert!(cut.tcp().is_none());
    assert_eq!(cut.ipv4().unwrap().dst, v4("192.168.0.2"));
    assert_eq!(cut.summary(), "IP 10.0.0.2 > 192.168.0.2: [|tcp]");

    let cut = Packet::from_ethernet_frame(syn.data()[..14 + 12].to_vec(), at(0, 0));
    assert_eq!(
        (cut.truncated_at(), cut.summary().as_str()),
        (Some("ip"), "IP [|ip]")
    );

    let arp = frame(eth(
        [0xff; 6],
        MAC_A,
        0x0806,
        &arp(1, MAC_A, v4("10.0.0.10"), [0; 6], v4("10.0.0.20")),
    ));
    let cut = Packet::from_ethernet_frame(arp.data()[..30].to_vec(), at(0, 0));
    assert_eq!(
        (cut.truncated_at(), cut.summary().as_str()),
        (Some("arp"), "[|arp]")
    );

    // A header that claims more than was captured: decoded, payload cut.
    let mut long = ipv4_frame("10.0.0.1", "10.0.0.2", 17, &udp(1, 2, &[7; 100]))
        .data()
        .to_vec();
    long.truncate(14 + 20 + 8 + 10);
    let p = Packet::new(LinkType::Ethernet, long, 142, at(0, 0), None);
    assert_eq!(p.payload(), &[7; 10]);
    assert_eq!(p.original_length(), 142);
    assert_eq!(p.summary(), "IP 10.0.0.1.1 > 10.0.0.2.2: UDP, length 100");
}

#[test]
fn timestamps_render_in_local_time_with_microseconds() {
    let p = Packet::from_ethernet_frame(vec![0; 10], at(1_700_000_000, 123_456_789));
    let line = p.to_string();
    let (time, rest) = line.split_once(' ').unwrap();
    assert_eq!(rest, "[|ether]");
    assert_eq!(time.len(), "12:00:00.123456".len(), "{time}");
    assert!(time.ends_with(":20.123456"), "{time}");
}

#[test]
fn assertions_show_every_line_on_failure() {
    let (packets, lines): (Vec<Packet>, Vec<&str>) = zoo().into_iter().take(3).unzip();
    let captured = captured_of(packets, LinkType::Ethernet);
    let reply = captured.assert_any(|p| p.is_arp_reply(), "an ARP reply");
    assert!(reply.is_from(v4("10.0.0.20")));
    captured.assert_none(|p| p.is_tcp(), "TCP");
    captured.assert_count(|p| p.is_arp_request(), 2, "ARP requests");

    let message = panic_message(|| {
        captured.assert_any(
            |p| p.is_icmp_echo_reply_from(v4("10.0.0.20")),
            "an ICMP echo reply from 10.0.0.20",
        );
    });
    assert!(
        message.starts_with("expected an ICMP echo reply from 10.0.0.20; saw:\n  "),
        "{message}"
    );
    for line in &lines {
        assert!(message.contains(line), "{message}");
    }
    assert!(
        message.ends_with("(3 packets captured on \"test0\" with filter everything)"),
        "{message}"
    );

    let message = panic_message(|| captured.assert_none(|p| p.is_arp_reply(), "ARP reply"));
    assert!(
        message.starts_with("expected no ARP reply; saw 1 (marked >) among:\n  "),
        "{message}"
    );
    assert!(
        message.contains("\n> ") && message.contains(lines[1]),
        "{message}"
    );

    let message = panic_message(|| captured.assert_count(|p| p.is_arp(), 2, "ARP messages"));
    assert!(
        message.starts_with("expected 2 ARP messages; saw 3 (marked >) among:"),
        "{message}"
    );

    let empty = captured_of(Vec::new(), LinkType::Ethernet);
    let message = panic_message(|| {
        empty.assert_any(|p| p.is_icmp(), "an ICMP message");
    });
    assert_eq!(
        message,
        "expected an ICMP message; saw: nothing\n(0 packets captured on \"test0\" with filter everything)"
    );
    assert_eq!(
        empty.to_string(),
        "(nothing captured on \"test0\" with filter everything)"
    );
    assert_eq!(captured.to_string(), captured.lines().join("\n"));
    assert_eq!(captured.summaries(), lines);
}

fn panic_message(f: impl FnOnce()) -> String {
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .expect_err("the assertion should have panicked");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Live captures in namespaces these tests make (root required)

use std::os::fd::BorrowedFd;

/// Runs `f` on a new thread moved into a new network namespace with `lo` up;
/// `f` gets the namespace's descriptor. The namespace dies with the thread.
fn in_new_netns<R: Send>(f: impl FnOnce(BorrowedFd<'_>) -> R + Send) -> R {
    std::thread::scope(|scope| {
        let thread = scope.spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("unshare(CLONE_NEWNET): the live capture tests need root");
            let netns = File::open("/proc/thread-self/ns/net").unwrap();
            set_up("lo");
            f(netns.as_fd())
        });
        match thread.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Sets IFF_UP on an interface of the calling thread's namespace.
fn set_up(interface: &str) {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0")
        .or_else(|_| std::net::UdpSocket::bind("[::]:0"))
        .unwrap_or_else(|_| {
            // No address family usable yet: any datagram socket does for ioctls.
            panic!("no socket for SIOCSIFFLAGS")
        });
    let name = std::ffi::CString::new(interface).unwrap();
    let mut req = socket::ifreq_for(&name);
    // SAFETY: SIOCGIFFLAGS / SIOCSIFFLAGS on an ifreq we own.
    unsafe {
        assert_eq!(
            libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req),
            0,
            "SIOCGIFFLAGS {interface}"
        );
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        assert_eq!(
            libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &mut req),
            0,
            "SIOCSIFFLAGS {interface}"
        );
    }
}

/// Runs `ip ARGS` in the calling thread's namespace (tests only).
fn ip(args: &str) {
    let status = Command::new("ip")
        .args(args.split_whitespace())
        .status()
        .expect("iproute2's ip");
    assert!(status.success(), "ip {args}");
}

/// Sends ICMP echo requests from a raw socket of the calling thread's namespace.
fn ping(dst: Ipv4Addr, id: u16, seqs: std::ops::RangeInclusive<u16>) {
    // SAFETY: plain socket/sendto calls on buffers we own.
    unsafe {
        let fd = libc::socket(
            libc::AF_INET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::IPPROTO_ICMP,
        );
        assert!(fd >= 0, "raw ICMP socket: {}", io::Error::last_os_error());
        let fd = OwnedFd::from_raw_fd(fd);
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from_ne_bytes(dst.octets());
        let body: Vec<u8> = (0..56).collect();
        for seq in seqs {
            let [a, b] = id.to_be_bytes();
            let [c, d] = seq.to_be_bytes();
            let message = icmp(8, 0, [a, b, c, d], &body);
            let n = libc::sendto(
                fd.as_raw_fd(),
                message.as_ptr().cast(),
                message.len(),
                0,
                (&addr as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            );
            assert_eq!(
                n,
                message.len() as isize,
                "sendto: {}",
                io::Error::last_os_error()
            );
        }
    }
}

#[test]
fn udp_on_loopback_is_captured_decoded_and_written_as_pcap() {
    in_new_netns(|netns| {
        let receiver = std::net::UdpSocket::bind("127.0.0.1:9999").unwrap();
        let other = std::net::UdpSocket::bind("127.0.0.1:9998").unwrap();
        let capture = Capture::start(netns, "lo", "udp port 9999").unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = sender.local_addr().unwrap().port();
        for i in 1..=3 {
            sender
                .send_to(format!("hello {i}").as_bytes(), "127.0.0.1:9999")
                .unwrap();
            sender.send_to(b"not this one", "127.0.0.1:9998").unwrap();
        }
        let mut buf = [0u8; 64];
        for _ in 1..=3 {
            receiver.recv_from(&mut buf).unwrap();
            other.recv_from(&mut buf).unwrap();
        }
        let captured = capture.stop().unwrap();

        assert_eq!(captured.len(), 3, "{captured}");
        assert_eq!(captured.kernel_drops(), 0);
        for (i, p) in captured.iter().enumerate() {
            let udp = p.udp().unwrap();
            assert_eq!((udp.src_port, udp.dst_port), (port, 9999));
            assert_eq!(p.payload(), format!("hello {}", i + 1).as_bytes());
            assert_eq!(
                p.direction(),
                Some(Direction::Incoming),
                "lo: one copy, the incoming one"
            );
            assert!(p.is_from(Ipv4Addr::LOCALHOST) && p.is_to(Ipv4Addr::LOCALHOST));
            assert_eq!(
                p.summary(),
                format!("IP 127.0.0.1.{port} > 127.0.0.1.9999: UDP, length 7")
            );
            let age = SystemTime::now().duration_since(p.timestamp()).unwrap();
            assert!(age < Duration::from_secs(10), "timestamp {age:?} old");
        }
        assert!(captured
            .packets()
            .windows(2)
            .all(|w| w[0].timestamp() <= w[1].timestamp()));

        let theirs = through_tcpdump(&captured, "udp", &[]);
        assert_eq!(theirs, captured.lines(), "tcpdump -r -n and our lines");
        assert!(theirs
            .iter()
            .all(|l| l.contains(&format!("127.0.0.1.{port} > 127.0.0.1.9999: UDP, length 7"))));
    });
}

#[test]
fn icmp_echo_on_loopback() {
    in_new_netns(|netns| {
        let capture = Capture::start(netns, "lo", Filter::tcpdump("icmp")).unwrap();
        ping(Ipv4Addr::LOCALHOST, 0x4242, 1..=3);
        let reply = capture.wait_for(
            |p| {
                p.icmp()
                    .is_some_and(|i| i.is_echo_reply() && i.echo == Some((0x4242, 3)))
            },
            Duration::from_secs(5),
        );
        assert!(reply.is_some(), "the third reply");
        let captured = capture.stop().unwrap();

        let reply = captured.assert_any(
            |p| p.is_icmp_echo_reply_from(Ipv4Addr::LOCALHOST),
            "an ICMP echo reply from 127.0.0.1",
        );
        assert_eq!(reply.icmp().unwrap().length, 64);
        captured.assert_count(|p| p.is_icmp_echo_request(), 3, "echo requests");
        captured.assert_count(|p| p.is_icmp_echo_reply(), 3, "echo replies");
        let expected: Vec<String> = (1..=3)
            .flat_map(|seq| {
                ["request", "reply"].map(|kind| {
                    format!("IP 127.0.0.1 > 127.0.0.1: ICMP echo {kind}, id 16962, seq {seq}, length 64")
                })
            })
            .collect();
        assert_eq!(captured.summaries(), expected);
        assert_eq!(through_tcpdump(&captured, "icmp", &[]), captured.lines());
    });
}

#[test]
fn tcp_connection_on_loopback() {
    use std::io::{Read as _, Write as _};
    in_new_netns(|netns| {
        let listener = std::net::TcpListener::bind("127.0.0.1:40123").unwrap();
        let capture = Capture::start(netns, "lo", "tcp port 40123").unwrap();
        let mut client = std::net::TcpStream::connect("127.0.0.1:40123").unwrap();
        let (mut server, _) = listener.accept().unwrap();
        client.write_all(b"hello").unwrap();
        let mut buf = [0u8; 5];
        server.read_exact(&mut buf).unwrap();
        drop(client);
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).unwrap();
        drop(server);
        let captured = capture.stop().unwrap();

        let syn = captured.assert_any(|p| p.is_tcp_syn(), "a SYN");
        let client_port = syn.src_port().unwrap();
        assert_eq!(syn.dst_port(), Some(40123));
        let syn_ack = captured.assert_any(
            |p| {
                p.tcp()
                    .is_some_and(|t| t.flags == TcpFlags(TcpFlags::SYN.0 | TcpFlags::ACK.0))
            },
            "a SYN-ACK",
        );
        assert_eq!(
            syn_ack.tcp().unwrap().ack,
            syn.tcp().unwrap().seq.wrapping_add(1)
        );
        assert!(syn
            .tcp()
            .unwrap()
            .options
            .iter()
            .any(|o| matches!(o, TcpOption::Mss(_))));
        let data = captured.assert_any(|p| p.payload() == b"hello", "the data segment");
        assert!(data.tcp().unwrap().flags.contains(TcpFlags::PSH));
        assert!(
            data.summary().contains(&format!(
                "127.0.0.1.{client_port} > 127.0.0.1.40123: Flags [P.], seq "
            )),
            "{}",
            data.summary()
        );
        captured.assert_any(
            |p| p.tcp().is_some_and(|t| t.flags.contains(TcpFlags::FIN)),
            "a FIN",
        );

        let theirs = through_tcpdump(&captured, "tcp", &["-S"]);
        assert_eq!(theirs.len(), captured.len(), "{theirs:#?}\n{captured}");
        for (theirs, ours) in theirs.iter().zip(captured.lines()) {
            // tcpdump may add a decoding of the payload after our line.
            assert!(
                theirs.starts_with(&ours),
                "tcpdump: {theirs}\nours:    {ours}"
            );
        }
        let relative = through_tcpdump(&captured, "tcp-relative", &[]);
        assert!(
            relative[0].contains("Flags [S]") && relative.iter().any(|l| l.contains("length 5")),
            "{relative:#?}"
        );
    });
}

#[test]
fn veth_between_namespaces_captures_both_directions() {
    in_new_netns(|netns_a| {
        // A second namespace, held by a descriptor (its creating thread ends).
        let netns_b = std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            File::open("/proc/thread-self/ns/net").unwrap()
        })
        .join()
        .unwrap();
        let in_b = |f: &(dyn Fn() + Sync)| {
            std::thread::scope(|s| {
                s.spawn(|| {
                    nix::sched::setns(&netns_b, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                    f()
                })
                .join()
                .unwrap()
            })
        };
        ip("link add va type veth peer name vb");
        ip(&format!(
            "link set vb netns /proc/{}/fd/{}",
            std::process::id(),
            netns_b.as_raw_fd()
        ));
        ip("addr add 10.0.0.1/24 dev va");
        in_b(&|| ip("addr add 10.0.0.2/24 dev vb"));

        // Capture on vb while it is still down: the kernel starts delivering
        // when it comes up.
        let in_b_all = Capture::start(netns_b.as_fd(), "vb", Filter::all()).unwrap();
        let on_a = Capture::start(netns_a, "va", "arp or icmp").unwrap();
        ip("link set va up");
        in_b(&|| ip("link set vb up"));
        ping(v4("10.0.0.2"), 7, 1..=2);
        let reply = on_a.wait_for(
            |p| p.is_icmp_echo_reply_from(v4("10.0.0.2")) && p.icmp().unwrap().echo == Some((7, 2)),
            Duration::from_secs(5),
        );
        assert!(
            reply.is_some(),
            "no reply from 10.0.0.2:\n{}",
            on_a.len_so_far()
        );
        // Let IPv6 neighbour discovery and MLD chatter happen on vb too.
        let dad = in_b_all.wait_for(
            |p| {
                p.icmp()
                    .is_some_and(|i| i.icmp_type == icmp_type::V6_NEIGHBOR_SOLICITATION)
            },
            Duration::from_secs(5),
        );
        let on_a = on_a.stop().unwrap();
        let on_b = in_b_all.stop().unwrap();
        println!("on va:\n{on_a}\non vb:\n{on_b}");

        let request = on_a.assert_any(
            |p| p.is_arp_request() && p.is_to(v4("10.0.0.2")),
            "an ARP request for 10.0.0.2",
        );
        assert_eq!(request.direction(), Some(Direction::Outgoing));
        assert_eq!(
            request.summary(),
            "ARP, Request who-has 10.0.0.2 tell 10.0.0.1, length 28"
        );
        let arp_reply = on_a.assert_any(
            |p| p.is_arp_reply() && p.is_from(v4("10.0.0.2")),
            "an ARP reply from 10.0.0.2",
        );
        assert_eq!(arp_reply.direction(), Some(Direction::Incoming));
        let vb_mac = arp_reply.arp().unwrap().sender_mac;
        assert_eq!(
            arp_reply.summary(),
            format!("ARP, Reply 10.0.0.2 is-at {vb_mac}, length 28")
        );
        for seq in 1..=2 {
            let out = on_a.assert_any(
                |p| {
                    p.is_icmp_echo_request_to(v4("10.0.0.2"))
                        && p.icmp().unwrap().echo == Some((7, seq))
                },
                "an echo request",
            );
            assert_eq!(out.direction(), Some(Direction::Outgoing));
            let back = on_a.assert_any(
                |p| {
                    p.is_icmp_echo_reply_from(v4("10.0.0.2"))
                        && p.icmp().unwrap().echo == Some((7, seq))
                },
                "an echo reply",
            );
            assert_eq!(back.direction(), Some(Direction::Incoming));
            assert_eq!(back.ethernet().unwrap().src, vb_mac);
        }
        on_a.assert_none(
            |p| p.ipv6().is_some(),
            "IPv6 (the filter is \"arp or icmp\")",
        );

        let seen_on_b = on_b.assert_any(
            |p| p.is_icmp_echo_request_to(v4("10.0.0.2")),
            "the echo request arriving on vb",
        );
        assert_eq!(seen_on_b.direction(), Some(Direction::Incoming));
        let sent_on_b = on_b.assert_any(
            |p| p.is_icmp_echo_reply_from(v4("10.0.0.2")),
            "the echo reply leaving vb",
        );
        assert_eq!(sent_on_b.direction(), Some(Direction::Outgoing));
        assert!(
            on_b.notes().iter().any(|n| n.contains("vb was down")),
            "{:?}",
            on_b.notes()
        );
        let dad = dad.expect("IPv6 duplicate address detection on vb");
        assert_eq!(dad.ipv6().unwrap().src, Ipv6Addr::UNSPECIFIED);
        assert!(
            dad.summary().starts_with("IP6 :: > ff02::1:ff"),
            "{}",
            dad.summary()
        );
        assert!(
            dad.summary()
                .contains("ICMP6, neighbor solicitation, who has fe80::"),
            "{}",
            dad.summary()
        );

        // Everything vb saw, IPv6 chatter included, reads back identically in tcpdump.
        assert_eq!(through_tcpdump(&on_b, "veth-all", &["-S"]), on_b.lines());
        assert_eq!(through_tcpdump(&on_a, "veth-a", &[]), on_a.lines());
    });
}

#[test]
fn malformed_filter_is_a_clear_error() {
    in_new_netns(|netns| {
        let err = Capture::start(netns, "lo", "tcp prot 80").unwrap_err();
        assert!(matches!(err, CaptureError::InvalidFilter { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "invalid tcpdump filter \"tcp prot 80\": libpcap says: can't parse filter expression: syntax error"
        );
        let err = Capture::start(netns, "lo", Filter::tcpdump("port 99999")).unwrap_err();
        assert!(
            err.to_string().contains("\"port 99999\"") && err.to_string().contains("99999"),
            "{err}"
        );
    });
}

#[test]
fn unknown_interface_lists_the_existing_ones() {
    in_new_netns(|netns| {
        let err = Capture::start(netns, "eth9", Filter::all()).unwrap_err();
        match &err {
            CaptureError::UnknownInterface { interface, known } => {
                assert_eq!(interface, "eth9");
                assert_eq!(known, &["lo"]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            err.to_string(),
            "no interface \"eth9\" in the capture's network namespace; it has: lo"
        );
        let err = Capture::start(netns, "a-name-longer-than-ifnamsiz", Filter::all()).unwrap_err();
        assert!(err.to_string().contains("it has: lo"), "{err}");
    });
}

#[test]
fn bad_namespace_descriptor_is_a_clear_error() {
    let not_a_netns = File::open("/proc/self/ns/uts").unwrap();
    let err = Capture::start(not_a_netns.as_fd(), "lo", Filter::all()).unwrap_err();
    assert!(matches!(err, CaptureError::Namespace { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("cannot enter the network namespace"),
        "{err}"
    );
}

#[test]
fn a_capture_without_traffic_stops_promptly() {
    in_new_netns(|netns| {
        let capture = Capture::start(netns, "lo", "udp port 9").unwrap();
        std::thread::sleep(Duration::from_millis(250));
        let started = Instant::now();
        let captured = capture.stop().unwrap();
        let took = started.elapsed();
        assert!(took < Duration::from_millis(500), "stop took {took:?}");
        assert!(captured.is_empty());
        assert_eq!(
            captured.to_string(),
            "(nothing captured on \"lo\" with filter \"udp port 9\")"
        );
        let message = panic_message(|| {
            captured.assert_any(|p| p.is_udp(), "a UDP datagram");
        });
        assert_eq!(
            message,
            "expected a UDP datagram; saw: nothing\n(0 packets captured on \"lo\" with filter \"udp port 9\")"
        );
    });
}

#[test]
fn predicates_filter_in_userspace_and_combine_with_tcpdump() {
    in_new_netns(|netns| {
        let _sinks =
            [9997, 9998, 9999].map(|p| std::net::UdpSocket::bind(("127.0.0.1", p)).unwrap());
        let both = Capture::start(
            netns,
            "lo",
            Filter::tcpdump("udp and not port 9997").and_predicate(|p| p.dst_port() == Some(9999)),
        )
        .unwrap();
        let only_predicate = Capture::start(
            netns,
            "lo",
            Filter::predicate(|p| p.payload() == b"pick me"),
        )
        .unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for port in [9997, 9998, 9999] {
            sender.send_to(b"pick me", ("127.0.0.1", port)).unwrap();
            sender.send_to(b"not me", ("127.0.0.1", port)).unwrap();
        }
        let both = both.stop().unwrap();
        let only_predicate = only_predicate.stop().unwrap();

        assert_eq!(both.len(), 2, "{both}");
        assert!(both.iter().all(|p| p.dst_port() == Some(9999)));
        assert_eq!(
            both.rejected_by_predicates(),
            2,
            "the two datagrams to 9998"
        );
        assert_eq!(both.filter(), "\"udp and not port 9997\" + 1 predicate");
        assert_eq!(only_predicate.len(), 3, "{only_predicate}");
        assert!(only_predicate.iter().all(|p| p.payload() == b"pick me"));
        assert_eq!(only_predicate.rejected_by_predicates(), 3);
        let message = panic_message(|| both.assert_none(|p| p.is_udp(), "UDP"));
        assert!(message.ends_with("with filter \"udp and not port 9997\" + 1 predicate; 2 more rejected by its predicates)"), "{message}");
    });
}

#[test]
fn wait_for_sees_packets_while_the_capture_runs() {
    in_new_netns(|netns| {
        let capture = Capture::start(netns, "lo", "udp").unwrap();
        assert!(capture
            .wait_for(|p| p.is_udp(), Duration::from_millis(50))
            .is_none());
        let sender = std::thread::spawn(|| {
            // Threads inherit the namespace of the thread that spawns them.
            std::thread::sleep(Duration::from_millis(100));
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            s.send_to(b"late", "127.0.0.1:9").unwrap();
        });
        let seen = capture.wait_for(|p| p.payload() == b"late", Duration::from_secs(5));
        sender.join().unwrap();
        assert_eq!(seen.unwrap().dst_port(), Some(9));
        assert_eq!(capture.len_so_far(), 1);
        assert_eq!(capture.interface(), "lo");
        assert_eq!(capture.stop().unwrap().len(), 1);
    });
}

fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|s| s.trim().to_string())
        .collect()
}

#[test]
fn dropping_a_capture_joins_its_reader_thread() {
    in_new_netns(|netns| {
        let capture = Capture::start(netns, "lo", Filter::all()).unwrap();
        let name = capture
            .reader
            .as_ref()
            .unwrap()
            .thread()
            .name()
            .unwrap()
            .to_string();
        // The thread names itself once it runs.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !thread_names().contains(&name) {
            assert!(
                Instant::now() < deadline,
                "{name} never showed up in /proc/self/task"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(capture);
        // Joined: the thread has finished; the kernel reaps its task entry
        // a moment after pthread_join returns.
        let deadline = Instant::now() + Duration::from_secs(1);
        while thread_names().contains(&name) {
            assert!(Instant::now() < deadline, "{name} still running after drop");
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

#[test]
fn a_panicking_predicate_panics_in_stop() {
    in_new_netns(|netns| {
        let capture = Capture::start(
            netns,
            "lo",
            Filter::predicate(|_| panic!("predicate exploded")),
        )
        .unwrap();
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .send_to(b"x", "127.0.0.1:9")
            .unwrap();
        let message = panic_message(|| {
            let _ = capture.stop();
        });
        assert_eq!(message, "predicate exploded");
    });
}

#[test]
fn large_packets_on_loopback_are_kept_whole() {
    in_new_netns(|netns| {
        // lo's MTU is 65536; a dead libpcap handle compiles "accept" as
        // `ret #65535`, which the capture widens so nothing is cut.
        let big: Vec<u8> = (0..60_000u32).map(|i| i as u8).collect();
        let capture = Capture::start(netns, "lo", "udp port 9").unwrap();
        let everything = Capture::start(netns, "lo", Filter::all()).unwrap();
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .send_to(&big, "127.0.0.1:9")
            .unwrap();
        for captured in [capture.stop().unwrap(), everything.stop().unwrap()] {
            let p = captured.assert_any(|p| p.dst_port() == Some(9), "the big datagram");
            assert_eq!(p.data().len(), 14 + 20 + 8 + 60_000);
            assert_eq!(p.original_length(), p.data().len());
            assert_eq!(p.payload(), &big[..]);
            assert!(
                p.summary().ends_with("UDP, length 60000"),
                "{}",
                p.summary()
            );
            assert_eq!(through_tcpdump(&captured, "big", &[]), captured.lines());
        }
    });
}
