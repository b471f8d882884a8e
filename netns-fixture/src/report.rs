//! Failure reports: when a test body fails, what its lab looked like at that moment.
//!
//! The test's output gets the lab's address plan and, for every node, its links,
//! addresses, routes, neighbours, listening sockets and nftables ruleset with
//! counters (see [`crate::inspect`]). The packets of the node captures the test
//! started are kept as pcap files. Everything goes into a directory per test,
//! `<target>/netns-fixture/reports/<test name>/`, overwritten by the next failure of
//! the same test:
//!
//! - `report.html`: one self-contained page (no script, nothing fetched) with a
//!   diagram of the topology ([`crate::diagram`]) and each node's state;
//! - `summary.txt`: the text printed in the test's output;
//! - `topology.svg`, `nodes/<node>.txt`, `captures/<node>-<interface>-<n>.pcap`.
//!
//! `NETNS_FIXTURE_REPORT=always` writes a report for passing tests too;
//! `NETNS_FIXTURE_REPORT=never` writes none (the failure output still has the
//! state). By default a passing test writes nothing and removes a stale report of
//! its own.

use crate::capture::Snapshot;
use crate::diagram::{escape, Diagram};
use crate::inspect::NodeState;
use crate::Lab;
use std::any::Any;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The environment variable choosing when reports are written.
pub const REPORT_VAR: &str = "NETNS_FIXTURE_REPORT";

/// How many packet lines of each capture the text summary shows, the last ones
/// (the pcap file and the HTML page have them all).
const SUMMARY_PACKETS: usize = 20;

/// When reports are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    OnFailure,
    Always,
    Never,
}

fn policy() -> Policy {
    let value = std::env::var(REPORT_VAR).ok();
    let (policy, complaint) = policy_from(value.as_deref());
    if let Some(complaint) = complaint {
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| eprintln!("netns-fixture: {complaint}"));
    }
    policy
}

/// The policy a value of `NETNS_FIXTURE_REPORT` asks for, and what to tell the
/// user when the value means nothing (then the default applies).
fn policy_from(value: Option<&str>) -> (Policy, Option<String>) {
    match value.map(str::trim) {
        Some("always") | Some("1") => (Policy::Always, None),
        Some("never") | Some("0") | Some("off") => (Policy::Never, None),
        None | Some("") | Some("on-failure") => (Policy::OnFailure, None),
        Some(other) => (
            Policy::OnFailure,
            Some(format!(
                "{REPORT_VAR}={other} is not understood (use always, never or on-failure): \
                 writing reports for failing tests only"
            )),
        ),
    }
}

/// Called when a test body failed (panic, `Err`, timeout): prints the lab's state
/// to stderr — the test's captured output, shown with the failure — and writes
/// the report directory. Returns the directory, or `None` when no report was
/// written (`NETNS_FIXTURE_REPORT=never`, no target directory found, or an I/O
/// error, which is printed).
///
/// ```ignore
/// // In the runner, once the body's panic or `Err` is known:
/// let dir = crate::report::on_failure(&lab, "client", "tests::it_fails", "assertion failed");
/// ```
pub fn on_failure(lab: &Lab, node: &str, test: &str, message: &str) -> Option<PathBuf> {
    Report::collect(lab, node, test, Some(message)).publish()
}

/// Called when a test body passed: writes a report only with
/// `NETNS_FIXTURE_REPORT=always` (and says where on stderr); otherwise removes a
/// failure report this test left earlier, so that what is there is current.
///
/// ```ignore
/// crate::report::on_success(&lab, "client", "tests::it_works");
/// ```
pub fn on_success(lab: &Lab, node: &str, test: &str) -> Option<PathBuf> {
    match policy() {
        Policy::Always => {
            let report = Report::collect(lab, node, test, None);
            let written = report.write_and_say();
            if let Some(dir) = &written {
                eprintln!(
                    "netns-fixture: report of `{test}` (passed): {}",
                    dir.join("report.html").display()
                );
            }
            written
        }
        _ => {
            if let Some(dir) = report_dir(test) {
                if dir.join("report.html").is_file() {
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
            None
        }
    }
}

/// Watches a test body on the calling thread: if it panics, the lab is inspected
/// by the panic hook, before unwinding drops the body's servers, captures and
/// connections, so the report shows the lab as it was at the failing line. Create
/// it on the thread that runs the body; then call [`Watch::failed`] or
/// [`Watch::passed`] once the outcome is known.
///
/// ```ignore
/// let watch = crate::report::Watch::new(&lab, "client", "tests::it_works");
/// let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&lab)));
/// match &outcome {
///     Ok(_) => { watch.passed(); }
///     Err(panic) => { watch.failed(&crate::report::panic_message(&**panic)); }
/// }
/// ```
pub struct Watch<'l> {
    watched: Box<Watched<'l>>,
    previous: *const (),
}

struct Watched<'l> {
    lab: &'l Lab,
    node: String,
    test: String,
    /// The report the panic hook collected, with where the panic happened.
    at_panic: std::sync::Mutex<Option<(Report, Option<String>)>>,
}

