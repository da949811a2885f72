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
            let after = self.positive_duration("escalate_after", &Some(after.clone()), Duration::ZERO);
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
