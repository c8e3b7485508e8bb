#!/usr/bin/env bash
# Cross-SDK conformance run: starts stsd on a free loopback port with a fresh data dir and generated root
# credentials, then runs the Python (boto3/botocore/awscli, pytest) and JavaScript (@aws-sdk/client-sts,
# node --test) suites against it.
#
#   tests/clients/run.sh <path-to-stsd-binary>
#
# Needs only python3 (>= 3.10, with pip) and node >= 20 with npm. Installs into <repo>/.venv-test and
# tests/clients/js/node_modules (both git-ignored) and skips the install when nothing changed.
# Environment knobs: STSD_CLIENT_SUITES="python js" (which suites to run), STSD_KEEP_TMP=1 (keep the
# temporary data dir and server log), PYTEST_ADDOPTS (extra pytest arguments, read by pytest itself).
set -euo pipefail

usage() { echo "usage: $0 <path-to-stsd-binary>" >&2; exit 2; }
[ "$#" -eq 1 ] || usage

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

bin="$1"
case "$bin" in /*) ;; *) bin="$PWD/$bin" ;; esac
if [ ! -x "$bin" ] || [ -d "$bin" ]; then
  echo "run.sh: $1 is not an executable file" >&2
  exit 2
fi

suites="${STSD_CLIENT_SUITES:-python js}"
log() { printf '== %s\n' "$*"; }

# ----------------------------------------------------------------------------------------------- python deps
venv="$repo/.venv-test"
req="$here/python/requirements.txt"
py="$venv/bin/python"
stamp="$venv/.stsd-requirements.sha256"

python_deps() {
  local want
  want="$(python3 -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$req")"
  if [ -x "$py" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
    && "$py" -c 'import boto3, botocore, pytest, pyotp' 2>/dev/null && [ -x "$venv/bin/aws" ]; then
    log "python deps: up to date ($venv)"
    return
  fi
  if ! [ -x "$py" ] || ! "$py" -m pip --version >/dev/null 2>&1; then
    log "python deps: creating $venv"
    rm -rf "$venv"
    if ! python3 -m venv "$venv" 2>/dev/null; then
      # Debian without python3-venv has no ensurepip: make the venv bare, then bootstrap pip with the
      # system pip (which can install into another interpreter's environment with --python).
      rm -rf "$venv"
      python3 -m venv --without-pip "$venv"
      python3 -m pip --python "$py" install --disable-pip-version-check -q pip
    fi
  fi
  log "python deps: installing $req"
  "$py" -m pip install --disable-pip-version-check -q -r "$req"
  printf '%s\n' "$want" >"$stamp"
}

# ----------------------------------------------------------------------------------------------- js deps
jsdir="$here/js"

js_deps() {
  local lock="$jsdir/package-lock.json" jstamp="$jsdir/node_modules/.stsd-lock.sha256" want
  if [ -f "$lock" ]; then
    want="$(python3 -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$lock")"
    if [ -f "$jstamp" ] && [ "$(cat "$jstamp")" = "$want" ]; then
      log "js deps: up to date ($jsdir/node_modules)"
      return
    fi
    log "js deps: npm ci"
    (cd "$jsdir" && npm ci --no-audit --no-fund --loglevel=error)
    printf '%s\n' "$want" >"$jstamp"
  else
    log "js deps: no package-lock.json, npm install"
    (cd "$jsdir" && npm install --no-audit --no-fund --loglevel=error)
  fi
}

case " $suites " in *" python "*) python_deps ;; esac
case " $suites " in *" js "*) js_deps ;; esac

# ----------------------------------------------------------------------------------------------- server
tmp="$(mktemp -d "${TMPDIR:-/tmp}/stsd-clients.XXXXXX")"
data_dir="$tmp/data"
mkdir -p "$data_dir"
server_log="$tmp/server.log"
server_pid=""
status=1

print_server_log() {
  echo "---------------------------------------------------------------- server log ($server_log)"
  cat "$server_log" 2>/dev/null || true
  echo "---------------------------------------------------------------- end of server log"
}

stop_server() {
  [ -n "$server_pid" ] || return 0
  if kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    local i
    for i in $(seq 1 100); do # up to 10 s for a graceful shutdown
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$server_pid" 2>/dev/null; then
      echo "run.sh: stsd did not exit within 10 s of SIGTERM; killing it" >&2
      kill -KILL "$server_pid" 2>/dev/null || true
      status=1
    fi
  fi
  local rc=0
  wait "$server_pid" 2>/dev/null || rc=$?
  server_pid=""
  if [ "$rc" -ne 0 ]; then
    echo "run.sh: note: stsd exited with status $rc after SIGTERM" >&2
  fi
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ "$status" -eq 0 ] && [ "$rc" -ne 0 ] && status=$rc
  stop_server
  if [ "$status" -ne 0 ]; then
    print_server_log
  fi
  if [ -n "${STSD_KEEP_TMP:-}" ]; then
    echo "run.sh: kept $tmp" >&2
  else
    rm -rf "$tmp"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Root credentials: AKIA + 16 base32 chars encoding a random 12-digit account (as AWS key ids do, wire
# reference section 4), and a 40-char base64 secret. The server is given the same account id, so the root
# key id and the account agree as they do on AWS.
read -r account_id root_key root_secret < <(python3 - <<'PY'
import base64, secrets
account = 100_000_000_000 + secrets.randbelow(900_000_000_000)
raw = bytearray(secrets.token_bytes(10))
x = ((account & 0xFFFFFFFFFF) << 7) | (raw[5] & 0x7F)
raw[:6] = x.to_bytes(6, "big")
print("%012d" % account, "AKIA" + base64.b32encode(bytes(raw)).decode()[:16], base64.b64encode(secrets.token_bytes(30)).decode())
PY
)

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_healthy PID URL TIMEOUT -> 0 healthy, 1 timed out, 2 process exited
wait_healthy() {
  python3 - "$@" <<'PY'
import os, sys, time, urllib.request
pid, url, timeout = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
deadline = time.monotonic() + timeout
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit(2)
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                sys.exit(0)
    except Exception:
        pass
    time.sleep(0.1)
sys.exit(1)
PY
}

started=""
for attempt in 1 2 3; do
  port="$(free_port)"
  log "starting stsd on 127.0.0.1:$port (data dir $data_dir)"
  # Only the settings below reach the server: no stray STSD_REGION / STSD_MASTER_KEY_FILE from the caller.
  env -u STSD_REGION -u STSD_MASTER_KEY_FILE -u STSD_LISTEN -u STSD_DATA_DIR \
    STSD_ACCOUNT_ID="$account_id" STSD_ROOT_ACCESS_KEY_ID="$root_key" STSD_ROOT_SECRET_ACCESS_KEY="$root_secret" \
    "$bin" serve --listen "127.0.0.1:$port" --data-dir "$data_dir" >>"$server_log" 2>&1 &
  server_pid=$!
  hrc=0
  wait_healthy "$server_pid" "http://127.0.0.1:$port/healthz" 30 || hrc=$?
  if [ "$hrc" -eq 0 ]; then
    started=1
    break
  fi
  if [ "$hrc" -eq 1 ]; then
    echo "run.sh: stsd did not answer GET /healthz with 200 within 30 s" >&2
    break
  fi
  # The process exited. Retry only if the port was taken between picking and binding.
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
  if ! grep -qiE 'address already in use|AddrInUse|os error 98' "$server_log"; then
    echo "run.sh: stsd exited before becoming healthy" >&2
    break
  fi
done
if [ -z "$started" ]; then
  status=1
  exit 1
fi
log "stsd is healthy (pid $server_pid)"

export STSD_ENDPOINT="http://127.0.0.1:$port"
export STSD_ROOT_ACCESS_KEY_ID="$root_key"
export STSD_ROOT_SECRET_ACCESS_KEY="$root_secret"
export STSD_BIN="$bin"
# stsd-creds (the client, test_creds.py): the stsd binary's sibling unless given.
export STSD_CREDS_BIN="${STSD_CREDS_BIN:-$(dirname "$bin")/stsd-creds}"
export STSD_DATA_DIR="$data_dir"
# Keep the SDKs away from any AWS configuration on this machine.
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY \
  AWS_ENDPOINT_URL AWS_ENDPOINT_URL_STS AWS_ENDPOINT_URL_IAM AWS_CA_BUNDLE AWS_REGION AWS_DEFAULT_REGION
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"

# ----------------------------------------------------------------------------------------------- suites
py_rc=0
js_rc=0
case " $suites " in *" python "*)
  log "python suites (pytest)"
  (cd "$here/python" && PYTHONDONTWRITEBYTECODE=1 "$py" -m pytest -p no:cacheprovider -v -rfE --tb=short .) || py_rc=$?
  ;;
esac
case " $suites " in *" js "*)
  log "js suite (node --test)"
  (cd "$jsdir" && node --test --test-reporter=tap --test-timeout=60000 sts.test.mjs) || js_rc=$?
  ;;
esac

log "results: python rc=$py_rc, js rc=$js_rc"
if [ "$py_rc" -eq 0 ] && [ "$js_rc" -eq 0 ]; then
  status=0
else
  status=1
fi
stop_server
exit "$status"
