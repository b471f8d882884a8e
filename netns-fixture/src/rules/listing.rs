//! A node's ruleset as `nft -a list ruleset` prints it, typed: tables, chains,
//! rules with their handles, counters and comments, so that a test can assert
//! which rule matched.
//!
//! How rules show up (nftables 1.0.6, iptables 1.8.9 nf_tables backend):
//!
//! - nft prints one rule per line, ending `# handle N`; an anonymous counter as
//!   `counter packets N bytes M`; a named counter as `counter name "X"`, whose
//!   values are in the table's `counter X { packets N bytes M }` block.
//! - Ports and addresses are printed as numbers (`tcp dport 22`, even if the file
//!   said `ssh`), interface names in quotes (`iifname "wan"`), variables
//!   (`define`) replaced by their values.
//! - Rules added with `iptables`/`iptables-restore` (the nf_tables backend) are
//!   ordinary nf_tables rules: they are listed in `table ip filter` (`ip6` for
//!   ip6tables) with their chains (`INPUT`, ...), translated to nft syntax where nft
//!   knows how (`-m multiport --dports 80,443` lists as `tcp dport { 80, 443 }`),
//!   with counters, since iptables counts every rule. Some matches are not shown
//!   at all: `-m comment --comment "ssh"` lists as nothing. So for tables that
//!   `iptables-save -c` also lists, each rule also carries its iptables form
//!   (`-A INPUT -p tcp -m tcp --dport 22 -m comment --comment ssh -j ACCEPT`) and
//!   its comment from there.

use super::words;
use std::collections::BTreeMap;
use std::fmt;

/// A packet and byte count.
///
/// ```
/// use netns_fixture::rules::Counter;
/// assert_eq!(Counter { packets: 2, bytes: 120 }.to_string(), "2 packets, 120 bytes");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Counter {
    /// Packets counted.
    pub packets: u64,
    /// Bytes counted.
    pub bytes: u64,
}

impl fmt::Display for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = if self.packets == 1 { "" } else { "s" };
        write!(f, "{} packet{s}, {} bytes", self.packets, self.bytes)
    }
}

/// An nftables address family.
///
/// ```
/// use netns_fixture::rules::Family;
/// assert_eq!("inet".parse::<Family>(), Ok(Family::Inet));
/// assert_eq!(Family::Ip6.to_string(), "ip6");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// IPv4 (`table ip`, where iptables rules live).
    Ip,
    /// IPv6 (`table ip6`, where ip6tables rules live).
    Ip6,
    /// IPv4 and IPv6 (`table inet`).
    Inet,
    /// ARP.
    Arp,
    /// Bridged frames.
    Bridge,
    /// Ingress/egress of one device.
    Netdev,
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
            Family::Inet => "inet",
            Family::Arp => "arp",
            Family::Bridge => "bridge",
            Family::Netdev => "netdev",
        })
    }
}

impl std::str::FromStr for Family {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "ip" => Family::Ip,
            "ip6" => Family::Ip6,
            "inet" => Family::Inet,
            "arp" => Family::Arp,
            "bridge" => Family::Bridge,
            "netdev" => Family::Netdev,
            _ => return Err(format!("`{s}` is not an nftables family")),
        })
    }
}

/// A node's whole ruleset, read back with [`crate::Node::ruleset`].
///
/// ```no_run
/// let lab = netns_fixture::Lab::builtin("pair").unwrap();
/// let node = lab.node("ns-2");
/// node.load_nftables(r#"
///     table inet filter {
///         chain input {
///             type filter hook input priority filter; policy accept;
///             tcp dport 22 counter reject with tcp reset comment "no ssh"
///         }
///     }"#).unwrap();
/// // ... connect to 10.0.0.20:22 from ns-1 ...
/// let ruleset = node.ruleset().unwrap();
/// assert_eq!(ruleset.rule_with_comment("no ssh").packets(), 1);
/// assert_eq!(ruleset.rule_matching("tcp dport 22").handle, 2);
/// println!("{ruleset}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ruleset {
    tables: Vec<Table>,
}

/// A table of a [`Ruleset`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Its family.
    pub family: Family,
    /// Its name.
    pub name: String,
    /// Its handle.
    pub handle: u64,
    /// Its chains, in listing order.
    pub chains: Vec<Chain>,
    /// Its named counters (`counter NAME { ... }`), by name.
    pub counters: BTreeMap<String, Counter>,
}

/// A chain of a [`Table`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// Its name.
    pub name: String,
    /// Its handle.
    pub handle: u64,
    /// Where it hooks in, for a base chain.
    pub hook: Option<Hook>,
    /// Its rules, in order.
    pub rules: Vec<Rule>,
}

