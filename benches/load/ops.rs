//! The operations the workloads repeat, each through the official driver, each checking
//! its reply (a read that finds nothing, an update that matches nothing, a short insert are
//! errors).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bson::raw::cstr;
use bson::{Document, RawDocument, RawDocumentBuf, doc};
use mongodb::{Client, Collection};

use crate::BenchResult;
use crate::measure::{Measured, Timing, drive};
use crate::shape::{BATCH, MIX_SALT, Shape, random};

/// Inserts the records with `insert_many` batches from `clients` tasks.
pub(crate) async fn load(coll: &Collection<Document>, shape: Shape, clients: usize) -> BenchResult<()> {
    let next = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (coll, next) = (coll.clone(), Arc::clone(&next));
            tokio::spawn(async move {
                loop {
                    let first = next.fetch_add(BATCH, Ordering::Relaxed);
                    if first >= shape.records {
                        return Ok::<_, mongodb::error::Error>(());
                    }
                    let documents = (first..shape.records.min(first + BATCH)).map(|id| shape.document(id));
                    coll.insert_many(documents).await?;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(())
}

pub(crate) async fn ping(client: &Client, clients: usize, timing: Timing) -> BenchResult<Measured> {
    let admin = client.database("admin");
    drive(clients, timing, 1, move |_, _| {
        let admin = admin.clone();
        async move { admin.run_command(doc! { "ping": 1 }).await.map(drop).map_err(|e| e.to_string()) }
    })
    .await
}

/// YCSB reads (`find_one` by `_id`) and updates (`$set` of one field by `_id`).
pub(crate) async fn ycsb(
    coll: &Collection<Document>,
    shape: Shape,
    read_pct: u64,
    clients: usize,
    timing: Timing,
) -> BenchResult<Measured> {
    let coll = coll.clone();
    drive(clients, timing, 1, move |worker, seq| {
        let coll = coll.clone();
        let id = shape.random_id(worker, seq) as i64;
        let update = (random(worker, seq, MIX_SALT) % 100 >= read_pct).then(|| shape.update(worker, seq));
        async move {
            match update {
                None => find_existing(&coll, "_id", id).await,
                Some(update) => match coll.update_one(doc! { "_id": id }, update).await {
                    Ok(result) if result.matched_count == 1 => Ok(()),
                    Ok(result) => Err(format!("update_one: _id {id} matched {}", result.matched_count)),
                    Err(error) => Err(error.to_string()),
                },
            }
        }
    })
    .await
}

/// Transactions of four YCSB updates (`$set` of one field by `_id`) each, committed; one
/// that meets a write conflict (`TransientTransactionError`) runs again, as drivers'
/// `withTransaction` does.
pub(crate) async fn transactions(
    client: &Client,
    coll: &Collection<Document>,
    shape: Shape,
    clients: usize,
    timing: Timing,
) -> BenchResult<Measured> {
    let (client, coll) = (client.clone(), coll.clone());
    drive(clients, timing, 1, move |worker, seq| {
        let (client, coll) = (client.clone(), coll.clone());
        let updates: Vec<(i64, Document)> =
            (0..4).map(|i| (shape.random_id(worker, seq * 4 + i) as i64, shape.update(worker, seq * 4 + i))).collect();
        async move {
            let mut session = client.start_session().await.map_err(|e| e.to_string())?;
            for _ in 0..10 {
                session.start_transaction().await.map_err(|e| e.to_string())?;
                let mut outcome = Ok(());
                for (id, update) in &updates {
                    if let Err(error) = coll.update_one(doc! { "_id": *id }, update.clone()).session(&mut session).await
                    {
                        outcome = Err(error);
                        break;
                    }
                }
                let outcome = match outcome {
                    Ok(()) => session.commit_transaction().await,
                    Err(error) => {
                        let _ = session.abort_transaction().await;
                        Err(error)
                    }
                };
                match outcome {
                    Ok(()) => return Ok(()),
                    Err(error) if error.contains_label("TransientTransactionError") => continue,
                    Err(error) => return Err(error.to_string()),
                }
            }
            Err("a transaction met write conflicts ten times".to_owned())
        }
    })
    .await
}

/// `find_one({field: value})` for a record that exists: finding nothing is an error.
async fn find_existing(coll: &Collection<Document>, field: &str, value: i64) -> Result<(), String> {
    match coll.find_one(doc! { field: value }).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(format!("find_one: {field} {value} not found")),
        Err(error) => Err(error.to_string()),
    }
}

/// `insert_one` of new documents, numbered from `next` on.
pub(crate) async fn insert(
    coll: &Collection<Document>,
    shape: Shape,
    next: Arc<AtomicU64>,
    clients: usize,
    timing: Timing,
) -> BenchResult<Measured> {
    let coll = coll.clone();
    drive(clients, timing, 1, move |_, _| {
        let coll = coll.clone();
        let document = shape.document(next.fetch_add(1, Ordering::Relaxed));
        async move { coll.insert_one(document).await.map(drop).map_err(|e| e.to_string()) }
    })
    .await
}

/// `insert_many` of `BATCH` new documents at a time, numbered from `next` on.
pub(crate) async fn insert_many(
    coll: &Collection<Document>,
    shape: Shape,
    next: Arc<AtomicU64>,
    clients: usize,
    timing: Timing,
) -> BenchResult<Measured> {
    let coll = coll.clone_with_type::<RawDocumentBuf>();
    // Built once, as the engine batch floor builds its values once: the client's cost of
    // generating documents is not the server's, and on two shared cores it would be counted
    // against it. Each batch only stamps fresh `_id`/`k` values onto these.
    let templates: Arc<Vec<RawDocumentBuf>> =
        Arc::new((0..BATCH).map(|id| Ok(RawDocumentBuf::try_from(&shape.document(id))?)).collect::<BenchResult<_>>()?);
    drive(clients, timing, BATCH, move |_, _| {
        let coll = coll.clone();
        let first = next.fetch_add(BATCH, Ordering::Relaxed);
        let documents: Vec<_> =
            (first..first + BATCH).zip(templates.iter().cycle()).map(|(id, template)| restamp(template, id)).collect();
        async move {
            match coll.insert_many(documents).await {
                Ok(result) if result.inserted_ids.len() as u64 == BATCH => Ok(()),
                Ok(result) => Err(format!("insert_many inserted {} of {BATCH}", result.inserted_ids.len())),
                Err(error) => Err(error.to_string()),
            }
        }
    })
    .await
}

/// `template` with `_id` and `k` set to `id` (both come first in every generated document).
fn restamp(template: &RawDocument, id: u64) -> RawDocumentBuf {
    let mut document = RawDocumentBuf::new();
    document.append(cstr!("_id"), id as i64);
    document.append(cstr!("k"), id as i64);
    for (key, value) in template.iter().flatten() {
        if key.as_str() != "_id" && key.as_str() != "k" {
            document.append(key, value);
        }
    }
    document
}

/// A `find` on a field no document has: reads and tests every document, returns none.
pub(crate) async fn scan(
    coll: &Collection<Document>,
    shape: Shape,
    clients: usize,
    timing: Timing,
) -> BenchResult<Measured> {
    let coll = coll.clone();
    drive(clients, timing, shape.records, move |_, _| {
        let coll = coll.clone();
        async move {
            let mut cursor = coll.find(doc! { "absentField": 1 }).await.map_err(|e| e.to_string())?;
            match cursor.advance().await {
                Ok(false) => Ok(()),
                Ok(true) => Err("the scan filter matched a document".to_owned()),
                Err(error) => Err(error.to_string()),
            }
        }
    })
    .await
}

/// Creates (`true`) or drops (`false`) the index `k_1` on the records; prints the build time.
pub(crate) async fn set_k_index(coll: &Collection<Document>, present: bool) -> BenchResult<()> {
    let names = coll.list_index_names().await?;
    let exists = names.iter().any(|n| n == "k_1");
    match (present, exists) {
        (true, false) => {
            let started = Instant::now();
            coll.create_index(mongodb::IndexModel::builder().keys(doc! { "k": 1 }).build()).await?;
            println!("  built index k_1 in {:.2} s", started.elapsed().as_secs_f64());
        }
        (false, true) => coll.drop_index("k_1").await?,
        _ => {}
    }
    Ok(())
}

/// `find_one({k: <random record>})`; `items_per_op` is the records one query reads.
pub(crate) async fn equality(
    coll: &Collection<Document>,
    shape: Shape,
    items_per_op: u64,
    clients: usize,
    timing: Timing,
) -> BenchResult<Measured> {
    let coll = coll.clone();
    drive(clients, timing, items_per_op, move |worker, seq| {
        let coll = coll.clone();
        let k = shape.random_id(worker, seq) as i64;
        async move { find_existing(&coll, "k", k).await }
    })
    .await
}

/// YCSB-E: 95% range scans of 1 to 100 records from a random `k` through `k_1`, 5% inserts of
/// new records.
pub(crate) async fn ycsb_e(
    coll: &Collection<Document>,
    shape: Shape,
    next: Arc<AtomicU64>,
    clients: usize,
    timing: Timing,
) -> BenchResult<Measured> {
    let coll = coll.clone();
    drive(clients, timing, 1, move |worker, seq| {
        let coll = coll.clone();
        let draw = random(worker, seq, MIX_SALT);
        let insert = (draw % 100 < 5).then(|| shape.document(next.fetch_add(1, Ordering::Relaxed)));
        let start = shape.random_id(worker, seq) as i64;
        let length = (draw / 100 % 100 + 1) as i64;
        async move {
            if let Some(document) = insert {
                return coll.insert_one(document).await.map(drop).map_err(|e| e.to_string());
            }
            let mut cursor = coll
                .find(doc! { "k": { "$gte": start } })
                .sort(doc! { "k": 1 })
                .limit(length)
                .await
                .map_err(|e| e.to_string())?;
            let mut seen = 0;
            while cursor.advance().await.map_err(|e| e.to_string())? {
                seen += 1;
            }
            if seen == 0 && (start as u64) < shape.records {
                Err(format!("scan from k {start} found nothing"))
            } else {
                Ok(())
            }
        }
    })
    .await
}

/// The `count` command without a filter.
pub(crate) async fn count(
    coll: &Collection<Document>,
    shape: Shape,
    clients: usize,
    timing: Timing,
) -> BenchResult<Measured> {
    let coll = coll.clone();
    drive(clients, timing, shape.records, move |_, _| {
        let coll = coll.clone();
        async move {
            match coll.estimated_document_count().await {
                Ok(n) if n == shape.records => Ok(()),
                Ok(n) => Err(format!("count returned {n}, expected {}", shape.records)),
                Err(error) => Err(error.to_string()),
            }
        }
    })
    .await
}

/// Orders the `$lookup` workload joins to the records: each names a random record as `cust`.
pub(crate) const LOOKUP_ORDERS: u64 = 10_000;

/// `$group` of every record by `k % 16` (16 groups), counting each group.
pub(crate) async fn aggregate_group(
    coll: &Collection<Document>,
    shape: Shape,
    clients: usize,
    timing: Timing,
) -> BenchResult<Measured> {
    let coll = coll.clone();
    drive(clients, timing, shape.records, move |_, _| {
        let coll = coll.clone();
        async move {
            let pipeline = vec![doc! { "$group": { "_id": { "$mod": ["$k", 16] }, "n": { "$sum": 1 } } }];
            let mut cursor = coll.aggregate(pipeline).await.map_err(|e| e.to_string())?;
            let mut groups = 0;
            while cursor.advance().await.map_err(|e| e.to_string())? {
                groups += 1;
            }
            if groups == 16.min(shape.records) { Ok(()) } else { Err(format!("$group gave {groups} groups")) }
        }
    })
    .await
}

/// An indexed `$match` + `$sort` + `$limit` of 10 from a random `k` through `k_1`.
pub(crate) async fn aggregate_top(
    coll: &Collection<Document>,
    shape: Shape,
    clients: usize,
    timing: Timing,
) -> BenchResult<Measured> {
    let coll = coll.clone();
    drive(clients, timing, 1, move |worker, seq| {
        let coll = coll.clone();
        let start = shape.random_id(worker, seq) as i64;
        async move {
            let pipeline = vec![
                doc! { "$match": { "k": { "$gte": start } } },
                doc! { "$sort": { "k": 1 } },
                doc! { "$limit": 10 },
            ];
            let mut cursor = coll.aggregate(pipeline).await.map_err(|e| e.to_string())?;
            let mut seen = 0;
            while cursor.advance().await.map_err(|e| e.to_string())? {
                seen += 1;
            }
            if seen == 0 { Err(format!("no record from k {start}")) } else { Ok(()) }
        }
    })
    .await
}

/// Loads [`LOOKUP_ORDERS`] orders into `orders` (once), each naming a random record.
pub(crate) async fn load_orders(orders: &Collection<Document>, shape: Shape) -> BenchResult<()> {
    if orders.estimated_document_count().await? == LOOKUP_ORDERS {
        return Ok(());
    }
    orders.drop().await?;
    let docs: Vec<Document> =
        (0..LOOKUP_ORDERS).map(|i| doc! { "_id": i as i64, "cust": shape.random_id(0, i) as i64 }).collect();
    for chunk in docs.chunks(1000) {
        orders.insert_many(chunk.to_vec()).await?;
    }
    Ok(())
}

/// `$lookup` of every order to its record by `_id` (the records' index), counted.
pub(crate) async fn aggregate_lookup(
    orders: &Collection<Document>,
    clients: usize,
    timing: Timing,
) -> BenchResult<Measured> {
    let orders = orders.clone();
    drive(clients, timing, LOOKUP_ORDERS, move |_, _| {
        let orders = orders.clone();
        async move {
            let pipeline = vec![
                doc! { "$lookup": { "from": "usertable", "localField": "cust", "foreignField": "_id", "as": "c" } },
                doc! { "$match": { "c": { "$size": 1 } } },
                doc! { "$count": "n" },
            ];
            let mut cursor = orders.aggregate(pipeline).await.map_err(|e| e.to_string())?;
            let found = cursor.advance().await.map_err(|e| e.to_string())?;
            let n = if found {
                cursor.deserialize_current().map_err(|e| e.to_string())?.get_i32("n").unwrap_or(0)
            } else {
                0
            };
            if n as u64 == LOOKUP_ORDERS { Ok(()) } else { Err(format!("$lookup joined {n} orders")) }
        }
    })
    .await
}
