//! Why rules could not be loaded or read back, and how the rule tools' own error
//! messages are turned into problems that carry the rule's text and line.
//!
//! What the tools print (nftables 1.0.6, iptables 1.8.9 nf_tables backend):
//!
//! - `nft -f FILE`: one block per error, `FILE:LINE:FIRST-LAST: Error: MESSAGE`,
//!   then the offending line and a caret line under columns FIRST..=LAST (both
//!   1-based). A syntax error is often followed by more errors that only follow
//!   from it. Input read from standard input is called `/dev/stdin`. Errors
//!   without a place (a file that cannot be opened) are `Error: MESSAGE` alone.
//! - `iptables-restore`: `iptables-restore v1.8.9 (nf_tables): MESSAGE` then
//!   `Error occurred at line: N`; or `iptables-restore: line N failed: MESSAGE`;
//!   or `iptables-restore: COMMIT expected at line N`. With the nf_tables backend a
//!   jump to a chain that does not exist is only noticed when the table is
//!   committed, so it is reported at the `COMMIT` line: the problem then points at
//!   the rule that jumps there instead, and says where the tool pointed.
//! - `iptables ARGS`: `iptables v1.8.9 (nf_tables): MESSAGE` or
//!   `iptables: MESSAGE`, followed by a ``Try `iptables -h'`` hint.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why rules could not be loaded into a node, or its ruleset read back.
///
/// ```no_run
/// use netns_fixture::rules::RulesError;
/// let lab = netns_fixture::Lab::builtin("pair").unwrap();
/// let err = lab.node("ns-1").load_nftables("table inet t { chain c { tcp dport 22 acept } }").unwrap_err();
/// let problem = &err.problems()[0];
/// assert_eq!(problem.line, Some(1));
/// assert!(problem.message.starts_with("syntax error"));
/// println!("{err}");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum RulesError {
    /// The rule tool ran and refused the rules; nothing of them was applied
    /// (`nft -f` and `iptables-restore` apply a whole file or nothing;
    /// [`crate::Node::iptables_commands`] stops at the first failing command,
    /// keeping the ones before it).
    Rejected(Rejection),
    /// The rule tool could not be started (not installed?).
    Tool {
        /// The node it was to run in.
        node: String,
        /// The command line.
        command: String,
        /// Why it could not run.
        source: io::Error,
    },
    /// A rules file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// `nft list ruleset` printed something this library does not understand.
    Listing {
        /// The node.
        node: String,
        /// The line of the listing (1-based).
        line: usize,
        /// Its text.
        text: String,
        /// What was expected there.
        why: String,
    },
}

/// Rules a tool refused: which command, and each problem it reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The node the rules were for.
    pub node: String,
    /// The command that refused them, e.g. `nft -f /etc/nftables.conf` or
    /// `iptables-restore` (rules given as text go to the tool's standard input).
    pub command: String,
    /// What the tool reported, in its order. Never empty.
    pub problems: Vec<RuleProblem>,
    /// The tool's complete error output.
    pub stderr: String,
}

/// One problem a rule tool reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleProblem {
    /// The file the problem is in, as the tool named it; `None` for rules given
    /// as text.
    pub file: Option<String>,
    /// The line (1-based), when the tool said.
    pub line: Option<usize>,
    /// The columns of the offending text (1-based, inclusive), when the tool said.
    pub columns: Option<(usize, usize)>,
    /// The text of the offending line (a rule, a command, or a `COMMIT`).
    pub rule: Option<String>,
    /// The tool's message, e.g. `syntax error, unexpected newline`.
    pub message: String,
    /// Anything this library adds, e.g. that the tool pointed at another line.
    pub note: Option<String>,
}

impl RulesError {
    /// The problems the tool reported (empty unless the rules were rejected).
    ///
    /// ```no_run
    /// let lab = netns_fixture::Lab::builtin("pair").unwrap();
    /// let err = lab.node("ns-1").iptables_restore("*filter\n-A INPUT -j NOPE\nCOMMIT\n").unwrap_err();
    /// assert_eq!(err.problems()[0].rule.as_deref(), Some("-A INPUT -j NOPE"));
    /// ```
    pub fn problems(&self) -> &[RuleProblem] {
        match self {
            RulesError::Rejected(rejection) => &rejection.problems,
            _ => &[],
        }
    }
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RulesError::Rejected(rejection) => rejection.fmt(f),
            RulesError::Tool {
                node,
                command,
                source,
            } => {
                write!(f, "node `{node}`: cannot run `{command}`: {source}")?;
                if source.kind() == io::ErrorKind::NotFound {
                    f.write_str(" (install nftables and iptables: scripts/setup-debian.sh)")?;
                }
                Ok(())
            }
            RulesError::Read { path, source } => {
                write!(f, "cannot read rules file {}: {source}", path.display())
            }
            RulesError::Listing {
                node,
                line,
                text,
                why,
            } => write!(
                f,
                "node `{node}`: cannot understand line {line} of `nft -a list ruleset` ({why}): {text}"
            ),
        }
    }
}

