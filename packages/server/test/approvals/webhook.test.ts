import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestServer, type TestServer } from '../harness.ts';
import { parseConfig, ConfigError } from '../../src/config/load.ts';
import { findApproval } from '../../src/approvals/service.ts';
import { notifyApprovalRequested, WEBHOOK_MAX_ATTEMPTS, type ApprovalRequestedEvent } from '../../src/approvals/webhook.ts';
import { callGateway, createWorld, delegatedToken, startUpstream, UPSTREAM_CREDENTIAL, type Upstream, type World } from '../gateway/world.ts';

const KEY = randomBytes(32);
const SECRET = `whsec_${KEY.toString('base64')}`;
/** Some receivers carry a secret in their URL path; it must not reach the log either. */
const URL_PATH_SECRET = 'T0k3nInThePath-Zq81';
/** Standard Webhooks: receivers reject timestamps further than this from their clock. */
const TOLERANCE_SECONDS = 5 * 60;
const BODY = '{"subject":"Quarterly numbers","to":"bob@example.test"}';

/** One delivery as the receiver got it, with the result of its own signature check. */
interface Delivery {
  headers: IncomingHttpHeaders;
  body: string;
  receivedAt: number;
  verified: boolean;
}

/** What the receiver does with each attempt for one resource: a status code, or hold the request open. */
type Plan = (number | 'hang')[];

/**
 * A webhook receiver on loopback that verifies each delivery as Standard Webhooks 1.0 requires of
 * a consumer, with its own code: HMAC-SHA256 over `id.timestamp.body`, constant-time compare, a
 * timestamp within five minutes. It responds according to the plan of the delivery's resource.
 */
class Receiver {
  readonly deliveries = new Map<string, Delivery[]>();
  readonly plans = new Map<string, Plan>();
  readonly held: ServerResponse[] = [];
  url = '';
  #server: Server | undefined;

  async start(): Promise<void> {
    this.#server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const resourceName = (JSON.parse(body) as ApprovalRequestedEvent).data.resource.name ?? '';
        const list = this.deliveries.get(resourceName) ?? [];
        list.push({ headers: request.headers, body, receivedAt: Date.now(), verified: verify(request.headers, body, KEY) });
        this.deliveries.set(resourceName, list);

        const step = this.plans.get(resourceName)?.[list.length - 1] ?? 204;
        if (step === 'hang') this.held.push(response);
        else response.writeHead(step).end();
      });
    });
    await new Promise<void>((resolve) => this.#server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/hooks/${URL_PATH_SECRET}`;
  }

  async close(): Promise<void> {
    for (const response of this.held) response.writeHead(204).end();
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()));
  }

  /** Waits until `count` deliveries arrived for the resource, or fails after `timeoutMs`. */
  async waitFor(resourceName: string, count: number, timeoutMs: number): Promise<Delivery[]> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const list = this.deliveries.get(resourceName) ?? [];
      if (list.length >= count) return list;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    assert.fail(`expected ${count} deliveries for ${resourceName} within ${timeoutMs} ms, got ${this.deliveries.get(resourceName)?.length ?? 0}`);
  }
}

/** Verifies a delivery as a receiver does, written from the Standard Webhooks 1.0 text rather than from Mandate's code. */
function verify(headers: IncomingHttpHeaders, body: string, key: Buffer, nowSeconds = Math.floor(Date.now() / 1000)): boolean {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const signatures = headers['webhook-signature'];
  if (typeof id !== 'string' || typeof timestamp !== 'string' || typeof signatures !== 'string') return false;
  if (!/^\d+$/.test(timestamp) || Math.abs(nowSeconds - Number(timestamp)) > TOLERANCE_SECONDS) return false;

  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest();
  return signatures.split(' ').some((entry) => {
    const [version, encoded] = entry.split(',');
    if (version !== 'v1' || encoded === undefined) return false;
    const presented = Buffer.from(encoded, 'base64');
    return presented.length === expected.length && timingSafeEqual(presented, expected);
  });
}

