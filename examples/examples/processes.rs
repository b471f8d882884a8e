//! Programs inside nodes, like `ip netns exec`: one run to completion, one in the
//! background that the lab kills when it goes.
//!
//! `cargo run -p examples --example processes`

use netns_fixture::Lab;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lab = Lab::builtin("lan")?;
    let ns1 = lab.node("ns1");
    let out = ns1.command("ip").args(["-brief", "address"]).output()?;
    println!(
        "ns1$ ip -brief address\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = ns1.command("ip").args(["route"]).output()?;
    println!("ns1$ ip route\n{}", String::from_utf8_lossy(&out.stdout));

    let internet = lab.node("internet");
    let mut listener = internet.command("python3");
    listener
        .args(["-m", "http.server", "8000", "--bind", "198.51.100.2"])
        .stderr(std::process::Stdio::null());
    let server = internet.spawn(listener)?;
    ns1.wait_for_tcp("198.51.100.2:8000".parse()?, Duration::from_secs(10))?;
    let out = ns1
        .command("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} from %{remote_ip}\\n",
            "http://internet:8000/",
        ])
        .output()?;
    println!(
        "ns1$ curl http://internet:8000/   (through the host's masquerade)\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    println!(
        "python3 runs as pid {} in node `{}`; dropping the lab kills it",
        server.id(),
        server.node()
    );
    Ok(())
}
