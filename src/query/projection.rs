//! `find` projections: inclusion (`{a: 1}`) or exclusion (`{a: 0}`), dotted paths and
//! sub-documents, `_id` included unless `_id: 0`.
//!
//! The spec becomes a tree of paths; applying it walks the document once, keeping the
//! document's own field order (as mongod does) and reaching through arrays of documents.
//! The find-only operators are built: `$slice` (a node of the tree), `$elemMatch` (top-level
//! fields appended after the walk, as mongod does) and positional `a.$` (an inclusion whose
//! first array is then cut down to the element the query matched). Computed fields (mongod
//! 4.4+): an expression object (`{t: {$add: ["$a", 1]}}`) or any value that is not a number
//! or a boolean (`{a: "$b"}`, `{s: "text"}`, `{l: [1, "$x"]}`) is evaluated against the whole
//! document and added after the included fields, in spec order. `$meta` answers 238
//! NotImplemented until text search exists.

use std::sync::Arc;

use bson::raw::CStr;
use bson::{Bson, Document, RawArray, RawArrayBuf, RawBsonRef, RawDocument, RawDocumentBuf, rawdoc};

use super::collation::Collation;
use super::error::QueryError;
use super::expr::{Budget, Expression, Variables, is_expression_name};
use super::filter::{Filter, true_value};
use super::limits::MAX_BSON_DEPTH;
use super::elements::{fields, items};
use super::render;
use crate::error::ErrorCode;

/// A parsed projection.
#[derive(Debug, Clone)]
pub struct Projection {
    mode: Mode,
    root: Children,
    /// `field: {$elemMatch: ...}` entries, in spec order: the field and the filter
    /// `{field: {$elemMatch: ...}}` whose matching element is kept.
    elem_matches: Vec<(String, Filter)>,
    /// A positional projection: the path before `.$` and the query that resolves it.
    positional: Option<(Vec<String>, Filter)>,
    /// Whether the tree holds computed fields (only in an inclusion projection).
    has_computed: bool,
    /// The command's `let` variables, for computed fields.
    vars: Variables,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// An empty projection: the whole document.
    Whole,
    /// Only the listed paths (and `_id` unless excluded).
    Include,
    /// Everything but the listed paths.
    Exclude,
}

type Children = Vec<(String, Node)>;

#[derive(Debug, Clone)]
enum Node {
    /// A path named by the spec: included (`true`) or excluded.
    Leaf(bool),
    /// A prefix of longer paths.
    Inner(Children),
    /// `$slice`: `limit` elements from `skip` (from the end when negative); without `skip`,
    /// the first `limit` (or the last `-limit`) elements.
    Slice { skip: Option<i32>, limit: i32 },
    /// A top-level `$elemMatch`; applied after the walk, see [`Projection::elem_matches`].
    ElemMatch,
    /// A computed field: an expression evaluated against the whole document.
    Computed(Expression),
}

/// What parsing has learnt so far (mongod's `ParseContext`).
#[derive(Default)]
struct Context<'q> {
    mode: Option<Mode>,
    id_specified: bool,
    /// `{_id: 1}` at the top (mongod's `idIncludedEntirely`).
    id_included: bool,
    has_slice: bool,
    /// Whether `find`'s own operators (`$slice` syntax, `$elemMatch`, positional) apply; not
    /// in an aggregation `$project`.
    find_features: bool,
    query: Option<&'q Filter>,
    has_computed: bool,
    elem_matches: Vec<(String, Filter)>,
    positional: Option<(Vec<String>, Filter)>,
}

impl Projection {
    /// Parses a projection spec that has no query beside it (so a positional `a.$` cannot be
    /// resolved).
    ///
    /// # Errors
    /// See [`Projection::parse_with_query`]; a positional projection is 51050.
    pub fn parse(spec: &RawDocument) -> Result<Self, QueryError> {
        Self::parse_inner(spec, None, true)
    }

    /// Parses the spec of an aggregation `$project` stage, where `find`'s own operators do not
    /// exist: `$slice` is the aggregation expression and `$elemMatch` and positional paths are
    /// refused.
    ///
    /// # Errors
    /// As [`Projection::parse_with_query`], plus 31324 for a positional path and 168
    /// InvalidPipelineOperator for `$elemMatch`.
    pub fn parse_aggregate(spec: &RawDocument) -> Result<Self, QueryError> {
        Self::parse_inner(spec, None, false)
    }

    /// Parses a `find` projection spec; `query` resolves positional projections.
    ///
    /// # Errors
    /// mongod's codes: 31253/31254 for mixing inclusion and exclusion, 31249/31250 for path
    /// collisions, 51270 for an empty sub-projection, 40352/40353/15998/16410 for bad field
    /// paths, 31257-31259/31272/31273/28667 for `$slice`, 31274/31275/31255 for `$elemMatch`,
    /// 31256/31270/31271/31276/31277/31287/31308 for positional projections; 31252/31310
    /// for a computed field in an exclusion projection, 31325 for an unknown `$`-name and
    /// the expression parse errors; 238 NotImplemented for `$meta`.
    pub fn parse_with_query(spec: &RawDocument, query: &Filter) -> Result<Self, QueryError> {
        Self::parse_inner(spec, Some(query), true)
    }

    /// Makes `$elemMatch` projections compare strings under `collation`, as the query does
    /// (a positional projection already uses the query, collation included).
    #[must_use]
    pub fn with_collation(mut self, collation: Option<&Arc<Collation>>) -> Self {
        if let Some(collation) = collation {
            self.elem_matches.iter_mut().for_each(|(_, filter)| filter.set_collation(collation));
        }
        self
    }

    fn parse_inner(spec: &RawDocument, query: Option<&Filter>, find_features: bool) -> Result<Self, QueryError> {
        if spec.is_empty() {
            return Ok(Self {
                mode: Mode::Whole,
                root: Vec::new(),
                elem_matches: Vec::new(),
                positional: None,
                has_computed: false,
                vars: Variables::new(),
            });
        }
        let mut cx = Context { query, find_features, ..Context::default() };
        let mut root = Vec::new();
        for item in spec.iter() {
            let (key, value) = item.map_err(QueryError::invalid_bson)?;
            let key = key.as_str();
            cx.id_specified |= key == "_id" || key.starts_with("_id.");
            parse_element(&mut cx, key, value, &mut root, None)?;
        }
        // mongod's `computeProjectionType` for specs without a plain inclusion or exclusion.
        let mode = cx.mode.unwrap_or(if cx.has_slice {
            if cx.id_included { Mode::Include } else { Mode::Exclude }
        } else if !cx.elem_matches.is_empty() || cx.id_included {
            Mode::Include
        } else {
            Mode::Exclude
        });
        if mode == Mode::Include && !cx.id_specified {
            root.push(("_id".to_owned(), Node::Leaf(true)));
        }
        if mode == Mode::Exclude {
            // `{_id: 1, a: 0}` is an exclusion that keeps `_id`: nothing to do for `_id`.
            root.retain(|(key, node)| !(key == "_id" && matches!(node, Node::Leaf(true))));
        }
        Ok(Self {
            mode,
            root,
            elem_matches: cx.elem_matches,
            positional: cx.positional,
            has_computed: cx.has_computed,
            vars: Variables::new(),
        })
    }

    /// Binds a command's `let` variables for the computed fields.
    #[must_use]
    pub fn with_variables(mut self, vars: &Variables) -> Self {
        self.vars = vars.clone();
        self
    }

    /// Whether the projection returns documents unchanged.
    pub fn is_whole_document(&self) -> bool {
        self.mode == Mode::Whole
    }

