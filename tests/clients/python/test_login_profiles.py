"""Console passwords with boto3 and the AWS CLI: login profiles (Create/Get/Update/DeleteLoginProfile),
ChangePassword by the user itself, the account password policy and its enforcement, who may do what, and
`stsd admin user password` / `stsd admin root password`.

The account password policy is account-wide, so these tests run against a server of their own.
Expected messages: console.md §4-5 (shared reference) and IAM's validation grammar.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from stsd_support import (
    SELF_SERVICE_MFA_POLICY,
    SELF_SERVICE_POLICY,
    WIRE_TIMESTAMP_RE,
    PrivateServer,
    assert_error,
    assert_error_code,
    create_iam_user,
    expect_client_error,
    iam_denied_message,
    iam_validation_message,
    required_env,
    unique_name,
)

GOOD = "Correct-Horse-7"
NEXT = "Battery-Staple-8"
PASSWORD_PATTERN = "satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = PrivateServer(tmp_path_factory.mktemp("pw") / "data").start()
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def iam(server):
    return server.client("iam")


@pytest.fixture(scope="module")
def iam_raw(server):
    """Root IAM client without botocore's client-side validation, so bad values reach the server."""
    return server.client("iam", validate=False)


@pytest.fixture
def no_policy(iam):
    """Every test starts without a custom account password policy (IAM's default policy applies)."""
    try:
        iam.delete_account_password_policy()
    except iam.exceptions.NoSuchEntityException:
        pass
    yield
    try:
        iam.delete_account_password_policy()
    except iam.exceptions.NoSuchEntityException:
        pass


def test_login_profile_life_cycle(server, iam, no_policy):
    name, _, _ = create_iam_user(iam, key=False, self_service=False)
    err = expect_client_error(iam.get_login_profile, UserName=name)
    assert_error(err, 404, "NoSuchEntity", f"Login Profile for User {name} cannot be found.")

    p = iam.create_login_profile(UserName=name, Password=GOOD, PasswordResetRequired=True)["LoginProfile"]
    assert p["UserName"] == name and p["PasswordResetRequired"] is True
    assert set(p) == {"UserName", "CreateDate", "PasswordResetRequired"}, "never the password"
    got = iam.get_login_profile(UserName=name)["LoginProfile"]
    assert got == p

    err = expect_client_error(iam.create_login_profile, UserName=name, Password=GOOD)
    assert_error(err, 409, "EntityAlreadyExists", f"Login Profile for user {name} already exists.")

    iam.update_login_profile(UserName=name, PasswordResetRequired=False)
    assert iam.get_login_profile(UserName=name)["LoginProfile"]["PasswordResetRequired"] is False
    iam.update_login_profile(UserName=name, Password=NEXT, PasswordResetRequired=True)
    after = iam.get_login_profile(UserName=name)["LoginProfile"]
    assert after["PasswordResetRequired"] is True
    assert after["CreateDate"] == p["CreateDate"], "CreateDate is when the first password was set"

    err = expect_client_error(iam.delete_user, UserName=name)
    assert_error(err, 409, "DeleteConflict", "Cannot delete entity, must delete login profile first.")
    iam.delete_login_profile(UserName=name)
    err = expect_client_error(iam.delete_login_profile, UserName=name)
    assert_error(err, 404, "NoSuchEntity", f"Login Profile for User {name} cannot be found.")
    err = expect_client_error(iam.update_login_profile, UserName=name, PasswordResetRequired=True)
    assert_error(err, 404, "NoSuchEntity", f"Login Profile for User {name} cannot be found.")
    iam.delete_user(UserName=name)

    err = expect_client_error(iam.create_login_profile, UserName=unique_name("ghost"), Password=GOOD)
    assert_error_code(err, 404, "NoSuchEntity")


