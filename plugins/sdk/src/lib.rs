//! The plugin SDK of `monitor-host`: write collectors, healing strategies and alert notifiers as
//! dynamic libraries the host loads without being rebuilt.
//!
//! A plugin is a type implementing one of [`Collector`], [`HealingStrategy`] or [`AlertNotifier`]
//! plus `Default`, in a crate built as a `cdylib`, exported with [`export_plugin!`]:
//!
//! ```
//! use monitor_plugin::{Collection, Collector, PluginError, Sample};
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
//! monitor_plugin::export_plugin!(collector "dice" => Dice);
//! ```
//!
//! Everything that crosses the library boundary is defined in [`abi`] (C structs, JSON payloads in
//! buffers freed by their allocator's side, no unwinding); `include/monitor_plugin.h` describes the
//! same ABI for plugins written in C.
//!
//! Depending on this crate exports nothing by itself: the library's two entry symbols are emitted by
//! [`export_plugin!`] in the plugin's own crate, so a program or library that only uses the types
//! here never looks like a plugin library.
#![deny(missing_docs)]

pub mod abi;
mod duration;
mod host;
pub mod number;
mod pool;
mod sdk;
mod types;
mod writer;

pub use duration::{ConfigDuration, MAX_DURATION, parse_duration};
pub use host::Host;

pub use sdk::{
    AlertNotifier, Collector, HealingStrategy, PluginError, declaration, parse_config, registered,
};
pub use types::{
    Collection, Event, Failure, HealOutcome, Labels, Notification, NotificationStatus, Sample,
    SampleKind, Severity,
};
pub use writer::{Checkpoint, CollectionWriter, SampleWriter};

/// Not public API: what [`export_plugin!`] expands to.
#[doc(hidden)]
pub mod __private {
    pub use super::sdk::{
        Adapter, CollectorAdapter, NotifierAdapter, Registration, StrategyAdapter, declare, vtable,
    };
    pub use inventory;
}

/// Exports plugins from a `cdylib`: `kind "name" => Type`, comma-separated, kinds `collector`,
/// `strategy`, `notifier`; each type needs `Default`. Use it once per library, listing every plugin
/// the library provides.
///
/// Besides registering the plugins, it emits the library's two entry symbols
/// ([`abi::VERSION_SYMBOL`] and [`abi::ENTRY_SYMBOL`]) in the crate that calls it, so plugin code
/// never writes `#[no_mangle]`, and a crate that merely depends on the SDK exports nothing. A second
/// use in the same library fails to link (the symbols would be defined twice). The plugin's version
/// is the crate's `CARGO_PKG_VERSION`.
///
/// ```ignore
/// monitor_plugin::export_plugin! {
///     collector "system" => SystemCollector,
///     notifier "log" => LogNotifier,
/// }
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($($kind:ident $name:literal => $ty:ty),+ $(,)?) => {
        $( $crate::export_plugin!(@one $kind $name $ty); )+

        /// The plugin library's version symbol (see `monitor_plugin::abi`).
        #[unsafe(no_mangle)]
        pub extern "C" fn monitor_plugin_abi_version() -> u32 {
            $crate::abi::ABI_VERSION
        }

        /// The plugin library's entry symbol: the plugins registered in it.
        #[unsafe(no_mangle)]
        pub extern "C" fn monitor_plugin_declare() -> *const $crate::abi::Declaration {
            $crate::__private::declare()
        }
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
            static VTABLE: $crate::abi::PluginVTable =
                $crate::__private::vtable::<$crate::__private::$adapter<$ty>>(
                    $name,
                    ::core::env!("CARGO_PKG_VERSION"),
                );
            $crate::__private::inventory::submit! {
                $crate::__private::Registration(&VTABLE)
            }
        };
    };
}
