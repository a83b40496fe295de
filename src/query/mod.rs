//! The query language, pure and synchronous: documents in, documents and errors out. No I/O,
//! no runtime, no storage; every part is unit-testable on its own.
//!
//! - [`order`]: MongoDB's BSON comparison order (brackets, exact numeric comparison);
//! - [`collation`]: collation specs and the string order they stand for;
//! - [`path`]: dotted paths and what they reach, with implicit array traversal;
//! - [`expr`]: aggregation expressions (`$expr`, later pipeline updates);
//! - [`filter`]: query filters, compiled once and matched against many documents;
//! - [`json_schema`]: `$jsonSchema`, compiled once into a matcher used by [`filter`];
//! - [`limits`]: mongod's nesting and size limits, and the depth-safe walks that enforce them;
//! - [`projection`]: `find` projections (inclusion, exclusion, `$slice`, `$elemMatch`, `a.$`);
//! - [`bounds`]: the index bounds a filter allows;
//! - [`index_key`]: index key patterns and the keys a document gives an index;
//! - [`sort`]: sort specifications and mongod's multi-key sort order;
//! - [`update`]: update documents (replacement or operators) applied to a document;
//! - [`validator`]: collection validators, and [`validation_error`] for why a document fails;
//! - [`error`]: [`QueryError`], the one error type of the layer.

pub mod bounds;
pub mod collation;
mod decimal;
mod elements;
pub mod error;
pub(crate) mod exact;
pub mod expr;
pub mod filter;
pub mod index_key;
pub mod json_schema;
pub mod limits;
mod number;
pub mod order;
pub mod path;
mod pipeline;
pub mod projection;
mod render;
pub mod sort;
pub mod update;
pub mod validation_error;
pub mod validator;

pub use collation::Collation;
pub(crate) use decimal::to_i64 as decimal_to_i64;
pub use error::QueryError;
pub use filter::Filter;
pub use order::{canonical_type, compare_collated, compare_documents, compare_values};
pub use path::FieldPath;
pub(crate) use pipeline::DocumentStage;
pub use projection::Projection;
pub use render::type_name;
pub use sort::SortSpec;
pub use update::{Update, replace};
pub use validator::{ValidationAction, ValidationLevel, Validator};
