//! Each command's declared fields, from mongod 7.0's IDL files (`find_command.idl`,
//! `write_ops.idl`, `aggregate_command.idl`, ...) and hand-written commands, with how Monarch
//! treats each one. The command table in `mod.rs` names these; `options.rs` checks requests
//! against them and renders `docs/compat/command-options.md` from them.

use super::options::CommandOptions;
use super::options::Field as F;
use super::options::ReadConcernSupport::{All, AllButSnapshot, LocalAndSnapshot};

const COLLECTION_UUID: F = F::not_built("collectionUUID", "checking the collection's UUID");
const ENCRYPTION: F = F::not_built("encryptionInformation", "queryable encryption");
const STMT_IDS: F = F::honoured(
    "stmtIds",
    "the ids of a retryable write's statements, one each: a retry answers a statement whose id has a record",
);
const BYPASS_VALIDATION: F =
    F::honoured("bypassDocumentValidation", "writes skip the collection's validator when true");
const ORDERED: F = F::honoured("ordered", "false runs every statement and reports each failure");
const LET: F = F::honoured("let", "variables for `$expr`, pipelines and projections");
const COLLATION: F = F::honoured("collation", "");
const HINT: F = F::honoured("hint", "an index name or key pattern; unknown indexes are refused as mongod");

/// `aggregate`.
pub const AGGREGATE: CommandOptions = CommandOptions::strict(&[
    F::honoured("pipeline", "the stages of `exec::pipeline::registry` (known others answer 238)"),
    F::honoured("cursor", "`batchSize` of the first batch"),
    F::honoured("explain", "true answers the plan, as the explain command at `queryPlanner`"),
    F::honoured(
        "allowDiskUse",
        "`$sort` spills to `<dbpath>/_tmp` past its memory limit; other blocking stages go on in memory",
    ),
    F::honoured("bypassDocumentValidation", "`$out` and `$merge` skip the target's validator when true"),
    COLLATION,
    HINT,
    LET,
    F::internal("needsMerge"),
    F::internal("fromMongos"),
    F::internal("exchange"),
    F::internal("runtimeConstants"),
    F::internal("isMapReduceCommand"),
    F::internal("$_requestReshardingResumeToken"),
    F::internal("$_passthroughToShard"),
    F::internal("$_isClusterQueryWithoutShardKeyCmd"),
    F::internal("$_requestResumeToken"),
    F::internal("$_resumeAfter"),
    F::internal("sampleId"),
    COLLECTION_UUID,
    ENCRYPTION,
])
.reads(All)
.writes()
.api_v1();

/// `buildInfo`.
pub const BUILD_INFO: CommandOptions = CommandOptions::basic(&[], "ignored, as mongod").sessionless();

/// `cloneCollectionAsCapped`.
pub const CLONE_COLLECTION_AS_CAPPED: CommandOptions = CommandOptions::strict(&[
    F::honoured("toCollection", "the new capped collection, in the same database"),
    F::honoured("size", "its bytes, rounded up to a multiple of 256"),
    F::internal("temp"),
])
.writes();

/// `convertToCapped`.
pub const CONVERT_TO_CAPPED: CommandOptions = CommandOptions::strict(&[F::honoured(
    "size",
    "its bytes, rounded up to a multiple of 256; the newest documents that fit are kept",
)])
.writes();

/// `collMod`.
pub const COLL_MOD: CommandOptions = CommandOptions::strict(&[
    F::honoured("validator", "stored; validation is applied to later writes"),
    F::honoured("validationLevel", "stored with the validator"),
    F::honoured("validationAction", "stored with the validator"),
    F::honoured("index", "changes `hidden` or `expireAfterSeconds` of one index"),
    F::honoured(
        "expireAfterSeconds",
        "a clustered or time-series collection's TTL (seconds, or `\"off\"`): documents whose `_id` is an older date (buckets whose latest possible time is older) are deleted; 72 on other collections; on a time-series collection every other collMod option answers 238",
    ),
    F::honoured(
        "changeStreamPreAndPostImages",
        "each change's document before and after is kept with its oplog entry, for change streams' `fullDocumentBeforeChange` and `fullDocument: whenAvailable|required`",
    ),
    F::not_built("timeseries", "changing a time-series collection's granularity or bucketing"),
    F::honoured("viewOn", "the collection or view a view reads (views only)"),
    F::honoured("pipeline", "a view's stages (views only)"),
    F::not_built("cappedSize", "resizing capped collections"),
    F::not_built("cappedMax", "resizing capped collections"),
    F::internal("isTimeseriesNamespace"),
    COLLECTION_UUID,
])
.writes()
.api_v1();

