//! Rules under test: load a user's own firewall into a node with the real tools —
//! `nft -f`, `iptables-restore`, `iptables` — exactly as on a real machine, and
//! read the node's ruleset back with its counters to see which rule matched.
//!
//! ```no_run
//! use netns_fixture::prelude::*;
//!
//! #[netns_test(topology = "pair", node = "ns-1")]
//! fn ssh_is_rejected_by_the_rule_that_says_so(lab: &Lab) {
//!     let server = lab.node("ns-2");
//!     server.load_nftables_file("rulesets/server.nft").unwrap();
//!     tcp_connect("10.0.0.20:22".parse().unwrap(), std::time::Duration::from_millis(300))
//!         .assert_refused();
//!     assert_eq!(server.ruleset().unwrap().rule_with_comment("no ssh").packets(), 1);
//! }
//! ```
//!
//! Errors from the tools come back as [`RulesError::Rejected`], with each
//! problem's file, line, columns and the offending rule's text (see
//! [`RuleProblem`]). These methods need the `nft` binary (package `nftables`),
//! and `iptables` (package `iptables`, nf_tables backend) for the iptables ones;
//! the rest of the library needs neither.

mod error;
mod listing;
mod words;

pub use error::{Rejection, RuleProblem, RulesError};
pub use listing::{
    Chain, Counter, Family, Hook, ListingError, Rule, RuleHit, RuleLookupError, Ruleset, Table,
};

use crate::Node;
use error::Input;
use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

impl Node {
    /// Loads an nftables ruleset given as text into this node, like
    /// `nft -f FILE` on a real machine: the whole text applies or nothing does.
    /// The text is what an nftables file holds (`table ... { }` blocks, `define`,
    /// `flush ruleset`, `add rule ...` commands); without `flush ruleset` it adds to
    /// what the node has (e.g. the topology's own firewall, table `netns_fixture`).
    ///
    /// Errors name the line and columns nft reported, with the rule's text.
    ///
    /// ```no_run
    /// let lab = netns_fixture::Lab::builtin("two_servers").unwrap();
    /// lab.node("server1").load_nftables(r#"
    ///     table inet filter {
    ///         chain input {
    ///             type filter hook input priority filter; policy accept;
    ///             tcp dport 8080 ip saddr != 10.0.0.0/24 counter drop comment "outsiders"
    ///         }
    ///     }
    /// "#).unwrap();
    /// ```
    pub fn load_nftables(&self, ruleset: &str) -> Result<(), RulesError> {
        let input = Input {
            tool_name: "/dev/stdin",
            file: None,
            text: ruleset,
        };
        let output = run(self, "nft", &["-f", "-"], Some(ruleset))?;
        check(self, "nft -f -", output, |stderr| {
            error::nft_problems(stderr, &input)
        })
    }

    /// Loads an nftables file into this node: runs `nft -f PATH` inside it, so
    /// `include` statements resolve as they would on the machine. A relative path
    /// is relative to the current directory (for `cargo test`, the crate's
    /// directory: `concat!(env!("CARGO_MANIFEST_DIR"), "/rulesets/router.nft")`
    /// works from anywhere).
    ///
    /// ```no_run
    /// let lab = netns_fixture::Lab::builtin("two_servers").unwrap();
    /// let router = lab.node("router");
    /// if let Err(e) = router.load_nftables_file("rulesets/router.nft") {
    ///     panic!("{e}"); // file:line:column, message, the rule and a caret under it
    /// }
    /// ```
    pub fn load_nftables_file(&self, path: impl AsRef<Path>) -> Result<(), RulesError> {
        let path = path.as_ref();
        let text = read(path)?;
        let name = path.to_string_lossy();
        let input = Input {
            tool_name: &name,
            file: Some(&name),
            text: &text,
        };
        let output = run(self, "nft", &["-f", &name], None)?;
        check(self, &format!("nft -f {name}"), output, |stderr| {
            error::nft_problems(stderr, &input)
        })
    }

    /// Loads IPv4 rules in `iptables-save` format into this node with
    /// `iptables-restore` (nf_tables backend), as `iptables-restore < FILE` does:
    /// each table in the text is replaced by what the text says, atomically.
    ///
    /// ```no_run
    /// let lab = netns_fixture::Lab::builtin("two_servers").unwrap();
    /// lab.node("router").iptables_restore("\
    /// *filter
    /// :INPUT DROP [0:0]
    /// -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    /// -A INPUT -s 10.0.0.0/24 -p tcp --dport 22 -m comment --comment ssh -j ACCEPT
    /// COMMIT
    /// ").unwrap();
    /// ```
    pub fn iptables_restore(&self, rules: &str) -> Result<(), RulesError> {
        self.restore("iptables-restore", rules, None)
    }

