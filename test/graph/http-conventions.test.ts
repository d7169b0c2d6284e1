import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Type } from 'typebox';
import { primitiveBody } from '../../src/graph/http.js';
import { GraphBody, IdParam } from '../../src/graph/schemas.js';
import type { OpenEnrollModule } from '../../src/server/module.js';
import { createTestApp, type TestApp } from '../helpers/app.js';

/** Graph conventions over HTTP, proved on the roleScopeTags resource. */

const TAGS = '/beta/deviceManagement/roleScopeTags';
const GRAPH_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/;

async function counts(t: TestApp, tenantId = t.tenantId) {
  const tags = await t.store.db
    .selectFrom('role_scope_tags')
    .select(sql<number>`count(*)`.as('n'))
    .where('tenant_id', '=', tenantId)
    .executeTakeFirstOrThrow();
  const audit = await t.store.db
    .selectFrom('audit_events')
    .select(sql<number>`count(*)`.as('n'))
    .where('tenant_id', '=', tenantId)
    .executeTakeFirstOrThrow();
  return { tags: Number(tags.n), audit: Number(audit.n) };
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Asserts the Graph error envelope and that it agrees with the response headers. */
function expectEnvelope(res: { statusCode: number; headers: Record<string, unknown>; json(): Json; body: string }, status: number, code: string): Json {
  expect(res.statusCode, res.body).toBe(status);
  expect(String(res.headers['content-type'])).toMatch(/^application\/json/);
  const body = res.json();
  expect(Object.keys(body)).toEqual(['error']);
  const err = body.error;
  expect(err.code).toBe(code);
  expect(typeof err.message).toBe('string');
  expect(err.message.length).toBeGreaterThan(0);
  expect(err.innerError.date).toMatch(GRAPH_DATE);
  expect(err.innerError['request-id']).toBe(res.headers['request-id']);
  expect(typeof err.innerError['client-request-id']).toBe('string');
  return err;
}

describe('collections, paging and query options over HTTP', () => {
  let t: TestApp;
  const created: { id: string; displayName: string }[] = [];

  beforeAll(async () => {
    t = await createTestApp();
    for (let i = 0; i < 23; i++) {
      const res = await t.request({
        method: 'POST',
        url: TAGS,
        payload: { displayName: `Tag ${String(i).padStart(2, '0')}`, ...(i % 3 === 0 ? { description: `d${i}` } : {}) },
      });
      expect(res.statusCode, res.body).toBe(201);
      created.push(res.json());
    }
  });
  afterAll(async () => t.close());

  it('wraps collections in {"value": [...]} with @odata.context', async () => {
    const res = await t.request({ method: 'GET', url: TAGS });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body['@odata.context']).toBe('http://openenroll.test/beta/$metadata#deviceManagement/roleScopeTags');
    expect(body).not.toHaveProperty('@odata.count');
    expect(body).not.toHaveProperty('@odata.nextLink');
    expect(body.value).toHaveLength(24);
    expect(body.value[0]).toEqual({ '@odata.type': '#microsoft.graph.roleScopeTag', id: '0', displayName: 'Default', description: expect.any(String), isBuiltIn: true });
  });

  it('gives entities @odata.context and @odata.type', async () => {
    const res = await t.request({ method: 'GET', url: `${TAGS}/${created[0]!.id}` });
    expect(res.json()).toMatchObject({
      '@odata.context': 'http://openenroll.test/beta/$metadata#deviceManagement/roleScopeTags/$entity',
      '@odata.type': '#microsoft.graph.roleScopeTag',
      id: created[0]!.id,
      displayName: 'Tag 00',
    });
  });

  it('pages with $top through @odata.nextLink until it is absent, every item exactly once', async () => {
    for (const top of [1, 5, 7, 24, 25]) {
      const seen: string[] = [];
      let url: string | undefined = `${TAGS}?$top=${top}&$filter=${encodeURIComponent("startswith(displayName,'tag ') or displayName eq 'Default'")}`;
      let pages = 0;
      while (url) {
        const res = await t.request({ method: 'GET', url });
        expect(res.statusCode, res.body).toBe(200);
        const body = res.json();
        expect(body.value.length).toBeLessThanOrEqual(top);
        seen.push(...body.value.map((v: Json) => v.id));
        const next: string | undefined = body['@odata.nextLink'];
        if (next) {
          expect(next.startsWith('http://openenroll.test/beta/deviceManagement/roleScopeTags?')).toBe(true);
          expect(next).toContain('$skiptoken=');
          expect(next).toContain(`$top=${top}`); // other options stay in the link
          expect(next).toContain('$filter=');
          url = next.slice('http://openenroll.test'.length);
        } else url = undefined;
        if (++pages > 30) throw new Error('nextLink never ended');
      }
      expect(pages).toBe(Math.ceil(24 / top));
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen.sort()).toEqual(['0', ...created.map((c) => c.id)].sort());
    }
  });

  it('paging from a $skip continues with $skiptoken links, each item once', async () => {
    const all = (await t.request({ method: 'GET', url: `${TAGS}?$orderby=displayName` })).json().value.map((v: Json) => v.id);
    const seen: string[] = [];
    let url: string | undefined = `${TAGS}?$orderby=displayName&$skip=3&$top=5`;
    while (url) {
      const body: Json = (await t.request({ method: 'GET', url })).json();
      seen.push(...body.value.map((v: Json) => v.id));
      const next: string | undefined = body['@odata.nextLink'];
      if (next) expect(next).not.toContain('$skip=');
      url = next?.slice('http://openenroll.test'.length);
    }
    expect(seen).toEqual(all.slice(3));
  });

  it('$top=0 returns no items and no nextLink (it would never advance)', async () => {
    const body = (await t.request({ method: 'GET', url: `${TAGS}?$top=0&$count=true` })).json();
    expect(body.value).toEqual([]);
    expect(body['@odata.count']).toBe(24);
    expect(body).not.toHaveProperty('@odata.nextLink');
  });

  it('$skip pages too, and $top=999 is allowed while 1000 is refused', async () => {
    const body = (await t.request({ method: 'GET', url: `${TAGS}?$orderby=displayName&$skip=20&$top=999` })).json();
    expect(body.value.map((v: Json) => v.displayName)).toEqual(['Tag 19', 'Tag 20', 'Tag 21', 'Tag 22']);
    const err = expectEnvelope(await t.request({ method: 'GET', url: `${TAGS}?$top=1000` }), 400, 'BadRequest');
    expect(err.message).toContain('$top');
  });

  it('$count=true adds @odata.count honouring $filter; the $count segment answers text', async () => {
    const body = (await t.request({ method: 'GET', url: `${TAGS}?$count=true&$top=2&$filter=${encodeURIComponent("startswith(displayName,'Tag 1')")}` })).json();
    expect(body['@odata.count']).toBe(10);
    expect(body.value).toHaveLength(2);
    const all = (await t.request({ method: 'GET', url: `${TAGS}?$count=true` })).json();
    expect(all['@odata.count']).toBe(24);
    const none = (await t.request({ method: 'GET', url: `${TAGS}?$count=false` })).json();
    expect(none).not.toHaveProperty('@odata.count');

    const c = await t.request({ method: 'GET', url: `${TAGS}/$count` });
    expect(c.statusCode).toBe(200);
    expect(c.headers['content-type']).toMatch(/^text\/plain/);
    expect(c.body).toBe('24');
    const cf = await t.request({ method: 'GET', url: `${TAGS}/$count?$filter=${encodeURIComponent('isBuiltIn eq true')}` });
    expect(cf.body).toBe('1');
    expectEnvelope(await t.request({ method: 'GET', url: `${TAGS}/$count?$filter=${encodeURIComponent('nope eq 1')}` }), 400, 'BadRequest');
  });

  it('$select narrows each item and names the properties in @odata.context', async () => {
    const body = (await t.request({ method: 'GET', url: `${TAGS}?$select=id,displayName&$top=3` })).json();
    expect(body['@odata.context']).toBe('http://openenroll.test/beta/$metadata#deviceManagement/roleScopeTags(id,displayName)');
    for (const v of body.value) expect(Object.keys(v).sort()).toEqual(['@odata.type', 'displayName', 'id']);
    const star = (await t.request({ method: 'GET', url: `${TAGS}?$select=*&$top=1` })).json();
    expect(star['@odata.context']).toBe('http://openenroll.test/beta/$metadata#deviceManagement/roleScopeTags');
    expect(Object.keys(star.value[0])).toContain('description');
  });

  it('$orderby sorts, descending too, with nulls first ascending', async () => {
    const desc = (await t.request({ method: 'GET', url: `${TAGS}?$orderby=${encodeURIComponent('displayName desc')}&$top=3` })).json();
    expect(desc.value.map((v: Json) => v.displayName)).toEqual(['Tag 22', 'Tag 21', 'Tag 20']);
    const asc = (await t.request({ method: 'GET', url: `${TAGS}?$orderby=description,displayName&$select=displayName,description` })).json();
    const descriptions = asc.value.map((v: Json) => v.description);
    const firstNonNull = descriptions.findIndex((d: unknown) => d !== null);
    expect(descriptions.slice(0, firstNonNull).every((d: unknown) => d === null)).toBe(true);
    expect(descriptions.slice(firstNonNull).every((d: unknown) => d !== null)).toBe(true);
  });

  it('$filter with eq, ne, lt, gt, startswith, and, or, not', async () => {
    const q = async (f: string) =>
      (await t.request({ method: 'GET', url: `${TAGS}?$filter=${encodeURIComponent(f)}&$top=999` })).json().value.map((v: Json) => v.displayName as string);
    expect(await q("displayName eq 'tag 05'")).toEqual(['Tag 05']); // displayName ignores case like Intune
    expect(await q("displayName ne 'Default' and isBuiltIn eq false")).toHaveLength(23);
    expect(await q("displayName gt 'Tag 20' or displayName lt 'Tag 01'")).toEqual(['Default', 'Tag 00', 'Tag 21', 'Tag 22']);
    expect(await q("startswith(displayName,'Tag 2') and not (displayName eq 'Tag 21')")).toEqual(['Tag 20', 'Tag 22']);
    expect(await q("'Tag 02' eq displayName")).toEqual(['Tag 02']);
  });

  it('refuses unsupported options and expressions clearly', async () => {
    const cases: [string, string][] = [
      ['$expand=foo', '$expand'],
      ['$search=foo', '$search'],
      ['$TOP=5', '$TOP'],
      ['$bogus=1', '$bogus'],
      ['$top=1&$top=2', '$top'],
      ['$top=-1', '$top'],
      ['$skip=1.5', '$skip'],
      ['$skiptoken=garbage', '$skiptoken'],
      ['$filter=' + encodeURIComponent("nope eq 'x'"), 'nope'],
      ['$filter=' + encodeURIComponent("endswith(displayName,'x') eq true"), '$filter'],
      ['$filter=' + encodeURIComponent("substringof('x',displayName)"), 'substringof'],
      ['$filter=' + encodeURIComponent('isBuiltIn gt true'), 'isBuiltIn'],
      ['$filter=' + encodeURIComponent("isBuiltIn eq 'yes'"), 'isBuiltIn'],
      ['$select=nope', 'nope'],
      ['$orderby=nope', 'nope'],
      ['$count=yes', '$count'],
    ];
    for (const [qs, named] of cases) {
      const err = expectEnvelope(await t.request({ method: 'GET', url: `${TAGS}?${qs}` }), 400, 'BadRequest');
      expect(err.message, qs).toContain(named);
    }
  });

  it("accepts keys as /x/{id}, /x('{id}') and /x(%27{id}%27)", async () => {
    const id = created[4]!.id;
    for (const url of [`${TAGS}/${id}`, `${TAGS}('${id}')`, `${TAGS}(%27${id}%27)`, `${TAGS}(${id})`]) {
      const res = await t.request({ method: 'GET', url });
      expect(res.statusCode, url).toBe(200);
      expect(res.json().id).toBe(id);
    }
    const patched = await t.request({ method: 'PATCH', url: `${TAGS}('${id}')`, payload: { description: 'via parens' } });
    expect(patched.statusCode).toBe(200);
    expect(patched.json().description).toBe('via parens');
    expectEnvelope(await t.request({ method: 'GET', url: `${TAGS}('does-not-exist')` }), 404, 'ResourceNotFound');
    // ('') names no entity; it must not turn into the collection
    expectEnvelope(await t.request({ method: 'GET', url: `${TAGS}('')` }), 404, 'ResourceNotFound');
  });

  it('serves roleScopeTags under /beta only (not in the spec §15 v1.0 list)', async () => {
    expectEnvelope(await t.request({ method: 'GET', url: '/v1.0/deviceManagement/roleScopeTags' }), 404, 'ResourceNotFound');
  });
});

