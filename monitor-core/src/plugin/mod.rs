//! The plugin SDK: write collectors, healing strategies and alert notifiers as dynamic libraries
//! the `monitor-host` loads without being rebuilt.
//!
//! A plugin is a type implementing one of [`Collector`], [`HealingStrategy`] or [`AlertNotifier`]
//! plus `Default`, in a crate built as a `cdylib`, exported with [`export_plugin!`](crate::export_plugin):
//!
//! ```
//! use monitor_core::plugin::{Collection, Collector, PluginError, Sample};
//!
//! #[derive(Default)]
//! struct Dice {
//!     sides: u32,
//! }
//!
//! impl Collector for Dice {
//!     fn configure(&mut self, config: &serde_json::Value) -> Result<(), PluginError> {
//!         self.sides = config.get("sides").and_then(|v| v.as_u64()).unwrap_or(6) as u32;
//!         Ok(())
//!     }
//!
//!     fn collect(&mut self) -> Result<Collection, PluginError> {
//!         let value = f64::from(self.sides); // a fair roll, every time
//!         Ok(Collection { samples: vec![Sample::gauge("dice.roll", value)], events: vec![] })
//!     }
//! }
//!
//! monitor_core::export_plugin!(collector "dice" => Dice);
//! ```
//!
//! Everything that crosses the library boundary is defined in [`abi`] (C structs, JSON payloads in
//! buffers freed by their allocator's side, no unwinding); `include/monitor_plugin.h` describes the
//! same ABI for plugins written in C.

pub mod abi;
mod sdk;
mod types;

pub use sdk::{
    AlertNotifier, Collector, HealingStrategy, PluginError, declaration, parse_config, registered,
};
pub use types::{
    Collection, Event, Failure, HealOutcome, Labels, Notification, NotificationStatus, Sample,
    SampleKind, Severity,
};

/// Not public API: what [`export_plugin!`](crate::export_plugin) expands to.
#[doc(hidden)]
pub mod __private {
    pub use super::sdk::{
        Adapter, CollectorAdapter, NotifierAdapter, Registration, StrategyAdapter, vtable,
    };
    pub use inventory;
}

/// Exports plugins from a `cdylib`: `kind "name" => Type`, comma-separated, kinds `collector`,
/// `strategy`, `notifier`. May be used several times in one library; each type needs `Default`.
///
/// The library's entry symbols come from the SDK itself, so plugin code never writes
/// `#[no_mangle]`; the plugin's version is the crate's `CARGO_PKG_VERSION`.
///
/// ```ignore
/// monitor_core::export_plugin! {
///     collector "system" => SystemCollector,
///     notifier "log" => LogNotifier,
/// }
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($($kind:ident $name:literal => $ty:ty),+ $(,)?) => {
        $( $crate::export_plugin!(@one $kind $name $ty); )+
    };
    (@one collector $name:literal $ty:ty) => {
        $crate::export_plugin!(@adapter CollectorAdapter $name $ty);
    };
    (@one strategy $name:literal $ty:ty) => {
        $crate::export_plugin!(@adapter StrategyAdapter $name $ty);
    };
    (@one notifier $name:literal $ty:ty) => {
        $crate::export_plugin!(@adapter NotifierAdapter $name $ty);
    };
    (@adapter $adapter:ident $name:literal $ty:ty) => {
        const _: () = {
            static VTABLE: $crate::plugin::abi::PluginVTable =
                $crate::plugin::__private::vtable::<$crate::plugin::__private::$adapter<$ty>>(
                    $name,
                    ::core::env!("CARGO_PKG_VERSION"),
                );
            $crate::plugin::__private::inventory::submit! {
                $crate::plugin::__private::Registration(&VTABLE)
            }
        };
    };
}
