#!/usr/bin/env python3
"""What a sign-in's read of key, user and MFA device costs in SQLite, cold and warm (issue 20, tenth round).

The server reads the three rows with one query (`Store::access_key_and_mfa_device`) on a read-only
connection. SQLite drops that connection's page cache whenever another connection has committed, so in a
burst of sign-ins (the writer commits about every millisecond) nearly every read is "cold". This script
builds the three tables as migrations.rs does (N users, keys and devices), commits an UPDATE of a random
device on a second connection before each read, and times the read cold (right after that commit) and warm
(the same read again: the same rows, which a sign-in never reads twice, so this is a lower bound
that no cache could reach; bench/README.md, eleventh round), for rowid tables and for WITHOUT ROWID tables. Python's own overhead is in both
figures; compare differences. Usage: python3 bench/sqlite_read_cost.py [N]  (default 2000; writes /tmp/wr).
"""
import sqlite3, os, random, time, sys

os.makedirs("/tmp/wr", exist_ok=True)
def make(path, without):
    if os.path.exists(path): os.remove(path)
    for s in ('-wal','-shm'):
        if os.path.exists(path+s): os.remove(path+s)
    c=sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    w=" WITHOUT ROWID" if without else ""
    c.executescript(f"""
CREATE TABLE users (user_id TEXT PRIMARY KEY, name TEXT NOT NULL, name_key TEXT NOT NULL UNIQUE, path TEXT NOT NULL,
 created_at BIGINT NOT NULL, key_count BIGINT NOT NULL DEFAULT 0, device_count BIGINT NOT NULL DEFAULT 0,
 sessions_not_before BIGINT NOT NULL DEFAULT 0, mfa_required BIGINT NOT NULL DEFAULT 0){w};
CREATE TABLE access_keys (access_key_id TEXT PRIMARY KEY, user_id TEXT, secret_enc BLOB NOT NULL, status TEXT NOT NULL,
 created_at BIGINT NOT NULL, last_used_at BIGINT, last_used_region TEXT, last_used_service TEXT){w};
CREATE INDEX access_keys_user ON access_keys (user_id);
CREATE TABLE mfa_devices (serial_number TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, path TEXT NOT NULL,
 seed_enc BLOB NOT NULL, created_at BIGINT NOT NULL, created_by TEXT, owner TEXT, enabled_at BIGINT, last_step BIGINT,
 drift_steps BIGINT NOT NULL DEFAULT 0, failed_count BIGINT NOT NULL DEFAULT 0, first_failed_at BIGINT, locked_until BIGINT){w};
CREATE INDEX mfa_devices_owner ON mfa_devices (owner);
""")
    c.execute("BEGIN")
    rnd=random.Random(1)
    ids=[]
    for i in range(N):
        uid="AIDA"+"".join(rnd.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(17))
        ak="AKIA"+"".join(rnd.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
        sn=f"arn:aws:iam::123456789012:mfa/bench-mfa-{i}"
        c.execute("INSERT INTO users VALUES (?,?,?,?,?,1,1,0,0)",(uid,f"bench-mfa-{i}",f"bench-mfa-{i}","/",1))
        c.execute("INSERT INTO access_keys VALUES (?,?,?,?,?,NULL,NULL,NULL)",(ak,uid,os.urandom(72),"Active",1))
        c.execute("INSERT INTO mfa_devices VALUES (?,?,?,?,?,?,?,?,?,?,0,0,NULL,NULL)",(sn,"virtual",f"bench-mfa-{i}","/",os.urandom(60),1,uid,uid,1,None))
        ids.append((ak,sn))
    c.execute("COMMIT")
    return c, ids
SQL="""SELECT k.access_key_id, k.secret_enc, k.status, k.created_at, k.user_id, u.name, u.path, u.created_at, u.sessions_not_before, u.mfa_required,
 d.serial_number, d.kind, d.name, d.path, d.seed_enc, d.created_at, d.created_by, d.owner, d.enabled_at, d.last_step, d.drift_steps, d.failed_count, d.locked_until
 FROM access_keys k LEFT JOIN users u ON u.user_id = k.user_id LEFT JOIN mfa_devices d ON d.serial_number = ?2 WHERE k.access_key_id = ?1"""
N=int(sys.argv[1]) if len(sys.argv)>1 else 2000
for without in (False, True, False, True):
    w, ids = make("/tmp/wr/t.db", without)
    w.execute("PRAGMA synchronous=OFF")
    r=sqlite3.connect("file:/tmp/wr/t.db?mode=ro", uri=True, isolation_level=None)
    rnd=random.Random(2)
    tot_cold=0; tot_warm=0; M=3000
    for j in range(M):
        ak,sn=rnd.choice(ids)
        w.execute("UPDATE mfa_devices SET last_step=? WHERE serial_number=?", (j, rnd.choice(ids)[1]))
        t=time.perf_counter_ns(); r.execute(SQL,(ak,sn)).fetchone(); tot_cold+=time.perf_counter_ns()-t
        t=time.perf_counter_ns(); r.execute(SQL,(ak,sn)).fetchone(); tot_warm+=time.perf_counter_ns()-t
    print("without_rowid" if without else "rowid        ", f"cold {tot_cold/M/1000:.1f} us  warm {tot_warm/M/1000:.1f} us  (N={N})")
    r.close(); w.close()
