use netns_fixture::prelude::*;

#[netns_test(node = "ns1")]
fn no_topology() {}

fn main() {}