    /// The projected copy of `doc`, which must match the query the projection was parsed with.
    ///
    /// # Errors
    /// 51246 when a positional projection meets an array but the query matched `doc` without
    /// an array element, 51247 when that element is not in the projected array; the
    /// evaluation errors of computed fields.
    pub fn apply(&self, doc: &RawDocument) -> Result<RawDocumentBuf, QueryError> {
        let mut out = match self.mode {
            Mode::Whole => return Ok(doc.to_owned()),
            Mode::Include => include_document(doc, &self.root, 0),
            Mode::Exclude => exclude_document(doc, &self.root, 0),
        };
        if self.has_computed {
            let mut owned = super::limits::to_document(&out)?;
            add_computed(&mut owned, &self.root, doc, &self.vars, &mut Budget::default())?;
            out = RawDocumentBuf::try_from(&owned).map_err(QueryError::invalid_bson)?;
        }
        if let Some((path, query)) = &self.positional {
            out = apply_positional(&out, path, query.first_array_match(doc))?;
        }
        for (field, filter) in &self.elem_matches {
            let element = filter.first_array_match(doc).and_then(|position| match doc.get(field) {
                Ok(Some(RawBsonRef::Array(arr))) => items(arr).nth(position),
                _ => None,
            });
            out = set_top_level(&out, field, element);
        }
        Ok(out)
    }
}

/// `doc` with `field` set to `[value]` (in place when present, appended otherwise), or removed
/// when `value` is `None`: how mongod writes an `$elemMatch` projection's result.
fn set_top_level(doc: &RawDocument, field: &str, value: Option<RawBsonRef<'_>>) -> RawDocumentBuf {
    let single = value.map(|v| {
        let mut arr = RawArrayBuf::new();
        arr.push(v);
        arr
    });
    let mut out = RawDocumentBuf::new();
    let mut placed = false;
    for (key, existing) in doc.iter().map_while(Result::ok) {
        if key.as_str() != field {
            out.append(key, existing);
        } else if let Some(arr) = &single {
            out.append(key, arr.clone());
            placed = true;
        }
    }
    if let (false, Some(arr), Ok(key)) = (placed, single, <&CStr>::try_from(field)) {
        out.append(key, arr);
    }
    out
}

/// mongod's `applyPositionalProjection`: the first array along `path` in the projected
/// document becomes a one-element array holding the element the query matched.
fn apply_positional(doc: &RawDocument, path: &[String], key: Option<usize>) -> Result<RawDocumentBuf, QueryError> {
    let Some((first, rest)) = path.split_first() else { return Ok(doc.to_owned()) };
    let mut out = RawDocumentBuf::new();
    for (name, value) in doc.iter().map_while(Result::ok) {
        if name.as_str() != first {
            out.append(name, value);
            continue;
        }
        match value {
            RawBsonRef::Array(arr) => {
                let position = key.ok_or_else(|| {
                    QueryError::new(
                        ErrorCode::Location51246,
                        "positional operator '.$' couldn't find a matching element in the array",
                    )
                })?;
                let element = items(arr).nth(position).ok_or_else(|| {
                    QueryError::new(ErrorCode::Location51247, "positional operator '.$' element mismatch")
                })?;
                let mut single = RawArrayBuf::new();
                single.push(element);
                out.append(name, single);
            }
            RawBsonRef::Document(sub) if !rest.is_empty() => out.append(name, apply_positional(sub, rest, key)?),
            other => out.append(name, other),
        }
    }
    Ok(out)
}

/// Where the first positional operator is in a projection path: `.$.` inside, `.$` at the
/// end, or the whole path `$` (mongod's `findFirstPositionalOperator`).
fn find_positional(path: &str) -> Option<(usize, usize)> {
    if let Some(at) = path.find(".$.") {
        return Some((at, at + 3));
    }
    if path.ends_with(".$") {
        return Some((path.len() - 2, path.len()));
    }
    (path == "$").then_some((0, path.len()))
}

fn parse_element(
    cx: &mut Context<'_>,
    key: &str,
    value: RawBsonRef<'_>,
    parent: &mut Children,
    prefix: Option<&str>,
) -> Result<(), QueryError> {
    // The full path (a sub-object's keys continue its parent's) is one `FieldPath`, so the
    // projection tree and every walk over it stay within 200 levels.
    let prefix_parts = prefix.map_or(0, |p| p.split('.').count());
    super::limits::check_field_path_parts(prefix_parts + key.split('.').count())?;
    let positional = find_positional(key);
    if positional.is_some() && !cx.find_features {
        return Err(QueryError::new(
            ErrorCode::Location31324,
            "Cannot use positional projection in aggregation projection",
        ));
    }
    match value {
        RawBsonRef::Document(sub) => {
            if positional.is_some() {
                return Err(QueryError::new(
                    ErrorCode::Location31271,
                    "positional projection cannot be used with an expression or sub object",
                ));
            }
            parse_sub_object(cx, key, sub, parent, prefix)
        }
        RawBsonRef::Boolean(_)
        | RawBsonRef::Int32(_)
        | RawBsonRef::Int64(_)
        | RawBsonRef::Double(_)
        | RawBsonRef::Decimal128(_) => {
            let include = true_value(value);
            let top_level_id = prefix.is_none() && key == "_id";
            match positional {
                Some(location) if include => parse_positional(cx, key, location, parent, prefix)?,
                _ => add_node(parent, key, Node::Leaf(include))?,
            }
            if top_level_id {
                cx.id_included = include;
                return Ok(());
            }
            set_mode(cx, key, if include { Mode::Include } else { Mode::Exclude })
        }
        _ if positional.is_some() => {
            Err(QueryError::new(ErrorCode::Location31308, "positional projection cannot be used with a literal"))
        }
        // mongod's `parseLiteral`: a string starting with `$` is a field path, an array an
        // array expression, anything else a constant.
        _ => {
            add_node(parent, key, Node::Computed(Expression::parse(value)?))?;
            cx.has_computed = true;
            if cx.mode == Some(Mode::Exclude) {
                return Err(QueryError::new(
                    ErrorCode::Location31310,
                    format!("Cannot use an expression {} in an exclusion projection", render::element(key, value)),
                ));
            }
            cx.mode = Some(Mode::Include);
            Ok(())
        }
    }
}

/// mongod's `attemptToParseGenericExpression`: `{key: {$op: ...}}` as a computed field.
fn parse_expression(
    cx: &mut Context<'_>,
    key: &str,
    op: &str,
    sub: &RawDocument,
    parent: &mut Children,
) -> Result<(), QueryError> {
    let is_meta = op == "$meta";
    if cx.mode == Some(Mode::Exclude) && !is_meta {
        return Err(QueryError::new(
            ErrorCode::Location31252,
            "Cannot use expression other than $meta in exclusion projection",
        ));
    }
    let expr = Expression::parse(RawBsonRef::Document(sub))?;
    add_node(parent, key, Node::Computed(expr))?;
    cx.has_computed = true;
    cx.mode = Some(Mode::Include);
    Ok(())
}