let server: TestServer;
let upstream: Upstream;
const receiver = new Receiver();

before(async () => {
  await receiver.start();
  server = await startTestServer({ approvalWebhookUrl: receiver.url, approvalWebhookSecret: SECRET });
  upstream = await startUpstream();
});

after(async () => {
  await upstream.close();
  await server.stop();
  await receiver.close();
});

/** Makes a call that needs approval and returns the approval id. */
async function requestApproval(world: World, token: string): Promise<string> {
  const response = await callGateway(server, world, '/send/mail?to=bob', { method: 'POST', token, body: BODY, headers: { 'content-type': 'application/json' } });
  assert.equal(response.status, 403);
  return ((await response.json()) as { approval_id: string }).approval_id;
}

function logsOf(approvalId: string): Record<string, unknown>[] {
  return server.logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.approval_id === approvalId && String(line.msg).startsWith('approval webhook'));
}

function assertNoSecretInLogs(): void {
  const text = server.logs.join('\n');
  assert.ok(!text.includes(SECRET.slice('whsec_'.length)), 'the log contains the webhook secret');
  assert.ok(!text.includes(KEY.toString('hex')), 'the log contains the webhook key');
  assert.ok(!text.includes(URL_PATH_SECRET), 'the log contains the webhook URL path');
}

