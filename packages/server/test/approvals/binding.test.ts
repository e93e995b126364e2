import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { bindingHash, bindRequest, type ApprovalBinding, type BoundRequest } from '../../src/approvals/binding.ts';
import { MAX_JSON_DEPTH, readRequestArguments } from '../../src/approvals/arguments.ts';

const JSON_TYPE = 'application/json';

function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

const request: BoundRequest = {
  userId: 'usr_alice',
  agentId: 'agent_filing',
  resourceId: 'res_mail',
  resource: 'https://mandate.example/gateway/mail',
  action: 'send',
  method: 'POST',
  path: '/send/mail?to=bob',
  body: Buffer.from('{"subject":"Quarterly numbers","to":"bob@example.test"}'),
  contentType: JSON_TYPE,
};

describe('approval binding hash', () => {
  const base = bindRequest(request);
  const baseHash = bindingHash(base);

  test('binding carries every request field', () => {
    assert.deepEqual(
      { ...base, arguments: undefined },
      { userId: 'usr_alice', agentId: 'agent_filing', resourceId: 'res_mail', audience: 'https://mandate.example/gateway/mail', action: 'send', method: 'POST', path: '/send/mail?to=bob', arguments: undefined },
    );
    assert.deepEqual(base.arguments, { form: 'json', mediaType: 'application/json', sha256: sha256('{"subject":"Quarterly numbers","to":"bob@example.test"}') });
  });

  // Each variant changes one bound field; a hash that ignored the field would equal the base hash.
  const variants: [string, Partial<ApprovalBinding>][] = [
    ['person', { userId: 'usr_mallory' }],
    ['agent', { agentId: 'agent_other' }],
    ['resource', { resourceId: 'res_other' }],
    ['audience', { audience: 'https://mandate.example/gateway/other' }],
    ['action', { action: 'read' }],
    ['method', { method: 'PUT' }],
    ['path', { path: '/send/mail?to=mallory' }],
    ['query only', { path: '/send/mail?to=bob&cc=mallory' }],
    ['arguments digest', { arguments: { ...base.arguments, sha256: sha256('{"to":"mallory@example.test"}') } }],
    ['arguments form', { arguments: { ...base.arguments, form: 'raw' } }],
    ['arguments media type', { arguments: { ...base.arguments, mediaType: 'application/merge-patch+json' } }],
  ];
  for (const [field, change] of variants) {
    test(`hash changes with the ${field}`, () => {
      assert.notEqual(bindingHash({ ...base, ...change }), baseHash);
    });
  }

  test('method case is not significant', () => {
    assert.equal(bindingHash({ ...base, method: 'post' }), baseHash);
  });

  const dropped: (keyof ApprovalBinding)[] = ['userId', 'agentId', 'resourceId', 'audience', 'action', 'method', 'path', 'arguments'];
  for (const field of dropped) {
    test(`hash rejects a missing ${field}`, () => {
      const incomplete = { ...base } as Record<string, unknown>;
      delete incomplete[field];
      assert.throws(() => bindingHash(incomplete as unknown as ApprovalBinding), TypeError);
    });
  }

  test('hash rejects an empty field', () => {
    assert.throws(() => bindingHash({ ...base, audience: '' }), /no audience/);
  });

  test('hash rejects a missing media type', () => {
    const { mediaType: _dropped, ...rest } = base.arguments;
    assert.throws(() => bindingHash({ ...base, arguments: rest as ApprovalBinding['arguments'] }), /no arguments_media_type/);
  });

  test('hash accepts an empty media type', () => {
    const withoutType = bindRequest({ ...request, contentType: undefined });
    assert.deepEqual(withoutType.arguments, { form: 'raw', mediaType: '', sha256: sha256(request.body) });
    assert.notEqual(bindingHash(withoutType), baseHash);
  });

  test('hash covers the canonical fields exactly', () => {
    // RFC 8785 §3.2.3: members sorted by their UTF-16 code units, no whitespace.
    const canonical = `{"action":"send","agent":"agent_filing","arguments_form":"json","arguments_media_type":"application/json","arguments_sha256":"${base.arguments.sha256}","audience":"https://mandate.example/gateway/mail","method":"POST","path":"/send/mail?to=bob","resource":"res_mail","user":"usr_alice"}`;
    assert.equal(baseHash, sha256(canonical));
  });
});

