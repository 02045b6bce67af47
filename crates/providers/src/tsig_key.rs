//! TSIG keys: loading the BIND key-file format that `tsig-keygen` writes, and keeping the secret
//! out of every `Debug`, log line and error.

use std::fmt;
use std::path::Path;

use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::{Name, TSigner};

use crate::error::{KeyFileProblem, ProviderError};

/// How far apart the clocks of this node and a server may be, in seconds (BIND's default).
const FUDGE_SECONDS: u16 = 300;

/// The HMAC algorithms hickory can compute; the truncated and legacy ones are refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsigAlgorithmName {
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

impl TsigAlgorithmName {
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim_end_matches('.').to_ascii_lowercase().as_str() {
            "hmac-sha256" => Some(Self::HmacSha256),
            "hmac-sha384" => Some(Self::HmacSha384),
            "hmac-sha512" => Some(Self::HmacSha512),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::HmacSha256 => "hmac-sha256",
            Self::HmacSha384 => "hmac-sha384",
            Self::HmacSha512 => "hmac-sha512",
        }
    }

    fn to_hickory(self) -> TsigAlgorithm {
        match self {
            Self::HmacSha256 => TsigAlgorithm::HmacSha256,
            Self::HmacSha384 => TsigAlgorithm::HmacSha384,
            Self::HmacSha512 => TsigAlgorithm::HmacSha512,
        }
    }
}

