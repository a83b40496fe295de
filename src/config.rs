//! One [`Config`], merged from command-line flags (mongod's names), `MONARCH_*` environment
//! variables and a TOML config file, and validated once at start.
//!
//! Precedence, highest first: flag, environment variable, config file, default. The config
//! file mirrors the sections of mongod's YAML file (`net`, `storage`, `systemLog`,
//! `setParameter`) and rejects unknown keys.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bson::{Bson, Document, doc};
use clap::Parser;
use monarch_wire::Compressor;
use serde::Deserialize;

use crate::backup::BackupKey;
use crate::backup::schedule::{
    BackupPath, BackupSchedule, DEFAULT_OPLOG_INTERVAL, Retention, ScheduleConfig, parse_oplog_interval,
};
pub use crate::log::LogConfig;
use crate::storage::PostgresTarget;

/// mongod flags that Monarch accepts, so existing compose files keep working, but that have
/// no meaning here. Each one given produces a startup warning.
const IGNORED_FLAGS: &[&str] = &[
    "wiredTigerJournalCompressor",
    "wiredTigerCollectionBlockCompressor",
    "wiredTigerIndexPrefixCompression",
    "syncdelay",
    "unixSocketPrefix",
    "filePermissions",
];

/// mongod switches (no value) accepted and ignored, for the same reason.
const IGNORED_SWITCHES: &[&str] = &["journal", "nojournal", "nounixsocket", "directoryperdb", "ipv6", "noprealloc"];

/// Command-line flags. Every value is optional here so that the config file can fill what a
/// flag or environment variable did not set.
#[derive(Debug, Parser)]
#[command(name = "monarchd", version, about = "Monarch: a database server that speaks the MongoDB wire protocol")]
struct Flags {
    /// TOML config file (sections as in mongod's YAML file: net, storage, systemLog, setParameter).
    #[arg(short = 'f', long, env = "MONARCH_CONFIG")]
    config: Option<PathBuf>,
    /// TCP port to listen on [default: 27017].
    #[arg(long, env = "MONARCH_PORT")]
    port: Option<u16>,
    /// Comma-separated addresses or host names to listen on [default: 127.0.0.1].
    #[arg(long = "bind_ip", env = "MONARCH_BIND_IP")]
    bind_ip: Option<String>,
    /// Listen on all IPv4 addresses (0.0.0.0).
    #[arg(long = "bind_ip_all", env = "MONARCH_BIND_IP_ALL", num_args = 0..=1, default_missing_value = "true")]
    bind_ip_all: Option<bool>,
    /// Maximum simultaneous connections [default: 1000000].
    #[arg(long = "maxConns", env = "MONARCH_MAX_CONNS")]
    max_conns: Option<usize>,
    /// Maximum simultaneous connections from one client address [default: no limit].
    #[arg(long = "maxConnsPerIP", env = "MONARCH_MAX_CONNS_PER_IP")]
    max_conns_per_ip: Option<usize>,
    /// Requests per second one client address may send (a token bucket holding one second's
    /// worth); more are refused with 462 [default: no limit].
    #[arg(long = "rateLimitPerIP", env = "MONARCH_RATE_LIMIT_PER_IP")]
    rate_limit_per_ip: Option<u32>,
    /// Requests per second one authenticated user may send, over all its connections
    /// [default: no limit].
    #[arg(long = "rateLimitPerUser", env = "MONARCH_RATE_LIMIT_PER_USER")]
    rate_limit_per_user: Option<u32>,
    /// Directory for the data files [default: ./data].
    #[arg(long, env = "MONARCH_DBPATH")]
    dbpath: Option<PathBuf>,
    /// Log less: connection events are not logged.
    #[arg(long, env = "MONARCH_QUIET", num_args = 0..=1, default_missing_value = "true")]
    quiet: Option<bool>,
    /// Write the log to this file instead of standard output.
    #[arg(long, env = "MONARCH_LOGPATH")]
    logpath: Option<PathBuf>,
    /// Append to an existing log file instead of renaming it aside first.
    #[arg(long, env = "MONARCH_LOGAPPEND", num_args = 0..=1, default_missing_value = "true")]
    logappend: Option<bool>,
    /// Verbosity 0..=5 as mongod's logLevel: 0 logs informational lines, 1..=5 debug lines.
    #[arg(long = "logLevel", env = "MONARCH_LOG_LEVEL")]
    log_level: Option<u8>,
    /// Raise verbosity by one per `v` (`-v`, `-vv`, ...), as mongod.
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    verbose: u8,
    /// Server parameter as name=value; repeatable.
    #[arg(long = "setParameter", env = "MONARCH_SET_PARAMETER", value_delimiter = ',')]
    set_parameter: Vec<String>,
    /// TLS mode: disabled, allowTLS, preferTLS or requireTLS [default: disabled].
    #[arg(long = "tlsMode", env = "MONARCH_TLS_MODE")]
    tls_mode: Option<String>,
    /// PEM file holding the server certificate chain and its private key.
    #[arg(long = "tlsCertificateKeyFile", env = "MONARCH_TLS_CERTIFICATE_KEY_FILE")]
    tls_certificate_key_file: Option<PathBuf>,
    /// PEM file of CA certificates; when set, clients must present a certificate it signed.
    #[arg(long = "tlsCAFile", env = "MONARCH_TLS_CA_FILE")]
    tls_ca_file: Option<PathBuf>,
    /// TLS versions to refuse, comma-separated (TLS1_0, TLS1_1, TLS1_2, TLS1_3) or "none";
    /// TLS 1.2 is the floor in any case [default: none].
    #[arg(long = "tlsDisabledProtocols", env = "MONARCH_TLS_DISABLED_PROTOCOLS")]
    tls_disabled_protocols: Option<String>,
    /// Compressors offered to clients, in preference order, or "disabled" [default: snappy,zstd,zlib].
    #[arg(long = "networkMessageCompressors", env = "MONARCH_NETWORK_MESSAGE_COMPRESSORS")]
    network_message_compressors: Option<String>,
    /// Operations slower than this many milliseconds are logged (and profiled at level 1) [default: 100].
    #[arg(long = "slowms", env = "MONARCH_SLOWMS", allow_negative_numbers = true)]
    slowms: Option<i64>,
    /// Fraction of slow operations logged and profiled, 0.0..=1.0 [default: 1.0].
    #[arg(long = "slowOpSampleRate", env = "MONARCH_SLOW_OP_SAMPLE_RATE")]
    slow_op_sample_rate: Option<f64>,
    /// Profiling level of every database at start: 0 off, 1 slow operations, 2 all [default: 0].
    #[arg(long = "profile", env = "MONARCH_PROFILE")]
    profile: Option<u8>,
    /// Replace the values of client data (commands in the slow-query log) with "###" [default: true].
    #[arg(long = "redactClientLogData", env = "MONARCH_REDACT_CLIENT_LOG_DATA", num_args = 0..=1, default_missing_value = "true")]
    redact_client_log_data: Option<bool>,
    /// Require authentication and enforce roles on every command (mongod's --auth).
    #[arg(long = "auth", env = "MONARCH_AUTH", num_args = 0..=1, default_missing_value = "true", conflicts_with = "noauth")]
    auth: Option<bool>,
    /// mongod's replica-set key file: read and checked, and, as with mongod, it turns
    /// authentication on; Monarch has no other members to authenticate with it (a warning says so).
    #[arg(long = "keyFile", env = "MONARCH_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// Where to report a vulnerability in this deployment, as comma-separated URIs (mailto:,
    /// https:// or tel:); the admin port serves them as /.well-known/security.txt (RFC 9116)
    /// [default: none, and that endpoint answers 404].
    #[arg(long = "securityContact", env = "MONARCH_SECURITY_CONTACT")]
    security_contact: Option<String>,
    /// The https:// address of the disclosure policy that /.well-known/security.txt links to.
    #[arg(long = "securityPolicy", env = "MONARCH_SECURITY_POLICY")]
    security_policy: Option<String>,
    /// Turn authentication off (the default), overriding the config file.
    #[arg(long = "noauth", hide = true)]
    noauth: bool,
    /// Where audit events go: file or console [default: no audit log].
    #[arg(long = "auditDestination", env = "MONARCH_AUDIT_DESTINATION")]
    audit_destination: Option<String>,
    /// The audit log file (with --auditDestination file).
    #[arg(long = "auditPath", env = "MONARCH_AUDIT_PATH")]
    audit_path: Option<PathBuf>,
    /// The audit log's format: JSON (the only one) [default: JSON].
    #[arg(long = "auditFormat", env = "MONARCH_AUDIT_FORMAT")]
    audit_format: Option<String>,
    /// A query (JSON) over audit events: only matching events are written, and allowed
    /// commands are audited too (authCheck events), so it can select CRUD.
    #[arg(long = "auditFilter", env = "MONARCH_AUDIT_FILTER")]
    audit_filter: Option<String>,
    /// Export an OpenTelemetry span for each operation, with child spans for its phases, to
    /// this OTLP/HTTP (protobuf) collector: http://collector:4318 (a URL without a path gets
    /// /v1/traces) or the full traces URL [default: no tracing].
    #[arg(long = "otlpEndpoint", env = "MONARCH_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    /// With --otlpEndpoint: the fraction of operations traced, 0.0..=1.0, drawn from the trace
    /// id; an operation whose comment carries a traceparent follows that caller's sampled flag
    /// instead [default: 1.0].
    #[arg(long = "otlpSamplingRatio", env = "MONARCH_OTLP_SAMPLING_RATIO")]
    otlp_sampling_ratio: Option<f64>,
    /// Port of the admin HTTP server (/metrics, /livez, /readyz, /health), on the --bind_ip
    /// addresses, or "disabled" [default: 28017].
    #[arg(long = "adminPort", env = "MONARCH_ADMIN_PORT")]
    admin_port: Option<String>,
    /// Comma-separated addresses the admin HTTP server listens on besides the loopback
    /// address (0.0.0.0 for every IPv4 address) [default: 127.0.0.1 only].
    #[arg(long = "adminBindIp", env = "MONARCH_ADMIN_BIND_IP")]
    admin_bind_ip: Option<String>,
    /// File holding the bearer token that /metrics, /health, /queryStats, /config,
    /// /debug/tasks, /debug/pprof/* and the web console's /api/ then require (/livez and /readyz stay open);
    /// the console lets a request carrying it stop operations.
    #[arg(long = "adminTokenFile", env = "MONARCH_ADMIN_TOKEN_FILE")]
    admin_token_file: Option<PathBuf>,
    /// Serve the admin HTTP port over HTTPS with --tlsCertificateKeyFile; with --tlsCAFile, a
    /// client certificate signed by that CA opens /metrics, /health, /queryStats, /config,
    /// /debug/tasks, /debug/pprof/* and the console's /api/ as the bearer token does (the
    /// probes need none).
    #[arg(long = "adminTls", env = "MONARCH_ADMIN_TLS", num_args = 0..=1, default_missing_value = "true")]
    admin_tls: Option<bool>,
    /// Check the configuration (flags, variables, config file, certificate files), print the
    /// effective settings with secrets masked, and exit: 0 when valid, non-zero naming the
    /// offending key otherwise.
    #[arg(long = "validate-config")]
    validate_config: bool,
    /// Repair the data directory and exit instead of serving (mongod's `--repair`; not with
    /// --replSet): a damaged journal file is cut before its first damaged batch, what damaged
    /// table files still hold is copied into a fresh engine directory, invalid documents are
    /// removed, every index is rebuilt from the documents and the stored counts and sizes are
    /// recomputed. What is removed is kept under `<dbpath>/repair-<UTC time>/` and the log says
    /// what was lost. Exit 0 when the repair completed (even with losses), 100 when it could not.
    #[arg(long = "repair")]
    repair: bool,
    /// Memory for the storage engine's block cache and write buffers, in GiB, 0.25..=10000
    /// (mongod's --wiredTigerCacheSizeGB, also accepted) [default: 50% of (RAM - 1 GiB), at
    /// least 0.25, where RAM is the smaller of physical memory and the cgroup limit].
    #[arg(
        long = "cacheSizeGB",
        visible_alias = "wiredTigerCacheSizeGB",
        env = "MONARCH_CACHE_SIZE_GB",
        allow_negative_numbers = true
    )]
    cache_size_gb: Option<String>,
    /// mongod options with no meaning here: accepted with a warning.
    #[arg(long = "wiredTigerJournalCompressor", hide = true)]
    wired_tiger_journal_compressor: Option<String>,
    #[arg(long = "wiredTigerCollectionBlockCompressor", hide = true)]
    wired_tiger_collection_block_compressor: Option<String>,
    #[arg(long = "wiredTigerIndexPrefixCompression", hide = true)]
    wired_tiger_index_prefix_compression: Option<String>,
    /// The storage engine: fjall, embedded in --dbpath, or postgres, a PostgreSQL database at
    /// --pgUri (one node per database, or several with --pgSharedNodes). `wiredTiger`, what
    /// mongod's files name, is accepted with a warning and means fjall [default: fjall].
    #[arg(long = "storageEngine", env = "MONARCH_STORAGE_ENGINE")]
    storage_engine: Option<String>,
    /// The PostgreSQL database of --storageEngine postgres, as a libpq-style URI
    /// (postgresql://user@host1:5432,host2:5432/db?target_session_attrs=read-write); keep the
    /// password out of it with --pgPasswordFile. TLS as libpq's sslmode says (prefer by
    /// default; require, verify-ca, verify-full with sslrootcert=CA-file or system; sslcert and
    /// sslkey for a client certificate).
    #[arg(long = "pgUri", env = "MONARCH_PG_URI")]
    pg_uri: Option<String>,
    /// A file holding the password for --pgUri (trailing whitespace ignored).
    #[arg(long = "pgPasswordFile", env = "MONARCH_PG_PASSWORD_FILE")]
    pg_password_file: Option<PathBuf>,
    /// Several monarchd nodes serve the --pgUri database together: each answers `hello` as
    /// mongos does (give drivers every node), catalog changes made through one are seen by all
    /// at once, and writes to a collection are serialised across them. Every node of the
    /// database must run with it; not with --replSet.
    #[arg(long = "pgSharedNodes", env = "MONARCH_PG_SHARED_NODES", num_args = 0..=1, default_missing_value = "true")]
    pg_shared_nodes: Option<bool>,
    /// Run as a member of the replica set NAME (mongod's `--replSet`; a `NAME/seed,...` seed
    /// list is accepted and its hosts ignored, as mongod ignores them): `hello` reports the set,
    /// writes wait for `replSetInitiate`, replies carry cluster times [default: standalone].
    #[arg(long = "replSet", env = "MONARCH_REPL_SET")]
    repl_set: Option<String>,
    /// Size of the oplog in MB, in replica-set mode (mongod's `--oplogSize`; a stored oplog keeps
    /// the size it was created with) [default: 5% of the free disk space, 990 MB to 50 GB]
    #[arg(long = "oplogSize", env = "MONARCH_OPLOG_SIZE_MB", value_name = "MB")]
    oplog_size: Option<u64>,
    /// Take a backup on this schedule into --backupPath: an interval (90s, 30m, 6h, 1d, 1w)
    /// counted from the newest backup there, or a cron expression in UTC ("30 3 * * *",
    /// @daily); each backup is verified once written [default: no scheduled backups]
    #[arg(long = "backupSchedule", env = "MONARCH_BACKUP_SCHEDULE")]
    backup_schedule: Option<String>,
    /// Where the scheduled backups go, one `backup-<UTC time>` each: a directory outside
    /// --dbpath, or S3-compatible object storage as s3://bucket/prefix[?endpoint=URL&region=R]
    /// with the AWS environment's or shared credentials file's keys (required with
    /// --backupSchedule)
    #[arg(long = "backupPath", env = "MONARCH_BACKUP_PATH")]
    backup_path: Option<PathBuf>,
    /// Which scheduled backups to keep: a count (7), an age (14d), or both (7,14d), the
    /// newest always kept [default: all of them]
    #[arg(long = "backupRetention", env = "MONARCH_BACKUP_RETENTION")]
    backup_retention: Option<String>,
    /// In replica-set mode, archive the oplog's new entries into the `oplog` folder of
    /// --backupPath this often, for point-in-time recovery (`monarchd restore --oplogReplay`)
    /// [default: 10s]
    #[arg(long = "backupOplogInterval", env = "MONARCH_BACKUP_OPLOG_INTERVAL")]
    backup_oplog_interval: Option<String>,
    /// Encrypt every backup this server writes (scheduled ones and createBackup) with
    /// AES-256-GCM under the 256-bit key in this file (base64, as `openssl rand -base64 32`
    /// writes); the key is never written into a backup [default: not encrypted]
    #[arg(long = "backupEncryptionKeyFile", env = "MONARCH_BACKUP_ENCRYPTION_KEY_FILE")]
    backup_encryption_key_file: Option<PathBuf>,
    #[arg(long = "syncdelay", hide = true)]
    syncdelay: Option<String>,
    #[arg(long = "unixSocketPrefix", hide = true)]
    unix_socket_prefix: Option<String>,
    #[arg(long = "filePermissions", hide = true)]
    file_permissions: Option<String>,
    #[arg(long, hide = true)]
    journal: bool,
    #[arg(long, hide = true)]
    nojournal: bool,
    #[arg(long, hide = true)]
    nounixsocket: bool,
    #[arg(long, hide = true)]
    directoryperdb: bool,
    #[arg(long, hide = true)]
    ipv6: bool,
    #[arg(long, hide = true)]
    noprealloc: bool,
}

