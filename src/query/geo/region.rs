//! `$geoWithin` and `$geoIntersects`: the query's region or geometry, and whether a stored
//! value lies within or meets it. GeoJSON regions are compared on longitude/latitude as a
//! plane (mongod compares on the sphere: the same for regions of a city's size, apart for
//! edges hundreds of kilometres long); `$centerSphere` and distances are spherical.

use bson::{RawBsonRef, RawDocument};
use geo::{
    Closest, Coord, CoordsIter, Distance, Geometry, HaversineClosestPoint, HaversineMeasure, Intersects, LineString,
    Point, Polygon, Rect, Relate,
};

use super::shape::{Shape, is_geojson, legacy_pair, parse_geojson, shape_of};
use crate::query::QueryError;
use crate::query::number::Number;

/// mongod's radius of the Earth (`kRadiusOfEarthInMeters`).
pub const EARTH_RADIUS_METERS: f64 = 6_378_100.0;

/// Great-circle distance in metres between two points (degrees), on mongod's Earth.
pub fn meters_between(a: Point<f64>, b: Point<f64>) -> f64 {
    HaversineMeasure::new(EARTH_RADIUS_METERS).distance(a, b)
}

/// A region of `$geoWithin`.
#[derive(Debug, Clone)]
pub enum Region {
    /// `$geometry`: a GeoJSON `Polygon` or `MultiPolygon`.
    Geometry(Geometry<f64>),
    /// `$centerSphere: [[x, y], radians]`.
    CenterSphere {
        /// The centre.
        center: Point<f64>,
        /// The radius, in radians of arc.
        radians: f64,
    },
    /// `$box: [[x1, y1], [x2, y2]]` (flat).
    Box(Rect<f64>),
    /// `$center: [[x, y], r]` (flat).
    Center {
        /// The centre.
        center: Point<f64>,
        /// The radius, in coordinate units.
        radius: f64,
    },
    /// `$polygon: [[x, y], ...]` (flat).
    Polygon(Polygon<f64>),
}

/// A `$geoWithin` or `$geoIntersects` condition.
#[derive(Debug, Clone)]
pub enum GeoPredicate {
    /// `$geoWithin` (or the old `$within`).
    Within(Region),
    /// `$geoIntersects`.
    Intersects(Geometry<f64>),
}

fn bad(message: impl Into<String>) -> QueryError {
    QueryError::bad_value(message)
}

fn pair(value: Option<RawBsonRef<'_>>, what: &str) -> Result<Point<f64>, QueryError> {
    value.and_then(legacy_pair).map(|(x, y)| Point::new(x, y)).ok_or_else(|| bad(format!("{what} must be a point")))
}

fn number(value: Option<RawBsonRef<'_>>, what: &str) -> Result<f64, QueryError> {
    value
        .and_then(Number::from_raw)
        .map(Number::to_f64)
        .filter(|n| *n >= 0.0)
        .ok_or_else(|| bad(format!("{what} must be a non-negative number")))
}

