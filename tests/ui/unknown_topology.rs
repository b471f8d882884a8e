use netns_fixture::prelude::*;

#[netns_test(topology = "two_server")]
fn typo() {}

fn main() {}