/// A TSIG key: name, algorithm and secret. `Debug` shows the name and algorithm only.
#[derive(Clone)]
pub struct TsigKey {
    name: String,
    algorithm: TsigAlgorithmName,
    secret: Vec<u8>,
}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl TsigKey {
    pub fn new(
        name: impl Into<String>,
        algorithm: TsigAlgorithmName,
        secret: Vec<u8>,
    ) -> Result<Self, ProviderError> {
        let name = name.into();
        Name::from_ascii(&name).map_err(|error| ProviderError::InvalidName {
            name: name.clone(),
            reason: error.to_string(),
        })?;
        Ok(Self {
            name,
            algorithm,
            secret,
        })
    }

    /// Reads a key file as written by `tsig-keygen -a hmac-sha256 NAME`:
    /// `key "NAME" { algorithm hmac-sha256; secret "BASE64"; };`. The file must hold one key.
    pub fn load(path: &Path) -> Result<Self, ProviderError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProviderError::TsigKeyRead {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses key-file text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ProviderError> {
        let problem = |line: usize, problem: KeyFileProblem| ProviderError::TsigKeyParse {
            path: path.to_owned(),
            line,
            problem,
        };
        let tokens = tokenize(text).map_err(|(line, kind)| problem(line, kind))?;
        let mut cursor = Cursor {
            tokens: &tokens,
            position: 0,
        };
        let mut keys = Vec::new();
        while let Some(token) = cursor.next() {
            match &token.kind {
                TokenKind::Word(word) if word.eq_ignore_ascii_case("key") => {
                    keys.push(
                        parse_key(&mut cursor, token.line)
                            .map_err(|(line, kind)| problem(line, kind))?,
                    );
                }
                _ => return Err(problem(token.line, KeyFileProblem::UnexpectedToken)),
            }
        }
        let last_line = tokens.last().map_or(1, |token| token.line);
        if keys.len() > 1 {
            return Err(problem(last_line, KeyFileProblem::MoreThanOneKey));
        }
        let Some(parsed) = keys.pop() else {
            return Err(problem(last_line, KeyFileProblem::NoKeyStatement));
        };
        let algorithm = TsigAlgorithmName::parse(&parsed.algorithm).ok_or_else(|| {
            ProviderError::TsigAlgorithmUnsupported {
                key: parsed.name.clone(),
                algorithm: parsed.algorithm.clone(),
            }
        })?;
        if Name::from_ascii(&parsed.name).is_err() {
            return Err(problem(parsed.line, KeyFileProblem::InvalidKeyName));
        }
        Ok(Self {
            name: parsed.name,
            algorithm,
            secret: parsed.secret,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn algorithm(&self) -> TsigAlgorithmName {
        self.algorithm
    }

    /// A copy of this key with another secret: for tests of authentication failures.
    pub fn with_secret(&self, secret: Vec<u8>) -> Self {
        Self {
            secret,
            ..self.clone()
        }
    }

    /// The hickory signer for this key.
    pub(crate) fn signer(&self) -> Result<TSigner, ProviderError> {
        let name = Name::from_ascii(&self.name).map_err(|error| ProviderError::InvalidName {
            name: self.name.clone(),
            reason: error.to_string(),
        })?;
        TSigner::new(
            self.secret.clone(),
            self.algorithm.to_hickory(),
            name,
            FUDGE_SECONDS,
        )
        .map_err(|_| ProviderError::TsigAlgorithmUnsupported {
            key: self.name.clone(),
            algorithm: self.algorithm.as_str().to_owned(),
        })
    }
}

struct ParsedKey {
    name: String,
    algorithm: String,
    secret: Vec<u8>,
    line: usize,
}

#[derive(Debug, PartialEq)]
enum TokenKind {
    Word(String),
    Quoted(String),
    Open,
    Close,
    Semicolon,
}

struct Token {
    kind: TokenKind,
    line: usize,
}

struct Cursor<'a> {
    tokens: &'a [Token],
    position: usize,
}

impl<'a> Cursor<'a> {
    fn next(&mut self) -> Option<&'a Token> {
        let token = self.tokens.get(self.position)?;
        self.position += 1;
        Some(token)
    }

    fn expect(
        &mut self,
        kind: &TokenKind,
        line: usize,
    ) -> Result<&'a Token, (usize, KeyFileProblem)> {
        match self.next() {
            Some(token) if &token.kind == kind => Ok(token),
            Some(token) => Err((token.line, KeyFileProblem::UnexpectedToken)),
            None => Err((line, KeyFileProblem::UnexpectedEnd)),
        }
    }

    /// A word or a quoted string.
    fn value(&mut self, line: usize) -> Result<(String, usize), (usize, KeyFileProblem)> {
        match self.next() {
            Some(Token {
                kind: TokenKind::Word(text) | TokenKind::Quoted(text),
                line,
            }) => Ok((text.clone(), *line)),
            Some(token) => Err((token.line, KeyFileProblem::UnexpectedToken)),
            None => Err((line, KeyFileProblem::UnexpectedEnd)),
        }
    }
}

fn parse_key(cursor: &mut Cursor<'_>, line: usize) -> Result<ParsedKey, (usize, KeyFileProblem)> {
    let (name, name_line) = cursor.value(line)?;
    cursor.expect(&TokenKind::Open, name_line)?;
    let mut algorithm = None;
    let mut secret = None;
    loop {
        let Some(token) = cursor.next() else {
            return Err((line, KeyFileProblem::UnexpectedEnd));
        };
        match &token.kind {
            TokenKind::Close => break,
            TokenKind::Word(word) if word.eq_ignore_ascii_case("algorithm") => {
                let (value, _) = cursor.value(token.line)?;
                algorithm = Some(value);
            }
            TokenKind::Word(word) if word.eq_ignore_ascii_case("secret") => {
                let (value, value_line) = cursor.value(token.line)?;
                let decoded = data_encoding::BASE64
                    .decode(value.as_bytes())
                    .map_err(|_| (value_line, KeyFileProblem::SecretNotBase64))?;
                if decoded.is_empty() {
                    return Err((value_line, KeyFileProblem::EmptySecret));
                }
                secret = Some(decoded);
            }
            _ => return Err((token.line, KeyFileProblem::UnexpectedToken)),
        }
        cursor.expect(&TokenKind::Semicolon, token.line)?;
    }
    cursor.expect(&TokenKind::Semicolon, line)?;
    Ok(ParsedKey {
        name,
        algorithm: algorithm.ok_or((line, KeyFileProblem::MissingAlgorithm))?,
        secret: secret.ok_or((line, KeyFileProblem::MissingSecret))?,
        line,
    })
}

/// Splits named.conf-style text into tokens, dropping `#`, `//` and `/* */` comments.
fn tokenize(text: &str) -> Result<Vec<Token>, (usize, KeyFileProblem)> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '#' => skip_line(&mut chars, &mut line),
            '/' if chars.peek() == Some(&'/') => skip_line(&mut chars, &mut line),
            '/' if chars.peek() == Some(&'*') => {
                let start = line;
                chars.next();
                let mut previous = ' ';
                loop {
                    match chars.next() {
                        Some('/') if previous == '*' => break,
                        Some(next) => {
                            if next == '\n' {
                                line += 1;
                            }
                            previous = next;
                        }
                        None => return Err((start, KeyFileProblem::UnterminatedComment)),
                    }
                }
            }
            '{' => tokens.push(Token {
                kind: TokenKind::Open,
                line,
            }),
            '}' => tokens.push(Token {
                kind: TokenKind::Close,
                line,
            }),
            ';' => tokens.push(Token {
                kind: TokenKind::Semicolon,
                line,
            }),
            '"' => {
                let start = line;
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some(next) => {
                            if next == '\n' {
                                line += 1;
                            }
                            value.push(next);
                        }
                        None => return Err((start, KeyFileProblem::UnterminatedString)),
                    }
                }
                tokens.push(Token {
                    kind: TokenKind::Quoted(value),
                    line: start,
                });
            }
            first => {
                let mut value = String::from(first);
                while let Some(&next) = chars.peek() {
                    if next.is_whitespace() || matches!(next, '{' | '}' | ';' | '"') {
                        break;
                    }
                    value.push(next);
                    chars.next();
                }
                tokens.push(Token {
                    kind: TokenKind::Word(value),
                    line,
                });
            }
        }
    }
    Ok(tokens)
}

