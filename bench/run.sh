#!/usr/bin/env bash
# stsd's reproducible load benchmark (see bench/README.md).
#
#   bench/run.sh [--quick] [--postgres URL] [--generator loadgen|wrk|both]
#                                               load benchmark: stsd, stsd-ceiling and moto_server, driven
#                                               by the in-repo generator (default), by wrk, or by both
#   bench/run.sh --micro [--quick]              criterion micro-benchmarks (stsd-loadgen's and the policy engine's)
#   bench/run.sh --scale [N] [--quick] [--scale-tmpfs] [--scale-seconds S]
#                                               scale run: GetSessionToken with N bulk-loaded users
#
# Everything runs on loopback, every loop is bounded in count and time, and every process started here
# is stopped on exit. Results: a markdown table on stdout and in bench/out/results-<timestamp>.md.
#
# Knobs (environment): STSD_BENCH_DURATION (seconds per run; default 10, --quick 3), STSD_BENCH_RUNS (3),
# STSD_BENCH_CONNS (1,64), STSD_BENCH_MFA_DEVICES (200), STSD_BENCH_SKIP (space-separated targets to
# skip: moto ceiling stsd mfa nginx iam), STSD_BENCH_ONLY (space-separated workloads to measure, e.g. "authz authz-proxy";
# default: all), STSD_BENCH_WORKERS (serving threads of stsd and the ceiling; default: one
# per core), STSD_BENCH_KEEP_TMP=1 (keep the temporary directory with the server logs),
# STSD_LOG (server log filter; default: the server's default, info), STSD_BENCH_SOURCE (what to call the
# measured source in the report; default: the git commit).
set -euo pipefail

usage() {
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
bin="$target_dir/release"

mode=load
quick=0
postgres=""
scale_n=1000000
scale_tmpfs=0
scale_seconds=180
generator=loadgen
while [ "$#" -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --postgres) [ "$#" -ge 2 ] || usage; postgres="$2"; shift ;;
    --micro) mode=micro ;;
    --scale)
      mode=scale
      if [ "$#" -ge 2 ] && [[ "$2" =~ ^[0-9]+$ ]]; then scale_n="$2"; shift; fi
      ;;
    --scale-tmpfs) scale_tmpfs=1 ;;
    --generator)
      [ "$#" -ge 2 ] || usage
      case "$2" in loadgen|wrk|both) generator="$2" ;; *) echo "run.sh: --generator loadgen, wrk or both" >&2; exit 2 ;; esac
      shift
      ;;
    --scale-seconds) [ "$#" -ge 2 ] || usage; scale_seconds="$2"; shift ;;
    -h|--help) usage ;;
    *) echo "run.sh: unknown argument $1" >&2; usage ;;
  esac
  shift
done

log() { printf '== %s\n' "$*" >&2; }

if [ "$quick" = 1 ]; then
  duration="${STSD_BENCH_DURATION:-3}"
  warmup=0.5
else
  duration="${STSD_BENCH_DURATION:-10}"
  warmup=1
fi
runs="${STSD_BENCH_RUNS:-3}"
conns="${STSD_BENCH_CONNS:-1,64}"
mfa_devices="${STSD_BENCH_MFA_DEVICES:-200}"
skip=" ${STSD_BENCH_SKIP:-} "
workers="${STSD_BENCH_WORKERS:-}"
if [ -n "$workers" ]; then
  # The same number of serving threads for stsd (STSD_WORKERS) and the ceiling (tokio's own variable).
  export STSD_WORKERS="$workers" TOKIO_WORKER_THREADS="$workers"
fi

# ------------------------------------------------------------------------------------------------ micro
if [ "$mode" = micro ]; then
  log "criterion micro-benchmarks (cargo bench -p stsd-policy, then -p stsd-loadgen)"
  cd "$repo"
  if [ "$quick" = 1 ]; then
    cargo bench -p stsd-policy --bench policy -- --warm-up-time 1 --measurement-time 2
    exec cargo bench -p stsd-loadgen --bench micro -- --warm-up-time 1 --measurement-time 2
  fi
  cargo bench -p stsd-policy --bench policy
  exec cargo bench -p stsd-loadgen --bench micro
fi

if [ "$mode" = load ] && [ "$generator" != loadgen ] && ! command -v wrk >/dev/null 2>&1; then
  echo "run.sh: --generator $generator needs wrk (Debian: apt-get install wrk)" >&2
  exit 2
