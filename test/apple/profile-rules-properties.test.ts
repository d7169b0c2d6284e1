import { webcrypto } from 'node:crypto';
import fs from 'node:fs';
import * as x509 from '@peculiar/x509';
import { Ajv, type ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  APPLE_PROFILE_SCHEMA,
  APPLE_SKIP_KEYS,
  checkAppleProfile,
  checkBody,
  createBodySchema,
  panesFor,
  parseProfileCreate,
  parseProfilePatch,
  patchBodySchema,
  toAppleProfile,
  toGraphEntity,
  writableProperties,
  type DepProfilePlatform,
  type DepProfileWrite,
  type StoredDepProfile,
} from '../../src/apple/ade/profiles/index.js';
import { GraphError } from '../../src/graph/errors.js';

x509.cryptoProvider.set('default', webcrypto as never);

const TYPE: Record<DepProfilePlatform, string> = { iOS: '#microsoft.graph.depIOSEnrollmentProfile', macOS: '#microsoft.graph.depMacOSEnrollmentProfile' };
const OPTIONS = { serverUrl: 'https://mdm.contoso.example', enrollmentUrl: '/ade/enroll', configurationWebUrl: '/ade/sign-in', orgMagic: 'contoso' };

const addFormats = addFormatsModule as unknown as <T>(ajv: T) => T;
const fixtureFile = new URL('../fixtures/public/apple/schema-dep-Profile.json', import.meta.url);
const appleSchema: object = fs.existsSync(fixtureFile) ? (JSON.parse(fs.readFileSync(fixtureFile, 'utf8')) as object) : APPLE_PROFILE_SCHEMA;
const appleCheck = addFormats(new Ajv2020({ strict: false })).compile(appleSchema);
// Fastify's body validation: Ajv 8 with the options src/server/app.ts sets.
const fastifyAjv = addFormats(new Ajv({ removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false, strict: false }));
const fastifyCheck: Record<string, ValidateFunction> = {};

/** Runs `fn`; a GraphError must be a 400 that names a property; anything else fails the test. */
function outcome<T>(fn: () => T): { ok: true; value: T } | { ok: false; error: GraphError } {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    if (!(err instanceof GraphError)) throw err;
    expect(err.statusCode).toBe(400);
    expect(err.code).toBe('BadRequest');
    expect(err.message.length).toBeGreaterThan(0);
    if (err.options.target) expect(err.message).toContain(err.options.target);
    return { ok: false, error: err };
  }
}

async function selfSigned(cn: string): Promise<Buffer> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '0c',
    name: `CN=${cn}`,
    notBefore: new Date('2024-01-01T00:00:00Z'),
    notAfter: new Date('2034-01-01T00:00:00Z'),
    signingAlgorithm: alg,
    keys,
  });
  return Buffer.from(cert.rawData);
}

let certs: string[] = [];
beforeAll(async () => {
  certs = (await Promise.all([selfSigned('A'), selfSigned('B')])).map((c) => c.toString('base64'));
});

// Mostly off, so that a good share of random profiles passes every rule.
const flag = fc.oneof({ weight: 7, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) });
const opt = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: null, freq: 2 });
/** Mostly a good value, sometimes a bad one. */
const pick = <T>(good: readonly T[], bad: readonly T[]) =>
  bad.length ? fc.oneof({ weight: 40, arbitrary: fc.constantFrom(...good) }, { weight: 1, arbitrary: fc.constantFrom(...bad) }) : fc.constantFrom(...good);

function commonFields() {
  return {
    displayName: fc.oneof({ weight: 8, arbitrary: fc.constant('Profile') }, { weight: 1, arbitrary: fc.string({ maxLength: 130 }) }),
    description: opt(fc.string({ maxLength: 20 })),
    requiresUserAuthentication: flag,
    enableAuthenticationViaCompanyPortal: flag,
    requireCompanyPortalOnSetupAssistantEnrolledDevices: flag,
    configurationWebUrl: flag,
    deviceNameTemplate: pick([null, '{{SERIAL}}', '{{DEVICETYPE}}-{{SERIAL}}', ''], ['x'.repeat(64), '{{UDID}}', ' ']),
    enrollmentTimeAzureAdGroupIds: fc.constantFrom([], ['0d3a3b9e-0000-4000-8000-000000000001'], null),
    isMandatory: fc.boolean(),
    profileRemovalDisabled: flag,
    supervisedModeEnabled: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    supportDepartment: pick([null, 'IT', '', 'Help desk'], ['d'.repeat(126)]),
    supportPhoneNumber: pick([null, '+1 555 0100', ''], ['5'.repeat(51)]),
    waitForDeviceConfiguredConfirmation: flag,
  };
}

