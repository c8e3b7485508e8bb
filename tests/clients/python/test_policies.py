"""IAM policies with boto3 against a running stsd: the policy APIs (inline, managed, groups, the simulator) and
their enforcement on every IAM action, with AWS's example policies as acceptance tests (policy reference 8)."""

import json
import time

import pytest

from stsd_support import (
    SELF_SERVICE_MFA_POLICY,
    SELF_SERVICE_POLICY,
    Creds,
    assert_error,
    create_iam_user,
    create_mfa_user,
    expect_client_error,
    iam_denied_message,
    totp_code,
    unique_name,
)


def doc(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, indent=2)


def allow(action, resource="*", **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action, resource="*", **extra):
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def bare_user(root, **kwargs):
    """A user with one key and no policies at all (as AWS creates them)."""
    return create_iam_user(root, self_service=False, **kwargs)


def mfa_session(sts_for, u):
    """MFA session credentials of an MfaUser (the step after enrolment is accepted at once)."""
    resp = sts_for(u.creds).get_session_token(SerialNumber=u.serial, TokenCode=totp_code(u.seed, u.step + 1))
    return Creds.from_sts(resp["Credentials"])


def denied(err, account, caller_name, action, resource, why):
    msg = (
        f"User: arn:aws:iam::{account}:user/{caller_name} is not authorized to perform: iam:{action} "
        f"on resource: {resource} {why}"
    )
    assert_error(err, 403, "AccessDenied", msg)


# ------------------------------------------------------------------------------------------------ the APIs


def test_a_user_reads_itself_and_others_as_stored(root_iam_client, iam_for, sts_for):
    """A user signing with its long-term key and acting on itself is answered from the row read with the
    key; any other name (or another user's key) still reads the store."""
    name, _, creds = bare_user(root_iam_client, path="/readers/")
    other, _, other_creds = bare_user(root_iam_client)
    root_iam_client.put_user_policy(UserName=name, PolicyName="read", PolicyDocument=doc(allow("iam:GetUser")))
    stored = root_iam_client.get_user(UserName=name)["User"]
    iam = iam_for(creds)
    assert iam.get_user()["User"] == stored
    # Names are case-insensitive: the answer keeps the name as created, with its path.
    assert iam.get_user(UserName=name.upper())["User"] == stored
    assert iam.get_user(UserName=other)["User"] == root_iam_client.get_user(UserName=other)["User"]
    err = expect_client_error(iam.get_user, UserName=other + "-ghost")
    assert_error(err, 404, "NoSuchEntity", f"The user with name {other}-ghost cannot be found.")
    # The other user has no policy: its own key is refused whatever name it gives.
    for kwargs in ({}, {"UserName": name}):
        err = expect_client_error(iam_for(other_creds).get_user, **kwargs)
        assert err.response["Error"]["Code"] == "AccessDenied"
    # An MFA-less session of the same user may not call IAM at all (AWS).
    session = Creds.from_sts(sts_for(creds).get_session_token()["Credentials"])
    err = expect_client_error(iam_for(session).get_user)
    assert err.response["Error"]["Code"] == "InvalidClientTokenId"


def test_new_users_have_no_permissions(root_iam_client, iam_for, account):
    name, _, creds = bare_user(root_iam_client)
    err = expect_client_error(iam_for(creds).get_user)
    assert_error(err, 403, "AccessDenied", iam_denied_message(account, f"/{name}", "GetUser", f"user {name}"))
    assert root_iam_client.list_attached_user_policies(UserName=name)["AttachedPolicies"] == []
    assert root_iam_client.list_user_policies(UserName=name)["PolicyNames"] == []


