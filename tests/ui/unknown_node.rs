use netns_fixture::prelude::*;

#[netns_test(topology = "lan", node = "ns3")]
fn no_such_node() {}

fn main() {}