function panes(platform: DepProfilePlatform) {
  return Object.fromEntries(panesFor(platform).map((p) => [p.property, fc.boolean()]));
}

function iosBody() {
  const cert = pick(
    certs.map((c) => ({ certificate: c })),
    [{ certificate: 'AAAA' }, { certificate: certs[0], thumbprint: '00' }],
  );
  return fc.record(
    {
      ...commonFields(),
      awaitDeviceConfiguredConfirmation: flag,
      carrierActivationUrl: pick([null, 'https://carrier.example/activate', ''], ['http://carrier.example']),
      companyPortalVppTokenId: pick([null, null, 'vpp-1', ''], ['a b']),
      enableSharedIPad: flag,
      enableSingleAppEnrollmentMode: flag,
      forceTemporarySession: flag,
      iTunesPairingMode: fc.constantFrom('allow', 'allow', 'disallow', 'requiresCertificate'),
      managementCertificates: opt(fc.uniqueArray(cert, { minLength: 1, maxLength: 2, selector: (c) => c.certificate })),
      passcodeLockGracePeriodInSeconds: pick([null, null, null, 0, 60, 14_400], [14_401, -1]),
      sharedIPadMaximumUserCount: fc.constantFrom(0, 0, 0, 1, 24),
      temporarySessionTimeoutInSeconds: pick([null, 0, 0, 0, 30, 600], [1, 29]),
      userSessionTimeoutInSeconds: pick([null, 0, 0, 0, 30, 600], [1, 29]),
      userlessSharedAadModeEnabled: flag,
      ...panes('iOS'),
    },
    { requiredKeys: [] },
  );
}

function macBody() {
  return fc.record(
    {
      ...commonFields(),
      adminAccountFullName: pick([null, null, 'IT Admin', ''], [' ']),
      adminAccountUserName: pick([null, 'itadmin', ''], ['bad name']),
      adminAccountPassword: pick([null, null, 'long enough'], ['short']),
      autoAdvanceSetupEnabled: flag,
      depProfileAdminAccountPasswordRotationSetting: opt(
        fc.record({
          autoRotationPeriodInDays: opt(fc.constantFrom(1, 90, 180, 181)),
          depProfileDelayAutoRotationSetting: opt(fc.record({ onRetrievalAutoRotatePasswordEnabled: fc.boolean(), onRetrievalDelayAutoRotatePasswordInHours: opt(fc.constantFrom(1, 24, 25)) })),
        }),
      ),
      dontAutoPopulatePrimaryAccountInfo: flag,
      enableRestrictEditing: flag,
      hideAdminAccount: flag,
      primaryAccountFullName: pick([null, null, '{{username}}', 'Ann'], ['{{upn}}']),
      primaryAccountUserName: pick([null, null, '{{partialupn}}', 'ann'], ['itadmin', '{{upn}}']),
      requestRequiresNetworkTether: fc.boolean(),
      setPrimarySetupAccountAsRegularUser: flag,
      skipPrimarySetupAccountCreation: flag,
      usePlatformSSODuringSetupAssistant: flag,
      ...panes('macOS'),
    },
    { requiredKeys: [] },
  );
}