def test_inline_user_policy_round_trip(root_iam_client, iam_for):
    name, _, creds = bare_user(root_iam_client)
    text = doc(allow("iam:GetUser", "arn:aws:iam::*:user/${aws:username}"))
    root_iam_client.put_user_policy(UserName=name, PolicyName="self", PolicyDocument=text)
    got = root_iam_client.get_user_policy(UserName=name, PolicyName="self")
    # botocore URL-decodes and parses the document, which IAM returns URL-encoded
    assert got["PolicyDocument"] == json.loads(text)
    assert (got["UserName"], got["PolicyName"]) == (name, "self")
    assert root_iam_client.list_user_policies(UserName=name)["PolicyNames"] == ["self"]
    assert iam_for(creds).get_user()["User"]["UserName"] == name
    root_iam_client.delete_user_policy(UserName=name, PolicyName="self")
    err = expect_client_error(root_iam_client.get_user_policy, UserName=name, PolicyName="self")
    assert_error(err, 404, "NoSuchEntity", "The user policy with name self cannot be found.")
    # the change is visible at once on this node
    expect_client_error(iam_for(creds).get_user)


@pytest.mark.parametrize(
    "bad, message",
    [
        ("not json", "Syntax errors in policy."),
        (json.dumps({"Statement": [allow("iam:GetUser")]}), "Policy document must be version 2012-10-17 or greater."),
        (doc({"Effect": "Allow", "Resource": "*"}), "Policy statement must contain actions."),
        (doc({"Effect": "Allow", "Action": "iam:GetUser"}), "Policy statement must contain resources."),
        (doc(allow("GetUser")), "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."),
        (doc(allow("iam:GetUser", "foo")), 'Resource foo must be in ARN format or "*".'),
        (doc(allow("iam:GetUser", Principal="*")), "Policy document should not specify a principal."),
        (doc(allow("iam:GetUser", Sid="a"), allow("iam:GetUser", Sid="a")),
         "Statement IDs (SID) in a single policy must be unique."),
    ],
)
def test_malformed_documents(root_iam_client, bad, message):
    name, _, _ = bare_user(root_iam_client, key=False)
    err = expect_client_error(root_iam_client.put_user_policy, UserName=name, PolicyName="p", PolicyDocument=bad)
    assert_error(err, 400, "MalformedPolicyDocument", message)
    assert root_iam_client.list_user_policies(UserName=name)["PolicyNames"] == []


def test_inline_policy_size_quota(root_iam_client):
    name, _, _ = bare_user(root_iam_client, key=False)
    big = doc(*[allow(f"iam:GetUser", f"arn:aws:iam::*:user/u{i:04d}") for i in range(20)])
    root_iam_client.put_user_policy(UserName=name, PolicyName="a", PolicyDocument=big)
    err = expect_client_error(root_iam_client.put_user_policy, UserName=name, PolicyName="b", PolicyDocument=big)
    assert_error(err, 409, "LimitExceeded", f"Maximum policy size of 2048 bytes exceeded for user {name}")
    assert root_iam_client.list_user_policies(UserName=name)["PolicyNames"] == ["a"]


