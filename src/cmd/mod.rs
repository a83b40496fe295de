//! Commands: one static table (name, aliases, handler, access, help) and the dispatcher that
//! looks a command up, runs its handler and turns the outcome into a reply.
//!
//! Handlers live one family per file and never touch the socket: they take a
//! [`RequestCtx`] and a [`CommandRequest`] and return the reply document or an [`Error`].

mod aggregate;
mod audit;
mod auth;
mod authz;
mod backup;
mod capped;
mod certificates;
mod clustered;
mod collation;
mod collections;
mod context;
mod diagnostics;
mod explain;
mod fields;
pub mod generic;
mod geo_near;
mod handshake;
mod indexes;
mod listing;
mod operations;
pub mod options;
mod parameters;
mod plan_cache;
mod profiling;
mod read;
mod replication;
mod reply;
mod request;
mod results;
mod roles;
mod sessions;
mod snapshot_reads;
mod target;
mod testing;
mod timeseries;
mod transactions;
mod users;
mod write;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};

use bson::Document;

pub use authz::{Access, Authorizer};
pub use context::{ClientInfo, OwnedCtx, ReplyWait, RequestCtx};
pub use reply::{Reply, ReplyBuilder};
pub use request::{CommandRequest, Protocol, type_name};

use crate::auth::action::ActionType;
use crate::error::{Error, ErrorCode, Result};

pub use crate::exec::pipeline::count_value;

