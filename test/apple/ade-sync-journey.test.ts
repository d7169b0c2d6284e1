import { afterEach, describe, expect, it } from 'vitest';
import { MINUTE } from '../../src/shared/time.js';
import { adeHarness, TOKENS, type AdeHarness } from '../helpers/apple.js';

/**
 * Seed 001 ("Enroll iOS/iPadOS devices - Automated Device Enrollment") end to end through the admin
 * API, with the server's own job scheduler, against the ABM simulator.
 */

let h: AdeHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const IOS = '#microsoft.graph.depIOSEnrollmentProfile';

describe('seed 001: Automated Device Enrollment journey', () => {
  it('public key → .p7m → upload → sync → default profile → assign serials → Apple has exactly those', async () => {
    h = await adeHarness();
    const hh = h;
    const get = (url: string) => hh.ok({ method: 'GET', url });

    // 1. Download the public key.
    const tokenId = await h.createToken();
    const pem = await h.publicKey(tokenId);
    expect(pem).toMatch(/^-----BEGIN CERTIFICATE-----/);

    // 2. In Apple Business Manager: an MDM server with that key, devices assigned to it, the server token.
    const { serverUuid } = h.sim.createMdmServer('Contoso Intune');
    h.sim.uploadPublicKey(serverUuid, pem);
    const serials = h.sim.generateDevices(40, { serverUuid, prefix: 'SEED' });
    const p7m = h.sim.downloadServerToken(serverUuid);
    expect(p7m).toMatch(/^Content-Type: application\/pkcs7-mime/m);

    // 3. Upload the token: the first sync is requested at once.
    const uploadedAt = h.clock.now().toISOString();
    expect((await h.upload(tokenId, p7m)).statusCode).toBe(204);
    expect(await get(`${TOKENS}/${tokenId}`)).toMatchObject({ lastSyncTriggeredDateTime: uploadedAt, syncStatus: 'none', syncedDeviceCount: 0 });

    // 4. The sync runs; the devices appear.
    await h.drain();
    const token = await get(`${TOKENS}/${tokenId}`);
    expect(token).toMatchObject({
      status: 'active',
      syncStatus: 'succeeded',
      lastSyncTriggeredDateTime: uploadedAt,
      lastSuccessfulSyncDateTime: uploadedAt,
      lastSyncErrorCode: 0,
      lastSyncErrorMessage: null,
      syncedDeviceCount: 40,
    });
    const listed = (await get(`${TOKENS}/${tokenId}/importedAppleDeviceIdentities?$top=999`)).value as Array<Record<string, unknown>>;
    expect(listed.map((d) => d.serialNumber).sort()).toEqual([...serials].sort());
    expect(listed.every((d) => d.discoverySource === 'deviceEnrollmentProgram')).toBe(true);
    const ios = serials.filter((s) => ['iOS', 'iPadOS'].includes(h!.sim.device(s)!.os!));
    expect(ios.length).toBeGreaterThan(10);

    // 5. Two profiles; the first is the token's default.
    const profiles = `${TOKENS}/${tokenId}/enrollmentProfiles`;
    const standard = await h.ok({ method: 'POST', url: profiles, payload: { '@odata.type': IOS, displayName: 'Standard' } }, 201);
    const kiosk = await h.ok({ method: 'POST', url: profiles, payload: { '@odata.type': IOS, displayName: 'Kiosk' } }, 201);
    await h.ok({ method: 'POST', url: `${profiles}/${standard.id}/setDefaultProfile` }, 204);

    // 6. Assign serials to the second.
    const chosen = ios.slice(0, 5);
    await h.ok({ method: 'POST', url: `${profiles}/${kiosk.id}/updateDeviceProfileAssignment`, payload: { deviceIds: chosen } }, 204);
    await h.drain();

    // 7. Apple holds the chosen profile for exactly those serials; the other iOS devices have the default.
    const standardUuid = (await h.t.store.db.selectFrom('dep_profiles').select('apple_profile_uuid').where('id', '=', standard.id as string).executeTakeFirstOrThrow()).apple_profile_uuid;
    const kioskUuid = (await h.t.store.db.selectFrom('dep_profiles').select('apple_profile_uuid').where('id', '=', kiosk.id as string).executeTakeFirstOrThrow()).apple_profile_uuid;
    expect(kioskUuid).toBeTruthy();
    expect(serials.filter((s) => h!.sim.device(s)!.profile_uuid === kioskUuid).sort()).toEqual([...chosen].sort());
    expect(serials.filter((s) => h!.sim.device(s)!.profile_uuid === standardUuid).sort()).toEqual(ios.filter((s) => !chosen.includes(s)).sort());

    // New devices at Apple; the admin syncs: they arrive with the default profile assigned at Apple.
    const arriving = h.sim.generateDevices(5, { serverUuid, prefix: 'LATE' }).filter((s) => ['iOS', 'iPadOS'].includes(h!.sim.device(s)!.os!));
    h.clock.advance(MINUTE);
    const requestedAt = h.clock.now().toISOString();
    await h.ok({ method: 'POST', url: `${TOKENS}/${tokenId}/syncWithAppleDeviceEnrollmentProgram` }, 204);
    // Again within 15 minutes: 429, Retry-After and why.
    h.clock.advance(14 * MINUTE);
    const again = await h.request({ method: 'POST', url: `${TOKENS}/${tokenId}/syncWithAppleDeviceEnrollmentProgram` });
    expect(again.statusCode).toBe(429);
    expect(again.headers['retry-after']).toBe('60');
    expect(again.json().error).toMatchObject({ code: 'TooManyRequests', message: expect.stringMatching(/at most once every 15 minutes/) });
    await h.drain();
    for (const s of arriving) expect(h.sim.device(s)!.profile_uuid).toBe(standardUuid);
    expect(await get(`${TOKENS}/${tokenId}`)).toMatchObject({ syncStatus: 'succeeded', lastSyncTriggeredDateTime: requestedAt, lastSuccessfulSyncDateTime: h.clock.now().toISOString(), syncedDeviceCount: 45 });
  });
});
