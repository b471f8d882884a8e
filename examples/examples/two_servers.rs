//! The main demo: builds write-up 003's lab (two web servers on port 8080 behind a
//! router that forwards 6000 and 6001 to them), sends traffic through both
//! forwards from the `client` node, and prints what happened.
//!
//! `cargo run -p examples --example two_servers`

use netns_fixture::probes::http::{Content, HttpRequest};
use netns_fixture::Lab;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let lab = Lab::builtin("two_servers")?;
    let built = start.elapsed();
    println!(
        "Built lab `two_servers` in {:.2} ms:\n",
        built.as_secs_f64() * 1000.0
    );
    print!("{lab}");
    println!("\nRouter firewall (nf_tables, installed over netlink):");
    for line in lab.node("router").firewall_rules().lines() {
        println!("  {line}");
    }

    let server1 = lab
        .node("server1")
        .serve_http(8080, Content::text("Hello from Flask!\n"))?;
    let server2 = lab
        .node("server2")
        .serve_http(8080, Content::text("Hello from the other Flask!\n"))?;
    println!("\nHTTP servers on server1:8080 and server2:8080.");

    let client = lab.node("client");
    for port in [6000, 6001] {
        let url = format!("http://10.0.0.233:{port}/");
        let response = client.http(&HttpRequest::get(&url))?;
        println!(
            "client$ curl {url}\n  {} {}",
            response.status,
            response.text().trim_end()
        );
    }
    for (name, server) in [("server1", &server1), ("server2", &server2)] {
        for request in server.requests() {
            println!(
                "{name} saw {} {} from {}",
                request.method,
                request.path,
                request.peer.ip().to_canonical()
            );
        }
    }
    let direct = client.http(
        &HttpRequest::get("http://192.168.0.2:8080/")
            .timeout(std::time::Duration::from_millis(300)),
    );
    match direct {
        Ok(r) => println!(
            "client$ curl http://192.168.0.2:8080/ (no route, expected to fail) answered {}",
            r.status
        ),
        Err(e) => println!(
            "client$ curl http://192.168.0.2:8080/ fails as expected: {}",
            e.reason
        ),
    }

    let teardown = Instant::now();
    drop((server1, server2));
    drop(lab);
    println!(
        "\nTore the lab down in {:.2} ms; nothing of it is left in this machine's namespace.",
        teardown.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}
