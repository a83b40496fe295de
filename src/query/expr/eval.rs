//! Evaluating an expression against a document: field paths and variables, the operators,
//! and the memory an evaluation may copy out of the document.

use std::cmp::Ordering;

use bson::{Bson, RawBson, RawBsonRef, RawDocument};

use super::budget::Budget;
use super::convert::coerce_to_string;
use super::names::validate_variable_name;
use super::syntax::{Expression, Operator, Variable, Variables};
use super::value::{Value, nullish, truthy, type_of};
use super::{accumulate, arithmetic, convert, date, math, misc, object, sequence, set, string};
use crate::error::ErrorCode;
use crate::query::collation::Collation;
use crate::query::elements::{fields, items};
use crate::query::error::QueryError;
use crate::query::limits::{MAX_BUILDER_SIZE, MAX_USER_SIZE};
use crate::query::number::Number;
use crate::query::order::compare_collated;
use crate::query::render;

impl Expression {
    /// Evaluates against `root`; `None` is a missing value.
    ///
    /// # Errors
    /// mongod's runtime errors: 14 TypeMismatch for arithmetic on the wrong types, 2 BadValue
    /// for a division by zero, 15 Overflow for a date out of range or a value nested deeper
    /// than mongod reads, 17276 for an unbound variable, 16493/13548 for a string over 16 MiB
    /// (64 MiB while `$concat` builds it), 146 ExceededMemoryLimit when the values copied out
    /// of the document pass [`MAX_COPIED_BYTES`].
    pub fn evaluate(&self, root: &RawDocument, vars: &Variables) -> Result<Option<Bson>, QueryError> {
        self.evaluate_in(root, vars, &mut Budget::default())
    }

    /// [`Expression::evaluate`], counting what it copies in `budget`, which the caller shares
    /// between the expressions it evaluates for one document (a projection's computed fields,
    /// a `$set` stage's values).
    ///
    /// # Errors
    /// As [`Expression::evaluate`].
    pub fn evaluate_in(&self, root: &RawDocument, vars: &Variables, budget: &mut Budget) -> Result<Value, QueryError> {
        match self {
            Self::Literal(v) => Ok(Some(v.clone())),
            Self::FieldPath { var, path } => evaluate_path(var, path, root, vars, budget),
            Self::Object(entries) => {
                let mut doc = bson::Document::new();
                for (key, expr) in entries {
                    if let Some(v) = expr.evaluate_in(root, vars, budget)? {
                        doc.insert(key.clone(), v);
                    }
                }
                Ok(Some(Bson::Document(doc)))
            }
            Self::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for expr in items {
                    out.push(expr.evaluate_in(root, vars, budget)?.unwrap_or(Bson::Null));
                }
                Ok(Some(Bson::Array(out)))
            }
            Self::Operator { op, args } => evaluate_operator(*op, args, root, vars, budget),
        }
    }

    /// Evaluates and reports mongod's truthiness of the result (see [`truthy`]).
    ///
    /// # Errors
    /// As [`Expression::evaluate`].
    pub fn evaluate_truthy(&self, root: &RawDocument, vars: &Variables) -> Result<bool, QueryError> {
        Ok(truthy(&self.evaluate(root, vars)?))
    }
}

impl Variables {
    /// The variables of a command's `let` document: each value is an expression evaluated
    /// once, before any document is read (so a field path in it is missing), and may use the
    /// variables defined before it.
    ///
    /// # Errors
    /// 16866/16867 for a name mongod refuses for a user variable, and any parse or evaluation
    /// error of the values.
    pub fn from_let(spec: &RawDocument) -> Result<Self, QueryError> {
        let mut vars = Self::new();
        let empty = bson::RawDocumentBuf::new();
        for (name, value) in fields(spec) {
            validate_variable_name(name, true)?;
            let value = Expression::parse(value)?.evaluate(&empty, &vars)?;
            let raw = value.map(RawBson::try_from).transpose().map_err(QueryError::invalid_bson)?;
            vars.bound.push((name.to_owned(), raw));
        }
        Ok(vars)
    }
}

