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
      const d = new Date(m[0]);
      if (Number.isNaN(d.getTime())) throw new FilterSyntaxError(`invalid date/time literal '${m[0]}'`, i);
      tokens.push({ t: 'datetime', value: d.toISOString(), pos: i });
      i += m[0].length;
      continue;
    }
    m = NUMBER.exec(rest);
    if (m) {
      tokens.push({ t: 'number', value: Number(m[0]), pos: i });
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
  const count = (depth: number) => {
    if (++nodes > FILTER_LIMITS.maxNodes) throw new FilterSyntaxError(`more than ${FILTER_LIMITS.maxNodes} terms`, posOf(peek()));
    if (depth > FILTER_LIMITS.maxDepth) throw new FilterSyntaxError(`nested deeper than ${FILTER_LIMITS.maxDepth} levels`, posOf(peek()));
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
    count(depth);
    let left = andExpr(depth + 1);
    while (isWord(peek(), 'or')) {
      p++;
      left = { kind: 'or', left, right: andExpr(depth + 1) };
    }
    return left;
  };
  const andExpr = (depth: number): FilterNode => {
    count(depth);
    let left = unary(depth + 1);
    while (isWord(peek(), 'and')) {
      p++;
      left = { kind: 'and', left, right: unary(depth + 1) };
    }
    return left;
  };
  const unary = (depth: number): FilterNode => {
    count(depth);
    if (isWord(peek(), 'not')) {
      p++;
      return { kind: 'not', expr: unary(depth + 1) };
    }
    return primary(depth + 1);
  };
  const primary = (depth: number): FilterNode => {
    count(depth);
    const tok = peek();
    if (!tok) throw new FilterSyntaxError('unexpected end of expression', end);
    if (tok.t === 'lparen') {
      p++;
      const inner = orExpr(depth + 1);
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
      return { kind: 'function', name, property: (propTok as { value: string }).value, value };
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
    if (leftTok.t === 'word' && !leftLit && rightLit) return { kind: 'compare', op, property: leftTok.value, value: rightLit };
    if (rightTok.t === 'word' && !rightLit && leftLit) return { kind: 'compare', op: mirrorOp(op), property: rightTok.value, value: leftLit };
    throw new FilterSyntaxError('a comparison needs one property and one literal value', leftTok.pos);
  };

  if (tokens.length === 0) throw new FilterSyntaxError('the expression is empty', 0);
  const tree = orExpr(0);
  if (p < tokens.length) throw new FilterSyntaxError('unexpected text after the expression', posOf(peek()));
  return tree;
}