/// A command handler: builds the reply (without `ok`, which the dispatcher adds), as an owned
/// document (small replies) or as raw bytes (replies that carry stored documents).
#[derive(Debug, Clone, Copy)]
pub enum Handler {
    /// Builds a [`Document`].
    Document(fn(&mut RequestCtx<'_>, &CommandRequest) -> Result<Document>),
    /// Builds a [`Reply`] itself.
    Reply(fn(&mut RequestCtx<'_>, &CommandRequest) -> Result<Reply>),
}

impl Handler {
    /// Runs the handler.
    ///
    /// # Errors
    /// The handler's.
    pub fn call(self, ctx: &mut RequestCtx<'_>, request: &CommandRequest) -> Result<Reply> {
        match self {
            Self::Document(handler) => handler(ctx, request).map(Reply::from),
            Self::Reply(handler) => handler(ctx, request),
        }
    }
}

/// One row of the command table: everything the dispatcher needs to know about a command.
#[derive(Debug)]
pub struct CommandSpec {
    /// mongod's exact spelling.
    pub name: &'static str,
    /// Other accepted spellings (`ismaster`, `buildinfo`).
    pub aliases: &'static [&'static str],
    /// `None`: known but not implemented yet (238 NotImplemented).
    pub handler: Option<Handler>,
    /// The access it needs.
    pub access: Access,
    /// Help text for `listCommands`.
    pub help: &'static str,
    /// Whether `OP_QUERY` may carry it (only the handshake).
    pub op_query: bool,
    /// Whether the handler is pure (reads no storage, does no blocking I/O) and runs inline on
    /// the connection's task. Every other handler runs on the blocking pool: storage work
    /// stays off the async workers by construction.
    pub inline: bool,
    /// Exists only with `--setParameter enableTestCommands=1`, as in mongod.
    pub test_only: bool,
    /// The fields it takes and how each is treated, how mongod parses it, and which read
    /// and write concerns it takes (see `options.rs`, `fields.rs`).
    pub options: options::CommandOptions,
    /// Where it may run in a replica set.
    pub member: MemberRole,
}

/// Where a command may run in a replica set (mongod's `secondaryAllowed`), checked before
/// it runs on a member that is not primary. Commands on the `local` database run anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberRole {
    /// Anywhere: the handshake, diagnostics, sessions, the replica-set commands, cursors
    /// already open.
    Any,
    /// Reads of data: on the primary, or on another member when the client allows it
    /// (`$readPreference` other than `primary`).
    Reads,
    /// Writes: on the primary only (10107 NotWritablePrimary elsewhere).
    Writes,
}

impl CommandSpec {
    const fn new(
        name: &'static str,
        handler: fn(&mut RequestCtx<'_>, &CommandRequest) -> Result<Document>,
        access: Access,
        help: &'static str,
    ) -> Self {
        Self::with_handler(name, Handler::Document(handler), access, help)
    }

    /// A command whose handler builds its [`Reply`] itself (raw replies).
    const fn raw(
        name: &'static str,
        handler: fn(&mut RequestCtx<'_>, &CommandRequest) -> Result<Reply>,
        access: Access,
        help: &'static str,
    ) -> Self {
        Self::with_handler(name, Handler::Reply(handler), access, help)
    }

    const fn with_handler(name: &'static str, handler: Handler, access: Access, help: &'static str) -> Self {
        Self {
            name,
            aliases: &[],
            handler: Some(handler),
            access,
            help,
            op_query: false,
            inline: false,
            test_only: false,
            options: fields::DEFAULT,
            member: MemberRole::Any,
        }
    }

    const fn options(mut self, options: options::CommandOptions) -> Self {
        self.options = options;
        self
    }

    const fn aliases(mut self, aliases: &'static [&'static str]) -> Self {
        self.aliases = aliases;
        self
    }

    const fn handshake(mut self) -> Self {
        self.op_query = true;
        self
    }

    /// Marks a pure command (see [`CommandSpec::inline`]).
    const fn inline(mut self) -> Self {
        self.inline = true;
        self
    }

    const fn test_only(mut self) -> Self {
        self.test_only = true;
        self
    }

    /// Reads data: a member that is not primary runs it only for clients that allow it.
    const fn reads_data(mut self) -> Self {
        self.member = MemberRole::Reads;
        self
    }

    /// Writes: only the primary runs it.
    const fn writes_data(mut self) -> Self {
        self.member = MemberRole::Writes;
        self
    }
}

use Access::{Anonymous, Authenticated, Cluster, Collection, Custom, Database};
use ActionType as A;

/// Every command the server knows, in `listCommands` order (alphabetical, as mongod).
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "abortTransaction",
        transactions::abort_transaction,
        Authenticated,
        "Aborts a transaction",
    )
    .options(fields::END_TRANSACTION)
    .writes_data(),
    CommandSpec::raw(
        "aggregate",
        explain::aggregate,
        Custom(aggregate::authorize),
        "Runs the aggregation command. See http://dochub.mongodb.org/core/aggregation for more details.",
    )
    .options(fields::AGGREGATE)
    .reads_data(),
    CommandSpec::new("authenticate", auth::authenticate, Anonymous, "internal")
        .options(fields::AUTHENTICATE),
    CommandSpec::new("buildInfo", diagnostics::build_info, Anonymous, "get version #, etc.\n{ buildinfo:1 }")
        .options(fields::BUILD_INFO)
        .inline()
        .aliases(&["buildinfo"]),
    CommandSpec::new(
        "cloneCollectionAsCapped",
        capped::clone_collection_as_capped,
        Custom(capped::authorize_clone),
        "{ cloneCollectionAsCapped:<fromName>, toCollection:<toName>, size:<sizeInBytes> }",
    )
    .options(fields::CLONE_COLLECTION_AS_CAPPED)
    .writes_data(),
    CommandSpec::new("collMod", collections::coll_mod, Collection(A::CollMod), "Sets collection options.")
        .options(fields::COLL_MOD)
        .writes_data(),
    CommandSpec::new(
        "collStats",
        collections::coll_stats,
        Collection(A::CollStats),
        "{ collStats:\"blog.posts\" , scale : 1 } scale divides sizes e.g. for KB use 1024",
    )
    .options(fields::COLL_STATS)
    .reads_data(),
    CommandSpec::new(
        "commitTransaction",
        transactions::commit_transaction,
        Authenticated,
        "Commits a transaction",
    )
    .options(fields::END_TRANSACTION)
    .writes_data(),
    CommandSpec::new(
        "configureFailPoint",
        testing::configure_fail_point,
        Authenticated,
        "Configures a fail point (test only)",
    )
    .options(fields::CONFIGURE_FAIL_POINT)
    .test_only(),
    CommandSpec::new(
        "connectionStatus",
        diagnostics::connection_status,
        Anonymous,
        "Returns connection-specific information such as logged-in users and their roles",
    )
    .options(fields::CONNECTION_STATUS)
    .inline(),
    CommandSpec::new(
        "convertToCapped",
        capped::convert_to_capped,
        Collection(A::ConvertToCapped),
        "{ convertToCapped:<fromCollectionName>, size:<sizeInBytes> }",
    )
    .options(fields::CONVERT_TO_CAPPED)
    .writes_data(),
    CommandSpec::new("count", read::count, Collection(A::Find), "count objects in collection")
        .options(fields::COUNT)
        .reads_data(),
    CommandSpec::new(
        "create",
        collections::create,
        Custom(collections::authorize_create),
        "explicitly creates a collection or view",
    )
    .options(fields::CREATE)
    .writes_data(),
    CommandSpec::new(
        "createBackup",
        backup::create_backup,
        Cluster(A::CreateBackup),
        "writes a consistent backup of every database into a directory on the server's host\n{ createBackup: 1, backupDir: \"/absolute/path\" }",
    )
    .options(fields::CREATE_BACKUP),
    CommandSpec::new(
        "createIndexes",
        indexes::create_indexes,
        Collection(A::CreateIndex),
        "creates one or more indexes on a collection",
    )
    .options(fields::CREATE_INDEXES)
    .writes_data(),
    CommandSpec::new("createRole", roles::create_role, Custom(roles::authorize_create_role), "Adds a role to the system")
        .options(fields::CREATE_ROLE)
        .writes_data(),
    CommandSpec::new("createUser", users::create_user, Custom(users::authorize_create_user), "Adds a user to the system")
        .options(fields::CREATE_USER)
        .writes_data(),
    CommandSpec::new(
        "currentOp",
        operations::current_op,
        Custom(operations::authorize_current_op),
        "report what the server is doing now: the operations in flight",
    )
    .options(fields::CURRENT_OP),
    CommandSpec::new("dbStats", collections::db_stats, Database(A::DbStats), "Get stats on a database.")
        .options(fields::DB_STATS)
        .reads_data(),
    CommandSpec::raw("delete", write::delete, Collection(A::Remove), "delete documents")
        .options(fields::DELETE)
        .writes_data(),
    CommandSpec::new(
        "distinct",
        read::distinct,
        Collection(A::Find),
        "{ distinct : 'collection name' , key : 'a.b' , query : {} }",
    )
    .options(fields::DISTINCT)
    .reads_data(),
    CommandSpec::new(
        "drop",
        collections::drop,
        Collection(A::DropCollection),
        "drop a collection\n{drop : <collectionName>}",
    )
    .options(fields::DROP)
    .writes_data(),
    CommandSpec::new(
        "dropAllRolesFromDatabase",
        roles::drop_all_roles_from_database,
        Database(A::DropRole),
        "Drops all roles from the given database.",
    )
    .options(fields::DROP_ROLE)
    .writes_data(),
    CommandSpec::new(
        "dropAllUsersFromDatabase",
        users::drop_all_users_from_database,
        Database(A::DropUser),
        "Drops all users for a single database.",
    )
    .options(fields::DROP_ALL_USERS_FROM_DATABASE)
    .writes_data(),
    CommandSpec::new(
        "dropDatabase",
        collections::drop_database,
        Database(A::DropDatabase),
        "drop (delete) this database",
    )
    .options(fields::DROP_DATABASE)
    .writes_data(),
    CommandSpec::new(
        "dropIndexes",
        indexes::drop_indexes,
        Collection(A::DropIndex),
        "drop indexes for a collection",
    )
    .options(fields::DROP_INDEXES)
    .aliases(&["deleteIndexes"])
    .writes_data(),
    CommandSpec::new("dropRole", roles::drop_role, Database(A::DropRole), "Drops a single role.")
        .options(fields::DROP_ROLE)
        .writes_data(),
    CommandSpec::new("dropUser", users::drop_user, Database(A::DropUser), "Drops a single user.")
        .options(fields::DROP_USER)
        .writes_data(),
    CommandSpec::new("endSessions", sessions::end_sessions, Authenticated, "end a set of logical sessions")
        .options(fields::END_SESSIONS)
        .inline(),
    CommandSpec::new(
        "explain",
        explain::explain,
        Custom(explain::authorize),
        "explain the plan and cost of a find, count, distinct, update, delete or findAndModify",
    )
    .options(fields::EXPLAIN)
    .reads_data(),
    CommandSpec::raw("find", read::find, Collection(A::Find), "query for documents")
        .options(fields::FIND)
        .reads_data(),
    CommandSpec::raw(
        "findAndModify",
        write::find_and_modify,
        Custom(write::authorize_find_and_modify),
        "{ findAndModify: \"collection\", query: {processed:false}, update: {$set: {processed:true}}, new: true}",
    )
    .options(fields::FIND_AND_MODIFY)
    .aliases(&["findandmodify"])
    .writes_data(),
    CommandSpec::new("getCmdLineOpts", diagnostics::get_cmd_line_opts, Cluster(A::GetCmdLineOpts), "get argv")
        .options(fields::GET_CMD_LINE_OPTS)
        .inline(),
    CommandSpec::new(
        "getLog",
        diagnostics::get_log,
        Cluster(A::GetLog),
        "{ getLog : '*' }  OR { getLog : 'global' }",
    )
    .options(fields::GET_LOG)
    .inline(),
    CommandSpec::raw(
        "getMore",
        read::get_more,
        Authenticated,
        "retrieve more results from an existing cursor",
    )
    .options(fields::GET_MORE),
    CommandSpec::new(
        "getParameter",
        parameters::get_parameter,
        Cluster(A::GetParameter),
        "get administrative option(s)\nexample:\n{ getParameter:1, notablescan:1 }\npass a document as the value for getParameter to request options\nexample:\n{ getParameter:{showDetails: true}, notablescan:1}\nsupported:\n{ getParameter:'*' } to get everything\n",
    )
    .options(fields::GET_PARAMETER)
    .inline(),
    CommandSpec::new(
        "grantPrivilegesToRole",
        roles::grant_privileges_to_role,
        Custom(roles::authorize_grant_privileges),
        "Grants privileges to a role",
    )
    .options(fields::ROLE_PRIVILEGES)
    .writes_data(),
    CommandSpec::new(
        "grantRolesToRole",
        roles::grant_roles_to_role,
        Custom(roles::authorize_grant_roles),
        "Grants roles to another role.",
    )
    .options(fields::ROLE_ROLES)
    .writes_data(),
    CommandSpec::new("grantRolesToUser", users::grant_roles_to_user, Custom(users::authorize_grant_roles), "Grants roles to a user.")
        .options(fields::GRANT_ROLES_TO_USER)
        .writes_data(),
    CommandSpec::new(
        "hello",
        handshake::hello,
        Anonymous,
        "Check if this server is primary for a replica set\n{ hello : 1 }",
    )
    .options(fields::HELLO)
    .handshake(),
    CommandSpec::new(
        "hostInfo",
        diagnostics::host_info,
        Cluster(A::HostInfo),
        "returns information about the daemon's host",
    )
    .options(fields::HOST_INFO),
    CommandSpec::raw("insert", write::insert, Custom(write::authorize_insert), "insert documents")
        .options(fields::INSERT)
        .writes_data(),
    CommandSpec::new(
        "isMaster",
        handshake::is_master,
        Anonymous,
        "Check if this server is primary for a replica set\n{ isMaster : 1 }",
    )
    .options(fields::IS_MASTER)
    .aliases(&["ismaster"])
    .handshake(),
    CommandSpec::new(
        "killAllSessions",
        sessions::kill_all_sessions,
        Cluster(A::KillAnySession),
        "kill all logical sessions, for a user, and their operations",
    )
    .options(fields::KILL_ALL_SESSIONS)
    .inline(),
    CommandSpec::new(
        "killAllSessionsByPattern",
        sessions::kill_all_sessions_by_pattern,
        Cluster(A::KillAnySession),
        "kill logical sessions by pattern",
    )
    .options(fields::KILL_ALL_SESSIONS_BY_PATTERN)
    .inline(),
    CommandSpec::new("killCursors", read::kill_cursors, Authenticated, "Kill a list of cursor ids")
        .options(fields::KILL_CURSORS),
    CommandSpec::new("killOp", operations::kill_op, Authenticated, "kill an operation in flight")
        .options(fields::KILL_OP)
        .inline(),
    CommandSpec::new("killSessions", sessions::kill_sessions, Authenticated, "kill a logical session and its operations")
        .options(fields::KILL_SESSIONS)
        .inline(),
    CommandSpec::new(
        "listCollections",
        collections::list_collections,
        Custom(collections::authorize_list_collections),
        "list collections for this db",
    )
    .options(fields::LIST_COLLECTIONS)
    .reads_data(),
    CommandSpec::new("listCommands", diagnostics::list_commands, Anonymous, "get a list of all db commands")
        .options(fields::LIST_COMMANDS)
        .inline(),
    CommandSpec::new(
        "listDatabases",
        collections::list_databases,
        Authenticated,
        "{ listDatabases:1, [filter: <filterObject>] [, nameOnly: true ] }\nlist databases on this server",
    )
    .options(fields::LIST_DATABASES)
    .reads_data(),
    CommandSpec::new(
        "listIndexes",
        indexes::list_indexes,
        Collection(A::ListIndexes),
        "list indexes for a collection",
    )
    .options(fields::LIST_INDEXES)
    .reads_data(),
    CommandSpec::new("logout", auth::logout, Authenticated, "de-authenticate").options(fields::LOGOUT),
    CommandSpec::new(
        "logRotate",
        audit::log_rotate,
        Cluster(A::LogRotate),
        "Rotates the server log and the audit log (logRotate: 1), or one of them (\"server\", \"audit\")",
    )
    .options(fields::LOG_ROTATE),
    CommandSpec::new(
        "monarchQueryStats",
        profiling::monarch_query_stats,
        Cluster(A::QueryStatsRead),
        "query shapes with the most total time: count, percentiles, documents examined per returned\n{ monarchQueryStats: 1, limit: 20 }",
    )
    .options(fields::MONARCH_QUERY_STATS),
    CommandSpec::new(
        "ping",
        diagnostics::ping,
        Anonymous,
        "a way to check that the server is alive. responds immediately even if server is in a db lock.",
    )
    .options(fields::PING)
    .inline(),
    CommandSpec::new(
        "profile",
        profiling::profile,
        Database(A::EnableProfiler),
        "controls the behaviour of the performance profiler, the fraction of eligible operations which are sampled for logging/profiling, and the threshold duration at which ops become eligible. See http://docs.mongodb.org/manual/reference/command/profile",
    )
    .options(fields::PROFILE),
    CommandSpec::new(
        "refreshLogicalSessionCacheNow",
        sessions::refresh_logical_session_cache_now,
        Anonymous,
        "force the logical session cache to refresh. Test command only.",
    )
    .options(fields::REFRESH_LOGICAL_SESSION_CACHE_NOW)
    .test_only(),
    CommandSpec::new("refreshSessions", sessions::refresh_sessions, Authenticated, "renew a set of logical sessions")
        .options(fields::REFRESH_SESSIONS)
        .inline(),
    CommandSpec::new(
        "renameCollection",
        collections::rename_collection,
        Custom(collections::authorize_rename),
        " example: { renameCollection: foo.a, to: bar.b }",
    )
    .options(fields::RENAME_COLLECTION)
    .writes_data(),
    CommandSpec::new(
        "replSetGetConfig",
        replication::repl_set_get_config,
        Cluster(A::ReplSetGetConfig),
        "Returns the current replica set configuration{ replSetGetConfig : 1 }",
    )
    .options(fields::REPL_SET_GET_CONFIG),
    CommandSpec::new(
        "replSetGetStatus",
        replication::repl_set_get_status,
        Cluster(A::ReplSetGetStatus),
        "Report status of a replica set from the POV of this server\n{ replSetGetStatus : 1 }",
    )
    .options(fields::REPL_SET_GET_STATUS),
    CommandSpec::new(
        "replSetInitiate",
        replication::repl_set_initiate,
        Cluster(A::ReplSetConfigure),
        "Initiate/christen a replica set.",
    )
    .options(fields::REPL_SET_INITIATE),
    CommandSpec::new(
        "replSetReconfig",
        replication::repl_set_reconfig,
        Cluster(A::ReplSetConfigure),
        "Adjust configuration of a replica set\n{ replSetReconfig : config_object }",
    )
    .options(fields::REPL_SET_RECONFIG),
    CommandSpec::new(
        "replSetStepDown",
        replication::repl_set_step_down,
        Cluster(A::ReplSetStateChange),
        "Step down as primary.  Will not try to reelect self for the specified time period (1 minute if no numeric secs value specified, or secs is 0).",
    )
    .options(fields::REPL_SET_STEP_DOWN),
    CommandSpec::new(
        "revokePrivilegesFromRole",
        roles::revoke_privileges_from_role,
        Custom(roles::authorize_revoke_privileges),
        "Revokes privileges from a role",
    )
    .options(fields::ROLE_PRIVILEGES)
    .writes_data(),
    CommandSpec::new(
        "revokeRolesFromRole",
        roles::revoke_roles_from_role,
        Custom(roles::authorize_revoke_roles),
        "Revokes roles from another role.",
    )
    .options(fields::ROLE_ROLES)
    .writes_data(),
    CommandSpec::new(
        "revokeRolesFromUser",
        users::revoke_roles_from_user,
        Custom(users::authorize_revoke_roles),
        "Revokes roles from a user.",
    )
    .options(fields::REVOKE_ROLES_FROM_USER)
    .writes_data(),
    CommandSpec::new("rolesInfo", roles::roles_info, Custom(roles::authorize_roles_info), "Returns information about roles.")
        .options(fields::ROLES_INFO)
        .reads_data(),
    CommandSpec::new(
        "rotateCertificates",
        certificates::rotate_certificates,
        Cluster(A::RotateCertificates),
        "Rotate the TLS certificates: new connections use the files as they are now",
    )
    .options(fields::ROTATE_CERTIFICATES),
    CommandSpec::new("saslContinue", auth::sasl_continue, Anonymous, "Subsequent steps in a SASL authentication conversation.")
        .options(fields::SASL_CONTINUE),
    CommandSpec::new("saslStart", auth::sasl_start, Anonymous, "First step in a SASL authentication conversation.")
        .options(fields::SASL_START),
    CommandSpec::new(
        "serverStatus",
        diagnostics::server_status,
        Cluster(A::ServerStatus),
        "returns lots of administrative server statistics",
    )
    .options(fields::SERVER_STATUS),
    CommandSpec::new(
        "setParameter",
        parameters::set_parameter,
        Cluster(A::SetParameter),
        "set administrative option(s)\n{ setParameter:1, <param>:<value> }\n",
    )
    .options(fields::SET_PARAMETER)
    .inline(),
    CommandSpec::new("startSession", sessions::start_session, Authenticated, "start a logical session")
        .options(fields::START_SESSION)
        .inline(),
    CommandSpec::raw("update", write::update, Custom(write::authorize_update), "update documents")
        .options(fields::UPDATE)
        .writes_data(),
    CommandSpec::new("updateRole", roles::update_role, Custom(roles::authorize_update_role), "Used to update a role")
        .options(fields::UPDATE_ROLE)
        .writes_data(),
    CommandSpec::new("updateUser", users::update_user, Custom(users::authorize_update_user), "Used to update a user, for example to change its password")
        .options(fields::UPDATE_USER)
        .writes_data(),
    CommandSpec::new("usersInfo", users::users_info, Custom(users::authorize_users_info), "Returns information about users.")
        .options(fields::USERS_INFO)
        .reads_data(),
    CommandSpec::new(
        "validate",
        collections::validate,
        Collection(A::Validate),
        "Validate contents of a namespace by scanning its data structures for correctness.",
    )
    .options(fields::VALIDATE),
    CommandSpec::new("whatsmyuri", diagnostics::whats_my_uri, Authenticated, "{whatsmyuri:1}")
        .options(fields::WHATS_MY_URI)
        .inline(),
];

static BY_NAME: LazyLock<HashMap<&'static str, usize>> = LazyLock::new(|| {
    let mut map = HashMap::new();
    for (index, spec) in COMMANDS.iter().enumerate() {
        map.insert(spec.name, index);
        for alias in spec.aliases {
            map.insert(*alias, index);
        }
    }
    map
});