def test_managed_policy_versions_and_attachments(root_iam_client, account):
    pname = unique_name("pol")
    arn = f"arn:aws:iam::{account}:policy/team/{pname}"
    p = root_iam_client.create_policy(PolicyName=pname, Path="/team/", PolicyDocument=doc(allow("iam:GetUser")))
    assert p["Policy"]["Arn"] == arn and p["Policy"]["DefaultVersionId"] == "v1"
    assert p["Policy"]["PolicyId"].startswith("ANPA")
    err = expect_client_error(root_iam_client.create_policy, PolicyName=pname, PolicyDocument=doc(allow("iam:GetUser")))
    assert_error(err, 409, "EntityAlreadyExists", f"A policy called {pname} already exists. Duplicate names are not allowed.")
    for i in range(2, 6):
        v = root_iam_client.create_policy_version(PolicyArn=arn, PolicyDocument=doc(allow(f"iam:ListUsers")),
                                                  SetAsDefault=(i == 5))
        assert v["PolicyVersion"]["VersionId"] == f"v{i}"
    err = expect_client_error(root_iam_client.create_policy_version, PolicyArn=arn, PolicyDocument=doc(allow("iam:GetUser")))
    assert_error(err, 409, "LimitExceeded",
                 "A managed policy can have up to 5 versions. Before you create a new version, you must delete an existing version.")
    assert root_iam_client.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v5"
    got = root_iam_client.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]
    assert got["Document"] == json.loads(doc(allow("iam:GetUser"))) and got["IsDefaultVersion"] is False
    err = expect_client_error(root_iam_client.delete_policy_version, PolicyArn=arn, VersionId="v5")
    assert_error(err, 409, "DeleteConflict", "Cannot delete the default version of a policy.")

    user, _, _ = bare_user(root_iam_client, key=False)
    root_iam_client.attach_user_policy(UserName=user, PolicyArn=arn)
    root_iam_client.attach_user_policy(UserName=user, PolicyArn=arn)  # idempotent, as IAM
    assert root_iam_client.list_attached_user_policies(UserName=user)["AttachedPolicies"] == [
        {"PolicyName": pname, "PolicyArn": arn}
    ]
    ents = root_iam_client.list_entities_for_policy(PolicyArn=arn)
    assert [u["UserName"] for u in ents["PolicyUsers"]] == [user]
    assert root_iam_client.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 1
    err = expect_client_error(root_iam_client.delete_policy, PolicyArn=arn)
    assert_error(err, 409, "DeleteConflict", "Cannot delete a policy attached to entities.")
    err = expect_client_error(root_iam_client.delete_user, UserName=user)
    assert_error(err, 409, "DeleteConflict", "Cannot delete entity, must detach all policies first.")
    root_iam_client.detach_user_policy(UserName=user, PolicyArn=arn)
    for v in ("v1", "v2", "v3", "v4"):
        root_iam_client.delete_policy_version(PolicyArn=arn, VersionId=v)
    root_iam_client.delete_policy(PolicyArn=arn)
    err = expect_client_error(root_iam_client.get_policy, PolicyArn=arn)
    assert_error(err, 404, "NoSuchEntity", f"Policy {arn} was not found.")
    root_iam_client.delete_user(UserName=user)


def test_builtin_policies_listed_and_read_only(root_iam_client):
    aws = root_iam_client.list_policies(Scope="AWS")["Policies"]
    arns = {p["Arn"] for p in aws}
    assert {SELF_SERVICE_POLICY, SELF_SERVICE_MFA_POLICY} <= arns
    local = root_iam_client.list_policies(Scope="Local")["Policies"]
    assert not ({p["Arn"] for p in local} & arns)
    v = root_iam_client.get_policy_version(PolicyArn=SELF_SERVICE_MFA_POLICY, VersionId="v1")["PolicyVersion"]
    assert v["Document"]["Statement"][-1]["Sid"] == "DenyAllExceptListedIfNoMFA"
    err = expect_client_error(root_iam_client.create_policy_version, PolicyArn=SELF_SERVICE_POLICY,
                              PolicyDocument=doc(allow("*")))
    assert err.response["Error"]["Code"] == "InvalidInput"


