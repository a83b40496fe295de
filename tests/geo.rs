//! Geospatial queries through the Rust driver: 2dsphere and 2d indexes, `$near`,
//! `$nearSphere`, `$geoWithin` (`$geometry`, `$centerSphere`, `$box`), `$geoIntersects` and
//! the `$geoNear` stage, with distances and memberships computed here independently (the
//! haversine formula on mongod's Earth radius), and mongod's errors for bad geometry.

#![expect(clippy::expect_used, reason = "a failed setup step must fail the test loudly")]

mod common;

use common::{TestServer, error_code as code, index_spec};
use futures_util::TryStreamExt;
use mongodb::bson::{Document, doc};

/// mongod's radius of the Earth, in metres.
const EARTH_RADIUS: f64 = 6_378_100.0;

/// Great-circle distance in metres between two (longitude, latitude) points in degrees.
fn haversine(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lat2) = (a.1.to_radians(), b.1.to_radians());
    let (dlat, dlng) = ((b.1 - a.1).to_radians(), (b.0 - a.0).to_radians());
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlng / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS * h.sqrt().asin()
}

/// A 9 x 9 grid of points around Paris, 0.01 degree apart.
fn grid() -> Vec<(i32, (f64, f64))> {
    let mut points = Vec::new();
    for i in 0..9 {
        for j in 0..9 {
            points.push((i * 9 + j, (2.30 + f64::from(i) * 0.01, 48.82 + f64::from(j) * 0.01)));
        }
    }
    points
}

async fn ids(cursor: mongodb::Cursor<Document>) -> Vec<i32> {
    let docs: Vec<Document> = cursor.try_collect().await.expect("documents");
    docs.iter().map(|d| d.get_i32("_id").expect("_id")).collect()
}