/// How a base chain is attached: `type filter hook input priority filter; policy drop;`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// `filter`, `nat` or `route`.
    pub kind: String,
    /// `prerouting`, `input`, `forward`, `output`, `postrouting`, `ingress`, ...
    pub hook: String,
    /// The priority as listed, e.g. `filter`, `dstnat`, `filter + 10`, `-150`.
    pub priority: String,
    /// `accept` or `drop`.
    pub policy: Option<String>,
}

/// One rule, with where it is and what it counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The family of its table.
    pub family: Family,
    /// Its table.
    pub table: String,
    /// Its chain.
    pub chain: String,
    /// Its handle (`nft delete rule ... handle N`).
    pub handle: u64,
    /// The rule as nft lists it, without counter values and handle, with single
    /// spaces: `ip saddr 10.0.2.0/24 tcp dport 22 counter accept comment "ssh"`.
    pub text: String,
    /// Its counter: the rule's own (`counter`), or the named counter it uses
    /// (`counter name "X"`); `None` if it counts nothing.
    pub counter: Option<Counter>,
    /// Its comment (`comment "..."`, or `-m comment --comment ...` for iptables rules).
    pub comment: Option<String>,
    /// For a rule that `iptables-save` lists too: its iptables form, e.g.
    /// `-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT`.
    pub iptables: Option<String>,
}

impl Rule {
    /// Packets counted (0 for a rule without a counter).
    pub fn packets(&self) -> u64 {
        self.counter.map_or(0, |c| c.packets)
    }

    /// Bytes counted (0 for a rule without a counter).
    pub fn bytes(&self) -> u64 {
        self.counter.map_or(0, |c| c.bytes)
    }

    /// Whether the rule's text (or its iptables form) contains `pattern`, as whole
    /// words: `tcp dport 22` matches `tcp dport 22 accept` but not
    /// `tcp dport 222 accept`. Runs of blanks in `pattern` count as one space.
    ///
    /// ```
    /// let ruleset = netns_fixture::rules::Ruleset::parse(
    ///     "table ip t { # handle 1\n\tchain c { # handle 1\n\t\ttcp dport { 80, 443 } accept # handle 2\n\t}\n}\n",
    /// ).unwrap();
    /// let rule = ruleset.rule_matching("443");
    /// assert!(rule.matches("tcp dport { 80,"));
    /// assert!(!rule.matches("44"));
    /// ```
    pub fn matches(&self, pattern: &str) -> bool {
        let pattern = normalize(pattern);
        !pattern.is_empty()
            && (contains_words(&self.text, &pattern)
                || self
                    .iptables
                    .as_deref()
                    .is_some_and(|i| contains_words(i, &pattern)))
    }

    /// `inet filter input`: where the rule is.
    pub fn location(&self) -> String {
        format!("{} {} {}", self.family, self.table, self.chain)
    }
}

/// `inet filter input, handle 8: tcp dport 22 counter accept (3 packets, 180 bytes)`
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, handle {}: {}",
            self.location(),
            self.handle,
            self.text
        )?;
        if let Some(iptables) = &self.iptables {
            write!(f, " [iptables: {iptables}]")?;
        }
        if let Some(counter) = self.counter {
            write!(f, " ({counter})")?;
        }
        Ok(())
    }
}

/// A rule whose counter went up between two readings, and by how much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleHit {
    /// The rule as read the second time.
    pub rule: Rule,
    /// How much its counter went up.
    pub delta: Counter,
}

impl fmt::Display for RuleHit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, handle {}: {} (+{})",
            self.rule.location(),
            self.rule.handle,
            self.rule.text,
            self.delta
        )
    }
}

/// Why a rule lookup found no rule, or more than one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleLookupError {
    /// What was looked for, e.g. ``rule matching `tcp dport 22` ``.
    pub wanted: String,
    /// The rules that matched (empty if none did).
    pub matched: Vec<Rule>,
    /// The whole ruleset, for the message.
    pub ruleset: Ruleset,
}

impl fmt::Display for RuleLookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.matched.is_empty() {
            write!(f, "no {}; the ruleset is:\n{}", self.wanted, self.ruleset)
        } else {
            write!(
                f,
                "{} rules fit ({}), expected exactly one:",
                self.matched.len(),
                self.wanted
            )?;
            for rule in &self.matched {
                write!(f, "\n  {rule}")?;
            }
            Ok(())
        }
    }
}

impl std::error::Error for RuleLookupError {}

/// Why a listing could not be read: its line and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingError {
    /// The line (1-based).
    pub line: usize,
    /// Its text.
    pub text: String,
    /// What was expected.
    pub why: String,
}

impl fmt::Display for ListingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}: {}", self.line, self.why, self.text)
    }
}

impl std::error::Error for ListingError {}