/// The config file, shaped like mongod's YAML configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileConfig {
    #[serde(default)]
    net: NetSection,
    #[serde(default)]
    storage: StorageSection,
    #[serde(default)]
    system_log: SystemLogSection,
    #[serde(default)]
    set_parameter: BTreeMap<String, toml::Value>,
    #[serde(default)]
    operation_profiling: OperationProfilingSection,
    #[serde(default)]
    security: SecuritySection,
    #[serde(default)]
    audit_log: AuditLogSection,
    #[serde(default)]
    replication: ReplicationSection,
    #[serde(default)]
    backup: BackupSection,
    #[serde(default)]
    tracing: TracingSection,
}

/// Monarch's own: OpenTelemetry tracing (`--otlpEndpoint`, `--otlpSamplingRatio`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TracingSection {
    otlp_endpoint: Option<String>,
    sampling_ratio: Option<f64>,
}

/// Monarch's own: scheduled backups (`--backupSchedule`, `--backupPath`, `--backupRetention`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct BackupSection {
    schedule: Option<String>,
    path: Option<PathBuf>,
    retention: Option<String>,
    oplog_interval: Option<String>,
    encryption_key_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ReplicationSection {
    repl_set_name: Option<String>,
    #[serde(rename = "oplogSizeMB")]
    oplog_size_mb: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AuditLogSection {
    destination: Option<String>,
    path: Option<PathBuf>,
    format: Option<String>,
    filter: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct OperationProfilingSection {
    mode: Option<String>,
    slow_op_threshold_ms: Option<i64>,
    slow_op_sample_rate: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SecuritySection {
    redact_client_log_data: Option<bool>,
    authorization: Option<String>,
    key_file: Option<PathBuf>,
    contact: Option<String>,
    policy: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NetSection {
    port: Option<u16>,
    bind_ip: Option<String>,
    bind_ip_all: Option<bool>,
    max_incoming_connections: Option<usize>,
    max_conns_per_ip: Option<usize>,
    rate_limit_per_ip: Option<u32>,
    rate_limit_per_user: Option<u32>,
    admin_port: Option<toml::Value>,
    admin_bind_ip: Option<String>,
    admin_token_file: Option<PathBuf>,
    admin_tls: Option<bool>,
    #[serde(default)]
    tls: TlsSection,
    #[serde(default)]
    compression: CompressionSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TlsSection {
    mode: Option<String>,
    certificate_key_file: Option<PathBuf>,
    #[serde(rename = "CAFile")]
    ca_file: Option<PathBuf>,
    disabled_protocols: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompressionSection {
    compressors: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct StorageSection {
    db_path: Option<PathBuf>,
    engine: Option<String>,
    #[serde(default)]
    postgres: PostgresSection,
    #[serde(default)]
    wired_tiger: WiredTigerSection,
}

/// `storage.postgres`: the database of `storage.engine = "postgres"`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PostgresSection {
    uri: Option<String>,
    password_file: Option<PathBuf>,
    shared_nodes: Option<bool>,
}

/// `storage.wiredTiger`: of mongod's engine settings, only the cache size has a meaning here.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WiredTigerSection {
    #[serde(default)]
    engine_config: EngineConfigSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct EngineConfigSection {
    #[serde(rename = "cacheSizeGB")]
    cache_size_gb: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SystemLogSection {
    path: Option<PathBuf>,
    log_append: Option<bool>,
    quiet: Option<bool>,
    verbosity: Option<u8>,
    /// Per-component verbosity, as mongod's `systemLog.component.<name>.verbosity`.
    component: Option<toml::Table>,
}

/// How the listener treats TLS (mongod's `--tlsMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain connections only.
    Disabled,
    /// Plain and TLS connections on the same port.
    Allow,
    /// Plain and TLS connections on the same port (mongod prefers TLS for its own outgoing
    /// connections, which Monarch does not make).
    Prefer,
    /// TLS connections only.
    Require,
}

impl TlsMode {
    fn parse(text: &str) -> Result<Self, ConfigError> {
        match text {
            "disabled" => Ok(TlsMode::Disabled),
            "allowTLS" => Ok(TlsMode::Allow),
            "preferTLS" => Ok(TlsMode::Prefer),
            "requireTLS" => Ok(TlsMode::Require),
            other => Err(ConfigError::invalid(
                "net.tls.mode",
                format!("'{other}' is not one of disabled, allowTLS, preferTLS, requireTLS"),
            )),
        }
    }

    /// mongod's spelling.
    pub fn name(self) -> &'static str {
        match self {
            TlsMode::Disabled => "disabled",
            TlsMode::Allow => "allowTLS",
            TlsMode::Prefer => "preferTLS",
            TlsMode::Require => "requireTLS",
        }
    }
}

/// TLS settings.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// The mode.
    pub mode: TlsMode,
    /// Certificate chain and key (PEM); required unless the mode is `disabled`.
    pub certificate_key_file: Option<PathBuf>,
    /// CA bundle for client certificates; when set, clients must present one.
    pub ca_file: Option<PathBuf>,
    /// Protocol versions refused (`--tlsDisabledProtocols`).
    pub disabled_protocols: Vec<TlsProtocol>,
    /// The admin HTTP port speaks HTTPS with the same certificate, and a client certificate
    /// signed by the CA, optional there, stands for the bearer token (`--adminTls`).
    pub admin: bool,
}

/// A TLS protocol version, as `--tlsDisabledProtocols` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsProtocol {
    /// TLS 1.0 (never offered: rustls does not speak it).
    Tls1_0,
    /// TLS 1.1 (never offered either).
    Tls1_1,
    /// TLS 1.2.
    Tls1_2,
    /// TLS 1.3.
    Tls1_3,
}

impl TlsProtocol {
    /// Every version with mongod's name for it.
    const NAMES: [(Self, &'static str); 4] =
        [(Self::Tls1_0, "TLS1_0"), (Self::Tls1_1, "TLS1_1"), (Self::Tls1_2, "TLS1_2"), (Self::Tls1_3, "TLS1_3")];

    /// mongod's name for it (`TLS1_2`).
    pub fn name(self) -> &'static str {
        Self::NAMES.iter().find(|(p, _)| *p == self).map_or("", |(_, name)| name)
    }

    /// Parses mongod's list: names separated by commas, or `none`.
    ///
    /// # Errors
    /// An unknown name.
    fn parse_list(text: &str) -> Result<Vec<Self>, ConfigError> {
        if text.trim() == "none" {
            return Ok(Vec::new());
        }
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|name| {
                Self::NAMES.iter().find(|(_, n)| *n == name).map(|(p, _)| *p).ok_or_else(|| {
                    ConfigError::invalid(
                        "net.tls.disabledProtocols",
                        format!("'{name}' is not one of TLS1_0, TLS1_1, TLS1_2, TLS1_3, none"),
                    )
                })
            })
            .collect()
    }
}

/// OpenTelemetry tracing (`--otlpEndpoint`, `--otlpSamplingRatio`).
#[derive(Debug, Clone, PartialEq)]
pub struct TracingConfig {
    /// The collector's OTLP/HTTP traces URL.
    pub endpoint: String,
    /// The fraction of operations traced when no caller's trace decides.
    pub sampling_ratio: f64,
}

/// The slow-query log and profiler settings at start (`operationProfiling`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProfilingConfig {
    /// Profiling level of every database: 0 off, 1 slow operations, 2 all.
    pub level: u8,
    /// The slow-operation threshold in milliseconds.
    pub slow_ms: i64,
    /// The fraction of slow operations logged and profiled.
    pub sample_rate: f64,
}

/// The smallest and largest `cacheSizeGB` mongod accepts.
const CACHE_SIZE_GB_RANGE: std::ops::RangeInclusive<f64> = 0.25..=10_000.0;
/// mongod's ceiling on the cache in MiB (10,000 GiB is a little more; mongod caps it here).
const MAX_CACHE_MB: u64 = 10_000_000;
/// The smallest default cache, in MiB.
const MIN_DEFAULT_CACHE_MB: f64 = 256.0;
const MIB: u64 = 1024 * 1024;

/// What the effective configuration shows for a secret.
const MASKED: &str = "********";

/// The PostgreSQL connection of `storage.engine`, when it names postgres: the URI, with the
/// password from `password_file` when given. fjall (or mongod's `wiredTiger`, with a warning)
/// gives `None`.
fn postgres_config(
    engine: Option<&str>,
    uri: Option<String>,
    password_file: Option<PathBuf>,
    warnings: &mut Vec<String>,
) -> Result<Option<PostgresTarget>, ConfigError> {
    match engine {
        None | Some("fjall") => {}
        // What compose files and charts written for mongod pass: the engine mongod has.
        Some("wiredTiger") => warnings.push("--storageEngine wiredTiger: Monarch stores data with fjall".into()),
        Some("postgres") => {
            let uri = uri.ok_or_else(|| {
                ConfigError::invalid(
                    "storage.postgres.uri",
                    "storage.engine postgres needs the database's URI (--pgUri)",
                )
            })?;
            let mut target =
                PostgresTarget::parse(&uri).map_err(|reason| ConfigError::invalid("storage.postgres.uri", reason))?;
            if let Some(path) = password_file {
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { path, source })?;
                target.config_mut().password(text.trim_end());
            }
            return Ok(Some(target));
        }
        Some(other) => {
            return Err(ConfigError::invalid(
                "storage.engine",
                format!("Cannot start server with an unknown storage engine: {other}"),
            ));
        }
    }
    if uri.is_some() || password_file.is_some() {
        return Err(ConfigError::invalid("storage.postgres.uri", "is for storage.engine postgres only"));
    }
    Ok(None)
}

/// A PostgreSQL connection as the effective configuration shows it: hosts, database and user,
/// never the password.
fn postgres_shown(target: &PostgresTarget) -> Document {
    use postgres::config::Host;
    let config = target.config();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(host, port)| match host {
            Host::Tcp(name) => format!("{name}:{port}"),
            Host::Unix(path) => format!("{}:{port}", path.display()),
        })
        .collect();
    doc! {
        "hosts": hosts,
        "dbname": config.get_dbname().map_or(Bson::Null, |name| Bson::String(name.to_owned())),
        "user": config.get_user().map_or(Bson::Null, |user| Bson::String(user.to_owned())),
        "password": config.get_password().map_or(Bson::Null, |_| Bson::String(MASKED.into())),
        "sslmode": target.mode().name(),
    }
}

