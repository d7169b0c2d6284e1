import { describe, expect, it } from 'vitest';
import { deviceOptionsFor, imeiFor } from '../../sim/apple-device/index.js';
import { looksLikeImei } from '../../src/enrollment-policy/corporate-identifiers/rules.js';

/**
 * The simulated devices' hardware identifiers must be as distinct as real ones: the server matches a
 * device record by IMEI when nothing better is known, so two phones sharing one are one device to it.
 */
describe('simulated Apple device identifiers', () => {
  it('gives serials that differ only in letters different, valid IMEIs (the bench fleet lost devices to this)', () => {
    const a = deviceOptionsFor({ serial_number: 'FS00000007', model: 'iPhone 15' });
    const b = deviceOptionsFor({ serial_number: 'FS0000000A', model: 'iPhone 15' });
    expect(a.imei).not.toBe(b.imei);
    for (const imei of [a.imei!, b.imei!]) expect(looksLikeImei(imei)).toBe(true);
  });

  it('is stable per serial, unique over a 20,000-device fleet, and absent on Macs', () => {
    expect(imeiFor('F17ZK0N8Q1GD')).toBe(imeiFor('F17ZK0N8Q1GD'));
    const imeis = new Set(Array.from({ length: 20_000 }, (_, i) => imeiFor(`FS${i.toString(36).toUpperCase().padStart(8, '0')}`)));
    expect(imeis.size).toBe(20_000);
    expect(deviceOptionsFor({ serial_number: 'C02XK0Y7JG5H', model: 'MacBook Air (M2, 2022)' }).imei).toBeUndefined();
  });
});