describe('error envelope and refused bodies', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ env: { OPENENROLL_BODY_LIMIT_BYTES: '2048' } });
  });
  afterAll(async () => t.close());

  it('has code, message and innerError{date, request-id, client-request-id}', async () => {
    const res = await t.request({ method: 'GET', url: `${TAGS}/999`, headers: { 'client-request-id': 'my-client-id-1' } });
    const err = expectEnvelope(res, 404, 'ResourceNotFound');
    expect(err.innerError['client-request-id']).toBe('my-client-id-1');
    expect(res.headers['client-request-id']).toBe('my-client-id-1');
    expect(res.headers['request-id']).toMatch(/^[0-9a-f-]{36}$/);
    // without a client-request-id the request id stands in, as Graph does
    const res2 = await t.request({ method: 'GET', url: `${TAGS}/999` });
    expect(expectEnvelope(res2, 404, 'ResourceNotFound').innerError['client-request-id']).toBe(res2.headers['request-id']);
  });

  it('answers an unknown route with the 404 envelope', async () => {
    const err = expectEnvelope(await t.request({ method: 'GET', url: '/beta/deviceManagement/noSuchThing', headers: { 'client-request-id': 'c2' } }), 404, 'ResourceNotFound');
    expect(err.message).toContain('noSuchThing');
    expect(err.innerError['client-request-id']).toBe('c2');
  });

  it('answers malformed URLs and over-long segments with the envelope', async () => {
    const bad = await t.request({ method: 'GET', url: `${TAGS}/%E0%A4%A`, headers: { 'client-request-id': 'c3' } });
    expect(expectEnvelope(bad, 400, 'BadRequest').innerError['client-request-id']).toBe('c3');
    expect(bad.headers['client-request-id']).toBe('c3');
    expectEnvelope(await t.request({ method: 'GET', url: `${TAGS}/${'x'.repeat(501)}` }), 414, 'RequestUriTooLong');
    expect(expectEnvelope(await t.request({ method: 'GET', url: `${TAGS}/${'x'.repeat(500)}` }), 400, 'BadRequest').target).toBe('id');
    // ids are limited to 200 characters by the shared IdParam schema
    expect(expectEnvelope(await t.request({ method: 'GET', url: `${TAGS}/${'x'.repeat(201)}` }), 400, 'BadRequest').message).toContain("'id'");
    expectEnvelope(await t.request({ method: 'GET', url: `${TAGS}/${'x'.repeat(200)}` }), 404, 'ResourceNotFound');
  });

  it('takes an empty body labelled application/json where none is needed (DELETE)', async () => {
    const created = await t.request({ method: 'POST', url: TAGS, payload: { displayName: 'To delete' } });
    const res = await t.request({ method: 'DELETE', url: `${TAGS}('${created.json().id}')`, payload: '', headers: { 'content-type': 'application/json' } });
    expect(res.statusCode, res.body).toBe(204);
  });

  it('401 without credentials and 403 without the permission', async () => {
    const e401 = await t.request({ method: 'GET', url: TAGS, key: null });
    expectEnvelope(e401, 401, 'Unauthorized');
    expect(e401.headers['www-authenticate']).toMatch(/^Bearer/);
    expectEnvelope(await t.request({ method: 'GET', url: TAGS, key: 'oe_not_a_real_key' }), 401, 'Unauthorized');
    const reader = await t.createKey('readOnlyOperator');
    expect((await t.request({ method: 'GET', url: TAGS, key: reader })).statusCode).toBe(200);
    const before = await counts(t);
    const err = expectEnvelope(await t.request({ method: 'POST', url: TAGS, key: reader, payload: { displayName: 'x' } }), 403, 'Forbidden');
    expect(err.message).toContain('rbac.write');
    expect(await counts(t)).toEqual(before);
  });

  it('409 for conflicting state', async () => {
    const first = await t.request({ method: 'POST', url: TAGS, payload: { displayName: 'Dup' } });
    expect(first.statusCode).toBe(201);
    const before = await counts(t);
    const err = expectEnvelope(await t.request({ method: 'POST', url: TAGS, payload: { displayName: 'Dup' } }), 409, 'Conflict');
    expect(err.message).toContain('Dup');
    expectEnvelope(await t.request({ method: 'DELETE', url: `${TAGS}/0` }), 409, 'Conflict');
    expect(await counts(t)).toEqual(before);
  });

  const refusals: { name: string; payload: string; contentType?: string; status: number; code: string; names?: string }[] = [
    { name: 'malformed JSON', payload: '{"displayName": "x",', status: 400, code: 'BadRequest' },
    { name: 'JSON null', payload: 'null', status: 400, code: 'BadRequest' },
    { name: 'JSON array', payload: '[{"displayName":"x"}]', status: 400, code: 'BadRequest' },
    { name: 'JSON string', payload: '"x"', status: 400, code: 'BadRequest' },
    { name: 'empty body', payload: '', status: 400, code: 'BadRequest' },
    { name: 'wrong type', payload: '{"displayName": 42}', status: 400, code: 'BadRequest', names: 'displayName' },
    { name: 'wrong type (boolean for nullable string)', payload: '{"displayName":"ok","description": true}', status: 400, code: 'BadRequest', names: 'description' },
    { name: 'unknown property', payload: '{"displayName":"ok","colour":"red"}', status: 400, code: 'BadRequest', names: 'colour' },
    { name: 'missing required property', payload: '{"description":"no name"}', status: 400, code: 'BadRequest', names: 'displayName' },
    { name: 'too long a value', payload: JSON.stringify({ displayName: 'x'.repeat(129) }), status: 400, code: 'BadRequest', names: 'displayName' },
    { name: 'prototype pollution', payload: '{"displayName":"ok","__proto__":{"x":1}}', status: 400, code: 'BadRequest' },
    { name: 'body over the limit', payload: JSON.stringify({ displayName: 'ok', description: 'y'.repeat(2100) }), status: 413, code: 'RequestEntityTooLarge' },
    { name: 'unsupported media type', payload: 'displayName=x', contentType: 'application/x-www-form-urlencoded', status: 415, code: 'UnsupportedMediaType' },
    { name: 'text/plain', payload: '{"displayName":"x"}', contentType: 'text/plain', status: 415, code: 'UnsupportedMediaType' },
  ];
  for (const r of refusals) {
    it(`refuses ${r.name} with ${r.status} and writes nothing`, async () => {
      const before = await counts(t);
      for (const [method, url] of [
        ['POST', TAGS],
        ['PATCH', `${TAGS}/0`],
      ] as const) {
        if (method === 'PATCH' && r.name.startsWith('missing')) continue; // PATCH needs no property
        const res = await t.request({ method, url, payload: r.payload, headers: { 'content-type': r.contentType ?? 'application/json' } });
        const err = expectEnvelope(res, r.status, r.code);
        if (r.names) {
          expect(err.message).toContain(`'${r.names}'`);
          expect(err.target).toBe(r.names);
        }
        expect(res.body).not.toMatch(/at .*\.(ts|js):\d+/); // no stack trace
      }
      expect(await counts(t)).toEqual(before);
    });
  }

  it('413 starts one byte over the configured limit', async () => {
    const body = (size: number, name: string) => {
      const json = JSON.stringify({ displayName: name });
      return json.slice(0, -1) + ' '.repeat(size - json.length) + '}';
    };
    const before = await counts(t);
    const over = await t.request({ method: 'POST', url: TAGS, payload: body(2049, 'Over'), headers: { 'content-type': 'application/json' } });
    const err = expectEnvelope(over, 413, 'RequestEntityTooLarge');
    expect(err.message).toContain('2048');
    expect(await counts(t)).toEqual(before);
    const at = await t.request({ method: 'POST', url: TAGS, payload: body(2048, 'At the limit'), headers: { 'content-type': 'application/json' } });
    expect(at.statusCode, at.body).toBe(201);
    expect((await counts(t)).tags).toBe(before.tags + 1);
  });

  it('accepts @odata.type in bodies, as clients copy it there', async () => {
    const res = await t.request({ method: 'POST', url: TAGS, payload: { '@odata.type': '#microsoft.graph.roleScopeTag', displayName: 'Typed' } });
    expect(res.statusCode, res.body).toBe(201);
  });
});