/// The storage engine's memory budget (`--cacheSizeGB`): what the block cache and the write
/// buffers may hold together (see `storage::MemoryBudget` for the split).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CacheSize {
    /// The budget in bytes: a whole number of MiB, as mongod sizes its cache.
    pub bytes: u64,
    /// `cacheSizeGB` as given; `None` when the default applies.
    pub configured_gb: Option<f64>,
    /// The memory the default was derived from (the smaller of physical memory and the
    /// cgroup limit); `None` when given, or when the host does not tell.
    pub memory_bytes: Option<u64>,
}

impl CacheSize {
    /// `gb` GiB, truncated to whole MiB and capped as mongod does.
    fn configured(gb: f64) -> Self {
        // Truncation is intended: mongod converts to whole megabytes the same way.
        let mb = ((gb * 1024.0) as u64).min(MAX_CACHE_MB);
        Self { bytes: mb * MIB, configured_gb: Some(gb), memory_bytes: None }
    }

    /// mongod's default: 50% of (memory - 1 GiB), at least 256 MiB; the minimum when the
    /// memory is unknown.
    pub fn default_for(memory_bytes: Option<u64>) -> Self {
        let memory_mb = memory_bytes.map_or(0, |bytes| bytes / MIB);
        let mb = ((memory_mb as f64 - 1024.0) * 0.5).max(MIN_DEFAULT_CACHE_MB) as u64;
        Self { bytes: mb.min(MAX_CACHE_MB) * MIB, configured_gb: None, memory_bytes }
    }

    /// Parses and range-checks a `cacheSizeGB` value, with mongod's messages.
    fn parse(text: &str) -> Result<Self, ConfigError> {
        let gb: f64 = text
            .trim()
            .parse()
            .map_err(|_| ConfigError::invalid(CACHE_SIZE_KEY, format!("'{text}' is not a number")))?;
        let out_of_range = |message: String| ConfigError::OutOfRange { key: CACHE_SIZE_KEY, message };
        // NaN fails mongod's `gte` check too.
        if gb.is_nan() || gb < *CACHE_SIZE_GB_RANGE.start() {
            return Err(out_of_range(format!("must be greater than or equal to {}", CACHE_SIZE_GB_RANGE.start())));
        }
        if gb > *CACHE_SIZE_GB_RANGE.end() {
            return Err(out_of_range(format!("must be less than or equal to {}", CACHE_SIZE_GB_RANGE.end())));
        }
        Ok(Self::configured(gb))
    }
}

/// The config-file key of the cache size, mongod's spelling.
const CACHE_SIZE_KEY: &str = "storage.wiredTiger.engineConfig.cacheSizeGB";

/// The default `monarchTLSHandshakeTimeoutMillis`: the longest default `connectTimeoutMS` of
/// the official drivers (30 s, Node and Go), which covers their TCP connect and TLS handshake,
/// so no driver gives up later than the server does.
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT_MILLIS: u64 = 30_000;

/// Server parameters set at startup with `--setParameter`.
#[derive(Debug, Clone)]
pub struct Parameters {
    /// Allows test-only commands such as `configureFailPoint`.
    pub enable_test_commands: bool,
    /// Idle time after which a cursor is closed (`cursorTimeoutMillis`, default 10 minutes).
    pub cursor_timeout_millis: u64,
    /// Seconds between passes of the TTL monitor (`ttlMonitorSleepSecs`, default 60).
    pub ttl_monitor_sleep_secs: u64,
    /// Bytes an in-memory sort may hold without `allowDiskUse`
    /// (`internalQueryMaxBlockingSortMemoryUsageBytes`, default 100 MiB).
    pub max_blocking_sort_bytes: u64,
    /// Whether sorts over that limit may go on when the command does not say `allowDiskUse`
    /// (`allowDiskUseByDefault`, default true as in mongod 6.0+).
    pub allow_disk_use_by_default: bool,
    /// Monarch's own switch for the request tracker's observers (metrics, slow-query log,
    /// profiler, latency histograms) and the `currentOp` registry (`monarchObservability`,
    /// default true). Off only to measure their cost.
    pub observability: bool,
    /// PBKDF2 iterations of new SCRAM-SHA-1 credentials (`scramIterationCount`, default 10,000).
    pub scram_iteration_count: u64,
    /// PBKDF2 iterations of new SCRAM-SHA-256 credentials (`scramSHA256IterationCount`,
    /// default 15,000).
    pub scram_sha256_iteration_count: u64,
    /// How long a transaction may stay open before it is aborted
    /// (`transactionLifetimeLimitSeconds`, default 60).
    pub transaction_lifetime_secs: u64,
    /// How far back snapshot reads can go (`minSnapshotHistoryWindowInSeconds`, default
    /// 300).
    pub snapshot_history_window_secs: u64,
    /// How long a transaction waits for a collection a DDL operation holds
    /// (`maxTransactionLockRequestTimeoutMillis`, default 5; negative: no limit).
    pub transaction_lock_timeout_ms: i64,
    /// How long an idle primary waits before writing a no-op to its oplog
    /// (`periodicNoopIntervalSecs`, 1 to 10, default 10; startup only, as in mongod).
    pub periodic_noop_interval_secs: u64,
    /// How often the session cache records the sessions used and ended in
    /// `config.system.sessions` (`logicalSessionRefreshMillis`, default 300,000; startup only,
    /// as in mongod).
    pub session_refresh_millis: u64,
    /// How often a node sharing a PostgreSQL database looks for user and role changes made
    /// through the others (`userCacheInvalidationIntervalSecs`, mongos's, 1 to 86,400, default
    /// 30; startup only).
    pub user_cache_invalidation_secs: u64,
    /// Free space kept on the data directory's disk: below it writes are refused with 14031
    /// OutOfDiskSpace until space is freed (`monarchMinAvailableDiskSpaceMB`, default 100;
    /// 0: no reserve).
    pub min_available_disk_space_mb: u64,
    /// How long a connection on a TLS port may take to send its first byte and finish the TLS
    /// handshake before it is closed (`monarchTLSHandshakeTimeoutMillis`, default 30,000;
    /// Monarch's own: mongod has no such limit and leaves the slot taken until TCP keepalive
    /// gives up on a dead peer, which never happens for a live one that stays silent).
    pub tls_handshake_timeout_millis: u64,
}

impl Default for Parameters {
    fn default() -> Self {
        Self {
            enable_test_commands: false,
            cursor_timeout_millis: 600_000,
            ttl_monitor_sleep_secs: 60,
            max_blocking_sort_bytes: 100 * 1024 * 1024,
            allow_disk_use_by_default: true,
            observability: true,
            scram_iteration_count: 10_000,
            scram_sha256_iteration_count: 15_000,
            transaction_lifetime_secs: crate::state::transactions::TRANSACTION_LIFETIME.as_secs(),
            snapshot_history_window_secs: crate::storage::oplog::DEFAULT_HISTORY_WINDOW_SECS,
            transaction_lock_timeout_ms: crate::storage::DEFAULT_LOCK_REQUEST_TIMEOUT_MS,
            periodic_noop_interval_secs: 10,
            session_refresh_millis: 300_000,
            user_cache_invalidation_secs: 30,
            min_available_disk_space_mb: crate::storage::DEFAULT_DISK_RESERVE_MB,
            tls_handshake_timeout_millis: DEFAULT_TLS_HANDSHAKE_TIMEOUT_MILLIS,
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Authentication required and roles enforced (`--auth`, `security.authorization`, or
    /// the official image's root-user variables).
    pub auth: bool,
    /// The audit log: where it goes and its filter (`None`: no audit log).
    pub audit: Option<AuditConfig>,
    /// The root user to create in `admin` when the data directory is empty
    /// (`MONGO_INITDB_ROOT_USERNAME`/`_PASSWORD` or their `_FILE` variants, as the official
    /// image takes them).
    pub initdb_root: Option<RootUser>,
    /// Addresses or host names to listen on.
    pub bind_ip: Vec<String>,
    /// The port; 0 asks the OS for a free one (tests use this).
    pub port: u16,
    /// The connection cap.
    pub max_conns: usize,
    /// The cap per client address (`None`: none).
    pub max_conns_per_ip: Option<usize>,
    /// Requests per second per client address (`None`: no limit).
    pub rate_limit_per_ip: Option<u32>,
    /// Requests per second per authenticated user (`None`: no limit).
    pub rate_limit_per_user: Option<u32>,
    /// The data directory.
    pub dbpath: PathBuf,
    /// The storage engine's memory budget.
    pub cache_size: CacheSize,
    /// The PostgreSQL database of `--storageEngine postgres`; `None`: fjall, in `dbpath`.
    pub postgres: Option<PostgresTarget>,
    /// Other nodes serve the same PostgreSQL database (`--pgSharedNodes`): `hello` answers
    /// as mongos.
    pub pg_shared_nodes: bool,
    /// Logging.
    pub log: LogConfig,
    /// TLS.
    pub tls: TlsConfig,
    /// Compressors offered to clients, in preference order.
    pub compressors: Vec<Compressor>,
    /// `--setParameter` values.
    pub parameters: Parameters,
    /// The slow-query log and the profiler's starting settings.
    pub profiling: ProfilingConfig,
    /// Redact client data (commands) in log lines.
    pub redact_client_log_data: bool,
    /// The admin HTTP port; `None` when disabled (0 asks the OS for a free one).
    pub admin_port: Option<u16>,
    /// The addresses the admin HTTP server listens on: the loopback address and those named.
    pub admin_bind_ip: Vec<String>,
    /// The bearer token the admin endpoints other than the probes require, when configured.
    pub admin_token: Option<Secret>,
    /// Where to report a vulnerability (`security.contact`, URIs), for
    /// `/.well-known/security.txt`; empty: that endpoint answers 404.
    pub security_contacts: Vec<String>,
    /// The disclosure policy's https:// address (`security.policy`).
    pub security_policy: Option<String>,
    /// The replica set this server is a member of (`--replSet`, `replication.replSetName`);
    /// `None`: a standalone.
    pub repl_set: Option<String>,
    /// The oplog's size in MB (`--oplogSize`, `replication.oplogSizeMB`); `None`: mongod's
    /// default rule.
    pub oplog_size_mb: Option<u64>,
    /// Scheduled backups (`--backupSchedule`, `--backupPath`, `--backupRetention`); `None`:
    /// none.
    pub backup_schedule: Option<ScheduleConfig>,
    /// The key backups are encrypted with (`--backupEncryptionKeyFile`); `None`: not encrypted.
    pub backup_key: Option<BackupKey>,
    /// Where operations' spans go, and how many (`--otlpEndpoint`); `None`: no tracing.
    pub tracing: Option<TracingConfig>,
    /// Startup warnings about accepted but meaningless options.
    pub warnings: Vec<String>,
    /// The command line as given, for `getCmdLineOpts`.
    pub argv: Vec<String>,
    /// `--validate-config`: check, print the effective settings and exit instead of serving.
    pub validate_only: bool,
    /// `--repair`: repair the data directory and exit instead of serving.
    pub repair: bool,
}

/// Where audit events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditDestination {
    /// A file, appended to.
    File(PathBuf),
    /// Standard output, beside the server log.
    Console,
}

/// The audit log's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditConfig {
    /// Where events go.
    pub destination: AuditDestination,
    /// The filter over events, as a query document.
    pub filter: Option<Document>,
}

/// A password that never shows in logs or debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The password itself, for the one place that hashes it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The root user the official image's variables describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootUser {
    /// `MONGO_INITDB_ROOT_USERNAME`.
    pub name: String,
    /// `MONGO_INITDB_ROOT_PASSWORD`.
    pub password: Secret,
}

