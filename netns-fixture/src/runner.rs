//! What `#[netns_test]` expands to: build the lab, run the body inside a node,
//! tear everything down whatever the body did.
//!
//! Not a public API: the macro's generated code calls these through
//! `netns_fixture::__private`.

use crate::userns::{self, TestReturn};
use crate::{keep, report, Error, Lab};
use netns_fixture_topology::Topology;
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How an `async` body's runtime is made.
#[derive(Debug, Clone, Copy)]
pub enum Flavor {
    /// One thread: the test thread, inside the node.
    CurrentThread,
    /// A multi-thread runtime with this many workers, all inside the node.
    MultiThread(usize),
}

/// What the macro knows of a test besides its body.
#[derive(Debug, Clone, Copy)]
pub struct Test {
    /// The test function's name.
    pub function: &'static str,
    /// `#[should_panic]` is on it: a panic is its success, so a panic writes no
    /// failure report and holds no lab.
    pub should_panic: bool,
}

impl Test {
    /// The name libtest runs the test under (its thread's name, e.g.
    /// `module::case_1` for an rstest case), else the function's name.
    fn full_name(&self) -> String {
        match std::thread::current().name() {
            Some(name) if name.split("::").any(|s| s == self.function) => name.to_string(),
            _ => self.function.to_string(),
        }
    }
}

/// The built-in topology `name` (the macro has checked that it exists).
pub fn builtin(name: &str) -> Topology {
    netns_fixture_topology::builtin::get(name)
        .unwrap_or_else(|| panic!("netns-fixture: no built-in topology `{name}`"))
}

/// The lab, or why this process may not build one (then the test is re-run in
/// a user namespace).
enum Built {
    Lab(Arc<Lab>),
    NotPrivileged(std::io::Error),
}

fn build(topology: &Topology, node: Option<&str>) -> Built {
    let lab = match Lab::build(topology) {
        Ok(lab) => lab,
        Err(Error::NotPrivileged(e)) if !userns::in_child() => return Built::NotPrivileged(e),
        Err(e) => fail_setup(topology, e),
    };
    let node = node.unwrap_or(topology.default_node());
    if let Err(e) = lab.try_node(node) {
        fail_setup(topology, e)
    }
    Built::Lab(Arc::new(lab))
}

/// Ends a test with the body's outcome: drops the lab, stops the process if a
/// person interrupted a kept lab, and in a user-namespace child tells the
/// parent.
fn finish<R: TestReturn>(lab: Arc<Lab>, outcome: std::thread::Result<R>) -> R {
    drop(lab);
    keep::reraise_interrupt();
    if userns::in_child() {
        let report = match &outcome {
            Ok(r) => match r.failure() {
                Some(why) => format!("failed\n{why}"),
                None => "returned\n".to_string(),
            },
            Err(panic) => format!("panicked\n{}", report::panic_message(panic.as_ref())),
        };
        userns::report(&report);
    }
    match outcome {
        Ok(r) => r,
        Err(panic) => resume_unwind(panic),
    }
}

/// A finished body: its outcome and, unless it is `#[should_panic]`, the watch
/// that saw it (with the lab's state at the panic, if it panicked).
struct Observed<'l, R> {
    outcome: std::thread::Result<R>,
    watch: Option<report::Watch<'l>>,
}

/// Runs `body` on a thread already inside `node`, watched: a panic has the lab's
/// state collected before unwinding drops the body's servers and captures.
fn observe<'l, R: TestReturn>(
    lab: &'l Lab,
    node: &str,
    test: &Test,
    body: impl FnOnce() -> R,
) -> Observed<'l, R> {
    let watch = (!test.should_panic).then(|| report::Watch::new(lab, node, &test.full_name()));
    let outcome = catch_unwind(AssertUnwindSafe(body));
    Observed { outcome, watch }
}

impl<R: TestReturn> Observed<'_, R> {
    /// Shows the evidence of a failure (a panic or a failing return): prints the
    /// lab's state and writes the report ([`crate::report`]), then, with
    /// `NETNS_FIXTURE_KEEP`, holds the lab for a person ([`crate::keep`]). The
    /// caller drops the lab, then calls [`keep::reraise_interrupt`].
    fn publish(self, lab: &Lab) -> std::thread::Result<R> {
        let Some(watch) = self.watch else {
            return self.outcome;
        };
        let failure = match &self.outcome {
            Ok(returned) => returned.failure(),
            Err(panic) => Some(report::panic_message(panic.as_ref())),
        };
        match failure {
            None => {
                watch.passed();
            }
            Some(why) => {
                watch.failed(&why);
                drop(watch);
                keep::hold_for_inspection(lab);
            }
        }
        self.outcome
    }
}

/// The failure message of a body that overran `limit`.
fn timeout_message(limit: Duration, lab: &Lab, node: &str) -> String {
    format!(
        "netns-fixture: test body exceeded its timeout of {limit:?} (lab `{}`, node `{node}`)",
        lab.name()
    )
}

/// A body that overran its timeout is still running on its thread: the report
/// and the hold come from the test thread.
fn overran(lab: &Lab, node: &str, test: &Test, message: &str) {
    if !test.should_panic {
        report::on_failure(lab, node, &test.full_name(), message);
        keep::hold_for_inspection(lab);
    }
}

