import {
  COMPARISON_OPS,
  STRING_FUNCTIONS,
  mirrorOp,
  type ComparisonOp,
  type FilterNode,
  type Literal,
  type StringFunction,
} from './filter-ast.js';

export class FilterSyntaxError extends Error {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(message);
  }
}

/**
 * maxLength: characters; maxDepth: nesting of parenthesised groups and `not`s (what the parser
 * recurses on); maxNodes: nodes of the resulting tree (comparisons, functions, and, or, not).
 */
export const FILTER_LIMITS = { maxLength: 4096, maxDepth: 32, maxNodes: 200 } as const;

type Token =
  | { t: 'lparen' | 'rparen' | 'comma'; pos: number }
  | { t: 'string'; value: string; pos: number }
  | { t: 'number'; value: number; pos: number }
  | { t: 'datetime' | 'guid'; value: string; pos: number }
  | { t: 'word'; value: string; pos: number };

const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![\w-])/;
const DATETIME = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?(?![\w:.-])/;
const NUMBER = /^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w.])/;
const WORD = /^[A-Za-z_@$][\w./@$]*/;

/**
 * Normalises a date/time literal to UTC ISO text, or undefined when it names no real instant.
 * Date() alone rolls 2024-02-30 over to March and accepts 24:00, so the fields are checked too.
 */
export function parseDateTime(text: string): string | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?)?/.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map((v) => Number(v ?? 0)) as [number, number, number, number, number, number];
  const day = new Date(0);
  day.setUTCFullYear(y, mo - 1, d); // not Date.UTC, which maps years 0-99 to 1900-1999
  if (day.getUTCMonth() !== mo - 1 || day.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) return undefined;
  const instant = new Date(text);
  return Number.isNaN(instant.getTime()) ? undefined : instant.toISOString();
}

/** A whole string that is a date/time literal (for '2024-01-01'-style quoted values), as UTC ISO text. */
export function dateTimeFromString(text: string): string | undefined {
  const m = DATETIME.exec(text);
  return m && m[0].length === text.length ? parseDateTime(text) : undefined;
}

function tokenize(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const ch = input[i]!;
    if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r') {
      i++;
      continue;
    }
    if (ch === '(') {
      tokens.push({ t: 'lparen', pos: i++ });
      continue;
    }
    if (ch === ')') {
      tokens.push({ t: 'rparen', pos: i++ });
      continue;
    }
    if (ch === ',') {
      tokens.push({ t: 'comma', pos: i++ });
      continue;
    }
    if (ch === "'") {
      const start = i;
      let value = '';
      i++;
      for (;;) {
        if (i >= input.length) throw new FilterSyntaxError('unterminated string literal', start);
        const c = input[i]!;
        if (c === "'") {
          if (input[i + 1] === "'") {
            value += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += c;
        i++;
      }
      tokens.push({ t: 'string', value, pos: start });
      continue;
    }
    const rest = input.slice(i);
    let m = GUID.exec(rest);
    if (m) {
      tokens.push({ t: 'guid', value: m[0].toLowerCase(), pos: i });
      i += m[0].length;
      continue;
    }
    m = DATETIME.exec(rest);
    if (m) {
      const iso = parseDateTime(m[0]);
      if (iso === undefined) throw new FilterSyntaxError(`invalid date/time literal '${m[0]}'`, i);
      tokens.push({ t: 'datetime', value: iso, pos: i });
      i += m[0].length;
      continue;
    }
    m = NUMBER.exec(rest);
    if (m) {
      const n = Number(m[0]);
      // 1e400 would become Infinity, which neither JSON nor SQL can carry.
      if (!Number.isFinite(n)) throw new FilterSyntaxError(`number literal '${m[0]}' is out of range`, i);
      tokens.push({ t: 'number', value: n === 0 ? 0 : n, pos: i });
      i += m[0].length;
      continue;
    }
    m = WORD.exec(rest);
    if (m) {
      tokens.push({ t: 'word', value: m[0], pos: i });
      i += m[0].length;
      continue;
    }
    throw new FilterSyntaxError(`unexpected character '${ch}'`, i);
  }
  return tokens;
}

const isComparison = (w: string): w is ComparisonOp => (COMPARISON_OPS as readonly string[]).includes(w);
const isStringFunction = (w: string): w is StringFunction => (STRING_FUNCTIONS as readonly string[]).includes(w);

