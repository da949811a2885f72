#![deny(warnings, missing_docs, unused_qualifications, rust_2018_idioms)]
//! Sync shapes compile without warnings.

use std::borrow::Cow;
use std::convert::Infallible;
use std::fmt::Debug;

use monitor_core::monitor_performance;

/// Documented, public, generic, with a where clause.
#[monitor_performance]
pub fn largest<T>(items: &[T]) -> Option<&T>
where
    T: PartialOrd,
{
    let mut best = items.first()?;
    for item in items {
        if item > best {
            best = item;
        }
    }
    Some(best)
}

#[monitor_performance]
fn cow(text: &str) -> Cow<'_, str> {
    if text.contains(' ') {
        return Cow::Owned(text.replace(' ', "_"));
    }
    Cow::Borrowed(text)
}

#[monitor_performance]
fn boxed_dyn<'a>(prefix: &'a str) -> Box<dyn Fn(&str) -> String + 'a> {
    Box::new(move |s| format!("{prefix}{s}"))
}

#[monitor_performance]
fn opaque_in_result(ok: bool) -> Result<impl Debug, String> {
    if !ok {
        Err("no".to_owned())?;
    }
    Ok(1)
}

#[monitor_performance]
fn never() -> ! {
    std::process::exit(0)
}

#[monitor_performance]
fn infallible() -> Result<u8, Infallible> {
    Ok(1)
}

#[monitor_performance]
fn unit_tuple() -> () {}

/// A type with methods.
pub struct Holder<T>(Vec<T>);

impl<T: Clone> Holder<T> {
    /// Every receiver.
    #[monitor_performance]
    pub fn get(&self, i: usize) -> Option<&T> {
        self.0.get(i)
    }

    #[monitor_performance]
    fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.0.get_mut(i)
    }

    #[monitor_performance]
    fn into_inner(self) -> Vec<T> {
        self.0
    }

    #[monitor_performance]
    fn boxed(self: Box<Self>) -> usize {
        self.0.len()
    }

    #[monitor_performance]
    fn assoc() -> Self {
        Self(Vec::new())
    }
}

/// # Safety
/// None.
#[monitor_performance]
pub unsafe extern "C" fn exported(x: u32) -> u32 {
    x
}

fn main() {
    assert_eq!(largest(&[1, 3, 2]), Some(&3));
    assert_eq!(cow("a b"), "a_b");
    assert_eq!(boxed_dyn("x")("y"), "xy");
    assert!(opaque_in_result(false).is_err());
    assert!(opaque_in_result(true).is_ok());
    assert_eq!(infallible(), Ok(1));
    unit_tuple();
    let mut holder = Holder(vec![1]);
    assert_eq!(holder.get(0), Some(&1));
    *holder.get_mut(0).unwrap() = 2;
    assert_eq!(Box::new(Holder::<u8>::assoc()).boxed(), 0);
    assert_eq!(holder.into_inner(), [2]);
    // SAFETY: no requirement.
    assert_eq!(unsafe { exported(4) }, 4);
    never();
}