/// Finds a command by name or alias, with its row index.
pub fn lookup(name: &str) -> Option<(usize, &'static CommandSpec)> {
    let index = *BY_NAME.get(name)?;
    COMMANDS.get(index).map(|spec| (index, spec))
}

/// What running a command produced.
#[derive(Debug)]
pub struct Executed {
    /// The complete reply.
    pub reply: Reply,
    /// The command's name in the table (`"unknown"` when not found): a bounded label.
    pub command: &'static str,
    /// The error it answered with.
    pub error: Option<ErrorCode>,
    /// A write command that succeeded (its reply's `operationTime` is a new cluster time).
    pub wrote: bool,
}

/// Runs `request` and returns the complete reply: the handler's document with `ok: 1`, or
/// mongod's error shape. A panicking handler becomes an `InternalError` reply; the server and
/// the connection keep running. A handler that may touch storage runs on the blocking pool
/// while this awaits it; what its reply waits for (a journal sync) is awaited here too, so no
/// thread is held.
pub async fn execute(ctx: &OwnedCtx, request: Arc<CommandRequest>) -> Executed {
    let started = std::time::Instant::now();
    let retryable_write = generic::is_retryable_write(&request);
    let statement = transactions::transaction_number(&request).map(|_| request.name() == "commitTransaction");
    let mut executed = dispatch(ctx, request).await;
    if ctx.state.repl.is_initiated() {
        append_cluster_time(ctx, &mut executed);
    }
    if let Some(label) = statement.and_then(|commit| transaction_label(commit, executed.error?))
        && !executed.reply.has("errorLabels")
    {
        let _ = executed.reply.append(bson::raw::cstr!("errorLabels"), bson::Bson::Array(vec![label.into()]));
    }
    if retryable_write && executed.error.is_some_and(is_retryable_error) && !executed.reply.has("errorLabels") {
        // As mongod 4.4+: the server labels the errors after which a retryable write may be
        // sent again, and drivers retry exactly those.
        let labels = bson::Bson::Array(vec![bson::Bson::String("RetryableWriteError".to_owned())]);
        let _ = executed.reply.append(bson::raw::cstr!("errorLabels"), labels);
    }
    if executed.error.is_some_and(is_state_change_error) {
        // As mongod: "not primary" and shutdown errors carry the topology version, so that a
        // driver can tell news (mark the server Unknown) from a stale error (ignore it).
        let version = bson::Bson::Document(ctx.state.topology.version());
        let _ = executed.reply.append(bson::raw::cstr!("topologyVersion"), version);
    }
    ctx.op.add_phase(|p| &mut p.execute, started.elapsed());
    executed
}