fn evaluate_path(
    var: &Variable,
    path: &[String],
    root: &RawDocument,
    vars: &Variables,
    budget: &mut Budget,
) -> Result<Value, QueryError> {
    let start = match var {
        Variable::Root => {
            let whole = vars.root.as_deref().map_or(root, |r| r.as_ref());
            return path_in_document(whole, path, budget);
        }
        Variable::Current => return path_in_document(root, path, budget),
        Variable::Remove => return Ok(None),
        Variable::Now if path.is_empty() => return Ok(Some(Bson::DateTime(vars.now))),
        Variable::Now => return Ok(None),
        Variable::TextScore => {
            let Some(scores) = &vars.text_scores else {
                return Err(QueryError::new(
                    ErrorCode::Location40218,
                    "query requires text score metadata, but it is not available",
                ));
            };
            let whole = vars.root.as_deref().map_or(root, |r| r.as_ref());
            return Ok(scores.score_of(whole).map(Bson::Double));
        }
        Variable::User(name) => match vars.get(name) {
            Some(Some(v)) => v.as_raw_bson_ref(),
            Some(None) => return Ok(None),
            None => {
                return Err(QueryError::new(ErrorCode::Location17276, format!("Use of undefined variable: {name}")));
            }
        },
    };
    if path.is_empty() {
        return budget.copy(start).map(Some);
    }
    match start {
        RawBsonRef::Document(doc) => path_in_document(doc, path, budget),
        RawBsonRef::Array(arr) => path_in_array(arr, path, budget).map(Some),
        _ => Ok(None),
    }
}

/// mongod's `ExpressionFieldPath::evaluatePath`: numeric components are field names, never
/// array positions; an array on the way yields the values reached in its document elements.
fn path_in_document(doc: &RawDocument, path: &[String], budget: &mut Budget) -> Result<Value, QueryError> {
    let Some((first, rest)) = path.split_first() else { return budget.copy(RawBsonRef::Document(doc)).map(Some) };
    let Ok(Some(value)) = doc.get(first) else { return Ok(None) };
    if rest.is_empty() {
        return budget.copy(value).map(Some);
    }
    match value {
        RawBsonRef::Document(inner) => path_in_document(inner, rest, budget),
        RawBsonRef::Array(arr) => path_in_array(arr, rest, budget).map(Some),
        _ => Ok(None),
    }
}

/// mongod's `evaluatePathArray`: only document elements are searched, and what they lack is
/// left out.
fn path_in_array(arr: &bson::RawArray, path: &[String], budget: &mut Budget) -> Result<Bson, QueryError> {
    let mut out = Vec::new();
    for element in items(arr) {
        if let RawBsonRef::Document(doc) = element
            && let Some(v) = path_in_document(doc, path, budget)?
        {
            out.push(v);
        }
    }
    Ok(Bson::Array(out))
}

/// Compares two values in BSON order, missing as undefined (one bracket, below null).
fn compare(a: &Value, b: &Value, collation: Option<&Collation>) -> Result<Ordering, QueryError> {
    let raw = |v: &Value| RawBson::try_from(v.clone().unwrap_or(Bson::Undefined)).map_err(QueryError::invalid_bson);
    let (a, b) = (raw(a)?, raw(b)?);
    Ok(compare_collated(a.as_raw_bson_ref(), b.as_raw_bson_ref(), collation))
}

