//! The generated pages of the documentation: `docs/reference/configuration.md` from the
//! configuration's definition (flags, variables, settings and defaults) and
//! `docs/reference/compatibility.md` from the command table, the stage table and the parsers'
//! answers for every operator and index type mongod 7.0 has. A test fails when a checked-in
//! page differs from what the code generates; `UPDATE_DOCS=1 cargo test --lib reference_docs`
//! rewrites them.

use std::fmt::Write as _;
use std::path::Path;

use bson::{Bson, Document, RawBsonRef, RawDocumentBuf, doc};

use crate::cmd::COMMANDS;
use crate::config::{Config, flag_docs, ignored_mongod_options};
use crate::error::ErrorCode;
use crate::exec::pipeline::registry::stage_status;
use crate::query::agg::AccumulatorSpec;
use crate::query::agg::stages::STAGE_NAMES;
use crate::query::expr::Expression;
use crate::query::index_key::KeyPattern;
use crate::query::{Filter, Update};

/// mongod 7.0's query predicate operators (the geometry specifiers such as `$box` live inside
/// `$geoWithin` and are not listed).
const QUERY_OPERATORS: &[&str] = &[
    "$all",
    "$and",
    "$bitsAllClear",
    "$bitsAllSet",
    "$bitsAnyClear",
    "$bitsAnySet",
    "$comment",
    "$elemMatch",
    "$eq",
    "$exists",
    "$expr",
    "$geoIntersects",
    "$geoWithin",
    "$gt",
    "$gte",
    "$in",
    "$jsonSchema",
    "$lt",
    "$lte",
    "$mod",
    "$ne",
    "$near",
    "$nearSphere",
    "$nin",
    "$nor",
    "$not",
    "$or",
    "$regex",
    "$size",
    "$text",
    "$type",
    "$where",
];

/// mongod 7.0's update operators.
const UPDATE_OPERATORS: &[&str] = &[
    "$addToSet",
    "$bit",
    "$currentDate",
    "$inc",
    "$max",
    "$min",
    "$mul",
    "$pop",
    "$pull",
    "$pullAll",
    "$push",
    "$rename",
    "$set",
    "$setOnInsert",
    "$unset",
];

/// mongod 7.0's `$group` accumulators.
const ACCUMULATORS: &[&str] = &[
    "$accumulator",
    "$addToSet",
    "$avg",
    "$bottom",
    "$bottomN",
    "$count",
    "$first",
    "$firstN",
    "$last",
    "$lastN",
    "$max",
    "$maxN",
    "$median",
    "$mergeObjects",
    "$min",
    "$minN",
    "$percentile",
    "$push",
    "$stdDevPop",
    "$stdDevSamp",
    "$sum",
    "$top",
    "$topN",
];