impl GeoPredicate {
    /// `$geoWithin`'s argument: one of `$geometry`, `$centerSphere`, `$box`, `$center`,
    /// `$polygon`.
    ///
    /// # Errors
    /// 2 BadValue for anything else or a malformed shape.
    pub fn parse_within(arg: RawBsonRef<'_>) -> Result<Self, QueryError> {
        let RawBsonRef::Document(arg) = arg else { return Err(bad("$geoWithin requires an object")) };
        let mut fields = arg.iter().flatten();
        let Some((name, value)) = fields.next() else { return Err(bad("$geoWithin requires a shape")) };
        let shape_name = name.as_str();
        fn items<'a>(value: RawBsonRef<'a>, name: &str) -> Result<Vec<RawBsonRef<'a>>, QueryError> {
            match value {
                RawBsonRef::Array(items) => Ok(items.into_iter().flatten().collect()),
                _ => Err(bad(format!("{name} must be an array"))),
            }
        }
        let region = match shape_name {
            "$geometry" => {
                let geometry = geojson(value)?;
                if !matches!(geometry, Geometry::Polygon(_) | Geometry::MultiPolygon(_)) {
                    return Err(bad("$geoWithin not supported with provided geometry: only Polygon and MultiPolygon"));
                }
                Region::Geometry(geometry)
            }
            "$centerSphere" => {
                let items = items(value, shape_name)?;
                let center = pair(items.first().copied(), "$centerSphere center")?;
                let radians = number(items.get(1).copied(), "$centerSphere radius")?;
                Region::CenterSphere { center, radians }
            }
            "$center" => {
                let items = items(value, shape_name)?;
                Region::Center {
                    center: pair(items.first().copied(), "$center center")?,
                    radius: number(items.get(1).copied(), "$center radius")?,
                }
            }
            "$box" => {
                let items = items(value, shape_name)?;
                let (a, b) =
                    (pair(items.first().copied(), "$box corner")?, pair(items.get(1).copied(), "$box corner")?);
                Region::Box(Rect::new(a.0, b.0))
            }
            "$polygon" => {
                let points: Vec<Coord<f64>> = items(value, shape_name)?
                    .into_iter()
                    .map(|p| pair(Some(p), "$polygon vertex").map(|p| p.0))
                    .collect::<Result<_, _>>()?;
                if points.len() < 3 {
                    return Err(bad("Polygon must have at least 3 points"));
                }
                Region::Polygon(Polygon::new(LineString::new(points), Vec::new()))
            }
            other => return Err(bad(format!("unknown geo specifier: {other}"))),
        };
        Ok(Self::Within(region))
    }

    /// `$geoIntersects`' argument: `{$geometry: <GeoJSON>}`.
    ///
    /// # Errors
    /// 2 BadValue for anything else.
    pub fn parse_intersects(arg: RawBsonRef<'_>) -> Result<Self, QueryError> {
        let geometry = match arg {
            RawBsonRef::Document(arg) => arg.get("$geometry").ok().flatten(),
            _ => None,
        };
        let Some(geometry) = geometry else {
            return Err(bad("$geoIntersects requires a $geometry"));
        };
        Ok(Self::Intersects(geojson(geometry)?))
    }

    /// Whether a stored value (a GeoJSON object or a legacy pair) satisfies the condition;
    /// other values never do.
    pub fn matches(&self, value: RawBsonRef<'_>) -> bool {
        let Some(Ok(shape)) = shape_of(value) else { return false };
        match self {
            Self::Intersects(query) => query.intersects(&shape.geometry()),
            Self::Within(region) => region.contains(&shape),
        }
    }

    /// The area an index scan must cover: a rectangle in degrees, or a spherical cap.
    pub fn area(&self) -> Area {
        match self {
            Self::Intersects(geometry) => Area::of(geometry),
            Self::Within(Region::Geometry(geometry)) => Area::of(geometry),
            Self::Within(Region::CenterSphere { center, radians }) => Area::Cap { center: *center, radians: *radians },
            Self::Within(Region::Box(rect)) => Area::Rect(*rect),
            Self::Within(Region::Polygon(polygon)) => Area::of(&Geometry::Polygon(polygon.clone())),
            Self::Within(Region::Center { center, radius }) => Area::Rect(Rect::new(
                Coord { x: center.x() - radius, y: center.y() - radius },
                Coord { x: center.x() + radius, y: center.y() + radius },
            )),
        }
    }
}

/// What an index scan for a geo condition covers.
#[derive(Debug, Clone, Copy)]
pub enum Area {
    /// Longitudes and latitudes in degrees.
    Rect(Rect<f64>),
    /// Points within `radians` of arc of `center`.
    Cap {
        /// The centre.
        center: Point<f64>,
        /// The radius.
        radians: f64,
    },
}

impl Area {
    fn of(geometry: &Geometry<f64>) -> Self {
        use geo::BoundingRect;
        Self::Rect(
            geometry.bounding_rect().unwrap_or(Rect::new(Coord { x: -180.0, y: -90.0 }, Coord { x: 180.0, y: 90.0 })),
        )
    }
}

impl Region {
    /// Whether the shape lies within the region. The flat regions hold points only.
    fn contains(&self, shape: &Shape) -> bool {
        let geometry = shape.geometry();
        match self {
            Self::Geometry(region) => region.relate(&geometry).is_covers(),
            Self::CenterSphere { center, radians } => {
                let limit = radians * EARTH_RADIUS_METERS;
                geometry.coords_iter().all(|c| meters_between(*center, Point::from(c)) <= limit)
            }
            Self::Box(rect) => shape.point().is_some_and(|p| {
                let (min, max) = (rect.min(), rect.max());
                (min.x..=max.x).contains(&p.x()) && (min.y..=max.y).contains(&p.y())
            }),
            Self::Center { center, radius } => shape.point().is_some_and(|p| {
                let (dx, dy) = (p.x() - center.x(), p.y() - center.y());
                (dx * dx + dy * dy).sqrt() <= *radius
            }),
            Self::Polygon(polygon) => shape.point().is_some_and(|p| polygon.relate(&p).is_covers()),
        }
    }
}

/// A `$geometry` value, checked.
fn geojson(value: RawBsonRef<'_>) -> Result<Geometry<f64>, QueryError> {
    match value {
        RawBsonRef::Document(doc) if is_geojson(doc) => parse_geojson(doc).map_err(bad),
        _ => Err(bad("unknown GeoJSON type")),
    }
}

