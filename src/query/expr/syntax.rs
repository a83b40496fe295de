//! What a parsed expression is: the [`Expression`] tree, its operators and variables, and the
//! [`Variables`] in scope when it is evaluated.

use std::sync::Arc;

use bson::{Bson, RawBson};

use super::date::op::DateOp;
use super::ops::{AccumulateOp, ConvertOp, MathOp, MiscOp, ObjectOp, SequenceOp, SetOp, StringOp};
use crate::query::collation::Collation;
use crate::query::error::QueryError;
use crate::query::text::TextScores;

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
    /// `$$NOW`: the time the evaluation's variables were made, the same for every document
    /// of a command.
    Now,
    /// A user variable bound by `let`.
    User(String),
    /// `{$meta: "textScore"}`: the document's `$text` score (not a variable users name, but
    /// read from the evaluation's context as variables are).
    TextScore,
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
    /// `$arrayElemAt`: `[array, index]`.
    ArrayElemAt,
    /// `$first` of an array.
    First,
    /// `$last` of an array.
    Last,
    /// `$concatArrays`.
    ConcatArrays,
    /// `$isArray`.
    IsArray,
    /// `$filter`: `[input, as (a name literal), cond, limit?]`.
    Filter,
    /// `$map`: `[input, as (a name literal), in]`.
    Map,
    /// `$reduce`: `[input, initialValue, in]`, binding `value` and `this`.
    Reduce,
    /// `$let`: `[in, name, value, name, value, ...]`, names as literals.
    Let,
    /// `$switch`: `[case, then, ..., default?]`.
    Switch,
    /// A date expression (`$year`, `$dateToString`, ...), its arguments in the slots
    /// [`DateOp`] describes.
    Date(DateOp),
    /// A string operator (`$split`, `$trim`, `$regexFind`, ...).
    Str(StringOp),
    /// A numeric operator (`$round`, `$pow`, `$sin`, `$bitAnd`, ...).
    Math(MathOp),
    /// A type conversion (`$convert`, `$toInt`, ...).
    Convert(ConvertOp),
    /// A set operator (`$setUnion`, ...).
    Set(SetOp),
    /// An object operator (`$objectToArray`, `$arrayToObject`, `$mergeObjects`).
    Object(ObjectOp),
    /// An array builder or search (`$zip`, `$range`, `$sortArray`, ...).
    Sequence(SequenceOp),
    /// `$bsonSize`, `$binarySize`, `$tsSecond`, `$tsIncrement`.
    Misc(MiscOp),
    /// An accumulator used as an expression (`$sum`, `$maxN`, `$median`, ...).
    Accumulate(AccumulateOp),
}

impl Operator {
    pub(super) fn from_name(name: &str) -> Option<Self> {
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
            "$arrayElemAt" => Self::ArrayElemAt,
            "$first" => Self::First,
            "$last" => Self::Last,
            "$concatArrays" => Self::ConcatArrays,
            "$isArray" => Self::IsArray,
            "$filter" => Self::Filter,
            "$map" => Self::Map,
            "$reduce" => Self::Reduce,
            "$let" => Self::Let,
            "$switch" => Self::Switch,
            _ => return None,
        })
    }

    /// The exact number of arguments, for the operators that have one.
    pub(super) fn arity(self) -> Option<usize> {
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
            | Self::In
            | Self::ArrayElemAt => Some(2),
            Self::Not
            | Self::Abs
            | Self::Size
            | Self::ToLower
            | Self::ToUpper
            | Self::Type
            | Self::First
            | Self::Last
            | Self::IsArray => Some(1),
            Self::Cond | Self::SetField => Some(3),
            Self::GetField => Some(2),
            Self::Rand => Some(0),
            Self::Date(_)
            | Self::Str(_)
            | Self::Math(_)
            | Self::Convert(_)
            | Self::Set(_)
            | Self::Object(_)
            | Self::Sequence(_)
            | Self::Misc(_)
            | Self::Accumulate(_) => None,
            Self::Slice
            | Self::And
            | Self::Or
            | Self::IfNull
            | Self::Add
            | Self::Multiply
            | Self::Concat
            | Self::ConcatArrays
            | Self::Filter
            | Self::Map
            | Self::Reduce
            | Self::Let
            | Self::Switch => None,
        }
    }
}

/// The user variables in scope (`let`); `ROOT` and `CURRENT` come from the document itself.
/// A variable bound to a missing value is kept: it evaluates to missing.
#[derive(Debug, Clone, PartialEq)]
pub struct Variables {
    pub(super) bound: Vec<(String, Option<RawBson>)>,
    /// What `$$NOW` reads: taken once, when the command makes its variables.
    pub(super) now: bson::DateTime,
    /// What `$$ROOT` reads when it is not the evaluated document (`$redact` evaluates each
    /// embedded level as `$$CURRENT` while `$$ROOT` stays the whole document).
    pub(super) root: Option<Arc<bson::RawDocumentBuf>>,
    /// The collation comparison expressions (`$eq`, `$lt`, `$cmp`, ...) compare strings
    /// under; `None` is the simple collation. It travels with the variables because both
    /// are the evaluation's context.
    pub(super) collation: Option<Arc<Collation>>,
    /// The scores `{$meta: "textScore"}` reads: the `$text` search's (`None` without one).
    pub(super) text_scores: Option<Arc<TextScores>>,
}

impl Default for Variables {
    fn default() -> Self {
        Self { bound: Vec::new(), now: bson::DateTime::now(), root: None, collation: None, text_scores: None }
    }
}

impl Variables {
    /// No user variables; `$$NOW` is the current time.
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

    /// Makes `$$ROOT` read `root` instead of the document being evaluated (`None`: that
    /// document again).
    pub fn set_root(&mut self, root: Option<Arc<bson::RawDocumentBuf>>) {
        self.root = root;
    }

    /// Makes comparison expressions compare strings under `collation`.
    pub fn set_collation(&mut self, collation: Option<Arc<Collation>>) {
        self.collation = collation;
    }

    /// The collation of comparison expressions, `None` for the simple one.
    pub fn collation(&self) -> Option<&Arc<Collation>> {
        self.collation.as_ref()
    }

    /// Makes `{$meta: "textScore"}` read `scores` (a `$text` search's).
    pub fn set_text_scores(&mut self, scores: Option<Arc<TextScores>>) {
        self.text_scores = scores;
    }

    /// The `$text` scores `{$meta: "textScore"}` reads, if the query searches text.
    pub fn text_scores(&self) -> Option<&Arc<TextScores>> {
        self.text_scores.as_ref()
    }

    /// Binds `name` to `value`, which may be missing (then `$$name` is missing too).
    ///
    /// # Errors
    /// 22 InvalidBSON when `value` cannot be encoded.
    pub fn bind_value(&mut self, name: &str, value: Option<Bson>) -> Result<(), QueryError> {
        let raw = value.map(RawBson::try_from).transpose().map_err(QueryError::invalid_bson)?;
        self.bound.push((name.to_owned(), raw));
        Ok(())
    }

    pub(super) fn get(&self, name: &str) -> Option<&Option<RawBson>> {
        self.bound.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}
