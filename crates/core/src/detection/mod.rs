//! Site-loss detection: from replicated verdict changes to quorum-agreed, held, pair-checked site
//! states, each transition committed with the evidence behind it.
//!
//! Pure and deterministic like the rest of `core`: time arrives inside the commands. The model:
//!
//! - The **verdict matrix** holds every node's latest committed verdict on every endpoint.
//! - An **observer site** combines its replicating nodes' verdicts by strict majority per endpoint
//!   and counts against a judged site when it sees at least `endpoints_down_fraction` of that
//!   site's endpoints down.
//! - The **consensus** on a site is `down` when at least `observer_sites_min` other, non-lost
//!   observer sites count against it *and* they outnumber those that do not; `up` symmetrically;
//!   otherwise `undecided`.
//! - **States** move `healthy -> suspect -> lost -> recovering -> healthy` (see [`SiteState`]),
//!   only through [`SiteTransition`]s that the leader proposes and every replica re-derives.
//! - **Safety**: no site is declared down while no other judged site would be left serving; when
//!   every standing judged site looks down at once, that is a global outage (an alert).
//! - **Per-service** states (`healthy -> unhealthy -> healthy`, see [`ServiceState`]) follow the
//!   same quorum rule and hysteresis on one service's endpoints in one site, and move only while
//!   the site itself is `healthy`, through pair-checked [`ServiceTransition`]s.
//! - The prober shares [`VerdictCounter`] for rise/fall counting.

mod detector;
mod event;
mod evidence;
mod input;
mod rejection;
mod service_state;
mod site_state;
mod tally;
mod topology;
mod transition;
mod verdict;

#[cfg(test)]
mod detector_test;
#[cfg(test)]
mod scenario_test;
#[cfg(test)]
mod service_test;

pub use detector::Detector;
pub use event::DetectionEvent;
pub use evidence::{Consensus, Evidence, EvidenceMatrix, ObserverRow, ObserverView, ServiceHealth};
pub use input::{ControllerContact, DetectionInput, VerdictChanged};
pub use rejection::{Blocked, Rejection};
pub use service_state::{ServiceState, ServiceStatus};
pub use site_state::{SiteState, SiteStatus};
pub use topology::{SiteMembers, Topology};
pub use transition::{ServiceTransition, SiteTransition};
pub use verdict::{Verdict, VerdictCounter, VerdictFlip, VerdictRecord};
