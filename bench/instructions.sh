#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind (see bench/README.md, issue 20's twelfth
# round): a figure that does not depend on the machine's load, for comparing two builds when the
# difference is smaller than the noise of req/s.
#
#   bench/instructions.sh [--workloads "gst gci-session …"] [--requests-per-conn N] [--keep DIR]
#                         [--mfa-devices N] [--stsd BIN] [--ceiling BIN] [--no-build]
#
# stsd and stsd-ceiling each run under callgrind with instrumentation off. For each workload: a warm-up
# run uninstrumented, then exactly 4 × N requests (4 connections, N each, stsd-loadgen's replay client)
# with instrumentation on, and a dump. Requests are counted by stsd's own metrics (the ceiling: the
# generator's answers). Printed: user-space instructions per request, the part of them in SHA-256
# (valgrind hides SHA-NI, so sha2 runs its portable code here: about ten times the instructions it
# takes natively), and the rest as a multiple of the ceiling's. Kernel work is not counted.
#
# `gst-mfa` (with --mfa-devices N) is one burst of every code N freshly enrolled devices accept (one to
# three each, depending on where in its TOTP step the burst starts), not a fixed count; its figure moves
# a little with how many codes each key signs (later ones find their signing key cached) and with how
# the writer's batches form, so compare it over the same N and a few runs.
#
# Needs valgrind (Debian: apt-get install valgrind). Takes about a minute per workload.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
bin="${CARGO_TARGET_DIR:-$repo/target}/release"

workloads="gst gci-session gci-longterm"
mfa_devices=0
per_conn=2000
conns=4
keep=""
stsd_bin=""
ceiling_bin=""
build=1
while [ "$#" -gt 0 ]; do
  case "$1" in
    --workloads) workloads="$2"; shift 2 ;;
    --mfa-devices) mfa_devices="$2"; shift 2 ;;
    --requests-per-conn) per_conn="$2"; shift 2 ;;
    --keep) keep="$2"; shift 2 ;;
    --stsd) stsd_bin="$2"; shift 2 ;;
    --ceiling) ceiling_bin="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    *) echo "instructions.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$per_conn" in ''|*[!0-9]*) echo "instructions.sh: --requests-per-conn wants a number" >&2; exit 2 ;; esac
case "$mfa_devices" in ''|*[!0-9]*) echo "instructions.sh: --mfa-devices wants a number" >&2; exit 2 ;; esac
if [[ " $workloads " == *" gst-mfa "* ]] && [ "$mfa_devices" -eq 0 ]; then
  echo "instructions.sh: gst-mfa needs --mfa-devices N (e.g. 500)" >&2
  exit 2
fi
for tool in valgrind callgrind_control callgrind_annotate curl; do
  command -v "$tool" >/dev/null || { echo "instructions.sh: needs $tool (Debian: apt-get install valgrind curl)" >&2; exit 2; }
done
if [ "$build" = 1 ]; then
  (cd "$repo" && cargo build --release -p stsd -p stsd-loadgen --bins)
fi
stsd_bin="${stsd_bin:-$bin/stsd}"
ceiling_bin="${ceiling_bin:-$bin/stsd-ceiling}"
loadgen="$bin/stsd-loadgen"

