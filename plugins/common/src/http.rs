//! The outbound HTTP(S) client: URL checks, the redirect policy and TLS.
//!
//! TLS is rustls with the ring provider. Servers are verified against the system's CA bundle
//! (`SSL_CERT_FILE` when set, else the first of the usual distribution paths that exists), or,
//! with `tls_ca_file`, against the certificates of that PEM file only (a private CA).
//! `insecure_skip_verify` turns verification off.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use monitor_plugin::PluginError;
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

/// Where distributions keep their CA bundle (the list `openssl-probe` and Go use), tried in order
/// after `SSL_CERT_FILE`.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// How a plugin's client behaves, from its config.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Whole-request timeout (connect, TLS, send, receive).
    pub timeout: Duration,
    /// Follow up to 10 redirects; when false a redirect answer is returned as it is (see
    /// [`refuse_redirect`]).
    pub follow_redirects: bool,
    /// A 4xx or 5xx answer is an error (`true`) or an ordinary response (`false`).
    pub status_as_error: bool,
    /// Trust the certificates of this PEM file instead of the system's bundle.
    pub tls_ca_file: Option<PathBuf>,
    /// Do not verify the server's certificate at all.
    pub insecure_skip_verify: bool,
}

impl ClientOptions {
    /// Options with `timeout`, redirects refused, HTTP errors as errors, system roots.
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            follow_redirects: false,
            status_as_error: true,
            tls_ca_file: None,
            insecure_skip_verify: false,
        }
    }
}

/// Checks a configured `url`: an `http://` or `https://` address with a host.
///
/// # Errors
///
/// Any other URL, with a message naming it.
pub fn check_url(url: &str) -> Result<(), PluginError> {
    let bad = || {
        PluginError::new(format!(
            "`url` must be an http:// or https:// address with a host, got `{url}`"
        ))
    };
    let uri: ureq::http::Uri = url.parse().map_err(|_| bad())?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none_or(str::is_empty) {
        return Err(bad());
    }
    Ok(())
}

/// Makes the agent a plugin uses for every request.
///
/// # Errors
///
/// `tls_ca_file` cannot be read or holds no PEM certificate, or no system bundle exists (then
/// `tls_ca_file` is the way out). The system bundle is read once per process, when the first
/// agent that needs it is made.
pub fn agent(options: &ClientOptions) -> Result<ureq::Agent, PluginError> {
    let roots = match (&options.tls_ca_file, options.insecure_skip_verify) {
        (_, true) => RootCerts::Specific(Arc::new(Vec::new())),
        (Some(file), false) => RootCerts::Specific(Arc::new(
            read_certificates(file).map_err(|e| format!("`tls_ca_file`: {e}"))?,
        )),
        (None, false) => RootCerts::Specific(system_roots()?),
    };
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .root_certs(roots)
        .disable_verification(options.insecure_skip_verify)
        .build();
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(options.timeout))
        .http_status_as_error(options.status_as_error)
        .max_redirects(if options.follow_redirects { 10 } else { 0 })
        .tls_config(tls)
        .build();
    Ok(ureq::Agent::new_with_config(config))
}

/// The certificates of a PEM file, at least one.
///
/// # Errors
///
/// The file cannot be read, is not PEM, or holds no certificate.
pub fn read_certificates(file: &Path) -> Result<Vec<Certificate<'static>>, String> {
    let pem = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(format!("{}: {e}", file.display())),
        }
    }
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in it", file.display()));
    }
    Ok(certs)
}

/// The system's CA bundle, read once.
fn system_roots() -> Result<Arc<Vec<Certificate<'static>>>, PluginError> {
    static ROOTS: OnceLock<Result<Arc<Vec<Certificate<'static>>>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let from_env = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
            let candidates = from_env
                .into_iter()
                .chain(SYSTEM_BUNDLES.iter().map(PathBuf::from));
            for file in candidates {
                if file.is_file() {
                    return read_certificates(&file).map(Arc::new);
                }
            }
            Err(format!(
                "no system CA bundle found (SSL_CERT_FILE, {}): set `tls_ca_file`",
                SYSTEM_BUNDLES.join(", ")
            ))
        })
        .clone()
        .map_err(PluginError::new)
}

/// A redirect answer as an error: redirects are followed only with `follow_redirects = true`, so a
/// receiver or target cannot send the host to another address.
///
/// # Errors
///
/// `response` is a 3xx answer; the message names the status and the `Location`.
pub fn refuse_redirect<B>(
    url: &str,
    response: &ureq::http::Response<B>,
) -> Result<(), PluginError> {
    let status = response.status();
    if !status.is_redirection() {
        return Ok(());
    }
    let to = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("nowhere");
    Err(format!(
        "{url} answered {} (redirect to {to}): redirects are not followed unless `follow_redirects = true`",
        status.as_u16()
    )
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_need_http_or_https_and_a_host() {
        assert!(check_url("http://127.0.0.1:9464/metrics").is_ok());
        assert!(check_url("https://example.com/hook").is_ok());
        for bad in [
            "",
            "127.0.0.1:80",
            "http://",
            "http:///x",
            "https://",
            "ftp://host/x",
            "file:///etc/passwd",
        ] {
            assert!(check_url(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = std::env::temp_dir().join(format!("monitor-common-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("empty.pem");
        std::fs::write(&file, "not a certificate\n").unwrap();
        let mut o = ClientOptions::new(Duration::from_secs(1));
        o.tls_ca_file = Some(file);
        let err = agent(&o).unwrap_err().to_string();
        assert!(err.contains("no PEM certificate"), "{err}");
        o.tls_ca_file = Some(dir.join("missing.pem"));
        let err = agent(&o).unwrap_err().to_string();
        assert!(err.contains("missing.pem"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