/// A replica-set member's replies carry the cluster time (`$clusterTime`, gossiped back by
/// drivers) and the operation's time (`operationTime`, which causally consistent sessions send
/// back as `afterClusterTime`): a write's own new time, or the latest time for anything else.
/// The signature is mongod's placeholder for a deployment without signing keys.
fn append_cluster_time(ctx: &OwnedCtx, executed: &mut Executed) {
    let repl = &ctx.state.repl;
    let operation_time = if executed.wrote { repl.note_write() } else { repl.cluster_time() };
    let signature = bson::doc! {
        "hash": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![0; 20] },
        "keyId": 0_i64,
    };
    // A write's own time is the latest: the cluster time is read after it.
    let cluster_time = bson::doc! { "clusterTime": repl.cluster_time(), "signature": signature };
    let _ = executed.reply.append(bson::raw::cstr!("operationTime"), bson::Bson::Timestamp(operation_time));
    let _ = executed.reply.append(bson::raw::cstr!("$clusterTime"), bson::Bson::Document(cluster_time));
}

/// The label mongod gives the error of a transaction's statement: `TransientTransactionError`
/// when the whole transaction may be run again (a write conflict, a transaction that is gone,
/// a state change), `UnknownTransactionCommitResult` when a `commitTransaction` may or may not
/// have committed and may be sent again (`commit`: the statement is `commitTransaction`).
fn transaction_label(commit: bool, error: ErrorCode) -> Option<&'static str> {
    if commit {
        let unknown =
            is_retryable_error(error) || matches!(error, ErrorCode::MaxTimeMSExpired | ErrorCode::WriteConcernFailed);
        if unknown {
            return Some("UnknownTransactionCommitResult");
        }
    }
    let transient = is_state_change_error(error)
        || matches!(
            error,
            ErrorCode::WriteConflict
                | ErrorCode::NoSuchTransaction
                | ErrorCode::LockTimeout
                | ErrorCode::SnapshotUnavailable
                | ErrorCode::PreparedTransactionInProgress
        );
    transient.then_some("TransientTransactionError")
}

