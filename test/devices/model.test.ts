import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEVICE_ENROLLMENT_TYPES, MANAGED_DEVICE_OWNER_TYPES } from '../../src/devices/enums.js';
import {
  applyOwnershipPrivacy,
  generatedManagedDeviceName,
  identityValue,
  inputToColumns,
  managedDeviceModel,
  mergeScopeTags,
  parseDevicePatch,
  partialPhoneNumber,
  toManagedDevice,
} from '../../src/devices/model.js';
import { GraphError } from '../../src/graph/errors.js';

function graphError(fn: () => unknown): GraphError {
  try {
    fn();
  } catch (err) {
    if (err instanceof GraphError) return err;
    throw err;
  }
  throw new Error('expected a GraphError');
}

describe('enrollment input', () => {
  it('maps Graph properties to columns, booleans to 0/1 and dates to ISO UTC', () => {
    expect(
      inputToColumns({
        deviceName: 'iPad',
        isSupervised: true,
        isEncrypted: false,
        deviceEnrollmentType: 'appleBulkWithUser',
        enrolledDateTime: '2026-03-01T10:00:00+02:00',
        managementCertificateExpirationDate: null,
        enrollmentId: 'E-1',
      }),
    ).toEqual({
      device_name: 'iPad',
      is_supervised: 1,
      is_encrypted: 0,
      device_enrollment_type: 'appleBulkWithUser',
      enrolled_date_time: '2026-03-01T08:00:00.000Z',
      management_certificate_expiration_date: null,
      enrollment_id: 'E-1',
    });
  });

  it('accepts every deviceEnrollmentType member of the spec except the sentinel', () => {
    for (const v of DEVICE_ENROLLMENT_TYPES.filter((m) => m !== 'unknownFutureValue')) {
      expect(inputToColumns({ deviceEnrollmentType: v }).device_enrollment_type).toBe(v);
    }
    const err = graphError(() => inputToColumns({ deviceEnrollmentType: 'unknownFutureValue' }));
    expect(err.statusCode).toBe(400);
    expect(err.options.target).toBe('deviceEnrollmentType');
  });

  it('refuses values outside an enum, naming the property', () => {
    const cases: [string, unknown][] = [
      ['deviceEnrollmentType', 'appleBulk'],
      ['managedDeviceOwnerType', 'corporate'],
      ['complianceState', 'Compliant!'],
      ['deviceType', 'IPHONE'],
      ['joinType', 'joined'],
      ['managementAgent', 'intune'],
      ['managementState', 'retired'],
      ['deviceRegistrationState', 'ok'],
    ];
    for (const [prop, value] of cases) {
      const err = graphError(() => inputToColumns({ [prop]: value } as never));
      expect(err.statusCode).toBe(400);
      expect(err.options.target).toBe(prop);
      expect(err.message).toContain(prop);
    }
  });

  it('refuses wrong types, bad dates and over-long strings', () => {
    expect(graphError(() => inputToColumns({ isSupervised: 'yes' } as never)).options.target).toBe('isSupervised');
    expect(graphError(() => inputToColumns({ enrolledDateTime: 'yesterday' })).options.target).toBe('enrolledDateTime');
    expect(graphError(() => inputToColumns({ lastSyncDateTime: '2026-13-45T00:00:00Z' })).options.target).toBe('lastSyncDateTime');
    expect(graphError(() => inputToColumns({ deviceName: 5 } as never)).options.target).toBe('deviceName');
    expect(inputToColumns({ deviceName: 'x'.repeat(256) }).device_name).toHaveLength(256);
    expect(graphError(() => inputToColumns({ deviceName: 'x'.repeat(257) })).options.target).toBe('deviceName');
    expect(inputToColumns({ serialNumber: 'S'.repeat(128) }).serial_number).toHaveLength(128);
    expect(graphError(() => inputToColumns({ serialNumber: 'S'.repeat(129) })).options.target).toBe('serialNumber');
  });

  it('stores placeholder identities as null so they never merge two devices', () => {
    for (const placeholder of ['unknown', 'UNKNOWN', ' ', '', '0', '000000000000000', 'Default string']) {
      expect(identityValue(placeholder)).toBeUndefined();
      expect(inputToColumns({ serialNumber: placeholder }).serial_number).toBeNull();
    }
    expect(identityValue(' C02XYZ ')).toBe('C02XYZ');
    expect(inputToColumns({ imei: '356938035643809' }).imei).toBe('356938035643809');
  });
});

