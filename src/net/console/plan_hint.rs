//! The plan page's advice: when an explained read scanned the collection and examined far
//! more documents than it returned, the index that would serve it, after the runbook's rule
//! (equality fields first, then the sort's fields, then range fields).

use bson::{Bson, Document, doc};
use serde_json::{Value, json};

/// A collection scan earns a hint when it examined at least this many documents…
const MIN_EXAMINED: i64 = 100;
/// …and at least this many per document returned.
const EXAMINED_PER_RETURNED: i64 = 10;

/// What an explained command selects by: its filter and its sort.
#[derive(Debug, Default, PartialEq)]
pub struct Query {
    filter: Document,
    sort: Document,
}

/// The filter and sort of an explainable read (`find`'s `filter` and `sort`, `count`'s and
/// `distinct`'s `query`, an aggregation's leading `$match` and `$sort`).
pub fn query_of(command: &Document) -> Option<Query> {
    let name = command.keys().next()?;
    let document = |key: &str| command.get_document(key).ok().cloned().unwrap_or_default();
    match name.as_str() {
        "find" => Some(Query { filter: document("filter"), sort: document("sort") }),
        "count" | "distinct" => Some(Query { filter: document("query"), sort: Document::new() }),
        "aggregate" => {
            let mut query = Query::default();
            for stage in command.get_array("pipeline").ok()?.iter().filter_map(Bson::as_document) {
                if let Ok(filter) = stage.get_document("$match") {
                    query.filter.extend(filter.clone());
                } else if let Ok(sort) = stage.get_document("$sort") {
                    query.sort = sort.clone();
                    break;
                } else {
                    break;
                }
            }
            Some(query)
        }
        _ => None,
    }
}

/// What the plan page may explain for a query shape of namespace `ns` whose redacted example
/// is `example`: the read that selects as it does (an update's or delete's first statement,
/// a `findAndModify`'s query, as a `find`), its values left redacted. Options whose redacted
/// values would not parse (sort, limit, projection, hint) are left out, so the plan drawn is
/// the one its filter gets.
pub fn explainable(ns: &str, example: &Document) -> Option<(String, Document)> {
    let (db, collection) = ns.split_once('.')?;
    let name = example.keys().next()?;
    let field = |key: &str| example.get_document(key).ok().cloned().unwrap_or_default();
    let first_statement = |key: &str| {
        let statements = example.get_array(key).ok()?;
        let first = statements.first()?.as_document()?;
        first.get_document("q").ok().cloned()
    };
    let find = |filter: Document| doc! { "find": collection, "filter": filter };
    let command = match name.as_str() {
        "find" => find(field("filter")),
        "count" => doc! { "count": collection, "query": field("query") },
        "distinct" => {
            doc! { "distinct": collection, "key": example.get_str("key").unwrap_or("_id"), "query": field("query") }
        }
        "findAndModify" => find(field("query")),
        // Statements sent as a document sequence are not in the example: nothing to explain.
        "update" => find(first_statement("updates")?),
        "delete" => find(first_statement("deletes")?),
        "aggregate" => {
            let matches: Vec<Bson> = example
                .get_array("pipeline")
                .ok()?
                .iter()
                .take_while(|stage| stage.as_document().is_some_and(|s| s.contains_key("$match")))
                .cloned()
                .collect();
            doc! { "aggregate": collection, "pipeline": matches, "cursor": {} }
        }
        _ => return None,
    };
    Some((db.to_owned(), command))
}

/// The hint for an explain `reply` of `query`: `null` unless its winning plan scans the
/// collection and its execution examined far more documents than it returned.
pub fn hint(reply: &Document, query: Option<&Query>) -> Value {
    // An aggregation's explain may hold the query's under its first stage's `$cursor`.
    let explain = reply
        .get_array("stages")
        .ok()
        .and_then(|stages| stages.first()?.as_document()?.get_document("$cursor").ok())
        .unwrap_or(reply);
    let scans = explain
        .get_document("queryPlanner")
        .and_then(|planner| planner.get_document("winningPlan"))
        .is_ok_and(has_collection_scan);
    let Ok(execution) = explain.get_document("executionStats") else { return Value::Null };
    let number = |key: &str| execution.get(key).and_then(as_i64).unwrap_or(0);
    let (examined, returned) = (number("totalDocsExamined"), number("nReturned"));
    if !scans || examined < MIN_EXAMINED || examined < EXAMINED_PER_RETURNED * returned.max(1) {
        return Value::Null;
    }
    let index = query.map(suggested_index).filter(|index| !index.is_empty());
    json!({
        "message": format!("A collection scan examined {examined} documents to return {returned}"),
        "docsExamined": examined,
        "returned": returned,
        "suggestedIndex": index.map(|index| Bson::Document(index).into_relaxed_extjson()),
    })
}

/// Whether a plan stage, or any stage under it, is a collection scan.
fn has_collection_scan(stage: &Document) -> bool {
    if stage.get_str("stage").is_ok_and(|name| name == "COLLSCAN") {
        return true;
    }
    stage.iter().any(|(_, value)| match value {
        Bson::Document(inner) => has_collection_scan(inner),
        Bson::Array(items) => items.iter().filter_map(Bson::as_document).any(has_collection_scan),
        _ => false,
    })
}

