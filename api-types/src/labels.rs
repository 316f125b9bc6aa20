//! Label selectors: the `labelSelector` query string and `metav1.LabelSelector`, parsed,
//! validated and matched as `k8s.io/apimachinery/pkg/labels` does.
//!
//! The string parser is a port of Kubernetes' lexer and recursive-descent parser, so it accepts
//! the same inputs (`a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, `a>3`, `a<3`,
//! comma-separated, whitespace-tolerant) and rejects the rest with the same messages
//! (`unable to parse requirement: …`, `found '(', expected: …`).
//!
//! Kubernetes distinguishes a selector that selects everything from one that selects nothing:
//! a missing (`nil`) `metav1.LabelSelector` selects nothing, an empty one (`{}`) everything.
//! [`Selector::nothing`] and [`Selector::everything`] are those two.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::validation::{go_quote, is_qualified_name, is_valid_label_value};

/// Why a selector was rejected. The message is Kubernetes' own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LabelSelectorError {
    message: String,
}

impl LabelSelectorError {
    fn new(message: impl Into<String>) -> LabelSelectorError {
        LabelSelectorError {
            message: message.into(),
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

/// `selection.Operator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `=`
    Equals,
    /// `==`
    DoubleEquals,
    /// `!=`
    NotEquals,
    /// `in (…)`
    In,
    /// `notin (…)`
    NotIn,
    /// `key`
    Exists,
    /// `!key`
    DoesNotExist,
    /// `>`: the label's value, read as an integer, is greater.
    GreaterThan,
    /// `<`
    LessThan,
}

impl Operator {
    /// The operator as `selection.Operator` spells it (`=`, `in`, `!`, `gt`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

/// One term of a selector: a key, an operator and its values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// `labels.NewRequirement`: checks the key is a qualified name, the number of values suits
    /// the operator, `gt`/`lt` values are integers and every value is a label value. The error
    /// aggregates every problem, as Kubernetes' does (`[first, second]` when there are several).
    pub fn new(
        key: impl Into<String>,
        operator: Operator,
        values: Vec<String>,
    ) -> Result<Requirement, LabelSelectorError> {
        let key = key.into();
        let mut errs: Vec<String> = Vec::new();
        let key_errs = is_qualified_name(&key);
        if !key_errs.is_empty() {
            errs.push(format!(
                "key: Invalid value: {}: {}",
                go_quote(&key),
                key_errs.join("; ")
            ));
        }
        match operator {
            Operator::In | Operator::NotIn => {
                if values.is_empty() {
                    errs.push(format!(
                        "values: Invalid value: {}: for 'in', 'notin' operators, values set can't be empty",
                        go_string_slice(&values)
                    ));
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if values.len() != 1 {
                    errs.push(format!(
                        "values: Invalid value: {}: exact-match compatibility requires one single value",
                        go_string_slice(&values)
                    ));
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !values.is_empty() {
                    errs.push(format!(
                        "values: Invalid value: {}: values set must be empty for exists and does not exist",
                        go_string_slice(&values)
                    ));
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(format!(
                        "values: Invalid value: {}: for 'Gt', 'Lt' operators, exactly one value is required",
                        go_string_slice(&values)
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(format!(
                            "values[{i}]: Invalid value: {}: for 'Gt', 'Lt' operators, the value must be an integer",
                            go_quote(v)
                        ));
                    }
                }
            }
        }
        for (i, v) in values.iter().enumerate() {
            let value_errs = is_valid_label_value(v);
            if !value_errs.is_empty() {
                errs.push(format!(
                    "values[{i}][{key}]: Invalid value: {}: {}",
                    go_quote(v),
                    value_errs.join("; ")
                ));
            }
        }
        // Kubernetes drops duplicate messages when aggregating.
        let mut seen = BTreeSet::new();
        errs.retain(|e| seen.insert(e.clone()));
        match errs.len() {
            0 => Ok(Requirement {
                key,
                operator,
                values,
            }),
            1 => Err(LabelSelectorError::new(errs.remove(0))),
            _ => Err(LabelSelectorError::new(format!("[{}]", errs.join(", ")))),
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values as given (parsed selectors give them sorted and without duplicates).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// `Requirement.Matches`: whether a set of labels satisfies this requirement. A missing key
    /// satisfies `!=`, `notin` and `!key` and nothing else; `gt`/`lt` need the label's value to
    /// be an integer.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_value(labels.get(&self.key).map(String::as_str))
    }

    /// As [`Requirement::matches`], given the value of the requirement's key (`None`: no such
    /// label).
    pub fn matches_value(&self, value: Option<&str>) -> bool {
        let listed = |v: &str| self.values.iter().any(|x| x == v);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => value.is_some_and(listed),
            Operator::NotIn | Operator::NotEquals => value.is_none_or(|v| !listed(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(have) = value.and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                let [want] = self.values.as_slice() else {
                    return false;
                };
                let Ok(want) = want.parse::<i64>() else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

/// Go's `%#v` of a `[]string`, as Kubernetes prints bad value lists. An empty list prints as
/// Go's nil slice, which is what `LabelSelectorAsSelector` passes for missing values.
fn go_string_slice(values: &[String]) -> String {
    if values.is_empty() {
        return "[]string(nil)".to_string();
    }
    let inner: Vec<String> = values.iter().map(|v| go_quote(v)).collect();
    format!("[]string{{{}}}", inner.join(", "))
}

impl fmt::Display for Requirement {
    /// `Requirement.String`: `!a`, `a`, `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`,
    /// `a>1`, `a<1`, with set values sorted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
        };
        f.write_str(op)?;
        let set = matches!(self.operator, Operator::In | Operator::NotIn);
        if set {
            f.write_str("(")?;
        }
        let mut values: Vec<&str> = self.values.iter().map(String::as_str).collect();
        values.sort_unstable();
        f.write_str(&values.join(","))?;
        if set {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A label selector: requirements that must all hold, or the selector that matches nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Selector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl Selector {
    /// Matches every set of labels (the empty selector).
    pub fn everything() -> Selector {
        Selector::default()
    }

    /// Matches no set of labels (what a missing `metav1.LabelSelector` means).
    pub fn nothing() -> Selector {
        Selector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// `labels.Parse`: the string form. The empty string is [`Selector::everything`].
    /// Requirements come out sorted by key (stably), as Kubernetes sorts them.
    pub fn parse(selector: &str) -> Result<Selector, LabelSelectorError> {
        let mut requirements = Parser::new(selector).parse()?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Selector {
            requirements,
            nothing: false,
        })
    }

    /// A selector from requirements, sorted by key like `Selector.Add`.
    pub fn from_requirements(mut requirements: Vec<Requirement>) -> Selector {
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Selector {
            requirements,
            nothing: false,
        }
    }

    /// `labels.SelectorFromSet`: `key=value` for each entry, unvalidated (as Kubernetes does;
    /// use [`Selector::from_set_validated`] for untrusted input). An empty set is
    /// [`Selector::everything`].
    pub fn from_set(set: &BTreeMap<String, String>) -> Selector {
        let requirements = set
            .iter()
            .map(|(k, v)| Requirement {
                key: k.clone(),
                operator: Operator::Equals,
                values: vec![v.clone()],
            })
            .collect();
        Selector {
            requirements,
            nothing: false,
        }
    }

    /// `labels.ValidatedSelectorFromSet`: like [`Selector::from_set`] but checking keys and values.
    pub fn from_set_validated(
        set: &BTreeMap<String, String>,
    ) -> Result<Selector, LabelSelectorError> {
        let requirements = set
            .iter()
            .map(|(k, v)| Requirement::new(k.clone(), Operator::Equals, vec![v.clone()]))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Selector {
            requirements,
            nothing: false,
        })
    }

    /// The requirements, sorted by key. Empty for both [`Selector::everything`] and
    /// [`Selector::nothing`].
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether this selector selects everything (`Selector.Empty`).
    pub fn is_everything(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// Whether this is [`Selector::nothing`].
    pub fn matches_nothing(&self) -> bool {
        self.nothing
    }

    /// Whether a set of labels satisfies every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(|key| labels.get(key).map(String::as_str))
    }

    /// As [`Selector::matches`], with each label's value given by a function.
    pub fn matches_with<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        !self.nothing
            && self
                .requirements
                .iter()
                .all(|r| r.matches_value(get(&r.key)))
    }

    /// `RequiresExactMatch`: the single value `label` must have for this selector to match, if the
    /// selector pins one (`label=v`, `label==v` or `label in (v)`), for index lookups.
    pub fn requires_exact_match(&self, label: &str) -> Option<&str> {
        let r = self.requirements.iter().find(|r| r.key == label)?;
        match (r.operator, r.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [v]) => Some(v),
            _ => None,
        }
    }
}

impl fmt::Display for Selector {
    /// The canonical string form: requirements joined by `,` (Kubernetes prints
    /// [`Selector::nothing`] as the empty string too).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl FromStr for Selector {
    type Err = LabelSelectorError;

    fn from_str(s: &str) -> Result<Selector, LabelSelectorError> {
        Selector::parse(s)
    }
}

/// `metav1.LabelSelectorAsSelector`: `None` selects nothing, an empty selector everything;
/// otherwise `matchLabels` become `key=value` requirements and `matchExpressions` use the
/// operators `In`, `NotIn`, `Exists` and `DoesNotExist`.
pub fn selector_from_label_selector(
    selector: Option<&LabelSelector>,
) -> Result<Selector, LabelSelectorError> {
    let Some(selector) = selector else {
        return Ok(Selector::nothing());
    };
    let match_labels = selector.match_labels.as_ref();
    let match_expressions = selector.match_expressions.as_deref().unwrap_or_default();
    if match_labels.is_none_or(BTreeMap::is_empty) && match_expressions.is_empty() {
        return Ok(Selector::everything());
    }
    let mut requirements = Vec::new();
    for (k, v) in match_labels.into_iter().flatten() {
        requirements.push(Requirement::new(
            k.clone(),
            Operator::Equals,
            vec![v.clone()],
        )?);
    }
    for expr in match_expressions {
        let operator = match expr.operator.as_str() {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            other => {
                return Err(LabelSelectorError::new(format!(
                    "{} is not a valid label selector operator",
                    go_quote(other)
                )));
            }
        };
        requirements.push(Requirement::new(
            expr.key.clone(),
            operator,
            expr.values.clone().unwrap_or_default(),
        )?);
    }
    Ok(Selector::from_requirements(requirements))
}

// ---------------------------------------------------------------------------------------------
// The lexer and parser, ported from k8s.io/apimachinery/pkg/labels/selector.go. The lexer works
// on bytes as Kubernetes' does; it only ever splits at ASCII bytes, so every literal is valid
// UTF-8.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn literal_token(s: &[u8]) -> Option<Token> {
    Some(match s {
        b")" => Token::ClosedPar,
        b"," => Token::Comma,
        b"!" => Token::DoesNotExist,
        b"==" => Token::DoubleEquals,
        b"=" => Token::Equals,
        b">" => Token::GreaterThan,
        b"in" => Token::In,
        b"<" => Token::LessThan,
        b"!=" => Token::NotEquals,
        b"notin" => Token::NotIn,
        b"(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(ch: u8) -> bool {
    matches!(ch, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special_symbol(ch: u8) -> bool {
    matches!(ch, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    /// The next byte, or 0 at the end (as in Kubernetes, where a NUL byte also reads as 0).
    fn read(&mut self) -> u8 {
        match self.s.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => 0,
        }
    }

    fn unread(&mut self) {
        self.pos = self.pos.saturating_sub(1);
    }

    fn scan_id_or_keyword(&mut self) -> (Token, String) {
        let mut buffer = Vec::new();
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if is_special_symbol(ch) || is_whitespace(ch) {
                self.unread();
                break;
            }
            buffer.push(ch);
        }
        let literal = String::from_utf8_lossy(&buffer).into_owned();
        match literal_token(&buffer) {
            Some(tok) => (tok, literal),
            None => (Token::Identifier, literal),
        }
    }

    fn scan_special_symbol(&mut self) -> (Token, String) {
        let mut buffer = Vec::new();
        let mut last: Option<(Token, String)> = None;
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if is_special_symbol(ch) {
                buffer.push(ch);
                if let Some(tok) = literal_token(&buffer) {
                    last = Some((tok, String::from_utf8_lossy(&buffer).into_owned()));
                } else if last.is_some() {
                    self.unread();
                    break;
                }
            } else {
                self.unread();
                break;
            }
        }
        // Every single special symbol is a token, so `last` is always set here.
        last.unwrap_or((
            Token::Identifier,
            String::from_utf8_lossy(&buffer).into_owned(),
        ))
    }

    fn lex(&mut self) -> (Token, String) {
        let mut ch = self.read();
        while is_whitespace(ch) {
            ch = self.read();
        }
        if ch == 0 {
            return (Token::EndOfString, String::new());
        }
        self.unread();
        if is_special_symbol(ch) {
            self.scan_special_symbol()
        } else {
            self.scan_id_or_keyword()
        }
    }
}

/// Whether a token is read as a key/operator or as a value: in values, `in` and `notin` are
/// plain identifiers (`a in (in)`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

struct Parser {
    items: Vec<(Token, String)>,
    position: usize,
}

impl Parser {
    fn new(selector: &str) -> Parser {
        let mut lexer = Lexer {
            s: selector.as_bytes(),
            pos: 0,
        };
        let mut items = Vec::new();
        loop {
            let (tok, lit) = lexer.lex();
            items.push((tok, lit));
            if tok == Token::EndOfString {
                break;
            }
        }
        Parser { items, position: 0 }
    }

    fn item(&self, index: usize, context: Context) -> (Token, String) {
        // The last item is always EndOfString; reading past it keeps returning it.
        let (tok, lit) = self
            .items
            .get(index)
            .or(self.items.last())
            .cloned()
            .unwrap_or((Token::EndOfString, String::new()));
        let tok = match tok {
            Token::In | Token::NotIn if context == Context::Values => Token::Identifier,
            t => t,
        };
        (tok, lit)
    }

    fn lookahead(&self, context: Context) -> (Token, String) {
        self.item(self.position, context)
    }

    fn consume(&mut self, context: Context) -> (Token, String) {
        let item = self.item(self.position, context);
        self.position += 1;
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, LabelSelectorError> {
        let mut requirements = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Context::Values);
            match tok {
                Token::Identifier | Token::DoesNotExist => {
                    let r = self.parse_requirement().map_err(|e| {
                        LabelSelectorError::new(format!("unable to parse requirement: {e}"))
                    })?;
                    requirements.push(r);
                    let (t, l) = self.consume(Context::Values);
                    match t {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (t2, l2) = self.lookahead(Context::Values);
                            if t2 != Token::Identifier && t2 != Token::DoesNotExist {
                                return Err(LabelSelectorError::new(format!(
                                    "found '{l2}', expected: identifier after ','"
                                )));
                            }
                        }
                        _ => {
                            return Err(LabelSelectorError::new(format!(
                                "found '{l}', expected: ',' or 'end of string'"
                            )));
                        }
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(LabelSelectorError::new(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    )));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, LabelSelectorError> {
        let (key, operator) = self.parse_key_and_infer_operator()?;
        if let Some(op @ (Operator::Exists | Operator::DoesNotExist)) = operator {
            return Requirement::new(key, op, Vec::new());
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::new(key, operator, values.into_iter().collect())
    }

    fn parse_key_and_infer_operator(
        &mut self,
    ) -> Result<(String, Option<Operator>), LabelSelectorError> {
        let mut operator = None;
        let (mut tok, mut literal) = self.consume(Context::Values);
        if tok == Token::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            (tok, literal) = self.consume(Context::Values);
        }
        if tok != Token::Identifier {
            return Err(LabelSelectorError::new(format!(
                "found '{literal}', expected: identifier"
            )));
        }
        let key_errs = is_qualified_name(&literal);
        if !key_errs.is_empty() {
            // Kubernetes validates with a nil field path here, which prints as "<nil>".
            return Err(LabelSelectorError::new(format!(
                "<nil>: Invalid value: {}: {}",
                go_quote(&literal),
                key_errs.join("; ")
            )));
        }
        let (next, _) = self.lookahead(Context::Values);
        if (next == Token::EndOfString || next == Token::Comma)
            && operator != Some(Operator::DoesNotExist)
        {
            operator = Some(Operator::Exists);
        }
        Ok((literal, operator))
    }

    fn parse_operator(&mut self) -> Result<Operator, LabelSelectorError> {
        let (tok, lit) = self.consume(Context::KeyAndOperator);
        Ok(match tok {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => {
                return Err(LabelSelectorError::new(format!(
                    "found '{lit}', expected: in, notin, =, ==, !=, gt, lt"
                )));
            }
        })
    }

    /// `(x,y,z)`; the values come back sorted and unique, as Kubernetes' string set gives them.
    fn parse_values(&mut self) -> Result<BTreeSet<String>, LabelSelectorError> {
        let (tok, lit) = self.consume(Context::Values);
        if tok != Token::OpenPar {
            return Err(LabelSelectorError::new(format!(
                "found '{lit}' expected: '('"
            )));
        }
        let (tok, lit) = self.lookahead(Context::Values);
        match tok {
            Token::Identifier | Token::Comma => {
                let set = self.parse_identifiers_list()?;
                let (tok, _) = self.consume(Context::Values);
                if tok != Token::ClosedPar {
                    // Kubernetes reports the token that opened the list here, not the bad one.
                    return Err(LabelSelectorError::new(format!(
                        "found '{lit}', expected: ')'"
                    )));
                }
                Ok(set)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(BTreeSet::from([String::new()]))
            }
            _ => Err(LabelSelectorError::new(format!(
                "found '{lit}', expected: ',', ')' or identifier"
            ))),
        }
    }

    /// A possibly empty, comma-separated list of possibly empty identifiers (`(a,,b)`, `(,)`).
    fn parse_identifiers_list(&mut self) -> Result<BTreeSet<String>, LabelSelectorError> {
        let mut set = BTreeSet::new();
        loop {
            let (tok, lit) = self.consume(Context::Values);
            match tok {
                Token::Identifier => {
                    set.insert(lit);
                    let (tok2, lit2) = self.lookahead(Context::Values);
                    match tok2 {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(set),
                        _ => {
                            return Err(LabelSelectorError::new(format!(
                                "found '{lit2}', expected: ',' or ')'"
                            )));
                        }
                    }
                }
                Token::Comma => {
                    if set.is_empty() {
                        set.insert(String::new()); // "(,"
                    }
                    let (tok2, _) = self.lookahead(Context::Values);
                    if tok2 == Token::ClosedPar {
                        set.insert(String::new()); // ",)"
                        return Ok(set);
                    }
                    if tok2 == Token::Comma {
                        set.insert(String::new()); // ",,"
                    }
                }
                _ => {
                    return Err(LabelSelectorError::new(format!(
                        "found '{lit}', expected: ',', or identifier"
                    )));
                }
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<BTreeSet<String>, LabelSelectorError> {
        let (tok, _) = self.lookahead(Context::Values);
        if tok == Token::EndOfString || tok == Token::Comma {
            return Ok(BTreeSet::from([String::new()]));
        }
        let (tok, lit) = self.consume(Context::Values);
        if tok == Token::Identifier {
            Ok(BTreeSet::from([lit]))
        } else {
            Err(LabelSelectorError::new(format!(
                "found '{lit}', expected: identifier"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Input → canonical string form.
    #[test]
    fn parses_and_prints_canonically() {
        let cases = [
            ("", ""),
            ("a=b", "a=b"),
            ("a==b", "a==b"),
            ("a!=b", "a!=b"),
            ("a", "a"),
            ("!a", "!a"),
            ("a in (x,y)", "a in (x,y)"),
            ("a in (y,x,x)", "a in (x,y)"),
            ("a notin (x)", "a notin (x)"),
            ("a>3", "a>3"),
            ("a<03", "a<03"),
            ("  a = b ,  c  ", "a=b,c"),
            ("z=1,a=2,m", "a=2,m,z=1"),
            ("b=2,a=1,b!=3", "a=1,b=2,b!=3"),
            (
                "x in (foo,,baz),y,z notin ()",
                "x in (,baz,foo),y,z notin ()",
            ),
            ("a in (in)", "a in (in)"),
            ("in in (notin)", "in in (notin)"),
            ("a=", "a="),
            ("a=,b", "a=,b"),
            ("a in (,)", "a in ()"),
            ("a in (x,)", "a in (,x)"),
            ("app.kubernetes.io/name=web", "app.kubernetes.io/name=web"),
            ("a\tin\n(x)", "a in (x)"),
            ("a!=", "a!="),
        ];
        for (input, want) in cases {
            let s = Selector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(s.to_string(), want, "input {input:?}");
            // The canonical form parses to the same selector.
            assert_eq!(
                Selector::parse(&s.to_string()).unwrap().to_string(),
                want,
                "round trip {input:?}"
            );
        }
    }

    /// Input → error message.
    #[test]
    fn rejects_malformed_selectors() {
        let key_msg = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
        let value_msg = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
        let cases: Vec<(&str, String)> = vec![
            ("(", "found '(', expected: !, identifier, or 'end of string'".into()),
            ("a,", "found '', expected: identifier after ','".into()),
            (",a", "found ',', expected: !, identifier, or 'end of string'".into()),
            ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt".into()),
            // Negative numbers are not label values, so Kubernetes rejects them even after `<`.
            ("a<-3", format!("unable to parse requirement: values[0][a]: Invalid value: \"-3\": {value_msg}")),
            ("a in", "unable to parse requirement: found '' expected: '('".into()),
            ("a in x", "unable to parse requirement: found 'x' expected: '('".into()),
            ("a in (x", "unable to parse requirement: found '', expected: ',' or ')'".into()),
            ("a in (x y)", "unable to parse requirement: found 'y', expected: ',' or ')'".into()),
            ("a in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier".into()),
            ("a in (x,=)", "unable to parse requirement: found '=', expected: ',', or identifier".into()),
            ("a (x)", "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt".into()),
            ("a=(", "unable to parse requirement: found '(', expected: identifier".into()),
            ("!", "unable to parse requirement: found '', expected: identifier".into()),
            ("!=a", "found '!=', expected: !, identifier, or 'end of string'".into()),
            ("!a=b", "found '=', expected: ',' or 'end of string'".into()),
            ("-a=b", format!("unable to parse requirement: <nil>: Invalid value: \"-a\": {key_msg}")),
            ("a=b c", "found 'c', expected: ',' or 'end of string'".into()),
            ("a=-b", format!("unable to parse requirement: values[0][a]: Invalid value: \"-b\": {value_msg}")),
            (
                "a>x",
                "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, the value must be an integer".into(),
            ),
            (
                "a>",
                "unable to parse requirement: values[0]: Invalid value: \"\": for 'Gt', 'Lt' operators, the value must be an integer".into(),
            ),
            (
                "a in (-x,y-)",
                format!(
                    "unable to parse requirement: [values[0][a]: Invalid value: \"-x\": {value_msg}, values[1][a]: Invalid value: \"y-\": {value_msg}]"
                ),
            ),
            ("a=b,,c", "found ',', expected: identifier after ','".into()),
            ("a=>b", "unable to parse requirement: found '>', expected: identifier".into()),
            ("a/b/c=d", "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".into()),
        ];
        for (input, want) in cases {
            match Selector::parse(input) {
                Ok(s) => panic!("{input:?} parsed as {s}"),
                Err(e) => assert_eq!(e.to_string(), want, "input {input:?}"),
            }
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        let inputs = [
            "\0",
            "a\0b",
            "a=\0",
            "é=ü",
            "a in (é)",
            "((((",
            "))))",
            "!!!!",
            "a!!=b",
            "=====",
            "a,,,,",
            "a in ((x))",
            "a notin",
            "a notin (",
            "a=b\0c=d",
            "\u{1F600}",
            "a=\u{1F600}",
        ];
        for input in inputs {
            let _ = Selector::parse(input);
        }
    }

    #[test]
    fn matching() {
        let set = labels(&[("app", "web"), ("tier", "front"), ("n", "5"), ("empty", "")]);
        let cases = [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app=db", false),
            ("app!=db", true),
            ("app!=web", false),
            ("missing!=x", true),
            ("app in (web,db)", true),
            ("app in (db)", false),
            ("missing in (x)", false),
            ("app notin (db)", true),
            ("app notin (web)", false),
            ("missing notin (x)", true),
            ("app", true),
            ("missing", false),
            ("!missing", true),
            ("!app", false),
            ("n>4", true),
            ("n>5", false),
            ("n<6", true),
            ("n<5", false),
            ("n>04", true),
            ("app>1", false),
            ("missing<1", false),
            ("empty=", true),
            ("empty", true),
            ("app=web,tier=front", true),
            ("app=web,tier=back", false),
            ("app in (web),!missing,n>1", true),
        ];
        for (input, want) in cases {
            let s = Selector::parse(input).unwrap();
            assert_eq!(s.matches(&set), want, "selector {input:?}");
        }
        assert!(Selector::everything().matches(&BTreeMap::new()));
        assert!(!Selector::nothing().matches(&set));
        assert!(!Selector::nothing().matches(&BTreeMap::new()));
    }

    #[test]
    fn everything_and_nothing() {
        assert!(Selector::parse("").unwrap().is_everything());
        assert!(Selector::everything().is_everything());
        assert!(!Selector::nothing().is_everything());
        assert!(Selector::nothing().matches_nothing());
        assert!(!Selector::parse("a").unwrap().is_everything());
        assert_eq!(Selector::nothing().to_string(), "");
        assert_eq!("a=b".parse::<Selector>().unwrap().to_string(), "a=b");
    }

    #[test]
    fn exact_matches() {
        let cases = [
            ("a=b", "a", Some("b")),
            ("a==b", "a", Some("b")),
            ("a in (b)", "a", Some("b")),
            ("a in (b,c)", "a", None),
            ("a!=b", "a", None),
            ("a=b", "c", None),
            ("a", "a", None),
        ];
        for (input, label, want) in cases {
            assert_eq!(
                Selector::parse(input).unwrap().requires_exact_match(label),
                want,
                "{input} {label}"
            );
        }
    }

    fn expr(key: &str, op: &str, values: Option<&[&str]>) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.to_string(),
            operator: op.to_string(),
            values: values.map(|v| v.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn from_label_selector() {
        let everything = LabelSelector::default();
        let empty_parts = LabelSelector {
            match_labels: Some(BTreeMap::new()),
            match_expressions: Some(vec![]),
        };
        let full = LabelSelector {
            match_labels: Some(labels(&[("tier", "front"), ("app", "web")])),
            match_expressions: Some(vec![
                expr("env", "In", Some(&["prod", "dev"])),
                expr("legacy", "DoesNotExist", None),
                expr("zone", "NotIn", Some(&["z1"])),
                expr("app", "Exists", Some(&[])),
            ]),
        };
        let cases: Vec<(Option<&LabelSelector>, Result<&str, &str>, bool)> = vec![
            (None, Ok(""), false),
            (Some(&everything), Ok(""), true),
            (Some(&empty_parts), Ok(""), true),
            (
                Some(&full),
                Ok("app=web,app,env in (dev,prod),!legacy,tier=front,zone notin (z1)"),
                false,
            ),
        ];
        for (input, want, everything) in cases {
            let got = selector_from_label_selector(input);
            assert_eq!(
                got.as_ref()
                    .map(|s| s.to_string())
                    .map_err(|e| e.to_string()),
                want.map(String::from).map_err(String::from)
            );
            assert_eq!(got.unwrap().is_everything(), everything);
        }
        let s = selector_from_label_selector(Some(&full)).unwrap();
        assert!(s.matches(&labels(&[
            ("app", "web"),
            ("tier", "front"),
            ("env", "dev")
        ])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "front"), ("env", "qa")])));
        assert!(!s.matches(&labels(&[
            ("app", "web"),
            ("tier", "front"),
            ("env", "dev"),
            ("legacy", "")
        ])));
        assert!(
            selector_from_label_selector(None)
                .unwrap()
                .matches_nothing()
        );
    }

    #[test]
    fn from_label_selector_errors() {
        let key_msg = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
        let cases: Vec<(LabelSelector, String)> = vec![
            (
                LabelSelector { match_expressions: Some(vec![expr("a", "Equals", Some(&["b"]))]), ..Default::default() },
                "\"Equals\" is not a valid label selector operator".into(),
            ),
            (
                LabelSelector { match_expressions: Some(vec![expr("a", "In", None)]), ..Default::default() },
                "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty".into(),
            ),
            (
                LabelSelector { match_expressions: Some(vec![expr("a", "Exists", Some(&["x"]))]), ..Default::default() },
                "values: Invalid value: []string{\"x\"}: values set must be empty for exists and does not exist".into(),
            ),
            (
                LabelSelector { match_labels: Some(labels(&[("bad key", "v")])), ..Default::default() },
                format!("key: Invalid value: \"bad key\": {key_msg}"),
            ),
            (
                LabelSelector { match_labels: Some(labels(&[("k", "bad value")])), ..Default::default() },
                "values[0][k]: Invalid value: \"bad value\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".into(),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                selector_from_label_selector(Some(&input))
                    .unwrap_err()
                    .to_string(),
                want
            );
        }
    }

    #[test]
    fn requirement_constructor() {
        type Case = (
            &'static str,
            Operator,
            Vec<&'static str>,
            Result<&'static str, &'static str>,
        );
        let cases: Vec<Case> = vec![
            ("a", Operator::Equals, vec!["b"], Ok("a=b")),
            (
                "a",
                Operator::Equals,
                vec![],
                Err(
                    "values: Invalid value: []string(nil): exact-match compatibility requires one single value",
                ),
            ),
            (
                "a",
                Operator::GreaterThan,
                vec!["1", "2"],
                Err(
                    "values: Invalid value: []string{\"1\", \"2\"}: for 'Gt', 'Lt' operators, exactly one value is required",
                ),
            ),
            ("a", Operator::LessThan, vec!["10"], Ok("a<10")),
            ("a", Operator::NotIn, vec!["y", "x"], Ok("a notin (x,y)")),
            ("a", Operator::DoesNotExist, vec![], Ok("!a")),
        ];
        for (key, op, values, want) in cases {
            let got = Requirement::new(key, op, values.iter().map(|s| s.to_string()).collect());
            assert_eq!(
                got.map(|r| r.to_string()).map_err(|e| e.to_string()),
                want.map(String::from).map_err(String::from)
            );
        }
    }

    #[test]
    fn from_sets() {
        let set = labels(&[("b", "2"), ("a", "1")]);
        assert_eq!(Selector::from_set(&set).to_string(), "a=1,b=2");
        assert!(Selector::from_set(&BTreeMap::new()).is_everything());
        assert!(Selector::from_set(&set).matches(&labels(&[("a", "1"), ("b", "2"), ("c", "3")])));
        assert!(Selector::from_set_validated(&labels(&[("a", "x y")])).is_err());
        assert_eq!(
            Selector::from_set_validated(&set).unwrap(),
            Selector::from_set(&set)
        );
    }
}