/// mongod's retryable errors (`ErrorCodes::isRetriableError`): a retryable write that failed
/// with one of them did not apply, or will answer from its record when sent again.
pub(crate) fn is_retryable_error(code: ErrorCode) -> bool {
    is_state_change_error(code)
        || matches!(
            code,
            ErrorCode::HostNotFound
                | ErrorCode::HostUnreachable
                | ErrorCode::NetworkTimeout
                | ErrorCode::SocketException
                | ErrorCode::ExceededTimeLimit
        )
}

/// The errors drivers treat as a change of the server's state (SDAM's "not writable primary"
/// and "node is recovering" codes), whose replies mongod gives a `topologyVersion`.
fn is_state_change_error(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::ShutdownInProgress
            | ErrorCode::InterruptedAtShutdown
            | ErrorCode::InterruptedDueToReplStateChange
            | ErrorCode::PrimarySteppedDown
            | ErrorCode::NotWritablePrimary
            | ErrorCode::NotPrimaryNoSecondaryOk
            | ErrorCode::NotPrimaryOrSecondary
    )
}

async fn dispatch(ctx: &OwnedCtx, request: Arc<CommandRequest>) -> Executed {
    let stats = &ctx.state.counters;
    if let Some(lsid) = request.lsid() {
        ctx.state.sessions.touch(lsid, || crate::state::sessions::user_digest(&ctx.lock_client().auth.names));
    }
    let test_commands = ctx.state.config.parameters.enable_test_commands;
    let found = lookup(request.name()).filter(|(_, spec)| test_commands || !spec.test_only);
    let command = found.map_or("unknown", |(_, spec)| spec.name);
    let outcome = match found {
        None => {
            stats.unknown_commands.fetch_add(1, Ordering::Relaxed);
            Err(Error::new(ErrorCode::CommandNotFound, format!("no such command: '{}'", request.name())))
        }
        Some((index, spec)) => {
            stats.opcounters.command.fetch_add(1, Ordering::Relaxed);
            let counter = stats.commands.get(index);
            if let Some(counter) = counter {
                counter.total.fetch_add(1, Ordering::Relaxed);
            }
            let checked = match parse(ctx, spec, &request) {
                Ok(()) => match authz::authorize(ctx, spec, &request).await {
                    Ok(()) => admit(ctx, spec).and_then(|()| check_member_state(ctx, spec, &request)),
                    Err(error) => Err(error),
                },
                Err(error) => Err(error),
            };
            let outcome = match checked {
                Err(error) => Err(error),
                Ok(()) => {
                    let fired = ctx.state.failpoints.check(request.name(), ctx.lock_client().app_name());
                    match fired {
                        None => run(ctx, spec, &request).await,
                        Some(action) => {
                            let reply = testing::fail_command(ctx, spec, &request, &action).await;
                            let error = reply.code().and_then(ErrorCode::from_code);
                            return Executed { reply, command, error, wrote: false };
                        }
                    }
                }
            };
            audit::after_command(ctx, spec, &request, outcome.as_ref().err().map(Error::code));
            match (counter, &outcome) {
                (Some(counter), Err(_)) => {
                    counter.failed.fetch_add(1, Ordering::Relaxed);
                }
                (_, Ok(_)) => authz::note_catalog_write(ctx, &request),
                _ => {}
            }
            outcome
        }
    };
    let writes = found.is_some_and(|(_, spec)| spec.member == MemberRole::Writes);
    match outcome {
        Ok(reply) => Executed { reply: reply.with_ok(), command, error: None, wrote: writes },
        Err(error) => {
            ctx.state.counters.user_asserts.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                target: "COMMAND",
                id = 51803,
                command = request.name(),
                code = error.code().code(),
                error = error.message(),
                internal = error.internal().unwrap_or(""),
                "Command failed"
            );
            Executed { reply: Reply::from(error.to_reply()), command, error: Some(error.code()), wrote: false }
        }
    }
}