describe('approval webhook', () => {
  test('new approval is delivered signed', async () => {
    const world = await createWorld(server, upstream.url);
    const token = await delegatedToken(server, world);
    const approvalId = await requestApproval(world, token);

    const [delivery] = await receiver.waitFor(world.resourceName, 1, 5000);
    assert.ok(delivery !== undefined);
    assert.equal(delivery.verified, true, 'the signature verifies');
    assert.equal(delivery.headers['content-type'], 'application/json');
    assert.match(String(delivery.headers['webhook-id']), /^msg_[A-Za-z0-9_-]+$/);

    const event = JSON.parse(delivery.body) as ApprovalRequestedEvent;
    const approval = await findApproval(server.ctx, approvalId);
    assert.deepEqual(event, {
      type: 'approval.requested',
      timestamp: new Date(Number(approval?.created_at) * 1000).toISOString(),
      data: {
        approval_id: approvalId,
        approval_uri: `${server.issuer}/approvals/${approvalId}`,
        status: 'pending',
        user: { id: world.user.id, username: world.user.username },
        agent: { client_id: world.agentId, name: `Filing Agent ${world.resourceName.slice('files-'.length)}` },
        resource: { id: world.resourceId, identifier: world.identifier, name: world.resourceName },
        action: 'send',
        method: 'POST',
        path: '/send/mail?to=bob',
        expires_at: new Date(Number(approval?.expires_at) * 1000).toISOString(),
      },
    });
    for (const secret of [token, UPSTREAM_CREDENTIAL, 'Quarterly numbers', SECRET, world.agentSecret]) {
      assert.ok(!delivery.body.includes(secret), `the webhook body carries ${secret.slice(0, 12)}…`);
    }

    const again = await requestApproval(world, token);
    assert.equal(again, approvalId);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(receiver.deliveries.get(world.resourceName)?.length, 1, 'a repeated call for the same pending approval sends no second webhook');
  });

  test('signature covers timestamp and body', async () => {
    const world = await createWorld(server, upstream.url);
    const token = await delegatedToken(server, world);
    await requestApproval(world, token);
    const [delivery] = await receiver.waitFor(world.resourceName, 1, 5000);
    assert.ok(delivery !== undefined);
    const timestamp = Number(delivery.headers['webhook-timestamp']);

    // A replay with a fresh timestamp needs a new signature, which only the key holder can make.
    assert.equal(verify({ ...delivery.headers, 'webhook-timestamp': String(timestamp + 60) }, delivery.body, KEY), false);
    // An old delivery replayed later fails the receiver's timestamp window.
    assert.equal(verify(delivery.headers, delivery.body, KEY, timestamp + TOLERANCE_SECONDS + 1), false);
    assert.equal(verify({ ...delivery.headers, 'webhook-id': 'msg_other' }, delivery.body, KEY), false);
    assert.equal(verify(delivery.headers, delivery.body.replace('"POST"', '"GET"'), KEY), false);
    assert.equal(verify(delivery.headers, delivery.body, randomBytes(32)), false);
    assert.equal(verify(delivery.headers, delivery.body, KEY), true);
  });

  test('receiver failing twice gets a third attempt', async () => {
    const world = await createWorld(server, upstream.url);
    receiver.plans.set(world.resourceName, [500, 503, 204]);
    const token = await delegatedToken(server, world);
    const approvalId = await requestApproval(world, token);

    const deliveries = await receiver.waitFor(world.resourceName, 3, 10_000);
    assert.equal(deliveries.length, 3);
    assert.ok(deliveries.every((delivery) => delivery.verified), 'every attempt is signed');
    assert.equal(new Set(deliveries.map((delivery) => delivery.headers['webhook-id'])).size, 1, 'retries keep the webhook-id');
    assert.equal(new Set(deliveries.map((delivery) => delivery.body)).size, 1, 'retries send the same body');

    const [first, second, third] = deliveries.map((delivery) => delivery.receivedAt) as [number, number, number];
    assert.ok(second - first >= 700, `first retry after ${second - first} ms`);
    assert.ok(third - second > second - first, `backoff grows: ${second - first} ms, then ${third - second} ms`);

    await new Promise((resolve) => setTimeout(resolve, 200));
    const logs = logsOf(approvalId);
    assert.deepEqual(
      logs.map((line) => [line.msg, line.attempt, line.status]),
      [
        ['approval webhook delivery failed; retrying', 1, 500],
        ['approval webhook delivery failed; retrying', 2, 503],
        ['approval webhook delivered', 3, undefined],
      ],
    );
    assert.equal(logs[0]?.receiver, new URL(receiver.url).origin);
    assertNoSecretInLogs();
  });

  test('gateway call does not wait for the receiver', async () => {
    const world = await createWorld(server, upstream.url);
    receiver.plans.set(world.resourceName, ['hang']);
    const token = await delegatedToken(server, world);

    const started = Date.now();
    await requestApproval(world, token);
    const elapsed = Date.now() - started;
    await receiver.waitFor(world.resourceName, 1, 5000);
    assert.ok(elapsed < 2000, `the gateway answered after ${elapsed} ms`);
    assert.equal(receiver.held.length >= 1, true, 'the receiver still holds the webhook request open');
  });

  test('retries stop after the last attempt', async () => {
    const world = await createWorld(server, upstream.url);
    receiver.plans.set(world.resourceName, Array.from({ length: WEBHOOK_MAX_ATTEMPTS + 2 }, () => 500));
    const token = await delegatedToken(server, world);
    const approvalId = await requestApproval(world, token);

    // Backoff of 1, 2, 4 and 8 seconds, each with up to 20% taken off.
    await receiver.waitFor(world.resourceName, WEBHOOK_MAX_ATTEMPTS, 20_000);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(receiver.deliveries.get(world.resourceName)?.length, WEBHOOK_MAX_ATTEMPTS);

    const last = logsOf(approvalId).at(-1);
    assert.equal(last?.msg, `approval webhook not delivered; giving up because ${WEBHOOK_MAX_ATTEMPTS} attempts failed`);
    assert.equal(last?.level, 50, 'the final failure is logged as an error');
    assertNoSecretInLogs();
  });

  test('410 Gone stops the retries', async () => {
    const world = await createWorld(server, upstream.url);
    receiver.plans.set(world.resourceName, [410, 204]);
    const token = await delegatedToken(server, world);
    const approvalId = await requestApproval(world, token);

    await receiver.waitFor(world.resourceName, 1, 5000);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(receiver.deliveries.get(world.resourceName)?.length, 1);
    assert.equal(logsOf(approvalId).at(-1)?.msg, 'approval webhook not delivered; giving up because the receiver returned 410 Gone');
  });

  test('retries stop when the approval expires', async () => {
    const world = await createWorld(server, upstream.url);
    const token = await delegatedToken(server, world);
    const approvalId = await requestApproval(world, token);
    await receiver.waitFor(world.resourceName, 1, 5000);

    // Deliver the same approval again as if it expired 1.5 to 2 seconds from now (expiry is in
    // whole seconds, so start early in a second). The second attempt starts within a second; the
    // third would start at least 2.4 seconds in, past the expiry, so delivery ends after two.
    receiver.deliveries.delete(world.resourceName);
    receiver.plans.set(world.resourceName, [500, 500, 500, 500, 500]);
    const approval = await findApproval(server.ctx, approvalId);
    assert.ok(approval !== undefined);
    if (Date.now() % 1000 > 400) await new Promise((resolve) => setTimeout(resolve, 1010 - (Date.now() % 1000)));
    notifyApprovalRequested(server.ctx, { ...approval, expires_at: Math.floor(Date.now() / 1000) + 2 });

    await receiver.waitFor(world.resourceName, 2, 5000);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    assert.equal(receiver.deliveries.get(world.resourceName)?.length, 2);
    assert.equal(logsOf(approvalId).at(-1)?.msg, 'approval webhook not delivered; giving up because the approval expires before the next attempt');
  });
});

