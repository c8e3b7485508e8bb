// stsd conformance with the AWS SDK for JavaScript v3 (@aws-sdk/client-sts), run by `node --test`.
// Expected values come from shared/reference/aws-sts-wire.md. The server is started by tests/clients/run.sh,
// which exports STSD_ENDPOINT, STSD_ROOT_ACCESS_KEY_ID and STSD_ROOT_SECRET_ACCESS_KEY.

import { test, before } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, randomInt } from "node:crypto";
import {
  STSClient,
  GetSessionTokenCommand,
  GetCallerIdentityCommand,
} from "@aws-sdk/client-sts";

function requiredEnv(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set: run tests/clients/run.sh <path-to-stsd> (see tests/clients/README.md)`);
  }
  return v;
}

const ENDPOINT = requiredEnv("STSD_ENDPOINT");
const ROOT = {
  accessKeyId: requiredEnv("STSD_ROOT_ACCESS_KEY_ID"),
  secretAccessKey: requiredEnv("STSD_ROOT_SECRET_ACCESS_KEY"),
};

const SESSION_KEY_RE = /^ASIA[A-Z2-7]{16}$/;
const SECRET_RE = /^[A-Za-z0-9+/]{40}$/;
const ACCOUNT_RE = /^[0-9]{12}$/;
const REQUEST_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

const MSG_UNKNOWN_KEY = "The security token included in the request is invalid.";
const MSG_BAD_SIGNATURE =
  "The request signature we calculated does not match the signature you provided. " +
  "Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
const MSG_SESSION_CREDS_GST = "Cannot call GetSessionToken with session credentials";

function client(credentials) {
  return new STSClient({
    endpoint: ENDPOINT,
    region: "us-east-1",
    credentials,
    maxAttempts: 1, // a test must see the server's first answer
  });
}

function sessionCreds(c) {
  return { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken };
}

function randomKeyId() {
  let s = "AKIA";
  for (let i = 0; i < 16; i++) s += B32[randomInt(32)];
  return s;
}

function randomSecret() {
  return randomBytes(30).toString("base64");
}

async function expectError(promise, status, code, message) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected ${code}, but the call succeeded`);
  assert.deepEqual(
    { status: err.$metadata?.httpStatusCode, name: err.name, Code: err.Code, message: err.message },
    { status, name: code, Code: code, message },
  );
  assert.equal(err.Type, "Sender");
  assert.match(err.$metadata.requestId ?? "", REQUEST_ID_RE);
  return err;
}

function assertExpiration(expiration, t0, t1, duration) {
  assert.ok(expiration instanceof Date, `Expiration is ${typeof expiration}`);
  const exp = expiration.getTime() / 1000;
  const low = Math.floor(t0 / 1000) + duration - 3;
  const high = Math.ceil(t1 / 1000) + duration + 3;
  assert.ok(low <= exp && exp <= high, `Expiration ${expiration.toISOString()} is not issue time + ${duration}s`);
}

function assertSessionTokenShape(out) {
  const c = out.Credentials;
  assert.match(c.AccessKeyId, SESSION_KEY_RE);
  assert.match(c.SecretAccessKey, SECRET_RE);
  assert.equal(typeof c.SessionToken, "string");
  assert.ok(c.SessionToken.length > 0, "SessionToken is empty");
  const size = Buffer.byteLength(c.SessionToken);
  assert.equal(out.SessionTokenSize, size);
  assert.equal(out.SessionTokenUtilization, Math.ceil((size * 100) / 4096));
  return c;
}

let rootSts;
let account;
let rootSession;

before(async () => {
  rootSts = client(ROOT);
  const ident = await rootSts.send(new GetCallerIdentityCommand({}));
  account = ident.Account;
  rootSession = (await rootSts.send(new GetSessionTokenCommand({}))).Credentials;
});