thread_local! {
    /// The innermost [`Watch`] of this thread (a `*const Watched`), or null.
    static WATCHED: std::cell::Cell<*const ()> = const { std::cell::Cell::new(std::ptr::null()) };
}

impl<'l> Watch<'l> {
    /// Starts watching the calling thread for panics of the body running in
    /// `node` of `lab`, for the test called `test`.
    pub fn new(lab: &'l Lab, node: &str, test: &str) -> Watch<'l> {
        install_panic_hook();
        let watched = Box::new(Watched {
            lab,
            node: node.to_string(),
            test: test.to_string(),
            at_panic: std::sync::Mutex::new(None),
        });
        let current = (&*watched as *const Watched<'l>).cast::<()>();
        let previous = WATCHED.with(|w| w.replace(current));
        Watch { watched, previous }
    }

    /// The body failed with `message`: prints the state and writes the report,
    /// from what the panic hook saw if the body panicked, else from now (an `Err`
    /// return). Returns the report directory, as [`on_failure`] does.
    pub fn failed(&self, message: &str) -> Option<PathBuf> {
        let at_panic = self
            .watched
            .at_panic
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let report = match at_panic {
            Some((mut report, location)) => {
                report.message = Some(match location {
                    Some(location) => format!(
                        "{message}
(panicked at {location})"
                    ),
                    None => message.to_string(),
                });
                report
            }
            None => Report::collect(
                self.watched.lab,
                &self.watched.node,
                &self.watched.test,
                Some(message),
            ),
        };
        report.publish()
    }

    /// The body passed: see [`on_success`].
    pub fn passed(&self) -> Option<PathBuf> {
        on_success(self.watched.lab, &self.watched.node, &self.watched.test)
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        WATCHED.with(|w| w.set(self.previous));
    }
}

/// Installs (once) a panic hook that, on a watched thread, collects the report
/// before handing over to the previous hook.
fn install_panic_hook() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let current = WATCHED.with(|w| w.get());
            if !current.is_null() {
                // SAFETY: a non-null pointer is the innermost live `Watch` of this
                // thread: it clears the pointer when dropped.
                let watched = unsafe { &*current.cast::<Watched<'_>>() };
                let location = info.location().map(|l| l.to_string());
                // On a thread of its own: a panic while collecting must not become
                // a panic inside this panic.
                let report = std::thread::scope(|scope| {
                    std::thread::Builder::new()
                        .name("netns-fixture-report".into())
                        .spawn_scoped(scope, || {
                            Report::collect(watched.lab, &watched.node, &watched.test, Some(""))
                        })
                        .ok()
                        .and_then(|handle| handle.join().ok())
                });
                if let Some(report) = report {
                    *watched
                        .at_panic
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) =
                        Some((report, location));
                }
            }
            previous(info);
        }));
    });
}

/// The text of a panic payload (`&str` or `String`), as the default hook prints it.
///
/// ```ignore
/// let payload = std::panic::catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
/// assert_eq!(crate::report::panic_message(&*payload), "boom 1");
/// ```
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "the test body panicked (with a payload that is not a string)".to_string()
    }
}

/// `<target>/netns-fixture/reports`: the target directory is `CARGO_TARGET_DIR`
/// when absolute, else the ancestor of the running executable that holds cargo's
/// `CACHEDIR.TAG` (`target/debug/deps/x` → `target`). Found once per process:
/// every passing test asks (to remove a stale report of its own).
fn reports_root() -> Option<PathBuf> {
    static ROOT: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    ROOT.get_or_init(find_reports_root).clone()
}

