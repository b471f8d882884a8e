use netns_fixture::prelude::*;
use std::net::UdpSocket;

#[netns_test(topology = "pair")]
fn smoke(lab: &Lab) {
    let dev = std::fs::read_to_string("/proc/thread-self/net/dev").unwrap();
    assert!(dev.contains("veth-1"), "{dev}");
    let server = lab
        .node("ns-2")
        .run(|| UdpSocket::bind("10.0.0.20:9000").unwrap());
    let client = UdpSocket::bind("0.0.0.0:0").unwrap();
    client.send_to(b"hi", "10.0.0.20:9000").unwrap();
    let mut buf = [0; 16];
    server
        .set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    let (n, from) = server.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hi");
    assert_eq!(from.ip().to_string(), "10.0.0.10");
}

#[test]
fn display_shows_the_address_plan() {
    let lab = Lab::builtin("lan").unwrap();
    let plan = lab.to_string();
    let expected = "\
lab lan
  ns1 (default node)
    veth1      192.168.0.2/24 fd00:192:168::2/64 <-> host/veth1-br
    route 0.0.0.0/0 via 192.168.0.1
    route ::/0 via fd00:192:168::1
  ns2
    veth2      192.168.0.3/24 fd00:192:168::3/64 <-> host/veth2-br
    route 0.0.0.0/0 via 192.168.0.1
    route ::/0 via fd00:192:168::1
  host (forwarding, firewall)
    br0        192.168.0.1/24 fd00:192:168::1/64 bridge
    veth1-br   -                  <-> ns1/veth1 (port of br0)
    veth2-br   -                  <-> ns2/veth2 (port of br0)
    eth0       198.51.100.1/24 fd00:198:51:100::1/64 <-> internet/eth0
  internet
    eth0       198.51.100.2/24 fd00:198:51:100::2/64 <-> host/eth0
";
    assert_eq!(plan, expected);
}
