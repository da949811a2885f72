//! Code generation: wraps a function's body so each call is timed and judged.
//!
//! Every shape gets one static callsite (registered with `inventory` so the
//! registry lists the function before its first call) and one guard or future
//! wrapper; the original body is kept as written:
//!
//! - a sync function returning a value runs its body in a closure passed to
//!   `__private::call`, so `return` and `?` end the body and its value can be
//!   judged (an `Err` fails the call) before it is returned;
//! - a sync function returning `()` or `!` needs no judgement: its body follows
//!   the guard directly, and the guard records on every way out;
//! - an `async fn` keeps its signature and awaits its body wrapped in
//!   `__private::Instrumented`, which times the polls and judges the output;
//! - a sync function whose body is just an async block, or `Box::pin` of one
//!   (`-> impl Future<Output = T>`, `#[async_trait]` methods), gets the same
//!   treatment inside that block: its call is the future, not its creation.
//!
//! Panics are seen by the guard's `Drop`; nothing here catches them.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{
    AttrStyle, Attribute, Block, Expr, ExprAsync, GenericArgument, Item, ItemFn, PathArguments,
    ReturnType, Signature, Stmt, TraitItemFn, Type, TypeParamBound,
};

use crate::attr::Args;

/// Expands `#[monitor_performance(args)] item`. On any error, the error
/// followed by the item unchanged, so the user sees one diagnostic.
pub(crate) fn monitor_performance(args: TokenStream, item: TokenStream) -> TokenStream {
    match syn::parse2::<Args>(args).and_then(|args| Ok((args, parse_fn(item.clone())?))) {
        Ok((args, func)) => match check(&func) {
            Ok(()) => generate(&args, func),
            Err(err) => error_then(err, item),
        },
        Err(err) => error_then(err, item),
    }
}

fn error_then(err: syn::Error, item: TokenStream) -> TokenStream {
    let mut out = err.to_compile_error();
    out.extend(item);
    out
}

/// Parses the annotated item, with a precise message when it is not a
/// function with a body.
fn parse_fn(item: TokenStream) -> syn::Result<ItemFn> {
    let err = match syn::parse2::<ItemFn>(item.clone()) {
        Ok(func) => return Ok(func),
        Err(err) => err,
    };
    if let Ok(decl) = syn::parse2::<TraitItemFn>(item.clone())
        && decl.default.is_none()
    {
        return Err(syn::Error::new_spanned(
            &decl.sig,
            "`#[monitor_performance]` needs a function body; put it on the implementation",
        ));
    }
    if let Ok(other) = syn::parse2::<Item>(item)
        && !matches!(other, Item::Fn(_))
    {
        return Err(syn::Error::new(
            Span::call_site(),
            "`#[monitor_performance]` applies to functions only",
        ));
    }
    Err(err)
}

/// Refuses the shapes that cannot be instrumented.
fn check(func: &ItemFn) -> syn::Result<()> {
    if let Some(constness) = &func.sig.constness {
        return Err(syn::Error::new(
            constness.span,
            "`#[monitor_performance]` cannot instrument a `const fn`: timing a call needs the \
             clock at run time; remove `const` or the attribute",
        ));
    }
    Ok(())
}

/// The type of the value a call's outcome is judged from: none for `()` and
/// `!`; otherwise the return type with every `impl Trait` replaced by `_`
/// (closures and turbofish accept `_`, not `impl Trait`).
fn judged_type(sig: &Signature) -> Option<Type> {
    match &sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) => value_type(ty),
    }
}

fn value_type(ty: &Type) -> Option<Type> {
    match ty {
        Type::Never(_) => None,
        Type::Tuple(tuple) if tuple.elems.is_empty() => None,
        ty => {
            let mut ty = ty.clone();
            ImplTraitToInfer.visit_type_mut(&mut ty);
            Some(ty)
        }
    }
}

/// Replaces `impl Trait` with `_`.
struct ImplTraitToInfer;

impl VisitMut for ImplTraitToInfer {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::ImplTrait(impl_trait) = ty {
            *ty = Type::Infer(syn::TypeInfer {
                underscore_token: syn::Token![_](impl_trait.span()),
            });
        } else {
            visit_mut::visit_type_mut(self, ty);
        }
    }
}

