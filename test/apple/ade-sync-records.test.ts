import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DepDevice } from '../../src/apple/ade/dep-api.js';
import { appleColumns, appleTime, planRecord, removedAt, type ExistingDevice, type RecordContext } from '../../src/apple/ade/sync/device-records.js';

/** The pure per-record rules of the ADE sync (src/apple/ade/sync/device-records.ts). */

const NOW = new Date('2026-03-10T12:00:00.000Z');
const TOKEN = 'token-a';
const apple: DepDevice = { serial_number: 'C02XYZ', model: 'iPhone 15', description: 'IPHONE 15', color: 'BLACK', device_family: 'iPhone', os: 'iOS', profile_status: 'empty' };

function held(over: Partial<ExistingDevice> = {}): ExistingDevice {
  return {
    ...appleColumns(apple),
    token_id: TOKEN,
    serial_number: apple.serial_number,
    last_op_date: null,
    seen_at_apple: 1,
    removed_from_apple_at: null,
    deleted_at: null,
    requested_profile_id: null,
    fetch_id: null,
    ...over,
  };
}

const fetchFull: RecordContext = { tokenId: TOKEN, phase: 'fetch', mode: 'full', now: NOW };
const fetchRestricted: RecordContext = { ...fetchFull, mode: 'fullRestricted' };
const sync: RecordContext = { ...fetchFull, phase: 'sync', mode: 'delta' };

