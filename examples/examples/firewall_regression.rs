//! A firewall regression suite over a realistic ruleset: the office router of
//! `examples/labs/office.toml` with its rules in `examples/rulesets/router.nft`
//! (default drop, established traffic back in, SSH only from the admin subnet,
//! HTTP and HTTPS forwarded to the DMZ web server, the rest refused inside and
//! dropped towards the internet), checked against the flow table
//! `examples/rulesets/router.flows`.
//!
//! Then the same suite catches a changed rule: someone "simplifies" the SSH rule
//! and opens SSH to everyone. The mismatch table lists exactly the flows that
//! changed, with the router rule each one hit.
//!
//! `cargo run -p examples --example firewall_regression` (exits with 1 unless the
//! ruleset passes and the change is caught)

use netns_fixture::matrix::{Matrix, MatrixReport};
use netns_fixture::topology::Topology;
use netns_fixture::Lab;
use std::process::ExitCode;

const DIR: &str = env!("CARGO_MANIFEST_DIR");

/// The suite: what listens, and what every flow should get.
fn suite() -> Result<Matrix, Box<dyn std::error::Error>> {
    let table = std::fs::read_to_string(format!("{DIR}/rulesets/router.flows"))?;
    Ok(Matrix::from_table("office router", &table)?.explain_with("router"))
}

/// Builds the office lab, loads `rules` into the router, runs the suite.
fn run(topology: &Topology, rules: &str) -> Result<MatrixReport, Box<dyn std::error::Error>> {
    let lab = Lab::build(topology)?;
    lab.node("router").load_nftables(rules)?;
    Ok(suite()?.run(&lab)?)
}

fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let topology = Topology::from_toml_file(format!("{DIR}/labs/office.toml"))?;
    let rules = std::fs::read_to_string(format!("{DIR}/rulesets/router.nft"))?;

    println!("== examples/rulesets/router.nft against examples/rulesets/router.flows\n");
    let report = run(&topology, &rules)?;
    println!("{report}");

    let from = "ip saddr $ADMIN_NET tcp dport 22";
    let changed = rules.replacen(from, "tcp dport 22", 1);
    println!("== the same suite after changing `{from}` to `tcp dport 22`\n");
    let regression = run(&topology, &changed)?;
    println!("{}", regression.mismatch_table());

    let caught = !regression.is_as_expected();
    if !report.is_as_expected() {
        println!("router.nft does not pass its own suite.");
    }
    if !caught {
        println!("The suite did not notice the changed rule.");
    }
    Ok(if report.is_as_expected() && caught {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
