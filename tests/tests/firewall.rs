//! Firewall regression testing: users' own rulesets loaded with `nft -f`,
//! `iptables-restore` and `iptables`, errors that point at the rule, counters read
//! back, and the regression matrix over the office router's ruleset
//! (examples/rulesets/router.nft in examples/labs/office.toml) — passing, and
//! catching changed rules.

use netns_fixture::matrix::{FlowResult, MatrixReport};
use netns_fixture::prelude::*;
use netns_fixture::probes::reach::Outcome::{self, Accepted, Dropped, Refused};
use netns_fixture::rules::RulesError;
use rstest::rstest;
use std::collections::BTreeSet;
use std::time::Duration;

const ROUTER_NFT: &str = include_str!("../../examples/rulesets/router.nft");
const ROUTER_FLOWS: &str = include_str!("../../examples/rulesets/router.flows");
const ROUTER_NFT_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/rulesets/router.nft"
);
const SHORT: Duration = Duration::from_millis(300);

/// What listens in the office lab, so that "accepted" is possible.
/// The `service` lines of `router.flows`, for suites of single flows.
fn office_services() -> Vec<Service> {
    vec![
        Service::tcp("router", 22),
        Service::udp("router", 53),
        Service::tcp("web", 80),
        Service::tcp("web", 443),
        Service::tcp("web", 22),
        Service::tcp("outside", 80),
    ]
}

/// The office router's regression suite: flows and services, from the table.
fn office_suite() -> Matrix {
    Matrix::from_table("office router", ROUTER_FLOWS).unwrap()
}

/// `router.nft` with `from` replaced by `to` (which must occur exactly once).
fn changed_ruleset(from: &str, to: &str) -> String {
    assert_eq!(
        ROUTER_NFT.matches(from).count(),
        1,
        "`{from}` must occur once in router.nft"
    );
    ROUTER_NFT.replace(from, to)
}

/// `FROM TO` of every flow that differs.
fn mismatched(report: &MatrixReport) -> BTreeSet<String> {
    report
        .mismatches()
        .iter()
        .map(|r: &&FlowResult| format!("{} {}", r.flow().from, r.flow().to))
        .collect()
}

/// The line of `text` (1-based) that contains `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

// ---------------------------------------------------------------- the suite

#[netns_test(topology = "../examples/labs/office.toml")]
fn the_office_router_behaves_as_its_flow_table_says(lab: &Lab) {
    lab.node("router")
        .load_nftables_file(ROUTER_NFT_PATH)
        .unwrap();
    let report = office_suite().run(lab).unwrap();
    println!("{report}");
    report.assert_as_expected();
    assert_eq!(report.results().len(), 12);
    // All flows run at once: two are dropped (each waits the whole 500 ms
    // timeout); one after the other they would take over a second.
    assert!(report.elapsed() < Duration::from_millis(1000), "{report}");
    // Evidence the table shows: the forward reached the web server, seeing the
    // outside client; the LAN's way out was masqueraded.
    let detail = |from: &str, to: &str| {
        let result = report
            .results()
            .iter()
            .find(|r| r.flow().from == from && r.flow().to.to_string() == to)
            .unwrap();
        (result.detail(), result.reached().cloned())
    };
    let (text, reached) = detail("outside", "203.0.113.1:80");
    assert!(text.starts_with("handshake completed in "), "{text}");
    assert!(
        text.ends_with(", reached tcp web:80 from 203.0.113.10"),
        "{text}"
    );
    assert_eq!(reached.unwrap().arrival.local.to_string(), "10.0.3.10:80");
    let (text, _) = detail("lan", "203.0.113.10:80");
    assert!(
        text.ends_with(", reached tcp outside:80 from 203.0.113.1"),
        "{text}"
    );
    let (text, _) = detail("lan", "10.0.1.1:53");
    assert!(
        text.ends_with(", reached udp router:53 from 10.0.1.10"),
        "{text}"
    );
    let (text, _) = detail("outside", "203.0.113.1:22");
    assert_eq!(text, "no answer within 500 ms");
    let (text, _) = detail("lan", "10.0.1.1:123");
    assert!(
        text.starts_with("ICMP destination unreachable (port unreachable) from 10.0.1.1 after "),
        "{text}"
    );
}