impl Ruleset {
    /// Reads the output of `nft -a list ruleset` (handles are optional: rules
    /// listed without them get handle 0).
    ///
    /// ```
    /// use netns_fixture::rules::Ruleset;
    /// let listing = "table inet filter { # handle 1
    /// \tchain input { # handle 1
    /// \t\ttype filter hook input priority filter; policy drop;
    /// \t\ttcp dport 22 counter packets 3 bytes 180 accept comment \"ssh\" # handle 4
    /// \t}
    /// }
    /// ";
    /// let ruleset = Ruleset::parse(listing).unwrap();
    /// let ssh = ruleset.rule_with_comment("ssh");
    /// assert_eq!((ssh.handle, ssh.packets()), (4, 3));
    /// assert_eq!(ssh.text, "tcp dport 22 counter accept comment \"ssh\"");
    /// let input = ruleset.chain("inet", "filter", "input").unwrap();
    /// assert_eq!(input.hook.as_ref().unwrap().policy.as_deref(), Some("drop"));
    /// ```
    pub fn parse(listing: &str) -> Result<Ruleset, ListingError> {
        Parser::default().parse(listing)
    }

    /// The tables, in listing order.
    pub fn tables(&self) -> &[Table] {
        &self.tables
    }

    /// The table `name` of `family` (`"inet"`, `"ip"`, ...).
    pub fn table(&self, family: &str, name: &str) -> Option<&Table> {
        self.tables
            .iter()
            .find(|t| t.family.to_string() == family && t.name == name)
    }

    /// Chain `chain` of table `table` of `family`.
    pub fn chain(&self, family: &str, table: &str, chain: &str) -> Option<&Chain> {
        self.table(family, table)?
            .chains
            .iter()
            .find(|c| c.name == chain)
    }

    /// Every rule, in listing order.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.tables
            .iter()
            .flat_map(|t| t.chains.iter().flat_map(|c| c.rules.iter()))
    }

    /// Every rule that [matches](Rule::matches) `pattern`.
    pub fn rules_matching(&self, pattern: &str) -> Vec<&Rule> {
        self.rules().filter(|r| r.matches(pattern)).collect()
    }

    /// The one rule that [matches](Rule::matches) `pattern`.
    ///
    /// # Panics
    /// Unless exactly one rule matches; the message shows the candidates or the
    /// whole ruleset. [`Ruleset::try_rule_matching`] returns that as an error.
    #[track_caller]
    pub fn rule_matching(&self, pattern: &str) -> &Rule {
        self.try_rule_matching(pattern)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The one rule that [matches](Rule::matches) `pattern`, or why there is not
    /// exactly one.
    pub fn try_rule_matching(&self, pattern: &str) -> Result<&Rule, RuleLookupError> {
        self.one(format!("rule matching `{}`", normalize(pattern)), |r| {
            r.matches(pattern)
        })
    }

    /// The one rule whose comment is exactly `comment`.
    ///
    /// # Panics
    /// Unless exactly one rule has it; see [`Ruleset::try_rule_with_comment`].
    #[track_caller]
    pub fn rule_with_comment(&self, comment: &str) -> &Rule {
        self.try_rule_with_comment(comment)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The one rule whose comment is exactly `comment`, or why there is not
    /// exactly one.
    pub fn try_rule_with_comment(&self, comment: &str) -> Result<&Rule, RuleLookupError> {
        self.one(format!("rule with comment \"{comment}\""), |r| {
            r.comment.as_deref() == Some(comment)
        })
    }

    /// The named counter `name` (`counter NAME { }` in a table, used by rules as
    /// `counter name NAME`), from whichever table has one.
    pub fn counter(&self, name: &str) -> Option<Counter> {
        self.tables
            .iter()
            .find_map(|t| t.counters.get(name).copied())
    }

    /// The rules whose counters went up since `before` (an earlier reading of
    /// the same node), in listing order: which rules the traffic in between hit.
    ///
    /// ```no_run
    /// # let lab = netns_fixture::Lab::builtin("pair").unwrap();
    /// let node = lab.node("ns-2");
    /// let before = node.ruleset().unwrap();
    /// // ... send one packet ...
    /// let hits = node.ruleset().unwrap().hits_since(&before);
    /// assert_eq!(hits.len(), 1, "{hits:?}");
    /// assert_eq!(hits[0].rule.comment.as_deref(), Some("no ssh"));
    /// ```
    pub fn hits_since(&self, before: &Ruleset) -> Vec<RuleHit> {
        let earlier: BTreeMap<(Family, &str, &str, u64), Counter> = before
            .rules()
            .filter_map(|r| {
                let key = (r.family, r.table.as_str(), r.chain.as_str(), r.handle);
                r.counter.map(|c| (key, c))
            })
            .collect();
        self.rules()
            .filter_map(|r| {
                let now = r.counter?;
                let key = (r.family, r.table.as_str(), r.chain.as_str(), r.handle);
                let then = earlier.get(&key).copied().unwrap_or_default();
                let delta = Counter {
                    packets: now.packets.saturating_sub(then.packets),
                    bytes: now.bytes.saturating_sub(then.bytes),
                };
                (delta.packets > 0).then(|| RuleHit {
                    rule: r.clone(),
                    delta,
                })
            })
            .collect()
    }

    fn one(&self, wanted: String, fits: impl Fn(&Rule) -> bool) -> Result<&Rule, RuleLookupError> {
        let found: Vec<&Rule> = self.rules().filter(|r| fits(r)).collect();
        match found.as_slice() {
            [one] => Ok(one),
            _ => Err(RuleLookupError {
                wanted,
                matched: found.into_iter().cloned().collect(),
                ruleset: self.clone(),
            }),
        }
    }

    /// Adds the iptables form and comment of each rule of the tables that
    /// `iptables-save -c` (for [`Family::Ip`]) or `ip6tables-save -c` (for
    /// [`Family::Ip6`]) printed as `save`. A chain is only annotated when both
    /// listings have the same number of rules in it.
    pub(crate) fn annotate_with_iptables(&mut self, family: Family, save: &str) {
        let mut chains: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        let mut table = String::new();
        for line in save.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix('*') {
                table = name.to_string();
                continue;
            }
            // `[packets:bytes] -A CHAIN ...` with -c, `-A CHAIN ...` without.
            let rule = match line.strip_prefix('[') {
                Some(rest) => rest.split_once("] ").map_or("", |(_, r)| r),
                None => line,
            };
            if let Some(rest) = rule.strip_prefix("-A ") {
                let chain = rest.split_whitespace().next().unwrap_or_default();
                chains
                    .entry((table.clone(), chain.to_string()))
                    .or_default()
                    .push(rule.to_string());
            }
        }
        for table in self.tables.iter_mut().filter(|t| t.family == family) {
            for chain in &mut table.chains {
                let Some(saved) = chains.get(&(table.name.clone(), chain.name.clone())) else {
                    continue;
                };
                if saved.len() != chain.rules.len() {
                    continue;
                }
                for (rule, line) in chain.rules.iter_mut().zip(saved) {
                    rule.iptables = Some(line.clone());
                    if rule.comment.is_none() {
                        rule.comment = iptables_comment(line);
                    }
                }
            }
        }
    }

    /// Whether `iptables-save` (for `Ip`) or `ip6tables-save` (for `Ip6`) may
    /// know some of the tables: one of iptables' tables with one of the base
    /// chains iptables creates (nft users rarely spell them in capitals).
    pub(crate) fn has_iptables_tables(&self, family: Family) -> bool {
        const TABLES: [&str; 5] = ["filter", "nat", "mangle", "raw", "security"];
        const CHAINS: [&str; 5] = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];
        self.tables.iter().any(|t| {
            t.family == family
                && TABLES.contains(&t.name.as_str())
                && t.chains.iter().any(|c| CHAINS.contains(&c.name.as_str()))
        })
    }
}

