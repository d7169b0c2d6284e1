import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDepApiFactory } from '../../src/apple/ade/admin/dep-connection.js';
import { ADE_LIMITS, NEVER } from '../../src/apple/ade/admin/model.js';
import type { DepOAuthTokens } from '../../src/apple/ade/dep-api.js';
import { adeSyncJobKey } from '../../src/apple/ade/sync/index.js';
import { parseCertificate } from '../../src/pki/certificates.js';
import { DAY } from '../../src/shared/time.js';
import { decryptServerToken } from '../../sim/apple-dep/index.js';
import { adeHarness, TOKENS, uploadPushCertificate, type AdeHarness } from '../helpers/apple.js';
import { openssl, tempDir } from '../pki/fixtures.js';
import { tokenRecipient } from '../sim/abm-helpers.js';

/** A Graph JSON body. */
type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

/** depOnboardingSettings: the enrollment program token's whole life, against the ABM simulator. */

const AUDIT = '/beta/deviceManagement/auditEvents';

async function snapshot(h: AdeHarness, tokenId: string) {
  const db = h.t.store.db;
  return {
    token: await db.selectFrom('dep_tokens').selectAll().where('id', '=', tokenId).executeTakeFirst(),
    secrets: (await db.selectFrom('secrets').select(['id', 'ciphertext']).where('tenant_id', '=', h.t.tenantId).orderBy('id').execute()).map((s) => `${s.id}:${s.ciphertext}`),
    audits: Number((await h.t.request({ method: 'GET', url: `${AUDIT}/$count` })).body),
    jobs: (await db.selectFrom('jobs').select(['dedupe_key', 'run_at']).where('tenant_id', '=', h.t.tenantId).orderBy('dedupe_key').execute()).map((j) => `${j.dedupe_key}@${j.run_at}`),
  };
}

function expectRefused(res: { statusCode: number; json(): Json }, status: number, target: string | undefined, message: RegExp) {
  expect(res.statusCode, JSON.stringify(res.json())).toBe(status);
  if (target) expect(res.json().error.target).toBe(target);
  expect(res.json().error.message).toMatch(message);
}