def test_groups(root_iam_client, iam_for, account):
    g = unique_name("grp")
    created = root_iam_client.create_group(GroupName=g)["Group"]
    assert created["Arn"] == f"arn:aws:iam::{account}:group/{g}" and created["GroupId"].startswith("AGPA")
    err = expect_client_error(root_iam_client.create_group, GroupName=g.upper())
    assert_error(err, 409, "EntityAlreadyExists", f"Group with name {g.upper()} already exists.")
    name, _, creds = bare_user(root_iam_client)
    root_iam_client.add_user_to_group(GroupName=g, UserName=name)
    got = root_iam_client.get_group(GroupName=g)
    assert [u["UserName"] for u in got["Users"]] == [name]
    assert [x["GroupName"] for x in root_iam_client.list_groups_for_user(UserName=name)["Groups"]] == [g]
    # a group's inline policy grants its members
    expect_client_error(iam_for(creds).list_users)
    root_iam_client.put_group_policy(GroupName=g, PolicyName="list", PolicyDocument=doc(allow("iam:ListUsers")))
    iam_for(creds).list_users()
    err = expect_client_error(root_iam_client.delete_group, GroupName=g)
    assert_error(err, 409, "DeleteConflict", "Cannot delete entity, must remove users from group first.")
    err = expect_client_error(root_iam_client.delete_user, UserName=name)
    assert err.response["Error"]["Code"] == "DeleteConflict"
    root_iam_client.remove_user_from_group(GroupName=g, UserName=name)
    expect_client_error(iam_for(creds).list_users)
    err = expect_client_error(root_iam_client.delete_group, GroupName=g)
    assert_error(err, 409, "DeleteConflict", "Cannot delete entity, must delete policies first.")
    root_iam_client.delete_group_policy(GroupName=g, PolicyName="list")
    root_iam_client.delete_group(GroupName=g)
    err = expect_client_error(root_iam_client.get_group, GroupName=g)
    assert_error(err, 404, "NoSuchEntity", f"The group with name {g} cannot be found.")


# ------------------------------------------------------------------------------------------------ enforcement


def test_aws_self_manage_with_mfa_example(root_iam_client, iam_for, sts_for, account):
    """AWS's "manage your own credentials on the Security credentials page" policy (reference 8.1)."""
    name, _, creds = bare_user(root_iam_client)
    root_iam_client.attach_user_policy(UserName=name, PolicyArn=SELF_SERVICE_MFA_POLICY)
    iam = iam_for(creds)
    # Without MFA: only the enrolment actions.
    assert iam.get_user()["User"]["UserName"] == name
    err = expect_client_error(iam.list_access_keys)
    denied(err, account, name, "ListAccessKeys", f"user {name}",
           f"with an explicit deny in an identity-based policy: {SELF_SERVICE_MFA_POLICY}")
    dev = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"]
    seed = dev["Base32StringSeed"].decode()
    step = int(time.time()) // 30
    iam.enable_mfa_device(UserName=name, SerialNumber=dev["SerialNumber"],
                          AuthenticationCode1=totp_code(seed, step - 1), AuthenticationCode2=totp_code(seed, step))
    # With an MFA session: manage own keys; another user is implicitly denied.
    sess = sts_for(creds).get_session_token(SerialNumber=dev["SerialNumber"], TokenCode=totp_code(seed, step + 1))
    miam = iam_for(Creds.from_sts(sess["Credentials"]))
    assert [k["AccessKeyId"] for k in miam.list_access_keys()["AccessKeyMetadata"]] == [creds.access_key_id]
    other, _, _ = bare_user(root_iam_client, key=False)
    err = expect_client_error(miam.list_access_keys, UserName=other)
    denied(err, account, name, "ListAccessKeys", f"user {other}",
           "because no identity-based policy allows the iam:ListAccessKeys action")