/// The request rate limits (`--rateLimitPerIP`, `--rateLimitPerUser`): one token per command,
/// the handshake and authentication excepted; past the limit, mongod 8's 462 with the labels
/// that tell drivers to back off and retry.
fn admit(ctx: &OwnedCtx, spec: &CommandSpec) -> Result<()> {
    let abuse = &ctx.state.abuse;
    if !abuse.limits_requests() || matches!(spec.access, Access::Anonymous) {
        return Ok(());
    }
    let (remote, users) = {
        let client = ctx.lock_client();
        (client.remote, client.auth.names.clone())
    };
    match abuse.admit_request(remote.ip(), &users, std::time::Instant::now()) {
        (crate::state::abuse::Admission::Granted, _) => Ok(()),
        (crate::state::abuse::Admission::Refused { first }, scope) => {
            if first {
                tracing::info!(target: "NETWORK", id = 7_000_311, remote = %remote, scope, "Request rate limit reached");
            }
            Err(Error::new(
                ErrorCode::IngressRequestRateLimitExceeded,
                format!("Request rate limit per {scope} exceeded"),
            )
            .with_info(bson::doc! { "errorLabels": ["SystemOverloadedError", "RetryableError"] }))
        }
    }
}

/// On a replica-set member that is not primary, refuses what must run on the primary, as
/// mongod does before running a command: writes (and pipelines that write) with 10107, reads
/// without a read preference that allows other members with 13435, and reads on a member
/// that is not yet a secondary with 13436. The `local` database is every member's own.
fn check_member_state(ctx: &OwnedCtx, spec: &CommandSpec, request: &CommandRequest) -> Result<()> {
    let Some(state) = ctx.state.repl.state() else { return Ok(()) };
    if state == crate::repl::MemberState::Primary || request.db() == "local" {
        return Ok(());
    }
    let role = match spec.member {
        MemberRole::Reads if spec.name == "aggregate" && aggregate::writes_output(request) => MemberRole::Writes,
        role => role,
    };
    match role {
        MemberRole::Any => Ok(()),
        MemberRole::Writes => Err(Error::new(ErrorCode::NotWritablePrimary, "not primary")),
        MemberRole::Reads if !secondary_ok(request) => {
            Err(Error::new(ErrorCode::NotPrimaryNoSecondaryOk, "not primary and secondaryOk=false"))
        }
        MemberRole::Reads if state == crate::repl::MemberState::Startup => {
            Err(Error::new(ErrorCode::NotPrimaryOrSecondary, "node is not in primary or recovering state"))
        }
        MemberRole::Reads => Ok(()),
    }
}