describe('ADE tokens: the journey', () => {
  let h: AdeHarness;
  beforeAll(async () => {
    h = await adeHarness();
  });
  afterAll(async () => h.close());

  it('creates a placeholder (consent required), hands out a public key, takes Apple\'s token and becomes active', async () => {
    for (const payload of [{}, { dataSharingConsentGranted: false }]) {
      expectRefused(await h.request({ method: 'POST', url: TOKENS, payload }), 400, 'dataSharingConsentGranted', /consent to share data with Apple/);
    }
    expectRefused(await h.request({ method: 'POST', url: TOKENS, payload: { dataSharingConsentGranted: true, tokenType: 'dep' } }), 400, 'tokenType', /not a known property/);

    const created = await h.ok({ method: 'POST', url: TOKENS, payload: { dataSharingConsentGranted: true } }, 201);
    const id = created.id as string;
    expect(created).toEqual({
      '@odata.context': 'https://openenroll.test/beta/$metadata#deviceManagement/depOnboardingSettings/$entity',
      '@odata.type': '#microsoft.graph.depOnboardingSetting',
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      appleIdentifier: null,
      tokenExpirationDateTime: NEVER,
      lastModifiedDateTime: h.clock.now().toISOString(),
      lastSuccessfulSyncDateTime: NEVER,
      lastSyncTriggeredDateTime: NEVER,
      shareTokenWithSchoolDataSyncService: false,
      lastSyncErrorCode: 0,
      tokenType: 'none',
      tokenName: null,
      syncedDeviceCount: 0,
      dataSharingConsentGranted: true,
      roleScopeTagIds: ['0'],
      status: 'pendingUpload',
      syncStatus: 'none',
      lastSyncErrorMessage: null,
      daysUntilExpiration: null,
      mdmServerName: null,
      organizationName: null,
      deviceStatusCounts: { notContacted: 0, missingProfile: 0, assigned: 0, readyToEnroll: 0, enrolled: 0, removedFromAbm: 0 },
    });

    // getEncryptionPublicKey generates the first key; generateEncryptionPublicKey replaces it.
    const first = (await h.ok({ method: 'GET', url: `${TOKENS}('${id}')/getEncryptionPublicKey()` })).value as string;
    expect(first).toMatch(/^-----BEGIN CERTIFICATE-----\n/);
    expect((await h.ok({ method: 'GET', url: `${TOKENS}/${id}/microsoft.graph.getEncryptionPublicKey` })).value).toBe(first);
    const key = await h.ok({ method: 'POST', url: `${TOKENS}/${id}/microsoft.graph.generateEncryptionPublicKey` });
    expect(key['@odata.context']).toBe('https://openenroll.test/beta/$metadata#Edm.String');
    const pem = key.value as string;
    expect(pem).not.toBe(first);
    const cert = parseCertificate(pem);
    expect(cert.subject.text).toBe(`CN=OpenEnroll ADE ${id}`);
    const row = await h.t.store.db.selectFrom('dep_tokens').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    expect(row.encryption_cert_pem).toBe(pem);
    expect(JSON.parse(row.encryption_key_history)).toEqual([{ serialNumber: parseCertificate(first).serialNumberHex.toUpperCase(), createdAt: h.clock.now().toISOString(), replacedAt: h.clock.now().toISOString() }]);
    // Only the current private key is kept, encrypted.
    const keys = await h.t.store.db.selectFrom('secrets').selectAll().where('kind', '=', 'adeTokenEncryptionKey').execute();
    expect(keys.map((k) => k.id)).toEqual([row.encryption_key_secret_id]);
    expect(keys[0]!.ciphertext).not.toContain('PRIVATE KEY');

    // The admin adds an MDM server in ABM with the key and downloads its server token.
    const { serverUuid } = h.sim.createMdmServer('Contoso Intune');
    h.sim.uploadPublicKey(serverUuid, pem);
    const p7m = h.sim.downloadServerToken(serverUuid);
    const oauth = decryptServerToken(p7m, (await h.t.app.core.secrets.getText(h.t.store.db, h.t.tenantId, row.encryption_key_secret_id!)) as string);
    const uploaded = await h.upload(id, p7m, 'ade-admin@contoso.com');
    expect(uploaded.statusCode, uploaded.body).toBe(204);

    const token = await h.ok({ method: 'GET', url: `${TOKENS}/${id}` });
    expect(token).toMatchObject({
      id,
      appleIdentifier: 'ade-admin@contoso.com',
      tokenType: 'dep',
      tokenExpirationDateTime: new Date(h.clock.now().getTime() + 365 * DAY).toISOString(),
      // The MDM server's name when the admin gave none.
      tokenName: 'Contoso Intune',
      status: 'active',
      daysUntilExpiration: 365,
      mdmServerName: 'Contoso Intune',
      organizationName: 'Simulated Organisation',
      lastSyncTriggeredDateTime: h.clock.now().toISOString(),
    });
    // The OAuth credentials are only in the secrets table, encrypted; the sync is scheduled.
    const stored = await h.t.store.db.selectFrom('dep_tokens').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    expect(stored).toMatchObject({ server_uuid: serverUuid, consumer_key: oauth.consumer_key, org_type: 'org', fetch_limit: 1000, sync_limit: 1000 });
    const secret = await h.t.store.db.selectFrom('secrets').selectAll().where('id', '=', stored.oauth_secret_id!).executeTakeFirstOrThrow();
    expect(secret.kind).toBe('adeServerToken');
    expect(secret.ciphertext).not.toContain(oauth.consumer_secret);
    expect(JSON.parse(await h.t.app.core.secrets.getText(h.t.store.db, h.t.tenantId, secret.id))).toEqual(oauth);
    const job = await h.t.store.db.selectFrom('jobs').selectAll().where('dedupe_key', '=', adeSyncJobKey(id)).executeTakeFirstOrThrow();
    expect(job.status).toBe('pending');

    // Audited, with nothing secret in the log.
    const audits = (await h.ok({ method: 'GET', url: `${AUDIT}?$filter=activityOperationType eq 'Action'` })).value as Json[];
    const upload = audits.find((a) => a.activity === 'Upload enrollment program token');
    expect(upload).toMatchObject({ category: 'Enrollment', componentName: 'AppleEnrollment' });
    const everything = JSON.stringify((await h.ok({ method: 'GET', url: AUDIT })).value);
    for (const secretValue of [oauth.consumer_secret, oauth.access_secret, oauth.access_token, p7m.slice(200, 260)]) expect(everything).not.toContain(secretValue);

    // The first sync runs.
    h.sim.generateDevices(3, { serverUuid, prefix: 'JOURNEY' });
    await h.drain();
    expect(await h.ok({ method: 'GET', url: `${TOKENS}/${id}` })).toMatchObject({ syncedDeviceCount: 3, syncStatus: 'succeeded', deviceStatusCounts: { missingProfile: 3 } });
  });
});

