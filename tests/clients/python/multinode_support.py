"""Helpers for the multi-node suite (test_multinode.py): several stsd nodes on one PostgreSQL database.

Each test gets
  * its own database, created with `psql "$STSD_TEST_DATABASE_URL" -c "CREATE DATABASE ..."` (trust auth) and
    dropped again at the end;
  * one master key file (base64 of 32 random bytes, mode 0600) shared by its nodes;
  * nodes (`STSD_BIN serve --database-url .. --master-key-file .. --data-dir <own dir>`) on free loopback ports,
    all with the same account id and root credentials (STSD_ACCOUNT_ID, STSD_ROOT_ACCESS_KEY_ID,
    STSD_ROOT_SECRET_ACCESS_KEY in their environment, nothing else from STSD_*);
  * `stsd admin` runs against the same database and master key (`Cluster.admin`).

Without STSD_TEST_DATABASE_URL the tests are skipped, or fail when STSD_REQUIRE_POSTGRES=1 (as in CI).
"""

import base64
import os
import secrets
import signal
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import boto3
import pytest
from botocore.exceptions import ClientError

from stsd_support import REGION, Creds, PrivateServer, client_config, free_port, new_root_creds, required_env

PG_URL_ENV = "STSD_TEST_DATABASE_URL"
PG_DIR_ENV = "STSD_TEST_PG_DIR"
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
PG_TEMP = os.path.join(REPO, "scripts", "pg-temp")


def postgres_url():
    """The server-level PostgreSQL URL, or skip (fail with STSD_REQUIRE_POSTGRES=1) when there is none."""
    url = os.environ.get(PG_URL_ENV)
    if url:
        return url
    if os.environ.get("STSD_REQUIRE_POSTGRES") == "1":
        pytest.fail(
            f"{PG_URL_ENV} is not set but STSD_REQUIRE_POSTGRES=1: the multi-node tests need PostgreSQL "
            f"(d=$(mktemp -d); export {PG_URL_ENV}=$(scripts/pg-temp start $d) {PG_DIR_ENV}=$d)",
            pytrace=False,
        )
    pytest.skip(
        f"{PG_URL_ENV} is not set: the multi-node tests need a PostgreSQL server "
        f"(scripts/test starts one; or d=$(mktemp -d); export {PG_URL_ENV}=$(scripts/pg-temp start $d) {PG_DIR_ENV}=$d)"
    )


