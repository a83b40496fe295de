//! Exact numbers: what the numeric comparison ([`crate::query::number`]), decimal128
//! arithmetic ([`crate::query::decimal`]) and the order-preserving index key encoding
//! (`storage::keys`) share, so that each reads BSON's number encodings the same way.
//!
//! - [`decimal128`]: a decimal128's IEEE 754-2008 BID fields, decoded and encoded;
//! - [`double`]: a double's exact binary value;
//! - [`biguint`]: the big-integer arithmetic that places decimals and doubles on one scale.
//!
//! This is the bottom of the numeric layers: it imports nothing else from the query layer.

pub(crate) mod biguint;
pub(crate) mod decimal128;
pub(crate) mod double;

pub(crate) use biguint::BigUint;
pub(crate) use decimal128::{Decimal, decode_decimal};
pub(crate) use double::binary_parts;
