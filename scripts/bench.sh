#!/usr/bin/env bash
# Measures Keyport the way the performance targets are stated: the server on
# one core (GOMAXPROCS=1, pinned to CPU 0 when taskset exists) and the load
# generator (tools/loadtest) on the other, over loopback.
#
#   scripts/bench.sh [loadtest flags, e.g. -duration 5s -only refresh,cc]
#
# Environment: PORT (default 18480), KEEP_DATA=1 keeps the temp data dir,
# APP_ALG=ES256 or EdDSA gives the apps that id_token_signed_response_alg
# (FLOW_ALG the public app of the code flows);
# STORAGE=postgres measures the PostgreSQL backend instead of bbolt: a
# throwaway PostgreSQL (Debian's postgresql package, run as the postgres
# user, default durability: fsync and synchronous_commit on, as bbolt
# fsyncs each commit) pinned to the server's core, so both backends get
# the same one core for Keyport and its store together; with PG_WRITES=1
# it prints instead what one sign-in, refresh and client-credentials grant
# writes to PostgreSQL (rows, WAL, syncs); with REPLICAS=2 it compares
# one replica with two on the same database (see there). PROFILE=FILE
# writes a CPU profile of the server, PROFILE_SECONDS long (default 4),
# taken from the start of the first scenario ([metrics] profiling), for
# `go tool pprof FILE`: give the scenario with -only and a -duration a
# second longer or more; PROFILE_AFTER=S starts
# it S seconds later instead (the concurrent code flows come after the
# sequential ones: PROFILE_AFTER=8 with -duration 6s).
# KEYPORT_BIN=FILE runs that keyport binary as the server (and for the
# setup commands) instead of one built from this checkout, so two builds
# can be measured one after the other under the same conditions.
# REFRESH_ALGS="RS256 ES256 EdDSA" runs the refresh scenario once per
# algorithm, with an app (bench-ALG) whose ID tokens use it. The ccjwt
# scenario (-only ccjwt) measures client_credentials with JWT access tokens
# signed CCJWT_ALG (default ES256), app benchccjwt.
# CEILING=1 first measures the signing ceilings (BenchmarkSign, signatures
# per CPU second on the server's core, from its CPU time, which waiting
# for a core shared with other work leaves out) twice: with the other core
# idle, and with it busy, as the load generator keeps it during a run. On
# a VM the two cores may share caches or execution units, and a signature
# then costs more CPU time while the other core works (RSA-2048 here: from
# no difference to 1.2x, run to run); compare a scenario with the ceiling
# measured in the same run, never with one from another day.
# EXTRA_RUNS=0 skips the two runs after the main one (refresh with JWT
# access tokens, code flows with consent every time).
# The cpu/req column (server CPU time per completed request, from
# /proc/PID/stat) is the figure to compare on a machine that others load:
# req/s moves with their load, CPU per request far less.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${PORT:-18480}
ADDR=127.0.0.1:$PORT
URL=http://$ADDR
PASSWORD='bench password 1234'
SECRET='bench-client-secret-0123456789abcdef'
JWT_SECRET='bench-jwt-client-secret-0123456789ab'

server_pin=() load_pin=()
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
  server_pin=(taskset -c 0)
  load_pin=(taskset -c 1)
else
  echo "note: taskset missing or fewer than 2 CPUs; server and load generator share the CPUs" >&2
fi

if [ "${REPLICAS:-1}" = 2 ]; then
  server_pin=() load_pin=() # see the REPLICAS=2 block below
  # The replicas share the balancer's address as their issuer.
  LB_ADDR=127.0.0.1:$((PORT + 2))
  URL=http://$LB_ADDR
fi

if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "port $PORT is in use; set PORT" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/keyport-bench.XXXXXX")
server_pid="" server2_pid="" lb_pid=""
cleanup() {
  [ -z "$lb_pid" ] || kill "$lb_pid" 2>/dev/null || true
  if [ -n "$server2_pid" ] && kill -0 "$server2_pid" 2>/dev/null; then
    kill "$server2_pid" 2>/dev/null || true
    wait "$server2_pid" 2>/dev/null || true
  fi
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ "${KEEP_DATA:-}" = 1 ]; then
    echo "data kept in $work" >&2
  else
    rm -rf "$work"
  fi
}
pg_bin=""
stop_pg() {
  if [ -n "$pg_bin" ] && [ -f "$work/pg/data/postmaster.pid" ]; then
    runuser -u postgres -- "$pg_bin/pg_ctl" -D "$work/pg/data" -m fast stop >/dev/null 2>&1 || true
  fi
}
trap 'stop_pg; cleanup' EXIT
trap 'exit 130' INT TERM

