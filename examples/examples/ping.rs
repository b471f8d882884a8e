//! Ping across the `pair` lab (write-up 002), and what an unreachable target gives.
//!
//! `cargo run -p examples --example ping`

use netns_fixture::probes::ping::PingOptions;
use netns_fixture::Lab;
use std::time::Duration;

fn main() -> Result<(), netns_fixture::Error> {
    let lab = Lab::builtin("pair")?;
    let ns1 = lab.node("ns-1");
    let report = ns1.ping("10.0.0.20", &PingOptions::default().count(3))?;
    println!("ns-1$ ping -c 3 10.0.0.20\n{report:#}\n");
    report.assert_all_replied();

    // Nobody has 10.0.0.99: a result with 100% loss, not an error.
    let lost = ns1.ping(
        "10.0.0.99",
        &PingOptions::default()
            .count(1)
            .timeout(Duration::from_millis(300)),
    )?;
    println!("ns-1$ ping -c 1 10.0.0.99\n{lost:#}");
    lost.assert_unreachable();
    Ok(())
}
