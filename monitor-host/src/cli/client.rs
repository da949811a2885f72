//! The HTTP client every command uses: a base URL, short timeouts, and errors that name the URL.

use std::time::Duration;

use anyhow::Context as _;
use serde::de::DeserializeOwned;

/// The largest answer read (a host's snapshot with many series is a few MiB).
const MAX_BODY: u64 = 256 * 1024 * 1024;

/// The host or application could not be reached at all (refused, unknown name, timed out).
#[derive(Debug, thiserror::Error)]
#[error("cannot reach {url}: {message}; is the host running and listening there?")]
pub struct Unreachable {
    /// The URL asked.
    pub url: String,
    /// What the transport said.
    pub message: String,
}

/// A base URL (`http://127.0.0.1:9464`) and the agent that asks it.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client for `base`; `127.0.0.1:9464` means `http://127.0.0.1:9464`.
    pub fn new(base: &str) -> Self {
        let base = base.trim().trim_end_matches('/');
        let base = if base.contains("://") {
            base.to_owned()
        } else {
            format!("http://{base}")
        };
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .timeout_connect(Some(Duration::from_secs(3)))
            .http_status_as_error(false)
            .build();
        Self {
            base,
            agent: ureq::Agent::new_with_config(config),
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET path?query`: the status and the body, whatever the status.
    ///
    /// # Errors
    ///
    /// [`Unreachable`] when no answer came; a body that is not UTF-8 or too large.
    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<(u16, String)> {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.get(&url);
        for (k, v) in query {
            request = request.query(*k, *v);
        }
        let mut response = request.call().map_err(|e| Unreachable {
            url: url.clone(),
            message: e.to_string(),
        })?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .with_context(|| format!("{url}: cannot read the answer"))?;
        Ok((status, body))
    }

    /// `POST` (with a JSON `body`) or `DELETE` `path`: the status and the body, whatever the
    /// status.
    ///
    /// # Errors
    ///
    /// As [`Client::get`].
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> anyhow::Result<(u16, String)> {
        let url = format!("{}{path}", self.base);
        let unreachable = |e: ureq::Error| Unreachable {
            url: url.clone(),
            message: e.to_string(),
        };
        let mut response = match (method, body) {
            ("DELETE", _) => self.agent.delete(&url).call().map_err(unreachable)?,
            (_, body) => (self.agent.post(&url))
                .header("content-type", "application/json")
                .send(body.unwrap_or(""))
                .map_err(unreachable)?,
        };
        let status = response.status().as_u16();
        let body = (response.body_mut().with_config())
            .limit(MAX_BODY)
            .read_to_string()
            .with_context(|| format!("{url}: cannot read the answer"))?;
        Ok((status, body))
    }

    /// `GET path` expecting 200; the body.
    ///
    /// # Errors
    ///
    /// As [`Client::get`], and any other status, with the first line of the answer.
    pub fn text(&self, path: &str) -> anyhow::Result<String> {
        let (status, body) = self.get(path, &[])?;
        if status != 200 {
            let first = body.lines().next().unwrap_or("").trim();
            anyhow::bail!("{}{path} answered {status}: {first}", self.base);
        }
        Ok(body)
    }

    /// `GET path` expecting 200 and JSON of type `T`.
    ///
    /// # Errors
    ///
    /// As [`Client::text`], and an answer that is not the JSON expected.
    pub fn json<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let body = self.text(path)?;
        serde_json::from_str(&body).with_context(|| {
            format!(
                "{}{path} did not answer the JSON expected (is this a monitor-host?)",
                self.base
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_address_gets_a_scheme_and_no_trailing_slash() {
        assert_eq!(Client::new("127.0.0.1:1/").base(), "http://127.0.0.1:1");
        assert_eq!(Client::new("http://h:2").base(), "http://h:2");
    }

    #[test]
    fn an_unreachable_address_is_named() {
        // Port 1 on loopback: nothing listens there, the connection is refused.
        let e = Client::new("127.0.0.1:1").text("/healthz").unwrap_err();
        assert!(e.is::<Unreachable>(), "{e:#}");
        assert!(e.to_string().contains("http://127.0.0.1:1/healthz"), "{e}");
    }
}
