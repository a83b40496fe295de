//! The string operators: lengths, substrings and searches in bytes and in code points,
//! `$split`, `$strcasecmp`, the trims, `$replaceOne`/`$replaceAll` and the regular expression
//! operators, with mongod's argument checks and codes.

use std::cell::RefCell;
use std::collections::HashMap;

use bson::{Bson, Document, RawBsonRef};

use super::args::{self, NamedErrors};
use super::convert::coerce_to_string;
use super::ops::StringOp;
use super::syntax::{Expression, Operator};
use super::value::{Value, index_argument, nullish, type_of};
use crate::error::ErrorCode;
use crate::query::error::QueryError;
use crate::query::filter::regex::{Groups, MatchFailure, Pattern, RegexError, compile};
use crate::query::number::Number;
use crate::query::render;

fn error(code: ErrorCode, message: String) -> QueryError {
    QueryError::new(code, message)
}

fn shown(v: &Value) -> String {
    v.as_ref().map_or_else(|| "missing".to_owned(), render::owned_value)
}

/// Parses `{name: arg}` for an operator of this family.
pub(super) fn parse(op: StringOp, arg: RawBsonRef<'_>) -> Result<Expression, QueryError> {
    let name = op.name();
    let args = match op {
        StringOp::StrLenBytes | StringOp::StrLenCP => args::positional(name, arg, 1, Some(1))?,
        StringOp::Substr | StringOp::SubstrBytes | StringOp::SubstrCP => args::positional(name, arg, 3, Some(3))?,
        StringOp::IndexOfBytes | StringOp::IndexOfCP => args::positional(name, arg, 2, Some(4))?,
        StringOp::Split | StringOp::Strcasecmp => args::positional(name, arg, 2, Some(2))?,
        StringOp::Trim | StringOp::LTrim | StringOp::RTrim => args::into_args(args::named(
            name,
            arg,
            &["input"],
            &["chars"],
            &NamedErrors {
                not_object: (ErrorCode::Location50696, "{name} only supports an object as an argument, found: {type}"),
                unknown: (ErrorCode::Location50694, "{name} found an unknown argument: {field}"),
                missing: &[(ErrorCode::Location50695, "{name} requires an 'input' field")],
            },
        )?),
        StringOp::ReplaceOne | StringOp::ReplaceAll => args::into_args(args::named(
            name,
            arg,
            &["input", "find", "replacement"],
            &[],
            &NamedErrors {
                not_object: (ErrorCode::Location51751, "{name} requires an object as an argument, found: {type}"),
                unknown: (ErrorCode::Location51750, "{name} found an unknown argument: {field}"),
                missing: &[
                    (ErrorCode::Location51749, "{name} requires '{field}' to be specified"),
                    (ErrorCode::Location51748, "{name} requires '{field}' to be specified"),
                    (ErrorCode::Location51747, "{name} requires '{field}' to be specified"),
                ],
            },
        )?),
        StringOp::RegexMatch | StringOp::RegexFind | StringOp::RegexFindAll => args::into_args(args::named(
            name,
            arg,
            &["input", "regex"],
            &["options"],
            &NamedErrors {
                not_object: (ErrorCode::Location51103, "{name} expects an object of named arguments but found: {type}"),
                unknown: (ErrorCode::Location31024, "{name} found an unknown argument: {field}"),
                missing: &[
                    (ErrorCode::Location31022, "{name} requires '{field}' parameter"),
                    (ErrorCode::Location31023, "{name} requires '{field}' parameter"),
                ],
            },
        )?),
    };
    Ok(Expression::Operator { op: Operator::Str(op), args })
}

