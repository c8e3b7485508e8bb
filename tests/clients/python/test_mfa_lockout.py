"""MFA lock-out, its persistence across restarts, and --require-mfa, each on a private stsd (STSD_BIN) with its
own data dir and root credentials: `serve --mfa-max-failures 3 --mfa-lockout 4` and friends.

A locked device refuses every code, even the right one, with the same AccessDenied text as a wrong code
(reference §3.2), so a client learns nothing from the lock. Codes are computed with pyotp; after enrolment only
the next step's code is usable (see create_mfa_user), so a test that needs a second success moves the server's
clock forward by restarting it with --clock-offset-seconds rather than waiting for a step boundary.
"""

import time

import pytest

from stsd_support import (
    MSG_MFA_INVALID_CODE,
    MSG_MFA_REQUIRED_PREFIX,
    Creds,
    PrivateServer,
    assert_error,
    assert_session_token_response,
    create_mfa_user,
    expect_client_error,
    totp_code,
    wrong_code,
)

LOCK_ARGS = ("--mfa-max-failures", "3", "--mfa-lockout", "4")
LOCKOUT = 4


@pytest.fixture
def server_factory(tmp_path):
    started = []

    def start(*args):
        server = PrivateServer(tmp_path / f"data{len(started)}", *args).start()
        started.append(server)
        return server

    yield start
    problems = []
    for server in started:  # stop every one, even if one misbehaves
        try:
            rc = server.stop()
        except AssertionError as e:
            problems.append(str(e))
            continue
        if rc not in (0, None):
            problems.append(f"private stsd exited with {rc} after SIGTERM:\n{server.log_tail()}")
    assert not problems, "\n".join(problems)


class Device:
    """One user's MFA device on a private server, with helpers that keep the exact-error checks in one place."""

    def __init__(self, server):
        self.server = server
        self.u = create_mfa_user(server.client("iam"))

    def sts(self):
        return self.server.client("sts", self.u.creds)

    def code(self, step):
        return totp_code(self.u.seed, step)

    def accepted(self, step):
        resp = self.sts().get_session_token(SerialNumber=self.u.serial, TokenCode=self.code(step))
        return assert_session_token_response(resp)

    def refused(self, code):
        err = expect_client_error(self.sts().get_session_token, SerialNumber=self.u.serial, TokenCode=code)
        assert_error(err, 403, "AccessDenied", MSG_MFA_INVALID_CODE)

    def fail(self, times):
        """Sends `times` wrong codes; returns the time just after the last answer."""
        for _ in range(times):
            self.refused(wrong_code(self.u.seed, self.u.step))
        return time.time()


def sleep_until(t):
    delay = t - time.time()
    if delay > 0:
        time.sleep(delay)


def test_lockout_refuses_the_right_code_until_it_ends(server_factory):
    dev = Device(server_factory(*LOCK_ARGS))
    nxt = dev.u.step + 1  # unused, inside the window for the whole test
    locked_at = dev.fail(3)
    dev.refused(dev.code(nxt))  # locked: the right code is refused too
    sleep_until(locked_at + 1)
    dev.refused(dev.code(nxt))  # still locked a second later
    # The server counts whole seconds: the lock ends at most LOCKOUT s after the third failure was answered.
    sleep_until(locked_at + LOCKOUT + 0.1)
    creds = dev.accepted(nxt)  # the step was never consumed while locked
    ident = dev.server.client("sts", Creds.from_sts(creds)).get_caller_identity()
    assert ident["Arn"] == dev.u.user["Arn"]


def test_success_resets_the_failure_count(server_factory):
    # A long lock-out, so that a lock taken by mistake would still hold after the clock moves.
    server = server_factory("--mfa-max-failures", "3", "--mfa-lockout", "600")
    dev = Device(server)
    s = dev.u.step
    dev.fail(2)
    dev.accepted(s + 1)
    dev.fail(2)  # 4 failures in all, but only 2 since the success
    # Next step: move the server's clock 30 s forward (a restart; failure counts and locks are stored).
    server.restart("--mfa-max-failures", "3", "--mfa-lockout", "600", "--clock-offset-seconds=30")
    dev.accepted(s + 2)


def test_three_failures_without_success_lock(server_factory):
    # Control for the test above: without a success in between, the third failure locks.
    server = server_factory("--mfa-max-failures", "3", "--mfa-lockout", "600")
    dev = Device(server)
    dev.fail(3)
    dev.refused(dev.code(dev.u.step + 1))


def test_lockout_and_replay_state_survive_restart(server_factory):
    server = server_factory(*LOCK_ARGS)
    dev = Device(server)
    nxt = dev.u.step + 1
    locked_at = dev.fail(3)
    server.restart()
    assert time.time() < locked_at + LOCKOUT - 2, "restart took too long to observe the lock-out after it"
    dev.refused(dev.code(nxt))  # still locked after the restart
    sleep_until(locked_at + LOCKOUT + 0.1)
    dev.accepted(nxt)

    # The accepted step stays used across a restart (here also moving the clock one step forward, so that a
    # fresh code is available as a control).
    server.restart(*LOCK_ARGS, "--clock-offset-seconds=30")
    dev.refused(dev.code(nxt))
    dev.accepted(nxt + 1)


def test_require_mfa(server_factory):
    server = server_factory("--require-mfa")
    dev = Device(server)

    def requires_mfa(sts):
        err = expect_client_error(sts.get_session_token)
        e = err.response["Error"]
        got = (err.response["ResponseMetadata"]["HTTPStatusCode"], e.get("Code"))
        assert got == (403, "AccessDenied"), (got, e)
        assert e.get("Message", "").startswith(MSG_MFA_REQUIRED_PREFIX), e
        assert e.get("Type") == "Sender", e

    requires_mfa(server.client("sts"))  # the root too
    requires_mfa(dev.sts())
    creds = Creds.from_sts(dev.accepted(dev.u.step + 1))
    assert server.client("sts", creds).get_caller_identity()["Arn"] == dev.u.user["Arn"]
    # Only GetSessionToken is affected: long-term keys still call everything else.
    assert server.client("sts").get_caller_identity()["Arn"] == f"arn:aws:iam::{server.account}:root"
    assert dev.server.client("iam", dev.u.creds).get_user()["User"]["UserName"] == dev.u.name
