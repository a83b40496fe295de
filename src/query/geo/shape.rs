//! Geometries as documents hold them and queries name them: GeoJSON objects (`Point`,
//! `LineString`, `Polygon` with holes, the `Multi` forms, `GeometryCollection`) and legacy
//! coordinate pairs (`[x, y]` or `{x: .., y: ..}`), checked as mongod's `GeoParser` checks
//! them (closed rings of four or more points, no crossing edges, coordinates in range).

use bson::{RawArray, RawBsonRef, RawDocument};
use geo::{Coord, Geometry, GeometryCollection, LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon};

use crate::query::number::Number;

/// A geometry of a document or a query, in degrees (x is the longitude).
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// A legacy coordinate pair: flat coordinates, any range (2d indexes bound them).
    Legacy(Point<f64>),
    /// A GeoJSON object, longitudes and latitudes checked.
    GeoJson(Geometry<f64>),
}

impl Shape {
    /// The geometry.
    pub fn geometry(&self) -> Geometry<f64> {
        match self {
            Self::Legacy(point) => Geometry::Point(*point),
            Self::GeoJson(geometry) => geometry.clone(),
        }
    }

    /// The point, if this is one.
    pub fn point(&self) -> Option<Point<f64>> {
        match self {
            Self::Legacy(point) | Self::GeoJson(Geometry::Point(point)) => Some(*point),
            Self::GeoJson(_) => None,
        }
    }
}

/// A coordinate pair's two numbers: an array's first two elements or a document's first two
/// fields, mongod's legacy point.
pub fn legacy_pair(value: RawBsonRef<'_>) -> Option<(f64, f64)> {
    let mut numbers: Vec<f64> = match value {
        RawBsonRef::Array(items) => items
            .into_iter()
            .take(3)
            .flatten()
            .map(|v| Number::from_raw(v).map(Number::to_f64))
            .collect::<Option<_>>()?,
        RawBsonRef::Document(doc) => {
            doc.iter().take(3).flatten().map(|(_, v)| Number::from_raw(v).map(Number::to_f64)).collect::<Option<_>>()?
        }
        _ => return None,
    };
    if numbers.len() != 2 {
        return None;
    }
    let y = numbers.pop()?;
    Some((numbers.pop()?, y))
}

/// Whether a document is a GeoJSON object (a `type` mongod knows).
pub fn is_geojson(doc: &RawDocument) -> bool {
    matches!(
        doc.get("type"),
        Ok(Some(RawBsonRef::String(
            "Point"
                | "LineString"
                | "Polygon"
                | "MultiPoint"
                | "MultiLineString"
                | "MultiPolygon"
                | "GeometryCollection"
        )))
    )
}

/// The shape a stored value holds: GeoJSON, or a legacy pair; `None` for anything else,
/// `Some(Err(why))` for a malformed GeoJSON object.
pub fn shape_of(value: RawBsonRef<'_>) -> Option<Result<Shape, String>> {
    match value {
        RawBsonRef::Document(doc) if is_geojson(doc) => Some(parse_geojson(doc).map(Shape::GeoJson)),
        other => legacy_pair(other).map(|(x, y)| Ok(Shape::Legacy(Point::new(x, y)))),
    }
}

/// A GeoJSON object, checked.
///
/// # Errors
/// Why it is malformed, in mongod's words where it has them.
pub fn parse_geojson(doc: &RawDocument) -> Result<Geometry<f64>, String> {
    if let Ok(Some(crs)) = doc.get("crs") {
        check_crs(crs)?;
    }
    let kind = match doc.get("type") {
        Ok(Some(RawBsonRef::String(kind))) => kind,
        _ => return Err("unknown GeoJSON type".into()),
    };
    if kind == "GeometryCollection" {
        let Ok(Some(RawBsonRef::Array(items))) = doc.get("geometries") else {
            return Err("GeometryCollection geometries must be an array".into());
        };
        let mut geometries = Vec::new();
        for item in items.into_iter().flatten() {
            let RawBsonRef::Document(inner) = item else {
                return Err("Element 0 of \"geometries\" is not an object".into());
            };
            geometries.push(parse_geojson(inner)?);
        }
        return Ok(Geometry::GeometryCollection(GeometryCollection::new_from(geometries)));
    }
    let coordinates = match doc.get("coordinates") {
        Ok(Some(RawBsonRef::Array(coordinates))) => coordinates,
        _ => return Err(format!("{kind} coordinates must be an array")),
    };
    Ok(match kind {
        "Point" => Geometry::Point(point(coordinates)?),
        "LineString" => Geometry::LineString(line(coordinates)?),
        "Polygon" => Geometry::Polygon(polygon(coordinates)?),
        "MultiPoint" => Geometry::MultiPoint(MultiPoint::new(each(coordinates, point)?)),
        "MultiLineString" => Geometry::MultiLineString(MultiLineString::new(each(coordinates, line)?)),
        "MultiPolygon" => Geometry::MultiPolygon(MultiPolygon::new(each(coordinates, polygon)?)),
        other => return Err(format!("unknown GeoJSON type: {other}")),
    })
}