/// mongod 7.0's aggregation expression operators.
const EXPRESSION_OPERATORS: &[&str] = &[
    "$abs",
    "$acos",
    "$acosh",
    "$add",
    "$allElementsTrue",
    "$and",
    "$anyElementTrue",
    "$arrayElemAt",
    "$arrayToObject",
    "$asin",
    "$asinh",
    "$atan",
    "$atan2",
    "$atanh",
    "$avg",
    "$binarySize",
    "$bitAnd",
    "$bitNot",
    "$bitOr",
    "$bitXor",
    "$bsonSize",
    "$ceil",
    "$cmp",
    "$concat",
    "$concatArrays",
    "$cond",
    "$convert",
    "$cos",
    "$cosh",
    "$dateAdd",
    "$dateDiff",
    "$dateFromParts",
    "$dateFromString",
    "$dateSubtract",
    "$dateToParts",
    "$dateToString",
    "$dateTrunc",
    "$dayOfMonth",
    "$dayOfWeek",
    "$dayOfYear",
    "$degreesToRadians",
    "$divide",
    "$eq",
    "$exp",
    "$filter",
    "$first",
    "$firstN",
    "$floor",
    "$function",
    "$getField",
    "$gt",
    "$gte",
    "$hour",
    "$ifNull",
    "$in",
    "$indexOfArray",
    "$indexOfBytes",
    "$indexOfCP",
    "$isArray",
    "$isNumber",
    "$isoDayOfWeek",
    "$isoWeek",
    "$isoWeekYear",
    "$last",
    "$lastN",
    "$let",
    "$literal",
    "$ln",
    "$log",
    "$log10",
    "$lt",
    "$lte",
    "$ltrim",
    "$map",
    "$max",
    "$maxN",
    "$median",
    "$mergeObjects",
    "$meta",
    "$millisecond",
    "$min",
    "$minN",
    "$minute",
    "$mod",
    "$month",
    "$multiply",
    "$ne",
    "$not",
    "$objectToArray",
    "$or",
    "$percentile",
    "$pow",
    "$radiansToDegrees",
    "$rand",
    "$range",
    "$reduce",
    "$regexFind",
    "$regexFindAll",
    "$regexMatch",
    "$replaceAll",
    "$replaceOne",
    "$reverseArray",
    "$round",
    "$rtrim",
    "$sampleRate",
    "$second",
    "$setDifference",
    "$setEquals",
    "$setField",
    "$setIntersection",
    "$setIsSubset",
    "$setUnion",
    "$sin",
    "$sinh",
    "$size",
    "$slice",
    "$sortArray",
    "$split",
    "$sqrt",
    "$stdDevPop",
    "$stdDevSamp",
    "$strLenBytes",
    "$strLenCP",
    "$strcasecmp",
    "$substr",
    "$substrBytes",
    "$substrCP",
    "$subtract",
    "$sum",
    "$switch",
    "$tan",
    "$tanh",
    "$toBool",
    "$toDate",
    "$toDecimal",
    "$toDouble",
    "$toInt",
    "$toLong",
    "$toLower",
    "$toObjectId",
    "$toString",
    "$toUpper",
    "$trim",
    "$trunc",
    "$tsIncrement",
    "$tsSecond",
    "$type",
    "$unsetField",
    "$week",
    "$year",
    "$zip",
];

/// mongod 7.0's index types, by the key pattern that asks for each.
const INDEX_TYPES: &[(&str, &str, &str)] = &[
    ("single field", "a", "1"),
    ("compound", "a, b", "1, -1"),
    ("hashed", "a", "\"hashed\""),
    ("wildcard", "$**", "1"),
    ("text", "a", "\"text\""),
    ("2dsphere", "a", "\"2dsphere\""),
    ("2d", "a", "\"2d\""),
];

/// `doc` as raw BSON, for the parsers.
fn raw(doc: &Document) -> Result<RawDocumentBuf, (ErrorCode, String)> {
    RawDocumentBuf::try_from(doc).map_err(|e| (ErrorCode::BadValue, e.to_string()))
}

/// A feature's status on the compatibility page.
fn status(outcome: Result<(), (ErrorCode, String)>) -> String {
    match outcome {
        Ok(()) => "supported".to_owned(),
        Err((ErrorCode::NotImplemented, _)) => "not yet (238 NotImplemented)".to_owned(),
        Err((code, message)) => format!("refused: {} {} ({message})", code.code(), code.name()),
    }
}

