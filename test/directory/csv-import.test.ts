import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CSV_LIMITS } from '../../src/directory/csv-users.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { TEMPLATE_HEADER } from './helpers.js';

const PASSWORD = 'Bulk-Passw0rd';

describe('CSV user import', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => t.close());

  const importCsv = (csv: string, opts: { version?: 'beta' | 'v1.0'; type?: string; key?: string } = {}) =>
    t.request({
      method: 'POST',
      url: `/${opts.version ?? 'beta'}/users/importCsv`,
      headers: { 'content-type': opts.type ?? 'text/csv' },
      payload: csv,
      ...(opts.key ? { key: opts.key } : {}),
    });

  it("imports Entra's template with one result per row; bad rows fail alone", async () => {
    expect((await t.request({ method: 'POST', url: '/beta/users', payload: { userPrincipalName: 'existing@contoso.com', displayName: 'Existing' } })).statusCode).toBe(201);
    const csv = [
      'version:v1.0,,,,,,,,,,,,,,,,',
      TEMPLATE_HEADER,
      `Chris Green,chris@contoso.com,${PASSWORD},No,Chris,Green,Engineer,IT,US,,,,,,,,`,
      `Blocked,blocked@contoso.com,${PASSWORD},Yes,,,,,,,,,,,,,`,
      `Bad,not-a-upn,${PASSWORD},No,,,,,,,,,,,,,`,
      `Chris Again,CHRIS@contoso.com,${PASSWORD},No,,,,,,,,,,,,,`,
      `Existing,Existing@Contoso.com,${PASSWORD},No,,,,,,,,,,,,,`,
      'Weak,weak@contoso.com,password,No,,,,,,,,,,,,,',
    ].join('\r\n');
    const res = await importCsv(csv);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body['@odata.context']).toBe('http://openenroll.test/beta/$metadata#Collection(microsoft.graph.openEnrollUserImportResult)');
    const chrisId = body.value[0].id as string;
    const blockedId = body.value[1].id as string;
    expect(body.value).toEqual([
      { row: 3, userPrincipalName: 'chris@contoso.com', status: 'created', id: expect.stringMatching(/^[0-9a-f-]{36}$/), error: null },
      { row: 4, userPrincipalName: 'blocked@contoso.com', status: 'created', id: expect.any(String), error: null },
      {
        row: 5,
        userPrincipalName: 'not-a-upn',
        status: 'failed',
        id: null,
        error: "Column 'User name [userPrincipalName] Required': must have the form alias@domain, with exactly one '@'.",
      },
      { row: 6, userPrincipalName: 'CHRIS@contoso.com', status: 'failed', id: null, error: "userPrincipalName 'CHRIS@contoso.com' is already used on row 3 of this file." },
      {
        row: 7,
        userPrincipalName: 'Existing@Contoso.com',
        status: 'failed',
        id: null,
        error: "Another object with the same value for property userPrincipalName already exists: 'Existing@Contoso.com'.",
      },
      {
        row: 8,
        userPrincipalName: 'weak@contoso.com',
        status: 'failed',
        id: null,
        error: "Column 'Initial password [passwordProfile] Required': must contain at least three of: lower-case letters, upper-case letters, digits, symbols.",
      },
    ]);
    expect(res.body).not.toContain(PASSWORD);

    const chris = (await t.request({ method: 'GET', url: `/beta/users/${chrisId}` })).json();
    expect(chris).toMatchObject({ userPrincipalName: 'chris@contoso.com', displayName: 'Chris Green', givenName: 'Chris', jobTitle: 'Engineer', usageLocation: 'US', accountEnabled: true });
    expect((await t.request({ method: 'GET', url: `/beta/users/${blockedId}` })).json().accountEnabled).toBe(false);
    const stored = await t.store.db.selectFrom('users').select(['password_hash', 'force_change_password']).where('id', '=', chrisId).executeTakeFirstOrThrow();
    expect(stored.password_hash).toMatch(/^\$scrypt\$/);
    expect(stored.force_change_password).toBe(1);

    // One audit event per created user, none for failed rows, no password anywhere.
    const audit = await t.store.db.selectFrom('audit_events').selectAll().where('tenant_id', '=', t.tenantId).where('activity', '=', 'Add user').execute();
    const imported = audit.filter((a) => a.resource_id === chrisId || a.resource_id === blockedId);
    expect(imported.map((a) => [a.category, a.component_name, a.correlation_id])).toEqual([
      ['Directory', 'Directory', res.headers['request-id']],
      ['Directory', 'Directory', res.headers['request-id']],
    ]);
    expect(audit).toHaveLength(3); // with the user created up front
    expect(JSON.stringify(audit)).not.toContain(PASSWORD);
  });

  it('imports plain headers under v1.0 too', async () => {
    const res = await importCsv('userPrincipalName,displayName,department\nplain1@contoso.com,Plain One,Ops\nplain2@contoso.com,Plain Two,\n', { version: 'v1.0' });
    expect(res.statusCode).toBe(200);
    expect(res.json()['@odata.context']).toMatch(/^http:\/\/openenroll.test\/v1.0\/\$metadata#/);
    expect(res.json().value.map((r: { status: string }) => r.status)).toEqual(['created', 'created']);
    expect((await t.request({ method: 'GET', url: '/v1.0/users/plain1@contoso.com' })).json()).toMatchObject({ department: 'Ops', userPrincipalName: 'plain1@contoso.com' });
  });

  it('refuses unusable files with 400 and creates nothing', async () => {
    const before = (await t.store.db.selectFrom('users').select('id').execute()).length;
    const cases: [string, RegExp][] = [
      ['', /no header row/],
      ['nobody@contoso.com,Nobody\n', /not a known user property.*header row/],
      ['userPrincipalName\nx@contoso.com\n', /no 'displayName' column/],
      ['version:v9\nuserPrincipalName,displayName\n', /version 'v9'/],
      ['userPrincipalName,displayName\n"x@contoso.com,X\n', /not valid CSV/],
    ];
    for (const [csv, message] of cases) {
      const res = await importCsv(csv);
      expect({ csv, status: res.statusCode }).toEqual({ csv, status: 400 });
      expect(res.json().error.message).toMatch(message);
    }
    expect((await t.store.db.selectFrom('users').select('id').execute()).length).toBe(before);
  });

  it('takes only text/csv (415 otherwise)', async () => {
    for (const type of ['application/json', 'text/plain', 'application/octet-stream']) {
      const payload = type === 'application/json' ? '{"userPrincipalName":"j@contoso.com"}' : 'userPrincipalName,displayName\nj@contoso.com,J\n';
      const res = await importCsv(payload, { type });
      expect({ type, status: res.statusCode }).toEqual({ type, status: 415 });
      expect(res.json().error.code).toBe('UnsupportedMediaType');
    }
    expect((await importCsv('userPrincipalName,displayName\ncharset@contoso.com,C\n', { type: 'text/csv; charset=utf-8' })).statusCode).toBe(200);
    // Other routes keep refusing CSV bodies: the parser is registered for the import only.
    const other = await t.request({ method: 'POST', url: '/beta/users', headers: { 'content-type': 'text/csv' }, payload: 'a,b\n' });
    expect(other.statusCode).toBe(415);
  });

  it(`accepts a body of exactly ${CSV_LIMITS.maxBytes} bytes and refuses one byte more (413)`, async () => {
    const head = 'userPrincipalName,displayName\nsize@contoso.com,Size\n';
    // Padding rows of spaces are blank rows: skipped, but they count towards the size.
    const pad = (n: number) => {
      const line = `${' '.repeat(1023)}\n`;
      return line.repeat(Math.floor(n / 1024)) + ' '.repeat(n % 1024);
    };
    const exact = head + pad(CSV_LIMITS.maxBytes - head.length);
    expect(Buffer.byteLength(exact)).toBe(CSV_LIMITS.maxBytes);
    const ok = await importCsv(exact);
    expect(ok.statusCode).toBe(200);
    expect(ok.json().value).toEqual([expect.objectContaining({ row: 2, status: 'created' })]);

    const over = await importCsv(`${exact} `);
    expect(over.statusCode).toBe(413);
    expect(over.json().error).toMatchObject({ code: 'RequestEntityTooLarge', message: `The request body is larger than the limit of ${CSV_LIMITS.maxBytes} bytes.` });
    // JSON routes keep the global limit.
    const json = await t.request({ method: 'POST', url: '/beta/users', payload: { userPrincipalName: 'big@contoso.com', displayName: 'x'.repeat(2 * 1024 * 1024) } });
    expect(json.statusCode).toBe(413);
  });

  it(`creates ${CSV_LIMITS.maxDataRows} rows and refuses a file of ${CSV_LIMITS.maxDataRows + 1}`, { timeout: 300_000 }, async () => {
    const file = (n: number) => {
      const lines = ['userPrincipalName,displayName'];
      for (let i = 0; i < n; i++) lines.push(`bulk${i}@contoso.com,Bulk ${i}`);
      return lines.join('\n');
    };
    const tooMany = await importCsv(file(CSV_LIMITS.maxDataRows + 1));
    expect(tooMany.statusCode).toBe(400);
    expect(tooMany.json().error.message).toMatch(/more than 50000 data rows/);
    expect(await t.store.db.selectFrom('users').select('id').where('upn_lower', 'like', 'bulk%').execute()).toHaveLength(0);

    const res = await importCsv(file(CSV_LIMITS.maxDataRows));
    expect(res.statusCode).toBe(200);
    const value = res.json().value as { row: number; status: string }[];
    expect(value).toHaveLength(CSV_LIMITS.maxDataRows);
    expect(value.every((r) => r.status === 'created')).toBe(true);
    expect(value.at(-1)!.row).toBe(CSV_LIMITS.maxDataRows + 1);
    const count = await t.request({ method: 'GET', url: `/beta/users/$count?$filter=${encodeURIComponent("startswith(userPrincipalName,'bulk')")}` });
    expect(count.body).toBe(String(CSV_LIMITS.maxDataRows));
  });
});