impl RootUser {
    /// Reads the variables through `var`: each as itself or, with `_FILE`, from the file it
    /// names (trailing newlines dropped, as the image's `file_env` does); both or neither must
    /// be given.
    ///
    /// # Errors
    /// A variable given twice, a file that cannot be read, or only one of the two.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ConfigError> {
        let read = |name: &str| -> Result<Option<String>, ConfigError> {
            let file_name = format!("{name}_FILE");
            match (var(name), var(&file_name)) {
                (Some(_), Some(_)) => {
                    Err(ConfigError::invalid(name, format!("both {name} and {file_name} are set (but are exclusive)")))
                }
                (Some(value), None) => Ok(Some(value)),
                (None, Some(path)) => std::fs::read_to_string(&path)
                    .map(|text| Some(text.trim_end_matches(['\n', '\r']).to_owned()))
                    .map_err(|source| ConfigError::Read { path: PathBuf::from(path), source }),
                (None, None) => Ok(None),
            }
        };
        match (read("MONGO_INITDB_ROOT_USERNAME")?, read("MONGO_INITDB_ROOT_PASSWORD")?) {
            (Some(name), Some(password)) if !name.is_empty() && !password.is_empty() => {
                Ok(Some(Self { name, password: Secret(password) }))
            }
            (None, None) => Ok(None),
            _ => Err(ConfigError::invalid(
                "MONGO_INITDB_ROOT_USERNAME",
                "both MONGO_INITDB_ROOT_USERNAME and MONGO_INITDB_ROOT_PASSWORD must be specified and non-empty",
            )),
        }
    }
}

/// A configuration problem, naming the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A flag or value could not be parsed (clap prints its own help).
    #[error(transparent)]
    Flags(#[from] clap::Error),
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has an unknown key.
    #[error("invalid config file {path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What toml reported, with the key and position.
        message: String,
    },
    /// A setting has an invalid value.
    #[error("invalid value for {key}: {message}")]
    Invalid {
        /// The setting, in config-file spelling.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A number outside the range mongod accepts for the setting; the text is mongod's
    /// (`<key> must be greater than or equal to <min>`).
    #[error("{key} {message}")]
    OutOfRange {
        /// The setting, in config-file spelling.
        key: &'static str,
        /// The bound it crosses.
        message: String,
    },
}

impl ConfigError {
    fn invalid(key: &str, message: impl Into<String>) -> Self {
        ConfigError::Invalid { key: key.to_owned(), message: message.into() }
    }

    /// The process exit code for this error, as mongod's: 2 (bad options) for a value it
    /// cannot parse, 1 for one its validators reject after parsing (mongod fails its global
    /// initialization then).
    pub fn exit_code(&self) -> u8 {
        match self {
            ConfigError::OutOfRange { .. } => 1,
            _ => 2,
        }
    }
}

impl Config {
    /// Builds the configuration from `argv` (program name first) and the environment.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the bad flag, key or value.
    pub fn from_args<I, T>(argv: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let argv: Vec<std::ffi::OsString> = argv.into_iter().map(Into::into).collect();
        let flags = Flags::try_parse_from(&argv)?;
        let file = match &flags.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let argv = argv.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        let mut config = Self::merge(flags, file, argv)?;
        config.initdb_root = RootUser::from_env(|name| std::env::var(name).ok())?;
        // The official image turns authentication on whenever its root user is configured.
        config.auth |= config.initdb_root.is_some();
        Ok(config)
    }