    /// Like [`Node::iptables_restore`], for IPv6 rules (`ip6tables-restore`).
    pub fn ip6tables_restore(&self, rules: &str) -> Result<(), RulesError> {
        self.restore("ip6tables-restore", rules, None)
    }

    /// Like [`Node::iptables_restore`], from a file (as `iptables-restore PATH`).
    pub fn iptables_restore_file(&self, path: impl AsRef<Path>) -> Result<(), RulesError> {
        let path = path.as_ref();
        self.restore("iptables-restore", &read(path)?, Some(path))
    }

    /// Like [`Node::ip6tables_restore`], from a file (as `ip6tables-restore PATH`).
    pub fn ip6tables_restore_file(&self, path: impl AsRef<Path>) -> Result<(), RulesError> {
        let path = path.as_ref();
        self.restore("ip6tables-restore", &read(path)?, Some(path))
    }

    /// Runs one `iptables` command in this node, e.g.
    /// `&["-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "6000", "-j", "DNAT", "--to-destination", "192.168.0.2:8080"]`.
    ///
    /// ```no_run
    /// let lab = netns_fixture::Lab::builtin("two_servers").unwrap();
    /// lab.node("router").iptables(&["-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "DROP"]).unwrap();
    /// ```
    pub fn iptables(&self, args: &[&str]) -> Result<(), RulesError> {
        self.command_line("iptables", args, None)
    }

    /// Runs one `ip6tables` command in this node.
    pub fn ip6tables(&self, args: &[&str]) -> Result<(), RulesError> {
        self.command_line("ip6tables", args, None)
    }

    /// Runs `iptables`/`ip6tables` commands as a write-up or a shell script has
    /// them, one a line, in order: blank lines and `#` comments are skipped, a
    /// leading `sudo` is ignored, quotes work as in a shell, a line ending in `\`
    /// goes on. `echo VALUE > /proc/sys/KEY` and `sysctl -w KEY=VALUE` lines are
    /// written as sysctls in the node (only keys under `net/`). Every line is
    /// checked before any is applied, so a line of another kind applies nothing;
    /// then the commands run in order and stop at the first that fails (the ones
    /// before it stay applied). Errors give the line. A script without any command
    /// is an error too (pasted with `# ` prompts?).
    ///
    /// ```no_run
    /// let lab = netns_fixture::Lab::builtin("two_servers").unwrap();
    /// lab.node("router").iptables_commands(r#"
    ///     # write-up 003
    ///     iptables -t nat -A PREROUTING -p tcp -i ens5 --dport 6002 -j DNAT --to-destination 192.168.0.2:8080
    ///     iptables -A FORWARD -p tcp -d 192.168.0.2 --dport 8080 -m state --state NEW,ESTABLISHED,RELATED -j ACCEPT
    /// "#).unwrap();
    /// ```
    pub fn iptables_commands(&self, script: &str) -> Result<(), RulesError> {
        // Every line is read and checked first, so that a line that is neither an
        // iptables command nor a sysctl write applies nothing.
        let mut steps = Vec::new();
        for (number, line) in logical_lines(script) {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let problem = |message: String| self.line_problem(number, trimmed, message);
            let mut words = words::split(trimmed).map_err(problem)?;
            if words.first().map(String::as_str) == Some("sudo") {
                words.remove(0);
            }
            let step = script_step(&words).map_err(problem)?;
            steps.push((number, trimmed.to_string(), step));
        }
        let commands = steps.len();
        for (number, line, step) in steps {
            match step {
                ScriptStep::Tables(tool, args) => {
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    self.command_line(tool, &args, Some((number, &line)))?;
                }
                ScriptStep::Sysctl(key, value) => {
                    self.run(|| crate::sysctl::write(&key, &value))
                        .map_err(|e| self.line_problem(number, &line, e.to_string()))?
                }
            }
        }
        if commands == 0 {
            // E.g. commands pasted with their `# ` root prompts: all comments.
            return Err(RulesError::Rejected(Rejection {
                node: self.name().to_string(),
                command: "iptables commands".into(),
                problems: vec![RuleProblem {
                    file: None,
                    line: None,
                    columns: None,
                    rule: None,
                    message: "no command to run: every line is blank or a `#` comment \
                              (commands copied with a `# ` root prompt?)"
                        .into(),
                    note: None,
                }],
                stderr: String::new(),
            }));
        }
        Ok(())
    }