fn find_reports_root() -> Option<PathBuf> {
    let from_env = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from);
    let target = match from_env {
        Some(dir) if dir.is_absolute() => Some(dir),
        relative => std::env::current_exe()
            .ok()
            .and_then(|exe| {
                exe.ancestors()
                    .skip(1)
                    .find(|d| d.join("CACHEDIR.TAG").is_file())
                    .map(Path::to_path_buf)
            })
            .or_else(|| {
                let dir = relative?;
                Some(std::env::current_dir().ok()?.join(dir))
            }),
    }?;
    Some(target.join("netns-fixture").join("reports"))
}

/// The directory of `test`'s report.
fn report_dir(test: &str) -> Option<PathBuf> {
    Some(reports_root()?.join(directory_name(test)))
}

/// `test` as one path component: letters, digits, `_-.:` kept, others `_`.
fn directory_name(test: &str) -> String {
    let name: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-.:".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    match name.as_str() {
        "" | "." | ".." => "_".to_string(),
        _ => name,
    }
}

/// A capture kept for the report.
struct Kept {
    node: String,
    snapshot: Snapshot,
    file: String,
}

/// Everything a report shows, collected once.
struct Report {
    test: String,
    lab: String,
    node: String,
    message: Option<String>,
    plan: String,
    svg: String,
    states: Vec<NodeState>,
    captures: Vec<Kept>,
    when: SystemTime,
}

impl Report {
    /// Writes the report (unless `NETNS_FIXTURE_REPORT=never`) and prints the summary.
    fn publish(&self) -> Option<PathBuf> {
        let written = match policy() {
            Policy::Never => None,
            _ => self.write_and_say(),
        };
        eprint!("{}", self.summary(written.as_deref()));
        written
    }

    fn collect(lab: &Lab, node: &str, test: &str, message: Option<&str>) -> Report {
        let note = if message.is_some() {
            "test failed here"
        } else {
            "test ran here"
        };
        // The nodes first: meanwhile the capture threads read what is still queued.
        let states = lab.nodes().iter().map(|n| n.state()).collect();
        let mut captures = Vec::new();
        for n in lab.nodes() {
            for (i, snapshot) in n.captures().snapshot().into_iter().enumerate() {
                let file = format!(
                    "{}-{}-{}.pcap",
                    directory_name(n.name()),
                    directory_name(snapshot.captured.interface()),
                    i + 1
                );
                captures.push(Kept {
                    node: n.name().to_string(),
                    snapshot,
                    file,
                });
            }
        }
        Report {
            test: test.to_string(),
            lab: lab.name().to_string(),
            node: node.to_string(),
            message: message.map(str::to_string),
            plan: lab.to_string(),
            svg: Diagram::new(lab.topology()).mark(node, note).to_svg(),
            states,
            captures,
            when: SystemTime::now(),
        }
    }

    /// Writes the directory; on failure says why on stderr.
    fn write_and_say(&self) -> Option<PathBuf> {
        let Some(dir) = report_dir(&self.test) else {
            eprintln!(
                "netns-fixture: no report written: no cargo target directory found \
                 (set CARGO_TARGET_DIR to an absolute path)"
            );
            return None;
        };
        match self.write(&dir) {
            Ok(()) => Some(dir),
            Err(e) => {
                eprintln!(
                    "netns-fixture: could not write the report in {}: {e}",
                    dir.display()
                );
                None
            }
        }
    }

    fn write(&self, dir: &Path) -> io::Result<()> {
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        std::fs::create_dir_all(dir.join("nodes"))?;
        if !self.captures.is_empty() {
            std::fs::create_dir_all(dir.join("captures"))?;
        }
        for kept in &self.captures {
            kept.snapshot
                .captured
                .write_pcap(dir.join("captures").join(&kept.file))
                .map_err(io::Error::other)?;
        }
        for state in &self.states {
            std::fs::write(
                dir.join("nodes")
                    .join(format!("{}.txt", directory_name(&state.node))),
                state.to_string(),
            )?;
        }
        std::fs::write(dir.join("topology.svg"), &self.svg)?;
        std::fs::write(dir.join("summary.txt"), self.summary(Some(dir)))?;
        std::fs::write(dir.join("report.html"), self.html())
    }

