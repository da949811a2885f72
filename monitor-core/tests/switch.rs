//! The process-wide recording switch. Alone in its test binary: switching
//! recording off would drop the calls of tests running beside it.

use std::time::Duration;

use monitor_core::Registry;

#[test]
fn switched_off_recording_records_nothing() {
    let reg = Registry::new();
    monitor_core::set_enabled(false);
    drop(reg.guard("off"));
    reg.record("off_record", Duration::from_micros(1), true);
    monitor_core::set_enabled(true);
    drop(reg.guard("off"));
    assert_eq!(reg.function("off").map(|f| f.calls), Some(1));
    assert!(reg.function("off_record").is_none());
}