describe('ADE tokens: renewal', () => {
  let h: AdeHarness;
  beforeAll(async () => {
    h = await adeHarness();
  });
  afterAll(async () => h.close());

  it('keeps id, profiles, devices and default profile, and updates the expiry; the Apple ID may change', async () => {
    const { tokenId, serverUuid } = await h.connectedToken('Renewals', { tokenName: 'Main' });
    const [serial] = h.sim.generateDevices(1, { serverUuid, prefix: 'RENEW' });
    await h.drain();
    const profile = await h.ok({ method: 'POST', url: `${TOKENS}/${tokenId}/enrollmentProfiles`, payload: { '@odata.type': '#microsoft.graph.depIOSEnrollmentProfile', displayName: 'Corporate' } }, 201);
    await h.ok({ method: 'POST', url: `${TOKENS}/${tokenId}/enrollmentProfiles/${profile.id}/setDefaultProfile` }, 204);
    const before = await h.ok({ method: 'GET', url: `${TOKENS}/${tokenId}` });
    const devicesBefore = (await h.ok({ method: 'GET', url: `${TOKENS}/${tokenId}/importedAppleDeviceIdentities` })).value;
    expect(devicesBefore.map((d: Json) => d.serialNumber)).toEqual([serial]);

    // 300 days later the creator has left; another admin downloads a new token for the same server.
    h.clock.advance(300 * DAY);
    const p7m = h.sim.downloadServerToken(serverUuid);
    const res = await h.upload(tokenId, p7m, 'new-admin@contoso.com');
    expect(res.statusCode, res.body).toBe(204);
    const after = await h.ok({ method: 'GET', url: `${TOKENS}/${tokenId}` });
    expect(after).toMatchObject({
      id: tokenId,
      tokenName: 'Main',
      appleIdentifier: 'new-admin@contoso.com',
      tokenExpirationDateTime: new Date(h.clock.now().getTime() + 365 * DAY).toISOString(),
      daysUntilExpiration: 365,
      status: 'active',
    });
    expect(after.tokenExpirationDateTime > before.tokenExpirationDateTime).toBe(true);
    expect((await h.ok({ method: 'GET', url: `${TOKENS}/${tokenId}/defaultIosEnrollmentProfile` })).id).toBe(profile.id);
    expect((await h.ok({ method: 'GET', url: `${TOKENS}/${tokenId}/enrollmentProfiles` })).value.map((p: Json) => p.id)).toEqual([profile.id]);
    expect((await h.ok({ method: 'GET', url: `${TOKENS}/${tokenId}/importedAppleDeviceIdentities` })).value.map((d: Json) => d.id)).toEqual(devicesBefore.map((d: Json) => d.id));
    // One secret, replaced: the new credentials work at Apple (the old ones were retired by the download).
    const account = await (await createDepApiFactory(h.t.app.core)(h.t.store.db, h.t.tenantId, tokenId)).account();
    expect(account.server_uuid).toBe(serverUuid);
    expect(await h.t.store.db.selectFrom('secrets').select('id').where('kind', '=', 'adeServerToken').execute()).toHaveLength(1);
    const audit = (await h.ok({ method: 'GET', url: `${AUDIT}?$filter=activity eq 'Renew enrollment program token'` })).value;
    expect(audit).toHaveLength(1);
    expect(audit[0].resources[0].modifiedProperties).toContainEqual({ displayName: 'appleIdentifier', oldValue: 'ade-admin@contoso.com', newValue: 'new-admin@contoso.com' });
  });

  it('refuses a server token of another MDM server, and one of a server another token already uses; nothing is stored', async () => {
    const { tokenId, serverUuid } = await h.connectedToken('First server');
    // The admin mistakenly gives the same public key to a second MDM server and uploads its token.
    const pem = (await h.ok({ method: 'GET', url: `${TOKENS}/${tokenId}/getEncryptionPublicKey` })).value as string;
    const other = h.sim.createMdmServer('Second server');
    h.sim.uploadPublicKey(other.serverUuid, pem);
    const before = await snapshot(h, tokenId);
    const res = await h.upload(tokenId, h.sim.downloadServerToken(other.serverUuid));
    expectRefused(res, 400, 'depToken', new RegExp(`MDM server 'Second server' \\(${other.serverUuid}\\).*connected to 'First server' \\(${serverUuid}\\)`));
    expect(await snapshot(h, tokenId)).toEqual(before);

    // A second token for the first server: refused, naming the token that has it.
    const second = await h.createToken({ tokenName: 'Duplicate' });
    const secondPem = await h.publicKey(second);
    h.sim.uploadPublicKey(serverUuid, secondPem);
    const dup = await h.upload(second, h.sim.downloadServerToken(serverUuid));
    expectRefused(dup, 409, 'depToken', new RegExp(`already connected to enrollment program token 'First server' \\(${tokenId}\\)`));
    expect((await h.ok({ method: 'GET', url: `${TOKENS}/${second}` })).status).toBe('pendingUpload');
  });
});

