/** The case-insensitive text operators of Entra's rule languages (dynamic groups, assignment filters). */
export type TextMatchOperator = 'eq' | 'ne' | 'startsWith' | 'notStartsWith' | 'endsWith' | 'notEndsWith' | 'contains' | 'notContains';

/** Pure: whether `actual` (a missing value compares as "") matches `expected` under `op`, ignoring case. */
export function matchText(op: TextMatchOperator, actual: string | null, expected: string): boolean {
  const a = (actual ?? '').toLowerCase();
  const e = expected.toLowerCase();
  switch (op) {
    case 'eq':
      return a === e;
    case 'ne':
      return a !== e;
    case 'startsWith':
      return a.startsWith(e);
    case 'notStartsWith':
      return !a.startsWith(e);
    case 'endsWith':
      return a.endsWith(e);
    case 'notEndsWith':
      return !a.endsWith(e);
    case 'contains':
      return a.includes(e);
    case 'notContains':
      return !a.includes(e);
  }
}
