"""Crash soak (issue 14): mixed load while the server is killed with SIGKILL at random moments, on SQLite and on
PostgreSQL (where the PostgreSQL server is also restarted now and then). After each restart:

* every write the server acknowledged is there (users, access keys, MFA devices enabled, inline policies),
  and every acknowledged delete stays deleted;
* no MFA code was accepted twice, across restarts (each accepted code is replayed after the restart and must be
  refused);
* every session obtained before a crash still opens (the key ring survived);
* at the end, the counters (`key_count`, `device_count`, `inline_policy_count`, `attached_policy_count`,
  `group_count`) match the rows.

Short form in CI: STSD_SOAK_KILLS (default 4) kills per database. The long form for the README's reliability
figures: STSD_SOAK_KILLS=25. Bounded in time and count; loopback only.
"""

import os
import random
import sqlite3
import threading
import time

import pytest
from botocore.exceptions import ClientError

from multinode_support import PG_DIR_ENV, Cluster, pg_temp, psql
from stsd_support import (
    Creds,
    PrivateServer,
    create_mfa_user,
    totp_code,
    unique_name,
)

KILLS = int(os.environ.get("STSD_SOAK_KILLS", "4"))
DOC = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:GetUser", "Resource": "*"}]}'


class Ledger:
    """What the server acknowledged, per kind."""

    def __init__(self):
        self.lock = threading.Lock()
        self.users = {}  # name -> key id (acknowledged CreateUser + CreateAccessKey); None once the key's
        # deletion was acknowledged
        self.deleted = set()  # names whose DeleteUser was acknowledged
        self.in_flight = set()  # names with a delete sent but not acknowledged: either outcome is valid
        self.policies = []  # (user, policy name)
        self.codes = []  # (mfa user index, step) accepted
        self.sessions = []  # Creds of sessions obtained
        self.errors = 0


def load(endpoint_fn, root, mfa_users, ledger, stop, seed):
    """One worker: a mix of IAM writes and MFA GetSessionToken calls until `stop` is set. Errors are
    expected while the server is down; only acknowledged answers go into the ledger."""
    rnd = random.Random(seed)
    import boto3

    from stsd_support import REGION, client_config

    session = boto3.session.Session()

    def client(service, creds=None):
        c = creds or root
        return session.client(service, endpoint_url=endpoint_fn(), region_name=REGION,
                              aws_access_key_id=c.access_key_id, aws_secret_access_key=c.secret_access_key,
                              aws_session_token=c.session_token, config=client_config(True))

    while not stop.is_set():
        op = rnd.random()
        try:
            iam = client("iam")
            if op < 0.35:
                name = unique_name("soak")
                iam.create_user(UserName=name)
                k = iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]
                with ledger.lock:
                    ledger.users[name] = k
            elif op < 0.5:
                with ledger.lock:
                    candidates = [n for n in ledger.users if n not in ledger.deleted and n not in ledger.in_flight]
                if candidates:
                    name = rnd.choice(candidates)
                    pname = unique_name("p")
                    iam.put_user_policy(UserName=name, PolicyName=pname, PolicyDocument=DOC)
                    with ledger.lock:
                        ledger.policies.append((name, pname))
            elif op < 0.6:
                with ledger.lock:
                    candidates = [n for n in ledger.users if n not in ledger.deleted and n not in ledger.in_flight
                                  and not any(u == n for u, _ in ledger.policies)]
                if candidates:
                    name = rnd.choice(candidates)
                    with ledger.lock:
                        ledger.in_flight.add(name)
                    key = ledger.users[name]
                    if key is not None:
                        iam.delete_access_key(UserName=name, AccessKeyId=key)
                        with ledger.lock:
                            ledger.users[name] = None
                    iam.delete_user(UserName=name)
                    with ledger.lock:
                        ledger.deleted.add(name)
                        ledger.in_flight.discard(name)
            else:
                i = rnd.randrange(len(mfa_users))
                u = mfa_users[i]
                step = int(time.time()) // 30 + 1  # the window accepts one step ahead
                with ledger.lock:
                    if any(c == (i, step) for c in ledger.codes) or any(c[0] == i and c[1] > step for c in ledger.codes):
                        continue
                r = client("sts", u.creds).get_session_token(SerialNumber=u.serial, TokenCode=totp_code(u.seed, step))
                with ledger.lock:
                    ledger.codes.append((i, step))
                    ledger.sessions.append(Creds.from_sts(r["Credentials"]))
        except (ClientError, Exception):  # noqa: BLE001 - the server is killed under us on purpose
            with ledger.lock:
                ledger.errors += 1
            time.sleep(0.05)


