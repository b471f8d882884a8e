//! Port forwards verified end to end, on write-up 003's lab: two web servers,
//! both on port 8080 in their own namespaces, behind a router that forwards 6000
//! to one and 6001 to the other. From the `client` node, each forwarded port must
//! reach the right server (they answer different bodies) and the server must see
//! the client's address (the router only masquerades the servers' own traffic
//! going out). Then a matrix checks that the router exposes nothing else.
//!
//! `cargo run -p examples --example port_forward` (exits with 1 if anything
//! differs from what write-up 003 describes)

use netns_fixture::matrix::{Flow, Forward, Matrix, PortForwardCheck, Service};
use netns_fixture::probes::reach::Outcome::{Accepted, Refused};
use netns_fixture::Lab;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let start = Instant::now();
    let lab = Lab::builtin("two_servers")?;
    print!("{lab}");
    println!(
        "\nrouter firewall:\n{}",
        lab.node("router").firewall_rules()
    );

    // The forwards the topology declares, with the source each server should see.
    let declared = PortForwardCheck::declared_in(&lab, "client")?.run(&lab)?;
    println!("{declared}");

    // The same forwards with the write-up's two Flask servers' answers.
    let flask = PortForwardCheck::new("client")
        .forward(Forward::tcp("10.0.0.233:6000", "server1", 8080).body("Hello from Flask!\n"))
        .forward(
            Forward::tcp("10.0.0.233:6001", "server2", 8080).body("Hello from the other Flask!\n"),
        )
        .run(&lab)?;
    println!("{flask}");

    // Nothing but the forwards is reachable from the client's network.
    let exposure = Matrix::new("what the client can reach")
        .service(Service::tcp("server1", 8080))
        .service(Service::tcp("server2", 8080))
        .flow(Flow::tcp("client", "10.0.0.233:6000", Accepted).note("forward to server1"))
        .flow(Flow::tcp("client", "10.0.0.233:6001", Accepted).note("forward to server2"))
        .flow(Flow::tcp("client", "10.0.0.233:6002", Refused).note("no forward there"))
        .flow(Flow::tcp("client", "192.168.0.2:8080", Refused).note("no route to the inside"))
        .run(&lab)?;
    println!("{exposure}");

    let ok = declared.is_as_expected() && flask.is_as_expected() && exposure.is_as_expected();
    drop(lab);
    println!(
        "{} in {:.0} ms, lab built and removed included.",
        if ok {
            "All as expected"
        } else {
            "MISMATCHES (see above)"
        },
        start.elapsed().as_secs_f64() * 1000.0
    );
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
