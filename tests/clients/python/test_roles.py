"""Roles with boto3 and the AWS CLI against a running stsd: the IAM role APIs, AssumeRole (trust policies, MFA
from the call or from the calling session, ExternalId, session policies, chaining), role sessions under
policies, GetScopedCredentials, `role_arn` + `mfa_serial` profiles, and restarts
(reference roles-and-sessions.md)."""

import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

import botocore.session
import pytest
from botocore.exceptions import ClientError

from stsd_support import (
    SESSION_KEY_RE,
    Creds,
    NS,
    PrivateServer,
    assert_error,
    assert_error_code,
    create_iam_user,
    create_mfa_user,
    error_fields,
    expect_client_error,
    signed_post,
    totp_code,
    unique_name,
)

MSG_BOTH = "MultiFactorAuthentication failed, must provide both MFA serial number and one time pass code."
MSG_CHAIN = "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
MSG_MAX = "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."


def doc(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, indent=2)


def allow(action, resource="*", **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def trust(principal, **extra):
    return doc({"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole", **extra})


def role_arn(account, name, path="/"):
    return f"arn:aws:iam::{account}:role{path}{name}"


def make_role(iam, trust_doc, policy=None, **kwargs):
    name = unique_name("role")
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust_doc, **kwargs)["Role"]
    if policy:
        iam.put_role_policy(RoleName=name, PolicyName="perm", PolicyDocument=policy)
    return name, role


def user_may_assume(iam, name, account, resource="*"):
    iam.put_user_policy(UserName=name, PolicyName="assume", PolicyDocument=doc(allow("sts:AssumeRole", resource)))


def denied_msg(caller_arn, resource, why):
    return f"User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {resource} {why}"


NO_TRUST = "because no role trust policy allows the sts:AssumeRole action"
NO_IDENTITY = "because no identity-based policy allows the sts:AssumeRole action"


# ------------------------------------------------------------------------------------------------ IAM roles


def test_role_crud_and_policies(root_iam_client, iam_for, root_creds, account):
    iam = root_iam_client
    t = trust(f"arn:aws:iam::{account}:root")
    name, role = make_role(iam, t, Path="/ops/", Description="admins", MaxSessionDuration=7200)
    assert role["RoleId"].startswith("AROA") and len(role["RoleId"]) == 21
    assert role["Arn"] == role_arn(account, name, "/ops/")
    assert role["MaxSessionDuration"] == 7200
    got = iam.get_role(RoleName=name)["Role"]
    assert got["AssumeRolePolicyDocument"] == json.loads(t)  # botocore decodes the URL-encoded document
    assert got["Description"] == "admins"
    assert name in [r["RoleName"] for r in iam.list_roles(PathPrefix="/ops/")["Roles"]]
    assert name not in [r["RoleName"] for r in iam.list_roles(PathPrefix="/dev/")["Roles"]]

    iam.update_role(RoleName=name, MaxSessionDuration=3600, Description="ops")
    got = iam.get_role(RoleName=name)["Role"]
    assert (got["MaxSessionDuration"], got["Description"]) == (3600, "ops")
    t2 = trust("*")
    iam.update_assume_role_policy(RoleName=name, PolicyDocument=t2)
    assert iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"] == json.loads(t2)

    err = expect_client_error(
        iam.create_role, RoleName=name.upper(), AssumeRolePolicyDocument=t
    )
    assert_error(err, 409, "EntityAlreadyExists", f"Role with name {name.upper()} already exists.")
    err = expect_client_error(iam.get_role, RoleName="nope-" + name)
    assert_error(err, 404, "NoSuchEntity", f"The role with name nope-{name} cannot be found.")
    # Trust policies are validated as trust policies.
    bad = doc({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "iam:GetUser"})
    err = expect_client_error(iam.create_role, RoleName=unique_name(), AssumeRolePolicyDocument=bad)
    assert_error(
        err,
        400,
        "MalformedPolicyDocument",
        "Trust Policy statement actions can only be sts:AssumeRole, sts:AssumeRoleWithSAML,  and sts:AssumeRoleWithWebIdentity",
    )
    err = expect_client_error(
        iam_for(root_creds, validate=False).create_role,
        RoleName=unique_name(),
        AssumeRolePolicyDocument=t,
        MaxSessionDuration=60,
    )
    assert_error_code(err, 400, "ValidationError")

    # Inline policies and attachments; DeleteRole refuses while any remain.
    p = doc(allow("iam:Get*"))
    iam.put_role_policy(RoleName=name, PolicyName="read", PolicyDocument=p)
    assert iam.get_role_policy(RoleName=name, PolicyName="read")["PolicyDocument"] == json.loads(p)
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == ["read"]
    err = expect_client_error(iam.get_role_policy, RoleName=name, PolicyName="other")
    assert_error(err, 404, "NoSuchEntity", "The role policy with name other cannot be found.")
    big = doc(*[allow(f"iam:Get{i:04d}" + "x" * 180) for i in range(60)])
    err = expect_client_error(iam.put_role_policy, RoleName=name, PolicyName="big", PolicyDocument=big)
    assert_error(err, 409, "LimitExceeded", f"Maximum policy size of 10240 bytes exceeded for role {name}")
    arn = "arn:aws:iam::aws:policy/StsdSelfManageCredentials"
    iam.attach_role_policy(RoleName=name, PolicyArn=arn)
    assert [a["PolicyArn"] for a in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]] == [arn]
    err = expect_client_error(iam.delete_role, RoleName=name)
    assert_error(err, 409, "DeleteConflict", "Cannot delete entity, must delete policies first.")
    iam.delete_role_policy(RoleName=name, PolicyName="read")
    err = expect_client_error(iam.delete_role, RoleName=name)
    assert_error(err, 409, "DeleteConflict", "Cannot delete entity, must detach all policies first.")
    entities = iam.list_entities_for_policy(PolicyArn=arn, EntityFilter="Role")["PolicyRoles"]
    assert name in [e["RoleName"] for e in entities]
    iam.detach_role_policy(RoleName=name, PolicyArn=arn)
    iam.delete_role(RoleName=name)
    assert_error_code(expect_client_error(iam.get_role, RoleName=name), 404, "NoSuchEntity")