fn fail_setup(topology: &Topology, e: Error) -> ! {
    let message = format!(
        "netns-fixture: could not set up lab `{}`: {e}",
        topology.name()
    );
    if userns::in_child() {
        // The body never runs: the parent learns the outcome from here.
        userns::report(&format!("panicked\n{message}"));
    }
    std::panic::panic_any(message)
}

fn node_name<'a>(lab: &'a Lab, node: Option<&'a str>) -> &'a str {
    node.unwrap_or(lab.topology().default_node())
}

/// Runs a synchronous body on the calling thread, inside `node`.
pub fn run<R: TestReturn>(
    topology: Topology,
    node: Option<&str>,
    test: Test,
    body: impl FnOnce(&Lab) -> R,
) -> R {
    let lab = match build(&topology, node) {
        Built::Lab(lab) => lab,
        Built::NotPrivileged(e) => return userns::run_in_child(test.function, &e),
    };
    let outcome = {
        let _inside = enter(&lab, node);
        observe(&lab, node_name(&lab, node), &test, || body(&lab)).publish(&lab)
    };
    // The thread is home again; the lab goes on success, error and panic alike.
    finish(lab, outcome)
}

/// Runs a synchronous body on its own thread inside `node`, failing the test if it
/// takes longer than `timeout`.
///
/// A thread cannot be stopped from outside: a body that overruns keeps its lab
/// (every namespace is inside the process, nothing in the machine's namespace)
/// until it returns or the test process exits.
pub fn run_with_timeout<R: TestReturn + Send + 'static>(
    topology: Topology,
    node: Option<&str>,
    test: Test,
    timeout: Duration,
    body: impl FnOnce(&Lab) -> R + Send + 'static,
) -> R {
    let lab = match build(&topology, node) {
        Built::Lab(lab) => lab,
        Built::NotPrivileged(e) => return userns::run_in_child(test.function, &e),
    };
    let name = node_name(&lab, node).to_string();
    let (done, wait) = std::sync::mpsc::channel();
    // Whoever sets it first ends the test: the body (done in time), or this
    // thread (timed out). The other one then shows no evidence of its own.
    let claimed = Arc::new(AtomicBool::new(false));
    let body_claimed = Arc::clone(&claimed);
    let thread_lab = Arc::clone(&lab);
    let thread_name = std::thread::current()
        .name()
        .unwrap_or("netns-test")
        .to_string();
    let handle = std::thread::Builder::new()
        .name(thread_name)
        .spawn(move || {
            let result = {
                let _inside = enter(&thread_lab, Some(&name));
                let observed = observe(&thread_lab, &name, &test, || body(&thread_lab));
                if body_claimed.swap(true, Ordering::SeqCst) {
                    None // too late: the test has failed on its timeout already
                } else {
                    // Done in time: the report and a hold do not count against it.
                    let _ = done.send(());
                    Some(observed.publish(&thread_lab))
                }
            };
            drop(thread_lab);
            result
        })
        .expect("spawning the test body thread");
    let in_time = match wait.recv_timeout(timeout) {
        Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => true,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => claimed.swap(true, Ordering::SeqCst),
    };
    let outcome = match in_time {
        true => handle
            .join()
            .expect("the body thread catches panics")
            .expect("the body claimed the outcome"),
        false => {
            let node = node_name(&lab, node);
            let message = timeout_message(timeout, &lab, node);
            overran(&lab, node, &test, &message);
            Err(Box::new(message) as Box<dyn std::any::Any + Send>)
        }
    };
    finish(lab, outcome)
}

/// Runs an `async` body on a runtime whose threads are all inside `node`.
pub fn run_async<R, F>(
    topology: Topology,
    node: Option<&str>,
    test: Test,
    flavor: Flavor,
    timeout: Option<Duration>,
    body: impl FnOnce(Arc<Lab>) -> F,
) -> R
where
    R: TestReturn,
    F: Future<Output = R>,
{
    let lab = match build(&topology, node) {
        Built::Lab(lab) => lab,
        Built::NotPrivileged(e) => return userns::run_in_child(test.function, &e),
    };
    let inside = enter(&lab, node);
    // Built after entering: worker and blocking threads are spawned from here and
    // inherit the namespace, so `tokio::spawn` cannot escape it.
    let runtime = match flavor {
        Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Flavor::MultiThread(workers) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build(),
    }
    .expect("building the test's tokio runtime");
    let future = body(Arc::clone(&lab));
    // `block_on` polls the body on this thread: its panics are this thread's.
    let observed = observe(&lab, node_name(&lab, node), &test, || match timeout {
        None => runtime.block_on(future),
        Some(limit) => runtime
            .block_on(async { tokio::time::timeout(limit, future).await })
            .unwrap_or_else(|_| {
                std::panic::panic_any(timeout_message(limit, &lab, node_name(&lab, node)))
            }),
    });
    let outcome = observed.publish(&lab);
    drop(runtime);
    drop(inside);
    finish(lab, outcome)
}

fn enter(lab: &Lab, node: Option<&str>) -> crate::namespace::EnterGuard {
    let node = lab.node(node_name(lab, node));
    node.enter()
        .unwrap_or_else(|e| panic!("netns-fixture: cannot enter node `{}`: {e}", node.name()))
}

/// The topology of a file the macro has read and checked at compile time.
pub fn from_toml(text: &str, name: &str) -> Topology {
    Topology::from_toml(text, name).unwrap_or_else(|e| {
        panic!("netns-fixture: topology file `{name}` changed and no longer reads: {e}")
    })
}