def psql(url, sql, timeout=30):
    """Runs one SQL command with psql; returns its unaligned output."""
    r = subprocess.run(
        ["psql", url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, f"psql {sql!r} failed ({r.returncode}): {r.stderr.strip()}"
    return r.stdout.strip()


def with_database(url, name):
    """`url` with its database (path) replaced by `name`."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def write_master_key(path):
    """A master key file as stsd expects it: base64 of 32 random bytes, created with mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    return path


def clean_env():
    """This environment without any STSD_* variable (the nodes and admin runs get only what they are given)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("STSD_")}


class Node(PrivateServer):
    """One stsd node of a Cluster: its own data dir and port, the cluster's database, master key and root."""

    def __init__(self, name, data_dir, cluster):
        super().__init__(data_dir, "--database-url", cluster.db_url, "--master-key-file", str(cluster.master_key))
        self.name = name
        self.account, self.root = cluster.account, cluster.root
        self._local = threading.local()  # one boto3 Session per thread (Session.client is not thread-safe)

    def __repr__(self):
        return f"node {self.name} ({self.endpoint})"

    def spawn(self):
        """Starts the process without waiting (for simultaneous starts); see `await_healthy`."""
        env = clean_env()
        env.update(
            STSD_ACCOUNT_ID=self.account,
            STSD_ROOT_ACCESS_KEY_ID=self.root.access_key_id,
            STSD_ROOT_SECRET_ACCESS_KEY=self.root.secret_access_key,
        )
        self.port = self.port or free_port()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.bin, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.data_dir), *self.args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    def await_healthy(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self} exited with {self.proc.returncode} before /healthz:\n{self.log_tail()}")
            if self._healthy():
                return self
            time.sleep(0.05)
        raise AssertionError(f"{self} not healthy within {timeout}s:\n{self.log_tail()}")

    def start(self, timeout=30):
        # Same env as spawn(): PrivateServer.start would do, but keep one definition of what a node gets.
        for _attempt in range(3):
            self.spawn()
            try:
                return self.await_healthy(timeout)
            except AssertionError:
                if self.proc is not None and self.proc.poll() is not None and "in use" in self.log_tail(5).lower():
                    self.proc, self.port = None, None  # port taken meanwhile: pick another
                    continue
                raise
        raise AssertionError(f"{self} could not bind a port:\n{self.log_tail()}")

    def kill9(self):
        """SIGKILL, as a crash; returns the exit status (-9)."""
        proc, self.proc = self.proc, None
        proc.send_signal(signal.SIGKILL)
        return proc.wait(10)

    def client(self, service, creds=None, validate=True):
        """A client on this node; a thread's clients of one node share a boto3 Session (models loaded once)."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = boto3.session.Session()
        creds = creds or self.root
        return session.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=creds.access_key_id,
            aws_secret_access_key=creds.secret_access_key,
            aws_session_token=creds.session_token,
            config=client_config(validate),
        )


class Cluster:
    """A database of its own, a shared master key, and nodes (by name) that use both."""

    def __init__(self, tmp_path, names=("A", "B", "C")):
        self.bin = required_env("STSD_BIN")
        self.server_url = postgres_url()
        self.tmp = tmp_path
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.db_name = "stsd_mn_" + secrets.token_hex(6)
        psql(self.server_url, f"CREATE DATABASE {self.db_name}")
        self.db_url = with_database(self.server_url, self.db_name)
        self.master_key = write_master_key(tmp_path / "master.key")
        self.account, self.root = new_root_creds()
        self.nodes = {n: Node(n, tmp_path / f"node-{n}", self) for n in names}
        self.admin_dir = tmp_path / "admin-data"

    def __getitem__(self, name):
        return self.nodes[name]

    def __iter__(self):
        return iter(self.nodes.values())

    def start(self, simultaneous=False, timeout=30):
        """Starts every node. By default the first one alone (it creates the schema, account, root key and token
        key), then the others together; `simultaneous=True` spawns all of them at once on the empty database."""
        nodes = list(self.nodes.values())
        if not simultaneous:
            nodes[0].start(timeout)
            nodes = nodes[1:]
        for n in nodes:
            n.spawn()
        for n in nodes:
            try:
                n.await_healthy(timeout)
            except AssertionError:
                # The free port picked for it was taken by another process meanwhile: start it again on
                # another one (Node.start retries the same way).
                if n.proc is not None and n.proc.poll() is not None and "in use" in n.log_tail(5).lower():
                    n.proc, n.port = None, None
                    n.start(timeout)
                else:
                    raise
        return self

    def admin(self, *args, json_out=False, timeout=60):
        """`stsd admin --database-url .. --master-key-file .. --data-dir .. [--json] ARGS`; returns stdout.
        A non-zero exit fails the test with its stderr."""
        cmd = [
            self.bin,
            "admin",
            "--database-url",
            self.db_url,
            "--master-key-file",
            str(self.master_key),
            "--data-dir",
            str(self.admin_dir),
        ]
        if json_out:
            cmd.append("--json")
        cmd += list(args)
        r = subprocess.run(cmd, env=clean_env(), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, f"`stsd admin {' '.join(args)}` exited {r.returncode}: {r.stderr.strip()}"
        return r.stdout

    def token_keys(self):
        """`stsd admin --json keys list` as a list of dicts (KeyId, Status, ValidFrom), newest first."""
        import json

        return [json.loads(line) for line in self.admin("keys", "list", json_out=True).splitlines() if line.strip()]

    def stop(self, timeout=10):
        """SIGTERM to every running node (SIGKILL after `timeout`), then drops the database. Returns
        {name: exit status or None (not running)}; raises after stopping everything if a node ignored SIGTERM."""
        codes, problems = {}, []
        for n in self.nodes.values():
            try:
                codes[n.name] = n.stop(timeout)
            except AssertionError as e:  # SIGTERM ignored: it was killed; go on with the others
                codes[n.name] = "killed"
                problems.append(str(e))
        try:
            psql(self.server_url, f"DROP DATABASE IF EXISTS {self.db_name} WITH (FORCE)")
        except Exception as e:  # noqa: BLE001 - the database is throwaway; a leftover is only untidy
            problems.append(f"dropping {self.db_name}: {e}")
        if problems:
            raise AssertionError("\n".join(problems))
        return codes

    def logs(self, lines=30):
        return "\n".join(f"---- {n} log\n{n.log_tail(lines)}" for n in self.nodes.values())


# ---------------------------------------------------------------- calls and their outcomes


@dataclass
class Result:
    """One call: when it ran and what came back (value, or the AWS error fields, or another exception)."""

    t0: float
    t1: float
    value: Any = None
    status: Optional[int] = None
    code: Optional[str] = None
    message: Optional[str] = None
    err_type: Optional[str] = None
    request_id: Optional[str] = None
    exc: Optional[str] = None  # a non-AWS failure (connection refused, timeout, ...)
    label: str = ""

    @property
    def ok(self):
        return self.code is None and self.exc is None

    @property
    def elapsed(self):
        return self.t1 - self.t0

    def brief(self):
        if self.ok:
            return f"{self.label} OK in {self.elapsed:.2f}s"
        if self.exc:
            return f"{self.label} {self.exc} after {self.elapsed:.2f}s"
        return f"{self.label} {self.status} {self.code} {self.message!r} (Type {self.err_type}) after {self.elapsed:.2f}s"


def call(fn, *args, label="", **kwargs):
    """Runs a boto3 call and records its outcome instead of raising."""
    t0 = time.time()
    try:
        value = fn(*args, **kwargs)
        return Result(t0, time.time(), value=value, label=label)
    except ClientError as err:
        e = err.response.get("Error", {})
        meta = err.response.get("ResponseMetadata", {})
        return Result(
            t0,
            time.time(),
            status=meta.get("HTTPStatusCode"),
            code=e.get("Code"),
            message=e.get("Message"),
            err_type=e.get("Type"),
            request_id=meta.get("RequestId"),
            label=label,
        )
    except Exception as err:  # noqa: BLE001 - connection errors etc. are outcomes to report
        return Result(t0, time.time(), exc=f"{type(err).__name__}: {err}", label=label)


def poll_until(fn, done: Callable[[Result], bool], timeout, interval=0.1):
    """Calls fn() (which returns a Result) until done(result) or `timeout` seconds; returns (result, history)."""
    deadline = time.monotonic() + timeout
    history = []
    while True:
        r = fn()
        history.append(r)
        if done(r) or time.monotonic() >= deadline:
            return r, history
        time.sleep(interval)


@dataclass
class LoadLoop:
    """Runs `step(i)` (returning a list of Results) in a thread until stopped, `max_seconds` pass or
    `max_iterations` are done; every Result is kept."""

    name: str
    step: Callable[[int], list]
    max_seconds: float = 60
    max_iterations: int = 100_000
    pause: float = 0.0
    results: list = field(default_factory=list)

    def __post_init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"load-{self.name}", daemon=True)
        self.crash = None

    def _run(self):
        deadline = time.monotonic() + self.max_seconds
        try:
            for i in range(self.max_iterations):
                if self._stop.is_set() or time.monotonic() >= deadline:
                    break
                self.results.extend(self.step(i))
                if self.pause:
                    self._stop.wait(self.pause)
        except Exception as e:  # noqa: BLE001 - reported by stop()
            self.crash = f"{type(e).__name__}: {e}"

    def start(self):
        self._thread.start()
        return self

    def stop(self, timeout=40):
        self._stop.set()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"load loop {self.name} did not finish within {timeout}s"
        assert self.crash is None, f"load loop {self.name} crashed: {self.crash}"
        return self.results

    def failures(self):
        return [r for r in self.results if not r.ok]


def pg_temp(*args, timeout=120):
    """Runs scripts/pg-temp ARGS; returns (t_before, t_after)."""
    t0 = time.time()
    r = subprocess.run([PG_TEMP, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    t1 = time.time()
    assert r.returncode == 0, f"scripts/pg-temp {' '.join(args)} exited {r.returncode}: {r.stderr.strip()}"
    return t0, t1


def token_key_id(session_token):
    """The token key id in a session token's clear header (stsd's token wire form: URL-safe base64, no padding,
    of version (1 byte) | key id (4 bytes, big-endian) | nonce | sealed claims)."""
    raw = base64.urlsafe_b64decode(session_token[:8] + "=" * (-len(session_token[:8]) % 4))
    return int.from_bytes(raw[1:5], "big")


def session_creds(resp):
    return Creds.from_sts(resp["Credentials"])
