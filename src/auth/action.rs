//! mongod's action types: what a privilege allows (`find`, `insert`, `createUser`, ...), with
//! their names as privilege documents spell them, and a compact set of them.

/// Declares the action types, each with its privilege-document name, in mongod's order.
macro_rules! action_types {
    ($($variant:ident => $name:literal,)*) => {
        /// One of mongod's action types.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        pub enum ActionType {
            $($variant,)*
        }

        /// Every action type, in declaration (name) order.
        pub const ALL: &[ActionType] = &[$(ActionType::$variant,)*];

        impl ActionType {
            /// The name a privilege document uses.
            pub fn name(self) -> &'static str {
                match self {
                    $(ActionType::$variant => $name,)*
                }
            }
        }
    };
}

action_types! {
    AddShard => "addShard",
    AdvanceClusterTime => "advanceClusterTime",
    AllCollectionStats => "allCollectionStats",
    Analyze => "analyze",
    AnalyzeShardKey => "analyzeShardKey",
    AnyAction => "anyAction",
    AppendOplogNote => "appendOplogNote",
    ApplicationMessage => "applicationMessage",
    ApplyOps => "applyOps",
    AuditConfigure => "auditConfigure",
    AuditLogRotate => "auditLogRotate",
    AuthCheck => "authCheck",
    AuthSchemaUpgrade => "authSchemaUpgrade",
    Authenticate => "authenticate",
    BypassDocumentValidation => "bypassDocumentValidation",
    BypassWriteBlockingMode => "bypassWriteBlockingMode",
    ChangeCustomData => "changeCustomData",
    ChangeOwnCustomData => "changeOwnCustomData",
    ChangeOwnPassword => "changeOwnPassword",
    ChangePassword => "changePassword",
    ChangeStream => "changeStream",
    CheckFreeMonitoringStatus => "checkFreeMonitoringStatus",
    CheckMetadataConsistency => "checkMetadataConsistency",
    CleanupOrphaned => "cleanupOrphaned",
    CleanupStructuredEncryptionData => "cleanupStructuredEncryptionData",
    ClearJumboFlag => "clearJumboFlag",
    CloseAllDatabases => "closeAllDatabases",
    CollMod => "collMod",
    CollStats => "collStats",
    Compact => "compact",
    CompactStructuredEncryptionData => "compactStructuredEncryptionData",
    ConfigureQueryAnalyzer => "configureQueryAnalyzer",
    ConnPoolStats => "connPoolStats",
    ConnPoolSync => "connPoolSync",
    ConvertToCapped => "convertToCapped",
    CpuProfiler => "cpuProfiler",
    CreateBackup => "createBackup",
    CreateCollection => "createCollection",
    CreateDatabase => "createDatabase",
    CreateIndex => "createIndex",
    CreateRole => "createRole",
    CreateSearchIndexes => "createSearchIndexes",
    CreateUser => "createUser",
    DbCheck => "dbCheck",
    DbHash => "dbHash",
    DbStats => "dbStats",
    DropAllRolesFromDatabase => "dropAllRolesFromDatabase",
    DropAllUsersFromDatabase => "dropAllUsersFromDatabase",
    DropCollection => "dropCollection",
    DropConnections => "dropConnections",
    DropDatabase => "dropDatabase",
    DropIndex => "dropIndex",
    DropRole => "dropRole",
    DropSearchIndex => "dropSearchIndex",
    DropUser => "dropUser",
    Emptycapped => "emptycapped",
    EnableProfiler => "enableProfiler",
    EnableSharding => "enableSharding",
    ExportCollection => "exportCollection",
    Find => "find",
    FlushRouterConfig => "flushRouterConfig",
    ForceUUID => "forceUUID",
    Fsync => "fsync",
    FsyncUnlock => "fsyncUnlock",
    GetChangeStreamState => "getChangeStreamState",
    GetClusterParameter => "getClusterParameter",
    GetCmdLineOpts => "getCmdLineOpts",
    GetDatabaseVersion => "getDatabaseVersion",
    GetDefaultRWConcern => "getDefaultRWConcern",
    GetLog => "getLog",
    GetParameter => "getParameter",
    GetShardMap => "getShardMap",
    GetShardVersion => "getShardVersion",
    GrantPrivilegesToRole => "grantPrivilegesToRole",
    GrantRole => "grantRole",
    GrantRolesToRole => "grantRolesToRole",
    GrantRolesToUser => "grantRolesToUser",
    HostInfo => "hostInfo",
    Impersonate => "impersonate",
    ImportCollection => "importCollection",
    IndexStats => "indexStats",
    Inprog => "inprog",
    Insert => "insert",
    Internal => "internal",
    InvalidateUserCache => "invalidateUserCache",
    KillAnyCursor => "killAnyCursor",
    KillAnySession => "killAnySession",
    KillCursors => "killCursors",
    Killop => "killop",
    ListCachedAndActiveUsers => "listCachedAndActiveUsers",
    ListCollections => "listCollections",
    ListCursors => "listCursors",
    ListDatabases => "listDatabases",
    ListIndexes => "listIndexes",
    ListSampledQueries => "listSampledQueries",
    ListSearchIndexes => "listSearchIndexes",
    ListSessions => "listSessions",
    ListShards => "listShards",
    LogRotate => "logRotate",
    MoveChunk => "moveChunk",
    Netstat => "netstat",
    OidReset => "oidReset",
    OidcListKeys => "oidcListKeys",
    OidcRefreshKeys => "oidcRefreshKeys",
    OperationMetrics => "operationMetrics",
    PlanCacheIndexFilter => "planCacheIndexFilter",
    PlanCacheRead => "planCacheRead",
    PlanCacheWrite => "planCacheWrite",
    QueryStatsRead => "queryStatsRead",
    QueryStatsReadTransformed => "queryStatsReadTransformed",
    ReIndex => "reIndex",
    RefineCollectionShardKey => "refineCollectionShardKey",
    Remove => "remove",
    RemoveShard => "removeShard",
    RenameCollection => "renameCollection",
    RenameCollectionSameDB => "renameCollectionSameDB",
    RepairDatabase => "repairDatabase",
    ReplSetConfigure => "replSetConfigure",
    ReplSetGetConfig => "replSetGetConfig",
    ReplSetGetStatus => "replSetGetStatus",
    ReplSetHeartbeat => "replSetHeartbeat",
    ReplSetReconfig => "replSetReconfig",
    ReplSetResizeOplog => "replSetResizeOplog",
    ReplSetStateChange => "replSetStateChange",
    ReshardCollection => "reshardCollection",
    Resync => "resync",
    RevokePrivilegesFromRole => "revokePrivilegesFromRole",
    RevokeRole => "revokeRole",
    RevokeRolesFromRole => "revokeRolesFromRole",
    RevokeRolesFromUser => "revokeRolesFromUser",
    RotateCertificates => "rotateCertificates",
    RunAsLessPrivilegedUser => "runAsLessPrivilegedUser",
    RunTenantMigration => "runTenantMigration",
    ServerStatus => "serverStatus",
    SetAuthenticationRestriction => "setAuthenticationRestriction",
    SetChangeStreamState => "setChangeStreamState",
    SetClusterParameter => "setClusterParameter",
    SetDefaultRWConcern => "setDefaultRWConcern",
    SetFeatureCompatibilityVersion => "setFeatureCompatibilityVersion",
    SetFreeMonitoring => "setFreeMonitoring",
    SetParameter => "setParameter",
    SetUserWriteBlockMode => "setUserWriteBlockMode",
    ShardCollection => "shardCollection",
    ShardedDataDistribution => "shardedDataDistribution",
    ShardingState => "shardingState",
    Shutdown => "shutdown",
    SplitChunk => "splitChunk",
    SplitVector => "splitVector",
    StorageDetails => "storageDetails",
    Top => "top",
    Touch => "touch",
    TrafficRecord => "trafficRecord",
    TransitionFromDedicatedConfigServer => "transitionFromDedicatedConfigServer",
    TransitionToDedicatedConfigServer => "transitionToDedicatedConfigServer",
    Unlock => "unlock",
    Update => "update",
    UpdateRole => "updateRole",
    UpdateSearchIndex => "updateSearchIndex",
    UpdateUser => "updateUser",
    UseTenant => "useTenant",
    UseUUID => "useUUID",
    Validate => "validate",
    ViewRole => "viewRole",
    ViewUser => "viewUser",
}

