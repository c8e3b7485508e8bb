"""Several stsd nodes on one PostgreSQL database (needs STSD_TEST_DATABASE_URL; helpers in multinode_support.py).

Nodes A, B and C share one database (created for the test), one master key file and the root credentials; each
has its own data dir and loopback port. What happens through one node must hold on the others:

  * session tokens are sealed under the shared token key ring and open on every node (no database read);
  * identity changes made through one node or `stsd admin` (new key, deactivated key, revoked sessions, deleted
    user) reach the other nodes within the caches' bounds: access keys 5 s, revocation 5 s, asserted as <= 6 s
    from the acknowledgement of the change;
  * an MFA code is accepted once in total, whichever nodes it is sent to;
  * `stsd admin keys rotate` while the nodes serve causes no error, old tokens keep working everywhere;
  * a node killed with SIGKILL does not disturb the others and serves again after a restart;
  * a PostgreSQL restart under load (`scripts/pg-temp restart-server`, needs STSD_TEST_PG_DIR): requests that
    need the database succeed or answer 503 ServiceUnavailable quickly, session-authenticated requests keep
    working, no acknowledged write is lost, no stsd restart needed; and an outage longer than the pool's 2 s
    connection wait, where the 503 path is certain to be taken;
  * three nodes started at the same moment on an empty database all come up and agree on the token key.

Each test has its own cluster (fixture `cluster`: A first, then B and C together); its node logs stay in the
test's tmp_path (printed at the start of the test). The whole file takes about 100 s.

Expected errors come from the wire reference (shared/reference/aws-sts-wire.md): an unknown or inactive
long-term key is InvalidClientTokenId with a final period, a refused session token the same code without it.
Every wait is a poll with a deadline; every loop is bounded in time and count.
"""

import datetime
import json
import os
import threading
import time

import botocore.exceptions
import pytest

from multinode_support import (
    PG_DIR_ENV,
    Cluster,
    LoadLoop,
    call,
    pg_temp,
    session_creds,
    token_key_id,
)
from stsd_support import (
    MSG_BAD_TOKEN,
    MSG_MFA_INVALID_CODE,
    MSG_UNKNOWN_KEY,
    REQUEST_ID_RE,
    Creds,
    create_iam_user,
    create_mfa_user,
    flip_char,
    signed_post,
    totp_code,
    unique_name,
)

# Cache bounds of the server (state.rs: KEY_CACHE_TTL, REVOCATION_CACHE_TTL = 5 s) plus one second.
PROPAGATION_BOUND = 6.0
# Key ring reload interval of every node (cli.rs: KEY_RING_REFRESH).
KEY_RING_REFRESH = 10.0
# The longest a request may take while the database is away (the pool waits 2 s for a connection).
FAIL_FAST_BOUND = 3.0
IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/"
# Concurrent writer threads on node A during the database restart.
WRITERS = 8


@pytest.fixture
def cluster(tmp_path):
    """Nodes A, B, C on a fresh database. A starts first (schema, account, root key, token key), then B and C
    together. Stopped with SIGTERM at the end (SIGKILL after 10 s); each must exit with status 0."""
    c = Cluster(tmp_path)
    print(f"multi-node logs in {tmp_path}")
    try:
        c.start()
        yield c
    finally:
        codes = c.stop()
    bad = {n: rc for n, rc in codes.items() if rc not in (0, None)}
    assert len(bad) == 0, f"nodes exited with a non-zero status after SIGTERM: {bad}\n{c.logs()}"


def root_arn(account):
    return f"arn:aws:iam::{account}:root"


def identity(r):
    v = r.value
    return v["Arn"], v["UserId"], v["Account"]


def assert_refused(r, status, code, message):
    """A Result that is exactly this AWS error (Type Sender, a request id)."""
    got = (r.status, r.code, r.message)
    assert got == (status, code, message), f"{r.label}: expected {(status, code, message)!r}, got {r.brief()}"
    assert r.err_type == "Sender", f"{r.label}: Error/Type should be Sender, got {r.err_type!r}"
    assert REQUEST_ID_RE.match(r.request_id or ""), f"{r.label}: bad RequestId {r.request_id!r}"


def summary(results, limit=12):
    lines = [r.brief() for r in results[:limit]]
    if len(results) > limit:
        lines.append(f"... and {len(results) - limit} more")
    return "\n  ".join(lines)


def wait_for_each(probes, since, accept, bound, grace=2.0, interval=0.1):
    """Polls every probe (label -> zero-argument function returning a Result) round-robin until accept(result)
    holds for each, at most until `since + bound + grace`; `since` is a time, or {label: time}. Returns
    {label: (first accepted Result, seconds from `since` to its answer, Results before it)}; a probe never
    accepted maps to (last Result, None, history)."""
    pending = dict(probes)
    since = since if isinstance(since, dict) else {label: since for label in probes}
    found, history = {}, {label: [] for label in probes}
    deadline = max(since.values()) + bound + grace
    while pending:
        for label, fn in list(pending.items()):
            r = fn()
            r.label = r.label or label
            if accept(r):
                found[label] = (r, r.t1 - since[label], history[label])
                del pending[label]
            else:
                history[label].append(r)
        if not pending or time.time() >= deadline:
            break
        time.sleep(interval)
    for label in pending:
        found[label] = (history[label][-1], None, history[label])
    return found