/// Only the default coordinate reference system is built: mongod's "big polygon" CRS
/// (`urn:x-mongodb:crs:strictwinding:EPSG:4326`) is refused.
fn check_crs(crs: RawBsonRef<'_>) -> Result<(), String> {
    let name = match crs {
        RawBsonRef::Document(crs) => crs.get_document("properties").ok().and_then(|p| p.get_str("name").ok()),
        _ => None,
    };
    match name {
        Some("EPSG:4326" | "urn:ogc:def:crs:OGC:1.3:CRS84") => Ok(()),
        Some(other) => Err(format!("Unknown CRS name: {other}")),
        None => Err("GeoJSON CRS must be an object with a name".into()),
    }
}

fn each<T>(items: &RawArray, parse: fn(&RawArray) -> Result<T, String>) -> Result<Vec<T>, String> {
    items
        .into_iter()
        .map(|item| match item {
            Ok(RawBsonRef::Array(inner)) => parse(inner),
            _ => Err("GeoJSON coordinates must be arrays".into()),
        })
        .collect()
}

/// `[longitude, latitude]`, in range.
fn point(coordinates: &RawArray) -> Result<Point<f64>, String> {
    let numbers: Vec<f64> = coordinates
        .into_iter()
        .map(|v| v.ok().and_then(Number::from_raw).map(Number::to_f64))
        .collect::<Option<_>>()
        .ok_or("Point must only contain numeric elements")?;
    let [x, y] = numbers.as_slice() else {
        return Err("Point must only contain two numeric elements".into());
    };
    if !(-180.0..=180.0).contains(x) || !(-90.0..=90.0).contains(y) {
        return Err(format!("longitude/latitude is out of bounds, lng: {x} lat: {y}"));
    }
    Ok(Point::new(*x, *y))
}

fn coords(coordinates: &RawArray) -> Result<Vec<Coord<f64>>, String> {
    each(coordinates, point).map(|points| points.into_iter().map(Coord::from).collect())
}

fn line(coordinates: &RawArray) -> Result<LineString<f64>, String> {
    let coords = coords(coordinates)?;
    if coords.len() < 2 {
        return Err("GeoJSON LineString must have at least 2 vertices".into());
    }
    Ok(LineString::new(coords))
}

/// A polygon: a shell and holes, each closed with four or more points, valid as a whole
/// (no crossing edges, holes inside the shell).
fn polygon(coordinates: &RawArray) -> Result<Polygon<f64>, String> {
    let mut rings = Vec::new();
    for ring in coordinates {
        let Ok(RawBsonRef::Array(ring)) = ring else { return Err("Polygon coordinates must be an array".into()) };
        let coords = coords(ring)?;
        if coords.len() < 4 {
            return Err("Loop must have at least 3 different vertices".into());
        }
        if coords.first() != coords.last() {
            return Err("Loop is not closed, first vertex does not equal last vertex".into());
        }
        rings.push(LineString::new(coords));
    }
    if rings.is_empty() {
        return Err("Polygon has no loops.".into());
    }
    let shell = rings.remove(0);
    let polygon = Polygon::new(shell, rings);
    use geo::Validation;
    if let Err(problem) = polygon.check_validation() {
        return Err(format!("Loop is not valid: {problem}"));
    }
    Ok(polygon)
}

#[cfg(test)]
mod tests {
    use bson::rawdoc;

    use super::*;

    #[test]
    fn reads_geojson_and_legacy_points() {
        assert_eq!(
            shape_of(RawBsonRef::Document(&rawdoc! { "type": "Point", "coordinates": [1.5, 2] })),
            Some(Ok(Shape::GeoJson(Geometry::Point(Point::new(1.5, 2.0)))))
        );
        let pair = bson::rawdoc! { "p": [3, 4] };
        assert_eq!(shape_of(pair.get("p").unwrap().unwrap()), Some(Ok(Shape::Legacy(Point::new(3.0, 4.0)))));
        let sub = rawdoc! { "lng": 3, "lat": 4 };
        assert_eq!(shape_of(RawBsonRef::Document(&sub)), Some(Ok(Shape::Legacy(Point::new(3.0, 4.0)))));
        assert_eq!(shape_of(RawBsonRef::String("x")), None);
    }

    #[test]
    fn refuses_malformed_geojson() {
        let err = |doc: bson::RawDocumentBuf| parse_geojson(&doc).unwrap_err();
        assert!(err(rawdoc! { "type": "Point", "coordinates": [200, 0] }).contains("out of bounds"));
        assert!(
            err(rawdoc! { "type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]] })
                .contains("not closed")
        );
        assert!(err(rawdoc! { "type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]] }).contains("3 different"));
        // A bow tie crosses itself.
        let bow_tie = rawdoc! { "type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]] };
        assert!(err(bow_tie).contains("not valid"));
        assert!(err(rawdoc! { "type": "LineString", "coordinates": [[0, 0]] }).contains("at least 2"));
        let ok = rawdoc! { "type": "Polygon", "coordinates": [[[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]], [[1, 1], [2, 1], [2, 2], [1, 1]]] };
        assert!(parse_geojson(&ok).is_ok());
    }
}
