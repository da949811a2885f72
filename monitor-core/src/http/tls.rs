//! HTTPS for the [`HttpServer`](super::HttpServer): a rustls configuration (ring provider, TLS 1.2
//! and 1.3) from a certificate chain and a private key in PEM files. Enabled by the `tls` feature.
//!
//! ```no_run
//! use monitor_core::http::{HttpServer, Response, ServerOptions, tls};
//!
//! let mut options = ServerOptions::default();
//! options.tls = Some(tls::server_config("cert.pem".as_ref(), "key.pem".as_ref())?);
//! let server = HttpServer::start_with("0.0.0.0:9464", "https", options, |_| {
//!     Response::new(200, "text/plain", "ok\n")
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub use rustls::ServerConfig;

/// Why a TLS configuration could not be made.
#[derive(Debug)]
pub enum TlsError {
    /// The certificate file is missing, unreadable or holds no PEM certificate.
    Certificate(PathBuf, String),
    /// The key file is missing, unreadable or holds no PEM private key.
    Key(PathBuf, String),
    /// rustls refused the pair (the key does not match the certificate, ...).
    Config(String),
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Certificate(p, e) => write!(f, "certificate file {}: {e}", p.display()),
            Self::Key(p, e) => write!(f, "private key file {}: {e}", p.display()),
            Self::Config(e) => write!(f, "certificate and key refused: {e}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// Reads a PEM certificate chain (leaf first) and a PEM private key (PKCS#8, PKCS#1 or SEC1) and
/// makes a server configuration that offers HTTP/1.1.
///
/// # Errors
///
/// A file cannot be read or holds no usable PEM item, or the key does not go with the
/// certificate.
pub fn server_config(cert_file: &Path, key_file: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = certificates(cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| TlsError::Key(key_file.to_owned(), describe(&e)))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The certificates of a PEM file, at least one.
///
/// # Errors
///
/// The file cannot be read or holds no certificate.
pub fn certificates(cert_file: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let fail = |m: String| TlsError::Certificate(cert_file.to_owned(), m);
    let certs = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| fail(describe(&e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(describe(&e)))?;
    if certs.is_empty() {
        return Err(fail("no PEM certificate in it".into()));
    }
    Ok(certs)
}

fn describe(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::Io(io) => io.to_string(),
        Error::NoItemsFound => "no PEM item of the expected kind in it".into(),
        other => format!("not valid PEM: {other:?}"),
    }
}