/// Whether the query parser builds `{a: {op: ...}}` (or `{op: [...]}` for the logical ones).
fn query_operator(op: &str) -> Result<(), (ErrorCode, String)> {
    let filter = match op {
        "$and" | "$or" | "$nor" => doc! { op: [{ "a": 1 }] },
        "$expr" => doc! { op: true },
        "$where" => doc! { op: "this.a == 1" },
        "$comment" => doc! { op: "x" },
        "$jsonSchema" => doc! { op: {} },
        "$text" => doc! { op: { "$search": "x" } },
        "$not" => doc! { "a": { op: { "$gt": 1 } } },
        "$elemMatch" => doc! { "a": { op: { "b": 1 } } },
        "$in" | "$nin" | "$all" | "$mod" => doc! { "a": { op: [2, 0] } },
        "$regex" => doc! { "a": { op: "x" } },
        "$geoWithin" => {
            let square = [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]];
            doc! { "a": { op: { "$geometry": { "type": "Polygon", "coordinates": square.to_vec() } } } }
        }
        "$geoIntersects" | "$near" | "$nearSphere" => {
            doc! { "a": { op: { "$geometry": { "type": "Point", "coordinates": [0, 0] } } } }
        }
        "$type" => doc! { "a": { op: "string" } },
        "$exists" => doc! { "a": { op: true } },
        _ => doc! { "a": { op: 1 } },
    };
    Filter::parse_query(&raw(&filter)?).map(drop).map_err(|e| (e.code(), e.message().to_owned()))
}

/// Whether the update parser builds `{op: {a: ...}}`.
fn update_operator(op: &str) -> Result<(), (ErrorCode, String)> {
    let value = match op {
        "$rename" => Bson::String("b".into()),
        "$currentDate" | "$unset" => Bson::Boolean(true),
        "$bit" => Bson::Document(bson::doc! { "and": 1 }),
        "$pullAll" => Bson::Array(vec![Bson::Int32(1)]),
        _ => Bson::Int32(1),
    };
    Update::parse(&raw(&doc! { op: { "a": value } })?).map(drop).map_err(|e| (e.code(), e.message().to_owned()))
}

/// Whether `$group` builds the accumulator (given a plausible argument).
fn accumulator(op: &str) -> Result<(), (ErrorCode, String)> {
    let spec = match op {
        "$count" => doc! { op: {} },
        "$firstN" | "$lastN" | "$maxN" | "$minN" => doc! { op: { "input": "$a", "n": 2 } },
        "$top" | "$bottom" => doc! { op: { "output": "$a", "sortBy": { "a": 1 } } },
        "$topN" | "$bottomN" => doc! { op: { "output": "$a", "sortBy": { "a": 1 }, "n": 2 } },
        "$median" => doc! { op: { "input": "$a", "method": "approximate" } },
        "$percentile" => doc! { op: { "input": "$a", "p": [0.5], "method": "approximate" } },
        "$accumulator" => doc! { op: {
        "init": "function() { return 0 }", "accumulate": "function(s) { return s }", "accumulateArgs": [],
        "merge": "function(a, b) { return a }", "lang": "js" } },
        _ => doc! { op: "$a" },
    };
    AccumulatorSpec::parse("out", RawBsonRef::Document(&raw(&spec)?))
        .map(drop)
        .map_err(|e| (e.code(), e.message().to_owned()))
}

/// Whether the expression parser builds `{op: ...}`; unknown names answer 168, unbuilt 238.
fn expression_operator(op: &str) -> Result<(), (ErrorCode, String)> {
    match Expression::parse(RawBsonRef::Document(&raw(&doc! { op: [] })?)) {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.code(), ErrorCode::NotImplemented | ErrorCode::InvalidPipelineOperator) => {
            Err((e.code(), e.message().to_owned()))
        }
        // A wrong argument is the operator's own check: it is built.
        Err(_) => Ok(()),
    }
}

/// Whether an index with `keys` (a key pattern's body) can be created.
fn index_type(keys: &str, orders: &str) -> Result<(), (ErrorCode, String)> {
    let mut spec = Document::new();
    for (key, order) in keys.split(", ").zip(orders.split(", ")) {
        let value = match order.strip_prefix('"').and_then(|o| o.strip_suffix('"')) {
            Some(plugin) => Bson::String(plugin.to_owned()),
            None => Bson::Int32(order.parse().map_err(|_| (ErrorCode::BadValue, format!("order {order}")))?),
        };
        spec.insert(key, value);
    }
    KeyPattern::parse(&raw(&spec)?).map(drop).map_err(|e| (e.code(), e.message().to_owned()))
}

