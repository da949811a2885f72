//! The attribute's arguments: `name = "..."` and `threshold_ms = N`.

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::{LitInt, LitStr, Token};

mod kw {
    syn::custom_keyword!(name);
    syn::custom_keyword!(threshold_ms);
}

/// What `#[monitor_performance(...)]` was given.
#[derive(Default)]
pub(crate) struct Args {
    /// The name the function is recorded under; `module::path::fn` if absent.
    pub(crate) name: Option<LitStr>,
    /// Calls shorter than this many milliseconds are not recorded.
    pub(crate) threshold_ms: Option<u64>,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args::default();
        while !input.is_empty() {
            let lookahead = input.lookahead1();
            if lookahead.peek(kw::name) {
                let key: kw::name = input.parse()?;
                input.parse::<Token![=]>()?;
                let value: LitStr = input.parse()?;
                if value.value().is_empty() {
                    return Err(syn::Error::new(value.span(), "`name` must not be empty"));
                }
                at_most_once(&mut args.name, value, key.span, "name")?;
            } else if lookahead.peek(kw::threshold_ms) {
                let key: kw::threshold_ms = input.parse()?;
                input.parse::<Token![=]>()?;
                let value: LitInt = input.parse()?;
                if !matches!(value.suffix(), "" | "u64") {
                    return Err(syn::Error::new(
                        value.span(),
                        "`threshold_ms` is a number of milliseconds, without a type suffix",
                    ));
                }
                let ms = value.base10_parse::<u64>()?;
                at_most_once(&mut args.threshold_ms, ms, key.span, "threshold_ms")?;
            } else {
                return Err(lookahead.error());
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(args)
    }
}

/// Stores `value` in `slot` unless an earlier argument already did.
fn at_most_once<T>(slot: &mut Option<T>, value: T, key: Span, what: &str) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new(
            key,
            format!("`{what}` given more than once"),
        ));
    }
    *slot = Some(value);
    Ok(())
}