/// The ruleset, one rule a line with its handle and counter:
///
/// ```text
/// table inet filter
///   chain input (filter hook input priority filter, policy drop)
///       4  ct state established,related accept
///       6  ip saddr 10.0.2.0/24 tcp dport 22 counter accept comment "ssh"   [3 packets, 180 bytes]
/// ```
impl fmt::Display for Ruleset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.tables.is_empty() {
            return writeln!(f, "(no tables)");
        }
        for table in &self.tables {
            writeln!(f, "table {} {}", table.family, table.name)?;
            for (name, counter) in &table.counters {
                writeln!(f, "  counter {name}: {counter}")?;
            }
            for chain in &table.chains {
                match &chain.hook {
                    Some(h) => {
                        write!(
                            f,
                            "  chain {} ({} hook {} priority {}",
                            chain.name, h.kind, h.hook, h.priority
                        )?;
                        if let Some(policy) = &h.policy {
                            write!(f, ", policy {policy}")?;
                        }
                        writeln!(f, ")")?;
                    }
                    None => writeln!(f, "  chain {}", chain.name)?,
                }
                for rule in &chain.rules {
                    write!(f, "    {:>4}  {}", rule.handle, rule.text)?;
                    if let Some(iptables) = &rule.iptables {
                        write!(f, "   [iptables: {iptables}]")?;
                    }
                    if let Some(counter) = rule.counter {
                        write!(f, "   [{counter}]")?;
                    }
                    writeln!(f)?;
                }
            }
        }
        Ok(())
    }
}

/// The comment of an iptables rule: the word after `--comment`.
fn iptables_comment(line: &str) -> Option<String> {
    let words = words::split(line).ok()?;
    words
        .windows(2)
        .find(|w| w[0] == "--comment")
        .map(|w| w[1].clone())
}

/// Blanks outside quotes collapsed to single spaces, trimmed.
fn normalize(text: &str) -> String {
    tokens(text).join(" ")
}