def test_deny_unless_mfa_bool_if_exists(root_iam_client, iam_for, sts_for):
    u = create_mfa_user(root_iam_client)
    root_iam_client.attach_user_policy(UserName=u.name, PolicyArn=SELF_SERVICE_POLICY)
    root_iam_client.put_user_policy(UserName=u.name, PolicyName="mfa", PolicyDocument=doc(
        deny("*", Condition={"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}})))
    # long-term key: the key is absent, BoolIfExists is true, denied
    err = expect_client_error(iam_for(u.creds).get_user)
    assert err.response["Error"]["Code"] == "AccessDenied"
    assert "with an explicit deny in an identity-based policy" in err.response["Error"]["Message"]
    # MFA session: allowed
    assert iam_for(mfa_session(sts_for, u)).get_user()["User"]["UserName"] == u.name
    # session without MFA: IAM refuses such sessions outright (AWS)
    plain = Creds.from_sts(sts_for(u.creds).get_session_token()["Credentials"])
    err = expect_client_error(iam_for(plain).get_user)
    assert err.response["Error"]["Code"] == "InvalidClientTokenId"


def test_mfa_age_source_ip_and_time_window(root_iam_client, iam_for, sts_for):
    u = create_mfa_user(root_iam_client, self_service=False)
    root_iam_client.put_user_policy(UserName=u.name, PolicyName="p", PolicyDocument=doc(
        allow("iam:GetUser", Condition={"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}),
        allow("iam:ListUsers", Condition={"IpAddress": {"aws:SourceIp": ["127.0.0.0/8", "::1/128"]}}),
        allow("iam:ListGroups", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
        allow("iam:ListPolicies", Condition={"DateLessThan": {"aws:CurrentTime": "2999-01-01T00:00:00Z"}}),
        allow("iam:ListAccessKeys", Condition={"DateGreaterThan": {"aws:CurrentTime": "2999-01-01T00:00:00Z"}}),
        deny("iam:ListMFADevices", Condition={"NumericGreaterThan": {"aws:MultiFactorAuthAge": "1"}}),
        allow("iam:ListMFADevices"),
    ))
    iam = iam_for(mfa_session(sts_for, u))
    iam.get_user()
    iam.list_users()
    iam.list_policies()
    iam.list_mfa_devices()
    for call in (iam.list_groups, iam.list_access_keys):
        assert expect_client_error(call).response["Error"]["Code"] == "AccessDenied"
    time.sleep(2.2)  # the MFA is now older than one second
    assert expect_client_error(iam.list_mfa_devices).response["Error"]["Code"] == "AccessDenied"
    # long-term keys have no aws:MultiFactorAuthAge: the NumericLessThan condition is false
    assert expect_client_error(iam_for(u.creds).get_user).response["Error"]["Code"] == "AccessDenied"


def test_revoke_older_sessions_with_token_issue_time(root_iam_client, iam_for, sts_for):
    u = create_mfa_user(root_iam_client, self_service=False)
    root_iam_client.put_user_policy(UserName=u.name, PolicyName="p", PolicyDocument=doc(allow("iam:GetUser")))
    old = iam_for(mfa_session(sts_for, u))
    old.get_user()
    time.sleep(1.1)
    cutoff = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    time.sleep(1.1)
    root_iam_client.put_user_policy(UserName=u.name, PolicyName="AWSRevokeOlderSessions", PolicyDocument=doc(
        deny("*", Condition={"DateLessThan": {"aws:TokenIssueTime": cutoff}})))
    assert expect_client_error(old.get_user).response["Error"]["Code"] == "AccessDenied"
    # a session issued after the cut-off works: step u.step + 1 was used, so use u.step + 2 once the server's
    # window (one step either side) reaches it
    while int(time.time()) // 30 < u.step + 1:
        time.sleep(0.5)
    resp = sts_for(u.creds).get_session_token(SerialNumber=u.serial, TokenCode=totp_code(u.seed, u.step + 2))
    iam_for(Creds.from_sts(resp["Credentials"])).get_user()
    iam_for(u.creds).get_user()  # long-term keys have no aws:TokenIssueTime


def test_explicit_deny_wins_across_user_group_and_managed(root_iam_client, iam_for, account):
    name, _, creds = bare_user(root_iam_client)
    g = unique_name("grp")
    root_iam_client.create_group(GroupName=g)
    root_iam_client.add_user_to_group(GroupName=g, UserName=name)
    root_iam_client.put_group_policy(GroupName=g, PolicyName="all", PolicyDocument=doc(allow("iam:*")))
    iam = iam_for(creds)
    iam.list_groups()
    pname = unique_name("deny")
    arn = root_iam_client.create_policy(PolicyName=pname, PolicyDocument=doc(deny("iam:List*")))["Policy"]["Arn"]
    root_iam_client.attach_user_policy(UserName=name, PolicyArn=arn)
    err = expect_client_error(iam.list_groups)
    denied(err, account, name, "ListGroups", f"arn:aws:iam::{account}:group/",
           f"with an explicit deny in an identity-based policy: {arn}")
    iam.get_user()  # not denied: the group's allow applies
    root_iam_client.put_user_policy(UserName=name, PolicyName="d", PolicyDocument=doc(deny("iam:GetUser")))
    err = expect_client_error(iam.get_user)
    denied(err, account, name, "GetUser", f"user {name}", "with an explicit deny in an identity-based policy")


def test_stricter_rule_for_users_with_a_device(root_iam_client, iam_for, sts_for, account):
    """A stolen long-term key cannot add a device or keys once the user has an enabled device (stsd is
    stricter than AWS here), even with a policy that allows it; an MFA session can."""
    u = create_mfa_user(root_iam_client)
    root_iam_client.attach_user_policy(UserName=u.name, PolicyArn=SELF_SERVICE_POLICY)
    thief = iam_for(u.creds)
    thief.list_access_keys()  # reading is fine
    err = expect_client_error(thief.create_access_key)
    assert err.response["Error"]["Code"] == "AccessDenied"
    assert "MFA" in err.response["Error"]["Message"]
    err = expect_client_error(thief.deactivate_mfa_device, UserName=u.name, SerialNumber=u.serial)
    assert err.response["Error"]["Code"] == "AccessDenied"
    err = expect_client_error(thief.create_virtual_mfa_device, VirtualMFADeviceName=unique_name("second"))
    assert err.response["Error"]["Code"] == "AccessDenied"
    assert len(root_iam_client.list_access_keys(UserName=u.name)["AccessKeyMetadata"]) == 1
    key = iam_for(mfa_session(sts_for, u)).create_access_key()["AccessKey"]
    assert key["UserName"] == u.name


def test_simulator_agrees_with_enforcement(root_iam_client, iam_for, sts_for, account):
    u = create_mfa_user(root_iam_client, self_service=False)
    root_iam_client.attach_user_policy(UserName=u.name, PolicyArn=SELF_SERVICE_MFA_POLICY)
    arn = f"arn:aws:iam::{account}:user/{u.name}"

    def sim(mfa):
        entries = [] if mfa is None else [{
            "ContextKeyName": "aws:MultiFactorAuthPresent", "ContextKeyValues": [str(mfa).lower()],
            "ContextKeyType": "boolean"}]
        entries.append({"ContextKeyName": "aws:username", "ContextKeyValues": [u.name], "ContextKeyType": "string"})
        r = root_iam_client.simulate_principal_policy(
            PolicySourceArn=arn, ActionNames=["iam:ListAccessKeys", "iam:GetUser"], ResourceArns=[arn],
            ContextEntries=entries)
        return {x["EvalActionName"]: x for x in r["EvaluationResults"]}

    long_term = sim(None)
    assert long_term["iam:ListAccessKeys"]["EvalDecision"] == "explicitDeny"
    assert long_term["iam:GetUser"]["EvalDecision"] == "allowed"
    st = long_term["iam:ListAccessKeys"]["MatchedStatements"][0]
    assert st["SourcePolicyId"] == SELF_SERVICE_MFA_POLICY and st["SourcePolicyType"] == "aws-managed"
    assert st["StartPosition"]["Line"] > 1
    assert sim(True)["iam:ListAccessKeys"]["EvalDecision"] == "allowed"
    # enforcement says the same
    assert expect_client_error(iam_for(u.creds).list_access_keys).response["Error"]["Code"] == "AccessDenied"
    iam_for(mfa_session(sts_for, u)).list_access_keys()
    custom = root_iam_client.simulate_custom_policy(
        PolicyInputList=[doc(allow("iam:GetUser"))], ActionNames=["iam:GetUser", "iam:DeleteUser"])
    assert [r["EvalDecision"] for r in custom["EvaluationResults"]] == ["allowed", "implicitDeny"]
    keys = root_iam_client.get_context_keys_for_custom_policy(PolicyInputList=[doc(
        allow("iam:GetUser", Condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}}))])
    assert [k.lower() for k in keys["ContextKeyNames"]] == ["aws:multifactorauthpresent"]
