//! Every real site loss is detected within the detection window, `probe_interval x fall + hold`
//! plus a little slack, when detection has what it needs: every other site standing and seeing
//! clearly (no other fault around), and the loss lasting at least that long.

use switchyard_core::SiteId;
use switchyard_core::detection::{Consensus, SiteState};

use crate::fault::{FaultKind, duration_ms};
use crate::world::World;

use super::Invariant;

/// Slack on top of the window: a step for the verdict to commit and one for the proposal.
const SLACK_MS: u64 = 500;

#[derive(Debug, Default)]
pub struct DetectedInWindow {
    /// Losses being watched: the site, when the loss started, and its deadline.
    watching: Vec<(SiteId, u64, u64)>,
}

impl Invariant for DetectedInWindow {
    fn name(&self) -> &'static str {
        "detected_in_window"
    }

    fn after_step(&mut self, world: &World) -> Result<(), String> {
        let policy = &world.params.policy;
        let interval = duration_ms(policy.probe_interval);
        let window = interval * u64::from(policy.fall) + duration_ms(policy.hold) + SLACK_MS;
        // A loss starting at this step is watched if nothing else can get in the way.
        let quiet_before = u64::from(policy.rise + 2) * interval;
        for fault in &world.faults.faults {
            let FaultKind::SiteLoss { site, .. } = &fault.kind else {
                continue;
            };
            // The fault's first step is the one at or just after its start.
            if fault.start > world.now || world.now - fault.start >= world.params.step_ms {
                continue;
            }
            let deadline = fault.start + window;
            let alone = world.faults.faults.iter().all(|other| {
                std::ptr::eq(other, fault)
                    || !other.overlaps(fault.start.saturating_sub(quiet_before), deadline)
            });
            let settled = world.detector.global_outage().is_none()
                && world.params.judged_sites().all(|judged| {
                    world.detector.site(&judged.id).is_some_and(|status| {
                        status.state == SiteState::Healthy && status.consensus == Consensus::Up
                    })
                });
            if alone && settled && fault.end > deadline {
                self.watching.push((site.clone(), fault.start, deadline));
            }
        }
        let mut missed = None;
        self.watching.retain(|(site, start, deadline)| {
            let down = world
                .detector
                .site(site)
                .is_some_and(|status| status.state.is_down());
            if !down && world.now >= *deadline && missed.is_none() {
                missed = Some(format!(
                    "site {site} lost at {start}ms is still {} at {}ms, past its deadline {deadline}ms",
                    world
                        .detector
                        .site(site)
                        .map_or("unknown", |status| status.state.as_str()),
                    world.now
                ));
            }
            !down && world.now < *deadline
        });
        missed.map_or(Ok(()), Err)
    }
}