def test_raw_wire_shape(server, iam, no_policy):
    """The XML as AWS writes it, read with botocore's parser (timestamps as datetimes)."""
    name, _, _ = create_iam_user(iam, key=False, self_service=False)
    iam.create_login_profile(UserName=name, Password=GOOD)
    resp = iam.get_login_profile(UserName=name)
    raw_date = resp["LoginProfile"]["CreateDate"].strftime("%Y-%m-%dT%H:%M:%SZ")
    assert WIRE_TIMESTAMP_RE.match(raw_date)
    assert resp["LoginProfile"]["PasswordResetRequired"] is False
    iam.delete_login_profile(UserName=name)
    iam.delete_user(UserName=name)


def test_validation_errors_never_echo_passwords(iam_raw, no_policy):
    name, _, _ = create_iam_user(iam_raw, key=False, self_service=False)
    long = "Aa1!" * 33  # 132 characters
    err = expect_client_error(iam_raw.create_login_profile, UserName=name, Password=long)
    assert_error(
        err, 400, "ValidationError",
        iam_validation_message("password", "have length less than or equal to 128"),
    )
    err = expect_client_error(iam_raw.create_login_profile, UserName=name, Password="Good-pass\u20ac1")
    assert_error(err, 400, "ValidationError", iam_validation_message("password", PASSWORD_PATTERN))
    assert "Good-pass" not in str(err.response)
    err = expect_client_error(iam_raw.update_account_password_policy, MinimumPasswordLength=5)
    assert_error(
        err, 400, "ValidationError",
        iam_validation_message("minimumPasswordLength", "have value greater than or equal to 6"),
    )
    err = expect_client_error(iam_raw.update_account_password_policy, PasswordReusePrevention=25)
    assert_error(
        err, 400, "ValidationError",
        iam_validation_message("passwordReusePrevention", "have value less than or equal to 24"),
    )
    err = expect_client_error(iam_raw.update_account_password_policy, MaxPasswordAge=0)
    assert_error(
        err, 400, "ValidationError",
        iam_validation_message("maxPasswordAge", "have value greater than or equal to 1"),
    )
    # Nothing was written by the refused calls.
    assert_error_code(expect_client_error(iam_raw.get_login_profile, UserName=name), 404, "NoSuchEntity")
    assert_error_code(expect_client_error(iam_raw.get_account_password_policy), 404, "NoSuchEntity")
    iam_raw.delete_user(UserName=name)


def test_default_policy_applies_without_a_custom_one(server, iam, no_policy):
    err = expect_client_error(iam.get_account_password_policy)
    assert_error(
        err, 404, "NoSuchEntity", f"The Password Policy with domain name {server.account} cannot be found."
    )
    name, _, _ = create_iam_user(iam, key=False, self_service=False)
    err = expect_client_error(iam.create_login_profile, UserName=name, Password="Ab1!")
    assert_error(err, 400, "PasswordPolicyViolation", "Password should have a minimum length of 8")
    err = expect_client_error(iam.create_login_profile, UserName=name, Password="abcdefgh1")
    assert_error(
        err, 400, "PasswordPolicyViolation",
        "Password should meet 1 more of the following requirements: "
        "Password should have at least one uppercase letter, Password should have at least one symbol",
    )
    iam.create_login_profile(UserName=name, Password="abcdefgH1")
    iam.delete_login_profile(UserName=name)
    iam.delete_user(UserName=name)