/// `docs/reference/compatibility.md`.
fn compatibility_page() -> String {
    let mut page = String::from(
        "# Compatibility reference\n\n\
         <!-- Generated by src/reference_docs.rs from the command table, the stage table and the parsers; \
         `UPDATE_DOCS=1 cargo test --lib reference_docs` rewrites it, and the test fails when it is stale. -->\n\n\
         Every command, aggregation stage, operator and index type of mongod 7.0, with what Monarch does \
         with it. *supported* means the server runs it with mongod's semantics (the option-by-option \
         detail is in [command options](../compat/command-options.md) and \
         [aggregation](../compat/aggregation.md)); *not yet* means it answers 238 NotImplemented, \
         which a later issue builds; *refused* means it answers the error mongod gives in this \
         server's configuration (a standalone), shown with its code.\n",
    );
    let counts = |title: &str, rows: Vec<(String, String)>, intro: &str, page: &mut String| {
        let supported = rows.iter().filter(|(_, s)| s == "supported").count();
        let _ = write!(
            page,
            "\n## {title}\n\n{intro}{supported} of {} supported.\n\n| name | status |\n|---|---|\n",
            rows.len()
        );
        for (name, status) in rows {
            let _ = writeln!(page, "| `{name}` | {status} |");
        }
    };

    let mut commands: Vec<(String, String)> = COMMANDS
        .iter()
        .map(|spec| {
            let mut state =
                if spec.handler.is_some() { "supported".to_owned() } else { "not yet (238 NotImplemented)".to_owned() };
            if spec.test_only {
                state.push_str("; only with `enableTestCommands=1`, as mongod");
            }
            (spec.name.to_owned(), state)
        })
        .collect();
    commands.sort_by_key(|(name, _)| name.to_ascii_lowercase());
    counts(
        "Commands",
        commands,
        "From the command table (`src/cmd/mod.rs`). Any other name answers 59 CommandNotFound, as mongod answers a name it does not know; among them are mongod's other replica-set commands (`replSetFreeze`, `replSetStepUp`, ...), sharding and cluster administration commands.\n\n",
        &mut page,
    );
    let stages = STAGE_NAMES.iter().map(|name| ((*name).to_owned(), status(stage_status(name)))).collect();
    counts("Aggregation stages", stages, "From the stage table (`src/exec/pipeline/registry.rs`).\n\n", &mut page);
    let list = |names: &[&str], probe: fn(&str) -> Result<(), (ErrorCode, String)>| -> Vec<(String, String)> {
        names.iter().map(|name| ((*name).to_owned(), status(probe(name)))).collect()
    };
    counts("Query operators", list(QUERY_OPERATORS, query_operator), "", &mut page);
    counts("Update operators", list(UPDATE_OPERATORS, update_operator), "", &mut page);
    counts("Accumulators (`$group`)", list(ACCUMULATORS, accumulator), "", &mut page);
    counts("Expression operators", list(EXPRESSION_OPERATORS, expression_operator), "", &mut page);
    let indexes = INDEX_TYPES
        .iter()
        .map(|(name, keys, orders)| {
            let pattern =
                keys.split(", ").zip(orders.split(", ")).map(|(k, o)| format!("{k}: {o}")).collect::<Vec<_>>();
            (format!("{name} {{{}}}", pattern.join(", ")), status(index_type(keys, orders)))
        })
        .collect();
    counts("Index types", indexes, "", &mut page);
    page
}

