//! Reads and checks a runbook against the cluster configuration it will run on:
//! YAML node tree → `switchyard_core::runbook`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use switchyard_core::config::{ClusterConfig, FailMode, RecordType, Role};
use switchyard_core::id::{RunbookId, ServiceId, SiteId, StepId, ZoneName};
use switchyard_core::runbook::{
    Action, Approval, BUILTIN_PARAMETERS, Check, Condition, Haproxy, HaproxyAction, OnFailure,
    Parameter, RecordValues, Runbook, STEPS_MAX, SetRecords, ShiftDirection, ShiftTraffic,
    SiteStateName, Step, Template, TemplateError, Trigger, VerifyDns, Wait, Webhook,
};

use crate::config::{plural, relative_name, ttl};
use crate::names::{self, fmt_duration};
use crate::reader::{Cx, Map, quote, suggestion};
use crate::yaml::{Kind, Node, Pos};

/// Default timeout of a step; a `wait` step's default is its duration plus [`WAIT_SLACK`].
const STEP_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
const WAIT_SLACK: Duration = Duration::from_secs(5);
/// No single step may run longer than a day: an execution must end.
const STEP_TIMEOUT_MAX: Duration = Duration::from_secs(86_400);
const RETRIES_MAX: u32 = 100;
const ON_FAILURE: [&str; 3] = ["halt", "continue", "rollback"];
const ON_FAILURE_VALUES: [OnFailure; 3] =
    [OnFailure::Halt, OnFailure::Continue, OnFailure::Rollback];

/// The step kinds and the key-table path of each one's mapping.
const STEP_KINDS: [(&str, &str); 8] = [
    ("shift_traffic", "steps[].shift_traffic"),
    ("set_records", "steps[].set_records"),
    ("verify_dns", "steps[].verify_dns"),
    ("webhook", "steps[].webhook"),
    ("wait", "steps[].wait"),
    ("check", "steps[].check"),
    ("approval", "steps[].approval"),
    ("haproxy", "steps[].haproxy"),
];

/// What the readers of one runbook share: the configuration and the parameters in scope.
struct Scope<'c> {
    config: &'c ClusterConfig,
    /// Built-in and declared parameter names.
    parameters: Vec<String>,
    /// Parameters referenced somewhere, for the "declared but never used" warning.
    used: BTreeSet<String>,
    /// Every step id read, main and rollback steps, even of steps with other problems.
    step_ids: Vec<(String, Pos)>,
}

/// A step as read, with the positions the cross-step checks point at.
struct ReadStep<'n> {
    step: Step,
    map: Map<'n>,
    /// Positions of the items of `services` (shift_traffic, verify_dns).
    service_positions: Vec<Pos>,
}

pub(crate) fn read(cx: &mut Cx, root: &Node, config: &ClusterConfig) -> Option<Runbook> {
    let top = cx.map(root, "")?;
    let name = cx
        .required(&top, "name")
        .and_then(|node| cx.id(node, "name", "runbook name"));
    let description = cx
        .required(&top, "description")
        .and_then(|node| cx.text(node, "description"));
    let triggers = cx
        .required(&top, "triggers")
        .and_then(|node| read_triggers(cx, node, config));
    let pre_approved = match cx.optional(&top, "pre_approved") {
        Some(node) => cx.bool(node, "pre_approved"),
        None => Some(false),
    };
    let rto = match cx.optional(&top, "rto") {
        Some(node) => cx.positive_duration(node, "rto").map(Some),
        None => Some(None),
    };
    // Every well-named parameter is in scope, even one whose body has a problem, so that
    // its uses are not reported as undefined too.
    let mut parameter_names: Vec<(String, Pos)> = Vec::new();
    let parameters = match cx.optional(&top, "parameters") {
        Some(node) => read_parameters(cx, node, &mut parameter_names),
        None => Some(Vec::new()),
    };
    let on_failure = match cx.optional(&top, "on_failure") {
        Some(node) => cx
            .word(node, "on_failure", &ON_FAILURE)
            .map(|index| ON_FAILURE_VALUES[index]),
        None => Some(OnFailure::Halt),
    };

    let mut scope = Scope {
        config,
        parameters: BUILTIN_PARAMETERS
            .iter()
            .map(|name| (*name).to_owned())
            .collect(),
        used: BTreeSet::new(),
        step_ids: Vec::new(),
    };
    scope
        .parameters
        .extend(parameter_names.iter().map(|(name, _)| name.clone()));

    let steps = cx
        .required(&top, "steps")
        .and_then(|node| read_steps(cx, node, "steps", &mut scope, false));
    let rollback = match cx.optional(&top, "rollback") {
        Some(node) => read_steps(cx, node, "rollback", &mut scope, true),
        None => Some(Vec::new()),
    };

    // Step ids are unique across the main and the rollback steps: reports name them.
    cx.no_duplicates(&scope.step_ids, "step id", Clone::clone);
    if let Some(steps) = &steps {
        check_records_exist(cx, steps, config);
        check_empty_rotation(cx, steps, config);
        if let Some(rto) = rto.flatten() {
            check_rto(cx, &top, steps, rto);
        }
    }
    if let Some(rollback) = &rollback {
        check_records_exist(cx, rollback, config);
        check_empty_rotation(cx, rollback, config);
    }
    if let (Some(steps), Some(rollback), Some(on_failure)) = (&steps, &rollback, on_failure) {
        check_rollback(cx, &top, steps, rollback, on_failure);
    }
    if let (Some(triggers), Some(pre_approved), Some(parameters)) =
        (&triggers, pre_approved, &parameters)
    {
        check_automatic(cx, &top, triggers, pre_approved, parameters);
    }
    for (name, pos) in &parameter_names {
        if !scope.used.contains(name) {
            cx.sink
                .warning(*pos, format!("parameter `{name}` is never used"))
                .hint(format!("reference it as `${{{name}}}` or remove it"));
        }
    }

    if cx.sink.has_errors() {
        return None;
    }
    Some(Runbook {
        name: RunbookId::new(name?),
        description: description?,
        triggers: triggers?.into_iter().map(|(trigger, _)| trigger).collect(),
        pre_approved: pre_approved?,
        rto: rto?,
        parameters: parameters?
            .into_iter()
            .map(|(name, _, parameter)| (name, parameter))
            .collect(),
        steps: steps?.into_iter().map(|read| read.step).collect(),
        on_failure: on_failure?,
        rollback: rollback?.into_iter().map(|read| read.step).collect(),
    })
}

