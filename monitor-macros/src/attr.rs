//! The attribute's arguments: `name = "..."` and `threshold_ms = N`.

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::{LitInt, LitStr, Token};

mod kw {
    syn::custom_keyword!(name);
    syn::custom_keyword!(threshold_ms);
}

const NAME_EXAMPLE: &str = "name = \"db.query\"";
const THRESHOLD_EXAMPLE: &str = "threshold_ms = 5";

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
                equals(input, key.span, NAME_EXAMPLE)?;
                if !input.peek(LitStr) {
                    return Err(expected(input.span(), "a string literal", NAME_EXAMPLE));
                }
                let value: LitStr = input.parse()?;
                if value.value().is_empty() {
                    return Err(syn::Error::new(value.span(), "`name` must not be empty"));
                }
                at_most_once(&mut args.name, value, key.span, "name")?;
            } else if lookahead.peek(kw::threshold_ms) {
                let key: kw::threshold_ms = input.parse()?;
                equals(input, key.span, THRESHOLD_EXAMPLE)?;
                if !(input.peek(LitInt) || input.peek(Token![-]) && input.peek2(LitInt)) {
                    return Err(expected(
                        input.span(),
                        "a whole number of milliseconds",
                        THRESHOLD_EXAMPLE,
                    ));
                }
                let value: LitInt = input.parse()?;
                let ms = milliseconds(&value)?;
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

/// Parses the `=` after the key at `key`; `example` shows the right form.
fn equals(input: ParseStream<'_>, key: Span, example: &str) -> syn::Result<()> {
    if !input.peek(Token![=]) {
        return Err(expected(key, "a value", example));
    }
    input.parse::<Token![=]>().map(drop)
}

fn expected(span: Span, what: &str, example: &str) -> syn::Error {
    syn::Error::new(span, format!("expected {what}, as in `{example}`"))
}

/// The value of `threshold_ms`: a non-negative integer without a suffix
/// other than `u64`.
fn milliseconds(value: &LitInt) -> syn::Result<u64> {
    let wrong = |message: &str| Err(syn::Error::new(value.span(), message));
    if value.base10_digits().starts_with('-') {
        return wrong("`threshold_ms` cannot be negative");
    }
    if !matches!(value.suffix(), "" | "u64") {
        return wrong("`threshold_ms` is a number of milliseconds, without a type suffix");
    }
    match value.base10_parse::<u64>() {
        Ok(ms) => Ok(ms),
        Err(_) => wrong("`threshold_ms` is too large for a u64"),
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
