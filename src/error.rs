//! The server error: a MongoDB error code the client sees, and detail only the logs see.

use bson::{Document, doc};

macro_rules! error_codes {
    ($($(#[$doc:meta])* $name:ident = $code:literal,)*) => {
        /// A MongoDB error code; variants use mongod's `codeName` verbatim.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $($(#[$doc])* $name,)*
        }

        impl ErrorCode {
            /// The numeric `code` drivers match on.
            pub fn code(self) -> i32 {
                match self { $(ErrorCode::$name => $code,)* }
            }

            /// The `codeName`.
            pub fn name(self) -> &'static str {
                match self { $(ErrorCode::$name => stringify!($name),)* }
            }

            /// The code with this number, if the table has it.
            pub fn from_code(code: i32) -> Option<Self> {
                match code { $($code => Some(ErrorCode::$name),)* _ => None }
            }
        }
    };
}

impl ErrorCode {
    /// mongod's `Interruption` category: the operation was stopped (`killOp`, its time limit, a
    /// lock it could not get, shutdown), which fails a write command's whole batch instead of
    /// becoming one statement's write error.
    pub fn is_interruption(self) -> bool {
        matches!(
            self,
            Self::LockTimeout
                | Self::MaxTimeMSExpired
                | Self::CursorKilled
                | Self::ExceededTimeLimit
                | Self::InterruptedAtShutdown
                | Self::Interrupted
                | Self::InterruptedDueToReplStateChange
        )
    }
}

