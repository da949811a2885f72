//! Methods with every kind of receiver, in inherent impls (also of generic
//! types), trait impls and trait default methods.
#![deny(warnings)]

use std::fmt::Debug;
use std::pin::Pin;
use std::rc::Rc;

use monitor_core::{FunctionStats, global, monitor_performance};

fn stats(name: &str) -> FunctionStats {
    global()
        .function(name)
        .unwrap_or_else(|| panic!("{name} is not listed"))
}

#[derive(Debug, Clone, Default)]
struct Counter {
    hits: Vec<u32>,
    label: String,
}

impl Counter {
    #[monitor_performance(name = "self_receiver.Counter::new")]
    fn new(label: &str) -> Self {
        Self {
            hits: vec![0],
            label: label.to_owned(),
        }
    }

    #[monitor_performance(name = "self_receiver.Counter::label")]
    fn label(&self) -> &str {
        &self.label
    }

    #[monitor_performance(name = "self_receiver.Counter::first_mut")]
    fn first_mut(&mut self) -> &mut u32 {
        &mut self.hits[0]
    }

    #[monitor_performance(name = "self_receiver.Counter::bump")]
    fn bump(&mut self) {
        self.hits[0] += 1;
    }

    #[monitor_performance(name = "self_receiver.Counter::into_label")]
    fn into_label(self) -> String {
        self.label
    }

    #[monitor_performance(name = "self_receiver.Counter::boxed")]
    fn boxed(self: Box<Self>) -> usize {
        self.hits.len()
    }

    #[monitor_performance(name = "self_receiver.Counter::shared")]
    fn shared(self: Rc<Self>) -> Rc<Self> {
        self
    }

    #[monitor_performance(name = "self_receiver.Counter::pinned")]
    fn pinned(self: Pin<&mut Self>) -> &mut u32 {
        &mut self.get_mut().hits[0]
    }

    #[monitor_performance(name = "self_receiver.Counter::iter_mut")]
    fn iter_mut(&mut self) -> impl Iterator<Item = &mut u32> + '_ {
        self.hits.iter_mut()
    }
}

#[test]
fn every_receiver_records() {
    let mut counter = Counter::new("c");
    assert_eq!(counter.label(), "c");
    *counter.first_mut() += 1;
    counter.bump();
    *Pin::new(&mut counter).pinned() += 1;
    for hit in counter.iter_mut() {
        *hit += 1;
    }
    assert_eq!(counter.hits, [4]);
    assert_eq!(Box::new(counter.clone()).boxed(), 1);
    assert_eq!(Rc::new(counter.clone()).shared().hits, [4]);
    assert_eq!(counter.into_label(), "c");
    for name in [
        "new",
        "label",
        "first_mut",
        "bump",
        "pinned",
        "iter_mut",
        "boxed",
        "shared",
        "into_label",
    ] {
        let s = stats(&format!("self_receiver.Counter::{name}"));
        assert_eq!((s.calls, s.failures), (1, 0), "{name}");
    }
}

struct Wrapper<T> {
    items: Vec<T>,
}

impl<T: Debug + Clone> Wrapper<T>
where
    T: PartialEq,
{
    #[monitor_performance(name = "self_receiver.Wrapper::find")]
    fn find(&self, wanted: &T) -> Result<&T, String> {
        self.items
            .iter()
            .find(|item| *item == wanted)
            .ok_or_else(|| format!("{wanted:?} not found"))
    }

    #[monitor_performance(name = "self_receiver.Wrapper::push")]
    fn push<U: Into<T>>(&mut self, item: U) -> &mut Self {
        self.items.push(item.into());
        self
    }
}

#[test]
fn methods_of_generic_types_share_one_entry() {
    let mut numbers = Wrapper { items: vec![1u64] };
    numbers.push(2u8).push(3u32);
    assert_eq!(numbers.find(&2), Ok(&2));
    let mut words = Wrapper {
        items: vec!["a".to_owned()],
    };
    words.push("b");
    assert_eq!(
        words.find(&"z".to_owned()),
        Err("\"z\" not found".to_owned())
    );
    let push = stats("self_receiver.Wrapper::push");
    assert_eq!(push.calls, 3);
    let find = stats("self_receiver.Wrapper::find");
    assert_eq!((find.calls, find.failures), (2, 1));
    assert_eq!(find.recent_failures[0].message, "\"z\" not found");
}

trait Shape {
    fn area(&self) -> f64;

    #[monitor_performance(name = "self_receiver.Shape::describe")]
    fn describe(&self) -> String {
        format!("area {}", self.area())
    }
}

struct Square(f64);

impl Shape for Square {
    #[monitor_performance(name = "self_receiver.Square::area")]
    fn area(&self) -> f64 {
        self.0 * self.0
    }
}

#[test]
fn trait_methods_default_and_implemented() {
    let shapes: Vec<Box<dyn Shape>> = vec![Box::new(Square(2.0)), Box::new(Square(1.0))];
    let described: Vec<_> = shapes.iter().map(|s| s.describe()).collect();
    assert_eq!(described, ["area 4", "area 1"]);
    assert_eq!(stats("self_receiver.Shape::describe").calls, 2);
    assert_eq!(stats("self_receiver.Square::area").calls, 2);
}