def verify(client_fn, mfa_users, ledger):
    """Checks the ledger against a freshly restarted server."""
    iam = client_fn("iam")
    with ledger.lock:
        users = dict(ledger.users)
        deleted = set(ledger.deleted)
        in_flight = set(ledger.in_flight)
        policies = list(ledger.policies)
        codes = list(ledger.codes)
        sessions = list(ledger.sessions)
    for name, key in users.items():
        if name in in_flight:
            continue  # its deletion may or may not have happened before the crash
        if name in deleted:
            with pytest.raises(ClientError) as e:
                iam.get_user(UserName=name)
            assert e.value.response["Error"]["Code"] == "NoSuchEntity", name
            continue
        keys = [k["AccessKeyId"] for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]]
        if key is None:
            assert keys == [], f"deleted key of {name} is back: {keys}"
        else:
            assert key in keys, f"acknowledged key {key} of {name} lost"
    for name, pname in policies:
        if name not in deleted and name not in in_flight:
            assert pname in iam.list_user_policies(UserName=name)["PolicyNames"], f"policy {pname} of {name} lost"
    for i, step in codes:  # every accepted code stays used
        u = mfa_users[i]
        with pytest.raises(ClientError) as e:
            client_fn("sts", u.creds).get_session_token(SerialNumber=u.serial, TokenCode=totp_code(u.seed, step))
        assert e.value.response["Error"]["Code"] == "AccessDenied", (i, step)
    for s in sessions[-20:]:  # sessions sealed before the crash still open
        client_fn("sts", s).get_caller_identity()
    return len(users), len(policies), len(codes)


COUNTER_CHECKS = [
    "SELECT user_id FROM users u WHERE key_count <> (SELECT COUNT(*) FROM access_keys a WHERE a.user_id = u.user_id)",
    "SELECT user_id FROM users u WHERE device_count <> (SELECT COUNT(*) FROM mfa_devices d WHERE d.owner = u.user_id)",
    "SELECT user_id FROM users u WHERE inline_policy_count <> (SELECT COUNT(*) FROM inline_policies i "
    "WHERE i.entity_kind = 'user' AND i.entity_id = u.user_id)",
    "SELECT user_id FROM users u WHERE attached_policy_count <> (SELECT COUNT(*) FROM policy_attachments a "
    "WHERE a.entity_kind = 'user' AND a.entity_id = u.user_id)",
    "SELECT user_id FROM users u WHERE group_count <> (SELECT COUNT(*) FROM group_members m WHERE m.user_id = u.user_id)",
]


def soak(start, kill, client_fn, endpoint_fn, root, after_kill=None):
    mfa_users = [create_mfa_user(client_fn("iam"), self_service=False) for _ in range(6)]
    ledger = Ledger()
    rnd = random.Random(1234)
    checked = (0, 0, 0)
    for cycle in range(KILLS):
        stop = threading.Event()
        workers = [threading.Thread(target=load, args=(endpoint_fn, root, mfa_users, ledger, stop, cycle * 10 + w))
                   for w in range(3)]
        for w in workers:
            w.start()
        time.sleep(rnd.uniform(0.5, 2.0))
        kill()
        stop.set()
        for w in workers:
            w.join(30)
        if after_kill:
            after_kill(cycle)
        start()
        checked = verify(client_fn, mfa_users, ledger)
    print(f"soak: {KILLS} kills survived; acknowledged users {checked[0]}, policies {checked[1]}, "
          f"MFA codes {checked[2]} (each refused when replayed); {ledger.errors} calls failed while down")
    assert checked[0] > 0 and checked[2] > 0, "the load made no acknowledged writes"
    return ledger


def test_crash_soak_sqlite(tmp_path):
    s = PrivateServer(tmp_path / "data").start()
    try:
        def kill():
            s.proc.kill()
            s.proc.wait(10)
            s.proc = None

        soak(lambda: s.start(), kill, lambda svc, c=None: s.client(svc, c), lambda: s.endpoint, s.root)
    finally:
        s.stop()
    db = sqlite3.connect(tmp_path / "data" / "stsd.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    for q in COUNTER_CHECKS:
        assert db.execute(q).fetchall() == [], q


def test_crash_soak_postgres(tmp_path):
    c = Cluster(tmp_path, names=("A",))
    node = c["A"]
    try:
        c.start()

        def after_kill(cycle):
            # every other crash also takes the database server down and up again
            if cycle % 2 == 1 and os.environ.get(PG_DIR_ENV):
                pg_temp("restart-server", os.environ[PG_DIR_ENV])

        soak(lambda: node.start(), lambda: node.kill9(), lambda svc, cr=None: node.client(svc, cr),
             lambda: node.endpoint, node.root, after_kill)
        for q in COUNTER_CHECKS:
            assert psql(c.db_url, q) == "", q
    finally:
        c.stop()
