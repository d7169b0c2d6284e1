import fs from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { describe, expect } from 'vitest';

/**
 * Shared by the fuzz tests: byte mutations of valid samples, the "typed error or nothing" check with
 * a hang bound, and a heap bound. The time bound detects hangs (exponential or unbounded work); it
 * is far above any honest parse and is not a performance measurement (that is `npm run bench`).
 */

/** A case that takes longer than this is hung. */
export const HANG_MS = 5_000;
/** Retained heap a batch of cases may leave behind after a collection. */
export const RETAINED_HEAP_BYTES = 48 * 1024 * 1024;
/** Live heap a single case may add before a collection (an expansion attack would pass it). */
export const TRANSIENT_HEAP_BYTES = 512 * 1024 * 1024;

/** Pure fuzz tests need no store, so they run in the SQLite project only. */
export const pureDescribe = describe.skipIf(process.env.OPENENROLL_TEST_STORE === 'postgres');

export type ErrorType = abstract new (...args: never[]) => Error;

export type Mutation =
  | { kind: 'flip' | 'set' | 'insert' | 'delete' | 'truncate'; at: number; byte: number }
  | { kind: 'splice' | 'duplicate'; at: number; from: number; length: number };

const byteMutation = fc.record({
  kind: fc.constantFrom('flip' as const, 'set' as const, 'insert' as const, 'delete' as const, 'truncate' as const),
  at: fc.nat(),
  byte: fc.integer({ min: 0, max: 255 }),
});
const chunkMutation = fc.record({ kind: fc.constantFrom('splice' as const, 'duplicate' as const), at: fc.nat(), from: fc.nat(), length: fc.integer({ min: 1, max: 512 }) });
export const mutation: fc.Arbitrary<Mutation> = fc.oneof({ weight: 3, arbitrary: byteMutation }, { weight: 1, arbitrary: chunkMutation });
export const mutations = fc.array(mutation, { minLength: 1, maxLength: 6 });

/** Bit flips, byte changes, insertions, deletions, truncation, a chunk copied over another place (splice) or repeated (duplicate). */
export function mutate(input: Uint8Array, ms: readonly Mutation[]): Buffer {
  let b = Buffer.from(input);
  for (const m of ms) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    switch (m.kind) {
      case 'flip':
        b[at] = b[at]! ^ (1 << m.byte % 8);
        break;
      case 'set':
        b[at] = m.byte;
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), Buffer.from([m.byte]), b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'splice': {
        const from = m.from % b.length;
        const chunk = Buffer.from(b.subarray(from, from + m.length));
        b = Buffer.concat([b.subarray(0, at), chunk, b.subarray(at + chunk.length)]);
        break;
      }
      case 'duplicate': {
        const chunk = Buffer.from(b.subarray(at, at + m.length));
        b = Buffer.concat([b.subarray(0, at + chunk.length), chunk, b.subarray(at + chunk.length)]);
        break;
      }
    }
  }
  return b;
}

function check(err: unknown, types: readonly ErrorType[]): 'refused' {
  if (types.some((t) => err instanceof t)) return 'refused';
  throw new Error(`an untyped error escaped: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`, { cause: err });
}

function bounded(started: number, what: string): void {
  const ms = performance.now() - started;
  expect(ms, `${what} took ${Math.round(ms)} ms`).toBeLessThan(HANG_MS);
}

/** Runs a parser: it returns, or throws one of `types`; anything else (TypeError, RangeError…) fails, as does a hang. */
export function typedOnly(types: readonly ErrorType[], fn: () => unknown, what = 'the case'): 'ok' | 'refused' {
  const started = performance.now();
  let result: 'ok' | 'refused';
  try {
    fn();
    result = 'ok';
  } catch (err) {
    result = check(err, types);
  }
  bounded(started, what);
  return result;
}

export async function typedOnlyAsync(types: readonly ErrorType[], fn: () => Promise<unknown>, what = 'the case'): Promise<'ok' | 'refused'> {
  const started = performance.now();
  let result: 'ok' | 'refused';
  try {
    await fn();
    result = 'ok';
  } catch (err) {
    result = check(err, types);
  }
  bounded(started, what);
  return result;
}

/** The same, and the parser must refuse (used for inputs past a limit and for attacks). */
export function refuses(types: readonly ErrorType[], fn: () => unknown, what = 'the input'): void {
  expect(typedOnly(types, fn, what), `${what} was accepted`).toBe('refused');
}

let collect: (() => void) | undefined;
/** A full garbage collection, exposed at run time (vitest workers don't start with --expose-gc). */
export function gc(): void {
  if (!collect) {
    v8.setFlagsFromString('--expose-gc');
    collect = vm.runInNewContext('gc') as () => void;
  }
  collect();
}

/**
 * Runs a batch of cases and checks memory: no single case may add more than TRANSIENT_HEAP_BYTES of
 * live heap (sampled after each case), and the batch may retain at most RETAINED_HEAP_BYTES.
 */
export async function heapBounded(run: (sample: () => void) => unknown): Promise<void> {
  gc();
  const before = process.memoryUsage().heapUsed;
  let peak = before;
  await run(() => {
    peak = Math.max(peak, process.memoryUsage().heapUsed);
  });
  gc();
  const after = process.memoryUsage().heapUsed;
  expect(peak - before, 'live heap during a case').toBeLessThan(TRANSIENT_HEAP_BYTES);
  expect(after - before, 'heap retained by the batch').toBeLessThan(RETAINED_HEAP_BYTES);
}

const MDM_FIXTURES = new URL('../apple/fixtures/mdm/', import.meta.url);
const SHARED_APPLE_FIXTURES = new URL('../fixtures/public/apple/', import.meta.url);

/** Every public and recorded property list sample (check-ins, reports, a .mobileconfig). */
export function plistSamples(): { name: string; bytes: Buffer }[] {
  const out: { name: string; bytes: Buffer }[] = [];
  for (const dir of [MDM_FIXTURES, SHARED_APPLE_FIXTURES]) {
    if (!fs.existsSync(dir)) continue;
    for (const name of fs.readdirSync(dir).sort()) {
      if (name.endsWith('.plist') || name.endsWith('.mobileconfig')) out.push({ name, bytes: fs.readFileSync(new URL(name, dir)) });
    }
  }
  return out;
}

/** A shared fixture file, or undefined when the checkout has no ../shared. */
export function sharedFixture(path: string): Buffer | undefined {
  const url = new URL(path, new URL('../fixtures/public/', import.meta.url));
  return fs.existsSync(url) ? fs.readFileSync(url) : undefined;
}

/** What must never reach a client: stack frames, source paths, JavaScript error names. */
export const INTERNALS = /\n\s+at |node_modules|\.ts:\d+|\.js:\d+|TypeError|RangeError|SyntaxError/;

/** A refusal in Graph's envelope, nothing more. */
export function expectGraphRefusal(res: LightMyRequestResponse, what: string): void {
  expect(res.statusCode, `${what}: ${res.body.slice(0, 300)}`).toBeGreaterThanOrEqual(400);
  expect(res.statusCode, `${what}: ${res.body.slice(0, 300)}`).toBeLessThan(500);
  const body = res.json<{ error: { code: string; message: string; innerError: { 'request-id': string } } }>();
  expect(Object.keys(body)).toEqual(['error']);
  expect(typeof body.error.code).toBe('string');
  expect(typeof body.error.message).toBe('string');
  expect(body.error.innerError['request-id']).toBe(res.headers['request-id']);
  expect(res.body, what).not.toMatch(INTERNALS);
}