/// Evaluates an operator of this family; `eval(i)` evaluates its `i`th argument.
pub(super) fn evaluate(
    op: StringOp,
    args: &[Expression],
    eval: &mut dyn FnMut(usize) -> Result<Value, QueryError>,
) -> Result<Value, QueryError> {
    let name = op.name();
    match op {
        StringOp::StrLenBytes | StringOp::StrLenCP => {
            let v = eval(0)?;
            let Some(Bson::String(s)) = &v else {
                let code =
                    if op == StringOp::StrLenBytes { ErrorCode::Location34473 } else { ErrorCode::Location34471 };
                return Err(error(code, format!("{name} requires a string argument, found: {}", type_of(&v))));
            };
            let len = if op == StringOp::StrLenBytes { s.len() } else { s.chars().count() };
            Ok(Some(int_or_long(len)))
        }
        StringOp::Substr | StringOp::SubstrBytes => substr_bytes(eval(0)?, eval(1)?, eval(2)?),
        StringOp::SubstrCP => substr_cp(eval(0)?, eval(1)?, eval(2)?),
        StringOp::IndexOfBytes | StringOp::IndexOfCP => {
            let code_points = op == StringOp::IndexOfCP;
            let (input, token) = (eval(0)?, eval(1)?);
            if nullish(&input) {
                return Ok(Some(Bson::Null));
            }
            let (first, second) = if code_points {
                (ErrorCode::Location40093, ErrorCode::Location40094)
            } else {
                (ErrorCode::Location40091, ErrorCode::Location40092)
            };
            let Some(Bson::String(input)) = input else {
                return Err(error(
                    first,
                    format!("{name} requires a string as the first argument, found: {}", type_of(&input)),
                ));
            };
            let Some(Bson::String(token)) = token else {
                return Err(error(
                    second,
                    format!("{name} requires a string as the second argument, found: {}", type_of(&token)),
                ));
            };
            let length = if code_points { input.chars().count() } else { input.len() };
            let start = if args.len() > 2 { index_argument(name, eval(2)?, "starting index")? } else { 0 };
            let end = if args.len() > 3 { index_argument(name, eval(3)?, "ending index")?.min(length) } else { length };
            if start > length || end < start {
                return Ok(Some(Bson::Int32(-1)));
            }
            let found = if code_points {
                index_of_cp(&input, &token, start, end)
            } else {
                index_of_bytes(&input, &token, start, end)
            };
            Ok(Some(found.map_or(Bson::Int32(-1), int_or_long)))
        }
        StringOp::Split => {
            let (input, separator) = (eval(0)?, eval(1)?);
            if nullish(&input) || nullish(&separator) {
                return Ok(Some(Bson::Null));
            }
            let Some(Bson::String(input)) = input else {
                return Err(error(
                    ErrorCode::Location40085,
                    format!(
                        "$split requires an expression that evaluates to a string as a first argument, found: {}",
                        type_of(&input)
                    ),
                ));
            };
            let Some(Bson::String(separator)) = separator else {
                return Err(error(
                    ErrorCode::Location40086,
                    format!(
                        "$split requires an expression that evaluates to a string as a second argument, found: {}",
                        type_of(&separator)
                    ),
                ));
            };
            if separator.is_empty() {
                return Err(error(ErrorCode::Location40087, "$split requires a non-empty separator".into()));
            }
            Ok(Some(Bson::Array(input.split(separator.as_str()).map(|p| Bson::String(p.to_owned())).collect())))
        }
        StringOp::Strcasecmp => {
            // mongod compares the ASCII upper-cased strings byte by byte.
            let a = coerce_to_string(eval(0)?)?.to_ascii_uppercase();
            let b = coerce_to_string(eval(1)?)?.to_ascii_uppercase();
            Ok(Some(Bson::Int32(match a.cmp(&b) {
                std::cmp::Ordering::Less => -1,
                std::cmp::Ordering::Equal => 0,
                std::cmp::Ordering::Greater => 1,
            })))
        }
        StringOp::Trim | StringOp::LTrim | StringOp::RTrim => {
            let input = eval(0)?;
            if nullish(&input) {
                return Ok(Some(Bson::Null));
            }
            let Some(Bson::String(input)) = input else {
                return Err(error(
                    ErrorCode::Location50699,
                    format!(
                        "{name} requires its input to be a string, got {} (of type {}) instead.",
                        shown(&input),
                        type_of(&input)
                    ),
                ));
            };
            let chars: Vec<char> = if args::is_absent(args.get(1)) {
                DEFAULT_TRIM.to_vec()
            } else {
                match eval(1)? {
                    v if nullish(&v) => return Ok(Some(Bson::Null)),
                    Some(Bson::String(chars)) => chars.chars().collect(),
                    other => {
                        return Err(error(
                            ErrorCode::Location50700,
                            format!(
                                "{name} requires 'chars' to be a string, got {} (of type {}) instead.",
                                shown(&other),
                                type_of(&other)
                            ),
                        ));
                    }
                }
            };
            let trimmed = match op {
                StringOp::LTrim => input.trim_start_matches(chars.as_slice()),
                StringOp::RTrim => input.trim_end_matches(chars.as_slice()),
                _ => input.trim_matches(chars.as_slice()),
            };
            Ok(Some(Bson::String(trimmed.to_owned())))
        }
        StringOp::ReplaceOne | StringOp::ReplaceAll => {
            let mut strings = Vec::with_capacity(3);
            for (i, (field, code)) in [
                ("input", ErrorCode::Location51746),
                ("find", ErrorCode::Location51745),
                ("replacement", ErrorCode::Location51744),
            ]
            .into_iter()
            .enumerate()
            {
                match eval(i)? {
                    Some(Bson::String(s)) => strings.push(Some(s)),
                    v if nullish(&v) => strings.push(None),
                    other => {
                        return Err(error(
                            code,
                            format!("{name} requires that '{field}' be a string, found: {}", shown(&other)),
                        ));
                    }
                }
            }
            let [Some(input), Some(find), Some(replacement)] =
                <[Option<String>; 3]>::try_from(strings).unwrap_or([None, None, None])
            else {
                return Ok(Some(Bson::Null));
            };
            let out = if op == StringOp::ReplaceOne {
                input.replacen(find.as_str(), &replacement, 1)
            } else {
                input.replace(find.as_str(), &replacement)
            };
            Ok(Some(Bson::String(out)))
        }
        StringOp::RegexMatch | StringOp::RegexFind | StringOp::RegexFindAll => regex_operator(op, args, eval),
    }
}

