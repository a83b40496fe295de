//! mongod's built-in roles and the privileges each grants (mongod 7.0's `builtin_roles.yml`).
//! A built-in role's sub-roles are flattened into its privileges, as mongod does: `rolesInfo`
//! shows no inherited roles for them. The patterns over `system.buckets.*` collections are left
//! out until time-series collections exist.

use super::RoleName;
use super::action::ActionType::{self, *};
use super::privilege::{Privilege, PrivilegeSet};
use super::resource::ResourcePattern;

const READ: &[ActionType] = &[
    ChangeStream,
    CollStats,
    DbHash,
    DbStats,
    Find,
    KillCursors,
    ListCollections,
    ListIndexes,
    ListSearchIndexes,
    PlanCacheRead,
];
/// What `readWrite` adds to [`READ`].
const WRITE: &[ActionType] = &[
    CleanupStructuredEncryptionData,
    CompactStructuredEncryptionData,
    ConvertToCapped,
    CreateCollection,
    CreateIndex,
    CreateSearchIndexes,
    DropCollection,
    DropIndex,
    DropSearchIndex,
    Insert,
    Remove,
    RenameCollectionSameDB,
    Update,
    UpdateSearchIndex,
];
const USER_ADMIN: &[ActionType] = &[
    ChangeCustomData,
    ChangePassword,
    CreateUser,
    CreateRole,
    DropUser,
    DropRole,
    GrantRole,
    RevokeRole,
    SetAuthenticationRestriction,
    ViewUser,
    ViewRole,
];
const DB_ADMIN: &[ActionType] = &[
    Analyze,
    BypassDocumentValidation,
    CollMod,
    CollStats,
    Compact,
    ConvertToCapped,
    CreateCollection,
    DbStats,
    DropCollection,
    DropDatabase,
    DropIndex,
    DropSearchIndex,
    CreateIndex,
    CreateSearchIndexes,
    EnableProfiler,
    ListCollections,
    ListIndexes,
    ListSearchIndexes,
    UpdateSearchIndex,
    PlanCacheIndexFilter,
    PlanCacheRead,
    PlanCacheWrite,
    ReIndex,
    RenameCollectionSameDB,
    StorageDetails,
    Validate,
    ConfigureQueryAnalyzer,
];
/// What `dbAdmin` may do on its database's `system.profile`, beyond [`READ`].
const PROFILE_ADMIN: &[ActionType] = &[ConvertToCapped, CreateCollection, DropCollection];
/// What `readAnyDatabase`-style index maintenance adds to [`READ`] on the auth collections.
const INDEX_ADMIN: &[ActionType] = &[CreateIndex, CreateSearchIndexes, DropIndex, DropSearchIndex];
const MONITOR_DB: &[ActionType] = &[CollStats, DbStats, GetDatabaseVersion, GetShardVersion, IndexStats];
const MONITOR_CLUSTER: &[ActionType] = &[
    CheckFreeMonitoringStatus,
    ConnPoolStats,
    GetCmdLineOpts,
    GetDefaultRWConcern,
    GetLog,
    GetParameter,
    GetShardMap,
    HostInfo,
    ListDatabases,
    ListSampledQueries,
    ListSessions,
    ListShards,
    Netstat,
    OperationMetrics,
    ReplSetGetConfig,
    ReplSetGetStatus,
    ServerStatus,
    Top,
    UseUUID,
    Inprog,
    ShardingState,
    AllCollectionStats,
    ShardedDataDistribution,
];
const HOST_CLUSTER: &[ActionType] = &[
    ApplicationMessage,
    AuditConfigure,
    ConnPoolSync,
    DropConnections,
    LogRotate,
    OidReset,
    SetParameter,
    Shutdown,
    Touch,
    Unlock,
    FlushRouterConfig,
    Fsync,
    InvalidateUserCache,
    KillAnyCursor,
    KillAnySession,
    Killop,
    ReplSetResizeOplog,
    Resync,
    TrafficRecord,
    RotateCertificates,
    OidcListKeys,
    OidcRefreshKeys,
];
const MANAGER_CLUSTER: &[ActionType] = &[
    AppendOplogNote,
    ApplicationMessage,
    ReplSetConfigure,
    ReplSetGetConfig,
    ReplSetGetStatus,
    ReplSetStateChange,
    Resync,
    AddShard,
    RemoveShard,
    ListSessions,
    ListShards,
    FlushRouterConfig,
    CleanupOrphaned,
    GetDefaultRWConcern,
    RunTenantMigration,
    SetDefaultRWConcern,
    SetFeatureCompatibilityVersion,
    SetFreeMonitoring,
    SetClusterParameter,
    GetClusterParameter,
    SetChangeStreamState,
    GetChangeStreamState,
    CheckMetadataConsistency,
    QueryStatsRead,
    QueryStatsReadTransformed,
];
const MANAGER_DB: &[ActionType] = &[
    AnalyzeShardKey,
    ConfigureQueryAnalyzer,
    ClearJumboFlag,
    SplitChunk,
    MoveChunk,
    EnableSharding,
    SplitVector,
    RefineCollectionShardKey,
    ReshardCollection,
];
const RESTORE_WRITE: &[ActionType] = &[
    BypassDocumentValidation,
    CollMod,
    ConvertToCapped,
    CreateCollection,
    CreateIndex,
    CreateSearchIndexes,
    DropCollection,
    Insert,
    UpdateSearchIndex,
];
const CRUD: &[ActionType] = &[Insert, Update, Remove];

