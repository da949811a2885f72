//! What the bundled plugins share, so it is written once: the outbound HTTP client of the
//! plugins that fetch or post over HTTP(S) (`prometheus`, `webhook`, `probe`).
//!
//! This is an ordinary library linked into each plugin's `cdylib`; it exports no plugin itself.
#![deny(missing_docs)]

pub mod http;
pub mod prometheus;
