"""stsd-creds end to end (issue 18): the real binary against the suite's stsd, driven by the AWS CLI, boto3, a
pseudo-terminal and plain subprocesses.

Every test enrols its own user and virtual MFA device (create_mfa_user), so the next step's code is usable at
once; a test needing a second MFA session gets it from an RFC 6238 command (pyotp, the code of the step after
the current one), which stsd-creds waits on until it shows a code not sent yet. GetSessionToken calls are
counted in the server's /metrics (tests run one at a time, so a difference is this test's).
"""

import fcntl
import json
import os
import pty
import re
import select
import signal
import stat
import subprocess
import sys
import time
import urllib.request

import boto3
import pytest

from test_tls import tls_server  # noqa: F401 (fixture)
from stsd_support import (
    REGION,
    SESSION_KEY_RE,
    client_config,
    create_mfa_user,
    required_env,
    totp_code,
    wrong_code,
)

GST_RE = re.compile(r'^stsd_requests_total\{action="GetSessionToken",outcome="([^"]+)"\} (\d+)$', re.M)
CREDENTIAL_PROCESS_KEYS = {"Version", "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}


@pytest.fixture(scope="session")
def creds_bin():
    path = os.environ.get("STSD_CREDS_BIN") or os.path.join(
        os.path.dirname(required_env("STSD_BIN")), "stsd-creds"
    )
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"stsd-creds binary not found at {path}: `cargo build -p stsd-creds` or set STSD_CREDS_BIN")
    return path


def gst_calls(endpoint, outcome=None):
    """GetSessionToken requests the server has counted (all outcomes, or one)."""
    text = urllib.request.urlopen(endpoint + "/metrics", timeout=5).read().decode()
    return sum(int(n) for o, n in GST_RE.findall(text) if outcome is None or o == outcome)


