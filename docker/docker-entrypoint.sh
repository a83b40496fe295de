#!/bin/bash
# The official mongo image's entrypoint contract (docker-library/mongo, 7.0), so that a compose
# file can swap `image: mongo` for Monarch and change nothing else:
#   - a first argument that is a flag, or `mongod`, means the server (`monarchd`);
#   - the server gets `--dbpath /data/db` and `--bind_ip_all` unless the command, a MONARCH_*
#     variable or the config file says otherwise (monarchd's own defaults are ./data and
#     127.0.0.1, which suit a developer's machine, not a container);
#   - MONGO_INITDB_ROOT_USERNAME/_PASSWORD (or their _FILE variants) turn authentication on,
#     and on an empty data directory the root user exists before anything else runs;
#   - on an empty data directory with scripts in /docker-entrypoint-initdb.d, a temporary server
#     listens on 127.0.0.1:27017 only, without access control, while *.sh scripts are sourced
#     and *.js scripts run with mongosh against MONGO_INITDB_DATABASE (default `test`); then it
#     stops and the real server starts.
# Creating the root user is the server's own job here (it reads the same variables), so unlike
# the mongo image this script needs no shell to create it. Anything else is exec'd unchanged.
set -euo pipefail

if [ "${1:0:1}" = '-' ]; then
  set -- monarchd "$@"
fi
if [ "${1:-}" = mongod ]; then
  shift
  set -- monarchd "$@"
fi
if [ "${1:-}" != monarchd ]; then
  exec "$@"
fi

# --- argument helpers --------------------------------------------------------------------
# monarchd refuses a flag given twice, as mongod does, so a setting is replaced by removing
# every occurrence first. Switches such as --auth take an optional true/false value, which goes
# with them.

# have_arg NAME ARGS...: is NAME given (as `NAME`, `NAME VALUE` or `NAME=VALUE`)?
have_arg() {
  local name=$1 arg
  shift
  for arg; do
    case "$arg" in
      "$name" | "$name"=*) return 0 ;;
    esac
  done
  return 1
}

# arg_value NAME ARGS...: prints NAME's value; fails when NAME is not given.
arg_value() {
  local name=$1
  shift
  while [ $# -gt 0 ]; do
    case "$1" in
      "$name")
        [ $# -ge 2 ] || return 1
        printf '%s\n' "$2"
        return 0
        ;;
      "$name"=*)
        printf '%s\n' "${1#"$name"=}"
        return 0
        ;;
    esac
    shift
  done
  return 1
}

# without NAME KIND ARGS...: sets `args` to ARGS with NAME removed. KIND is `value` (NAME takes
# a value) or `switch` (NAME takes an optional true/false).
without() {
  local name=$1 kind=$2
  shift 2
  args=()
  while [ $# -gt 0 ]; do
    case "$1" in
      "$name")
        shift
        if [ $# -gt 0 ] && { [ "$kind" = value ] || [ "$1" = true ] || [ "$1" = false ]; }; then
          shift
        fi
        continue
        ;;
      "$name"=*)
        shift
        continue
        ;;
    esac
    args+=("$1")
    shift
  done
}

# config_value KEY: the first `KEY = "value"` (or bare value) in the TOML config file named on
# the command line (--config/-f) or by MONARCH_CONFIG; fails when there is none. A line-based
# reading, enough for the few keys this script must not override.
config_value() {
  local key=$1 file
  shift
  file=$(arg_value --config "$@" || arg_value -f "$@" || printf '%s\n' "${MONARCH_CONFIG:-}")
  [ -n "$file" ] && [ -r "$file" ] || return 1
  sed -nE "s/^[[:space:]]*([a-zA-Z]+\.)?${key}[[:space:]]*=[[:space:]]*\"?([^\"#]*[^\"#[:space:]])\"?.*/\2/p" "$file" | head -n 1 | grep .
}