fi

# ------------------------------------------------------------------------------------------------ build
log "building release binaries (stsd, stsd-loadgen, stsd-ceiling, stsd-bulkload) into $target_dir"
(cd "$repo" && cargo build --release -p stsd -p stsd-loadgen --bins)
for b in stsd stsd-loadgen stsd-ceiling stsd-bulkload; do
  [ -x "$bin/$b" ] || { echo "run.sh: $bin/$b was not built" >&2; exit 1; }
done
loadgen="$bin/stsd-loadgen"

# ------------------------------------------------------------------------------------------------ state
tmp="$(mktemp -d "${TMPDIR:-/tmp}/stsd-bench.XXXXXX")"
pids=()
shm_dir=""
cleanup() {
  local p
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  [ -n "$shm_dir" ] && rm -rf "$shm_dir"
  if [ "${STSD_BENCH_KEEP_TMP:-0}" = 1 ]; then
    echo "run.sh: kept $tmp" >&2
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget_pid() {
  local p keep=()
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  pids=("${keep[@]+"${keep[@]}"}")
}

# Stops a process started here (SIGTERM, then SIGKILL after 40 s) and waits for it.
stop() {
  local pid="$1" i
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 400); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  forget_pid "$pid"
}

results="$tmp/results.tsv"
meta="$tmp/meta.tsv"
: >"$meta"
meta() { printf '%s\t%s\n' "$1" "$2" >>"$meta"; }

root_id="AKIABENCHROOT$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr 'a-f' 'A-F' | cut -c1-7)"
root_secret="$(head -c 30 /dev/urandom | base64 | tr -d '\n')"
export STSD_ROOT_ACCESS_KEY_ID="$root_id" STSD_ROOT_SECRET_ACCESS_KEY="$root_secret"

stsd_pid=""
stsd_port=""
stsd_startup_ms=""
# start_stsd NAME DATA_DIR: starts a release stsd on a free loopback port; sets stsd_pid, stsd_port and
# stsd_startup_ms (process start until /healthz answers).
start_stsd() {
  local name="$1" dir="$2" t0
  stsd_port="$("$loadgen" free-port)"
  # The authorizer workload's API (bench/loadgen/src/request.rs: AUTHZ_HOST, AUTHZ_PATH).
  printf '[authz]\ntrusted_proxies = ["127.0.0.1/32"]\n[[authz.api]]\nid = "orders"\nstage = "prod"\nhosts = ["orders.internal"]\n' >"$tmp/stsd.toml"
  export STSD_CONFIG="$tmp/stsd.toml"
  t0="$(date +%s%N)"
  if [ -n "$postgres" ]; then
    # Several nodes share a PostgreSQL store, so stsd wants the master key given explicitly.
    if [ ! -f "$tmp/master.key" ]; then
      (umask 077 && head -c 32 /dev/urandom | base64 >"$tmp/master.key")
    fi
    STSD_DATABASE_URL="$postgres" STSD_MASTER_KEY_FILE="$tmp/master.key" "$bin/stsd" serve --listen "127.0.0.1:$stsd_port" --data-dir "$dir" \
      >>"$tmp/$name.log" 2>&1 &
  else
    "$bin/stsd" serve --listen "127.0.0.1:$stsd_port" --data-dir "$dir" >>"$tmp/$name.log" 2>&1 &
  fi
  stsd_pid=$!
  pids+=("$stsd_pid")
  if ! stsd_startup_ms="$("$loadgen" wait-ready --endpoint "127.0.0.1:$stsd_port" --since-ns "$t0" --timeout 120 --pid "$stsd_pid")"; then
    echo "run.sh: stsd did not start; its log:" >&2
    tail -n 30 "$tmp/$name.log" >&2
    exit 1
  fi
}

# run_load TARGET PORT PID CREDS WORKLOAD...: runs workloads against one server.
run_load() {
  local name="$1" port="$2" pid="$3" creds="$4" w
  shift 4
  for w in "$@"; do
    log "$name: $w (connections $conns, $runs runs of ${duration} s)"
    "$loadgen" run --endpoint "127.0.0.1:$port" --target "$name" --creds "$creds" --workload "$w" \
      --conns "$conns" --runs "$runs" --duration "$duration" --warmup "$warmup" --pid "$pid" --out "$results"
  done
}

