import type { FastifyRequest } from 'fastify';
import { sql, type SelectQueryBuilder } from 'kysely';
import { applyFilter, applyQuery } from './odata/compile.js';
import { evaluateFilter } from './odata/evaluate.js';
import type { EntityModel } from './odata/model.js';
import { encodeSkipToken, parseQueryOptions, type ODataQuery } from './odata/query-options.js';
import { baseUrlOf, contextUrl } from './http.js';

export interface CollectionBody {
  '@odata.context': string;
  '@odata.count'?: number;
  '@odata.nextLink'?: string;
  value: Record<string, unknown>[];
}

/** Keeps only the $select-ed properties (and @odata.type, which clients switch on). */
export function applySelect(entity: Record<string, unknown>, select: string[] | undefined): Record<string, unknown> {
  if (!select) return entity;
  const out: Record<string, unknown> = {};
  if ('@odata.type' in entity) out['@odata.type'] = entity['@odata.type'];
  for (const k of select) out[k] = entity[k] ?? null;
  return out;
}

function nextLink(req: FastifyRequest, query: ODataQuery): string {
  const url = new URL(req.url, baseUrlOf(req));
  url.searchParams.delete('$skip');
  url.searchParams.set('$skiptoken', encodeSkipToken(query.offset + query.pageSize));
  // URLSearchParams encodes '$' as %24; Graph links keep it literal.
  const search = url.searchParams.toString().replace(/%24/g, '$');
  return `${baseUrlOf(req)}${url.pathname}?${search}`;
}

function contextFragment(fragment: string, select: string[] | undefined): string {
  return select ? `${fragment}(${select.join(',')})` : fragment;
}

/**
 * Lists a SQL-backed collection with Graph paging and query options.
 * `base` must already be limited to the caller's tenant and scope.
 */
export async function listCollection<DB, TB extends keyof DB, Row>(
  req: FastifyRequest,
  opts: {
    model: EntityModel;
    base: SelectQueryBuilder<DB, TB, Row>;
    toEntity: (rows: Row[]) => Promise<Record<string, unknown>[]> | Record<string, unknown>[];
    contextFragment: string;
    query?: ODataQuery;
  },
): Promise<CollectionBody> {
  const query = opts.query ?? parseQueryOptions(opts.model, req.query as Record<string, unknown>);
  const rows = await applyQuery(opts.base, opts.model, query, { limit: query.pageSize + 1, offset: query.offset }).execute();
  // $top=0 asks for no items; a nextLink to the same offset would send clients round forever.
  const more = query.pageSize > 0 && rows.length > query.pageSize;
  const pageRows = rows.slice(0, query.pageSize) as Row[];
  const entities = await opts.toEntity(pageRows);
  const body: CollectionBody = { '@odata.context': contextUrl(req, contextFragment(opts.contextFragment, query.select)), value: [] };
  if (query.count) body['@odata.count'] = await countCollection(opts.base, opts.model, query);
  if (more) body['@odata.nextLink'] = nextLink(req, query);
  body.value = entities.map((e) => applySelect(e, query.select));
  return body;
}

export async function countCollection<DB, TB extends keyof DB, Row>(
  base: SelectQueryBuilder<DB, TB, Row>,
  model: EntityModel,
  query: Pick<ODataQuery, 'filter'>,
): Promise<number> {
  const q = applyFilter(base, model, query.filter).clearSelect().clearOrderBy().select(sql<number>`count(*)`.as('n'));
  const row = (await q.executeTakeFirst()) as { n: number | string } | undefined;
  return Number(row?.n ?? 0);
}

/** The same for a collection assembled in memory (already limited to what the caller may see). */
export function listInMemory(
  req: FastifyRequest,
  opts: { model: EntityModel; items: Record<string, unknown>[]; contextFragment: string },
): CollectionBody {
  const query = parseQueryOptions(opts.model, req.query as Record<string, unknown>);
  let items = query.filter ? opts.items.filter((e) => evaluateFilter(opts.model, query.filter!, e)) : [...opts.items];
  for (const o of [...query.orderBy].reverse()) {
    const dir = o.direction === 'asc' ? 1 : -1;
    items = items.sort((a, b) => {
      const x = a[o.property];
      const y = b[o.property];
      if (x == null && y == null) return 0;
      if (x == null) return -dir;
      if (y == null) return dir;
      return x < y ? -dir : x > y ? dir : 0;
    });
  }
  const page = items.slice(query.offset, query.offset + query.pageSize);
  const body: CollectionBody = { '@odata.context': contextUrl(req, contextFragment(opts.contextFragment, query.select)), value: [] };
  if (query.count) body['@odata.count'] = items.length;
  if (query.pageSize > 0 && query.offset + query.pageSize < items.length) body['@odata.nextLink'] = nextLink(req, query);
  body.value = page.map((e) => applySelect(e, query.select));
  return body;
}

/** GET …/collection/$count: plain-text number honouring $filter. */
export async function countResponse<DB, TB extends keyof DB, Row>(
  req: FastifyRequest,
  model: EntityModel,
  base: SelectQueryBuilder<DB, TB, Row>,
): Promise<string> {
  const query = parseQueryOptions(model, req.query as Record<string, unknown>);
  return String(await countCollection(base, model, query));
}