describe('personal device privacy', () => {
  it('keeps only the last four digits of a phone number', () => {
    expect(partialPhoneNumber('+1 (425) 555-0100')).toBe('*******0100');
    expect(partialPhoneNumber('0100')).toBe('0100');
    expect(partialPhoneNumber(null)).toBeNull();
  });

  it('is idempotent and never shows more than four digits', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('0', '1', '5', '9', ' ', '+', '-', '(', ')'), maxLength: 24 }), (phone) => {
        const once = partialPhoneNumber(phone)!;
        expect(partialPhoneNumber(once)).toBe(once);
        expect(once.replace(/\*/g, '').length).toBeLessThanOrEqual(4);
        const digits = phone.replace(/\D/g, '');
        expect(once.replace(/\*/g, '')).toBe(digits.slice(-4));
      }),
    );
  });

  it('applies only to personal devices', () => {
    expect(applyOwnershipPrivacy({ managed_device_owner_type: 'company', phone_number: '+14255550100' }).phone_number).toBe('+14255550100');
    expect(applyOwnershipPrivacy({ managed_device_owner_type: 'unknown', phone_number: '+14255550100' }).phone_number).toBe('+14255550100');
    expect(applyOwnershipPrivacy({ managed_device_owner_type: 'personal', phone_number: '+14255550100' }).phone_number).toBe('*******0100');
  });
});

describe('generated device name', () => {
  it('is {user}_{deviceType}_{M/D/YYYY}_{h:mm AM/PM} in UTC, without a user for userless devices', () => {
    expect(generatedManagedDeviceName({ user_principal_name: 'adele@contoso.com', device_type: 'iPad', enrolled_date_time: '2026-02-26T01:44:00.000Z' })).toBe(
      'adele_iPad_2/26/2026_1:44 AM',
    );
    expect(generatedManagedDeviceName({ user_principal_name: null, device_type: 'windowsRT', enrolled_date_time: '2026-12-05T12:05:00.000Z' })).toBe(
      'windowsRT_12/5/2026_12:05 PM',
    );
    expect(generatedManagedDeviceName({ user_principal_name: null, device_type: 'mac', enrolled_date_time: '2026-12-05T00:00:00.000Z' })).toBe('mac_12/5/2026_12:00 AM');
  });
});