describe('approval webhook settings', () => {
  const base = { issuer: 'https://mandate.example', masterKey: 'A'.repeat(43) };

  test('URL needs a secret', () => {
    assert.throws(() => parseConfig({ ...base, approvalWebhookUrl: 'https://hooks.example/approvals' }), (error: unknown) => error instanceof ConfigError && /approvalWebhookSecret \(MANDATE_APPROVAL_WEBHOOK_SECRET\): is required when approvalWebhookUrl is set/.test(error.message));
  });

  test('secret needs a URL', () => {
    assert.throws(() => parseConfig({ ...base, approvalWebhookSecret: SECRET }), /approvalWebhookUrl \(MANDATE_APPROVAL_WEBHOOK_URL\): is required/);
  });

  const badSecrets: [string, string][] = [
    ['no prefix', KEY.toString('base64')],
    ['too short', `whsec_${randomBytes(16).toString('base64')}`],
    ['too long', `whsec_${randomBytes(65).toString('base64')}`],
    ['not base64', 'whsec_not*base64*at*all*not*base64*at*all*xx'],
  ];
  for (const [name, secret] of badSecrets) {
    test(`secret ${name} is rejected`, () => {
      assert.throws(() => parseConfig({ ...base, approvalWebhookUrl: 'https://hooks.example/approvals', approvalWebhookSecret: secret }), /Invalid setting approvalWebhookSecret/);
    });
  }

  test('production needs https', () => {
    assert.throws(() => parseConfig({ ...base, mode: 'production', approvalWebhookUrl: 'http://hooks.example/approvals', approvalWebhookSecret: SECRET }), /approvalWebhookUrl .*must use https in production mode/);
    const config = parseConfig({ ...base, mode: 'production', approvalWebhookUrl: 'https://hooks.example/approvals', approvalWebhookSecret: SECRET });
    assert.equal(config.approvalWebhookUrl, 'https://hooks.example/approvals');
  });

  test('sign-in age defaults to ten minutes', () => {
    assert.equal(parseConfig(base).approvalMaxAuthAgeSeconds, 600);
    assert.equal(parseConfig({ ...base, approvalMaxAuthAgeSeconds: '120' }).approvalMaxAuthAgeSeconds, 120);
    assert.throws(() => parseConfig({ ...base, approvalMaxAuthAgeSeconds: 5 }), /Invalid setting approvalMaxAuthAgeSeconds/);
  });
});