fn read_triggers(cx: &mut Cx, node: &Node, config: &ClusterConfig) -> Option<Vec<(Trigger, Pos)>> {
    let list = cx.list(node, "triggers")?;
    if list.is_empty() {
        cx.sink
            .error(
                node.pos,
                "`triggers` is empty: nothing could ever start this runbook",
            )
            .hint("add `- manual: {}` to let operators run it");
        return None;
    }
    let triggers = cx.list_of(node, "triggers", |cx, item| {
        let (kind, key, body) = cx.tagged(item, "triggers[]", "trigger")?;
        let trigger = match kind.as_str() {
            "site_lost" => {
                let map = cx.map(body, "triggers[].site_lost")?;
                let sites = match cx.optional(&map, "sites") {
                    Some(node) => cx.list_of(node, "sites", |cx, item| {
                        let site = site_reference(cx, item, config)?;
                        Some(SiteId::new(site))
                    })?,
                    None => Vec::new(),
                };
                Trigger::SiteLost { sites }
            }
            "service_unhealthy" => {
                let map = cx.map(body, "triggers[].service_unhealthy")?;
                let services = match cx.optional(&map, "services") {
                    Some(node) => cx.list_of(node, "services", |cx, item| {
                        service_reference(cx, item, config)
                    })?,
                    None => Vec::new(),
                };
                Trigger::ServiceUnhealthy { services }
            }
            _ => {
                cx.map(body, "triggers[].manual")?;
                Trigger::Manual
            }
        };
        Some((trigger, key.pos))
    })?;
    for (index, (trigger, pos)) in triggers.iter().enumerate() {
        if triggers[..index]
            .iter()
            .any(|(other, _)| other.kind() == trigger.kind())
        {
            cx.sink
                .warning(
                    *pos,
                    format!("trigger `{}` is listed twice", trigger.kind()),
                )
                .hint("merge them: list every site or service in one trigger");
        }
    }
    Some(triggers)
}

/// A literal site that must exist in the configuration and not be a witness.
fn site_reference(cx: &mut Cx, node: &Node, config: &ClusterConfig) -> Option<String> {
    let name = cx.text(node, "site")?;
    check_site_name(cx, node.pos, &name, config).then_some(name)
}

fn check_site_name(cx: &mut Cx, pos: Pos, name: &str, config: &ClusterConfig) -> bool {
    match config.sites.iter().find(|site| site.id.as_str() == name) {
        Some(site) if site.witness => {
            cx.sink.error(
                pos,
                format!("site `{name}` is a witness: it has no endpoints to lose or route to"),
            );
            false
        }
        Some(_) => true,
        None => {
            let names: Vec<&str> = config.sites.iter().map(|site| site.id.as_str()).collect();
            cx.sink
                .error(pos, format!("unknown site {}", quote(name)))
                .hint(suggestion(name, &names));
            false
        }
    }
}

fn service_reference(cx: &mut Cx, node: &Node, config: &ClusterConfig) -> Option<ServiceId> {
    let name = cx.text(node, "service")?;
    if config
        .services
        .iter()
        .any(|service| service.id.as_str() == name)
    {
        return Some(ServiceId::new(name));
    }
    let names: Vec<&str> = config
        .services
        .iter()
        .map(|service| service.id.as_str())
        .collect();
    let report = cx
        .sink
        .error(node.pos, format!("unknown service {}", quote(&name)));
    if names.is_empty() {
        report.hint("the cluster configuration declares no service");
    } else {
        report.hint(suggestion(&name, &names));
    }
    None
}

/// Whether `name` may name a parameter: a lowercase identifier.
pub(crate) fn is_parameter_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && (bytes[0].is_ascii_lowercase() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || *byte == b'_')
}

/// Reads the declared parameters; every well-formed name goes to `names`.
fn read_parameters(
    cx: &mut Cx,
    node: &Node,
    names: &mut Vec<(String, Pos)>,
) -> Option<Vec<(String, Pos, Parameter)>> {
    let map = cx.map(node, "parameters")?;
    let mut parameters = Vec::new();
    let mut failed = false;
    for (key, value) in map.node.entries().unwrap_or(&[]) {
        let Some(name) = key.scalar_text() else {
            cx.sink.error(key.pos, "a parameter name must be a name");
            failed = true;
            continue;
        };
        if BUILTIN_PARAMETERS.contains(&name.as_str()) {
            cx.sink
                .error(
                    key.pos,
                    format!("`{name}` is a built-in parameter and cannot be declared"),
                )
                .hint(format!(
                    "built-in parameters: {}",
                    BUILTIN_PARAMETERS.join(", ")
                ));
            failed = true;
            continue;
        }
        if !is_parameter_name(&name) {
            cx.sink
                .error(key.pos, format!("invalid parameter name {}", quote(&name)))
                .hint("use lowercase letters, digits and `_`, starting with a letter or `_`");
            failed = true;
            continue;
        }
        names.push((name.clone(), key.pos));
        let Some(body) = cx.map(value, "parameters.*") else {
            failed = true;
            continue;
        };
        let description = match cx.optional(&body, "description") {
            Some(node) => cx.string(node, "description").map(Some),
            None => Some(None),
        };
        let default = match cx.optional(&body, "default") {
            Some(node) => cx.string(node, "default").map(Some),
            None => Some(None),
        };
        match (description, default) {
            (Some(description), Some(default)) => {
                parameters.push((
                    name,
                    key.pos,
                    Parameter {
                        description,
                        default,
                    },
                ));
            }
            _ => failed = true,
        }
    }
    (!failed).then_some(parameters)
}

