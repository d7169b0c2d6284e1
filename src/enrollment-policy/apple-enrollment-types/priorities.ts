import { removePolicy, setPriority, type PrioritizedPolicy } from '../evaluation/priorities.js';

/*
 * Enrollment type profiles are ordered 0..n-1 per platform (Graph: "Priority, 0 is highest") with
 * no default policy. The restriction priority algebra (evaluation/priorities.ts) numbers custom
 * policies 1..n; these adapters shift by one so both lists follow the same rules: contiguous,
 * a target past the end clamps to the last position, a negative one is refused.
 */

export interface Ranked {
  id: string;
  priority: number;
}

const toAlgebra = (list: readonly Ranked[]): PrioritizedPolicy[] => list.map((r) => ({ id: r.id, priority: r.priority + 1, isDefault: false }));

function fromAlgebra(result: unknown): Map<string, number> {
  const entries: [string, number][] =
    result instanceof Map ? [...(result as Map<string, number>)] : (result as readonly Ranked[]).map((r) => [r.id, r.priority]);
  return new Map(entries.map(([id, p]) => [id, p - 1]));
}

/** New priorities after moving `id` to `priority` (0-based). */
export function planMove(list: readonly Ranked[], id: string, priority: number): Map<string, number> {
  return fromAlgebra(setPriority(toAlgebra(list), id, priority + 1));
}

/** New priorities of the others after `id` is removed. */
export function planRemove(list: readonly Ranked[], id: string): Map<string, number> {
  return fromAlgebra(removePolicy(toAlgebra(list), id));
}

/** New priorities when `id` joins the list at `priority` (default: last). */
export function planInsert(list: readonly Ranked[], id: string, priority?: number): Map<string, number> {
  const appended = [...list.filter((r) => r.id !== id), { id, priority: Number.MAX_SAFE_INTEGER - 1 }];
  const normalized = planMove(appended, id, appended.length - 1);
  return priority === undefined ? normalized : planMove([...normalized].map(([i, p]) => ({ id: i, priority: p })), id, priority);
}