/** Profiles built from one of the console's coherent scenarios, with random panes and labels. */
function coherentBody() {
  const labels = {
    isMandatory: fc.boolean(),
    deviceNameTemplate: fc.constantFrom(null, '{{SERIAL}}', 'Contoso-{{DEVICETYPE}}-{{SERIAL}}'),
    supportDepartment: fc.constantFrom(null, 'IT'),
    supportPhoneNumber: fc.constantFrom(null, '+1 555 0100'),
    profileRemovalDisabled: fc.boolean(),
  };
  const iosScenario = fc.constantFrom<Record<string, unknown>>(
    {},
    { requiresUserAuthentication: true },
    { requiresUserAuthentication: true, configurationWebUrl: true },
    { requiresUserAuthentication: true, configurationWebUrl: true, companyPortalVppTokenId: 'vpp-1' },
    { requiresUserAuthentication: true, enableAuthenticationViaCompanyPortal: true, companyPortalVppTokenId: 'vpp-1', enableSingleAppEnrollmentMode: true },
    { requiresUserAuthentication: true, requireCompanyPortalOnSetupAssistantEnrolledDevices: true, awaitDeviceConfiguredConfirmation: true },
    { enableSharedIPad: true, sharedIPadMaximumUserCount: 10, passcodeLockGracePeriodInSeconds: 0, userSessionTimeoutInSeconds: 30 },
    { enableSharedIPad: true, forceTemporarySession: true, temporarySessionTimeoutInSeconds: 600 },
    { userlessSharedAadModeEnabled: true, carrierActivationUrl: 'https://carrier.example/activate' },
    { iTunesPairingMode: 'disallow' },
    { iTunesPairingMode: 'requiresCertificate', managementCertificates: certs.map((certificate) => ({ certificate })) },
  );
  const macScenario = fc.constantFrom<Record<string, unknown>>(
    {},
    { requiresUserAuthentication: true, configurationWebUrl: true },
    { requiresUserAuthentication: true, usePlatformSSODuringSetupAssistant: true },
    { autoAdvanceSetupEnabled: true },
    {
      requiresUserAuthentication: true,
      adminAccountUserName: 'itadmin',
      adminAccountPassword: 'long enough',
      hideAdminAccount: true,
      primaryAccountUserName: '{{partialupn}}',
      primaryAccountFullName: '{{username}}',
      enableRestrictEditing: true,
      depProfileAdminAccountPasswordRotationSetting: { autoRotationPeriodInDays: 30, depProfileDelayAutoRotationSetting: { onRetrievalAutoRotatePasswordEnabled: true, onRetrievalDelayAutoRotatePasswordInHours: 4 } },
    },
    { adminAccountUserName: 'itadmin', skipPrimarySetupAccountCreation: true },
  );
  return fc.oneof(
    fc.tuple(iosScenario, fc.record({ ...labels, ...panes('iOS') })).map(([a, b]) => ({ platform: 'iOS' as const, body: { '@odata.type': TYPE.iOS, displayName: 'Profile', ...b, ...a } })),
    fc.tuple(macScenario, fc.record({ ...labels, ...panes('macOS') })).map(([a, b]) => ({ platform: 'macOS' as const, body: { '@odata.type': TYPE.macOS, displayName: 'Profile', ...b, ...a } })),
  );
}

const profileBody = () =>
  fc.oneof(
    coherentBody(),
    iosBody().map((b) => ({ platform: 'iOS' as const, body: { '@odata.type': TYPE.iOS, displayName: 'Profile', ...b } })),
    macBody().map((b) => ({ platform: 'macOS' as const, body: { '@odata.type': TYPE.macOS, displayName: 'Profile', ...b } })),
  );

const trueFlags = (platform: DepProfilePlatform, settings: object) => panesFor(platform).filter((p) => (settings as Record<string, unknown>)[p.property] === true).map((p) => p.skipKey);
const stored = (w: DepProfileWrite): StoredDepProfile => ({ ...w, id: 'p', isDefault: false }) as StoredDepProfile;

