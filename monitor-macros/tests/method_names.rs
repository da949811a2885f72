//! Default names of methods: `module::Type::method`, so same-named methods of
//! different types in one module keep their own figures.
#![deny(warnings)]

use monitor_core::{FunctionStats, global, monitor_performance};

fn stats(name: &str) -> FunctionStats {
    global()
        .function(name)
        .unwrap_or_else(|| panic!("{name} is not listed"))
}

mod shapes {
    use monitor_core::monitor_performance;

    pub struct Circle(pub f64);
    pub struct Square(pub f64);

    impl Circle {
        #[monitor_performance]
        pub fn area(&self) -> f64 {
            3.0 * self.0 * self.0
        }

        #[monitor_performance]
        pub fn unit() -> Self {
            Self(1.0)
        }

        #[monitor_performance]
        pub fn never_called(&self) {}
    }

    impl Square {
        #[monitor_performance]
        pub fn area(&self) -> f64 {
            self.0 * self.0
        }

        // No receiver and no `Self`: still a method of `Square`.
        #[monitor_performance]
        pub fn sides() -> u8 {
            4
        }
    }

    pub trait Named {
        #[monitor_performance]
        fn describe(&self) -> String {
            "a shape".to_owned()
        }

        fn name(&self) -> &'static str;
    }

    impl Named for Circle {
        #[monitor_performance]
        fn name(&self) -> &'static str {
            "circle"
        }
    }

    impl Named for Square {
        #[monitor_performance]
        fn name(&self) -> &'static str {
            "square"
        }
    }

    #[monitor_performance]
    pub fn free() -> u8 {
        1
    }
}

#[test]
fn same_named_methods_of_two_types_keep_their_own_figures() {
    use shapes::{Circle, Square};
    let module = concat!(module_path!(), "::shapes");
    assert_eq!(
        Circle(1.0).area() + Square(2.0).area() + Square(1.0).area(),
        8.0
    );
    assert_eq!(stats(&format!("{module}::Circle::area")).calls, 1);
    assert_eq!(stats(&format!("{module}::Square::area")).calls, 2);
    assert!(global().function(&format!("{module}::area")).is_none());
}

#[test]
fn associated_functions_and_trait_methods_are_named_for_their_type() {
    use shapes::{Circle, Named, Square};
    let module = concat!(module_path!(), "::shapes");
    assert_eq!(Circle::unit().0, 1.0);
    assert_eq!(Square::sides(), 4);
    assert_eq!(
        (Circle(1.0).name(), Square(1.0).name()),
        ("circle", "square")
    );
    assert_eq!(Square(1.0).name(), "square");
    assert_eq!(Circle(1.0).describe(), "a shape");
    assert_eq!(stats(&format!("{module}::Circle::unit")).calls, 1);
    assert_eq!(stats(&format!("{module}::Square::sides")).calls, 1);
    assert_eq!(stats(&format!("{module}::Circle::name")).calls, 1);
    assert_eq!(stats(&format!("{module}::Square::name")).calls, 2);
    // A default method is named for its trait.
    assert_eq!(stats(&format!("{module}::Named::describe")).calls, 1);
}

#[test]
fn free_functions_and_uncalled_methods_keep_their_names() {
    let module = concat!(module_path!(), "::shapes");
    assert_eq!(stats(&format!("{module}::Circle::never_called")).calls, 0);
    assert_eq!(shapes::free(), 1);
    assert_eq!(stats(&format!("{module}::free")).calls, 1);
}

struct Wrapper<T>(T);

impl<T: Copy> Wrapper<T> {
    #[monitor_performance]
    fn get(&self) -> T {
        self.0
    }
}

#[test]
fn generic_types_are_named_without_their_arguments() {
    assert_eq!(Wrapper(1u8).get(), 1);
    assert_eq!(Wrapper(2u16).get(), 2);
    let s = stats(concat!(module_path!(), "::Wrapper::get"));
    assert_eq!(s.calls, 2);
}

#[test]
fn types_and_functions_declared_in_a_function() {
    struct Local;
    impl Local {
        #[monitor_performance]
        fn run(&self) -> u8 {
            1
        }
    }
    #[monitor_performance]
    fn nested() -> u8 {
        2
    }
    assert_eq!(Local.run() + nested(), 3);
    assert_eq!(stats(concat!(module_path!(), "::Local::run")).calls, 1);
    assert_eq!(stats(concat!(module_path!(), "::nested")).calls, 1);
}

struct Overridden;

impl Overridden {
    #[monitor_performance(name = "method_names.custom")]
    fn run(&self) -> u8 {
        1
    }

    #[monitor_performance]
    async fn later(&self) -> u8 {
        2
    }
}

#[test]
fn a_given_name_still_wins_and_async_methods_are_named_too() {
    assert_eq!(Overridden.run(), 1);
    assert_eq!(futures_executor::block_on(Overridden.later()), 2);
    assert_eq!(stats("method_names.custom").calls, 1);
    assert!(
        global()
            .function(concat!(module_path!(), "::Overridden::run"))
            .is_none()
    );
    assert_eq!(
        stats(concat!(module_path!(), "::Overridden::later")).calls,
        1
    );
}
