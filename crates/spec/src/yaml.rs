//! The raw layer: a YAML document as a tree of nodes that remember where they were written.
//!
//! serde-saphyr parses the text (anchors, aliases, merge keys, duplicate-key detection, resource
//! budgets) into `Spanned` values; this module turns those into a plain [`Node`] tree. The typed
//! readers in `config` and `runbook` then walk the tree themselves instead of deriving
//! `Deserialize`, because serde stops at the first error and we report every problem at once.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Options, Spanned};

/// A 1-based line and column (in characters), as editors count them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    /// The start of the file, used when nothing more precise is known.
    pub const START: Pos = Pos { line: 1, column: 1 };

    fn of(location: Location) -> Pos {
        // serde-saphyr uses line 0 for "unknown"; every diagnostic still needs a place.
        if location.line() == 0 {
            return Pos::START;
        }
        Pos {
            line: usize::try_from(location.line()).unwrap_or(usize::MAX),
            column: usize::try_from(location.column().max(1)).unwrap_or(usize::MAX),
        }
    }
}

/// One YAML node and where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Where the node is used (for an alias, the alias itself).
    pub pos: Pos,
    /// For scalars, the text exactly as written (without quotes), when it could be recovered.
    /// It lets a field that wants a string accept `007` or `yes` as written, not as a number.
    pub raw: Option<String>,
    pub kind: Kind,
}

/// What a node holds. Scalars are typed by the YAML 1.2 core schema.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in document order; keys are nodes too, so that they keep their position.
    Map(Vec<(Node, Node)>),
}

impl Kind {
    /// How a value of this kind is named in messages ("expected a string, found a mapping").
    pub fn describe(&self) -> &'static str {
        match self {
            Kind::Null => "nothing (null)",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }
}

impl Node {
    /// The text of a scalar node: strings as they are, other scalars as written in the file.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.kind {
            Kind::Str(text) => Some(text.clone()),
            Kind::Bool(value) => Some(self.raw.clone().unwrap_or_else(|| value.to_string())),
            Kind::Int(value) => Some(self.raw.clone().unwrap_or_else(|| value.to_string())),
            Kind::Float(value) => Some(self.raw.clone().unwrap_or_else(|| value.to_string())),
            Kind::Null | Kind::Seq(_) | Kind::Map(_) => None,
        }
    }

    /// The entries of a mapping, if this is one.
    pub fn entries(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            Kind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value under `key` in a mapping, if this is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries()?
            .iter()
            .find(|(name, _)| name.scalar_text().as_deref() == Some(key))
            .map(|(_, value)| value)
    }
}

/// A YAML document that could not be read at all (syntax error, resource limit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// Files larger than this are refused before parsing: no real configuration comes close.
pub const TEXT_BYTES_MAX: usize = 4 << 20;

/// Parses one YAML document into a node tree.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    if text.len() > TEXT_BYTES_MAX {
        return Err(SyntaxError {
            pos: Pos::START,
            message: format!(
                "file is {} bytes long, more than the {TEXT_BYTES_MAX} bytes allowed",
                text.len()
            ),
        });
    }
    let mut options = Options::default();
    // `yes`/`no`/`on`/`off` stay strings: a site called `no` must not turn into `false`.
    options.strict_booleans = true;
    // `007` stays the string it looks like instead of a surprising number.
    options.leading_zero_numbers_as_strings = true;
    options.with_snippet = false;
    let spanned: Spanned<RawNode> =
        serde_saphyr::from_str_with_options(text, options).map_err(|error| {
            let pos = error.location().map(Pos::of).unwrap_or(Pos::START);
            SyntaxError {
                pos,
                message: syntax_message(&error),
            }
        })?;
    Ok(convert(spanned, text))
}

/// serde-saphyr's message without its own " at line L, column C" suffix (we print positions
/// ourselves) and in our wording where its wording speaks to Rust programmers.
fn syntax_message(error: &serde_saphyr::Error) -> String {
    let mut message = error.without_snippet().to_string();
    if let Some(location) = error.location() {
        let suffix = format!(" at line {}, column {}", location.line(), location.column());
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message = stripped.to_owned();
        }
    }
    if let Some(rest) = message.strip_prefix("duplicate mapping key: ") {
        let key = rest
            .split_once(", set DuplicateKeyPolicy")
            .map_or(rest, |(key, _)| key);
        return format!("duplicate key `{key}`");
    }
    if message.starts_with("multiple YAML documents detected") {
        return "more than one YAML document; a file holds exactly one".to_owned();
    }
    format!("invalid YAML: {message}")
}

/// The recovered source text of a scalar, when the parser gave byte offsets into `text`.
fn raw_text(defined: &Location, text: &str) -> Option<String> {
    let span = defined.span();
    let start = usize::try_from(span.byte_offset()?).ok()?;
    let length = usize::try_from(span.byte_len()?).ok()?;
    let raw = text.get(start..start.checked_add(length)?)?;
    (!raw.is_empty()).then(|| raw.to_owned())
}

