//! The monitor host: loads collector, healing-strategy and notifier plugins from a TOML config and
//! runs the collect, alert, notify and heal loop, serving what it knows over HTTP.
#![deny(missing_docs)]

pub mod alert;
pub mod auth;
pub mod config;
pub mod dashboard;
mod encoding;
pub mod engine;
pub mod healing_log;
pub mod history;
pub mod http;
pub mod incident;
pub mod learn;
pub mod library;
pub mod promql;
pub mod query;
pub mod remote_write;
pub mod render;
pub mod rules;
pub mod run;
pub mod silence;
pub mod store;
pub mod worker;

#[cfg(test)]
mod test_support;

pub use config::{Config, ConfigError, ConfigErrors};
pub use engine::Engine;
pub use library::{LoadError, PluginLibrary};
