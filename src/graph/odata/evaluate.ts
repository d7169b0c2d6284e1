import type { FilterNode, Literal } from './filter-ast.js';
import type { EntityModel } from './model.js';

/**
 * Evaluates a validated filter tree against an entity object in memory, with the same
 * semantics as compile.ts. Used for collections that don't live in SQL, and as the oracle
 * the SQL compiler is property-tested against.
 */
export function evaluateFilter(model: EntityModel, node: FilterNode, entity: Record<string, unknown>): boolean {
  switch (node.kind) {
    case 'and':
      return evaluateFilter(model, node.left, entity) && evaluateFilter(model, node.right, entity);
    case 'or':
      return evaluateFilter(model, node.left, entity) || evaluateFilter(model, node.right, entity);
    case 'not':
      return !evaluateFilter(model, node.expr, entity);
    case 'compare': {
      const def = model.properties[node.property]!;
      const actual = entity[node.property];
      if (node.value.type === 'null') return node.op === 'eq' ? actual == null : actual != null;
      if (actual == null) return node.op === 'ne';
      const ci = def.caseInsensitive && def.type === 'string';
      const a = normalise(actual, ci);
      const b = normalise(literalValue(node.value), ci);
      switch (node.op) {
        case 'eq':
          return a === b;
        case 'ne':
          return a !== b;
        case 'lt':
          return a < b;
        case 'gt':
          return a > b;
        case 'le':
          return a <= b;
        case 'ge':
          return a >= b;
      }
      return false;
    }
    case 'function': {
      const actual = entity[node.property];
      if (actual == null) return false;
      const a = String(actual).toLowerCase();
      const b = String(literalValue(node.value)).toLowerCase();
      if (node.name === 'startswith') return a.startsWith(b);
      if (node.name === 'endswith') return a.endsWith(b);
      return a.includes(b);
    }
  }
}

function literalValue(lit: Literal): string | number | boolean | null {
  return lit.type === 'null' ? null : lit.value;
}

function normalise(v: unknown, ci: boolean | undefined): string | number {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number') return v;
  const s = String(v);
  return ci ? s.toLowerCase() : s;
}