fn read_steps<'n>(
    cx: &mut Cx,
    node: &'n Node,
    key: &str,
    scope: &mut Scope<'_>,
    in_rollback: bool,
) -> Option<Vec<ReadStep<'n>>> {
    let list = cx.list(node, key)?;
    if list.is_empty() && !in_rollback {
        cx.sink
            .error(node.pos, "`steps` is empty: the runbook would do nothing")
            .hint("add at least one step, such as `- shift_traffic: { id: shift, services: [...], away_from: \"${site}\" }`");
        return None;
    }
    if list.len() > STEPS_MAX {
        cx.sink
            .error(
                list[STEPS_MAX].pos,
                format!(
                    "`{key}` has {} steps, more than the {STEPS_MAX} allowed",
                    list.len()
                ),
            )
            .hint("split the procedure into several runbooks");
        return None;
    }
    let mut steps = Vec::with_capacity(list.len());
    let mut failed = false;
    for item in list {
        match read_step(cx, item, scope, in_rollback) {
            Some(step) => steps.push(step),
            None => failed = true,
        }
    }
    (!failed).then_some(steps)
}

fn read_step<'n>(
    cx: &mut Cx,
    node: &'n Node,
    scope: &mut Scope<'_>,
    in_rollback: bool,
) -> Option<ReadStep<'n>> {
    let (kind, kind_node, body) = cx.tagged(node, "steps[]", "step kind")?;
    if kind == "approval" || kind == "haproxy" {
        // The language has them; the executor cannot run them until work plans and the HAProxy
        // provider exist, so a runbook using them must not be stored and fail at run time.
        cx.sink
            .error(
                kind_node.pos,
                format!("`{kind}` steps are not yet supported"),
            )
            .hint("they arrive with the work-plan and HAProxy issues; leave the step out for now");
    }
    let path = STEP_KINDS
        .iter()
        .find(|(name, _)| *name == kind)
        .map(|(_, path)| *path)?;
    let map = cx.map(body, path)?;
    let id = cx
        .required(&map, "id")
        .and_then(|node| cx.id(node, "id", "step id"));
    if let Some(id) = &id {
        scope.step_ids.push((id.clone(), map.at("id")));
    }
    let timeout = match cx.optional(&map, "timeout") {
        Some(node) => cx.positive_duration(node, "timeout").and_then(|timeout| {
            if timeout > STEP_TIMEOUT_MAX {
                cx.sink.error(
                    node.pos,
                    format!(
                        "`timeout` of {} is longer than a day",
                        fmt_duration(timeout)
                    ),
                );
                return None;
            }
            Some(Some(timeout))
        }),
        None => Some(None),
    };
    let retries = match cx.optional(&map, "retries") {
        Some(node) => cx.u32(node, "retries", 0, RETRIES_MAX),
        None => Some(0),
    };
    let on_failure = match cx.optional(&map, "on_failure") {
        Some(node) => cx
            .word(node, "on_failure", &ON_FAILURE)
            .map(|index| ON_FAILURE_VALUES[index])
            .and_then(|on_failure| {
                if in_rollback && on_failure == OnFailure::Rollback {
                    cx.sink
                        .error(node.pos, "a rollback step cannot itself roll back")
                        .hint("use `halt` or `continue`");
                    return None;
                }
                Some(Some(on_failure))
            }),
        None => Some(None),
    };
    let mut service_positions = Vec::new();
    let action = match kind.as_str() {
        "shift_traffic" => {
            read_shift(cx, &map, scope, &mut service_positions).map(Action::ShiftTraffic)
        }
        "set_records" => read_set_records(cx, &map, scope).map(Action::SetRecords),
        "verify_dns" => read_verify(cx, &map, scope, &mut service_positions).map(Action::VerifyDns),
        "webhook" => read_webhook(cx, &map, scope).map(Action::Webhook),
        "wait" => read_wait(cx, &map).map(Action::Wait),
        "check" => read_check(cx, &map, scope).map(Action::Check),
        "approval" => read_approval(cx, &map, scope).map(Action::Approval),
        _ => read_haproxy(cx, &map, scope).map(Action::Haproxy),
    };
    let (id, timeout, retries, on_failure, action) =
        (id?, timeout?, retries?, on_failure?, action?);
    let timeout = match (&action, timeout) {
        (Action::Wait(wait), Some(timeout)) if timeout <= wait.duration => {
            cx.sink
                .error(
                    map.at("timeout"),
                    format!(
                        "`timeout` ({}) must be longer than the wait ({})",
                        fmt_duration(timeout),
                        fmt_duration(wait.duration)
                    ),
                )
                .hint("leave timeout out: a wait step's timeout defaults to its duration plus 5s");
            return None;
        }
        (_, Some(timeout)) => timeout,
        (Action::Wait(wait), None) => wait.duration + WAIT_SLACK,
        (_, None) => STEP_TIMEOUT_DEFAULT,
    };
    Some(ReadStep {
        step: Step {
            id: StepId::new(id),
            timeout,
            retries,
            on_failure,
            action,
        },
        map,
        service_positions,
    })
}

/// A list of distinct services that exist in the configuration.
fn services_list(
    cx: &mut Cx,
    map: &Map<'_>,
    scope: &Scope<'_>,
    positions: &mut Vec<Pos>,
) -> Option<Vec<ServiceId>> {
    let node = cx.required(map, "services")?;
    let services = cx.list_of(node, "services", |cx, item| {
        let service = service_reference(cx, item, scope.config)?;
        Some((service, item.pos))
    })?;
    if services.is_empty() {
        cx.sink.error(node.pos, "`services` is empty");
        return None;
    }
    let mut failed = false;
    for (index, (service, pos)) in services.iter().enumerate() {
        if services[..index].iter().any(|(other, _)| other == service) {
            cx.sink
                .error(*pos, format!("service `{service}` is listed twice"));
            failed = true;
        }
    }
    positions.extend(services.iter().map(|(_, pos)| *pos));
    (!failed).then(|| services.into_iter().map(|(service, _)| service).collect())
}