# file_env VAR: VAR's value from VAR or from the file VAR_FILE names, exported as VAR (the
# mongo image's semantics: both set is an error; the file's trailing newlines go).
file_env() {
  local var=$1 file_var="${1}_FILE"
  if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
    echo >&2 "error: both $var and $file_var are set (but are exclusive)"
    exit 1
  fi
  if [ -n "${!file_var:-}" ]; then
    export "$var"="$(<"${!file_var}")"
  elif [ -n "${!var:-}" ]; then
    export "$var"="${!var}"
  fi
  unset "$file_var"
}

# --- the server's defaults in a container -------------------------------------------------
# Flags outrank MONARCH_* variables, which outrank the config file: adding a flag would silently
# override the other two, so each default is added only when none of the three sets it.
if have_arg --dbpath "$@"; then
  dbpath=$(arg_value --dbpath "$@")
elif [ -n "${MONARCH_DBPATH:-}" ]; then
  dbpath=$MONARCH_DBPATH
elif dbpath=$(config_value dbPath "$@"); then
  :
else
  dbpath=/data/db
  set -- "$@" --dbpath "$dbpath"
fi

# Remembered so that the server, when it creates the user, reads the secret files itself and
# the values need not be in its environment.
user_file=${MONGO_INITDB_ROOT_USERNAME_FILE:-}
password_file=${MONGO_INITDB_ROOT_PASSWORD_FILE:-}
file_env MONGO_INITDB_ROOT_USERNAME
file_env MONGO_INITDB_ROOT_PASSWORD
root_user=
if [ -n "${MONGO_INITDB_ROOT_USERNAME:-}" ] && [ -n "${MONGO_INITDB_ROOT_PASSWORD:-}" ]; then
  root_user=yes
  # monarchd turns authentication on by itself when it sees the variables; the flag says so
  # where the variables are not passed on (below), as the mongo image adds it.
  if ! have_arg --auth "$@"; then
    set -- "$@" --auth
  fi
elif [ -n "${MONGO_INITDB_ROOT_USERNAME:-}" ] || [ -n "${MONGO_INITDB_ROOT_PASSWORD:-}" ]; then
  cat >&2 <<'EOF'

error: missing 'MONGO_INITDB_ROOT_USERNAME' or 'MONGO_INITDB_ROOT_PASSWORD'
       both must be specified for a user to be created

EOF
  exit 1
fi

# The server creates the root user only in an empty directory that exists: make it exist, then
# decide "first start" exactly as the server will (no entry at all, hidden ones included).
mkdir -p "$dbpath"
first_start=
if [ -z "$(ls -A "$dbpath")" ]; then
  first_start=yes
fi

