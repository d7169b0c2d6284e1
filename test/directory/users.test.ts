import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyUserPassword } from '../../src/directory/passwords.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { api } from './helpers.js';

const PASSWORD = 'Corr3ct-Horse!';

describe('users', () => {
  let t: TestApp;
  let beta: ReturnType<typeof api>;
  let v1: ReturnType<typeof api>;
  beforeAll(async () => {
    t = await createTestApp();
    beta = api(t, 'beta');
    v1 = api(t, 'v1.0');
  });
  afterAll(async () => t.close());

  const auditFor = async (id: string) =>
    (await t.store.db.selectFrom('audit_events').selectAll().where('tenant_id', '=', t.tenantId).where('resource_id', '=', id).execute()).map((e) => ({
      activity: e.activity,
      category: e.category,
      component: e.component_name,
      resources: e.resources,
    }));

  it('creates a user with Graph defaults and returns it in Graph shape', async () => {
    const res = await beta.post('/users', { userPrincipalName: 'Adele.Vance@Contoso.com', displayName: 'Adele Vance', '@odata.type': '#microsoft.graph.user' });
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(body).toEqual({
      '@odata.context': 'http://openenroll.test/beta/$metadata#users/$entity',
      '@odata.type': '#microsoft.graph.user',
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      userPrincipalName: 'Adele.Vance@Contoso.com',
      displayName: 'Adele Vance',
      givenName: null,
      surname: null,
      mail: null,
      mailNickname: 'Adele.Vance',
      accountEnabled: true,
      jobTitle: null,
      department: null,
      officeLocation: null,
      mobilePhone: null,
      usageLocation: null,
      userType: 'Member',
      employeeId: null,
      createdDateTime: t.clock.now().toISOString(),
      deviceEnrollmentLimit: null,
    });
    // v1.0 has no deviceEnrollmentLimit.
    const viaV1 = await v1.get(`/users/${body.id}`);
    expect(viaV1.json()['@odata.context']).toBe('http://openenroll.test/v1.0/$metadata#users/$entity');
    expect(viaV1.json()).not.toHaveProperty('deviceEnrollmentLimit');
    expect(await auditFor(body.id)).toEqual([{ activity: 'Add user', category: 'Directory', component: 'Directory', resources: expect.any(String) }]);
  });

  it('sets every writable property', async () => {
    const res = await beta.post('/users', {
      userPrincipalName: 'megan@contoso.com',
      displayName: 'Megan Bowen',
      givenName: 'Megan',
      surname: 'Bowen',
      mail: 'megan@mail.contoso.com',
      mailNickname: 'meganb',
      accountEnabled: false,
      jobTitle: 'Auditor',
      department: 'Finance',
      officeLocation: '12/1110',
      mobilePhone: '+1 425 555 0109',
      usageLocation: 'us',
      userType: 'Guest',
      employeeId: 'E-1',
      deviceEnrollmentLimit: 5,
    });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({
      givenName: 'Megan',
      surname: 'Bowen',
      mail: 'megan@mail.contoso.com',
      mailNickname: 'meganb',
      accountEnabled: false,
      jobTitle: 'Auditor',
      department: 'Finance',
      officeLocation: '12/1110',
      mobilePhone: '+1 425 555 0109',
      usageLocation: 'US',
      userType: 'Guest',
      employeeId: 'E-1',
      deviceEnrollmentLimit: 5,
    });
  });

  it('reads a user by id or by userPrincipalName, in any case and in key form', async () => {
    const id = (await beta.post('/users', { userPrincipalName: 'Lee.Gu@contoso.com', displayName: 'Lee Gu' })).json().id as string;
    for (const path of [`/users/${id}`, '/users/lee.gu@contoso.com', '/users/LEE.GU@CONTOSO.COM', "/users('Lee.Gu@contoso.com')", `/users('${id}')`]) {
      const res = await beta.get(path);
      expect({ path, status: res.statusCode, id: res.json().id }).toEqual({ path, status: 200, id });
    }
    const missing = await beta.get('/users/nobody@contoso.com');
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('ResourceNotFound');
    expect((await beta.get('/users/00000000-0000-0000-0000-000000000000')).statusCode).toBe(404);
  });

  it('keeps userPrincipalName unique per tenant without regard to case (409)', async () => {
    expect((await beta.post('/users', { userPrincipalName: 'unique@contoso.com', displayName: 'U' })).statusCode).toBe(201);
    const dup = await beta.post('/users', { userPrincipalName: 'UNIQUE@contoso.COM', displayName: 'U2' });
    expect(dup.statusCode).toBe(409);
    expect(dup.json().error).toMatchObject({ code: 'Conflict', target: 'userPrincipalName' });
    expect(dup.json().error.message).toMatch(/userPrincipalName/);

    const other = (await beta.post('/users', { userPrincipalName: 'other@contoso.com', displayName: 'O' })).json().id as string;
    const clash = await beta.patch(`/users/${other}`, { userPrincipalName: 'Unique@Contoso.com' });
    expect(clash.statusCode).toBe(409);
    expect(clash.json().error.target).toBe('userPrincipalName');
    // Changing only the case of one's own name is no clash.
    const recase = await beta.patch(`/users/${other}`, { userPrincipalName: 'Other@Contoso.com' });
    expect(recase.statusCode).toBe(200);
    expect(recase.json().userPrincipalName).toBe('Other@Contoso.com');

    // Another tenant may use the same name.
    const second = await t.createTenant('Fabrikam');
    expect((await t.request({ method: 'POST', url: '/beta/users', key: second.adminKey, payload: { userPrincipalName: 'unique@contoso.com', displayName: 'U' } })).statusCode).toBe(201);
  });

  it('refuses bad input naming the property, and writes nothing', async () => {
    const before = await t.store.db.selectFrom('users').select('id').execute();
    const auditBefore = await t.store.db.selectFrom('audit_events').select('id').execute();
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ displayName: 'X' }, 'userPrincipalName', /required/],
      [{ userPrincipalName: 'x@contoso.com' }, 'displayName', /required/],
      [{ userPrincipalName: 'x@contoso.com', displayName: '' }, 'displayName', /fewer than 1/],
      [{ userPrincipalName: 'x@contoso.com', displayName: '   ' }, 'displayName', /must not be empty/],
      [{ userPrincipalName: 'not-a-upn', displayName: 'X' }, 'userPrincipalName', /alias@domain/],
      [{ userPrincipalName: 'x@contoso.com', displayName: 'X', favouriteColour: 'blue' }, 'favouriteColour', /not a known property/],
      [{ userPrincipalName: 'x@contoso.com', displayName: 'X', accountEnabled: 'yes' }, 'accountEnabled', /must be boolean/],
      [{ userPrincipalName: 'x@contoso.com', displayName: 'X', userType: 'Admin' }, 'userType', /Member/],
      [{ userPrincipalName: 'x@contoso.com', displayName: 'X', usageLocation: 'USA' }, 'usageLocation', /more than 2/],
      [{ userPrincipalName: 'x@contoso.com', displayName: 'X', usageLocation: '1A' }, 'usageLocation', /country code/],
      [{ userPrincipalName: 'x@contoso.com', displayName: 'X', mail: 'nope' }, 'mail', /email address/],
      [{ userPrincipalName: 'x@contoso.com', displayName: 'X', mailNickname: 'a b' }, 'mailNickname', /spaces/],
      [{ userPrincipalName: 'x@contoso.com', displayName: 'X', deviceEnrollmentLimit: 0 }, 'deviceEnrollmentLimit', /1/],
      [{ userPrincipalName: 'x@contoso.com', displayName: 'X', deviceEnrollmentLimit: 1001 }, 'deviceEnrollmentLimit', /1000/],
      [{ userPrincipalName: 'x@contoso.com', displayName: 'X', passwordProfile: { password: 'weakpassword' } }, 'passwordProfile.password', /three of/],
      [{ userPrincipalName: 'x@contoso.com', displayName: 'X', passwordProfile: { password: 'Sh0rt!' } }, 'passwordProfile.password', /between 8 and 256/],
      [{ userPrincipalName: 'x@contoso.com', displayName: 'X', passwordProfile: { forceChangePasswordNextSignIn: true } }, 'passwordProfile.password', /required/],
      [{ userPrincipalName: 'x@contoso.com', displayName: 'X', passwordProfile: { password: PASSWORD, extra: 1 } }, 'passwordProfile.extra', /not a known/],
    ];
    for (const [payload, target, message] of cases) {
      const res = await beta.post('/users', payload);
      expect({ payload, status: res.statusCode, target: res.json().error.target }).toEqual({ payload, status: 400, target });
      expect(res.json().error.message).toMatch(message);
      expect(res.json().error.message).not.toContain('weakpassword');
    }
    // v1.0 has no deviceEnrollmentLimit at all.
    const v1Limit = await v1.post('/users', { userPrincipalName: 'x@contoso.com', displayName: 'X', deviceEnrollmentLimit: 5 });
    expect(v1Limit.statusCode).toBe(400);
    expect(v1Limit.json().error.target).toBe('deviceEnrollmentLimit');
    expect(await t.store.db.selectFrom('users').select('id').execute()).toHaveLength(before.length);
    expect(await t.store.db.selectFrom('audit_events').select('id').execute()).toHaveLength(auditBefore.length);
  });

  it('accepts deviceEnrollmentLimit from 1 to 1000', async () => {
    const id = (await beta.post('/users', { userPrincipalName: 'limits@contoso.com', displayName: 'L', deviceEnrollmentLimit: 1 })).json().id as string;
    expect((await beta.patch(`/users/${id}`, { deviceEnrollmentLimit: 1000 })).json().deviceEnrollmentLimit).toBe(1000);
    expect((await beta.patch(`/users/${id}`, { deviceEnrollmentLimit: 1001 })).statusCode).toBe(400);
    expect((await beta.patch(`/users/${id}`, { deviceEnrollmentLimit: null })).json().deviceEnrollmentLimit).toBeNull();
    expect((await v1.patch(`/users/${id}`, { deviceEnrollmentLimit: 3 })).statusCode).toBe(400);
  });

  it('patches with 200 and the entity; null clears; read-only properties sent back are ignored', async () => {
    const created = (await beta.post('/users', { userPrincipalName: 'patch.me@contoso.com', displayName: 'Patch Me', jobTitle: 'Clerk', department: 'Ops' })).json();
    const res = await beta.patch(`/users/${created.id}`, { ...created, '@odata.context': undefined, displayName: 'Patched', jobTitle: null, accountEnabled: false });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ '@odata.type': '#microsoft.graph.user', id: created.id, displayName: 'Patched', jobTitle: null, department: 'Ops', accountEnabled: false });
    expect((await beta.get(`/users/${created.id}`)).json()).toMatchObject({ displayName: 'Patched', jobTitle: null, accountEnabled: false });
    expect((await beta.patch(`/users/${created.id}`, { userType: 'Owner' })).statusCode).toBe(400);
    expect((await beta.patch('/users/ghost@contoso.com', { displayName: 'x' })).statusCode).toBe(404);
    const audit = await auditFor(created.id);
    expect(audit.map((a) => a.activity).sort()).toEqual(['Add user', 'Update user']);
    const update = JSON.parse(audit.find((a) => a.activity === 'Update user')!.resources) as { modifiedProperties: { displayName: string; oldValue: string; newValue: string }[] }[];
    expect(update[0]!.modifiedProperties).toEqual(
      expect.arrayContaining([
        { displayName: 'displayName', oldValue: 'Patch Me', newValue: 'Patched' },
        { displayName: 'jobTitle', oldValue: 'Clerk', newValue: null },
      ]),
    );
  });

  it('never returns, logs or audits the password, and stores only a scrypt hash', async () => {
    const res = await beta.post('/users', { userPrincipalName: 'secret@contoso.com', displayName: 'S', passwordProfile: { password: PASSWORD, forceChangePasswordNextSignIn: false } });
    expect(res.statusCode).toBe(201);
    const id = res.json().id as string;
    const texts = [
      res.body,
      (await beta.get(`/users/${id}`)).body,
      (await beta.get('/users')).body,
      (await beta.get(`/users?$select=id,displayName`)).body,
      (await beta.patch(`/users/${id}`, { passwordProfile: { password: `${PASSWORD}2` } })).body,
    ];
    for (const text of texts) {
      expect(text).not.toMatch(/password/i);
      expect(text).not.toContain('scrypt');
    }
    expect((await beta.get('/users?$select=passwordProfile')).statusCode).toBe(400);
    expect((await beta.get("/users?$filter=passwordProfile eq 'x'")).statusCode).toBe(400);

    const row = await t.store.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    expect(row.password_hash).toMatch(/^\$scrypt\$ln=14,r=8,p=5\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    expect(row.force_change_password).toBe(1); // a password set by an admin must be changed unless told otherwise

    const audit = await t.store.db.selectFrom('audit_events').selectAll().where('resource_id', '=', id).execute();
    expect(audit).toHaveLength(2);
    const all = JSON.stringify(audit);
    expect(all).not.toContain(PASSWORD);
    expect(all).not.toContain(row.password_hash!);
    const changes = audit.map((e) => (JSON.parse(e.resources) as { modifiedProperties: { displayName: string; newValue: string | null }[] }[])[0]!.modifiedProperties);
    for (const modified of changes) expect(modified).toContainEqual({ displayName: 'passwordProfile', oldValue: null, newValue: '[redacted]' });
  });

  it('verifies sign-in passwords for later sign-in pages', async () => {
    const id = (await beta.post('/users', { userPrincipalName: 'Signin@contoso.com', displayName: 'Sign In', passwordProfile: { password: PASSWORD } })).json().id as string;
    expect(await verifyUserPassword(t.store.db, t.tenantId, 'signin@CONTOSO.com', PASSWORD)).toEqual({
      id,
      userPrincipalName: 'Signin@contoso.com',
      displayName: 'Sign In',
      forceChangePasswordNextSignIn: true,
    });
    expect(await verifyUserPassword(t.store.db, t.tenantId, 'signin@contoso.com', `${PASSWORD}x`)).toBeNull();
    expect(await verifyUserPassword(t.store.db, t.tenantId, 'nobody@contoso.com', PASSWORD)).toBeNull();
    const other = await t.createTenant('Other tenant');
    expect(await verifyUserPassword(t.store.db, other.tenantId, 'signin@contoso.com', PASSWORD)).toBeNull();
    // Users without a password, and disabled users, can't sign in with one.
    expect(await verifyUserPassword(t.store.db, t.tenantId, 'adele.vance@contoso.com', PASSWORD)).toBeNull();
    await beta.patch(`/users/${id}`, { accountEnabled: false });
    expect(await verifyUserPassword(t.store.db, t.tenantId, 'signin@contoso.com', PASSWORD)).toBeNull();
    await beta.patch(`/users/${id}`, { accountEnabled: true, passwordProfile: { password: 'N3w-Passw0rd', forceChangePasswordNextSignIn: false } });
    expect(await verifyUserPassword(t.store.db, t.tenantId, 'signin@contoso.com', PASSWORD)).toBeNull();
    expect(await verifyUserPassword(t.store.db, t.tenantId, 'signin@contoso.com', 'N3w-Passw0rd')).toMatchObject({ id, forceChangePasswordNextSignIn: false });
  });

  it('deletes a user (204), then 404', async () => {
    const id = (await beta.post('/users', { userPrincipalName: 'leaving@contoso.com', displayName: 'Leaving' })).json().id as string;
    expect((await beta.del('/users/LEAVING@contoso.com')).statusCode).toBe(204);
    expect((await beta.get(`/users/${id}`)).statusCode).toBe(404);
    expect((await beta.del(`/users/${id}`)).statusCode).toBe(404);
    expect((await auditFor(id)).map((a) => a.activity).sort()).toEqual(['Add user', 'Delete user']);
  });
});

