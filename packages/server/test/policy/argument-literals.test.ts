import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../harness.ts';
import { adminApi, type AdminApi } from '../admin/admin-client.ts';
import { delegatedToken, startUpstream, type Upstream } from '../gateway/world.ts';
import { readAudit } from '../../src/audit/verify.ts';
import { bindArguments, type ArgumentDeclarations } from '../../src/policy/arguments.ts';
import { jsonBodyArguments, parseMediaType } from '../../src/policy/json-arguments.ts';
import { createPolicyWorld, type PolicyWorld } from './policy-world.ts';

const JSON_TYPE = 'application/json';
const DECLARED: ArgumentDeclarations = { amount: 'Long', note: 'String' };
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** Reads a body as the gateway does and binds it to DECLARED. */
function bind(body: string, contentType = JSON_TYPE) {
  const read = jsonBodyArguments(contentType, Buffer.from(body));
  assert.equal(read.unreadable, undefined, `${body} is readable: ${read.unreadableReason}`);
  return bindArguments(DECLARED, read.values, read.duplicateNames, read.numberLiterals);
}

describe('Long written in JSON', () => {
  const accepted: Array<[string, number]> = [
    ['{"amount":1000}', 1000],
    ['{"amount":-12}', -12],
    ['{"amount":0}', 0],
    ['{"amount":9007199254740991}', 9007199254740991],
    ['{"amount":-9007199254740991}', -9007199254740991],
    ['{ "amount" : 42 }', 42],
    ['{\n\t"amount"\r\n:\n-7\n}', -7],
    ['{"memo":{"amount":1e3},"amount":5}', 5],
    ['{"list":[1e3,2.5,{"amount":1.5}],"amount":3}', 3],
    ['{"note":"1e3","amount":8}', 8],
    ['{"note":"a \\" \\\\","amount":9}', 9],
    ['{"amount":6,"note":"x","rate":1.5e3}', 6],
    ['{"flag":true,"amount":11,"none":null}', 11],
    ['{"note":"\\":1e3,\\"amount\\":1e3","amount":4}', 4],
    ['{"amount":-0}', -0],
  ];
  for (const [body, value] of accepted) {
    test(`accepts ${body}`, () => {
      const bound = bind(body);
      assert.deepEqual(bound.typeErrors, []);
      assert.equal(bound.values.amount, value);
    });
  }

  const rejected: Array<[string, RegExp]> = [
    ['{"amount":1e3}', /^argument amount must be a JSON integer between -\(2\^53 - 1\) and 2\^53 - 1, written without a fraction or exponent, not 1e3, which has a fraction or exponent$/],
    ['{"amount":1E3}', /not 1E3, which has a fraction or exponent/],
    ['{"amount":1000.00000000000001}', /not 1000\.00000000000001, which has a fraction or exponent/],
    ['{"amount":1000.0}', /not 1000\.0, which has a fraction or exponent/],
    ['{"amount":10e-1}', /not 10e-1, which has a fraction or exponent/],
    ['{"amount":-0.0}', /not -0\.0, which has a fraction or exponent/],
    ['{"amount":1.5e3}', /not 1\.5e3, which has a fraction or exponent/],
    ['{"amount":1000.5}', /not a number that is not an integer/],
    ['{"amount":9007199254740992}', /not an integer outside that range/],
    ['{"amount":12345678901234567890}', /not an integer outside that range/],
    ['{"amount":1e400}', /not a number outside that range/],
    ['{"am\\u006funt":1e3}', /not 1e3, which has a fraction or exponent/],
    ['{"ok":true,"list":[],"memo":{},"amount":2E+1}', /not 2E\+1, which has a fraction or exponent/],
    ['{"amount":5,"amount":1e3}', /argument amount occurs more than once/],
    ['{"amount":"1000"}', /not a string/],
    [`{"amount":1.${'0'.repeat(60)}}`, /not 1\.0{38}…, which has a fraction or exponent$/],
  ];
  for (const [body, message] of rejected) {
    test(`rejects ${body.slice(0, 40)}`, () => {
      const bound = bind(body);
      assert.equal(bound.typeErrors.length, 1, JSON.stringify(bound.typeErrors));
      assert.match(bound.typeErrors[0] ?? '', message);
      assert.equal(Object.hasOwn(bound.values, 'amount'), false, 'a rejected argument is not bound');
    });
  }

  test('string argument keeps its own message', () => {
    const bound = bindArguments({ note: 'String' }, jsonBodyArguments(JSON_TYPE, Buffer.from('{"note":1e3}')).values);
    assert.deepEqual(bound.typeErrors, ['argument note must be a JSON string, not a number']);
  });

  test('arguments not parsed from text are checked by value', () => {
    // AuthZEN and CIBA pass arguments that their own JSON parser read, without the source text.
    assert.deepEqual(bindArguments(DECLARED, { amount: 1000 }).values, { amount: 1000 });
    assert.match(bindArguments(DECLARED, { amount: 1000.5 }).typeErrors[0] ?? '', /not a number that is not an integer/);
  });

  test('lone surrogate in a string is denied', () => {
    const bound = bindArguments({ note: 'String' }, jsonBodyArguments(JSON_TYPE, Buffer.from('{"note":"a\\ud800b"}')).values);
    assert.deepEqual(bound.typeErrors, ['argument note contains a lone UTF-16 surrogate, which is not text and which decoders replace or reject']);
    assert.deepEqual(bindArguments({ note: 'String' }, { note: 'emoji \u{1F600}' }).values, { note: 'emoji \u{1F600}' }, 'a surrogate pair is text');
  });

  test('undeclared members are not checked', () => {
    const bound = bind('{"rate":1e3,"amount":2}');
    assert.deepEqual(bound, { values: { amount: 2 }, typeErrors: [] });
  });
});