    fn merge(flags: Flags, file: FileConfig, argv: Vec<String>) -> Result<Self, ConfigError> {
        let mut warnings = ignored_option_warnings(&flags);
        let bind_ip_all = flags.bind_ip_all.or(file.net.bind_ip_all).unwrap_or(false);
        let bind_ip = if bind_ip_all {
            vec!["0.0.0.0".to_owned()]
        } else {
            let list = flags.bind_ip.or(file.net.bind_ip).unwrap_or_else(|| "127.0.0.1".to_owned());
            let list: Vec<String> =
                list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
            if list.is_empty() {
                return Err(ConfigError::invalid("net.bindIp", "no address given"));
            }
            list
        };
        let max_conns = flags.max_conns.or(file.net.max_incoming_connections).unwrap_or(1_000_000);
        if max_conns == 0 {
            return Err(ConfigError::invalid("net.maxIncomingConnections", "must be at least 1"));
        }
        let max_conns_per_ip = flags.max_conns_per_ip.or(file.net.max_conns_per_ip);
        let rate_limit_per_ip = flags.rate_limit_per_ip.or(file.net.rate_limit_per_ip);
        let rate_limit_per_user = flags.rate_limit_per_user.or(file.net.rate_limit_per_user);
        for (key, value) in [
            ("net.maxConnsPerIP", max_conns_per_ip.map(|n| n as u64)),
            ("net.rateLimitPerIP", rate_limit_per_ip.map(u64::from)),
            ("net.rateLimitPerUser", rate_limit_per_user.map(u64::from)),
        ] {
            if value == Some(0) {
                return Err(ConfigError::invalid(key, "must be at least 1"));
            }
        }
        let verbosity = flags.log_level.or(file.system_log.verbosity).unwrap_or(0).saturating_add(flags.verbose);
        if verbosity > 5 {
            return Err(ConfigError::invalid("systemLog.verbosity", format!("{verbosity} is outside 0..=5")));
        }
        let log = LogConfig {
            path: flags.logpath.or(file.system_log.path),
            append: flags.logappend.or(file.system_log.log_append).unwrap_or(false),
            quiet: flags.quiet.or(file.system_log.quiet).unwrap_or(false),
            verbosity,
            components: component_verbosity(file.system_log.component)?,
        };
        let mode = flags.tls_mode.or(file.net.tls.mode).map(|m| TlsMode::parse(&m)).transpose()?;
        let tls = TlsConfig {
            mode: mode.unwrap_or(TlsMode::Disabled),
            certificate_key_file: flags.tls_certificate_key_file.or(file.net.tls.certificate_key_file),
            ca_file: flags.tls_ca_file.or(file.net.tls.ca_file),
            disabled_protocols: TlsProtocol::parse_list(
                &flags.tls_disabled_protocols.or(file.net.tls.disabled_protocols).unwrap_or_default(),
            )?,
            admin: flags.admin_tls.or(file.net.admin_tls).unwrap_or(false),
        };
        if tls.admin && tls.certificate_key_file.is_none() {
            return Err(ConfigError::invalid(
                "net.adminTls",
                "needs net.tls.certificateKeyFile, the certificate it serves",
            ));
        }
        if tls.mode != TlsMode::Disabled && tls.certificate_key_file.is_none() {
            return Err(ConfigError::invalid(
                "net.tls.certificateKeyFile",
                format!("required when net.tls.mode is {}", tls.mode.name()),
            ));
        }
        let compressors = parse_compressors(
            &flags
                .network_message_compressors
                .or(file.net.compression.compressors)
                .unwrap_or_else(|| "snappy,zstd,zlib".to_owned()),
        )?;
        let mut set_parameters: BTreeMap<String, String> =
            file.set_parameter.into_iter().map(|(k, v)| (k, toml_scalar(&v))).collect();
        for pair in &flags.set_parameter {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| ConfigError::invalid("setParameter", format!("'{pair}' is not name=value")))?;
            set_parameters.insert(name.trim().to_owned(), value.trim().to_owned());
        }
        let parameters = parse_parameters(&set_parameters)?;
        let level = match (flags.profile, file.operation_profiling.mode.as_deref()) {
            (Some(level @ 0..=2), _) => level,
            (Some(level), _) => {
                return Err(ConfigError::invalid(
                    "operationProfiling.mode",
                    format!("profile level {level} is not 0, 1 or 2"),
                ));
            }
            (None, None | Some("off")) => 0,
            (None, Some("slowOp")) => 1,
            (None, Some("all")) => 2,
            (None, Some(other)) => {
                return Err(ConfigError::invalid(
                    "operationProfiling.mode",
                    format!("'{other}' is not one of off, slowOp, all"),
                ));
            }
        };
        let sample_rate = flags.slow_op_sample_rate.or(file.operation_profiling.slow_op_sample_rate).unwrap_or(1.0);
        if !(0.0..=1.0).contains(&sample_rate) {
            return Err(ConfigError::invalid(
                "operationProfiling.slowOpSampleRate",
                format!("{sample_rate} is outside 0.0..=1.0"),
            ));
        }
        let profiling = ProfilingConfig {
            level,
            slow_ms: flags.slowms.or(file.operation_profiling.slow_op_threshold_ms).unwrap_or(100),
            sample_rate,
        };
        let admin_port = match flags.admin_port.or_else(|| file.net.admin_port.as_ref().map(toml_scalar)) {
            None => Some(28017),
            Some(text) if text == "disabled" => None,
            Some(text) => Some(text.parse::<u16>().map_err(|_| {
                ConfigError::invalid("net.adminPort", format!("'{text}' is not a port number or \"disabled\""))
            })?),
        };
        let audit = audit_config(
            flags.audit_destination.or(file.audit_log.destination),
            flags.audit_path.or(file.audit_log.path),
            flags.audit_format.or(file.audit_log.format),
            flags.audit_filter.or(file.audit_log.filter),
        )?;
        let admin_bind_ip = admin_addresses(flags.admin_bind_ip.or(file.net.admin_bind_ip).as_deref());
        let admin_token = match flags.admin_token_file.or(file.net.admin_token_file) {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|source| ConfigError::Read { path: path.clone(), source })?;
                let token = text.trim();
                if token.is_empty() {
                    return Err(ConfigError::invalid("net.adminTokenFile", format!("{} is empty", path.display())));
                }
                Some(Secret(token.to_owned()))
            }
        };
        let cache_size_gb = flags
            .cache_size_gb
            .or_else(|| file.storage.wired_tiger.engine_config.cache_size_gb.as_ref().map(toml_scalar));
        let postgres = postgres_config(
            flags.storage_engine.or(file.storage.engine).as_deref(),
            flags.pg_uri.or(file.storage.postgres.uri),
            flags.pg_password_file.or(file.storage.postgres.password_file),
            &mut warnings,
        )?;
        if postgres.is_some() && cache_size_gb.is_some() {
            return Err(ConfigError::invalid(
                CACHE_SIZE_KEY,
                "sizes the embedded engine's memory; with storage.engine postgres, PostgreSQL's memory is configured in PostgreSQL",
            ));
        }
        if postgres.is_some() && flags.repair {
            return Err(ConfigError::invalid(
                "repair",
                "repairs the embedded engine's files; a PostgreSQL database is checked and repaired with PostgreSQL's tools",
            ));
        }
        let cache_size = match cache_size_gb {
            Some(text) => CacheSize::parse(&text)?,
            None => CacheSize::default_for(crate::host::memory_available_bytes()),
        };
        if log.quiet && verbosity > 0 {
            warnings.push(
                "systemLog.quiet and a verbosity above 0 were both given; quiet wins for connection events".into(),
            );
        }
        let repl_set =
            flags.repl_set.or(file.replication.repl_set_name).map(|name| repl_set_name(&name)).transpose()?;
        let pg_shared_nodes = flags.pg_shared_nodes.or(file.storage.postgres.shared_nodes).unwrap_or(false);
        if pg_shared_nodes && postgres.is_none() {
            return Err(ConfigError::invalid(
                "storage.postgres.sharedNodes",
                "is for storage.engine postgres only: the embedded engine's data belongs to one node",
            ));
        }
        if pg_shared_nodes && repl_set.is_some() {
            return Err(ConfigError::invalid(
                "storage.postgres.sharedNodes",
                "shared nodes answer as mongos and have no replica set: remove --replSet (the database's own replication, Patroni's, keeps the data available)",
            ));
        }
        if flags.repair && repl_set.is_some() {
            // mongod's 5019200, at exit code 2 (bad options) as its.
            return Err(ConfigError::invalid(
                "repair",
                "Cannot specify both repair and replSet at the same time (remove --replSet to be able to --repair)",
            ));
        }
        let dbpath = flags.dbpath.or(file.storage.db_path).unwrap_or_else(|| PathBuf::from("./data"));
        let backup_schedule = backup_schedule(
            flags.backup_schedule.or(file.backup.schedule),
            flags.backup_path.or(file.backup.path),
            flags.backup_retention.or(file.backup.retention),
            flags.backup_oplog_interval.or(file.backup.oplog_interval),
            &dbpath,
        )?;
        let backup_key = flags
            .backup_encryption_key_file
            .or(file.backup.encryption_key_file)
            .map(|path| BackupKey::read(&path))
            .transpose()
            .map_err(|e| ConfigError::invalid("backup.encryptionKeyFile", e.to_string()))?;
        let tracing = tracing_config(
            flags.otlp_endpoint.or(file.tracing.otlp_endpoint),
            flags.otlp_sampling_ratio.or(file.tracing.sampling_ratio),
        )?;
        let oplog_size_mb = flags.oplog_size.or(file.replication.oplog_size_mb);
        if oplog_size_mb == Some(0) {
            return Err(ConfigError::invalid("replication.oplogSizeMB", "the oplog size must be at least 1 MB"));
        }
        let (security_contacts, security_policy) = security_txt(
            flags.security_contact.or(file.security.contact),
            flags.security_policy.or(file.security.policy),
        )?;
        let key_file = flags.key_file.or(file.security.key_file);
        if let Some(path) = &key_file {
            check_key_file(path)?;
            warnings.push(format!(
                "security.keyFile {} authenticates replica-set members, and this server has none; as with mongod, it turns access control on",
                path.display()
            ));
        }
        let auth = match (flags.auth, flags.noauth, file.security.authorization.as_deref()) {
            (Some(on), _, _) => on,
            // mongod: a key file implies --auth.
            (None, false, _) if key_file.is_some() => true,
            (None, true, _) => false,
            (None, false, None | Some("disabled")) => false,
            (None, false, Some("enabled")) => true,
            (None, false, Some(other)) => {
                return Err(ConfigError::invalid(
                    "security.authorization",
                    format!("'{other}' is not one of enabled, disabled"),
                ));
            }
        };
        Ok(Config {
            auth,
            initdb_root: None,
            bind_ip,
            port: flags.port.or(file.net.port).unwrap_or(27017),
            max_conns,
            max_conns_per_ip,
            rate_limit_per_ip,
            rate_limit_per_user,
            dbpath,
            cache_size,
            postgres,
            pg_shared_nodes,
            log,
            tls,
            compressors,
            parameters,
            profiling,
            redact_client_log_data: flags
                .redact_client_log_data
                .or(file.security.redact_client_log_data)
                .unwrap_or(true),
            admin_port,
            audit,
            admin_bind_ip,
            admin_token,
            security_contacts,
            security_policy,
            repl_set,
            oplog_size_mb,
            backup_schedule,
            backup_key,
            tracing,
            warnings,
            argv,
            validate_only: flags.validate_config,
            repair: flags.repair,
        })
    }

    /// Every setting as the server will use it, after flags, variables, the config file and
    /// defaults are merged, in the config file's spelling (`monarchd --validate-config`).
    /// Secrets (the admin token, the root user's password) show as `********`.
    pub fn effective(&self) -> Document {
        let optional = |value: Option<Bson>| value.unwrap_or(Bson::Null);
        let disabled_protocols: Vec<&str> = self.tls.disabled_protocols.iter().map(|p| p.name()).collect();
        let limit = |n: Option<u32>| optional(n.map(|n| Bson::Int64(i64::from(n))));
        let net = doc! {
            "port": i32::from(self.port),
            "bindIp": self.bind_ip.join(","),
            "maxIncomingConnections": i64::try_from(self.max_conns).unwrap_or(i64::MAX),
            "maxConnsPerIP": optional(self.max_conns_per_ip.map(|n| Bson::Int64(i64::try_from(n).unwrap_or(i64::MAX)))),
            "rateLimitPerIP": limit(self.rate_limit_per_ip),
            "rateLimitPerUser": limit(self.rate_limit_per_user),
            "compression": { "compressors": compressor_list(&self.compressors) },
            "tls": {
                "mode": self.tls.mode.name(),
                "certificateKeyFile": optional(self.tls.certificate_key_file.as_deref().map(path_string)),
                "CAFile": optional(self.tls.ca_file.as_deref().map(path_string)),
                "disabledProtocols": disabled_protocols,
            },
            "adminPort": self.admin_port.map_or(Bson::String("disabled".into()), |p| Bson::Int32(i32::from(p))),
            "adminBindIp": self.admin_bind_ip.join(","),
            "adminToken": optional(self.admin_token.as_ref().map(|_| Bson::String(MASKED.into()))),
            "adminTls": self.tls.admin,
        };
        let storage = doc! {
            "dbPath": path_string(&self.dbpath),
            "engine": if self.postgres.is_some() { "postgres" } else { "fjall" },
            "postgres": optional(self.postgres.as_ref().map(|config| {
                let mut shown = postgres_shown(config);
                shown.insert("sharedNodes", self.pg_shared_nodes);
                Bson::Document(shown)
            })),
            "cacheSizeBytes": i64::try_from(self.cache_size.bytes).unwrap_or(i64::MAX),
            "wiredTiger": { "engineConfig": { "cacheSizeGB": optional(self.cache_size.configured_gb.map(Bson::Double)) } },
        };
        let system_log = doc! {
            "destination": if self.log.path.is_some() { "file" } else { "stdout" },
            "path": optional(self.log.path.as_deref().map(path_string)),
            "logAppend": self.log.append,
            "quiet": self.log.quiet,
            "verbosity": i32::from(self.log.verbosity),
            "component": self.log.components.clone(),
        };
        let security = doc! {
            "authorization": if self.auth { "enabled" } else { "disabled" },
            "redactClientLogData": self.redact_client_log_data,
            "initdbRootUser": optional(self.initdb_root.as_ref().map(|root| {
                Bson::Document(doc! { "user": root.name.clone(), "password": MASKED })
            })),
            "contact": self.security_contacts.join(","),
            "policy": optional(self.security_policy.clone().map(Bson::String)),
        };
        // No audit log: an empty section, as in a config file without one.
        let audit_log = match &self.audit {
            None => Bson::Document(Document::new()),
            Some(audit) => Bson::Document(doc! {
                "destination": match &audit.destination {
                    AuditDestination::File(_) => "file",
                    AuditDestination::Console => "console",
                },
                "path": match &audit.destination {
                    AuditDestination::File(path) => path_string(path),
                    AuditDestination::Console => Bson::Null,
                },
                "format": "JSON",
                "filter": optional(audit.filter.clone().map(Bson::Document)),
            }),
        };
        let parameters = self.parameters_document();
        doc! {
            "net": net,
            "storage": storage,
            "systemLog": system_log,
            "operationProfiling": {
                "mode": match self.profiling.level { 0 => "off", 1 => "slowOp", _ => "all" },
                "slowOpThresholdMs": self.profiling.slow_ms,
                "slowOpSampleRate": self.profiling.sample_rate,
            },
            "security": security,
            "auditLog": audit_log,
            "setParameter": parameters,
            "replication": match (&self.repl_set, self.oplog_size_mb) {
                (Some(name), Some(mb)) => doc! { "replSetName": name, "oplogSizeMB": i64::try_from(mb).unwrap_or(i64::MAX) },
                (Some(name), None) => doc! { "replSetName": name },
                (None, _) => Document::new(),
            },
            "tracing": self.tracing.as_ref().map_or_else(Document::new, |tracing| doc! {
                "otlpEndpoint": &tracing.endpoint,
                "samplingRatio": tracing.sampling_ratio,
            }),
            "warnings": self.warnings.clone(),
        }
    }

    /// The options as mongod's `getCmdLineOpts` reports them under `parsed`.
    pub fn parsed(&self) -> Document {
        let mut net = doc! {
            "bindIp": self.bind_ip.join(","),
            "port": i32::from(self.port),
            "maxIncomingConnections": i64::try_from(self.max_conns).unwrap_or(i64::MAX),
            "compression": { "compressors": compressor_list(&self.compressors) },
            "tls": { "mode": self.tls.mode.name() },
        };
        if let Ok(tls) = net.get_document_mut("tls") {
            if let Some(path) = &self.tls.certificate_key_file {
                tls.insert("certificateKeyFile", path_string(path));
            }
            if let Some(path) = &self.tls.ca_file {
                tls.insert("CAFile", path_string(path));
            }
        }
        let mut system_log = doc! { "quiet": self.log.quiet, "verbosity": i32::from(self.log.verbosity) };
        if !self.log.components.is_empty() {
            system_log.insert("component", self.log.components.clone());
        }
        if let Some(path) = &self.log.path {
            system_log.insert("destination", "file");
            system_log.insert("path", path_string(path));
            system_log.insert("logAppend", self.log.append);
        }
        let mut storage = doc! { "dbPath": path_string(&self.dbpath) };
        if self.postgres.is_some() {
            storage.insert("engine", "postgres");
        }
        if let Some(gb) = self.cache_size.configured_gb {
            storage.insert("wiredTiger", doc! { "engineConfig": { "cacheSizeGB": gb } });
        }
        let mut parsed = doc! { "net": net };
        if self.auth {
            parsed.insert("security", doc! { "authorization": "enabled" });
        }
        if let Some(name) = &self.repl_set {
            let mut replication = doc! { "replSet": name };
            if let Some(mb) = self.oplog_size_mb {
                replication.insert("oplogSizeMB", i64::try_from(mb).unwrap_or(i64::MAX));
            }
            parsed.insert("replication", replication);
        }
        parsed.insert("storage", storage);
        if let Some(backup) = &self.backup_schedule {
            let mut section = doc! { "schedule": &backup.schedule_text, "path": backup.path.to_string() };
            if let Some(retention) = &backup.retention_text {
                section.insert("retention", retention);
            }
            if let Some(interval) = &backup.oplog_interval_text {
                section.insert("oplogInterval", interval);
            }
            parsed.insert("backup", section);
        }
        if self.backup_key.is_some() {
            // Whether backups are encrypted, never the key or its file's contents.
            let backup = parsed.entry("backup".to_owned()).or_insert_with(|| Bson::Document(Document::new()));
            if let Bson::Document(backup) = backup {
                backup.insert("encrypted", true);
            }
        }
        if let Some(tracing) = &self.tracing {
            parsed
                .insert("tracing", doc! { "otlpEndpoint": &tracing.endpoint, "samplingRatio": tracing.sampling_ratio });
        }
        parsed.extend(doc! { "systemLog": system_log, "setParameter": self.parameters_document() });
        parsed
    }

    /// The `--setParameter` values, as mongod reports them (strings).
    fn parameters_document(&self) -> Document {
        let flag = |on: bool| if on { "1" } else { "0" };
        doc! {
            "enableTestCommands": flag(self.parameters.enable_test_commands),
            "cursorTimeoutMillis": self.parameters.cursor_timeout_millis.to_string(),
            "ttlMonitorSleepSecs": self.parameters.ttl_monitor_sleep_secs.to_string(),
            "internalQueryMaxBlockingSortMemoryUsageBytes": self.parameters.max_blocking_sort_bytes.to_string(),
            "allowDiskUseByDefault": flag(self.parameters.allow_disk_use_by_default),
            "monarchObservability": flag(self.parameters.observability),
            "scramIterationCount": self.parameters.scram_iteration_count.to_string(),
            "scramSHA256IterationCount": self.parameters.scram_sha256_iteration_count.to_string(),
            "transactionLifetimeLimitSeconds": self.parameters.transaction_lifetime_secs.to_string(),
            "minSnapshotHistoryWindowInSeconds": self.parameters.snapshot_history_window_secs.to_string(),
            "maxTransactionLockRequestTimeoutMillis": self.parameters.transaction_lock_timeout_ms.to_string(),
            "periodicNoopIntervalSecs": self.parameters.periodic_noop_interval_secs.to_string(),
            "logicalSessionRefreshMillis": self.parameters.session_refresh_millis.to_string(),
            "userCacheInvalidationIntervalSecs": self.parameters.user_cache_invalidation_secs.to_string(),
            "monarchMinAvailableDiskSpaceMB": self.parameters.min_available_disk_space_mb.to_string(),
            "monarchTLSHandshakeTimeoutMillis": self.parameters.tls_handshake_timeout_millis.to_string(),
        }
    }
}