/// `collStats`.
pub const COLL_STATS: CommandOptions = CommandOptions::basic(
    &[
        F::honoured("scale", "divides the sizes"),
        F::ignored("verbose", "adds WiredTiger's per-index detail; Monarch has no such engine internals"),
        F::ignored("indexDetails", "WiredTiger's per-index detail; Monarch has no such engine internals"),
        F::ignored("indexDetailsKey", "selects WiredTiger's per-index detail"),
        F::ignored("indexDetailsName", "selects WiredTiger's per-index detail"),
    ],
    "ignored, as mongod",
);

/// `configureFailPoint`.
pub const CONFIGURE_FAIL_POINT: CommandOptions = CommandOptions::basic(
    &[
        F::honoured("mode", "`alwaysOn`, `off`, `{times}`, `{skip}`, `{activationProbability}`"),
        F::honoured("data", ""),
    ],
    "ignored, as mongod",
);

/// `connectionStatus`.
pub const CONNECTION_STATUS: CommandOptions =
    CommandOptions::basic(&[F::honoured("showPrivileges", "the union of the users' privileges")], "ignored, as mongod")
        .sessionless();

/// `createUser`.
pub const CREATE_USER: CommandOptions = CommandOptions::strict(&[
    F::honoured("pwd", "stored as SCRAM salts and keys, never as given"),
    F::honoured("roles", "built-in or custom roles that exist; enforced with --auth"),
    F::honoured("customData", "stored with the user"),
    F::not_built("authenticationRestrictions", "authentication restrictions (clientSource, serverAddress)"),
    F::honoured("mechanisms", "SCRAM-SHA-1 and/or SCRAM-SHA-256"),
    F::honoured("digestPassword", "false is refused with SCRAM-SHA-256, as mongod"),
])
.writes();

/// `count`.
pub const COUNT: CommandOptions = CommandOptions::strict(&[
    F::honoured("query", ""),
    F::honoured("limit", ""),
    F::honoured("skip", ""),
    HINT,
    COLLATION,
    F::ignored("fields", "mongod parses it and never uses it"),
    F::internal("mirrored"),
    F::internal("sampleId"),
    COLLECTION_UUID,
    ENCRYPTION,
])
.reads(AllButSnapshot)
.api_v1();

/// `create`.
pub const CREATE: CommandOptions = CommandOptions::strict(&[
    F::honoured(
        "capped",
        "documents kept in insertion order (`$natural`), the oldest deleted past `size` or `max` at each insert",
    ),
    F::honoured("size", "a capped collection's bytes, rounded up to a multiple of 256 (required when capped)"),
    F::honoured("max", "a capped collection's most documents (0, negative or absent: no limit)"),
    F::honoured("validator", "stored; validation is applied to later writes"),
    F::honoured("validationLevel", "stored with the validator"),
    F::honoured("validationAction", "stored with the validator"),
    F::ignored("storageEngine", "engine-specific options; Monarch's engines take none per collection"),
    F::ignored("indexOptionDefaults", "holds only engine-specific index options; Monarch's engines take none"),
    F::honoured("collation", "the collection's default collation"),
    F::honoured(
        "expireAfterSeconds",
        "with `clusteredIndex`: documents whose `_id` is a date older than that many seconds are deleted by the TTL monitor; with `timeseries`: whole buckets whose latest possible time is older; 72 InvalidOptions without `timeseries` or `clusteredIndex`",
    ),
    F::honoured(
        "timeseries",
        "`{timeField, metaField?, granularity? | bucketMaxSpanSeconds + bucketRoundingSeconds}`: a bucket collection `system.buckets.<name>` and a view that unpacks it (see docs/compat/timeseries.md); with `expireAfterSeconds`, `storageEngine`, `indexOptionDefaults`, `collation` only, else 72",
    ),
    F::honoured(
        "clusteredIndex",
        "`{key: {_id: 1}, unique: true, name?, v?}`: Monarch's own layout, listed as mongod lists a clustered collection; capped clustered collections (mongod's test-only feature) are refused",
    ),
    F::honoured(
        "changeStreamPreAndPostImages",
        "each change's document before and after is kept with its oplog entry, for change streams' `fullDocumentBeforeChange` and `fullDocument: whenAvailable|required`",
    ),
    F::honoured("viewOn", "creates a view on this collection or view"),
    F::honoured("pipeline", "the view's stages"),
    F::ignored("autoIndexId", "deprecated; the `_id` index is always built"),
    F::ignored("flags", "MMAPv1's allocation flags, which mongod no longer uses"),
    F::not_built("encryptedFields", "queryable encryption"),
    F::not_built("idIndex", "custom `_id` index specifications"),
    F::internal("temp"),
])
.writes()
.api_v1();

