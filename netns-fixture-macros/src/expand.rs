//! Turning the annotated function into a `#[test]` that runs it inside a lab.

use crate::options::{Flavor, Options};
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, Pat, ReturnType, Type};

pub fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut function: ItemFn = syn::parse2(item)?;
    let mut options = Options::parse(args)?;
    check_signature(&function)?;

    let with_rstest = function
        .attrs
        .iter()
        .any(|a| last_segment_is(a.path(), "rstest"));
    if let Some(test) = function
        .attrs
        .iter()
        .find(|a| last_segment_is(a.path(), "test"))
    {
        return Err(syn::Error::new(
            test.meta.span(),
            "remove this `#[test]`: `#[netns_test]` makes the function a test already",
        ));
    }
    let lab_param = take_lab_param(&mut function)?;
    options.resolve_parameters(function.sig.inputs.iter().filter_map(|input| match input {
        FnArg::Typed(typed) => match &*typed.pat {
            Pat::Ident(p) => Some(&p.ident),
            _ => None,
        },
        FnArg::Receiver(_) => None,
    }));
    if !with_rstest {
        if let Some(extra) = function.sig.inputs.first() {
            return Err(syn::Error::new(
                extra.span(),
                "a `#[netns_test]` function takes no parameter but `lab: &Lab`; for cases, put `#[rstest]` below `#[netns_test]`",
            ));
        }
    }

    let is_async = function.sig.asyncness.take().is_some();
    if !is_async {
        if let Some(span) = options.flavor_span {
            return Err(syn::Error::new(
                span,
                "`flavor` and `worker_threads` apply to `async` test functions only",
            ));
        }
    }

    let output: Type = match &function.sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => (**ty).clone(),
    };
    let (lab_ident, bind_lab) = match &lab_param {
        Some((pat, ty)) => (
            quote!(__netns_fixture_lab),
            quote!(let #pat: #ty = &*__netns_fixture_lab;),
        ),
        None => (
            quote!(__netns_fixture_lab),
            quote!(let _ = &__netns_fixture_lab;),
        ),
    };
    let body = &function.block;
    let topology = options.topology_expr();
    let node = match &options.node {
        Some(node) => quote!(::core::option::Option::Some(#node)),
        None => quote!(::core::option::Option::None),
    };
    let function_name = function.sig.ident.to_string();
    let should_panic = function
        .attrs
        .iter()
        .any(|a| last_segment_is(a.path(), "should_panic"));
    let test = quote! {
        ::netns_fixture::__private::Test { function: #function_name, should_panic: #should_panic }
    };
    let timeout = options
        .timeout_ms
        .map(|ms| quote!(::core::time::Duration::from_millis(#ms)));

    let call = if is_async {
        let flavor = match options.flavor {
            Flavor::CurrentThread => quote!(::netns_fixture::__private::Flavor::CurrentThread),
            Flavor::MultiThread(n) => {
                let n = n.unwrap_or(2);
                quote!(::netns_fixture::__private::Flavor::MultiThread(#n))
            }
        };
        let timeout = match timeout {
            Some(t) => quote!(::core::option::Option::Some(#t)),
            None => quote!(::core::option::Option::None),
        };
        quote! {
            ::netns_fixture::__private::run_async(#topology, #node, #test, #flavor, #timeout,
                move |#lab_ident: ::std::sync::Arc<::netns_fixture::Lab>| {
                    let body = async move {
                        #bind_lab
                        #body
                    };
                    // Fixes the future's output type, so `?` in the body infers.
                    let body: ::std::pin::Pin<::std::boxed::Box<dyn ::core::future::Future<Output = #output>>> =
                        ::std::boxed::Box::pin(body);
                    body
                })
        }
    } else {
        let closure = quote! {
            move |#lab_ident: &::netns_fixture::Lab| -> #output {
                #bind_lab
                #body
            }
        };
        match timeout {
            Some(t) => {
                quote!(::netns_fixture::__private::run_with_timeout(#topology, #node, #test, #t, #closure))
            }
            None => {
                quote!(::netns_fixture::__private::run(#topology, #node, #test, #closure))
            }
        }
    };

    let test_attr = if with_rstest {
        quote!()
    } else {
        quote_spanned!(function.sig.ident.span()=> #[::core::prelude::v1::test])
    };
    let attrs = &function.attrs;
    let vis = &function.vis;
    let sig = &function.sig;
    Ok(quote! {
        #test_attr
        #(#attrs)*
        #vis #sig {
            #call
        }
    })
}

fn last_segment_is(path: &syn::Path, name: &str) -> bool {
    path.segments.last().is_some_and(|s| s.ident == name)
}

fn check_signature(function: &ItemFn) -> syn::Result<()> {
    let sig = &function.sig;
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "a `#[netns_test]` function cannot be generic",
        ));
    }
    if let Some(c) = &sig.constness {
        return Err(syn::Error::new(
            c.span(),
            "a `#[netns_test]` function cannot be `const`",
        ));
    }
    if let Some(abi) = &sig.abi {
        return Err(syn::Error::new(
            abi.span(),
            "a `#[netns_test]` function cannot have an ABI",
        ));
    }
    Ok(())
}

/// Removes the `lab: &Lab` parameter (any parameter whose type names `Lab`) and
/// returns its pattern and type.
fn take_lab_param(function: &mut ItemFn) -> syn::Result<Option<(Box<Pat>, Box<Type>)>> {
    let mut found = None;
    let mut rest = syn::punctuated::Punctuated::new();
    for input in std::mem::take(&mut function.sig.inputs) {
        let FnArg::Typed(typed) = &input else {
            return Err(syn::Error::new(
                input.span(),
                "a `#[netns_test]` function cannot take `self`",
            ));
        };
        let names_lab = |ty: &Type| matches!(ty, Type::Path(p) if last_segment_is(&p.path, "Lab"));
        let is_lab = match &*typed.ty {
            Type::Reference(r) if names_lab(&r.elem) => {
                if let Some(m) = &r.mutability {
                    return Err(syn::Error::new(
                        m.span(),
                        "take the lab by shared reference: `lab: &Lab`",
                    ));
                }
                true
            }
            ty if names_lab(ty) => {
                return Err(syn::Error::new(
                    ty.span(),
                    "take the lab by reference: `lab: &Lab`",
                ));
            }
            _ => false,
        };
        if !is_lab || !typed.attrs.is_empty() {
            rest.push(input);
            continue;
        }
        if found.is_some() {
            return Err(syn::Error::new(
                typed.span(),
                "only one `lab: &Lab` parameter is allowed",
            ));
        }
        found = Some((typed.pat.clone(), typed.ty.clone()));
    }
    function.sig.inputs = rest;
    Ok(found)
}
