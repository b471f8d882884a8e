//! What a [`crate::matrix::Matrix`] run found: each flow's outcome with its
//! evidence, and a table that names every flow that differs from what was expected.

use super::flow::Flow;
use super::service::{Arrival, Service};
use super::table::TextTable;
use crate::probes::ping::{Rtt, Span};
use crate::probes::reach::{Evidence, Outcome, Reach};
use crate::rules::RuleHit;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Which service a flow reached, and what it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reached {
    /// The service.
    pub service: Service,
    /// The connection or datagram as it arrived (after NAT).
    pub arrival: Arrival,
}

/// A rule whose counter a flow moved, on which node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRuleHit {
    /// The node whose ruleset it is.
    pub node: String,
    /// The rule and how much its counter went up.
    pub hit: RuleHit,
}

/// The result of one flow.
#[derive(Debug, Clone)]
pub struct FlowResult {
    pub(crate) flow: Flow,
    pub(crate) target: SocketAddr,
    pub(crate) probe: Result<Reach, String>,
    pub(crate) reached: Option<Reached>,
    pub(crate) hint: Option<String>,
    pub(crate) again: Option<Result<Reach, String>>,
    pub(crate) rules_hit: Option<Vec<NodeRuleHit>>,
}

impl FlowResult {
    /// The flow.
    pub fn flow(&self) -> &Flow {
        &self.flow
    }

    /// The address the flow went to (a node name resolved).
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// What happened, with the evidence; `None` if the check itself could not
    /// run (see [`FlowResult::error`]).
    pub fn reach(&self) -> Option<&Reach> {
        self.probe.as_ref().ok()
    }

    /// Why the check could not run, if it could not.
    pub fn error(&self) -> Option<&str> {
        self.probe.as_ref().err().map(String::as_str)
    }

    /// The outcome, if the check ran.
    pub fn got(&self) -> Option<Outcome> {
        self.reach().map(Reach::outcome)
    }

    /// Whether the outcome is the expected one.
    pub fn is_as_expected(&self) -> bool {
        self.got() == Some(self.flow.expected)
    }

    /// The service the flow reached, if it was accepted by one of the matrix's
    /// services: which one, and the source address it saw.
    pub fn reached(&self) -> Option<&Reached> {
        self.reached.as_ref()
    }

    /// For a flow that differed, with [`crate::matrix::Matrix::explain_with`]:
    /// the rules whose counters it moved when run again alone.
    pub fn rules_hit(&self) -> Option<&[NodeRuleHit]> {
        self.rules_hit.as_deref()
    }

    /// The evidence in a few words: `handshake completed in 0.084 ms, reached
    /// tcp web:80 from 203.0.113.10`, `no answer within 300 ms`.
    pub fn detail(&self) -> String {
        let mut detail = match &self.probe {
            Err(e) => format!("the check failed: {e}"),
            Ok(reach) => describe(reach),
        };
        if let Some(reached) = &self.reached {
            detail.push_str(&format!(
                ", reached {} from {}",
                reached.service,
                reached.arrival.peer.ip()
            ));
        }
        if let Some(hint) = &self.hint {
            detail.push_str(&format!(" ({hint})"));
        }
        detail
    }

    fn cells(&self) -> Vec<String> {
        vec![
            self.flow.from.clone(),
            self.flow.to.to_string(),
            self.flow.protocol.to_string(),
            self.flow.expected.to_string(),
            self.got().map_or("error".to_string(), |o| o.to_string()),
            self.detail(),
        ]
    }

    fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if let Some(note) = &self.flow.note {
            notes.push(format!("({note})"));
        }
        if let Some(again) = &self.again {
            let differs = again.as_ref().ok().map(Reach::outcome) != self.got();
            let text = match again {
                Ok(reach) => format!("{} ({})", reach.outcome(), describe(reach)),
                Err(e) => format!("the check failed: {e}"),
            };
            if differs {
                notes.push(format!("run again alone: {text}"));
            }
        }
        if let Some(hits) = &self.rules_hit {
            if hits.is_empty() {
                notes.push(
                    "no counted rule moved: a chain policy or a rule without `counter` decided"
                        .into(),
                );
            }
            for hit in hits {
                notes.push(format!("{} hit {}", hit.node, hit.hit));
            }
        }
        notes
    }
}

/// `handshake completed in 0.084 ms`, `connection refused, RST after 0.120 ms`,
/// `no answer within 300 ms`.
pub(crate) fn describe(reach: &Reach) -> String {
    match reach.evidence() {
        Evidence::Connected { .. } => format!("handshake completed in {}", Rtt(reach.elapsed())),
        Evidence::Reply { bytes } => {
            format!(
                "answer of {} bytes in {}",
                bytes.len(),
                Rtt(reach.elapsed())
            )
        }
        Evidence::NoAnswer { .. } => reach.evidence().to_string(),
        evidence => format!("{evidence} after {}", Rtt(reach.elapsed())),
    }
}