machine_meta() {
  meta "date (UTC)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  meta "machine" "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr))"
  meta "stsd source" "${STSD_BENCH_SOURCE:-commit $(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$repo" && git diff --quiet HEAD -- crates 2>/dev/null || echo ' (+ uncommitted changes)')}"
  meta "runs" "$runs runs of ${duration} s (+ ${warmup} s unmeasured warm-up) per workload and connection count; connections: $conns; targets measured in turns (stsd, ceiling, moto, stsd, ...), run by run ratios pair runs with the same number"
  [ "$generator" = loadgen ] || meta "wrk" "$(wrk --version 2>&1 | head -n1 | sed 's/ Copyright.*//'), -t 2 (-t 1 at 1 connection) -c CONNS -d DURATION --latency, after an unmeasured wrk run of the warm-up (whole seconds); one pre-signed request per run from stsd-loadgen wrk-script (same request line, headers and body as the in-repo generator; header order as wrk writes them); results as targets NAME@wrk; wrk counts answers with status >= 400 and socket errors (connect, read, write, timeout)"
  [ "$generator" = wrk ] || meta "load generator" "stsd-loadgen, 1 thread (tokio current-thread), wrk-style HTTP/1.1 keep-alive client (requests serialised once, answers parsed with httparse), boto3-shaped SigV4 requests; loopback; client and server share the machine's cores"
  meta "server" "release stsd, ${workers:+$workers worker thread(s) (also for the ceiling), }default configuration, log filter ${STSD_LOG:-info (default)} to a file, $( [ -n "$postgres" ] && echo "PostgreSQL store" || echo "SQLite store in a fresh temporary data dir")"
  meta "peak RSS" "VmHWM from /proc/PID/status, reset before each run (clear_refs 5)"
  meta "load average at start" "$(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the figures)"
}

ts="$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$here/out"

# ------------------------------------------------------------------------------------------------ scale
if [ "$mode" = scale ]; then
  if [ -n "$postgres" ]; then
    echo "run.sh: --scale loads SQLite through Store::open_sqlite; it does not support --postgres" >&2
    exit 2
  fi
  machine_meta
  dir="$tmp/data-scale"
  log "scale: baseline on an empty store"
  start_stsd stsd-scale "$dir"
  meta "scale.start-up with an empty store (ms)" "$stsd_startup_ms"
  "$loadgen" setup --endpoint "127.0.0.1:$stsd_port" --out "$tmp/creds-scale"
  run_load stsd-base "$stsd_port" "$stsd_pid" "$tmp/creds-scale" gst
  stop "$stsd_pid"

  load_dir="$dir"
  if [ "$scale_tmpfs" = 1 ]; then
    shm_dir="$(mktemp -d /dev/shm/stsd-bench.XXXXXX)"
    cp -a "$dir/." "$shm_dir/"
    load_dir="$shm_dir"
    meta "scale.bulk load location" "tmpfs (/dev/shm), then copied back to the data dir on disk"
  else
    meta "scale.bulk load location" "the data dir on disk"
  fi
  log "scale: bulk-loading up to $scale_n users (time limit ${scale_seconds} s)"
  "$bin/stsd-bulkload" --data-dir "$load_dir" --users "$scale_n" --max-seconds "$scale_seconds" \
    --summary "$tmp/bulk.tsv"
  if [ "$scale_tmpfs" = 1 ]; then
    rm -rf "$dir" && mkdir -p "$dir" && cp -a "$shm_dir/." "$dir/" && sync
    rm -rf "$shm_dir"; shm_dir=""
  fi
  while IFS=$'\t' read -r k v; do meta "scale.bulk load: $k" "$v"; done <"$tmp/bulk.tsv"
  stored="$(awk -F'\t' '$1=="users stored"{print $2}' "$tmp/bulk.tsv")"
  meta "scale.users" "$stored"
  meta "scale.database size (MiB)" "$(du -sm "$dir" | cut -f1)"

  log "scale: start-up with $stored users (3 starts)"
  startups=()
  for i in 1 2 3; do
    start_stsd stsd-scale "$dir"
    startups+=("$stsd_startup_ms")
    meta "scale.RSS right after start $i (MiB)" "$(awk '/VmRSS/{printf "%.1f", $2/1024}' "/proc/$stsd_pid/status")"
    [ "$i" = 3 ] || stop "$stsd_pid"
  done
  median_startup="$(printf '%s\n' "${startups[@]}" | sort -n | sed -n 2p)"
  meta "scale.start-up with the loaded store (ms)" "$median_startup"
  meta "scale.start-ups (ms)" "${startups[*]}"
  run_load stsd-scale "$stsd_port" "$stsd_pid" "$tmp/creds-scale" gst
  meta "scale.peak RSS over the server's life (MiB)" "$(awk '/VmHWM/{printf "%.1f", $2/1024}' "/proc/$stsd_pid/status")"
  stop "$stsd_pid"

  report="$here/out/results-$ts-scale.md"
  "$loadgen" report --title "stsd scale run ($stored users)" --results "$results" --meta "$meta" --out "$report"
  cp "$results" "$here/out/results-$ts-scale.tsv"
  log "written $report"
  exit 0
