//! The versions the server reports: the mongod release whose behaviour it matches (what
//! `buildInfo`, `serverStatus`, `explain`, `/health` and `/metrics` show) and its own build.

/// The MongoDB release whose behaviour Monarch matches.
pub const COMPATIBLE_VERSION: &str = "7.0.14";
/// [`COMPATIBLE_VERSION`] as `buildInfo.versionArray`.
pub const COMPATIBLE_VERSION_ARRAY: [i32; 4] = [7, 0, 14, 0];
/// The commit the server was built from, when the build set `MONARCH_GIT_VERSION`.
pub const GIT_VERSION: &str = match option_env!("MONARCH_GIT_VERSION") {
    Some(version) => version,
    None => "unknown",
};