describe('planRecord', () => {
  it('a new serial is inserted, on any page', () => {
    for (const c of [fetchFull, fetchRestricted, sync]) expect(planRecord(apple, undefined, c)).toMatchObject({ action: 'insert', columns: { platform: 'ios', model: 'iPhone 15' } });
  });

  it('a restricted fetch leaves held devices as they are (bookkeeping only), even changed, removed or hidden ones', () => {
    for (const d of [held(), held({ model: 'old' }), held({ removed_from_apple_at: '2026-01-01T00:00:00.000Z' }), held({ deleted_at: '2026-03-01T00:00:00.000Z' })]) {
      expect(planRecord(apple, d, fetchRestricted)).toEqual({ action: 'seen' });
    }
    expect(planRecord(apple, held({ token_id: 'token-b' }), fetchRestricted)).toEqual({ action: 'skip' });
  });

  it('an unrestricted fetch refreshes changed devices, revives removed ones and brings back hidden ones', () => {
    expect(planRecord(apple, held(), fetchFull)).toEqual({ action: 'seen' });
    expect(planRecord({ ...apple, profile_status: 'assigned', profile_uuid: 'P1' }, held(), fetchFull)).toMatchObject({ action: 'update', undelete: false, offerDefault: true });
    expect(planRecord(apple, held({ removed_from_apple_at: '2026-01-01T00:00:00.000Z' }), fetchFull)).toMatchObject({ action: 'update', offerDefault: true });
    expect(planRecord(apple, held({ deleted_at: '2026-03-01T00:00:00.000Z' }), fetchFull)).toMatchObject({ action: 'update', undelete: true });
    // An admin's profile choice is theirs: not offered for the default.
    expect(planRecord(apple, held({ removed_from_apple_at: '2026-01-01T00:00:00.000Z', requested_profile_id: 'p' }), fetchFull)).toMatchObject({ action: 'update', offerDefault: false });
  });

  it("Apple's description only fills an empty one; the admin's is not a change", () => {
    expect(planRecord(apple, held({ description: 'Front desk' }), fetchFull)).toEqual({ action: 'seen' });
  });

  it('a device held under another token moves here and loses that token\'s choice', () => {
    expect(planRecord(apple, held({ token_id: 'token-b', requested_profile_id: 'b-profile' }), fetchFull)).toMatchObject({ action: 'update', offerDefault: true });
    expect(planRecord({ ...apple, op_type: 'added', op_date: '2026-03-10T10:00:00Z' }, held({ token_id: 'token-b' }), sync)).toMatchObject({ action: 'update' });
    // Its deletion at the old server is not ours to record.
    expect(planRecord({ ...apple, op_type: 'deleted', op_date: '2026-03-10T10:00:00Z' }, held({ token_id: 'token-b' }), sync)).toEqual({ action: 'skip' });
  });

  it('a deleted op marks the device removed at its op_date (never in the future); unknown devices are ignored', () => {
    const del = { ...apple, op_type: 'deleted', op_date: '2026-03-10T10:00:00Z' };
    expect(planRecord(del, held(), sync)).toEqual({ action: 'remove', at: '2026-03-10T10:00:00.000Z', opDate: '2026-03-10T10:00:00.000Z' });
    expect(planRecord({ ...del, op_date: '2027-01-01T00:00:00Z' }, held(), sync)).toMatchObject({ action: 'remove', at: NOW.toISOString() });
    expect(planRecord({ ...del, op_date: 'garbage' }, held(), sync)).toMatchObject({ action: 'remove', at: NOW.toISOString() });
    expect(planRecord(del, undefined, sync)).toEqual({ action: 'skip' });
  });

  it('an op older than the one held is ignored', () => {
    const stale = { ...apple, model: 'other', op_type: 'modified', op_date: '2026-03-09T00:00:00Z' };
    expect(planRecord(stale, held({ last_op_date: '2026-03-10T00:00:00.000Z' }), sync)).toEqual({ action: 'skip' });
    expect(planRecord({ ...stale, op_type: 'deleted' }, held({ last_op_date: '2026-03-10T00:00:00.000Z' }), sync)).toEqual({ action: 'skip' });
  });

  it('an added op newer than an admin delete brings the device back; a modified one does not', () => {
    const deleted = held({ deleted_at: '2026-03-05T00:00:00.000Z' });
    expect(planRecord({ ...apple, op_type: 'added', op_date: '2026-03-06T00:00:00Z' }, deleted, sync)).toMatchObject({ action: 'update', undelete: true });
    expect(planRecord({ ...apple, op_type: 'added', op_date: '2026-03-04T00:00:00Z' }, deleted, sync)).toMatchObject({ action: 'update', undelete: false });
    expect(planRecord({ ...apple, op_type: 'modified', op_date: '2026-03-06T00:00:00Z' }, deleted, sync)).toMatchObject({ action: 'update', undelete: false });
  });

  it('property: what each page kind may do', () => {
    const when = fc.option(
      fc.integer({ min: Date.parse('2026-01-01'), max: Date.parse('2026-04-01') }).map((t) => new Date(t).toISOString()),
      { nil: null },
    );
    const record = fc.record({
      op_type: fc.constantFrom(undefined, 'added', 'modified', 'deleted', 'odd'),
      op_date: fc.option(when.map((w) => w ?? 'garbage'), { nil: undefined }),
      model: fc.constantFrom('iPhone 15', 'iPad'),
      profile_uuid: fc.constantFrom(undefined, 'P1', 'P2'),
    });
    const existing = fc.option(
      fc.record({
        token_id: fc.constantFrom(TOKEN, 'token-b'),
        last_op_date: when,
        removed_from_apple_at: when,
        deleted_at: when,
        requested_profile_id: fc.constantFrom(null, 'p'),
        seen_at_apple: fc.constantFrom(0, 1),
        model: fc.constantFrom('iPhone 15', 'iPad'),
      }),
      { nil: undefined },
    );
    const ctx = fc.constantFrom(fetchFull, fetchRestricted, sync);
    fc.assert(
      fc.property(record, existing, ctx, (r, e, c) => {
        const d: DepDevice = { ...apple, model: r.model, ...(r.profile_uuid ? { profile_uuid: r.profile_uuid } : {}), ...(r.op_type ? { op_type: r.op_type } : {}), ...(r.op_date ? { op_date: r.op_date } : {}) };
        const row = e ? held(e) : undefined;
        const plan = planRecord(d, row, c);
        const deletedOp = c.phase === 'sync' && r.op_type === 'deleted';
        if (plan.action === 'remove') expect(deletedOp && row?.token_id === TOKEN).toBe(true);
        if (plan.action === 'insert') expect(row === undefined && !deletedOp).toBe(true);
        if (!row && !deletedOp) expect(plan.action).toBe('insert');
        if (c === fetchRestricted) expect(['insert', 'seen', 'skip']).toContain(plan.action);
        if (plan.action === 'update') {
          if (plan.undelete) expect(row?.deleted_at).not.toBeNull();
          if (plan.offerDefault) expect(row!.requested_profile_id === null || row!.token_id !== TOKEN).toBe(true);
        }
      }),
    );
  });
});

describe('Apple times', () => {
  it('become ISO text with milliseconds; unreadable ones are kept as given', () => {
    expect(appleTime('2026-03-10T10:00:00Z')).toBe('2026-03-10T10:00:00.000Z');
    expect(appleTime('not a time')).toBe('not a time');
    expect(appleTime(undefined)).toBeNull();
    expect(removedAt(undefined, NOW)).toBe(NOW.toISOString());
  });

  it('platforms come from the device family, else the OS', () => {
    expect(appleColumns({ serial_number: 'A', device_family: 'Mac', os: 'OSX' }).platform).toBe('macOS');
    expect(appleColumns({ serial_number: 'A', os: 'iPadOS' }).platform).toBe('ios');
    expect(appleColumns({ serial_number: 'A' }).platform).toBe('unknown');
  });
});
