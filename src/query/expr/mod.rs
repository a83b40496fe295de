//! Aggregation expressions, the language of `$expr` and of pipeline-style updates: parsed
//! once into an [`Expression`] tree, then evaluated against a document.
//!
//! Supported: literals and `$literal`, field paths (`$a.b`), `$$ROOT`, `$$CURRENT`, `$$REMOVE`,
//! `$$NOW` and user variables (`$$name`), expression objects and arrays, the core operators of
//! `syntax::Operator` (comparison, boolean, conditional, arithmetic, `$concat`, `$type`,
//! `$getField`/`$setField`/`$unsetField`, `$slice`, `$rand`), and the families with their own
//! modules: `array` (with `$let`), `switch`, `date` (with time zones), `string`, `math`,
//! `convert`, `set`, `object`, `sequence` and `misc`. The other operators of mongod 7.0 (and
//! `$meta`) answer 238 NotImplemented; a name mongod does not know answers its 168
//! InvalidPipelineOperator. Arithmetic promotes as mongod does: any decimal128 operand makes the
//! result a decimal (computed exactly, rounded to 34 digits; a double operand converts to 15
//! significant digits, as mongod's `coerceToDecimal`).
//!
//! A missing value (mongod's EOO) is kept apart from null: it is omitted from arrays and
//! objects, and compares equal to undefined and below null, as mongod's `Value::compare` has it.
//!
//! The layers, each importing only those below it: `value` (values while evaluating),
//! `names` (variable name rules), `budget` (the memory an evaluation may copy), `ops` (the
//! families' operator names), `arithmetic` (the arithmetic operators on values), `syntax` (the
//! parsed tree and the variables in scope), `args` (argument lists and named arguments), the
//! operator families, `parse` (BSON into the tree), `eval` (the tree against a document).

mod accumulate;
mod args;
mod arithmetic;
mod array;
mod bindings;
mod budget;
mod convert;
pub(crate) mod date;
mod eval;
#[cfg(test)]
mod family_tests;
mod math;
mod misc;
mod names;
mod object;
mod ops;
mod parse;
mod sequence;
mod set;
mod string;
mod switch;
mod syntax;
#[cfg(test)]
mod tests;
mod value;

pub(crate) use accumulate::{parse_n_spec, parse_percentile_spec, percentile_input, validate_n};
pub use bindings::LetBindings;
pub use budget::{Budget, MAX_COPIED_BYTES};
pub use parse::is_expression_name;
pub use syntax::{Expression, Operator, Variable, Variables};
pub use value::truthy;