/// `text` split at blanks outside double quotes; quoted strings stay whole,
/// quotes included.
fn tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut token = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                token.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !token.is_empty() {
                    tokens.push(std::mem::take(&mut token));
                }
            }
            c => token.push(c),
        }
    }
    if !token.is_empty() {
        tokens.push(token);
    }
    tokens
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '.'
}

/// Whether `needle` occurs in `haystack` not glued to more word characters
/// (letters, digits, `_`, `.`) on either side.
fn contains_words(haystack: &str, needle: &str) -> bool {
    let starts_with_word = needle.chars().next().is_some_and(is_word_char);
    let ends_with_word = needle.chars().last().is_some_and(is_word_char);
    haystack.match_indices(needle).any(|(i, _)| {
        let before = haystack[..i].chars().last();
        let after = haystack[i + needle.len()..].chars().next();
        let glued_before = starts_with_word && before.is_some_and(is_word_char);
        let glued_after = ends_with_word && after.is_some_and(is_word_char);
        !glued_before && !glued_after
    })
}

/// Net `{` minus `}` outside double quotes.
fn brace_balance(line: &str) -> i64 {
    let mut quoted = false;
    let mut balance = 0;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            '{' if !quoted => balance += 1,
            '}' if !quoted => balance -= 1,
            _ => {}
        }
    }
    balance
}

/// `NAME { # handle N` → (NAME, N); the handle is 0 when not listed.
fn block_header(rest: &str) -> Option<(String, u64)> {
    let (head, tail) = rest.split_once('{')?;
    let name = head.trim().trim_matches('"').to_string();
    Some((name, handle_of(tail).unwrap_or(0)))
}

/// The N of a trailing `# handle N`.
fn handle_of(text: &str) -> Option<u64> {
    let (_, handle) = text.rsplit_once("# handle ")?;
    handle.trim().parse().ok()
}

enum Block {
    Table,
    Chain,
    /// A named counter of the current table.
    Counter(String),
    /// A set, map, flowtable or other object: skipped, `depth` braces deep.
    Skipped(i64),
}

#[derive(Default)]
struct Parser {
    tables: Vec<Table>,
    stack: Vec<Block>,
    /// A rule spread over several lines (an unbalanced `{`), and its first line.
    pending: Option<(String, usize)>,
    /// Named counters each rule uses: (table index, chain index, rule index, name).
    named: Vec<(usize, usize, usize, String)>,
}

impl Parser {
    fn parse(mut self, listing: &str) -> Result<Ruleset, ListingError> {
        for (index, raw) in listing.lines().enumerate() {
            let number = index + 1;
            let line = raw.trim();
            let error = |why: &str| ListingError {
                line: number,
                text: raw.to_string(),
                why: why.to_string(),
            };
            if let Some((mut text, first)) = self.pending.take() {
                text.push(' ');
                text.push_str(line);
                if brace_balance(&text) > 0 {
                    self.pending = Some((text, first));
                } else {
                    self.rule(&text).map_err(|why| ListingError {
                        line: first,
                        text: text.clone(),
                        why,
                    })?;
                }
                continue;
            }
            if line.is_empty() {
                continue;
            }
            match self.stack.last() {
                None => {
                    if line.starts_with('#') {
                        continue;
                    }
                    let rest = line
                        .strip_prefix("table ")
                        .ok_or_else(|| error("expected `table FAMILY NAME {`"))?;
                    let (family, rest) = rest
                        .split_once(' ')
                        .ok_or_else(|| error("expected `table FAMILY NAME {`"))?;
                    let family = family.parse().map_err(|e: String| error(&e))?;
                    let (name, handle) = block_header(rest)
                        .ok_or_else(|| error("expected `{` after the table name"))?;
                    self.tables.push(Table {
                        family,
                        name,
                        handle,
                        chains: Vec::new(),
                        counters: BTreeMap::new(),
                    });
                    self.stack.push(Block::Table);
                }
                Some(Block::Table) => {
                    if line == "}" {
                        self.stack.pop();
                    } else if let Some(rest) = line.strip_prefix("chain ") {
                        let (name, handle) = block_header(rest)
                            .ok_or_else(|| error("expected `{` after the chain name"))?;
                        self.table().chains.push(Chain {
                            name,
                            handle,
                            hook: None,
                            rules: Vec::new(),
                        });
                        self.stack.push(Block::Chain);
                    } else if let Some((name, _)) = line
                        .strip_prefix("counter ")
                        .filter(|_| brace_balance(line) > 0)
                        .and_then(block_header)
                    {
                        self.table()
                            .counters
                            .insert(name.clone(), Counter::default());
                        self.stack.push(Block::Counter(name));
                    } else if brace_balance(line) > 0 {
                        self.stack.push(Block::Skipped(brace_balance(line)));
                    }
                    // Otherwise a table's `flags` or `comment`.
                }
                Some(Block::Chain) => {
                    if line == "}" {
                        self.stack.pop();
                    } else if line.starts_with("type ") && line.contains(" hook ") {
                        let hook = parse_hook(line).ok_or_else(|| {
                            error("expected `type TYPE hook HOOK priority PRIORITY;`")
                        })?;
                        self.chain().hook = Some(hook);
                    } else if let Some(policy) = line.strip_prefix("policy ") {
                        if let Some(hook) = &mut self.chain().hook {
                            hook.policy = Some(policy.trim_end_matches(';').trim().to_string());
                        }
                    } else if line.starts_with("comment ") && handle_of(line).is_none() {
                        // The chain's own comment.
                    } else if brace_balance(line) > 0 {
                        self.pending = Some((line.to_string(), number));
                    } else {
                        self.rule(line).map_err(|why| error(&why))?;
                    }
                }
                Some(Block::Counter(name)) => {
                    if line == "}" {
                        self.stack.pop();
                    } else if let Some(counter) = parse_counter_values(&tokens(line)) {
                        let name = name.clone();
                        self.table().counters.insert(name, counter);
                    }
                }
                Some(Block::Skipped(depth)) => {
                    let depth = depth + brace_balance(line);
                    self.stack.pop();
                    if depth > 0 {
                        self.stack.push(Block::Skipped(depth));
                    }
                }
            }
        }
        if let Some((text, line)) = self.pending {
            return Err(ListingError {
                line,
                text,
                why: "a `{` is not closed".into(),
            });
        }
        if !self.stack.is_empty() {
            return Err(ListingError {
                line: listing.lines().count(),
                text: listing.lines().last().unwrap_or_default().to_string(),
                why: "the listing ends inside a block".into(),
            });
        }
        for (t, c, r, name) in self.named {
            let counter = self.tables[t].counters.get(&name).copied();
            self.tables[t].chains[c].rules[r].counter = counter;
        }
        Ok(Ruleset {
            tables: self.tables,
        })
    }