/// The characters `$trim` removes by default: NUL, the ASCII spaces and Unicode's spaces.
const DEFAULT_TRIM: &[char] = &[
    '\0', ' ', '\t', '\n', '\u{0b}', '\u{0c}', '\r', '\u{a0}', '\u{1680}', '\u{2000}', '\u{2001}', '\u{2002}',
    '\u{2003}', '\u{2004}', '\u{2005}', '\u{2006}', '\u{2007}', '\u{2008}', '\u{2009}', '\u{200a}', '\u{2028}',
    '\u{2029}', '\u{202f}', '\u{205f}', '\u{3000}',
];

/// A length or index as mongod returns it: an int when it fits.
fn int_or_long(n: usize) -> Bson {
    i32::try_from(n).map_or_else(|_| Bson::Int64(i64::try_from(n).unwrap_or(i64::MAX)), Bson::Int32)
}

fn index_of_bytes(input: &str, token: &str, start: usize, end: usize) -> Option<usize> {
    let haystack = input.as_bytes().get(start..end)?;
    let needle = token.as_bytes();
    if needle.is_empty() {
        return Some(start);
    }
    haystack.windows(needle.len()).position(|w| w == needle).map(|i| i + start)
}

fn index_of_cp(input: &str, token: &str, start: usize, end: usize) -> Option<usize> {
    let chars: Vec<char> = input.chars().collect();
    let needle: Vec<char> = token.chars().collect();
    let haystack = chars.get(start..end)?;
    if needle.is_empty() {
        return Some(start);
    }
    haystack.windows(needle.len()).position(|w| w == needle.as_slice()).map(|i| i + start)
}

/// mongod's `ExpressionSubstrBytes`: byte offsets that may not split a UTF-8 character.
fn substr_bytes(input: Value, start: Value, length: Value) -> Result<Value, QueryError> {
    let input = coerce_to_string(input)?;
    let Some(start_n) = start.as_ref().and_then(Number::from_bson) else {
        return Err(error(
            ErrorCode::Location16034,
            format!("$substrBytes: starting index must be a numeric type (is BSON type {})", type_of(&start)),
        ));
    };
    let Some(length_n) = length.as_ref().and_then(Number::from_bson) else {
        return Err(error(
            ErrorCode::Location16035,
            format!("$substrBytes: length must be a numeric type (is BSON type {})", type_of(&length)),
        ));
    };
    let lower = coerce_to_long(start_n);
    if lower < 0 {
        return Err(error(
            ErrorCode::Location50752,
            format!("$substrBytes: starting index must be non-negative (got: {lower})"),
        ));
    }
    let bytes = input.as_bytes();
    let lower = usize::try_from(lower).unwrap_or(usize::MAX);
    if lower < bytes.len() && bytes.get(lower).is_some_and(|b| continuation(*b)) {
        return Err(error(
            ErrorCode::Location28656,
            "$substrBytes: Invalid range, starting index is a UTF-8 continuation byte.".into(),
        ));
    }
    // A negative length reads to the end, as mongod's cast to an unsigned size does.
    let length = usize::try_from(coerce_to_long(length_n)).unwrap_or(usize::MAX);
    let upper = lower.saturating_add(length);
    if upper < bytes.len() && bytes.get(upper).is_some_and(|b| continuation(*b)) {
        return Err(error(
            ErrorCode::Location28657,
            "$substrBytes: Invalid range, ending index is in the middle of a UTF-8 character.".into(),
        ));
    }
    if lower >= bytes.len() {
        return Ok(Some(Bson::String(String::new())));
    }
    let upper = upper.min(bytes.len());
    Ok(Some(Bson::String(input.get(lower..upper).unwrap_or_default().to_owned())))
}

