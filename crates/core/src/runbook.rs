//! The validated runbook: a declarative, versioned procedure made of steps.
//!
//! Values that may contain `${param}` references stay as [`Template`]s here; they are resolved
//! against an execution's parameters when it is planned or run.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::RecordType;
use crate::id::{RunbookId, ServiceId, SiteId, StepId, ZoneName};

/// Upper bound on steps in one runbook (main and rollback counted separately).
pub const STEPS_MAX: usize = 64;

/// Parameters every execution has without declaring them.
pub const BUILTIN_PARAMETERS: [&str; 2] = ["site", "execution"];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Runbook {
    pub name: RunbookId,
    pub description: String,
    pub triggers: Vec<Trigger>,
    /// May run automatically on its triggers without a work plan.
    pub pre_approved: bool,
    /// Declared recovery time objective; reports measure against it.
    pub rto: Option<Duration>,
    /// Declared parameters beyond the built-in ones (`site`, `execution`).
    pub parameters: BTreeMap<String, Parameter>,
    pub steps: Vec<Step>,
    /// What a failed step does unless it says otherwise.
    pub on_failure: OnFailure,
    /// Steps run, in order, when a step fails under `on_failure: rollback`.
    pub rollback: Vec<Step>,
}

impl Runbook {
    /// Every step, main steps first, then rollback steps.
    pub fn all_steps(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().chain(self.rollback.iter())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parameter {
    pub description: Option<String>,
    /// Used when the execution does not give a value; a parameter without one is required.
    pub default: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// A site was declared lost; limited to `sites` when given.
    SiteLost { sites: Vec<SiteId> },
    /// A service's endpoints are down in one site while the site is otherwise fine.
    ServiceUnhealthy { services: Vec<ServiceId> },
    /// Started by an operator (or a drill) under a work plan.
    Manual,
}

impl Trigger {
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::SiteLost { .. } => "site_lost",
            Trigger::ServiceUnhealthy { .. } => "service_unhealthy",
            Trigger::Manual => "manual",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Stop the execution; routing stays as the failed step left it.
    Halt,
    /// Record the failure and go on with the next step.
    Continue,
    /// Run the runbook's rollback steps, then stop.
    Rollback,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub id: StepId,
    /// The whole step, retries included, fails after this long.
    pub timeout: Duration,
    /// Further attempts after a failed one.
    pub retries: u32,
    /// Overrides the runbook's `on_failure` for this step.
    pub on_failure: Option<OnFailure>,
    pub action: Action,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    ShiftTraffic(ShiftTraffic),
    SetRecords(SetRecords),
    VerifyDns(VerifyDns),
    Webhook(Webhook),
    Wait(Wait),
    Check(Check),
    Approval(Approval),
    Haproxy(Haproxy),
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::ShiftTraffic(_) => "shift_traffic",
            Action::SetRecords(_) => "set_records",
            Action::VerifyDns(_) => "verify_dns",
            Action::Webhook(_) => "webhook",
            Action::Wait(_) => "wait",
            Action::Check(_) => "check",
            Action::Approval(_) => "approval",
            Action::Haproxy(_) => "haproxy",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShiftTraffic {
    pub services: Vec<ServiceId>,
    pub direction: ShiftDirection,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShiftDirection {
    /// Take this site out of rotation.
    AwayFrom(Template),
    /// Put this site back into rotation.
    Restore(Template),
    /// Put exactly these sites in rotation.
    To(Vec<Template>),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetRecords {
    pub zone: ZoneName,
    pub records: Vec<RecordValues>,
}

/// An explicit RRset, replacing whatever the routing would derive for that name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordValues {
    pub name: String,
    pub record_type: RecordType,
    pub ttl: Duration,
    pub values: Vec<IpAddr>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyDns {
    pub services: Vec<ServiceId>,
    /// Also ask the zones' listed recursive resolvers.
    pub resolvers: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub method: String,
    pub url: Template,
    pub headers: BTreeMap<String, Template>,
    /// JSON body; string leaves may hold `${param}` references.
    pub body: Option<serde_json::Value>,
    pub expected_status: Vec<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wait {
    pub duration: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub condition: Condition,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The site is in one of these states.
    SiteState {
        site: Template,
        states: Vec<SiteStateName>,
    },
    /// The service is healthy in at least this many sites.
    ServiceHealthy { service: ServiceId, sites_min: u32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SiteStateName {
    Healthy,
    Suspect,
    Lost,
    Recovering,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// How many distinct approvers on shift must approve before the execution goes on.
    pub approvers_min: u32,
    pub message: Option<Template>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Haproxy {
    pub backend: String,
    pub server: Template,
    pub action: HaproxyAction,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HaproxyAction {
    Ready,
    Drain,
    Maint,
    Weight(u32),
}

/// A string that may hold `${name}` references to execution parameters.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Template(String);

/// A `${…}` reference that could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("parameter `{name}` has no value")]
    Missing { name: String },
    #[error("unterminated `${{` at byte {offset}")]
    Unterminated { offset: usize },
}

impl Template {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The parameter names referenced, with the byte offset of each `${`, in order.
    pub fn references(&self) -> Result<Vec<(usize, &str)>, TemplateError> {
        let mut references = Vec::new();
        let mut rest = 0;
        while let Some(found) = self.0[rest..].find("${") {
            let start = rest + found;
            let Some(length) = self.0[start + 2..].find('}') else {
                return Err(TemplateError::Unterminated { offset: start });
            };
            references.push((start, &self.0[start + 2..start + 2 + length]));
            rest = start + 2 + length + 1;
        }
        Ok(references)
    }

    /// The text with every `${name}` replaced by its value.
    pub fn resolve(&self, values: &BTreeMap<String, String>) -> Result<String, TemplateError> {
        let mut resolved = String::with_capacity(self.0.len());
        let mut rest = 0;
        for (start, name) in self.references()? {
            resolved.push_str(&self.0[rest..start]);
            let value = values.get(name).ok_or_else(|| TemplateError::Missing {
                name: name.to_owned(),
            })?;
            resolved.push_str(value);
            rest = start + 2 + name.len() + 1;
        }
        resolved.push_str(&self.0[rest..]);
        Ok(resolved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_resolves_every_reference() {
        let template = Template::new("site ${site} in ${execution}!");
        let values = BTreeMap::from([
            ("site".to_owned(), "alpha".to_owned()),
            ("execution".to_owned(), "7".to_owned()),
        ]);
        assert_eq!(template.resolve(&values).unwrap(), "site alpha in 7!");
    }

    #[test]
    fn template_reports_missing_and_unterminated() {
        let values = BTreeMap::new();
        assert_eq!(
            Template::new("${x}").resolve(&values),
            Err(TemplateError::Missing { name: "x".into() })
        );
        assert_eq!(
            Template::new("a ${x").references(),
            Err(TemplateError::Unterminated { offset: 2 })
        );
    }
}