fn read_shift(
    cx: &mut Cx,
    map: &Map<'_>,
    scope: &mut Scope<'_>,
    positions: &mut Vec<Pos>,
) -> Option<ShiftTraffic> {
    let services = services_list(cx, map, scope, positions);
    let direction = match cx.one_of(map, &["away_from", "restore", "to"])? {
        "away_from" => site_template(cx, map.get("away_from")?, "away_from", scope)
            .map(ShiftDirection::AwayFrom),
        "restore" => {
            site_template(cx, map.get("restore")?, "restore", scope).map(ShiftDirection::Restore)
        }
        _ => {
            let node = map.get("to")?;
            let sites = cx.list_of(node, "to", |cx, item| {
                let template = site_template(cx, item, "to", scope)?;
                Some((template, item.pos))
            })?;
            let mut valid = true;
            for (index, (site, pos)) in sites.iter().enumerate() {
                if sites[..index].iter().any(|(other, _)| other == site) {
                    cx.sink.error(
                        *pos,
                        format!("site {} is listed twice", quote(site.as_str())),
                    );
                    valid = false;
                }
            }
            if let Some(services) = &services {
                for (site, pos) in &sites {
                    if is_literal(site) {
                        for service in services {
                            let has = scope.config.service(service).is_some_and(|found| {
                                found.sites().contains(&SiteId::new(site.as_str()))
                            });
                            if !has {
                                cx.sink.error(
                                    *pos,
                                    format!(
                                        "service `{service}` has no endpoint in site `{}`",
                                        site.as_str()
                                    ),
                                );
                                valid = false;
                            }
                        }
                    }
                }
            }
            if !valid {
                return None;
            }
            Some(ShiftDirection::To(
                sites.into_iter().map(|(site, _)| site).collect(),
            ))
        }
    };
    Some(ShiftTraffic {
        services: services?,
        direction: direction?,
    })
}

fn is_literal(template: &Template) -> bool {
    !template.as_str().contains("${")
}

/// A template naming a site: checked as a site when it holds no `${...}`.
fn site_template(cx: &mut Cx, node: &Node, key: &str, scope: &mut Scope<'_>) -> Option<Template> {
    let template = template(cx, node, key, scope)?;
    if is_literal(&template) && !check_site_name(cx, node.pos, template.as_str(), scope.config) {
        return None;
    }
    Some(template)
}

/// A string that may reference parameters as `${name}`; every reference must be in scope.
fn template(cx: &mut Cx, node: &Node, key: &str, scope: &mut Scope<'_>) -> Option<Template> {
    let text = cx.text(node, key)?;
    check_template(cx, node.pos, key, &text, scope).then(|| Template::new(text))
}

/// Checks the `${...}` references of `text`; returns whether they are all valid.
fn check_template(cx: &mut Cx, pos: Pos, key: &str, text: &str, scope: &mut Scope<'_>) -> bool {
    let template = Template::new(text);
    let references = match template.references() {
        Ok(references) => references,
        Err(TemplateError::Unterminated { .. } | TemplateError::Missing { .. }) => {
            cx.sink
                .error(
                    pos,
                    format!("`{key}`: unterminated `${{` in {}", quote(text)),
                )
                .hint("write references like `${site}`");
            return false;
        }
    };
    let mut valid = true;
    for (_, name) in references {
        if scope.parameters.iter().any(|parameter| parameter == name) {
            scope.used.insert(name.to_owned());
            continue;
        }
        valid = false;
        if !is_parameter_name(name) {
            cx.sink
                .error(
                    pos,
                    format!(
                        "`{key}`: invalid parameter reference {}",
                        quote(&format!("${{{name}}}"))
                    ),
                )
                .hint("parameter names use lowercase letters, digits and `_`");
            continue;
        }
        let candidates: Vec<&str> = scope.parameters.iter().map(String::as_str).collect();
        let hint = match crate::reader::closest(name, candidates.iter().copied()) {
            Some(candidate) => format!("did you mean `${{{candidate}}}`?"),
            None => format!(
                "declare it under `parameters:`; built-in parameters: {}",
                BUILTIN_PARAMETERS.join(", ")
            ),
        };
        cx.sink
            .error(pos, format!("`{key}`: parameter `{name}` is not defined"))
            .hint(hint);
    }
    valid
}