/// Evaluates `op` over `args`, counting what they copy in `budget`.
fn evaluate_operator(
    op: Operator,
    args: &[Expression],
    root: &RawDocument,
    vars: &Variables,
    budget: &mut Budget,
) -> Result<Value, QueryError> {
    let eval = |i: usize, budget: &mut Budget| -> Result<Value, QueryError> {
        let Some(e) = args.get(i) else { return Ok(None) };
        e.evaluate_in(root, vars, budget)
    };
    let collation = vars.collation.as_deref();
    let cmp = |budget: &mut Budget| -> Result<Ordering, QueryError> {
        let a = eval(0, budget)?;
        compare(&a, &eval(1, budget)?, collation)
    };
    Ok(Some(match op {
        Operator::Eq => Bson::Boolean(cmp(budget)? == Ordering::Equal),
        Operator::Ne => Bson::Boolean(cmp(budget)? != Ordering::Equal),
        Operator::Gt => Bson::Boolean(cmp(budget)? == Ordering::Greater),
        Operator::Gte => Bson::Boolean(cmp(budget)? != Ordering::Less),
        Operator::Lt => Bson::Boolean(cmp(budget)? == Ordering::Less),
        Operator::Lte => Bson::Boolean(cmp(budget)? != Ordering::Greater),
        Operator::Cmp => Bson::Int32(match cmp(budget)? {
            Ordering::Less => -1,
            Ordering::Equal => 0,
            Ordering::Greater => 1,
        }),
        Operator::And => {
            for e in args {
                if !truthy(&e.evaluate_in(root, vars, budget)?) {
                    return Ok(Some(Bson::Boolean(false)));
                }
            }
            Bson::Boolean(true)
        }
        Operator::Or => {
            for e in args {
                if truthy(&e.evaluate_in(root, vars, budget)?) {
                    return Ok(Some(Bson::Boolean(true)));
                }
            }
            Bson::Boolean(false)
        }
        Operator::Not => Bson::Boolean(!truthy(&eval(0, budget)?)),
        Operator::Cond => return if truthy(&eval(0, budget)?) { eval(1, budget) } else { eval(2, budget) },
        Operator::IfNull => {
            // Every argument but the last is a candidate; the last is returned as it is.
            let (last, candidates) = args.split_last().map_or((None, args), |(l, c)| (Some(l), c));
            for e in candidates {
                let v = e.evaluate_in(root, vars, budget)?;
                if !nullish(&v) {
                    return Ok(v);
                }
            }
            return match last {
                Some(e) => e.evaluate_in(root, vars, budget),
                None => Ok(None),
            };
        }
        Operator::Add => {
            return arithmetic::add(&(0..args.len()).map(|i| eval(i, budget)).collect::<Result<Vec<_>, _>>()?);
        }
        Operator::Subtract => return arithmetic::subtract(eval(0, budget)?, eval(1, budget)?),
        Operator::Multiply => {
            return arithmetic::multiply(&(0..args.len()).map(|i| eval(i, budget)).collect::<Result<Vec<_>, _>>()?);
        }
        Operator::Divide => return arithmetic::divide(eval(0, budget)?, eval(1, budget)?),
        Operator::Mod => return arithmetic::modulo(eval(0, budget)?, eval(1, budget)?),
        Operator::Abs => return arithmetic::abs(eval(0, budget)?),
        Operator::In => {
            let needle = eval(0, budget)?;
            let haystack = eval(1, budget)?;
            let Some(Bson::Array(list)) = haystack else {
                return Err(QueryError::new(
                    ErrorCode::Location40081,
                    format!("$in requires an array as a second argument, found: {}", type_of(&haystack)),
                ));
            };
            for item in list {
                if compare(&needle, &Some(item), vars.collation.as_deref())? == Ordering::Equal {
                    return Ok(Some(Bson::Boolean(true)));
                }
            }
            Bson::Boolean(false)
        }
        Operator::Size => match eval(0, budget)? {
            Some(Bson::Array(list)) => match i32::try_from(list.len()) {
                Ok(n) => Bson::Int32(n),
                Err(_) => Bson::Int64(i64::try_from(list.len()).unwrap_or(i64::MAX)),
            },
            other => {
                return Err(QueryError::new(
                    ErrorCode::Location17124,
                    format!("The argument to $size must be an array, but was of type: {}", type_of(&other)),
                ));
            }
        },
        Operator::Concat => return concat(args, root, vars, budget),
        // mongod changes ASCII letters only.
        Operator::ToLower => Bson::String(coerce_to_string(eval(0, budget)?)?.to_ascii_lowercase()),
        Operator::ToUpper => Bson::String(coerce_to_string(eval(0, budget)?)?.to_ascii_uppercase()),
        Operator::Type => Bson::String(type_of(&eval(0, budget)?).to_owned()),
        Operator::Slice => {
            let (array, second) = (eval(0, budget)?, eval(1, budget)?);
            return slice(array, second, || eval(2, budget), args.len() == 3);
        }
        Operator::Rand => Bson::Double(crate::query::random::random_unit()),
        Operator::ArrayElemAt
        | Operator::First
        | Operator::Last
        | Operator::ConcatArrays
        | Operator::IsArray
        | Operator::Filter
        | Operator::Map
        | Operator::Reduce
        | Operator::Let => return super::array::evaluate(op, args, root, vars, budget),
        Operator::Switch => return super::switch::evaluate(args, root, vars, budget),
        Operator::Date(op) => return date::evaluate(op, &mut |i| eval(i, budget)),
        Operator::Str(op) => return string::evaluate(op, args, &mut |i| eval(i, budget)),
        Operator::Math(op) => return math::evaluate(op, args, &mut |i| eval(i, budget)),
        Operator::Convert(op) => return convert::evaluate(op, args, &mut |i| eval(i, budget)),
        Operator::Set(op) => return set::evaluate(op, args, collation, &mut |i| eval(i, budget)),
        Operator::Object(op) => return object::evaluate(op, args, &mut |i| eval(i, budget)),
        Operator::Sequence(op) => {
            return sequence::evaluate(op, args, vars.collation.as_ref(), &mut |i| eval(i, budget));
        }
        Operator::Misc(op) => return misc::evaluate(op, eval(0, budget)?),
        Operator::Accumulate(op) => return accumulate::evaluate(op, args, collation, &mut |i| eval(i, budget)),
        Operator::GetField => {
            let field = eval(0, budget)?;
            let (Some(Bson::String(field)), input) = (field, eval(1, budget)?) else { return Ok(None) };
            return match input {
                Some(Bson::Document(doc)) => Ok(doc.get(&field).cloned()),
                v if nullish(&v) => Ok(None),
                v => Err(QueryError::new(
                    ErrorCode::Location3041705,
                    format!("$getField requires 'input' to evaluate to type Object, but got {}", type_of(&v)),
                )),
            };
        }
        Operator::SetField => {
            let (field, input) = (eval(0, budget)?, eval(1, budget)?);
            let (Some(Bson::String(field)), input, value) = (field, input, eval(2, budget)?) else { return Ok(None) };
            let mut doc = match input {
                Some(Bson::Document(doc)) => doc,
                v if nullish(&v) => return Ok(Some(Bson::Null)),
                v => {
                    return Err(QueryError::new(
                        ErrorCode::Location4161105,
                        format!("$setField requires 'input' to evaluate to type Object, but got {}", type_of(&v)),
                    ));
                }
            };
            // `$$REMOVE` (a missing value) takes the field away; an existing field keeps its place.
            match value {
                Some(v) => {
                    doc.insert(field, v);
                }
                None => {
                    doc.remove(&field);
                }
            }
            Bson::Document(doc)
        }
    }))
}

