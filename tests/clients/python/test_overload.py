"""Overload (issue 14): 10,000 concurrent connections and a slowloris client while signed traffic continues.

The server runs with `--max-connections 12000` (above the flood; the default cap is 4096, see below) and
`--max-connections-per-ip 0` (no per-address cap: the flood comes from 127.0.0.1 like the legitimate client,
as it would through a proxy or a NAT). A flooder thread keeps FLOOD connections open: idle ones (the server
closes them after its 5 s idle limit, the flooder opens them again at once) and SLOWLORIS ones that send
their request head one byte a second (the server closes them at its 10 s head limit; they too are reopened).
Meanwhile a client sends signed requests — GetCallerIdentity and GetSessionToken with boto3 on a keep-alive
connection, and GetCallerIdentity on a fresh connection each time — and every answer is recorded.

Asserted: at least MIN_SUCCESS of the legitimate requests succeed, none takes longer than LEGIT_BOUND; the
server holds the flood (its open descriptors reach HELD x FLOOD); its peak resident memory (VmHWM) stays under
RSS_BOUND_MIB; slowloris connections are cut at the head limit; the server stays up, and once the flood is
gone its descriptors return to their level before the flood and requests are answered as before.

Long form: STSD_OVERLOAD_SECONDS (default 20) and STSD_OVERLOAD_CONNECTIONS (default 10000);
STSD_OVERLOAD_MAX_CONNECTIONS sets the server's cap (default: the flood + 2000).
"""

import os
import resource
import selectors
import socket
import threading
import time

import pytest

from multinode_support import Result, call
from stsd_support import PrivateServer, signed_post

FLOOD = int(os.environ.get("STSD_OVERLOAD_CONNECTIONS", "10000"))
SLOWLORIS = 200  # of FLOOD
SECONDS = float(os.environ.get("STSD_OVERLOAD_SECONDS", "20"))
# The server's --max-connections; STSD_OVERLOAD_MAX_CONNECTIONS=4096 shows the default cap under the flood
# (then the held/latency assertions are expected to fail: see the README for what happens).
MAX_CONNECTIONS = int(os.environ.get("STSD_OVERLOAD_MAX_CONNECTIONS", str(FLOOD + 2000)))
# Every legitimate request must be answered; one in a hundred may fail (a connection reset in a race with
# the idle limit would be one), none may take longer than LEGIT_BOUND seconds.
MIN_SUCCESS = 0.99
LEGIT_BOUND = 5.0
# A connection costs stsd a task, a socket and hyper's buffers (a few KiB each); 10,000 of them must fit in
# a small fraction of a server's memory. 48 KiB per connection on top of the resting process is generous.
PER_CONNECTION_KIB = 48
# The server cuts idle connections after 5 s and the flooder reopens them at once, so the number the server
# holds comes in waves (sampled peaks of 8,300-9,900 of 10,000 in our runs): it must reach 70 % of it, well
# above the default cap of 4096 (at that cap it stays at 4,113: the rest waits in the accept queue).
HELD = 0.7
HEAD = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nX-Slow: "


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class Flooder(threading.Thread):
    """Keeps `total` connections to `port` open, `slow` of them trickling a request head one byte a second;
    reopens what the server closes."""

    def __init__(self, port, total, slow):
        super().__init__(name="flooder", daemon=True)
        self.port, self.total, self.slow = port, total, slow
        self.sel = selectors.DefaultSelector()
        self.stop_event = threading.Event()
        self.opened = 0  # connections opened, in all
        self.closed_by_server = 0
        self.connect_errors = 0
        self.slow_lifetimes = []  # seconds a slowloris connection lived before the server cut it
        self.open_now = 0
        self.error = None

    def _open(self, slow):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect_ex(("127.0.0.1", self.port))
        except OSError:
            s.close()
            self.connect_errors += 1
            return
        # state: [slow?, opened at, bytes of HEAD sent]
        self.sel.register(s, selectors.EVENT_READ, [slow, time.monotonic(), 0])
        self.opened += 1
        self.open_now += 1

    def run(self):
        try:
            for i in range(self.total):
                self._open(i < self.slow)
            next_trickle = time.monotonic() + 1
            while not self.stop_event.is_set():
                for key, _ in self.sel.select(timeout=0.2):
                    s, state = key.fileobj, key.data
                    try:
                        data = s.recv(4096)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    if data:
                        continue  # an answer (e.g. 408): the server closes next
                    self.sel.unregister(s)
                    s.close()
                    self.open_now -= 1
                    self.closed_by_server += 1
                    if state[0]:
                        self.slow_lifetimes.append(time.monotonic() - state[1])
                    self._open(state[0])
                now = time.monotonic()
                if now >= next_trickle:
                    next_trickle = now + 1
                    for key in list(self.sel.get_map().values()):
                        state = key.data
                        if state[0]:
                            chunk = HEAD[state[2] : state[2] + 1] or b"a"
                            try:
                                key.fileobj.send(chunk)
                                state[2] += 1
                            except OSError:
                                pass  # closed: the select loop sees it
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = f"{type(e).__name__}: {e}"
        finally:
            for key in list(self.sel.get_map().values()):
                key.fileobj.close()
            self.sel.close()
            self.open_now = 0