def test_role_actions_are_authorized_against_the_role_arn(root_iam_client, iam_for, account):
    uname, _, creds = create_iam_user(root_iam_client, self_service=False)
    name = unique_name("role")
    err = expect_client_error(
        iam_for(creds).create_role, RoleName=name, AssumeRolePolicyDocument=trust(account)
    )
    arn = role_arn(account, name)
    assert_error(
        err,
        403,
        "AccessDenied",
        f"User: arn:aws:iam::{account}:user/{uname} is not authorized to perform: iam:CreateRole on resource: "
        f"{arn} because no identity-based policy allows the iam:CreateRole action",
    )
    root_iam_client.put_user_policy(
        UserName=uname, PolicyName="roles", PolicyDocument=doc(allow("iam:*Role*", f"arn:aws:iam::{account}:role/*"))
    )
    iam_for(creds).create_role(RoleName=name, AssumeRolePolicyDocument=trust(account))
    assert iam_for(creds).get_role(RoleName=name)["Role"]["Arn"] == arn


# ------------------------------------------------------------------------------------------------ AssumeRole


def test_assume_role_identity_and_permissions(root_iam_client, sts_for, iam_for, account):
    uname, _, creds = create_iam_user(root_iam_client, self_service=False)
    name, role = make_role(root_iam_client, trust(account), policy=doc(allow("iam:ListRoles")))
    arn = role_arn(account, name)
    user_arn = f"arn:aws:iam::{account}:user/{uname}"
    # Trust names the account: the user's identity policies must allow too.
    err = expect_client_error(sts_for(creds).assume_role, RoleArn=arn, RoleSessionName="s1")
    assert_error(err, 403, "AccessDenied", denied_msg(user_arn, arn, NO_IDENTITY))
    user_may_assume(root_iam_client, uname, account, arn)
    resp = sts_for(creds).assume_role(RoleArn=arn, RoleSessionName="alice-cli")
    c = resp["Credentials"]
    assert SESSION_KEY_RE.match(c["AccessKeyId"])
    assert resp["AssumedRoleUser"] == {
        "AssumedRoleId": f"{role['RoleId']}:alice-cli",
        "Arn": f"arn:aws:sts::{account}:assumed-role/{name}/alice-cli",
    }
    assert 1 <= resp["PackedPolicySize"] <= 100
    assert resp["SessionTokenSize"] == len(c["SessionToken"]) < 4096
    session = Creds.from_sts(c)
    ident = sts_for(session).get_caller_identity()
    assert ident["Arn"] == f"arn:aws:sts::{account}:assumed-role/{name}/alice-cli"
    assert ident["UserId"] == f"{role['RoleId']}:alice-cli"
    # The role's policies apply to the session (no MFA needed for role sessions to use IAM).
    iam_for(session).list_roles()
    err = expect_client_error(iam_for(session).list_users)
    assert_error(
        err,
        403,
        "AccessDenied",
        f"User: arn:aws:sts::{account}:assumed-role/{name}/alice-cli is not authorized to perform: "
        f"iam:ListUsers on resource: arn:aws:iam::{account}:user/ because no identity-based policy allows the "
        "iam:ListUsers action",
    )
    # A role session is no user: user-scoped actions must name one (never the root's keys).
    for call in (iam_for(session).create_access_key, iam_for(session).get_user, iam_for(session).list_access_keys):
        err = expect_client_error(call)
        assert_error(err, 400, "ValidationError", "Must specify userName when calling with non-User credentials")
    # A role session may not call GetSessionToken.
    err = expect_client_error(sts_for(session).get_session_token)
    assert_error(err, 403, "AccessDenied", "Cannot call GetSessionToken with session credentials")


