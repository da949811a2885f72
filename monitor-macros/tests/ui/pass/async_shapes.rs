#![deny(warnings, unused_qualifications, rust_2018_idioms)]

use std::convert::Infallible;
use std::fmt::Display;

use monitor_core::monitor_performance;

#[monitor_performance]
async fn unit() {}

#[monitor_performance]
async fn value(x: u32) -> u32 {
    x
}

#[monitor_performance]
async fn result(input: &str) -> Result<u32, std::num::ParseIntError> {
    if input.is_empty() {
        return Ok(0);
    }
    let n = input.parse()?;
    Ok(n)
}

#[monitor_performance]
async fn opaque(x: u32) -> impl Display {
    x
}

#[monitor_performance]
async fn opaque_in_result(x: u32) -> Result<impl Display, String> {
    if x == 0 {
        Err("zero".to_owned())?;
    }
    Ok(x)
}

#[monitor_performance]
async fn infallible() -> Result<u8, Infallible> {
    Ok(1)
}

#[monitor_performance]
async fn never() -> ! {
    panic!("never")
}

#[monitor_performance]
async fn generic<T, U>(t: T, f: impl FnOnce(T) -> U) -> U
where
    T: Send,
{
    f(t)
}

struct Service {
    hits: u32,
}

impl Service {
    #[monitor_performance]
    async fn read(&self) -> &u32 {
        &self.hits
    }

    #[monitor_performance]
    async fn write(&mut self) -> &mut u32 {
        self.hits += 1;
        &mut self.hits
    }

    #[monitor_performance]
    async fn consume(self) -> u32 {
        self.hits
    }
}

trait Fetch {
    async fn fetch(&self) -> u32;

    #[monitor_performance]
    async fn fetch_twice(&self) -> u32 {
        self.fetch().await + self.fetch().await
    }
}

impl Fetch for Service {
    #[monitor_performance]
    async fn fetch(&self) -> u32 {
        self.hits
    }
}

fn main() {
    futures_executor::block_on(async {
        unit().await;
        assert_eq!(value(1).await, 1);
        assert_eq!(result("2").await, Ok(2));
        assert_eq!(opaque(3).await.to_string(), "3");
        assert!(opaque_in_result(0).await.is_err());
        assert_eq!(infallible().await, Ok(1));
        assert_eq!(generic(2, |x| x * 2).await, 4);
        let mut service = Service { hits: 0 };
        *service.write().await += 1;
        assert_eq!(*service.read().await, 2);
        assert_eq!(service.fetch_twice().await, 4);
        assert_eq!(service.consume().await, 2);
    });
    let _unpolled = never();
}