describe('request arguments', () => {
  const json = (text: string, contentType = JSON_TYPE) => readRequestArguments(Buffer.from(text), contentType);
  const original = json('{"subject":"Quarterly numbers","to":"bob@example.test","amount":1.5}');

  test('JSON is bound by its RFC 8785 form', () => {
    assert.deepEqual(original, { form: 'json', mediaType: 'application/json', sha256: sha256('{"amount":1.5,"subject":"Quarterly numbers","to":"bob@example.test"}') });
  });

  const sameValues: [string, string, string?][] = [
    ['whitespace', '{ "subject" : "Quarterly numbers",\n  "to": "bob@example.test", "amount": 1.5 }'],
    ['member order', '{"to":"bob@example.test","amount":1.5,"subject":"Quarterly numbers"}'],
    ['string escapes', '{"subject":"Quarterly numbers","to":"bob\\u0040example.test","amount":1.5}'],
    ['number spelling', '{"subject":"Quarterly numbers","to":"bob@example.test","amount":15e-1}'],
    ['trailing zero', '{"subject":"Quarterly numbers","to":"bob@example.test","amount":1.50}'],
    ['media type parameters', '{"subject":"Quarterly numbers","to":"bob@example.test","amount":1.5}', 'Application/JSON; charset=utf-8'],
  ];
  for (const [name, text, contentType] of sameValues) {
    test(`${name} keeps the arguments`, () => {
      assert.deepEqual(json(text, contentType), original);
    });
  }

  const changedValues: [string, string][] = [
    ['recipient', '{"subject":"Quarterly numbers","to":"eve@example.test","amount":1.5}'],
    ['number', '{"subject":"Quarterly numbers","to":"bob@example.test","amount":1.6}'],
    ['type', '{"subject":"Quarterly numbers","to":"bob@example.test","amount":"1.5"}'],
    ['extra member', '{"subject":"Quarterly numbers","to":"bob@example.test","amount":1.5,"cc":null}'],
    ['nested array', '{"subject":"Quarterly numbers","to":["bob@example.test"],"amount":1.5}'],
  ];
  for (const [name, text] of changedValues) {
    test(`changed ${name} changes the arguments`, () => {
      const changed = json(text);
      assert.equal(changed.form, 'json');
      assert.notEqual(changed.sha256, original.sha256);
    });
  }

  test('+json media type is JSON of its own type', () => {
    const patch = json('{"subject":"Quarterly numbers","to":"bob@example.test","amount":1.5}', 'application/merge-patch+json');
    assert.deepEqual(patch, { ...original, mediaType: 'application/merge-patch+json' });
  });

  // Bodies whose values another parser could read differently fall back to their exact bytes.
  const rawBodies: [string, string, string | undefined][] = [
    ['duplicate member', '{"to":"bob@example.test","to":"eve@example.test"}', JSON_TYPE],
    ['duplicate escaped member', '{"to":"bob@example.test","t\\u006f":"eve@example.test"}', JSON_TYPE],
    ['integer beyond double precision', '{"amount":9007199254740993}', JSON_TYPE],
    ['decimal beyond double precision', '{"amount":0.10000000000000001}', JSON_TYPE],
    ['negative zero', '{"amount":-0}', JSON_TYPE],
    ['overflowing number', '{"amount":1e400}', JSON_TYPE],
    ['text/plain', '{"to":"bob@example.test"}', 'text/plain'],
    ['no content type', '{"to":"bob@example.test"}', undefined],
    ['invalid JSON', '{"to":', JSON_TYPE],
    ['byte order mark', '\ufeff{"to":"bob@example.test"}', JSON_TYPE],
    ['too deep', `${'['.repeat(MAX_JSON_DEPTH + 1)}${']'.repeat(MAX_JSON_DEPTH + 1)}`, JSON_TYPE],
  ];
  for (const [name, text, contentType] of rawBodies) {
    test(`${name} is bound by its bytes`, () => {
      assert.deepEqual(readRequestArguments(Buffer.from(text), contentType), { form: 'raw', mediaType: contentType ?? '', sha256: sha256(Buffer.from(text)) });
    });
  }

  test('nesting at the limit stays JSON', () => {
    const text = `${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)}`;
    assert.equal(readRequestArguments(Buffer.from(text), JSON_TYPE).form, 'json');
  });

  test('invalid UTF-8 is bound by its bytes', () => {
    const body = Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]);
    assert.deepEqual(readRequestArguments(body, JSON_TYPE), { form: 'raw', mediaType: JSON_TYPE, sha256: sha256(body) });
  });

  test('raw bodies differ by any byte', () => {
    assert.notEqual(readRequestArguments(Buffer.from('to=bob'), 'text/plain').sha256, readRequestArguments(Buffer.from('to=bob '), 'text/plain').sha256);
  });

  test('raw media type is kept exactly', () => {
    assert.equal(readRequestArguments(Buffer.from('caf\xe9'), ' text/plain; charset=ISO-8859-1 ').mediaType, 'text/plain; charset=ISO-8859-1');
  });

  test('__proto__ member is an ordinary member', () => {
    assert.deepEqual(json('{"__proto__":{"admin":true}}'), { form: 'json', mediaType: JSON_TYPE, sha256: sha256('{"__proto__":{"admin":true}}') });
  });
});

describe('approval binding of JSON charsets', () => {
  const body = Buffer.from('{"to":"bob@example.test"}');

  test('UTF-8 labels bind the canonical arguments', () => {
    for (const contentType of ['application/json', 'application/json; charset=utf-8', 'application/json; charset="UTF-8"']) {
      assert.equal(readRequestArguments(body, contentType).form, 'json', contentType);
    }
  });

  test('other charsets bind the bytes and the whole type', () => {
    for (const contentType of ['application/json; charset=utf-16', "application/json; charset*=utf-8''utf-16", 'application/json; charset=utf-8; charset=utf-16']) {
      assert.deepEqual(readRequestArguments(body, contentType), { form: 'raw', mediaType: contentType, sha256: sha256(body) }, contentType);
    }
    const utf16 = bindingHash(bindRequest({ ...request, body, contentType: 'application/json; charset=utf-16' }));
    const utf8 = bindingHash(bindRequest({ ...request, body, contentType: 'application/json; charset=utf-8' }));
    assert.notEqual(utf16, utf8, 'an approval for one label does not cover the other');
  });
});