describe('rate limiting', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ env: { OPENENROLL_RATE_LIMIT_MAX: '3', OPENENROLL_RATE_LIMIT_WINDOW_MS: '60000' } });
  });
  afterAll(async () => t.close());

  it('answers 429 with Retry-After after the limit, not before', async () => {
    for (let i = 0; i < 3; i++) expect((await t.request({ method: 'GET', url: TAGS })).statusCode).toBe(200);
    const res = await t.request({ method: 'GET', url: TAGS, headers: { 'client-request-id': 'rl' } });
    const err = expectEnvelope(res, 429, 'TooManyRequests');
    expect(err.innerError['client-request-id']).toBe('rl');
    const retryAfter = Number(res.headers['retry-after']);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // another principal has its own budget
    const other = await t.createKey('administrator');
    expect((await t.request({ method: 'GET', url: TAGS, key: other })).statusCode).toBe(200);
  });
});

describe('action and function URL forms, and /v1.0', () => {
  let t: TestApp;
  const probe: OpenEnrollModule = {
    name: 'probe',
    adminRoutes: [
      {
        versions: ['beta', 'v1.0'],
        plugin: async (app) => {
          app.post(
            '/probe/things/:id/doThing',
            { config: { permission: 'rbac.write' }, schema: { params: IdParam, body: GraphBody({ note: Type.Optional(Type.String()) }) } },
            async (req) => ({ id: (req.params as { id: string }).id, body: req.body }),
          );
          app.get('/probe/things/:id/getThing', { config: { permission: 'rbac.read' }, schema: { params: IdParam } }, async (req) =>
            primitiveBody(req, 'Edm.String', JSON.stringify({ id: (req.params as { id: string }).id, query: req.query })),
          );
        },
      },
    ],
  };
  beforeAll(async () => {
    t = await createTestApp({ extraModules: () => [probe] });
  });
  afterAll(async () => t.close());

  it('accepts bare and namespace-qualified action names, with either key form', async () => {
    for (const url of [
      '/beta/probe/things/a%40b/doThing',
      '/beta/probe/things/a%40b/microsoft.graph.doThing',
      "/beta/probe/things('a%40b')/microsoft.graph.doThing",
      "/beta/probe/things('a@b')/doThing",
    ]) {
      const res = await t.request({ method: 'POST', url, payload: { note: 'n' } });
      expect(res.statusCode, url).toBe(200);
      expect(res.json(), url).toEqual({ id: 'a@b', body: { note: 'n' } });
    }
  });

  it('accepts functions with and without empty parentheses, and inline parameters', async () => {
    for (const url of ['/beta/probe/things/1/getThing', '/beta/probe/things/1/getThing()', '/beta/probe/things(1)/microsoft.graph.getThing()']) {
      const res = await t.request({ method: 'GET', url });
      expect(res.statusCode, url).toBe(200);
      expect(res.json()).toEqual({ '@odata.context': 'http://openenroll.test/beta/$metadata#Edm.String', value: JSON.stringify({ id: '1', query: {} }) });
    }
    const res = await t.request({ method: 'GET', url: "/beta/probe/things('1')/getThing(enrollmentType='ios',note='a b')" });
    expect(JSON.parse(res.json().value)).toEqual({ id: '1', query: { enrollmentType: 'ios', note: 'a b' } });
  });

  it('builds @odata.context under the version the client called', async () => {
    const res = await t.request({ method: 'GET', url: '/v1.0/probe/things/1/getThing()' });
    expect(res.statusCode).toBe(200);
    expect(res.json()['@odata.context']).toBe('http://openenroll.test/v1.0/$metadata#Edm.String');
  });
});

