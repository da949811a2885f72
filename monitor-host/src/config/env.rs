//! `${VAR}` and `${VAR:-default}` in config string values, so secrets such as webhook tokens can
//! come from the environment instead of the file.
//!
//! Rules: `${NAME}` is the variable's value (empty when set but empty); `${NAME:-default}` is the
//! default when the variable is unset or empty, and the default is taken literally (not expanded
//! again). `NAME` is letters, digits and `_`, not starting with a digit. `$${` writes a literal
//! `${`; any other `$` is kept as it is, so `$HOME` or `$$` in a shell command are untouched.

use std::borrow::Cow;
use std::env::VarError;

/// Looks a variable up; [`std::env::var`] in production.
pub(crate) type Lookup<'a> = &'a dyn Fn(&str) -> Result<String, VarError>;

/// `text` with every reference replaced, or one message per reference that cannot be expanded.
pub(crate) fn expand<'t>(text: &'t str, env: Lookup<'_>) -> Result<Cow<'t, str>, Vec<String>> {
    if !text.contains("${") {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut errors = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        if rest[..i].ends_with('$') {
            // `$${`: the escape for a literal `${`.
            out.push_str(&rest[..i - 1]);
            out.push_str("${");
            rest = &rest[i + 2..];
            continue;
        }
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            errors.push(format!(
                "unclosed `${{` in `{text}`: close it with `}}`, or write `$${{` for a literal `${{`"
            ));
            return Err(errors);
        };
        match reference(&after[..end], env) {
            Ok(value) => out.push_str(&value),
            Err(e) => errors.push(e),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    if errors.is_empty() {
        Ok(Cow::Owned(out))
    } else {
        Err(errors)
    }
}

/// The value of what is between `${` and `}`.
fn reference(inner: &str, env: Lookup<'_>) -> Result<String, String> {
    let (name, default) = match inner.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (inner, None),
    };
    if !is_name(name) {
        return Err(format!(
            "`${{{inner}}}` is not a variable reference: write `${{NAME}}` or `${{NAME:-default}}` \
             (letters, digits and `_`), or `$${{` for a literal `${{`"
        ));
    }
    match (env(name), default) {
        (Ok(v), Some(d)) if v.is_empty() => Ok(d.to_owned()),
        (Ok(v), _) => Ok(v),
        (Err(VarError::NotPresent), Some(d)) => Ok(d.to_owned()),
        (Err(VarError::NotPresent), None) => Err(format!(
            "environment variable `{name}` is not set: set it, or give a default with `${{{name}:-default}}`"
        )),
        (Err(VarError::NotUnicode(_)), _) => Err(format!(
            "environment variable `{name}` is not valid UTF-8: set it to UTF-8 text"
        )),
    }
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Result<String, VarError> {
        match name {
            "TOKEN" => Ok("s3cret".into()),
            "EMPTY" => Ok(String::new()),
            _ => Err(VarError::NotPresent),
        }
    }

    fn ok(text: &str) -> String {
        expand(text, &env).unwrap().into_owned()
    }

    fn err(text: &str) -> Vec<String> {
        expand(text, &env).unwrap_err()
    }

    #[test]
    fn references_are_replaced() {
        assert_eq!(ok("Bearer ${TOKEN}"), "Bearer s3cret");
        assert_eq!(ok("${TOKEN}${TOKEN}"), "s3crets3cret");
        assert_eq!(ok("${EMPTY}"), "");
        assert_eq!(ok("no references"), "no references");
    }

    #[test]
    fn defaults_apply_when_unset_or_empty() {
        assert_eq!(ok("${MISSING:-fallback}"), "fallback");
        assert_eq!(ok("${EMPTY:-fallback}"), "fallback");
        assert_eq!(ok("${TOKEN:-fallback}"), "s3cret");
        assert_eq!(ok("${MISSING:-}"), "");
        // The default is literal text.
        assert_eq!(ok("${MISSING:-${TOKEN}"), "${TOKEN");
    }

    #[test]
    fn dollar_dollar_brace_is_a_literal() {
        assert_eq!(ok("$${TOKEN}"), "${TOKEN}");
        assert_eq!(
            ok("cost: $5, pid $$, home $HOME"),
            "cost: $5, pid $$, home $HOME"
        );
        assert_eq!(ok("$$${TOKEN}"), "$${TOKEN}");
    }

    #[test]
    fn an_unset_variable_without_default_is_named() {
        let e = err("x ${NOPE} ${TOKEN} ${ALSO_NOPE}");
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with("environment variable `NOPE` is not set"),
            "{e:?}"
        );
        assert!(e[1].contains("`ALSO_NOPE`"), "{e:?}");
    }

    #[test]
    fn malformed_references_are_refused() {
        assert!(err("${TOKEN")[0].starts_with("unclosed `${`"));
        assert!(err("${}")[0].contains("is not a variable reference"));
        assert!(err("${1X}")[0].contains("is not a variable reference"));
        assert!(err("${A-B}")[0].contains("is not a variable reference"));
    }
}
