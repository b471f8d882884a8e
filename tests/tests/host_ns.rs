//! Write-up 001: a web server inside a namespace, reached from "the host".

use netns_fixture::prelude::*;
use netns_fixture::probes::http::{Content, HttpRequest};
use std::time::Duration;

#[netns_test(topology = "host_ns", node = "host")]
fn curl_reaches_the_web_server_inside_the_namespace(lab: &Lab) {
    let server = lab
        .node("ns_rifky")
        .serve_http(4000, Content::text("Hello from ns_rifky\n"))
        .unwrap();
    let response = HttpRequest::get("http://10.0.0.11:4000/").send().unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "Hello from ns_rifky\n");
    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].peer.ip().to_string(), "10.0.0.10");
    assert_eq!(seen[0].path, "/");
}

#[netns_test(topology = "host_ns", node = "host")]
fn python_http_server_as_in_the_write_up(lab: &Lab) {
    let ns = lab.node("ns_rifky");
    let dir = std::env::temp_dir().join(format!("netns-fixture-www-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.txt"), "served by python\n").unwrap();
    let mut python = ns.command("python3");
    python
        .args(["-m", "http.server", "4000", "--directory"])
        .arg(&dir);
    python
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let server = ns.spawn(python).unwrap();
    ns.wait_for_tcp("10.0.0.11:4000".parse().unwrap(), Duration::from_secs(10))
        .unwrap();
    let listing = lab.node("host").http_get("http://10.0.0.11:4000/").unwrap();
    assert!(
        listing.text().contains("Directory listing for /"),
        "{}",
        listing.text()
    );
    let file = lab
        .node("host")
        .http_get("http://10.0.0.11:4000/index.txt")
        .unwrap();
    assert_eq!(file.text(), "served by python\n");
    // Inside the namespace, localhost is the namespace's own: curl localhost:4000 works there only.
    let inside = ns.http_get("http://127.0.0.1:4000/index.txt").unwrap();
    assert_eq!(inside.status, 200);
    let refused = lab
        .node("host")
        .http_get("http://127.0.0.1:4000/")
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .starts_with("GET http://127.0.0.1:4000/ failed:"),
        "{refused}"
    );
    let pid = server.id();
    drop(server);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "dropping the handle kills and reaps the server"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn background_processes_die_with_the_lab() {
    let lab = Lab::build(&netns_fixture::topology::builtin::get("host_ns").unwrap()).unwrap();
    let ns = lab.node("ns_rifky");
    let mut command = ns.command("sleep");
    command.arg("60");
    let sleeper = ns.spawn(command).unwrap();
    let pid = sleeper.id();
    let inode = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert_eq!(
        inode.to_string_lossy(),
        format!("net:[{}]", ns.netns().inode())
    );
    std::mem::forget(sleeper); // even with its handle leaked, the lab reaps it
    drop(lab);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "sleep {pid} outlived the lab"
    );
}
