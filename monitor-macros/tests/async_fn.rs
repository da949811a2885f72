//! `async fn`: wall and busy time, outcomes, cancellation, methods and traits.
#![deny(warnings)]

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_executor::block_on;
use monitor_core::{FunctionStats, global, monitor_performance};

fn stats(name: &str) -> FunctionStats {
    global()
        .function(name)
        .unwrap_or_else(|| panic!("{name} is not listed"))
}

/// Pending until the timer thread, after `delay`, marks it done and wakes
/// it. Polls only hand the timer a request, so they stay short.
struct Timer {
    delay: Duration,
    done: Option<Arc<AtomicBool>>,
}

fn sleep(delay: Duration) -> Timer {
    Timer { delay, done: None }
}

type TimerRequest = (Duration, Waker, Arc<AtomicBool>);

fn timer_thread() -> &'static Mutex<mpsc::Sender<TimerRequest>> {
    static TIMER: OnceLock<Mutex<mpsc::Sender<TimerRequest>>> = OnceLock::new();
    TIMER.get_or_init(|| {
        let (requests, incoming) = mpsc::channel::<TimerRequest>();
        std::thread::spawn(move || {
            for (delay, waker, done) in incoming {
                std::thread::sleep(delay);
                done.store(true, Ordering::Release);
                waker.wake();
            }
        });
        Mutex::new(requests)
    })
}

impl Future for Timer {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &self.done {
            Some(done) if done.load(Ordering::Acquire) => Poll::Ready(()),
            Some(_) => Poll::Pending,
            None => {
                let done = Arc::new(AtomicBool::new(false));
                let request = (self.delay, cx.waker().clone(), done.clone());
                timer_thread().lock().unwrap().send(request).unwrap();
                self.done = Some(done);
                Poll::Pending
            }
        }
    }
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
async fn waits(times: u32) -> u32 {
    for _ in 0..times {
        sleep(Duration::from_millis(20)).await;
    }
    times
}

#[test]
fn wall_time_spans_the_waits_and_busy_time_the_polls() {
    assert_eq!(block_on(waits(3)), 3);
    let s = stats(concat!(module_path!(), "::waits"));
    assert_eq!((s.calls, s.successes, s.cancelled), (1, 1, 0));
    assert!(s.duration_ns.min >= 30_000_000, "{:?}", s.duration_ns);
    let busy = s.busy_ns_mean.expect("async functions have a busy time");
    assert!(busy < 10_000_000.0, "busy {busy} ns");
    assert!(
        busy < s.duration_ns.mean / 3.0,
        "busy {busy} ns, {:?}",
        s.duration_ns
    );
}

#[monitor_performance]
async fn yields(times: u32) {
    for _ in 0..times {
        YieldNow(false).await;
    }
}

#[test]
fn futures_that_yield_count_once() {
    block_on(yields(4));
    block_on(yields(0));
    let s = stats(concat!(module_path!(), "::yields"));
    assert_eq!((s.calls, s.failures, s.cancelled), (2, 0, 0));
}

#[monitor_performance]
async fn cancelled_after_one_poll() -> u32 {
    sleep(Duration::from_millis(1)).await;
    1
}

#[monitor_performance]
async fn created_never_polled() -> u32 {
    1
}

#[test]
fn a_future_dropped_before_completion_is_cancelled_not_called() {
    {
        let mut future = pin!(cancelled_after_one_poll());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(future.as_mut().poll(&mut cx).is_pending());
    }
    let s = stats(concat!(module_path!(), "::cancelled_after_one_poll"));
    assert_eq!(
        (s.calls, s.successes, s.failures, s.cancelled),
        (0, 0, 0, 1)
    );

    // Never polled: never started, so neither a call nor a cancellation.
    drop(created_never_polled());
    let s = stats(concat!(module_path!(), "::created_never_polled"));
    assert_eq!((s.calls, s.cancelled), (0, 0));
}

#[derive(Debug)]
enum FetchError {
    Empty,
    Parse(std::num::ParseIntError),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Empty => f.write_str("empty input"),
            FetchError::Parse(e) => write!(f, "bad number: {e}"),
        }
    }
}

impl From<std::num::ParseIntError> for FetchError {
    fn from(e: std::num::ParseIntError) -> Self {
        FetchError::Parse(e)
    }
}

#[monitor_performance]
async fn fetch(input: &str) -> Result<u32, FetchError> {
    YieldNow(false).await;
    if input.is_empty() {
        return Err(FetchError::Empty);
    }
    let n = input.parse::<u32>()?;
    Ok(n)
}