tmp="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "$keep" ]; then mkdir -p "$keep" && cp -r "$tmp"/. "$keep"/; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_http PORT PID: until the port answers (valgrind starts slowly), at most 120 s.
wait_http() {
  for _ in $(seq 600); do
    kill -0 "$2" 2>/dev/null || { echo "instructions.sh: the server exited; its log:" >&2; cat "$tmp"/*.log >&2; exit 1; }
    curl -s -o /dev/null "http://127.0.0.1:$1/healthz" && return 0
    sleep 0.2
  done
  echo "instructions.sh: the server did not answer within 120 s" >&2
  exit 1
}

# stsd's answered requests so far (all actions and outcomes, and the authorizer's decisions, which
# stsd_requests_total does not count), from its metrics.
served() {
  curl -s "http://127.0.0.1:$1/metrics" |
    awk '/^(stsd_requests_total|stsd_authorizer_decisions_total)\{/ { n += $NF } END { printf "%d\n", n }'
}

# instructions FILE: total Ir and the part in sha2, from one callgrind dump.
instructions() {
  local total sha
  total="$(awk '/^totals:/ { print $2; exit }' "$1")"
  sha="$(callgrind_annotate --auto=no --threshold=100 "$1" 2>/dev/null |
    awk '/sha2[:-]/ { gsub(",", "", $1); if ($1 ~ /^[0-9]+$/) s += $1 } END { printf "%d\n", s }')"
  echo "$total $sha"
}

# run_load PORT CREDS WORKLOAD PER_CONN: one replay run of exactly CONNS × PER_CONN requests.
run_load() {
  "$loadgen" run --endpoint "127.0.0.1:$1" --target x --creds "$2" --workload "$3" --conns "$conns" \
    --runs 1 --duration 600 --warmup 0 --max-requests-per-conn "$4" --out "$tmp/load.tsv" >/dev/null 2>&1
}

# dumps NAME: how many callgrind dumps of NAME exist.
dumps() { find "$tmp" -maxdepth 1 -name "$1.cg.*" | wc -l; }

# mfa_burst PORT CREDS: one gst-mfa run (every code the devices have, 16 connections; not replayable).
mfa_burst() {
  "$loadgen" run --endpoint "127.0.0.1:$1" --target x --creds "$2" --workload gst-mfa --conns 16 \
    --runs 1 --duration 60 --warmup 0 --out "$tmp/load.tsv" >/dev/null 2>&1
}

# measure NAME PORT PID CREDS WORKLOAD: prints "WORKLOAD REQUESTS TOTAL SHA".
measure() {
  local vpid=$3 before after n
  [ "$5" = gst-mfa ] || run_load "$2" "$4" "$5" 200
  before="$( [ "$1" = stsd ] && served "$2" || echo 0)"
  callgrind_control -i on "$vpid" >/dev/null 2>&1
  if [ "$5" = gst-mfa ]; then
    mfa_burst "$2" "$4"
  else
    run_load "$2" "$4" "$5" "$per_conn"
  fi
  callgrind_control -i off "$vpid" >/dev/null 2>&1
  # A refused request costs less than a served one: a run with any non-2xx answer is not a figure.
  local refused
  refused="$(awk -F'\t' '!/^#/ { n = $10 } END { print n + 0 }' "$tmp/load.tsv")"
  [ "$refused" -eq 0 ] || { echo "instructions.sh: $5 on $1: $refused non-2xx answers" >&2; exit 1; }
  if [ "$1" = stsd ]; then
    after="$(served "$2")"
    n=$((after - before))
  else
    n="$(awk -F'\t' '!/^#/ { n = $5 } END { print n }' "$tmp/load.tsv")"
  fi
  local dumps_before dump
  dumps_before="$(dumps "$1")"
  callgrind_control -d "$vpid" >/dev/null 2>&1
  for _ in $(seq 100); do
    [ "$(dumps "$1")" -gt "$dumps_before" ] && break
    sleep 0.1
  done
  dump="$(find "$tmp" -maxdepth 1 -name "$1.cg.*" -printf '%T@ %p\n' | sort -n | tail -n1 | cut -d' ' -f2)"
  [ -n "$dump" ] || { echo "instructions.sh: callgrind wrote no dump for $1" >&2; exit 1; }
  mv "$dump" "$tmp/$1-$5.callgrind"
  echo "$5 $n $(instructions "$tmp/$1-$5.callgrind")"
}

export STSD_ROOT_ACCESS_KEY_ID=AKIABENCHROOT0000001 STSD_ROOT_SECRET_ACCESS_KEY=secretsecretsecretsecretsecretsecret1234

# stsd under callgrind, configured as bench/run.sh configures it (the authorizer workload's API:
# bench/loadgen/src/request.rs, AUTHZ_HOST and AUTHZ_PATH).
printf '[authz]\ntrusted_proxies = ["127.0.0.1/32"]\n[[authz.api]]\nid = "orders"\nstage = "prod"\nhosts = ["orders.internal"]\n' >"$tmp/stsd.toml"
export STSD_CONFIG="$tmp/stsd.toml"
sport="$(free_port)"
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$tmp/stsd.cg" \
  "$stsd_bin" serve --listen "127.0.0.1:$sport" --data-dir "$tmp/data" >"$tmp/stsd.log" 2>&1 &
spid=$!
pids+=("$spid")
wait_http "$sport" "$spid"
"$loadgen" setup --endpoint "127.0.0.1:$sport" --mfa-devices "$mfa_devices" --out "$tmp/creds" >/dev/null
results=()
for w in $workloads; do
  results+=("$(measure stsd "$sport" "$spid" "$tmp/creds" "$w")")
done
kill "$spid" 2>/dev/null || true

# The ceiling under callgrind (one workload: it answers every request alike).
cport="$(free_port)"
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$tmp/ceiling.cg" \
  "$ceiling_bin" --listen "127.0.0.1:$cport" >"$tmp/ceiling.log" 2>&1 &
cpid=$!
pids+=("$cpid")
for _ in $(seq 600); do
  kill -0 "$cpid" 2>/dev/null || { echo "instructions.sh: the ceiling exited" >&2; cat "$tmp/ceiling.log" >&2; exit 1; }
  grep -q "listening on" "$tmp/ceiling.log" && break
  sleep 0.2
done
read -r _ cn ctotal csha < <(measure ceiling "$cport" "$cpid" "$tmp/creds" gst)
kill "$cpid" 2>/dev/null || true
[ "${cn:-0}" -gt 0 ] || { echo "instructions.sh: the ceiling answered nothing" >&2; exit 1; }
ceiling_per=$(( (ctotal - csha) / cn ))

echo "| target, workload | requests | instructions per request | of which SHA-256 (portable code) | the rest | the rest vs the ceiling |"
echo "|---|---:|---:|---:|---:|---:|"
for r in "${results[@]}"; do
  read -r w n total sha <<<"$r"
  [ "${n:-0}" -gt 0 ] || { echo "instructions.sh: $w: no request counted" >&2; exit 1; }
  rest=$(( (total - sha) / n ))
  echo "| stsd, $w | $n | $((total / n)) | $((sha / n)) | $rest | $(awk -v a="$rest" -v b="$ceiling_per" 'BEGIN { printf "%.2f ×", a / b }') |"
done
echo "| ceiling | $cn | $((ctotal / cn)) | $((csha / cn)) | $ceiling_per | 1.00 × |"
