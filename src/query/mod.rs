//! The query language, pure and synchronous: documents in, documents and errors out. No I/O,
//! no runtime, no storage; every part is unit-testable on its own.
//!
//! From the bottom up: each module imports only modules listed before it, so no two import
//! each other, directly or in a loop.
//! - `elements`: the fields and items of raw BSON; [`error`]: [`QueryError`], the one error
//!   type of the layer;
//! - `exact`: exact numbers (decimal128 and double fields, big integers), shared with the
//!   index key encoding; `decimal`: decimal128 arithmetic; `number`: numbers compared by exact
//!   value, and mongod's numeric promotion;
//! - `render`: values printed as mongod prints them; [`limits`]: mongod's nesting and size
//!   limits, and the depth-safe walks that enforce them;
//! - [`path`]: dotted paths and what they reach, with implicit array traversal;
//! - [`collation`]: collation specs and the string order they stand for;
//! - [`order`]: MongoDB's BSON comparison order (brackets, exact numeric comparison);
//! - [`expr`]: aggregation expressions (`$expr`, pipeline updates, computed projections);
//! - [`filter`]'s leaf predicates, then [`json_schema`] (`$jsonSchema`, built on them), then
//!   the rest of [`filter`]: query filters, compiled once and matched against many documents;
//! - [`projection`]: `find` projections (inclusion, exclusion, `$slice`, `$elemMatch`, `a.$`),
//!   and `pipeline`: the document stages of pipeline updates and `aggregate`;
//! - [`index_key`]: index key patterns and the keys a document gives an index; [`bounds`]:
//!   the index bounds a filter allows; [`sort`]: sort specifications and mongod's multi-key
//!   sort order;
//! - [`update`]: update documents (replacement, operators or a pipeline) applied to a document;
//! - [`validation_error`]: why a document fails a validator; [`validator`]: collection
//!   validators.

pub mod agg;
pub mod bounds;
pub mod collation;
mod decimal;
pub(crate) mod elements;
pub mod error;
pub(crate) mod exact;
pub mod expr;
pub mod filter;
pub mod geo;
pub mod hashed;
pub mod index_key;
pub mod json_schema;
pub mod limits;
pub(crate) mod number;
pub mod order;
pub mod path;
mod pipeline;
pub mod projection;
pub(crate) mod random;
pub(crate) mod render;
pub mod sort;
pub(crate) mod summation;
pub mod text;
pub mod timeseries;
pub mod update;
pub mod validation_error;
pub mod validator;
pub mod wildcard;

pub use collation::Collation;
pub(crate) use decimal::to_i64 as decimal_to_i64;
pub use error::QueryError;
pub use filter::Filter;
pub use order::{canonical_type, compare_collated, compare_documents, compare_values};
pub use path::FieldPath;
pub(crate) use pipeline::{DocumentStage, UpdatePipeline};
pub use projection::Projection;
pub use render::type_name;
pub use sort::SortSpec;
pub use update::{Update, replace};
pub use validator::{ValidationAction, ValidationLevel, Validator};