impl std::error::Error for RulesError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RulesError::Tool { source, .. } | RulesError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<RulesError> for crate::Error {
    fn from(e: RulesError) -> Self {
        crate::Error::Rules(e)
    }
}

/// ```text
/// node `router`: `nft -f rulesets/router.nft` rejected the rules:
///   rulesets/router.nft:5:23: syntax error, unexpected newline
///       5 |     tcp dport 22 acept
///         |                       ^
/// ```
impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "node `{}`: `{}` rejected the rules:",
            self.node, self.command
        )?;
        for problem in &self.problems {
            write!(f, "\n  {}", problem.to_string().replace('\n', "\n  "))?;
        }
        Ok(())
    }
}

impl fmt::Display for RuleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line, self.columns) {
            (Some(file), Some(line), Some((first, _))) => write!(f, "{file}:{line}:{first}: ")?,
            (Some(file), Some(line), None) => write!(f, "{file}:{line}: ")?,
            (Some(file), None, _) => write!(f, "{file}: ")?,
            (None, Some(line), Some((first, _))) => write!(f, "line {line}, column {first}: ")?,
            (None, Some(line), None) => write!(f, "line {line}: ")?,
            (None, None, _) => {}
        }
        f.write_str(&self.message)?;
        if let Some(note) = &self.note {
            write!(f, " ({note})")?;
        }
        // The excerpt, as nft shows it, when the problem has a line.
        if let (Some(rule), Some(line)) = (&self.rule, self.line) {
            let number = line.to_string();
            let gutter = " ".repeat(number.len());
            write!(f, "\n    {number} | {rule}")?;
            if let Some((first, last)) = self.columns {
                // Copy tabs so that the carets line up under the text.
                let lead: String = rule
                    .chars()
                    .take(first.saturating_sub(1))
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                let carets = "^".repeat(last.saturating_sub(first) + 1);
                write!(f, "\n    {gutter} | {lead}{carets}")?;
            }
        }
        Ok(())
    }
}

/// The rules given to a tool, to look lines up in.
pub(crate) struct Input<'a> {
    /// How the tool names the input in its messages (`/dev/stdin` or the path).
    pub tool_name: &'a str,
    /// The file to report, `None` for text.
    pub file: Option<&'a str>,
    /// The text.
    pub text: &'a str,
}

impl Input<'_> {
    fn line(&self, number: usize) -> Option<String> {
        self.text
            .lines()
            .nth(number.checked_sub(1)?)
            .map(|l| l.trim_end().to_string())
    }
}

/// The problems in `nft -f`'s error output.
pub(crate) fn nft_problems(stderr: &str, input: &Input<'_>) -> Vec<RuleProblem> {
    let mut problems = Vec::new();
    let mut lines = stderr.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some((place, message)) = split_once_any(line, &[": Error: ", ": Warning: "]) {
            if line.contains(": Warning: ") {
                // Skip a warning's excerpt: only errors make nft fail.
                skip_excerpt(&mut lines);
                continue;
            }
            let (file, number, columns) = parse_place(place);
            let printed = match lines.peek() {
                Some(next) if !is_header(next) => lines.next().map(|l| l.trim_end().to_string()),
                _ => None,
            };
            if let Some(next) = lines.peek() {
                if next.trim_start().starts_with('^') {
                    lines.next();
                }
            }
            let ours = file.as_deref() == Some(input.tool_name);
            let rule = match (ours, number) {
                (true, Some(n)) => input.line(n).or(printed),
                _ => printed,
            };
            let file = if ours {
                input.file.map(str::to_string)
            } else {
                file
            };
            problems.push(RuleProblem {
                file,
                line: number,
                columns,
                rule,
                message: message.trim().to_string(),
                note: None,
            });
        } else if let Some(message) = line.strip_prefix("Error: ") {
            problems.push(RuleProblem {
                file: input.file.map(str::to_string),
                line: None,
                columns: None,
                rule: None,
                message: message.trim().to_string(),
                note: None,
            });
        } else if let Some(last) = problems.last_mut() {
            // A message that goes on over more lines.
            if !line.trim().is_empty() {
                last.message.push(' ');
                last.message.push_str(line.trim());
            }
        }
    }
    if problems.is_empty() {
        problems.push(whole_output(stderr, input.file));
    }
    // nft reports a bad `define` once per use of the variable: once is enough.
    let mut distinct: Vec<RuleProblem> = Vec::with_capacity(problems.len());
    for problem in problems {
        if !distinct.contains(&problem) {
            distinct.push(problem);
        }
    }
    distinct
}

