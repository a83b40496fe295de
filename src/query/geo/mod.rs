//! Geospatial queries and indexes: shapes as documents hold them ([`shape`]), the
//! `$geoWithin`/`$geoIntersects` conditions and distances ([`region`]), nearness searches
//! ([`near`]), and the S2 cells 2dsphere index keys are made of ([`cells`]).

pub mod cells;
pub mod near;
pub mod region;
pub mod shape;

pub use near::{Near, Unit};
pub use region::{Area, EARTH_RADIUS_METERS, GeoPredicate};
pub use shape::{Shape, shape_of};
