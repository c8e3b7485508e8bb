"""TLS: stsd serves HTTPS with --tls-cert/--tls-key; real clients (boto3, http.client) verify it against a
test CA made here with openssl; the certificate is reloaded on SIGHUP and on file change without dropping
established connections."""

import http.client
import os
import shutil
import signal
import ssl
import subprocess
import time

import boto3
import botocore.exceptions
import pytest

from stsd_support import free_port, new_root_creds, required_env

OPENSSL = shutil.which("openssl")


def run(*args, cwd):
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)


def issue(d, name):
    """A new CA `name` and a server certificate for 127.0.0.1/localhost signed by it, written to
    d/cert.pem and d/key.pem (replaced atomically). Returns the CA file."""
    ca_key, ca = d / f"{name}-ca.key", d / f"{name}-ca.pem"
    run(OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(ca_key), "-out", str(ca), "-days", "1", "-subj", f"/CN=stsd test CA {name}", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run(OPENSSL, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(d / "new-key.pem"), "-out", str(d / "new.csr"), "-subj", "/CN=localhost", cwd=d)
    run(OPENSSL, "x509", "-req", "-in", str(d / "new.csr"), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(d / "new-cert.pem"), "-days", "1", "-extfile", str(d / "ext.cnf"), cwd=d)
    os.replace(d / "new-key.pem", d / "key.pem")
    os.replace(d / "new-cert.pem", d / "cert.pem")
    return ca


def context(ca):
    ctx = ssl.create_default_context(cafile=str(ca))
    return ctx


def handshake_ok(port, ca):
    try:
        with socket_conn(port, ca):
            return True
    except ssl.SSLError:
        return False


def socket_conn(port, ca):
    import socket

    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    return context(ca).wrap_socket(raw, server_hostname="127.0.0.1")


@pytest.fixture
def tls_server(tmp_path):
    if OPENSSL is None:
        pytest.fail("openssl is required for the TLS tests")
    ca1 = issue(tmp_path, "one")
    port = free_port()
    account, root = new_root_creds()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STSD_")}
    env.update(STSD_ACCOUNT_ID=account, STSD_ROOT_ACCESS_KEY_ID=root.access_key_id,
               STSD_ROOT_SECRET_ACCESS_KEY=root.secret_access_key)
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen(
        [required_env("STSD_BIN"), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "data"),
         "--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "key.pem")],
        env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, (tmp_path / "server.log").read_text()
        try:
            c = http.client.HTTPSConnection("127.0.0.1", port, context=context(ca1), timeout=2)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                break
        except OSError:
            time.sleep(0.05)
    else:
        pytest.fail("TLS server did not become healthy")
    yield {"port": port, "dir": tmp_path, "ca": ca1, "root": root, "account": account, "proc": proc}
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()


def test_boto3_over_https_with_the_test_ca(tls_server):
    s = tls_server
    sts = boto3.client("sts", endpoint_url=f"https://127.0.0.1:{s['port']}", region_name="us-east-1",
                       aws_access_key_id=s["root"].access_key_id,
                       aws_secret_access_key=s["root"].secret_access_key, verify=str(s["ca"]))
    assert sts.get_caller_identity()["Arn"] == f"arn:aws:iam::{s['account']}:root"
    creds = sts.get_session_token(DurationSeconds=900)["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    # Without trusting the test CA, the client refuses the server.
    untrusting = boto3.client("sts", endpoint_url=f"https://127.0.0.1:{s['port']}", region_name="us-east-1",
                              aws_access_key_id=s["root"].access_key_id,
                              aws_secret_access_key=s["root"].secret_access_key)
    with pytest.raises(botocore.exceptions.SSLError):
        untrusting.get_caller_identity()


def test_plain_http_gets_no_answer(tls_server):
    c = http.client.HTTPConnection("127.0.0.1", tls_server["port"], timeout=5)
    with pytest.raises((OSError, http.client.HTTPException)):
        c.request("GET", "/healthz")
        r = c.getresponse()
        assert r.status != 200


def test_reload_on_sighup_and_on_file_change_keeps_connections(tls_server):
    s = tls_server
    port, d = s["port"], s["dir"]
    kept = http.client.HTTPSConnection("127.0.0.1", port, context=context(s["ca"]), timeout=5)
    kept.request("GET", "/healthz")
    assert kept.getresponse().read() == b"ok\n"

    ca2 = issue(d, "two")
    s["proc"].send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while not handshake_ok(port, ca2):
        assert time.monotonic() < deadline, "SIGHUP did not load the new certificate"
        time.sleep(0.05)
    assert not handshake_ok(port, s["ca"]), "new connections still get the old certificate"
    # The connection made before the reload still works.
    kept.request("GET", "/healthz")
    assert kept.getresponse().read() == b"ok\n"

    # Without a signal: the server notices the files changed (it checks every 2 s).
    ca3 = issue(d, "three")
    deadline = time.monotonic() + 8
    while not handshake_ok(port, ca3):
        assert time.monotonic() < deadline, "a changed certificate file was not reloaded"
        time.sleep(0.1)
    kept.request("GET", "/healthz")
    assert kept.getresponse().read() == b"ok\n"


def test_a_broken_certificate_file_keeps_the_current_one(tls_server):
    s = tls_server
    (s["dir"] / "cert.pem").write_text("not a certificate\n")
    s["proc"].send_signal(signal.SIGHUP)
    time.sleep(0.5)
    assert s["proc"].poll() is None
    assert handshake_ok(s["port"], s["ca"]), "a failed reload must keep the working certificate"