test("GetCallerIdentity with the root long-term key", async () => {
  const out = await rootSts.send(new GetCallerIdentityCommand({}));
  assert.match(out.Account, ACCOUNT_RE);
  assert.equal(out.Arn, `arn:aws:iam::${out.Account}:root`);
  assert.equal(out.UserId, out.Account);
  assert.match(out.$metadata.requestId, REQUEST_ID_RE);
  assert.equal(out.$metadata.httpStatusCode, 200);
});

test("GetSessionToken with root: shape, size members, default 1 h", async () => {
  const t0 = Date.now();
  const out = await rootSts.send(new GetSessionTokenCommand({}));
  const t1 = Date.now();
  const c = assertSessionTokenShape(out);
  assertExpiration(c.Expiration, t0, t1, 3600);
});

test("GetSessionToken with root: DurationSeconds 900 honoured, 7200 clamped to 3600", async () => {
  let t0 = Date.now();
  let out = await rootSts.send(new GetSessionTokenCommand({ DurationSeconds: 900 }));
  let t1 = Date.now();
  assertExpiration(assertSessionTokenShape(out).Expiration, t0, t1, 900);
  t0 = Date.now();
  out = await rootSts.send(new GetSessionTokenCommand({ DurationSeconds: 7200 }));
  t1 = Date.now();
  assertExpiration(assertSessionTokenShape(out).Expiration, t0, t1, 3600);
});

test("GetSessionToken with MinimumSessionTokenSize pads the token", async () => {
  const out = await rootSts.send(new GetSessionTokenCommand({ MinimumSessionTokenSize: 2000 }));
  const c = assertSessionTokenShape(out);
  assert.ok(c.SessionToken.length >= 2000, `token is ${c.SessionToken.length} bytes`);
  const ident = await client(sessionCreds(c)).send(new GetCallerIdentityCommand({}));
  assert.equal(ident.Arn, `arn:aws:iam::${account}:root`);
});

test("GetCallerIdentity with root session credentials", async () => {
  const out = await client(sessionCreds(rootSession)).send(new GetCallerIdentityCommand({}));
  assert.equal(out.Arn, `arn:aws:iam::${account}:root`);
  assert.equal(out.UserId, account);
  assert.equal(out.Account, account);
});

test("GetSessionToken with session credentials is AccessDenied", async () => {
  await expectError(
    client(sessionCreds(rootSession)).send(new GetSessionTokenCommand({})),
    403,
    "AccessDenied",
    MSG_SESSION_CREDS_GST,
  );
});

test("unknown access key is InvalidClientTokenId", async () => {
  await expectError(
    client({ accessKeyId: randomKeyId(), secretAccessKey: randomSecret() }).send(new GetCallerIdentityCommand({})),
    403,
    "InvalidClientTokenId",
    MSG_UNKNOWN_KEY,
  );
});

test("wrong secret is SignatureDoesNotMatch", async () => {
  await expectError(
    client({ accessKeyId: ROOT.accessKeyId, secretAccessKey: randomSecret() }).send(new GetSessionTokenCommand({})),
    403,
    "SignatureDoesNotMatch",
    MSG_BAD_SIGNATURE,
  );
});

test("20 concurrent GetSessionToken calls give 20 distinct credentials", async () => {
  const outs = await Promise.all(
    Array.from({ length: 20 }, () => rootSts.send(new GetSessionTokenCommand({ DurationSeconds: 900 }))),
  );
  for (const out of outs) assertSessionTokenShape(out);
  assert.equal(new Set(outs.map((o) => o.Credentials.AccessKeyId)).size, 20);
  assert.equal(new Set(outs.map((o) => o.Credentials.SessionToken)).size, 20);
  assert.equal(new Set(outs.map((o) => o.$metadata.requestId)).size, 20);
  // Every one of them works.
  const idents = await Promise.all(
    outs.map((o) => client(sessionCreds(o.Credentials)).send(new GetCallerIdentityCommand({}))),
  );
  for (const ident of idents) assert.equal(ident.Arn, `arn:aws:iam::${account}:root`);
});