def test_trust_policy_decides(root_iam_client, sts_for, account):
    uname, _, creds = create_iam_user(root_iam_client, self_service=False)
    user_arn = f"arn:aws:iam::{account}:user/{uname}"
    other, _, _ = create_iam_user(root_iam_client, key=False, self_service=False)
    # Naming the user directly grants without an identity policy (same account).
    name, _ = make_role(root_iam_client, trust(user_arn))
    sts_for(creds).assume_role(RoleArn=role_arn(account, name), RoleSessionName="direct")
    # A trust policy naming someone else.
    name, _ = make_role(root_iam_client, trust(f"arn:aws:iam::{account}:user/{other}"))
    arn = role_arn(account, name)
    err = expect_client_error(sts_for(creds).assume_role, RoleArn=arn, RoleSessionName="nope")
    assert_error(err, 403, "AccessDenied", denied_msg(user_arn, arn, NO_TRUST))
    # A role that does not exist looks the same.
    ghost = role_arn(account, unique_name("ghost"))
    err = expect_client_error(sts_for(creds).assume_role, RoleArn=ghost, RoleSessionName="nope")
    assert_error(err, 403, "AccessDenied", denied_msg(user_arn, ghost, NO_TRUST))
    # The root may not assume roles.
    err = expect_client_error(
        sts_for(Creds(os.environ["STSD_ROOT_ACCESS_KEY_ID"], os.environ["STSD_ROOT_SECRET_ACCESS_KEY"])).assume_role,
        RoleArn=arn,
        RoleSessionName="root",
    )
    assert_error(err, 403, "AccessDenied", "Roles may not be assumed by root accounts.")


def test_external_id(root_iam_client, sts_for, account):
    uname, _, creds = create_iam_user(root_iam_client, self_service=False)
    name, _ = make_role(
        root_iam_client,
        trust(f"arn:aws:iam::{account}:user/{uname}", Condition={"StringEquals": {"sts:ExternalId": "xyz-123"}}),
    )
    arn = role_arn(account, name)
    sts = sts_for(creds)
    for kwargs in ({}, {"ExternalId": "wrong-id"}):
        err = expect_client_error(sts.assume_role, RoleArn=arn, RoleSessionName="ext", **kwargs)
        assert_error_code(err, 403, "AccessDenied")
    sts.assume_role(RoleArn=arn, RoleSessionName="ext", ExternalId="xyz-123")