fn skip_line(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, line: &mut usize) {
    for c in chars.by_ref() {
        if c == '\n' {
            *line += 1;
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "k+nRbp3xSvHu+hHw6OSsKXv4K0klifbxk7k/85M/0Mc=";

    fn parse(text: &str) -> Result<TsigKey, ProviderError> {
        TsigKey::parse(text, Path::new("test.key"))
    }

    #[test]
    fn parses_tsig_keygen_output() {
        let text =
            format!("key \"upd\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{SECRET}\";\n}};\n");
        let key = parse(&text).expect("valid key file");
        assert_eq!(key.name(), "upd");
        assert_eq!(key.algorithm(), TsigAlgorithmName::HmacSha256);
        assert_eq!(key.secret.len(), 32);
    }

    #[test]
    fn accepts_comments_and_sha512() {
        let text = format!(
            "# generated\n// by hand\n/* multi\nline */ key upd.example. {{ algorithm \"HMAC-SHA512\"; secret \"{SECRET}\"; }};"
        );
        let key = parse(&text).expect("valid key file");
        assert_eq!(key.name(), "upd.example.");
        assert_eq!(key.algorithm(), TsigAlgorithmName::HmacSha512);
    }

    #[test]
    fn refuses_md5_and_truncated_algorithms() {
        for algorithm in ["hmac-md5", "hmac-sha1", "hmac-sha256-128"] {
            let text = format!("key k {{ algorithm {algorithm}; secret \"{SECRET}\"; }};");
            let error = parse(&text).expect_err("unsupported algorithm");
            assert!(
                matches!(&error, ProviderError::TsigAlgorithmUnsupported { algorithm: found, .. } if found == algorithm),
                "{error:?}"
            );
        }
    }

    #[test]
    fn reports_problems_with_line_numbers_and_never_the_secret() {
        let cases = [
            ("", KeyFileProblem::NoKeyStatement, 1),
            (
                "key k {\n algorithm hmac-sha256;\n};",
                KeyFileProblem::MissingSecret,
                1,
            ),
            (
                "key k {\n secret \"not base64 at all!\";\n algorithm hmac-sha256; };",
                KeyFileProblem::SecretNotBase64,
                2,
            ),
            (
                "key k {\n secret \"abc",
                KeyFileProblem::UnterminatedString,
                2,
            ),
            (
                "key a { algorithm hmac-sha256; secret \"AAAA\"; };\nkey b { algorithm hmac-sha256; secret \"AAAA\"; };",
                KeyFileProblem::MoreThanOneKey,
                2,
            ),
            ("options { };", KeyFileProblem::UnexpectedToken, 1),
        ];
        for (text, expected, expected_line) in cases {
            match parse(text) {
                Err(ProviderError::TsigKeyParse { line, problem, .. }) => {
                    assert_eq!((problem, line), (expected, expected_line), "{text}");
                }
                other => panic!("{text}: expected {expected:?}, got {other:?}"),
            }
        }
        let error = parse("key k {\n secret \"s3cr3t-value!\";\n};").expect_err("bad base64");
        assert!(!error.to_string().contains("s3cr3t"), "{error}");
        assert!(!format!("{error:?}").contains("s3cr3t"), "{error:?}");
    }

    #[test]
    fn debug_redacts_the_secret() {
        let text = format!("key upd {{ algorithm hmac-sha256; secret \"{SECRET}\"; }};");
        let key = parse(&text).expect("valid key file");
        let debug = format!("{key:?}");
        assert!(
            debug.contains("upd") && debug.contains("<redacted>"),
            "{debug}"
        );
        assert!(!debug.contains(SECRET), "{debug}");
        assert!(
            !debug.contains("secret: ["),
            "no secret bytes either: {debug}"
        );
    }
}
