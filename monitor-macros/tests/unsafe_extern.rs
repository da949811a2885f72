//! `unsafe fn`, `extern "C" fn` and both at once.
#![deny(warnings)]

use monitor_core::{FunctionStats, global, monitor_performance};

fn stats(name: &str) -> FunctionStats {
    global()
        .function(name)
        .unwrap_or_else(|| panic!("{name} is not listed"))
}

/// # Safety
/// `ptr` must point to a readable `u32`.
#[monitor_performance]
unsafe fn read(ptr: *const u32) -> u32 {
    // SAFETY: the caller promises `ptr` is readable.
    unsafe { *ptr }
}

#[monitor_performance]
extern "C" fn c_add(a: i32, b: i32) -> i32 {
    a.wrapping_add(b)
}

/// # Safety
/// `ptr` must point to `len` readable bytes.
#[monitor_performance]
pub unsafe extern "C" fn c_sum(ptr: *const u8, len: usize) -> u64 {
    // SAFETY: the caller promises `len` readable bytes at `ptr`.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
    bytes.iter().map(|&b| u64::from(b)).sum()
}

#[monitor_performance]
extern "C" fn c_unit(out: &mut u32) {
    *out += 1;
}

struct Device;

impl Device {
    /// # Safety
    /// None really; it shows `unsafe` methods.
    #[monitor_performance(name = "unsafe_extern.Device::reset")]
    unsafe fn reset(&mut self) -> Result<(), String> {
        Err("busy".to_owned())
    }
}

#[test]
fn unsafe_and_extern_functions_record() {
    let value = 7u32;
    // SAFETY: `value` is a live `u32`.
    assert_eq!(unsafe { read(&value) }, 7);
    let through_pointer: extern "C" fn(i32, i32) -> i32 = c_add;
    assert_eq!(through_pointer(2, 3), 5);
    assert_eq!(c_add(1, 1), 2);
    let bytes = [1u8, 2, 3];
    // SAFETY: `bytes` is live for its length.
    assert_eq!(unsafe { c_sum(bytes.as_ptr(), bytes.len()) }, 6);
    let mut n = 0;
    c_unit(&mut n);
    assert_eq!(n, 1);
    // SAFETY: no requirement.
    assert!(unsafe { Device.reset() }.is_err());

    assert_eq!(stats(concat!(module_path!(), "::read")).calls, 1);
    assert_eq!(stats(concat!(module_path!(), "::c_add")).calls, 2);
    assert_eq!(stats(concat!(module_path!(), "::c_sum")).calls, 1);
    assert_eq!(stats(concat!(module_path!(), "::c_unit")).calls, 1);
    let s = stats("unsafe_extern.Device::reset");
    assert_eq!((s.calls, s.failures), (1, 1));
}