fn generate(args: &Args, func: ItemFn) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        sig,
        mut block,
    } = func;
    // Inner attributes (`#![allow(..)]`) stay at the top of the function's body.
    let (inner_attrs, outer_attrs): (Vec<Attribute>, Vec<Attribute>) = attrs
        .into_iter()
        .partition(|attr| matches!(attr.style, AttrStyle::Inner(_)));

    let threshold_ms = Literal::u64_unsuffixed(args.threshold_ms.unwrap_or(0));
    let threshold = quote!(::monitor_core::__private::threshold_ns(#threshold_ms));
    let callsite = match &args.name {
        Some(name) => quote! {
            static __MONITOR_CALLSITE: ::monitor_core::__private::Callsite =
                ::monitor_core::__private::Callsite::new(
                    #name,
                    ::core::module_path!(),
                    ::core::file!(),
                    ::core::line!(),
                    #threshold,
                );
        },
        None => {
            // The default name needs the type of a method's `impl`, which an
            // attribute cannot see: the nested `fn`'s type name is the path
            // of this function, read (once) when the name is first needed.
            let ident = sig.ident.unraw().to_string();
            let method = is_method(&sig);
            quote! {
                fn __monitor_probe() -> &'static str {
                    ::core::any::type_name_of_val(&__monitor_probe)
                }
                static __MONITOR_NAME: ::monitor_core::__private::DerivedName =
                    ::monitor_core::__private::DerivedName::new(
                        #ident,
                        ::core::module_path!(),
                        __monitor_probe,
                        #method,
                    );
                static __MONITOR_CALLSITE: ::monitor_core::__private::Callsite =
                    ::monitor_core::__private::Callsite::new_derived(
                        &__MONITOR_NAME,
                        ::core::module_path!(),
                        ::core::file!(),
                        ::core::line!(),
                        #threshold,
                    );
            }
        }
    };
    let callsite = quote! {
        #callsite
        ::monitor_core::__private::inventory::submit! {
            ::monitor_core::__private::CallsiteRef(&__MONITOR_CALLSITE)
        }
    };

    let span = block.span();
    let body = if sig.asyncness.is_some() {
        let future = instrumented(
            judged_type(&sig).as_ref(),
            &quote!(async move),
            &block.stmts,
            span,
        );
        quote_spanned!(span=> #future.await)
    } else if let Some(output) = returned_future_output(&sig)
        && let Some(future) = returned_async_block(&mut block)
    {
        // The block becomes `async move { Instrumented::new(.., async move
        // { <its statements> }, ..).await }`: the same future to the caller,
        // timed from its first poll.
        let capture = &future.capture;
        let stmts = std::mem::take(&mut future.block.stmts);
        let inner = instrumented(output.as_ref(), &quote!(async #capture), &stmts, span);
        future.block.stmts = vec![Stmt::Expr(
            Expr::Verbatim(quote_spanned!(span=> #inner.await)),
            None,
        )];
        let stmts = &block.stmts;
        quote!(#(#stmts)*)
    } else {
        let stmts = &block.stmts;
        match judged_type(&sig) {
            Some(ty) if !has_track_caller(&outer_attrs) => {
                let closure = match ty {
                    Type::Infer(_) => quote_spanned!(span=> move || #block),
                    ty => quote_spanned!(span=> move || -> #ty #block),
                };
                quote_spanned! {span=>
                    let __monitor_guard = ::monitor_core::__private::enter(&__MONITOR_CALLSITE);
                    let __monitor_ret = ::monitor_core::__private::call(#closure);
                    __monitor_guard.observe(::monitor_core::__monitor_outcome!(&__monitor_ret));
                    __monitor_ret
                }
            }
            // A closure would hide the caller's location from a
            // `#[track_caller]` body (closures cannot carry the attribute on
            // stable Rust), so such a body follows the guard directly: panics
            // still fail the call, returned `Err`s are not seen.
            _ => quote_spanned! {span=>
                let __monitor_guard = ::monitor_core::__private::enter(&__MONITOR_CALLSITE);
                #(#stmts)*
            },
        }
    };

    quote! {
        #(#outer_attrs)*
        #vis #sig {
            #(#inner_attrs)*
            #callsite
            #body
        }
    }
}

/// `Instrumented::new(&__MONITOR_CALLSITE, <async block>, <judge>)` for an
/// async block made of `stmts` whose output is `output` (`None` for `()`
/// and `!`), opened with `opening` (`async move`).
fn instrumented(
    output: Option<&Type>,
    opening: &TokenStream,
    stmts: &[Stmt],
    span: Span,
) -> TokenStream {
    // The first `return` fixes the async block's output type before the
    // body is checked, so that `?` and `return` in the body infer it.
    let fix_output = match output {
        Some(ty) if !matches!(ty, Type::Infer(_)) => quote_spanned! {span=>
            if let ::core::option::Option::Some(__monitor_ret) =
                ::core::option::Option::None::<#ty>
            {
                return __monitor_ret;
            }
        },
        _ => TokenStream::new(),
    };
    // `()` and `!` are never failures. Not judging them also keeps the
    // judgement from guessing a type for a body that diverges.
    let judge = match output {
        Some(_) => quote_spanned! {span=>
            |__monitor_ret| ::monitor_core::__monitor_outcome!(__monitor_ret)
        },
        None => quote_spanned! {span=>
            |_| ::monitor_core::__private::Outcome::default()
        },
    };
    quote_spanned! {span=>
        ::monitor_core::__private::Instrumented::new(
            &__MONITOR_CALLSITE,
            #opening {
                #fix_output
                #(#stmts)*
            },
            #judge,
        )
    }
}

/// A sync function whose body is one async block, or `Box::pin` of one (as
/// `#[async_trait]` writes them), returns its call as a future: that block
/// is what gets timed. This is the future's output type (as [`judged_type`]
/// gives it) when the return type names one, as `Future<Output = T>`.
fn returned_future_output(sig: &Signature) -> Option<Option<Type>> {
    let ReturnType::Type(_, ty) = &sig.output else {
        return None;
    };
    future_output(ty).map(value_type)
}

/// The async block that is the whole of `block`, alone or in `Box::pin`.
fn returned_async_block(block: &mut Block) -> Option<&mut ExprAsync> {
    let [Stmt::Expr(tail, None)] = block.stmts.as_mut_slice() else {
        return None;
    };
    match tail {
        Expr::Async(future) => Some(future),
        Expr::Call(call) if call.args.len() == 1 && is_box_pin(&call.func) => {
            match call.args.first_mut() {
                Some(Expr::Async(future)) => Some(future),
                _ => None,
            }
        }
        _ => None,
    }
}

fn is_box_pin(func: &Expr) -> bool {
    let Expr::Path(path) = func else {
        return false;
    };
    let segments: Vec<_> = path.path.segments.iter().map(|s| &s.ident).collect();
    matches!(segments.as_slice(), [.., boxed, pin] if *boxed == "Box" && *pin == "pin")
}

/// The `T` of the first `Future<Output = T>` bound in `ty`, looking through
/// `Pin<..>` and `Box<..>`; also the `T` of `BoxFuture<'a, T>` and
/// `LocalBoxFuture<'a, T>`.
fn future_output(ty: &Type) -> Option<&Type> {
    match ty {
        Type::ImplTrait(impl_trait) => bounds_output(&impl_trait.bounds),
        Type::TraitObject(object) => bounds_output(&object.bounds),
        Type::Paren(paren) => future_output(&paren.elem),
        Type::Group(group) => future_output(&group.elem),
        Type::Path(path) => {
            let last = path.path.segments.last()?;
            let PathArguments::AngleBracketed(args) = &last.arguments else {
                return None;
            };
            let mut types = args.args.iter().filter_map(|arg| match arg {
                GenericArgument::Type(ty) => Some(ty),
                _ => None,
            });
            if last.ident == "BoxFuture" || last.ident == "LocalBoxFuture" {
                types.next()
            } else if last.ident == "Pin" || last.ident == "Box" {
                types.next().and_then(future_output)
            } else {
                None
            }
        }
        _ => None,
    }
}

fn bounds_output<'a>(bounds: impl IntoIterator<Item = &'a TypeParamBound>) -> Option<&'a Type> {
    bounds.into_iter().find_map(|bound| {
        let TypeParamBound::Trait(bound) = bound else {
            return None;
        };
        let last = bound.path.segments.last()?;
        if last.ident != "Future" {
            return None;
        }
        let PathArguments::AngleBracketed(args) = &last.arguments else {
            return None;
        };
        args.args.iter().find_map(|arg| match arg {
            GenericArgument::AssocType(assoc) if assoc.ident == "Output" => Some(&assoc.ty),
            _ => None,
        })
    })
}

fn has_track_caller(attrs: &[Attribute]) -> bool {
    attrs
        .iter()
        .any(|attr| attr.path().is_ident("track_caller"))
}

/// Whether the signature shows the function is a method: a `self` receiver
/// or `Self` anywhere in it. Without either it may still be an associated
/// function; the name's derivation then judges by the enclosing path.
fn is_method(sig: &Signature) -> bool {
    fn mentions_self(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|token| match token {
            proc_macro2::TokenTree::Ident(ident) => ident == "Self",
            proc_macro2::TokenTree::Group(group) => mentions_self(group.stream()),
            _ => false,
        })
    }
    sig.receiver().is_some() || mentions_self(sig.to_token_stream())
}