    fn outcome(&self) -> &'static str {
        if self.message.is_some() {
            "failed"
        } else {
            "passed"
        }
    }

    /// The text for the test's output (and `summary.txt`).
    fn summary(&self, dir: Option<&Path>) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nnetns-fixture: test `{}` {} in lab `{}` (the body ran in node `{}`)",
            self.test,
            self.outcome(),
            self.lab,
            self.node
        );
        if let Some(message) = &self.message {
            for line in message.lines() {
                let _ = writeln!(out, "  | {line}");
            }
        }
        let _ = writeln!(out, "\nAddress plan:\n{}", self.plan);
        for state in &self.states {
            let _ = writeln!(out, "{state}");
        }
        if self.captures.is_empty() {
            out.push_str("No capture was started with Node::capture.\n");
        } else {
            out.push_str("Captures (read them with `tcpdump -n -r FILE`):\n");
            for kept in &self.captures {
                let captured = &kept.snapshot.captured;
                let place = match dir {
                    Some(dir) => dir.join("captures").join(&kept.file).display().to_string(),
                    None => "not written".to_string(),
                };
                let _ = writeln!(
                    out,
                    "  {}/{} filter {}, {}: {} packet(s) -> {place}",
                    kept.node,
                    captured.interface(),
                    captured.filter(),
                    kept.snapshot.status.describe(),
                    captured.len()
                );
                // The last packets: what happened just before the failure.
                let lines = captured.lines();
                let skipped = lines.len().saturating_sub(SUMMARY_PACKETS);
                if skipped > 0 {
                    let _ = writeln!(out, "    ... {skipped} earlier packet(s) in the file");
                }
                for line in &lines[skipped..] {
                    let _ = writeln!(out, "    {line}");
                }
            }
        }
        if let Some(dir) = dir {
            let _ = writeln!(
                out,
                "\nReport: {}\n  (with summary.txt, topology.svg, nodes/*.txt{})",
                dir.join("report.html").display(),
                if self.captures.is_empty() {
                    ""
                } else {
                    ", captures/*.pcap"
                }
            );
        }
        out
    }

    /// The self-contained page.
    fn html(&self) -> String {
        let mut out = String::new();
        let title = format!("{} {} — lab {}", self.test, self.outcome(), self.lab);
        let _ = write!(
            out,
            concat!(
                "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
                "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; ",
                "style-src 'unsafe-inline'\">",
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
                "<title>{}</title><style>{}</style></head><body>\n"
            ),
            escape(&title),
            CSS
        );
        let _ = writeln!(
            out,
            "<header class=\"{}\"><h1><span class=\"badge\">{}</span> <code>{}</code></h1>\
             <p>lab <b>{}</b> · the body ran in node <b>{}</b> · {}</p></header>",
            self.outcome(),
            self.outcome().to_uppercase(),
            escape(&self.test),
            escape(&self.lab),
            escape(&self.node),
            utc(self.when)
        );
        if let Some(message) = &self.message {
            let _ = writeln!(
                out,
                "<section><h2>Failure</h2><pre class=\"message\">{}</pre></section>",
                escape(message)
            );
        }
        let _ = writeln!(
            out,
            "<section><h2>Topology</h2><div class=\"diagram\">{}</div>\
             <details><summary>Address plan</summary><pre>{}</pre></details></section>",
            self.svg,
            escape(&self.plan)
        );
        out.push_str("<section><h2>Nodes</h2>\n");
        for state in &self.states {
            let open = if state.node == self.node { " open" } else { "" };
            let problems = if state.problems.is_empty() {
                String::new()
            } else {
                format!(
                    " <span class=\"warn\">({} part(s) unreadable)</span>",
                    state.problems.len()
                )
            };
            let _ = write!(
                out,
                "<details class=\"node\" id=\"node-{}\"{open}><summary>{}{problems}</summary>",
                escape(&directory_name(&state.node)),
                escape(&state.node)
            );
            for (title, lines) in state.sections() {
                let body = if lines.is_empty() {
                    "(none)".to_string()
                } else {
                    lines.join("\n")
                };
                let _ = write!(
                    out,
                    "<h3>{}</h3><pre>{}</pre>",
                    escape(title),
                    escape(&body)
                );
            }
            out.push_str("</details>\n");
        }
        out.push_str("</section>\n<section><h2>Captures</h2>\n");
        if self.captures.is_empty() {
            out.push_str("<p>No capture was started with <code>Node::capture</code>.</p>\n");
        } else {
            out.push_str(
                "<table><tr><th>node/interface</th><th>filter</th><th>state</th>\
                 <th>packets</th><th>pcap file</th></tr>\n",
            );
            for kept in &self.captures {
                let captured = &kept.snapshot.captured;
                let _ = writeln!(
                    out,
                    "<tr><td>{}/{}</td><td><code>{}</code></td><td>{}</td><td>{}</td>\
                     <td><a href=\"captures/{}\">{}</a></td></tr>",
                    escape(&kept.node),
                    escape(captured.interface()),
                    escape(captured.filter()),
                    kept.snapshot.status.describe(),
                    captured.len(),
                    escape(&kept.file),
                    escape(&kept.file)
                );
            }
            out.push_str("</table>\n");
            for kept in &self.captures {
                let captured = &kept.snapshot.captured;
                let _ = writeln!(
                    out,
                    "<details class=\"capture\"><summary>{}/{}: {} packet(s)</summary><pre>{}</pre></details>",
                    escape(&kept.node),
                    escape(captured.interface()),
                    captured.len(),
                    escape(&captured.to_string())
                );
            }
        }
        out.push_str(
            "</section>\n<footer>Written by netns-fixture. Files beside this page: \
             summary.txt, topology.svg, nodes/*.txt, captures/*.pcap \
             (<code>tcpdump -n -r FILE</code>).</footer>\n</body></html>\n",
        );
        out
    }
}

