use netns_fixture::prelude::*;

#[netns_test(topology = "pair")]
fn extra_parameter(lab: &Lab, port: u16) {}

#[netns_test(topology = "pair")]
fn lab_by_value(lab: Lab) {}

#[netns_test(topology = "pair")]
#[test]
fn doubled_test_attribute() {}

#[netns_test(topology = "pair")]
fn generic<T>() {}

fn main() {}
