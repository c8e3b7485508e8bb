"""Presigned GetCallerIdentity URLs and byte-level response framing (reference §1.2, §1.4, §2, §3.1, §7)."""

import re
import urllib.parse

from stsd_support import (
    MSG_BAD_SIGNATURE,
    MSG_UNKNOWN_KEY,
    NS,
    REQUEST_ID_RE,
    SESSION_KEY_RE,
    STS_NS,
    WIRE_TIMESTAMP_RE,
    Creds,
    error_fields,
    http_request,
    random_key_id,
    random_secret,
    signed_post,
)


def tamper_signature(url):
    m = re.search(r"([?&]X-Amz-Signature=)([0-9a-f]{64})", url)
    assert m, f"no X-Amz-Signature in {url}"
    sig = m.group(2)
    i = len(sig) // 2
    new = sig[:i] + ("0" if sig[i] != "0" else "1") + sig[i + 1 :]
    return url[: m.start(2)] + new + url[m.end(2) :]


def caller_arn(raw):
    root = raw.xml()
    assert root.tag == f"{{{STS_NS}}}GetCallerIdentityResponse", raw.body
    return root.findtext("s:GetCallerIdentityResult/s:Arn", namespaces=NS)


def assert_framing(raw, expect_status):
    """Headers and body framing every STS answer shares (reference §1.4)."""
    assert raw.status == expect_status, (raw.status, raw.body)
    assert raw.header("Content-Type") == "text/xml", raw.header("Content-Type")
    rid = raw.header("x-amzn-RequestId")
    assert rid and REQUEST_ID_RE.match(rid), f"x-amzn-RequestId {rid!r}"
    assert not raw.body.lstrip().startswith(b"<?xml"), raw.body[:60]
    assert raw.body.startswith(b"<"), raw.body[:60]
    assert raw.body.endswith(b">\n"), raw.body[-60:]
    assert not raw.body.endswith(b"\n\n")
    if raw.header("Content-Length") is not None:
        assert int(raw.header("Content-Length")) == len(raw.body)
    return rid


# ------------------------------------------------------------ presigned URLs


def test_presigned_get_caller_identity(root_sts, account):
    url = root_sts.generate_presigned_url("get_caller_identity", ExpiresIn=60, HttpMethod="GET")
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert q["Action"] == ["GetCallerIdentity"] and "X-Amz-Signature" in q, url
    raw = http_request(url)
    assert_framing(raw, 200)
    assert caller_arn(raw) == f"arn:aws:iam::{account}:root"


def test_presigned_url_with_session_credentials(root_session_creds, sts_for, account):
    url = sts_for(root_session_creds).generate_presigned_url("get_caller_identity", ExpiresIn=60, HttpMethod="GET")
    assert "X-Amz-Security-Token=" in url
    raw = http_request(url)
    assert_framing(raw, 200)
    assert caller_arn(raw) == f"arn:aws:iam::{account}:root"


def test_presigned_url_with_changed_signature(root_sts):
    url = tamper_signature(root_sts.generate_presigned_url("get_caller_identity", ExpiresIn=60, HttpMethod="GET"))
    raw = http_request(url)
    assert_framing(raw, 403)
    assert error_fields(raw) == ("SignatureDoesNotMatch", MSG_BAD_SIGNATURE)


def test_presigned_url_with_changed_parameter(root_sts):
    url = root_sts.generate_presigned_url("get_caller_identity", ExpiresIn=60, HttpMethod="GET")
    # The signed query is part of the canonical request: altering a signed parameter must break the signature.
    altered = url.replace("X-Amz-Expires=60", "X-Amz-Expires=61")
    assert altered != url
    raw = http_request(altered)
    assert raw.status == 403, raw.body
    assert error_fields(raw) == ("SignatureDoesNotMatch", MSG_BAD_SIGNATURE)


def test_url_presigned_for_post_is_rejected_as_get(root_sts):
    # Without HttpMethod="GET", botocore signs a query-protocol presigned URL for POST (canonical request
    # starts "POST"); the method is part of SigV4, so the same URL fetched with GET must not verify.
    url = root_sts.generate_presigned_url("get_caller_identity", ExpiresIn=60)
    raw = http_request(url)
    assert raw.status == 403, raw.body
    assert error_fields(raw) == ("SignatureDoesNotMatch", MSG_BAD_SIGNATURE)