impl ActionType {
    /// The action type a privilege document names.
    pub fn from_name(name: &str) -> Option<Self> {
        ALL.binary_search_by(|a| a.name().cmp(name)).ok().and_then(|i| ALL.get(i).copied())
    }
}

const WORDS: usize = ALL.len().div_ceil(64);

/// A set of action types. Holding `anyAction` means holding every action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ActionSet {
    bits: [u64; WORDS],
}

impl ActionSet {
    /// The set of `actions`.
    pub fn of(actions: &[ActionType]) -> Self {
        let mut set = Self::default();
        for &action in actions {
            set.add(action);
        }
        set
    }

    fn slot(action: ActionType) -> (usize, u64) {
        let index = action as usize;
        (index / 64, 1 << (index % 64))
    }

    /// Adds `action`; `anyAction` adds every action.
    pub fn add(&mut self, action: ActionType) {
        if action == ActionType::AnyAction {
            for &each in ALL {
                let (word, bit) = Self::slot(each);
                if let Some(w) = self.bits.get_mut(word) {
                    *w |= bit;
                }
            }
            return;
        }
        let (word, bit) = Self::slot(action);
        if let Some(w) = self.bits.get_mut(word) {
            *w |= bit;
        }
    }

    /// Adds every action of `other`.
    pub fn add_all(&mut self, other: &ActionSet) {
        for (mine, theirs) in self.bits.iter_mut().zip(other.bits) {
            *mine |= theirs;
        }
    }