/// `--otlpEndpoint` and `--otlpSamplingRatio`: a ratio without an endpoint is refused (it
/// would be ignored); a URL without a path gets OTLP's traces path, as the collector's
/// address alone means (`OTEL_EXPORTER_OTLP_ENDPOINT`'s rule).
fn tracing_config(endpoint: Option<String>, ratio: Option<f64>) -> Result<Option<TracingConfig>, ConfigError> {
    let Some(endpoint) = endpoint else {
        return match ratio {
            Some(_) => Err(ConfigError::invalid(
                "tracing.samplingRatio",
                "needs tracing.otlpEndpoint: without a collector no operation is traced",
            )),
            None => Ok(None),
        };
    };
    let sampling_ratio = ratio.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&sampling_ratio) {
        return Err(ConfigError::invalid("tracing.samplingRatio", format!("{sampling_ratio} is outside 0.0..=1.0")));
    }
    let after_scheme = endpoint.strip_prefix("http://").or_else(|| endpoint.strip_prefix("https://"));
    let Some((host, path)) = after_scheme.map(|rest| rest.split_once('/').unwrap_or((rest, ""))) else {
        return Err(ConfigError::invalid(
            "tracing.otlpEndpoint",
            format!("'{endpoint}' is not an http:// or https:// URL"),
        ));
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(ConfigError::invalid("tracing.otlpEndpoint", format!("'{endpoint}' has no valid host")));
    }
    let endpoint = if path.is_empty() { format!("{}/v1/traces", endpoint.trim_end_matches('/')) } else { endpoint };
    Ok(Some(TracingConfig { endpoint, sampling_ratio }))
}

/// The scheduled backups' settings: all three or none, a schedule and a retention that parse,
/// and a path outside the data directory (the engine owns every file there).
fn backup_schedule(
    schedule: Option<String>,
    path: Option<PathBuf>,
    retention: Option<String>,
    oplog_interval: Option<String>,
    dbpath: &Path,
) -> Result<Option<ScheduleConfig>, ConfigError> {
    let Some(schedule_text) = schedule else {
        // An option that would be ignored is refused: the operator believes backups happen.
        if path.is_some() || retention.is_some() || oplog_interval.is_some() {
            return Err(ConfigError::invalid(
                "backup.schedule",
                "required with backup.path, backup.retention and backup.oplogInterval",
            ));
        }
        return Ok(None);
    };
    let schedule = BackupSchedule::parse(&schedule_text).map_err(|e| ConfigError::invalid("backup.schedule", e))?;
    let path = path.ok_or_else(|| ConfigError::invalid("backup.path", "required with backup.schedule"))?;
    let path = BackupPath::parse(&path).map_err(|e| ConfigError::invalid("backup.path", e))?;
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    if let BackupPath::Local(dir) = &path
        && (absolute(dir).starts_with(absolute(dbpath)) || crate::backup::target::is_within(dir, dbpath))
    {
        return Err(ConfigError::invalid("backup.path", "must be outside the data directory (storage.dbPath)"));
    }
    let retention_text = retention;
    let retention = retention_text
        .as_deref()
        .map(Retention::parse)
        .transpose()
        .map_err(|e| ConfigError::invalid("backup.retention", e))?;
    let oplog_interval_text = oplog_interval;
    let oplog_interval = match &oplog_interval_text {
        Some(text) => parse_oplog_interval(text).map_err(|e| ConfigError::invalid("backup.oplogInterval", e))?,
        None => DEFAULT_OPLOG_INTERVAL,
    };
    Ok(Some(ScheduleConfig {
        path,
        schedule,
        schedule_text,
        retention,
        retention_text,
        oplog_interval,
        oplog_interval_text,
    }))
}

/// The set name of `--replSet`: what precedes a `/` (mongod's legacy `NAME/seed1,seed2` form,
/// whose seeds it ignores), not empty.
fn repl_set_name(given: &str) -> Result<String, ConfigError> {
    let name = given.split_once('/').map_or(given, |(name, _)| name);
    if name.is_empty() {
        return Err(ConfigError::invalid("replication.replSetName", "the replica set name must not be empty"));
    }
    Ok(name.to_owned())
}

/// One command-line flag as `monarchd --help` describes it (the configuration reference in
/// `docs/reference/configuration.md` is generated from these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagDoc {
    /// The long name, without the dashes.
    pub long: String,
    /// The environment variable that sets it, if any.
    pub env: Option<String>,
    /// The help text (the flag's doc comment).
    pub help: String,
    /// Whether it takes a value (`--port 27017`) rather than being a switch.
    pub takes_value: bool,
}

/// Every documented flag, in `--help` order; the hidden ones are mongod's that have no meaning
/// here (accepted with a warning) and are listed apart by [`ignored_mongod_options`].
pub fn flag_docs() -> Vec<FlagDoc> {
    use clap::CommandFactory;
    Flags::command()
        .get_arguments()
        .filter(|arg| !arg.is_hide_set())
        .filter_map(|arg| {
            Some(FlagDoc {
                long: arg.get_long()?.to_owned(),
                env: arg.get_env().map(|v| v.to_string_lossy().into_owned()),
                help: arg.get_long_help().or(arg.get_help()).map(ToString::to_string).unwrap_or_default(),
                takes_value: arg.get_action().takes_values() && arg.get_num_args().is_none_or(|n| n.min_values() > 0),
            })
        })
        .collect()
}

/// mongod's options accepted with a startup warning because they mean nothing here.
pub fn ignored_mongod_options() -> impl Iterator<Item = &'static str> {
    IGNORED_FLAGS.iter().chain(IGNORED_SWITCHES).copied()
}

/// The audit settings from mongod Enterprise's options: `file` (with a path) or `console`, JSON
/// only, and a filter in JSON.
fn audit_config(
    destination: Option<String>,
    path: Option<PathBuf>,
    format: Option<String>,
    filter: Option<String>,
) -> Result<Option<AuditConfig>, ConfigError> {
    let destination = match (destination.as_deref(), path) {
        (None, None) if filter.is_none() && format.is_none() => return Ok(None),
        (None, _) => {
            return Err(ConfigError::invalid("auditLog.destination", "required with the other auditLog options"));
        }
        (Some("file"), Some(path)) => AuditDestination::File(path),
        (Some("file"), None) => return Err(ConfigError::invalid("auditLog.path", "required with destination file")),
        (Some("console"), _) => AuditDestination::Console,
        (Some(other), _) => {
            return Err(ConfigError::invalid("auditLog.destination", format!("'{other}' is not one of file, console")));
        }
    };
    if let Some(format) = format.filter(|f| f != "JSON") {
        return Err(ConfigError::invalid("auditLog.format", format!("'{format}' is not supported; only JSON is")));
    }
    let filter = filter
        .map(|text| {
            let json: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| ConfigError::invalid("auditLog.filter", format!("not JSON: {e}")))?;
            match Bson::try_from(json) {
                Ok(Bson::Document(d)) => Ok(d),
                _ => Err(ConfigError::invalid("auditLog.filter", "must be a JSON object")),
            }
        })
        .transpose()?;
    Ok(Some(AuditConfig { destination, filter }))
}

/// The admin server's addresses: the loopback address, then those `named` (a wildcard
/// address alone, since it covers the loopback one and both cannot share a port).
fn admin_addresses(named: Option<&str>) -> Vec<String> {
    let named: Vec<String> =
        named.unwrap_or("").split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    if let Some(wildcard) = named.iter().find(|a| *a == "0.0.0.0" || *a == "::") {
        return vec![wildcard.clone()];
    }
    let mut out = vec!["127.0.0.1".to_owned()];
    for address in named {
        if !out.contains(&address) {
            out.push(address);
        }
    }
    out
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    toml::from_str(&text).map_err(|e| ConfigError::File { path: path.to_owned(), message: e.to_string() })
}

/// mongod's checks of a key file: readable, 6 to 1024 base64 characters (whitespace aside).
fn check_key_file(path: &Path) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    let key: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if !(6..=1024).contains(&key.len()) {
        return Err(ConfigError::invalid(
            "security.keyFile",
            format!("{}: the key must be 6 to 1024 characters long, not {}", path.display(), key.len()),
        ));
    }
    if !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=') {
        return Err(ConfigError::invalid("security.keyFile", format!("{}: invalid char in key file", path.display())));
    }
    Ok(())
}

fn ignored_option_warnings(flags: &Flags) -> Vec<String> {
    let valued = [
        &flags.wired_tiger_journal_compressor,
        &flags.wired_tiger_collection_block_compressor,
        &flags.wired_tiger_index_prefix_compression,
        &flags.syncdelay,
        &flags.unix_socket_prefix,
        &flags.file_permissions,
    ];
    let switches =
        [flags.journal, flags.nojournal, flags.nounixsocket, flags.directoryperdb, flags.ipv6, flags.noprealloc];
    let given = IGNORED_FLAGS
        .iter()
        .zip(valued)
        .filter(|(_, value)| value.is_some())
        .map(|(name, _)| name)
        .chain(IGNORED_SWITCHES.iter().zip(switches).filter(|(_, on)| *on).map(|(name, _)| name));
    given.map(|name| format!("Option --{name} has no meaning in Monarch and is ignored")).collect()
}

fn parse_compressors(list: &str) -> Result<Vec<Compressor>, ConfigError> {
    if list == "disabled" {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let compressor = Compressor::from_name(name).ok_or_else(|| {
            ConfigError::invalid("net.compression.compressors", format!("unknown compressor '{name}'"))
        })?;
        if !out.contains(&compressor) {
            out.push(compressor);
        }
    }
    Ok(out)
}

/// A boolean server parameter: `1`, `0`, `true` or `false`.
fn parameter_bool(name: &str, value: &str) -> Result<bool, ConfigError> {
    match value {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(ConfigError::invalid(
            &format!("setParameter.{name}"),
            format!("'{value}' is not a boolean (1, 0, true or false)"),
        )),
    }
}

/// A positive integer server parameter, counted in `unit`.
fn parameter_positive(name: &str, value: &str, unit: &str) -> Result<u64, ConfigError> {
    value.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
        ConfigError::invalid(&format!("setParameter.{name}"), format!("'{value}' is not a positive number of {unit}"))
    })
}

/// A `--setParameter` value that must be a whole number of seconds within `range`.
fn parameter_seconds_within(name: &str, value: &str, range: std::ops::RangeInclusive<u64>) -> Result<u64, ConfigError> {
    value.parse().ok().filter(|n| range.contains(n)).ok_or_else(|| {
        ConfigError::invalid(
            &format!("setParameter.{name}"),
            format!("'{value}' is not a number of seconds from {} to {}", range.start(), range.end()),
        )
    })
}

/// mongod's floor for SCRAM iteration counts.
pub const MIN_SCRAM_ITERATIONS: u64 = 5000;

fn parameter_iterations(name: &str, value: &str) -> Result<u64, ConfigError> {
    value.parse().ok().filter(|&n| n >= MIN_SCRAM_ITERATIONS).ok_or_else(|| {
        ConfigError::invalid(
            &format!("setParameter.{name}"),
            format!("'{value}' is not a number of at least {MIN_SCRAM_ITERATIONS}"),
        )
    })
}

fn parse_parameters(values: &BTreeMap<String, String>) -> Result<Parameters, ConfigError> {
    let mut parameters = Parameters::default();
    for (name, value) in values {
        match name.as_str() {
            "enableTestCommands" => parameters.enable_test_commands = parameter_bool(name, value)?,
            "monarchObservability" => parameters.observability = parameter_bool(name, value)?,
            "cursorTimeoutMillis" => {
                parameters.cursor_timeout_millis = parameter_positive(name, value, "milliseconds")?
            }
            "allowDiskUseByDefault" => parameters.allow_disk_use_by_default = parameter_bool(name, value)?,
            "internalQueryMaxBlockingSortMemoryUsageBytes" => {
                parameters.max_blocking_sort_bytes = parameter_positive(name, value, "bytes")?
            }
            "ttlMonitorSleepSecs" => parameters.ttl_monitor_sleep_secs = parameter_positive(name, value, "seconds")?,
            "scramIterationCount" => parameters.scram_iteration_count = parameter_iterations(name, value)?,
            "scramSHA256IterationCount" => parameters.scram_sha256_iteration_count = parameter_iterations(name, value)?,
            "transactionLifetimeLimitSeconds" => {
                parameters.transaction_lifetime_secs = parameter_positive(name, value, "seconds")?
            }
            "logicalSessionRefreshMillis" => {
                parameters.session_refresh_millis = parameter_positive(name, value, "milliseconds")?
            }
            "userCacheInvalidationIntervalSecs" => {
                parameters.user_cache_invalidation_secs = parameter_seconds_within(name, value, 1..=86_400)?
            }
            "monarchTLSHandshakeTimeoutMillis" => {
                parameters.tls_handshake_timeout_millis = parameter_positive(name, value, "milliseconds")?
            }
            "periodicNoopIntervalSecs" => {
                parameters.periodic_noop_interval_secs = parameter_seconds_within(name, value, 1..=10)?
            }
            "maxTransactionLockRequestTimeoutMillis" => {
                parameters.transaction_lock_timeout_ms = value.parse().map_err(|_| {
                    ConfigError::invalid(
                        &format!("setParameter.{name}"),
                        format!("'{value}' is not a number of milliseconds"),
                    )
                })?
            }
            "monarchMinAvailableDiskSpaceMB" => {
                parameters.min_available_disk_space_mb = value.parse().map_err(|_| {
                    ConfigError::invalid(
                        &format!("setParameter.{name}"),
                        format!("'{value}' is not a number of mebibytes"),
                    )
                })?
            }
            "minSnapshotHistoryWindowInSeconds" => {
                parameters.snapshot_history_window_secs = value.parse().map_err(|_| {
                    ConfigError::invalid(
                        &format!("setParameter.{name}"),
                        format!("'{value}' is not a number of seconds"),
                    )
                })?
            }
            _ => {
                return Err(ConfigError::invalid(
                    &format!("setParameter.{name}"),
                    "unknown server parameter".to_owned(),
                ));
            }
        }
    }
    Ok(parameters)
}