def test_session_policies_narrow(root_iam_client, sts_for, iam_for, account):
    uname, _, creds = create_iam_user(root_iam_client, self_service=False)
    pol = root_iam_client.create_policy(PolicyName=unique_name("p"), PolicyDocument=doc(allow("iam:ListRoles")))
    name, _ = make_role(
        root_iam_client,
        trust(f"arn:aws:iam::{account}:user/{uname}"),
        policy=doc(allow(["iam:ListRoles", "iam:ListUsers"])),
    )
    arn = role_arn(account, name)
    resp = sts_for(creds).assume_role(RoleArn=arn, RoleSessionName="narrow", Policy=doc(allow("iam:ListUsers")))
    s = Creds.from_sts(resp["Credentials"])
    iam_for(s).list_users()
    err = expect_client_error(iam_for(s).list_roles)
    assert_error(
        err,
        403,
        "AccessDenied",
        f"User: arn:aws:sts::{account}:assumed-role/{name}/narrow is not authorized to perform: iam:ListRoles "
        "on resource: * because no session policy allows the iam:ListRoles action",
    )
    # Managed session policies by ARN.
    s = Creds.from_sts(
        sts_for(creds).assume_role(
            RoleArn=arn, RoleSessionName="managed", PolicyArns=[{"arn": pol["Policy"]["Arn"]}]
        )["Credentials"]
    )
    iam_for(s).list_roles()
    assert_error_code(expect_client_error(iam_for(s).list_users), 403, "AccessDenied")
    # A session policy never grants more than the role has.
    s = Creds.from_sts(
        sts_for(creds).assume_role(RoleArn=arn, RoleSessionName="wide", Policy=doc(allow("iam:*")))["Credentials"]
    )
    assert_error_code(expect_client_error(iam_for(s).list_groups), 403, "AccessDenied")
    err = expect_client_error(sts_for(creds).assume_role, RoleArn=arn, RoleSessionName="bad", Policy='{"x": 1}')
    assert_error_code(err, 400, "MalformedPolicyDocument")


def test_durations_and_chaining(root_iam_client, sts_for, account):
    uname, _, creds = create_iam_user(root_iam_client, self_service=False)
    principal = f"arn:aws:iam::{account}:user/{uname}"
    name, _ = make_role(root_iam_client, trust(principal), MaxSessionDuration=7200)
    arn = role_arn(account, name)
    chained_name, _ = make_role(root_iam_client, trust(f"arn:aws:iam::{account}:role/{name}"), MaxSessionDuration=7200)
    chained = role_arn(account, chained_name)
    sts = sts_for(creds, validate=False)
    err = expect_client_error(sts.assume_role, RoleArn=arn, RoleSessionName="dd", DurationSeconds=10800)
    assert_error(err, 400, "ValidationError", MSG_MAX)
    err = expect_client_error(sts.assume_role, RoleArn=arn, RoleSessionName="dd", DurationSeconds=899)
    assert_error(
        err,
        400,
        "ValidationError",
        "1 validation error detected: Value '899' at 'durationSeconds' failed to satisfy constraint: "
        "Member must have value greater than or equal to 900",
    )
    err = expect_client_error(sts.assume_role, RoleArn=arn, RoleSessionName="a:b")
    assert_error(
        err,
        400,
        "ValidationError",
        "1 validation error detected: Value 'a:b' at 'roleSessionName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [\\w+=,.@-]*",
    )
    first = Creds.from_sts(sts.assume_role(RoleArn=arn, RoleSessionName="one", DurationSeconds=7200)["Credentials"])
    # Role chaining: at most one hour.
    err = expect_client_error(
        sts_for(first).assume_role, RoleArn=chained, RoleSessionName="two", DurationSeconds=7200
    )
    assert_error(err, 400, "ValidationError", MSG_CHAIN)
    second = sts_for(first).assume_role(RoleArn=chained, RoleSessionName="two", DurationSeconds=3600)
    assert second["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{account}:assumed-role/{chained_name}/two"
    # A trust policy naming the calling session's role grants without the role's own policies, but the
    # session's session policies still limit it.
    narrowed = Creds.from_sts(
        sts.assume_role(RoleArn=arn, RoleSessionName="narrowed", Policy=doc(allow("iam:ListRoles")))["Credentials"]
    )
    err = expect_client_error(sts_for(narrowed).assume_role, RoleArn=chained, RoleSessionName="three")
    assert_error(
        err,
        403,
        "AccessDenied",
        denied_msg(
            f"arn:aws:sts::{account}:assumed-role/{name}/narrowed",
            chained,
            "because no session policy allows the sts:AssumeRole action",
        ),
    )


def test_mfa_on_assume_role_and_the_aws_vault_chain(root_iam_client, sts_for, account):
    u = create_mfa_user(root_iam_client, self_service=False)
    principal = f"arn:aws:iam::{account}:user/{u.name}"
    name, _ = make_role(
        root_iam_client, trust(principal, Condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}})
    )
    arn = role_arn(account, name)
    sts = sts_for(u.creds, validate=False)
    user_arn = principal
    # Long-term key without MFA: the trust condition fails.
    err = expect_client_error(sts.assume_role, RoleArn=arn, RoleSessionName="nomfa")
    assert_error(err, 403, "AccessDenied", denied_msg(user_arn, arn, NO_TRUST))
    # Only one of SerialNumber / TokenCode.
    err = expect_client_error(sts.assume_role, RoleArn=arn, RoleSessionName="half", SerialNumber=u.serial)
    assert_error(err, 403, "AccessDenied", MSG_BOTH)
    # GetSessionToken without MFA, then AssumeRole: denied.
    plain = Creds.from_sts(sts.get_session_token()["Credentials"])
    err = expect_client_error(sts_for(plain).assume_role, RoleArn=arn, RoleSessionName="plain")
    assert_error_code(err, 403, "AccessDenied")
    # GetSessionToken with MFA, then AssumeRole without MFA parameters: allowed (aws-vault).
    mfa = Creds.from_sts(
        sts.get_session_token(SerialNumber=u.serial, TokenCode=totp_code(u.seed, u.step + 1))["Credentials"]
    )
    resp = sts_for(mfa).assume_role(RoleArn=arn, RoleSessionName="vault")
    # A GetSessionToken session is not chaining: longer than an hour is fine (role max permitting).
    assert resp["AssumedRoleUser"]["Arn"].endswith(f"/{name}/vault")
    # The MFA age counts from the GetSessionToken code: a young session satisfies an age limit, and the
    # role session itself still carries MFA (it may chain into a role requiring it).
    aged, _ = make_role(
        root_iam_client,
        trust(
            [principal, f"arn:aws:iam::{account}:role/{name}"],
            Condition={
                "Bool": {"aws:MultiFactorAuthPresent": "true"},
                "NumericLessThan": {"aws:MultiFactorAuthAge": "600"},
            },
        ),
    )
    sts_for(mfa).assume_role(RoleArn=role_arn(account, aged), RoleSessionName="young")
    role_session = Creds.from_sts(resp["Credentials"])
    sts_for(role_session).assume_role(RoleArn=role_arn(account, aged), RoleSessionName="chained")
    # The code given directly on AssumeRole (what the CLI does) works, once.
    v = create_mfa_user(root_iam_client, self_service=False)
    root_iam_client.update_assume_role_policy(
        RoleName=name,
        PolicyDocument=trust(
            [principal, f"arn:aws:iam::{account}:user/{v.name}"],
            Condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}},
        ),
    )
    code = totp_code(v.seed, v.step + 1)
    sts_v = sts_for(v.creds)
    sts_v.assume_role(RoleArn=arn, RoleSessionName="direct", SerialNumber=v.serial, TokenCode=code)
    err = expect_client_error(
        sts_v.assume_role, RoleArn=arn, RoleSessionName="replay", SerialNumber=v.serial, TokenCode=code
    )
    assert_error(err, 403, "AccessDenied", "MultiFactorAuthentication failed with invalid MFA one time pass code. ")