# Build first, so compile time is not measured.
echo "building keyport and tools/loadtest"
if [ -n "${KEYPORT_BIN:-}" ]; then
  cp "$KEYPORT_BIN" "$work/keyport"
else
  go build -o "$work/keyport" ./cmd/keyport
fi
go build -o "$work/loadtest" ./tools/loadtest

if [ "${CEILING:-}" = 1 ]; then
  go test -c -o "$work/provider.test" ./provider
  ceiling() { "${server_pin[@]}" "$work/provider.test" -test.run '^$' -test.bench BenchmarkSign -test.cpu 1 -test.benchtime 2s 2>/dev/null |
    awk -v what="$1" '/^BenchmarkSign/ { split($1, n, "/"); for (i = 2; i < NF; i++) if ($(i+1) == "cpu-ns/op") c = $i
      printf "signing ceiling, other core %s: %-6s %8.0f sigs per CPU second (%.0f µs of CPU a signature)\n", what, n[2], 1e9 / c, c / 1000 }'; }
  ceiling idle
  if [ ${#load_pin[@]} -gt 0 ]; then
    "${load_pin[@]}" sh -c 'while :; do :; done' &
    spin_pid=$!
    ceiling busy
    kill "$spin_pid"
    wait "$spin_pid" 2>/dev/null || true
  fi
fi

export KEYPORT_DATA_DIR=$work/data KEYPORT_LISTEN=$ADDR KEYPORT_ISSUER=$URL
if [ "${STORAGE:-bolt}" = postgres ]; then
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -x "$pg_bin/initdb" ] || { echo "STORAGE=postgres needs Debian's postgresql package" >&2; exit 1; }
  PGPORT=${PGPORT:-18490}
  mkdir -p "$work/pg" && chown postgres "$work/pg" && chmod 755 "$work"
  runuser -u postgres -- "$pg_bin/initdb" -D "$work/pg/data" -U keyport --auth=trust >/dev/null
  # PG_OPTIONS adds server options ("-c log_statement=all").
  # PG_CPU=N pins PostgreSQL to core N instead (the database on a machine
  # of its own, as in production; with 2 cores it shares the load
  # generator's).
  pg_pin=("${server_pin[@]}")
  [ -z "${PG_CPU:-}" ] || pg_pin=(taskset -c "$PG_CPU")
  echo "starting: ${pg_pin[*]} postgres on 127.0.0.1:$PGPORT"
  runuser -u postgres -- "${pg_pin[@]}" "$pg_bin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w \
    -o "-c listen_addresses=127.0.0.1 -c port=$PGPORT -c unix_socket_directories=$work/pg -c max_connections=50 ${PG_OPTIONS:-}" start >/dev/null
  runuser -u postgres -- "$pg_bin/createdb" -h 127.0.0.1 -p "$PGPORT" -U keyport keyport
  export KEYPORT_STORAGE_DSN="postgres://keyport@127.0.0.1:$PGPORT/keyport?sslmode=disable"
  export KEYPORT_SECRET_KEY_FILE=$work/secret.key KEYPORT_CONFIG=$work/keyport.toml
  printf '[storage]\ntype = "postgres"\n' >"$KEYPORT_CONFIG"
  "$work/keyport" keys new-sealing-key --to "$KEYPORT_SECRET_KEY_FILE" >/dev/null
fi
if [ -n "${PROFILE:-}" ]; then
  [ "${REPLICAS:-1}" != 2 ] || { echo "PROFILE with REPLICAS=2: both replicas would take the one metrics port" >&2; exit 1; }
  # Never append to a configuration file of the caller's: copy it.
  if [ "${KEYPORT_CONFIG:-}" != "$work/keyport.toml" ]; then
    if [ -n "${KEYPORT_CONFIG:-}" ]; then cp "$KEYPORT_CONFIG" "$work/keyport.toml"; else : >"$work/keyport.toml"; fi
    export KEYPORT_CONFIG=$work/keyport.toml
  fi
  printf '[metrics]\nlisten = "127.0.0.1:%s"\nprofiling = true\n' "$((PORT + 3))" >>"$KEYPORT_CONFIG"
fi
kp() { "$work/keyport" "$@"; }
printf '%s\n' "$PASSWORD" | kp user create --username bench --email bench@example.com --name 'Bench User' --password-stdin
# The concurrent code flows sign in as 8 people (-flow-users): concurrent
# checks of one person's same password are shared as one guess, which would
# make a flood of one user's sign-ins look cheaper than real ones.
for i in 2 3 4 5 6 7 8; do
  printf '%s\n' "$PASSWORD" | kp user create --username "bench$i" --email "bench$i@example.com" --name "Bench User $i" --password-stdin >/dev/null
done
# APP_ALG=ES256|EdDSA gives the two confidential apps that signing
# algorithm (id_token_signed_response_alg), whatever [keys] algorithm is.
app_alg=()
[ -z "${APP_ALG:-}" ] || app_alg=(--id-token-signed-response-alg "$APP_ALG")
printf '%s\n' "$SECRET" | kp client create --id bench --name Bench --redirect-uri http://127.0.0.1:9/cb \
  --grant authorization_code,refresh_token,client_credentials --skip-consent --secret-stdin "${app_alg[@]}"
printf '%s\n' "$JWT_SECRET" | kp client create --id benchjwt --name 'Bench JWT' --redirect-uri http://127.0.0.1:9/cb \
  --grant authorization_code,refresh_token,client_credentials --skip-consent --jwt-access-tokens --secret-stdin "${app_alg[@]}"
JWT_CC_SECRET='bench-ccjwt-client-secret-0123456789'
printf '%s\n' "$JWT_CC_SECRET" | kp client create --id benchccjwt --name 'Bench CC JWT' --redirect-uri http://127.0.0.1:9/cb \
  --grant client_credentials --jwt-access-tokens --secret-stdin --id-token-signed-response-alg "${CCJWT_ALG:-ES256}"
refresh_clients=()
if [ -n "${REFRESH_ALGS:-}" ]; then
  ids=""
  for alg in $REFRESH_ALGS; do
    printf '%s\n' "$SECRET" | kp client create --id "bench-$alg" --name "Bench $alg" --redirect-uri http://127.0.0.1:9/cb \
      --grant authorization_code,refresh_token --skip-consent --secret-stdin --id-token-signed-response-alg "$alg"
    ids+="${ids:+,}bench-$alg"
  done
  refresh_clients=(-refresh-clients "$ids")
fi
# The public client asks for consent (once per user), as a third-party app
# would. FLOW_ALG=ES256|EdDSA gives it that ID-token algorithm: the code
# flows sign one ID token each.
flow_alg=()
[ -z "${FLOW_ALG:-}" ] || flow_alg=(--id-token-signed-response-alg "$FLOW_ALG")
kp client create --id benchpub --name 'Bench SPA' --redirect-uri http://127.0.0.1:9/cb --public "${flow_alg[@]}"

echo "starting: ${server_pin[*]} env GOMAXPROCS=1 keyport serve on $ADDR"
"${server_pin[@]}" env GOMAXPROCS=1 "$work/keyport" serve >"$work/server.log" 2>&1 &
server_pid=$!
for i in $(seq 1 100); do
  if curl -fsS "http://$ADDR/healthz" >/dev/null 2>&1; then
    break
  fi
  if ! kill -0 "$server_pid" 2>/dev/null || [ "$i" = 100 ]; then
    echo "server did not start:" >&2
    cat "$work/server.log" >&2
    exit 1
  fi
  sleep 0.1
done

lt() {
  "${load_pin[@]}" "$work/loadtest" -url "$URL" -server-pid "$server_pid" -user bench -password "$PASSWORD" -flow-users 8 "$@"
}
status=0
if [ -n "${PROFILE:-}" ]; then
  (sleep "${PROFILE_AFTER:-0.5}"; curl -fsS -o "$PROFILE" "http://127.0.0.1:$((PORT + 3))/debug/pprof/profile?seconds=${PROFILE_SECONDS:-4}" &&
    echo "CPU profile written to $PROFILE" >&2) &
fi
if [ "${REPLICAS:-1}" = 2 ] && [ -n "$pg_bin" ]; then
  # One replica against two on the same PostgreSQL, behind HAProxy (round
  # robin), each replica with GOMAXPROCS=1. Nothing is pinned here: on a
  # 2-core machine the replicas, PostgreSQL, HAProxy and the load generator
  # share both cores, so this shows what a second replica adds when the
  # first was bound by its one core, not how far replicas scale (that needs
  # a core, or a machine, per replica).
  ADDR2=127.0.0.1:$((PORT + 1))
  balance() { # balance BACKEND...: (re)start HAProxy over the backends
    [ -z "${lb_pid:-}" ] || { kill "$lb_pid"; wait "$lb_pid" 2>/dev/null || true; }
    { printf 'defaults\n mode http\n timeout connect 2s\n timeout client 30s\n timeout server 30s\nfrontend f\n bind %s\n default_backend b\nbackend b\n balance roundrobin\n' "$LB_ADDR"
      i=0; for b in "$@"; do i=$((i + 1)); printf ' server r%d %s\n' "$i" "$b"; done; } >"$work/haproxy.cfg"
    haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
    lb_pid=$!
    for i in $(seq 1 50); do curl -fsS "$URL/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  }
  # req/s of the scenario's line (of the concurrent one for the code flow),
  # the fourth field from the end (one() gives no -server-pid: no CPU columns).
  rate() { awk -v sc="$1" '$1 == sc && (sc != "codeflow" || /at once/) { r = $(NF-3) } END { printf "%.0f", r }'; }
  one() { "$work/loadtest" -url "$URL" -user bench -password "$PASSWORD" -flow-users 8 -client-id bench -client-secret "$SECRET" -public-client-id benchpub "$@"; }
  balance "$ADDR"
  declare -A single
  for sc in refresh codeflow; do
    single[$sc]=$(one "$@" -only "$sc" | rate "$sc")
  done
  KEYPORT_LISTEN=$ADDR2 env GOMAXPROCS=1 "$work/keyport" serve >"$work/server2.log" 2>&1 &
  server2_pid=$!
  for i in $(seq 1 100); do curl -fsS "http://$ADDR2/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  balance "$ADDR" "$ADDR2"
  printf '%-10s %14s %14s\n' scenario "1 replica/s" "2 replicas/s"
  for sc in refresh codeflow; do
    printf '%-10s %14s %14s\n' "$sc" "${single[$sc]}" "$(one "$@" -only "$sc" | rate "$sc")"
  done
  kill "$lb_pid" 2>/dev/null || true
  exit 0
fi
if [ -n "${PG_WRITES:-}" ] && [ -n "$pg_bin" ]; then
  # What one request writes to PostgreSQL: rows inserted, updated or
  # deleted, WAL records and bytes, and WAL syncs (fsyncs: a committed
  # write transaction each, fewer when commits are grouped). Backends
  # report their counts when idle, within 10 s: hence the pauses.
  pgq() { runuser -u postgres -- "$pg_bin/psql" -h 127.0.0.1 -p "$PGPORT" -U keyport -d keyport -At -F ' ' -c "$1"; }
  counts() {
    sleep 11
    pgq "select (select tup_inserted+tup_updated+tup_deleted from pg_stat_database where datname='keyport'), wal_records, wal_bytes, wal_sync from pg_stat_wal"
  }
  printf '%-10s %8s %10s %10s %12s %10s\n' scenario requests rows/req wal-rec/req wal-bytes/req syncs/req
  for sc in codeflow refresh cc; do
    before=$(counts)
    n=$(lt -client-id bench -client-secret "$SECRET" -public-client-id benchpub "$@" -only "$sc" | awk -v sc="$sc" '$1 == sc { n += $(NF-7) } END { print n+0 }')
    after=$(counts)
    echo "$before $after" | awk -v sc="$sc" -v n="$n" '{ printf "%-10s %8d %10.1f %10.1f %12.0f %10.2f\n", sc, n, ($5-$1)/n, ($6-$2)/n, ($7-$3)/n, ($8-$4)/n }'
  done
  exit 0
fi
lt -client-id bench -client-secret "$SECRET" -public-client-id benchpub -jwt-client-id benchccjwt -jwt-client-secret "$JWT_CC_SECRET" \
  "${refresh_clients[@]}" "$@" || status=$?
if [ "${EXTRA_RUNS:-1}" != 0 ]; then
  echo
  echo "JWT access tokens (client benchjwt): two signatures ([keys] algorithm) per refresh"
  lt -client-id benchjwt -client-secret "$JWT_SECRET" "$@" -only refresh || status=$?
  echo
  echo "Code flow with the consent page answered in every flow (prompt=consent)"
  lt -client-id bench -client-secret "$SECRET" -public-client-id benchpub "$@" -only codeflow -consent-every-flow || status=$?
fi

if grep -q 'level=ERROR' "$work/server.log"; then
  echo "server logged errors:" >&2
  grep 'level=ERROR' "$work/server.log" | head -5 >&2
  status=1
fi
exit $status
