//! Typed reading of a YAML node tree that records a diagnostic for every problem and goes on.
//!
//! Every reader returns `Option<T>`: `None` means "a diagnostic was recorded", so callers just
//! skip what they cannot build and keep checking the rest.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::diagnostic::Sink;
use crate::keys::{self, KeyDoc};
use crate::yaml::{Kind, Node, Pos};

/// The hint shown for every malformed duration.
pub(crate) const DURATION_HINT: &str = "write durations like 500ms, 2s, 10m";

/// Upper bound for lists that nothing else bounds, so that a hostile file stays cheap to check.
pub(crate) const LIST_ITEMS_MAX: usize = 10_000;

/// Reading context: the diagnostics of one file and the key table of its language.
pub(crate) struct Cx {
    pub(crate) sink: Sink,
    keys: &'static [KeyDoc],
}

/// A mapping whose keys were checked against the key table.
#[derive(Clone, Copy)]
pub(crate) struct Map<'n> {
    pub(crate) node: &'n Node,
    path: &'static str,
}

impl<'n> Map<'n> {
    pub(crate) fn pos(&self) -> Pos {
        self.node.pos
    }

    /// The value of `key`, if present.
    pub(crate) fn get(&self, key: &str) -> Option<&'n Node> {
        self.node.get(key)
    }

    /// The position of `key`'s value, or of the mapping when the key is absent (a default).
    pub(crate) fn at(&self, key: &str) -> Pos {
        self.get(key).map_or(self.node.pos, |node| node.pos)
    }

    /// The position of the key `key` itself, or of the mapping.
    pub(crate) fn key_at(&self, key: &str) -> Pos {
        self.node
            .entries()
            .and_then(|entries| {
                entries
                    .iter()
                    .find(|(name, _)| name.scalar_text().as_deref() == Some(key))
            })
            .map_or(self.node.pos, |(name, _)| name.pos)
    }
}

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(word, candidate), candidate))
        .filter(|(distance, candidate)| {
            *distance <= 2.min(candidate.len() / 2).max(1) || word.eq_ignore_ascii_case(candidate)
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().take(64).collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// "did you mean `x`?" or "expected one of: a, b, c".
pub(crate) fn suggestion(word: &str, candidates: &[&str]) -> String {
    match closest(word, candidates.iter().copied()) {
        Some(candidate) => format!("did you mean `{candidate}`?"),
        None => format!("expected one of: {}", candidates.join(", ")),
    }
}

/// Where a path is shown in messages: `services[].check` or "the top level".
fn place(path: &str) -> String {
    if path.is_empty() {
        "the top level".to_owned()
    } else {
        format!("`{path}`")
    }
}

/// A short rendering of a scalar for messages, cut so that a huge value stays readable.
pub(crate) fn quote(text: &str) -> String {
    let mut shown: String = text.chars().take(60).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    format!("`{shown}`")
}

impl Cx {
    pub(crate) fn new(file: &Path, keys: &'static [KeyDoc]) -> Self {
        Self {
            sink: Sink::new(file),
            keys,
        }
    }

    /// The keys accepted directly under `path`, step keys common to every kind included.
    fn allowed(&self, path: &str) -> Vec<&'static str> {
        let mut allowed = keys::children(self.keys, path);
        if let Some(kind) = path.strip_prefix("steps[].")
            && !kind.contains('.')
            && kind != "*"
        {
            allowed.extend(keys::children(self.keys, "steps[].*"));
        }
        allowed.retain(|name| *name != "*");
        allowed
    }

    fn is_free_form(&self, path: &str) -> bool {
        keys::children(self.keys, path).contains(&"*")
    }

    /// Reads a mapping and reports every key that the table does not list under `path`.
    /// A null value (`key:` with nothing after it) reads as an empty mapping.
    pub(crate) fn map<'n>(&mut self, node: &'n Node, path: &'static str) -> Option<Map<'n>> {
        match &node.kind {
            Kind::Map(entries) => {
                if !self.is_free_form(path) {
                    let allowed = self.allowed(path);
                    for (key, _) in entries {
                        self.check_key(key, path, &allowed);
                    }
                }
                Some(Map { node, path })
            }
            Kind::Null => Some(Map { node, path }),
            other => {
                self.sink.error(
                    node.pos,
                    format!(
                        "{} must be a mapping, found {}",
                        place(path),
                        other.describe()
                    ),
                );
                None
            }
        }
    }

    fn check_key(&mut self, key: &Node, path: &str, allowed: &[&str]) {
        let Some(name) = key.scalar_text() else {
            self.sink.error(
                key.pos,
                format!(
                    "keys in {} must be names, found {}",
                    place(path),
                    key.kind.describe()
                ),
            );
            return;
        };
        if allowed.contains(&name.as_str()) {
            return;
        }
        let report = self.sink.error(
            key.pos,
            format!("unknown key {} in {}", quote(&name), place(path)),
        );
        if allowed.is_empty() {
            report.hint(format!("{} takes no keys", place(path)));
        } else {
            report.hint(suggestion(&name, allowed));
        }
    }

    /// The value of a required key, or a "missing key" diagnostic at the mapping.
    pub(crate) fn required<'n>(&mut self, map: &Map<'n>, key: &str) -> Option<&'n Node> {
        debug_assert!(
            self.allowed(map.path).contains(&key),
            "{key} is not in the key table under {}",
            map.path
        );
        let value = map.get(key);
        if value.is_none() {
            self.sink.error(
                map.pos(),
                format!("missing key `{key}` in {}", place(map.path)),
            );
        }
        value
    }

    /// The value of an optional key (also checks, in debug builds, that the key is documented).
    pub(crate) fn optional<'n>(&self, map: &Map<'n>, key: &str) -> Option<&'n Node> {
        debug_assert!(
            self.allowed(map.path).contains(&key),
            "{key} is not in the key table under {}",
            map.path
        );
        map.get(key)
    }

    /// Which one of `keys` the mapping has; reports none and more than one.
    pub(crate) fn one_of<'k>(&mut self, map: &Map<'_>, keys: &[&'k str]) -> Option<&'k str> {
        let present: Vec<&'k str> = keys
            .iter()
            .copied()
            .filter(|key| map.get(key).is_some())
            .collect();
        match present.as_slice() {
            [one] => Some(one),
            [] => {
                self.sink.error(
                    map.pos(),
                    format!("{} needs one of: {}", place(map.path), keys.join(", ")),
                );
                None
            }
            [first, rest @ ..] => {
                for other in rest {
                    self.sink
                        .error(
                            map.key_at(other),
                            format!("`{other}` cannot be used together with `{first}`"),
                        )
                        .hint(format!(
                            "{} takes exactly one of: {}",
                            place(map.path),
                            keys.join(", ")
                        ));
                }
                None
            }
        }
    }

    /// An externally tagged value: a mapping with exactly one key naming its kind, e.g.
    /// `- shift_traffic: {...}`. Returns the kind and its body. `what` names kinds in messages.
    pub(crate) fn tagged<'n>(
        &mut self,
        node: &'n Node,
        path: &'static str,
        what: &str,
    ) -> Option<(String, &'n Node, &'n Node)> {
        let kinds = self.allowed(path);
        let step_keys = keys::children(self.keys, "steps[].*");
        let Kind::Map(entries) = &node.kind else {
            let report = self.sink.error(
                node.pos,
                format!(
                    "{} must be a mapping with one {what}, found {}",
                    place(path),
                    node.kind.describe()
                ),
            );
            report.hint(format!(
                "write it like `{}: {{ ... }}`; {what}s: {}",
                kinds.first().copied().unwrap_or("kind"),
                kinds.join(", ")
            ));
            return None;
        };
        let mut found = None;
        for (key, value) in entries {
            let Some(name) = key.scalar_text() else {
                self.sink.error(
                    key.pos,
                    format!("{what} must be a name, found {}", key.kind.describe()),
                );
                continue;
            };
            if !kinds.contains(&name.as_str()) {
                let report = self
                    .sink
                    .error(key.pos, format!("unknown {what} {}", quote(&name)));
                if path == "steps[]" && step_keys.contains(&name.as_str()) {
                    let kind = entries
                        .iter()
                        .filter_map(|(key, _)| key.scalar_text())
                        .find(|key| kinds.contains(&key.as_str()))
                        .unwrap_or_else(|| "wait".to_owned());
                    report.hint(format!(
                        "`{name}` belongs inside the step: `- {kind}: {{ {name}: ..., ... }}`"
                    ));
                } else {
                    report.hint(suggestion(&name, &kinds));
                }
                continue;
            }
            if let Some((first, _, _)) = &found {
                self.sink
                    .error(
                        key.pos,
                        format!("`{name}` cannot be used together with `{first}`"),
                    )
                    .hint(format!(
                        "each item of {} has exactly one {what}",
                        place(path)
                    ));
                continue;
            }
            found = Some((name, key, value));
        }
        if found.is_none() && entries.is_empty() {
            self.sink
                .error(
                    node.pos,
                    format!("{} is empty: it needs one {what}", place(path)),
                )
                .hint(format!("{what}s: {}", kinds.join(", ")));
        }
        let (name, key, value) = found?;
        Some((name, key, value))
    }

    /// The items of a list (a null value reads as an empty list).
    pub(crate) fn list<'n>(&mut self, node: &'n Node, key: &str) -> Option<&'n [Node]> {
        match &node.kind {
            Kind::Seq(items) if items.len() > LIST_ITEMS_MAX => {
                self.sink.error(
                    node.pos,
                    format!(
                        "`{key}` has {} items, more than the {LIST_ITEMS_MAX} allowed",
                        items.len()
                    ),
                );
                None
            }
            Kind::Seq(items) => Some(items),
            Kind::Null => Some(&[]),
            other => {
                self.sink
                    .error(
                        node.pos,
                        format!("`{key}` must be a list, found {}", other.describe()),
                    )
                    .hint(format!("write `{key}: [a, b]` or one `- item` per line"));
                None
            }
        }
    }

    /// Any scalar as text; numbers and booleans keep the spelling they were written with.
    pub(crate) fn string(&mut self, node: &Node, key: &str) -> Option<String> {
        match node.scalar_text() {
            Some(text) => Some(text),
            None => {
                self.sink.error(
                    node.pos,
                    format!("`{key}` must be a string, found {}", node.kind.describe()),
                );
                None
            }
        }
    }

    /// A non-empty string.
    pub(crate) fn text(&mut self, node: &Node, key: &str) -> Option<String> {
        let text = self.string(node, key)?;
        if text.trim().is_empty() {
            self.sink
                .error(node.pos, format!("`{key}` must not be empty"));
            return None;
        }
        Some(text)
    }

    /// An identifier: lowercase letters, digits, `-` and `_`, starting with a letter or digit.
    /// `key` names the key in type errors, `what` the kind of id in syntax errors.
    pub(crate) fn id(&mut self, node: &Node, key: &str, what: &str) -> Option<String> {
        let text = self.string(node, key)?;
        if is_id(&text) {
            return Some(text);
        }
        self.sink
            .error(node.pos, format!("invalid {what} {}", quote(&text)))
            .hint("ids use lowercase letters, digits, `-` and `_`, start with a letter or digit, and have at most 63 characters");
        None
    }

    pub(crate) fn bool(&mut self, node: &Node, key: &str) -> Option<bool> {
        match &node.kind {
            Kind::Bool(value) => Some(*value),
            other => {
                self.sink.error(
                    node.pos,
                    format!(
                        "`{key}` must be true or false, found {}",
                        self.shown(node, other)
                    ),
                );
                None
            }
        }
    }

    fn shown(&self, node: &Node, kind: &Kind) -> String {
        match (kind, node.scalar_text()) {
            (Kind::Str(text), _) => format!("the string {}", quote(text)),
            (_, Some(text)) => quote(&text),
            (_, None) => kind.describe().to_owned(),
        }
    }

    /// An integer within `min..=max`.
    pub(crate) fn integer(&mut self, node: &Node, key: &str, min: u64, max: u64) -> Option<u64> {
        let Kind::Int(value) = node.kind else {
            self.sink.error(
                node.pos,
                format!(
                    "`{key}` must be an integer, found {}",
                    self.shown(node, &node.kind)
                ),
            );
            return None;
        };
        match u64::try_from(value) {
            Ok(value) if (min..=max).contains(&value) => Some(value),
            _ => {
                let range = if max == u64::MAX || max == u64::from(u32::MAX) {
                    format!("at least {min}")
                } else {
                    format!("between {min} and {max}")
                };
                self.sink
                    .error(node.pos, format!("`{key}` must be {range}, found {value}"));
                None
            }
        }
    }

    pub(crate) fn u32(&mut self, node: &Node, key: &str, min: u32, max: u32) -> Option<u32> {
        self.integer(node, key, u64::from(min), u64::from(max))
            .and_then(|value| u32::try_from(value).ok())
    }

    pub(crate) fn number(&mut self, node: &Node, key: &str) -> Option<f64> {
        match node.kind {
            Kind::Float(value) => Some(value),
            // Integers are exact in f64 far beyond any fraction or ratio we read.
            Kind::Int(value) => Some(value as f64),
            ref other => {
                self.sink.error(
                    node.pos,
                    format!(
                        "`{key}` must be a number, found {}",
                        self.shown(node, other)
                    ),
                );
                None
            }
        }
    }

    /// A humantime duration such as `500ms`, `2s` or `1h 30m`.
    pub(crate) fn duration(&mut self, node: &Node, key: &str) -> Option<Duration> {
        match &node.kind {
            Kind::Str(text) => match humantime::parse_duration(text) {
                Ok(duration) => Some(duration),
                Err(_) => {
                    self.sink
                        .error(
                            node.pos,
                            format!("`{key}`: invalid duration {}", quote(text)),
                        )
                        .hint(DURATION_HINT);
                    None
                }
            },
            Kind::Int(_) | Kind::Float(_) => {
                self.sink
                    .error(
                        node.pos,
                        format!(
                            "`{key}`: duration {} has no unit",
                            self.shown(node, &node.kind)
                        ),
                    )
                    .hint(DURATION_HINT);
                None
            }
            other => {
                self.sink
                    .error(
                        node.pos,
                        format!("`{key}` must be a duration, found {}", other.describe()),
                    )
                    .hint(DURATION_HINT);
                None
            }
        }
    }

    /// A duration that is not zero.
    pub(crate) fn positive_duration(&mut self, node: &Node, key: &str) -> Option<Duration> {
        let duration = self.duration(node, key)?;
        if duration.is_zero() {
            self.sink
                .error(node.pos, format!("`{key}` must be longer than zero"));
            return None;
        }
        Some(duration)
    }

    pub(crate) fn socket_addr(&mut self, node: &Node, key: &str) -> Option<SocketAddr> {
        let text = self.string(node, key)?;
        match text.parse::<SocketAddr>() {
            Ok(address) if address.port() == 0 => {
                self.sink
                    .error(node.pos, format!("`{key}`: port 0 in {}", quote(&text)))
                    .hint("give a fixed port: other programs must know where to reach it");
                None
            }
            Ok(address) => Some(address),
            Err(_) => {
                self.sink
                    .error(
                        node.pos,
                        format!("`{key}`: invalid address {}", quote(&text)),
                    )
                    .hint("write ip:port, like 127.0.0.1:7101 or [::1]:7101");
                None
            }
        }
    }

    pub(crate) fn ip(&mut self, node: &Node, key: &str) -> Option<IpAddr> {
        let text = self.string(node, key)?;
        match text.parse::<IpAddr>() {
            Ok(address) => Some(address),
            Err(_) => {
                let report = self.sink.error(
                    node.pos,
                    format!("`{key}`: invalid IP address {}", quote(&text)),
                );
                if text.parse::<SocketAddr>().is_ok() {
                    report.hint("write the address without a port; the port has its own key");
                } else {
                    report.hint("write an IPv4 or IPv6 address, like 127.0.1.1 or ::1");
                }
                None
            }
        }
    }

    /// A file path, resolved against `base` (the directory of the configuration file).
    pub(crate) fn path(&mut self, node: &Node, key: &str, base: &Path) -> Option<PathBuf> {
        let text = self.text(node, key)?;
        if text.contains('\0') {
            self.sink.error(
                node.pos,
                format!("`{key}`: a path cannot contain a NUL character"),
            );
            return None;
        }
        let path = PathBuf::from(&text);
        Some(if path.is_absolute() {
            path
        } else {
            base.join(path)
        })
    }

    /// One of a fixed set of words; returns its index in `allowed`.
    pub(crate) fn word(&mut self, node: &Node, key: &str, allowed: &[&str]) -> Option<usize> {
        let text = self.string(node, key)?;
        if let Some(index) = allowed.iter().position(|word| *word == text) {
            return Some(index);
        }
        self.sink
            .error(node.pos, format!("`{key}`: unknown value {}", quote(&text)))
            .hint(suggestion(&text, allowed));
        None
    }

    /// A list whose items are all read by `read`; `None` if any item failed.
    pub(crate) fn list_of<T>(
        &mut self,
        node: &Node,
        key: &str,
        mut read: impl FnMut(&mut Self, &Node) -> Option<T>,
    ) -> Option<Vec<T>> {
        let items = self.list(node, key)?;
        let mut values = Vec::with_capacity(items.len());
        let mut failed = false;
        for item in items {
            match read(self, item) {
                Some(value) => values.push(value),
                None => failed = true,
            }
        }
        (!failed).then_some(values)
    }

    /// Reports items listed twice (by `key_of`), at the second occurrence.
    pub(crate) fn no_duplicates<T, K: PartialEq + std::fmt::Display>(
        &mut self,
        items: &[(T, Pos)],
        what: &str,
        key_of: impl Fn(&T) -> K,
    ) {
        for (index, (item, pos)) in items.iter().enumerate() {
            let key = key_of(item);
            if let Some((_, first)) = items[..index]
                .iter()
                .find(|(other, _)| key_of(other) == key)
            {
                self.sink
                    .error(*pos, format!("duplicate {what} `{key}`"))
                    .hint(format!("first defined at {}:{}", first.line, first.column));
            }
        }
    }
}

/// Whether `text` is a valid identifier (sites, services, providers, steps, runbooks, ...).
pub(crate) fn is_id(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || matches!(byte, b'-' | b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_typos_only() {
        assert_eq!(
            closest("shift_trafic", ["shift_traffic", "wait"]),
            Some("shift_traffic")
        );
        assert_eq!(closest("Fall", ["fall", "rise"]), Some("fall"));
        assert_eq!(closest("zz_unknown", ["id", "site"]), None);
        assert_eq!(closest("ip", ["id"]), Some("id"));
    }

    #[test]
    fn ids_are_lowercase_names() {
        assert!(is_id("alpha"));
        assert!(is_id("dc-1_b"));
        assert!(!is_id("Alpha"));
        assert!(!is_id("-x"));
        assert!(!is_id("a/b"));
        assert!(!is_id(""));
        assert!(!is_id(&"a".repeat(64)));
    }
}
