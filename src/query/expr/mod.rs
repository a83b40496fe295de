//! Aggregation expressions, the language of `$expr` and of pipeline-style updates: parsed
//! once into an [`Expression`] tree, then evaluated against a document.
//!
//! Supported: literals and `$literal`, field paths (`$a.b`), `$$ROOT`, `$$CURRENT`, `$$REMOVE`
//! and user variables (`$$name`), expression objects and arrays, and the operators `$eq $ne $gt
//! $gte $lt $lte $cmp $and $or $not $cond $ifNull $add $subtract $multiply $divide $mod $abs $in
//! $size $concat $toLower $toUpper $type $getField $setField $slice $rand`. The other operators
//! of mongod 7.0 (and `$meta`) answer 238 NotImplemented; a name mongod does not know answers
//! its 168 InvalidPipelineOperator. Arithmetic promotes as mongod does: any decimal128 operand
//! makes the result a decimal (computed exactly, rounded to 34 digits; a double operand
//! converts to 15 significant digits, as mongod's `coerceToDecimal`).
//!
//! A missing value (mongod's EOO) is kept apart from null: it is omitted from arrays and
//! objects, and compares equal to undefined and below null, as mongod's `Value::compare` has it.

use std::cmp::Ordering;
use std::sync::Arc;

use bson::{Bson, Decimal128, RawBson, RawBsonRef, RawDocument};

use super::collation::Collation;
use super::decimal;
use super::error::QueryError;
use super::limits::{self, MAX_BUILDER_SIZE, MAX_USER_SIZE};
use super::number::Number;
use super::order::compare_collated;
use super::elements::{fields, items};
use super::render;
use crate::error::ErrorCode;

/// A parsed aggregation expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expression {
    /// A constant (a plain value or the argument of `$literal`).
    Literal(Bson),
    /// `$path`, `$$VAR` or `$$VAR.path`: a variable and the path below it.
    FieldPath {
        /// The variable the path starts from (`CURRENT` for `$a.b`).
        var: Variable,
        /// The components below the variable, possibly none.
        path: Vec<String>,
    },
    /// `{a: expr, ...}`: a document whose missing fields are left out.
    Object(Vec<(String, Expression)>),
    /// `[expr, ...]`: an array whose missing elements become null, as in mongod.
    Array(Vec<Expression>),
    /// `{$op: args}`.
    Operator {
        /// The operator.
        op: Operator,
        /// Its parsed arguments.
        args: Vec<Expression>,
    },
}

/// The variable a field path starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Variable {
    /// `$$ROOT`: the document being evaluated.
    Root,
    /// `$$CURRENT`: the same document until something rebinds it.
    Current,
    /// `$$REMOVE`: always missing.
    Remove,
    /// A user variable bound by `let`.
    User(String),
}

/// The operators this evaluator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `$eq`.
    Eq,
    /// `$ne`.
    Ne,
    /// `$gt`.
    Gt,
    /// `$gte`.
    Gte,
    /// `$lt`.
    Lt,
    /// `$lte`.
    Lte,
    /// `$cmp`.
    Cmp,
    /// `$and`.
    And,
    /// `$or`.
    Or,
    /// `$not`.
    Not,
    /// `$cond`, its arguments always `[if, then, else]`.
    Cond,
    /// `$ifNull`.
    IfNull,
    /// `$add`.
    Add,
    /// `$subtract`.
    Subtract,
    /// `$multiply`.
    Multiply,
    /// `$divide`.
    Divide,
    /// `$mod`.
    Mod,
    /// `$abs`.
    Abs,
    /// `$in`.
    In,
    /// `$size`.
    Size,
    /// `$concat`.
    Concat,
    /// `$toLower`.
    ToLower,
    /// `$toUpper`.
    ToUpper,
    /// `$type`.
    Type,
    /// `$getField`, its arguments `[field, input]`.
    GetField,
    /// `$setField`, its arguments `[field, input, value]`.
    SetField,
    /// `$slice`: `[array, n]` or `[array, position, n]`.
    Slice,
    /// `$rand`: a double in [0, 1), no arguments.
    Rand,
}

impl Operator {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "$eq" => Self::Eq,
            "$ne" => Self::Ne,
            "$gt" => Self::Gt,
            "$gte" => Self::Gte,
            "$lt" => Self::Lt,
            "$lte" => Self::Lte,
            "$cmp" => Self::Cmp,
            "$and" => Self::And,
            "$or" => Self::Or,
            "$not" => Self::Not,
            "$cond" => Self::Cond,
            "$ifNull" => Self::IfNull,
            "$add" => Self::Add,
            "$subtract" => Self::Subtract,
            "$multiply" => Self::Multiply,
            "$divide" => Self::Divide,
            "$mod" => Self::Mod,
            "$abs" => Self::Abs,
            "$in" => Self::In,
            "$size" => Self::Size,
            "$concat" => Self::Concat,
            "$toLower" => Self::ToLower,
            "$toUpper" => Self::ToUpper,
            "$type" => Self::Type,
            "$getField" => Self::GetField,
            "$setField" => Self::SetField,
            "$slice" => Self::Slice,
            "$rand" => Self::Rand,
            _ => return None,
        })
    }

    /// The exact number of arguments, for the operators that have one.
    fn arity(self) -> Option<usize> {
        match self {
            Self::Eq
            | Self::Ne
            | Self::Gt
            | Self::Gte
            | Self::Lt
            | Self::Lte
            | Self::Cmp
            | Self::Subtract
            | Self::Divide
            | Self::Mod
            | Self::In => Some(2),
            Self::Not | Self::Abs | Self::Size | Self::ToLower | Self::ToUpper | Self::Type => Some(1),
            Self::Cond | Self::SetField => Some(3),
            Self::GetField => Some(2),
            Self::Rand => Some(0),
            Self::Slice | Self::And | Self::Or | Self::IfNull | Self::Add | Self::Multiply | Self::Concat => None,
        }
    }
}

/// The user variables in scope (`let`); `ROOT` and `CURRENT` come from the document itself.
/// A variable bound to a missing value is kept: it evaluates to missing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Variables {
    bound: Vec<(String, Option<RawBson>)>,
    /// The collation comparison expressions (`$eq`, `$lt`, `$cmp`, ...) compare strings
    /// under; `None` is the simple collation. It travels with the variables because both
    /// are the evaluation's context.
    collation: Option<Arc<Collation>>,
}

impl Variables {
    /// No user variables.
    pub fn new() -> Self {
        Self::default()
    }

    /// Binds `name` to `value`, shadowing an earlier binding of the same name.
    ///
    /// # Errors
    /// 22 InvalidBSON when `value` cannot be encoded.
    pub fn bind(&mut self, name: &str, value: Bson) -> Result<(), QueryError> {
        let raw = RawBson::try_from(value).map_err(QueryError::invalid_bson)?;
        self.bound.push((name.to_owned(), Some(raw)));
        Ok(())
    }

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

    /// Makes comparison expressions compare strings under `collation`.
    pub fn set_collation(&mut self, collation: Option<Arc<Collation>>) {
        self.collation = collation;
    }

    /// The collation of comparison expressions, `None` for the simple one.
    pub fn collation(&self) -> Option<&Arc<Collation>> {
        self.collation.as_ref()
    }