describe('profile rules, by property', () => {
  it('a profile that validates maps to an Apple profile that passes the schema; skip keys are the true pane flags', () => {
    let accepted = 0;
    fc.assert(
      fc.property(profileBody(), ({ platform, body }) => {
        const r = outcome(() => parseProfileCreate(body));
        if (!r.ok) return;
        accepted++;
        const w = r.value;
        expect(w.platform).toBe(platform);
        const a = toAppleProfile(w, OPTIONS);
        expect(appleCheck(a), JSON.stringify(appleCheck.errors)).toBe(true);
        expect(checkAppleProfile(a)).toEqual([]);

        const flags = trueFlags(platform, w.settings);
        const entity = toGraphEntity(stored(w));
        expect(entity.enabledSkipKeys).toEqual(flags);
        // The body's own pane flags survive validation untouched.
        expect(flags).toEqual(panesFor(platform).filter((p) => (body as Record<string, unknown>)[p.property] === true).map((p) => p.skipKey));
        const shared = w.platform === 'iOS' && w.settings.enableSharedIPad;
        const expected = shared ? panesFor('iOS').map((p) => p.skipKey) : flags;
        expect(a.skip_setup_items).toEqual(expected.filter((k) => APPLE_SKIP_KEYS.has(k)));
        expect(a.is_mdm_removable).toBe(!w.settings.profileRemovalDisabled);
        expect('configuration_web_url' in a).toBe(w.settings.requiresUserAuthentication && w.settings.configurationWebUrl);
      }),
      { numRuns: 400 },
    );
    expect(accepted).toBeGreaterThan(100);
  });

  it('validation is idempotent: the entity sent back as a PATCH changes nothing', () => {
    fc.assert(
      fc.property(profileBody(), ({ body }) => {
        const r = outcome(() => parseProfileCreate(body));
        if (!r.ok) return;
        const s = stored(r.value);
        const again = parseProfilePatch(s, toGraphEntity(s));
        expect(again.settings).toEqual(s.settings);
        expect(again.displayName).toBe(s.displayName);
      }),
      { numRuns: 200 },
    );
  });

  it('random JSON never throws anything but a 400 GraphError', () => {
    const odataType = fc.constantFrom(TYPE.iOS, TYPE.macOS, 'microsoft.graph.depIOSEnrollmentProfile', '#microsoft.graph.enrollmentProfile', 42, undefined);
    fc.assert(
      fc.property(fc.anything(), odataType, (value, t) => {
        outcome(() => parseProfileCreate(value));
        if (value !== null && typeof value === 'object' && !Array.isArray(value)) outcome(() => parseProfileCreate({ ...value, '@odata.type': t }));
      }),
      { numRuns: 300 },
    );
  });

  it('known properties with random values never throw anything but a 400 GraphError, create or PATCH', () => {
    const keys = [...new Set([...Object.keys(writableProperties('iOS')), ...Object.keys(writableProperties('macOS')), 'id', 'isDefault', 'enabledSkipKeys'])];
    const body = fc.dictionary(fc.constantFrom(...keys), fc.oneof(fc.jsonValue(), fc.boolean(), fc.integer(), fc.constant(null), fc.string({ maxLength: 70 })), { maxKeys: 8 });
    const base = stored(parseProfileCreate({ '@odata.type': TYPE.iOS, displayName: 'Base', enableSharedIPad: true, sharedIPadMaximumUserCount: 3 }));
    const baseMac = stored(parseProfileCreate({ '@odata.type': TYPE.macOS, displayName: 'Base', adminAccountUserName: 'itadmin' }));
    fc.assert(
      fc.property(body, fc.constantFrom<DepProfilePlatform>('iOS', 'macOS'), (b, platform) => {
        outcome(() => parseProfileCreate({ ...b, '@odata.type': TYPE[platform] }));
        const r = outcome(() => parseProfilePatch(platform === 'iOS' ? base : baseMac, b));
        if (r.ok) expect(checkAppleProfile(toAppleProfile(r.value, OPTIONS))).toEqual([]);
      }),
      { numRuns: 400 },
    );
  });

  it("the body schemas accept exactly what Fastify's Ajv accepts", () => {
    const keys = [...Object.keys(writableProperties('iOS')), 'adminAccountUserName', 'frobnicate', '@odata.type', 'id'];
    const value = fc.oneof(
      fc.boolean(),
      fc.integer({ min: -2, max: 20_000 }),
      fc.constant(null),
      fc.constantFrom('', 'x', 'allow', TYPE.iOS, TYPE.macOS, 'n'.repeat(126)),
      fc.constant([{ certificate: 'AAAA', extra: 1 }]),
      fc.jsonValue(),
    );
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...keys), value, { maxKeys: 6 }), fc.constantFrom<DepProfilePlatform>('iOS', 'macOS'), fc.boolean(), (b, platform, create) => {
        const schema = create ? createBodySchema(platform) : patchBodySchema(platform);
        const key = `${platform}-${create}`;
        fastifyCheck[key] ??= fastifyAjv.compile(schema);
        const byAjv = fastifyCheck[key](b);
        const byUs = outcome(() => checkBody(schema, b, TYPE[platform])).ok;
        expect(byUs).toBe(byAjv);
      }),
      { numRuns: 500 },
    );
  });
});