    /// A problem with line `number` (`line`) of a pasted script.
    fn line_problem(&self, number: usize, line: &str, message: String) -> RulesError {
        RulesError::Rejected(Rejection {
            node: self.name().to_string(),
            command: line.to_string(),
            problems: vec![RuleProblem {
                file: None,
                line: Some(number),
                columns: None,
                rule: Some(line.to_string()),
                message,
                note: None,
            }],
            stderr: String::new(),
        })
    }

    /// Reads this node's ruleset back (`nft -a list ruleset`): tables, chains,
    /// rules with handles, counters and comments. Rules that iptables added also
    /// carry their `iptables-save` form and `-m comment` comments.
    ///
    /// ```no_run
    /// let lab = netns_fixture::Lab::builtin("two_servers").unwrap();
    /// let ruleset = lab.node("router").ruleset().unwrap();
    /// let dnat = ruleset.rule_matching("dnat to 192.168.0.2:8080");
    /// println!("{} packets went through {dnat}", dnat.packets());
    /// ```
    pub fn ruleset(&self) -> Result<Ruleset, RulesError> {
        let command = "nft -a list ruleset";
        let output = run(self, "nft", &["-a", "list", "ruleset"], None)?;
        let listing = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            return Err(RulesError::Rejected(Rejection {
                node: self.name().to_string(),
                command: command.into(),
                problems: error::nft_problems(
                    &stderr,
                    &Input {
                        tool_name: "",
                        file: None,
                        text: "",
                    },
                ),
                stderr,
            }));
        }
        let mut ruleset = Ruleset::parse(&listing).map_err(|e| RulesError::Listing {
            node: self.name().to_string(),
            line: e.line,
            text: e.text,
            why: e.why,
        })?;
        for (family, save) in [
            (Family::Ip, "iptables-save"),
            (Family::Ip6, "ip6tables-save"),
        ] {
            if !ruleset.has_iptables_tables(family) {
                continue;
            }
            // Only an annotation: without iptables the nft listing is still whole.
            if let Ok(output) = run(self, save, &["-c"], None) {
                if output.status.success() {
                    ruleset
                        .annotate_with_iptables(family, &String::from_utf8_lossy(&output.stdout));
                }
            }
        }
        Ok(ruleset)
    }

    fn restore(&self, tool: &str, rules: &str, path: Option<&Path>) -> Result<(), RulesError> {
        let name = path.map(|p| p.to_string_lossy().into_owned());
        let input = Input {
            tool_name: name.as_deref().unwrap_or("/dev/stdin"),
            file: name.as_deref(),
            text: rules,
        };
        let (output, command) = match &name {
            Some(name) => (run(self, tool, &[name], None)?, format!("{tool} {name}")),
            None => (run(self, tool, &[], Some(rules))?, tool.to_string()),
        };
        check(self, &command, output, |stderr| {
            error::restore_problems(stderr, &input)
        })
    }

    /// Runs `tool args`; `script_line` is the line of [`Node::iptables_commands`]
    /// it came from.
    fn command_line(
        &self,
        tool: &str,
        args: &[&str],
        script_line: Option<(usize, &str)>,
    ) -> Result<(), RulesError> {
        let words: Vec<String> = std::iter::once(tool)
            .chain(args.iter().copied())
            .map(String::from)
            .collect();
        let command = words::join(&words);
        let output = run(self, tool, args, None)?;
        check(self, &command, output, |stderr| {
            let mut problem = error::command_problem(stderr, &command);
            if let Some((number, line)) = script_line {
                problem.line = Some(number);
                problem.rule = Some(line.to_string());
            }
            vec![problem]
        })
    }
}

/// `script`'s lines with their numbers, a line ending in `\` joined with the next
/// (numbered as the first).
fn logical_lines(script: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, line) in script.lines().enumerate() {
        let (number, mut text) = pending.take().unwrap_or((index + 1, String::new()));
        match line.trim_end().strip_suffix('\\') {
            Some(start) => {
                text.push_str(start);
                text.push(' ');
                pending = Some((number, text));
            }
            None => {
                text.push_str(line);
                lines.push((number, text));
            }
        }
    }
    lines.extend(pending);
    lines
}

