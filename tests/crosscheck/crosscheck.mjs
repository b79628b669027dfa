// Cross-checks the test endpoint's SigV4 verifier and PutEvents handling
// against the official AWS SDK for JavaScript v3. run.sh starts the endpoint
// and passes its address and keys in the environment:
//   CROSSCHECK_URL, CROSSCHECK_REGION, CROSSCHECK_AKID, CROSSCHECK_SECRET
// Prints one line per check and a final "crosscheck: N passed, M failed".
import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import assert from "node:assert/strict";

const url = process.env.CROSSCHECK_URL;
const region = process.env.CROSSCHECK_REGION ?? "us-east-1";
const akid = process.env.CROSSCHECK_AKID;
const secret = process.env.CROSSCHECK_SECRET;
if (!url || !akid || !secret) {
  console.error("crosscheck: CROSSCHECK_URL, CROSSCHECK_AKID and CROSSCHECK_SECRET must be set");
  process.exit(2);
}

const UUID_LIKE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function client(credentials) {
  return new EventBridgeClient({
    endpoint: url,
    region,
    credentials,
    maxAttempts: 1,
  });
}

async function records() {
  const res = await fetch(`${url}/_records`);
  assert.equal(res.status, 200, "GET /_records status");
  return res.json();
}

async function clearRecords() {
  const res = await fetch(`${url}/_records`, { method: "DELETE" });
  assert.equal(res.status, 200, "DELETE /_records status");
}

function entry(i, detail) {
  return {
    Source: "com.example.crosscheck",
    DetailType: "CrossCheck",
    Detail: detail ?? JSON.stringify({ i }),
    EventBusName: "default",
  };
}

// Sends entries, asserts every one was accepted with a uuid-like EventId and
// that the endpoint recorded them, in order, with the exact Detail sent.
async function sendAndCheck(c, entries, expectKey) {
  await clearRecords();
  const out = await c.send(new PutEventsCommand({ Entries: entries }));
  assert.equal(out.FailedEntryCount, 0, "FailedEntryCount");
  assert.equal(out.Entries.length, entries.length, "reply entry count");
  for (const e of out.Entries) {
    assert.match(e.EventId ?? "", UUID_LIKE, "EventId is uuid-like");
  }
  assert.equal(new Set(out.Entries.map((e) => e.EventId)).size, entries.length, "EventIds unique");
  const recs = await records();
  assert.equal(recs.length, entries.length, "recorded entry count");
  recs.forEach((r, i) => {
    assert.equal(r.EventId, out.Entries[i].EventId, `record ${i} EventId`);
    assert.equal(r.Detail, entries[i].Detail, `record ${i} Detail`);
    assert.equal(r.Source, entries[i].Source, `record ${i} Source`);
    assert.equal(r.AccessKeyId, expectKey, `record ${i} AccessKeyId`);
  });
}

// Asserts the call is rejected with the given AWS error name and HTTP status.
async function expectRejected(c, name, status) {
  let err = null;
  try {
    await c.send(new PutEventsCommand({ Entries: [entry(0)] }));
  } catch (e) {
    err = e;
  }
  assert.ok(err, "the request was accepted but should have been rejected");
  assert.equal(err.$metadata?.httpStatusCode, status, `HTTP status (error ${err.name})`);
  assert.equal(err.name, name, "error name");
}

const checks = [
  [
    "accepts a one-entry request signed by the SDK",
    () => sendAndCheck(client({ accessKeyId: akid, secretAccessKey: secret }), [entry(1)], akid),
  ],
  [
    "accepts a request signed with a session token (x-amz-security-token)",
    () =>
      sendAndCheck(
        client({ accessKeyId: akid, secretAccessKey: secret, sessionToken: "FQoGZXIvYXdzEXAMPLE/+=token" }),
        [entry(2)],
        akid,
      ),
  ],
  [
    "accepts unicode, quotes and escapes in Detail and records them byte for byte",
    () =>
      sendAndCheck(
        client({ accessKeyId: akid, secretAccessKey: secret }),
        [entry(3, JSON.stringify({ name: 'Zoë "the quote" Ünïcødé ✓ 😀', path: "a\\b/c", nl: "x\ny\t" }))],
        akid,
      ),
  ],
  [
    "accepts ten entries in one request, in order",
    () =>
      sendAndCheck(
        client({ accessKeyId: akid, secretAccessKey: secret }),
        Array.from({ length: 10 }, (_, i) => entry(100 + i)),
        akid,
      ),
  ],
  [
    "reports a per-entry NotAuthorizedForSourceException for an aws. source",
    async () => {
      const c = client({ accessKeyId: akid, secretAccessKey: secret });
      const out = await c.send(
        new PutEventsCommand({ Entries: [entry(4), { ...entry(5), Source: "aws.s3" }] }),
      );
      assert.equal(out.FailedEntryCount, 1, "FailedEntryCount");
      assert.match(out.Entries[0].EventId ?? "", UUID_LIKE, "first entry accepted");
      assert.equal(out.Entries[1].ErrorCode, "NotAuthorizedForSourceException", "second entry code");
    },
  ],
  [
    "rejects a wrong secret with 403 InvalidSignatureException",
    () => expectRejected(client({ accessKeyId: akid, secretAccessKey: secret + "x" }), "InvalidSignatureException", 403),
  ],
  [
    "rejects an unknown access key id with 403 UnrecognizedClientException",
    () =>
      expectRejected(
        client({ accessKeyId: "AKIDUNKNOWN0000000000", secretAccessKey: secret }),
        "UnrecognizedClientException",
        403,
      ),
  ],
  [
    "rejects a region the endpoint does not serve with 403 InvalidSignatureException",
    async () => {
      const other = region === "eu-west-1" ? "us-west-2" : "eu-west-1";
      const c = new EventBridgeClient({
        endpoint: url,
        region: other,
        credentials: { accessKeyId: akid, secretAccessKey: secret },
        maxAttempts: 1,
      });
      await expectRejected(c, "InvalidSignatureException", 403);
    },
  ],
];

let passed = 0;
let failed = 0;
for (const [name, fn] of checks) {
  try {
    await fn();
    passed++;
    console.log(`ok   - ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL - ${name}: ${e?.message ?? e}`);
  }
}
console.log(`crosscheck: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