#[test]
fn async_errors_from_return_and_question_mark_fail_the_call() {
    assert_eq!(block_on(fetch("7")).unwrap(), 7);
    assert!(matches!(block_on(fetch("")), Err(FetchError::Empty)));
    assert!(matches!(block_on(fetch("x")), Err(FetchError::Parse(_))));
    let s = stats(concat!(module_path!(), "::fetch"));
    assert_eq!((s.calls, s.successes, s.failures), (3, 1, 2));
    let messages: Vec<_> = s
        .recent_failures
        .iter()
        .map(|f| f.message.as_str())
        .collect();
    assert_eq!(
        messages,
        ["empty input", "bad number: invalid digit found in string"]
    );
    assert!(s.recent_failures.iter().all(|f| !f.panicked));
}

#[monitor_performance]
async fn warm_up() {}

#[monitor_performance(name = "async_fn.panics")]
async fn panics_after_a_yield() -> u32 {
    YieldNow(false).await;
    panic!("async boom")
}

#[test]
fn an_async_panic_fails_the_call_and_propagates() {
    // monitor-core installs the hook that captures panic messages on a
    // thread's first recorded call; make sure that has happened.
    block_on(warm_up());
    let payload = std::panic::catch_unwind(|| block_on(panics_after_a_yield())).unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"async boom"));
    let s = stats("async_fn.panics");
    assert_eq!((s.calls, s.failures, s.cancelled), (1, 1, 0));
    assert!(s.recent_failures[0].panicked);
    assert!(s.recent_failures[0].message.contains("async boom"));
}

struct Store {
    rows: Vec<String>,
}

impl Store {
    #[monitor_performance(name = "async_fn.Store::query")]
    async fn query(&self, q: &str) -> Vec<&str> {
        YieldNow(false).await;
        self.rows
            .iter()
            .filter(|r| r.contains(q))
            .map(String::as_str)
            .collect()
    }

    #[monitor_performance(name = "async_fn.Store::insert")]
    async fn insert(&mut self, row: impl Into<String>) -> &mut Self {
        self.rows.push(row.into());
        self
    }

    #[monitor_performance(name = "async_fn.Store::into_rows")]
    async fn into_rows(self) -> Vec<String> {
        self.rows
    }
}

#[test]
fn async_methods_with_every_receiver() {
    let mut store = Store { rows: vec![] };
    block_on(async {
        store.insert("apple").await.insert("pear").await;
        assert_eq!(store.query("pe").await, ["pear"]);
    });
    assert_eq!(block_on(store.into_rows()).len(), 2);
    assert_eq!(stats("async_fn.Store::insert").calls, 2);
    assert_eq!(stats("async_fn.Store::query").calls, 1);
    assert_eq!(stats("async_fn.Store::into_rows").calls, 1);
}

trait Greeter {
    async fn greet(&self, who: &str) -> String;

    #[monitor_performance(name = "async_fn.Greeter::greet_twice")]
    async fn greet_twice(&self, who: &str) -> String {
        let once = self.greet(who).await;
        format!("{once} {once}")
    }
}

struct English;

impl Greeter for English {
    #[monitor_performance(name = "async_fn.English::greet")]
    async fn greet(&self, who: &str) -> String {
        YieldNow(false).await;
        format!("hello {who}")
    }
}

#[test]
fn async_fn_in_traits_default_and_implemented() {
    assert_eq!(block_on(English.greet_twice("bob")), "hello bob hello bob");
    assert_eq!(stats("async_fn.Greeter::greet_twice").calls, 1);
    assert_eq!(stats("async_fn.English::greet").calls, 1);
}

#[monitor_performance]
async fn generic_async<T: Clone + Send>(value: T, n: usize) -> Vec<T> {
    YieldNow(false).await;
    vec![value; n]
}

#[monitor_performance]
async fn opaque(n: u32) -> impl std::fmt::Display {
    n * 2
}

#[test]
fn generic_and_opaque_async_fns() {
    assert_eq!(block_on(generic_async('a', 2)), ['a', 'a']);
    assert_eq!(block_on(generic_async("b", 1)), ["b"]);
    assert_eq!(block_on(opaque(2)).to_string(), "4");
    assert_eq!(stats(concat!(module_path!(), "::generic_async")).calls, 2);
    assert_eq!(stats(concat!(module_path!(), "::opaque")).calls, 1);
}

fn assert_send<F: Future + Send>(future: F) -> F {
    future
}

#[test]
fn instrumented_futures_stay_send() {
    let store = Store {
        rows: vec!["x".into()],
    };
    let rows = block_on(assert_send(store.query("x")));
    assert_eq!(rows, ["x"]);
    assert_eq!(block_on(assert_send(fetch("1"))).unwrap(), 1);
}