/// The outcome of every flow of a [`crate::matrix::Matrix`].
///
/// `Display` gives the summary and every flow; [`MatrixReport::mismatch_table`]
/// (what [`MatrixReport::assert_as_expected`] panics with) only the flows that
/// differ:
///
/// ```text
/// office router: 2 of 12 flows differ from what was expected
///   from     to              proto  expected  got       detail
///   outside  203.0.113.1:22  tcp    dropped   accepted  handshake completed in 0.083 ms, reached tcp router:22 from 203.0.113.10
///            (no ssh from the internet, not even a refusal)
///   lan      10.0.1.1:22     tcp    refused   accepted  handshake completed in 0.055 ms, reached tcp router:22 from 10.0.1.10
///            (no ssh from the lan)
/// ```
#[derive(Debug, Clone)]
pub struct MatrixReport {
    pub(crate) name: String,
    pub(crate) results: Vec<FlowResult>,
    pub(crate) elapsed: Duration,
    pub(crate) timeout: Duration,
}

impl MatrixReport {
    /// The matrix's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every flow's result, in the matrix's order.
    pub fn results(&self) -> &[FlowResult] {
        &self.results
    }

    /// The flows whose outcome differs from the expected one (or whose check
    /// could not run).
    pub fn mismatches(&self) -> Vec<&FlowResult> {
        self.results
            .iter()
            .filter(|r| !r.is_as_expected())
            .collect()
    }

    /// Whether every flow had its expected outcome.
    pub fn is_as_expected(&self) -> bool {
        self.results.iter().all(FlowResult::is_as_expected)
    }

    /// How long the run took, services included.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// The summary line and a table of the flows that differ (just the summary
    /// if none does).
    ///
    /// ```no_run
    /// # use netns_fixture::matrix::{Flow, Matrix};
    /// # use netns_fixture::probes::reach::Outcome;
    /// # let lab = netns_fixture::Lab::builtin("two_servers").unwrap();
    /// let report = Matrix::new("router")
    ///     .flow(Flow::tcp("client", "10.0.0.233:22", Outcome::Accepted))
    ///     .run(&lab)
    ///     .unwrap();
    /// assert_eq!(
    ///     report.mismatch_table().lines().next(),
    ///     Some("router: 1 of 1 flow differs from what was expected")
    /// );
    /// ```
    pub fn mismatch_table(&self) -> String {
        let mismatches = self.mismatches();
        let mut out = self.summary();
        out.push('\n');
        if !mismatches.is_empty() {
            out.push_str(&table(&mismatches));
        }
        out
    }

    /// Panics unless every flow had its expected outcome; the message is
    /// [`MatrixReport::mismatch_table`]: every flow that differs, with what it
    /// got and why.
    #[track_caller]
    pub fn assert_as_expected(&self) {
        if !self.is_as_expected() {
            panic!("{}", self.mismatch_table());
        }
    }

    fn summary(&self) -> String {
        let total = self.results.len();
        let differ = self.mismatches().len();
        let flows = if total == 1 { "flow" } else { "flows" };
        match differ {
            0 => format!("{}: all {total} {flows} as expected", self.name),
            1 => format!(
                "{}: 1 of {total} {flows} differs from what was expected",
                self.name
            ),
            n => format!(
                "{}: {n} of {total} {flows} differ from what was expected",
                self.name
            ),
        }
    }
}

/// The summary, how long it took, and every flow (`*` marks those that differ).
impl fmt::Display for MatrixReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} (ran in {:.0} ms, timeout {})",
            self.summary(),
            self.elapsed.as_secs_f64() * 1000.0,
            Span(self.timeout)
        )?;
        let all: Vec<&FlowResult> = self.results.iter().collect();
        let mut rendered = String::new();
        for (line, mark) in table(&all).lines().zip(marks(&all)) {
            rendered.push_str(mark);
            rendered.push_str(line.strip_prefix("  ").unwrap_or(line));
            rendered.push('\n');
        }
        f.write_str(&rendered)
    }
}

/// A mark per rendered line: `* ` before the row of a flow that differs.
fn marks<'a>(results: &[&FlowResult]) -> Vec<&'a str> {
    let mut marks = vec!["  "];
    for result in results {
        marks.push(if result.is_as_expected() { "  " } else { "* " });
        marks.extend(std::iter::repeat_n("  ", result.notes().len()));
    }
    marks
}

fn table(results: &[&FlowResult]) -> String {
    let mut table = TextTable::new(&["from", "to", "proto", "expected", "got", "detail"]);
    for result in results {
        table.row(result.cells(), result.notes());
    }
    table.render("  ")
}
