//! The `#[netns_test]` attribute of [netns-fixture](https://docs.rs/netns-fixture).
//!
//! This crate only parses and checks the attribute, then generates a call into the
//! library (`netns_fixture::__private`); use it through `netns_fixture::netns_test`.

use proc_macro::TokenStream;

mod expand;
mod options;

/// Runs a test inside a lab built just for it.
///
/// ```ignore
/// use netns_fixture::prelude::*;
///
/// #[netns_test(topology = "two_servers")]            // runs in the lab's default node
/// fn client_reaches_router(lab: &Lab) { /* ... */ }
///
/// #[netns_test(topology = "lan", node = "ns1", timeout = "10s")]
/// async fn ns1_pings_gateway() -> Result<(), Error> { Ok(()) }
/// ```
///
/// Options:
/// - `topology = "NAME"`: a built-in (`pair`, `host_ns`, `lan`, `two_servers`),
///   checked at compile time.
/// - `topology = "path/to/lab.toml"`: a topology file, relative to the crate's
///   manifest directory (or to the source file), read and checked at compile time.
/// - `topology = path::to_fn`: a `fn() -> Topology`, called when the test runs
///   (but a parameter's name, such as an rstest `#[case] topology: Topology`,
///   names that parameter).
/// - `topology = EXPR`: any expression of type `Topology`, evaluated when the test
///   runs, in the test function (so `#[rstest]` case parameters are in scope):
///   `topology = servers(3)`, `topology = my_mod::lab()`, a block.
/// - `node = "NAME"`: where the body runs. Checked at compile time for built-ins
///   and files; for a function or expression, a node the topology lacks fails the
///   test before the body runs.
/// - `timeout = "500ms" | "10s" | "2m"`: fail the test if the body takes longer.
/// - `flavor = "current_thread" | "multi_thread"`, `worker_threads = N`: the
///   runtime of an `async` body (default: current thread).
///
/// The optional parameter `lab: &Lab` gives the body the lab's nodes. Put
/// `#[netns_test]` above `#[rstest]` to combine it with cases: the other
/// parameters are rstest's.
#[proc_macro_attribute]
pub fn netns_test(args: TokenStream, item: TokenStream) -> TokenStream {
    match expand::expand(args.into(), item.into()) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}