    /// Removes every action of `other`.
    pub fn remove_all(&mut self, other: &ActionSet) {
        for (mine, theirs) in self.bits.iter_mut().zip(other.bits) {
            *mine &= !theirs;
        }
    }

    /// Whether `action` is in the set.
    pub fn contains(&self, action: ActionType) -> bool {
        let (word, bit) = Self::slot(action);
        self.bits.get(word).is_some_and(|w| w & bit != 0)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|w| *w == 0)
    }

    /// The names of the actions, in name order (`anyAction` alone when it holds every action,
    /// as mongod prints it).
    pub fn names(&self) -> Vec<&'static str> {
        if self.contains(ActionType::AnyAction) {
            return vec![ActionType::AnyAction.name()];
        }
        ALL.iter().filter(|a| self.contains(**a)).map(|a| a.name()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_are_sorted_and_found() {
        assert!(ALL.windows(2).all(|w| matches!(w, [a, b] if a.name() < b.name())));
        assert_eq!(ActionType::from_name("find"), Some(ActionType::Find));
        assert_eq!(ActionType::from_name("killop"), Some(ActionType::Killop));
        assert_eq!(ActionType::from_name("fly"), None);
    }

    #[test]
    fn any_action_holds_every_action() {
        let all = ActionSet::of(&[ActionType::AnyAction]);
        assert!(all.contains(ActionType::Shutdown) && all.contains(ActionType::ViewUser));
        assert_eq!(all.names(), ["anyAction"]);
        let mut some = ActionSet::of(&[ActionType::Insert, ActionType::Find]);
        assert_eq!(some.names(), ["find", "insert"]);
        some.remove_all(&ActionSet::of(&[ActionType::Find]));
        assert_eq!(some.names(), ["insert"]);
        assert!(!some.is_empty());
    }
}
