import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { matchesCorporateIdentifier } from '../../src/enrollment-policy/corporate-identifiers/service.js';
import { luhnCheckDigit } from '../../src/enrollment-policy/corporate-identifiers/rules.js';
import { MINUTE } from '../../src/shared/time.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { DEVICES, deviceRecords, enroll, manualClock } from '../devices/fixtures.js';

const BASE = '/beta/deviceManagement/importedDeviceIdentities';
const imei15 = (fourteen: string) => fourteen + String(luhnCheckDigit(fourteen));
let counter = 0;
/** A fresh 14-digit IMEI payload (TAC 35 + counter), unique within the run. */
const tac = () => `35${String(Date.now() % 1e6).padStart(6, '0')}${String(++counter).padStart(6, '0')}`;
const uniqueSerial = () => `SN${Date.now().toString(36).toUpperCase()}${(++counter).toString(36).toUpperCase()}`;

describe('corporate device identifiers (importedDeviceIdentities)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => t.close());

  const post = (url: string, payload: unknown, key?: string) => t.request({ method: 'POST', url, payload: payload as object, ...(key ? { key } : {}) });
  const get = (url: string, key?: string) => t.request({ method: 'GET', url, ...(key ? { key } : {}) });
  const create = async (importedDeviceIdentifier: string, importedDeviceIdentityType = 'serialNumber', extra: Record<string, unknown> = {}) => {
    const res = await post(BASE, { importedDeviceIdentifier, importedDeviceIdentityType, ...extra });
    expect(res.statusCode, res.body).toBe(201);
    return res.json();
  };
  const csv = (body: string, query: string, key?: string) =>
    t.request({ method: 'POST', url: `${BASE}/importCsv?${query}`, headers: { 'content-type': 'text/csv' }, payload: body, ...(key ? { key } : {}) });
  const byIdentifier = async (identifier: string) =>
    (await t.store.db.selectFrom('imported_device_identities').selectAll().where('tenant_id', '=', t.tenantId).where('identifier', '=', identifier).executeTakeFirst())!;

  describe('CRUD in Graph shape', () => {
    it('creates, reads, lists, counts, patches and deletes an identifier', async () => {
      const s = uniqueSerial();
      const created = await create(s, 'serialNumber', { description: 'Loaner iPad', platform: 'ios' });
      expect(created).toEqual({
        '@odata.context': 'http://openenroll.test/beta/$metadata#deviceManagement/importedDeviceIdentities/$entity',
        '@odata.type': '#microsoft.graph.importedDeviceIdentity',
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        importedDeviceIdentifier: s,
        importedDeviceIdentityType: 'serialNumber',
        lastModifiedDateTime: t.clock.now().toISOString(),
        createdDateTime: t.clock.now().toISOString(),
        lastContactedDateTime: '0001-01-01T00:00:00Z',
        description: 'Loaner iPad',
        enrollmentState: 'notContacted',
        platform: 'ios',
      });
      expect((await get(`${BASE}/${created.id}`)).json()).toMatchObject({ id: created.id, importedDeviceIdentifier: s });
      expect((await get(`${BASE}('${created.id}')`)).statusCode).toBe(200);
      const list = (await get(`${BASE}?$filter=importedDeviceIdentifier eq '${s.toLowerCase()}'&$count=true`)).json();
      expect(list['@odata.count']).toBe(1);
      expect(list.value[0]).toMatchObject({ '@odata.type': '#microsoft.graph.importedDeviceIdentity', id: created.id });
      expect((await get(`${BASE}/$count?$filter=enrollmentState eq 'notContacted' and importedDeviceIdentifier eq '${s}'`)).body).toBe('1');

      manualClock(t).advance(MINUTE);
      const patched = await t.request({ method: 'PATCH', url: `${BASE}/${created.id}`, payload: { ...created, description: 'Spare', '@odata.context': undefined } });
      expect(patched.statusCode, patched.body).toBe(200);
      expect(patched.json()).toMatchObject({ description: 'Spare', lastModifiedDateTime: t.clock.now().toISOString(), createdDateTime: created.createdDateTime });

      expect((await t.request({ method: 'DELETE', url: `${BASE}/${created.id}` })).statusCode).toBe(204);
      expect((await get(`${BASE}/${created.id}`)).statusCode).toBe(404);
      const audit = await t.store.db.selectFrom('audit_events').select(['activity', 'category']).where('resource_id', '=', created.id).orderBy('activity_date_time').execute();
      expect(audit).toEqual([
        { activity: 'Create imported device identity', category: 'Enrollment' },
        { activity: 'Patch imported device identity', category: 'Enrollment' },
        { activity: 'Delete imported device identity', category: 'Enrollment' },
      ]);
    });

    it('refuses a second copy of an identifier, however it is written (409)', async () => {
      const p = tac();
      await create(p, 'imei');
      const again = await post(BASE, { importedDeviceIdentifier: imei15(p), importedDeviceIdentityType: 'imei' });
      expect(again.statusCode).toBe(409);
      expect(again.json().error).toMatchObject({ code: 'Conflict', target: 'importedDeviceIdentifier' });
      const s = uniqueSerial();
      await create(s);
      expect((await post(BASE, { importedDeviceIdentifier: s.toLowerCase(), importedDeviceIdentityType: 'serialNumber' })).statusCode).toBe(409);
      // The same value as another type is another identifier.
      expect((await post(BASE, { importedDeviceIdentifier: `Apple,iPad,${s}`, importedDeviceIdentityType: 'manufacturerModelSerial' })).statusCode).toBe(201);
    });

    it.each([
      [{ importedDeviceIdentifier: '490154203237517', importedDeviceIdentityType: 'imei' }, 'importedDeviceIdentifier', /check digit 8/],
      [{ importedDeviceIdentifier: 'AB.12', importedDeviceIdentityType: 'serialNumber' }, 'importedDeviceIdentifier', /period/],
      [{ importedDeviceIdentifier: 'ABC129', importedDeviceIdentityType: 'serialNumber', description: 'd'.repeat(129) }, 'description', /129 characters; at most 128/],
      [{ importedDeviceIdentifier: 'ABC', importedDeviceIdentityType: 'unknown' }, 'importedDeviceIdentityType', /must be one of/],
      [{ importedDeviceIdentifier: 'ABC', importedDeviceIdentityType: 'serialNumber', platform: 'unknownFutureValue' }, 'platform', /must be one of/],
      [{ importedDeviceIdentifier: 'ABC', importedDeviceIdentityType: 'serialNumber', color: 'red' }, 'color', /not a known property/],
    ])('refuses %j naming %s', async (payload, target, message) => {
      const res = await post(BASE, payload);
      expect(res.statusCode).toBe(400);
      expect(res.json().error.target).toBe(target);
      expect(res.json().error.message).toMatch(message);
    });

    it('accepts 128-character details', async () => {
      expect((await create(uniqueSerial(), 'serialNumber', { description: 'd'.repeat(128) })).description).toHaveLength(128);
    });

    it("won't change an identifier or its type by PATCH, but accepts them unchanged", async () => {
      const created = await create(uniqueSerial());
      const changed = await t.request({ method: 'PATCH', url: `${BASE}/${created.id}`, payload: { importedDeviceIdentifier: 'OTHER1' } });
      expect(changed.statusCode).toBe(400);
      expect(changed.json().error.target).toBe('importedDeviceIdentifier');
      const retyped = await t.request({ method: 'PATCH', url: `${BASE}/${created.id}`, payload: { importedDeviceIdentityType: 'imei' } });
      expect(retyped.json().error.target).toBe('importedDeviceIdentityType');
      const same = await t.request({ method: 'PATCH', url: `${BASE}/${created.id}`, payload: { importedDeviceIdentifier: created.importedDeviceIdentifier.toLowerCase(), description: null } });
      expect(same.statusCode).toBe(200);
    });
  });

  describe('importDeviceIdentityList and searchExistingIdentities', () => {
    it('answers one importedDeviceIdentityResult per item, with duplicates and overwrite', async () => {
      const [a, b, c] = [uniqueSerial(), uniqueSerial(), uniqueSerial()];
      await create(b, 'serialNumber', { description: 'old' });
      await create(c, 'serialNumber', { description: 'same' });
      const items = [
        { importedDeviceIdentifier: a, importedDeviceIdentityType: 'serialNumber', description: 'new' },
        { importedDeviceIdentifier: b, importedDeviceIdentityType: 'serialNumber', description: 'changed' },
        { importedDeviceIdentifier: c, importedDeviceIdentityType: 'serialNumber', description: 'same' },
        { importedDeviceIdentifier: a.toLowerCase(), importedDeviceIdentityType: 'serialNumber', description: 'twice' },
        { importedDeviceIdentifier: 'Contoso,Laptop 7,' + a, importedDeviceIdentityType: 'manufacturerModelSerial', platform: 'windows' },
        { importedDeviceIdentifier: '123', importedDeviceIdentityType: 'imei' },
      ];
      const res = await post(`${BASE}/importDeviceIdentityList`, { importedDeviceIdentities: items, overwriteImportedDeviceIdentities: false });
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json();
      expect(body['@odata.context']).toBe('http://openenroll.test/beta/$metadata#Collection(microsoft.graph.importedDeviceIdentityResult)');
      expect(body.value.map((v: { status: boolean }) => v.status)).toEqual([true, false, true, false, true, false]);
      expect(body.value[0]).toMatchObject({ '@odata.type': '#microsoft.graph.importedDeviceIdentityResult', importedDeviceIdentifier: a, description: 'new', enrollmentState: 'notContacted' });
      expect(body.value[1]).toMatchObject({ description: 'old', 'status@openEnroll.message': expect.stringMatching(/other details; they were kept/) });
      expect(body.value[3]['status@openEnroll.message']).toMatch(/duplicate of item 1/);
      expect(body.value[4]).toMatchObject({ importedDeviceIdentifier: `Contoso,Laptop 7,${a}`, platform: 'windows' });
      expect(body.value[5]).toMatchObject({ id: null, importedDeviceIdentifier: '123', 'status@openEnroll.message': expect.stringMatching(/3 digits/) });
      expect((await byIdentifier(b)).description).toBe('old');

      const overwrite = await post(`${BASE}/importDeviceIdentityList`, {
        importedDeviceIdentities: [{ importedDeviceIdentifier: b, importedDeviceIdentityType: 'serialNumber', description: 'changed' }],
        overwriteImportedDeviceIdentities: true,
      });
      expect(overwrite.json().value[0]).toMatchObject({ status: true, description: 'changed' });
      expect((await byIdentifier(b)).description).toBe('changed');
    });

    it('takes 5,000 items (a body over the usual 1 MiB) and refuses 5,001', async () => {
      const prefix = uniqueSerial();
      const items = Array.from({ length: 5001 }, (_, i) => ({ importedDeviceIdentifier: `${prefix}L${i}`, importedDeviceIdentityType: 'serialNumber', description: 'd'.repeat(128) }));
      const over = await post(`${BASE}/importDeviceIdentityList`, { importedDeviceIdentities: items });
      expect(over.statusCode).toBe(400);
      expect(over.json().error.message).toMatch(/importedDeviceIdentities.*5000/);
      const body = { importedDeviceIdentities: items.slice(0, 5000) };
      expect(Buffer.byteLength(JSON.stringify(body))).toBeGreaterThan(1024 * 1024);
      const ok = await post(`${BASE}/importDeviceIdentityList`, body);
      expect(ok.statusCode, ok.body.slice(0, 300)).toBe(200);
      expect(ok.json().value.every((v: { status: boolean }) => v.status)).toBe(true);
    });

    it('searchExistingIdentities returns the stored identifiers among those given', async () => {
      const p = tac();
      const s = uniqueSerial();
      const stored = [await create(p, 'imei'), await create(s)];
      const res = await post(`${BASE}/searchExistingIdentities`, {
        importedDeviceIdentities: [
          { importedDeviceIdentifier: imei15(p), importedDeviceIdentityType: 'imei' },
          { importedDeviceIdentifier: s.toLowerCase() },
          { importedDeviceIdentifier: 'NOTTHERE1', importedDeviceIdentityType: 'serialNumber' },
          { importedDeviceIdentifier: 'not valid.', importedDeviceIdentityType: 'serialNumber' },
        ],
      });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json().value.map((v: { id: string }) => v.id).sort()).toEqual(stored.map((x) => x.id).sort());
    });
  });

  describe('CSV upload (OpenEnroll extension)', () => {
    it('imports the seed example and reports a result per row', async () => {
      const [p1, p2] = [tac(), tac()];
      const res = await csv(`${p1},device details\n${imei15(p2)},device details\n`, 'type=imei');
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json().value).toEqual([
        { row: 1, importedDeviceIdentifier: p1, description: 'device details', status: 'created', id: expect.any(String), duplicateOfRow: null, existingDescription: null, error: null },
        { row: 2, importedDeviceIdentifier: imei15(p2), description: 'device details', status: 'created', id: expect.any(String), duplicateOfRow: null, existingDescription: null, error: null },
      ]);
    });

    it('imports 5,000 rows and refuses 5,001 without importing any', async () => {
      const prefix = uniqueSerial();
      const rows = (n: number) => Array.from({ length: n }, (_, i) => `${prefix}X${i},batch`).join('\n');
      const over = await csv(rows(5001), 'type=serialNumber');
      expect(over.statusCode).toBe(400);
      expect(over.json().error.message).toMatch(/more than 5,000 rows/);
      expect(await countLike(`${prefix}X%`)).toBe(0);
      const ok = await csv(rows(5000), 'type=serialNumber');
      expect(ok.statusCode).toBe(200);
      expect(ok.json().value.filter((r: { status: string }) => r.status === 'created')).toHaveLength(5000);
      expect(await countLike(`${prefix}X%`)).toBe(5000);
    });

    const countLike = async (pattern: string) =>
      Number(
        (
          await t.store.db
            .selectFrom('imported_device_identities')
            .select((eb) => eb.fn.countAll().as('n'))
            .where('tenant_id', '=', t.tenantId)
            .where('identifier', 'like', pattern)
            .executeTakeFirstOrThrow()
        ).n,
      );

    it('takes a file of exactly 5 MiB and answers 413 for one byte more', async () => {
      const MiB5 = 5 * 1024 * 1024;
      const line = (i: number) => `BIG${String(i).padStart(6, '0')},${'d'.repeat(1040)}\n`;
      let body = '';
      for (let i = 0; body.length + line(i).length <= MiB5; i++) body += line(i);
      body = body.padEnd(MiB5, '\n');
      expect(Buffer.byteLength(body)).toBe(MiB5);
      const ok = await csv(body, 'type=serialNumber');
      expect(ok.statusCode).toBe(200);
      expect(ok.json().value[0]).toMatchObject({ status: 'failed', error: 'details are 1040 characters; at most 128 are allowed.' });
      const tooBig = await csv(`${body}\n`, 'type=serialNumber');
      expect(tooBig.statusCode).toBe(413);
      expect(tooBig.json().error.message).toMatch(/5242880 bytes/);
    });

    it('refuses a header row, a serial with a period, or a file that is not CSV, importing nothing', async () => {
      const s = uniqueSerial();
      const header = await csv(`Serial number,Details\n${s},x`, 'type=serialNumber');
      expect(header.statusCode).toBe(400);
      expect(header.json().error.message).toMatch(/header/);
      const dotted = await csv(`${s},fine\nAB.12,bad`, 'type=serialNumber');
      expect(dotted.statusCode).toBe(400);
      expect(dotted.json().error.message).toMatch(/Row 2: serial number in 'AB\.12' contains a period/);
      expect((await searchOne(s)).length).toBe(0);
      const broken = await csv(`${s},"unclosed`, 'type=serialNumber');
      expect(broken.statusCode).toBe(400);
    });

    const searchOne = async (s: string) => (await post(`${BASE}/searchExistingIdentities`, { importedDeviceIdentities: [{ importedDeviceIdentifier: s }] })).json().value;

    it('reports mixed types, bad rows and duplicates per row and imports the rest', async () => {
      const [a, b, existing] = [uniqueSerial(), uniqueSerial(), uniqueSerial()];
      await create(existing, 'serialNumber', { description: 'kept' });
      const body = [
        `${a},first`,
        `${imei15(tac())},an IMEI`,
        `Dell,XPS,${b}`,
        `${a.toLowerCase()},again`,
        `${existing},different`,
        `${b},${'d'.repeat(129)}`,
        `${b},${'d'.repeat(128)}`,
      ].join('\n');
      const res = await csv(body, 'type=serialNumber');
      expect(res.statusCode, res.body).toBe(200);
      const value = res.json().value as { row: number; status: string; error: string | null; duplicateOfRow: number | null; existingDescription: string | null }[];
      expect(value.map((r) => [r.row, r.status])).toEqual([
        [1, 'created'],
        [2, 'failed'],
        [3, 'failed'],
        [4, 'failed'],
        [5, 'duplicate'],
        [6, 'failed'],
        [7, 'created'],
      ]);
      expect(value[1]!.error).toMatch(/looks like an IMEI/);
      expect(value[2]!.error).toMatch(/manufacturer,model,serial/);
      expect(value[3]).toMatchObject({ duplicateOfRow: 1, error: expect.stringMatching(/duplicate of row 1/) });
      expect(value[4]).toMatchObject({ existingDescription: 'kept', error: expect.stringMatching(/kept/) });
      expect(value[5]!.error).toMatch(/129 characters/);
      expect((await byIdentifier(existing)).description).toBe('kept');

      const again = await csv(`${existing},different\n${a},first`, 'type=serialNumber&overwrite=true');
      expect(again.json().value.map((r: { status: string }) => r.status)).toEqual(['overwritten', 'unchanged']);
      expect((await byIdentifier(existing)).description).toBe('different');
    });

    it('imports manufacturer,model,serial rows as Windows identifiers', async () => {
      const s = uniqueSerial();
      const res = await csv(`Microsoft Corporation,Surface Laptop 5,${s},Finance\nLenovo;ThinkPad X1;${s}2`, 'type=manufacturerModelSerial');
      expect(res.json().value.map((r: { importedDeviceIdentifier: string; status: string }) => [r.importedDeviceIdentifier, r.status])).toEqual([
        [`Microsoft Corporation,Surface Laptop 5,${s}`, 'created'],
        [`Lenovo,ThinkPad X1,${s}2`, 'created'],
      ]);
      expect((await byIdentifier(`Microsoft Corporation,Surface Laptop 5,${s}`)).platform).toBe('windows');
    });

    it('is documented in the OpenAPI document as a text/csv upload with its type', async () => {
      const doc = (await t.request({ method: 'GET', url: '/openapi.json', key: null })).json();
      const op = doc.paths['/beta/deviceManagement/importedDeviceIdentities/importCsv'].post;
      expect(Object.keys(op.requestBody.content)).toEqual(['text/csv']);
      expect(op.parameters.find((p: { name: string }) => p.name === 'type')).toMatchObject({ in: 'query', required: true });
      expect(op.description).toMatch(/OpenEnroll extension/);
      expect(doc.paths['/beta/deviceManagement/importedDeviceIdentities/importDeviceIdentityList']).toBeDefined();
    });

    it('needs text/csv and a type', async () => {
      const json = await post(`${BASE}/importCsv?type=imei`, { x: 1 });
      expect(json.statusCode).toBe(415);
      const noType = await csv('ABC,x', '');
      expect(noType.statusCode).toBe(400);
      expect(noType.json().error.target).toBe('type');
      expect((await csv('ABC,x', 'type=unknown')).statusCode).toBe(400);
    });
  });

  describe('states and ownership', () => {
    it('turns Enrolled when a device reporting it enrolls, follows its check-ins, and Unknown when the device goes', async () => {
      const s = uniqueSerial();
      const id = (await create(s, 'serialNumber')).id as string;
      manualClock(t).advance(MINUTE);
      const { device } = await enroll(t, { serialNumber: s.toLowerCase(), operatingSystem: 'iOS', deviceType: 'iPhone', managedDeviceOwnerType: 'company' });
      let identity = (await get(`${BASE}/${id}`)).json();
      expect(identity).toMatchObject({ enrollmentState: 'enrolled', lastContactedDateTime: device.lastSyncDateTime, platform: 'ios' });

      manualClock(t).advance(10 * MINUTE);
      const synced = await enroll(t, { serialNumber: s.toLowerCase() });
      identity = (await get(`${BASE}/${id}`)).json();
      expect(identity.lastContactedDateTime).toBe(synced.device.lastSyncDateTime);

      expect((await t.request({ method: 'DELETE', url: `${DEVICES}/${device.id}` })).statusCode).toBe(204);
      expect((await get(`${BASE}/${id}`)).json()).toMatchObject({ enrollmentState: 'unknown', lastContactedDateTime: synced.device.lastSyncDateTime });
    });

    it('shows Unknown for an IMEI the device no longer reports, Enrolled for the one it does', async () => {
      const [p1, p2] = [tac(), tac()];
      const first = (await create(p1, 'imei')).id as string;
      const second = (await create(p2, 'imei')).id as string;
      const { device } = await enroll(t, { udid: `udid-${p1}`, imei: imei15(p1), operatingSystem: 'iOS', deviceType: 'iPhone' });
      expect((await get(`${BASE}/${first}`)).json().enrollmentState).toBe('enrolled');
      expect((await get(`${BASE}/${second}`)).json().enrollmentState).toBe('notContacted');
      await enroll(t, { udid: `udid-${p1}`, imei: imei15(p2) });
      expect((await get(`${BASE}/${first}`)).json().enrollmentState).toBe('unknown');
      expect((await get(`${BASE}/${second}`)).json().enrollmentState).toBe('enrolled');
      expect((await t.store.db.selectFrom('imported_device_identities').select('matched_device_id').where('id', '=', second).executeTakeFirstOrThrow()).matched_device_id).toBe(device.id);
    });

    it('is Enrolled at once when imported for a device already enrolled, which keeps its ownership', async () => {
      const s = uniqueSerial();
      const before = (await enroll(t, { serialNumber: s, operatingSystem: 'iOS', deviceType: 'iPad', managedDeviceOwnerType: 'personal' })).device;
      const res = await csv(`${s},bought by IT`, 'type=serialNumber');
      const identity = (await get(`${BASE}/${res.json().value[0].id}`)).json();
      expect(identity).toMatchObject({ enrollmentState: 'enrolled', lastContactedDateTime: before.lastSyncDateTime, platform: 'ios' });
      // Identifiers decide ownership at enrollment only (L1007, L1024): the record is unchanged.
      const after = (await get(`${DEVICES}/${before.id}`)).json();
      expect(after.managedDeviceOwnerType).toBe('personal');
      expect(after.lastSyncDateTime).toBe(before.lastSyncDateTime);
    });

    it('makes a device enrolling with a matching identifier corporate, and deleting the identifier leaves it corporate', async () => {
      const s = uniqueSerial();
      const identity = await create(s);
      // What an enrollment path does: ask the gate, then write the decided ownership.
      const device = { serialNumber: s, platform: 'ios' as const };
      const corporate = await matchesCorporateIdentifier(t.store.db, t.tenantId, device);
      expect(corporate).toBe(true);
      const enrolled = (await enroll(t, { serialNumber: s, operatingSystem: 'iOS', deviceType: 'iPhone', managedDeviceOwnerType: corporate ? 'company' : 'personal' })).device;
      expect(enrolled.managedDeviceOwnerType).toBe('company');
      expect((await t.request({ method: 'DELETE', url: `${BASE}/${identity.id}` })).statusCode).toBe(204);
      expect((await get(`${DEVICES}/${enrolled.id}`)).json().managedDeviceOwnerType).toBe('company');
      expect(await matchesCorporateIdentifier(t.store.db, t.tenantId, device)).toBe(false);
    });

    it('matchesCorporateIdentifier honours the platform table', async () => {
      const [p, s, w] = [tac(), uniqueSerial(), uniqueSerial()];
      await create(p, 'imei');
      await create(s, 'serialNumber');
      await create(`Microsoft Corporation,Surface Pro 9,${w}`, 'manufacturerModelSerial');
      const m = (device: Parameters<typeof matchesCorporateIdentifier>[2]) => matchesCorporateIdentifier(t.store.db, t.tenantId, device);
      expect(await m({ imei: imei15(p), platform: 'ios' })).toBe(true);
      expect(await m({ imei: imei15(p), platform: 'mac' })).toBe(false); // macOS: serial only
      expect(await m({ serialNumber: s, platform: 'mac' })).toBe(true);
      expect(await m({ serialNumber: s, platform: 'windows' })).toBe(false); // Windows: manufacturer+model+serial
      expect(await m({ serialNumber: w, manufacturer: 'Microsoft Corporation', model: 'Surface Pro 9', platform: 'windows' })).toBe(true);
      expect(await m({ serialNumber: w, manufacturer: 'Microsoft Corporation', model: 'Surface Pro 8', platform: 'windows' })).toBe(false);
      expect(await m({ imei: imei15(p), platform: 'android', osVersion: '9' })).toBe(true);
      expect(await m({ imei: imei15(p), platform: 'android', osVersion: '10' })).toBe(false);
      expect(await m({ imei: imei15(p), platform: 'androidForWork', osVersion: '12' })).toBe(false);
      expect(await m({ serialNumber: s, platform: 'android', method: 'androidFullyManaged' })).toBe(false);
    });

    it('leaves an identifier alone when an unsupported platform reports the same value', async () => {
      const s = uniqueSerial();
      const id = (await create(s)).id as string;
      await enroll(t, { serialNumber: s, operatingSystem: 'Windows', deviceType: 'desktop' });
      expect((await get(`${BASE}/${id}`)).json().enrollmentState).toBe('notContacted');
    });

    it('rolls the state back with a failed enrollment', async () => {
      const s = uniqueSerial();
      const id = (await create(s)).id as string;
      await expect(
        t.store.transaction(async (trx) => {
          await deviceRecords(t).upsert(trx, t.tenantId, { serialNumber: s, operatingSystem: 'iOS' });
          throw new Error('enrollment failed');
        }),
      ).rejects.toThrow('enrollment failed');
      expect((await get(`${BASE}/${id}`)).json().enrollmentState).toBe('notContacted');
    });
  });

  describe('tenants and roles', () => {
    it('keeps tenants apart: reads, writes, uniqueness and matching', async () => {
      const other = await t.createTenant('Other');
      const s = uniqueSerial();
      const mine = await create(s);
      expect((await get(`${BASE}/${mine.id}`, other.adminKey)).statusCode).toBe(404);
      expect((await t.request({ method: 'DELETE', url: `${BASE}/${mine.id}`, key: other.adminKey })).statusCode).toBe(404);
      expect((await t.request({ method: 'PATCH', url: `${BASE}/${mine.id}`, key: other.adminKey, payload: { description: 'x' } })).statusCode).toBe(404);
      expect((await get(BASE, other.adminKey)).json().value).toEqual([]);
      expect((await post(`${BASE}/searchExistingIdentities`, { importedDeviceIdentities: [{ importedDeviceIdentifier: s }] }, other.adminKey)).json().value).toEqual([]);
      // The other tenant may import the same identifier; its devices don't touch ours.
      const theirs = await post(BASE, { importedDeviceIdentifier: s, importedDeviceIdentityType: 'serialNumber' }, other.adminKey);
      expect(theirs.statusCode).toBe(201);
      await enroll(t, { serialNumber: s, operatingSystem: 'iOS' }, other.tenantId);
      expect((await get(`${BASE}/${mine.id}`)).json().enrollmentState).toBe('notContacted');
      expect((await get(`${BASE}/${theirs.json().id}`, other.adminKey)).json().enrollmentState).toBe('enrolled');
      expect(await matchesCorporateIdentifier(t.store.db, other.tenantId, { serialNumber: uniqueSerial() })).toBe(false);
    });

    it('lets a read-only operator read but not write, and a scoped administrator manage', async () => {
      const reader = await t.createKey('readOnlyOperator');
      expect((await get(BASE, reader)).statusCode).toBe(200);
      expect((await post(BASE, { importedDeviceIdentifier: uniqueSerial(), importedDeviceIdentityType: 'serialNumber' }, reader)).statusCode).toBe(403);
      expect((await csv('ABC1,x', 'type=serialNumber', reader)).statusCode).toBe(403);
      expect((await post(`${BASE}/importDeviceIdentityList`, { importedDeviceIdentities: [] }, reader)).statusCode).toBe(403);
      expect((await post(`${BASE}/searchExistingIdentities`, { importedDeviceIdentities: [] }, reader)).statusCode).toBe(200);
      const scoped = await t.createKey('scopedAdministrator', ['0']);
      expect((await post(BASE, { importedDeviceIdentifier: uniqueSerial(), importedDeviceIdentityType: 'serialNumber' }, scoped)).statusCode).toBe(201);
      expect((await get('/v1.0/deviceManagement/importedDeviceIdentities')).statusCode).toBe(404); // beta only
    });
  });
});
