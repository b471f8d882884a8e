//! Write-up 002's `tcpdump -i veth-2 icmp` while ns-1 pings, as library calls;
//! the capture is also written as a pcap file that tcpdump and Wireshark read.
//!
//! `cargo run -p examples --example capture`

use netns_fixture::probes::ping::PingOptions;
use netns_fixture::Lab;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lab = Lab::builtin("pair")?;
    let capture = lab.node("ns-2").capture("veth-2", "icmp")?;
    lab.node("ns-1")
        .ping("10.0.0.20", &PingOptions::default().count(2))?
        .assert_all_replied();
    let captured = capture.stop()?;
    println!("ns-2$ tcpdump -i veth-2 icmp\n{captured}");
    captured.assert_any(
        |p| p.is_icmp_echo_reply_from("10.0.0.20".parse::<std::net::Ipv4Addr>().unwrap()),
        "an echo reply from 10.0.0.20",
    );
    let file = std::env::temp_dir().join("netns-fixture-example.pcap");
    captured.write_pcap(&file)?;
    let out = std::process::Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(&file)
        .output()?;
    println!(
        "$ tcpdump -n -r {}\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout)
    );
    std::fs::remove_file(&file)?;
    Ok(())
}