#[netns_test(topology = "../examples/labs/office.toml")]
#[rstest]
#[case::ssh_opened_to_everyone(
    "ip saddr $ADMIN_NET tcp dport 22 counter accept",
    "tcp dport 22 counter accept",
    &["lan 10.0.1.1:22", "outside 203.0.113.1:22"],
)]
#[case::https_forward_removed(
    "\t\tiifname $WAN tcp dport 443 counter dnat to $WEB:443 comment \"https forward\"\n",
    "",
    &["outside 203.0.113.1:443"],
)]
#[case::internet_refused_instead_of_dropped(
    "iifname $WAN counter drop",
    "iifname $WAN counter reject",
    &["outside 203.0.113.1:22", "outside 203.0.113.1:53"],
)]
#[case::lan_let_into_the_dmz(
    "iifname $ADMIN oifname $DMZ tcp dport 22",
    "iifname { $LAN, $ADMIN } oifname $DMZ tcp dport 22",
    &["lan 10.0.3.10:22"],
)]
fn the_suite_catches_a_changed_rule(
    #[case] from: &str,
    #[case] to: &str,
    #[case] broken: &[&str],
    lab: &Lab,
) {
    lab.node("router")
        .load_nftables(&changed_ruleset(from, to))
        .unwrap();
    let report = office_suite().run(lab).unwrap();
    let table = report.mismatch_table();
    println!("{table}");
    // Exactly the flows the change broke, all of them, and nothing else.
    let expected: BTreeSet<String> = broken.iter().map(|s| s.to_string()).collect();
    assert_eq!(mismatched(&report), expected, "{table}");
    let differ = if broken.len() == 1 {
        "differs"
    } else {
        "differ"
    };
    assert!(
        table.starts_with(&format!(
            "office router: {} of 12 flows {differ} from what was expected\n  from ",
            broken.len()
        )),
        "{table}"
    );
    for flow in broken {
        let (from, to) = flow.split_once(' ').unwrap();
        assert!(
            table
                .lines()
                .any(|l| l.trim_start().starts_with(from) && l.contains(to)),
            "{flow} missing from\n{table}"
        );
    }
    assert_eq!(
        table.lines().count(),
        2 + broken.len() * 2,
        "one row and its note per flow:\n{table}"
    );
}

#[netns_test(topology = "../examples/labs/office.toml")]
#[should_panic(
    expected = "office router: 2 of 12 flows differ from what was expected\n  from     to              proto  expected  got       detail\n  outside  203.0.113.1:22  tcp    dropped   accepted  handshake completed in "
)]
fn a_failing_suite_panics_with_the_table_of_every_mismatch(lab: &Lab) {
    let opened = changed_ruleset("ip saddr $ADMIN_NET tcp dport 22", "tcp dport 22");
    lab.node("router").load_nftables(&opened).unwrap();
    office_suite().check(lab);
}

#[netns_test(topology = "../examples/labs/office.toml")]
fn a_mismatch_is_explained_by_the_rules_it_hit(lab: &Lab) {
    let opened = changed_ruleset("ip saddr $ADMIN_NET tcp dport 22", "tcp dport 22");
    lab.node("router").load_nftables(&opened).unwrap();
    let report = Matrix::new("ssh")
        .service(Service::tcp("router", 22))
        .flow(Flow::tcp("outside", "203.0.113.1:22", Dropped))
        .flow(Flow::tcp("admin", "10.0.2.1:22", Accepted))
        .explain_with("router")
        .run(lab)
        .unwrap();
    let table = report.mismatch_table();
    println!("{table}");
    let mismatches = report.mismatches();
    assert_eq!(mismatches.len(), 1, "{table}");
    let hits = mismatches[0].rules_hit().unwrap();
    assert_eq!(hits.len(), 1, "{table}");
    assert_eq!(hits[0].node, "router");
    assert_eq!(hits[0].hit.rule.comment.as_deref(), Some("ssh from admin"));
    assert_eq!(
        hits[0].hit.rule.text,
        "tcp dport 22 counter accept comment \"ssh from admin\""
    );
    assert!(
        table.contains("router hit inet filter input, handle 8: tcp dport 22 counter accept comment \"ssh from admin\" (+"),
        "{table}"
    );
}

