//! The attribute's options, parsed and checked.

use netns_fixture_topology::builtin;
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Lit, LitStr, Meta, Token};

/// Where the lab's description comes from.
pub enum TopologySource {
    Builtin(LitStr),
    File {
        literal: LitStr,
        path: std::path::PathBuf,
        topology: Box<netns_fixture_topology::Topology>,
    },
    /// `topology = path::to_fn`: a `fn() -> Topology`, called at run time.
    Function(syn::ExprPath),
    /// Any other expression (`servers(3)`, `my_mod::lab()`, a block), evaluated at
    /// run time in the test function; it must have the type `Topology`.
    Expr(Box<Expr>),
}

/// The accepted forms of `topology = ...`, for error messages.
const TOPOLOGY_FORMS: &str = "a built-in's name (`topology = \"pair\"`), a topology file (`topology = \"labs/office.toml\"`), a function returning `Topology` (`topology = my_lab`) or an expression of type `Topology` (`topology = servers(3)`)";

pub enum Flavor {
    CurrentThread,
    MultiThread(Option<usize>),
}

pub struct Options {
    pub topology: TopologySource,
    pub node: Option<LitStr>,
    pub timeout_ms: Option<u64>,
    pub flavor: Flavor,
    pub flavor_span: Option<Span>,
}

