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