/// A count or a sort direction, whatever its numeric type.
fn as_i64(value: &Bson) -> Option<i64> {
    crate::query::number::Number::from_bson(value).map(|n| n.to_f64() as i64)
}

/// Equality fields, then the sort's fields in their direction, then range fields.
fn suggested_index(query: &Query) -> Document {
    let (mut equality, mut range) = (Vec::new(), Vec::new());
    classify(&query.filter, &mut equality, &mut range);
    let mut index = Document::new();
    for field in equality {
        index.entry(field).or_insert(Bson::Int32(1));
    }
    for (field, direction) in &query.sort {
        let direction = as_i64(direction).filter(|d| *d == -1).map_or(1, |_| -1);
        index.entry(field.clone()).or_insert(Bson::Int32(direction));
    }
    for field in range {
        index.entry(field).or_insert(Bson::Int32(1));
    }
    index
}

/// Sorts a filter's top-level fields (and those of a top-level `$and`) into equality and range
/// conditions; `$or`, `$expr` and other operators at the top are left out.
fn classify(filter: &Document, equality: &mut Vec<String>, range: &mut Vec<String>) {
    for (field, condition) in filter {
        if field == "$and" {
            if let Bson::Array(clauses) = condition {
                for clause in clauses.iter().filter_map(Bson::as_document) {
                    classify(clause, equality, range);
                }
            }
            continue;
        }
        if field.starts_with('$') {
            continue;
        }
        let operators = match condition {
            Bson::Document(inner) if inner.keys().next().is_some_and(|k| k.starts_with('$')) => Some(inner),
            _ => None,
        };
        let is_equality = operators.is_none_or(|ops| ops.keys().all(|op| matches!(op.as_str(), "$eq" | "$in")));
        if is_equality { equality.push(field.clone()) } else { range.push(field.clone()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shape_is_explained_as_the_read_its_filter_makes() {
        let update = doc! { "update": "###", "updates": [{ "q": { "x": "###" }, "u": { "$set": { "y": "###" } } }], "$db": "###" };
        assert_eq!(
            explainable("app.things", &update),
            Some(("app".to_owned(), doc! { "find": "things", "filter": { "x": "###" } }))
        );
        let find = doc! { "find": "###", "filter": { "a": { "$gt": "###" } }, "sort": { "a": "###" }, "limit": "###" };
        assert_eq!(
            explainable("app.c.d", &find),
            Some(("app".to_owned(), doc! { "find": "c.d", "filter": { "a": { "$gt": "###" } } }))
        );
        let aggregate = doc! { "aggregate": "###", "pipeline": [{ "$match": { "k": "###" } }, { "$limit": "###" }] };
        assert_eq!(
            explainable("app.c", &aggregate).map(|(_, command)| command),
            Some(doc! { "aggregate": "c", "pipeline": [{ "$match": { "k": "###" } }], "cursor": {} })
        );
        assert_eq!(explainable("app.c", &doc! { "insert": "###" }), None);
        assert_eq!(explainable("app.c", &doc! { "update": "###", "ordered": "###" }), None);
    }

    fn collection_scan(examined: i64, returned: i64) -> Document {
        doc! {
            "queryPlanner": { "winningPlan": { "stage": "SORT", "inputStage": { "stage": "COLLSCAN" } } },
            "executionStats": { "nReturned": returned, "totalDocsExamined": examined },
        }
    }

    #[test]
    fn a_wasteful_collection_scan_gets_an_index_in_equality_sort_range_order() {
        let command = doc! { "find": "c", "filter": { "age": { "$gt": 30 }, "city": "Oslo" }, "sort": { "name": -1 } };
        let query = query_of(&command);
        let hint = hint(&collection_scan(3000, 9), query.as_ref());
        assert_eq!(hint["message"], "A collection scan examined 3000 documents to return 9");
        assert_eq!(hint["suggestedIndex"], json!({ "city": 1, "name": -1, "age": 1 }));
    }

    #[test]
    fn scans_that_return_most_of_what_they_read_or_use_an_index_get_none() {
        let query = query_of(&doc! { "find": "c", "filter": { "x": 1 } });
        assert_eq!(hint(&collection_scan(3000, 2000), query.as_ref()), Value::Null);
        assert_eq!(hint(&collection_scan(50, 0), query.as_ref()), Value::Null);
        let indexed = doc! {
            "queryPlanner": { "winningPlan": { "stage": "FETCH", "inputStage": { "stage": "IXSCAN" } } },
            "executionStats": { "nReturned": 1, "totalDocsExamined": 5000 },
        };
        assert_eq!(hint(&indexed, query.as_ref()), Value::Null);
        let planned_only = doc! { "queryPlanner": { "winningPlan": { "stage": "COLLSCAN" } } };
        assert_eq!(hint(&planned_only, query.as_ref()), Value::Null);
    }

    #[test]
    fn an_aggregation_is_read_from_its_cursor_stage_and_leading_match() {
        let command = doc! { "aggregate": "c", "pipeline": [
            { "$match": { "status": { "$in": ["a", "b"] } } }, { "$sort": { "t": 1 } }, { "$group": { "_id": "$k" } },
        ] };
        let reply = doc! { "stages": [{ "$cursor": collection_scan(1000, 3) }, { "$group": {} }] };
        let hint = hint(&reply, query_of(&command).as_ref());
        assert_eq!(hint["suggestedIndex"], json!({ "status": 1, "t": 1 }));
    }
}