/// mongod's positional branch of `parseInclusion`.
fn parse_positional(
    cx: &mut Context<'_>,
    key: &str,
    (begin, end): (usize, usize),
    parent: &mut Children,
    prefix: Option<&str>,
) -> Result<(), QueryError> {
    if cx.positional.is_some() {
        return Err(QueryError::new(
            ErrorCode::Location31276,
            "Cannot specify more than one positional projection per query.",
        ));
    }
    if !cx.elem_matches.is_empty() {
        return Err(QueryError::new(ErrorCode::Location31256, "Cannot specify positional operator and $elemMatch."));
    }
    let Some(query) = cx.query else {
        return Err(QueryError::new(
            ErrorCode::Location51050,
            "Projections with a positional operator require a matcher",
        ));
    };
    let full_key = match prefix {
        Some(prefix) => format!("{prefix}.{key}"),
        None => key.to_owned(),
    };
    let match_field = full_key.split('.').next().unwrap_or_default();
    if !query.has_path_with_prefix(match_field) {
        return Err(QueryError::new(
            ErrorCode::Location31277,
            format!("Positional projection '{key}' does not match the query document."),
        ));
    }
    if key.ends_with(".$.") {
        return Err(QueryError::new(ErrorCode::Location31270, "Path cannot end with '.$.'"));
    }
    let remaining = key.get(end..).unwrap_or_default();
    if find_positional(remaining).is_some() || remaining == "$" {
        return Err(QueryError::new(ErrorCode::Location31287, format!("Cannot use positional operator twice: {key}")));
    }
    let before = key.get(..begin).unwrap_or_default();
    add_node(parent, before, Node::Leaf(true))?;
    let full_before = match prefix {
        Some(prefix) => format!("{prefix}.{before}"),
        None => before.to_owned(),
    };
    cx.positional = Some((full_before.split('.').map(str::to_owned).collect(), query.clone()));
    Ok(())
}

fn set_mode(cx: &mut Context<'_>, key: &str, mode: Mode) -> Result<(), QueryError> {
    match (cx.mode, mode) {
        (Some(Mode::Exclude), Mode::Include) => Err(QueryError::new(
            ErrorCode::Location31253,
            format!("Cannot do inclusion on field {key} in exclusion projection"),
        )),
        (Some(Mode::Include), Mode::Exclude) => Err(QueryError::new(
            ErrorCode::Location31254,
            format!("Cannot do exclusion on field {key} in inclusion projection"),
        )),
        _ => {
            cx.mode = Some(mode);
            Ok(())
        }
    }
}

/// `{a: {...}}`: an expression such as `{$slice: 2}` when it has one `$` field, otherwise a
/// sub-projection whose paths are relative to `a`.
fn parse_sub_object(
    cx: &mut Context<'_>,
    key: &str,
    sub: &RawDocument,
    parent: &mut Children,
    prefix: Option<&str>,
) -> Result<(), QueryError> {
    let mut sub_fields = fields(sub);
    let Some((first, first_value)) = sub_fields.next() else {
        return Err(QueryError::new(ErrorCode::Location51270, format!("Invalid empty sub-projection: {key}")));
    };
    if first.starts_with('$') && sub_fields.next().is_none() {
        return match first {
            "$slice" if cx.find_features => parse_slice(cx, key, sub, first_value, parent),
            "$elemMatch" if cx.find_features => parse_elem_match(cx, key, first_value, parent, prefix),
            "$elemMatch" => {
                Err(QueryError::new(ErrorCode::InvalidPipelineOperator, "Cannot use $elemMatch in this context"))
            }
            _ if is_expression_name(first) => parse_expression(cx, key, first, sub, parent),
            // A `$` name is never a valid field path, so mongod's fallback always refuses it.
            _ => Err(QueryError::new(ErrorCode::Location31325, format!("Unknown expression {first}"))),
        };
    }
    let parts = super::path::checked_parts(key)?;
    if inner_at(parent, &parts).is_none() {
        add_node(parent, key, Node::Inner(Vec::new()))?;
    }
    let children = inner_at(parent, &parts)
        .ok_or_else(|| QueryError::new(ErrorCode::InternalError, format!("projection path {key} vanished")))?;
    let full_key = match prefix {
        Some(prefix) => format!("{prefix}.{key}"),
        None => key.to_owned(),
    };
    for (child_key, child_value) in fields(sub) {
        parse_element(cx, child_key, child_value, children, Some(&full_key))?;
    }
    Ok(())
}

/// mongod's `attemptToParseFindSlice`. Arguments that are not find syntax fall back, as in
/// mongod, to the aggregation `$slice` expression (a computed field); when that does not
/// parse either, its error comes back with both reasons in the message.
fn parse_slice(
    cx: &mut Context<'_>,
    key: &str,
    sub: &RawDocument,
    arg: RawBsonRef<'_>,
    parent: &mut Children,
) -> Result<(), QueryError> {
    let find_syntax = match arg {
        RawBsonRef::Array(arr) => {
            let entries: Vec<RawBsonRef<'_>> = items(arr).collect();
            match entries.as_slice() {
                [skip, limit] => {
                    if !is_number(*skip) {
                        Err(QueryError::new(
                            ErrorCode::Location31257,
                            format!("$slice expects the skip argument to be a number, got {}", type_of(*skip)),
                        ))
                    } else if !is_number(*limit) {
                        Err(QueryError::new(
                            ErrorCode::Location31258,
                            format!("$slice expects the limit argument to be a number, got {}", type_of(*limit)),
                        ))
                    } else if number_int(*limit) <= 0 {
                        Err(QueryError::new(
                            ErrorCode::Location31259,
                            format!("$slice limit must be positive, got {}", number_int(*limit)),
                        ))
                    } else {
                        Ok(Node::Slice { skip: Some(number_int(*skip)), limit: number_int(*limit) })
                    }
                }
                _ => Err(QueryError::new(
                    ErrorCode::Location31272,
                    "$slice array argument should be of form [skip, limit]",
                )),
            }
        }
        value if is_number(value) => Ok(Node::Slice { skip: None, limit: number_int(value) }),
        _ => Err(QueryError::new(ErrorCode::Location31273, "$slice only supports numbers and [skip, limit] arrays")),
    };
    let node = match find_syntax {
        Ok(node) => node,
        Err(find_error) => {
            return parse_expression(cx, key, "$slice", sub, parent).map_err(|expr_error| {
                let spec = render::element("$slice", arg);
                QueryError::new(
                    expr_error.code(),
                    format!(
                        "Invalid $slice syntax. The given syntax {{ {spec} }} did not match the find() syntax \
                         because :: {}: {} :: The given syntax did not match the expression $slice syntax. :: \
                         caused by :: {}",
                        find_error.code().name(),
                        find_error.message(),
                        expr_error.message()
                    ),
                )
            });
        }
    };
    add_node(parent, key, node)?;
    cx.has_slice = true;
    Ok(())
}

/// A `$elemMatch` projection: checked like mongod, compiled to the filter
/// `{key: {$elemMatch: arg}}`.
fn parse_elem_match(
    cx: &mut Context<'_>,
    key: &str,
    arg: RawBsonRef<'_>,
    parent: &mut Children,
    prefix: Option<&str>,
) -> Result<(), QueryError> {
    let RawBsonRef::Document(spec) = arg else {
        return Err(QueryError::new(
            ErrorCode::Location31274,
            format!("elemMatch: Invalid argument, object required, but got {}", type_of(arg)),
        ));
    };
    if cx.positional.is_some() {
        return Err(QueryError::new(ErrorCode::Location31255, "Cannot specify positional operator and $elemMatch."));
    }
    if prefix.is_some() || key.contains('.') {
        return Err(QueryError::new(ErrorCode::Location31275, "Cannot use $elemMatch projection on a nested field."));
    }
    let field = <&CStr>::try_from(key).map_err(QueryError::invalid_bson)?;
    let mut filter_doc = RawDocumentBuf::new();
    filter_doc.append(field, rawdoc! { "$elemMatch": spec.to_owned() });
    let filter = Filter::parse(&filter_doc)?;
    add_node(parent, key, Node::ElemMatch)?;
    cx.elem_matches.push((key.to_owned(), filter));
    Ok(())
}

fn is_number(v: RawBsonRef<'_>) -> bool {
    matches!(v, RawBsonRef::Int32(_) | RawBsonRef::Int64(_) | RawBsonRef::Double(_) | RawBsonRef::Decimal128(_))
}