    fn get(&self, name: &str) -> Option<&Option<RawBson>> {
        self.bound.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// A value while evaluating: `None` is missing.
type Value = Option<Bson>;

impl Expression {
    /// Parses an expression.
    ///
    /// # Errors
    /// mongod's codes and messages: 168 InvalidPipelineOperator for an unknown `$`-operator,
    /// 15983 for an operator object with more than one field, 16020 for a wrong number of
    /// arguments, the FieldPath codes for malformed paths.
    pub fn parse(value: RawBsonRef<'_>) -> Result<Self, QueryError> {
        match value {
            RawBsonRef::String(s) if s.starts_with('$') => parse_field_path(s),
            RawBsonRef::Document(doc) => parse_object(doc),
            RawBsonRef::Array(arr) => {
                let mut out = Vec::new();
                for item in arr {
                    out.push(Self::parse(item.map_err(QueryError::invalid_bson)?)?);
                }
                Ok(Self::Array(out))
            }
            other => Ok(Self::Literal(to_bson(other)?)),
        }
    }

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

/// The most memory the values one evaluation copies out of the document may take: 100 MiB,
/// the limit mongod gives its other in-memory work (`internalQueryMaxBlockingSortMemoryUsageBytes`,
/// `$push`, `$range`). mongod shares values by reference; Monarch copies them, so an
/// expression naming a large field many times (`[$s, $s, ...]`) is bounded here.
///
/// Every expression node is evaluated at most once per evaluation (no operator iterates), so
/// what an evaluation holds is at most these copies, its literals (part of the request) and
/// the results built from them: counting the copies as they are made bounds it, at constant
/// cost per copy.
pub const MAX_COPIED_BYTES: usize = 100 * 1024 * 1024;

/// The memory an evaluation has copied out of the document and its variables so far.
#[derive(Debug, Default)]
pub struct Budget {
    copied: usize,
}

impl Budget {
    /// Counts a copy of `raw_bytes` holding `values` owned values.
    ///
    /// # Errors
    /// 146 ExceededMemoryLimit past [`MAX_COPIED_BYTES`].
    fn charge(&mut self, raw_bytes: usize, values: usize) -> Result<(), QueryError> {
        let cost = raw_bytes.saturating_add(values.saturating_mul(std::mem::size_of::<Bson>()));
        self.copied = self.copied.saturating_add(cost);
        if self.copied > MAX_COPIED_BYTES {
            return Err(QueryError::new(
                ErrorCode::ExceededMemoryLimit,
                format!(
                    "Expression evaluation used too much memory ({} bytes) and cannot spill to disk. Memory limit: \
                     {MAX_COPIED_BYTES} bytes",
                    self.copied
                ),
            ));
        }
        Ok(())
    }

    /// Copies `value` out of the document (or a variable), counting the copy.
    ///
    /// # Errors
    /// 146 ExceededMemoryLimit past [`MAX_COPIED_BYTES`]; those of [`limits::to_bson`].
    fn copy(&mut self, value: RawBsonRef<'_>) -> Result<Bson, QueryError> {
        let raw_bytes = match value {
            RawBsonRef::Document(d) => d.as_bytes().len(),
            RawBsonRef::Array(a) => a.as_bytes().len(),
            RawBsonRef::String(s) | RawBsonRef::Symbol(s) | RawBsonRef::JavaScriptCode(s) => s.len(),
            RawBsonRef::Binary(b) => b.bytes.len(),
            RawBsonRef::JavaScriptCodeWithScope(c) => c.code.len() + c.scope.as_bytes().len(),
            _ => 0,
        };
        let (copy, values) = limits::to_bson_counted(value)?;
        self.charge(raw_bytes, values)?;
        Ok(copy)
    }
}

/// mongod's `Value::coerceToBool`: false, null, undefined, missing and numeric zero are false;
/// everything else (NaN, empty strings and arrays included) is true.
pub fn truthy(value: &Option<Bson>) -> bool {
    match value {
        None | Some(Bson::Null | Bson::Undefined | Bson::Boolean(false)) => false,
        Some(Bson::Int32(i)) => *i != 0,
        Some(Bson::Int64(i)) => *i != 0,
        Some(Bson::Double(d)) => *d != 0.0,
        Some(Bson::Decimal128(d)) => {
            !decimal::is_zero(*d)
        }
        Some(_) => true,
    }
}

/// A value of the document (or a variable) as an owned one; see [`limits::to_bson`].
fn to_bson(v: RawBsonRef<'_>) -> Result<Bson, QueryError> {
    limits::to_bson(v)
}

fn parse_field_path(s: &str) -> Result<Expression, QueryError> {
    if let Some(rest) = s.strip_prefix("$$") {
        let mut parts = rest.split('.');
        let name = parts.next().unwrap_or_default();
        let var = match name {
            "ROOT" => Variable::Root,
            "CURRENT" => Variable::Current,
            "REMOVE" => Variable::Remove,
            _ => {
                validate_variable_name(name, false)?;
                Variable::User(name.to_owned())
            }
        };
        let path = match rest.split_once('.') {
            Some((_, below)) => validate_path(below)?,
            None => Vec::new(),
        };
        return Ok(Expression::FieldPath { var, path });
    }
    let below = s.strip_prefix('$').unwrap_or(s);
    if below.is_empty() {
        return Err(QueryError::new(ErrorCode::Location16872, "'$' by itself is not a valid FieldPath"));
    }
    Ok(Expression::FieldPath { var: Variable::Current, path: validate_path(below)? })
}

/// mongod's `validateNameForUserWrite` (a `let` name, 16866/16867) and
/// `validateNameForUserRead` (a `$$name`, 16869/16870): not empty, and starting with a
/// lower-case letter or a non-ASCII character; reads also accept an upper-case letter, as
/// mongod's own variables are spelled that way.
fn validate_variable_name(name: &str, write: bool) -> Result<(), QueryError> {
    let (empty, invalid) = if write {
        (ErrorCode::Location16866, ErrorCode::Location16867)
    } else {
        (ErrorCode::Location16869, ErrorCode::Location16870)
    };
    if name.is_empty() {
        return Err(QueryError::new(empty, "empty variable names are not allowed"));
    }
    let first_ok = |c: char| c.is_ascii_lowercase() || !c.is_ascii() || (!write && c.is_ascii_uppercase());
    if !name.starts_with(first_ok) {
        return Err(QueryError::new(
            invalid,
            format!("'{name}' starts with an invalid character for a user variable name"),
        ));
    }
    Ok(())
}

/// mongod's `FieldPath` checks on the part after `$`.
fn validate_path(path: &str) -> Result<Vec<String>, QueryError> {
    if path.ends_with('.') {
        return Err(QueryError::new(ErrorCode::Location40353, "FieldPath must not end with a '.'."));
    }
    super::limits::check_field_path_parts(path.split('.').count())?;
    path.split('.').map(validate_field_name).collect()
}

fn validate_field_name(part: &str) -> Result<String, QueryError> {
    super::path::check_field_name(part).map(|()| part.to_owned())
}

fn parse_object(doc: &RawDocument) -> Result<Expression, QueryError> {
    let entries: Vec<(&str, RawBsonRef<'_>)> = fields(doc).collect();
    let Some(&(first, first_value)) = entries.first() else { return Ok(Expression::Object(Vec::new())) };
    if first.starts_with('$') {
        if entries.len() != 1 {
            let shown: Vec<String> = entries.iter().map(|(k, v)| render::element(k, *v)).collect();
            return Err(QueryError::new(
                ErrorCode::Location15983,
                format!("An object representing an expression must have exactly one field: {{ {} }}", shown.join(", ")),
            ));
        }
        return parse_operator(first, first_value);
    }
    let mut out = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        if key.contains('.') {
            return Err(QueryError::new(ErrorCode::Location16412, "FieldPath field names may not contain '.'."));
        }
        out.push((validate_field_name(key)?, Expression::parse(value)?));
    }
    Ok(Expression::Object(out))
}

fn parse_operator(name: &str, arg: RawBsonRef<'_>) -> Result<Expression, QueryError> {
    if name == "$literal" {
        return Ok(Expression::Literal(to_bson(arg)?));
    }
    let Some(op) = Operator::from_name(name) else {
        if name == "$meta" {
            return Err(QueryError::not_implemented("$meta (text search scores and index keys)"));
        }
        if UNBUILT_OPERATORS.contains(&name) {
            return Err(QueryError::not_implemented(&format!("the {name} expression")));
        }
        return Err(QueryError::new(ErrorCode::InvalidPipelineOperator, format!("Unrecognized expression '{name}'")));
    };
    if op == Operator::Rand {
        return parse_rand(arg);
    }
    if let (Operator::Cond, RawBsonRef::Document(spec)) = (op, arg) {
        return parse_cond_object(spec);
    }
    if matches!(op, Operator::GetField | Operator::SetField) {
        return parse_field_operator(op, name, arg);
    }
    // mongod's `parseArguments`: an array is the argument list, anything else one argument.
    let args = match arg {
        RawBsonRef::Array(arr) => {
            let mut out = Vec::new();
            for item in arr {
                out.push(Expression::parse(item.map_err(QueryError::invalid_bson)?)?);
            }
            out
        }
        other => vec![Expression::parse(other)?],
    };
    if let Some(n) = op.arity()
        && args.len() != n
    {
        return Err(QueryError::new(
            ErrorCode::Location16020,
            format!("Expression {name} takes exactly {n} arguments. {} were passed in.", args.len()),
        ));
    }
    if op == Operator::Slice && !(2..=3).contains(&args.len()) {
        return Err(QueryError::new(
            ErrorCode::Location28667,
            format!("Expression $slice takes at least 2 arguments, and at most 3, but {} were passed in.", args.len()),
        ));
    }
    if op == Operator::IfNull && args.len() < 2 {
        return Err(QueryError::new(
            ErrorCode::Location1257300,
            format!("$ifNull needs at least two arguments, had: {}", args.len()),
        ));
    }
    Ok(Expression::Operator { op, args })
}

/// `$rand` takes no arguments: an empty document or an empty array.
fn parse_rand(arg: RawBsonRef<'_>) -> Result<Expression, QueryError> {
    match arg {
        RawBsonRef::Document(d) if d.is_empty() => {}
        RawBsonRef::Array(a) if a.is_empty() => {}
        RawBsonRef::Document(_) | RawBsonRef::Array(_) => {
            return Err(QueryError::new(ErrorCode::Location3040501, "$rand does not currently accept arguments"));
        }
        _ => {
            return Err(QueryError::new(ErrorCode::Location10065, "invalid parameter: expected an object ($rand)"));
        }
    }
    Ok(Expression::Operator { op: Operator::Rand, args: Vec::new() })
}

/// Whether `name` is an expression operator mongod 7.0 knows (built here or not): a
/// projection reads `{a: {$name: ...}}` as an expression exactly when this holds.
pub fn is_expression_name(name: &str) -> bool {
    name == "$literal" || name == "$meta" || Operator::from_name(name).is_some() || UNBUILT_OPERATORS.contains(&name)
}

/// mongod 7.0's expression operators that this evaluator does not build yet: they answer 238
/// NotImplemented, where a name mongod does not know answers 168.
const UNBUILT_OPERATORS: &[&str] = &[
    "$acos",
    "$acosh",
    "$allElementsTrue",
    "$anyElementTrue",
    "$arrayElemAt",
    "$arrayToObject",
    "$asin",
    "$asinh",
    "$atan",
    "$atan2",
    "$atanh",
    "$avg",
    "$binarySize",
    "$bitAnd",
    "$bitNot",
    "$bitOr",
    "$bitXor",
    "$bsonSize",
    "$ceil",
    "$concatArrays",
    "$convert",
    "$cos",
    "$cosh",
    "$dateAdd",
    "$dateDiff",
    "$dateFromParts",
    "$dateFromString",
    "$dateSubtract",
    "$dateToParts",
    "$dateToString",
    "$dateTrunc",
    "$dayOfMonth",
    "$dayOfWeek",
    "$dayOfYear",
    "$degreesToRadians",
    "$exp",
    "$filter",
    "$first",
    "$firstN",
    "$floor",
    "$function",
    "$hour",
    "$indexOfArray",
    "$indexOfBytes",
    "$indexOfCP",
    "$isArray",
    "$isNumber",
    "$isoDayOfWeek",
    "$isoWeek",
    "$isoWeekYear",
    "$last",
    "$lastN",
    "$let",
    "$ln",
    "$log",
    "$log10",
    "$ltrim",
    "$map",
    "$max",
    "$maxN",
    "$median",
    "$mergeObjects",
    "$millisecond",
    "$min",
    "$minN",
    "$minute",
    "$month",
    "$objectToArray",
    "$percentile",
    "$pow",
    "$radiansToDegrees",
    "$range",
    "$reduce",
    "$regexFind",
    "$regexFindAll",
    "$regexMatch",
    "$replaceAll",
    "$replaceOne",
    "$reverseArray",
    "$round",
    "$rtrim",
    "$sampleRate",
    "$second",
    "$setDifference",
    "$setEquals",
    "$setIntersection",
    "$setIsSubset",
    "$setUnion",
    "$sin",
    "$sinh",
    "$sortArray",
    "$split",
    "$sqrt",
    "$stdDevPop",
    "$stdDevSamp",
    "$strcasecmp",
    "$strLenBytes",
    "$strLenCP",
    "$substr",
    "$substrBytes",
    "$substrCP",
    "$sum",
    "$switch",
    "$tan",
    "$tanh",
    "$toBool",
    "$toDate",
    "$toDecimal",
    "$toDouble",
    "$toInt",
    "$toLong",
    "$toObjectId",
    "$toString",
    "$trim",
    "$trunc",
    "$tsIncrement",
    "$tsSecond",
    "$unsetField",
    "$week",
    "$year",
    "$zip",
];

/// `$getField` (`"name"` or `{field, input}`) and `$setField` (`{field, input, value}`):
/// `field` must be a constant string, spelled directly or through `$literal`.
fn parse_field_operator(op: Operator, name: &str, arg: RawBsonRef<'_>) -> Result<Expression, QueryError> {
    let current = || Expression::FieldPath { var: Variable::Current, path: Vec::new() };
    let spec = match (op, arg) {
        (Operator::GetField, RawBsonRef::String(_)) => {
            let field = constant_field_name(name, arg)?;
            return Ok(Expression::Operator { op, args: vec![field, current()] });
        }
        (_, RawBsonRef::Document(spec)) => spec,
        _ => {
            let code = if op == Operator::GetField { ErrorCode::Location3041703 } else { ErrorCode::Location4161100 };
            return Err(QueryError::new(code, format!("{name} only supports an object as its argument")));
        }
    };
    let (mut field, mut input, mut value) = (None, None, None);
    for (key, v) in fields(spec) {
        match key {
            "field" => field = Some(constant_field_name(name, v)?),
            "input" => input = Some(Expression::parse(v)?),
            "value" if op == Operator::SetField => value = Some(Expression::parse(v)?),
            _ => {
                let code =
                    if op == Operator::GetField { ErrorCode::Location3041701 } else { ErrorCode::Location4161101 };
                return Err(QueryError::new(code, format!("{name} found an unknown argument: {key}")));
            }
        }
    }
    let missing = |code, which: &str| QueryError::new(code, format!("{name} requires '{which}' to be specified"));
    if op == Operator::GetField {
        let field = field.ok_or_else(|| missing(ErrorCode::Location3041702, "field"))?;
        return Ok(Expression::Operator { op, args: vec![field, input.unwrap_or_else(current)] });
    }
    let field = field.ok_or_else(|| missing(ErrorCode::Location4161102, "field"))?;
    let input = input.ok_or_else(|| missing(ErrorCode::Location4161103, "input"))?;
    let value = value.ok_or_else(|| missing(ErrorCode::Location4161104, "value"))?;
    Ok(Expression::Operator { op, args: vec![field, input, value] })
}

/// The `field` of `$getField`/`$setField`: a string not starting with `$`, or any string
/// wrapped in `$literal`.
fn constant_field_name(name: &str, v: RawBsonRef<'_>) -> Result<Expression, QueryError> {
    let literal = match v {
        RawBsonRef::Document(doc) => match (fields(doc).next(), fields(doc).nth(1)) {
            (Some(("$literal", RawBsonRef::String(s))), None) => Some(s),
            _ => None,
        },
        RawBsonRef::String(s) if !s.starts_with('$') => Some(s),
        _ => None,
    };
    match literal {
        Some(s) => Ok(Expression::Literal(Bson::String(s.to_owned()))),
        None => Err(QueryError::new(
            ErrorCode::Location4161106,
            format!("{name} requires 'field' to evaluate to a constant, but got a non-constant argument"),
        )),
    }
}

/// `{$cond: {if, then, else}}`.
fn parse_cond_object(spec: &RawDocument) -> Result<Expression, QueryError> {
    let (mut if_, mut then, mut else_) = (None, None, None);
    for (key, value) in fields(spec) {
        let slot = match key {
            "if" => &mut if_,
            "then" => &mut then,
            "else" => &mut else_,
            _ => {
                return Err(QueryError::new(
                    ErrorCode::Location17083,
                    format!("Unrecognized parameter to $cond: {key}"),
                ));
            }
        };
        *slot = Some(Expression::parse(value)?);
    }
    let missing = |code, which: &str| QueryError::new(code, format!("Missing '{which}' parameter to $cond"));
    let if_ = if_.ok_or_else(|| missing(ErrorCode::Location17080, "if"))?;
    let then = then.ok_or_else(|| missing(ErrorCode::Location17081, "then"))?;
    let else_ = else_.ok_or_else(|| missing(ErrorCode::Location17082, "else"))?;
    Ok(Expression::Operator { op: Operator::Cond, args: vec![if_, then, else_] })
}

fn evaluate_path(
    var: &Variable,
    path: &[String],
    root: &RawDocument,
    vars: &Variables,
    budget: &mut Budget,
) -> Result<Value, QueryError> {
    let start = match var {
        Variable::Root | Variable::Current => return path_in_document(root, path, budget),
        Variable::Remove => return Ok(None),
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

/// The BSON type name of a value, "missing" for a missing one.
fn type_of(v: &Value) -> &'static str {
    v.as_ref().map_or("missing", |b| render::type_name(b.element_type()))
}

fn nullish(v: &Value) -> bool {
    matches!(v, None | Some(Bson::Null | Bson::Undefined))
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
        Operator::Add => return add(&(0..args.len()).map(|i| eval(i, budget)).collect::<Result<Vec<_>, _>>()?),
        Operator::Subtract => return subtract(eval(0, budget)?, eval(1, budget)?),
        Operator::Multiply => {
            return multiply(&(0..args.len()).map(|i| eval(i, budget)).collect::<Result<Vec<_>, _>>()?);
        }
        Operator::Divide => return divide(eval(0, budget)?, eval(1, budget)?),
        Operator::Mod => return modulo(eval(0, budget)?, eval(1, budget)?),
        Operator::Abs => return abs(eval(0, budget)?),
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
        Operator::Rand => Bson::Double(random_unit()),
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

/// A uniformly distributed double in [0, 1) for `$rand`: 53 random bits from the standard
/// library's randomly keyed SipHash over a counter (not for cryptography, as in mongod).
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
    static KEYS: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = KEYS.get_or_init(std::collections::hash_map::RandomState::new).build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, AtomicOrdering::Relaxed));
    // The top 53 bits fit a double's mantissa exactly.
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// mongod's `Value::coerceToString` for the types built so far: strings as they are, null and
/// missing as "", integers in decimal.
fn coerce_to_string(v: Value) -> Result<String, QueryError> {
    match v {
        Some(Bson::String(s) | Bson::Symbol(s)) => Ok(s),
        Some(Bson::Int32(i)) => Ok(i.to_string()),
        Some(Bson::Int64(i)) => Ok(i.to_string()),
        v if nullish(&v) => Ok(String::new()),
        Some(Bson::Double(_) | Bson::Decimal128(_) | Bson::DateTime(_) | Bson::Timestamp(_)) => {
            Err(QueryError::not_implemented("string conversion of doubles, decimals, dates and timestamps"))
        }
        v => Err(QueryError::new(
            ErrorCode::Location16007,
            format!("can't convert from BSON type {} to String", type_of(&v)),
        )),
    }
}

fn as_f64(n: Number) -> f64 {
    n.to_f64()
}

fn as_i64(n: Number) -> Option<i64> {
    match n {
        Number::Int32(i) => Some(i64::from(i)),
        Number::Int64(i) => Some(i),
        Number::Double(_) | Number::Decimal(_) => None,
    }
}

fn any_decimal(a: Number, b: Number) -> bool {
    matches!(a, Number::Decimal(_)) || matches!(b, Number::Decimal(_))
}

/// A date plus or minus a decimal number of milliseconds, rounded half to even.
fn decimal_to_millis(total: Decimal128) -> Result<i64, QueryError> {
    decimal::to_i64(total).ok_or_else(date_overflow)
}

/// The widest numeric type seen so far by `$add` or `$multiply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Widest {
    Int,
    Long,
    Double,
}

fn widest_of(n: Number) -> Widest {
    match n {
        Number::Int32(_) => Widest::Int,
        Number::Int64(_) => Widest::Long,
        Number::Double(_) | Number::Decimal(_) => Widest::Double,
    }
}

/// An int64 result as mongod's `createIntOrLong` makes it for an int-typed total.
fn int_or_long(total: i64, widest: Widest) -> Bson {
    match widest {
        Widest::Int => i32::try_from(total).map_or(Bson::Int64(total), Bson::Int32),
        _ => Bson::Int64(total),
    }
}

fn type_mismatch(message: String) -> QueryError {
    QueryError::new(ErrorCode::TypeMismatch, message)
}

fn date_overflow() -> QueryError {
    QueryError::new(ErrorCode::Overflow, "date overflow")
}

/// A double as whole milliseconds (mongod's `llround`), if it is inside the int64 range.
fn double_to_millis(d: f64) -> Option<i64> {
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    // The range check makes the cast exact after rounding.
    (d.is_finite() && (-TWO_POW_63..TWO_POW_63).contains(&d)).then(|| d.round() as i64)
}

/// mongod's `AddState`: an int64 total while the operands are integers (an int64 overflow
/// switches to a double total), a double total from the first double on, a decimal total
/// from the first decimal on (the total so far converted exactly, or a double to 34 digits);
/// a date operand makes the result a date, doubles rounded to whole milliseconds.
fn add(values: &[Value]) -> Result<Value, QueryError> {
    let (mut widest, mut long_total, mut double_total) = (Widest::Int, 0i64, 0f64);
    let mut decimal_total: Option<Decimal128> = None;
    let mut date = false;
    for v in values {
        if nullish(v) {
            return Ok(Some(Bson::Null));
        }
        let n = match v {
            Some(Bson::DateTime(d)) => {
                if date {
                    return Err(QueryError::new(
                        ErrorCode::Location16612,
                        "only one date allowed in an $add expression",
                    ));
                }
                date = true;
                Number::Int64(d.timestamp_millis())
            }
            Some(b) => match Number::from_bson(b) {
                Some(n) => n,
                None => {
                    return Err(type_mismatch(format!("$add only supports numeric or date types, not {}", type_of(v))));
                }
            },
            None => return Ok(Some(Bson::Null)),
        };
        if decimal_total.is_some() || matches!(n, Number::Decimal(_)) {
            let so_far = decimal_total.unwrap_or_else(|| match widest {
                Widest::Double if !date => decimal::from_f64(double_total),
                _ => decimal::from_i64(long_total),
            });
            decimal_total = Some(decimal::add(so_far, n.to_decimal()));
            continue;
        }
        if date {
            // Once there is a date, everything adds up in int64 milliseconds.
            let add = match n {
                Number::Double(d) => double_to_millis(d).ok_or_else(date_overflow)?,
                n => as_i64(n).unwrap_or(0),
            };
            let base = if widest == Widest::Double {
                double_to_millis(double_total).ok_or_else(date_overflow)?
            } else {
                long_total
            };
            long_total = base.checked_add(add).ok_or_else(date_overflow)?;
            widest = Widest::Long;
            continue;
        }
        let next = widest.max(widest_of(n));
        if next == Widest::Double && widest != Widest::Double {
            double_total = long_total as f64;
        }
        widest = next;
        match widest {
            Widest::Double => double_total += as_f64(n),
            _ => match long_total.checked_add(as_i64(n).unwrap_or(0)) {
                Some(t) => long_total = t,
                None => {
                    widest = Widest::Double;
                    double_total = long_total as f64 + as_f64(n);
                }
            },
        }
    }
    Ok(Some(match (decimal_total, date) {
        (Some(total), true) => Bson::DateTime(bson::DateTime::from_millis(decimal_to_millis(total)?)),
        (Some(total), false) => Bson::Decimal128(total),
        (None, _) => add_result(widest, long_total, double_total, date),
    }))
}

fn add_result(widest: Widest, long_total: i64, double_total: f64, date: bool) -> Bson {
    if date {
        Bson::DateTime(bson::DateTime::from_millis(long_total))
    } else if widest == Widest::Double {
        Bson::Double(double_total)
    } else {
        int_or_long(long_total, widest)
    }
}

/// mongod's `evaluateSubtract`: the widest numeric type decides; an int64 overflow gives a
/// double; a date minus a date is int64 milliseconds, a date minus a number a date.
fn subtract(a: Value, b: Value) -> Result<Value, QueryError> {
    let (na, nb) = (a.as_ref().and_then(Number::from_bson), b.as_ref().and_then(Number::from_bson));
    if let (Some(x), Some(y)) = (na, nb) {
        if any_decimal(x, y) {
            return Ok(Some(Bson::Decimal128(decimal::sub(x.to_decimal(), y.to_decimal()))));
        }
        let widest = widest_of(x).max(widest_of(y));
        return Ok(Some(match widest {
            Widest::Double => Bson::Double(as_f64(x) - as_f64(y)),
            _ => {
                let (l, r) = (as_i64(x).unwrap_or(0), as_i64(y).unwrap_or(0));
                match l.checked_sub(r) {
                    Some(d) => int_or_long(d, widest),
                    None => Bson::Double(as_f64(x) - as_f64(y)),
                }
            }
        }));
    }
    if nullish(&a) || nullish(&b) {
        return Ok(Some(Bson::Null));
    }
    if let Some(Bson::DateTime(lhs)) = &a {
        let lhs = lhs.timestamp_millis();
        return match (&b, nb) {
            (Some(Bson::DateTime(rhs)), _) => Ok(Some(Bson::Int64(lhs.wrapping_sub(rhs.timestamp_millis())))),
            (_, Some(n)) => {
                let offset = match n {
                    Number::Double(d) => double_to_millis(d).ok_or_else(date_overflow)?,
                    Number::Decimal(d) => decimal_to_millis(d)?,
                    n => as_i64(n).unwrap_or(0),
                };
                let ms = lhs.checked_sub(offset).ok_or_else(date_overflow)?;
                Ok(Some(Bson::DateTime(bson::DateTime::from_millis(ms))))
            }
            _ => Err(type_mismatch(format!("can't $subtract {} from Date", type_of(&b)))),
        };
    }
    Err(type_mismatch(format!("can't $subtract {} from {}", type_of(&b), type_of(&a))))
}

/// mongod's `MultiplyState`: a double product kept alongside an int64 one, which is given up
/// on overflow or a non-finite factor.
fn multiply(values: &[Value]) -> Result<Value, QueryError> {
    let (mut widest, mut long_product, mut double_product) = (Widest::Int, 1i64, 1f64);
    let mut decimal_product: Option<Decimal128> = None;
    for v in values {
        if nullish(v) {
            return Ok(Some(Bson::Null));
        }
        let Some(n) = v.as_ref().and_then(Number::from_bson) else {
            return Err(type_mismatch(format!("$multiply only supports numeric types, not {}", type_of(v))));
        };
        if decimal_product.is_some() || matches!(n, Number::Decimal(_)) {
            // From the first decimal on, the product so far converts (a double to 15 digits).
            let so_far = decimal_product.unwrap_or_else(|| match widest {
                Widest::Double => decimal::from_f64_15(double_product),
                _ => decimal::from_i64(long_product),
            });
            decimal_product = Some(decimal::mul(so_far, n.to_decimal()));
            continue;
        }
        widest = widest.max(widest_of(n));
        double_product *= as_f64(n);
        if widest != Widest::Double {
            match long_product.checked_mul(as_i64(n).unwrap_or(0)) {
                Some(p) => long_product = p,
                None => widest = Widest::Double,
            }
        }
    }
    Ok(Some(match decimal_product {
        Some(product) => Bson::Decimal128(product),
        None if widest == Widest::Double => Bson::Double(double_product),
        None => int_or_long(long_product, widest),
    }))
}

fn divide(a: Value, b: Value) -> Result<Value, QueryError> {
    match (a.as_ref().and_then(Number::from_bson), b.as_ref().and_then(Number::from_bson)) {
        (Some(x), Some(y)) if any_decimal(x, y) => {
            let denominator = y.to_decimal();
            if decimal::is_zero(denominator) {
                return Err(QueryError::bad_value("can't $divide by zero"));
            }
            Ok(Some(Bson::Decimal128(decimal::div(x.to_decimal(), denominator))))
        }
        (Some(x), Some(y)) => {
            let denominator = as_f64(y);
            if denominator == 0.0 {
                return Err(QueryError::bad_value("can't $divide by zero"));
            }
            Ok(Some(Bson::Double(as_f64(x) / denominator)))
        }
        _ if nullish(&a) || nullish(&b) => Ok(Some(Bson::Null)),
        _ => {
            Err(type_mismatch(format!("$divide only supports numeric types, not {} and {}", type_of(&a), type_of(&b))))
        }
    }
}

/// mongod's `evaluateMod`: a double on either side gives `fmod`; otherwise the integer
/// remainder, int64 when either side is one.
fn modulo(a: Value, b: Value) -> Result<Value, QueryError> {
    let (x, y) = match (a.as_ref().and_then(Number::from_bson), b.as_ref().and_then(Number::from_bson)) {
        (Some(x), Some(y)) => (x, y),
        _ if nullish(&a) || nullish(&b) => return Ok(Some(Bson::Null)),
        _ => {
            return Err(QueryError::new(
                ErrorCode::Location16611,
                format!("$mod only supports numeric types, not {} and {}", type_of(&a), type_of(&b)),
            ));
        }
    };
    if any_decimal(x, y) {
        let divisor = y.to_decimal();
        if decimal::is_zero(divisor) {
            return Err(QueryError::new(ErrorCode::Location16610, "can't $mod by zero"));
        }
        return Ok(Some(Bson::Decimal128(decimal::rem(x.to_decimal(), divisor))));
    }
    let divisor = as_f64(y);
    if divisor == 0.0 {
        return Err(QueryError::new(ErrorCode::Location16610, "can't $mod by zero"));
    }
    Ok(Some(match (x, y) {
        (Number::Double(_), _) | (_, Number::Double(_)) => Bson::Double(as_f64(x) % divisor),
        // wrapping_rem: i64::MIN % -1 is 0, as mongod's overflow-safe mod says.
        (Number::Int32(l), Number::Int32(r)) => Bson::Int32(l.wrapping_rem(r)),
        _ => Bson::Int64(as_i64(x).unwrap_or(0).wrapping_rem(as_i64(y).unwrap_or(1))),
    }))
}

fn abs(v: Value) -> Result<Value, QueryError> {
    Ok(Some(match v.as_ref().and_then(Number::from_bson) {
        Some(Number::Int32(i)) => i.checked_abs().map_or(Bson::Int64(-i64::from(i)), Bson::Int32),
        Some(Number::Int64(i)) => match i.checked_abs() {
            Some(a) => Bson::Int64(a),
            None => return Err(QueryError::new(ErrorCode::Location28680, "can't take $abs of long long min")),
        },
        Some(Number::Double(d)) => Bson::Double(d.abs()),
        Some(Number::Decimal(d)) => Bson::Decimal128(decimal::abs(d)),
        None if nullish(&v) => Bson::Null,
        None => {
            return Err(QueryError::new(
                ErrorCode::Location28765,
                format!("$abs only supports numeric types, not {}", type_of(&v)),
            ));
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{DateTime, bson, doc, rawdoc};

    /// Parses `expr` and evaluates it against `doc`; an error becomes its code.
    fn eval(doc: bson::Document, expr: Bson) -> Result<Option<Bson>, i32> {
        let root = bson::RawDocumentBuf::try_from(&doc).unwrap();
        let raw = RawBson::try_from(expr).unwrap();
        let parsed = Expression::parse(raw.as_raw_bson_ref()).map_err(|e| e.code().code())?;
        parsed.evaluate(&root, &Variables::new()).map_err(|e| e.code().code())
    }

    fn err_message(doc: bson::Document, expr: Bson) -> String {
        let root = bson::RawDocumentBuf::try_from(&doc).unwrap();
        let raw = RawBson::try_from(expr).unwrap();
        match Expression::parse(raw.as_raw_bson_ref()) {
            Err(e) => e.message().to_owned(),
            Ok(parsed) => parsed.evaluate(&root, &Variables::new()).unwrap_err().message().to_owned(),
        }
    }

    /// Runs `(document, expression, expected)` rows; `Err(code)` expects that error code.
    fn table(rows: Vec<(bson::Document, Bson, Result<Option<Bson>, i32>)>) {
        for (doc, expr, expected) in rows {
            let got = eval(doc.clone(), expr.clone());
            assert_eq!(got, expected, "{expr} on {doc}");
        }
    }

    fn ok(v: Bson) -> Result<Option<Bson>, i32> {
        Ok(Some(v))
    }

    fn date(ms: i64) -> Bson {
        Bson::DateTime(DateTime::from_millis(ms))
    }

    #[test]
    fn expr_literals_paths_and_variables() {
        let d = doc! { "a": { "b": 1 }, "arr": [ { "x": 1 }, { "y": 2 }, 3, { "x": [4] }, [ { "x": 5 } ] ] };
        table(vec![
            (d.clone(), bson!(5), ok(bson!(5))),
            (d.clone(), bson!("plain"), ok(bson!("plain"))),
            (d.clone(), bson!({ "$literal": "$a" }), ok(bson!("$a"))),
            (d.clone(), bson!({ "$literal": { "$add": 1 } }), ok(bson!({ "$add": 1 }))),
            (d.clone(), bson!("$a.b"), ok(bson!(1))),
            (d.clone(), bson!("$a.c"), Ok(None)),
            (d.clone(), bson!("$a.b.c"), Ok(None)),
            (d.clone(), bson!("$arr.x"), ok(bson!([1, [4]]))),
            (d.clone(), bson!("$arr.0"), ok(bson!([]))),
            (d.clone(), bson!("$$ROOT.a"), ok(bson!({ "b": 1 }))),
            (d.clone(), bson!("$$CURRENT.a.b"), ok(bson!(1))),
            (d.clone(), bson!("$$REMOVE"), Ok(None)),
            (d.clone(), bson!("$$nope"), Err(17276)),
            (d.clone(), bson!("$$Upper"), Err(17276)),
            (d.clone(), bson!("$$_x"), Err(16870)),
            (d.clone(), bson!("$$"), Err(16869)),
            (d.clone(), bson!("$"), Err(16872)),
            (d.clone(), bson!("$a."), Err(40353)),
            (d.clone(), bson!("$a..b"), Err(15998)),
            (d.clone(), bson!("$a.$b"), Err(16410)),
            (d.clone(), bson!({ "k": "$a.b", "gone": "$zzz" }), ok(bson!({ "k": 1 }))),
            (d.clone(), bson!(["$a.b", "$zzz"]), ok(bson!([1, null]))),
            (d.clone(), bson!({ "a.b": 1 }), Err(16412)),
            (d.clone(), bson!({ "$foo": 1 }), Err(168)),
            (d.clone(), bson!({ "$eq": [1, 1], "b": 1 }), Err(15983)),
        ]);
        let root = rawdoc! { "a": 1 };
        let mut vars = Variables::new();
        vars.bind("v", bson!({ "n": [ { "m": 7 } ] })).unwrap();
        let parsed = Expression::parse(RawBsonRef::String("$$v.n.m")).unwrap();
        assert_eq!(parsed.evaluate(&root, &vars), Ok(Some(bson!([7]))));
        let lets = Variables::from_let(&rawdoc! { "x": { "$add": [1, 2] }, "y": "$$x", "gone": "$a" }).unwrap();
        let sum =
            Expression::parse(RawBson::try_from(bson!({ "$add": ["$$x", "$$y", "$a"] })).unwrap().as_raw_bson_ref());
        assert_eq!(sum.unwrap().evaluate(&root, &lets), Ok(Some(bson!(7))));
        let gone = Expression::parse(RawBsonRef::String("$$gone")).unwrap();
        assert_eq!(gone.evaluate(&root, &lets), Ok(None));
        assert_eq!(Variables::from_let(&rawdoc! { "ROOT": 1 }).unwrap_err().code().code(), 16867);
        assert_eq!(Variables::from_let(&rawdoc! { "": 1 }).unwrap_err().code().code(), 16866);
        assert_eq!(Variables::from_let(&rawdoc! { "x": { "$bad": 1 } }).unwrap_err().code().code(), 168);
        assert_eq!(err_message(doc! {}, bson!({ "$foo": 1 })), "Unrecognized expression '$foo'");
        assert_eq!(
            err_message(doc! {}, bson!({ "$eq": [1, 1], "b": 1 })),
            "An object representing an expression must have exactly one field: { $eq: [ 1, 1 ], b: 1 }"
        );
    }

    #[test]
    fn expr_comparisons_use_bson_order_without_brackets() {
        let d = doc! { "a": 1, "s": "x", "n": null };
        table(vec![
            (d.clone(), bson!({ "$eq": ["$a", 1.0] }), ok(bson!(true))),
            (d.clone(), bson!({ "$ne": ["$a", 1] }), ok(bson!(false))),
            (d.clone(), bson!({ "$gt": ["$s", "$a"] }), ok(bson!(true))),
            (d.clone(), bson!({ "$gte": ["$a", 1] }), ok(bson!(true))),
            (d.clone(), bson!({ "$lt": ["$n", "$a"] }), ok(bson!(true))),
            (d.clone(), bson!({ "$lte": ["$a", 0] }), ok(bson!(false))),
            // Missing is below null and not equal to it.
            (d.clone(), bson!({ "$eq": ["$missing", null] }), ok(bson!(false))),
            (d.clone(), bson!({ "$lt": ["$missing", null] }), ok(bson!(true))),
            (d.clone(), bson!({ "$eq": ["$missing", "$other"] }), ok(bson!(true))),
            (d.clone(), bson!({ "$cmp": ["$a", 2] }), ok(bson!(-1))),
            (d.clone(), bson!({ "$cmp": ["$s", "$a"] }), ok(bson!(1))),
            (d.clone(), bson!({ "$cmp": [[1, 2], [1, 2]] }), ok(bson!(0))),
            (d.clone(), bson!({ "$eq": [1] }), Err(16020)),
            (d.clone(), bson!({ "$eq": 1 }), Err(16020)),
            (d.clone(), bson!({ "$cmp": [1, 2, 3] }), Err(16020)),
        ]);
        assert_eq!(
            err_message(doc! {}, bson!({ "$eq": [1] })),
            "Expression $eq takes exactly 2 arguments. 1 were passed in."
        );
    }

    #[test]
    fn expr_logic_cond_and_if_null() {
        let d = doc! { "t": true, "z": 0, "e": "", "n": null };
        table(vec![
            (d.clone(), bson!({ "$and": [] }), ok(bson!(true))),
            (d.clone(), bson!({ "$and": ["$t", "$e"] }), ok(bson!(true))),
            (d.clone(), bson!({ "$and": ["$t", "$z"] }), ok(bson!(false))),
            (d.clone(), bson!({ "$or": [] }), ok(bson!(false))),
            (d.clone(), bson!({ "$or": ["$n", "$missing", "$t"] }), ok(bson!(true))),
            // Short-circuit: the failing `$divide` is never evaluated.
            (d.clone(), bson!({ "$or": [true, { "$divide": [1, 0] }] }), ok(bson!(true))),
            (d.clone(), bson!({ "$not": ["$z"] }), ok(bson!(true))),
            (d.clone(), bson!({ "$not": "$e" }), ok(bson!(false))),
            (d.clone(), bson!({ "$not": [1, 2] }), Err(16020)),
            (d.clone(), bson!({ "$cond": ["$t", "yes", "no"] }), ok(bson!("yes"))),
            (d.clone(), bson!({ "$cond": { "if": "$z", "then": "yes", "else": "no" } }), ok(bson!("no"))),
            (d.clone(), bson!({ "$cond": { "if": true, "then": "$missing", "else": 1 } }), Ok(None)),
            (d.clone(), bson!({ "$cond": ["$t", 1] }), Err(16020)),
            (d.clone(), bson!({ "$cond": { "then": 1, "else": 2 } }), Err(17080)),
            (d.clone(), bson!({ "$cond": { "if": 1, "else": 2 } }), Err(17081)),
            (d.clone(), bson!({ "$cond": { "if": 1, "then": 2 } }), Err(17082)),
            (d.clone(), bson!({ "$cond": { "if": 1, "then": 2, "else": 3, "x": 4 } }), Err(17083)),
            (d.clone(), bson!({ "$ifNull": ["$n", "$missing", "fallback"] }), ok(bson!("fallback"))),
            (d.clone(), bson!({ "$ifNull": ["$z", "fallback"] }), ok(bson!(0))),
            (d.clone(), bson!({ "$ifNull": ["$n", "$missing"] }), Ok(None)),
            (d.clone(), bson!({ "$ifNull": ["$n"] }), Err(1257300)),
        ]);
    }

    #[test]
    fn expr_add_subtract_multiply_promote_like_mongod() {
        let d = doc! { "i": 2, "l": i64::MAX, "f": 0.5, "d": date(1_000), "s": "x", "n": null };
        table(vec![
            (d.clone(), bson!({ "$add": [] }), ok(bson!(0))),
            (d.clone(), bson!({ "$add": ["$i", 3] }), ok(bson!(5))),
            (d.clone(), bson!({ "$add": [i32::MAX, 1] }), ok(Bson::Int64(i64::from(i32::MAX) + 1))),
            (d.clone(), bson!({ "$add": ["$l", 1] }), ok(Bson::Double(i64::MAX as f64 + 1.0))),
            (d.clone(), bson!({ "$add": ["$i", "$f"] }), ok(bson!(2.5))),
            (d.clone(), bson!({ "$add": ["$i", Bson::Int64(1)] }), ok(Bson::Int64(3))),
            (d.clone(), bson!({ "$add": ["$d", 5, "$f"] }), ok(date(1_006))),
            (d.clone(), bson!({ "$add": ["$d", "$d"] }), Err(16612)),
            (d.clone(), bson!({ "$add": ["$i", "$n"] }), ok(Bson::Null)),
            (d.clone(), bson!({ "$add": ["$i", "$missing"] }), ok(Bson::Null)),
            (d.clone(), bson!({ "$add": ["$s", "$n"] }), Err(14)),
            (d.clone(), bson!({ "$add": [i32::MAX, 1, -1] }), ok(bson!(i32::MAX))),
            (d.clone(), bson!({ "$add": ["$d", Bson::Int64(i64::MAX)] }), Err(15)),
            (d.clone(), bson!({ "$subtract": [5, "$i"] }), ok(bson!(3))),
            (d.clone(), bson!({ "$subtract": [i32::MIN, 1] }), ok(Bson::Int64(i64::from(i32::MIN) - 1))),
            (d.clone(), bson!({ "$subtract": [Bson::Int64(i64::MIN), 1] }), ok(Bson::Double(i64::MIN as f64 - 1.0))),
            (d.clone(), bson!({ "$subtract": ["$d", 1] }), ok(date(999))),
            (d.clone(), bson!({ "$subtract": ["$d", date(400)] }), ok(Bson::Int64(600))),
            (d.clone(), bson!({ "$subtract": [1, "$d"] }), Err(14)),
            (d.clone(), bson!({ "$subtract": ["$d", 0.6] }), ok(date(999))),
            (d.clone(), bson!({ "$subtract": ["$d", "$s"] }), Err(14)),
            (d.clone(), bson!({ "$subtract": ["$n", "$s"] }), ok(Bson::Null)),
            (d.clone(), bson!({ "$subtract": [1] }), Err(16020)),
            (d.clone(), bson!({ "$multiply": [] }), ok(bson!(1))),
            (d.clone(), bson!({ "$multiply": ["$i", 3, Bson::Int64(2)] }), ok(Bson::Int64(12))),
            (d.clone(), bson!({ "$multiply": [i32::MAX, 2] }), ok(Bson::Int64(i64::from(i32::MAX) * 2))),
            (d.clone(), bson!({ "$multiply": ["$l", 2] }), ok(Bson::Double(i64::MAX as f64 * 2.0))),
            (d.clone(), bson!({ "$multiply": ["$i", "$f"] }), ok(bson!(1.0))),
            (d.clone(), bson!({ "$multiply": ["$i", "$missing"] }), ok(Bson::Null)),
            (d.clone(), bson!({ "$multiply": ["$d", 2] }), Err(14)),
            (d.clone(), bson!({ "$multiply": [i32::MAX, 2, 0.5] }), ok(bson!(f64::from(i32::MAX)))),
        ]);
        assert_eq!(
            err_message(d.clone(), bson!({ "$add": ["$s"] })),
            "$add only supports numeric or date types, not string"
        );
        assert_eq!(err_message(d, bson!({ "$subtract": [1, "$d"] })), "can't $subtract date from int");
    }

    #[test]
    fn expr_decimal_arithmetic_promotes_to_decimal() {
        let dec = |s: &str| Bson::Decimal128(s.parse().unwrap());
        let d =
            doc! { "x": dec("0.1"), "y": dec("0.2"), "i": 3, "l": i64::MAX, "f": 0.5, "z": dec("0"), "t": date(1_000) };
        table(vec![
            (d.clone(), bson!({ "$add": ["$x", "$y"] }), ok(dec("0.3"))),
            (d.clone(), bson!({ "$add": ["$i", "$x"] }), ok(dec("3.1"))),
            // The int64 total overflowed to a double (2^64) before the decimal came.
            (d.clone(), bson!({ "$add": ["$l", "$l", "$x"] }), ok(dec("18446744073709551616.1"))),
            (d.clone(), bson!({ "$add": ["$f", "$x"] }), ok(dec("0.6"))),
            // A double operand after the first decimal converts to 15 digits; a double total
            // before it to 34.
            (d.clone(), bson!({ "$add": ["$x", "$f", 1] }), ok(dec("1.600000000000000"))),
            (d.clone(), bson!({ "$add": ["$x", null] }), ok(Bson::Null)),
            (d.clone(), bson!({ "$add": ["$t", dec("2.5")] }), ok(date(1_002))),
            (d.clone(), bson!({ "$add": ["$t", dec("3.5")] }), ok(date(1_004))),
            (d.clone(), bson!({ "$subtract": ["$y", "$x"] }), ok(dec("0.1"))),
            (d.clone(), bson!({ "$subtract": ["$i", "$x"] }), ok(dec("2.9"))),
            (d.clone(), bson!({ "$subtract": ["$t", dec("1000")] }), ok(date(0))),
            (d.clone(), bson!({ "$multiply": ["$x", "$i"] }), ok(dec("0.3"))),
            (d.clone(), bson!({ "$multiply": ["$i", "$f", "$x"] }), ok(dec("0.150000000000000"))),
            (d.clone(), bson!({ "$divide": [1, dec("4")] }), ok(dec("0.25"))),
            (d.clone(), bson!({ "$divide": [dec("1"), 3] }), ok(dec("0.3333333333333333333333333333333333"))),
            (d.clone(), bson!({ "$divide": ["$i", "$z"] }), Err(2)),
            (d.clone(), bson!({ "$mod": [dec("7.5"), 2] }), ok(dec("1.5"))),
            (d.clone(), bson!({ "$mod": [dec("-7"), 3] }), ok(dec("-1"))),
            (d.clone(), bson!({ "$mod": [7, "$z"] }), Err(16610)),
            (d.clone(), bson!({ "$abs": dec("-2.50") }), ok(dec("2.50"))),
            (d, bson!({ "$eq": [{ "$add": ["$x", "$y"] }, dec("0.3")] }), ok(bson!(true))),
        ]);
    }

    #[test]
    fn expr_divide_mod_abs() {
        let d = doc! { "i": 7, "l": Bson::Int64(7), "f": 2.5, "s": "x" };
        table(vec![
            (d.clone(), bson!({ "$divide": ["$i", 2] }), ok(bson!(3.5))),
            (d.clone(), bson!({ "$divide": [6, 3] }), ok(bson!(2.0))),
            (d.clone(), bson!({ "$divide": ["$i", 0] }), Err(2)),
            (d.clone(), bson!({ "$divide": ["$i", 0.0] }), Err(2)),
            (d.clone(), bson!({ "$divide": ["$i", null] }), ok(Bson::Null)),
            (d.clone(), bson!({ "$divide": ["$s", 1] }), Err(14)),
            (d.clone(), bson!({ "$mod": ["$i", 3] }), ok(bson!(1))),
            (d.clone(), bson!({ "$mod": ["$l", 3] }), ok(Bson::Int64(1))),
            (d.clone(), bson!({ "$mod": ["$i", Bson::Int64(3)] }), ok(Bson::Int64(1))),
            (d.clone(), bson!({ "$mod": [-7, 3] }), ok(bson!(-1))),
            (d.clone(), bson!({ "$mod": ["$i", "$f"] }), ok(bson!(2.0))),
            (d.clone(), bson!({ "$mod": ["$i", 2.0] }), ok(bson!(1.0))),
            (d.clone(), bson!({ "$mod": ["$i", 0.0] }), Err(16610)),
            (d.clone(), bson!({ "$mod": ["$f", 2] }), ok(bson!(0.5))),
            (d.clone(), bson!({ "$mod": ["$i", 0] }), Err(16610)),
            (d.clone(), bson!({ "$mod": ["$i", "$missing"] }), ok(Bson::Null)),
            (d.clone(), bson!({ "$mod": ["$i", "$s"] }), Err(16611)),
            (d.clone(), bson!({ "$abs": -3 }), ok(bson!(3))),
            (d.clone(), bson!({ "$abs": [i32::MIN] }), ok(Bson::Int64(-i64::from(i32::MIN)))),
            (d.clone(), bson!({ "$abs": Bson::Int64(i64::MIN) }), Err(28680)),
            (d.clone(), bson!({ "$abs": -2.5 }), ok(bson!(2.5))),
            (d.clone(), bson!({ "$abs": "$missing" }), ok(Bson::Null)),
            (d.clone(), bson!({ "$abs": "$s" }), Err(28765)),
            (d.clone(), bson!({ "$abs": [1, 2] }), Err(16020)),
        ]);
        assert_eq!(err_message(d.clone(), bson!({ "$divide": ["$i", 0] })), "can't $divide by zero");
        assert_eq!(
            err_message(d, bson!({ "$divide": ["$s", 1] })),
            "$divide only supports numeric types, not string and int"
        );
    }

    #[test]
    fn expr_in_size_strings_and_type() {
        let d = doc! { "a": [1, "two", null], "s": "MiXeD", "i": 42 };
        table(vec![
            (d.clone(), bson!({ "$in": [1.0, "$a"] }), ok(bson!(true))),
            (d.clone(), bson!({ "$in": ["two", "$a"] }), ok(bson!(true))),
            (d.clone(), bson!({ "$in": [3, "$a"] }), ok(bson!(false))),
            (d.clone(), bson!({ "$in": [null, "$a"] }), ok(bson!(true))),
            (d.clone(), bson!({ "$in": ["$missing", "$a"] }), ok(bson!(false))),
            (d.clone(), bson!({ "$in": [1, "$s"] }), Err(40081)),
            (d.clone(), bson!({ "$in": [1, "$missing"] }), Err(40081)),
            (d.clone(), bson!({ "$size": "$a" }), ok(bson!(3))),
            (d.clone(), bson!({ "$size": [[]] }), ok(bson!(0))),
            (d.clone(), bson!({ "$size": "$s" }), Err(17124)),
            (d.clone(), bson!({ "$concat": [] }), ok(bson!(""))),
            (d.clone(), bson!({ "$concat": ["$s", "-", "x"] }), ok(bson!("MiXeD-x"))),
            (d.clone(), bson!({ "$concat": ["$s", "$missing"] }), ok(Bson::Null)),
            (d.clone(), bson!({ "$concat": ["$s", "$i"] }), Err(16702)),
            (d.clone(), bson!({ "$toLower": "$s" }), ok(bson!("mixed"))),
            (d.clone(), bson!({ "$toUpper": ["$s"] }), ok(bson!("MIXED"))),
            (d.clone(), bson!({ "$toUpper": "$missing" }), ok(bson!(""))),
            (d.clone(), bson!({ "$toLower": "$i" }), ok(bson!("42"))),
            (d.clone(), bson!({ "$toLower": "$a" }), Err(16007)),
            (d.clone(), bson!({ "$toUpper": "ÉtÉ" }), ok(bson!("ÉTÉ"))),
            (d.clone(), bson!({ "$type": "$missing" }), ok(bson!("missing"))),
            (d.clone(), bson!({ "$type": "$a" }), ok(bson!("array"))),
            (d.clone(), bson!({ "$type": "$i" }), ok(bson!("int"))),
            (d.clone(), bson!({ "$type": [null] }), ok(bson!("null"))),
            (d.clone(), bson!({ "$type": [1, 2] }), Err(16020)),
        ]);
        assert_eq!(
            err_message(d.clone(), bson!({ "$in": [1, "$missing"] })),
            "$in requires an array as a second argument, found: missing"
        );
        assert_eq!(
            err_message(d, bson!({ "$size": "$s" })),
            "The argument to $size must be an array, but was of type: string"
        );
    }

    #[test]
    fn expr_slice() {
        let d = doc! { "a": [1, 2, 3, 4, 5], "s": "x", "n": null };
        table(vec![
            (d.clone(), bson!({ "$slice": ["$a", 2] }), ok(bson!([1, 2]))),
            (d.clone(), bson!({ "$slice": ["$a", -2] }), ok(bson!([4, 5]))),
            (d.clone(), bson!({ "$slice": ["$a", 0] }), ok(bson!([]))),
            (d.clone(), bson!({ "$slice": ["$a", -10] }), ok(bson!([1, 2, 3, 4, 5]))),
            (d.clone(), bson!({ "$slice": ["$a", 1, 2] }), ok(bson!([2, 3]))),
            (d.clone(), bson!({ "$slice": ["$a", -2, 5] }), ok(bson!([4, 5]))),
            (d.clone(), bson!({ "$slice": ["$a", -9, 1] }), ok(bson!([1]))),
            (d.clone(), bson!({ "$slice": ["$a", 9, 1] }), ok(bson!([]))),
            (d.clone(), bson!({ "$slice": ["$a", 2.0] }), ok(bson!([1, 2]))),
            (d.clone(), bson!({ "$slice": ["$n", 1] }), ok(Bson::Null)),
            (d.clone(), bson!({ "$slice": ["$a", "$missing"] }), ok(Bson::Null)),
            (d.clone(), bson!({ "$slice": ["$a", 1, null] }), ok(Bson::Null)),
            (d.clone(), bson!({ "$slice": ["$s", 1] }), Err(28724)),
            (d.clone(), bson!({ "$slice": ["$a", "1"] }), Err(28725)),
            (d.clone(), bson!({ "$slice": ["$a", 1.5] }), Err(28726)),
            (d.clone(), bson!({ "$slice": ["$a", 1, "1"] }), Err(28727)),
            (d.clone(), bson!({ "$slice": ["$a", 1, 1.5] }), Err(28728)),
            (d.clone(), bson!({ "$slice": ["$a", 1, 0] }), Err(28729)),
            (d.clone(), bson!({ "$slice": ["$a"] }), Err(28667)),
            (d.clone(), bson!({ "$slice": ["$a", 1, 2, 3] }), Err(28667)),
        ]);
        assert_eq!(err_message(d, bson!({ "$slice": ["$a", 1, -1] })), "Third argument to $slice must be positive: -1");
    }

    #[test]
    fn expr_rand_meta_and_unbuilt_operators() {
        for spec in [bson!({ "$rand": {} }), bson!({ "$rand": [] })] {
            let Ok(Some(Bson::Double(x))) = eval(doc! {}, spec) else { panic!("$rand gives a double") };
            assert!((0.0..1.0).contains(&x));
        }
        let first = eval(doc! {}, bson!({ "$rand": {} }));
        let second = eval(doc! {}, bson!({ "$rand": {} }));
        assert_ne!(first, second, "two draws differ");
        table(vec![
            (doc! {}, bson!({ "$rand": { "a": 1 } }), Err(3040501)),
            (doc! {}, bson!({ "$rand": [1] }), Err(3040501)),
            (doc! {}, bson!({ "$rand": 1 }), Err(10065)),
            (doc! {}, bson!({ "$meta": "textScore" }), Err(238)),
            (doc! {}, bson!({ "$concatArrays": [[1], [2]] }), Err(238)),
            (doc! {}, bson!({ "$notAnOperator": 1 }), Err(168)),
        ]);
    }

    #[test]
    fn expr_get_field_and_set_field() {
        let d = doc! { "a.b": 1, "$x": 2, "o": { "k": 1, "m": 2 } };
        table(vec![
            (d.clone(), bson!({ "$getField": "a.b" }), ok(bson!(1))),
            (d.clone(), bson!({ "$getField": { "field": { "$literal": "$x" } } }), ok(bson!(2))),
            (d.clone(), bson!({ "$getField": { "field": "k", "input": "$o" } }), ok(bson!(1))),
            (d.clone(), bson!({ "$getField": { "field": "k", "input": "$missing" } }), Ok(None)),
            (d.clone(), bson!({ "$getField": { "field": "k", "input": 5 } }), Err(3041705)),
            (d.clone(), bson!({ "$getField": "$x" }), Err(4161106)),
            (
                d.clone(),
                bson!({ "$setField": { "field": "k", "input": "$o", "value": 9 } }),
                ok(bson!({ "k": 9, "m": 2 })),
            ),
            (
                d.clone(),
                bson!({ "$setField": { "field": { "$literal": "$n" }, "input": "$o", "value": 3 } }),
                ok(bson!({ "k": 1, "m": 2, "$n": 3 })),
            ),
            (
                d.clone(),
                bson!({ "$setField": { "field": "k", "input": "$o", "value": "$$REMOVE" } }),
                ok(bson!({ "m": 2 })),
            ),
            (d.clone(), bson!({ "$setField": { "field": "k", "input": null, "value": 1 } }), ok(Bson::Null)),
            (d.clone(), bson!({ "$setField": { "field": "k", "input": 1, "value": 1 } }), Err(4161105)),
            (d.clone(), bson!({ "$setField": { "field": "k", "value": 1 } }), Err(4161103)),
            (d.clone(), bson!({ "$setField": { "field": "k", "input": {}, "bad": 1 } }), Err(4161101)),
            (d.clone(), bson!({ "$setField": 1 }), Err(4161100)),
        ]);
    }

    #[test]
    fn expr_truthy_follows_coerce_to_bool() {
        for (v, expected) in [
            (None, false),
            (Some(Bson::Null), false),
            (Some(Bson::Undefined), false),
            (Some(bson!(false)), false),
            (Some(bson!(0)), false),
            (Some(Bson::Int64(0)), false),
            (Some(bson!(-0.0)), false),
            (Some(Bson::Decimal128("0E+3".parse().unwrap())), false),
            (Some(Bson::Decimal128("1".parse().unwrap())), true),
            (Some(bson!(f64::NAN)), true),
            (Some(bson!("")), true),
            (Some(bson!([])), true),
            (Some(bson!({})), true),
        ] {
            assert_eq!(truthy(&v), expected, "{v:?}");
        }
    }

    #[test]
    fn expr_field_paths_past_200_components_are_overflow() {
        let path = |n: usize| format!("${}", vec!["a"; n].join("."));
        let err = Expression::parse(RawBsonRef::String(&path(201))).unwrap_err();
        assert_eq!((err.code(), err.message()), (ErrorCode::Overflow, "FieldPath is too long"));
        assert!(Expression::parse(RawBsonRef::String(&path(200))).is_ok());
        assert_eq!(
            Expression::parse(RawBsonRef::String(&format!("$$v.{}", &path(201)[1..]))).unwrap_err().code(),
            ErrorCode::Overflow
        );
    }

    #[test]
    fn expr_concat_is_bounded_like_mongods_string_builder() {
        let doc = doc! { "s": "x".repeat(1 << 20) };
        let concat = |n: usize| bson!({ "$concat": vec![Bson::from("$s"); n] });
        assert_eq!(eval(doc.clone(), concat(65)), Err(13548));
        assert_eq!(
            err_message(doc.clone(), concat(65)),
            "BufBuilder attempted to grow() to 68157440 bytes, past the 64MB limit."
        );
        assert_eq!(eval(doc.clone(), concat(16)), Err(16493));
        assert_eq!(err_message(doc.clone(), concat(16)), "Tried to create string longer than 16MB");
        assert!(matches!(eval(doc.clone(), concat(15)), Ok(Some(Bson::String(s))) if s.len() == 15 << 20));
        // As in mongod, a nullish argument ends it before the later ones are evaluated.
        assert_eq!(eval(doc, bson!({ "$concat": ["a", null, { "$add": ["x"] }] })), Ok(Some(Bson::Null)));
    }

    #[test]
    fn expr_values_copied_out_of_the_document_are_bounded() {
        let doc = doc! { "s": "x".repeat(1 << 20) };
        let copies = |n: usize| Bson::Array(vec![Bson::from("$s"); n]);
        assert_eq!(eval(doc.clone(), copies(101)), Err(146));
        assert!(eval(doc.clone(), copies(90)).is_ok());
        // Every copy of one evaluation counts, wherever it is made: each node is evaluated
        // once, so the count bounds what the evaluation holds without tracking its lifetime.
        assert_eq!(eval(doc.clone(), Bson::Array(vec![copies(60), copies(60)])), Err(146));
        assert_eq!(eval(doc.clone(), bson!({ "$eq": [copies(60), copies(60)] })), Err(146));
        assert_eq!(eval(doc.clone(), bson!({ "$eq": ["$$ROOT", copies(100)] })), Err(146));
        // Small values cost their count: a copy is charged its owned size, not only its bytes.
        let many = doc! { "a": (0..500_000).collect::<Vec<i32>>() };
        assert_eq!(eval(many, Bson::Array(vec![Bson::from("$a"); 3])), Err(146));
    }
}
