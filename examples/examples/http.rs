//! Write-up 001: a web server inside a namespace, fetched from "the host" — once
//! with the library's one-line server, once with `python3 -m http.server`.
//!
//! `cargo run -p examples --example http`

use netns_fixture::probes::http::{Content, HttpRequest};
use netns_fixture::Lab;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lab = Lab::builtin("host_ns")?;
    let (host, ns) = (lab.node("host"), lab.node("ns_rifky"));

    let server = ns.serve_http(4000, Content::text("Hello from ns_rifky\n"))?;
    let response = host.http(&HttpRequest::get("http://10.0.0.11:4000/"))?;
    println!(
        "host$ curl http://10.0.0.11:4000/\n  {} {}",
        response.status,
        response.text().trim_end()
    );
    println!(
        "  the server saw the request from {}",
        server.requests()[0].peer.ip().to_canonical()
    );
    drop(server);

    let mut python = ns.command("python3");
    python
        .args(["-m", "http.server", "4000"])
        .stderr(std::process::Stdio::null());
    let _python = ns.spawn(python)?;
    ns.wait_for_tcp("10.0.0.11:4000".parse()?, Duration::from_secs(10))?;
    let listing = host.http_get("http://10.0.0.11:4000/")?;
    let title = listing
        .text()
        .lines()
        .find(|l| l.contains("<title>"))
        .unwrap_or("")
        .trim()
        .to_string();
    println!(
        "host$ curl http://10.0.0.11:4000/   (python3 -m http.server in ns_rifky)\n  {} {title}",
        listing.status
    );
    Ok(())
}