/// mongod's `BSONElement::numberInt`: integers wrap to 32 bits, doubles truncate.
fn number_int(v: RawBsonRef<'_>) -> i32 {
    match v {
        RawBsonRef::Int32(i) => i,
        // Keeping the low 32 bits is what a C++ cast to int does.
        RawBsonRef::Int64(i) => i as i32,
        // A saturating cast: mongod's double-to-int conversion for out-of-range values is
        // undefined, saturation is the sane reading.
        RawBsonRef::Double(d) => d as i32,
        RawBsonRef::Decimal128(d) => d.to_string().parse::<f64>().map_or(0, |d| d as i32),
        _ => 0,
    }
}

fn type_of(v: RawBsonRef<'_>) -> &'static str {
    render::type_name(v.element_type())
}

/// The inner node at `parts`, if every step exists and is inner.
fn inner_at<'a>(children: &'a mut Children, parts: &[&str]) -> Option<&'a mut Children> {
    let (first, rest) = parts.split_first()?;
    let (_, node) = children.iter_mut().find(|(name, _)| name == first)?;
    let Node::Inner(grandchildren) = node else { return None };
    if rest.is_empty() { Some(grandchildren) } else { inner_at(grandchildren, rest) }
}

/// Adds `node` at the dotted `path` below `children`, as mongod's `addNodeAtPath`.
fn add_node(children: &mut Children, path: &str, node: Node) -> Result<(), QueryError> {
    let parts = super::path::checked_parts(path)?;
    let tail = parts.get(1..).unwrap_or_default().join(".");
    add_node_at(children, &parts, path, &tail, node)
}

fn add_node_at(children: &mut Children, parts: &[&str], full: &str, tail: &str, node: Node) -> Result<(), QueryError> {
    let Some((first, rest)) = parts.split_first() else { return Ok(()) };
    let existing = children.iter().position(|(name, _)| name == first);
    if rest.is_empty() {
        if existing.is_some() {
            return Err(QueryError::new(ErrorCode::Location31250, format!("Path collision at {full}")));
        }
        children.push(((*first).to_owned(), node));
        return Ok(());
    }
    let index = match existing {
        Some(index) => index,
        None => {
            children.push(((*first).to_owned(), Node::Inner(Vec::new())));
            children.len() - 1
        }
    };
    match children.get_mut(index).map(|(_, n)| n) {
        Some(Node::Inner(grandchildren)) => add_node_at(grandchildren, rest, full, tail, node),
        _ => {
            Err(QueryError::new(ErrorCode::Location31249, format!("Path collision at {full} remaining portion {tail}")))
        }
    }
}

fn child<'a>(children: &'a Children, key: &str) -> Option<&'a Node> {
    children.iter().find(|(name, _)| name == key).map(|(_, node)| node)
}

