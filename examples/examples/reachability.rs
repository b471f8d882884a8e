//! Accepted, refused, dropped: what a firewall test asserts on, from the client of
//! write-up 003's lab.
//!
//! `cargo run -p examples --example reachability`

use netns_fixture::probes::http::Content;
use netns_fixture::probes::reach::Outcome;
use netns_fixture::Lab;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lab = Lab::builtin("two_servers")?;
    let _server = lab
        .node("server1")
        .serve_http(8080, Content::text("hi\n"))?;
    let client = lab.node("client");
    let timeout = Duration::from_millis(300);
    for (target, expected) in [
        ("10.0.0.233:6000", Outcome::Accepted), // forwarded to server1:8080
        ("10.0.0.233:22", Outcome::Refused),    // the router itself answers with RST
        ("192.168.0.2:8080", Outcome::Refused), // no route from the client: refused locally
    ] {
        let reach = client.tcp_connect(target.parse()?, timeout);
        println!("client$ connect {target}: {reach}");
        reach.assert_outcome(expected);
    }
    // Forwarded to server2, where nothing listens on 8080: its RST comes back.
    let refused = client.tcp_connect("10.0.0.233:6001".parse()?, timeout);
    println!("client$ connect 10.0.0.233:6001: {refused}");
    // A UDP request the router does not forward and nobody answers.
    let udp = client.udp_request("10.0.0.233:6000".parse()?, b"ping", timeout);
    println!("client$ udp 10.0.0.233:6000: {udp}");
    Ok(())
}