fi

# ------------------------------------------------------------------------------------------------ load
machine_meta

# All targets are started first and then measured in turns (stsd, the ceiling, moto; then again), one run
# per turn, so that each run of stsd has a ceiling run right next to it: this machine's speed drifts by
# tens of percent over minutes (other tenants), and runs taken minutes apart are not comparable. The
# report pairs runs with the same number. A target that is not being measured is idle.
ceiling_port="" moto_port="" cpid="" mpid=""

if [[ "$skip" != *" stsd "* ]]; then
  log "stsd: fresh data dir, fixtures through the IAM API ($mfa_devices MFA devices)"
  start_stsd stsd "$tmp/data"
  meta "stsd start-up, empty store (ms)" "$stsd_startup_ms"
  mfa_n="$mfa_devices"
  [[ "$skip" == *" mfa "* ]] && mfa_n=0
  "$loadgen" setup --endpoint "127.0.0.1:$stsd_port" --mfa-devices "$mfa_n" --out "$tmp/creds-stsd"
fi

if [[ "$skip" != *" ceiling "* ]]; then
  log "stsd-ceiling: the machine's HTTP ceiling (fixed GetCallerIdentity body)"
  ceiling_port="$("$loadgen" free-port)"
  "$bin/stsd-ceiling" --listen "127.0.0.1:$ceiling_port" --lifetime 3600 >"$tmp/ceiling.log" 2>&1 &
  cpid=$!
  pids+=("$cpid")
  "$loadgen" wait-ready --endpoint "127.0.0.1:$ceiling_port" --since-ns "$(date +%s%N)" --any-status >/dev/null
  ceiling_creds="$tmp/creds-stsd"
  if [ ! -f "$ceiling_creds" ]; then
    # Same-sized fake credentials (the ceiling checks nothing).
    printf 'user AKIAEXAMPLEKEYID0001 %s\nsession ASIAEXAMPLEKEYID0001 %s %s\nrole arn:aws:iam::123456789012:role/bench-role\n' "$root_secret" "$root_secret" \
      "$(head -c 300 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')" >"$tmp/creds-fake"
    ceiling_creds="$tmp/creds-fake"
  fi
fi

if [[ "$skip" != *" moto "* ]]; then
  venv="$here/.venv"
  if ! [ -x "$venv/bin/moto_server" ]; then
    log "moto: installing moto[server] into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --disable-pip-version-check -q 'moto[server]'
  fi
  meta "moto" "moto_server $("$venv/bin/python" -c 'import moto; print(moto.__version__)' 2>/dev/null || echo '?') (Python $("$venv/bin/python" -c 'import sys; print(sys.version.split()[0])')), does not check signatures; same requests"
  log "moto_server"
  moto_port="$("$loadgen" free-port)"
  "$venv/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$tmp/moto.log" 2>&1 &
  mpid=$!
  pids+=("$mpid")
  "$loadgen" wait-ready --endpoint "127.0.0.1:$moto_port" --since-ns "$(date +%s%N)" --any-status --path / --timeout 60 >/dev/null
  STSD_ROOT_ACCESS_KEY_ID=AKIAEXAMPLEROOT00001 "$loadgen" setup --endpoint "127.0.0.1:$moto_port" --out "$tmp/creds-moto"
fi

