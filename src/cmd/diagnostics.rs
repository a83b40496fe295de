//! Diagnostic and introspection commands: `ping`, `buildInfo`, `hostInfo`, `serverStatus`,
//! `getCmdLineOpts`, `getLog`, `whatsmyuri`, `connectionStatus`, `listCommands`.

use bson::{Bson, DateTime, Document, RawBsonRef, doc};
use monarch_wire::MAX_BSON_OBJECT_SIZE;

use super::{Access, COMMANDS, CommandRequest, RequestCtx};
use crate::error::{Error, ErrorCode, Result};
use crate::host;
use crate::state::counters::get;
use crate::version::{COMPATIBLE_VERSION, COMPATIBLE_VERSION_ARRAY, GIT_VERSION};

/// `ping`: the server is alive.
pub fn ping(_: &mut RequestCtx<'_>, _: &CommandRequest) -> Result<Document> {
    Ok(Document::new())
}

/// `buildInfo`: mongod's fields, plus `monarch` with our own version.
pub fn build_info(_: &mut RequestCtx<'_>, _: &CommandRequest) -> Result<Document> {
    Ok(doc! {
        "version": COMPATIBLE_VERSION,
        "gitVersion": GIT_VERSION,
        "modules": [],
        "allocator": "system",
        "javascriptEngine": "none",
        "sysInfo": "deprecated",
        "versionArray": COMPATIBLE_VERSION_ARRAY.to_vec(),
        "openssl": { "running": "disabled", "compiled": "disabled" },
        "buildEnvironment": {
            "distmod": "",
            "distarch": std::env::consts::ARCH,
            "target_arch": std::env::consts::ARCH,
            "target_os": std::env::consts::OS,
            "cc": "rustc",
        },
        "bits": 64,
        "debug": cfg!(debug_assertions),
        "maxBsonObjectSize": MAX_BSON_OBJECT_SIZE as i32,
        "storageEngines": ["monarch"],
        "monarch": { "version": env!("CARGO_PKG_VERSION") },
    })
}

/// `hostInfo`: the machine the server runs on.
pub fn host_info(_: &mut RequestCtx<'_>, _: &CommandRequest) -> Result<Document> {
    let memory_mb = host::memory_total_bytes().map_or(0, |b| (b / (1024 * 1024)) as i64);
    let limit_mb = host::memory_available_bytes().map_or(0, |b| (b / (1024 * 1024)) as i64);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as i32);
    Ok(doc! {
        "system": {
            "currentTime": DateTime::now(),
            "hostname": host::hostname(),
            "cpuAddrSize": 64,
            "memSizeMB": memory_mb,
            "memLimitMB": limit_mb,
            "numCores": cores,
            "numCoresAvailableToProcess": cores,
            "cpuArch": std::env::consts::ARCH,
            "numaEnabled": false,
        },
        "os": {
            "type": host::os_type(),
            "name": host::os_name(),
            "version": host::kernel_version(),
        },
        "extra": {
            "versionString": host::kernel_version(),
            "pageSize": 4096_i64,
        },
    })
}