describe('unexpected failures', () => {
  let t: TestApp;
  const boom: OpenEnrollModule = {
    name: 'boom',
    adminRoutes: [
      {
        versions: ['beta'],
        plugin: async (app) => {
          app.get('/boom', { config: { permission: 'rbac.read' } }, async () => {
            throw new Error('password=hunter2 connection postgres://admin:s3cret@db');
          });
        },
      },
    ],
  };
  beforeAll(async () => {
    t = await createTestApp({ extraModules: () => [boom] });
  });
  afterAll(async () => t.close());

  it('turns an unexpected error into a generic 500 InternalError without the message or stack', async () => {
    const res = await t.request({ method: 'GET', url: '/beta/boom', headers: { 'client-request-id': 'c500' } });
    const err = expectEnvelope(res, 500, 'InternalError');
    expect(err.message).toBe('An internal error occurred. Use the request-id to find it in the server log.');
    expect(err.innerError['client-request-id']).toBe('c500');
    expect(res.body).not.toContain('hunter2');
    expect(res.body).not.toContain('s3cret');
    expect(res.body).not.toMatch(/\.(ts|js):\d+/);
    expect(Object.keys(err).sort()).toEqual(['code', 'innerError', 'message']);
  });

  it('answers 503 with Retry-After when the store is unavailable, and /readyz says so', async () => {
    expect((await t.request({ method: 'GET', url: '/readyz', key: null })).statusCode).toBe(200);
    await t.store.close();
    const res = await t.request({ method: 'GET', url: TAGS });
    expectEnvelope(res, 503, 'ServiceUnavailable');
    expect(res.headers['retry-after']).toBe('5');
    const ready = await t.request({ method: 'GET', url: '/readyz', key: null });
    expect(ready.statusCode).toBe(503);
    expect(ready.headers['retry-after']).toBe('5');
    expect((await t.request({ method: 'GET', url: '/healthz', key: null })).statusCode).toBe(200);
  });
});

