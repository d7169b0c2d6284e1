import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  canAddPolicy,
  insertPriority,
  MAX_POLICIES_PER_TYPE,
  normalizePriorities,
  PriorityError,
  removePolicy,
  setPriority,
  type PrioritizedPolicy,
} from '../../src/enrollment-policy/evaluation/priorities.js';

const def: PrioritizedPolicy = { id: 'default', priority: 0, isDefault: true };
const list = (...ids: string[]): PrioritizedPolicy[] => [def, ...ids.map((id, i) => ({ id, priority: i + 1, isDefault: false }))];
const order = (m: Map<string, number>) =>
  [...m.entries()]
    .filter(([id]) => id !== 'default')
    .sort((a, b) => a[1] - b[1])
    .map(([id]) => id);

function priorityError(fn: () => unknown): PriorityError {
  try {
    fn();
  } catch (err) {
    if (err instanceof PriorityError) return err;
    throw err;
  }
  throw new Error('expected a PriorityError');
}

describe('priorities (-E §6.1, §7.3, §14.5-7)', () => {
  it('a new policy goes just above the default: the last custom position', () => {
    expect(insertPriority([def])).toBe(1);
    expect(insertPriority(list('a', 'b', 'c'))).toBe(4);
    expect(insertPriority([])).toBe(1);
  });

  it('dragging a policy to priority 1 shifts the others down, keeping 1..n and the default at 0', () => {
    const m = setPriority(list('a', 'b', 'c', 'd'), 'c', 1);
    expect(Object.fromEntries(m)).toEqual({ default: 0, c: 1, a: 2, b: 3, d: 4 });
  });

  it('moving down and to the same place', () => {
    expect(order(setPriority(list('a', 'b', 'c', 'd'), 'a', 3))).toEqual(['b', 'c', 'a', 'd']);
    expect(order(setPriority(list('a', 'b', 'c'), 'b', 2))).toEqual(['a', 'b', 'c']);
  });

  it('a target past the end clamps to the last custom position', () => {
    expect(Object.fromEntries(setPriority(list('a', 'b', 'c'), 'a', 99))).toEqual({ default: 0, b: 1, c: 2, a: 3 });
    expect(Object.fromEntries(setPriority(list('a', 'b', 'c'), 'a', 4))).toEqual({ default: 0, b: 1, c: 2, a: 3 });
    expect(Object.fromEntries(setPriority(list('a', 'b', 'c'), 'a', 3))).toEqual({ default: 0, b: 1, c: 2, a: 3 });
  });

  it('refuses priority 0 or below, fractions, the default and unknown ids', () => {
    expect(priorityError(() => setPriority(list('a'), 'a', 0)).code).toBe('priorityOutOfRange');
    expect(priorityError(() => setPriority(list('a'), 'a', -1)).code).toBe('priorityOutOfRange');
    expect(priorityError(() => setPriority(list('a'), 'a', 1.5)).code).toBe('priorityOutOfRange');
    expect(priorityError(() => setPriority(list('a'), 'a', Number.NaN)).code).toBe('priorityOutOfRange');
    expect(priorityError(() => setPriority(list('a'), 'default', 1)).code).toBe('defaultPolicyImmutable');
    expect(priorityError(() => setPriority(list('a'), 'zzz', 1)).code).toBe('policyNotFound');
    expect(priorityError(() => removePolicy(list('a'), 'default')).code).toBe('defaultPolicyImmutable');
    expect(priorityError(() => removePolicy(list('a'), 'zzz')).code).toBe('policyNotFound');
  });

  it('removing a policy closes the gap', () => {
    expect(Object.fromEntries(removePolicy(list('a', 'b', 'c'), 'b'))).toEqual({ default: 0, a: 1, c: 2 });
  });

  it('damaged data (gaps, duplicates) is renumbered in a stable order', () => {
    const damaged: PrioritizedPolicy[] = [def, { id: 'b', priority: 7, isDefault: false }, { id: 'a', priority: 7, isDefault: false }, { id: 'c', priority: 2, isDefault: false }];
    expect(Object.fromEntries(normalizePriorities(damaged))).toEqual({ default: 0, c: 1, a: 2, b: 3 });
    expect(order(setPriority(damaged, 'b', 1))).toEqual(['b', 'c', 'a']);
  });

  it('at most 25 custom policies per type; the default doesn\'t count', () => {
    expect(MAX_POLICIES_PER_TYPE).toBe(25);
    const ids = Array.from({ length: 24 }, (_, i) => `p${i}`);
    expect(canAddPolicy(list(...ids))).toBe(true);
    expect(canAddPolicy(list(...ids, 'p24'))).toBe(false);
  });
});

type Op = { kind: 'create' } | { kind: 'delete'; pick: number } | { kind: 'move'; pick: number; to: number };

describe('priorities: properties', () => {
  it('any sequence of create, delete and setPriority keeps priorities contiguous with the default last (0)', () => {
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.constant({ kind: 'create' as const }),
      fc.record({ kind: fc.constant('delete' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('move' as const), pick: fc.nat(), to: fc.integer({ min: -2, max: 30 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        let policies: PrioritizedPolicy[] = [def];
        let next = 0;
        const apply = (m: Map<string, number>, size: number) => {
          expect(m.size).toBe(size);
          policies = policies.filter((p) => m.has(p.id)).map((p) => ({ ...p, priority: m.get(p.id)! }));
        };
        for (const o of ops) {
          const customs = policies.filter((p) => !p.isDefault);
          if (o.kind === 'create') {
            if (!canAddPolicy(policies)) continue;
            policies.push({ id: `p${next++}`, priority: insertPriority(policies), isDefault: false });
          } else if (o.kind === 'delete') {
            if (customs.length === 0) continue;
            const before = customs.length;
            apply(removePolicy(policies, customs[o.pick % customs.length]!.id), policies.length - 1);
            expect(policies.filter((p) => !p.isDefault)).toHaveLength(before - 1);
          } else {
            if (customs.length === 0) continue;
            const target = customs[o.pick % customs.length]!;
            if (o.to < 1) {
              expect(() => setPriority(policies, target.id, o.to)).toThrow(PriorityError);
              continue;
            }
            const beforeOthers = customs.filter((p) => p.id !== target.id).sort((a, b) => a.priority - b.priority).map((p) => p.id);
            apply(setPriority(policies, target.id, o.to), policies.length);
            const moved = policies.find((p) => p.id === target.id)!;
            expect(moved.priority).toBe(Math.min(o.to, customs.length));
            // The others keep their relative order.
            expect(policies.filter((p) => !p.isDefault && p.id !== target.id).sort((a, b) => a.priority - b.priority).map((p) => p.id)).toEqual(beforeOthers);
          }
          const numbers = policies.filter((p) => !p.isDefault).map((p) => p.priority).sort((a, b) => a - b);
          expect(numbers).toEqual(numbers.map((_, i) => i + 1));
          expect(policies.find((p) => p.isDefault)!.priority).toBe(0);
          expect(policies.filter((p) => !p.isDefault).length).toBeLessThanOrEqual(MAX_POLICIES_PER_TYPE);
        }
      }),
      { numRuns: 300 },
    );
  });
});