impl Options {
    pub fn parse(args: TokenStream) -> syn::Result<Options> {
        let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args.clone())?;
        let mut topology = None;
        let mut node = None;
        let mut timeout_ms = None;
        let mut flavor_name: Option<LitStr> = None;
        let mut workers: Option<(usize, Span)> = None;
        for meta in metas {
            let Meta::NameValue(nv) = &meta else {
                return Err(syn::Error::new(
                    meta.span(),
                    "expected `name = value`, e.g. `topology = \"pair\"`",
                ));
            };
            let key = nv
                .path
                .get_ident()
                .map(|i| i.to_string())
                .unwrap_or_default();
            let once = |seen: bool| {
                if seen {
                    Err(syn::Error::new(
                        nv.path.span(),
                        format!("`{key}` is given twice"),
                    ))
                } else {
                    Ok(())
                }
            };
            match key.as_str() {
                "topology" => {
                    once(topology.is_some())?;
                    topology = Some(topology_source(&nv.value)?);
                }
                "node" => {
                    once(node.is_some())?;
                    node = Some(string(&nv.value, "node")?);
                }
                "timeout" => {
                    once(timeout_ms.is_some())?;
                    let text = string(&nv.value, "timeout")?;
                    timeout_ms = Some(parse_duration(&text.value()).map_err(|e| syn::Error::new(text.span(), e))?);
                }
                "flavor" => {
                    once(flavor_name.is_some())?;
                    flavor_name = Some(string(&nv.value, "flavor")?);
                }
                "worker_threads" => {
                    once(workers.is_some())?;
                    let Expr::Lit(ExprLit { lit: Lit::Int(n), .. }) = &nv.value else {
                        return Err(syn::Error::new(nv.value.span(), "`worker_threads` takes a number"));
                    };
                    let count: usize = n.base10_parse()?;
                    if count == 0 {
                        return Err(syn::Error::new(n.span(), "`worker_threads` must be at least 1"));
                    }
                    workers = Some((count, n.span()));
                }
                _ => {
                    return Err(syn::Error::new(
                        nv.path.span(),
                        format!("unknown option `{}`: expected `topology`, `node`, `timeout`, `flavor` or `worker_threads`", nv.path.to_token_stream()),
                    ))
                }
            }
        }
        let topology = topology.ok_or_else(|| {
            syn::Error::new(
                Span::call_site(),
                format!(
                    "missing `topology = ...`: give {TOPOLOGY_FORMS}; the built-ins are {}",
                    builtin::NAMES.join(", ")
                ),
            )
        })?;
        let worker_count = workers.map(|(count, _)| count);
        let flavor = match flavor_name.as_ref().map(LitStr::value).as_deref() {
            None if workers.is_none() => Flavor::CurrentThread,
            None | Some("multi_thread") => Flavor::MultiThread(worker_count),
            Some("current_thread") => match workers {
                Some((_, span)) => {
                    return Err(syn::Error::new(
                        span,
                        "`worker_threads` needs `flavor = \"multi_thread\"`",
                    ))
                }
                None => Flavor::CurrentThread,
            },
            Some(other) => {
                return Err(syn::Error::new(
                    flavor_name.as_ref().map_or(Span::call_site(), LitStr::span),
                    format!(
                        "unknown flavor `{other}`: expected `current_thread` or `multi_thread`"
                    ),
                ))
            }
        };
        let options = Options {
            topology,
            node,
            timeout_ms,
            flavor,
            flavor_span: flavor_name
                .map(|f| f.span())
                .or(workers.map(|(_, span)| span)),
        };
        options.check_builtin()?;
        Ok(options)
    }

    /// Built-ins and files are known here: mistakes in them are compile errors. A
    /// function's or expression's topology exists only at run time, where a `node`
    /// it lacks fails the test before the body runs.
    fn check_builtin(&self) -> syn::Result<()> {
        let (name, topology) = match &self.topology {
            TopologySource::Function(_) | TopologySource::Expr(_) => return Ok(()),
            TopologySource::File { literal, topology, .. } => (literal, (**topology).clone()),
            TopologySource::Builtin(name) => match builtin::get(&name.value()) {
                Some(topology) => (name, topology),
                None => {
                    return Err(syn::Error::new(
                        name.span(),
                        format!(
                            "unknown topology `{}`: the built-in topologies are {} (a topology file's name ends in `.toml`; a function or expression returning `Topology` is written without quotes: `topology = my_lab`)",
                            name.value(),
                            builtin::NAMES.join(", ")
                        ),
                    ))
                }
            },
        };
        if let Some(node) = &self.node {
            if topology.node(&node.value()).is_none() {
                let nodes: Vec<&str> = topology.nodes().iter().map(|n| n.name.as_str()).collect();
                return Err(syn::Error::new(
                    node.span(),
                    format!(
                        "unknown node `{}` in topology `{}`: its nodes are {}",
                        node.value(),
                        name.value(),
                        nodes.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A bare path that is one of the test function's parameters (an rstest
    /// `#[case] topology: Topology`) names that value, not a function.
    pub fn resolve_parameters<'a>(&mut self, parameters: impl IntoIterator<Item = &'a syn::Ident>) {
        if let TopologySource::Function(path) = &self.topology {
            if let Some(ident) = path.path.get_ident() {
                if path.qself.is_none() && parameters.into_iter().any(|p| p == ident) {
                    self.topology = TopologySource::Expr(Box::new(Expr::Path(path.clone())));
                }
            }
        }
    }

    /// The expression that yields the `Topology` at run time.
    pub fn topology_expr(&self) -> TokenStream {
        match &self.topology {
            TopologySource::Builtin(name) => quote!(::netns_fixture::__private::builtin(#name)),
            // Spanned at the user's tokens: a path or expression of the wrong type is
            // a type error pointing at it.
            TopologySource::Function(path) => quote_spanned! {path.span()=>
                {
                    let __netns_fixture_topology: fn() -> ::netns_fixture::topology::Topology = #path;
                    __netns_fixture_topology()
                }
            },
            TopologySource::Expr(expr) => quote_spanned! {expr.span()=>
                {
                    let __netns_fixture_topology: ::netns_fixture::topology::Topology = #expr;
                    __netns_fixture_topology
                }
            },
            TopologySource::File { path, topology, .. } => {
                let path = path.to_string_lossy().into_owned();
                let name = topology.name();
                // include_str! makes cargo rebuild the test when the file changes.
                quote!(::netns_fixture::__private::from_toml(::core::include_str!(#path), #name))
            }
        }
    }
}

/// What `topology = VALUE` names: a string is a built-in or a file (checked now); a
/// bare path is a `fn() -> Topology`; any other expression is evaluated at run time.
fn topology_source(value: &Expr) -> syn::Result<TopologySource> {
    match value {
        // A `$topology:expr` of a `macro_rules!` arrives in an invisible group.
        Expr::Group(group) => topology_source(&group.expr),
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) if s.value().ends_with(".toml") => load_file(s),
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(TopologySource::Builtin(s.clone())),
        Expr::Lit(other) => Err(syn::Error::new(
            other.span(),
            format!("`topology` takes {TOPOLOGY_FORMS}"),
        )),
        Expr::Path(path) => Ok(TopologySource::Function(path.clone())),
        other => Ok(TopologySource::Expr(Box::new(other.clone()))),
    }
}

/// Reads and checks a topology file, relative to the crate being compiled (or, failing
/// that, to the source file that names it).
fn load_file(literal: &LitStr) -> syn::Result<TopologySource> {
    let relative = std::path::PathBuf::from(literal.value());
    let crate_dir = std::env::var_os("CARGO_MANIFEST_DIR").map(std::path::PathBuf::from);
    let mut candidates: Vec<std::path::PathBuf> =
        crate_dir.iter().map(|d| d.join(&relative)).collect();
    if let Some(dir) = proc_macro::Span::call_site()
        .local_file()
        .and_then(|f| f.parent().map(|p| p.to_path_buf()))
    {
        candidates.push(dir.join(&relative));
    }
    let Some(path) = candidates.iter().find(|p| p.is_file()) else {
        return Err(syn::Error::new(
            literal.span(),
            format!(
                "topology file `{}` not found (looked in {})",
                literal.value(),
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        ));
    };
    let path = path.canonicalize().unwrap_or_else(|_| path.clone());
    let stem = relative
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let text = std::fs::read_to_string(&path).map_err(|e| {
        syn::Error::new(
            literal.span(),
            format!("cannot read `{}`: {e}", literal.value()),
        )
    })?;
    let topology = netns_fixture_topology::Topology::from_toml(&text, &stem).map_err(|e| {
        let at = match e.location {
            Some((line, column)) => format!(":{line}:{column}"),
            None => String::new(),
        };
        syn::Error::new(
            literal.span(),
            format!("{}{at}: {}", literal.value(), e.message),
        )
    })?;
    Ok(TopologySource::File {
        literal: literal.clone(),
        path,
        topology: Box::new(topology),
    })
}

fn string(value: &Expr, key: &str) -> syn::Result<LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s.clone()),
        other => Err(syn::Error::new(
            other.span(),
            format!("`{key}` takes a string, e.g. `{key} = \"...\"`"),
        )),
    }
}

/// `"250ms"`, `"10s"`, `"2m"` in milliseconds.
fn parse_duration(text: &str) -> Result<u64, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || {
        format!("cannot read `{text}` as a duration: write it like \"500ms\", \"10s\" or \"2m\"")
    };
    let number: u64 = number.parse().map_err(|_| bad())?;
    let factor = match unit.trim() {
        "ms" => 1,
        "s" => 1000,
        "m" | "min" => 60_000,
        _ => return Err(bad()),
    };
    match number * factor {
        0 => Err(format!("timeout `{text}` is zero")),
        ms => Ok(ms),
    }
}