def legit_round(s, sts, i):
    """One round of legitimate traffic: keep-alive GetCallerIdentity and GetSessionToken, and a
    GetCallerIdentity on a new connection."""
    out = [
        call(sts.get_caller_identity, label=f"GetCallerIdentity (keep-alive) #{i}"),
        call(sts.get_session_token, DurationSeconds=900, label=f"GetSessionToken (keep-alive) #{i}"),
    ]
    label = f"GetCallerIdentity (new connection) #{i}"
    t0 = time.time()
    try:
        raw = signed_post(s.endpoint, {"Action": "GetCallerIdentity", "Version": "2011-06-15"}, s.root)
        if raw.status == 200:
            r = Result(t0, time.time(), value=raw, label=label)
        else:
            r = Result(t0, time.time(), status=raw.status, code=f"HTTP {raw.status}", message=raw.body[:200], label=label)
    except Exception as e:  # noqa: BLE001 - an outcome to count
        r = Result(t0, time.time(), exc=f"{type(e).__name__}: {e}", label=label)
    out.append(r)
    return out


def test_overload_10000_connections_and_slowloris(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = FLOOD + 1000
    if hard != resource.RLIM_INFINITY and hard < need and os.geteuid() == 0:
        # Root may raise its own hard limit (up to fs.nr_open); the server inherits it.
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
            soft, hard = need, need
        except (ValueError, OSError):
            pass
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"the open-file hard limit ({hard}) is below the {need} descriptors this test needs on each side")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else need, hard))
    s = PrivateServer(tmp_path / "data", "--max-connections", str(MAX_CONNECTIONS), "--max-connections-per-ip", "0").start()
    flooder = None
    try:
        pid = s.proc.pid
        sts = s.client("sts")
        warm = [r for i in range(20) for r in legit_round(s, sts, i)]
        assert all(r.ok for r in warm), [r.brief() for r in warm if not r.ok]
        base_rss, base_fds = status_kib(pid, "VmHWM"), open_fds(pid)

        flooder = Flooder(s.port, FLOOD, SLOWLORIS)
        t_flood = time.time()
        flooder.start()
        # Wait until the server holds the flood (every connection accepted).
        deadline = time.time() + 30
        peak_fds = 0
        while time.time() < deadline:
            peak_fds = max(peak_fds, open_fds(pid))
            if peak_fds >= base_fds + HELD * FLOOD:
                break
            time.sleep(0.05)
        t_held = time.time()
        results = []
        i = 0
        fd_samples = []
        while time.time() < t_held + SECONDS:
            results += legit_round(s, sts, i)
            i += 1
            fd_samples.append(open_fds(pid))
            assert s.proc.poll() is None, f"stsd exited with {s.proc.returncode}:\n{s.log_tail()}"
        peak_fds = max([peak_fds] + fd_samples)
        flood_rss = status_kib(pid, "VmHWM")
        flooder.stop_event.set()
        flooder.join(30)
        assert not flooder.is_alive() and flooder.error is None, flooder.error

        # After the flood: descriptors back to where they were, requests answered as before.
        deadline = time.time() + 10
        while time.time() < deadline and open_fds(pid) > base_fds + 5:
            time.sleep(0.1)
        after_fds = open_fds(pid)
        after = [r for j in range(20) for r in legit_round(s, sts, 10_000 + j)]
        final_rss = status_kib(pid, "VmRSS")
    finally:
        if flooder is not None and flooder.is_alive():
            flooder.stop_event.set()
            flooder.join(30)
        s.stop()

    ok = [r for r in results if r.ok]
    rate = len(ok) / len(results)
    slowest = max(r.elapsed for r in results)
    lat = sorted(r.elapsed for r in ok)
    p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    cut = sorted(flooder.slow_lifetimes)
    print(f"\noverload: {FLOOD} connections ({SLOWLORIS} slowloris) held for {SECONDS:.0f}s (reached in "
          f"{t_held - t_flood:.1f}s; {flooder.opened} opened in all, {flooder.closed_by_server} closed by the server, "
          f"{flooder.connect_errors} connect errors); server descriptors: {base_fds} before, peak {peak_fds}, "
          f"{after_fds} after")
    print(f"legitimate requests: {len(ok)}/{len(results)} answered ({rate:.2%}), latency p50 {p50 * 1000:.0f} ms, "
          f"p99 {p99 * 1000:.0f} ms, slowest {slowest:.2f}s")
    for kind in ("(keep-alive)", "(new connection)"):
        of_kind = sorted(r.elapsed for r in results if kind in r.label)
        print(f"  {kind[1:-1]}: {len(of_kind)} requests, p50 {of_kind[len(of_kind) // 2] * 1000:.0f} ms, "
              f"max {of_kind[-1]:.2f}s")
    print(f"peak RSS (VmHWM): {base_rss // 1024} MiB before, {flood_rss // 1024} MiB under the flood, "
          f"{final_rss // 1024} MiB resident after it; slowloris connections cut after "
          f"{cut[0] if cut else 0:.1f}-{cut[-1] if cut else 0:.1f}s ({len(cut)} cut)")

    failed = [r for r in results if not r.ok]
    for r in failed[:5]:
        print(f"  failed: {r.brief()}")
    assert rate >= MIN_SUCCESS, f"only {rate:.2%} of legitimate requests succeeded:\n  " + "\n  ".join(
        r.brief() for r in failed[:10])
    assert slowest <= LEGIT_BOUND, f"a legitimate request took {slowest:.2f}s"
    assert len(results) >= 30, f"only {len(results)} legitimate requests were sent in {SECONDS}s"
    assert peak_fds >= base_fds + HELD * FLOOD, f"the server never held the flood: peak {peak_fds} descriptors"
    bound_kib = base_rss + FLOOD * PER_CONNECTION_KIB
    assert flood_rss <= bound_kib, f"peak RSS {flood_rss} KiB above {bound_kib} KiB"
    # Slowloris: cut at the 10 s head limit (not earlier than it, and not kept for much longer).
    assert cut, "no slowloris connection was cut by the server"
    assert 9.0 <= cut[0] and cut[-1] <= 13.0, f"slowloris connections cut after {cut[0]:.1f}-{cut[-1]:.1f}s"
    assert after_fds <= base_fds + 5, f"the server still has {after_fds} descriptors ({base_fds} before the flood)"
    assert all(r.ok for r in after), [r.brief() for r in after if not r.ok]
