"""AWS CLI v1 `aws iam ...` (from PyPI, installed in the test venv) against stsd: the user / access-key
life cycle as JSON output, and IAM's error texts as the CLI prints them."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from stsd_support import (
    SELF_SERVICE_POLICY,
    LONG_TERM_KEY_RE,
    MSG_UNKNOWN_KEY,
    SECRET_RE,
    USER_ID_RE,
    WIRE_TIMESTAMP_RE,
    Creds,
    unique_name,
)


@pytest.fixture(scope="module")
def aws_exe():
    exe = shutil.which("aws", path=os.path.dirname(sys.executable)) or shutil.which("aws")
    assert exe, "the aws CLI is not installed in the test venv"
    return exe


@pytest.fixture(scope="module")
def aws(aws_exe, endpoint, root_creds):
    """aws(service, *args, creds=root) -> CompletedProcess, with credentials only from the environment."""

    def run(service, *args, creds=root_creds):
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "AWS_ACCESS_KEY_ID": creds.access_key_id,
            "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_RETRY_MODE": "standard",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_PAGER": "",
        }
        return subprocess.run(
            [aws_exe, service, *args, "--endpoint-url", endpoint, "--output", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


def ok_json(p):
    assert p.returncode == 0, (p.returncode, p.stderr)
    return json.loads(p.stdout) if p.stdout.strip() else None


def assert_cli_error(p, operation, code, message):
    assert p.returncode in (254, 255), (p.returncode, p.stdout, p.stderr)
    assert p.stdout == ""
    # awscli adds "(reached max retries: N)" when retries are configured; the message runs to the line end.
    expected = re.compile(
        rf"^An error occurred \({code}\) when calling the {operation} operation"
        rf"(?: \(reached max retries: \d+\))?: {re.escape(message)}$",
        re.MULTILINE,
    )
    assert expected.search(p.stderr), p.stderr


def test_cli_iam_user_and_key_life_cycle(aws, account):
    prefix = "/" + unique_name("cli") + "/"
    name, other = unique_name("cli-user"), unique_name("cli-user")

    user = ok_json(aws("iam", "create-user", "--user-name", name, "--path", prefix))["User"]
    assert user["UserName"] == name
    assert user["Path"] == prefix
    assert user["Arn"] == f"arn:aws:iam::{account}:user{prefix}{name}"
    assert USER_ID_RE.match(user["UserId"]), user
    assert WIRE_TIMESTAMP_RE.match(user["CreateDate"]), user["CreateDate"]
    ok_json(aws("iam", "create-user", "--user-name", other, "--path", prefix))

    # Duplicate (case-insensitive), as the CLI prints it.
    assert_cli_error(
        aws("iam", "create-user", "--user-name", name.upper()),
        "CreateUser", "EntityAlreadyExists", f"User with name {name.upper()} already exists.",
    )

    key = ok_json(aws("iam", "create-access-key", "--user-name", name))["AccessKey"]
    assert key["UserName"] == name
    assert LONG_TERM_KEY_RE.match(key["AccessKeyId"]), key
    assert SECRET_RE.match(key["SecretAccessKey"]), key
    assert key["Status"] == "Active"
    creds = Creds(key["AccessKeyId"], key["SecretAccessKey"])
    # New users have no permissions (as in AWS): grant the built-in self-service policy.
    p = aws("iam", "attach-user-policy", "--user-name", name, "--policy-arn", SELF_SERVICE_POLICY)
    assert p.returncode == 0, p.stderr
    ident = ok_json(aws("sts", "get-caller-identity", creds=creds))
    assert ident["Arn"] == user["Arn"]
    assert ident["UserId"] == user["UserId"]
    # The user sees itself with its own key.
    assert ok_json(aws("iam", "get-user", creds=creds))["User"]["Arn"] == user["Arn"]

    # --page-size 1 makes the CLI follow IsTruncated/Marker over two pages and merge them.
    listed = ok_json(aws("iam", "list-users", "--path-prefix", prefix, "--page-size", "1"))["Users"]
    assert sorted(u["UserName"] for u in listed) == sorted([name, other])
    assert {u["Arn"] for u in listed} == {f"arn:aws:iam::{account}:user{prefix}{n}" for n in (name, other)}

    keys = ok_json(aws("iam", "list-access-keys", "--user-name", name))["AccessKeyMetadata"]
    assert [(k["AccessKeyId"], k["Status"], k["UserName"]) for k in keys] == [(key["AccessKeyId"], "Active", name)]

    assert_cli_error(
        aws("iam", "delete-user", "--user-name", name),
        "DeleteUser", "DeleteConflict", "Cannot delete entity, must delete access keys first.",
    )
    p = aws("iam", "delete-access-key", "--user-name", name, "--access-key-id", key["AccessKeyId"])
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == ""
    p = aws("sts", "get-caller-identity", creds=creds)
    assert p.returncode in (254, 255), (p.returncode, p.stderr)
    assert "InvalidClientTokenId" in p.stderr and MSG_UNKNOWN_KEY in p.stderr, p.stderr

    assert_cli_error(
        aws("iam", "delete-user", "--user-name", name),
        "DeleteUser", "DeleteConflict", "Cannot delete entity, must detach all policies first.",
    )
    p = aws("iam", "detach-user-policy", "--user-name", name, "--policy-arn", SELF_SERVICE_POLICY)
    assert p.returncode == 0, p.stderr
    p = aws("iam", "delete-user", "--user-name", name)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == ""
    assert_cli_error(
        aws("iam", "get-user", "--user-name", name),
        "GetUser", "NoSuchEntity", f"The user with name {name} cannot be found.",
    )
    remaining = ok_json(aws("iam", "list-users", "--path-prefix", prefix))["Users"]
    assert [u["UserName"] for u in remaining] == [other]


def test_cli_iam_validation_error(aws):
    # botocore does not check patterns client-side, so the server's ValidationError (value omitted) shows.
    assert_cli_error(
        aws("iam", "create-user", "--user-name", "a b"),
        "CreateUser", "ValidationError",
        "1 validation error detected: Value at 'userName' failed to satisfy constraint: "
        r"Member must satisfy regular expression pattern: [\w+=,.@-]+",
    )


def test_cli_iam_self_service_denied(aws, account):
    name = unique_name("cli-self")
    ok_json(aws("iam", "create-user", "--user-name", name))
    key = ok_json(aws("iam", "create-access-key", "--user-name", name))["AccessKey"]
    creds = Creds(key["AccessKeyId"], key["SecretAccessKey"])
    assert_cli_error(
        aws("iam", "list-users", creds=creds),
        "ListUsers", "AccessDenied",
        f"User: arn:aws:iam::{account}:user/{name} is not authorized to perform: iam:ListUsers "
        f"on resource: arn:aws:iam::{account}:user/ because no identity-based policy allows the iam:ListUsers action",
    )


def test_cli_policies_groups_and_simulator(aws, account, tmp_path):
    """The policy APIs as the AWS CLI drives them: documents from file://, decoded output, errors."""
    name, group, pname = unique_name("cli-pol"), unique_name("cli-grp"), unique_name("cli-mp")
    ok_json(aws("iam", "create-user", "--user-name", name))
    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["iam:GetUser", "iam:ListGroupsForUser"], "Resource": "*"}]}
    f = tmp_path / "p.json"
    f.write_text(json.dumps(doc, indent=2))
    assert aws("iam", "put-user-policy", "--user-name", name, "--policy-name", "inline",
               "--policy-document", f"file://{f}").returncode == 0
    got = ok_json(aws("iam", "get-user-policy", "--user-name", name, "--policy-name", "inline"))
    assert got["PolicyDocument"] == doc
    assert ok_json(aws("iam", "list-user-policies", "--user-name", name))["PolicyNames"] == ["inline"]
    bad = tmp_path / "bad.json"
    bad.write_text('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*"}]}')
    assert_cli_error(
        aws("iam", "put-user-policy", "--user-name", name, "--policy-name", "x", "--policy-document", f"file://{bad}"),
        "PutUserPolicy", "MalformedPolicyDocument", "Policy statement must contain actions.",
    )

    pol = ok_json(aws("iam", "create-policy", "--policy-name", pname, "--policy-document", f"file://{f}"))["Policy"]
    assert pol["Arn"] == f"arn:aws:iam::{account}:policy/{pname}"
    ok_json(aws("iam", "create-group", "--group-name", group))
    assert aws("iam", "add-user-to-group", "--group-name", group, "--user-name", name).returncode == 0
    assert aws("iam", "attach-group-policy", "--group-name", group, "--policy-arn", pol["Arn"]).returncode == 0
    attached = ok_json(aws("iam", "list-attached-group-policies", "--group-name", group))["AttachedPolicies"]
    assert attached == [{"PolicyName": pname, "PolicyArn": pol["Arn"]}]
    groups = ok_json(aws("iam", "list-groups-for-user", "--user-name", name))["Groups"]
    assert [g["GroupName"] for g in groups] == [group]
    assert_cli_error(
        aws("iam", "delete-policy", "--policy-arn", pol["Arn"]),
        "DeletePolicy", "DeleteConflict", "Cannot delete a policy attached to entities.",
    )
    sim = ok_json(aws("iam", "simulate-principal-policy", "--policy-source-arn", f"arn:aws:iam::{account}:user/{name}",
                      "--action-names", "iam:GetUser", "iam:DeleteUser"))["EvaluationResults"]
    assert [(r["EvalActionName"], r["EvalDecision"]) for r in sim] == [
        ("iam:GetUser", "allowed"), ("iam:DeleteUser", "implicitDeny")]
    aws_policies = ok_json(aws("iam", "list-policies", "--scope", "AWS"))["Policies"]
    assert any(p["PolicyName"] == "StsdSelfManageCredentialsWithMFA" for p in aws_policies)

    # clean up in IAM's order
    assert aws("iam", "detach-group-policy", "--group-name", group, "--policy-arn", pol["Arn"]).returncode == 0
    assert aws("iam", "remove-user-from-group", "--group-name", group, "--user-name", name).returncode == 0
    assert aws("iam", "delete-group", "--group-name", group).returncode == 0
    assert aws("iam", "delete-policy", "--policy-arn", pol["Arn"]).returncode == 0
    assert aws("iam", "delete-user-policy", "--user-name", name, "--policy-name", "inline").returncode == 0
    assert aws("iam", "delete-user", "--user-name", name).returncode == 0
