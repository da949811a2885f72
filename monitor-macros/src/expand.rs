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
//!   `__private::Instrumented`, which times the polls and judges the output.
//!
//! Panics are seen by the guard's `Drop`; nothing here catches them.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{AttrStyle, Attribute, Item, ItemFn, ReturnType, Signature, TraitItemFn, Type};

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
        ReturnType::Type(_, ty) => match &**ty {
            Type::Never(_) => None,
            Type::Tuple(tuple) if tuple.elems.is_empty() => None,
            ty => {
                let mut ty = ty.clone();
                ImplTraitToInfer.visit_type_mut(&mut ty);
                Some(ty)
            }
        },
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
        block,
    } = func;
    // Inner attributes (`#![allow(..)]`) stay at the top of the function's body.
    let (inner_attrs, outer_attrs): (Vec<Attribute>, Vec<Attribute>) = attrs
        .into_iter()
        .partition(|attr| matches!(attr.style, AttrStyle::Inner(_)));

    let name = match &args.name {
        Some(name) => name.to_token_stream(),
        None => {
            let ident = sig.ident.unraw().to_string();
            quote!(::core::concat!(::core::module_path!(), "::", #ident))
        }
    };
    let threshold_ms = Literal::u64_unsuffixed(args.threshold_ms.unwrap_or(0));
    let callsite = quote! {
        static __MONITOR_CALLSITE: ::monitor_core::__private::Callsite =
            ::monitor_core::__private::Callsite::new(
                #name,
                ::core::module_path!(),
                ::core::file!(),
                ::core::line!(),
                ::monitor_core::__private::threshold_ns(#threshold_ms),
            );
        ::monitor_core::__private::inventory::submit! {
            ::monitor_core::__private::CallsiteRef(&__MONITOR_CALLSITE)
        }
    };

    let stmts = &block.stmts;
    let judged = judged_type(&sig);
    let span = block.span();
    let body = if sig.asyncness.is_some() {
        // The first `return` fixes the async block's output type before the
        // body is checked, so that `?` and `return` in the body infer it.
        let fix_output = match &judged {
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
        let judge = match &judged {
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
                async move {
                    #fix_output
                    #(#stmts)*
                },
                #judge,
            )
            .await
        }
    } else {
        match &judged {
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

fn has_track_caller(attrs: &[Attribute]) -> bool {
    attrs
        .iter()
        .any(|attr| attr.path().is_ident("track_caller"))
}