fn continuation(b: u8) -> bool {
    b & 0xc0 == 0x80
}

/// mongod's `Value::coerceToLong` of a number: doubles and decimals truncated.
fn coerce_to_long(n: Number) -> i64 {
    match n {
        Number::Int32(i) => i64::from(i),
        Number::Int64(i) => i,
        Number::Double(d) => d as i64,
        Number::Decimal(d) => crate::query::decimal::to_f64(d) as i64,
    }
}

/// mongod's `ExpressionSubstrCP`: code point offsets, both 32-bit and non-negative.
fn substr_cp(input: Value, start: Value, length: Value) -> Result<Value, QueryError> {
    let check = |v: &Value, numeric: ErrorCode, integral: ErrorCode, what: &str| -> Result<i32, QueryError> {
        let Some(n) = v.as_ref().and_then(Number::from_bson) else {
            return Err(error(
                numeric,
                format!("$substrCP: {what} must be a numeric type (is BSON type {})", type_of(v)),
            ));
        };
        n.to_i32_exact().ok_or_else(|| {
            error(integral, format!("$substrCP: {what} cannot be represented as a 32-bit integral value: {}", shown(v)))
        })
    };
    let start = check(&start, ErrorCode::Location34450, ErrorCode::Location34451, "starting index")?;
    let length = check(&length, ErrorCode::Location34452, ErrorCode::Location34453, "length")?;
    if nullish(&input) {
        return Ok(Some(Bson::String(String::new())));
    }
    let input = coerce_to_string(input)?;
    let length = usize::try_from(length)
        .map_err(|_| error(ErrorCode::Location34454, "$substrCP: length must be a nonnegative integer.".into()))?;
    let start = usize::try_from(start).map_err(|_| {
        error(ErrorCode::Location34455, "$substrCP: the starting index must be nonnegative integer.".into())
    })?;
    Ok(Some(Bson::String(input.chars().skip(start).take(length).collect())))
}

thread_local! {
    /// Compiled patterns of the regular expression operators, by pattern and options: most
    /// pipelines use one constant pattern for every document.
    static COMPILED: RefCell<HashMap<(String, String), Pattern>> = RefCell::new(HashMap::new());
}

/// How many compiled patterns a thread keeps before it starts over.
const MAX_CACHED_PATTERNS: usize = 64;

fn compiled(name: &str, pattern: &str, options: &str) -> Result<Pattern, QueryError> {
    let key = (pattern.to_owned(), options.to_owned());
    if let Some(found) = COMPILED.with(|c| c.borrow().get(&key).cloned()) {
        return Ok(found);
    }
    let re = compile(pattern, options).map_err(|err| match err {
        RegexError::BadFlag(flag) => {
            error(ErrorCode::Location51108, format!("{name} invalid flag in regex options: {flag}"))
        }
        RegexError::NullByte => {
            error(ErrorCode::Location51109, format!("{name}: regular expression cannot contain an embedded null byte"))
        }
        RegexError::TooLong => error(ErrorCode::Location51111, format!("Invalid Regex in {name}: pattern too long")),
        RegexError::Invalid(detail) => error(ErrorCode::Location51111, format!("Invalid Regex in {name}: {detail}")),
    })?;
    COMPILED.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.len() >= MAX_CACHED_PATTERNS {
            cache.clear();
        }
        cache.insert(key, re.clone());
    });
    Ok(re)
}