/// `serverStatus`: live counters. `opLatencies: {histograms: true}` adds the latency
/// histograms, as mongod.
pub fn server_status(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let histograms = match req.get("opLatencies") {
        Some(RawBsonRef::Document(options)) => matches!(options.get("histograms"), Ok(Some(RawBsonRef::Boolean(true)))),
        _ => false,
    };
    let server = ctx.state;
    let stats = &server.counters;
    let uptime = server.started.elapsed();
    let connections = &stats.connections;
    let current = get(&connections.current);
    let mut commands = Document::new();
    for (spec, counter) in COMMANDS.iter().zip(&stats.commands) {
        commands.insert(spec.name, doc! { "failed": get(&counter.failed), "total": get(&counter.total) });
    }
    commands.insert("<UNKNOWN>", get(&stats.unknown_commands));
    let (resident, virtual_) = host::process_memory_mb();
    let mut reply = doc! {
        "host": format!("{}:{}", host::hostname(), server.port()),
        "version": COMPATIBLE_VERSION,
        // Tools tell mongod from mongos by this field; Monarch behaves as a mongod.
        "process": "mongod",
        "pid": i64::from(std::process::id()),
        "uptime": uptime.as_secs_f64().floor(),
        "uptimeMillis": i64::try_from(uptime.as_millis()).unwrap_or(i64::MAX),
        "uptimeEstimate": i64::try_from(uptime.as_secs()).unwrap_or(i64::MAX),
        "localTime": DateTime::now(),
        "asserts": { "regular": 0, "warning": 0, "msg": 0, "user": get(&stats.user_asserts), "rollovers": 0 },
        "connections": {
            "current": current,
            "available": i64::try_from(server.config.max_conns).unwrap_or(i64::MAX).saturating_sub(current),
            "totalCreated": get(&connections.total_created),
            "rejected": get(&connections.rejected),
            "active": get(&connections.active),
            "threaded": current,
            "exhaustIsMaster": 0_i64,
            "exhaustHello": 0_i64,
            "awaitingTopologyChanges": 0_i64,
        },
        "logicalSessionRecordCache": {
            "activeSessionsCount": i64::try_from(server.sessions.len()).unwrap_or(i64::MAX),
        },
        "mem": { "bits": 64, "resident": resident, "virtual": virtual_, "supported": resident > 0 },
        "network": stats.network.to_document(),
        "opcounters": stats.opcounters.to_document(),
        "opLatencies": ctx.observers.latency.server_document(histograms),
        "storageEngine": storage_engine(server),
        "wiredTiger": { "cache": cache_section(server) },
        "metrics": {
            "commands": commands,
            // mongod's monitor may split a pass into sub-passes; each of this one's is whole.
            "ttl": {
                "deletedDocuments": get(&stats.ttl_deleted),
                "passes": get(&stats.ttl_passes),
                "subPasses": get(&stats.ttl_passes),
            },
        },
        "monarchPool": pool_document(server),
    };
    if server.repl.set_name().is_some() {
        // As mongod's replica-set members: what `hello` says of the set.
        let mut repl = doc! { "topologyVersion": server.topology.version() };
        server.repl.describe(&mut repl, "isWritablePrimary");
        repl.insert("rbid", 1);
        reply.insert("repl", repl);
    }
    // Section switches, as mongod: `{serverStatus: 1, opcounters: 0}` leaves the section out;
    // the fields before the sections are always there.
    for element in req.body().iter().skip(1) {
        let Ok((key, value)) = element else { continue };
        let off = match value {
            RawBsonRef::Boolean(b) => !b,
            RawBsonRef::Int32(n) => n == 0,
            RawBsonRef::Int64(n) => n == 0,
            RawBsonRef::Double(n) => n == 0.0,
            _ => false,
        };
        let header = matches!(
            key.as_str(),
            "host" | "version" | "process" | "pid" | "uptime" | "uptimeMillis" | "uptimeEstimate" | "localTime"
        );
        if off && !header && !super::options::is_generic_argument(key.as_str()) {
            reply.remove(key.as_str());
        }
    }
    Ok(reply)
}

/// `serverStatus.monarchPool`: the blocking pool that runs every handler that may touch
/// storage (not a mongod section; its analogue is `queues.execution`).
fn pool_document(server: &crate::state::State) -> Document {
    let pool = server.pool.stats();
    let long = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    doc! {
        "workers": long(pool.workers),
        "busy": long(pool.busy),
        "queued": long(pool.queued),
        "queueCapacity": long(pool.capacity),
        "waiting": long(pool.waiting),
        "jobs": i64::try_from(pool.jobs).unwrap_or(i64::MAX),
        "queueFullWaits": i64::try_from(pool.queue_full).unwrap_or(i64::MAX),
    }
}

/// `serverStatus.storageEngine`: mongod's name fields plus the journal's state and syncs.
fn storage_engine(server: &crate::state::State) -> Document {
    let journal = server.storage.journal_stats();
    doc! {
        "name": "monarch",
        "supportsCommittedReads": true,
        "persistent": true,
        "readOnly": false,
        "writable": server.storage.is_writable(),
        "journalSyncs": i64::try_from(journal.syncs).unwrap_or(i64::MAX),
        "journalSyncMicros": i64::try_from(journal.sync_time.as_micros()).unwrap_or(i64::MAX),
    }
}

/// `serverStatus.wiredTiger.cache`: the three figures of mongod's that tools (mongostat,
/// exporters) read to show cache use, from the engine's memory budget: the block cache and
/// the write buffers together play the part of WiredTiger's cache, and the write buffers
/// (memtables not yet flushed) that of its dirty pages.
fn cache_section(server: &crate::state::State) -> Document {
    let usage = server.storage.memory_usage();
    let to_i64 = |bytes: u64| i64::try_from(bytes).unwrap_or(i64::MAX);
    doc! {
        "maximum bytes configured": to_i64(server.storage.memory_budget().total_bytes),
        "bytes currently in the cache": to_i64(usage.total_bytes()),
        "tracked dirty bytes in the cache": to_i64(usage.write_buffer_bytes),
    }
}

/// `getCmdLineOpts`: the command line and the options as parsed.
pub fn get_cmd_line_opts(ctx: &mut RequestCtx<'_>, _: &CommandRequest) -> Result<Document> {
    let config = &ctx.state.config;
    Ok(doc! { "argv": config.argv.clone(), "parsed": config.parsed() })
}