error_codes! {
    /// An unexpected server-side failure.
    InternalError = 1,
    /// An argument has an invalid value.
    BadValue = 2,
    /// A required field is missing (`$text` without `$search`).
    NoSuchKey = 4,
    /// A host could not be reached.
    HostUnreachable = 6,
    /// A host name did not resolve.
    HostNotFound = 7,
    /// An unclassified failure.
    UnknownError = 8,
    /// A command or operator is malformed.
    FailedToParse = 9,
    /// No such user.
    UserNotFound = 11,
    /// Not permitted.
    Unauthorized = 13,
    /// A value has the wrong BSON type.
    TypeMismatch = 14,
    /// An arithmetic result left its type's range (`$add` on a date).
    Overflow = 15,
    /// A list argument of the wrong length (an empty write batch).
    InvalidLength = 16,
    /// A message out of its protocol's order (`saslContinue` without `saslStart`).
    ProtocolError = 17,
    /// Wrong credentials.
    AuthenticationFailed = 18,
    /// The operation is not allowed in this state.
    IllegalOperation = 20,
    /// A BSON document is malformed.
    InvalidBSON = 22,
    /// `replSetInitiate` on a member that has a configuration.
    AlreadyInitialized = 23,
    /// A lock could not be taken in time.
    LockTimeout = 24,
    /// The namespace does not exist where it must.
    NamespaceNotFound = 26,
    /// No index with that name or key pattern.
    IndexNotFound = 27,
    /// An update path runs into a value that cannot hold the field it names.
    PathNotViable = 28,
    /// A role that does not exist.
    RoleNotFound = 31,
    /// An update would pad an array past mongod's limit.
    CannotBackfillArray = 34,
    /// Two update operators touch the same or overlapping paths.
    ConflictingUpdateOperators = 40,
    /// `getMore`/`killCursors` on a cursor that does not exist.
    CursorNotFound = 43,
    /// `create` on an existing collection.
    NamespaceExists = 48,
    /// A role change that cannot be made (a cycle, a privilege outside the role's database).
    InvalidRoleModification = 49,
    /// `maxTimeMS` ran out.
    MaxTimeMSExpired = 50,
    /// A `$`-prefixed field name where mongod refuses one.
    DollarPrefixedFieldName = 52,
    /// An invalid `_id` value.
    InvalidIdField = 53,
    /// An upsert cannot tell which single value a query path should take.
    NotSingleValueField = 54,
    /// A DBRef (`$ref`, `$id`, `$db`) out of order or of the wrong type.
    InvalidDBRef = 55,
    /// An update path has an empty component.
    EmptyFieldName = 56,
    /// The command name is not known.
    CommandNotFound = 59,
    /// The write concern could not be satisfied.
    WriteConcernFailed = 64,
    /// An update would change `_id`.
    ImmutableField = 66,
    /// An index specification that cannot be built.
    CannotCreateIndex = 67,
    /// An index with that name already exists with other options.
    IndexAlreadyExists = 68,
    /// Options conflict or are missing.
    InvalidOptions = 72,
    /// A view defined on itself through other views.
    GraphContainsCycle = 5,
    /// A chain of views deeper than 20.
    ViewDepthLimitExceeded = 165,
    /// A command that needs a collection run on a view.
    CommandNotSupportedOnView = 166,
    /// An option or stage a view does not allow.
    OptionNotSupportedOnView = 167,
    /// A bad database or collection name.
    InvalidNamespace = 73,
    /// No member of a replica set configuration is this server, or a member did not answer.
    NodeNotFound = 74,
    /// A replica-set command on a server started without `--replSet`.
    NoReplicationEnabled = 76,
    /// A write concern names a mode that does not exist.
    UnknownReplWriteConcern = 79,
    /// A replica set configuration mongod refuses.
    InvalidReplicaSetConfig = 93,
    /// A replica-set command before `replSetInitiate`.
    NotYetInitialized = 94,
    /// An index with the same key pattern exists with other options or name.
    IndexOptionsConflict = 85,
    /// An index with the same name exists with another key pattern.
    IndexKeySpecsConflict = 86,
    /// A network operation timed out.
    NetworkTimeout = 89,
    /// The server is shutting down.
    ShutdownInProgress = 91,
    /// A generic failure.
    OperationFailed = 96,
    /// Another process holds the data directory.
    DBPathInUse = 98,
    /// The write concern cannot be satisfied by this deployment.
    UnsatisfiableWriteConcern = 100,
    /// A new replica set configuration that cannot follow the current one.
    NewReplicaSetConfigurationIncompatible = 103,
    /// A concurrent write conflicted.
    WriteConflict = 112,
    /// A document does not pass the collection's validator.
    DocumentValidationFailure = 121,
    /// A tailable cursor's position in a capped collection was deleted.
    CappedPositionLost = 136,
    /// Needs a replica set member (read concerns `linearizable` and `snapshot` on a standalone).
    NotAReplicaSet = 123,
    /// A command failed in its own terms (`commitTransaction` outside a transaction).
    CommandFailed = 125,
    /// An operation needed more memory than its limit allows.
    ExceededMemoryLimit = 146,
    /// The TLS configuration cannot be used (`rotateCertificates` with unusable files).
    InvalidSSLConfiguration = 140,
    /// A collation asks for an ICU version other than the server's.
    IncompatibleCollationVersion = 161,
    /// An aggregation operator used where it is not allowed.
    InvalidPipelineOperator = 168,
    /// A compound index key meets arrays in two fields of one document.
    CannotIndexParallelArrays = 171,
    /// The query plan was killed.
    QueryPlanKilled = 175,
    /// A second hello tried to replace the client metadata.
    ClientMetadataCannotBeMutated = 186,
    /// The primary stepped down.
    PrimarySteppedDown = 189,
    /// An index option mongod does not know or accept.
    InvalidIndexSpecificationOption = 197,
    /// A key pattern that several indexes share, used to pick one.
    AmbiguousIndexKeyPattern = 208,
    /// The cursor was killed.
    CursorKilled = 237,
    /// The command is known but not built yet.
    NotImplemented = 238,
    /// A retryable write with a transaction number older than its session's latest.
    TransactionTooOld = 225,
    /// The transaction does not exist.
    NoSuchTransaction = 251,
    /// An internal time limit was exceeded.
    ExceededTimeLimit = 262,
    /// An index build's `commitQuorum` names more members than the set has.
    UnsatisfiableCommitQuorum = 278,
    /// The planner found no way to run a query (a hinted wildcard index that bounds none of
    /// its paths).
    NoQueryExecutionPlans = 291,
    /// The command may not run inside a transaction (`autocommit` on a command that takes none).
    OperationNotSupportedInTransaction = 263,
    /// An in-memory sort over the memory limit without `allowDiskUse`.
    QueryExceededMemoryLimitNoDiskUseAllowed = 292,
    /// `apiVersion` other than "1".
    APIVersionError = 322,
    /// `apiStrict: true` on a command outside the requested API version.
    APIStrictError = 323,
    /// `apiDeprecationErrors: true` on a command deprecated in the requested API version.
    APIDeprecationError = 324,
    /// The legacy op code is not supported for this request.
    UnsupportedOpQueryCommand = 352,
    /// A socket failed.
    SocketException = 9001,
    /// This node is not a writable primary.
    NotWritablePrimary = 10107,
    /// `$rand` with an argument that is neither a document nor an array; a top/bottom
    /// An authentication mechanism the server does not offer.
    MechanismUnavailable = 334,
    /// accumulator whose `sortBy` is not an object.
    Location10065 = 10065,
    /// A document is larger than 16 MiB.
    BSONObjectTooLarge = 10334,
    /// A unique index (`_id` included) already holds the key.
    DuplicateKey = 11000,
    /// `$merge` with `whenNotMatched: fail` met a document without a match.
    MergeStageNoMatchingDocument = 13113,
    /// Interrupted by shutdown.
    InterruptedAtShutdown = 11600,
    /// The operation was killed (`killOp`).
    Interrupted = 11601,
    /// Interrupted by a replica-set state change.
    InterruptedDueToReplStateChange = 11602,
    /// Not primary and secondaryOk is false.
    NotPrimaryNoSecondaryOk = 13435,
    /// Neither primary nor secondary.
    NotPrimaryOrSecondary = 13436,
    /// The disk holding the data directory is full (or below the server's reserve).
    OutOfDiskSpace = 14031,
    /// A 2d index point outside the index's `min`/`max`.
    Location13027 = 13027,
    /// A 2d index's `bits` outside 1 to 32.
    Location13028 = 13028,
    /// A string or buffer being built grew past 64 MiB (mongod's `BufBuilder`).
    Location13548 = 13548,
    /// A `$project` stage whose argument is not a document.
    Location15969 = 15969,
    /// A sort value is neither a number nor `{$meta: ...}`.
    Location15974 = 15974,
    /// A sort direction other than 1 or -1.
    Location15975 = 15975,
    /// An expression operator object with more than one field.
    Location15983 = 15983,
    /// A field path has an empty component.
    Location15998 = 15998,
    /// A value `$toLower`/`$toUpper` cannot turn into a string.
    Location16007 = 16007,
    /// An expression operator with the wrong number of arguments.
    Location16020 = 16020,
    /// A field path component starts with `$`.
    Location16410 = 16410,
    /// A field name with a dot in an expression object.
    Location16412 = 16412,
    /// A string value longer than 16 MiB.
    Location16493 = 16493,
    /// `$mod` by zero.
    Location16610 = 16610,
    /// `$mod` on a value that is not a number.
    Location16611 = 16611,
    /// `$add` with more than one date.
    Location16612 = 16612,
    /// An array in a text index's prefix field.
    Location16675 = 16675,
    /// `$concat` on a value that is not a string.
    Location16702 = 16702,
    /// A document's geometry a 2dsphere index cannot read (`Can't extract geo keys`).
    Location16755 = 16755,
    /// A unique hashed index.
    Location16764 = 16764,
    /// A hashed index field holding an array.
    Location16766 = 16766,
    /// A 2d index field holding something other than a coordinate pair.
    Location16804 = 16804,
    /// An empty variable name in a `let`.
    Location16866 = 16866,
    /// A `let` variable name that does not start with a lower-case letter.
    Location16867 = 16867,
    /// An empty variable name read (`$$`).
    Location16869 = 16869,
    /// A variable read (`$$name`) whose name does not start with a letter.
    Location16870 = 16870,
    /// `$` alone as a field path.
    Location16872 = 16872,
    /// `$cond` without `if`.
    Location17080 = 17080,
    /// `$cond` without `then`.
    Location17081 = 17081,
    /// `$cond` without `else`.
    Location17082 = 17082,
    /// `$cond` with a parameter other than `if`, `then`, `else`.
    Location17083 = 17083,
    /// `$size` on a value that is not an array.
    Location17124 = 17124,
    /// A document's text language override that is not a string.
    Location17261 = 17261,
    /// A text language override mongod does not know.
    Location17262 = 17262,
    /// A variable that is not bound.
    Location17276 = 17276,
    /// `$meta` with an argument that is not a string.
    Location17307 = 17307,
    /// `$meta` with an argument it does not know.
    Location17308 = 17308,
    /// A sort value is an object other than `{$meta: ...}`.
    Location17312 = 17312,
    /// `$match` with `$text` past the first pipeline stage.
    Location17313 = 17313,
    /// A find `$slice` projection that is not find syntax and has the wrong number of
    /// arguments for the aggregation `$slice`.
    Location28667 = 28667,
    /// The aggregation `$slice` on a value that is not an array.
    Location28724 = 28724,
    /// The aggregation `$slice` with a position or count that is not a number.
    Location28725 = 28725,
    /// The aggregation `$slice` with a position or count that is not a 32-bit integer.
    Location28726 = 28726,
    /// The aggregation `$slice` with a third argument that is not a number.
    Location28727 = 28727,
    /// The aggregation `$slice` with a third argument that is not a 32-bit integer.
    Location28728 = 28728,
    /// The aggregation `$slice` with a third argument that is not positive.
    Location28729 = 28729,
    /// `$abs` of the smallest int64.
    Location28680 = 28680,
    /// `$abs` on a value that is not a number.
    Location28765 = 28765,
    /// An `$unset` stage that is not a string or a non-empty array of strings.
    Location31002 = 31002,
    /// An `$unset` stage with an empty array.
    Location31119 = 31119,
    /// An `$unset` stage whose array holds something other than strings.
    Location31120 = 31120,
    /// A projection path runs through a path already projected as a leaf.
    Location31249 = 31249,
    /// `hello` with one of `topologyVersion` and `maxAwaitTimeMS` but not the other.
    Location31368 = 31368,
    /// `hello` with a negative `topologyVersion.counter`.
    Location31372 = 31372,
    /// `hello` with a negative `maxAwaitTimeMS`.
    Location31373 = 31373,
    /// `hello` with this process's id and a counter ahead of the server's.
    Location31382 = 31382,
    /// A projection names the same path twice.
    Location31250 = 31250,
    /// An expression other than `$meta` in an exclusion projection.
    Location31252 = 31252,
    /// An inclusion inside an exclusion projection.
    Location31253 = 31253,
    /// An exclusion inside an inclusion projection.
    Location31254 = 31254,
    /// A `$elemMatch` projection after a positional one.
    Location31255 = 31255,
    /// A positional projection after a `$elemMatch` one.
    Location31256 = 31256,
    /// A `$slice: [skip, limit]` whose skip is not a number.
    Location31257 = 31257,
    /// A `$slice: [skip, limit]` whose limit is not a number.
    Location31258 = 31258,
    /// A `$slice: [skip, limit]` whose limit is not positive.
    Location31259 = 31259,
    /// A projection path ending with `.$.`.
    Location31270 = 31270,
    /// A positional projection whose value is an object.
    Location31271 = 31271,
    /// A `$slice` array argument that is not `[skip, limit]`.
    Location31272 = 31272,
    /// A `$slice` argument that is neither a number nor an array.
    Location31273 = 31273,
    /// A `$elemMatch` projection whose argument is not an object.
    Location31274 = 31274,
    /// A `$elemMatch` projection on a dotted or nested field.
    Location31275 = 31275,
    /// More than one positional projection.
    Location31276 = 31276,
    /// A positional projection on a field the query does not mention.
    Location31277 = 31277,
    /// A positional operator used twice in one projection path.
    Location31287 = 31287,
    /// More than one hashed field in an index key pattern.
    Location31303 = 31303,
    /// A positional projection whose value is a literal.
    Location31308 = 31308,
    /// A literal or field path in an exclusion projection.
    Location31310 = 31310,
    /// A positional projection in an aggregation `$project`.
    Location31324 = 31324,
    /// A projection sub-object whose only field is an unknown `$`-name.
    Location31325 = 31325,
    /// `$in` whose second argument is not an array.
    Location40081 = 40081,
    /// `{$meta: "textScore"}` without a `$text` query.
    Location40218 = 40218,
    /// `$replaceWith` produced something other than a document.
    Location40228 = 40228,
    /// A `$set`/`$addFields` stage whose argument is not a document.
    Location40272 = 40272,
    /// A pipeline stage that is not a document with exactly one field.
    Location40323 = 40323,
    /// An aggregation stage name that does not exist.
    Location40324 = 40324,
    /// A field path is the empty string.
    Location40352 = 40352,
    /// A field path ends with a dot.
    Location40353 = 40353,
    /// A field given twice (mongod's IDL parser), in the body or as body and sequence.
    Location40413 = 40413,
    /// A required field is missing (mongod's IDL parser).
    Location40414 = 40414,
    /// An unknown field in a command or statement (mongod's IDL parser).
    Location40415 = 40415,
    /// Two kind-1 document sequences with one name in an `OP_MSG`.
    Location40431 = 40431,
    /// A document sequence sent to a command that takes none.
    Location40472 = 40472,
    /// An OP_MSG arrived without `$db`.
    MissingDatabase = 40571,
    /// A stage that must come first in a pipeline (`$collStats`, `$currentOp`, ...) does not.
    Location40602 = 40602,
    /// A numeric field outside the range mongod's IDL parser allows.
    Location51024 = 51024,
    /// `hello` with `awaitable` but no `topologyVersion`.
    Location5135800 = 5135800,
    /// `hello` with `awaitable` but no `maxAwaitTimeMS`.
    Location5135801 = 5135801,
    /// A clustered collection's `clusteredIndex` without `unique: true`.
    Location5979700 = 5979700,
    /// `clusteredIndex` that is neither a boolean nor an object.
    Location5979702 = 5979702,
    /// The legacy `clusteredIndex: true` on a collection that is not an internal one.
    Location5979703 = 5979703,
    /// A `clusteredIndex` with a version other than 2.
    Location5979704 = 5979704,
    /// `dropIndexes` naming a collection's clustered index.
    Location5979800 = 5979800,
    /// A view created with `clusteredIndex`.
    Location6026500 = 6026500,
    /// `clusteredIndex` with `autoIndexId: false`.
    Location6026501 = 6026501,
    /// A clustered collection created with a capped collection's `size`.
    Location6049200 = 6049200,
    /// A capped clustered collection without `expireAfterSeconds`.
    Location6049201 = 6049201,
    /// A clustered collection created with a capped collection's `max`.
    Location6049204 = 6049204,
    /// `createIndexes` with `clustered` on a collection that does not exist.
    Location6100900 = 6100900,
    /// An index with the clustered index's name and another key.
    Location6100906 = 6100906,
    /// An index on the cluster key with another `v`.
    Location6100908 = 6100908,
    /// An index on the cluster key with `unique: false`.
    Location6100909 = 6100909,
    /// A capped clustered collection (mongod's test-only feature).
    Location6127800 = 6127800,
    /// An index with `clustered` that is not the collection's clustered index.
    Location6243700 = 6243700,
    /// An index with `clustered: false`.
    Location6492800 = 6492800,
    /// A change event too large to split: one field exceeds a fragment.
    Location7182500 = 7182500,
    /// A change event of `_id` alone cannot be split.
    Location7182502 = 7182502,
    /// `$changeStreamSplitLargeEvent` with a non-empty argument.
    Location7182800 = 7182800,
    /// `$changeStreamSplitLargeEvent` not last in its pipeline.
    Location7182802 = 7182802,
    /// `getMore` in a session on a cursor opened outside any.
    Location50736 = 50736,
    /// `getMore` without a session on a cursor opened in one.
    Location50737 = 50737,
    /// `getMore` in another session than its cursor's.
    Location50738 = 50738,
    /// `txnNumber` on a command that is neither a retryable write nor in a transaction.
    Location50768 = 50768,
    /// `txnNumber` on a command that takes no session (`hello`, `ping`, ...).
    Location50889 = 50889,
    /// A positional projection without a query to resolve it.
    Location51050 = 51050,
    /// `$regex` is a regex with options and `$options` is given too.
    Location51074 = 51074,
    /// `$options` given after a `$regex` that already had options.
    Location51075 = 51075,
    /// A regular expression that does not compile.
    Location51091 = 51091,
    /// A regular expression option that is not one of `imsxu`.
    Location51108 = 51108,
    /// `min`/`max` without a `hint`.
    Location51173 = 51173,
    /// `min`/`max` that do not match the hinted index's key pattern.
    Location51174 = 51174,
    /// A positional projection found no matching array element.
    Location51246 = 51246,
    /// A positional projection's matched element is not in the projected array.
    Location51247 = 51247,
    /// A projection has an empty sub-projection object.
    Location51270 = 51270,
    /// `$ifNull` with fewer than two arguments.
    Location1257300 = 1257300,
    /// `$rand` with arguments.
    Location3040501 = 3040501,
    /// `$getField` with an unknown argument.
    Location3041701 = 3041701,
    /// `$getField` without `field`.
    Location3041702 = 3041702,
    /// `$getField` whose argument is neither a string nor an object.
    Location3041703 = 3041703,
    /// `$getField` whose input is not a document.
    Location3041705 = 3041705,
    /// `$setField` whose argument is not an object.
    Location4161100 = 4161100,
    /// `$setField` with an unknown argument.
    Location4161101 = 4161101,
    /// `$setField` without `field`.
    Location4161102 = 4161102,
    /// `$setField` without `input`.
    Location4161103 = 4161103,
    /// `$setField` without `value`.
    Location4161104 = 4161104,
    /// `$setField` whose input is not a document.
    Location4161105 = 4161105,
    /// `$getField`/`$setField` whose `field` is not a constant string.
    Location4161106 = 4161106,
    /// `apiStrict` or `apiDeprecationErrors` without `apiVersion`.
    Location4886600 = 4886600,
    /// `$geoNear`, `$near` or `$nearSphere` where no geospatial sort can run (a validator).
    Location5626500 = 5626500,
    /// A filter path with more components than a stored document can nest.
    Location5729100 = 5729100,
    /// `$where` without a JavaScript engine (mongod run with `--noscripting`).
    Location6108304 = 6108304,
    // Aggregation stages (issue 13): `$group` and its accumulators, `$unwind`, `$lookup`,
    // `$facet`, `$bucket`, `$sortByCount`, `$count`, `$sample`, `$documents`.
    /// A `$limit` of 0.
    Location15958 = 15958,
    /// A `$match` whose argument is not a document.
    Location15959 = 15959,
    /// A `$sort` stage whose argument is not a document.
    Location15973 = 15973,
    /// A `$documents` expression that is not an array.
    Location5858203 = 5858203,
    /// A `$group` whose argument is not a document.
    Location15947 = 15947,
    /// An unknown `$group` accumulator.
    Location15952 = 15952,
    /// A `$group` without `_id`.
    Location15955 = 15955,
    /// A `$unwind` whose argument is neither a string nor a document.
    Location15981 = 15981,
    /// A `$sample` whose argument is not a document.
    Location28745 = 28745,
    /// A `$sample` size that is not a number.
    Location28746 = 28746,
    /// A negative `$sample` size.
    Location28747 = 28747,
    /// An unknown `$sample` option.
    Location28748 = 28748,
    /// A `$sample` without `size`.
    Location28749 = 28749,
    /// A `$unwind` path that is not a string.
    Location28808 = 28808,
    /// A `$unwind` `preserveNullAndEmptyArrays` that is not a bool.
    Location28809 = 28809,
    /// A `$unwind` `includeArrayIndex` that is not a non-empty string.
    Location28810 = 28810,
    /// An unknown `$unwind` option.
    Location28811 = 28811,
    /// A `$unwind` without `path`.
    Location28812 = 28812,
    /// A `$unwind` path without its `$` prefix.
    Location28818 = 28818,
    /// A `$unwind` `includeArrayIndex` starting with `$`.
    Location28822 = 28822,
    /// A value outside every `$bucket` boundary and no `default` (also `$switch` without a match).
    Location40066 = 40066,
    /// A `$sortByCount` argument that is neither a `$`-path nor an expression object.
    Location40148 = 40148,
    /// A `$sortByCount` object that is not an operator expression.
    Location40149 = 40149,
    /// A `$count` field that is not a non-empty string.
    Location40156 = 40156,
    /// A `$count` field starting with `$`.
    Location40157 = 40157,
    /// A `$count` field containing `.`.
    Location40158 = 40158,
    /// A `$count` stage whose argument is not a string.
    Location40160 = 40160,
    /// A `$facet` argument that is not a non-empty document.
    Location40169 = 40169,
    /// A `$facet` field that is not an array.
    Location40170 = 40170,
    /// A `$facet` sub-pipeline element that is not a document.
    Location40171 = 40171,
    /// The `$count` accumulator with arguments.
    Location40180 = 40180,
    /// A `$bucket` argument that is not a document.
    Location40201 = 40201,
    /// An unknown `$bucket` option.
    Location40197 = 40197,
    /// A `$bucket` without `groupBy` or `boundaries`.
    Location40198 = 40198,
    /// A `$bucket` `groupBy` that is not a `$`-path or an expression object.
    Location40202 = 40202,
    /// `$bucket` boundaries that are not an array of at least two values.
    Location40192 = 40192,
    /// `$bucket` boundaries that are not constants.
    Location40191 = 40191,
    /// `$bucket` boundaries of different types.
    Location40193 = 40193,
    /// `$bucket` boundaries that are not ascending.
    Location40194 = 40194,
    /// A `$bucket` `default` that is not a constant.
    Location40195 = 40195,
    /// A `$bucket` `default` between the boundaries.
    Location40199 = 40199,
    /// A `$bucket` `output` that is not a document.
    Location40196 = 40196,
    /// A `$replaceRoot` whose argument is not a document.
    Location40229 = 40229,
    /// An unknown `$replaceRoot` option.
    Location40230 = 40230,
    /// A `$replaceRoot` without `newRoot`.
    Location40231 = 40231,
    /// A `$bucketAuto` `groupBy` that is not a `$`-path or an expression object.
    Location40239 = 40239,
    /// A `$bucketAuto` argument that is not a document.
    Location40240 = 40240,
    /// A `$bucketAuto` `buckets` that is not an integer.
    Location40242 = 40242,
    /// A `$bucketAuto` `buckets` below 1.
    Location40243 = 40243,
    /// An unknown `$bucketAuto` option.
    Location40245 = 40245,
    /// A `$bucketAuto` without `groupBy` or `buckets`.
    Location40246 = 40246,
    /// A `$group` output that is not an accumulator object.
    Location40234 = 40234,
    /// A `$group` output name containing `.`.
    Location40235 = 40235,
    /// A `$group` output name starting with `$`.
    Location40236 = 40236,
    /// A `$group` accumulator given an array.
    Location40237 = 40237,
    /// A `$group` output with several accumulators.
    Location40238 = 40238,
    /// `$mergeObjects` of a value that is not a document.
    Location40400 = 40400,
    /// `$changeStream` on a standalone.
    Location40573 = 40573,
    /// A resume token without a string `_data`.
    Location40647 = 40647,
    /// A `$changeStream` with `startAtOperationTime` and a resume token.
    Location40674 = 40674,
    /// A `$changeStream` spec that is not a document.
    Location50808 = 50808,
    /// A `$changeStream` with both `resumeAfter` and `startAfter`.
    Location50865 = 50865,
    /// A document (a change's pre- or post-image) that should exist does not.
    NoMatchingDocument = 47,
    /// A resume token this server cannot resume from.
    InvalidResumeToken = 260,
    /// A change stream that cannot go on (its pipeline changed an event's `_id`).
    ChangeStreamFatalError = 280,
    /// A resume point older than the oldest oplog entry.
    ChangeStreamHistoryLost = 286,
    /// A transaction whose changes do not fit one oplog entry.
    TransactionTooLarge = 257,
    /// A statement or abort in a transaction already committed.
    TransactionCommitted = 256,
    /// A transaction started again at its own number.
    ConflictingOperationInProgress = 117,
    /// A snapshot is not available yet (a fail point's code here).
    SnapshotUnavailable = 246,
    /// A snapshot read's `atClusterTime` before the oldest time the history keeps.
    SnapshotTooOld = 239,
    /// A prepared transaction holds the data (a fail point's code here).
    PreparedTransactionInProgress = 267,
    /// A sharded read met a stale shard version (a fail point's code here).
    StaleShardVersion = 63,
    /// No member matches the read preference (a fail point's code here).
    FailedToSatisfyReadPreference = 133,
    /// A sharded read met a stale epoch (a fail point's code here).
    StaleEpoch = 150,
    /// A change stream should be opened again (a fail point's code here).
    RetryChangeStream = 234,
    /// A shard's routing information is stale (a fail point's code here).
    StaleConfig = 13388,
    /// A `$graphLookup` `maxDepth` that is not a number.
    Location40100 = 40100,
    /// A negative or fractional `$graphLookup` `maxDepth`.
    Location40101 = 40101,
    /// A `$graphLookup` argument that must be a string and is not.
    Location40103 = 40103,
    /// An unknown `$graphLookup` argument.
    Location40104 = 40104,
    /// A `$graphLookup` without one of its required arguments.
    Location40105 = 40105,
    /// A `$graphLookup` `restrictSearchWithMatch` that is not a document.
    Location40185 = 40185,
    /// A `$redact` expression that gave something other than `$$KEEP`, `$$PRUNE` or `$$DESCEND`.
    Location17053 = 17053,
    // Array expressions: `$arrayElemAt`, `$first`, `$last`, `$concatArrays`, `$filter`, `$map`,
    // `$reduce`, `$let`.
    /// A `$let` argument that is not a document.
    Location16874 = 16874,
    /// An unknown `$let` argument.
    Location16875 = 16875,
    /// A `$let` without `vars`.
    Location16876 = 16876,
    /// A `$let` without `in`.
    Location16877 = 16877,
    /// A `$map` argument that is not a document.
    Location16878 = 16878,
    /// An unknown `$map` argument.
    Location16879 = 16879,
    /// A `$map` without `input`.
    Location16880 = 16880,
    /// A `$map` without `in`.
    Location16882 = 16882,
    /// A `$map` input that is not an array.
    Location16883 = 16883,
    /// A `$filter` argument that is not a document.
    Location28646 = 28646,
    /// An unknown `$filter` argument.
    Location28647 = 28647,
    /// A `$filter` without `input`.
    Location28648 = 28648,
    /// A `$filter` without `cond`.
    Location28650 = 28650,
    /// A `$filter` input that is not an array.
    Location28651 = 28651,
    /// `$concatArrays` of something other than arrays.
    Location28664 = 28664,
    /// `$arrayElemAt`, `$first` or `$last` of something other than an array.
    Location28689 = 28689,
    /// An `$arrayElemAt` index that is not a number.
    Location28690 = 28690,
    /// An `$arrayElemAt` index outside the 32-bit integers.
    Location28691 = 28691,
    /// A `$reduce` argument that is not a document.
    Location40075 = 40075,
    /// An unknown `$reduce` argument.
    Location40076 = 40076,
    /// A `$reduce` without `input`.
    Location40077 = 40077,
    /// A `$reduce` without `initialValue`.
    Location40078 = 40078,
    /// A `$reduce` without `in`.
    Location40079 = 40079,
    /// A `$reduce` input that is not an array.
    Location40080 = 40080,
    /// A `$filter` limit below 1.
    Location327391 = 327391,
    /// A `$filter` limit that is not a 32-bit integer.
    Location327392 = 327392,
    /// Sub-pipelines (`$lookup`, `$facet`, `$unionWith`) nested deeper than 20.
    MaxSubPipelineDepthExceeded = 232,
    /// A `$switch` argument that is not a document.
    Location40060 = 40060,
    /// `$switch` `branches` that is not an array.
    Location40061 = 40061,
    /// A `$switch` branch that is not a document.
    Location40062 = 40062,
    /// An unknown argument in a `$switch` branch.
    Location40063 = 40063,
    /// A `$switch` branch without `case`.
    Location40064 = 40064,
    /// A `$switch` branch without `then`.
    Location40065 = 40065,
    /// An unknown `$switch` argument.
    Location40067 = 40067,
    /// A `$switch` without branches.
    Location40068 = 40068,
    /// A stage that `$facet` does not allow.
    Location40600 = 40600,
    /// `$out`/`$merge` before the last stage.
    Location40601 = 40601,
    /// A `$facet` output document past its size limit.
    Location4031700 = 4031700,
    /// `$out` to a capped collection.
    Location17152 = 17152,
    /// `$out` to a `system.` collection.
    Location17385 = 17385,
    /// `$merge` to a `system.` collection.
    Location31319 = 31319,
    /// `$merge` to `admin`, `local` or `config`.
    Location31320 = 31320,
    /// A `$merge` `on` field named twice.
    Location31465 = 31465,
    /// A `$merge` output document whose `on` field is missing or null.
    Location51132 = 51132,
    /// A `$merge` `on` array element that is not a string.
    Location51134 = 51134,
    /// A `$merge` whose `whenMatched`/`whenNotMatched` pair mongod does not run.
    Location51181 = 51181,
    /// A `$merge` argument that is neither a string nor a document.
    Location51182 = 51182,
    /// `$merge` `on` fields without a unique index over exactly them.
    Location51183 = 51183,
    /// A `$merge` output document whose `on` field is an array.
    Location51185 = 51185,
    /// A `$merge` with an empty `on` array.
    Location51187 = 51187,
    /// `$merge` `let` with a `whenMatched` that is not a pipeline.
    Location51199 = 51199,
    /// `$densify` over values of the wrong type (dates without `unit`, numbers with it).
    Location5733201 = 5733201,
    /// A stage that a `$lookup` sub-pipeline does not allow.
    Location51047 = 51047,
    // The date expressions (`query/expr/date`), kept together so their codes merge as one block.
    /// A `$dateFromString` input or format that does not parse.
    ConversionFailure = 241,
    /// A date expression's input that is not a date, timestamp or ObjectId.
    Location16006 = 16006,
    /// `$dateToString` whose `format` is not a string.
    Location18533 = 18533,
    /// `$dateToString` with an unknown argument.
    Location18534 = 18534,
    /// A date format ending in a lone `%`.
    Location18535 = 18535,
    /// A date format with an unknown `%` specifier.
    Location18536 = 18536,
    /// A year outside 0-9999 formatted with `%Y` or `%G`.
    Location18537 = 18537,
    /// `$dateToString` without `date`.
    Location18628 = 18628,
    /// `$dateToString` whose argument is not an object.
    Location18629 = 18629,
    /// A `$dateFromParts` part outside [-32768, 32767].
    Location31034 = 31034,
    /// A `$dateFromParts` `isoWeekYear` outside 1-9999.
    Location31095 = 31095,
    /// A time zone that is neither an Olson name nor a UTC offset.
    Location40485 = 40485,
    /// `$dateFromParts` mixing calendar and ISO week parts (`year` given).
    Location40489 = 40489,
    /// A `$dateFromParts` part that is not an integer.
    Location40515 = 40515,
    /// `$dateFromParts` with neither `year` nor `isoWeekYear`.
    Location40516 = 40516,
    /// A `timezone` that is not a string.
    Location40517 = 40517,
    /// `$dateFromParts` with an unknown argument.
    Location40518 = 40518,
    /// `$dateFromParts` whose argument is not an object.
    Location40519 = 40519,
    /// `$dateToParts` with an unknown argument.
    Location40520 = 40520,
    /// `$dateToParts` whose `iso8601` is not a bool.
    Location40521 = 40521,
    /// `$dateToParts` without `date`.
    Location40522 = 40522,
    /// A `$dateFromParts` `year` outside 1-9999.
    Location40523 = 40523,
    /// `$dateToParts` whose argument is not an object.
    Location40524 = 40524,
    /// `$dateFromParts` mixing ISO week and calendar parts (`isoWeekYear` given).
    Location40525 = 40525,
    /// `{$year: {...}}` and its kin with an unknown option.
    Location40535 = 40535,
    /// `{$year: [...]}` and its kin with other than one element.
    Location40536 = 40536,
    /// `{$year: {...}}` and its kin without `date`.
    Location40539 = 40539,
    /// `$dateFromString` whose argument is not an object.
    Location40540 = 40540,
    /// `$dateFromString` with an unknown argument.
    Location40541 = 40541,
    /// `$dateFromString` without `dateString`.
    Location40542 = 40542,
    /// `$dateFromString` whose `format` is not a string.
    Location40684 = 40684,
    /// `$dateDiff` whose argument is not an object.
    Location5166301 = 5166301,
    /// `$dateDiff` with an unknown argument.
    Location5166302 = 5166302,
    /// `$dateDiff` without `startDate`.
    Location5166303 = 5166303,
    /// `$dateDiff` without `endDate`.
    Location5166304 = 5166304,
    /// `$dateDiff` without `unit`.
    Location5166305 = 5166305,
    /// `$dateDiff`/`$dateTrunc` whose date is not a date.
    Location5166307 = 5166307,
    /// `$dateDiff` whose result does not fit a long.
    Location5166308 = 5166308,
    /// `$dateAdd`/`$dateSubtract` whose argument is not an object.
    Location5166400 = 5166400,
    /// `$dateAdd`/`$dateSubtract` with an unknown argument.
    Location5166401 = 5166401,
    /// `$dateAdd`/`$dateSubtract` without `startDate`, `unit` or `amount`.
    Location5166402 = 5166402,
    /// `$dateAdd`/`$dateSubtract` whose `startDate` is not a date.
    Location5166403 = 5166403,
    /// `$dateAdd`/`$dateSubtract` whose `amount` is not an integer.
    Location5166405 = 5166405,
    /// `$dateAdd`/`$dateSubtract` whose result is out of the date range.
    Location5166406 = 5166406,
    /// `$dateTrunc` whose argument is not an object.
    Location5439007 = 5439007,
    /// `$dateTrunc` with an unknown argument.
    Location5439008 = 5439008,
    /// `$dateTrunc` without `date`.
    Location5439009 = 5439009,
    /// `$dateTrunc` without `unit`.
    Location5439010 = 5439010,
    /// A date `unit` that is not a string.
    Location5439013 = 5439013,
    /// A `startOfWeek` that is not a string.
    Location5439015 = 5439015,
    /// A `startOfWeek` that names no day of the week.
    Location5439016 = 5439016,
    /// `$dateTrunc` whose `binSize` is not an integer.
    Location5439017 = 5439017,
    /// `$dateTrunc` whose `binSize` is not positive.
    Location5439018 = 5439018,
    /// `$dateAdd`/`$dateSubtract` with an amount far outside the range of a date.
    Location5976500 = 5976500,
    /// `$dateSubtract` of the smallest long.
    Location6045000 = 6045000,
    /// A role that already exists.
    Location51002 = 51002,
    /// A user that already exists.
    Location51003 = 51003,
    /// A request over the server's rate limit (mongod 8's ingress rate limiter).
    IngressRequestRateLimitExceeded = 462,
    /// `$skip` whose argument is not a non-negative integer.
    Location15956 = 15956,
    /// `$limit` whose argument is not a non-negative integer.
    Location15957 = 15957,
    /// An N expression (`$firstN`, ...) whose input is not an array.
    Location5788200 = 5788200,
    /// A number that does not fit a long (an infinite or NaN `n`).
    Location31109 = 31109,
    /// `$function` or `$accumulator` without a JavaScript engine.
    Location31264 = 31264,
    /// `$firstN`/`$lastN` whose argument is not an object.
    Location5787801 = 5787801,
    /// `$maxN`/`$minN` whose argument is not an object.
    Location5787900 = 5787900,
    /// An N accumulator with an unknown argument.
    Location5787901 = 5787901,
    /// An `n` that is not a number.
    Location5787902 = 5787902,
    /// An `n` that is not integral.
    Location5787903 = 5787903,
    /// An N accumulator without `n`.
    Location5787906 = 5787906,
    /// An N accumulator without `input`.
    Location5787907 = 5787907,
    /// An `n` that is not positive.
    Location5787908 = 5787908,
    /// A top/bottom accumulator whose argument is not an object.
    Location5788001 = 5788001,
    /// A top/bottom accumulator with an unknown argument.
    Location5788002 = 5788002,
    /// `$topN`/`$bottomN` without `n`.
    Location5788003 = 5788003,
    /// A top/bottom accumulator without `output`.
    Location5788004 = 5788004,
    /// A top/bottom accumulator without `sortBy`.
    Location5788005 = 5788005,
    /// `$percentile` whose argument is not an object.
    Location7429703 = 7429703,
    /// `$median` whose argument is not an object.
    Location7436100 = 7436100,
    /// The `$percentile` expression whose argument is not an object.
    Location7436200 = 7436200,
    /// The `$median` expression whose argument is not an object.
    Location7436201 = 7436201,
    /// A `$percentile` `p` that is not a constant.
    Location7750300 = 7750300,
    /// A `$percentile` `p` that is not a non-empty array.
    Location7750301 = 7750301,
    /// A `$percentile` `p` element that is not a number.
    Location7750302 = 7750302,
    /// A `$percentile` `p` element outside [0, 1].
    Location7750303 = 7750303,
    /// `$substrBytes` whose starting index is not a number.
    Location16034 = 16034,
    /// `$substrBytes` whose length is not a number.
    Location16035 = 16035,
    /// `$allElementsTrue` of a non-array.
    Location17040 = 17040,
    /// `$anyElementTrue` of a non-array.
    Location17041 = 17041,
    /// `$setIsSubset` whose second operand is not an array.
    Location17042 = 17042,
    /// `$setUnion` of a non-array.
    Location17043 = 17043,
    /// `$setEquals` of a non-array.
    Location17044 = 17044,
    /// `$setEquals` with fewer than two operands.
    Location17045 = 17045,
    /// `$setIsSubset` whose first operand is not an array.
    Location17046 = 17046,
    /// `$setIntersection` of a non-array.
    Location17047 = 17047,
    /// `$setDifference` whose first operand is not an array.
    Location17048 = 17048,
    /// `$setDifference` whose second operand is not an array.
    Location17049 = 17049,
    /// `$substrBytes` starting inside a UTF-8 character.
    Location28656 = 28656,
    /// `$substrBytes` ending inside a UTF-8 character.
    Location28657 = 28657,
    /// `$sqrt` of a negative number.
    Location28714 = 28714,
    /// `$log` of a non-number.
    Location28756 = 28756,
    /// `$log` with a non-numeric base.
    Location28757 = 28757,
    /// `$log` of a number that is not positive.
    Location28758 = 28758,
    /// `$log` with a base that is not positive or is 1.
    Location28759 = 28759,
    /// `$log10` of a number that is not positive.
    Location28761 = 28761,
    /// `$pow` with a non-numeric base.
    Location28762 = 28762,
    /// `$pow` with a non-numeric exponent.
    Location28763 = 28763,
    /// `$pow` of zero to a negative exponent.
    Location28764 = 28764,
    /// `$ln` of a number that is not positive.
    Location28766 = 28766,
    /// A regular expression operator without `input`.
    Location31022 = 31022,
    /// A regular expression operator without `regex`.
    Location31023 = 31023,
    /// A regular expression operator with an unknown argument.
    Location31024 = 31024,
    /// `$bsonSize` of a non-document.
    Location31393 = 31393,
    /// `$reverseArray` of a non-array.
    Location34435 = 34435,
    /// `$range` with a non-numeric start.
    Location34443 = 34443,
    /// `$range` with a start past 32 bits.
    Location34444 = 34444,
    /// `$range` with a non-numeric end.
    Location34445 = 34445,
    /// `$range` with an end past 32 bits.
    Location34446 = 34446,
    /// `$range` with a non-numeric step.
    Location34447 = 34447,
    /// `$range` with a step past 32 bits.
    Location34448 = 34448,
    /// `$range` with a zero step.
    Location34449 = 34449,
    /// `$substrCP` with a non-numeric start.
    Location34450 = 34450,
    /// `$substrCP` with a start that is not a 32-bit integer.
    Location34451 = 34451,
    /// `$substrCP` with a non-numeric length.
    Location34452 = 34452,
    /// `$substrCP` with a length that is not a 32-bit integer.
    Location34453 = 34453,
    /// `$substrCP` with a negative length.
    Location34454 = 34454,
    /// `$substrCP` with a negative start.
    Location34455 = 34455,
    /// `$zip` whose argument is not an object.
    Location34460 = 34460,
    /// `$zip` whose `inputs` is not an array.
    Location34461 = 34461,
    /// `$zip` whose `defaults` is not an array.
    Location34462 = 34462,
    /// `$zip` whose `useLongestLength` is not a bool.
    Location34463 = 34463,
    /// `$zip` with an unknown argument.
    Location34464 = 34464,
    /// `$zip` without inputs.
    Location34465 = 34465,
    /// `$zip` with `defaults` but not `useLongestLength`.
    Location34466 = 34466,
    /// `$zip` with as many defaults as inputs.
    Location34467 = 34467,
    /// `$zip` of a non-array input.
    Location34468 = 34468,
    /// `$strLenCP` of a non-string.
    Location34471 = 34471,
    /// `$strLenBytes` of a non-string.
    Location34473 = 34473,
    /// `$split` of a non-string.
    Location40085 = 40085,
    /// `$split` by a non-string.
    Location40086 = 40086,
    /// `$split` by an empty separator.
    Location40087 = 40087,
    /// `$indexOfArray` in a non-array.
    Location40090 = 40090,
    /// `$indexOfBytes` in a non-string.
    Location40091 = 40091,
    /// `$indexOfBytes` of a non-string.
    Location40092 = 40092,
    /// `$indexOfCP` in a non-string.
    Location40093 = 40093,
    /// `$indexOfCP` of a non-string.
    Location40094 = 40094,
    /// A search index that is not an integer.
    Location40096 = 40096,
    /// A negative search index.
    Location40097 = 40097,
    /// `$arrayToObject` of a non-array.
    Location40386 = 40386,
    /// `$objectToArray` of a non-document.
    Location40390 = 40390,
    /// `$arrayToObject` of mixed pairs and documents.
    Location40391 = 40391,
    /// `$arrayToObject` of a document with other than two fields.
    Location40392 = 40392,
    /// `$arrayToObject` of a document without `k` and `v`.
    Location40393 = 40393,
    /// `$arrayToObject` of a document whose `k` is not a string.
    Location40394 = 40394,
    /// `$arrayToObject` of a pair whose key is not a string.
    Location40395 = 40395,
    /// `$arrayToObject` of a pair that is not two long.
    Location40397 = 40397,
    /// `$arrayToObject` of elements neither pairs nor documents.
    Location40398 = 40398,
    /// A trim with an unknown argument.
    Location50694 = 50694,
    /// A trim without `input`.
    Location50695 = 50695,
    /// A trim whose argument is not an object.
    Location50696 = 50696,
    /// A trim of a non-string.
    Location50699 = 50699,
    /// A trim whose `chars` is not a string.
    Location50700 = 50700,
    /// `$substrBytes` with a negative start.
    Location50752 = 50752,
    /// A trigonometric operator outside its domain.
    Location50989 = 50989,
    /// `$atan2` of a non-number.
    Location51044 = 51044,
    /// `$round`/`$trunc` of an integer whose result leaves the int64 range.
    Location51080 = 51080,
    /// `$round`/`$trunc` of a non-number.
    Location51081 = 51081,
    /// `$round`/`$trunc` with a place that is not an integer.
    Location51082 = 51082,
    /// `$round`/`$trunc` with a place outside [-20, 100].
    Location51083 = 51083,
    /// A regular expression operator whose argument is not an object.
    Location51103 = 51103,
    /// A regular expression operator whose `regex` is not a string or regex.
    Location51104 = 51104,
    /// A regular expression operator whose `options` is not a string.
    Location51105 = 51105,
    /// A regular expression operator whose `input` is not a string.
    Location51106 = 51106,
    /// A regular expression operator with options in both `regex` and `options`.
    Location51107 = 51107,
    /// A regular expression operator whose pattern holds a NUL byte.
    Location51109 = 51109,
    /// A regular expression operator whose options hold a NUL byte.
    Location51110 = 51110,
    /// A regular expression operator whose pattern does not compile.
    Location51111 = 51111,
    /// A regular expression operator whose match gave up (PCRE's match or heap limit).
    Location51156 = 51156,
    /// `$binarySize` of a value that is neither string nor binData.
    Location51276 = 51276,
    /// A replace whose `replacement` is not a string.
    Location51744 = 51744,
    /// A replace whose `find` is not a string.
    Location51745 = 51745,
    /// A replace whose `input` is not a string.
    Location51746 = 51746,
    /// A replace without `replacement`.
    Location51747 = 51747,
    /// A replace without `find`.
    Location51748 = 51748,
    /// A replace without `input`.
    Location51749 = 51749,
    /// A replace with an unknown argument.
    Location51750 = 51750,
    /// A replace whose argument is not an object.
    Location51751 = 51751,
    /// `$sortArray` whose argument is not an object.
    Location2942500 = 2942500,
    /// `$sortArray` with an unknown argument.
    Location2942501 = 2942501,
    /// `$sortArray` without `input`.
    Location2942502 = 2942502,
    /// `$sortArray` without `sortBy`.
    Location2942503 = 2942503,
    /// `$sortArray` of a non-array.
    Location2942504 = 2942504,
    /// `$sortArray` with a malformed `sortBy`.
    Location2942505 = 2942505,
    /// `$arrayToObject` with a key holding a NUL byte.
    Location4940400 = 4940400,
    /// `$tsSecond` of a non-timestamp.
    Location5687301 = 5687301,
    /// `$tsIncrement` of a non-timestamp.
    Location5687302 = 5687302,
}