# ------------------------------------------------------------ framing of raw answers


def test_get_caller_identity_body_is_byte_exact(endpoint, root_creds, account):
    raw = signed_post(endpoint, {"Action": "GetCallerIdentity", "Version": "2011-06-15"}, root_creds)
    rid = assert_framing(raw, 200)
    expected = (
        f'<GetCallerIdentityResponse xmlns="{STS_NS}">\n'
        "  <GetCallerIdentityResult>\n"
        f"    <Arn>arn:aws:iam::{account}:root</Arn>\n"
        f"    <UserId>{account}</UserId>\n"
        f"    <Account>{account}</Account>\n"
        "  </GetCallerIdentityResult>\n"
        "  <ResponseMetadata>\n"
        f"    <RequestId>{rid}</RequestId>\n"
        "  </ResponseMetadata>\n"
        "</GetCallerIdentityResponse>\n"
    )
    assert raw.body.decode() == expected


def test_request_ids_are_unique(endpoint, root_creds):
    ids = set()
    for _ in range(3):
        raw = signed_post(endpoint, {"Action": "GetCallerIdentity", "Version": "2011-06-15"}, root_creds)
        ids.add(assert_framing(raw, 200))
    assert len(ids) == 3


def test_get_session_token_body(endpoint, root_creds):
    raw = signed_post(endpoint, {"Action": "GetSessionToken", "Version": "2011-06-15"}, root_creds)
    rid = assert_framing(raw, 200)
    assert raw.body.startswith(f'<GetSessionTokenResponse xmlns="{STS_NS}">\n  <GetSessionTokenResult>\n'.encode())
    root = raw.xml()
    assert root.findtext("s:ResponseMetadata/s:RequestId", namespaces=NS) == rid
    creds = root.find("s:GetSessionTokenResult/s:Credentials", NS)
    assert creds is not None, raw.body
    # Real bodies order the children AccessKeyId, SecretAccessKey, SessionToken, Expiration (reference §2.1).
    assert [child.tag.split("}")[1] for child in creds] == ["AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"]
    assert SESSION_KEY_RE.match(creds.findtext("s:AccessKeyId", namespaces=NS))
    # Whole seconds, no milliseconds.
    assert WIRE_TIMESTAMP_RE.match(creds.findtext("s:Expiration", namespaces=NS)), creds.findtext("s:Expiration", namespaces=NS)
    token = creds.findtext("s:SessionToken", namespaces=NS)
    result = root.find("s:GetSessionTokenResult", NS)
    assert result.findtext("s:SessionTokenSize", namespaces=NS) == str(len(token))
    assert result.findtext("s:SessionTokenUtilization", namespaces=NS) == str(-(-len(token) * 100 // 4096))
    # 2-space pretty printing throughout.
    assert b"\n    <Credentials>\n      <AccessKeyId>" in raw.body


def test_error_body_is_byte_exact(endpoint):
    raw = signed_post(
        endpoint, {"Action": "GetCallerIdentity", "Version": "2011-06-15"}, Creds(random_key_id(), random_secret())
    )
    rid = assert_framing(raw, 403)
    expected = (
        f'<ErrorResponse xmlns="{STS_NS}">\n'
        "  <Error>\n"
        "    <Type>Sender</Type>\n"
        "    <Code>InvalidClientTokenId</Code>\n"
        f"    <Message>{MSG_UNKNOWN_KEY}</Message>\n"
        "  </Error>\n"
        f"  <RequestId>{rid}</RequestId>\n"
        "</ErrorResponse>\n"
    )
    assert raw.body.decode() == expected


def test_botocore_sees_header_and_body_request_id_equal(root_sts):
    resp = root_sts.get_caller_identity()
    meta = resp["ResponseMetadata"]
    assert REQUEST_ID_RE.match(meta["RequestId"])
    assert meta["HTTPHeaders"].get("x-amzn-requestid") == meta["RequestId"]
    assert meta["HTTPHeaders"].get("content-type") == "text/xml"

