//! `kind = "http"`: a GET, its status code and body checked.

use std::io::Read;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use monitor_plugin::PluginError;
use monitor_plugin_common::http::{ClientOptions, agent};
use regex::Regex;

use crate::cert;
use crate::config::HttpProbe;
use crate::outcome::Outcome;

/// Most bytes of a body read for `body_contains` / `body_regex`; the rest is not looked at.
const BODY_LIMIT: u64 = 1024 * 1024;

/// An HTTP probe with its client and compiled regex, made once at configure.
pub(crate) struct Http {
    pub probe: HttpProbe,
    agent: ureq::Agent,
    regex: Option<Regex>,
}

impl Http {
    pub fn new(probe: HttpProbe) -> Result<Self, PluginError> {
        let mut client = ClientOptions::new(probe.timeout.get());
        client.follow_redirects = probe.follow_redirects;
        // Every status is an answer to compare with `status`, not an error.
        client.status_as_error = false;
        client.tls_ca_file.clone_from(&probe.tls_ca_file);
        client.insecure_skip_verify = probe.insecure_skip_verify;
        let agent = agent(&client).map_err(|e| format!("probe `{}`: {e}", probe.name))?;
        let regex = probe
            .body_regex
            .as_deref()
            .map(Regex::new)
            .transpose()
            .map_err(|e| format!("probe `{}`: `body_regex`: {e}", probe.name))?;
        Ok(Self {
            probe,
            agent,
            regex,
        })
    }

    pub fn run(&self) -> Outcome {
        let p = &self.probe;
        let start = Instant::now();
        let mut response = match self.agent.get(&p.url).call() {
            Ok(r) => r,
            Err(e) => {
                return Outcome::down(Some(start.elapsed()), format!("GET {}: {e}", p.url));
            }
        };
        let status = response.status().as_u16();
        let mut outcome = self.judge(status, &mut response, start);
        outcome.status = Some(status);
        if p.url.starts_with("https://") {
            outcome.cert_expiry_seconds = self.cert_expiry();
        }
        outcome
    }

    fn judge(
        &self,
        status: u16,
        response: &mut ureq::http::Response<ureq::Body>,
        start: Instant,
    ) -> Outcome {
        let p = &self.probe;
        let expected = match &p.status {
            Some(list) => list.accepts(status),
            None => (200..300).contains(&status),
        };
        if !expected {
            let want = p
                .status
                .as_ref()
                .map_or_else(|| "2xx".to_owned(), |s| s.describe());
            return Outcome::down(
                Some(start.elapsed()),
                format!("GET {}: status {status}, expected {want}", p.url),
            );
        }
        if p.body_contains.is_none() && self.regex.is_none() {
            return Outcome::up(start.elapsed());
        }
        let mut bytes = Vec::new();
        if let Err(e) = response
            .body_mut()
            .as_reader()
            .take(BODY_LIMIT)
            .read_to_end(&mut bytes)
        {
            return Outcome::down(Some(start.elapsed()), format!("GET {}: body: {e}", p.url));
        }
        let latency = start.elapsed();
        let body = String::from_utf8_lossy(&bytes);
        if let Some(needle) = &p.body_contains
            && !body.contains(needle.as_str())
        {
            return Outcome::down(
                Some(latency),
                format!("GET {}: body does not contain `{needle}`", p.url),
            );
        }
        if let Some(re) = &self.regex
            && !re.is_match(&body)
        {
            return Outcome::down(
                Some(latency),
                format!("GET {}: body does not match /{}/", p.url, re.as_str()),
            );
        }
        Outcome::up(latency)
    }

    /// Seconds to the leaf certificate's `notAfter`, read on a second, short handshake that
    /// stops as soon as the certificate arrived (the request above made the trust decision).
    fn cert_expiry(&self) -> Option<f64> {
        let uri: ureq::http::Uri = self.probe.url.parse().ok()?;
        let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(443);
        let not_after = cert::leaf_not_after(host, port, self.probe.timeout.get()).ok()?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs_f64();
        Some(not_after as f64 - now)
    }
}