def test_account_policy_shape_and_enforcement(server, iam, iam_for, no_policy):
    iam.update_account_password_policy(
        MinimumPasswordLength=10,
        RequireSymbols=True,
        RequireNumbers=True,
        RequireUppercaseCharacters=True,
        RequireLowercaseCharacters=True,
        MaxPasswordAge=30,
        PasswordReusePrevention=3,
        HardExpiry=True,
    )
    pol = iam.get_account_password_policy()["PasswordPolicy"]
    assert pol == {
        "MinimumPasswordLength": 10,
        "RequireSymbols": True,
        "RequireNumbers": True,
        "RequireUppercaseCharacters": True,
        "RequireLowercaseCharacters": True,
        "AllowUsersToChangePassword": False,
        "ExpirePasswords": True,
        "MaxPasswordAge": 30,
        "PasswordReusePrevention": 3,
        "HardExpiry": True,
    }
    name, _, _ = create_iam_user(iam, key=False, self_service=False)
    cases = {
        "Aa1!": "Password should have a minimum length of 10",
        "abcdefgh1!": "Password should have at least one uppercase letter",
        "ABCDEFGH1!": "Password should have at least one lowercase letter",
        "Abcdefghi!": "Password should have at least one number",
        "Abcdefgh12": "Password should have at least one symbol",
        "Abcdefgh 1.": "Password should have at least one symbol",  # space and dot are not IAM symbols
        "abcdefghij": "Password should have at least one uppercase letter, Password should have at least "
        "one number, Password should have at least one symbol",
    }
    for password, message in cases.items():
        err = expect_client_error(iam.create_login_profile, UserName=name, Password=password)
        assert_error(err, 400, "PasswordPolicyViolation", message)
    for symbol in "!@#$%^&*()_+-=[]{}|'":
        assert expect_client_error(iam.get_login_profile, UserName=name)  # still none
        iam.create_login_profile(UserName=name, Password=f"Abcdefgh1{symbol}")
        iam.delete_login_profile(UserName=name)

    # Reuse prevention covers the current and the previous passwords (3 here), by administrators too.
    passwords = [f"Rotation-{i}-pass" for i in range(5)]
    iam.create_login_profile(UserName=name, Password=passwords[0])
    for p in passwords[1:4]:
        iam.update_login_profile(UserName=name, Password=p)
    for reused in passwords[1:4]:
        err = expect_client_error(iam.update_login_profile, UserName=name, Password=reused)
        assert_error(
            err, 400, "PasswordPolicyViolation", "Password should not be one of your 3 previous passwords"
        )
    iam.update_login_profile(UserName=name, Password=passwords[0])  # four changes ago: allowed again

    # No partial updates: omitted members revert to their defaults.
    iam.update_account_password_policy(MinimumPasswordLength=7)
    pol = iam.get_account_password_policy()["PasswordPolicy"]
    assert pol["MinimumPasswordLength"] == 7 and pol["RequireSymbols"] is False
    assert pol["ExpirePasswords"] is False and "MaxPasswordAge" not in pol
    assert "PasswordReusePrevention" not in pol and pol["HardExpiry"] is False
    iam.update_login_profile(UserName=name, Password="plainpw")
    iam.delete_account_password_policy()
    err = expect_client_error(iam.delete_account_password_policy)
    assert_error(
        err, 404, "NoSuchEntity", f"The Password Policy with domain name {server.account} cannot be found."
    )
    iam.delete_login_profile(UserName=name)
    iam.delete_user(UserName=name)