fn is_header(line: &str) -> bool {
    line.starts_with("Error: ") || line.contains(": Error: ") || line.contains(": Warning: ")
}

fn skip_excerpt<'a>(lines: &mut std::iter::Peekable<impl Iterator<Item = &'a str>>) {
    for _ in 0..2 {
        match lines.peek() {
            Some(next) if !is_header(next) => {
                lines.next();
            }
            _ => break,
        }
    }
}

fn split_once_any<'a>(line: &'a str, separators: &[&str]) -> Option<(&'a str, &'a str)> {
    separators
        .iter()
        .filter_map(|s| line.find(s).map(|i| (i, s.len())))
        .min()
        .map(|(i, len)| (&line[..i], &line[i + len..]))
}

/// `FILE:LINE:FIRST-LAST` (the file may itself contain colons).
fn parse_place(place: &str) -> (Option<String>, Option<usize>, Option<(usize, usize)>) {
    let mut parts = place.rsplitn(3, ':');
    let (Some(columns), Some(line), Some(file)) = (parts.next(), parts.next(), parts.next()) else {
        return (Some(place.to_string()), None, None);
    };
    let Ok(line) = line.parse::<usize>() else {
        return (Some(place.to_string()), None, None);
    };
    let columns = columns.split_once('-').and_then(|(a, b)| {
        let first: usize = a.parse().ok()?;
        // A span over several lines ends `LINE:COLUMN`; keep the first line's part.
        let last = b.parse().unwrap_or(first);
        Some((first, last.max(first)))
    });
    (Some(file.to_string()), Some(line), columns)
}

fn whole_output(stderr: &str, file: Option<&str>) -> RuleProblem {
    let text = stderr.trim();
    RuleProblem {
        file: file.map(str::to_string),
        line: None,
        columns: None,
        rule: None,
        message: if text.is_empty() {
            "failed without a message".into()
        } else {
            text.lines().map(str::trim).collect::<Vec<_>>().join(" ")
        },
        note: None,
    }
}

/// The problems in `iptables-restore`'s (or `ip6tables-restore`'s) error output.
pub(crate) fn restore_problems(stderr: &str, input: &Input<'_>) -> Vec<RuleProblem> {
    let mut message = Vec::new();
    let mut reported_line = None;
    for line in stderr.lines().map(str::trim) {
        if line.is_empty() || line.starts_with("Try `") {
            continue;
        }
        if let Some(n) = line.strip_prefix("Error occurred at line:") {
            reported_line = n.trim().parse::<usize>().ok();
            continue;
        }
        let line = strip_tool_prefix(line);
        // `line N failed[: MESSAGE]` and `COMMIT expected at line N`.
        if let Some(rest) = line.strip_prefix("line ") {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let (Ok(n), Some(after)) = (digits.parse(), rest.get(digits.len()..)) {
                if let Some(what) = after.strip_prefix(" failed") {
                    reported_line = Some(n);
                    let what = what.trim_start_matches(':').trim();
                    message.push(if what.is_empty() {
                        "the tool could not apply this line".to_string()
                    } else {
                        what.to_string()
                    });
                    continue;
                }
            }
        }
        if let Some(at) = line.find(" at line ") {
            if let Ok(n) = line[at + " at line ".len()..].trim().parse() {
                reported_line = Some(n);
                message.push(line[..at].to_string());
                continue;
            }
        }
        message.push(line.to_string());
    }
    if message.is_empty() {
        return vec![whole_output(stderr, input.file)];
    }
    let mut problem = RuleProblem {
        file: input.file.map(str::to_string),
        line: reported_line,
        columns: None,
        rule: reported_line.and_then(|n| input.line(n)),
        message: message.join("; "),
        note: None,
    };
    if let Some(n) = reported_line {
        if let Some((rule_line, rule)) = jump_to_missing_chain(input.text, n, &problem.message) {
            problem.note = Some(format!(
                "the tool reported line {n}, the COMMIT of the table, where it noticed"
            ));
            problem.line = Some(rule_line);
            problem.rule = Some(rule);
        }
    }
    vec![problem]
}