#[tokio::test]
async fn sphere_queries_match_independent_geometry() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("geo");
    let coll = db.collection::<Document>("places");
    let docs: Vec<Document> = grid()
        .into_iter()
        .map(|(id, (x, y))| doc! { "_id": id, "kind": if id % 2 == 0 { "even" } else { "odd" }, "loc": { "type": "Point", "coordinates": [x, y] } })
        .collect();
    coll.insert_many(docs).await.expect("insert");
    db.run_command(
        doc! { "createIndexes": "places", "indexes": [{ "key": { "loc": "2dsphere" }, "name": "loc_2dsphere" }] },
    )
    .await
    .expect("index");
    let spec = index_spec(&db, "places", "loc_2dsphere").await;
    assert_eq!(spec.get_i32("2dsphereIndexVersion").ok(), Some(3));

    let center = (2.345, 48.861);
    // $near within 2 km, nearest first.
    let mut expected: Vec<(f64, i32)> =
        grid().into_iter().map(|(id, p)| (haversine(center, p), id)).filter(|(d, _)| *d <= 2000.0).collect();
    expected.sort_by(|a, b| a.0.total_cmp(&b.0));
    let near = doc! { "loc": { "$near": { "$geometry": { "type": "Point", "coordinates": [center.0, center.1] }, "$maxDistance": 2000 } } };
    let found = ids(coll.find(near.clone()).await.expect("near")).await;
    assert!(!expected.is_empty() && expected.len() < 81);
    assert_eq!(found, expected.iter().map(|(_, id)| *id).collect::<Vec<_>>());
    // With a limit, and with the rest of the filter.
    let first5 = ids(coll.find(near.clone()).limit(5).await.expect("near limit")).await;
    // A hint naming the geo index is the same search; naming another index, none can run.
    let hinted = coll.find(near.clone()).limit(5).hint(mongodb::options::Hint::Name("loc_2dsphere".into())).await;
    assert_eq!(ids(hinted.expect("hinted near")).await, first5);
    let other = coll.find_one(near.clone()).hint(mongodb::options::Hint::Name("_id_".into())).await;
    assert_eq!(code(&other.expect_err("hint of another index")), Some(291));
    assert_eq!(first5, expected.iter().take(5).map(|(_, id)| *id).collect::<Vec<_>>());
    let mut filtered = near.clone();
    filtered.insert("kind", "even");
    let evens = ids(coll.find(filtered).await.expect("near even")).await;
    assert_eq!(evens, expected.iter().filter(|(_, id)| id % 2 == 0).map(|(_, id)| *id).collect::<Vec<_>>());
    // $nearSphere with a legacy pair measures in radians; $minDistance excludes the closest.
    let sphere = ids(coll
        .find(doc! { "loc": { "$nearSphere": [center.0, center.1], "$minDistance": 500.0 / EARTH_RADIUS, "$maxDistance": 2000.0 / EARTH_RADIUS } })
        .await
        .expect("nearSphere"))
    .await;
    assert_eq!(sphere, expected.iter().filter(|(d, _)| *d >= 500.0).map(|(_, id)| *id).collect::<Vec<_>>());

    // $geoWithin a polygon (a box of degrees), through the index.
    let within = doc! { "loc": { "$geoWithin": { "$geometry": { "type": "Polygon",
    "coordinates": [[[2.315, 48.835], [2.355, 48.835], [2.355, 48.865], [2.315, 48.865], [2.315, 48.835]]] } } } };
    let mut inside: Vec<i32> = grid()
        .into_iter()
        .filter(|(_, (x, y))| (2.315..=2.355).contains(x) && (48.835..=48.865).contains(y))
        .map(|(id, _)| id)
        .collect();
    inside.sort_unstable();
    let mut got = ids(coll.find(within.clone()).await.expect("within")).await;
    got.sort_unstable();
    assert_eq!(got, inside);
    let explained = db.run_command(doc! { "explain": { "find": "places", "filter": within } }).await.expect("explain");
    let plan = explained.get_document("queryPlanner").and_then(|q| q.get_document("winningPlan")).expect("plan");
    assert_eq!(plan.get_document("inputStage").and_then(|s| s.get_str("indexName")).ok(), Some("loc_2dsphere"));
    // $centerSphere: within 1.5 km by the haversine formula.
    let radius = 1500.0 / EARTH_RADIUS;
    let mut in_cap: Vec<i32> =
        grid().into_iter().filter(|(_, p)| haversine(center, *p) <= 1500.0).map(|(id, _)| id).collect();
    in_cap.sort_unstable();
    let mut got = ids(coll
        .find(doc! { "loc": { "$geoWithin": { "$centerSphere": [[center.0, center.1], radius] } } })
        .await
        .expect("cap"))
    .await;
    got.sort_unstable();
    assert_eq!(got, in_cap);

    // $geoIntersects: a stored polygon met by a line.
    coll.insert_one(doc! { "_id": 1000, "loc": { "type": "Polygon", "coordinates": [[[2.0, 48.0], [2.1, 48.0], [2.1, 48.1], [2.0, 48.1], [2.0, 48.0]]] } })
        .await
        .expect("polygon");
    let line = doc! { "$geometry": { "type": "LineString", "coordinates": [[1.9, 48.05], [2.05, 48.05]] } };
    assert_eq!(ids(coll.find(doc! { "loc": { "$geoIntersects": line } }).await.expect("intersects")).await, [1000]);

    // $geoNear: distances times the multiplier, the location, the query.
    let pipeline = [doc! { "$geoNear": {
    "near": { "type": "Point", "coordinates": [center.0, center.1] },
    "distanceField": "dist.meters", "maxDistance": 2000, "query": { "kind": "odd" },
    "distanceMultiplier": 0.001, "includeLocs": "where", "spherical": true } }];
    let out: Vec<Document> = coll.aggregate(pipeline).await.expect("geoNear").try_collect().await.expect("out");
    let odd: Vec<&(f64, i32)> = expected.iter().filter(|(_, id)| id % 2 == 1).collect();
    assert_eq!(out.len(), odd.len());
    for (doc, (distance, id)) in out.iter().zip(odd) {
        assert_eq!(doc.get_i32("_id").ok(), Some(*id));
        let km = doc.get_document("dist").and_then(|d| d.get_f64("meters")).expect("distance");
        assert!((km - distance / 1000.0).abs() < 1e-6, "document {id}: {km} km, haversine {}", distance / 1000.0);
        assert_eq!(doc.get_document("where").and_then(|w| w.get_str("type")).ok(), Some("Point"));
    }
}