#[netns_test(topology = "../examples/labs/office.toml")]
#[rstest]
#[case::http_forward("outside", "203.0.113.1:80", Accepted)]
#[case::https_forward("outside", "203.0.113.1:443", Accepted)]
#[case::no_ssh_from_the_internet("outside", "203.0.113.1:22", Dropped)]
#[case::dmz_only_through_the_forwards("outside", "10.0.3.10:80", Refused)]
#[case::ssh_from_admin("admin", "10.0.2.1:22", Accepted)]
#[case::no_ssh_from_the_lan("lan", "10.0.1.1:22", Refused)]
#[case::lan_out_to_the_internet("lan", "outside:80", Accepted)]
fn office_router_tcp_flows(
    #[case] from: &str,
    #[case] to: &str,
    #[case] expected: Outcome,
    lab: &Lab,
) {
    lab.node("router").load_nftables(ROUTER_NFT).unwrap();
    Matrix::new("office router")
        .services(office_services())
        .flow(Flow::tcp(from, to, expected))
        .timeout(SHORT)
        .check(lab);
}

#[netns_test(topology = "../examples/labs/office.toml")]
#[rstest]
#[case::dns_for_the_inside("lan", "10.0.1.1:53", Accepted)]
#[case::dns_at_the_routers_public_address("lan", "203.0.113.1:53", Accepted)]
#[case::no_dns_for_the_internet("outside", "203.0.113.1:53", Dropped)]
#[case::nothing_else_on_the_router("admin", "10.0.2.1:123", Refused)]
fn office_router_udp_flows(
    #[case] from: &str,
    #[case] to: &str,
    #[case] expected: Outcome,
    lab: &Lab,
) {
    lab.node("router").load_nftables(ROUTER_NFT).unwrap();
    Matrix::new("office router")
        .services(office_services())
        .flow(Flow::udp(from, to, expected))
        .timeout(SHORT)
        .check(lab);
}

#[netns_test(topology = "../examples/labs/office.toml")]
fn a_missing_service_is_pointed_out(lab: &Lab) {
    lab.node("router").load_nftables(ROUTER_NFT).unwrap();
    let report = Matrix::new("forgot a service")
        .flow(Flow::tcp("admin", "10.0.2.1:22", Accepted))
        .run(lab)
        .unwrap();
    let result = &report.mismatches()[0];
    assert_eq!(result.got(), Some(Refused));
    assert!(
        result
            .detail()
            .ends_with("(nothing listens on router:22: add Service::tcp(\"router\", 22))"),
        "{}",
        result.detail()
    );
}

// ---------------------------------------------------------------- counters

#[netns_test(topology = "../examples/labs/office.toml")]
fn counters_tell_which_rule_matched(lab: &Lab) {
    let router = lab.node("router");
    router.load_nftables(ROUTER_NFT).unwrap();
    let before = router.ruleset().unwrap();
    assert_eq!(before.rule_with_comment("internet: silence").packets(), 0);
    lab.node("outside")
        .tcp_connect("203.0.113.1:22".parse().unwrap(), SHORT)
        .assert_dropped();
    let after = router.ruleset().unwrap();
    let hits = after.hits_since(&before);
    let described: Vec<String> = hits.iter().map(ToString::to_string).collect();
    assert_eq!(
        described,
        ["inet filter input, handle 11: iifname \"wan\" counter drop comment \"internet: silence\" (+1 packet, 60 bytes)"]
    );
    let silence = after.rule_with_comment("internet: silence");
    assert_eq!((silence.packets(), silence.chain.as_str()), (1, "input"));
    // The listing shows defines resolved, sets and the DNAT rules as nft prints them.
    assert_eq!(
        after
            .rule_matching("dnat to 10.0.3.10:443")
            .comment
            .as_deref(),
        Some("https forward")
    );
    assert_eq!(
        after.rule_with_comment("dns for the inside").text,
        "iifname { \"lan0\", \"admin0\" } udp dport 53 counter accept comment \"dns for the inside\""
    );
    let input = after.chain("inet", "filter", "input").unwrap();
    assert_eq!(input.hook.as_ref().unwrap().policy.as_deref(), Some("drop"));
    println!("{after}");
}

