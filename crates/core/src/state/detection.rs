//! Applying detection inputs: verdict changes, controller contact and site transitions.

use serde::{Deserialize, Serialize};

use super::{Outcome, Rejection, State};
use crate::detection::{DetectionEvent, DetectionInput, Verdict};

/// How many recent site events the state keeps; older ones stay in the audit chain.
pub const SITE_EVENTS_MAX: usize = 1000;

/// A site-state event with the log index that produced it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SiteEventRecord {
    pub index: u64,
    pub event: DetectionEvent,
}

pub(super) fn summary(input: &DetectionInput) -> String {
    match input {
        DetectionInput::VerdictChanged(change) => {
            let verdict = match change.verdict {
                Verdict::Up => "up",
                Verdict::Down => "down",
            };
            let error = change
                .last_error
                .as_deref()
                .map(|error| format!(" ({error})"))
                .unwrap_or_default();
            format!(
                "verdict: node {} sees {} {verdict}{error}",
                change.observer, change.endpoint
            )
        }
        DetectionInput::ControllerContact(contact) => {
            let reachable = if contact.reachable {
                "reachable"
            } else {
                "unreachable"
            };
            format!("controller contact: node {} {reachable}", contact.node)
        }
        DetectionInput::Tick { now } => format!("tick: {now}"),
        DetectionInput::SiteTransition(transition) => format!("site transition: {transition}"),
        DetectionInput::ServiceTransition(transition) => format!("{transition}"),
    }
}

impl State {
    pub(super) fn apply_detection(&mut self, index: u64, input: &DetectionInput) -> Outcome {
        let Some(detector) = self.detector.as_mut() else {
            return Outcome::Rejected(Rejection::NoConfig);
        };
        match detector.apply(input) {
            Ok(events) => {
                for event in events {
                    if let Some(transition) = event.transition() {
                        self.routing
                            .note_site_state(index, &transition.site, transition.to);
                    }
                    self.site_events.push(SiteEventRecord { index, event });
                }
                let excess = self.site_events.len().saturating_sub(SITE_EVENTS_MAX);
                self.site_events.drain(..excess);
                Outcome::Accepted
            }
            Err(rejection) => Outcome::Rejected(Rejection::Detection(rejection)),
        }
    }
}
