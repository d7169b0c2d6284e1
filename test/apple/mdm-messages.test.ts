import crypto from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { adminCommand, accountConfiguration, configuresAccounts, fillAccountVariables, macPasswordHash, settingsDeviceName, deviceNameOf } from '../../src/apple/mdm/commands.js';
import { appleFamily, deviceInputFromFacts, graphPlatform, installedProfiles, inventoryFacts, platformOf } from '../../src/apple/mdm/device-facts.js';
import { certificateFromHeader, IdentityError, signerOfMdmSignature, trustedProxyMatcher } from '../../src/apple/mdm/identity.js';
import { channelOf, commandDict, LIMITS, MessageError, parseCheckin, parseReport, plistToJson, SHARED_IPAD_USER_ID } from '../../src/apple/mdm/messages.js';
import { defaultSettings } from '../../src/apple/ade/profiles/model.js';
import { GraphError } from '../../src/graph/errors.js';
import { createSignedData } from '../../src/pki/signed.js';
import { buildPlist, parsePlistDict, type PlistValue } from '../../src/shared/plist.js';
import { testCa, testLeaf } from '../pki/fixtures.js';
import { fixture } from './mdm-support.js';

/** The pure parts of the MDM core: message parsing, channels, commands, facts, identity extraction. */

const TOPIC = 'com.apple.mgmt.External.e0bd1eac-1f17-4c8e-8a63-dd17d3dd35d9';

