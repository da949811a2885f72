#![deny(warnings)]

use std::future::Future;
use std::pin::Pin;

use monitor_core::monitor_performance;

#[monitor_performance]
fn unit_future() -> impl Future<Output = ()> {
    async {}
}

#[monitor_performance]
fn borrowing<'a>(text: &'a str) -> impl Future<Output = Option<&'a str>> + Send + 'a {
    async { text.split(',').next() }
}

#[monitor_performance]
fn fallible(text: &str) -> impl Future<Output = Result<u32, std::num::ParseIntError>> + '_ {
    async move {
        let n = text.parse::<u32>()?;
        Ok(n)
    }
}

#[monitor_performance]
fn boxed_by_full_path() -> Pin<std::boxed::Box<dyn Future<Output = u8> + Send>> {
    std::boxed::Box::pin(async move { 1 })
}

#[monitor_performance]
fn opaque_output() -> impl Future<Output = impl std::fmt::Display> {
    async { 5 }
}

// Not a lone async block: timed while it builds the future.
#[monitor_performance]
fn prepared(n: u32) -> impl Future<Output = u32> {
    let doubled = n * 2;
    async move { doubled }
}

fn main() {
    futures_executor::block_on(async {
        unit_future().await;
        assert_eq!(borrowing("a,b").await, Some("a"));
        assert_eq!(fallible("3").await, Ok(3));
        assert_eq!(boxed_by_full_path().await, 1);
        assert_eq!(opaque_output().await.to_string(), "5");
        assert_eq!(prepared(2).await, 4);
    });
}