#[netns_test(topology = "pair")]
fn iptables_rules_show_in_the_listing_with_counters_and_comments(lab: &Lab) {
    let server = lab.node("ns-2");
    server
        .iptables_restore(
            "*filter
:INPUT ACCEPT [0:0]
-A INPUT -p tcp --dport 22 -m comment --comment \"no ssh\" -j REJECT --reject-with tcp-reset
-A INPUT -p udp -m multiport --dports 53,123 -j DROP
COMMIT
",
        )
        .unwrap();
    let client = lab.node("ns-1");
    client
        .tcp_connect("10.0.0.20:22".parse().unwrap(), SHORT)
        .assert_refused();
    client
        .udp_request("10.0.0.20:123".parse().unwrap(), b"x", SHORT)
        .assert_dropped();
    let ruleset = server.ruleset().unwrap();
    println!("{ruleset}");
    let ssh = ruleset.rule_with_comment("no ssh");
    assert_eq!(
        (ssh.table.as_str(), ssh.chain.as_str()),
        ("filter", "INPUT")
    );
    assert_eq!(ssh.packets(), 1);
    // nft shows the rule without its comment match; iptables-save has it all.
    assert_eq!(ssh.text, "tcp dport 22 counter reject with tcp reset");
    assert_eq!(
        ssh.iptables.as_deref(),
        Some("-A INPUT -p tcp -m tcp --dport 22 -m comment --comment \"no ssh\" -j REJECT --reject-with tcp-reset")
    );
    let udp = ruleset.rule_matching("--dports 53,123");
    assert_eq!(
        udp.text,
        "meta l4proto udp udp dport { 53, 123 } counter drop"
    );
    assert_eq!(udp.packets(), 1);
    assert_eq!(
        ruleset.rule_matching("udp dport { 53, 123 }").handle,
        udp.handle
    );
}

#[netns_test(topology = "pair")]
fn single_iptables_commands_and_ip6tables(lab: &Lab) {
    let server = lab.node("ns-2");
    server
        .iptables(&[
            "-A",
            "INPUT",
            "-p",
            "tcp",
            "--dport",
            "23",
            "-m",
            "comment",
            "--comment",
            "telnet, never",
            "-j",
            "DROP",
        ])
        .unwrap();
    server
        .ip6tables(&["-A", "INPUT", "-p", "tcp", "--dport", "23", "-j", "DROP"])
        .unwrap();
    let ruleset = server.ruleset().unwrap();
    assert_eq!(
        ruleset
            .rule_with_comment("telnet, never")
            .family
            .to_string(),
        "ip"
    );
    let v6 = ruleset.table("ip6", "filter").unwrap();
    assert_eq!(
        v6.chains[0].rules[0].iptables.as_deref(),
        Some("-A INPUT -p tcp -m tcp --dport 23 -j DROP")
    );
}

// ---------------------------------------------------------------- errors