def fresh_after_wait(node):
    """A new IAM client on `node`, for a call right after a propagation wait. The wait lasts about the caches'
    5 s, and so does the server's idle-connection limit (http.rs IDLE_TIMEOUT): a kept-alive connection reused
    then can be closed by the server as the request goes out ("Connection was closed before we received a
    valid response"), the ordinary keep-alive race that SDKs absorb by retrying and these clients (one
    attempt, stsd_support.client_config) do not."""
    return node.client("iam")


def assert_propagated(found, bound, expect_after, expect_before, what):
    """Each probe reached the new state (checked by expect_after) within `bound` s, and every answer before it
    was the old state (checked by expect_before: nothing else, no 5xx, no other code)."""
    report = {label: (None if t is None else round(t, 2)) for label, (_, t, _) in found.items()}
    print(f"{what}: seconds until seen, per node: {report}")
    for label, (r, t, before) in found.items():
        assert t is not None, f"{what}: {label} still answers {r.brief()} {bound + 2:.0f}s after the change"
        expect_after(r)
        assert t <= bound, f"{what}: {label} took {t:.2f}s (bound {bound}s)"
        for b in before:
            expect_before(b)
    return report


def assert_ok(r):
    assert r.ok, r.brief()


# ---------------------------------------------------------------- 1. tokens