/// The spherical distance in metres from `point` to a stored shape: to the point itself, 0
/// inside a polygon, else to the nearest point of its edges (along great circles).
pub fn meters_to(point: Point<f64>, shape: &Shape) -> f64 {
    match shape.point() {
        Some(p) => meters_between(point, p),
        None => {
            let geometry = shape.geometry();
            if geometry.intersects(&point) {
                return 0.0;
            }
            match geometry.haversine_closest_point(&point) {
                Closest::Intersection(nearest) | Closest::SinglePoint(nearest) => meters_between(point, nearest),
                Closest::Indeterminate => {
                    geometry.coords_iter().map(|c| meters_between(point, Point::from(c))).fold(f64::INFINITY, f64::min)
                }
            }
        }
    }
}

/// The flat distance (coordinate units) from `point` to a stored shape's nearest vertex.
pub fn flat_distance_to(point: Point<f64>, shape: &Shape) -> f64 {
    shape
        .geometry()
        .coords_iter()
        .map(|c| ((c.x - point.x()).powi(2) + (c.y - point.y()).powi(2)).sqrt())
        .fold(f64::INFINITY, f64::min)
}

/// The stored shape at the top of `doc`'s `path` value (for distances of returned documents).
pub fn shape_at(doc: &RawDocument, path: &str) -> Option<Shape> {
    let mut parts = path.split('.');
    let mut value = doc.get(parts.next()?).ok().flatten()?;
    for part in parts {
        value = match value {
            RawBsonRef::Document(inner) => inner.get(part).ok().flatten()?,
            _ => return None,
        };
    }
    shape_of(value)?.ok()
}

#[cfg(test)]
mod tests {
    use bson::{RawBsonRef, rawdoc};

    use super::*;

    fn within(arg: bson::RawDocumentBuf) -> GeoPredicate {
        GeoPredicate::parse_within(RawBsonRef::Document(&arg)).unwrap()
    }

    #[test]
    fn within_polygons_caps_and_flat_shapes() {
        let square = within(
            rawdoc! { "$geometry": { "type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]] } },
        );
        let inside = rawdoc! { "type": "Point", "coordinates": [5, 5] };
        let outside = rawdoc! { "type": "Point", "coordinates": [15, 5] };
        assert!(square.matches(RawBsonRef::Document(&inside)));
        assert!(!square.matches(RawBsonRef::Document(&outside)));
        let line = rawdoc! { "type": "LineString", "coordinates": [[1, 1], [20, 1]] };
        assert!(!square.matches(RawBsonRef::Document(&line)));
        // One degree of arc on mongod's Earth is about 111.3 km.
        let cap = within(rawdoc! { "$centerSphere": [[0, 0], 1.0_f64.to_radians()] });
        let near = rawdoc! { "p": [0.9, 0] };
        let far = rawdoc! { "p": [1.1, 0] };
        assert!(cap.matches(near.get("p").unwrap().unwrap()));
        assert!(!cap.matches(far.get("p").unwrap().unwrap()));
        let boxed = within(rawdoc! { "$box": [[0, 0], [2, 2]] });
        assert!(boxed.matches(near.get("p").unwrap().unwrap()));
        let code = |arg: bson::RawDocumentBuf| {
            GeoPredicate::parse_within(RawBsonRef::Document(&arg)).unwrap_err().code().code()
        };
        assert_eq!(code(rawdoc! { "$geometry": { "type": "Point", "coordinates": [0, 0] } }), 2);
        assert_eq!(code(rawdoc! { "$nowhere": 1 }), 2);
    }

    #[test]
    fn intersects_and_distances() {
        let crossing = GeoPredicate::parse_intersects(RawBsonRef::Document(
            &rawdoc! { "$geometry": { "type": "LineString", "coordinates": [[-1, 0.5], [1, 0.5]] } },
        ))
        .unwrap();
        let square = rawdoc! { "type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]] };
        assert!(crossing.matches(RawBsonRef::Document(&square)));
        let d = meters_between(Point::new(0.0, 0.0), Point::new(0.0, 1.0));
        assert!((d - EARTH_RADIUS_METERS * 1.0_f64.to_radians()).abs() < 1e-6);
        // To a line, the nearest point of the edge (a great circle, which bows a little toward
        // the pole), not of a vertex (157 km away).
        let line = Shape::GeoJson(Geometry::LineString(LineString::from(vec![(-1.0, 1.0), (1.0, 1.0)])));
        assert!((meters_to(Point::new(0.0, 0.0), &line) - d).abs() < 50.0);
    }
}