/// A failed command, as the client will see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Error(Box<ErrorInner>);

#[derive(Debug, Clone, PartialEq)]
struct ErrorInner {
    code: ErrorCode,
    message: String,
    info: Option<Document>,
    internal: Option<String>,
}

impl Error {
    /// An error with `code` and the message shown to the client.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(Box::new(ErrorInner { code, message: message.into(), info: None, internal: None }))
    }

    /// Attaches detail for the server log only (never sent to the client).
    #[must_use]
    pub fn with_internal(mut self, detail: impl Into<String>) -> Self {
        self.0.internal = Some(detail.into());
        self
    }

    /// The same error raised while running `context`: mongod's `<context> :: caused by ::
    /// <message>` (once, however often it is wrapped).
    #[must_use]
    pub fn caused_by(mut self, context: &str) -> Self {
        if !self.0.message.starts_with(context) {
            self.0.message = format!("{context} :: caused by :: {}", self.0.message);
        }
        self
    }

    /// Adds fields the client sees beside `code` and `errmsg` (for example `keyPattern` and
    /// `keyValue` of a duplicate key).
    #[must_use]
    pub fn with_info(mut self, info: Document) -> Self {
        self.0.info = Some(info);
        self
    }

    /// The extra fields, if any.
    pub fn info(&self) -> Option<&Document> {
        self.0.info.as_ref()
    }

    /// The error code.
    pub fn code(&self) -> ErrorCode {
        self.0.code
    }

    /// The message shown to the client.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// Detail kept for the logs.
    pub fn internal(&self) -> Option<&str> {
        self.0.internal.as_deref()
    }

    /// The reply mongod sends for a failed command: `{ok: 0, errmsg, code, codeName}`.
    pub fn to_reply(&self) -> Document {
        let mut reply = doc! {
            "ok": 0.0,
            "errmsg": self.message(),
            "code": self.code().code(),
            "codeName": self.code().name(),
        };
        reply.extend(self.info().cloned().unwrap_or_default());
        reply
    }

    /// The entry for this error in a write reply's `writeErrors`.
    pub fn to_write_error(&self, index: usize) -> Document {
        let mut entry = doc! {
            "index": i32::try_from(index).unwrap_or(i32::MAX),
            "code": self.code().code(),
        };
        entry.extend(self.info().cloned().unwrap_or_default());
        entry.insert("errmsg", self.message());
        entry
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code().name(), self.code().code(), self.message())
    }
}

impl std::error::Error for Error {}

/// A shorthand for handler results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_reply_has_mongod_shape() {
        let err = Error::new(ErrorCode::CommandNotFound, "no such command: 'x'").with_internal("secret");
        let reply = err.to_reply();
        assert_eq!(reply.get_f64("ok").ok(), Some(0.0));
        assert_eq!(reply.get_str("errmsg").ok(), Some("no such command: 'x'"));
        assert_eq!(reply.get_i32("code").ok(), Some(59));
        assert_eq!(reply.get_str("codeName").ok(), Some("CommandNotFound"));
        assert!(!reply.contains_key("internal"), "internal detail must not reach the client");
    }
}