fn read_set_records(cx: &mut Cx, map: &Map<'_>, scope: &mut Scope<'_>) -> Option<SetRecords> {
    let zone = cx.required(map, "zone").and_then(|node| {
        let name = cx.text(node, "zone")?;
        let normalized = name.to_ascii_lowercase();
        if scope
            .config
            .zone(&ZoneName::new(normalized.as_str()))
            .is_some()
        {
            return Some(ZoneName::new(normalized));
        }
        let with_dot = format!("{normalized}.");
        let report = cx
            .sink
            .error(node.pos, format!("unknown zone {}", quote(&name)));
        if scope
            .config
            .zone(&ZoneName::new(with_dot.as_str()))
            .is_some()
        {
            report.hint(format!("zone names end with a dot: write `{with_dot}`"));
        } else {
            let names: Vec<&str> = scope
                .config
                .zones
                .iter()
                .map(|zone| zone.name.as_str())
                .collect();
            report.hint(suggestion(&name, &names));
        }
        None
    });
    let records = cx.required(map, "records").and_then(|node| {
        // (name, type, position) of every record whose name and type could be read.
        let mut keyed: Vec<(String, RecordType, Pos)> = Vec::new();
        let records = cx.list_of(node, "records", |cx, item| {
            let record = cx.map(item, "steps[].set_records.records[]")?;
            let name = cx
                .required(&record, "name")
                .and_then(|node| relative_name(cx, node));
            let record_type = cx.required(&record, "type").and_then(|node| {
                cx.word(node, "type", &["A", "AAAA"])
                    .map(|index| [RecordType::A, RecordType::Aaaa][index])
            });
            let ttl = match cx.optional(&record, "ttl") {
                Some(node) => ttl(cx, node),
                None => Some(Duration::from_secs(30)),
            };
            if let (Some(name), Some(record_type)) = (&name, record_type) {
                keyed.push((name.clone(), record_type, record.pos()));
            }
            let values = cx.required(&record, "values").and_then(|node| {
                cx.list_of(node, "values", |cx, item| {
                    let address = cx.ip(item, "values")?;
                    Some((address, item.pos))
                })
            });
            let (name, record_type, ttl, values) = (name?, record_type?, ttl?, values?);
            let mut valid = true;
            for (address, pos) in &values {
                if !record_type.matches(*address) {
                    cx.sink.error(
                        *pos,
                        format!("{address} cannot be in an {} record", record_type.as_str()),
                    );
                    valid = false;
                }
            }
            let values: Vec<IpAddr> = values.into_iter().map(|(address, _)| address).collect();
            valid.then_some((
                RecordValues {
                    name,
                    record_type,
                    ttl,
                    values,
                },
                record.pos(),
            ))
        });
        let mut duplicated = false;
        for (index, (name, record_type, pos)) in keyed.iter().enumerate() {
            if keyed[..index]
                .iter()
                .any(|(other, other_type, _)| other == name && other_type == record_type)
            {
                cx.sink.error(
                    *pos,
                    format!("record `{name}` {} is listed twice", record_type.as_str()),
                );
                duplicated = true;
            }
        }
        let records = records?;
        if records.is_empty() {
            cx.sink.error(node.pos, "`records` is empty");
            return None;
        }
        (!duplicated).then(|| records.into_iter().map(|(record, _)| record).collect())
    });
    Some(SetRecords {
        zone: zone?,
        records: records?,
    })
}

fn read_verify(
    cx: &mut Cx,
    map: &Map<'_>,
    scope: &mut Scope<'_>,
    positions: &mut Vec<Pos>,
) -> Option<VerifyDns> {
    let services = services_list(cx, map, scope, positions);
    let resolvers = match cx.optional(map, "resolvers") {
        Some(node) => cx.bool(node, "resolvers"),
        None => Some(false),
    };
    if let (Some(services), Some(true)) = (&services, resolvers) {
        let any_resolver = services.iter().any(|service| {
            scope
                .config
                .records_of(service)
                .any(|(zone, _)| !zone.resolvers.is_empty())
        });
        if !any_resolver {
            cx.sink
                .warning(
                    map.at("resolvers"),
                    "`resolvers: true` but no zone of these services lists resolvers",
                )
                .hint("add `resolvers: [...]` to the zone in the cluster configuration");
        }
    }
    Some(VerifyDns {
        services: services?,
        resolvers: resolvers?,
    })
}

fn read_webhook(cx: &mut Cx, map: &Map<'_>, scope: &mut Scope<'_>) -> Option<Webhook> {
    let url = cx.required(map, "url").and_then(|node| {
        let url = template(cx, node, "url", scope)?;
        let text = url.as_str();
        if names::is_http_url(text) || text.starts_with("${") {
            Some(url)
        } else {
            cx.sink
                .error(
                    node.pos,
                    format!("`url`: {} is not an http(s) URL", quote(text)),
                )
                .hint("write it like http://127.0.0.1:9000/hook");
            None
        }
    });
    let methods = ["GET", "POST", "PUT", "PATCH", "DELETE"];
    let method = match cx.optional(map, "method") {
        Some(node) => cx
            .word(node, "method", &methods)
            .map(|index| methods[index].to_owned()),
        None => Some("POST".to_owned()),
    };
    let headers = match cx.optional(map, "headers") {
        Some(node) => read_headers(cx, node, scope),
        None => Some(BTreeMap::new()),
    };
    let body = match cx.optional(map, "body") {
        Some(node) => json_value(cx, node, scope, 0).map(Some),
        None => Some(None),
    };
    let expected_status = match cx.optional(map, "expected_status") {
        Some(node) => {
            let statuses = cx.list_of(node, "expected_status", |cx, item| {
                cx.integer(item, "expected_status", 100, 599)
                    .and_then(|status| u16::try_from(status).ok())
            });
            match statuses {
                Some(statuses) if statuses.is_empty() => {
                    cx.sink
                        .error(node.pos, "`expected_status` must list at least one status");
                    None
                }
                other => other,
            }
        }
        None => Some(vec![200, 201, 202, 204]),
    };
    Some(Webhook {
        method: method?,
        url: url?,
        headers: headers?,
        body: body?,
        expected_status: expected_status?,
    })
}

fn read_headers(
    cx: &mut Cx,
    node: &Node,
    scope: &mut Scope<'_>,
) -> Option<BTreeMap<String, Template>> {
    let Some(entries) = node.entries() else {
        if matches!(node.kind, Kind::Null) {
            return Some(BTreeMap::new());
        }
        cx.sink.error(
            node.pos,
            format!(
                "`headers` must be a mapping, found {}",
                node.kind.describe()
            ),
        );
        return None;
    };
    let mut headers = BTreeMap::new();
    let mut failed = false;
    for (key, value) in entries {
        let name = key.scalar_text().unwrap_or_default();
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte));
        if !token {
            cx.sink
                .error(key.pos, format!("invalid header name {}", quote(&name)))
                .hint("header names use letters, digits and `-`, like X-Team");
            failed = true;
            continue;
        }
        match template(cx, value, "headers", scope) {
            Some(template) => {
                headers.insert(name, template);
            }
            None => failed = true,
        }
    }
    (!failed).then_some(headers)
}