/// Where a built-in privilege applies, relative to the role's database.
#[derive(Clone, Copy)]
enum On {
    Cluster,
    Any,
    AnyNormal,
    /// The role's database.
    Db,
    /// A named database.
    DbNamed(&'static str),
    /// A collection of the role's database.
    Coll(&'static str),
    /// One namespace.
    Ns(&'static str, &'static str),
    /// A collection name in every database.
    AnyColl(&'static str),
}

impl On {
    fn pattern(self, db: &str) -> ResourcePattern {
        match self {
            On::Cluster => ResourcePattern::Cluster,
            On::Any => ResourcePattern::AnyResource,
            On::AnyNormal => ResourcePattern::AnyNormal,
            On::Db => ResourcePattern::Database(db.to_owned()),
            On::DbNamed(named) => ResourcePattern::Database(named.to_owned()),
            On::Coll(coll) => ResourcePattern::Namespace(db.to_owned(), coll.to_owned()),
            On::Ns(named, coll) => ResourcePattern::Namespace(named.to_owned(), coll.to_owned()),
            On::AnyColl(coll) => ResourcePattern::CollectionName(coll.to_owned()),
        }
    }
}

/// One built-in role: the roles it includes (flattened, each in the role's database unless
/// named) and the privileges it grants itself, each the union of some action lists.
struct Definition {
    name: &'static str,
    admin_only: bool,
    includes: &'static [(&'static str, Option<&'static str>)],
    grants: &'static [(On, &'static [&'static [ActionType]])],
}

const fn role(
    name: &'static str,
    admin_only: bool,
    includes: &'static [(&'static str, Option<&'static str>)],
    grants: &'static [(On, &'static [&'static [ActionType]])],
) -> Definition {
    Definition { name, admin_only, includes, grants }
}

/// mongod's built-in roles, by name.
static DEFINITIONS: &[Definition] = &[
    role(
        "__queryableBackup",
        true,
        &[],
        &[
            (On::Any, &[&[CollStats, ListCollections, ListIndexes, ListSearchIndexes]]),
            (On::AnyNormal, &[&[Find]]),
            (On::Cluster, &[&[GetParameter, ListDatabases, UseUUID]]),
            (On::DbNamed("config"), &[&[Find]]),
            (On::DbNamed("local"), &[&[Find]]),
            (On::Ns("local", "replset.election"), &[&[Find]]),
            (On::Ns("local", "replset.minvalid"), &[&[Find]]),
            (On::AnyColl("system.js"), &[&[Find]]),
            (On::AnyColl("system.users"), &[&[Find]]),
            (On::AnyColl("system.profile"), &[&[Find]]),
            (On::Ns("admin", "system.backup_users"), &[&[Find]]),
            (On::Ns("admin", "system.roles"), &[&[Find]]),
            (On::Ns("admin", "system.version"), &[&[Find]]),
            (On::Ns("config", "settings"), &[&[Find]]),
        ],
    ),
    role("__system", true, &[], &[(On::Any, &[&[AnyAction]])]),
    role(
        "backup",
        true,
        &[("__queryableBackup", None)],
        &[
            // `createBackup` is Monarch's (Percona's command name): the backup role takes it.
            (On::Cluster, &[&[AppendOplogNote, CreateBackup, ServerStatus, SetUserWriteBlockMode]]),
            (On::Ns("config", "settings"), &[&[Insert, Update]]),
        ],
    ),
    role(
        "clusterAdmin",
        true,
        &[("clusterMonitor", None), ("hostManager", None), ("clusterManager", None)],
        &[(On::AnyNormal, &[&[DropDatabase]]), (On::Any, &[&[ImportCollection, ExportCollection]])],
    ),
    role(
        "clusterManager",
        true,
        &[("read", Some("config"))],
        &[
            (On::Cluster, &[MANAGER_CLUSTER]),
            (On::AnyNormal, &[MANAGER_DB]),
            (On::DbNamed("config"), &[MANAGER_DB, CRUD]),
            (On::DbNamed("local"), &[MANAGER_DB, CRUD]),
            (On::Ns("local", "system.replset"), &[READ]),
            (On::Any, &[&[DbCheck]]),
            (On::Ns("local", "system.healthlog"), &[READ]),
            (On::Ns("local", "replset.election"), &[CRUD]),
            (On::Ns("local", "replset.minvalid"), &[CRUD]),
        ],
    ),
    role(
        "clusterMonitor",
        true,
        &[("read", Some("config")), ("read", Some("local"))],
        &[
            (On::Cluster, &[MONITOR_CLUSTER]),
            (On::AnyNormal, &[MONITOR_DB]),
            (On::DbNamed("config"), &[MONITOR_DB]),
            (On::Ns("config", "system.sessions"), &[MONITOR_DB]),
            (On::DbNamed("local"), &[MONITOR_DB]),
            (On::Ns("local", "system.replset"), &[&[Find]]),
            (On::Ns("local", "replset.election"), &[&[Find]]),
            (On::Ns("local", "replset.minvalid"), &[&[Find]]),
            (On::AnyColl("system.profile"), &[&[Find]]),
        ],
    ),
    role("dbAdmin", false, &[], &[(On::Db, &[DB_ADMIN]), (On::Coll("system.profile"), &[READ, PROFILE_ADMIN])]),
    role(
        "dbAdminAnyDatabase",
        true,
        &[],
        &[
            (On::Cluster, &[&[ListDatabases, ApplyOps]]),
            (On::AnyNormal, &[DB_ADMIN]),
            (On::AnyColl("system.profile"), &[READ, PROFILE_ADMIN]),
        ],
    ),
    role("dbOwner", false, &[("readWrite", None), ("dbAdmin", None), ("userAdmin", None)], &[]),
    role("directShardOperations", true, &[], &[]),
    role(
        "enableSharding",
        false,
        &[],
        &[(On::AnyNormal, &[&[AnalyzeShardKey, EnableSharding, RefineCollectionShardKey, ReshardCollection]])],
    ),
    role("hostManager", true, &[], &[(On::Cluster, &[HOST_CLUSTER]), (On::AnyNormal, &[&[KillCursors]])]),
    role("read", false, &[], &[(On::Db, &[READ]), (On::Coll("system.js"), &[READ])]),
    role(
        "readAnyDatabase",
        true,
        &[],
        &[(On::AnyNormal, &[READ]), (On::Cluster, &[&[ListDatabases]]), (On::AnyColl("system.js"), &[READ])],
    ),
    role("readWrite", false, &[], &[(On::Db, &[READ, WRITE]), (On::Coll("system.js"), &[READ, WRITE])]),
    role(
        "readWriteAnyDatabase",
        true,
        &[("readAnyDatabase", None)],
        &[(On::AnyNormal, &[READ, WRITE]), (On::AnyColl("system.js"), &[READ, WRITE])],
    ),
    role(
        "restore",
        true,
        &[],
        &[
            (
                On::Cluster,
                &[&[GetParameter, ForceUUID, UseUUID, BypassWriteBlockingMode, SetUserWriteBlockMode, ApplyOps]],
            ),
            (On::DbNamed("local"), &[RESTORE_WRITE]),
            (On::DbNamed("config"), &[RESTORE_WRITE]),
            (On::Ns("local", "system.replset"), &[RESTORE_WRITE]),
            (On::Ns("local", "replset.election"), &[RESTORE_WRITE]),
            (On::Ns("local", "replset.minvalid"), &[RESTORE_WRITE]),
            (On::Any, &[&[ListCollections]]),
            (On::AnyNormal, &[RESTORE_WRITE, USER_ADMIN]),
            (On::AnyColl("system.js"), &[RESTORE_WRITE]),
            (On::Ns("admin", "tempusers"), &[&[Find]]),
            (On::Ns("admin", "temproles"), &[&[Find]]),
            (On::Ns("admin", "system.backup_users"), &[RESTORE_WRITE]),
            (On::Ns("admin", "system.version"), &[RESTORE_WRITE, &[Find]]),
            (On::AnyColl("system.users"), &[RESTORE_WRITE, &[Find, Update, Remove]]),
            (On::Ns("admin", "system.roles"), &[&[CreateIndex]]),
        ],
    ),
    role(
        "root",
        true,
        &[
            ("clusterAdmin", None),
            ("userAdminAnyDatabase", None),
            ("dbAdminAnyDatabase", None),
            ("readWriteAnyDatabase", None),
            ("backup", None),
            ("restore", None),
        ],
        &[
            (On::Any, &[&[Validate]]),
            (On::Cluster, &[&[UseTenant]]),
            (On::Ns("config", "system.preimages"), &[&[Find, Remove]]),
            (On::Ns("config", "system.change_collection"), &[&[Find, Insert, Remove, Update]]),
        ],
    ),
    role("userAdmin", false, &[], &[(On::Db, &[USER_ADMIN])]),
    role(
        "userAdminAnyDatabase",
        true,
        &[],
        &[
            (On::AnyNormal, &[USER_ADMIN, &[ListCachedAndActiveUsers]]),
            (On::DbNamed("local"), &[USER_ADMIN]),
            (On::DbNamed("config"), &[USER_ADMIN]),
            (On::Cluster, &[&[ListDatabases, AuthSchemaUpgrade, InvalidateUserCache, ViewUser]]),
            (On::Ns("admin", "system.users"), &[READ, INDEX_ADMIN]),
            (On::Ns("admin", "system.roles"), &[READ, INDEX_ADMIN]),
            (On::AnyColl("system.users"), &[READ]),
            (On::Ns("admin", "system.version"), &[READ]),
            (On::Ns("admin", "system.backup_users"), &[READ]),
        ],
    ),
];

/// A built-in role: its privileges, sub-roles flattened in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltinRole {
    /// What it grants.
    pub privileges: PrivilegeSet,
    /// What it inherits as roles: always empty (mongod flattens built-in roles).
    pub roles: Vec<RoleName>,
}

fn definition(name: &str, db: &str) -> Option<&'static Definition> {
    if db.is_empty() || db == "$external" {
        return None;
    }
    DEFINITIONS.iter().find(|d| d.name == name && (!d.admin_only || db == "admin"))
}

/// Whether `name` names a built-in role in `db`.
pub fn exists(name: &str, db: &str) -> bool {
    definition(name, db).is_some()
}

/// Whether `name` is the name of a built-in role in any database (custom roles may not take
/// it).
pub fn is_builtin_name(name: &str) -> bool {
    DEFINITIONS.iter().any(|d| d.name == name)
}

/// The built-in roles of `db`, in name order (what `rolesInfo` lists with `showBuiltinRoles`).
pub fn names(db: &str) -> Vec<&'static str> {
    DEFINITIONS.iter().filter(|d| exists(d.name, db)).map(|d| d.name).collect()
}

/// The built-in role `name` of `db`, if there is one.
pub fn role_of(name: &str, db: &str) -> Option<BuiltinRole> {
    let definition = definition(name, db)?;
    let mut privileges = PrivilegeSet::default();
    add(definition, db, &mut privileges);
    Some(BuiltinRole { privileges, roles: Vec::new() })
}

fn add(definition: &Definition, db: &str, privileges: &mut PrivilegeSet) {
    for (included, in_db) in definition.includes {
        let in_db = in_db.unwrap_or(db);
        if let Some(sub) = self::definition(included, in_db) {
            add(sub, in_db, privileges);
        }
    }
    for (on, lists) in definition.grants {
        let actions: Vec<ActionType> = lists.iter().flat_map(|l| l.iter().copied()).collect();
        privileges.add(Privilege::new(on.pattern(db), &actions));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::resource::Target;

    #[test]
    fn built_in_roles_grant_mongods_privileges() {
        let read = role_of("read", "shop").map(|r| r.privileges).unwrap_or_default();
        assert!(read.allows(Target::Namespace("shop", "orders"), Find));
        assert!(!read.allows(Target::Namespace("shop", "orders"), Insert));
        assert!(!read.allows(Target::Namespace("other", "orders"), Find));
        let owner = role_of("dbOwner", "shop").map(|r| r.privileges).unwrap_or_default();
        for action in [Insert, DropDatabase, CreateUser, EnableProfiler] {
            assert!(
                owner.allows(Target::Namespace("shop", "orders"), action)
                    || owner.allows(Target::Database("shop"), action)
            );
        }
        assert!(owner.allows(Target::Namespace("shop", "system.profile"), Find));
        let root = role_of("root", "admin").map(|r| r.privileges).unwrap_or_default();
        assert!(root.allows(Target::Namespace("any", "thing"), Insert));
        assert!(root.allows(Target::Cluster, Shutdown));
        assert!(root.allows(Target::Cluster, ServerStatus));
        assert!(!read.allows(Target::Cluster, ListDatabases));
        let monitor = role_of("clusterMonitor", "admin").map(|r| r.privileges).unwrap_or_default();
        assert!(monitor.allows(Target::Namespace("local", "oplog.rs"), Find));
        assert!(!monitor.allows(Target::Cluster, Shutdown));
    }

    #[test]
    fn admin_only_roles_exist_only_in_admin() {
        assert!(exists("root", "admin"));
        assert!(!exists("root", "shop"));
        assert!(exists("readWrite", "shop"));
        assert!(!exists("read", "$external"));
        assert!(is_builtin_name("root"));
        assert_eq!(names("shop"), ["dbAdmin", "dbOwner", "enableSharding", "read", "readWrite", "userAdmin"]);
    }
}