/// `getLog`: `*` lists the logs; `global` and `startupWarnings` return recent lines.
pub fn get_log(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let name = match req.command_value() {
        Some(RawBsonRef::String(name)) => name,
        Some(other) => {
            return Err(Error::new(
                ErrorCode::TypeMismatch,
                format!(
                    "Argument to getLog must be of type String; found {} of type {}",
                    display(other),
                    super::type_name(other.element_type())
                ),
            ));
        }
        None => return Err(Error::new(ErrorCode::FailedToParse, "getLog requires a log name")),
    };
    let log = match name {
        "*" => return Ok(doc! { "names": ["global", "startupWarnings"] }),
        "global" => ctx.state.log.global(),
        "startupWarnings" => ctx.state.log.startup_warnings(),
        other => return Err(Error::new(ErrorCode::OperationFailed, format!("No log named '{other}'"))),
    };
    Ok(doc! {
        "totalLinesWritten": i64::try_from(log.total_lines_written).unwrap_or(i64::MAX),
        "log": log.lines,
    })
}

/// `whatsmyuri`: the client's own address as the server sees it.
pub fn whats_my_uri(ctx: &mut RequestCtx<'_>, _: &CommandRequest) -> Result<Document> {
    Ok(doc! { "you": ctx.client.remote.to_string() })
}

/// `connectionStatus`: who is authenticated on this connection, with the roles they hold
/// (inherited ones included) and, with `showPrivileges`, what those grant.
pub fn connection_status(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let users: Vec<Bson> =
        ctx.client.auth.users.iter().map(|u| Bson::Document(doc! { "user": &u.name, "db": &u.db })).collect();
    let mut roles: Vec<Bson> = Vec::new();
    for (role, db) in ctx.client.auth.users.iter().flat_map(|u| u.all_roles.iter()) {
        let entry = Bson::Document(doc! { "role": role, "db": db });
        if !roles.contains(&entry) {
            roles.push(entry);
        }
    }
    let mut auth_info = doc! { "authenticatedUsers": users, "authenticatedUserRoles": roles };
    if req.bool_arg("showPrivileges")?.unwrap_or(false) {
        auth_info.insert("authenticatedUserPrivileges", ctx.client.auth.privileges.to_documents());
    }
    Ok(doc! { "authInfo": auth_info })
}

/// `listCommands`: the command table.
pub fn list_commands(ctx: &mut RequestCtx<'_>, _: &CommandRequest) -> Result<Document> {
    let test_commands = ctx.state.config.parameters.enable_test_commands;
    let mut commands = Document::new();
    for spec in COMMANDS.iter().filter(|spec| test_commands || !spec.test_only) {
        commands.insert(
            spec.name,
            doc! {
                "help": spec.help,
                "requiresAuth": !matches!(spec.access, Access::Anonymous),
                "secondaryOk": true,
                "adminOnly": matches!(spec.access, Access::Cluster(_)),
                "apiVersions": [],
                "deprecatedApiVersions": [],
            },
        );
    }
    Ok(doc! { "commands": commands })
}

fn display(value: RawBsonRef<'_>) -> String {
    Bson::try_from(value).map_or_else(|_| "?".to_owned(), |b| b.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::TestServer;

    #[test]
    fn unknown_command_is_59() {
        let reply = TestServer::new().run_command(doc! { "atlasVersion": 1, "$db": "admin" });
        assert_eq!(reply.get_i32("code").ok(), Some(59));
        assert_eq!(reply.get_str("errmsg").ok(), Some("no such command: 'atlasVersion'"));
    }

    #[test]
    fn get_log_star_and_unknown() {
        let shared = TestServer::new();
        let names = shared.run_command(doc! { "getLog": "*", "$db": "admin" });
        assert_eq!(names.get_array("names").map(Vec::len).ok(), Some(2));
        let unknown = shared.run_command(doc! { "getLog": "foo", "$db": "admin" });
        assert_eq!(unknown.get_str("errmsg").ok(), Some("No log named 'foo'"));
        let wrong = shared.run_command(doc! { "getLog": 5, "$db": "admin" });
        assert_eq!(wrong.get_str("codeName").ok(), Some("TypeMismatch"));
    }

    #[test]
    fn server_status_counts_commands() -> Result<(), bson::error::Error> {
        let shared = TestServer::new();
        shared.run_command(doc! { "ping": 1, "$db": "admin" });
        shared.run_command(doc! { "nope": 1, "$db": "admin" });
        let status = shared.run_command(doc! { "serverStatus": 1, "$db": "admin" });
        assert_eq!(status.get_document("opcounters")?.get_i64("command")?, 2);
        let commands = status.get_document("metrics")?.get_document("commands")?;
        assert_eq!(commands.get_document("ping")?.get_i64("total")?, 1);
        assert_eq!(commands.get_i64("<UNKNOWN>")?, 1);
        assert_eq!(status.get_document("asserts")?.get_i64("user")?, 1);
        Ok(())
    }

    #[test]
    fn list_commands_covers_the_table() -> Result<(), bson::error::Error> {
        let reply = TestServer::new().run_command(doc! { "listCommands": 1, "$db": "admin" });
        let commands = reply.get_document("commands")?;
        assert_eq!(commands.len(), COMMANDS.iter().filter(|c| !c.test_only).count());
        assert!(!commands.get_document("hello")?.get_bool("requiresAuth")?);
        assert!(commands.get_document("serverStatus")?.get_bool("requiresAuth")?);
        Ok(())
    }
}