/// mongod's `ExpressionConcat`: the strings in order, null at the first nullish argument. The
/// result is built as the arguments come, so a failing one stops it early: past 64 MiB the
/// builder gives up (13548) and a result of 16 MiB or more is refused (16493), as mongod's
/// `StringBuilder` and `RCString` do.
fn concat(args: &[Expression], root: &RawDocument, vars: &Variables, budget: &mut Budget) -> Result<Value, QueryError> {
    let mut out = String::new();
    for e in args {
        match e.evaluate_in(root, vars, budget)? {
            Some(Bson::String(s)) => {
                let len = out.len().saturating_add(s.len());
                if len > MAX_BUILDER_SIZE {
                    return Err(QueryError::new(
                        ErrorCode::Location13548,
                        format!("BufBuilder attempted to grow() to {len} bytes, past the 64MB limit."),
                    ));
                }
                out.push_str(&s);
            }
            v if nullish(&v) => return Ok(Some(Bson::Null)),
            v => {
                return Err(QueryError::new(
                    ErrorCode::Location16702,
                    format!("$concat only supports strings, not {}", type_of(&v)),
                ));
            }
        }
    }
    if out.len() >= MAX_USER_SIZE {
        return Err(QueryError::new(
            ErrorCode::Location16493,
            format!("Tried to create string longer than {}MB", MAX_USER_SIZE / 1024 / 1024),
        ));
    }
    Ok(Some(Bson::String(out)))
}

/// mongod's `ExpressionSlice`: `[array, n]` keeps the first `n` (the last `-n`) elements;
/// `[array, position, n]` keeps `n` elements from `position` (from the end when negative).
fn slice(
    array: Value,
    second: Value,
    third: impl FnOnce() -> Result<Value, QueryError>,
    has_third: bool,
) -> Result<Value, QueryError> {
    if nullish(&array) || nullish(&second) {
        return Ok(Some(Bson::Null));
    }
    let Some(Bson::Array(list)) = array else {
        return Err(QueryError::new(
            ErrorCode::Location28724,
            format!("First argument to $slice must be an array, but is of type: {}", type_of(&array)),
        ));
    };
    let Some(n) = second.as_ref().and_then(Number::from_bson) else {
        return Err(QueryError::new(
            ErrorCode::Location28725,
            format!("Second argument to $slice must be a numeric value, but is of type: {}", type_of(&second)),
        ));
    };
    let Some(n) = n.to_i32_exact() else {
        return Err(QueryError::new(
            ErrorCode::Location28726,
            format!(
                "Second argument to $slice can't be represented as a 32-bit integer: {}",
                render::double(n.to_f64())
            ),
        ));
    };
    let len = list.len();
    let back = |k: i32| len.saturating_sub(usize::try_from(k.unsigned_abs()).unwrap_or(usize::MAX));
    let (start, end) = if has_third {
        let start = if n < 0 { back(n) } else { usize::try_from(n).unwrap_or(usize::MAX).min(len) };
        let count = third()?;
        if nullish(&count) {
            return Ok(Some(Bson::Null));
        }
        let Some(count) = count.as_ref().and_then(Number::from_bson) else {
            return Err(QueryError::new(
                ErrorCode::Location28727,
                format!("Third argument to $slice must be numeric, but is of type: {}", type_of(&count)),
            ));
        };
        let Some(count) = count.to_i32_exact() else {
            return Err(QueryError::new(
                ErrorCode::Location28728,
                format!(
                    "Third argument to $slice can't be represented as a 32-bit integer: {}",
                    render::double(count.to_f64())
                ),
            ));
        };
        if count <= 0 {
            return Err(QueryError::new(
                ErrorCode::Location28729,
                format!("Third argument to $slice must be positive: {count}"),
            ));
        }
        (start, start.saturating_add(usize::try_from(count).unwrap_or(usize::MAX)).min(len))
    } else if n >= 0 {
        (0, usize::try_from(n).unwrap_or(usize::MAX).min(len))
    } else {
        (back(n), len)
    };
    Ok(Some(Bson::Array(list.into_iter().skip(start).take(end.saturating_sub(start)).collect())))
}
