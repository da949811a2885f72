//! Sync functions that return their work as a future, `-> impl Future` with
//! an async block body or `Box::pin(async ..)` as `#[async_trait]` writes
//! them, are timed like an `async fn`: from first poll to completion.
#![deny(warnings)]

use std::future::Future;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};

use async_trait::async_trait;
use futures_executor::block_on;
use monitor_core::{FunctionStats, global, monitor_performance};

fn stats(name: &str) -> FunctionStats {
    global()
        .function(name)
        .unwrap_or_else(|| panic!("{name} is not listed"))
}

/// Pending once, waking itself at once.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[monitor_performance]
fn sleeps_in_future(ms: u64) -> impl Future<Output = u64> {
    async move {
        YieldNow(false).await;
        std::thread::sleep(std::time::Duration::from_millis(ms));
        ms
    }
}

#[test]
fn the_future_is_timed_not_its_creation() {
    let future = sleeps_in_future(5);
    let s = stats(concat!(module_path!(), "::sleeps_in_future"));
    assert_eq!(s.calls, 0, "creating the future is not the call");
    assert_eq!(block_on(future), 5);
    let s = stats(concat!(module_path!(), "::sleeps_in_future"));
    assert_eq!((s.calls, s.failures), (1, 0));
    assert!(s.duration_ns.min >= 5_000_000, "{:?}", s.duration_ns);
    assert!(s.busy_ns_mean.is_some());
    assert_eq!(stats("future_fn.Repository::load_twice").calls, 1);
}

#[monitor_performance]
fn cancellable() -> impl Future<Output = ()> + Send {
    async {
        YieldNow(false).await;
    }
}

#[test]
fn a_dropped_future_is_cancelled() {
    {
        let mut future = pin!(cancellable());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(future.as_mut().poll(&mut cx).is_pending());
    }
    let s = stats(concat!(module_path!(), "::cancellable"));
    assert_eq!((s.calls, s.cancelled), (0, 1));
}

#[derive(Debug, PartialEq)]
struct NotFound(u32);

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no row {}", self.0)
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

struct Table {
    rows: Vec<String>,
}

impl Table {
    #[monitor_performance(name = "future_fn.Table::get")]
    fn get(&self, id: u32) -> Pin<Box<dyn Future<Output = Result<&str, NotFound>> + Send + '_>> {
        Box::pin(async move {
            YieldNow(false).await;
            let row = self.rows.get(id as usize).ok_or(NotFound(id))?;
            Ok(row.as_str())
        })
    }

    #[monitor_performance(name = "future_fn.Table::len")]
    fn len(&self) -> BoxFuture<'_, usize> {
        Box::pin(async { self.rows.len() })
    }
}

#[test]
fn boxed_futures_are_judged_on_their_output() {
    let table = Table {
        rows: vec!["a".into()],
    };
    assert_eq!(block_on(table.get(0)), Ok("a"));
    assert_eq!(block_on(table.get(3)), Err(NotFound(3)));
    assert_eq!(block_on(table.len()), 1);
    let s = stats("future_fn.Table::get");
    assert_eq!((s.calls, s.failures), (2, 1));
    assert_eq!(s.recent_failures[0].message, "no row 3");
    assert_eq!(stats("future_fn.Table::len").calls, 1);
}

#[async_trait]
trait Repository {
    async fn load(&self, id: u32) -> Result<String, NotFound>;

    #[monitor_performance(name = "future_fn.Repository::load_twice")]
    async fn load_twice(&self, id: u32) -> Result<String, NotFound> {
        Ok(self.load(id).await? + &self.load(id).await?)
    }
}

struct Memory;

#[async_trait]
impl Repository for Memory {
    #[monitor_performance(name = "future_fn.Memory::load")]
    async fn load(&self, id: u32) -> Result<String, NotFound> {
        YieldNow(false).await;
        if id == 0 {
            return Err(NotFound(id));
        }
        Ok(id.to_string())
    }
}

#[test]
fn async_trait_methods() {
    let repo: Box<dyn Repository + Send + Sync> = Box::new(Memory);
    assert_eq!(block_on(repo.load_twice(7)).unwrap(), "77");
    assert!(block_on(repo.load(0)).is_err());
    let s = stats("future_fn.Memory::load");
    assert_eq!((s.calls, s.failures), (3, 1));
    assert_eq!(s.recent_failures[0].message, "no row 0");
    assert!(s.busy_ns_mean.is_some());
    assert_eq!(stats("future_fn.Repository::load_twice").calls, 1);
}