fn convert(spanned: Spanned<RawNode>, text: &str) -> Node {
    let pos = Pos::of(spanned.referenced);
    let scalar_raw = || raw_text(&spanned.defined, text);
    let (raw, kind) = match spanned.value {
        RawNode::Null => (scalar_raw(), Kind::Null),
        RawNode::Bool(value) => (scalar_raw(), Kind::Bool(value)),
        RawNode::Int(value) => (scalar_raw(), Kind::Int(value)),
        RawNode::Float(value) => (scalar_raw(), Kind::Float(value)),
        RawNode::Str(value) => (None, Kind::Str(value)),
        RawNode::Seq(items) => (
            None,
            Kind::Seq(items.into_iter().map(|item| convert(item, text)).collect()),
        ),
        RawNode::Map(entries) => (
            None,
            Kind::Map(
                entries
                    .into_iter()
                    .map(|(key, value)| {
                        let key = convert(key, text);
                        let mut value = convert(value, text);
                        // `key:` with nothing after it: the empty value has no place of its
                        // own worth pointing at, so problems with it point at its key.
                        if value.kind == Kind::Null && value.raw.is_none() {
                            value.pos = key.pos;
                        }
                        (key, value)
                    })
                    .collect(),
            ),
        ),
    };
    Node { pos, raw, kind }
}

/// What serde-saphyr hands us: the same shape as [`Kind`], with `Spanned` children.
enum RawNode {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<RawNode>>),
    Map(Vec<(Spanned<RawNode>, Spanned<RawNode>)>),
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawNodeVisitor)
    }
}

struct RawNodeVisitor;

impl<'de> Visitor<'de> for RawNodeVisitor {
    type Value = RawNode;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any YAML value")
    }

    fn visit_unit<E>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }

    fn visit_none<E>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<RawNode, D::Error> {
        RawNode::deserialize(deserializer)
    }

    fn visit_bool<E>(self, value: bool) -> Result<RawNode, E> {
        Ok(RawNode::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<RawNode, E> {
        Ok(RawNode::Int(i128::from(value)))
    }

    fn visit_u64<E>(self, value: u64) -> Result<RawNode, E> {
        Ok(RawNode::Int(i128::from(value)))
    }

    fn visit_i128<E>(self, value: i128) -> Result<RawNode, E> {
        Ok(RawNode::Int(value))
    }

    fn visit_u128<E>(self, value: u128) -> Result<RawNode, E> {
        Ok(RawNode::Int(i128::try_from(value).unwrap_or(i128::MAX)))
    }

    fn visit_f64<E>(self, value: f64) -> Result<RawNode, E> {
        Ok(RawNode::Float(value))
    }

    fn visit_str<E>(self, value: &str) -> Result<RawNode, E> {
        Ok(RawNode::Str(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<RawNode, E> {
        Ok(RawNode::Str(value))
    }

    fn visit_bytes<E>(self, value: &[u8]) -> Result<RawNode, E> {
        Ok(RawNode::Str(String::from_utf8_lossy(value).into_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<RawNode, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = access.next_element()? {
            items.push(item);
        }
        Ok(RawNode::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<RawNode, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = access.next_key()? {
            let value = access.next_value()?;
            entries.push((key, value));
        }
        Ok(RawNode::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: usize, column: usize) -> Pos {
        Pos { line, column }
    }

    #[test]
    fn positions_point_at_keys_and_values() {
        let node = parse("a: 1\nb:\n  - { c: x }\n  - d: y\n    e: z\n").unwrap();
        assert_eq!(node.pos, at(1, 1));
        let entries = node.entries().unwrap();
        assert_eq!(entries[0].0.pos, at(1, 1));
        assert_eq!(entries[0].1.pos, at(1, 4));
        let Kind::Seq(items) = &entries[1].1.kind else {
            panic!("expected a list")
        };
        assert_eq!(items[0].pos, at(3, 5));
        assert_eq!(items[0].get("c").unwrap().pos, at(3, 10));
        assert_eq!(items[1].pos, at(4, 5));
        assert_eq!(items[1].entries().unwrap()[1].0.pos, at(5, 5));
    }

    #[test]
    fn an_empty_value_points_at_its_key() {
        let node = parse("a:\n  b:\n  c: null\n").unwrap();
        let a = node.get("a").unwrap();
        assert_eq!(a.get("b").unwrap().pos, at(2, 3));
        assert_eq!(a.get("c").unwrap().pos, at(3, 6));
        assert_eq!(a.get("c").unwrap().kind, Kind::Null);
    }

    #[test]
    fn scalars_keep_their_written_text() {
        let node = parse("a: 007\nb: yes\nc: 1.50\nd: true\ny: 2\n").unwrap();
        assert_eq!(node.get("a").unwrap().scalar_text().unwrap(), "007");
        assert_eq!(node.get("b").unwrap().kind, Kind::Str("yes".into()));
        assert_eq!(node.get("c").unwrap().scalar_text().unwrap(), "1.50");
        assert_eq!(node.get("d").unwrap().kind, Kind::Bool(true));
        assert_eq!(node.get("y").unwrap().kind, Kind::Int(2));
    }

    #[test]
    fn syntax_errors_have_positions_and_plain_messages() {
        let error = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(error.pos, at(2, 1));
        assert_eq!(error.message, "duplicate key `a`");
        let error = parse("a: [1\n").unwrap_err();
        assert_eq!(error.pos, at(1, 4));
        assert_eq!(error.message, "invalid YAML: unclosed bracket '['");
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let error = parse(&"[".repeat(100_000)).unwrap_err();
        assert!(
            error.message.contains("recursion limit"),
            "{}",
            error.message
        );
    }
}
