//! `$near` and `$nearSphere` (and the `$geoNear` stage's `near`): the point, whether distances
//! are spherical, their unit, and the distance limits.

use bson::{RawBsonRef, RawDocument};
use geo::Point;

use super::region::{EARTH_RADIUS_METERS, flat_distance_to, meters_to};
use super::shape::{Shape, is_geojson, legacy_pair, parse_geojson};
use crate::query::QueryError;
use crate::query::number::Number;

/// The unit distances are measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Metres on the sphere: a GeoJSON point.
    Meters,
    /// Radians of arc on the sphere: a legacy point with `$nearSphere` (or `spherical`).
    Radians,
    /// Coordinate units on the plane: a legacy point with `$near` (2d indexes).
    Flat,
}

/// A nearness search.
#[derive(Debug, Clone, PartialEq)]
pub struct Near {
    /// The point distances are measured from.
    pub point: Point<f64>,
    /// The distances' unit.
    pub unit: Unit,
    /// `$minDistance`.
    pub min: Option<f64>,
    /// `$maxDistance`.
    pub max: Option<f64>,
}

fn bad(message: impl Into<String>) -> QueryError {
    QueryError::bad_value(message)
}

fn distance_arg(value: RawBsonRef<'_>, name: &str) -> Result<f64, QueryError> {
    match Number::from_raw(value).map(Number::to_f64) {
        Some(n) if n >= 0.0 => Ok(n),
        Some(_) => Err(bad(format!("{name} must be non-negative"))),
        None => Err(bad(format!("{name} must be a number"))),
    }
}

impl Near {
    /// A field's operator document holding `$near` or `$nearSphere`, with `$maxDistance` and
    /// `$minDistance` beside it or (for a GeoJSON point) inside it.
    ///
    /// # Errors
    /// 2 BadValue for a malformed point or distance, or another operator beside them.
    pub fn parse(ops: &RawDocument) -> Result<Self, QueryError> {
        let mut near = None;
        let (mut min, mut max) = (None, None);
        for (op, value) in ops.iter().flatten() {
            match op.as_str() {
                name @ ("$near" | "$nearSphere") => near = Some((name == "$nearSphere", value)),
                "$maxDistance" => max = Some(distance_arg(value, "$maxDistance")?),
                "$minDistance" => min = Some(distance_arg(value, "$minDistance")?),
                other => return Err(bad(format!("unknown operator with $near: {other}"))),
            }
        }
        let Some((sphere, value)) = near else { return Err(bad("$maxDistance needs $near")) };
        let mut parsed = Self::point(value, sphere)?;
        if let RawBsonRef::Document(doc) = value
            && doc.get("$geometry").ok().flatten().is_some()
        {
            for (field, inner) in doc.iter().flatten() {
                match field.as_str() {
                    "$geometry" => {}
                    "$maxDistance" => max = Some(distance_arg(inner, "$maxDistance")?),
                    "$minDistance" => min = Some(distance_arg(inner, "$minDistance")?),
                    other => return Err(bad(format!("invalid argument in geo near query: {other}"))),
                }
            }
        }
        parsed.min = min;
        parsed.max = max;
        Ok(parsed)
    }

    /// The point of `$near`/`$nearSphere` (or of `$geoNear`'s `near`): `{$geometry: Point}`,
    /// a bare GeoJSON point, or a legacy pair; `sphere` makes a legacy pair spherical.
    ///
    /// # Errors
    /// 2 BadValue for anything else.
    pub fn point(value: RawBsonRef<'_>, sphere: bool) -> Result<Self, QueryError> {
        let geometry = match value {
            RawBsonRef::Document(doc) => match doc.get("$geometry").ok().flatten() {
                Some(RawBsonRef::Document(geometry)) => Some(geometry),
                Some(_) => return Err(bad("$geometry must be a GeoJSON Point")),
                None if is_geojson(doc) => Some(doc),
                None => None,
            },
            _ => None,
        };
        if let Some(geometry) = geometry {
            return match parse_geojson(geometry).map_err(bad)? {
                geo::Geometry::Point(point) => Ok(Self { point, unit: Unit::Meters, min: None, max: None }),
                _ => Err(bad("near must be a GeoJSON Point")),
            };
        }
        let (x, y) = legacy_pair(value).ok_or_else(|| bad("near must be a point"))?;
        let unit = if sphere { Unit::Radians } else { Unit::Flat };
        Ok(Self { point: Point::new(x, y), unit, min: None, max: None })
    }

    /// Whether distances are on the sphere.
    pub fn is_spherical(&self) -> bool {
        self.unit != Unit::Flat
    }

    /// The distance from the point to `shape`, in this search's unit.
    pub fn distance_to(&self, shape: &Shape) -> f64 {
        match self.unit {
            Unit::Meters => meters_to(self.point, shape),
            Unit::Radians => meters_to(self.point, shape) / EARTH_RADIUS_METERS,
            Unit::Flat => flat_distance_to(self.point, shape),
        }
    }

    /// A distance in this search's unit as radians of arc (spherical units only).
    pub fn to_radians(&self, distance: f64) -> f64 {
        match self.unit {
            Unit::Meters => distance / EARTH_RADIUS_METERS,
            Unit::Radians | Unit::Flat => distance,
        }
    }

    /// Whether a distance is within `$minDistance` and `$maxDistance`.
    pub fn admits(&self, distance: f64) -> bool {
        self.min.is_none_or(|min| distance >= min) && self.max.is_none_or(|max| distance <= max)
    }
}

#[cfg(test)]
mod tests {
    use bson::rawdoc;

    use super::*;

    #[test]
    fn parses_geojson_and_legacy_forms() {
        let near = Near::parse(
            &rawdoc! { "$near": { "$geometry": { "type": "Point", "coordinates": [1, 2] }, "$maxDistance": 500 } },
        )
        .unwrap();
        assert_eq!((near.point, near.unit, near.max), (Point::new(1.0, 2.0), Unit::Meters, Some(500.0)));
        let legacy = Near::parse(&rawdoc! { "$nearSphere": [1, 2], "$maxDistance": 0.1 }).unwrap();
        assert_eq!((legacy.unit, legacy.max), (Unit::Radians, Some(0.1)));
        assert_eq!(Near::parse(&rawdoc! { "$near": [0, 0] }).unwrap().unit, Unit::Flat);
        assert!(Near::parse(&rawdoc! { "$near": [0, 0], "$maxDistance": -1 }).is_err());
        assert!(Near::parse(&rawdoc! { "$near": "x" }).is_err());
    }
}