/// `$regexMatch`, `$regexFind` and `$regexFindAll`.
fn regex_operator(
    op: StringOp,
    args: &[Expression],
    eval: &mut dyn FnMut(usize) -> Result<Value, QueryError>,
) -> Result<Value, QueryError> {
    let name = op.name();
    let nothing = || match op {
        StringOp::RegexMatch => Some(Bson::Boolean(false)),
        StringOp::RegexFind => Some(Bson::Null),
        _ => Some(Bson::Array(Vec::new())),
    };
    let (regex, options) = (eval(1)?, if args::is_absent(args.get(2)) { None } else { Some(eval(2)?) });
    let (pattern, mut flags) = match regex {
        Some(Bson::String(p)) => (Some(p), String::new()),
        Some(Bson::RegularExpression(re)) => (Some(re.pattern.into_string()), re.options.into_string()),
        v if nullish(&v) => (None, String::new()),
        _ => {
            return Err(error(ErrorCode::Location51104, format!("{name} needs 'regex' to be of type string or regex")));
        }
    };
    match options {
        None => {}
        Some(v) if nullish(&v) => {}
        Some(Some(Bson::String(o))) => {
            if !flags.is_empty() && !o.is_empty() {
                return Err(error(
                    ErrorCode::Location51107,
                    format!("{name}: found regex option(s) specified in both 'regex' and 'option' fields"),
                ));
            }
            if o.contains('\0') {
                return Err(error(
                    ErrorCode::Location51110,
                    format!("{name}: regular expression options cannot contain an embedded null byte"),
                ));
            }
            if flags.is_empty() {
                flags = o;
            }
        }
        Some(_) => {
            return Err(error(ErrorCode::Location51105, format!("{name} needs 'options' to be of type string")));
        }
    }
    let input = eval(0)?;
    let input = match input {
        Some(Bson::String(s)) => Some(s),
        v if nullish(&v) => None,
        _ => return Err(error(ErrorCode::Location51106, format!("{name} needs 'input' to be of type string"))),
    };
    let Some(pattern) = pattern else { return Ok(nothing()) };
    let re = compiled(name, &pattern, &flags)?;
    let Some(input) = input else { return Ok(nothing()) };
    // mongod fails the operation when PCRE gives up (its match or heap limit), where a filter
    // counts it as no match.
    let gave_up = |failure: MatchFailure| {
        error(
            ErrorCode::Location51156,
            format!("Error occurred while executing the regular expression in {name}. Result code: {failure}"),
        )
    };
    match op {
        StringOp::RegexMatch => Ok(Some(Bson::Boolean(re.is_match(&input).map_err(gave_up)?))),
        StringOp::RegexFind => {
            Ok(Some(re.captures_at(&input, 0).map_err(gave_up)?.map_or(Bson::Null, |c| found(&input, &c))))
        }
        _ => {
            let mut out = Vec::new();
            let mut at = 0;
            while at <= input.len() {
                let Some(groups) = re.captures_at(&input, at).map_err(gave_up)? else { break };
                let Some(Some((start, end))) = groups.first().copied() else { break };
                out.push(found(&input, &groups));
                // An empty match moves on by one character, as mongod's loop does.
                at = if end > start {
                    end
                } else {
                    end + input.get(end..).and_then(|r| r.chars().next()).map_or(1, char::len_utf8)
                };
            }
            Ok(Some(Bson::Array(out)))
        }
    }
}

/// `{match, idx, captures}`: `idx` counts code points; a group that took no part is null.
fn found(input: &str, groups: &Groups) -> Bson {
    let text = |range: &Option<(usize, usize)>| range.and_then(|(start, end)| input.get(start..end));
    let whole = groups.first().copied().flatten();
    let start = whole.map_or(0, |(start, _)| start);
    let idx = input.get(..start).map_or(0, |p| p.chars().count());
    let captures: Vec<Bson> =
        groups.iter().skip(1).map(|g| text(g).map_or(Bson::Null, |t| Bson::String(t.to_owned()))).collect();
    let mut doc = Document::new();
    doc.insert("match", groups.first().and_then(text).unwrap_or_default());
    doc.insert("idx", int_or_long(idx));
    doc.insert("captures", captures);
    Bson::Document(doc)
}