class Setup:
    """A temporary AWS config for one MFA user: profile `P-mfa` (read by stsd-creds: key, mfa_serial, endpoint)
    and profile `P` (used by the tools: credential_process), a cache dir, and a TOTP command that logs calls."""

    def __init__(self, tmp_path, endpoint, iam, creds_bin, mfa_process=True, extra=""):
        self.tmp = tmp_path
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.endpoint = endpoint
        self.bin = creds_bin
        self.user = create_mfa_user(iam)
        self.cache_dir = tmp_path / "cache"
        self.calls = tmp_path / "mfa-calls"
        script = tmp_path / "totp.py"
        script.write_text(
            "import sys, time, pyotp\n"
            "open(sys.argv[2], 'a').write('x')\n"
            "print(pyotp.TOTP(sys.argv[1]).at(time.time() + 30))\n"
        )
        self.mfa_command = f"{sys.executable} {script} {self.user.seed} {self.calls}"
        mfa_line = f"mfa_process = {self.mfa_command}\n" if mfa_process else ""
        self.config = tmp_path / "config"
        self.credentials = tmp_path / "credentials"
        self.config.write_text(
            f"[profile alice-mfa]\n"
            f"mfa_serial = {self.user.serial}\n"
            f"endpoint_url = {endpoint}\n"
            f"region = {REGION}\n"
            f"{mfa_line}{extra}\n"
            f"[profile alice]\n"
            f"credential_process = {creds_bin} process --profile alice-mfa\n"
            f"endpoint_url = {endpoint}\n"
            f"region = {REGION}\n"
        )
        self.credentials.write_text(
            f"[alice-mfa]\naws_access_key_id = {self.user.creds.access_key_id}\n"
            f"aws_secret_access_key = {self.user.creds.secret_access_key}\n"
        )

    def env(self, **extra):
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("AWS_ENDPOINT_URL") or k in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                del env[k]
        env.update(
            AWS_CONFIG_FILE=str(self.config),
            AWS_SHARED_CREDENTIALS_FILE=str(self.credentials),
            STSD_CREDS_CACHE_DIR=str(self.cache_dir),
        )
        env.update(extra)
        return env

    def run(self, *args, timeout=120, **kw):
        return subprocess.run(
            [self.bin, *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            **kw,
        )

    def mfa_calls(self):
        return len(self.calls.read_text()) if self.calls.exists() else 0

    def session_file(self, profile="alice-mfa"):
        return self.cache_dir / f"session-{profile}.json"

    def next_code(self):
        """The code stsd accepts right after enrolment: the next step's."""
        return totp_code(self.user.seed, self.user.step + 1)


def assert_process_json(stdout):
    doc = json.loads(stdout)
    assert set(doc) == CREDENTIAL_PROCESS_KEYS, doc.keys()
    assert doc["Version"] == 1
    assert SESSION_KEY_RE.match(doc["AccessKeyId"]), doc["AccessKeyId"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", doc["Expiration"]), doc["Expiration"]
    return doc


def assert_mfa_session(endpoint, doc_or_creds):
    """The credentials work and carry MFA: stsd lets sessions call IAM only when MFA was used."""
    c = doc_or_creds
    iam = boto3.session.Session().client(
        "iam",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=c["AccessKeyId"],
        aws_secret_access_key=c["SecretAccessKey"],
        aws_session_token=c.get("SessionToken") or c.get("Token"),
        config=client_config(),
    )
    return iam.get_user()["User"]


# ---------------------------------------------------------------- credential_process


def test_credential_process_with_boto3_and_awscli_one_call(tmp_path, endpoint, root_iam_client, creds_bin, monkeypatch):
    s = Setup(tmp_path, endpoint, root_iam_client, creds_bin)
    before = gst_calls(endpoint)
    for k, v in s.env().items():
        monkeypatch.setenv(k, v)
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)

    keys = set()
    for _ in range(3):  # three sessions, as three programs would
        session = boto3.session.Session(profile_name="alice")
        sts = session.client("sts", config=client_config())
        for _ in range(3):
            ident = sts.get_caller_identity()
            assert ident["Arn"].endswith(f":user/{s.user.name}"), ident
        frozen = session.get_credentials().get_frozen_credentials()
        keys.add(frozen.access_key)
        # MFA session: IAM is open to it
        iam = session.client("iam", config=client_config())
        assert iam.get_user()["User"]["UserName"] == s.user.name

    aws = os.path.join(os.path.dirname(sys.executable), "aws")
    for _ in range(3):
        r = subprocess.run(
            [aws, "sts", "get-caller-identity", "--profile", "alice", "--output", "json"],
            env=s.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["Arn"].endswith(f":user/{s.user.name}")

    assert len(keys) == 1 and SESSION_KEY_RE.match(keys.pop())
    assert gst_calls(endpoint) - before == 1, "many calls, one GetSessionToken"
    assert s.mfa_calls() == 1


def test_process_prints_only_the_json_and_cache_is_private(tmp_path, endpoint, root_iam_client, creds_bin):
    s = Setup(tmp_path, endpoint, root_iam_client, creds_bin)
    r = s.run("process", "--profile", "alice-mfa")
    assert r.returncode == 0, r.stderr
    doc = assert_process_json(r.stdout)
    assert assert_mfa_session(endpoint, doc)["UserName"] == s.user.name
    # secrets never on stderr
    assert doc["SecretAccessKey"] not in r.stderr and doc["SessionToken"] not in r.stderr

    assert stat.S_IMODE(os.stat(s.cache_dir).st_mode) == 0o700
    files = list(s.cache_dir.iterdir())
    assert s.session_file() in files, files
    for f in files:
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600, (f, oct(os.stat(f).st_mode))

    # cached: same credentials, no MFA command, no call
    before = gst_calls(endpoint)
    r2 = s.run("process", "--profile", "alice-mfa")
    assert r2.returncode == 0, r2.stderr
    assert json.loads(r2.stdout) == doc
    assert gst_calls(endpoint) == before
    assert s.mfa_calls() == 1

    # export formats carry the same session
    r3 = s.run("export", "--profile", "alice-mfa", "--format", "env")
    assert r3.returncode == 0, r3.stderr
    assert f"export AWS_ACCESS_KEY_ID='{doc['AccessKeyId']}'" in r3.stdout
    assert f"export AWS_ENDPOINT_URL_STS='{endpoint}'" in r3.stdout
    r4 = s.run("export", "--profile", "alice-mfa", "--format", "ini")
    assert f"aws_session_token = {doc['SessionToken']}" in r4.stdout
    r5 = s.run("export", "--profile", "alice-mfa", "--format", "json")
    assert json.loads(r5.stdout) == doc

    # logout drops it
    r6 = s.run("logout", "--profile", "alice-mfa")
    assert r6.returncode == 0 and not s.session_file().exists()


def test_ten_concurrent_process_calls_share_one_prompt_and_one_call(tmp_path, endpoint, root_iam_client, creds_bin):
    s = Setup(tmp_path, endpoint, root_iam_client, creds_bin)
    before = gst_calls(endpoint)
    # All ten find no session and queue on the profile's lock (held here until they are all started).
    s.cache_dir.mkdir(mode=0o700)
    with open(s.cache_dir / "session-alice-mfa.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        procs = [
            subprocess.Popen(
                [creds_bin, "process", "--profile", "alice-mfa"],
                env=s.env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
            )
            for _ in range(10)
        ]
        time.sleep(3)
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    docs = [assert_process_json(o) for o, _ in outs]
    assert len({d["AccessKeyId"] for d in docs}) == 1
    assert gst_calls(endpoint) - before == 1
    assert s.mfa_calls() == 1


def test_ten_concurrent_calls_with_wrong_codes_make_one_failed_call(tmp_path, endpoint, root_iam_client, creds_bin):
    """The first refusal is everyone's answer: the nine that waited for the lock fail with it, and send nothing."""
    s = Setup(tmp_path, endpoint, root_iam_client, creds_bin, mfa_process=False)
    valid = {totp_code(s.user.seed, s.user.step + d) for d in range(-3, 5)}
    codes = [c for c in ("%06d" % n for n in range(100000, 100100)) if c not in valid][:10]
    before = gst_calls(endpoint)
    # Hold the profile's lock (flock, as std's File::lock) until all ten are started, so all ten wait for it.
    s.cache_dir.mkdir(mode=0o700)
    with open(s.cache_dir / "session-alice-mfa.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        procs = [
            subprocess.Popen(
                [creds_bin, "process", "--profile", "alice-mfa", "--mfa-code", code],
                env=s.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
            )
            for code in codes
        ]
        time.sleep(3)
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode != 0 for p in procs)
    assert all(o == "" for o, _ in outs)
    assert all("AccessDenied: MultiFactorAuthentication failed" in e for _, e in outs), [e for _, e in outs]
    assert sum("another stsd-creds for this profile just failed" in e for _, e in outs) == 9
    assert gst_calls(endpoint) - before == 1


# ---------------------------------------------------------------- exec


def test_exec_child_sees_the_mfa_session_and_exit_status(tmp_path, endpoint, root_iam_client, creds_bin):
    s = Setup(tmp_path, endpoint, root_iam_client, creds_bin)
    child = (
        "import boto3, json, os, sys\n"
        "ident = boto3.client('sts').get_caller_identity()\n"
        "user = boto3.client('iam').get_user()['User']['UserName']\n"
        "print(json.dumps({'arn': ident['Arn'], 'user': user, 'key': os.environ['AWS_ACCESS_KEY_ID'],\n"
        "  'exp': os.environ['AWS_CREDENTIAL_EXPIRATION'], 'sts': os.environ.get('AWS_ENDPOINT_URL_STS'),\n"
        "  'region': os.environ.get('AWS_REGION'), 'profile': os.environ.get('AWS_PROFILE')}))\n"
        "sys.exit(7)\n"
    )
    env = s.env(AWS_PROFILE="alice", AWS_ACCESS_KEY_ID="AKIASTALE", AWS_SECRET_ACCESS_KEY="stale")
    r = subprocess.run(
        [creds_bin, "exec", "--profile", "alice-mfa", "--", sys.executable, "-c", child],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 7, r.stderr
    out = json.loads(r.stdout)
    assert out["arn"].endswith(f":user/{s.user.name}") and out["user"] == s.user.name
    assert SESSION_KEY_RE.match(out["key"])
    assert out["sts"] == endpoint and out["region"] == REGION and out["profile"] is None
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", out["exp"])


# ---------------------------------------------------------------- serve


def test_serve_container_endpoint_used_by_boto3_across_a_refresh(tmp_path, endpoint, root_iam_client, creds_bin, monkeypatch):
    s = Setup(tmp_path, endpoint, root_iam_client, creds_bin)
    env_file = tmp_path / "serve.env"
    before = gst_calls(endpoint)
    # 900 s sessions (stsd's minimum) refreshed when fewer than 870 s are left: a new session ~30 s in
    proc = subprocess.Popen(
        [creds_bin, "serve", "--profile", "alice-mfa", "--env-file", str(env_file), "--duration", "900",
         "--refresh-margin", "870"],
        env=s.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (env_file.exists() and env_file.read_text().count("\n") >= 2):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "serve did not write its variables"
            time.sleep(0.1)
        assert stat.S_IMODE(os.stat(env_file).st_mode) == 0o600
        variables = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        uri, token = variables["AWS_CONTAINER_CREDENTIALS_FULL_URI"], variables["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
        assert uri.startswith("http://127.0.0.1:")

        # the token is required
        for headers in ({}, {"Authorization": "wrong"}):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(urllib.request.Request(uri, headers=headers), timeout=5)
            assert err.value.code == 401

        def served():
            req = urllib.request.Request(uri, headers={"Authorization": token})
            return json.loads(urllib.request.urlopen(req, timeout=5).read())

        first = served()
        assert set(first) == {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}

        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            monkeypatch.delenv(k, raising=False)
        monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri)
        monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", token)
        session = boto3.session.Session(region_name=REGION)
        sts = session.client("sts", endpoint_url=endpoint, config=client_config())
        assert sts.get_caller_identity()["Arn"].endswith(f":user/{s.user.name}")
        assert session.get_credentials().get_frozen_credentials().access_key == first["AccessKeyId"]

        # wait for the refresh (~30 s, plus up to one TOTP step for a code not used yet)
        deadline = time.monotonic() + 120
        while served()["AccessKeyId"] == first["AccessKeyId"]:
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "serve did not refresh the session"
            time.sleep(1)

        # boto3 refreshes through the endpoint (the session has under 15 minutes left) and gets the new one
        ident = sts.get_caller_identity()
        assert ident["Arn"].endswith(f":user/{s.user.name}")
        second = session.get_credentials().get_frozen_credentials()
        assert second.access_key != first["AccessKeyId"]
        assert SESSION_KEY_RE.match(second.access_key)
        assert assert_mfa_session(endpoint, served())["UserName"] == s.user.name
        assert gst_calls(endpoint) - before == 2
        assert s.mfa_calls() >= 2
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def test_exec_server_gives_the_child_a_container_endpoint(tmp_path, endpoint, root_iam_client, creds_bin):
    s = Setup(tmp_path, endpoint, root_iam_client, creds_bin)
    child = (
        "import boto3, json, os\n"
        f"sts = boto3.client('sts', endpoint_url={endpoint!r})\n"
        "print(json.dumps({'arn': sts.get_caller_identity()['Arn'],\n"
        "  'uri': os.environ.get('AWS_CONTAINER_CREDENTIALS_FULL_URI'),\n"
        "  'static': os.environ.get('AWS_ACCESS_KEY_ID')}))\n"
    )
    r = subprocess.run(
        [creds_bin, "exec", "--server", "--profile", "alice-mfa", "--", sys.executable, "-c", child],
        env=s.env(AWS_ACCESS_KEY_ID="AKIASTALE", AWS_SECRET_ACCESS_KEY="stale"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["arn"].endswith(f":user/{s.user.name}")
    assert out["uri"].startswith("http://127.0.0.1:") and out["static"] is None


def test_exec_server_passes_sigterm_to_the_child(tmp_path, endpoint, root_iam_client, creds_bin):
    s = Setup(tmp_path, endpoint, root_iam_client, creds_bin)
    ready = tmp_path / "ready"
    child = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(5))\n"
        f"open({str(ready)!r}, 'w').close()\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [creds_bin, "exec", "--server", "--profile", "alice-mfa", "--", sys.executable, "-c", child],
        env=s.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "child did not start"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 5, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()


JS_MODULES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "js", "node_modules")
JS_CHILD = """
const { STSClient, GetCallerIdentityCommand } = require("@aws-sdk/client-sts");
(async () => {
  const client = new STSClient({});
  const ident = await client.send(new GetCallerIdentityCommand({}));
  const creds = await client.config.credentials();
  console.log(JSON.stringify({ arn: ident.Arn, key: creds.accessKeyId }));
})().catch((e) => { console.error(e); process.exit(1); });
"""


def test_js_sdk_through_credential_process_exec_and_server(tmp_path, endpoint, root_iam_client, creds_bin):
    """@aws-sdk/client-sts's default chain: the profile's credential_process (and its endpoint_url), the
    variables of `exec`, and the container endpoint of `exec --server`: one session for all three."""
    import shutil

    node = shutil.which("node")
    if node is None or not os.path.isdir(os.path.join(JS_MODULES, "@aws-sdk", "client-sts")):
        pytest.skip("node or tests/clients/js/node_modules missing (run.sh installs them with the js suite)")
    s = Setup(tmp_path, endpoint, root_iam_client, creds_bin)
    before = gst_calls(endpoint)
    runs = [
        ([node, "-e", JS_CHILD], {"AWS_PROFILE": "alice"}),
        ([creds_bin, "exec", "--profile", "alice-mfa", "--", node, "-e", JS_CHILD], {}),
        ([creds_bin, "exec", "--server", "--profile", "alice-mfa", "--", node, "-e", JS_CHILD], {}),
    ]
    keys = set()
    for argv, extra in runs:
        r = subprocess.run(argv, env=s.env(NODE_PATH=os.path.abspath(JS_MODULES), **extra),
                           capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, (argv, r.stderr)
        out = json.loads(r.stdout)
        assert out["arn"].endswith(f":user/{s.user.name}"), out
        keys.add(out["key"])
    assert len(keys) == 1 and SESSION_KEY_RE.match(keys.pop())
    assert gst_calls(endpoint) - before == 1


# ---------------------------------------------------------------- the terminal prompt


def run_on_pty(argv, env, answers, timeout=90):
    """Runs argv with a pseudo-terminal as its controlling terminal (stdin/stderr on it too) and stdout on a
    pipe. Each time the terminal shows 'MFA code for', the next answer is typed. Returns (status, stdout,
    terminal transcript)."""
    out_r, out_w = os.pipe()
    pid, master = pty.fork()
    if pid == 0:  # child: session leader with the pty as controlling terminal
        os.dup2(out_w, 1)
        os.close(out_r)
        os.close(out_w)
        os.execve(argv[0], argv, env)
    os.close(out_w)
    transcript, stdout = b"", b""
    pending = list(answers)
    prompts_seen = 0
    deadline = time.monotonic() + timeout
    fds = [master, out_r]
    while fds and time.monotonic() < deadline:
        ready, _, _ = select.select(fds, [], [], 0.5)
        for fd in ready:
            try:
                data = os.read(fd, 4096)
            except OSError:
                data = b""
            if not data:
                fds.remove(fd)
                continue
            if fd == out_r:
                stdout += data
            else:
                transcript += data
                while transcript.count(b"MFA code for") > prompts_seen:
                    prompts_seen += 1
                    if pending:
                        os.write(master, pending.pop(0).encode() + b"\n")
    _, status = os.waitpid(pid, 0)
    os.close(master)
    os.close(out_r)
    return os.waitstatus_to_exitcode(status), stdout.decode(), transcript.decode(errors="replace")


def test_prompt_on_the_terminal_never_on_stdout(tmp_path, endpoint, root_iam_client, creds_bin):
    s = Setup(tmp_path, endpoint, root_iam_client, creds_bin, mfa_process=False)
    before = gst_calls(endpoint)
    status, stdout, tty = run_on_pty([creds_bin, "process", "--profile", "alice-mfa"], s.env(), [s.next_code()])
    assert status == 0, tty
    assert f"MFA code for {s.user.serial}" in tty
    doc = assert_process_json(stdout)
    assert "MFA code" not in stdout
    assert assert_mfa_session(endpoint, doc)["UserName"] == s.user.name
    assert gst_calls(endpoint) - before == 1


def test_wrong_code_gets_one_message_and_one_new_prompt(tmp_path, endpoint, root_iam_client, creds_bin):
    s = Setup(tmp_path, endpoint, root_iam_client, creds_bin, mfa_process=False)
    bad = wrong_code(s.user.seed, s.user.step)
    before_ok, before = gst_calls(endpoint, "OK"), gst_calls(endpoint)
    status, stdout, tty = run_on_pty(
        [creds_bin, "process", "--profile", "alice-mfa"], s.env(), [bad, s.next_code()]
    )
    assert status == 0, tty
    assert tty.count("MFA code for") == 2, tty
    assert tty.count("refused") == 1, tty
    assert "AccessDenied: MultiFactorAuthentication failed" in tty, tty
    assert_process_json(stdout)
    assert gst_calls(endpoint) - before == 2 and gst_calls(endpoint, "OK") - before_ok == 1


def test_two_wrong_codes_fail_cleanly(tmp_path, endpoint, root_iam_client, creds_bin):
    s = Setup(tmp_path, endpoint, root_iam_client, creds_bin, mfa_process=False)
    bad1 = wrong_code(s.user.seed, s.user.step)
    bad2 = "%06d" % ((int(bad1) + 1) % 1_000_000)
    if bad2 in {totp_code(s.user.seed, s.user.step + d) for d in range(-3, 4)}:
        bad2 = "%06d" % ((int(bad1) + 2) % 1_000_000)
    status, stdout, tty = run_on_pty(
        [creds_bin, "process", "--profile", "alice-mfa"], s.env(), [bad1, bad2, s.next_code()]
    )
    assert status != 0
    assert stdout == ""
    assert tty.count("MFA code for") == 2, tty
    assert f"GetSessionToken at {endpoint} failed: AccessDenied: MultiFactorAuthentication failed" in tty, tty


def test_no_terminal_and_no_code_source_is_a_clear_error(tmp_path, endpoint, root_iam_client, creds_bin):
    s = Setup(tmp_path, endpoint, root_iam_client, creds_bin, mfa_process=False)
    r = subprocess.run(
        [creds_bin, "process", "--profile", "alice-mfa"],
        env=s.env(),
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,  # no controlling terminal
    )
    assert r.returncode != 0 and r.stdout == ""
    assert "no terminal" in r.stderr and "--mfa-code" in r.stderr


# ---------------------------------------------------------------- codes are sent once


def test_replayed_code_is_never_sent(tmp_path, endpoint, root_iam_client, creds_bin):
    s = Setup(tmp_path, endpoint, root_iam_client, creds_bin, mfa_process=False)
    code = s.next_code()
    r = s.run("login", "--profile", "alice-mfa", "--mfa-code", code)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert s.run("logout", "--profile", "alice-mfa").returncode == 0
    before = gst_calls(endpoint)
    r = s.run("process", "--profile", "alice-mfa", "--mfa-code", code)
    assert r.returncode != 0 and r.stdout == ""
    assert "already sent" in r.stderr, r.stderr
    assert gst_calls(endpoint) == before, "a used code must not reach the server"


def test_expired_cache_gets_a_new_session_with_a_new_code(tmp_path, endpoint, root_iam_client, creds_bin):
    s = Setup(tmp_path, endpoint, root_iam_client, creds_bin)
    r = s.run("login", "--profile", "alice-mfa")
    assert r.returncode == 0, r.stderr
    assert "valid until" in r.stderr
    cached = json.loads(s.session_file().read_text())
    first_key = cached["AccessKeyId"]
    cached["Expiration"] = "2020-01-01T00:00:00Z"
    s.session_file().write_text(json.dumps(cached))

    before = gst_calls(endpoint)
    r = s.run("process", "--profile", "alice-mfa")  # the command shows the used code until the next step
    assert r.returncode == 0, r.stderr
    doc = assert_process_json(r.stdout)
    assert doc["AccessKeyId"] != first_key
    assert gst_calls(endpoint) - before == 1
    assert s.mfa_calls() >= 2
    assert assert_mfa_session(endpoint, doc)["UserName"] == s.user.name


# ---------------------------------------------------------------- errors


def test_sts_errors_are_code_and_message_with_the_endpoint(tmp_path, endpoint, root_iam_client, creds_bin):
    s = Setup(tmp_path, endpoint, root_iam_client, creds_bin, mfa_process=False)
    s.credentials.write_text(
        f"[alice-mfa]\naws_access_key_id = {s.user.creds.access_key_id}\n"
        f"aws_secret_access_key = {'x' * 40}\n"
    )
    r = s.run("process", "--profile", "alice-mfa", "--mfa-code", s.next_code())
    assert r.returncode != 0 and r.stdout == ""
    assert f"GetSessionToken at {endpoint} failed: SignatureDoesNotMatch: " in r.stderr, r.stderr

    # role_arn: AssumeRole with the MFA code; stsd's answer is shown the same way
    s2 = Setup(tmp_path / "role", endpoint, root_iam_client, creds_bin, mfa_process=False,
               extra="role_arn = arn:aws:iam::123456789012:role/none\n")
    r = s2.run("process", "--profile", "alice-mfa", "--mfa-code", s2.next_code())
    assert r.returncode != 0 and r.stdout == ""
    assert re.search(rf"AssumeRole at {re.escape(endpoint)} failed: \w+: ", r.stderr), r.stderr

    r = s.run("process", "--profile", "nobody")
    assert r.returncode != 0 and r.stdout == "" and '"nobody"' in r.stderr


# ---------------------------------------------------------------- HTTPS


def test_https_endpoint_with_ca_bundle(tls_server, creds_bin):
    """HTTPS (rustls, as for AWS itself) to an stsd with a test CA: trusted through AWS_CA_BUNDLE or the
    profile's ca_bundle, refused without it. The root key needs no MFA here."""
    s = tls_server
    d = s["dir"]
    endpoint = f"https://127.0.0.1:{s['port']}"
    (d / "config").write_text(f"[profile root]\nendpoint_url = {endpoint}\nregion = {REGION}\n")
    (d / "credentials").write_text(
        f"[root]\naws_access_key_id = {s['root'].access_key_id}\naws_secret_access_key = {s['root'].secret_access_key}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=str(d / "config"), AWS_SHARED_CREDENTIALS_FILE=str(d / "credentials"),
               STSD_CREDS_CACHE_DIR=str(d / "cache"))

    def run(extra):
        return subprocess.run([creds_bin, "process", "--profile", "root", "--duration", "900"],
                              env={**env, **extra}, capture_output=True, text=True, timeout=60)

    r = run({})
    assert r.returncode != 0 and r.stdout == ""
    assert f"cannot reach STS at {endpoint}" in r.stderr, r.stderr

    r = run({"AWS_CA_BUNDLE": str(s["ca"])})
    assert r.returncode == 0, r.stderr
    doc = assert_process_json(r.stdout)
    sts = boto3.session.Session().client(
        "sts", endpoint_url=endpoint, region_name=REGION, verify=str(s["ca"]),
        aws_access_key_id=doc["AccessKeyId"], aws_secret_access_key=doc["SecretAccessKey"],
        aws_session_token=doc["SessionToken"])
    assert sts.get_caller_identity()["Arn"] == f"arn:aws:iam::{s['account']}:root"

    # the profile's ca_bundle works too (a new session: logout first)
    assert subprocess.run([creds_bin, "logout", "--profile", "root"], env=env, capture_output=True).returncode == 0
    with open(d / "config", "a") as f:
        f.write(f"ca_bundle = {s['ca']}\n")
    r = run({})
    assert r.returncode == 0, r.stderr
    assert assert_process_json(r.stdout)["AccessKeyId"] != doc["AccessKeyId"]