/// `security.contact` and `security.policy`: URIs RFC 9116 allows (web addresses over https).
fn security_txt(contact: Option<String>, policy: Option<String>) -> Result<(Vec<String>, Option<String>), ConfigError> {
    let contacts: Vec<String> = contact
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    for contact in &contacts {
        if !["mailto:", "https://", "tel:"].iter().any(|scheme| contact.starts_with(scheme))
            || contact.contains(char::is_whitespace)
        {
            return Err(ConfigError::invalid(
                "security.contact",
                format!("'{contact}' is not a mailto:, https:// or tel: URI"),
            ));
        }
    }
    if let Some(policy) = &policy
        && (!policy.starts_with("https://") || policy.contains(char::is_whitespace))
    {
        return Err(ConfigError::invalid("security.policy", format!("'{policy}' is not an https:// address")));
    }
    Ok((contacts, policy))
}

/// `systemLog.component` as a `logComponentVerbosity` document: every level checked as
/// `setParameter` checks it (known component names, numbers).
fn component_verbosity(table: Option<toml::Table>) -> Result<Document, ConfigError> {
    const KEY: &str = "systemLog.component";
    fn convert(table: toml::Table) -> Result<Document, ConfigError> {
        let mut doc = Document::new();
        for (name, value) in table {
            let value = match value {
                toml::Value::Integer(level) => Bson::Int64(level),
                toml::Value::Table(inner) => Bson::Document(convert(inner)?),
                other => {
                    return Err(ConfigError::invalid(
                        KEY,
                        format!("{name} = {} is neither a level nor a table", toml_scalar(&other)),
                    ));
                }
            };
            doc.insert(name, value);
        }
        Ok(doc)
    }
    let Some(table) = table else { return Ok(Document::new()) };
    if table.contains_key("verbosity") {
        return Err(ConfigError::invalid(KEY, "the default level is systemLog.verbosity"));
    }
    let doc = convert(table)?;
    crate::log::check_component_verbosity(&doc).map_err(|message| ConfigError::invalid(KEY, message))?;
    Ok(doc)
}

fn toml_scalar(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Float(n) => n.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}

/// Compressor names as a comma-separated list (mongod's spelling of the option).
pub fn compressor_list(compressors: &[Compressor]) -> String {
    if compressors.is_empty() {
        return "disabled".to_owned();
    }
    compressors.iter().map(|c| c.name()).collect::<Vec<_>>().join(",")
}