init_scripts=
for f in /docker-entrypoint-initdb.d/*; do
  case "$f" in
    *.sh | *.js)
      init_scripts=yes
      break
      ;;
  esac
done

# --- initdb: the temporary servers -----------------------------------------------------------
: "${TMPDIR:=/tmp}"
temp_log="$TMPDIR/docker-entrypoint-temp-monarchd.log"
temp_pid=

# start_temp ARGS...: starts monarchd in the background, its log on standard output as the
# mongo image's temporary mongod has it, and waits until it accepts connections.
start_temp() {
  : >"$temp_log"
  "$@" > >(tee -a "$temp_log") 2>&1 &
  temp_pid=$!
  local tries=300
  until grep -q '"Waiting for connections"' "$temp_log"; do
    if ! kill -0 "$temp_pid" 2>/dev/null; then
      echo >&2
      echo >&2 "error: monarchd does not appear to have stayed running -- perhaps it had an error?"
      echo >&2
      exit 1
    fi
    tries=$((tries - 1))
    if [ "$tries" -le 0 ]; then
      echo >&2
      echo >&2 "error: monarchd does not appear to have accepted connections quickly enough -- perhaps it had an error?"
      echo >&2
      exit 1
    fi
    sleep 0.1
  done
  # monarchd installs its SIGTERM handler just after that line; a SIGTERM before it would end
  # the process without the final flush.
  sleep 0.2
}

# stop_temp: a clean shutdown (SIGTERM, as `docker stop`), which flushes the storage.
stop_temp() {
  local status=0
  kill -TERM "$temp_pid"
  wait "$temp_pid" || status=$?
  if [ "$status" != 0 ]; then
    echo >&2 "error: the temporary monarchd exited with status $status"
    exit 1
  fi
  temp_pid=
}

if [ -n "$first_start" ] && [ -n "$init_scripts" ]; then
  # What the mongo image's temporary mongod gets: loopback only, port 27017 (where scripts
  # calling a bare `mongosh` look), no access control, TLS optional, the log on stdout; plus
  # no admin port, so the HEALTHCHECK cannot report healthy before the real server is up;
  # and, as the mongo image does, no --replSet, so init scripts write to a standalone before
  # the set is initiated.
  temp=("$@")
  for flag in --bind_ip --port --adminPort --tlsMode --logpath --replSet; do
    without "$flag" value "${temp[@]}"
    temp=("${args[@]}")
  done
  for flag in --bind_ip_all --auth --noauth --logappend; do
    without "$flag" switch "${temp[@]}"
    temp=("${args[@]}")
  done
  tls_mode=disabled
  if have_arg --tlsCertificateKeyFile "$@" || [ -n "${MONARCH_TLS_CERTIFICATE_KEY_FILE:-}" ]; then
    tls_mode=allowTLS
  fi
  temp+=(--bind_ip 127.0.0.1 --bind_ip_all false --adminPort disabled --tlsMode "$tls_mode")

  if [ -n "$root_user" ]; then
    # monarchd creates the root user when it starts on the empty directory with the variables
    # set, and then enforces access control, which the scripts must not meet (they run
    # unauthenticated against mongo's temporary server). So one short start creates the user
    # (any free port, nothing connects), and the scripts get a second one without the variables.
    start_temp env -u MONARCH_REPL_SET "${temp[@]}" --port 0
    stop_temp
  fi
  start_temp env -u MONGO_INITDB_ROOT_USERNAME -u MONGO_INITDB_ROOT_PASSWORD -u MONARCH_REPL_SET \
    "${temp[@]}" --port 27017 --auth false

  export MONGO_INITDB_DATABASE="${MONGO_INITDB_DATABASE:-test}"
  mongo=(mongosh --host 127.0.0.1 --port 27017 --quiet)
  echo
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh)
        echo "$0: running $f"
        # shellcheck disable=SC1090 # sourced, as the mongo image does: scripts see and may
        # change this script's variables
        . "$f"
        ;;
      *.js)
        echo "$0: running $f"
        if ! command -v mongosh >/dev/null; then
          echo >&2 "error: $f needs mongosh, which this image does not ship: use the image variant that has it (docker/Dockerfile, target runtime-mongosh)"
          exit 1
        fi
        "${mongo[@]}" "$MONGO_INITDB_DATABASE" "$f"
        echo
        ;;
      *) echo "$0: ignoring $f" ;;
    esac
    echo
  done

  stop_temp
  rm -f "$temp_log"
  echo
  echo 'Monarch init process complete; ready for start up.'
  echo
fi

# --- the real server -------------------------------------------------------------------------
if ! have_arg --bind_ip "$@" && ! have_arg --bind_ip_all "$@" \
  && [ -z "${MONARCH_BIND_IP:-}" ] && [ -z "${MONARCH_BIND_IP_ALL:-}" ] \
  && ! config_value bindIp "$@" >/dev/null && ! config_value bindIpAll "$@" >/dev/null; then
  set -- "$@" --bind_ip_all
fi

# The server still needs the root user's variables on a first start without scripts (it
# creates the user itself); otherwise they are dropped, as the mongo image drops them, so the
# password is not in the server's environment.
if [ -n "$root_user" ] && [ -n "$first_start" ] && [ -z "$init_scripts" ]; then
  unset MONGO_INITDB_DATABASE
  if [ -n "$user_file" ]; then
    unset MONGO_INITDB_ROOT_USERNAME
    export MONGO_INITDB_ROOT_USERNAME_FILE="$user_file"
  fi
  if [ -n "$password_file" ]; then
    unset MONGO_INITDB_ROOT_PASSWORD
    export MONGO_INITDB_ROOT_PASSWORD_FILE="$password_file"
  fi
else
  unset "${!MONGO_INITDB_@}"
fi

exec "$@"
