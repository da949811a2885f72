//! The default name of an instrumented function: `module::fn` for a free
//! function, `module::Type::method` for a method.
//!
//! An attribute on a method cannot see the `impl` it is in, so the macro
//! leaves a probe in the function's body: a nested `fn` whose
//! [`type_name_of_val`](std::any::type_name_of_val) is the path of the
//! function it sits in, as the compiler prints it (`crate::m::Type::method::probe`,
//! `<crate::m::Type as crate::m::Trait>::method::probe`). The name is worked
//! out from that path once, the first time it is read (never while recording),
//! and kept.
//!
//! Generic arguments are left out: every impl of `Wrapper<T>` names its
//! methods `module::Wrapper::method`, so the instantiations of a generic
//! method (which share one callsite anyway) and same-named methods of
//! `impl Wrapper<u8>` and `impl Wrapper<u16>` share a name, and so do
//! same-named methods of two traits implemented for one type. `name = "..."`
//! tells them apart.

use std::sync::OnceLock;

/// The default name of an instrumented function, worked out on first read.
pub struct DerivedName {
    fn_name: &'static str,
    module_path: &'static str,
    /// Returns the type name of a `fn` item nested in the function's body.
    probe: fn() -> &'static str,
    /// The macro saw a receiver or `Self` in the signature: surely a method.
    method: bool,
    resolved: OnceLock<Box<str>>,
}

impl DerivedName {
    /// The name of function `fn_name` in `module_path`, whose body holds `probe`.
    pub const fn new(
        fn_name: &'static str,
        module_path: &'static str,
        probe: fn() -> &'static str,
        method: bool,
    ) -> Self {
        Self {
            fn_name,
            module_path,
            probe,
            method,
            resolved: OnceLock::new(),
        }
    }

    /// The name: computed on the first call, then read.
    pub fn get(&self) -> &str {
        self.resolved.get_or_init(|| {
            // Reading a name is not the doing of the call that reads it.
            crate::alloc::excluded(|| {
                derive((self.probe)(), self.module_path, self.fn_name, self.method).into()
            })
        })
    }
}

/// `module_path::fn_name` or `module_path::Type::fn_name`, from the type name
/// of a probe nested in the function. Falls back to `module_path::fn_name`
/// on a path it cannot read.
fn derive(probe_path: &str, module_path: &str, fn_name: &str, method: bool) -> String {
    let free = || format!("{module_path}::{fn_name}");
    let mut segments = top_level_segments(probe_path);
    // [owner.., fn_name, {{closure}} (the body of an async fn).., probe]
    segments.pop();
    while segments.last().is_some_and(|s| s.starts_with("{{")) {
        segments.pop();
    }
    if segments.pop() != Some(fn_name) {
        return free();
    }
    let owner = segments;
    let Some(last) = owner.last() else {
        return free();
    };
    if owner.join("::") == module_path {
        return free();
    }
    let self_type = if let Some(inner) = last.strip_prefix('<').and_then(|s| s.strip_suffix('>')) {
        // `<Type as Trait>` (trait impl) or `<impl Type>` (inherent impl
        // written in another module than the type).
        match inner.strip_prefix("impl ") {
            Some(ty) => ty,
            None => split_as(inner),
        }
    } else {
        // `Type` of an inherent impl or trait default method, or the name of
        // an enclosing function for a function nested in another. Types are
        // CamelCase or generic, functions snake_case (both linted by rustc).
        let type_like = last.contains('<') || last.starts_with(|c: char| c.is_ascii_uppercase());
        if !method && !type_like {
            return free();
        }
        last
    };
    format!("{module_path}::{}::{fn_name}", short_type(self_type))
}

/// `a::B<c::D>::f` as `["a", "B<c::D>", "f"]`: splits at `::` outside `<>`.
fn top_level_segments(path: &str) -> Vec<&str> {
    let mut segments = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'<' => depth += 1,
            b'>' => depth = depth.saturating_sub(1),
            b':' if depth == 0 && bytes.get(i + 1) == Some(&b':') => {
                segments.push(&path[start..i]);
                start = i + 2;
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    segments.push(&path[start..]);
    segments
}

/// The `Type` of `Type as Trait`, splitting at the `as` outside `<>`.
fn split_as(inner: &str) -> &str {
    let mut depth = 0usize;
    for (i, c) in inner.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            ' ' if depth == 0 && inner[i..].starts_with(" as ") => return &inner[..i],
            _ => {}
        }
    }
    inner
}

/// A type without its generic arguments and with every path shortened to
/// its last segment: `&alloc::vec::Vec<u8>` is `&Vec`.
fn short_type(ty: &str) -> String {
    let mut out = String::with_capacity(ty.len());
    let mut depth = 0usize;
    let mut chars = ty.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            _ if depth > 0 => {}
            ':' if chars.peek() == Some(&':') => {
                chars.next();
                let kept = out.trim_end_matches(|c: char| c.is_alphanumeric() || c == '_');
                out.truncate(kept.len());
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::derive;

    /// Probe paths as rustc prints them, for each place a function can be.
    #[test]
    fn names_from_probe_paths() {
        let cases = [
            ("t::m::free::p", "free", false, "t::m::free"),
            ("t::m::A::get::p", "get", true, "t::m::A::get"),
            (
                "t::m::A::later::{{closure}}::p",
                "later",
                true,
                "t::m::A::later",
            ),
            ("t::m::run::{{closure}}::p", "run", false, "t::m::run"),
            ("t::m::A::new::p", "new", false, "t::m::A::new"),
            ("t::m::W<_>::get::p", "get", true, "t::m::W::get"),
            ("t::m::W<u8>::conc::p", "conc", true, "t::m::W::conc"),
            ("<t::m::A as t::m::Tr>::get::p", "get", true, "t::m::A::get"),
            (
                "<t::m::W<_> as t::m::Tr<u8>>::get::p",
                "get",
                true,
                "t::m::W::get",
            ),
            ("<&str as t::m::Tr>::get::p", "get", true, "t::m::&str::get"),
            (
                "<[alloc::string::String] as t::m::Tr>::get::p",
                "get",
                true,
                "t::m::[String]::get",
            ),
            (
                "t::m::<impl t::m::n::A>::other::p",
                "other",
                true,
                "t::m::A::other",
            ),
            (
                "t::m::Tr::describe::p",
                "describe",
                true,
                "t::m::Tr::describe",
            ),
            // Nested in a function: a free function stays `module::fn`...
            ("t::m::outer::inner::p", "inner", false, "t::m::inner"),
            ("t::m::A::run::inner::p", "inner", false, "t::m::inner"),
            // ...a method of a type declared in a function is `module::Type::fn`.
            ("t::m::outer::L::g::p", "g", true, "t::m::L::g"),
            ("t::m::outer::L::make::p", "make", false, "t::m::L::make"),
            ("t::m::lower::g::p", "g", true, "t::m::lower::g"),
            // Unreadable paths fall back to the free-function name.
            ("p", "f", true, "t::m::f"),
            ("t::m::A::other::p", "f", true, "t::m::f"),
            ("", "f", false, "t::m::f"),
        ];
        for (path, fn_name, method, want) in cases {
            assert_eq!(derive(path, "t::m", fn_name, method), want, "{path}");
        }
    }
}