#[netns_test(topology = "../examples/labs/office.toml")]
fn a_broken_nft_ruleset_names_the_line_and_the_rule(lab: &Lab) {
    let router = lab.node("router");
    let broken = changed_ruleset(
        "counter accept comment \"ssh from admin\"",
        "counter acept comment \"ssh from admin\"",
    );
    let err = router.load_nftables(&broken).unwrap_err();
    let message = err.to_string();
    println!("{message}");
    let line = line_of(&broken, "acept");
    let problem = &err.problems()[0];
    assert_eq!(problem.file, None);
    assert_eq!(problem.line, Some(line));
    assert_eq!(
        problem.rule.as_deref(),
        Some(broken.lines().nth(line - 1).unwrap())
    );
    // nft reads `acept` as the name of something and stumbles on what follows;
    // the columns are those of the original text (tabs count one, `$ADMIN_NET`
    // is not expanded), and the excerpt keeps the tabs so the carets line up.
    assert_eq!(problem.message, "syntax error, unexpected comment");
    let (first, last) = problem.columns.unwrap();
    assert_eq!(
        &problem.rule.as_deref().unwrap()[first - 1..last],
        "comment"
    );
    assert_eq!(
        message,
        format!(
            "node `router`: `nft -f -` rejected the rules:\n  line {line}, column {first}: syntax error, unexpected comment\n      {line} | \t\tip saddr $ADMIN_NET tcp dport 22 counter acept comment \"ssh from admin\"\n         | \t\t{}^^^^^^^",
            " ".repeat(first - 3)
        )
    );
    // nft applies all of a file or none of it.
    assert!(router.ruleset().unwrap().tables().is_empty());
}