/// `iptables-restore v1.8.9 (nf_tables): X` and `iptables-restore: X` → `X`.
fn strip_tool_prefix(line: &str) -> &str {
    let tools = [
        "ip6tables-restore",
        "iptables-restore",
        "ip6tables",
        "iptables",
    ];
    for tool in tools {
        if let Some(rest) = line.strip_prefix(tool) {
            if let Some(i) = rest.find(": ") {
                if rest[..i].is_empty() || rest[..i].starts_with(" v") {
                    let rest = &rest[i + 2..];
                    // `iptables-restore v1.8.9 (nf_tables): iptables-restore: line 1 ...`
                    return strip_tool_prefix(rest);
                }
            }
        }
    }
    line
}

/// When `iptables-restore` blames line `reported`, a `COMMIT`, for `Chain 'X' does
/// not exist`: the first rule of that table's section that jumps to `X`.
fn jump_to_missing_chain(text: &str, reported: usize, message: &str) -> Option<(usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    if lines.get(reported.checked_sub(1)?)?.trim() != "COMMIT" {
        return None;
    }
    let chain = message
        .strip_prefix("Chain '")?
        .split('\'')
        .next()
        .filter(|c| !c.is_empty())?;
    let start = lines[..reported - 1]
        .iter()
        .rposition(|l| l.trim_start().starts_with('*'))
        .unwrap_or(0);
    (start..reported - 1).find_map(|i| {
        let words = super::words::split(lines[i]).ok()?;
        let jumps = words
            .windows(2)
            .any(|w| matches!(w[0].as_str(), "-j" | "--jump" | "-g" | "--goto") && w[1] == chain);
        jumps.then(|| (i + 1, lines[i].trim_end().to_string()))
    })
}