/// `createBackup` (Percona Server for MongoDB's command).
pub const CREATE_BACKUP: CommandOptions = CommandOptions::strict(&[F::honoured(
    "backupDir",
    "an absolute path on the server's host, absent or empty; written as `<backupDir>.partial`, renamed when complete",
)]);

/// `createIndexes`.
pub const CREATE_INDEXES: CommandOptions = CommandOptions::strict(&[
    F::honoured("indexes", "the index specifications"),
    F::checked(
        "commitQuorum",
        "2 BadValue \"Standalones can't specify commitQuorum\"; on a replica set of one, votingMembers, majority, 0 and 1 \
         are met at once, more members are 278 UnsatisfiableCommitQuorum",
    ),
    F::not_built_if_true("ignoreUnknownIndexOptions", "dropping unknown index options"),
    F::internal("isTimeseriesNamespace"),
    COLLECTION_UUID,
])
.writes()
.api_v1();

/// `currentOp`.
pub const CURRENT_OP: CommandOptions = CommandOptions::basic(
    &[
        F::honoured("$all", "without authentication every operation is listed"),
        F::honoured("$ownOps", "without authentication every operation is the client's own"),
    ],
    "a filter on the operations, as mongod",
);

/// `dbStats`.
pub const DB_STATS: CommandOptions = CommandOptions::strict(&[
    F::honoured("scale", "divides the sizes"),
    F::honoured("freeStorage", "adds the free-space figures (0: Monarch reuses space as it goes)"),
]);

/// `delete`.
pub const DELETE: CommandOptions = CommandOptions::strict(&[
    F::honoured("deletes", "the statements: `q`, `limit`, `hint`, `collation`").sequence(),
    LET,
    ORDERED,
    BYPASS_VALIDATION,
    STMT_IDS,
    F::internal("runtimeConstants"),
    F::internal("isTimeseriesNamespace"),
    COLLECTION_UUID,
    ENCRYPTION,
])
.reads(LocalAndSnapshot)
.writes()
.api_v1();

/// `distinct`.
pub const DISTINCT: CommandOptions = CommandOptions::strict(&[
    F::honoured("key", ""),
    F::honoured("query", ""),
    COLLATION,
    F::internal("mirrored"),
    F::internal("sampleId"),
    COLLECTION_UUID,
])
.reads(All);

/// `drop`.
pub const DROP: CommandOptions = CommandOptions::strict(&[COLLECTION_UUID]).writes().api_v1();

/// `dropUser`.
pub const DROP_USER: CommandOptions = CommandOptions::strict(&[]).writes();

/// `dropAllUsersFromDatabase`.
pub const DROP_ALL_USERS_FROM_DATABASE: CommandOptions = CommandOptions::strict(&[]).writes();

/// `grantRolesToUser`.
pub const GRANT_ROLES_TO_USER: CommandOptions =
    CommandOptions::strict(&[F::honoured("roles", "built-in or custom roles that exist")]).writes();

/// `revokeRolesFromUser`.
pub const REVOKE_ROLES_FROM_USER: CommandOptions =
    CommandOptions::strict(&[F::honoured("roles", "built-in or custom roles that exist")]).writes();

/// `updateUser`.
pub const UPDATE_USER: CommandOptions = CommandOptions::strict(&[
    F::honoured("pwd", "new SCRAM credentials, never stored as given"),
    F::honoured("roles", "replaces the user's roles"),
    F::honoured("customData", "replaces the user's custom data"),
    F::honoured("mechanisms", "with pwd, the mechanisms to make; without, a subset to keep"),
    F::honoured("digestPassword", "false is refused with SCRAM-SHA-256, as mongod"),
    F::not_built("authenticationRestrictions", "authentication restrictions (clientSource, serverAddress)"),
])
.writes();

