use netns_fixture::prelude::*;

#[netns_test(topology = "labs/dangling_link.toml")]
fn dangling_link() {}

#[netns_test(topology = "labs/typo.toml")]
fn typo_in_a_key() {}

#[netns_test(topology = "labs/duplicate_address.toml")]
fn duplicate_address() {}

#[netns_test(topology = "labs/missing.toml")]
fn missing_file() {}

#[netns_test(topology = "../labs/two_servers.toml", node = "routr")]
fn unknown_node_of_a_file() {}

fn main() {}
