//! 2dsphere index keys: S2 cells. A point is the level-23 cell that holds it (about a metre
//! across); another geometry is the few cells (level 23 or coarser) that cover its bounding
//! rectangle. A query area becomes the key ranges of the cells covering it (every indexed cell
//! inside one) and the keys of those cells' ancestors (indexed cells that contain one).
//! A key is the cell id with its top bit flipped, as an int64, so keys sort as ids do.

use s2::cap::Cap;
use s2::cellid::CellID;
use s2::latlng::LatLng;
use s2::rect::Rect as S2Rect;
use s2::region::RegionCoverer;
use s2::s1::{Angle, Rad};

use super::region::Area;
use super::shape::Shape;

/// The finest level keys use.
const INDEX_LEVEL: u64 = 23;
/// How many cells cover an indexed geometry.
const INDEXED_CELLS: usize = 8;
/// How many cells cover a query's area.
const QUERY_CELLS: usize = 20;

/// The int64 key of a cell.
pub fn key_of(cell: CellID) -> i64 {
    (cell.0 ^ (1 << 63)) as i64
}

fn coverer(max_cells: usize) -> RegionCoverer {
    RegionCoverer { min_level: 0, max_level: INDEX_LEVEL as u8, level_mod: 1, max_cells }
}

fn latlng_rect(min_lng: f64, min_lat: f64, max_lng: f64, max_lat: f64) -> S2Rect {
    S2Rect::from_degrees(min_lat.clamp(-90.0, 90.0), min_lng, max_lat.clamp(-90.0, 90.0), max_lng)
}

/// The keys a shape gives a 2dsphere index.
pub fn keys_of(shape: &Shape) -> Vec<i64> {
    if let Some(point) = shape.point() {
        return vec![key_of(CellID::from(LatLng::from_degrees(point.y(), point.x())).parent(INDEX_LEVEL))];
    }
    use geo::BoundingRect;
    let Some(rect) = shape.geometry().bounding_rect() else { return Vec::new() };
    let region = latlng_rect(rect.min().x, rect.min().y, rect.max().x, rect.max().y);
    let mut keys: Vec<i64> = coverer(INDEXED_CELLS).covering(&region).0.into_iter().map(key_of).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The inclusive key ranges that hold every indexed cell meeting `area`, sorted and merged.
pub fn ranges_for(area: &Area) -> Vec<(i64, i64)> {
    let covering = match area {
        Area::Rect(rect) => {
            coverer(QUERY_CELLS).covering(&latlng_rect(rect.min().x, rect.min().y, rect.max().x, rect.max().y))
        }
        Area::Cap { center, radians } => {
            let center = s2::point::Point::from(LatLng::from_degrees(center.y(), center.x()));
            let cap = Cap::from_center_angle(&center, &Angle::from(Rad(radians.min(std::f64::consts::PI))));
            coverer(QUERY_CELLS).covering(&cap)
        }
    };
    let mut ranges = Vec::new();
    for cell in covering.0 {
        ranges.push((key_of(cell.range_min()), key_of(cell.range_max())));
        for level in 0..cell.level() {
            let ancestor = key_of(cell.parent(level));
            ranges.push((ancestor, ancestor));
        }
    }
    ranges.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match merged.last_mut() {
            Some(last) if start <= last.1.saturating_add(1) => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use geo::{Coord, Point, Rect};

    use super::*;

    fn within(key: i64, ranges: &[(i64, i64)]) -> bool {
        ranges.iter().any(|(a, b)| (*a..=*b).contains(&key))
    }

    #[test]
    fn a_point_key_lies_in_the_ranges_of_an_area_around_it() {
        let paris = Shape::Legacy(Point::new(2.35, 48.85));
        let [key] = keys_of(&paris)[..] else { panic!("one key") };
        let around = Area::Rect(Rect::new(Coord { x: 2.3, y: 48.8 }, Coord { x: 2.4, y: 48.9 }));
        assert!(within(key, &ranges_for(&around)));
        let cap = Area::Cap { center: Point::new(2.36, 48.86), radians: 0.001 };
        assert!(within(key, &ranges_for(&cap)));
        let elsewhere = Area::Rect(Rect::new(Coord { x: 10.0, y: 10.0 }, Coord { x: 10.1, y: 10.1 }));
        assert!(!within(key, &ranges_for(&elsewhere)));
    }

    #[test]
    fn a_large_shape_is_found_by_a_small_area_inside_it() {
        let country =
            Shape::GeoJson(geo::Geometry::Rect(Rect::new(Coord { x: 0.0, y: 40.0 }, Coord { x: 8.0, y: 50.0 })));
        let keys = keys_of(&country);
        assert!(!keys.is_empty() && keys.len() <= INDEXED_CELLS);
        let town = Area::Rect(Rect::new(Coord { x: 2.3, y: 48.8 }, Coord { x: 2.4, y: 48.9 }));
        let ranges = ranges_for(&town);
        assert!(keys.iter().any(|k| within(*k, &ranges)));
    }
}
