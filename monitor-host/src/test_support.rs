//! Helpers shared by the unit tests of several modules.

use std::sync::{Arc, Mutex};

/// Everything logged while `f` runs, as text.
pub(crate) fn logged(f: impl FnOnce()) -> String {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    // tracing caches, per call site, whether any subscriber wants it. A test thread logging with
    // no subscriber while another thread's scoped one is being registered can leave "never"
    // cached, and this capture would then miss lines. A global subscriber that takes everything
    // (and writes nowhere) keeps every call site enabled; the scoped one below still gets the
    // events of this thread.
    static GLOBAL: std::sync::Once = std::sync::Once::new();
    GLOBAL.call_once(|| {
        let sink = tracing_subscriber::fmt()
            .with_writer(std::io::sink)
            .with_max_level(tracing::Level::TRACE)
            .finish();
        let _ = tracing::subscriber::set_global_default(sink);
    });
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        tracing::callsite::rebuild_interest_cache();
        f();
    });
    String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
}