describe('ADE tokens: refused uploads store nothing', () => {
  let h: AdeHarness;
  let tokenId: string;
  beforeAll(async () => {
    h = await adeHarness();
    tokenId = await h.createToken({ tokenName: 'Target' });
  });
  afterAll(async () => h.close());

  async function refused(p7m: string, status: number, target: string | undefined, message: RegExp, appleId = 'ade-admin@contoso.com') {
    const before = await snapshot(h, tokenId);
    expectRefused(await h.upload(tokenId, p7m, appleId), status, target, message);
    expect(await snapshot(h, tokenId)).toEqual(before);
  }

  it('refuses before a public key exists', async () => {
    await refused('x', 400, 'depToken', /no public key yet: call generateEncryptionPublicKey/);
  });

  it('refuses garbage, another key, a stale key, an expired token and a missing Apple ID', async () => {
    const pem = await h.publicKey(tokenId);
    await refused('hello, this is not a token', 400, 'depToken', /not an Apple server token/);
    await refused('', 400, 'depToken', /.+/);

    // Encrypted for another token's key: named.
    const otherToken = await h.createToken({ tokenName: 'Neighbour' });
    const otherPem = await h.publicKey(otherToken);
    const neighbour = h.sim.createMdmServer('Neighbour server');
    h.sim.uploadPublicKey(neighbour.serverUuid, otherPem);
    await refused(h.sim.downloadServerToken(neighbour.serverUuid), 400, 'depToken', new RegExp(`encrypted for a different public key: the public key of enrollment program token 'Neighbour' \\(${otherToken}\\)`));
    // Encrypted for a key we never made.
    const stranger = h.sim.createMdmServer('Stranger');
    h.sim.uploadPublicKey(stranger.serverUuid, tokenRecipient().certPem);
    await refused(h.sim.downloadServerToken(stranger.serverUuid), 400, 'depToken', /encrypted for a different public key \(recipient serial .+\), not this token's current public key/);

    // Stale: the admin regenerated the key after giving the old one to Apple.
    const { serverUuid } = h.sim.createMdmServer('Target server');
    h.sim.uploadPublicKey(serverUuid, pem);
    const staleP7m = h.sim.downloadServerToken(serverUuid);
    const current = await h.publicKey(tokenId);
    await refused(staleP7m, 400, 'depToken', new RegExp(`stale: it is encrypted for this token's previous public key \\(serial ${parseCertificate(pem).serialNumberHex}\\).*current public key \\(serial ${parseCertificate(current).serialNumberHex}`));

    // Expired (Apple would never issue one, but a file can sit in Downloads for a year).
    h.sim.uploadPublicKey(serverUuid, current);
    await refused(h.sim.downloadServerToken(serverUuid, { expiresAt: new Date(h.clock.now().getTime() - 1000) }), 400, 'depToken', /expired/);
    // The Apple ID is required (and must be an email address).
    const good = h.sim.downloadServerToken(serverUuid);
    await refused(good, 400, 'appleId', /email address/, 'not an email');
    await refused(good, 400, 'appleId', /must not be empty/, '  ');
    const missing = await h.request({ method: 'POST', url: `${TOKENS}/${tokenId}/uploadDepToken`, payload: { depToken: good } });
    expectRefused(missing, 400, 'appleId', /is required/);
    // And the good one goes in.
    expect((await h.upload(tokenId, good)).statusCode).toBe(204);
  });

  it('refuses without a valid push certificate, saying why', async () => {
    const other = await h.t.createTenant('No push certificate');
    const created = await h.request({ method: 'POST', url: TOKENS, key: other.adminKey, payload: { dataSharingConsentGranted: true } });
    const id = created.json().id as string;
    const pem = (await h.request({ method: 'POST', url: `${TOKENS}/${id}/generateEncryptionPublicKey`, key: other.adminKey })).json().value as string;
    const { serverUuid } = h.sim.createMdmServer('Other tenant');
    h.sim.uploadPublicKey(serverUuid, pem);
    const p7m = h.sim.downloadServerToken(serverUuid);
    const before = await h.t.store.db.selectFrom('dep_tokens').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    const res = await h.upload(id, p7m, 'ade-admin@contoso.com', other.adminKey);
    expect(res.statusCode).toBe(409);
    expect(res.json().error).toMatchObject({ code: 'PushCertificateRequired' });
    expect(await h.t.store.db.selectFrom('dep_tokens').selectAll().where('id', '=', id).executeTakeFirstOrThrow()).toEqual(before);
    // With a certificate it works.
    await uploadPushCertificate(h.t, { key: other.adminKey });
    expect((await h.upload(id, p7m, 'ade-admin@contoso.com', other.adminKey)).statusCode).toBe(204);
  });

  it('refuses a token Apple rejects (terms not accepted), and one Apple has replaced', async () => {
    const id = await h.createToken();
    const pem = await h.publicKey(id);
    const { serverUuid } = h.sim.createMdmServer('Terms');
    h.sim.uploadPublicKey(serverUuid, pem);
    const replaced = h.sim.downloadServerToken(serverUuid);
    const latest = h.sim.downloadServerToken(serverUuid);
    const before = await snapshot(h, id);
    expectRefused(await h.upload(id, replaced), 400, 'depToken', /Apple rejected this server token \(token_rejected\)/);
    h.sim.setTermsSigned(false);
    try {
      const res = await h.upload(id, latest);
      expect(res.statusCode).toBe(409);
      expect(res.json().error.code).toBe('AppleTermsNotSigned');
    } finally {
      h.sim.setTermsSigned(true);
    }
    expect(await snapshot(h, id)).toEqual(before);
  });

  it('accepts a token produced independently: openssl smime -encrypt -aes256 of a MIME body', async () => {
    const id = await h.createToken();
    const pem = await h.publicKey(id);
    // Real credentials from Apple (the simulator), re-encrypted by openssl to our public key.
    const recipient = tokenRecipient();
    const { serverUuid } = h.sim.createMdmServer('Via openssl');
    h.sim.uploadPublicKey(serverUuid, recipient.certPem);
    const oauth: DepOAuthTokens = decryptServerToken(h.sim.downloadServerToken(serverUuid), recipient.keyPem);
    const tmp = tempDir();
    try {
      const body = `Content-Type: text/plain;charset=UTF-8\nContent-Transfer-Encoding: 7bit\n\n-----BEGIN MESSAGE-----\n${JSON.stringify(oauth)}\n-----END MESSAGE-----\n`;
      const p7m = openssl(['smime', '-encrypt', '-aes256', '-in', tmp.file('token.txt', body), '-outform', 'PEM', tmp.file('cert.pem', pem)]).toString();
      expect(p7m).toMatch(/^-----BEGIN PKCS7-----/);
      const res = await h.upload(id, p7m);
      expect(res.statusCode, res.body).toBe(204);
    } finally {
      tmp.cleanup();
    }
    expect(await h.ok({ method: 'GET', url: `${TOKENS}/${id}` })).toMatchObject({ status: 'active', mdmServerName: 'Via openssl' });
  });
});

describe('ADE tokens: delete, limits, reads', () => {
  let h: AdeHarness;
  beforeAll(async () => {
    h = await adeHarness();
  });
  afterAll(async () => h.close());

  it('deletes a token only without devices and profiles, saying what blocks it, and stops its sync', async () => {
    const { tokenId, serverUuid } = await h.connectedToken('To delete');
    h.sim.generateDevices(2, { serverUuid, prefix: 'DEL' });
    await h.drain();
    const profile = await h.ok({ method: 'POST', url: `${TOKENS}/${tokenId}/enrollmentProfiles`, payload: { '@odata.type': '#microsoft.graph.depMacOSEnrollmentProfile', displayName: 'Macs' } }, 201);
    await h.ok({ method: 'POST', url: `${TOKENS}/${tokenId}/enrollmentProfiles/${profile.id}/setDefaultProfile` }, 204);
    let res = await h.request({ method: 'DELETE', url: `${TOKENS}/${tokenId}` });
    expectRefused(res, 409, undefined, /2 devices are assigned to this token and 1 enrollment profile exists \(including the default\)/);

    // The devices are deleted here (hidden: Apple still has them); the profile then the token can go.
    for (const d of (await h.ok({ method: 'GET', url: `${TOKENS}/${tokenId}/importedAppleDeviceIdentities` })).value) {
      await h.ok({ method: 'DELETE', url: `${TOKENS}/${tokenId}/importedAppleDeviceIdentities/${d.id}` }, 204);
    }
    res = await h.request({ method: 'DELETE', url: `${TOKENS}/${tokenId}` });
    expectRefused(res, 409, undefined, /^The enrollment program token can't be deleted: 1 enrollment profile exists \(including the default\)\./);
    await h.ok({ method: 'DELETE', url: `${TOKENS}/${tokenId}/enrollmentProfiles/${profile.id}` }, 204);
    const row = await h.t.store.db.selectFrom('dep_tokens').selectAll().where('id', '=', tokenId).executeTakeFirstOrThrow();
    await h.ok({ method: 'DELETE', url: `${TOKENS}/${tokenId}` }, 204);
    await h.ok({ method: 'GET', url: `${TOKENS}/${tokenId}` }, 404);
    expect(await h.t.store.db.selectFrom('jobs').select('id').where('dedupe_key', '=', adeSyncJobKey(tokenId)).execute()).toEqual([]);
    expect(await h.t.store.db.selectFrom('secrets').select('id').where('id', 'in', [row.oauth_secret_id!, row.encryption_key_secret_id!]).execute()).toEqual([]);
    expect(await h.t.store.db.selectFrom('dep_devices').select('id').where('token_id', '=', tokenId).execute()).toEqual([]);
  });

  it(`allows ${ADE_LIMITS.tokensPerTenant} tokens per tenant and refuses the next`, async () => {
    const t = await h.t.createTenant('Many tokens');
    const now = h.clock.now().toISOString();
    const rows = Array.from({ length: ADE_LIMITS.tokensPerTenant - 1 }, (_, i) => ({
      id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      tenant_id: t.tenantId,
      token_type: 'none',
      data_sharing_consent: 1,
      encryption_key_history: '[]',
      share_sds: 0,
      sync_phase: 'fetch',
      sync_status: 'none',
      next_sync_full: 1,
      last_sync_error_code: 0,
      synced_device_count: 0,
      created_at: now,
      updated_at: now,
    }));
    for (let i = 0; i < rows.length; i += 200) await h.t.store.db.insertInto('dep_tokens').values(rows.slice(i, i + 200)).execute();
    const last = await h.request({ method: 'POST', url: TOKENS, key: t.adminKey, payload: { dataSharingConsentGranted: true, tokenName: 'The 2,000th' } });
    expect(last.statusCode).toBe(201);
    expect((await h.request({ method: 'GET', url: `${TOKENS}/$count`, key: t.adminKey })).body).toBe(String(ADE_LIMITS.tokensPerTenant));
    const over = await h.request({ method: 'POST', url: TOKENS, key: t.adminKey, payload: { dataSharingConsentGranted: true } });
    expect(over.statusCode).toBe(409);
    expect(over.json().error).toMatchObject({ code: 'LimitExceeded' });
    expect(over.json().error.message).toMatch(/at most 2000 enrollment program tokens/);
    // Per tenant: the default tenant still adds tokens.
    expect((await h.request({ method: 'POST', url: TOKENS, payload: { dataSharingConsentGranted: true } })).statusCode).toBe(201);
  });

  it('lists, counts, filters, selects and expands the default profiles (null when unset; the navigation is 404 then)', async () => {
    const a = await h.createToken({ tokenName: 'Alpha' });
    const b = await h.createToken({ tokenName: 'Bravo' });
    const profile = await h.ok({ method: 'POST', url: `${TOKENS}/${a}/enrollmentProfiles`, payload: { '@odata.type': '#microsoft.graph.depIOSEnrollmentProfile', displayName: 'Phones' } }, 201);
    await h.ok({ method: 'POST', url: `${TOKENS}/${a}/enrollmentProfiles/${profile.id}/setDefaultProfile` }, 204);

    const filtered = await h.ok({ method: 'GET', url: `${TOKENS}?$filter=tokenName eq 'alpha' or tokenName eq 'BRAVO'&$orderby=tokenName desc&$select=id,tokenName&$count=true` });
    expect(filtered['@odata.count']).toBe(2);
    expect(filtered.value).toEqual([
      { '@odata.type': '#microsoft.graph.depOnboardingSetting', id: b, tokenName: 'Bravo' },
      { '@odata.type': '#microsoft.graph.depOnboardingSetting', id: a, tokenName: 'Alpha' },
    ]);
    expect((await h.request({ method: 'GET', url: `${TOKENS}/$count?$filter=tokenName eq 'Alpha'` })).body).toBe('1');

    const expanded = await h.ok({ method: 'GET', url: `${TOKENS}('${a}')?$expand=defaultiosenrollmentprofile,defaultMacOsEnrollmentProfile` });
    expect(expanded['@odata.context']).toBe('https://openenroll.test/beta/$metadata#deviceManagement/depOnboardingSettings(defaultIosEnrollmentProfile(),defaultMacOsEnrollmentProfile())/$entity');
    expect(expanded.defaultIosEnrollmentProfile).toMatchObject({ id: profile.id, isDefault: true, displayName: 'Phones' });
    expect(expanded.defaultMacOsEnrollmentProfile).toBeNull();
    const listExpanded = await h.ok({ method: 'GET', url: `${TOKENS}?$filter=id eq '${a}'&$select=tokenName&$expand=defaultIosEnrollmentProfile` });
    expect(listExpanded['@odata.context']).toBe('https://openenroll.test/beta/$metadata#deviceManagement/depOnboardingSettings(tokenName,defaultIosEnrollmentProfile())');
    expect(listExpanded.value[0]).toMatchObject({ tokenName: 'Alpha', defaultIosEnrollmentProfile: { id: profile.id } });
    expectRefused(await h.request({ method: 'GET', url: `${TOKENS}/${a}?$expand=enrollmentProfiles` }), 400, '$expand', /can expand/);

    const nav = await h.ok({ method: 'GET', url: `${TOKENS}/${a}/defaultIosEnrollmentProfile` });
    expect(nav).toMatchObject({ '@odata.type': '#microsoft.graph.depIOSEnrollmentProfile', id: profile.id });
    expect(nav['@odata.context']).toBe(`https://openenroll.test/beta/$metadata#deviceManagement/depOnboardingSettings('${a}')/defaultIosEnrollmentProfile/$entity`);
    for (const missing of ['defaultMacOsEnrollmentProfile', 'defaultTvOSEnrollmentProfile', 'defaultVisionOSEnrollmentProfile']) {
      await h.ok({ method: 'GET', url: `${TOKENS}/${a}/${missing}` }, 404);
    }
    await h.ok({ method: 'GET', url: `${TOKENS}/${b}/defaultIosEnrollmentProfile` }, 404);
  });

  it('patches tokenName, scope tags and consent (which can\'t be withdrawn), ignoring read-only properties sent back', async () => {
    const id = await h.createToken({ tokenName: 'Before' });
    const tag = await h.ok({ method: 'POST', url: '/beta/deviceManagement/roleScopeTags', payload: { displayName: 'Schools' } }, 201);
    const current = await h.ok({ method: 'GET', url: `${TOKENS}/${id}` });
    const { '@odata.context': _c, ...echo } = current;
    const patched = await h.ok({ method: 'PATCH', url: `${TOKENS}/${id}`, payload: { ...echo, tokenName: 'After', roleScopeTagIds: ['0', tag.id], tokenType: 'appleSchoolManager' } });
    expect(patched).toMatchObject({ tokenName: 'After', roleScopeTagIds: ['0', tag.id], tokenType: 'none' });
    expectRefused(await h.request({ method: 'PATCH', url: `${TOKENS}/${id}`, payload: { dataSharingConsentGranted: false } }), 400, 'dataSharingConsentGranted', /delete the token/);
    expectRefused(await h.request({ method: 'PATCH', url: `${TOKENS}/${id}`, payload: { roleScopeTagIds: ['999'] } }), 400, 'roleScopeTagIds', /unknown scope tag '999'/);
    const audit = (await h.ok({ method: 'GET', url: `${AUDIT}?$filter=activity eq 'Patch enrollment program token'` })).value;
    expect(audit.at(-1).resources[0].modifiedProperties).toContainEqual({ displayName: 'tokenName', oldValue: 'Before', newValue: 'After' });
  });

  it('answers getExpiringVppTokenCount with 0 (no VPP tokens yet)', async () => {
    const res = await h.ok({ method: 'GET', url: `${TOKENS}/getExpiringVppTokenCount(expiringBeforeDateTime='2026-04-01T00:00:00Z')` });
    expect(res).toEqual({ '@odata.context': 'https://openenroll.test/beta/$metadata#Edm.Int32', value: 0 });
    expectRefused(await h.request({ method: 'GET', url: `${TOKENS}/getExpiringVppTokenCount(expiringBeforeDateTime='soon')` }), 400, 'expiringBeforeDateTime', /not a date/);
  });

  it('asks the sync engine for a manual sync: 204, then 429 within 15 minutes; 409 before an upload', async () => {
    const { tokenId } = await h.connectedToken('Manual sync');
    await h.drain();
    await h.ok({ method: 'POST', url: `${TOKENS}/${tokenId}/syncWithAppleDeviceEnrollmentProgram` }, 204);
    const again = await h.request({ method: 'POST', url: `${TOKENS}/${tokenId}/microsoft.graph.syncWithAppleDeviceEnrollmentProgram` });
    expect(again.statusCode).toBe(429);
    expect(again.headers['retry-after']).toBeDefined();
    const pending = await h.createToken();
    expectRefused(await h.request({ method: 'POST', url: `${TOKENS}/${pending}/syncWithAppleDeviceEnrollmentProgram` }), 409, undefined, /no (Apple )?server token uploaded yet/);
  });
});

describe('ADE tokens: School Data Sync (Apple School Manager)', () => {
  let h: AdeHarness;
  beforeAll(async () => {
    h = await adeHarness({ sim: { orgType: 'edu', orgName: 'Contoso Schools' } });
  });
  afterAll(async () => h.close());

  it('shares at most one ASM token per tenant; enabling one turns the other off', async () => {
    const first = (await h.connectedToken('Primary schools')).tokenId;
    const second = (await h.connectedToken('Secondary schools')).tokenId;
    expect(await h.ok({ method: 'GET', url: `${TOKENS}/${first}` })).toMatchObject({ tokenType: 'appleSchoolManager', organizationName: 'Contoso Schools' });
    const sds = async () =>
      Object.fromEntries(((await h.ok({ method: 'GET', url: `${TOKENS}?$select=id,shareTokenWithSchoolDataSyncService` })).value as Json[]).map((t) => [t.id, t.shareTokenWithSchoolDataSyncService]));

    await h.ok({ method: 'POST', url: `${TOKENS}/${first}/shareForSchoolDataSyncService` }, 204);
    expect(await sds()).toEqual({ [first]: true, [second]: false });
    await h.ok({ method: 'POST', url: `${TOKENS}/${second}/microsoft.graph.shareForSchoolDataSyncService` }, 204);
    expect(await sds()).toEqual({ [first]: false, [second]: true });
    expect((await h.ok({ method: 'GET', url: `${TOKENS}?$filter=shareTokenWithSchoolDataSyncService eq true&$select=id` })).value.map((t: Json) => t.id)).toEqual([second]);
    await h.ok({ method: 'POST', url: `${TOKENS}/${second}/unshareForSchoolDataSyncService` }, 204);
    expect(await sds()).toEqual({ [first]: false, [second]: false });
    const activities = ((await h.ok({ method: 'GET', url: `${AUDIT}?$filter=startswith(activity,'Unshare')` })).value as Json[]).map((a) => a.activity);
    expect(activities).toContain(`Unshare enrollment program token from School Data Sync (School Data Sync moved to token 'Secondary schools' (${second}))`);

    // A token without a server token (type none) can't share.
    const none = await h.createToken();
    expectRefused(await h.request({ method: 'POST', url: `${TOKENS}/${none}/shareForSchoolDataSyncService` }), 400, undefined, /Apple School Manager tokens only/);
  });

  it('refuses School Data Sync on an Apple Business Manager token', async () => {
    // A token from Apple Business Manager (the journey test shows org_type 'org' makes tokenType dep).
    const id = await h.createToken();
    await h.t.store.db.updateTable('dep_tokens').set({ token_type: 'dep' }).where('id', '=', id).execute();
    expectRefused(await h.request({ method: 'POST', url: `${TOKENS}/${id}/shareForSchoolDataSyncService` }), 400, undefined, /Apple School Manager tokens only; this token's type is 'dep'/);
  });
});
