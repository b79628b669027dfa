# shellcheck shell=bash
# Shared by scripts/test, scripts/demo and bench/: installs what is missing on
# a Debian machine (as root), and runs a throwaway PostgreSQL cluster.

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Debian packages each part of the project needs.
OUTBOX_BUILD_PKGS="build-essential cmake pkg-config libpq-dev libcurl4-openssl-dev libssl-dev
  libjson-c-dev libyaml-dev"
OUTBOX_TEST_PKGS="check libmicrohttpd-dev postgresql postgresql-contrib clang clang-format
  curl ca-certificates jq"
OUTBOX_DEMO_PKGS="check libmicrohttpd-dev postgresql curl jq"

# ensure_packages PKG...: installs the ones dpkg does not know as installed.
ensure_packages() {
    local missing=()
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    [ "$(id -u)" -eq 0 ] || die "missing packages: ${missing[*]} (run as root, or install them)"
    say "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ensure_node: Node.js and npm for the AWS SDK cross-check (any Node >= 18).
ensure_node() {
    if command -v node >/dev/null && command -v npm >/dev/null; then
        return 0
    fi
    ensure_packages nodejs npm
}

pg_bindir() {
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$d/initdb" ]; then
            echo "$d"
            return 0
        fi
    done
    die "no PostgreSQL server binaries under /usr/lib/postgresql (install postgresql)"
}

# Runs a command as the postgres user when we are root (initdb refuses root).
as_pg_user() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# pg_start DIR: initdb into DIR and start a server on a free port on
# 127.0.0.1. Sets PGPORT_DEMO and PG_DIR_DEMO. fsync is off (throwaway data)
# unless PG_FSYNC=on; PG_EXTRA_OPTS adds server options ("-c name=value ...").
pg_start() {
    local dir=$1 bin port try
    bin=$(pg_bindir)
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; fi
    as_pg_user "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync >"$dir/initdb.log" 2>&1 ||
        die "initdb failed, see $dir/initdb.log"
    for try in 1 2 3 4 5 6 7 8; do
        port=$((20000 + RANDOM % 20000))
        if as_pg_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 30 \
            -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=${PG_FSYNC:-off} ${PG_EXTRA_OPTS:-}" \
            start >/dev/null 2>&1; then
            PGPORT_DEMO=$port
            PG_DIR_DEMO=$dir
            return 0
        fi
    done
    die "could not start PostgreSQL, see $dir/postgres.log"
}

pg_stop() {
    local dir=$1
    [ -d "$dir/data" ] || return 0
    as_pg_user "$(pg_bindir)/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
}
