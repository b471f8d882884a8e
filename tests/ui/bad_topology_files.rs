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

#[netns_test(topology = "labs/firewall_unknown_interface.toml")]
fn firewall_names_an_interface_the_node_lacks() {}

#[netns_test(topology = "labs/firewall_interface_of_another_node.toml")]
fn firewall_names_an_interface_of_another_node() {}

#[netns_test(topology = "labs/bad_prefix.toml")]
fn prefix_too_long() {}

#[netns_test(topology = "labs/bad_masquerade_prefix.toml")]
fn masquerade_prefix_too_long() {}

#[netns_test(topology = "labs/bad_port_forward.toml")]
fn port_forward_target_without_port() {}

#[netns_test(topology = "labs/port_forward_to_a_node.toml")]
fn port_forward_target_names_a_node() {}

#[netns_test(topology = "labs/unknown_link_key.toml")]
fn unknown_key_in_a_link() {}

#[netns_test(topology = "labs/unknown_firewall_key.toml")]
fn unknown_key_in_a_firewall() {}

#[netns_test(topology = "labs/unknown_top_level_key.toml")]
fn unknown_top_level_key() {}

#[netns_test(topology = "labs/sysctl_outside_net.toml")]
fn sysctl_key_outside_proc_sys_net() {}

fn main() {}