describe('Content-Type charset and byte order mark', () => {
  const readable: string[] = [
    'application/json',
    'application/json; charset=utf-8',
    'application/json;charset=UTF-8',
    'application/json; charset="utf-8"',
    'application/json ; charset=utf-8',
    'application/json;',
    'application/json; profile="a;charset=utf-16"',
    'application/json; charset=utf-8; profile=x',
    'Application/Problem+JSON; Charset=utf-8',
  ];
  for (const contentType of readable) {
    test(`reads ${contentType}`, () => {
      const read = jsonBodyArguments(contentType, Buffer.from('{"amount":5}'));
      assert.equal(read.unreadable, undefined, read.unreadableReason);
      assert.deepEqual(read.values, { amount: 5 });
    });
  }

  const unreadable: Array<[string, RegExp]> = [
    ['application/json; charset=utf-16', /^the Content-Type names charset "utf-16", but a JSON body must be UTF-8; send it with charset=utf-8 or without a charset$/],
    ['application/json; charset=UTF-16LE', /charset "UTF-16LE"/],
    ["application/json; charset*=utf-8''utf-16", /charset "utf-8''utf-16"/],
    ['application/json; charset=iso-8859-1', /charset "iso-8859-1"/],
    ['application/json; charset=utf8', /charset "utf8"/],
    ['application/json; charset="utf-16"', /charset "utf-16"/],
    ['application/json; charset=utf-8; charset=utf-16', /^the Content-Type field has more than one charset parameter$/],
    ['application/json; charset=utf-8; CHARSET=utf-8', /more than one charset parameter/],
    ['application/json; charset = utf-8', /^the Content-Type field "application\/json; charset = utf-8" is not a valid media type$/],
    ['application/json; charset', /is not a valid media type/],
    ['application/json; charset=', /is not a valid media type/],
    ['application/json; charset="utf-8', /is not a valid media type/],
    ['application/json, text/plain', /is not a valid media type/],
    ['text/plain; charset=utf-8', /^the Content-Type "text\/plain" is not a JSON media type$/],
  ];
  for (const [contentType, reason] of unreadable) {
    test(`refuses ${contentType}`, () => {
      const read = jsonBodyArguments(contentType, Buffer.from('{"amount":5}'));
      assert.equal(read.unreadable, true);
      assert.equal(read.values, undefined);
      assert.match(read.unreadableReason ?? '', reason);
    });
  }

  test('refuses a byte order mark', () => {
    for (const contentType of [JSON_TYPE, 'application/json; charset=utf-8']) {
      const read = jsonBodyArguments(contentType, Buffer.concat([BOM, Buffer.from('{"amount":7}')]));
      assert.equal(read.unreadable, true, contentType);
      assert.equal(read.values, undefined, contentType);
      assert.match(read.unreadableReason ?? '', /^the body starts with a UTF-8 byte order mark/);
    }
  });

  test('refuses other bodies with a reason', () => {
    const cases: Array<[string | undefined, Buffer, RegExp]> = [
      [undefined, Buffer.from('{"amount":5}'), /^the request has a body but no Content-Type field$/],
      [JSON_TYPE, Buffer.from([0x7b, 0xff, 0x7d]), /^the body is not valid UTF-8$/],
      [JSON_TYPE, Buffer.from([0xfe, 0xff, 0x00, 0x7b]), /^the body is not valid UTF-8$/],
      [JSON_TYPE, Buffer.from('{"amount":'), /^the body is not valid JSON$/],
      [JSON_TYPE, Buffer.from('[1]'), /^the body is JSON but not a JSON object$/],
    ];
    for (const [contentType, body, reason] of cases) {
      const read = jsonBodyArguments(contentType, body);
      assert.equal(read.unreadable, true, String(body));
      assert.match(read.unreadableReason ?? '', reason);
    }
  });

  test('empty body has no arguments under any label', () => {
    assert.deepEqual(jsonBodyArguments('application/json; charset=utf-16', Buffer.alloc(0)), { duplicateNames: [] });
  });

  test('parseMediaType', () => {
    assert.deepEqual(parseMediaType('Application/JSON ; Charset="UT\\F-8" ;; q=1 '), {
      essence: 'application/json',
      parameters: [
        ['charset', 'UTF-8'],
        ['q', '1'],
      ],
    });
    for (const field of ['', 'json', '/json', 'application/', 'application /json', 'application/json x', 'application/json; a=b c', 'application/json; a="b"c']) {
      assert.equal(parseMediaType(field), undefined, JSON.stringify(field));
    }
  });
});

