//! The expansion adds no `unsafe` of its own and needs no prelude.
#![forbid(unsafe_code)]
#![deny(warnings)]

#[monitor_core::monitor_performance]
fn safe(x: u32) -> Result<u32, String> {
    Ok(x)
}

#[no_implicit_prelude]
mod bare {
    #[::monitor_core::monitor_performance]
    pub fn parse(s: &str) -> ::std::result::Result<u32, ::std::num::ParseIntError> {
        s.parse()
    }

    #[::monitor_core::monitor_performance]
    pub async fn later() -> ::std::option::Option<u8> {
        ::std::option::Option::None
    }
}

fn main() {
    assert_eq!(safe(1), Ok(1));
    assert!(bare::parse("x").is_err());
    assert_eq!(futures_executor::block_on(bare::later()), None);
}