def test_role_session_keeps_mfa_state_for_policies(root_iam_client, sts_for, iam_for, account):
    u = create_mfa_user(root_iam_client, self_service=False)
    name, _ = make_role(
        root_iam_client,
        trust(f"arn:aws:iam::{account}:user/{u.name}"),
        policy=doc(allow("iam:ListRoles", Condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}})),
    )
    arn = role_arn(account, name)
    sts = sts_for(u.creds)
    without = Creds.from_sts(sts.assume_role(RoleArn=arn, RoleSessionName="aa")["Credentials"])
    assert_error_code(expect_client_error(iam_for(without).list_roles), 403, "AccessDenied")
    with_mfa = Creds.from_sts(
        sts.assume_role(
            RoleArn=arn, RoleSessionName="bb", SerialNumber=u.serial, TokenCode=totp_code(u.seed, u.step + 1)
        )["Credentials"]
    )
    iam_for(with_mfa).list_roles()


# ------------------------------------------------------------------------------------------------ profiles


def write_profiles(tmp, endpoint, account, creds, role, serial):
    cfg = os.path.join(tmp, "config")
    cred = os.path.join(tmp, "credentials")
    with open(cred, "w") as f:
        f.write(f"[src]\naws_access_key_id = {creds.access_key_id}\naws_secret_access_key = {creds.secret_access_key}\n")
    with open(cfg, "w") as f:
        f.write(
            f"[profile src]\nregion = us-east-1\nendpoint_url = {endpoint}\n\n"
            f"[profile admin]\nregion = us-east-1\nendpoint_url = {endpoint}\n"
            f"role_arn = {role}\nsource_profile = src\nmfa_serial = {serial}\nrole_session_name = cli-test\n"
        )
    return cfg, cred