/// Whether the client lets a member other than the primary answer: a `$readPreference`
/// whose mode is not `primary`.
fn secondary_ok(request: &CommandRequest) -> bool {
    match request.get("$readPreference") {
        Some(bson::RawBsonRef::Document(preference)) => {
            matches!(preference.get_str("mode"), Ok(mode) if mode != "primary")
        }
        _ => false,
    }
}

/// What mongod checks before its `failCommand` fail point: the op code, the body's fields
/// and document sequences against the command's declaration, the Stable API parameters and
/// the session arguments.
fn parse(ctx: &OwnedCtx, spec: &CommandSpec, request: &CommandRequest) -> Result<()> {
    if request.protocol() == Protocol::OpQuery && !spec.op_query {
        return Err(request::unsupported_op_query(request.name()));
    }
    options::check_fields(spec, request)?;
    generic::check_before_fail_point(spec, request, &ctx.state.repl)
}

/// Checks the concerns and runs the handler: inline when the command is pure, else on the
/// blocking pool; then awaits what its reply waits for.
async fn run(ctx: &OwnedCtx, spec: &'static CommandSpec, request: &Arc<CommandRequest>) -> Result<Reply> {
    if let Some(ms) = generic::check_concerns(spec, request, &ctx.state.repl)? {
        // The one deadline of the operation, from when its message was decoded: the executor's
        // interrupt checks and the cursor's batches both read it.
        ctx.op.interrupt.set_deadline(Some(ctx.op.started + std::time::Duration::from_millis(ms)));
        if ctx.state.failpoints.max_time_always_times_out() {
            // mongod's `maxTimeAlwaysTimeOut`: an operation with a time limit fails at its first
            // interruption check, so drivers can test `maxTimeMS` on every command.
            return Err(crate::op::time_limit_exceeded());
        }
    }
    let Some(handler) = spec.handler else {
        return Err(Error::new(ErrorCode::NotImplemented, format!("command {} is not implemented yet", spec.name)));
    };
    let mut awaited = false;
    let (reply, wait) = loop {
        let (reply, wait) = invoke(ctx, spec, handler, request, awaited).await?;
        match wait {
            Some(ReplyWait::TopologyChange { counter, deadline }) if !awaited => {
                // An awaitable hello: the wait is the client's choice, not the server's work,
                // so it is kept out of the operation's duration (and the slow-query log); the
                // handler then runs again to answer with the topology as it is.
                let waiting = std::time::Instant::now();
                ctx.state.topology.wait_for_change(counter, deadline).await;
                ctx.op.add_phase(|p| &mut p.awaited, waiting.elapsed());
                awaited = true;
            }
            Some(ReplyWait::CappedInsert { since, deadline }) => {
                // An awaitData getMore that found nothing: as long as its deadline is ahead,
                // it looks again after each insert into a capped collection.
                let waiting = std::time::Instant::now();
                ctx.state.storage.wait_for_capped_insert(since, deadline).await;
                ctx.op.add_phase(|p| &mut p.awaited, waiting.elapsed());
                awaited = true;
            }
            _ => break (reply, wait),
        }
    };
    if let Some(ReplyWait::Delay(delay)) = wait {
        tokio::time::sleep(delay).await;
    }
    let reply = reply?;
    if let Some(ReplyWait::Durable(ticket)) = wait {
        finish_wait(ctx, ticket).await?;
    }
    Ok(reply)
}