/// Any YAML value as JSON, checking the references in its strings. Depth is bounded by the
/// YAML parser's own nesting limit; `depth` only guards against a change there.
fn json_value(
    cx: &mut Cx,
    node: &Node,
    scope: &mut Scope<'_>,
    depth: usize,
) -> Option<serde_json::Value> {
    use serde_json::Value;
    if depth > 64 {
        cx.sink.error(node.pos, "`body` is nested too deeply");
        return None;
    }
    match &node.kind {
        Kind::Null => Some(Value::Null),
        Kind::Bool(value) => Some(Value::Bool(*value)),
        Kind::Int(value) => match (i64::try_from(*value), u64::try_from(*value)) {
            (Ok(value), _) => Some(Value::from(value)),
            (_, Ok(value)) => Some(Value::from(value)),
            _ => {
                cx.sink.error(node.pos, "integer out of range for JSON");
                None
            }
        },
        Kind::Float(value) => match serde_json::Number::from_f64(*value) {
            Some(number) => Some(Value::Number(number)),
            None => {
                cx.sink.error(node.pos, "JSON cannot hold this number");
                None
            }
        },
        Kind::Str(text) => {
            check_template(cx, node.pos, "body", text, scope).then(|| Value::String(text.clone()))
        }
        Kind::Seq(items) => {
            let mut values = Vec::with_capacity(items.len());
            let mut failed = false;
            for item in items {
                match json_value(cx, item, scope, depth + 1) {
                    Some(value) => values.push(value),
                    None => failed = true,
                }
            }
            (!failed).then_some(Value::Array(values))
        }
        Kind::Map(entries) => {
            let mut object = serde_json::Map::new();
            let mut failed = false;
            for (key, value) in entries {
                let Some(name) = key.scalar_text() else {
                    cx.sink.error(key.pos, "JSON object keys must be strings");
                    failed = true;
                    continue;
                };
                match json_value(cx, value, scope, depth + 1) {
                    Some(value) => {
                        object.insert(name, value);
                    }
                    None => failed = true,
                }
            }
            (!failed).then_some(Value::Object(object))
        }
    }
}

fn read_wait(cx: &mut Cx, map: &Map<'_>) -> Option<Wait> {
    let duration = cx.required(map, "duration").and_then(|node| {
        let duration = cx.positive_duration(node, "duration")?;
        if duration > STEP_TIMEOUT_MAX {
            cx.sink.error(
                node.pos,
                format!("a wait of {} is longer than a day", fmt_duration(duration)),
            );
            return None;
        }
        Some(duration)
    })?;
    Some(Wait { duration })
}

fn read_check(cx: &mut Cx, map: &Map<'_>, scope: &mut Scope<'_>) -> Option<Check> {
    let condition = match cx.one_of(map, &["site_state", "service_healthy"])? {
        "site_state" => {
            let body = cx.map(map.get("site_state")?, "steps[].check.site_state")?;
            let site = cx
                .required(&body, "site")
                .and_then(|node| site_template(cx, node, "site", scope));
            let names = ["healthy", "suspect", "lost", "recovering"];
            let values = [
                SiteStateName::Healthy,
                SiteStateName::Suspect,
                SiteStateName::Lost,
                SiteStateName::Recovering,
            ];
            let states = cx.required(&body, "states").and_then(|node| {
                let states = cx.list_of(node, "states", |cx, item| {
                    cx.word(item, "states", &names)
                        .map(|index| (values[index], item.pos))
                })?;
                if states.is_empty() {
                    cx.sink
                        .error(node.pos, "`states` is empty: the check could never pass")
                        .hint(format!("states: {}", names.join(", ")));
                    return None;
                }
                for (index, (state, pos)) in states.iter().enumerate() {
                    if states[..index].iter().any(|(other, _)| other == state) {
                        cx.sink.warning(*pos, "state listed twice");
                    }
                }
                Some(states.into_iter().map(|(state, _)| state).collect())
            });
            Condition::SiteState {
                site: site?,
                states: states?,
            }
        }
        _ => {
            let body = cx.map(map.get("service_healthy")?, "steps[].check.service_healthy")?;
            let service = cx
                .required(&body, "service")
                .and_then(|node| service_reference(cx, node, scope.config));
            let sites_min = match cx.optional(&body, "sites_min") {
                Some(node) => cx.u32(node, "sites_min", 1, 1000),
                None => Some(1),
            };
            if let (Some(service), Some(sites_min)) = (&service, sites_min) {
                let sites = scope
                    .config
                    .service(service)
                    .map_or(0, |found| found.sites().len());
                if sites_min as usize > sites {
                    cx.sink
                        .error(
                            body.at("sites_min"),
                            format!(
                                "`sites_min` is {sites_min} but service `{service}` is in only {sites} site{}: the check could never pass",
                                plural(sites)
                            ),
                        );
                    return None;
                }
            }
            Condition::ServiceHealthy {
                service: service?,
                sites_min: sites_min?,
            }
        }
    };
    Some(Check { condition })
}

fn read_approval(cx: &mut Cx, map: &Map<'_>, scope: &mut Scope<'_>) -> Option<Approval> {
    let approvers_min = match cx.optional(map, "approvers_min") {
        Some(node) => cx.u32(node, "approvers_min", 1, 100),
        None => Some(1),
    };
    if let Some(approvers_min) = approvers_min {
        let approvers = scope
            .config
            .principals
            .iter()
            .filter(|principal| {
                principal.roles.contains(&Role::Approver) || principal.roles.contains(&Role::Admin)
            })
            .count();
        if approvers < approvers_min as usize {
            cx.sink
                .warning(
                    map.at("approvers_min"),
                    format!(
                        "{approvers_min} approver{} needed but the configuration has {approvers} principal{} with the approver or admin role",
                        plural(approvers_min as usize),
                        plural(approvers)
                    ),
                )
                .hint("the step would wait until it times out");
        }
    }
    let message = match cx.optional(map, "message") {
        Some(node) => template(cx, node, "message", scope).map(Some),
        None => Some(None),
    };
    Some(Approval {
        approvers_min: approvers_min?,
        message: message?,
    })
}