    fn table(&mut self) -> &mut Table {
        self.tables.last_mut().expect("inside a table")
    }

    fn chain(&mut self) -> &mut Chain {
        self.table().chains.last_mut().expect("inside a chain")
    }

    fn rule(&mut self, line: &str) -> Result<(), String> {
        let (body, handle) = match line.rsplit_once("# handle ") {
            Some((body, handle)) => (
                body,
                handle
                    .trim()
                    .parse()
                    .map_err(|_| "expected a number after `# handle`".to_string())?,
            ),
            None => (line, 0),
        };
        let words = tokens(body);
        let mut text = Vec::with_capacity(words.len());
        let mut counter = None;
        let mut named = None;
        let mut comment = None;
        let mut i = 0;
        while i < words.len() {
            let word = &words[i];
            if word == "counter" {
                if let Some(values) = parse_counter_values(&words[i + 1..]) {
                    counter.get_or_insert(values);
                    text.push(word.clone());
                    i += 5;
                    continue;
                }
                if words.get(i + 1).map(String::as_str) == Some("name") {
                    if let Some(name) = words.get(i + 2) {
                        named.get_or_insert(name.trim_matches('"').to_string());
                    }
                }
            }
            if word == "comment" {
                if let Some(c) = words.get(i + 1) {
                    comment = Some(c.trim_matches('"').to_string());
                }
            }
            text.push(word.clone());
            i += 1;
        }
        let tables = self.tables.len() - 1;
        let table = &self.tables[tables];
        let (family, table_name) = (table.family, table.name.clone());
        let chains = table.chains.len() - 1;
        let chain = &mut self.tables[tables].chains[chains];
        if let Some(name) = named {
            if counter.is_none() {
                self.named.push((tables, chains, chain.rules.len(), name));
            }
        }
        chain.rules.push(Rule {
            family,
            table: table_name,
            chain: chain.name.clone(),
            handle,
            text: text.join(" "),
            counter,
            comment,
            iptables: None,
        });
        Ok(())
    }
}

/// `packets N bytes M` at the start of `words`.
fn parse_counter_values(words: &[String]) -> Option<Counter> {
    match words {
        [p, packets, b, bytes, ..] if p == "packets" && b == "bytes" => Some(Counter {
            packets: packets.parse().ok()?,
            bytes: bytes.trim_end_matches(';').parse().ok()?,
        }),
        _ => None,
    }
}