/// `docs/reference/configuration.md`.
fn configuration_page() -> String {
    let mut page = String::from(
        "# Configuration reference\n\n\
         <!-- Generated by src/reference_docs.rs from the configuration's definition (src/config.rs); \
         `UPDATE_DOCS=1 cargo test --lib reference_docs` rewrites it, and the test fails when it is stale. -->\n\n\
         Monarch takes its settings, in this order of precedence, from command-line flags, `MONARCH_*` \
         environment variables, a TOML config file (`--config`; sections and keys as in mongod's YAML \
         file) and defaults. `monarchd --validate-config` prints the merged result with secrets masked; \
         the admin port's `/config` shows the settings in effect. SIGHUP applies the runtime ones \
         ([operations runbook](../operations/runbook.md#change-a-setting)).\n\n\
         ## Flags and environment variables\n\n\
         | flag | variable | meaning |\n|---|---|---|\n",
    );
    for flag in flag_docs() {
        let value = if flag.takes_value { " VALUE" } else { "" };
        let help = flag.help.replace('\n', " ").replace('|', "\\|");
        let env = flag.env.map_or_else(String::new, |e| format!("`{e}`"));
        let _ = writeln!(page, "| `--{}{value}` | {env} | {help} |", flag.long);
    }
    page.push_str(
        "\n## Settings and their defaults\n\n\
         Every setting as `--validate-config` and `/config` report it (the config file's spelling), \
         with its value when nothing sets it. `storage.cacheSizeBytes` is derived from the host's \
         memory when `cacheSizeGB` is not given.\n\n| setting | default |\n|---|---|\n",
    );
    let defaults = Config::from_args(["monarchd"]).map(|c| c.effective()).unwrap_or_default();
    let mut rows = Vec::new();
    flatten("", &defaults, &mut rows);
    for (key, value) in rows {
        let shown = if key == "storage.cacheSizeBytes" {
            "50% of (memory - 1 GiB), at least 256 MiB".to_owned()
        } else {
            format!("`{value}`")
        };
        let _ = writeln!(page, "| `{key}` | {shown} |");
    }
    page.push_str("\n## mongod options accepted and ignored\n\nAccepted so that existing command lines and compose files keep working; each one given logs a startup warning.\n\n");
    let ignored: Vec<String> = ignored_mongod_options().map(|name| format!("`--{name}`")).collect();
    page.push_str(&ignored.join(", "));
    page.push('\n');
    page
}

/// Dotted leaves of `doc`, in order (warnings and empty sections left out).
fn flatten(prefix: &str, doc: &Document, out: &mut Vec<(String, String)>) {
    for (key, value) in doc {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match value {
            Bson::Document(inner) => flatten(&path, inner, out),
            _ if path == "warnings" => {}
            other => out.push((path, other.clone().into_relaxed_extjson().to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compares a page with its checked-in file, or rewrites the file under `UPDATE_DOCS=1`.
    fn check(relative: &str, generated: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
        if std::env::var_os("UPDATE_DOCS").is_some() {
            let written = std::fs::write(&path, generated);
            assert!(written.is_ok(), "cannot write {relative}: {written:?}");
            return;
        }
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            current == generated,
            "{relative} is stale: run `UPDATE_DOCS=1 cargo test --lib reference_docs` and commit it"
        );
    }

    #[test]
    fn configuration_reference_is_current() {
        check("docs/reference/configuration.md", &configuration_page());
    }

    #[test]
    fn compatibility_reference_is_current() {
        check("docs/reference/compatibility.md", &compatibility_page());
    }

    #[test]
    fn every_listed_name_is_one_mongod_has() {
        // A name the parsers call unknown is a typo in these lists, not a missing feature.
        let unknown_expression =
            |op: &str| matches!(expression_operator(op), Err((ErrorCode::InvalidPipelineOperator, _)));
        let unknown_query = |op: &str| matches!(query_operator(op), Err((_, m)) if m.starts_with("unknown "));
        assert!(unknown_expression("$noSuchOperator") && unknown_query("$noSuchOperator"), "the probes tell");
        for op in EXPRESSION_OPERATORS {
            assert!(!unknown_expression(op), "{op}");
        }
        for op in QUERY_OPERATORS {
            assert!(!unknown_query(op), "{op}: {:?}", query_operator(op));
        }
    }
}