/// `createRole`.
pub const CREATE_ROLE: CommandOptions = CommandOptions::strict(&[
    F::honoured("privileges", "resource patterns and mongod's action names"),
    F::honoured("roles", "inherited roles; cycles refused"),
    F::not_built("authenticationRestrictions", "authentication restrictions (clientSource, serverAddress)"),
])
.writes();

/// `updateRole`.
pub const UPDATE_ROLE: CommandOptions = CommandOptions::strict(&[
    F::honoured("privileges", "replaces the role's privileges"),
    F::honoured("roles", "replaces the inherited roles; cycles refused"),
    F::not_built("authenticationRestrictions", "authentication restrictions (clientSource, serverAddress)"),
])
.writes();

/// `dropRole`, `dropAllRolesFromDatabase`.
pub const DROP_ROLE: CommandOptions = CommandOptions::strict(&[]).writes();

/// `grantPrivilegesToRole`, `revokePrivilegesFromRole`.
pub const ROLE_PRIVILEGES: CommandOptions =
    CommandOptions::strict(&[F::honoured("privileges", "resource patterns and mongod's action names")]).writes();

/// `grantRolesToRole`, `revokeRolesFromRole`.
pub const ROLE_ROLES: CommandOptions =
    CommandOptions::strict(&[F::honoured("roles", "roles that exist; cycles refused")]).writes();

/// `rolesInfo`.
pub const ROLES_INFO: CommandOptions = CommandOptions::strict(&[
    F::honoured("showPrivileges", "true, or \"asUserFragment\""),
    F::honoured("showBuiltinRoles", "with rolesInfo: 1"),
    F::honoured("showAuthenticationRestrictions", "always empty: restrictions are not built"),
]);

/// `usersInfo`.
pub const USERS_INFO: CommandOptions = CommandOptions::strict(&[
    F::honoured("showCredentials", "each mechanism's salt and iteration count; never the keys"),
    F::honoured("showPrivileges", "inherited roles and privileges, for exact names"),
    F::honoured("showAuthenticationRestrictions", "always empty: restrictions are not built"),
    F::honoured("showCustomData", "false leaves customData out"),
    F::honoured("filter", "a filter over the users as shown"),
]);

/// `dropDatabase`.
pub const DROP_DATABASE: CommandOptions = CommandOptions::strict(&[]).writes().api_v1();

/// `dropIndexes`.
pub const DROP_INDEXES: CommandOptions =
    CommandOptions::strict(&[F::honoured("index", "a name, key pattern, `*` or list of names"), COLLECTION_UUID])
        .writes()
        .api_v1();

/// `endSessions`.
pub const END_SESSIONS: CommandOptions = CommandOptions::basic(&[], "ignored, as mongod").api_v1();

/// `explain`.
pub const EXPLAIN: CommandOptions = CommandOptions::strict(&[F::honoured(
    "verbosity",
    "`queryPlanner`, `executionStats` or `allPlansExecution`; the explained command's own fields are checked as \
     that command's",
)])
.reads(All)
.api_v1();

/// `find`.
pub const FIND: CommandOptions = CommandOptions::strict(&[
    F::honoured("filter", ""),
    F::honoured("projection", ""),
    F::honoured("sort", ""),
    HINT,
    COLLATION,
    F::honoured("skip", ""),
    F::honoured("limit", ""),
    F::honoured("batchSize", ""),
    F::honoured("singleBatch", ""),
    F::honoured("allowDiskUse", "a blocking sort spills to `<dbpath>/_tmp` past its memory limit"),
    F::honoured("min", "with a hinted index"),
    F::honoured("max", "with a hinted index"),
    F::honoured("returnKey", ""),
    F::honoured(
        "showRecordId",
        "adds `$recordId`: the document's key in Monarch's `_id`-ordered storage, as binary data (mongod's \
         clustered collections are keyed the same way); with `returnKey` the key alone, as mongod",
    ),
    F::honoured(
        "tailable",
        "on a capped collection, the cursor stays open at its end and the next getMore returns what was inserted \
         since (136 CappedPositionLost once its position is trimmed away); 2 BadValue on other collections and with a \
         sort other than {$natural: 1}",
    ),
    F::honoured(
        "awaitData",
        "a getMore that finds nothing waits for an insert up to its maxTimeMS (1 s by default); 9 FailedToParse \
         without tailable",
    ),
    F::ignored("oplogReplay", "deprecated; mongod ignores it since 4.4"),
    F::honoured("noCursorTimeout", "the cursor is never reaped for idleness"),
    F::ignored("allowPartialResults", "only matters when a shard is down; a standalone holds all the data"),
    LET,
    F::ignored("readOnce", "a storage cache hint with no visible effect"),
    F::internal("ntoreturn"),
    F::internal("term"),
    F::internal("allowSpeculativeMajorityRead"),
    F::internal("runtimeConstants"),
    F::internal("$_requestResumeToken"),
    F::internal("$_resumeAfter"),
    F::internal("$_startAt"),
    F::internal("mirrored"),
    F::internal("sampleId"),
    COLLECTION_UUID,
    ENCRYPTION,
])
.reads(All)
.api_v1();