/// A file in the temporary directory, removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        let path =
            std::env::temp_dir().join(format!("netns-fixture-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[netns_test(topology = "../examples/labs/office.toml")]
fn a_broken_nft_file_names_the_file(lab: &Lab) {
    let broken = changed_ruleset(
        "define ADMIN_NET = 10.0.2.0/24",
        "define ADMIN_NET = 10.0.2.0/33",
    );
    let file = TempFile::new("router.nft", &broken);
    let err = lab.node("router").load_nftables_file(&file.0).unwrap_err();
    println!("{err}");
    let path = file.0.to_string_lossy().into_owned();
    // nft reports a bad `define` at every use; the error has it once.
    assert_eq!(err.problems().len(), 1, "{err}");
    let problem = &err.problems()[0];
    assert_eq!(problem.file.as_deref(), Some(path.as_str()));
    let line = line_of(&broken, "10.0.2.0/33");
    assert_eq!(problem.line, Some(line));
    assert_eq!(problem.columns, Some((20, 30)));
    assert_eq!(
        problem.rule.as_deref(),
        Some("define ADMIN_NET = 10.0.2.0/33")
    );
    assert_eq!(
        problem.message,
        "Prefix length 33 is invalid for type of 32 bits width"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "node `router`: `nft -f {path}` rejected the rules:\n  {path}:{line}:20: Prefix length 33 is invalid for type of 32 bits width\n      {line} | define ADMIN_NET = 10.0.2.0/33\n         |                    ^^^^^^^^^^^"
        )
    );
}

#[netns_test(topology = "pair")]
fn an_error_from_the_kernel_points_at_the_command(lab: &Lab) {
    let err = lab
        .node("ns-1")
        .load_nftables("add rule inet filter input accept\n")
        .unwrap_err();
    println!("{err}");
    let problem = &err.problems()[0];
    assert_eq!(problem.line, Some(1));
    assert!(
        problem
            .message
            .starts_with("Could not process rule: No such file or directory"),
        "{err}"
    );
    assert_eq!(
        problem.rule.as_deref(),
        Some("add rule inet filter input accept")
    );
}

#[netns_test(topology = "pair")]
fn a_missing_rules_file_is_a_read_error(lab: &Lab) {
    let err = lab
        .node("ns-1")
        .load_nftables_file("/nonexistent/router.nft")
        .unwrap_err();
    assert!(matches!(err, RulesError::Read { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("cannot read rules file /nonexistent/router.nft: "),
        "{err}"
    );
}

#[netns_test(topology = "pair")]
fn a_broken_iptables_restore_names_the_rule_not_the_commit(lab: &Lab) {
    let rules = "*filter
:INPUT DROP [0:0]
-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A INPUT -p tcp --dport 22 -j ACCEPTT
-A INPUT -p tcp --dport 80 -j ACCEPT
COMMIT
";
    let err = lab.node("ns-2").iptables_restore(rules).unwrap_err();
    println!("{err}");
    let problem = &err.problems()[0];
    assert_eq!(problem.line, Some(4));
    assert_eq!(
        problem.rule.as_deref(),
        Some("-A INPUT -p tcp --dport 22 -j ACCEPTT")
    );
    assert_eq!(problem.message, "Chain 'ACCEPTT' does not exist");
    assert_eq!(
        err.to_string(),
        "node `ns-2`: `iptables-restore` rejected the rules:\n  line 4: Chain 'ACCEPTT' does not exist (the tool reported line 6, the COMMIT of the table, where it noticed)\n      4 | -A INPUT -p tcp --dport 22 -j ACCEPTT"
    );
    let err = lab
        .node("ns-2")
        .iptables_restore("*filter\n-A INPUT -p tcp --dprot 22 -j ACCEPT\nCOMMIT\n")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "node `ns-2`: `iptables-restore` rejected the rules:\n  line 2: unknown option \"--dprot\"\n      2 | -A INPUT -p tcp --dprot 22 -j ACCEPT"
    );
}

#[netns_test(topology = "pair")]
fn a_failing_iptables_command_names_its_line(lab: &Lab) {
    let node = lab.node("ns-2");
    let err = node
        .iptables(&["-A", "INPUT", "-p", "tcp", "--dprot", "22", "-j", "ACCEPT"])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "node `ns-2`: `iptables -A INPUT -p tcp --dprot 22 -j ACCEPT` rejected the rules:\n  unknown option \"--dprot\""
    );
    let script = "
        # allow ssh, then a typo
        iptables -A INPUT -p tcp --dport 22 -m comment --comment 'ssh in' -j ACCEPT
        sudo iptables -A INPUT -s 10.0.0.1/33 -j DROP
        iptables -A INPUT -j DROP
    ";
    let err = node.iptables_commands(script).unwrap_err();
    println!("{err}");
    let problem = &err.problems()[0];
    assert_eq!(problem.line, Some(4));
    assert_eq!(
        problem.rule.as_deref(),
        Some("sudo iptables -A INPUT -s 10.0.0.1/33 -j DROP")
    );
    assert_eq!(problem.message, "invalid mask `33' specified");
    // The commands before the failing one were applied, the ones after were not.
    let ruleset = node.ruleset().unwrap();
    assert_eq!(ruleset.rule_with_comment("ssh in").chain, "INPUT");
    assert_eq!(ruleset.rules().count(), 1, "{ruleset}");
    let err = node.iptables_commands("nft add table ip x").unwrap_err();
    assert_eq!(
        err.problems()[0].message,
        "`nft` is not an iptables or ip6tables command (nor a sysctl write)"
    );
}

/// A write-up pasted whole: its sysctl lines are applied in the node, and a line
/// that is none of the known kinds is named before anything is applied.
#[netns_test(topology = "pair")]
fn pasted_write_ups_apply_their_sysctl_lines_and_unknown_lines_apply_nothing(lab: &Lab) {
    let node = lab.node("ns-2");
    let read = |key: &str| {
        node.run(|| std::fs::read_to_string(format!("/proc/sys/{key}")).unwrap())
            .trim()
            .to_string()
    };
    assert_eq!(read("net/ipv4/ip_forward"), "0");
    node.iptables_commands(
        "
        sudo echo 1 > /proc/sys/net/ipv4/ip_forward
        sudo sysctl -w net.ipv4.conf.all.rp_filter=2
        iptables -A FORWARD -j ACCEPT -m comment --comment 'after the sysctls'
    ",
    )
    .unwrap();
    assert_eq!(read("net/ipv4/ip_forward"), "1");
    assert_eq!(read("net/ipv4/conf/all/rp_filter"), "2");
    let before = node.ruleset().unwrap();
    assert_eq!(before.rules().count(), 1, "{before}");

    let err = node
        .iptables_commands(
            "
        iptables -A INPUT -p tcp --dport 22 -j ACCEPT
        echo 0 > /proc/sys/net/ipv4/ip_forward
        ip route add default via 10.0.0.10
    ",
        )
        .unwrap_err();
    let problem = &err.problems()[0];
    assert_eq!(problem.line, Some(4));
    assert_eq!(
        problem.message,
        "`ip` is not an iptables or ip6tables command (nor a sysctl write)"
    );
    assert_eq!(
        node.ruleset().unwrap(),
        before,
        "a rejected script applied rules"
    );
    assert_eq!(
        read("net/ipv4/ip_forward"),
        "1",
        "a rejected script wrote a sysctl"
    );

    let err = node
        .iptables_commands("echo 1 > /proc/sys/kernel/hostname")
        .unwrap_err();
    assert!(err.problems()[0].message.contains("machine-wide"), "{err}");
}

// ---------------------------------------------------------------- services

fn dual_stack_pair() -> netns_fixture::topology::Topology {
    netns_fixture::topology::Topology::builder("dual_stack_pair")
        .node("a", |n| n)
        .node("b", |n| n)
        .link(("a", "eth0", "10.9.0.1/24"), ("b", "eth0", "10.9.0.2/24"))
        .link(
            ("a", "eth1", "2001:db8:9::1/64"),
            ("b", "eth1", "2001:db8:9::2/64"),
        )
        .build()
        .unwrap()
}

#[netns_test(topology = dual_stack_pair)]
fn services_answer_over_ipv4_and_ipv6(lab: &Lab) {
    let report = Matrix::new("dual stack")
        .service(Service::tcp("b", 8080))
        .service(Service::udp("b", 5353))
        .flow(Flow::tcp("a", "10.9.0.2:8080", Accepted))
        .flow(Flow::tcp("a", "[2001:db8:9::2]:8080", Accepted))
        .flow(Flow::udp("a", "10.9.0.2:5353", Accepted))
        .flow(Flow::udp("a", "[2001:db8:9::2]:5353", Accepted))
        .flow(Flow::tcp("a", "[2001:db8:9::2]:8081", Refused))
        .flow(Flow::udp("a", "[2001:db8:9::2]:5354", Refused))
        .run(lab)
        .unwrap();
    println!("{report}");
    report.assert_as_expected();
    let seen: Vec<String> = report
        .results()
        .iter()
        .filter_map(|r| r.reached())
        .map(|r| format!("{} -> {}", r.arrival.peer.ip(), r.arrival.local))
        .collect();
    assert_eq!(
        seen,
        [
            "10.9.0.1 -> 10.9.0.2:8080",
            "2001:db8:9::1 -> [2001:db8:9::2]:8080",
            "10.9.0.1 -> 10.9.0.2:5353",
            "2001:db8:9::1 -> [2001:db8:9::2]:5353",
        ]
    );
}

#[netns_test(topology = "pair")]
fn a_service_echoes_and_stops_even_with_a_connection_open(lab: &Lab) {
    use std::io::{Read, Write};
    let service = Service::tcp("ns-2", 7).start(lab).unwrap();
    let mut stream = lab
        .node("ns-1")
        .run(|| std::net::TcpStream::connect("10.0.0.20:7"))
        .unwrap();
    stream.write_all(b"hello").unwrap();
    let mut echoed = [0u8; 5];
    stream.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"hello");
    assert_eq!(service.arrivals()[0].peer.ip().to_string(), "10.0.0.10");
    let stopping = std::time::Instant::now();
    drop(service);
    assert!(
        stopping.elapsed() < Duration::from_millis(200),
        "{:?}",
        stopping.elapsed()
    );
    // The service closed its end: the client reads the end of the stream.
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    assert_eq!(stream.read(&mut echoed).unwrap(), 0);
}