fn path_string(path: &Path) -> Bson {
    Bson::String(path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Result<Config, ConfigError> {
        Config::from_args(std::iter::once("monarchd").chain(args.iter().copied()))
    }

    #[test]
    fn config_defaults_match_mongod() -> Result<(), ConfigError> {
        let c = config(&[])?;
        assert_eq!(c.port, 27017);
        assert_eq!(c.bind_ip, vec!["127.0.0.1"]);
        assert_eq!(c.max_conns, 1_000_000);
        assert_eq!(c.dbpath, PathBuf::from("./data"));
        assert_eq!(c.compressors, vec![Compressor::Snappy, Compressor::Zstd, Compressor::Zlib]);
        assert_eq!(c.tls.mode, TlsMode::Disabled);
        Ok(())
    }

    #[test]
    fn config_flags_beat_file() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("monarch.toml");
        std::fs::write(&path, "[net]\nport = 1234\nbindIp = \"0.0.0.0\"\n[storage]\ndbPath = \"/x\"\n")?;
        let c = config(&["--config", path.to_str().unwrap_or_default(), "--port", "4321"])?;
        assert_eq!(c.port, 4321);
        assert_eq!(c.bind_ip, vec!["0.0.0.0"]);
        assert_eq!(c.dbpath, PathBuf::from("/x"));
        Ok(())
    }

    #[test]
    fn config_tracing_needs_an_endpoint_and_completes_a_bare_one() -> Result<(), Box<dyn std::error::Error>> {
        assert_eq!(config(&[])?.tracing, None);
        let bare = config(&["--otlpEndpoint", "http://collector:4318/"])?.tracing.ok_or("no tracing")?;
        assert_eq!(bare, TracingConfig { endpoint: "http://collector:4318/v1/traces".into(), sampling_ratio: 1.0 });
        let full = config(&["--otlpEndpoint", "https://otel.example/api/traces", "--otlpSamplingRatio", "0.01"])?;
        assert_eq!(
            full.tracing,
            Some(TracingConfig { endpoint: "https://otel.example/api/traces".into(), sampling_ratio: 0.01 })
        );
        assert_eq!(
            full.parsed().get_document("tracing")?,
            &doc! { "otlpEndpoint": "https://otel.example/api/traces", "samplingRatio": 0.01 }
        );
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("monarch.toml");
        std::fs::write(&path, "[tracing]\notlpEndpoint = \"http://c:4318\"\nsamplingRatio = 0.5\n")?;
        let from_file = config(&["--config", path.to_str().unwrap_or_default()])?.tracing.ok_or("no tracing")?;
        assert_eq!(from_file, TracingConfig { endpoint: "http://c:4318/v1/traces".into(), sampling_ratio: 0.5 });
        for (args, message) in [
            (&["--otlpSamplingRatio", "0.5"][..], "tracing.samplingRatio"),
            (&["--otlpEndpoint", "http://c:4318", "--otlpSamplingRatio", "1.5"], "tracing.samplingRatio"),
            (&["--otlpEndpoint", "http://c:4318", "--otlpSamplingRatio", "NaN"], "tracing.samplingRatio"),
            (&["--otlpEndpoint", "collector:4318"], "tracing.otlpEndpoint"),
            (&["--otlpEndpoint", "grpc://c:4317"], "tracing.otlpEndpoint"),
            (&["--otlpEndpoint", "http:///v1/traces"], "tracing.otlpEndpoint"),
        ] {
            let err = config(args).err().ok_or("accepted")?;
            assert!(err.to_string().contains(message), "{args:?}: {err}");
        }
        Ok(())
    }

    #[test]
    fn config_backup_schedule_needs_its_path_and_stays_out_of_the_data() -> Result<(), Box<dyn std::error::Error>> {
        let c =
            config(&["--dbpath", "/d", "--backupSchedule", "6h", "--backupPath", "/b", "--backupRetention", "7,14d"])?;
        let backup = c.backup_schedule.as_ref().ok_or("no schedule")?;
        assert_eq!(backup.schedule, BackupSchedule::Every(std::time::Duration::from_secs(6 * 3600)));
        assert_eq!(backup.retention.and_then(|r| r.count), Some(7));
        assert_eq!(c.parsed().get_document("backup")?, &doc! { "schedule": "6h", "path": "/b", "retention": "7,14d" });
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("monarch.toml");
        std::fs::write(&path, "[backup]\nschedule = \"30 3 * * *\"\npath = \"/b\"\n")?;
        let from_file = config(&["--config", path.to_str().unwrap_or_default()])?;
        assert!(matches!(from_file.backup_schedule.map(|b| b.schedule), Some(BackupSchedule::Cron(_))));
        for (args, key) in [
            (&["--backupPath", "/b"][..], "backup.schedule"),
            (&["--backupRetention", "3"], "backup.schedule"),
            (&["--backupSchedule", "6h"], "backup.path"),
            (&["--backupSchedule", "every day", "--backupPath", "/b"], "backup.schedule"),
            (&["--backupSchedule", "6h", "--backupPath", "/b", "--backupRetention", "0"], "backup.retention"),
            (&["--dbpath", "/d", "--backupSchedule", "6h", "--backupPath", "/d/backups"], "backup.path"),
        ] {
            let err = config(args).err().ok_or("accepted")?;
            assert!(err.to_string().contains(key), "{args:?}: {err}");
        }
        let short_key = dir.path().join("short-key");
        std::fs::write(&short_key, "c2hvcnQ=\n")?;
        let err =
            config(&["--backupEncryptionKeyFile", short_key.to_str().unwrap_or_default()]).err().ok_or("accepted")?;
        assert!(
            err.to_string().contains("backup.encryptionKeyFile") && err.to_string().contains("no 256-bit key"),
            "{err}"
        );
        let key = dir.path().join("key");
        std::fs::write(&key, [9u8; 32])?;
        let encrypted = config(&["--backupEncryptionKeyFile", key.to_str().unwrap_or_default()])?;
        assert!(encrypted.backup_key.is_some());
        assert_eq!(encrypted.parsed().get_document("backup")?, &doc! { "encrypted": true });
        Ok(())
    }

    #[test]
    fn config_file_unknown_key_is_named() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("monarch.toml");
        std::fs::write(&path, "[net]\nprot = 1234\n")?;
        let err = config(&["--config", path.to_str().unwrap_or_default()]).err().ok_or("accepted")?;
        assert!(err.to_string().contains("prot"), "{err}");
        Ok(())
    }

    #[test]
    fn config_log_components_are_checked_as_set_parameter_checks_them() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("monarch.toml");
        let with = |text: &str| -> Result<Result<Config, ConfigError>, std::io::Error> {
            std::fs::write(&path, text)?;
            Ok(config(&["--config", path.to_str().unwrap_or_default()]))
        };
        let c = with("[systemLog.component.storage]\nverbosity = 1\njournal = 2\n[systemLog.component]\nquery = 3\n")??;
        assert_eq!(c.log.components, doc! { "query": 3_i64, "storage": { "journal": 2_i64, "verbosity": 1_i64 } });
        let unknown = with("[systemLog.component.storag]\nverbosity = 1\n")?.err().ok_or("accepted")?;
        assert_eq!(unknown.to_string(), "invalid value for systemLog.component: Invalid component name default.storag");
        let text = with("[systemLog.component]\nquery = \"loud\"\n")?.err().ok_or("accepted")?;
        assert_eq!(
            text.to_string(),
            "invalid value for systemLog.component: query = loud is neither a level nor a table"
        );
        let default = with("[systemLog.component]\nverbosity = 2\n")?.err().ok_or("accepted")?;
        assert!(default.to_string().contains("systemLog.verbosity"), "{default}");
        Ok(())
    }

    #[test]
    fn config_ignored_mongod_flags_warn() -> Result<(), ConfigError> {
        let c = config(&["--wiredTigerJournalCompressor", "zstd", "--bind_ip_all", "--nounixsocket"])?;
        assert_eq!(c.bind_ip, vec!["0.0.0.0"]);
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        assert!(c.warnings.iter().any(|w| w.contains("wiredTigerJournalCompressor")));
        Ok(())
    }

    #[test]
    fn config_storage_engine_is_fjall_and_an_unknown_one_is_refused() -> Result<(), ConfigError> {
        assert!(config(&["--storageEngine", "fjall"])?.warnings.is_empty());
        let mongod = config(&["--storageEngine", "wiredTiger"])?;
        assert_eq!(mongod.warnings, ["--storageEngine wiredTiger: Monarch stores data with fjall"]);
        let unknown = config(&["--storageEngine", "inMemory"]).err().map(|e| e.to_string());
        assert_eq!(
            unknown.as_deref(),
            Some("invalid value for storage.engine: Cannot start server with an unknown storage engine: inMemory")
        );
        Ok(())
    }

    #[test]
    fn config_shared_nodes_are_for_postgres_without_a_replica_set() -> Result<(), Box<dyn std::error::Error>> {
        let uri = "postgresql://monarch@db/app";
        let shared = config(&["--storageEngine", "postgres", "--pgUri", uri, "--pgSharedNodes"])?;
        assert!(shared.pg_shared_nodes);
        let postgres = shared.effective().get_document("storage")?.get_document("postgres")?.clone();
        assert!(postgres.get_bool("sharedNodes")?);
        assert!(!config(&["--storageEngine", "postgres", "--pgUri", uri])?.pg_shared_nodes);
        let refused = |args: &[&str]| config(args).err().map(|e| e.to_string());
        assert_eq!(
            refused(&["--pgSharedNodes"]).as_deref(),
            Some(
                "invalid value for storage.postgres.sharedNodes: is for storage.engine postgres only: the embedded engine's data belongs to one node"
            )
        );
        assert_eq!(
            refused(&["--storageEngine", "postgres", "--pgUri", uri, "--pgSharedNodes", "--replSet", "rs0"]).as_deref(),
            Some(
                "invalid value for storage.postgres.sharedNodes: shared nodes answer as mongos and have no replica set: remove --replSet (the database's own replication, Patroni's, keeps the data available)"
            )
        );
        Ok(())
    }

    #[test]
    fn config_postgres_engine_takes_its_uri_and_password_file_and_refuses_embedded_options()
    -> Result<(), Box<dyn std::error::Error>> {
        let uri = "postgresql://monarch:inline@db1:5433,db2/app?target_session_attrs=read-write";
        let c = config(&["--storageEngine", "postgres", "--pgUri", uri])?;
        let pg = c.postgres.as_ref().ok_or("postgres")?.config();
        assert_eq!((pg.get_dbname(), pg.get_user(), pg.get_hosts().len()), (Some("app"), Some("monarch"), 2));
        assert_eq!(pg.get_target_session_attrs(), postgres::config::TargetSessionAttrs::ReadWrite);
        let shown = c.effective();
        let storage = shown.get_document("storage")?;
        assert_eq!(storage.get_str("engine")?, "postgres");
        assert_eq!(
            storage.get_document("postgres")?,
            &doc! {
                "hosts": ["db1:5433", "db2:5432"], "dbname": "app", "user": "monarch", "password": "********",
                "sslmode": "prefer", "sharedNodes": false,
            }
        );
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("pg-password");
        std::fs::write(&file, "from-file\n")?;
        let c =
            config(&["--storageEngine", "postgres", "--pgUri", uri, "--pgPasswordFile", file.to_str().ok_or("path")?])?;
        assert_eq!(c.postgres.as_ref().and_then(|pg| pg.config().get_password()), Some(&b"from-file"[..]));
        let refused = |args: &[&str]| config(args).err().map(|e| e.to_string());
        assert_eq!(
            refused(&["--storageEngine", "postgres"]).as_deref(),
            Some("invalid value for storage.postgres.uri: storage.engine postgres needs the database's URI (--pgUri)")
        );
        assert_eq!(
            refused(&["--pgUri", uri]).as_deref(),
            Some("invalid value for storage.postgres.uri: is for storage.engine postgres only")
        );
        assert_eq!(
            refused(&["--storageEngine", "postgres", "--pgUri", uri, "--cacheSizeGB", "1"]).as_deref(),
            Some(
                "invalid value for storage.wiredTiger.engineConfig.cacheSizeGB: sizes the embedded engine's memory; with storage.engine postgres, PostgreSQL's memory is configured in PostgreSQL"
            )
        );
        assert_eq!(
            refused(&["--storageEngine", "postgres", "--pgUri", uri, "--repair"]).as_deref(),
            Some(
                "invalid value for repair: repairs the embedded engine's files; a PostgreSQL database is checked and repaired with PostgreSQL's tools"
            )
        );
        assert_eq!(
            refused(&["--storageEngine", "postgres", "--pgUri", "postgresql://db/app?sslmode=bogus"]).as_deref(),
            Some(
                "invalid value for storage.postgres.uri: sslmode=bogus: not one of disable, prefer, require, verify-ca, verify-full"
            )
        );
        assert_eq!(
            refused(&[
                "--storageEngine",
                "postgres",
                "--pgUri",
                "postgresql://db/app?sslmode=verify-full&sslrootcert=/none"
            ])
            .as_deref(),
            Some(
                "invalid value for storage.postgres.uri: sslrootcert /none: I/O error: No such file or directory (os error 2)"
            )
        );
        Ok(())
    }

    #[test]
    fn config_cache_size_from_flag_alias_and_file() -> Result<(), Box<dyn std::error::Error>> {
        let c = config(&["--cacheSizeGB", "0.3"])?;
        // 0.3 GiB is 307.2 MiB; mongod keeps whole MiB.
        assert_eq!(c.cache_size, CacheSize { bytes: 307 * MIB, configured_gb: Some(0.3), memory_bytes: None });
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(config(&["--wiredTigerCacheSizeGB", "2"])?.cache_size.bytes, 2048 * MIB);
        assert_eq!(config(&["--cacheSizeGB", "10000"])?.cache_size.bytes, MAX_CACHE_MB * MIB);
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("monarch.toml");
        std::fs::write(&path, "[storage.wiredTiger.engineConfig]\ncacheSizeGB = 1\n")?;
        let file = path.to_str().unwrap_or_default();
        assert_eq!(config(&["--config", file])?.cache_size.bytes, 1024 * MIB);
        assert_eq!(config(&["--config", file, "--cacheSizeGB", "0.5"])?.cache_size.bytes, 512 * MIB);
        let parsed = config(&["--config", file])?.parsed();
        assert_eq!(
            parsed
                .get_document("storage")?
                .get_document("wiredTiger")?
                .get_document("engineConfig")?
                .get_f64("cacheSizeGB")?,
            1.0
        );
        Ok(())
    }

    #[test]
    fn config_cache_size_range_is_mongods() {
        for (value, text) in [
            ("0.2", "storage.wiredTiger.engineConfig.cacheSizeGB must be greater than or equal to 0.25"),
            ("-1", "storage.wiredTiger.engineConfig.cacheSizeGB must be greater than or equal to 0.25"),
            ("NaN", "storage.wiredTiger.engineConfig.cacheSizeGB must be greater than or equal to 0.25"),
            ("10000.5", "storage.wiredTiger.engineConfig.cacheSizeGB must be less than or equal to 10000"),
            ("inf", "storage.wiredTiger.engineConfig.cacheSizeGB must be less than or equal to 10000"),
        ] {
            match config(&["--cacheSizeGB", value]) {
                Err(error @ ConfigError::OutOfRange { .. }) => {
                    assert_eq!((error.to_string().as_str(), error.exit_code()), (text, 1), "{value}");
                }
                other => panic!("{value}: {other:?}"),
            }
        }
        match config(&["--cacheSizeGB", "lots"]) {
            Err(error @ ConfigError::Invalid { .. }) => {
                assert_eq!(
                    error.to_string(),
                    "invalid value for storage.wiredTiger.engineConfig.cacheSizeGB: 'lots' is not a number"
                );
                assert_eq!(error.exit_code(), 2);
            }
            other => panic!("lots: {other:?}"),
        }
    }

    #[test]
    fn config_cache_size_default_is_mongods_rule() {
        let gib = 1024 * MIB;
        // 50% of (RAM - 1 GiB) ...
        assert_eq!(CacheSize::default_for(Some(16 * gib)).bytes, 7680 * MIB);
        assert_eq!(CacheSize::default_for(Some(4 * gib)).bytes, 1536 * MIB);
        // ... at least 256 MiB, also when the memory is unknown ...
        assert_eq!(CacheSize::default_for(Some(gib + gib / 4)).bytes, 256 * MIB);
        assert_eq!(CacheSize::default_for(Some(512 * MIB)).bytes, 256 * MIB);
        assert_eq!(CacheSize::default_for(None).bytes, 256 * MIB);
        // ... in whole MiB.
        assert_eq!(CacheSize::default_for(Some(2 * gib + 3 * MIB + 12345)).bytes, 513 * MIB);
    }

    #[test]
    fn config_set_parameter_validated() -> Result<(), ConfigError> {
        assert!(config(&["--setParameter", "enableTestCommands=1"])?.parameters.enable_test_commands);
        assert!(config(&["--setParameter", "noSuchParameter=1"]).is_err());
        assert!(config(&["--setParameter", "enableTestCommands=maybe"]).is_err());
        Ok(())
    }

    #[test]
    fn config_tls_needs_certificate() {
        let err = config(&["--tlsMode", "requireTLS"]).err();
        assert!(matches!(err, Some(ConfigError::Invalid { ref key, .. }) if key == "net.tls.certificateKeyFile"));
        assert!(config(&["--tlsMode", "sometimes"]).is_err());
    }

    #[test]
    fn config_reads_the_official_images_root_user() -> Result<(), Box<dyn std::error::Error>> {
        fn env(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
            move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
        }
        let (user, password) = ("MONGO_INITDB_ROOT_USERNAME", "MONGO_INITDB_ROOT_PASSWORD");
        assert_eq!(RootUser::from_env(env(vec![]))?, None);
        let root = RootUser::from_env(env(vec![(user, "admin".into()), (password, "pw".into())]))?;
        assert_eq!(root.as_ref().map(|r| (r.name.as_str(), r.password.expose())), Some(("admin", "pw")));
        assert!(!format!("{root:?}").contains("\"pw\""));
        assert!(RootUser::from_env(env(vec![(user, "admin".into())])).is_err());
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("password");
        std::fs::write(&file, "from-file\n")?;
        let path = file.to_string_lossy().into_owned();
        let root =
            RootUser::from_env(env(vec![(user, "admin".into()), ("MONGO_INITDB_ROOT_PASSWORD_FILE", path.clone())]))?;
        assert_eq!(root.map(|r| r.password), Some(Secret("from-file".to_owned())));
        let both = vec![(user, "admin".into()), (password, "pw".into()), ("MONGO_INITDB_ROOT_PASSWORD_FILE", path)];
        assert!(RootUser::from_env(env(both)).is_err());
        Ok(())
    }

    #[test]
    fn config_admin_server_listens_on_loopback_unless_told() -> Result<(), ConfigError> {
        assert_eq!(config(&["--bind_ip_all"])?.admin_bind_ip, ["127.0.0.1"]);
        assert_eq!(config(&["--adminBindIp", "10.0.0.5, 127.0.0.1"])?.admin_bind_ip, ["127.0.0.1", "10.0.0.5"]);
        assert_eq!(config(&["--adminBindIp", "0.0.0.0"])?.admin_bind_ip, ["0.0.0.0"]);
        assert!(config(&[])?.admin_token.is_none());
        assert!(!config(&[])?.tls.admin);
        let no_certificate = config(&["--adminTls"]).map(|_| ()).map_err(|e| e.to_string());
        assert_eq!(
            no_certificate,
            Err("invalid value for net.adminTls: needs net.tls.certificateKeyFile, the certificate it serves"
                .to_owned())
        );
        assert!(config(&["--adminTls", "--tlsCertificateKeyFile", "/etc/monarch.pem"])?.tls.admin);
        Ok(())
    }

    #[test]
    fn config_key_file_is_checked_and_turns_authentication_on_as_with_mongod() -> Result<(), ConfigError> {
        let dir = tempfile::tempdir().map_err(|source| ConfigError::Read { path: "tmp".into(), source })?;
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).map(|()| path.to_string_lossy().into_owned())
        };
        let io = |source| ConfigError::Read { path: "keyfile".into(), source };
        let good = write("good", "c2VjcmV0LWtleS1mb3ItcnMw\n").map_err(io)?;
        let c = config(&["--keyFile", &good])?;
        assert!(c.auth);
        assert!(c.warnings.iter().any(|w| w.contains("has none; as with mongod, it turns access control on")));
        assert!(!config(&["--keyFile", &good, "--auth", "false"])?.auth);
        let short = write("short", "abc").map_err(io)?;
        let error = config(&["--keyFile", &short]).map(|_| ()).map_err(|e| e.to_string());
        assert_eq!(
            error,
            Err(format!(
                "invalid value for security.keyFile: {short}: the key must be 6 to 1024 characters long, not 3"
            ))
        );
        let bad = write("bad", "not*base64*key").map_err(io)?;
        assert!(config(&["--keyFile", &bad]).is_err());
        assert!(config(&["--keyFile", "/nonexistent/key"]).is_err());
        Ok(())
    }

    #[test]
    fn config_audit_log_takes_mongods_enterprise_options() -> Result<(), ConfigError> {
        assert_eq!(config(&[])?.audit, None);
        let audit =
            config(&["--auditDestination", "file", "--auditPath", "/tmp/a.json", "--auditFormat", "JSON"])?.audit;
        assert_eq!(audit.map(|a| a.destination), Some(AuditDestination::File("/tmp/a.json".into())));
        let filtered = config(&["--auditDestination", "console", "--auditFilter", r#"{"atype": "authenticate"}"#])?;
        assert_eq!(filtered.audit.and_then(|a| a.filter), Some(doc! { "atype": "authenticate" }));
        assert!(config(&["--auditDestination", "file"]).is_err());
        assert!(config(&["--auditDestination", "syslog"]).is_err());
        assert!(config(&["--auditDestination", "console", "--auditFormat", "BSON"]).is_err());
        assert!(config(&["--auditPath", "/tmp/a.json"]).is_err());
        Ok(())
    }

    #[test]
    fn config_env_example_lists_every_variable() {
        use clap::CommandFactory;
        let example = include_str!("../.env.example");
        let command = Flags::command();
        let variables: Vec<String> =
            command.get_arguments().filter_map(|a| a.get_env()).map(|v| v.to_string_lossy().into_owned()).collect();
        assert!(variables.len() > 10);
        for variable in variables {
            assert!(example.contains(&format!("{variable}=")), ".env.example lacks {variable}");
        }
    }

    #[test]
    fn config_compressors_parsed_in_order() -> Result<(), ConfigError> {
        assert_eq!(
            config(&["--networkMessageCompressors", "zlib,snappy"])?.compressors,
            vec![Compressor::Zlib, Compressor::Snappy]
        );
        assert!(config(&["--networkMessageCompressors", "disabled"])?.compressors.is_empty());
        assert!(config(&["--networkMessageCompressors", "lz4"]).is_err());
        Ok(())
    }
}