def test_change_password_needs_permission_and_the_old_password(server, iam, iam_for, no_policy):
    # A user without policies: AccessDenied with IAM's message, for its own password too.
    name, _, creds = create_iam_user(iam, self_service=False)
    iam.create_login_profile(UserName=name, Password=GOOD, PasswordResetRequired=True)
    me = iam_for_server(server, creds)
    err = expect_client_error(me.change_password, OldPassword=GOOD, NewPassword=NEXT)
    assert_error(
        err, 403, "AccessDenied", iam_denied_message(server.account, f"/{name}", "ChangePassword", f"user {name}")
    )
    err = expect_client_error(me.get_login_profile, UserName=name)
    assert_error(
        err, 403, "AccessDenied", iam_denied_message(server.account, f"/{name}", "GetLoginProfile", f"user {name}")
    )
    err = expect_client_error(me.update_account_password_policy, MinimumPasswordLength=6)
    assert_error(
        err, 403, "AccessDenied", iam_denied_message(server.account, f"/{name}", "UpdateAccountPasswordPolicy", "*")
    )

    # stsd's self-service policy allows it (and reading the account policy).
    iam.attach_user_policy(UserName=name, PolicyArn=SELF_SERVICE_POLICY)
    err = expect_client_error(me.change_password, OldPassword="Not-the-password-1", NewPassword=NEXT)
    assert_error_code(err, 403, "AccessDenied")
    err = expect_client_error(me.change_password, OldPassword=GOOD, NewPassword="weak")
    assert_error(err, 400, "PasswordPolicyViolation", "Password should have a minimum length of 8")
    me.change_password(OldPassword=GOOD, NewPassword=NEXT)
    assert iam.get_login_profile(UserName=name)["LoginProfile"]["PasswordResetRequired"] is False
    assert me.get_login_profile()["LoginProfile"]["UserName"] == name  # the caller by default
    err = expect_client_error(me.change_password, OldPassword=GOOD, NewPassword="Another-one-9")
    assert_error_code(err, 403, "AccessDenied")

    # AWS's MFA example policy denies it to a caller without MFA, explicitly.
    iam.detach_user_policy(UserName=name, PolicyArn=SELF_SERVICE_POLICY)
    iam.attach_user_policy(UserName=name, PolicyArn=SELF_SERVICE_MFA_POLICY)
    err = expect_client_error(me.change_password, OldPassword=NEXT, NewPassword="Another-one-9")
    assert_error(
        err, 403, "AccessDenied",
        f"User: arn:aws:iam::{server.account}:user/{name} is not authorized to perform: iam:ChangePassword "
        f"on resource: user {name} with an explicit deny in an identity-based policy: {SELF_SERVICE_MFA_POLICY}",
    )
    iam.detach_user_policy(UserName=name, PolicyArn=SELF_SERVICE_MFA_POLICY)

    # The account policy's AllowUsersToChangePassword lets every user change its own password.
    iam.update_account_password_policy(MinimumPasswordLength=8, AllowUsersToChangePassword=True)
    me.change_password(OldPassword=NEXT, NewPassword="Another-one-9")
    assert me.get_account_password_policy()["PasswordPolicy"]["AllowUsersToChangePassword"] is True
    # ... but no other user's, and nothing else.
    err = expect_client_error(me.update_login_profile, UserName=name, Password="Fourth-one-9")
    assert_error_code(err, 403, "AccessDenied")

    # The root is no IAM user; a user without a login profile has nothing to change.
    err = expect_client_error(iam.change_password, OldPassword=GOOD, NewPassword=NEXT)
    assert_error_code(err, 400, "InvalidUserType")
    other, _, other_creds = create_iam_user(iam, self_service=False)
    err = expect_client_error(iam_for_server(server, other_creds).change_password, OldPassword=GOOD, NewPassword=NEXT)
    assert_error(err, 404, "NoSuchEntity", f"Login Profile for User {other} cannot be found.")


def iam_for_server(server, creds):
    return server.client("iam", creds)


# ----------------------------------------------------------------------------------------------- awscli


@pytest.fixture(scope="module")
def aws(server):
    exe = shutil.which("aws", path=os.path.dirname(sys.executable)) or shutil.which("aws")
    assert exe, "the aws CLI is not installed in the test venv"

    def run(*args):
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "AWS_ACCESS_KEY_ID": server.root.access_key_id,
            "AWS_SECRET_ACCESS_KEY": server.root.secret_access_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_PAGER": "",
        }
        return subprocess.run(
            [exe, "iam", *args, "--endpoint-url", server.endpoint, "--output", "json"],
            env=env, capture_output=True, text=True, timeout=60,
        )

    return run


def test_awscli(server, iam, aws, no_policy):
    name, _, _ = create_iam_user(iam, key=False, self_service=False)
    p = aws("create-login-profile", "--user-name", name, "--password", GOOD, "--password-reset-required")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["LoginProfile"]["PasswordResetRequired"] is True
    p = aws("get-login-profile", "--user-name", name)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["LoginProfile"]["UserName"] == name
    p = aws("update-account-password-policy", "--minimum-password-length", "20", "--require-numbers")
    assert p.returncode == 0, p.stderr
    pol = json.loads(aws("get-account-password-policy").stdout)["PasswordPolicy"]
    assert (pol["MinimumPasswordLength"], pol["RequireNumbers"], pol["RequireSymbols"]) == (20, True, False)
    p = aws("update-login-profile", "--user-name", name, "--password", "too-short-1")
    assert p.returncode != 0, p.stderr
    assert (
        "An error occurred (PasswordPolicyViolation) when calling the UpdateLoginProfile operation: "
        "Password should have a minimum length of 20"
    ) in p.stderr
    assert aws("delete-account-password-policy").returncode == 0
    p = aws("get-account-password-policy")
    assert (
        "An error occurred (NoSuchEntity) when calling the GetAccountPasswordPolicy operation: "
        f"The Password Policy with domain name {server.account} cannot be found."
    ) in p.stderr
    assert aws("delete-login-profile", "--user-name", name).returncode == 0
    p = aws("get-login-profile", "--user-name", name)
    assert f"Login Profile for User {name} cannot be found." in p.stderr
    iam.delete_user(UserName=name)