/// `findAndModify`.
pub const FIND_AND_MODIFY: CommandOptions = CommandOptions::strict(&[
    F::honoured("query", ""),
    F::honoured("sort", ""),
    F::honoured("remove", ""),
    F::honoured("update", "an update document or pipeline"),
    F::honoured("new", ""),
    F::honoured("fields", "a projection of the returned document"),
    F::honoured("upsert", ""),
    BYPASS_VALIDATION,
    F::honoured("arrayFilters", ""),
    HINT,
    COLLATION,
    LET,
    F::internal("runtimeConstants"),
    F::internal("sampleId"),
    F::internal("$_fromMongos"),
    ENCRYPTION,
])
.reads(LocalAndSnapshot)
.writes()
.api_v1();

/// `getCmdLineOpts`.
pub const GET_CMD_LINE_OPTS: CommandOptions = CommandOptions::basic(&[], "ignored, as mongod");

/// `getLog`.
pub const GET_LOG: CommandOptions = CommandOptions::basic(&[], "ignored, as mongod");

/// `getMore`.
pub const GET_MORE: CommandOptions = CommandOptions::strict(&[
    F::honoured("collection", "must be the cursor's"),
    F::honoured("batchSize", ""),
    F::internal("term"),
    F::internal("lastKnownCommittedOpTime"),
    F::internal("includeQueryStatsMetrics"),
])
.api_v1();

/// `getParameter`.
pub const GET_PARAMETER: CommandOptions = CommandOptions::basic(&[], "parameter names to report, as mongod");

/// `hello`.
pub const HELLO: CommandOptions = CommandOptions::lax(
    &[
        F::honoured("helloOk", "answered with `helloOk: true` (legacy `isMaster`)"),
        F::honoured("client", "the client metadata of the connection's first hello"),
        F::honoured("compression", "negotiates the compressor"),
        F::honoured("saslSupportedMechs", "the mechanisms the user has credentials for; left out for an unknown user"),
        F::honoured(
            "speculativeAuthenticate",
            "SCRAM's first step in the handshake; left out when it fails, as mongod",
        ),
        F::honoured(
            "topologyVersion",
            "awaitable hello: with this process's id and counter, the reply waits for a change or `maxAwaitTimeMS`",
        ),
        F::honoured("maxAwaitTimeMS", "awaitable hello: the longest wait; the wait is left out of the slow-query log"),
        F::honoured("awaitable", "requires `topologyVersion` and `maxAwaitTimeMS`, as mongod"),
        F::ignored("internalClient", "marks mongod-to-mongod connections; wire versions do not depend on it here"),
        F::ignored("hostInfo", "informational, as in mongod"),
        F::ignored("loadBalanced", "only meaningful behind a load balancer"),
    ],
    "ignored, as mongod (its hello is not strict)",
)
.sessionless()
.api_v1();

/// `hostInfo`.
pub const HOST_INFO: CommandOptions = CommandOptions::basic(&[], "ignored, as mongod");

/// `insert`.
pub const INSERT: CommandOptions = CommandOptions::strict(&[
    F::honoured("documents", "").sequence(),
    ORDERED,
    BYPASS_VALIDATION,
    STMT_IDS,
    F::internal("isTimeseriesNamespace"),
    COLLECTION_UUID,
    ENCRYPTION,
])
.reads(LocalAndSnapshot)
.writes()
.api_v1();