def test_role_profile_with_mfa_in_boto3(root_iam_client, endpoint, account, monkeypatch, tmp_path):
    u = create_mfa_user(root_iam_client, self_service=False)
    name, _ = make_role(
        root_iam_client,
        trust(f"arn:aws:iam::{account}:user/{u.name}", Condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}}),
    )
    cfg, cred = write_profiles(str(tmp_path), endpoint, account, u.creds, role_arn(account, name), u.serial)
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", cfg)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", cred)
    session = botocore.session.Session(profile="admin")
    prompts = []

    def prompter(prompt):
        prompts.append(prompt)
        return totp_code(u.seed, u.step + 1)

    provider = session.get_component("credential_provider").get_provider("assume-role")
    provider._prompter = prompter  # botocore's MFA prompt hook (getpass by default)
    ident = session.create_client("sts", endpoint_url=endpoint).get_caller_identity()
    assert prompts == [f"Enter MFA code for {u.serial}: "]
    assert ident["Arn"] == f"arn:aws:sts::{account}:assumed-role/{name}/cli-test"


def test_role_profile_with_mfa_in_the_aws_cli(root_iam_client, endpoint, account, tmp_path):
    aws = shutil.which("aws", path=os.path.dirname(sys.executable)) or shutil.which("aws")
    if not aws:
        pytest.skip("aws CLI not installed")
    u = create_mfa_user(root_iam_client, self_service=False)
    name, _ = make_role(
        root_iam_client,
        trust(f"arn:aws:iam::{account}:user/{u.name}", Condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}}),
    )
    cfg, cred = write_profiles(str(tmp_path), endpoint, account, u.creds, role_arn(account, name), u.serial)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("AWS_")
    } | {"AWS_CONFIG_FILE": cfg, "AWS_SHARED_CREDENTIALS_FILE": cred, "HOME": str(tmp_path)}
    # No controlling terminal: getpass falls back to standard input, where the test types the code.
    out = subprocess.run(
        [aws, "sts", "get-caller-identity", "--profile", "admin", "--output", "json"],
        input=totp_code(u.seed, u.step + 1) + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        start_new_session=True,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["Arn"] == f"arn:aws:sts::{account}:assumed-role/{name}/cli-test"
    # The CLI cached the AssumeRole answer: a second command needs no code.
    out = subprocess.run(
        [aws, "sts", "get-caller-identity", "--profile", "admin", "--output", "json"],
        input="",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        start_new_session=True,
    )
    assert out.returncode == 0, out.stderr


# ------------------------------------------------------------------------------------------------ scoped


class Scoped:
    """GetScopedCredentials over signed HTTP (the pinned botocore predates the operation)."""

    def __init__(self, endpoint, creds):
        self.endpoint, self.creds = endpoint, creds

    def call(self, **params):
        body = {"Action": "GetScopedCredentials", "Version": "2011-06-15"}
        body.update({k: str(v) for k, v in params.items()})
        raw = signed_post(self.endpoint, body, self.creds)
        if raw.status != 200:
            code, msg = error_fields(raw)
            return raw.status, code, msg
        r = raw.xml().find("s:GetScopedCredentialsResult", NS)

        def t(path):
            return r.findtext(path, namespaces=NS)

        return {
            "Credentials": {
                "AccessKeyId": t("s:Credentials/s:AccessKeyId"),
                "SecretAccessKey": t("s:Credentials/s:SecretAccessKey"),
                "SessionToken": t("s:Credentials/s:SessionToken"),
                "Expiration": t("s:Credentials/s:Expiration"),
            },
            "SessionInfo": {"ScopedSessionId": t("s:SessionInfo/s:ScopedSessionId"), "Arn": t("s:SessionInfo/s:Arn")},
            "ScopedPoliciesCount": int(t("s:ScopedPoliciesCount")),
            "SessionTokenSize": int(t("s:SessionTokenSize")),
        }


def test_get_scoped_credentials(root_iam_client, sts_for, iam_for, endpoint, account):
    u = create_mfa_user(root_iam_client, self_service=False)
    root_iam_client.put_user_policy(
        UserName=u.name, PolicyName="p", PolicyDocument=doc(allow(["iam:ListRoles", "iam:ListUsers", "iam:ListGroups"]))
    )
    sts = sts_for(u.creds)
    # Long-term keys are refused.
    assert Scoped(endpoint, u.creds).call(DurationSeconds=900)[:2] == (403, "AccessDenied")
    gst = sts.get_session_token(SerialNumber=u.serial, TokenCode=totp_code(u.seed, u.step + 1), DurationSeconds=3600)
    parent = Creds.from_sts(gst["Credentials"])
    r1 = Scoped(endpoint, parent).call(Policy=doc(allow(["iam:ListRoles", "iam:ListUsers", "iam:CreateUser"])))
    assert r1["ScopedPoliciesCount"] == 1
    assert r1["SessionInfo"]["Arn"] == f"arn:aws:iam::{account}:user/{u.name}"
    assert r1["SessionInfo"]["ScopedSessionId"] == u.user["UserId"]
    parent_exp = gst["Credentials"]["Expiration"].astimezone(datetime.timezone.utc)
    assert r1["Credentials"]["Expiration"] == parent_exp.strftime("%Y-%m-%dT%H:%M:%SZ")
    s1 = Creds.from_sts(r1["Credentials"])
    # Identity unchanged; MFA state kept (IAM is usable); permissions intersected.
    assert sts_for(s1).get_caller_identity()["Arn"] == f"arn:aws:iam::{account}:user/{u.name}"
    iam_for(s1).list_roles()
    assert_error_code(expect_client_error(iam_for(s1).list_groups), 403, "AccessDenied")
    # Never more than the parent: CreateUser is in the scope policy but not in the user's policies.
    assert_error_code(expect_client_error(iam_for(s1).create_user, UserName=unique_name()), 403, "AccessDenied")
    r2 = Scoped(endpoint, s1).call(Policy=doc(allow("iam:ListRoles")), DurationSeconds=900)
    assert r2["ScopedPoliciesCount"] == 2
    s2 = Creds.from_sts(r2["Credentials"])
    assert_error_code(expect_client_error(iam_for(s2).list_users), 403, "AccessDenied")
    iam_for(s2).list_roles()
    # Duration alone adds no layer; longer than the caller has left is refused.
    r3 = Scoped(endpoint, s2).call(DurationSeconds=600)
    assert r3["ScopedPoliciesCount"] == 2
    assert Scoped(endpoint, s2).call(DurationSeconds=7200)[:2] == (400, "InsufficientSessionLifetime")
    s3 = Creds.from_sts(
        Scoped(endpoint, s2).call(Policy=doc(allow("iam:*")))["Credentials"]
    )
    # A fourth scope-down layer is refused.
    assert Scoped(endpoint, s3).call(Policy=doc(allow("iam:*")))[:2] == (403, "AccessDenied")
    # Neither Policy nor DurationSeconds.
    assert Scoped(endpoint, s2).call()[:2] == (400, "ValidationError")
    # Role sessions can be scoped too; the identity stays the assumed role.
    name, _ = make_role(root_iam_client, trust(f"arn:aws:iam::{account}:user/{u.name}"), policy=doc(allow("iam:*")))
    role = Creds.from_sts(sts.assume_role(RoleArn=role_arn(account, name), RoleSessionName="rr")["Credentials"])
    scoped = Scoped(endpoint, role).call(Policy=doc(allow("iam:ListRoles")))
    assert scoped["SessionInfo"]["Arn"] == f"arn:aws:sts::{account}:assumed-role/{name}/rr"
    rs = Creds.from_sts(scoped["Credentials"])
    iam_for(rs).list_roles()
    assert_error_code(expect_client_error(iam_for(rs).list_users), 403, "AccessDenied")


# ------------------------------------------------------------------------------------------------ restart


def test_restart_keeps_roles_and_role_sessions():
    with tempfile.TemporaryDirectory() as d:
        srv = PrivateServer(d)
        srv.start()
        try:
            iam = srv.client("iam")
            name, _, creds = create_iam_user(iam, self_service=False)
            rname, _ = make_role(
                iam, trust(f"arn:aws:iam::{srv.account}:user/{name}"), policy=doc(allow("iam:ListRoles"))
            )
            sts = srv.client("sts", creds)
            s = Creds.from_sts(
                sts.assume_role(RoleArn=role_arn(srv.account, rname), RoleSessionName="keep")["Credentials"]
            )
            srv.restart()
            assert srv.client("iam").get_role(RoleName=rname)["Role"]["RoleName"] == rname
            assert srv.client("sts", s).get_caller_identity()["Arn"].endswith(f"/{rname}/keep")
            srv.client("iam", s).list_roles()
        finally:
            srv.stop()


# ------------------------------------------------------------------------------------------------ more rules


def test_trust_policy_principals_must_exist(root_iam_client, account):
    ghost = f"arn:aws:iam::{account}:user/{unique_name('ghost')}"
    err = expect_client_error(root_iam_client.create_role, RoleName=unique_name(), AssumeRolePolicyDocument=trust(ghost))
    assert_error(err, 400, "MalformedPolicyDocument", f'Invalid principal in policy: "AWS":"{ghost}"')
    # Other accounts cannot be checked, and are accepted.
    make_role(root_iam_client, trust("arn:aws:iam::111122223333:user/someone"))


def test_session_tags_and_packed_size(root_iam_client, sts_for, iam_for, account):
    uname, _, creds = create_iam_user(root_iam_client, self_service=False)
    principal = f"arn:aws:iam::{account}:user/{uname}"
    t = doc(
        {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": ["sts:AssumeRole", "sts:TagSession"]}
    )
    name, _ = make_role(
        root_iam_client,
        t,
        policy=doc(allow("iam:ListRoles", Condition={"StringEquals": {"aws:PrincipalTag/team": "ops"}})),
    )
    arn = role_arn(account, name)
    sts = sts_for(creds)
    ops = Creds.from_sts(
        sts.assume_role(RoleArn=arn, RoleSessionName="tagged", Tags=[{"Key": "team", "Value": "ops"}])["Credentials"]
    )
    iam_for(ops).list_roles()
    dev = Creds.from_sts(
        sts.assume_role(RoleArn=arn, RoleSessionName="tagged", Tags=[{"Key": "team", "Value": "dev"}])["Credentials"]
    )
    assert_error_code(expect_client_error(iam_for(dev).list_roles), 403, "AccessDenied")
    # Without sts:TagSession in the trust policy, tags are refused.
    plain, _ = make_role(root_iam_client, trust(principal))
    err = expect_client_error(
        sts.assume_role, RoleArn=role_arn(account, plain), RoleSessionName="tt", Tags=[{"Key": "a", "Value": "b"}]
    )
    assert_error_code(err, 403, "AccessDenied")
    # Session policies that do not fit in a token.
    arns = [{"arn": f"arn:aws:iam::{account}:policy/{'p' * 300}{i}"} for i in range(10)]
    err = expect_client_error(sts.assume_role, RoleArn=arn, RoleSessionName="big", PolicyArns=arns)
    assert_error_code(err, 400, "PackedPolicyTooLarge")
    assert err.response["Error"]["Message"].startswith("Packed policy consumes ")


def test_role_session_revocation(root_iam_client, sts_for, iam_for, account):
    uname, _, creds = create_iam_user(root_iam_client, self_service=False)
    name, _ = make_role(
        root_iam_client, trust(f"arn:aws:iam::{account}:user/{uname}"), policy=doc(allow("iam:ListRoles"))
    )
    arn = role_arn(account, name)
    s = Creds.from_sts(sts_for(creds).assume_role(RoleArn=arn, RoleSessionName="old")["Credentials"])
    iam_for(s).list_roles()
    # AWS's "revoke older sessions" pattern on the role (aws:TokenIssueTime).
    now = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2)
    root_iam_client.put_role_policy(
        RoleName=name,
        PolicyName="AWSRevokeOlderSessions",
        PolicyDocument=doc(
            {
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": now.strftime("%Y-%m-%dT%H:%M:%SZ")}},
            }
        ),
    )
    assert_error_code(expect_client_error(iam_for(s).list_roles), 403, "AccessDenied")
    root_iam_client.delete_role_policy(RoleName=name, PolicyName="AWSRevokeOlderSessions")
    # stsd admin sessions revoke --role: every session of the role, on every node.
    s2 = Creds.from_sts(sts_for(creds).assume_role(RoleArn=arn, RoleSessionName="new")["Credentials"])
    p = subprocess.run(
        [os.environ["STSD_BIN"], "admin", "--data-dir", os.environ["STSD_DATA_DIR"], "sessions", "revoke", "--role", name],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    deadline = time.time() + 8
    while time.time() < deadline:
        try:
            sts_for(s2).get_caller_identity()
        except ClientError as e:
            assert_error_code(e, 403, "InvalidClientTokenId")
            break
        time.sleep(0.5)
    else:
        pytest.fail("the role session still works 8 s after sessions revoke --role")