#[tokio::test]
async fn bad_geometry_and_misplaced_near_are_refused() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("geo");
    let coll = db.collection::<Document>("c");
    coll.insert_one(doc! { "_id": 1, "loc": [1, 1] }).await.expect("insert");
    // No geo index: $near cannot run; $geoWithin reads the collection.
    let near = doc! { "loc": { "$near": { "$geometry": { "type": "Point", "coordinates": [0, 0] } } } };
    assert_eq!(code(&coll.find_one(near.clone()).await.expect_err("no index")), Some(291));
    let boxed = doc! { "loc": { "$geoWithin": { "$box": [[0, 0], [2, 2]] } } };
    assert_eq!(ids(coll.find(boxed).await.expect("box")).await, [1]);
    let geo_near = coll.aggregate([doc! { "$geoNear": { "near": [0, 0], "distanceField": "d" } }]).await;
    assert_eq!(code(&geo_near.expect_err("no index")), Some(27));

    db.run_command(doc! { "createIndexes": "c", "indexes": [{ "key": { "loc": "2dsphere" }, "name": "loc" }] })
        .await
        .expect("index");
    let refused = |document: Document| {
        let coll = coll.clone();
        async move { code(&coll.insert_one(document).await.expect_err("refused")) }
    };
    // An unclosed ring, a ring crossing itself, a longitude out of range: 16755.
    assert_eq!(
        refused(doc! { "_id": 2, "loc": { "type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]] } })
            .await,
        Some(16755)
    );
    assert_eq!(
        refused(
            doc! { "_id": 3, "loc": { "type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]] } }
        )
        .await,
        Some(16755)
    );
    assert_eq!(refused(doc! { "_id": 4, "loc": { "type": "Point", "coordinates": [181, 0] } }).await, Some(16755));
    assert_eq!(coll.count_documents(doc! {}).await.expect("count"), 1);
    // $near under $or, two $near, a Point as a $geoWithin region: 2.
    let find_code = |filter: Document| {
        let coll = coll.clone();
        async move { code(&coll.find_one(filter).await.expect_err("refused")) }
    };
    assert_eq!(find_code(doc! { "$or": [near.clone(), { "x": 1 }] }).await, Some(2));
    assert_eq!(find_code(doc! { "$and": [near.clone(), near.clone()] }).await, Some(2));
    assert_eq!(
        find_code(doc! { "loc": { "$geoWithin": { "$geometry": { "type": "Point", "coordinates": [0, 0] } } } }).await,
        Some(2)
    );
    assert_eq!(coll.find(near.clone()).await.map(|_| ()).map_err(|e| code(&e)), Ok(()));
    // A pipeline's `$match` (and so `countDocuments`) refuses it: only `$geoNear` sorts by distance.
    assert_eq!(code(&coll.count_documents(near).await.expect_err("count")), Some(5626500));
}

#[tokio::test]
async fn flat_index_orders_by_planar_distance() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("geo");
    let coll = db.collection::<Document>("flat");
    db.run_command(doc! { "createIndexes": "flat", "indexes": [{ "key": { "pos": "2d" }, "name": "pos_2d", "bits": 20, "min": -100, "max": 100 }] })
        .await
        .expect("index");
    let points: [(i32, (f64, f64)); 5] =
        [(1, (10.0, 10.0)), (2, (-5.0, 3.0)), (3, (0.5, 0.5)), (4, (40.0, -60.0)), (5, (2.0, -1.0))];
    coll.insert_many(points.iter().map(|(id, (x, y))| doc! { "_id": id, "pos": [x, y] })).await.expect("insert");
    let mut expected: Vec<(f64, i32)> = points.iter().map(|(id, (x, y))| ((x * x + y * y).sqrt(), *id)).collect();
    expected.sort_by(|a, b| a.0.total_cmp(&b.0));
    let found = ids(coll.find(doc! { "pos": { "$near": [0, 0] } }).await.expect("near")).await;
    assert_eq!(found, expected.iter().map(|(_, id)| *id).collect::<Vec<_>>());
    let close = ids(coll.find(doc! { "pos": { "$near": [0, 0], "$maxDistance": 6 } }).await.expect("near max")).await;
    assert_eq!(close, expected.iter().filter(|(d, _)| *d <= 6.0).map(|(_, id)| *id).collect::<Vec<_>>());
    let err = coll.insert_one(doc! { "_id": 9, "pos": [150, 0] }).await.expect_err("out of the grid");
    assert_eq!(code(&err), Some(13027));
    let err = db
        .run_command(doc! { "createIndexes": "flat2", "indexes": [{ "key": { "p": "2d" }, "name": "p", "bits": 40 }] })
        .await
        .expect_err("bits");
    assert_eq!(code(&err), Some(13028));
}