fn read_haproxy(cx: &mut Cx, map: &Map<'_>, scope: &mut Scope<'_>) -> Option<Haproxy> {
    let backend = cx
        .required(map, "backend")
        .and_then(|node| cx.text(node, "backend"));
    let server = cx
        .required(map, "server")
        .and_then(|node| template(cx, node, "server", scope));
    let action = cx
        .required(map, "action")
        .and_then(|node| match &node.kind {
            Kind::Map(_) => {
                let body = cx.map(node, "steps[].haproxy.action")?;
                let weight = cx
                    .required(&body, "weight")
                    .and_then(|node| cx.u32(node, "weight", 0, 256))?;
                Some(HaproxyAction::Weight(weight))
            }
            _ => {
                let index = cx.word(node, "action", &["ready", "drain", "maint"])?;
                Some(
                    [
                        HaproxyAction::Ready,
                        HaproxyAction::Drain,
                        HaproxyAction::Maint,
                    ][index],
                )
            }
        });
    Some(Haproxy {
        backend: backend?,
        server: server?,
        action: action?,
    })
}

/// Shifting or verifying a service that no DNS record follows would change or prove nothing.
fn check_records_exist(cx: &mut Cx, steps: &[ReadStep<'_>], config: &ClusterConfig) {
    for read in steps {
        let (services, verb) = match &read.step.action {
            Action::ShiftTraffic(shift) => (&shift.services, "shift"),
            Action::VerifyDns(verify) => (&verify.services, "verify"),
            _ => continue,
        };
        for (service, pos) in services.iter().zip(&read.service_positions) {
            if config.records_of(service).next().is_none() {
                cx.sink
                    .error(
                        *pos,
                        format!(
                            "service `{service}` has no DNS record, so there is nothing to {verb}"
                        ),
                    )
                    .hint(
                        "bind a record to it under `zones[].records` in the cluster configuration",
                    );
            }
        }
    }
}

/// Where each service could end up with no site in rotation, and its records do not say what
/// to do then (`fail_mode`), report it. Sites named by templates are unknown until the run, so
/// the check assumes distinct templates may name distinct sites (worst case).
fn check_empty_rotation(cx: &mut Cx, steps: &[ReadStep<'_>], config: &ClusterConfig) {
    // Per service: the sites in rotation (None = all its sites) and the sites taken away since.
    let mut rotation: BTreeMap<ServiceId, (Option<Vec<String>>, BTreeSet<String>)> =
        BTreeMap::new();
    let mut reported: BTreeSet<ServiceId> = BTreeSet::new();
    for read in steps {
        let Action::ShiftTraffic(shift) = &read.step.action else {
            continue;
        };
        for service in &shift.services {
            let Some(found) = config.service(service) else {
                continue;
            };
            let own_sites: Vec<String> = found.sites().iter().map(ToString::to_string).collect();
            let (base, removed) = rotation
                .entry(service.clone())
                .or_insert((None, BTreeSet::new()));
            let (key, description) = match &shift.direction {
                ShiftDirection::AwayFrom(site) => {
                    removed.insert(site.as_str().to_owned());
                    ("away_from", format!("away from {}", quote(site.as_str())))
                }
                ShiftDirection::Restore(site) => {
                    removed.remove(site.as_str());
                    if let Some(base) = base
                        && !base.iter().any(|other| other == site.as_str())
                    {
                        base.push(site.as_str().to_owned());
                    }
                    continue;
                }
                ShiftDirection::To(sites) => {
                    *base = Some(sites.iter().map(|site| site.as_str().to_owned()).collect());
                    removed.clear();
                    ("to", "to the sites listed".to_owned())
                }
            };
            let base_sites = base.clone().unwrap_or(own_sites);
            // A removal can empty a slot when it is a template (any site) or names a site in
            // rotation; a literal site outside the rotation changes nothing.
            let could_remove = removed
                .iter()
                .filter(|site| site.contains("${") || base_sites.contains(site))
                .count();
            if could_remove < base_sites.len() || reported.contains(service) {
                continue;
            }
            reported.insert(service.clone());
            let records: Vec<String> = config
                .records_of(service)
                .filter(|(_, record)| record.fail_mode.is_none())
                .map(|(zone, record)| {
                    format!(
                        "`{}` {}",
                        record.fqdn(&zone.name),
                        record.record_type.as_str()
                    )
                })
                .collect();
            let pos = read.map.at(key);
            let shift = if key == "to" && base_sites.is_empty() {
                format!("`to: []` leaves `{service}` in no site")
            } else {
                format!("shifting `{service}` {description} could leave it in no site")
            };
            if !records.is_empty() {
                cx.sink
                    .error(
                        pos,
                        format!(
                            "{shift}, and record{} {} {} not say what to do then",
                            plural(records.len()),
                            records.join(", "),
                            if records.len() == 1 { "does" } else { "do" }
                        ),
                    )
                    .hint("say `fail_mode: open` on the record to forbid it, or `fail_mode: closed` to allow an empty answer");
            } else if config
                .records_of(service)
                .any(|(_, record)| record.fail_mode == Some(FailMode::Open))
            {
                cx.sink
                    .warning(pos, format!("{shift}; its records are `fail_mode: open`, so the run will refuse it then"))
                    .hint("make sure the service is in another site first");
            }
        }
    }
}

fn check_rto(cx: &mut Cx, top: &Map<'_>, steps: &[ReadStep<'_>], rto: Duration) {
    let total: Duration = steps.iter().map(|read| read.step.timeout).sum();
    if total > rto {
        cx.sink
            .warning(
                top.at("rto"),
                format!(
                    "the steps may take up to {} (the sum of their timeouts), more than the rto of {}",
                    fmt_duration(total),
                    fmt_duration(rto)
                ),
            )
            .hint("shorten step timeouts or declare a longer rto");
    }
}

fn check_rollback(
    cx: &mut Cx,
    top: &Map<'_>,
    steps: &[ReadStep<'_>],
    rollback: &[ReadStep<'_>],
    on_failure: OnFailure,
) {
    if !rollback.is_empty() {
        return;
    }
    let mut places = Vec::new();
    if on_failure == OnFailure::Rollback {
        places.push(top.at("on_failure"));
    }
    places.extend(
        steps
            .iter()
            .filter(|read| read.step.on_failure == Some(OnFailure::Rollback))
            .map(|read| read.map.at("on_failure")),
    );
    for pos in places {
        cx.sink
            .error(
                pos,
                "`on_failure: rollback` but the runbook has no rollback steps",
            )
            .hint("add `rollback:` steps, or use `halt`");
    }
}

fn check_automatic(
    cx: &mut Cx,
    top: &Map<'_>,
    triggers: &[(Trigger, Pos)],
    pre_approved: bool,
    parameters: &[(String, Pos, Parameter)],
) {
    let automatic = triggers
        .iter()
        .any(|(trigger, _)| !matches!(trigger, Trigger::Manual));
    if pre_approved && !automatic {
        cx.sink
            .warning(top.at("pre_approved"), "`pre_approved: true` has no effect without a site_lost or service_unhealthy trigger")
            .hint("pre-approval lets automatic triggers start the runbook; manual runs need a work plan anyway");
    }
    if pre_approved && automatic {
        for (name, pos, parameter) in parameters {
            if parameter.default.is_none() {
                cx.sink
                    .error(
                        *pos,
                        format!(
                            "parameter `{name}` has no default, so an automatic run could not start"
                        ),
                    )
                    .hint("give it a `default:`");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::keys::RUNBOOK_KEYS;

    fn scope<'c>(config: &'c ClusterConfig, declared: &[&str]) -> Scope<'c> {
        let mut parameters: Vec<String> = BUILTIN_PARAMETERS
            .iter()
            .map(|name| (*name).to_owned())
            .collect();
        parameters.extend(declared.iter().map(|name| (*name).to_owned()));
        Scope {
            config,
            parameters,
            used: BTreeSet::new(),
            step_ids: Vec::new(),
        }
    }

    fn empty_config() -> ClusterConfig {
        ClusterConfig {
            name: "t".into(),
            secret_file: "s".into(),
            sites: Vec::new(),
            nodes: Vec::new(),
            raft: Default::default(),
            detection: Default::default(),
            services: Vec::new(),
            providers: Vec::new(),
            zones: Vec::new(),
            safety: Default::default(),
            principals: Vec::new(),
        }
    }

    /// Checks one template text; returns the rendered diagnostics and the parameters used.
    fn check(text: &str, declared: &[&str]) -> (Vec<String>, BTreeSet<String>) {
        let config = empty_config();
        let mut scope = scope(&config, declared);
        let mut cx = Cx::new(Path::new("t.yaml"), RUNBOOK_KEYS);
        let pos = Pos { line: 3, column: 7 };
        let valid = check_template(&mut cx, pos, "url", text, &mut scope);
        let diagnostics: Vec<String> = cx.sink.finish().iter().map(ToString::to_string).collect();
        assert_eq!(valid, diagnostics.is_empty(), "{diagnostics:?}");
        (diagnostics, scope.used)
    }

    #[test]
    fn builtin_and_declared_parameters_resolve() {
        let (diagnostics, used) = check("http://h/${site}/${execution}/${hook}", &["hook"]);
        assert!(diagnostics.is_empty());
        assert_eq!(
            used,
            BTreeSet::from(["site".into(), "execution".into(), "hook".into()])
        );
    }

    #[test]
    fn text_without_references_is_fine() {
        assert_eq!(check("plain $site {x}", &[]).0, Vec::<String>::new());
    }

    #[test]
    fn undefined_parameter_is_reported_with_a_suggestion() {
        let (diagnostics, _) = check("${sitee}", &[]);
        assert_eq!(
            diagnostics,
            [
                "t.yaml:3:7: error: `url`: parameter `sitee` is not defined\n  = hint: did you mean `${site}`?"
            ]
        );
        let (diagnostics, _) = check("${region}", &[]);
        assert_eq!(
            diagnostics,
            [
                "t.yaml:3:7: error: `url`: parameter `region` is not defined\n  = hint: declare it under `parameters:`; built-in parameters: site, execution"
            ]
        );
    }

    #[test]
    fn every_bad_reference_is_reported() {
        let (diagnostics, used) = check("${a}-${site}-${b}", &[]);
        assert_eq!(diagnostics.len(), 2);
        assert!(diagnostics[0].contains("`a`"));
        assert!(diagnostics[1].contains("`b`"));
        assert_eq!(used, BTreeSet::from(["site".into()]));
    }

    #[test]
    fn unterminated_and_malformed_references() {
        let (diagnostics, _) = check("x ${site", &[]);
        assert_eq!(
            diagnostics,
            [
                "t.yaml:3:7: error: `url`: unterminated `${` in `x ${site`\n  = hint: write references like `${site}`"
            ]
        );
        let (diagnostics, _) = check("${}", &[]);
        assert!(
            diagnostics[0].contains("invalid parameter reference `${}`"),
            "{diagnostics:?}"
        );
        let (diagnostics, _) = check("${Site}", &[]);
        assert!(
            diagnostics[0].contains("invalid parameter reference `${Site}`"),
            "{diagnostics:?}"
        );
    }

    #[test]
    fn parameter_names() {
        assert!(is_parameter_name("hook_url"));
        assert!(is_parameter_name("_x1"));
        assert!(!is_parameter_name("1x"));
        assert!(!is_parameter_name("Hook"));
        assert!(!is_parameter_name("a-b"));
        assert!(!is_parameter_name(""));
    }
}
