use netns_fixture::prelude::*;

#[netns_test(topology = "pair", nodes = "ns-1")]
fn misspelt_option() {}

#[netns_test(topology = "pair", timeout = "ten seconds")]
fn unreadable_timeout() {}

#[netns_test(topology = "pair", flavor = "multi_thread")]
fn flavor_on_a_sync_body() {}

#[netns_test(topology = "pair", topology = "lan")]
fn given_twice() {}

#[netns_test(topology = 3)]
fn number_as_topology() {}

fn main() {}