/// `isMaster` (not in the Stable API: `hello` replaced it).
pub const IS_MASTER: CommandOptions = CommandOptions { api_v1: false, ..HELLO };

/// `killAllSessions`.
pub const KILL_ALL_SESSIONS: CommandOptions = CommandOptions::basic(&[], "ignored, as mongod");

/// `killAllSessionsByPattern`.
pub const KILL_ALL_SESSIONS_BY_PATTERN: CommandOptions = CommandOptions::basic(&[], "ignored, as mongod");

/// `killCursors`.
pub const KILL_CURSORS: CommandOptions = CommandOptions::strict(&[F::honoured("cursors", "")]).api_v1();

/// `killOp`.
pub const KILL_OP: CommandOptions = CommandOptions::basic(&[F::honoured("op", "")], "ignored, as mongod");

/// `killSessions`.
pub const KILL_SESSIONS: CommandOptions = CommandOptions::basic(&[], "ignored, as mongod");

/// `listCollections`.
pub const LIST_COLLECTIONS: CommandOptions = CommandOptions::strict(&[
    F::honoured("filter", ""),
    F::honoured("nameOnly", ""),
    F::honoured("authorizedCollections", "without authentication every collection is authorized"),
    F::honoured("cursor", "`batchSize` of the first batch"),
    F::internal("includePendingDrops"),
])
.api_v1();

/// `listCommands`.
pub const LIST_COMMANDS: CommandOptions = CommandOptions::basic(&[], "ignored, as mongod");

/// `listDatabases`.
pub const LIST_DATABASES: CommandOptions = CommandOptions::strict(&[
    F::honoured("filter", ""),
    F::honoured("nameOnly", ""),
    F::ignored("authorizedDatabases", "without authentication every database is authorized"),
])
.api_v1();

/// `listIndexes`.
pub const LIST_INDEXES: CommandOptions = CommandOptions::strict(&[
    F::honoured("cursor", "`batchSize` of the first batch"),
    F::internal("includeBuildUUIDs"),
    F::internal("includeIndexBuildInfo"),
    COLLECTION_UUID,
])
.api_v1();

/// `monarchQueryStats` (Monarch's own).
pub const MONARCH_QUERY_STATS: CommandOptions =
    CommandOptions::strict(&[F::honoured("limit", "how many query shapes to list")]);

/// `authenticate`.
pub const AUTHENTICATE: CommandOptions = CommandOptions::strict(&[
    F::honoured("mechanism", "MONGODB-X509 only, as mongod 7.0"),
    F::honoured("user", "must be the subject of the client's certificate"),
])
.sessionless()
.api_v1();

/// `rotateCertificates`.
pub const ROTATE_CERTIFICATES: CommandOptions =
    CommandOptions::strict(&[F::honoured("message", "written to the log")]).sessionless();

/// `logRotate`.
pub const LOG_ROTATE: CommandOptions = CommandOptions::strict(&[]);

/// `logout`.
pub const LOGOUT: CommandOptions = CommandOptions::basic(&[], "ignored, as mongod").sessionless();

/// `saslContinue`.
pub const SASL_CONTINUE: CommandOptions = CommandOptions::strict(&[
    F::honoured("conversationId", "one conversation per connection, as mongod"),
    F::honoured("payload", "the client's SCRAM message"),
])
.sessionless()
.api_v1();

/// `saslStart`.
pub const SASL_START: CommandOptions = CommandOptions::strict(&[
    F::honoured("mechanism", "SCRAM-SHA-1 or SCRAM-SHA-256"),
    F::honoured("payload", "the client's first SCRAM message"),
    F::ignored("autoAuthorize", "always on, as mongod"),
    F::honoured(
        "options",
        "the exchange ends with the server's signature, as with skipEmptyExchange; drivers that do not ask for it accept that too",
    ),
])
.sessionless()
.api_v1();

/// `ping`.
pub const PING: CommandOptions = CommandOptions::basic(&[], "ignored, as mongod").sessionless().api_v1();

/// `profile`.
pub const PROFILE: CommandOptions = CommandOptions::strict(&[
    F::honoured("slowms", "the server-wide slow-operation threshold"),
    F::honoured("sampleRate", "the server-wide sample rate"),
    F::honoured("filter", "this database's profile filter, or \"unset\""),
]);