# nginx end to end (issue 16): the README's nginx snippet (auth_request to stsd) in front of a static upstream,
# beside nginx alone proxying to the same upstream, both sent the same signed GET (workload authz-proxy).
npid="" nginx_port="" nginx_alone_port=""
if [ -n "$stsd_pid" ] && [[ "$skip" != *" nginx "* ]]; then
  if ! command -v nginx >/dev/null 2>&1; then
    log "nginx is not installed: the end-to-end authorizer workload is skipped (apt-get install nginx-light)"
  else
    nginx_port="$("$loadgen" free-port)"
    nginx_alone_port="$("$loadgen" free-port)"
    upstream_port="$("$loadgen" free-port)"
    mkdir -p "$tmp/nginx"
    snippet="$(awk '/^```nginx$/{f=1; next} f && /^```$/{exit} f' "$repo/README.md" \
      | sed -e "s/listen 8080;/listen 127.0.0.1:$nginx_port;/" \
            -e "s#127.0.0.1:8754#127.0.0.1:$stsd_port#" \
            -e "s#http://127.0.0.1:9000#http://127.0.0.1:$upstream_port#")"
    cat >"$tmp/nginx/nginx.conf" <<NGINX
worker_processes auto;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    # The upstream: a static answer.
    server {
        listen 127.0.0.1:$upstream_port;
        location / { default_type text/plain; return 200 "ok\n"; }
    }
    # nginx alone in front of the upstream.
    server {
        listen 127.0.0.1:$nginx_alone_port;
        location / { proxy_pass http://127.0.0.1:$upstream_port; }
    }
    # README.md's snippet ("Protect your own API with stsd"), ports substituted.
$snippet
}
NGINX
    nginx -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx" >"$tmp/nginx/nginx.log" 2>&1 &
    npid=$!
    pids+=("$npid")
    "$loadgen" wait-ready --endpoint "127.0.0.1:$nginx_alone_port" --since-ns "$(date +%s%N)" --any-status --path / >/dev/null
    meta "nginx" "$(nginx -v 2>&1 | sed 's/^nginx version: //'), worker_processes auto, README.md's snippet (auth_request to stsd over kept-alive connections; the API upstream without keep-alive) vs a plain proxy_pass; the upstream is a static return 200 in the same nginx"
  fi
fi

# one_run NAME PORT PID CREDS WORKLOAD RUN: one run of one workload at each connection count.
one_run() {
  "$loadgen" run --endpoint "127.0.0.1:$2" --target "$1" --creds "$4" --workload "$5" \
    --conns "$conns" --runs 1 --first-run "$6" --duration "$duration" --warmup "$warmup" --pid "$3" \
    --out "$results"
}