describe('gateway calls with such bodies', () => {
  let server: TestServer;
  let upstream: Upstream;
  let api: AdminApi;
  let world: PolicyWorld;
  let token: string;

  before(async () => {
    server = await startTestServer();
    upstream = await startUpstream();
    api = await adminApi(server);
    world = await createPolicyWorld(api, upstream.url, {
      actions: [
        { name: 'pay', method: 'POST', path_prefix: '/payments', arguments: { amount: 'Long', currency: 'String' } },
        { name: 'note', method: 'POST', path_prefix: '/notes' },
      ],
    });
    token = await delegatedToken(server, world, 'pay note');
  });

  after(async () => {
    await upstream.close();
    await server.stop();
  });

  async function post(path: string, body: string | Buffer, contentType: string): Promise<{ status: number; body: Record<string, unknown>; forwarded: boolean }> {
    const before = upstream.received.length;
    const response = await fetch(`${server.issuer}/gateway/${world.resourceName}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': contentType }, body: typeof body === 'string' ? body : new Uint8Array(body) });
    return { status: response.status, body: (await response.json()) as Record<string, unknown>, forwarded: upstream.received.length > before };
  }

  test('integer amount is forwarded', async () => {
    const sent = await post('/payments', '{"amount":1000,"currency":"EUR"}', JSON_TYPE);
    assert.equal(sent.status, 200);
    assert.equal(sent.forwarded, true);
  });

  for (const amount of ['1e3', '1000.00000000000001', '1000.0']) {
    test(`amount ${amount} is denied`, async () => {
      const sent = await post('/payments', `{"amount":${amount},"currency":"EUR"}`, JSON_TYPE);
      assert.equal(sent.status, 403);
      assert.equal(sent.body.error, 'access_denied');
      assert.match(String(sent.body.error_description), new RegExp(`not ${amount.replace(/\./g, '\\.')}, which has a fraction or exponent`));
      assert.equal(sent.forwarded, false, 'nothing reached the upstream');

      const [entry] = (await readAudit(server.ctx.db, { afterSeq: 0, limit: 10_000 })).slice(-1);
      const decision = entry?.event.reason?.policy_decision as { denied_by?: string; inputs?: { arguments?: Record<string, unknown> } } | undefined;
      assert.equal(entry?.event.event, 'gateway.denied');
      assert.equal(decision?.denied_by, 'argument_type');
      assert.deepEqual(decision?.inputs?.arguments, { currency: 'EUR' }, 'the rejected amount is not recorded as bound');
    });
  }

  for (const contentType of ['application/json; charset=utf-16', 'application/json; charset=iso-8859-1', 'application/json; charset=utf-8; charset=utf-16']) {
    test(`${contentType} is denied`, async () => {
      const sent = await post('/payments', '{"amount":5,"currency":"EUR"}', contentType);
      assert.equal(sent.status, 403);
      assert.equal(sent.body.error, 'access_denied');
      assert.match(String(sent.body.error_description), /charset/, 'the denial names the charset problem');
      assert.equal(sent.forwarded, false, 'nothing reached the upstream');
    });
  }

  test('byte order mark is denied', async () => {
    const sent = await post('/payments', Buffer.concat([BOM, Buffer.from('{"amount":5,"currency":"EUR"}')]), JSON_TYPE);
    assert.equal(sent.status, 403);
    assert.equal(sent.body.error, 'access_denied');
    assert.match(String(sent.body.error_description), /byte order mark/, 'the denial names the byte order mark');
    assert.equal(sent.forwarded, false, 'nothing reached the upstream');
  });

  test('UTF-8 labels are forwarded', async () => {
    for (const contentType of ['application/json; charset=utf-8', 'application/json; charset="UTF-8"']) {
      const sent = await post('/payments', '{"amount":5,"currency":"EUR"}', contentType);
      assert.equal(sent.status, 200, contentType);
    }
  });

  test('action without arguments ignores the label', async () => {
    // No policy reads the body of an action that declares no arguments.
    const sent = await post('/notes', '{"text":"hi"}', 'application/json; charset=utf-16');
    assert.equal(sent.status, 200);
    assert.equal(sent.forwarded, true);
  });
});