describe('OpenAPI document and UI', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => t.close());

  it('serves an OpenAPI 3.1 document generated from the route schemas', async () => {
    const res = await t.request({ method: 'GET', url: '/openapi.json', key: null });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toMatch(/^3\.1\./);
    expect(doc.info.title).toBeTruthy();
    const collection = doc.paths['/beta/deviceManagement/roleScopeTags'];
    const item = doc.paths['/beta/deviceManagement/roleScopeTags/{id}'];
    expect(collection).toBeDefined();
    expect(item).toBeDefined();
    expect(doc.paths['/beta/deviceManagement/roleScopeTags/$count']).toBeDefined();
    expect(Object.keys(collection).sort()).toEqual(['get', 'post']);
    expect(Object.keys(item).sort()).toEqual(['delete', 'get', 'patch']);
    const create = collection.post.requestBody.content['application/json'].schema;
    expect(create.type).toBe('object');
    expect(create.additionalProperties).toBe(false);
    expect(create.required).toEqual(['displayName']);
    expect(create.properties.displayName).toMatchObject({ type: 'string', minLength: 1, maxLength: 128 });
    expect(create.properties).toHaveProperty('@odata.type');
    const patch = item.patch.requestBody.content['application/json'].schema;
    expect(patch.additionalProperties).toBe(false);
    expect(item.get.parameters).toEqual(expect.arrayContaining([expect.objectContaining({ in: 'path', name: 'id', required: true })]));
    const queryNames = collection.get.parameters.filter((p: Json) => p.in === 'query').map((p: Json) => p.name);
    expect(queryNames).toEqual(expect.arrayContaining(['$top', '$skip', '$skiptoken', '$filter', '$select', '$orderby', '$count']));
    // operational and document routes are hidden
    expect(doc.paths['/openapi.json']).toBeUndefined();
    expect(doc.paths['/readyz']).toBeUndefined();
    expect(JSON.stringify(doc)).not.toContain('~kind');
  });

  it('serves the browsable UI at /docs', async () => {
    let res = await t.request({ method: 'GET', url: '/docs', key: null });
    if (res.statusCode >= 300 && res.statusCode < 400) {
      const location = String(res.headers.location);
      res = await t.request({ method: 'GET', url: location.startsWith('/') ? location : `/docs/${location.replace(/^\.\//, '')}`, key: null });
    }
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/html/);
    expect(res.body).toMatch(/swagger/i);
  });
});