/// `type filter hook input priority filter; policy drop;`
fn parse_hook(line: &str) -> Option<Hook> {
    let mut parts = line.split(';').map(str::trim);
    let declaration: Vec<&str> = parts.next()?.split_whitespace().collect();
    let find = |key: &str| declaration.iter().position(|w| *w == key);
    let kind = declaration.get(find("type")? + 1)?.to_string();
    let hook = declaration.get(find("hook")? + 1)?.to_string();
    let priority = find("priority")
        .map(|i| declaration[i + 1..].join(" "))
        .unwrap_or_default();
    let policy = parts
        .filter_map(|p| p.strip_prefix("policy "))
        .map(|p| p.trim().to_string())
        .next();
    Some(Hook {
        kind,
        hook,
        priority,
        policy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The distinct (family, table) pairs of a ruleset.
    fn table_names(ruleset: &Ruleset) -> BTreeSet<String> {
        ruleset
            .tables()
            .iter()
            .map(|t| format!("{} {}", t.family, t.name))
            .collect()
    }

    /// `nft -a list ruleset` after loading a ruleset with a named counter, a set,
    /// a long anonymous set, a comment, a regular chain, and iptables rules.
    const LISTING: &str = "\
# Warning: table ip filter is managed by iptables-nft, do not touch!
table inet filter { # handle 1
\tcounter ssh_hits { # handle 4
\t\tpackets 7 bytes 420
\t}

\tset admins { # handle 5
\t\ttype ipv4_addr
\t\telements = { 10.1.0.1, 10.1.0.2,
\t\t\t     10.1.0.3, 10.1.0.4 }
\t}

\tchain input { # handle 1
\t\ttype filter hook input priority filter; policy drop;
\t\tct state established,related accept # handle 6
\t\tiif \"lo\" accept # handle 7
\t\tip saddr @admins tcp dport 22 counter name \"ssh_hits\" accept # handle 8
\t\ttcp dport { 1, 2, 3, 222 } counter packets 0 bytes 0 reject # handle 10
\t\tudp dport 53 counter packets 2 bytes 120 accept comment \"dns  lookups\" # handle 11
\t\tcounter packets 5 bytes 300 drop # handle 12
\t}

\tchain sub { # handle 3
\t\tip daddr 10.0.0.0/8 counter packets 5 bytes 300 return # handle 14
\t}
}
table ip filter { # handle 2
\tchain INPUT { # handle 1
\t\ttype filter hook input priority filter; policy accept;
\t\ttcp dport 22  counter packets 3 bytes 180 accept # handle 2
\t\tmeta l4proto udp counter packets 0 bytes 0 reject # handle 3
\t}
}
";

    const IPTABLES_SAVE: &str = "\
# Generated by iptables-save v1.8.9 (nf_tables) on Sun Nov 22 08:41:39 2026
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
[3:180] -A INPUT -p tcp -m tcp --dport 22 -m comment --comment \"ssh from admin\" -j ACCEPT
[0:0] -A INPUT -p udp -j REJECT --reject-with icmp-port-unreachable
COMMIT
";

    #[test]
    fn reads_tables_chains_rules_and_counters() {
        let ruleset = Ruleset::parse(LISTING).unwrap();
        assert_eq!(
            table_names(&ruleset),
            ["inet filter", "ip filter"].map(String::from).into()
        );
        let input = ruleset.chain("inet", "filter", "input").unwrap();
        assert_eq!(input.handle, 1);
        assert_eq!(
            input.hook,
            Some(Hook {
                kind: "filter".into(),
                hook: "input".into(),
                priority: "filter".into(),
                policy: Some("drop".into()),
            })
        );
        let texts: Vec<&str> = input.rules.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "ct state established,related accept",
                "iif \"lo\" accept",
                "ip saddr @admins tcp dport 22 counter name \"ssh_hits\" accept",
                "tcp dport { 1, 2, 3, 222 } counter reject",
                "udp dport 53 counter accept comment \"dns  lookups\"",
                "counter drop",
            ]
        );
        assert_eq!(input.rules[0].counter, None);
        // A named counter's values come from its block.
        assert_eq!(
            ruleset.counter("ssh_hits"),
            Some(Counter {
                packets: 7,
                bytes: 420
            })
        );
        assert_eq!(ruleset.rule_matching("@admins").packets(), 7);
        let dns = ruleset.rule_with_comment("dns  lookups");
        assert_eq!((dns.handle, dns.packets(), dns.bytes()), (11, 2, 120));
        assert!(ruleset
            .chain("inet", "filter", "sub")
            .unwrap()
            .hook
            .is_none());
        assert_eq!(ruleset.rules().count(), 9);
    }

    #[test]
    fn patterns_match_whole_words() {
        let ruleset = Ruleset::parse(LISTING).unwrap();
        assert_eq!(ruleset.rules_matching("tcp dport 22").len(), 2);
        assert_eq!(ruleset.rule_matching("222").handle, 10);
        assert_eq!(ruleset.rule_matching("{ 1,").handle, 10);
        assert_eq!(ruleset.rule_matching("udp   dport 53").handle, 11);
        assert!(ruleset.rules_matching("dport 2").is_empty());
        assert!(ruleset.rules_matching("").is_empty());
        let none = ruleset.try_rule_matching("tcp dport 2222").unwrap_err();
        assert!(
            none.to_string().starts_with(
                "no rule matching `tcp dport 2222`; the ruleset is:\ntable inet filter\n"
            ),
            "{none}"
        );
        let many = ruleset.try_rule_matching("accept").unwrap_err();
        assert_eq!(many.matched.len(), 5);
        assert!(many.to_string().starts_with("5 rules fit (rule matching `accept`), expected exactly one:\n  inet filter input, handle 6: ct state established,related accept"), "{many}");
    }

    #[test]
    fn iptables_rules_get_their_saved_form_and_comment() {
        let mut ruleset = Ruleset::parse(LISTING).unwrap();
        assert!(ruleset.has_iptables_tables(Family::Ip));
        assert!(!ruleset.has_iptables_tables(Family::Ip6));
        ruleset.annotate_with_iptables(Family::Ip, IPTABLES_SAVE);
        let ssh = ruleset.rule_with_comment("ssh from admin");
        assert_eq!(
            (ssh.family, ssh.chain.as_str(), ssh.handle),
            (Family::Ip, "INPUT", 2)
        );
        assert_eq!(ssh.text, "tcp dport 22 counter accept");
        assert_eq!(ssh.packets(), 3);
        assert_eq!(ruleset.rule_matching("--dport 22").handle, 2);
        assert_eq!(ruleset.rule_matching("icmp-port-unreachable").handle, 3);
        // Not the inet table's rules, though they share chain names' spelling rules.
        assert_eq!(
            ruleset
                .rule_matching("ct state established,related")
                .iptables,
            None
        );
    }

    #[test]
    fn a_chain_with_other_rules_than_iptables_save_lists_is_left_alone() {
        let mut ruleset = Ruleset::parse(LISTING).unwrap();
        let one_rule = IPTABLES_SAVE.replace(
            "[0:0] -A INPUT -p udp -j REJECT --reject-with icmp-port-unreachable\n",
            "",
        );
        ruleset.annotate_with_iptables(Family::Ip, &one_rule);
        assert!(ruleset.rules().all(|r| r.iptables.is_none()));
    }

    #[test]
    fn hits_since_lists_the_rules_that_counted() {
        let before = Ruleset::parse(LISTING).unwrap();
        let after = Ruleset::parse(
            &LISTING
                .replace(
                    "packets 2 bytes 120 accept comment",
                    "packets 3 bytes 180 accept comment",
                )
                .replace("packets 7 bytes 420", "packets 9 bytes 540"),
        )
        .unwrap();
        let hits = after.hits_since(&before);
        let described: Vec<String> = hits.iter().map(ToString::to_string).collect();
        assert_eq!(
            described,
            [
                "inet filter input, handle 8: ip saddr @admins tcp dport 22 counter name \"ssh_hits\" accept (+2 packets, 120 bytes)",
                "inet filter input, handle 11: udp dport 53 counter accept comment \"dns  lookups\" (+1 packet, 60 bytes)",
            ]
        );
        assert!(after.hits_since(&after).is_empty());
    }

    #[test]
    fn display_lists_rules_with_handles_and_counters() {
        let ruleset = Ruleset::parse(LISTING).unwrap();
        let text = ruleset.to_string();
        assert!(text.starts_with("table inet filter\n  counter ssh_hits: 7 packets, 420 bytes\n  chain input (filter hook input priority filter, policy drop)\n       6  ct state established,related accept\n"), "{text}");
        assert!(
            text.contains(
                "      10  tcp dport { 1, 2, 3, 222 } counter reject   [0 packets, 0 bytes]\n"
            ),
            "{text}"
        );
        assert_eq!(Ruleset::default().to_string(), "(no tables)\n");
    }

    #[test]
    fn bad_listings_name_the_line() {
        let e = Ruleset::parse("tables ip x {\n}\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 1: expected `table FAMILY NAME {`: tables ip x {"
        );
        let e = Ruleset::parse("table ip x { # handle 1\n\tchain c { # handle 1\n").unwrap_err();
        assert_eq!(e.why, "the listing ends inside a block");
        let e = Ruleset::parse("table ipx x {\n}\n").unwrap_err();
        assert_eq!(e.why, "`ipx` is not an nftables family");
    }

    #[test]
    fn rules_over_several_lines_are_joined() {
        let listing = "table ip t { # handle 1\n\tchain c { # handle 1\n\t\tip saddr { 10.0.0.1,\n\t\t\t10.0.0.2 } counter packets 1 bytes 60 accept # handle 2\n\t}\n}\n";
        let ruleset = Ruleset::parse(listing).unwrap();
        let rule = ruleset.rule_matching("10.0.0.2");
        assert_eq!(rule.text, "ip saddr { 10.0.0.1, 10.0.0.2 } counter accept");
        assert_eq!((rule.handle, rule.packets()), (2, 1));
    }
}
