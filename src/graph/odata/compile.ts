import { sql, type RawBuilder, type SelectQueryBuilder, type SqlBool } from 'kysely';
import type { FilterNode, Literal } from './filter-ast.js';
import type { EntityModel } from './model.js';
import type { ODataQuery } from './query-options.js';

/*
 * Compiles a validated filter tree to SQL that means the same in SQLite and PostgreSQL.
 * Semantics (mirrored exactly by evaluate.ts, and checked against it by property tests):
 * - `ne` is true for NULL columns (OData null semantics), other comparisons are false on NULL;
 * - startswith/endswith/contains ignore case; other string comparisons ignore case only
 *   for properties declared caseInsensitive;
 * - booleans are stored as 0/1.
 */

function sqlValue(lit: Literal): unknown {
  switch (lit.type) {
    case 'boolean':
      return lit.value ? 1 : 0;
    case 'null':
      return null;
    default:
      return lit.value;
  }
}

function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

const OPS = { eq: '=', ne: '<>', lt: '<', gt: '>', le: '<=', ge: '>=' } as const;

export function compileFilter(model: EntityModel, node: FilterNode): RawBuilder<SqlBool> {
  switch (node.kind) {
    case 'and':
      return sql<SqlBool>`(${compileFilter(model, node.left)} and ${compileFilter(model, node.right)})`;
    case 'or':
      return sql<SqlBool>`(${compileFilter(model, node.left)} or ${compileFilter(model, node.right)})`;
    case 'not':
      // NOT over a comparison on NULL is NULL in SQL; coalesce keeps two-valued logic like the evaluator.
      return sql<SqlBool>`(not coalesce(${compileFilter(model, node.expr)}, ${sql.lit(false)}))`;
    case 'compare': {
      const def = model.properties[node.property]!;
      const col = sql.ref(def.column!);
      if (node.value.type === 'null') {
        return node.op === 'eq' ? sql<SqlBool>`(${col} is null)` : sql<SqlBool>`(${col} is not null)`;
      }
      const ci = def.caseInsensitive && def.type === 'string';
      const left = ci ? sql`lower(${col})` : sql`${col}`;
      const value = sqlValue(node.value);
      const right = ci ? sql`lower(${value})` : sql`${value}`;
      const op = sql.raw(OPS[node.op]);
      if (node.op === 'ne') return sql<SqlBool>`(${left} ${op} ${right} or ${col} is null)`;
      return sql<SqlBool>`(${left} ${op} ${right})`;
    }
    case 'function': {
      const def = model.properties[node.property]!;
      const col = sql.ref(def.column!);
      const v = escapeLike(String(sqlValue(node.value)).toLowerCase());
      const pattern = node.name === 'startswith' ? `${v}%` : node.name === 'endswith' ? `%${v}` : `%${v}%`;
      return sql<SqlBool>`(lower(${col}) like ${pattern} escape '\\')`;
    }
  }
}

/** Adds $filter, $orderby (with the key as tiebreaker) and paging to a select query. */
export function applyQuery<DB, TB extends keyof DB, O>(
  qb: SelectQueryBuilder<DB, TB, O>,
  model: EntityModel,
  query: Pick<ODataQuery, 'filter' | 'orderBy'>,
  page?: { limit: number; offset: number },
): SelectQueryBuilder<DB, TB, O> {
  let q = qb;
  if (query.filter) q = q.where(compileFilter(model, query.filter));
  for (const o of query.orderBy) {
    const col = sql.ref(model.properties[o.property]!.column!);
    // OData orders nulls first when ascending; make both dialects agree.
    q = q.orderBy(sql`case when ${col} is null then 0 else 1 end`, o.direction)
      .orderBy(col, o.direction);
  }
  q = q.orderBy(sql.ref(model.keyColumn), 'asc');
  if (page) q = q.limit(page.limit).offset(page.offset);
  return q;
}

/** The same filter as a count query. */
export function applyFilter<DB, TB extends keyof DB, O>(
  qb: SelectQueryBuilder<DB, TB, O>,
  model: EntityModel,
  filter: FilterNode | undefined,
): SelectQueryBuilder<DB, TB, O> {
  return filter ? qb.where(compileFilter(model, filter)) : qb;
}