describe('PATCH rules', () => {
  it('accepts the admin-writable properties', () => {
    expect(
      parseDevicePatch(
        { '@odata.type': '#microsoft.graph.managedDevice', id: 'd1', managedDeviceName: ' Kiosk 1 ', notes: 'lobby', managedDeviceOwnerType: 'company', roleScopeTagIds: ['1', '1', '2'] },
        'd1',
      ),
    ).toEqual({ managedDeviceName: 'Kiosk 1', notes: 'lobby', managedDeviceOwnerType: 'company', roleScopeTagIds: ['1', '2'] });
    expect(parseDevicePatch({ ownerType: 'personal' }, 'd1')).toEqual({ managedDeviceOwnerType: 'personal' });
    expect(parseDevicePatch({ notes: null, managedDeviceName: null }, 'd1')).toEqual({ notes: null, managedDeviceName: null });
  });

  it('refuses each read-only property, naming it', () => {
    const entity = toManagedDevice(
      {
        id: 'd1',
        tenant_id: 't',
        device_type: 'iPad',
        enrolled_date_time: '2026-01-01T00:00:00.000Z',
        last_sync_date_time: '2026-01-01T00:00:00.000Z',
      } as never,
      ['0'],
    );
    const writable = new Set(['id', 'managedDeviceName', 'notes', 'managedDeviceOwnerType', 'ownerType', 'roleScopeTagIds']);
    const readOnly = Object.keys(entity).filter((k) => !writable.has(k));
    expect(readOnly).toContain('serialNumber');
    expect(readOnly).toContain('deviceEnrollmentType');
    for (const prop of readOnly) {
      const err = graphError(() => parseDevicePatch({ [prop]: (entity as unknown as Record<string, unknown>)[prop] }, 'd1'));
      expect(err.statusCode).toBe(400);
      expect(err.options.target).toBe(prop);
      expect(err.message).toBe(`Property '${prop}' is read-only and can't be changed.`);
    }
    expect(graphError(() => parseDevicePatch({ notes: 'x', serialNumber: 'A', imei: 'B' }, 'd1')).message).toBe(
      "Properties 'serialNumber', 'imei' are read-only and can't be changed.",
    );
  });

  it('refuses unknown properties, a different id and bad values', () => {
    expect(graphError(() => parseDevicePatch({ colour: 'red' }, 'd1')).message).toContain("'colour' is not a known property");
    expect(graphError(() => parseDevicePatch({ id: 'other' }, 'd1')).options.target).toBe('id');
    expect(graphError(() => parseDevicePatch({ managedDeviceOwnerType: 'unknown' }, 'd1')).options.target).toBe('managedDeviceOwnerType');
    expect(graphError(() => parseDevicePatch({ managedDeviceOwnerType: 'Corporate' }, 'd1')).options.target).toBe('managedDeviceOwnerType');
    expect(graphError(() => parseDevicePatch({ ownerType: 'company', managedDeviceOwnerType: 'personal' }, 'd1')).statusCode).toBe(400);
    expect(graphError(() => parseDevicePatch({ managedDeviceName: '  ' }, 'd1')).options.target).toBe('managedDeviceName');
    expect(parseDevicePatch({ managedDeviceName: 'n'.repeat(256) }, 'd1').managedDeviceName).toHaveLength(256);
    expect(graphError(() => parseDevicePatch({ managedDeviceName: 'n'.repeat(257) }, 'd1')).options.target).toBe('managedDeviceName');
    expect(parseDevicePatch({ notes: 'n'.repeat(1024) }, 'd1').notes).toHaveLength(1024);
    expect(graphError(() => parseDevicePatch({ notes: 'n'.repeat(1025) }, 'd1')).options.target).toBe('notes');
    expect(graphError(() => parseDevicePatch({ roleScopeTagIds: '1' }, 'd1')).options.target).toBe('roleScopeTagIds');
    expect(graphError(() => parseDevicePatch({ roleScopeTagIds: [1] }, 'd1')).options.target).toBe('roleScopeTagIds');
    expect(parseDevicePatch({ roleScopeTagIds: Array.from({ length: 100 }, (_, i) => String(i)) }, 'd1').roleScopeTagIds).toHaveLength(100);
    expect(graphError(() => parseDevicePatch({ roleScopeTagIds: Array.from({ length: 101 }, (_, i) => String(i)) }, 'd1')).options.target).toBe(
      'roleScopeTagIds',
    );
    expect(graphError(() => parseDevicePatch({ '@odata.type': '#microsoft.graph.user' }, 'd1')).options.target).toBe('@odata.type');
    expect(graphError(() => parseDevicePatch([], 'd1')).statusCode).toBe(400);
  });
});

describe('scope tag merge on PATCH', () => {
  const tag: fc.Arbitrary<string> = fc.constantFrom('0', '1', '2', '3', '4', '5');
  it('an unscoped caller sets exactly the requested tags', () => {
    fc.assert(
      fc.property(fc.array(tag), fc.array(tag, { minLength: 1 }), (current, requested) => {
        expect(new Set(mergeScopeTags(current, requested, null))).toEqual(new Set(requested));
      }),
    );
  });

  it("a scoped caller changes only its own tags and keeps the rest of the device's", () => {
    fc.assert(
      fc.property(fc.array(tag), fc.array(tag, { minLength: 1 }), (current, scope) => {
        const requested = scope.slice(0, 1);
        const merged = new Set(mergeScopeTags(current, requested, scope));
        for (const t of current) if (!scope.includes(t)) expect(merged.has(t)).toBe(true);
        for (const t of merged) expect(requested.includes(t) || (current.includes(t) && !scope.includes(t))).toBe(true);
      }),
    );
  });

  it('sorts numeric tag ids numerically', () => {
    expect(mergeScopeTags([], ['10', '2', '1'], null)).toEqual(['1', '2', '10']);
  });
});

describe('entity model', () => {
  it('covers the enum members of the spec for $filter', () => {
    expect(managedDeviceModel.properties.managedDeviceOwnerType!.enumValues).toEqual(MANAGED_DEVICE_OWNER_TYPES);
    expect(managedDeviceModel.properties.deviceEnrollmentType!.enumValues).toEqual(DEVICE_ENROLLMENT_TYPES);
  });
});