/// The included part of `doc`, `depth` documents and arrays down.
fn include_document(doc: &RawDocument, children: &Children, depth: usize) -> RawDocumentBuf {
    let mut out = RawDocumentBuf::new();
    for item in doc.iter().map_while(Result::ok) {
        let (key, value): (&CStr, RawBsonRef<'_>) = item;
        match (child(children, key.as_str()), value) {
            (Some(Node::Leaf(true)), _) => out.append(key, value),
            (Some(Node::Slice { skip, limit }), RawBsonRef::Array(a)) => out.append(key, slice(a, *skip, *limit)),
            (Some(Node::Slice { .. }), _) => out.append(key, value),
            (Some(Node::Inner(sub)), RawBsonRef::Document(d)) => out.append(key, include_document(d, sub, depth + 1)),
            (Some(Node::Inner(sub)), RawBsonRef::Array(a)) => out.append(key, include_array(a, sub, depth + 1)),
            // Unlisted fields, excluded `_id`, and scalars under a sub-path are dropped.
            _ => {}
        }
    }
    out
}

/// [`include_document`] applied to the elements of an array. Nested arrays keep the same
/// sub-projection, so this recursion follows the document rather than the projection: past
/// mongod's depth limit (only a document stored by an older version goes there) nested
/// arrays are left out.
fn include_array(arr: &RawArray, children: &Children, depth: usize) -> RawArrayBuf {
    let mut out = RawArrayBuf::new();
    for value in items(arr) {
        match value {
            RawBsonRef::Document(d) => out.push(include_document(d, children, depth + 1)),
            RawBsonRef::Array(a) if depth < MAX_BSON_DEPTH => out.push(include_array(a, children, depth + 1)),
            _ => {}
        }
    }
    out
}

/// mongod's `InclusionNode::applyExpressions`: after the included fields, each computed field
/// is evaluated against `root` and set (a missing result sets nothing), and each sub-tree
/// holding computed fields is applied to what the walk kept there.
/// The computed fields of one document share one `budget`.
fn add_computed(
    out: &mut Document,
    children: &Children,
    root: &RawDocument,
    vars: &Variables,
    budget: &mut Budget,
) -> Result<(), QueryError> {
    for (key, node) in children {
        match node {
            Node::Computed(expr) => {
                if let Some(value) = expr.evaluate_in(root, vars, budget)? {
                    out.insert(key.clone(), value);
                }
            }
            Node::Inner(sub) if has_computed(sub) => {
                let value = computed_in_value(out.get(key).cloned(), sub, root, vars, budget)?;
                out.insert(key.clone(), value);
            }
            _ => {}
        }
    }
    Ok(())
}

/// mongod's `applyExpressionsToValue`: into a document, into each element of an array, and in
/// place of anything else (or nothing) a new document of the computed fields.
fn computed_in_value(
    value: Option<Bson>,
    children: &Children,
    root: &RawDocument,
    vars: &Variables,
    budget: &mut Budget,
) -> Result<Bson, QueryError> {
    Ok(match value {
        Some(Bson::Document(mut doc)) => {
            add_computed(&mut doc, children, root, vars, budget)?;
            Bson::Document(doc)
        }
        Some(Bson::Array(list)) => Bson::Array(
            list.into_iter()
                .map(|item| computed_in_value(Some(item), children, root, vars, budget))
                .collect::<Result<_, _>>()?,
        ),
        _ => {
            let mut doc = Document::new();
            add_computed(&mut doc, children, root, vars, budget)?;
            Bson::Document(doc)
        }
    })
}

fn has_computed(children: &Children) -> bool {
    children.iter().any(|(_, node)| match node {
        Node::Computed(_) => true,
        Node::Inner(sub) => has_computed(sub),
        _ => false,
    })
}

/// `doc` without its excluded parts, `depth` documents and arrays down.
fn exclude_document(doc: &RawDocument, children: &Children, depth: usize) -> RawDocumentBuf {
    let mut out = RawDocumentBuf::new();
    for item in doc.iter().map_while(Result::ok) {
        let (key, value): (&CStr, RawBsonRef<'_>) = item;
        match (child(children, key.as_str()), value) {
            (Some(Node::Leaf(false)), _) => {}
            (Some(Node::Slice { skip, limit }), RawBsonRef::Array(a)) => out.append(key, slice(a, *skip, *limit)),
            (Some(Node::Inner(sub)), RawBsonRef::Document(d)) => out.append(key, exclude_document(d, sub, depth + 1)),
            (Some(Node::Inner(sub)), RawBsonRef::Array(a)) => out.append(key, exclude_array(a, sub, depth + 1)),
            _ => out.append(key, value),
        }
    }
    out
}

/// The elements `$slice` keeps (mongod's `applyFindSliceProjectionToArray`).
fn slice(arr: &RawArray, skip: Option<i32>, limit: i32) -> RawArrayBuf {
    let all: Vec<RawBsonRef<'_>> = items(arr).collect();
    let len = all.len();
    let magnitude = |n: i32| usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
    let (start, count) = match skip {
        None if limit >= 0 => (0, magnitude(limit)),
        None => (len.saturating_sub(magnitude(limit)), len),
        Some(skip) if skip >= 0 => (magnitude(skip), magnitude(limit)),
        Some(skip) => (len.saturating_sub(magnitude(skip)), magnitude(limit)),
    };
    let mut out = RawArrayBuf::new();
    for value in all.into_iter().skip(start).take(count) {
        out.push(value);
    }
    out
}

/// [`exclude_document`] applied to the elements of an array; past mongod's depth limit (see
/// [`include_array`]) nested arrays are kept as they are.
fn exclude_array(arr: &RawArray, children: &Children, depth: usize) -> RawArrayBuf {
    let mut out = RawArrayBuf::new();
    for value in items(arr) {
        match value {
            RawBsonRef::Document(d) => out.push(exclude_document(d, children, depth + 1)),
            RawBsonRef::Array(a) if depth < MAX_BSON_DEPTH => out.push(exclude_array(a, children, depth + 1)),
            _ => out.push(value),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::rawdoc;

    fn project(spec: RawDocumentBuf, doc: RawDocumentBuf) -> RawDocumentBuf {
        Projection::parse(&spec).unwrap().apply(&doc).unwrap()
    }

    /// Projects `doc` (which must match `query`) with a query-aware projection.
    fn project_q(
        query: RawDocumentBuf,
        spec: RawDocumentBuf,
        doc: RawDocumentBuf,
    ) -> Result<RawDocumentBuf, (i32, String)> {
        let filter = Filter::parse(&query).unwrap();
        assert!(filter.matches(&doc), "the document must match the query");
        let projection =
            Projection::parse_with_query(&spec, &filter).map_err(|e| (e.code().code(), e.message().to_owned()))?;
        projection.apply(&doc).map_err(|e| (e.code().code(), e.message().to_owned()))
    }

    fn parse_err_q(query: RawDocumentBuf, spec: RawDocumentBuf) -> (i32, String) {
        let filter = Filter::parse(&query).unwrap();
        let err = Projection::parse_with_query(&spec, &filter).unwrap_err();
        (err.code().code(), err.message().to_owned())
    }

    fn parse_err(spec: RawDocumentBuf) -> (i32, String) {
        let err = Projection::parse(&spec).unwrap_err();
        (err.code().code(), err.message().to_owned())
    }

    #[test]
    fn projection_empty_returns_whole_document() {
        let doc = rawdoc! { "_id": 1, "a": 2 };
        assert!(Projection::parse(&rawdoc! {}).unwrap().is_whole_document());
        assert_eq!(project(rawdoc! {}, doc.clone()), doc);
    }

    #[test]
    fn projection_include_keeps_id_and_document_order() {
        let doc = rawdoc! { "_id": 1, "a": 2, "b": 3, "c": 4 };
        assert_eq!(project(rawdoc! { "c": 1, "a": true }, doc), rawdoc! { "_id": 1, "a": 2, "c": 4 });
    }

    #[test]
    fn projection_include_without_id() {
        let doc = rawdoc! { "_id": 1, "a": 2, "b": 3 };
        assert_eq!(project(rawdoc! { "_id": 0, "a": 1 }, doc), rawdoc! { "a": 2 });
    }

    #[test]
    fn projection_include_only_id() {
        let doc = rawdoc! { "_id": 1, "a": 2 };
        assert_eq!(project(rawdoc! { "_id": 1 }, doc), rawdoc! { "_id": 1 });
    }

    #[test]
    fn projection_exclude_fields_and_id() {
        let doc = rawdoc! { "_id": 1, "a": 2, "b": 3 };
        assert_eq!(project(rawdoc! { "a": 0 }, doc.clone()), rawdoc! { "_id": 1, "b": 3 });
        assert_eq!(project(rawdoc! { "_id": 0 }, doc.clone()), rawdoc! { "a": 2, "b": 3 });
        assert_eq!(project(rawdoc! { "_id": 1, "a": 0 }, doc), rawdoc! { "_id": 1, "b": 3 });
    }

    #[test]
    fn projection_include_dotted_keeps_only_subfield() {
        let doc = rawdoc! { "_id": 1, "a": { "b": 1, "c": 2 }, "d": 3 };
        assert_eq!(project(rawdoc! { "a.b": 1 }, doc), rawdoc! { "_id": 1, "a": { "b": 1 } });
    }

    #[test]
    fn projection_include_dotted_through_arrays() {
        let doc = rawdoc! { "a": [ { "b": 1, "c": 2 }, 5, [ { "b": 3 }, 6 ], {} ] };
        assert_eq!(project(rawdoc! { "_id": 0, "a.b": 1 }, doc), rawdoc! { "a": [ { "b": 1 }, [ { "b": 3 } ], {} ] });
    }

    #[test]
    fn projection_include_dotted_missing_or_scalar_parent() {
        assert_eq!(project(rawdoc! { "_id": 0, "a.b": 1 }, rawdoc! { "a": 4 }), rawdoc! {});
        assert_eq!(project(rawdoc! { "_id": 0, "a.b": 1 }, rawdoc! { "a": {} }), rawdoc! { "a": {} });
        assert_eq!(project(rawdoc! { "_id": 0, "a.b": 1 }, rawdoc! { "a": [1, 2] }), rawdoc! { "a": [] });
    }

    #[test]
    fn projection_sub_object_equals_dotted_path() {
        let doc = rawdoc! { "a": { "b": 1, "c": 2 } };
        assert_eq!(project(rawdoc! { "_id": 0, "a": { "c": 1 } }, doc), rawdoc! { "a": { "c": 2 } });
    }

    #[test]
    fn projection_exclude_dotted_through_arrays() {
        let doc = rawdoc! { "_id": 1, "a": [ { "b": 1, "c": 2 }, 5 ], "x": { "b": 1 } };
        assert_eq!(project(rawdoc! { "a.b": 0 }, doc), rawdoc! { "_id": 1, "a": [ { "c": 2 }, 5 ], "x": { "b": 1 } });
    }

    #[test]
    fn projection_mixing_inclusion_and_exclusion_is_31254_or_31253() {
        assert_eq!(
            parse_err(rawdoc! { "a": 1, "b": 0 }),
            (31254, "Cannot do exclusion on field b in inclusion projection".into())
        );
        assert_eq!(
            parse_err(rawdoc! { "a": 0, "b": 1 }),
            (31253, "Cannot do inclusion on field b in exclusion projection".into())
        );
        assert_eq!(parse_err(rawdoc! { "a": 1, "_id.x": 0 }).0, 31254);
    }

    #[test]
    fn projection_path_collisions() {
        assert_eq!(parse_err(rawdoc! { "a.b": 1, "a": 1 }), (31250, "Path collision at a".into()));
        assert_eq!(
            parse_err(rawdoc! { "a": 1, "a.b.c": 1 }),
            (31249, "Path collision at a.b.c remaining portion b.c".into())
        );
    }

    #[test]
    fn projection_field_path_errors() {
        assert_eq!(parse_err(rawdoc! { "": 1 }).0, 40352);
        assert_eq!(parse_err(rawdoc! { "a.": 1 }).0, 40353);
        assert_eq!(parse_err(rawdoc! { "a..b": 1 }).0, 15998);
        assert_eq!(parse_err(rawdoc! { "$a": 1 }).0, 16410);
        assert_eq!(parse_err(rawdoc! { "a": {} }), (51270, "Invalid empty sub-projection: a".into()));
    }

    #[test]
    fn projection_aggregate_has_no_find_operators() {
        let err = |spec: RawDocumentBuf| {
            let e = Projection::parse_aggregate(&spec).unwrap_err();
            (e.code().code(), e.message().to_owned())
        };
        assert_eq!(
            err(rawdoc! { "a.$": 1 }),
            (31324, "Cannot use positional projection in aggregation projection".into())
        );
        assert_eq!(
            err(rawdoc! { "a": { "$elemMatch": { "b": 1 } } }),
            (168, "Cannot use $elemMatch in this context".into())
        );
        assert_eq!(
            err(rawdoc! { "a": { "$slice": 1 } }),
            (28667, "Expression $slice takes at least 2 arguments, and at most 3, but 1 were passed in.".into())
        );
        let sliced = Projection::parse_aggregate(&rawdoc! { "a": { "$slice": ["$a", 1] } }).unwrap();
        assert_eq!(sliced.apply(&rawdoc! { "_id": 1, "a": [5, 6] }).unwrap(), rawdoc! { "_id": 1, "a": [5] });
        let doc = rawdoc! { "_id": 1, "a": 2 };
        assert_eq!(Projection::parse_aggregate(&rawdoc! { "a": 1 }).unwrap().apply(&doc).unwrap(), doc);
    }

    /// The element `a.$` keeps comes from the part of the query that matched the array.
    #[test]
    fn projection_positional_follows_match_key() {
        let doc =
            rawdoc! { "_id": 1, "g": [ { "k": 1, "m": 9 }, { "k": 2, "m": 8 }, { "k": 2, "m": 7 } ], "x": [5, 6] };
        let rows: Vec<(RawDocumentBuf, RawDocumentBuf, Result<RawDocumentBuf, i32>)> = vec![
            (rawdoc! { "g.k": 2 }, rawdoc! { "g.$": 1 }, Ok(rawdoc! { "_id": 1, "g": [ { "k": 2, "m": 8 } ] })),
            (
                rawdoc! { "g": { "$elemMatch": { "k": 2, "m": { "$lt": 8 } } } },
                rawdoc! { "g.$": 1 },
                Ok(rawdoc! { "_id": 1, "g": [ { "k": 2, "m": 7 } ] }),
            ),
            // The last condition to reach an array decides, even another array's.
            (rawdoc! { "g.k": 2, "x": 6 }, rawdoc! { "g.$": 1 }, Ok(rawdoc! { "_id": 1, "g": [ { "k": 2, "m": 8 } ] })),
            (rawdoc! { "x": 6, "g.k": 1 }, rawdoc! { "x.$": 1 }, Ok(rawdoc! { "_id": 1, "x": [5] })),
            (
                rawdoc! { "$and": [ { "g.m": 9 }, { "g.m": { "$lt": 9 } } ] },
                rawdoc! { "g.$": 1 },
                Ok(rawdoc! { "_id": 1, "g": [ { "k": 2, "m": 8 } ] }),
            ),
            (
                rawdoc! { "$or": [ { "g.m": 7 } ] },
                rawdoc! { "g.$": 1 },
                Ok(rawdoc! { "_id": 1, "g": [ { "k": 2, "m": 7 } ] }),
            ),
            (
                rawdoc! { "$or": [ { "g.m": 7 }, { "g.m": 8 } ] },
                rawdoc! { "g.$": 1 },
                Ok(rawdoc! { "_id": 1, "g": [ { "k": 2, "m": 8 } ] }),
            ),
            // An `$or` over different paths records no element.
            (rawdoc! { "$or": [ { "g.m": 7 }, { "x": 0 } ] }, rawdoc! { "g.$": 1 }, Err(51246)),
        ];
        for (query, spec, expected) in rows {
            let label = format!("{query:?} {spec:?}");
            assert_eq!(project_q(query, spec, doc.clone()).map_err(|e| e.0), expected, "{label}");
        }
    }

    #[test]
    fn projection_meta_not_implemented() {
        assert_eq!(parse_err(rawdoc! { "a": { "$meta": "textScore" } }).0, 238);
        assert_eq!(parse_err(rawdoc! { "_id": 0, "a": { "$meta": "textScore" } }).0, 238);
    }

    #[test]
    fn projection_computed_fields() {
        let doc = rawdoc! { "_id": 7, "a": 2, "b": 3, "s": { "x": 1, "y": 2 }, "arr": [ { "x": 1 }, { "x": 2 }, 5 ] };
        let rows: Vec<(RawDocumentBuf, RawDocumentBuf)> = vec![
            (
                rawdoc! { "total": { "$add": ["$a", "$b"] }, "a": 1, "lit": { "$literal": 5 } },
                rawdoc! { "_id": 7, "a": 2, "total": 5, "lit": 5 },
            ),
            // Any value but a number or a boolean is an expression: a field path, a string
            // constant, null, an array of expressions.
            (rawdoc! { "_id": 0, "c": "$b" }, rawdoc! { "c": 3 }),
            (rawdoc! { "_id": 0, "c": "text" }, rawdoc! { "c": "text" }),
            (rawdoc! { "_id": 0, "c": null }, rawdoc! { "c": null }),
            (rawdoc! { "_id": 0, "c": ["$a", "$missing", 1] }, rawdoc! { "c": [2, null, 1] }),
            // A missing result sets nothing.
            (rawdoc! { "_id": 0, "c": "$missing" }, rawdoc! {}),
            (rawdoc! { "_id": 0, "c": "$$REMOVE", "a": 1 }, rawdoc! { "a": 2 }),
            (rawdoc! { "_id": 0, "r": "$$ROOT.s.x" }, rawdoc! { "r": 1 }),
            // Computed fields follow the included ones, in spec order.
            (rawdoc! { "z": 1, "b": 1, "_id": 1, "a": 1 }, rawdoc! { "_id": 7, "a": 2, "b": 3 }),
            (rawdoc! { "c": "$a", "a": 1 }, rawdoc! { "_id": 7, "a": 2, "c": 2 }),
            // A computed `_id` replaces the stored one, after the included fields.
            (rawdoc! { "_id": "$a", "b": 1 }, rawdoc! { "b": 3, "_id": 2 }),
            // Nested: inside the included sub-document, into each array element, and as a new
            // document where the path is missing or a scalar.
            (rawdoc! { "_id": 0, "s.x": 1, "s.z": "$a" }, rawdoc! { "s": { "x": 1, "z": 2 } }),
            (rawdoc! { "_id": 0, "s": { "z": { "$literal": 1 } } }, rawdoc! { "s": { "z": 1 } }),
            (rawdoc! { "_id": 0, "arr.y": "$a" }, rawdoc! { "arr": [ { "y": 2 }, { "y": 2 } ] }),
            (rawdoc! { "_id": 0, "new.y": "$a" }, rawdoc! { "new": { "y": 2 } }),
            (rawdoc! { "_id": 0, "a.y": "$b" }, rawdoc! { "a": { "y": 3 } }),
            // The aggregation `$slice` when the find syntax does not fit.
            (rawdoc! { "_id": 0, "f": { "$slice": ["$arr.x", 1] } }, rawdoc! { "f": [1] }),
            (rawdoc! { "_id": 0, "f": { "$slice": ["$arr.x", -1, 1] } }, rawdoc! { "f": [2] }),
        ];
        for (spec, expected) in rows {
            assert_eq!(project(spec.clone(), doc.clone()), expected, "{spec:?}");
        }
    }

    #[test]
    fn projection_computed_uses_let_variables() {
        let vars = Variables::from_let(&rawdoc! { "v": { "$add": [1, 1] } }).unwrap();
        let projection = Projection::parse(&rawdoc! { "_id": 0, "x": "$$v" }).unwrap().with_variables(&vars);
        assert_eq!(projection.apply(&rawdoc! { "_id": 1 }).unwrap(), rawdoc! { "x": 2 });
        let unbound = Projection::parse(&rawdoc! { "x": "$$nope" }).unwrap();
        assert_eq!(unbound.apply(&rawdoc! { "_id": 1 }).unwrap_err().code().code(), 17276);
    }

    #[test]
    fn projection_computed_errors() {
        let rows: Vec<(RawDocumentBuf, i32)> = vec![
            (rawdoc! { "a": 0, "b": { "$add": [1, 2] } }, 31252),
            (rawdoc! { "a": 0, "b": "x" }, 31310),
            (rawdoc! { "b": "x", "a": 0 }, 31254),
            (rawdoc! { "b": { "$add": [1] }, "a": 0 }, 31254),
            (rawdoc! { "b": { "$bogus": 1 } }, 31325),
            (rawdoc! { "b": { "$add": [{ "$bogus": 1 }] } }, 168),
            (rawdoc! { "b": { "$concatArrays": [] } }, 238),
            (rawdoc! { "b": { "$add": 1, "c": 1 } }, 16410),
            (rawdoc! { "b": "$", "c": 1 }, 16872),
            (rawdoc! { "b": "$a", "b.c": 1 }, 31249),
        ];
        for (spec, code) in rows {
            assert_eq!(parse_err(spec.clone()).0, code, "{spec:?}");
        }
        let divide = Projection::parse(&rawdoc! { "x": { "$divide": [1, 0] } }).unwrap();
        assert_eq!(divide.apply(&rawdoc! { "_id": 1 }).unwrap_err().code().code(), 2);
        let err = rawdoc! { "a.$": "x" };
        assert_eq!(parse_err_q(rawdoc! { "a": 1 }, err).0, 31308);
    }

    #[test]
    fn projection_slice_forms() {
        let doc = rawdoc! { "_id": 1, "a": [1, 2, 3, 4, 5], "b": 7 };
        let rows: Vec<(RawDocumentBuf, RawDocumentBuf)> = vec![
            (rawdoc! { "a": { "$slice": 2 } }, rawdoc! { "_id": 1, "a": [1, 2], "b": 7 }),
            (rawdoc! { "a": { "$slice": -2 } }, rawdoc! { "_id": 1, "a": [4, 5], "b": 7 }),
            (rawdoc! { "a": { "$slice": 0 } }, rawdoc! { "_id": 1, "a": [], "b": 7 }),
            (rawdoc! { "a": { "$slice": 10 } }, rawdoc! { "_id": 1, "a": [1, 2, 3, 4, 5], "b": 7 }),
            (rawdoc! { "a": { "$slice": -10 } }, rawdoc! { "_id": 1, "a": [1, 2, 3, 4, 5], "b": 7 }),
            (rawdoc! { "a": { "$slice": 2.7 } }, rawdoc! { "_id": 1, "a": [1, 2], "b": 7 }),
            (rawdoc! { "a": { "$slice": [1, 2] } }, rawdoc! { "_id": 1, "a": [2, 3], "b": 7 }),
            (rawdoc! { "a": { "$slice": [-2, 1] } }, rawdoc! { "_id": 1, "a": [4], "b": 7 }),
            (rawdoc! { "a": { "$slice": [-10, 2] } }, rawdoc! { "_id": 1, "a": [1, 2], "b": 7 }),
            (rawdoc! { "a": { "$slice": [10, 2] } }, rawdoc! { "_id": 1, "a": [], "b": 7 }),
            (rawdoc! { "b": { "$slice": 1 } }, rawdoc! { "_id": 1, "a": [1, 2, 3, 4, 5], "b": 7 }),
            // With an inclusion the sliced field is included too.
            (rawdoc! { "a": { "$slice": 1 }, "b": 1 }, rawdoc! { "_id": 1, "a": [1], "b": 7 }),
            (rawdoc! { "_id": 1, "a": { "$slice": 1 } }, rawdoc! { "_id": 1, "a": [1] }),
            (rawdoc! { "a": { "$slice": 1 }, "b": 0 }, rawdoc! { "_id": 1, "a": [1] }),
            (rawdoc! { "_id": 0, "a": { "$slice": 1 } }, rawdoc! { "a": [1], "b": 7 }),
        ];
        for (i, (spec, expected)) in rows.into_iter().enumerate() {
            assert_eq!(project(spec, doc.clone()), expected, "row {i}");
        }
    }

    #[test]
    fn projection_slice_dotted_through_arrays() {
        let doc = rawdoc! { "a": [ { "b": [1, 2, 3] }, { "b": 4 }, 5 ] };
        assert_eq!(project(rawdoc! { "a.b": { "$slice": 1 } }, doc), rawdoc! { "a": [ { "b": [1] }, { "b": 4 }, 5 ] });
        let nested = rawdoc! { "a": { "b": [1, 2], "c": 1 } };
        assert_eq!(project(rawdoc! { "a": { "b": { "$slice": -1 } } }, nested), rawdoc! { "a": { "b": [2], "c": 1 } });
    }

    #[test]
    fn projection_slice_errors() {
        // Not find syntax but a valid `$slice` expression, which fails on a non-array.
        let slice = Projection::parse(&rawdoc! { "a": { "$slice": [1, 0] } }).unwrap();
        assert_eq!(slice.apply(&rawdoc! { "a": [1] }).unwrap_err().code().code(), 28724);
        assert!(Projection::parse(&rawdoc! { "a": { "$slice": [1, 2, 3] } }).is_ok());
        let (code, message) = parse_err(rawdoc! { "a": { "$slice": "x" } });
        assert_eq!(code, 28667);
        assert_eq!(
            message,
            "Invalid $slice syntax. The given syntax { $slice: \"x\" } did not match the find() syntax because :: \
             Location31273: $slice only supports numbers and [skip, limit] arrays :: The given syntax did not match \
             the expression $slice syntax. :: caused by :: Expression $slice takes at least 2 arguments, and at most \
             3, but 1 were passed in."
        );
        let (code, message) = parse_err(rawdoc! { "a": { "$slice": [1] } });
        assert_eq!(code, 28667);
        assert!(message.contains("Location31272: $slice array argument should be of form [skip, limit]"), "{message}");
        assert!(message.ends_with("but 1 were passed in."), "{message}");
        assert_eq!(parse_err(rawdoc! { "a": 1, "a.b": { "$slice": 1 } }).0, 31249);
    }

    #[test]
    fn projection_elem_match_under_collation() {
        let collation = Arc::new(Collation::parse(&rawdoc! { "locale": "en", "strength": 2 }).unwrap().unwrap());
        let spec = rawdoc! { "a": { "$elemMatch": { "b": "X" } } };
        let doc = rawdoc! { "_id": 1, "a": [ { "b": "y" }, { "b": "x" } ] };
        let collated = Projection::parse(&spec).unwrap().with_collation(Some(&collation));
        assert_eq!(collated.apply(&doc).unwrap(), rawdoc! { "_id": 1, "a": [ { "b": "x" } ] });
        assert_eq!(project(spec, doc), rawdoc! { "_id": 1 });
    }

    #[test]
    fn projection_elem_match_returns_first_match_after_inclusions() {
        let doc = rawdoc! { "_id": 1, "a": [ { "b": 1 }, { "b": 2 }, { "b": 2, "c": 1 } ], "z": 3 };
        assert_eq!(
            project(rawdoc! { "a": { "$elemMatch": { "b": 2 } } }, doc.clone()),
            rawdoc! { "_id": 1, "a": [ { "b": 2 } ] }
        );
        assert_eq!(
            project(rawdoc! { "a": { "$elemMatch": { "b": 2 } }, "z": 1 }, doc.clone()),
            rawdoc! { "_id": 1, "z": 3, "a": [ { "b": 2 } ] }
        );
        assert_eq!(project(rawdoc! { "a": { "$elemMatch": { "b": 9 } } }, doc.clone()), rawdoc! { "_id": 1 });
        assert_eq!(
            project(rawdoc! { "_id": 0, "a": { "$elemMatch": { "b": 2 } } }, doc.clone()),
            rawdoc! { "a": [ { "b": 2 } ] }
        );
        // In an exclusion projection the field stays where it is.
        assert_eq!(
            project(rawdoc! { "z": 0, "a": { "$elemMatch": { "c": 1 } } }, doc.clone()),
            rawdoc! { "_id": 1, "a": [ { "b": 2, "c": 1 } ] }
        );
        assert_eq!(
            project(rawdoc! { "x": { "$elemMatch": { "$gt": 1 } } }, rawdoc! { "_id": 1, "x": [1, 5, 7] }),
            rawdoc! { "_id": 1, "x": [5] }
        );
        assert_eq!(
            project(rawdoc! { "x": { "$elemMatch": { "$gt": 1 } } }, rawdoc! { "_id": 1, "x": 5 }),
            rawdoc! { "_id": 1 }
        );
    }

    #[test]
    fn projection_elem_match_errors() {
        assert_eq!(
            parse_err(rawdoc! { "a": { "$elemMatch": 1 } }),
            (31274, "elemMatch: Invalid argument, object required, but got int".into())
        );
        assert_eq!(
            parse_err(rawdoc! { "a.b": { "$elemMatch": { "c": 1 } } }),
            (31275, "Cannot use $elemMatch projection on a nested field.".into())
        );
        assert_eq!(parse_err(rawdoc! { "a": { "b": { "$elemMatch": { "c": 1 } } } }).0, 31275);
        assert_eq!(
            parse_err_q(rawdoc! { "a": 1 }, rawdoc! { "a.$": 1, "b": { "$elemMatch": { "c": 1 } } }),
            (31255, "Cannot specify positional operator and $elemMatch.".into())
        );
        assert_eq!(
            parse_err_q(rawdoc! { "a": 1 }, rawdoc! { "b": { "$elemMatch": { "c": 1 } }, "a.$": 1 }),
            (31256, "Cannot specify positional operator and $elemMatch.".into())
        );
        assert_eq!(parse_err(rawdoc! { "a": { "$elemMatch": { "$foo": 1 } } }), (2, "unknown operator: $foo".into()));
    }

    #[test]
    fn projection_positional_returns_matched_element() {
        let doc = rawdoc! { "_id": 1, "a": [1, 5, 9], "b": 2 };
        assert_eq!(
            project_q(rawdoc! { "a": { "$gt": 4 } }, rawdoc! { "a.$": 1 }, doc.clone()),
            Ok(rawdoc! { "_id": 1, "a": [5] })
        );
        assert_eq!(
            project_q(rawdoc! { "a": 9, "b": 2 }, rawdoc! { "a.$": 1, "b": 1 }, doc.clone()),
            Ok(rawdoc! { "_id": 1, "a": [9], "b": 2 })
        );
        let docs = rawdoc! { "_id": 1, "a": [ { "b": 1, "c": 1 }, { "b": 2, "c": 2 } ] };
        assert_eq!(
            project_q(rawdoc! { "a.b": 2 }, rawdoc! { "_id": 0, "a.$": 1 }, docs.clone()),
            Ok(rawdoc! { "a": [ { "b": 2, "c": 2 } ] })
        );
        assert_eq!(
            project_q(rawdoc! { "a": { "$elemMatch": { "c": 2 } } }, rawdoc! { "a.b.$": 1 }, docs.clone()),
            Ok(rawdoc! { "_id": 1, "a": [ { "b": 2 } ] })
        );
        // Matched without an array: the field is left as the inclusion made it.
        assert_eq!(
            project_q(rawdoc! { "a": 3 }, rawdoc! { "a.$": 1 }, rawdoc! { "_id": 1, "a": 3 }),
            Ok(rawdoc! { "_id": 1, "a": 3 })
        );
    }

    #[test]
    fn projection_positional_runtime_errors() {
        let doc = rawdoc! { "_id": 1, "a": [1, 5, 9], "b": 2 };
        assert_eq!(
            project_q(rawdoc! { "a": [1, 5, 9] }, rawdoc! { "a.$": 1 }, doc.clone()),
            Err((51246, "positional operator '.$' couldn't find a matching element in the array".into()))
        );
        // The whole-array equality matched without an element; a negation records none either.
        assert_eq!(project_q(rawdoc! { "a": { "$ne": 2 } }, rawdoc! { "a.$": 1 }, doc).map_err(|e| e.0), Err(51246));
    }

    #[test]
    fn projection_positional_parse_errors() {
        assert_eq!(
            parse_err(rawdoc! { "a.$": 1 }),
            (51050, "Projections with a positional operator require a matcher".into())
        );
        assert_eq!(
            parse_err_q(rawdoc! { "b": 1 }, rawdoc! { "a.$": 1 }),
            (31277, "Positional projection 'a.$' does not match the query document.".into())
        );
        assert_eq!(
            parse_err_q(rawdoc! { "a": 1, "b": 1 }, rawdoc! { "a.$": 1, "b.$": 1 }),
            (31276, "Cannot specify more than one positional projection per query.".into())
        );
        assert_eq!(
            parse_err_q(rawdoc! { "a": 1 }, rawdoc! { "a.$.b.$": 1 }),
            (31287, "Cannot use positional operator twice: a.$.b.$".into())
        );
        assert_eq!(
            parse_err_q(rawdoc! { "a": 1 }, rawdoc! { "a.$.": 1 }),
            (31270, "Path cannot end with '.$.'".into())
        );
        assert_eq!(
            parse_err_q(rawdoc! { "a": 1 }, rawdoc! { "a.$": { "$slice": 1 } }),
            (31271, "positional projection cannot be used with an expression or sub object".into())
        );
        assert_eq!(
            parse_err_q(rawdoc! { "a": 1 }, rawdoc! { "a.$": "x" }),
            (31308, "positional projection cannot be used with a literal".into())
        );
        assert_eq!(parse_err_q(rawdoc! { "a": 1 }, rawdoc! { "a.$": 0 }).0, 16410);
        assert_eq!(parse_err_q(rawdoc! { "a": 1 }, rawdoc! { "a.$": 1, "b": 0 }).0, 31254);
        let nested_query = Filter::parse(&rawdoc! { "$and": [ { "a.b": 1 } ] }).unwrap();
        assert!(Projection::parse_with_query(&rawdoc! { "a.$": 1 }, &nested_query).is_ok());
    }

    #[test]
    fn projection_paths_past_200_components_are_overflow() {
        let long = |n: usize| vec!["a"; n].join(".");
        let spec = |path: &str| {
            let mut spec = RawDocumentBuf::new();
            spec.append(<&CStr>::try_from(path).unwrap(), 1);
            spec
        };
        let too_long = (15, "FieldPath is too long".to_owned());
        assert_eq!(parse_err(spec(&long(50_000))), too_long);
        assert_eq!(parse_err(spec(&long(201))), too_long);
        assert!(Projection::parse(&spec(&long(200))).is_ok());
        // A sub-object continues its parent's path.
        let mut nested = RawDocumentBuf::new();
        nested.append(<&CStr>::try_from(long(150).as_str()).unwrap(), spec(&long(51)));
        assert_eq!(parse_err(nested), too_long);
    }
}