describe('listing users', () => {
  let t: TestApp;
  let beta: ReturnType<typeof api>;
  beforeAll(async () => {
    t = await createTestApp();
    beta = api(t, 'beta');
    for (const [upn, name, dept] of [
      ['alex@contoso.com', 'Alex Wilber', 'Sales'],
      ['Bianca@Contoso.com', 'Bianca Pisani', 'Sales'],
      ['cameron@contoso.com', 'Cameron White', 'IT'],
      ['diego@contoso.com', 'Diego Siciliani', 'HR'],
      ['emily@fabrikam.com', 'Emily Braun', null],
    ] as const) {
      expect((await beta.post('/users', { userPrincipalName: upn, displayName: name, department: dept, mail: upn.toLowerCase() })).statusCode).toBe(201);
    }
  });
  afterAll(async () => t.close());

  it('pages with $top and follows @odata.nextLink to the end', async () => {
    const seen: string[] = [];
    let url: string | undefined = '/beta/users?$top=2&$orderby=displayName';
    let pages = 0;
    while (url) {
      const res = await t.request({ method: 'GET', url });
      expect(res.statusCode).toBe(200);
      const body = res.json() as { value: { displayName: string }[]; '@odata.nextLink'?: string };
      expect(body.value.length).toBeLessThanOrEqual(2);
      seen.push(...body.value.map((u) => u.displayName));
      url = body['@odata.nextLink']?.replace('http://openenroll.test', '');
      if (url) expect(url).toMatch(/^\/beta\/users\?.*\$top=2.*\$skiptoken=/);
      pages++;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(['Alex Wilber', 'Bianca Pisani', 'Cameron White', 'Diego Siciliani', 'Emily Braun']);
  });

  it('filters without regard to case on userPrincipalName, displayName and mail', async () => {
    const names = async (filter: string) => {
      const res = await beta.get(`/users?$filter=${encodeURIComponent(filter)}&$orderby=displayName`);
      expect(res.statusCode, filter).toBe(200);
      return (res.json().value as { displayName: string }[]).map((u) => u.displayName);
    };
    expect(await names("userPrincipalName eq 'BIANCA@contoso.com'")).toEqual(['Bianca Pisani']);
    expect(await names("displayName eq 'alex wilber'")).toEqual(['Alex Wilber']);
    expect(await names("mail eq 'CAMERON@CONTOSO.COM'")).toEqual(['Cameron White']);
    expect(await names("startswith(displayName,'d')")).toEqual(['Diego Siciliani']);
    expect(await names("endswith(userPrincipalName,'@FABRIKAM.com')")).toEqual(['Emily Braun']);
    expect(await names("department eq 'Sales' and accountEnabled eq true")).toEqual(['Alex Wilber', 'Bianca Pisani']);
    expect(await names('department eq null')).toEqual(['Emily Braun']);
    expect(await names("userType eq 'Member'")).toHaveLength(5);
    const bad = await beta.get(`/users?$filter=${encodeURIComponent("shoeSize eq '9'")}`);
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.target).toBe('shoeSize');
  });

  it('counts with $count=true and /users/$count, honouring $filter', async () => {
    const res = await beta.get(`/users?$count=true&$top=1&$filter=${encodeURIComponent("department eq 'Sales'")}`);
    expect(res.json()['@odata.count']).toBe(2);
    expect(res.json().value).toHaveLength(1);
    const count = await beta.get('/users/$count');
    expect(count.statusCode).toBe(200);
    expect(count.headers['content-type']).toMatch(/^text\/plain/);
    expect(count.body).toBe('5');
    expect((await beta.get(`/users/$count?$filter=${encodeURIComponent("startswith(mail,'c')")}`)).body).toBe('1');
  });

  it('selects properties', async () => {
    const res = await beta.get('/users?$select=displayName,mail&$top=1&$orderby=displayName');
    expect(res.json()['@odata.context']).toBe('http://openenroll.test/beta/$metadata#users(displayName,mail)');
    expect(res.json().value).toEqual([{ '@odata.type': '#microsoft.graph.user', displayName: 'Alex Wilber', mail: 'alex@contoso.com' }]);
    expect((await api(t, 'v1.0').get('/users?$select=deviceEnrollmentLimit')).statusCode).toBe(400);
  });
});