/// `refreshLogicalSessionCacheNow`.
pub const REFRESH_LOGICAL_SESSION_CACHE_NOW: CommandOptions = CommandOptions::basic(&[], "ignored, as mongod");

/// `refreshSessions`.
pub const REFRESH_SESSIONS: CommandOptions = CommandOptions::basic(&[], "ignored, as mongod").api_v1();

/// `replSetGetConfig`.
pub const REPL_SET_GET_CONFIG: CommandOptions = CommandOptions::basic(
    &[
        F::honoured(
            "commitmentStatus",
            "`commitmentStatus: true` on the primary (a single member commits every configuration)",
        ),
        F::ignored("includeNewlyAddedFields", "a single member is never newly added"),
    ],
    "ignored, as mongod",
);

/// `replSetGetStatus`.
pub const REPL_SET_GET_STATUS: CommandOptions = CommandOptions::basic(
    &[F::ignored("initialSync", "a single member never syncs from another")],
    "ignored, as mongod",
);

/// `replSetInitiate`.
pub const REPL_SET_INITIATE: CommandOptions = CommandOptions::basic(&[], "ignored, as mongod");

/// `replSetReconfig`.
pub const REPL_SET_RECONFIG: CommandOptions = CommandOptions::basic(
    &[F::honoured("force", "lets a member that is not primary take the configuration")],
    "ignored, as mongod",
);

/// `replSetStepDown`.
pub const REPL_SET_STEP_DOWN: CommandOptions = CommandOptions::basic(
    &[
        F::honoured("secondaryCatchUpPeriodSecs", "waited out (no secondary can catch up), default 10"),
        F::honoured("force", "steps down after the catch-up period although no secondary caught up"),
    ],
    "ignored, as mongod",
);

/// `renameCollection`.
pub const RENAME_COLLECTION: CommandOptions = CommandOptions::strict(&[
    F::honoured("to", ""),
    F::honoured("dropTarget", ""),
    F::ignored("stayTemp", "temporary collections exist only inside mongod (mapReduce output)"),
    COLLECTION_UUID,
])
.writes();

/// `serverStatus`.
pub const SERVER_STATUS: CommandOptions = CommandOptions::basic(
    &[F::honoured("opLatencies", "`{histograms: true}` adds the latency histograms; false leaves the section out")],
    "section switches, as mongod: a false value leaves that section out of the reply, other values are ignored",
);

/// `setParameter`.
pub const SET_PARAMETER: CommandOptions = CommandOptions::basic(&[], "parameter names and values, as mongod");

/// `startSession`.
pub const START_SESSION: CommandOptions = CommandOptions::basic(&[], "ignored, as mongod");

/// `commitTransaction` and `abortTransaction`.
pub const END_TRANSACTION: CommandOptions = CommandOptions::strict(&[
    F::ignored("recoveryToken", "mongos's token to recover a sharded transaction's coordinator"),
    F::internal("commitTimestamp"),
])
.writes()
.api_v1();

/// `update`.
pub const UPDATE: CommandOptions = CommandOptions::strict(&[
    F::honoured("updates", "the statements: `q`, `u`, `c`, `upsert`, `multi`, `arrayFilters`, `hint`, `collation`")
        .sequence(),
    LET,
    ORDERED,
    BYPASS_VALIDATION,
    STMT_IDS,
    F::internal("runtimeConstants"),
    F::internal("isTimeseriesNamespace"),
    COLLECTION_UUID,
    ENCRYPTION,
])
.reads(LocalAndSnapshot)
.writes()
.api_v1();

/// `validate`.
pub const VALIDATE: CommandOptions = CommandOptions::basic(
    &[
        F::honoured("full", "every validation is full"),
        F::ignored("background", "validation reads a snapshot and never blocks writers, whichever is asked"),
        F::honoured("checkBSONConformance", "every document is always checked"),
        F::not_built_if_true("metadata", "metadata-only validation"),
        F::not_built_if_true("repair", "repair"),
        F::honoured("enforceFastCount", "the stored count is always compared with the documents"),
    ],
    "ignored, as mongod",
);

/// `whatsmyuri`.
pub const WHATS_MY_URI: CommandOptions = CommandOptions::basic(&[], "ignored, as mongod");

/// A command without a declaration of its own: hand-written, with no options.
pub const DEFAULT: CommandOptions = CommandOptions::basic(&[], "ignored, as mongod");