# ----------------------------------------------------------------------------------------------- admin CLI


def admin(server, *args, stdin=None, check=True, remote=False):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STSD_", "AWS_"))}
    base = [required_env("STSD_BIN"), "admin"]
    if remote:
        env.update(
            AWS_ACCESS_KEY_ID=server.root.access_key_id, AWS_SECRET_ACCESS_KEY=server.root.secret_access_key
        )
        base += ["--endpoint-url", server.endpoint]
    else:
        base += ["--data-dir", str(server.data_dir)]
    p = subprocess.run(base + list(args), input=stdin, capture_output=True, text=True, env=env, timeout=60)
    if check:
        assert p.returncode == 0, f"stsd admin {' '.join(args)} failed ({p.returncode}): {p.stderr}"
    return p


@pytest.mark.parametrize("remote", [False, True])
def test_admin_user_password(server, iam, no_policy, remote):
    name, _, creds = create_iam_user(iam)
    secret = "Admin set-Pass 1"  # spaces are part of a password; only the line ending is not
    p = admin(server, "--json", "user", "password", name, "--reset-required", stdin=secret + "\n", remote=remote)
    out = json.loads(p.stdout)
    assert out["UserName"] == name and out["PasswordResetRequired"] == "true"
    assert secret not in p.stdout + p.stderr
    # The password works: the user changes it with the one the administrator set.
    me = iam_for_server(server, creds)
    me.change_password(OldPassword=secret, NewPassword=NEXT)
    assert iam.get_login_profile(UserName=name)["LoginProfile"]["PasswordResetRequired"] is False
    # Run again: replaces the password (policy-checked like the API).
    p = admin(server, "user", "password", name, stdin="weak\n", check=False, remote=remote)
    assert p.returncode != 0
    assert "PasswordPolicyViolation" in p.stderr and "weak" not in p.stderr
    p = admin(server, "--json", "user", "password", name, stdin="Replaced-Pass-2\n", remote=remote)
    assert json.loads(p.stdout)["PasswordResetRequired"] == "false"
    me.change_password(OldPassword="Replaced-Pass-2", NewPassword="Replaced-Pass-3")
    # No password on standard input: refused, nothing changed.
    p = admin(server, "user", "password", name, stdin="", check=False, remote=remote)
    assert p.returncode != 0 and "no password" in p.stderr
    admin(server, "user", "password", name, "--delete", remote=remote)
    assert_error_code(expect_client_error(iam.get_login_profile, UserName=name), 404, "NoSuchEntity")
    p = admin(server, "user", "password", unique_name("ghost"), stdin="Whatever-Pass-1\n", check=False, remote=remote)
    assert p.returncode != 0 and "NoSuchEntity" in p.stderr


def test_admin_root_password(server, iam):
    p = admin(server, "root", "password", stdin="Root console pw 1\n")
    assert "Root console pw" not in p.stdout + p.stderr
    admin(server, "root", "password", stdin="Root console pw 2\n")  # replaces it
    p = admin(server, "root", "password", stdin="", check=False)
    assert p.returncode != 0
    p = admin(server, "root", "password", stdin="x\n", check=False, remote=True)
    assert p.returncode != 0 and "drop --endpoint-url" in p.stderr
    # The root has no IAM user name: the API does not expose its login profile.
    err = expect_client_error(iam.get_login_profile)
    assert_error_code(err, 400, "ValidationError")
