/** The $filter subset we support, as a syntax tree. Comparisons always have the property on the left. */

export type ComparisonOp = 'eq' | 'ne' | 'lt' | 'gt' | 'le' | 'ge';
export type StringFunction = 'startswith' | 'endswith' | 'contains';

export type Literal =
  | { type: 'string'; value: string }
  | { type: 'number'; value: number }
  | { type: 'boolean'; value: boolean }
  | { type: 'null' }
  | { type: 'datetime'; value: string }
  | { type: 'guid'; value: string };

export type FilterNode =
  | { kind: 'and' | 'or'; left: FilterNode; right: FilterNode }
  | { kind: 'not'; expr: FilterNode }
  | { kind: 'compare'; op: ComparisonOp; property: string; value: Literal }
  | { kind: 'function'; name: StringFunction; property: string; value: Literal };

export const COMPARISON_OPS: readonly ComparisonOp[] = ['eq', 'ne', 'lt', 'gt', 'le', 'ge'];
export const STRING_FUNCTIONS: readonly StringFunction[] = ['startswith', 'endswith', 'contains'];

const MIRROR: Record<ComparisonOp, ComparisonOp> = { eq: 'eq', ne: 'ne', lt: 'gt', gt: 'lt', le: 'ge', ge: 'le' };
export const mirrorOp = (op: ComparisonOp): ComparisonOp => MIRROR[op];

/** Prints a tree back to $filter text (used by property tests and for messages). */
export function printFilter(node: FilterNode): string {
  switch (node.kind) {
    case 'and':
    case 'or':
      return `(${printFilter(node.left)} ${node.kind} ${printFilter(node.right)})`;
    case 'not':
      return `not (${printFilter(node.expr)})`;
    case 'compare':
      return `${node.property} ${node.op} ${printLiteral(node.value)}`;
    case 'function':
      return `${node.name}(${node.property},${printLiteral(node.value)})`;
  }
}

export function printLiteral(lit: Literal): string {
  switch (lit.type) {
    case 'string':
      return `'${lit.value.replace(/'/g, "''")}'`;
    case 'number':
      return String(lit.value);
    case 'boolean':
      return lit.value ? 'true' : 'false';
    case 'null':
      return 'null';
    case 'datetime':
    case 'guid':
      return lit.value;
  }
}