/// Runs `handler` inline when the command is pure, else on the blocking pool (`awaited`:
/// again, after its topology wait).
async fn invoke(
    ctx: &OwnedCtx,
    spec: &'static CommandSpec,
    handler: Handler,
    request: &Arc<CommandRequest>,
    awaited: bool,
) -> Result<(Result<Reply>, Option<ReplyWait>)> {
    if spec.inline {
        return Ok(call(ctx, spec, handler, request, awaited));
    }
    let (job_ctx, job_request) = (ctx.clone(), request.clone());
    match ctx.state.pool.run(move || call(&job_ctx, spec, handler, &job_request, awaited)).await {
        Ok(done) => Ok(done),
        // `call` catches the handler's panics; this is the pool shutting down.
        Err(error) => Err(internal_error(spec).with_internal(error.to_string())),
    }
}

/// Runs `handler` (`awaited`: again, after its topology wait), turning a panic into an
/// `InternalError`.
fn call(
    ctx: &OwnedCtx,
    spec: &CommandSpec,
    handler: Handler,
    request: &CommandRequest,
    awaited: bool,
) -> (Result<Reply>, Option<ReplyWait>) {
    ctx.with_awaited(awaited, |ctx| {
        // What the handler logs carries the operation's connection and correlation IDs.
        let _op_scope = crate::obs::correlation::enter(ctx.op, ctx.state.config.redact_client_log_data);
        // A cursor parked by this request keeps no database transaction until its next batch.
        let _views = crate::storage::RequestViews::collect();
        ctx.session = request.lsid();
        std::panic::catch_unwind(AssertUnwindSafe(|| {
            transactions::run_statement(ctx, request, |ctx| {
                snapshot_reads::run_read(ctx, request, |ctx| handler.call(ctx, request))
            })
        }))
        .unwrap_or_else(|panic| {
            let detail = crate::state::pool::panic_message(panic.as_ref());
            tracing::error!(target: "COMMAND", id = 1, command = spec.name, panic = detail, "Command handler panicked");
            Err(internal_error(spec))
        })
    })
}

/// What the client sees when a command could not run to its end (a bug, or shutdown).
fn internal_error(spec: &CommandSpec) -> Error {
    Error::new(ErrorCode::InternalError, format!("internal error while running {}", spec.name))
}

/// Awaits the journal sync a reply waits for, counting the time as the request's journal
/// phase.
async fn finish_wait(ctx: &OwnedCtx, ticket: crate::storage::DurabilityTicket) -> Result<()> {
    let started = std::time::Instant::now();
    let outcome = ctx.state.storage.durable(ticket).await;
    ctx.op.add_phase(|p| &mut p.journal, started.elapsed());
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_table_names_are_unique_and_sorted() {
        let names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        let mut sorted = names.clone();
        sorted.sort_by_key(|n| n.to_lowercase());
        sorted.dedup();
        assert_eq!(names, sorted);
        assert_eq!(BY_NAME.len(), COMMANDS.len() + COMMANDS.iter().map(|c| c.aliases.len()).sum::<usize>());
    }

    /// Every handler runs on the blocking pool unless listed here: adding a command to this
    /// list is a decision that it reads no storage and does no blocking I/O.
    #[test]
    fn command_table_runs_only_pure_commands_inline() {
        let inline: Vec<&str> = COMMANDS.iter().filter(|c| c.inline).map(|c| c.name).collect();
        assert_eq!(
            inline,
            [
                "buildInfo",
                "connectionStatus",
                "endSessions",
                "getCmdLineOpts",
                "getLog",
                "getParameter",
                "killAllSessions",
                "killAllSessionsByPattern",
                "killOp",
                "killSessions",
                "listCommands",
                "ping",
                "refreshSessions",
                "setParameter",
                "startSession",
                "whatsmyuri",
            ]
        );
    }

    /// Every row declares who may run it (the type requires it); these two lists are the rows
    /// that need no privilege, each a reviewed decision: open before authentication (mongod's
    /// `requiresAuth: false`), and open to any authenticated user (the handler shows and acts
    /// only on what is the user's own, or nothing needs a privilege).
    #[test]
    fn command_table_declares_who_may_run_each_command() {
        let named = |wanted: fn(&Access) -> bool| -> Vec<&str> {
            COMMANDS.iter().filter(|c| wanted(&c.access)).map(|c| c.name).collect()
        };
        assert_eq!(
            named(|a| matches!(a, Access::Anonymous)),
            [
                "authenticate",
                "buildInfo",
                "connectionStatus",
                "hello",
                "isMaster",
                "listCommands",
                "ping",
                "refreshLogicalSessionCacheNow",
                "saslContinue",
                "saslStart",
            ]
        );
        assert_eq!(
            named(|a| matches!(a, Access::Authenticated)),
            [
                "abortTransaction",
                "commitTransaction",
                "configureFailPoint",
                "endSessions",
                "getMore",
                "killCursors",
                "killOp",
                "killSessions",
                "listDatabases",
                "logout",
                "refreshSessions",
                "startSession",
                "whatsmyuri",
            ]
        );
    }

    #[test]
    fn command_lookup_finds_aliases() {
        assert_eq!(lookup("ismaster").map(|(_, s)| s.name), Some("isMaster"));
        assert_eq!(lookup("buildinfo").map(|(_, s)| s.name), Some("buildInfo"));
        assert!(lookup("atlasVersion").is_none());
    }
}