const CSS: &str = concat!(
    "body{font-family:system-ui,sans-serif;margin:0;color:#1d2b3a;background:#fff}",
    "header{padding:14px 24px;border-bottom:1px solid #d5dde6}",
    "header.failed{background:#fff1ef}header.passed{background:#eefaf1}",
    "h1{font-size:20px;margin:0 0 6px}h1 code{font-size:19px}",
    "h2{font-size:17px;margin:22px 0 8px;border-bottom:1px solid #e3e8ee;padding-bottom:4px}",
    "h3{font-size:13px;margin:12px 0 4px;color:#46688f}",
    ".badge{display:inline-block;padding:2px 8px;border-radius:4px;color:#fff;font-size:14px;vertical-align:middle}",
    ".failed .badge{background:#c0392b}.passed .badge{background:#27ae60}",
    "header p{margin:0;color:#445566}",
    "section{padding:0 24px}",
    "pre{background:#f6f8fa;border:1px solid #e3e8ee;border-radius:4px;padding:8px 10px;",
    "overflow-x:auto;font-size:12.5px;line-height:1.35;margin:4px 0}",
    "pre.message{background:#fff6f5;border-color:#f0c4be;white-space:pre-wrap}",
    ".diagram{overflow-x:auto;border:1px solid #e3e8ee;border-radius:6px;padding:6px;background:#fcfdff}",
    "details{margin:6px 0}",
    "details.node{border:1px solid #d5dde6;border-radius:6px;padding:4px 12px}",
    "details>summary{cursor:pointer;font-weight:bold;padding:4px 0}",
    ".warn{color:#c0392b;font-weight:normal}",
    "table{border-collapse:collapse;font-size:13px}",
    "td,th{border:1px solid #d5dde6;padding:4px 8px;text-align:left}th{background:#f0f3f7}",
    "footer{padding:18px 24px;color:#5b6b7c;font-size:12px}"
);

/// `2024-05-01 12:00:00 UTC`.
fn utc(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn report_values_are_read_and_unknown_ones_are_named() {
        assert_eq!(policy_from(None), (Policy::OnFailure, None));
        assert_eq!(policy_from(Some("always")).0, Policy::Always);
        assert_eq!(policy_from(Some(" never ")).0, Policy::Never);
        let (policy, complaint) = policy_from(Some("sometimes"));
        assert_eq!(policy, Policy::OnFailure);
        let complaint = complaint.expect("an unknown value is said");
        assert!(complaint.contains("NETNS_FIXTURE_REPORT=sometimes is not understood"));
    }

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            utc(UNIX_EPOCH + Duration::from_secs(1_709_210_096)),
            "2024-02-29 12:34:56 UTC"
        );
    }

    #[test]
    fn test_names_become_one_directory() {
        assert_eq!(directory_name("tests::a_b"), "tests::a_b");
        assert_eq!(directory_name("x/../y z"), "x_.._y_z");
        assert_eq!(directory_name(".."), "_");
    }

    #[test]
    fn panic_messages_are_read_from_str_and_string() {
        let payload = std::panic::catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
        assert_eq!(panic_message(&*payload), "boom 1");
        let payload = std::panic::catch_unwind(|| panic!("static")).unwrap_err();
        assert_eq!(panic_message(&*payload), "static");
    }
}