# one_run_wrk NAME PORT PID CREDS WORKLOAD RUN: the same run driven by wrk (results as target NAME@wrk):
# at each connection count, a script with a freshly signed request (valid 15 minutes), an unmeasured
# warm-up run, then the measured run; wrk wants at least one connection per thread.
wrk_secs() { awk -v d="$1" 'BEGIN { s = int(d); if (s < d) s++; if (s < 1) s = 1; print s }'; }
one_run_wrk() {
  local c threads la script="$tmp/wrk-$5.lua" out="$tmp/wrk.out"
  for c in ${conns//,/ }; do
    threads=2
    [ "$c" -ge 2 ] || threads=1
    "$loadgen" wrk-script --endpoint "127.0.0.1:$2" --creds "$4" --workload "$5" --out "$script"
    wrk -t "$threads" -c "$c" -d "$(wrk_secs "$warmup")s" -s "$script" "http://127.0.0.1:$2/" >/dev/null
    la="$(cut -d' ' -f1 /proc/loadavg)"
    echo 5 >"/proc/$3/clear_refs" 2>/dev/null || true
    if ! wrk -t "$threads" -c "$c" -d "$(wrk_secs "$duration")s" --latency -s "$script" "http://127.0.0.1:$2/" >"$out"; then
      echo "run.sh: wrk failed; its output:" >&2
      cat "$out" >&2
      exit 1
    fi
    "$loadgen" wrk-result --input "$out" --target "$1@wrk" --workload "$5" --conns "$c" --run "$6" \
      --pid "$3" --loadavg "$la" --out "$results"
    sleep 0.5
  done
}

# run_turn NAME PORT PID CREDS WORKLOAD RUN: one run with each selected generator, the in-repo one first.
run_turn() {
  [ "$generator" = wrk ] || one_run "$@"
  [ "$generator" = loadgen ] || one_run_wrk "$@"
}

# has_role CREDS: the setup could create the assume-role workload's role on that target.
has_role() { grep -q '^role ' "$1" 2>/dev/null; }

for w in gst gci-session gci-longterm assume-role authz iam-read authz-proxy; do
  [ -z "${STSD_BENCH_ONLY:-}" ] || [[ " $STSD_BENCH_ONLY " == *" $w "* ]] || continue
  for r in $(seq 1 "$runs"); do
    if [ "$w" = authz-proxy ]; then  # nginx + stsd, then nginx alone; the same signed GET
      [ -n "$npid" ] || continue
      log "$w, turn $r of $runs (connections $conns, ${duration} s per run)"
      run_turn nginx+stsd "$nginx_port" "$stsd_pid" "$tmp/creds-stsd" "$w" "$r"
      run_turn nginx "$nginx_alone_port" "$npid" "$tmp/creds-stsd" "$w" "$r"
      continue
    fi
    log "$w, turn $r of $runs (connections $conns, ${duration} s per run)"
    if [ "$w" = assume-role ]; then
      [ -n "$stsd_pid" ] && has_role "$tmp/creds-stsd" && run_turn stsd "$stsd_port" "$stsd_pid" "$tmp/creds-stsd" "$w" "$r"
      [ -n "$cpid" ] && has_role "$ceiling_creds" && run_turn ceiling "$ceiling_port" "$cpid" "$ceiling_creds" "$w" "$r"
      [ -n "$mpid" ] && has_role "$tmp/creds-moto" && one_run moto "$moto_port" "$mpid" "$tmp/creds-moto" "$w" "$r"
      continue
    fi
    if [ "$w" = authz ]; then  # moto has no authorizer endpoint
      [ -n "$stsd_pid" ] && run_turn stsd "$stsd_port" "$stsd_pid" "$tmp/creds-stsd" "$w" "$r"
      [ -n "$cpid" ] && run_turn ceiling "$ceiling_port" "$cpid" "$ceiling_creds" "$w" "$r"
      continue
    fi
    [ -n "$stsd_pid" ] && run_turn stsd "$stsd_port" "$stsd_pid" "$tmp/creds-stsd" "$w" "$r"
    [ -n "$cpid" ] && run_turn ceiling "$ceiling_port" "$cpid" "$ceiling_creds" "$w" "$r"
    [ -n "$mpid" ] && one_run moto "$moto_port" "$mpid" "$tmp/creds-moto" "$w" "$r"
  done
done
[ -n "$cpid" ] && stop "$cpid"
[ -n "$mpid" ] && stop "$mpid"
[ -n "$npid" ] && stop "$npid"

if [ -n "$stsd_pid" ]; then
  if [ "$mfa_n" -gt 0 ]; then
    meta "MFA workload" "$mfa_n users with enabled virtual devices (enabled with the codes of the previous and current step: drift 0). Each run sends every code the devices accept when it starts (steps now-1..now+1 not used before, at most 3 per device; a device stays on one connection), signed per request, after waiting for the next 30-s step when none is left or the run would cross a step: the req/s of draining a burst, not a sustainable rate (D devices allow D codes per 30 s)"
    run_load stsd "$stsd_port" "$stsd_pid" "$tmp/creds-stsd" gst-mfa
  fi
  # IAM writes last: they grow the database that the other workloads read.
  for w in iam-user iam-mfa; do
    [ -z "${STSD_BENCH_ONLY:-}" ] || [[ " $STSD_BENCH_ONLY " == *" $w "* ]] || continue
    [[ "$skip" == *" iam "* ]] && continue
    meta "IAM write workloads" "operations signed as root, each for a new user of its own: (h) CreateUser + CreateAccessKey, (i) CreateUser + CreateVirtualMFADevice + EnableMFADevice; req/s counts operations (every request of an operation answered 2xx, else a failure), latency from the first request to the last answer; every write is durable before its answer (SQLite synchronous=FULL)"
    run_load stsd "$stsd_port" "$stsd_pid" "$tmp/creds-stsd" "$w"
  done
  meta "stsd peak RSS over its life (MiB)" "$(awk '/VmHWM/{printf "%.1f", $2/1024}' "/proc/$stsd_pid/status")"
  stop "$stsd_pid"
fi

report="$here/out/results-$ts.md"
"$loadgen" report --title "stsd load benchmark" --results "$results" --meta "$meta" --out "$report"
cp "$results" "$here/out/results-$ts.tsv"
log "written $report"