fn read(path: &Path) -> Result<String, RulesError> {
    std::fs::read_to_string(path).map_err(|source| RulesError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Runs `program args` inside `node`, feeding it `stdin`.
fn run(
    node: &Node,
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<Output, RulesError> {
    let backend = nf_tables_backend(program);
    let mut command = node.command(backend.unwrap_or(program));
    command
        .args(args)
        .env("LC_ALL", "C")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let tool_error = |source| RulesError::Tool {
        node: node.name().to_string(),
        command: std::iter::once(program)
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" "),
        source,
    };
    let mut child = command.spawn().map_err(tool_error)?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // Writing from another thread: a tool that answers before reading all of
        // its input cannot block us.
        let text = text.as_bytes().to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&text);
        });
    }
    let mut output = child.wait_with_output().map_err(tool_error)?;
    if let Some(backend) = backend {
        // The tool names itself as it was called: show the name the user wrote.
        let stderr = String::from_utf8_lossy(&output.stderr).replace(backend, program);
        output.stderr = stderr.into_bytes();
    }
    Ok(output)
}

/// The nf_tables build of an iptables tool. The plain name may be the legacy
/// backend (Debian's `update-alternatives --set iptables /usr/sbin/iptables-legacy`),
/// whose rules `nft list ruleset` does not see, so [`Node::ruleset`] could not
/// read them back.
fn nf_tables_backend(program: &str) -> Option<&'static str> {
    Some(match program {
        "iptables" => "iptables-nft",
        "ip6tables" => "ip6tables-nft",
        "iptables-restore" => "iptables-nft-restore",
        "ip6tables-restore" => "ip6tables-nft-restore",
        "iptables-save" => "iptables-nft-save",
        "ip6tables-save" => "ip6tables-nft-save",
        _ => return None,
    })
}

/// `Ok` if the tool succeeded, else its problems as [`RulesError::Rejected`].
fn check(
    node: &Node,
    command: &str,
    output: Output,
    problems: impl FnOnce(&str) -> Vec<RuleProblem>,
) -> Result<(), RulesError> {
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    Err(RulesError::Rejected(Rejection {
        node: node.name().to_string(),
        command: command.to_string(),
        problems: problems(&stderr),
        stderr,
    }))
}

/// One line of a pasted script.
#[derive(Debug, PartialEq, Eq)]
enum ScriptStep {
    /// `iptables` or `ip6tables` with its arguments.
    Tables(&'static str, Vec<String>),
    /// `echo VALUE > /proc/sys/KEY`, `sysctl -w KEY=VALUE` or `sysctl KEY=VALUE`.
    Sysctl(String, String),
}

/// What a script line (split into words, `sudo` removed) asks for.
fn script_step(words: &[String]) -> Result<ScriptStep, String> {
    let program = words.first().map(String::as_str).unwrap_or_default();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let tool = program.rsplit('/').next().unwrap_or_default();
    let not_a_sysctl = || {
        format!(
            "`{}` is not a sysctl write this loader understands \
             (`echo VALUE > /proc/sys/KEY` or `sysctl -w KEY=VALUE`)",
            words.join(" ")
        )
    };
    match tool {
        "iptables" | "iptables-nft" | "ip6tables" | "ip6tables-nft" => {
            let tool = if tool.starts_with("ip6") {
                "ip6tables"
            } else {
                "iptables"
            };
            let args = words[1..].iter().map(|w| w.to_string()).collect();
            Ok(ScriptStep::Tables(tool, args))
        }
        "echo" => {
            let (value, path) = match &words[1..] {
                [value, ">", path] => (*value, *path),
                [value, target] if target.starts_with('>') => (*value, &target[1..]),
                _ => return Err(not_a_sysctl()),
            };
            let key = path.strip_prefix("/proc/sys/").ok_or_else(not_a_sysctl)?;
            let key = netns_fixture_topology::sysctl_path(key)?;
            Ok(ScriptStep::Sysctl(key, value.to_string()))
        }
        "sysctl" => {
            let setting = match &words[1..] {
                ["-w", setting] | [setting] => *setting,
                _ => return Err(not_a_sysctl()),
            };
            let (key, value) = setting.split_once('=').ok_or_else(not_a_sysctl)?;
            let key = netns_fixture_topology::sysctl_path(key.trim())?;
            Ok(ScriptStep::Sysctl(key, value.trim().to_string()))
        }
        _ => Err(format!(
            "`{program}` is not an iptables or ip6tables command (nor a sysctl write)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continued_lines_are_joined_and_keep_their_first_number() {
        let script =
            "iptables -A INPUT \\\n  -p tcp --dport 22 \\\n  -j ACCEPT\n\niptables -P INPUT DROP\n";
        let lines = logical_lines(script);
        assert_eq!(lines[0].0, 1);
        assert_eq!(
            words::split(&lines[0].1).unwrap(),
            ["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"]
        );
        assert_eq!(lines[2], (5, "iptables -P INPUT DROP".to_string()));
    }
}