/** Parses an OData $filter expression into a tree. Throws FilterSyntaxError with a position. */
export function parseFilter(input: string): FilterNode {
  if (input.length > FILTER_LIMITS.maxLength) {
    throw new FilterSyntaxError(`the expression is longer than ${FILTER_LIMITS.maxLength} characters`, 0);
  }
  const tokens = tokenize(input);
  let p = 0;
  let nodes = 0;
  const end = input.length;

  const peek = (): Token | undefined => tokens[p];
  const posOf = (tok: Token | undefined) => tok?.pos ?? end;
  /** Counts one tree node; the limit bounds the work of validating, compiling and evaluating. */
  const node = <N extends FilterNode>(n: N, pos: number): N => {
    if (++nodes > FILTER_LIMITS.maxNodes) throw new FilterSyntaxError(`the expression has more than ${FILTER_LIMITS.maxNodes} terms and operators`, pos);
    return n;
  };
  /** Only groups and `not` recurse, so limiting them bounds the parser's stack. */
  const nest = (depth: number, pos: number): number => {
    if (depth + 1 > FILTER_LIMITS.maxDepth) throw new FilterSyntaxError(`the expression is nested deeper than ${FILTER_LIMITS.maxDepth} levels`, pos);
    return depth + 1;
  };
  const isWord = (tok: Token | undefined, w: string): boolean =>
    tok?.t === 'word' && tok.value.toLowerCase() === w;
  const expect = (t: Token['t'], what: string): Token => {
    const tok = peek();
    if (!tok || tok.t !== t) throw new FilterSyntaxError(`expected ${what}`, posOf(tok));
    p++;
    return tok;
  };

  const literal = (tok: Token | undefined): Literal | undefined => {
    if (!tok) return undefined;
    switch (tok.t) {
      case 'string':
        return { type: 'string', value: tok.value };
      case 'number':
        return { type: 'number', value: tok.value };
      case 'datetime':
        return { type: 'datetime', value: tok.value };
      case 'guid':
        return { type: 'guid', value: tok.value };
      case 'word': {
        const w = tok.value.toLowerCase();
        if (w === 'true' || w === 'false') return { type: 'boolean', value: w === 'true' };
        if (w === 'null') return { type: 'null' };
        return undefined;
      }
      default:
        return undefined;
    }
  };

  const orExpr = (depth: number): FilterNode => {
    let left = andExpr(depth);
    while (isWord(peek(), 'or')) {
      const pos = posOf(peek());
      p++;
      left = node({ kind: 'or', left, right: andExpr(depth) }, pos);
    }
    return left;
  };
  const andExpr = (depth: number): FilterNode => {
    let left = unary(depth);
    while (isWord(peek(), 'and')) {
      const pos = posOf(peek());
      p++;
      left = node({ kind: 'and', left, right: unary(depth) }, pos);
    }
    return left;
  };
  const unary = (depth: number): FilterNode => {
    const tok = peek();
    if (isWord(tok, 'not')) {
      p++;
      return node({ kind: 'not', expr: unary(nest(depth, posOf(tok))) }, posOf(tok));
    }
    return primary(depth);
  };
  const primary = (depth: number): FilterNode => {
    const tok = peek();
    if (!tok) throw new FilterSyntaxError('unexpected end of expression', end);
    if (tok.t === 'lparen') {
      p++;
      const inner = orExpr(nest(depth, tok.pos));
      expect('rparen', "')'");
      return inner;
    }
    if (tok.t === 'word' && tokens[p + 1]?.t === 'lparen') {
      const name = tok.value.toLowerCase();
      if (!isStringFunction(name)) throw new FilterSyntaxError(`unsupported function '${tok.value}'`, tok.pos);
      p += 2;
      const propTok = expect('word', 'a property name');
      expect('comma', "','");
      const valTok = peek();
      const value = literal(valTok);
      if (!value || value.type !== 'string') throw new FilterSyntaxError(`${name} needs a string literal`, posOf(valTok));
      p++;
      expect('rparen', "')'");
      return node({ kind: 'function', name, property: (propTok as { value: string }).value, value }, tok.pos);
    }
    // comparison: operand op operand, one side a property and the other a literal
    const leftTok = tok;
    p++;
    const opTok = peek();
    if (!opTok || opTok.t !== 'word' || !isComparison(opTok.value.toLowerCase())) {
      throw new FilterSyntaxError('expected a comparison operator (eq, ne, lt, gt, le, ge)', posOf(opTok));
    }
    p++;
    const op = opTok.value.toLowerCase() as ComparisonOp;
    const rightTok = peek();
    if (!rightTok) throw new FilterSyntaxError('expected a value after the operator', end);
    p++;
    const leftLit = literal(leftTok);
    const rightLit = literal(rightTok);
    if (leftTok.t === 'word' && !leftLit && rightLit) return node({ kind: 'compare', op, property: leftTok.value, value: rightLit }, leftTok.pos);
    if (rightTok.t === 'word' && !rightLit && leftLit) {
      return node({ kind: 'compare', op: mirrorOp(op), property: rightTok.value, value: leftLit }, leftTok.pos);
    }
    throw new FilterSyntaxError('a comparison needs one property and one literal value', leftTok.pos);
  };

  if (tokens.length === 0) throw new FilterSyntaxError('the expression is empty', 0);
  const tree = orExpr(0);
  if (p < tokens.length) throw new FilterSyntaxError('unexpected text after the expression', posOf(peek()));
  return tree;
}