/// The message of a failed `iptables ARGS` command.
pub(crate) fn command_problem(stderr: &str, command: &str) -> RuleProblem {
    let message: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Try `"))
        .map(strip_tool_prefix)
        .collect();
    RuleProblem {
        file: None,
        line: None,
        columns: None,
        rule: Some(command.to_string()),
        message: if message.is_empty() {
            "failed without a message".into()
        } else {
            message.join("; ")
        },
        note: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULESET: &str = "table inet filter {
  chain input {
    type filter hook input priority 0; policy drop;
    ct state established,related accept
    tcp dport 22 acept
  }
}
";

    #[test]
    fn nft_syntax_error_points_at_the_rule() {
        let stderr = "/dev/stdin:5:23-23: Error: syntax error, unexpected newline\n    tcp dport 22 acept\n                      ^\n";
        let input = Input {
            tool_name: "/dev/stdin",
            file: None,
            text: RULESET,
        };
        let problems = nft_problems(stderr, &input);
        assert_eq!(
            problems,
            [RuleProblem {
                file: None,
                line: Some(5),
                columns: Some((23, 23)),
                rule: Some("    tcp dport 22 acept".into()),
                message: "syntax error, unexpected newline".into(),
                note: None,
            }]
        );
        assert_eq!(
            problems[0].to_string(),
            "line 5, column 23: syntax error, unexpected newline\n    5 |     tcp dport 22 acept\n      |                       ^"
        );
    }

    #[test]
    fn nft_errors_in_files_and_without_place() {
        let stderr = "/etc/fw/router.nft:3:11-20: Error: Could not resolve hostname: Name or service not known\n ip saddr 10.0.0.300 accept\n          ^^^^^^^^^^\n/etc/fw/other.nft:1:13-16: Error: Could not process rule: No such file or directory\nadd rule ip nope c accept\n            ^^^^\nError: Could not open file \"x\": No such file or directory\n";
        let input = Input {
            tool_name: "/etc/fw/router.nft",
            file: Some("/etc/fw/router.nft"),
            text: "table ip t {\n chain c {\n ip saddr 10.0.0.300 accept\n }\n}\n",
        };
        let problems = nft_problems(stderr, &input);
        assert_eq!(problems.len(), 3);
        assert_eq!(problems[0].file.as_deref(), Some("/etc/fw/router.nft"));
        assert_eq!(problems[0].columns, Some((11, 20)));
        assert_eq!(
            problems[0].rule.as_deref(),
            Some(" ip saddr 10.0.0.300 accept")
        );
        assert_eq!(
            problems[0].to_string(),
            "/etc/fw/router.nft:3:11: Could not resolve hostname: Name or service not known\n    3 |  ip saddr 10.0.0.300 accept\n      |           ^^^^^^^^^^"
        );
        // An included file: the line nft printed.
        assert_eq!(problems[1].file.as_deref(), Some("/etc/fw/other.nft"));
        assert_eq!(
            problems[1].rule.as_deref(),
            Some("add rule ip nope c accept")
        );
        assert_eq!(problems[2].line, None);
        assert_eq!(
            problems[2].message,
            "Could not open file \"x\": No such file or directory"
        );
    }

    fn restore(stderr: &str, text: &str) -> RuleProblem {
        let input = Input {
            tool_name: "/dev/stdin",
            file: None,
            text,
        };
        let mut problems = restore_problems(stderr, &input);
        assert_eq!(problems.len(), 1);
        problems.remove(0)
    }

    #[test]
    fn iptables_restore_formats() {
        let text = "*filter\n-A INPUT -p tcp --dprot 22 -j ACCEPT\nCOMMIT\n";
        let p = restore("iptables-restore v1.8.9 (nf_tables): unknown option \"--dprot\"\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", text);
        assert_eq!(p.line, Some(2));
        assert_eq!(p.message, "unknown option \"--dprot\"");
        assert_eq!(
            p.rule.as_deref(),
            Some("-A INPUT -p tcp --dprot 22 -j ACCEPT")
        );

        let text = "*filter\n-A NOPE -j ACCEPT\nCOMMIT\n";
        let p = restore(
            "iptables-restore: line 2 failed: No chain/target/match by that name.\n",
            text,
        );
        assert_eq!(
            (p.line, p.message.as_str()),
            (Some(2), "No chain/target/match by that name.")
        );
        assert_eq!(p.rule.as_deref(), Some("-A NOPE -j ACCEPT"));

        let text = "*filter\n-A INPUT -j ACCEPT\n";
        let p = restore("iptables-restore: COMMIT expected at line 3\n", text);
        assert_eq!((p.line, p.message.as_str()), (Some(3), "COMMIT expected"));

        let text = "*nonsense\nCOMMIT\n";
        let p = restore("iptables-restore v1.8.9 (nf_tables): iptables-restore: line 1 table name 'nonsense' invalid\nError occurred at line: 1\n", text);
        assert_eq!(p.line, Some(1));
        assert_eq!(p.message, "line 1 table name 'nonsense' invalid");
    }

    #[test]
    fn a_missing_chain_is_blamed_on_the_rule_that_jumps_there() {
        let text = "*filter\n:INPUT DROP [0:0]\n-A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT\n-A INPUT -p tcp --dport 22 -j ACCEPTT\nCOMMIT\n";
        let p = restore("iptables-restore v1.8.9 (nf_tables): Chain 'ACCEPTT' does not exist\nError occurred at line: 5\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n", text);
        assert_eq!(p.line, Some(4));
        assert_eq!(
            p.rule.as_deref(),
            Some("-A INPUT -p tcp --dport 22 -j ACCEPTT")
        );
        assert_eq!(
            p.to_string(),
            "line 4: Chain 'ACCEPTT' does not exist (the tool reported line 5, the COMMIT of the table, where it noticed)\n    4 | -A INPUT -p tcp --dport 22 -j ACCEPTT"
        );
    }

    #[test]
    fn iptables_command_messages() {
        let p = command_problem(
            "iptables v1.8.9 (nf_tables): unknown option \"--dprot\"\nTry `iptables -h' or 'iptables --help' for more information.\n",
            "iptables -A INPUT -p tcp --dprot 22 -j ACCEPT",
        );
        assert_eq!(p.message, "unknown option \"--dprot\"");
        let p = command_problem(
            "iptables: No chain/target/match by that name.\n",
            "iptables -A NOPE -j ACCEPT",
        );
        assert_eq!(p.message, "No chain/target/match by that name.");
    }
}
