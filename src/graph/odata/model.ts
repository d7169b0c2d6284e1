import type { ComparisonOp, StringFunction } from './filter-ast.js';

export type PropertyType = 'string' | 'int' | 'boolean' | 'datetime' | 'guid' | 'enum' | 'collection' | 'object';
export type FilterOperator = ComparisonOp | StringFunction;

export interface PropertyDef {
  type: PropertyType;
  /** SQL column (may be table-qualified). Only properties with a column can be filtered or sorted. */
  column?: string;
  /** Allowed $filter operators; defaults depend on the type. */
  filterOps?: readonly FilterOperator[];
  /** Usable in $filter but not part of the entity body (e.g. a flattened navigation path). */
  filterOnly?: boolean;
  sortable?: boolean;
  /** String comparisons ignore case (Entra directory names, UPNs). */
  caseInsensitive?: boolean;
  enumValues?: readonly string[];
}

/** What the OData layer needs to know about an entity type to validate and compile query options. */
export interface EntityModel {
  /** Qualified type name, e.g. microsoft.graph.user. */
  typeName: string;
  /** The key column used as a stable tiebreaker for paging. */
  keyColumn: string;
  properties: Readonly<Record<string, PropertyDef>>;
  defaultPageSize?: number;
  maxPageSize?: number;
}

const ORDERABLE: readonly FilterOperator[] = ['eq', 'ne', 'lt', 'gt', 'le', 'ge'];

export function allowedOperators(def: PropertyDef): readonly FilterOperator[] {
  if (def.filterOps) return def.filterOps;
  switch (def.type) {
    case 'string':
      return [...ORDERABLE, 'startswith', 'endswith', 'contains'];
    case 'int':
    case 'datetime':
      return ORDERABLE;
    case 'boolean':
    case 'guid':
    case 'enum':
      return ['eq', 'ne'];
    default:
      return [];
  }
}

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 999;
