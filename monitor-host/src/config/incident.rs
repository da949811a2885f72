//! `escalate_after` and `escalate_to` of `[[alert]]`: escalation of unacknowledged incidents.

use std::collections::BTreeMap;
use std::time::Duration;

use toml::Spanned;

use super::{Ctx, Escalation, NotifierSpec, RawAlert};

/// An `[[alert]]`'s escalation keys, as written.
pub(super) struct RawEscalation {
    alert: String,
    span: std::ops::Range<usize>,
    after: Option<Spanned<String>>,
    to: Option<Spanned<Vec<Spanned<String>>>>,
}

/// The escalation keys of every `[[alert]]` that has one, taken before the alerts are resolved.
pub(super) fn take_escalations(alerts: &[Spanned<RawAlert>]) -> Vec<RawEscalation> {
    alerts
        .iter()
        .filter(|a| a.get_ref().escalate_after.is_some() || a.get_ref().escalate_to.is_some())
        .map(|a| RawEscalation {
            alert: a.get_ref().name.get_ref().clone(),
            span: a.span(),
            after: a.get_ref().escalate_after.clone(),
            to: a.get_ref().escalate_to.clone(),
        })
        .collect()
}

impl Ctx<'_> {
    /// Each alert's escalation, with `escalate_to` naming configured notifier instances.
    pub(super) fn escalations(
        &mut self,
        raw: Vec<RawEscalation>,
        notifiers: &[NotifierSpec],
    ) -> BTreeMap<String, Escalation> {
        let mut out = BTreeMap::new();
        for r in raw {
            let (Some(after), Some(to)) = (&r.after, &r.to) else {
                let (missing, at) = match (&r.after, &r.to) {
                    (None, Some(t)) => ("escalate_after", t.span()),
                    (Some(a), None) => ("escalate_to", a.span()),
                    _ => ("escalate_to", r.span.clone()),
                };
                self.err(
                    at,
                    format!(
                        "`{missing}` is missing: `escalate_after = \"15m\"` and \
                         `escalate_to = [\"pager\"]` go together"
                    ),
                );
                continue;
            };
            let after =
                self.positive_duration("escalate_after", &Some(after.clone()), Duration::ZERO);
            if to.get_ref().is_empty() {
                self.err(to.span(), "`escalate_to` names no notifier");
                continue;
            }
            let mut names = Vec::new();
            for n in to.get_ref() {
                if notifiers.iter().any(|s| &s.plugin.name == n.get_ref()) {
                    names.push(n.get_ref().clone());
                    continue;
                }
                let known: Vec<&str> = notifiers.iter().map(|s| s.plugin.name.as_str()).collect();
                self.err(
                    n.span(),
                    format!(
                        "`escalate_to`: no notifier named `{}`; the notifiers are: {}",
                        n.get_ref(),
                        if known.is_empty() {
                            "(none)".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ),
                );
            }
            out.insert(r.alert, Escalation { after, to: names });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::Config;
    use super::*;

    fn config(alert_extra: &str) -> Result<Config, Vec<String>> {
        let text = format!(
            "[host]\nreopen_within = \"1m\"\n\n[[alert]]\nname = \"a\"\nmetric = \"m\"\n\
             condition = \"above\"\nthreshold = 1\n{alert_extra}\n\n\
             [[notifier]]\nplugin = \"log\"\nlibrary = \"l.so\"\n\n\
             [[notifier]]\nplugin = \"log\"\nname = \"pager\"\nlibrary = \"l.so\"\n"
        );
        Config::from_str(&text, "monitor.toml", Path::new("/etc"))
            .map_err(|e| e.0.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn an_alert_escalates_to_named_notifiers() {
        let c = config("escalate_after = \"15m\"\nescalate_to = [\"pager\"]").unwrap();
        assert_eq!(
            c.escalations["a"],
            Escalation {
                after: Duration::from_secs(900),
                to: vec!["pager".into()],
            }
        );
        assert_eq!(c.host.reopen_within, Duration::from_secs(60));
        assert!(config("").unwrap().escalations.is_empty());
    }

    #[test]
    fn bad_escalations_are_refused_with_their_position() {
        for (extra, expected) in [
            (
                "escalate_after = \"15m\"\nescalate_to = [\"pagr\"]",
                "monitor.toml:10:16: `escalate_to`: no notifier named `pagr`; the notifiers are: log, pager",
            ),
            (
                "escalate_after = \"15m\"",
                "monitor.toml:9:18: `escalate_to` is missing",
            ),
            (
                "escalate_to = [\"pager\"]",
                "monitor.toml:9:15: `escalate_after` is missing",
            ),
            (
                "escalate_after = \"soon\"\nescalate_to = [\"pager\"]",
                "monitor.toml:9:18: `escalate_after`",
            ),
            (
                "escalate_after = \"15m\"\nescalate_to = []",
                "monitor.toml:10:15: `escalate_to` names no notifier",
            ),
        ] {
            let errors = config(extra).unwrap_err();
            assert!(
                errors.iter().any(|e| e.starts_with(expected)),
                "{extra}: {errors:?}"
            );
        }
    }
}