describe('check-in parsing', () => {
  it('reads the public fixtures', () => {
    const auth = parseCheckin(parsePlistDict(fixture('checkin-authenticate-macos-10.12.6.plist')));
    expect(auth).toEqual({
      type: 'Authenticate',
      topic: TOPIC,
      channel: expect.objectContaining({ type: 'Device', key: 'device:66ADE930-5FDF-5EC4-8429-15640684C489', isUserChannel: false }),
      device: { buildVersion: '16G2136', deviceName: 'Fruit', model: 'iMac14,2', modelName: 'iMac', osVersion: '10.12.6', productName: 'iMac14,2', serialNumber: 'C02MT66KFLHH' },
    });
    const tu = parseCheckin(parsePlistDict(fixture('checkin-tokenupdate-ipad-ios9-unlocktoken.plist')));
    expect(tu).toMatchObject({ type: 'TokenUpdate', pushMagic: 'CEFDF0BD-E342-4A27-8742-E930EA116B0A', awaitingConfiguration: false, notOnConsole: false });
    if (tu.type !== 'TokenUpdate') throw new Error('unreachable');
    expect(tu.token.length).toBe(32);
    expect(tu.unlockToken!.subarray(0, 4).toString()).toBe('DATA');
    const out = parseCheckin(parsePlistDict(fixture('checkin-checkout-ios11.plist')));
    expect(out).toMatchObject({ type: 'CheckOut', topic: 'com.apple.mgmt.XServer.1c111c11-1c11-1c11-1c11-1c111c111c11', channel: { udid: '1c111c111c111c111c111c111c111c111c111c11' } });
  });

  it('resolves channels: UDID first, EnrollmentID for User Enrollment, users under their device, Shared iPad users by short name', () => {
    expect(channelOf({ UDID: 'U1' })).toMatchObject({ type: 'Device', key: 'device:U1', deviceKey: 'device:U1' });
    expect(channelOf({ UDID: 'U1', EnrollmentID: 'E1' })).toMatchObject({ type: 'Device', key: 'device:U1' });
    expect(channelOf({ EnrollmentID: 'E1' })).toMatchObject({ type: 'UserEnrollmentDevice', key: 'ue:E1', udid: null, enrollmentId: 'E1' });
    expect(channelOf({ EnrollmentID: 'E1', EnrollmentUserID: 'EU1' })).toMatchObject({ type: 'UserEnrollmentUser', key: 'ue:E1/user:EU1', deviceKey: 'ue:E1', isUserChannel: true });
    expect(channelOf({ UDID: 'U1', UserID: 'GUID1', UserShortName: 'ada', UserLongName: 'Ada' })).toMatchObject({
      type: 'User',
      key: 'device:U1/user:GUID1',
      deviceKey: 'device:U1',
      userShortName: 'ada',
      userLongName: 'Ada',
    });
    expect(channelOf({ UDID: 'U1', UserID: SHARED_IPAD_USER_ID, UserShortName: 'kid@school.appleid.com' }).key).toBe(`device:U1/user:${SHARED_IPAD_USER_ID}:kid@school.appleid.com`);
    expect(() => channelOf({ UDID: 'U1', UserID: SHARED_IPAD_USER_ID })).toThrow(MessageError);
    expect(() => channelOf({})).toThrow(/UDID or EnrollmentID/);
  });

  it('limits identifiers at 128 characters of [A-Za-z0-9._-]', () => {
    expect(channelOf({ UDID: 'A'.repeat(LIMITS.identifier) }).udid).toHaveLength(128);
    expect(() => channelOf({ UDID: 'A'.repeat(LIMITS.identifier + 1) })).toThrow(MessageError);
    for (const bad of ['a/b', 'a b', '-lead', 'a:b', 'ünï']) expect(() => channelOf({ UDID: bad })).toThrow(MessageError);
  });

  it('checks each message type against its keys', () => {
    const base = { UDID: 'U1', Topic: TOPIC };
    expect(() => parseCheckin({ ...base, MessageType: 'Authenticate', UserID: 'X' })).toThrow(/device channel/);
    expect(() => parseCheckin({ MessageType: 'Authenticate', UDID: 'U1' })).toThrow(/Topic is required/);
    expect(() => parseCheckin({ ...base, MessageType: 'Authenticate', Topic: 'com.example' })).toThrow(/com\.apple\.mgmt\./);
    expect(() => parseCheckin({ ...base, MessageType: 'TokenUpdate', PushMagic: 'x' })).toThrow(/Token is required/);
    expect(() => parseCheckin({ ...base, MessageType: 'TokenUpdate', Token: Buffer.alloc(0), PushMagic: 'x' })).toThrow(/Token is empty/);
    expect(() => parseCheckin({ ...base, MessageType: 'TokenUpdate', Token: Buffer.alloc(LIMITS.pushToken + 1), PushMagic: 'x' })).toThrow(/larger/);
    expect(parseCheckin({ ...base, MessageType: 'TokenUpdate', Token: Buffer.alloc(LIMITS.pushToken, 1), PushMagic: 'x' }).type).toBe('TokenUpdate');
    expect(() => parseCheckin({ ...base, MessageType: 'TokenUpdate', Token: Buffer.alloc(32), PushMagic: 'x', AwaitingConfiguration: 'yes' })).toThrow(/boolean/);
    expect(() => parseCheckin({ ...base, MessageType: 'TokenUpdate', Token: Buffer.alloc(32), PushMagic: 'x\u0000' })).toThrow(/control/);
    expect(parseCheckin({ UDID: 'U1', MessageType: 'CheckOut' })).toMatchObject({ type: 'CheckOut', topic: null });
    expect(parseCheckin({ UDID: 'U1', MessageType: 'SetBootstrapToken' })).toMatchObject({ bootstrapToken: null });
    expect(parseCheckin({ UDID: 'U1', MessageType: 'SetBootstrapToken', BootstrapToken: Buffer.alloc(0) })).toMatchObject({ bootstrapToken: null });
    expect(() => parseCheckin({ UDID: 'U1', MessageType: 'DeclarativeManagement' })).toThrow(/Endpoint/);
    expect(() => parseCheckin({ UDID: 'U1', MessageType: 'GetToken' })).toThrow(/TokenServiceType/);
    expect(() => parseCheckin({ UDID: 'U1', MessageType: 'Reboot' })).toThrow(/unknown MessageType/);
    expect(() => parseCheckin({ UDID: 'U1', MessageType: 7 })).toThrow(/string/);
  });

  it('reads command reports', () => {
    expect(parseReport({ UDID: 'U1', Status: 'Idle', CommandUUID: 'ignored' })).toMatchObject({ status: 'Idle', commandUuid: null });
    expect(() => parseReport({ UDID: 'U1', Status: 'NotNow' })).toThrow(/CommandUUID is required/);
    expect(() => parseReport({ UDID: 'U1', Status: 'Done', CommandUUID: 'C' })).toThrow(/unknown Status/);
    const err = parseReport({ UDID: 'U1', Status: 'Error', CommandUUID: 'C', ErrorChain: [{ ErrorCode: 12, ErrorDomain: 'D', LocalizedDescription: 'L' }] });
    expect(err.errorChain).toEqual([{ errorCode: 12, errorDomain: 'D', localizedDescription: 'L', usEnglishDescription: null }]);
    expect(() => parseReport({ UDID: 'U1', Status: 'Error', CommandUUID: 'C', ErrorChain: 'bad' })).toThrow(MessageError);
    const long = parseReport({ UDID: 'U1', Status: 'Error', CommandUUID: 'C', ErrorChain: Array.from({ length: 100 }, () => ({ ErrorCode: 1 })) });
    expect(long.errorChain).toHaveLength(LIMITS.errorChain);
  });

  it('never throws anything but MessageError, whatever the dictionary (property)', () => {
    const value: fc.Arbitrary<PlistValue> = fc.letrec<{ v: PlistValue }>((tie) => ({
      v: fc.oneof(
        { depthSize: 'small' },
        fc.string(),
        fc.integer(),
        fc.boolean(),
        fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
        fc.array(tie('v'), { maxLength: 3 }),
        fc.dictionary(fc.string({ maxLength: 8 }), tie('v'), { maxKeys: 3 }),
      ),
    })).v;
    const keys = fc.constantFrom('MessageType', 'UDID', 'EnrollmentID', 'UserID', 'UserShortName', 'Topic', 'Token', 'PushMagic', 'Status', 'CommandUUID', 'ErrorChain', 'Endpoint', 'BootstrapToken');
    const types = fc.constantFrom('Authenticate', 'TokenUpdate', 'CheckOut', 'UserAuthenticate', 'DeclarativeManagement', 'GetBootstrapToken', 'SetBootstrapToken', 'GetToken', 'Idle', 'NotNow');
    fc.assert(
      fc.property(fc.dictionary(keys, fc.oneof(value, types, fc.constant(TOPIC), fc.constant('U-1'))), (d) => {
        for (const parse of [parseCheckin, parseReport]) {
          try {
            parse(d as Record<string, PlistValue>);
          } catch (err) {
            if (!(err instanceof MessageError)) throw err;
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('round-trips any valid TokenUpdate through a plist (property)', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,40}$/), fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.uuid(), fc.boolean(), (udid, token, magic, awaiting) => {
        const body = buildPlist({ MessageType: 'TokenUpdate', UDID: udid, Topic: TOPIC, Token: Buffer.from(token), PushMagic: magic, AwaitingConfiguration: awaiting });
        const msg = parseCheckin(parsePlistDict(body));
        expect(msg).toMatchObject({ type: 'TokenUpdate', pushMagic: magic, awaitingConfiguration: awaiting, channel: { key: `device:${udid}` } });
        if (msg.type === 'TokenUpdate') expect(msg.token.equals(Buffer.from(token))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe('commands', () => {
  it('builds the command dictionary Apple expects', () => {
    expect(commandDict('C-1', 'DeviceInformation', { Queries: ['OSVersion'], RequestType: 'Ignored' })).toEqual({ Command: { RequestType: 'DeviceInformation', Queries: ['OSVersion'] }, CommandUUID: 'C-1' });
    expect(deviceNameOf(settingsDeviceName('iPad-123').payload)).toBe('iPad-123');
    expect(plistToJson({ a: Buffer.from('hi'), d: new Date('2024-01-02T03:04:05Z'), n: [1, true] })).toEqual({ a: 'aGk=', d: '2024-01-02T03:04:05.000Z', n: [1, true] });
  });

  it('validates admin commands and names the property', () => {
    const target = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        expect(err).toBeInstanceOf(GraphError);
        return (err as GraphError).options.target;
      }
      throw new Error('expected a refusal');
    };
    expect(adminCommand('DeviceInformation', undefined).payload.Queries).toContain('OSVersion');
    expect(adminCommand('DeviceConfigured', {})).toEqual({ requestType: 'DeviceConfigured', payload: {} });
    expect(target(() => adminCommand('RestartDevice', {}))).toBe('requestType');
    expect(target(() => adminCommand('ProfileList', []))).toBe('payload');
    expect(target(() => adminCommand('DeviceInformation', { Queries: Array.from({ length: 101 }, (_, i) => `Q${i}`) }))).toBe('payload.Queries');
    expect(adminCommand('DeviceInformation', { Queries: Array.from({ length: 100 }, (_, i) => `Q${i}`) }).payload.Queries).toHaveLength(100);
    expect(adminCommand('Settings', { Settings: [{ Item: 'DeviceName', DeviceName: 'x'.repeat(255) }] }).payload).toBeDefined();
    expect(target(() => adminCommand('Settings', { Settings: [{ Item: 'DeviceName', DeviceName: 'x'.repeat(256) }] }))).toBe('payload.Settings[0].DeviceName');
    expect(target(() => adminCommand('Settings', { Settings: [{ Item: 'DeviceName', DeviceName: 'a\nb' }] }))).toBe('payload.Settings[0].DeviceName');
    const big = Buffer.alloc(1024 * 1024 + 1, 0x30);
    expect(target(() => adminCommand('InstallProfile', { Payload: big.toString('base64') }))).toBe('payload.Payload');
    const der = Buffer.concat([Buffer.from([0x30, 0x82]), crypto.randomBytes(100)]);
    expect(adminCommand('InstallProfile', { Payload: der.toString('base64') }).payload.Payload).toEqual(der);
  });

  it('hashes admin passwords as Apple does (salted PBKDF2-SHA512, 128-byte entropy)', async () => {
    const salt = Buffer.alloc(32, 7);
    const hash = await macPasswordHash('pässword', { salt, iterations: 1000 });
    const dict = parsePlistDict(hash)['SALTED-SHA512-PBKDF2'] as Record<string, PlistValue>;
    expect(dict.iterations).toBe(1000);
    expect(dict.salt).toEqual(salt);
    expect(dict.entropy).toEqual(crypto.pbkdf2Sync(Buffer.from('pässword'), salt, 1000, 128, 'sha512'));
    expect((parsePlistDict(await macPasswordHash('x'))['SALTED-SHA512-PBKDF2'] as Record<string, PlistValue>).iterations).toBe(40_000);
  });

  it('builds AccountConfiguration from a macOS profile', () => {
    const s = defaultSettings('macOS');
    expect(configuresAccounts(s)).toBe(false);
    const withAdmin = { ...s, adminAccountUserName: 'itadmin', primaryAccountUserName: '{{partialupn}}', primaryAccountFullName: '{{username}}' };
    expect(configuresAccounts(withAdmin)).toBe(true);
    expect(accountConfiguration(withAdmin, {}).payload).toEqual({
      SkipPrimarySetupAccountCreation: false,
      SetPrimarySetupAccountAsRegularUser: false,
      DontAutoPopulatePrimaryAccountInfo: false,
      LockPrimaryAccountInfo: false,
      AutoSetupAdminAccounts: [{ shortName: 'itadmin', hidden: false }],
    });
    expect(fillAccountVariables('{{PartialUPN}}-mac', { userPrincipalName: 'ada@contoso.com', displayName: 'Ada' })).toBe('ada-mac');
    expect(fillAccountVariables('{{username}}', undefined)).toBeUndefined();
  });
});

describe('device facts', () => {
  it('knows Apple families, platforms and the name template device type', () => {
    expect(appleFamily({ productName: 'iPhone15,2' })).toBe('iPhone');
    expect(appleFamily({ productName: 'iPad13,1' })).toBe('iPad');
    expect(appleFamily({ productName: 'iMac14,2' })).toBe('Mac');
    expect(appleFamily({ productName: 'MacBookPro18,3' })).toBe('Mac');
    expect(appleFamily({ productName: 'VirtualMac2,1' })).toBe('Mac');
    expect(appleFamily({ modelName: 'iPod touch' })).toBe('iPod');
    expect(appleFamily({})).toBe('unknown');
    expect(graphPlatform('iPad', 'iOS')).toEqual({ deviceType: 'iPad', operatingSystem: 'iPadOS' });
    expect(graphPlatform('unknown', 'macOS')).toEqual({ deviceType: 'macMDM', operatingSystem: 'macOS' });
    expect(platformOf(null, { productName: 'Mac14,2' })).toBe('macOS');
    expect(platformOf('iOS', { productName: 'Mac14,2' })).toBe('iOS');
  });

  it('maps DeviceInformation onto the managed device', () => {
    const facts = inventoryFacts(parsePlistDict(fixture('report-deviceinformation-ios17.plist')).QueryResponses);
    expect(deviceInputFromFacts(facts, 'iOS')).toEqual({
      manufacturer: 'Apple',
      deviceType: 'iPhone',
      operatingSystem: 'iOS',
      model: 'iPhone15,2',
      osVersion: '17.5',
      deviceName: 'iPhone',
      serialNumber: 'F17XK2ABCD12',
      imei: '353917112345678',
      meid: '35391711234567',
      wiFiMacAddress: 'a4:83:e7:12:34:56',
      phoneNumber: '+1 (555) 010-0199',
      isSupervised: true,
    });
    expect(inventoryFacts('nope')).toEqual({});
    expect(installedProfiles([{ PayloadIdentifier: 'a' }, 'junk'])).toEqual([
      { payloadIdentifier: 'a', payloadUuid: null, payloadDisplayName: null, payloadOrganization: null, payloadVersion: null, isManaged: null, isEncrypted: null, payloadRemovalDisallowed: null },
    ]);
  });
});

describe('message identity', () => {
  it('finds the signer of a detached Mdm-Signature and refuses anything else', async () => {
    const ca = await testCa('Identity test CA');
    const leaf = await testLeaf(ca, { CN: 'device' });
    const body = Buffer.from('<plist/>');
    const sig = createSignedData(body, { certificatePem: leaf.cert.pem, privateKeyPem: leaf.keyPem, detached: true }).toString('base64');
    expect(signerOfMdmSignature(sig, body).sha256Thumbprint).toBe(leaf.cert.sha256Thumbprint);
    // Devices may wrap the header.
    expect(signerOfMdmSignature(sig.replace(/(.{64})/g, '$1\n '), body).sha256Thumbprint).toBe(leaf.cert.sha256Thumbprint);
    expect(() => signerOfMdmSignature(sig, Buffer.from('<plist />'))).toThrow(IdentityError);
    expect(() => signerOfMdmSignature('', body)).toThrow(IdentityError);
    expect(() => signerOfMdmSignature('@@@', body)).toThrow(IdentityError);
    expect(() => signerOfMdmSignature('A'.repeat(70_000), body)).toThrow(IdentityError);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (junk) => {
        try {
          signerOfMdmSignature(Buffer.from(junk).toString('base64') || 'AA==', body);
        } catch (err) {
          if (!(err instanceof IdentityError)) throw err;
        }
      }),
      { numRuns: 300 },
    );
  });

  it('reads forwarded client certificates (URL-encoded PEM, RFC 9440)', async () => {
    const ca = await testCa('Proxy test CA');
    const leaf = await testLeaf(ca, { CN: 'device' });
    expect(certificateFromHeader(encodeURIComponent(leaf.cert.pem)).sha256Thumbprint).toBe(leaf.cert.sha256Thumbprint);
    expect(certificateFromHeader(`:${leaf.cert.der.toString('base64')}:`).sha256Thumbprint).toBe(leaf.cert.sha256Thumbprint);
    expect(() => certificateFromHeader('%E0%A4%A')).toThrow(IdentityError);
    expect(() => certificateFromHeader(':AAAA:')).toThrow(IdentityError);
  });

  it('matches trusted proxies like Fastify: addresses, CIDRs, names, IPv4-mapped IPv6', () => {
    const m = trustedProxyMatcher('10.0.0.0/8, 192.168.1.5, loopback');
    expect(m('10.1.2.3')).toBe(true);
    expect(m('::ffff:10.1.2.3')).toBe(true);
    expect(m('192.168.1.5')).toBe(true);
    expect(m('192.168.1.6')).toBe(false);
    expect(m('127.0.0.1')).toBe(true);
    expect(m('::1')).toBe(true);
    expect(m('11.0.0.1')).toBe(false);
    expect(m(undefined)).toBe(false);
    expect(trustedProxyMatcher(false)('127.0.0.1')).toBe(false);
    expect(trustedProxyMatcher(true)('8.8.8.8')).toBe(true);
    expect(trustedProxyMatcher('uniquelocal')('172.20.0.1')).toBe(true);
    expect(trustedProxyMatcher('fd00::/8')('fd12::1')).toBe(true);
  });
});