def test_multinode_session_tokens_open_on_every_node(cluster):
    acct = cluster.account
    for issuer in cluster:
        creds = session_creds(issuer.client("sts").get_session_token())
        for verifier in cluster:
            r = call(verifier.client("sts", creds).get_caller_identity, label=f"root token of {issuer.name} on {verifier.name}")
            assert r.ok, r.brief()
            assert identity(r) == (root_arn(acct), acct, acct), r.label

    name, user, ukey = create_iam_user(cluster["A"].client("iam"))
    ucreds = session_creds(cluster["B"].client("sts", ukey).get_session_token())
    for verifier in cluster:
        r = call(verifier.client("sts", ucreds).get_caller_identity, label=f"user token of B on {verifier.name}")
        assert r.ok, r.brief()
        assert identity(r) == (user["Arn"], user["UserId"], acct), r.label

    # The other nodes really verify the token: one changed character and every node refuses it.
    tok = ucreds.session_token
    bad = Creds(ucreds.access_key_id, ucreds.secret_access_key, flip_char(tok, len(tok) // 2))
    for verifier in cluster:
        r = call(verifier.client("sts", bad).get_caller_identity, label=f"tampered token on {verifier.name}")
        assert_refused(r, 403, "InvalidClientTokenId", MSG_BAD_TOKEN)


def test_multinode_simultaneous_first_start(tmp_path):
    """Three nodes started at the same moment on an empty database all come up, and right away (before any
    key ring reload) a token issued by any node opens on every node. Start-up races do not show every time:
    three rounds, each on a fresh database."""
    for round_ in range(3):
        c = Cluster(tmp_path / f"round{round_}")
        try:
            c.start(simultaneous=True)
            started = time.monotonic()
            failures = []
            for issuer in c:
                creds = session_creds(issuer.client("sts").get_session_token())
                for verifier in c:
                    r = call(verifier.client("sts", creds).get_caller_identity, label=f"token of {issuer.name} on {verifier.name}")
                    if not r.ok:
                        failures.append(r)
            checked_within = time.monotonic() - started
            keys = c.token_keys()
            assert len(failures) == 0, (
                f"round {round_}: tokens refused by other nodes {checked_within:.1f}s after a simultaneous start "
                f"(token keys in the database: {keys}):\n  {summary(failures)}"
            )
        finally:
            codes = c.stop()
        assert all(rc in (0, None) for rc in codes.values()), codes


# ---------------------------------------------------------------- 2. identities


def test_multinode_access_key_changes_reach_every_node(cluster):
    A, B, C = cluster["A"], cluster["B"], cluster["C"]
    iam_a = A.client("iam")
    name, user, ukey = create_iam_user(iam_a)

    # A key created on A works on B and C at once: they have never seen it (nothing cached).
    for n in (B, C):
        r = call(n.client("sts", ukey).get_session_token, label=f"new key on {n.name}")
        assert r.ok, r.brief()
    # ...and it is now in their caches: the deactivation below has to reach them.
    iam_a.update_access_key(UserName=name, AccessKeyId=ukey.access_key_id, Status="Inactive")
    t_ack = time.time()
    r = call(A.client("sts", ukey).get_caller_identity, label="inactive key on A")
    assert_refused(r, 403, "InvalidClientTokenId", MSG_UNKNOWN_KEY)

    clients = {n.name: n.client("sts", ukey) for n in (B, C)}
    probes = {f"node {k}": (lambda c=c: call(c.get_caller_identity)) for k, c in clients.items()}
    found = wait_for_each(probes, t_ack, lambda r: not r.ok, PROPAGATION_BOUND)
    inactive = lambda r: assert_refused(r, 403, "InvalidClientTokenId", MSG_UNKNOWN_KEY)  # noqa: E731
    assert_propagated(found, PROPAGATION_BOUND, inactive, assert_ok, "UpdateAccessKey Inactive on A")
    # Once refused, refused for good (no node flips back to a stale cached copy).
    for k, c in clients.items():
        for _ in range(3):
            assert_refused(call(c.get_caller_identity, label=f"inactive key on {k}"), 403, "InvalidClientTokenId", MSG_UNKNOWN_KEY)

    # Activated again on A: B and C accept it again within the same bound.
    iam_a = fresh_after_wait(A)
    iam_a.update_access_key(UserName=name, AccessKeyId=ukey.access_key_id, Status="Active")
    t_ack = time.time()
    found = wait_for_each(probes, t_ack, lambda r: r.ok, PROPAGATION_BOUND)

    def active(r):
        assert r.ok and identity(r)[0] == user["Arn"], r.brief()

    assert_propagated(found, PROPAGATION_BOUND, active, inactive, "UpdateAccessKey Active on A")


def test_multinode_policy_changes_reach_every_node(cluster):
    """A policy written on A is enforced on B and C within the bound (their policy caches last at most 5 s);
    removing it likewise."""
    A, B, C = cluster["A"], cluster["B"], cluster["C"]
    iam_a = A.client("iam")
    name, user, ukey = create_iam_user(iam_a, self_service=False)
    clients = {n.name: n.client("iam", ukey) for n in (B, C)}
    probes = {f"node {k}": (lambda c=c: call(c.list_users)) for k, c in clients.items()}
    for k, c in clients.items():
        r = call(c.list_users, label=f"no policy on {k}")
        assert not r.ok and r.code == "AccessDenied", r.brief()  # now cached as "no policies" on B and C
    doc = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:ListUsers", "Resource": "*"}]}'
    iam_a.put_user_policy(UserName=name, PolicyName="list", PolicyDocument=doc)
    t_ack = time.time()
    denied = lambda r: (not r.ok and r.code == "AccessDenied") or pytest.fail(r.brief())  # noqa: E731
    found = wait_for_each(probes, t_ack, lambda r: r.ok, PROPAGATION_BOUND)
    assert_propagated(found, PROPAGATION_BOUND, assert_ok, denied, "PutUserPolicy on A")
    iam_a = fresh_after_wait(A)
    iam_a.delete_user_policy(UserName=name, PolicyName="list")
    t_ack = time.time()
    found = wait_for_each(probes, t_ack, lambda r: not r.ok, PROPAGATION_BOUND)
    assert_propagated(found, PROPAGATION_BOUND, denied, assert_ok, "DeleteUserPolicy on A")


# ---------------------------------------------------------------- 3. MFA replay


def test_multinode_mfa_code_accepted_once_across_nodes(cluster):
    A, B, C = cluster["A"], cluster["B"], cluster["C"]
    u = create_mfa_user(A.client("iam"))  # enabled on A with the codes of steps step-1 and step
    code = totp_code(u.seed, u.step + 1)  # fresh: valid (window +-1) and never used
    per_node = 25
    clients = [B.client("sts", u.creds) for _ in range(per_node)] + [C.client("sts", u.creds) for _ in range(per_node)]
    labels = [f"B#{i}" for i in range(per_node)] + [f"C#{i}" for i in range(per_node)]
    barrier = threading.Barrier(len(clients))
    results = [None] * len(clients)

    def send(i):
        barrier.wait(30)
        results[i] = call(clients[i].get_session_token, SerialNumber=u.serial, TokenCode=code, label=labels[i])

    threads = [threading.Thread(target=send, args=(i,), daemon=True) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "some GetSessionToken calls did not return within 60s"

    wins = [r for r in results if r.ok]
    losses = [r for r in results if not r.ok]
    assert len(wins) == 1, f"the same MFA code was accepted {len(wins)} times over nodes B and C:\n  {summary(wins)}"
    for r in losses:
        assert_refused(r, 403, "AccessDenied", MSG_MFA_INVALID_CODE)
    # The one session works everywhere. (A replay on A now would prove nothing: 49 failed codes have locked
    # the device, which refuses every code with the same message.)
    creds = session_creds(wins[0].value)
    for n in cluster:
        r = call(n.client("sts", creds).get_caller_identity, label=f"MFA session on {n.name}")
        assert r.ok and identity(r)[0] == u.user["Arn"], r.brief()


def test_multinode_assume_role_mfa_code_accepted_once_across_nodes(cluster):
    """AssumeRole with SerialNumber/TokenCode uses GetSessionToken's verification: one code, one role session,
    over every node; and the role session (a version-2 token) opens on every node."""
    A, B, C = cluster["A"], cluster["B"], cluster["C"]
    iam = A.client("iam")
    u = create_mfa_user(iam)
    role = unique_name("role")
    arn = iam.create_role(
        RoleName=role,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": u.user["Arn"]},
                        "Action": "sts:AssumeRole",
                        "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    code = totp_code(u.seed, u.step + 1)
    per_node = 10
    clients = [B.client("sts", u.creds) for _ in range(per_node)] + [C.client("sts", u.creds) for _ in range(per_node)]
    barrier = threading.Barrier(len(clients))
    results = [None] * len(clients)

    def send(i):
        barrier.wait(30)
        results[i] = call(
            clients[i].assume_role,
            RoleArn=arn,
            RoleSessionName=f"s{i}",
            SerialNumber=u.serial,
            TokenCode=code,
            label=f"#{i}",
        )

    threads = [threading.Thread(target=send, args=(i,), daemon=True) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    wins = [r for r in results if r.ok]
    assert len(wins) == 1, f"the same MFA code was accepted {len(wins)} times:\n  {summary(wins)}"
    for r in results:
        if not r.ok:
            assert_refused(r, 403, "AccessDenied", MSG_MFA_INVALID_CODE)
    creds = session_creds(wins[0].value)
    for n in cluster:
        r = call(n.client("sts", creds).get_caller_identity, label=f"role session on {n.name}")
        assert r.ok and ":assumed-role/" in identity(r)[0], r.brief()


# ---------------------------------------------------------------- 4. key rotation


def parse_iso(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()


def test_multinode_token_key_rotation_while_serving(cluster):
    nodes = list(cluster)
    acct = cluster.account
    keys = cluster.token_keys()
    assert [k["Status"] for k in keys] == ["active"], f"expected one active token key before the rotation: {keys}"
    old_id = int(keys[0]["KeyId"])
    t1 = session_creds(cluster["A"].client("sts").get_session_token())
    assert token_key_id(t1.session_token) == old_id

    cluster.admin("keys", "rotate", "--delay", "20")
    t_rot = time.time()
    keys = cluster.token_keys()
    new = [k for k in keys if int(k["KeyId"]) != old_id]
    assert len(keys) == 2 and len(new) == 1 and new[0]["Status"] == "pending", keys
    new_id, valid_from = int(new[0]["KeyId"]), parse_iso(new[0]["ValidFrom"])
    assert 18 <= valid_from - t_rot <= 21, f"ValidFrom {new[0]['ValidFrom']} is not rotation time + 20 s"

    issued = []  # (issuer name, Result of GetSessionToken)

    def step(i):
        issuer = nodes[i % len(nodes)]
        out = []
        r = call(issuer.client("sts").get_session_token, DurationSeconds=900, label=f"GetSessionToken on {issuer.name}")
        out.append(r)
        if r.ok:
            issued.append((issuer.name, r))
            creds = session_creds(r.value)
            for v in nodes:
                g = call(v.client("sts", creds).get_caller_identity, label=f"token of {issuer.name} on {v.name}")
                if g.ok and identity(g) != (root_arn(acct), acct, acct):
                    g.exc = f"wrong identity {identity(g)}"
                out.append(g)
        v = nodes[(i + 1) % len(nodes)]
        out.append(call(v.client("sts", t1).get_caller_identity, label=f"T1 on {v.name}"))
        return out

    loop_seconds = 45 - (time.time() - t_rot)
    load = LoadLoop("rotation", step, max_seconds=loop_seconds, max_iterations=2000, pause=0.05).start()
    time.sleep(max(0.0, loop_seconds - 0.5))
    results = load.stop()
    failures = [r for r in results if not r.ok]
    assert len(results) > 100, f"the loop ran only {len(results)} requests"
    assert len(failures) == 0, f"{len(failures)} of {len(results)} requests failed during the rotation:\n  {summary(failures)}"

    # No node sealed with the new key before its ValidFrom (the others might not have loaded it yet)...
    early = [(n, r) for n, r in issued if r.t1 < valid_from - 1 and token_key_id(r.value["Credentials"]["SessionToken"]) != old_id]
    assert len(early) == 0, f"tokens sealed with the new key before it became valid: {[(n, r.t0) for n, r in early]}"
    # ...and each switched within one reload interval after it, for good.
    switch = {}
    for name in (n.name for n in nodes):
        mine = [(r, token_key_id(r.value["Credentials"]["SessionToken"])) for n, r in issued if n == name]
        first_new = next((i for i, (_, k) in enumerate(mine) if k == new_id), None)
        assert first_new is not None, f"node {name} never sealed with the new key {new_id} (45 s after the rotation)"
        assert {k for _, k in mine[first_new:]} == {new_id}, f"node {name} went back to the old key after switching"
        assert {k for _, k in mine[:first_new]} <= {old_id}, f"node {name} sealed with an unknown key"
        switch[name] = round(mine[first_new][0].t1 - valid_from, 2)
    print(f"seconds from ValidFrom to the first token sealed with the new key, per node: {switch}")
    for name, s in switch.items():
        assert s <= KEY_RING_REFRESH + 2, f"node {name} switched {s}s after ValidFrom (reload every {KEY_RING_REFRESH}s)"

    # T1 (old key) and the newest token of each node (new key) work on every node.
    latest = {}
    for n, r in issued:
        latest[n] = r
    for creds in [t1] + [session_creds(r.value) for r in latest.values()]:
        for v in nodes:
            g = call(v.client("sts", creds).get_caller_identity, label=f"token {token_key_id(creds.session_token)} on {v.name}")
            assert g.ok and identity(g) == (root_arn(acct), acct, acct), g.brief()
    keys = cluster.token_keys()
    assert sorted((int(k["KeyId"]), k["Status"]) for k in keys) == [(old_id, "active"), (new_id, "active")], keys


# ---------------------------------------------------------------- 5. revocation


def test_multinode_session_revocation_and_user_deletion(cluster):
    A, B, C = cluster["A"], cluster["B"], cluster["C"]
    nodes = list(cluster)
    iam_a = A.client("iam")
    name, user, ukey = create_iam_user(iam_a)
    s_user = session_creds(B.client("sts", ukey).get_session_token())
    s_root = session_creds(C.client("sts").get_session_token())
    clients = {}
    for n in nodes:  # work everywhere (and every node now caches both principals' revocation state)
        for who, creds in (("user", s_user), ("root", s_root)):
            clients[(who, n.name)] = n.client("sts", creds)
            r = call(clients[(who, n.name)].get_caller_identity, label=f"{who} session on {n.name}")
            assert r.ok, r.brief()

    cluster.admin("sessions", "revoke", "--user", name)
    t_user = time.time()
    cluster.admin("sessions", "revoke", "--root")
    t_root = time.time()

    def refused(r):
        assert_refused(r, 403, "InvalidClientTokenId", MSG_BAD_TOKEN)

    probes, since = {}, {}
    for (who, node), c in clients.items():
        label = f"{who} session on {node}"
        probes[label] = lambda c=c: call(c.get_caller_identity)
        since[label] = t_user if who == "user" else t_root
    found = wait_for_each(probes, since, lambda r: not r.ok, PROPAGATION_BOUND)
    assert_propagated(found, PROPAGATION_BOUND, refused, assert_ok, "sessions revoke --user / --root")

    # Sessions issued after the revocation work everywhere. The revocation covers every session issued up to
    # the second of the command inclusive (admin.rs), so new ones are requested from the next second on.
    time.sleep(max(0.0, int(t_root) + 1.05 - time.time()))
    fresh = {
        "user": session_creds(A.client("sts", ukey).get_session_token()),
        "root": session_creds(B.client("sts").get_session_token()),
    }
    for who, creds in fresh.items():
        for n in nodes:
            r = call(n.client("sts", creds).get_caller_identity, label=f"new {who} session on {n.name}")
            assert r.ok, r.brief()
    for (who, node), c in clients.items():  # the revoked ones stay revoked
        refused(call(c.get_caller_identity, label=f"revoked {who} session on {node}"))

    # Deleting a user (keys first) ends its sessions on every node within the same bound.
    name2, user2, key2 = create_iam_user(iam_a, self_service=False)
    s2 = session_creds(C.client("sts", key2).get_session_token())
    c2 = {n.name: n.client("sts", s2) for n in nodes}
    for k, c in c2.items():
        r = call(c.get_caller_identity, label=f"session of {name2} on {k}")
        assert r.ok, r.brief()
    iam_a.delete_access_key(UserName=name2, AccessKeyId=key2.access_key_id)
    iam_a.delete_user(UserName=name2)
    t_del = time.time()
    probes = {f"deleted user's session on {k}": (lambda c=c: call(c.get_caller_identity)) for k, c in c2.items()}
    found = wait_for_each(probes, t_del, lambda r: not r.ok, PROPAGATION_BOUND)
    assert_propagated(found, PROPAGATION_BOUND, refused, assert_ok, "DeleteUser on A")
    # A new user of the same name is another principal: the old sessions stay dead.
    B.client("iam").create_user(UserName=name2)
    for k, c in c2.items():
        refused(call(c.get_caller_identity, label=f"old session of re-created {name2} on {k}"))


# ---------------------------------------------------------------- 6. a node crashes


def sts_iam_load(node, tag, created):
    """A load step on one node: GetSessionToken (root key), GetCallerIdentity with the new session, CreateUser."""
    state = {}

    def step(i):
        if not state:  # clients made in the loop's own thread
            state.update(sts=node.client("sts"), iam=node.client("iam"))
        out = [call(state["sts"].get_session_token, DurationSeconds=900, label=f"GetSessionToken on {node.name}")]
        if out[0].ok:
            out.append(call(node.client("sts", session_creds(out[0].value)).get_caller_identity, label=f"GetCallerIdentity on {node.name}"))
        user = f"{tag}-{i}"
        r = call(state["iam"].create_user, UserName=user, label=f"CreateUser {user} on {node.name}")
        if r.ok:
            created.append(user)
        out.append(r)
        return out

    return step


def list_user_names(iam):
    """Every user name, as the node lists them. The listing is how the tests check that nothing acknowledged
    was lost, not availability: right after a database restart a node may still hold a pooled connection
    that the restart closed (one idle for less than a second is not pinged before use), and the first
    statement on it answers 503 ServiceUnavailable, which every SDK retries by default. The test clients
    retry nothing, so the listing is retried here, a few times, on that answer only."""
    for attempt in range(4):
        try:
            names = set()
            for page in iam.get_paginator("list_users").paginate():
                names.update(u["UserName"] for u in page["Users"])
            return names
        except botocore.exceptions.ClientError as e:
            if e.response["Error"]["Code"] != "ServiceUnavailable" or attempt == 3:
                raise
            time.sleep(0.2)


def test_multinode_kill9_one_node(cluster):
    A, B, C = cluster["A"], cluster["B"], cluster["C"]
    s_b = session_creds(B.client("sts").get_session_token())
    created = []
    tag = unique_name("crash")
    loops = [LoadLoop(n.name, sts_iam_load(n, f"{tag}-{n.name}", created), max_seconds=30, max_iterations=5000).start() for n in (A, C)]
    time.sleep(1.5)
    t_kill = time.time()
    rc = B.kill9()
    assert rc == -9, f"node B exited with {rc}, not by SIGKILL"
    time.sleep(3.0)
    results = {lp.name: lp.stop() for lp in loops}
    for name, res in results.items():
        failures = [r for r in res if not r.ok]
        after = [r for r in res if r.t0 > t_kill]
        print(f"node {name}: {len(res)} requests, {len(after)} after B's kill, {len(failures)} failed")
        assert len(failures) == 0, f"node {name}: {len(failures)} of {len(res)} requests failed around B's crash:\n  {summary(failures)}"
        assert len(after) >= 5, f"node {name} served only {len(after)} requests after B's crash"
    down = call(B.client("sts").get_caller_identity, label="B after kill -9")
    assert down.exc, f"B still answers after kill -9: {down.brief()}"

    # A session issued by B before the crash still works on A and C, and B comes back.
    for n in (A, C):
        r = call(n.client("sts", s_b).get_caller_identity, label=f"B's session on {n.name}")
        assert r.ok, r.brief()
    B.start()
    r = call(B.client("sts").get_session_token, label="GetSessionToken on restarted B")
    assert r.ok, r.brief()
    for n in cluster:
        for creds in (s_b, session_creds(r.value)):
            g = call(n.client("sts", creds).get_caller_identity, label=f"B's session on {n.name}")
            assert g.ok, g.brief()
    missing = set(created) - list_user_names(B.client("iam"))
    assert len(missing) == 0, f"users acknowledged by A or C are missing on restarted B: {sorted(missing)[:10]}"


# ---------------------------------------------------------------- 7. the database restarts


def assert_unavailable(r):
    """503 ServiceUnavailable in the AWS error shape (5xx: Type Receiver), answered within the fail-fast bound."""
    assert (r.status, r.code) == (503, "ServiceUnavailable"), f"{r.label}: expected 503 ServiceUnavailable, got {r.brief()}"
    assert r.message, f"{r.label}: empty Message"
    assert r.err_type == "Receiver", f"{r.label}: Error/Type should be Receiver for a 503, got {r.err_type!r}"
    assert REQUEST_ID_RE.match(r.request_id or ""), f"{r.label}: bad RequestId {r.request_id!r}"


def pg_dir():
    d = os.environ.get(PG_DIR_ENV)
    if not d:
        pytest.fail(f"{PG_DIR_ENV} is not set: the database restart test needs the scripts/pg-temp cluster directory", pytrace=False)
    return d


def test_multinode_database_restart_under_load(cluster):
    d = pg_dir()
    A, B = cluster["A"], cluster["B"]
    sessions = {n.name: session_creds(n.client("sts").get_session_token()) for n in (A, B)}
    created = []
    tag = unique_name("pgrestart")

    def create_step(w):
        state = {}

        def step(i):
            if not state:  # the client is made in the loop's own thread
                state["iam"] = A.client("iam")
            name = f"{tag}-{w}-{i}"
            r = call(state["iam"].create_user, UserName=name, label=f"CreateUser {name} on A")
            if r.ok:
                created.append(name)
            return [r]

        return step

    def probe_step(node):
        state = {}

        def step(i):
            if not state:
                state["c"] = node.client("sts", sessions[node.name])
            return [call(state["c"].get_caller_identity, label=f"session GetCallerIdentity on {node.name}")]

        return step

    # Several writers, so that some statement is likely in flight when PostgreSQL terminates its sessions.
    writers = [LoadLoop(f"writer-{w}", create_step(w), max_seconds=40, max_iterations=5000).start() for w in range(WRITERS)]
    probes = [LoadLoop(f"probe-{n.name}", probe_step(n), max_seconds=40, max_iterations=2000, pause=0.1).start() for n in (A, B)]
    # Restart only once every writer and probe is running (their boto3 set-up takes a moment).
    deadline = time.time() + 20
    loops = writers + probes
    while time.time() < deadline and not all(sum(1 for r in lp.results[:] if r.ok) >= 3 for lp in loops):
        time.sleep(0.1)
    assert all(sum(1 for r in lp.results[:] if r.ok) >= 3 for lp in loops), "the load did not get going within 20s"
    t_r0, t_r1 = pg_temp("restart-server", d)
    print(f"scripts/pg-temp restart-server took {t_r1 - t_r0:.2f}s")
    # Keep the load on until the writer has succeeded a few times after the restart (at most 10 s).
    deadline = time.time() + 10
    while time.time() < deadline and sum(1 for lp in writers for r in lp.results[:] if r.ok and r.t0 > t_r1) < 5 * WRITERS:
        time.sleep(0.1)
    w = sorted((r for lp in writers for r in lp.stop()), key=lambda r: r.t0)
    p = [r for lp in probes for r in lp.stop()]

    unavailable = [r for r in w if not r.ok]
    kinds = {}
    for r in unavailable:
        kinds[(r.status, r.code)] = kinds.get((r.status, r.code), 0) + 1
    print(f"writers: {len(w)} requests, {len(created)} acknowledged, {len(unavailable)} failed {kinds}; "
          f"in flight during the restart: {sum(1 for r in w if r.t1 >= t_r0 and r.t0 <= t_r1)}; "
          f"slowest {max(r.elapsed for r in w):.2f}s; slowest session probe {max(r.elapsed for r in p):.2f}s")
    assert any(r.t1 >= t_r0 and r.t0 <= t_r1 for r in w), "no write was in flight during the restart"
    # No acknowledged write lost, seen from every node (checked first: the worst outcome).
    for n in cluster:
        missing = set(created) - list_user_names(n.client("iam"))
        assert len(missing) == 0, f"acknowledged users missing on {n.name}: {sorted(missing)[:10]} (of {len(created)})"
    # Writes succeed again after the restart, without restarting stsd.
    after = [r for r in w if r.t0 > t_r1]
    assert sum(1 for r in after if r.ok) >= 5 * WRITERS, f"writes did not succeed again after the restart:\n  {summary(after)}"
    assert all(r.ok for r in after[-WRITERS:]), summary(after[-WRITERS:])
    # Session-authenticated requests do not need the database.
    bad_probes = [r for r in p if not r.ok or r.elapsed > FAIL_FAST_BOUND]
    assert len(bad_probes) == 0, f"session-authenticated requests failed or were slow:\n  {summary(bad_probes)}"
    # A write the database could not take answers 503 ServiceUnavailable (retry later), quickly; nothing else.
    wrong = [r for r in unavailable if (r.status, r.code) != (503, "ServiceUnavailable")]
    assert len(wrong) == 0, f"{len(wrong)} writes failed with something else than 503 ServiceUnavailable:\n  {summary(wrong)}"
    for r in unavailable:
        assert_unavailable(r)
    slow = [r for r in w if r.elapsed > FAIL_FAST_BOUND]
    assert len(slow) == 0, f"requests took longer than {FAIL_FAST_BOUND}s around the restart:\n  {summary(slow)}"


def pg_start(d):
    """Starts the server of a stopped scripts/pg-temp cluster the way `pg-temp restart-server` does."""
    import glob
    import shutil
    import subprocess

    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: [int(x) for x in p.split("/")[4].split(".") if x.isdigit()])
    bin_dir = bins[-1] if bins else os.path.dirname(shutil.which("pg_ctl") or "")
    port = open(os.path.join(d, "port")).read().strip()
    cmd = [
        os.path.join(bin_dir, "pg_ctl"), "-D", os.path.join(d, "data"), "-l", os.path.join(d, "server.log"), "-w", "-t", "60",
        "-o", f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={d} -c max_connections=200", "start",
    ]
    if os.getuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"starting PostgreSQL again failed: {r.stdout}{r.stderr}"
    return t0, time.time()


def test_multinode_database_outage_longer_than_pool_timeout(cluster):
    """`pg-temp restart-server` is often shorter than the 2 s the pool waits for a connection, so requests just
    wait for it. Here the database stays down for ~5 s (`pg-temp stop`, then the start line of restart-server):
    requests that need it must answer 503 within the fail-fast bound (AWS error XML), session-authenticated ones
    keep working on every node, and everything recovers without restarting stsd."""
    d = pg_dir()
    A, C = cluster["A"], cluster["C"]
    iam_a = A.client("iam")
    sessions = {n.name: session_creds(n.client("sts").get_session_token()) for n in cluster}
    for n in cluster:
        assert_ok(call(n.client("sts", sessions[n.name]).get_caller_identity))
    before = unique_name("before")
    iam_a.create_user(UserName=before)

    def writes_step():
        state = {}

        def step(i):
            if not state:
                state["iam"] = A.client("iam")
            return [call(state["iam"].create_user, UserName=f"{before}-down-{i}", label=f"CreateUser #{i} on A (database down)")]

        return step

    def reads_step(node):
        state = {}

        def step(i):
            if not state:
                state["sts"] = node.client("sts", sessions[node.name])
            return [call(state["sts"].get_caller_identity, label=f"session GetCallerIdentity on {node.name} (database down)")]

        return step

    t_stop0, t_stop1 = pg_temp("stop", d)
    try:
        loops = [LoadLoop("writes", writes_step(), max_seconds=5, max_iterations=50, pause=0.05).start()]
        loops += [LoadLoop(f"reads-{n.name}", reads_step(n), max_seconds=5, max_iterations=50, pause=0.1).start() for n in cluster]
        # The raw answer: AWS error XML in the IAM namespace, x-amzn-RequestId = RequestId, text/xml.
        time.sleep(0.5)
        raw_t0 = time.time()
        raw = signed_post(A.endpoint, {"Action": "ListUsers", "Version": "2010-05-08"}, A.root, service="iam")
        raw_elapsed = time.time() - raw_t0
        time.sleep(max(0.0, t_stop1 + 5 - time.time()))
        results = {lp.name: lp.stop(timeout=20) for lp in loops}
    finally:
        t_start0, t_start1 = pg_start(d)
    writes = results.pop("writes")
    reads = [r for res in results.values() for r in res]
    print(f"database down {t_start1 - t_stop1:.1f}s; {len(writes)} writes, slowest {max(r.elapsed for r in writes):.2f}s; "
          f"{len(reads)} session reads, slowest {max(r.elapsed for r in reads):.2f}s")

    assert len(writes) >= 2, f"only {len(writes)} writes while the database was down"
    assert all(r.t1 <= t_start0 for r in writes), "writes overlapped the database's start"
    for r in writes:
        assert_unavailable(r)
    slow = [r for r in writes if r.elapsed > FAIL_FAST_BOUND]
    assert len(slow) == 0, f"writes took longer than {FAIL_FAST_BOUND}s to fail:\n  {summary(slow)}"
    bad_reads = [r for r in reads if not r.ok or r.elapsed > FAIL_FAST_BOUND]
    assert len(bad_reads) == 0, f"session-authenticated requests failed or were slow while the database was down:\n  {summary(bad_reads)}"
    assert {r.label.split(" on ")[1][0] for r in reads} == {"A", "B", "C"}, "every node was read from"
    assert raw.status == 503 and raw_elapsed <= FAIL_FAST_BOUND, (raw.status, round(raw_elapsed, 2), raw.body)
    root = raw.xml()
    ns = {"i": IAM_NS}
    assert root.tag == f"{{{IAM_NS}}}ErrorResponse", raw.body
    fields = (root.findtext("i:Error/i:Type", namespaces=ns), root.findtext("i:Error/i:Code", namespaces=ns))
    assert fields == ("Receiver", "ServiceUnavailable"), raw.body
    assert root.findtext("i:Error/i:Message", namespaces=ns), raw.body
    assert root.findtext("i:RequestId", namespaces=ns) == raw.header("x-amzn-RequestId"), (raw.headers, raw.body)
    assert (raw.header("content-type") or "").startswith("text/xml"), raw.headers

    # Back without restarting stsd: every node writes again within a few seconds of the database's return.
    for n in cluster:
        iam = n.client("iam")
        deadline = time.time() + 5
        k = 0
        while True:
            r = call(iam.create_user, UserName=f"{before}-after-{n.name}-{k}", label=f"CreateUser on {n.name} after the outage")
            if r.ok or time.time() >= deadline:
                break
            assert_unavailable(r)
            k += 1
            time.sleep(0.2)
        assert r.ok, f"{r.brief()} {time.time() - t_start1:.1f}s after the database came back"
    names = list_user_names(C.client("iam"))
    assert before in names
    ghost = sorted(n for n in names if "-down-" in n)
    assert len(ghost) == 0, f"writes answered 503 were committed anyway: {ghost}"
