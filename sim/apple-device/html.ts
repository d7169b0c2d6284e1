/**
 * Just enough HTML for Setup Assistant's web view: the first form of a page, its fields, and how a
 * user fills it in (user name, password, ticked boxes). No scripts run, as in a page a device
 * renders with scripts that a test can't drive.
 */

export interface HtmlForm {
  action: string;
  method: 'GET' | 'POST';
  fields: HtmlField[];
}

export interface HtmlField {
  tag: 'input' | 'textarea' | 'select' | 'button';
  type: string;
  name: string;
  value: string;
  checked: boolean;
}

const decode = (s: string) =>
  s
    .replace(/&quot;/g, '"')
    .replace(/&#39;|&#x27;/gi, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&#(\d+);/g, (_, n: string) => String.fromCodePoint(Number(n)))
    .replace(/&#x([0-9a-f]+);/gi, (_, n: string) => String.fromCodePoint(parseInt(n, 16)))
    .replace(/&amp;/g, '&');

function attributes(tag: string): Map<string, string> {
  const out = new Map<string, string>();
  const re = /([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  const inner = tag.replace(/^<\s*[a-zA-Z]+/, '').replace(/\/?>$/, '');
  for (const m of inner.matchAll(re)) out.set(m[1]!.toLowerCase(), decode(m[2] ?? m[3] ?? m[4] ?? ''));
  return out;
}

/** The forms of a page, in document order. */
export function parseForms(html: string, pageUrl: string): HtmlForm[] {
  const forms: HtmlForm[] = [];
  for (const m of html.matchAll(/<form\b[^>]*>([\s\S]*?)<\/form\s*>/gi)) {
    const open = /<form\b[^>]*>/i.exec(m[0])![0];
    const a = attributes(open);
    const action = new URL(a.get('action') || pageUrl, pageUrl).href;
    const method = (a.get('method') ?? 'GET').toUpperCase() === 'POST' ? 'POST' : 'GET';
    const body = m[1] ?? '';
    const fields: HtmlField[] = [];
    for (const f of body.matchAll(/<(input|button)\b[^>]*>|<textarea\b[^>]*>([\s\S]*?)<\/textarea\s*>|<select\b[^>]*>([\s\S]*?)<\/select\s*>/gi)) {
      const tag = f[0].match(/^<\s*([a-zA-Z]+)/)![1]!.toLowerCase() as HtmlField['tag'];
      const fa = attributes(f[0].match(/^<[^>]*>/)![0]);
      const name = fa.get('name');
      if (!name || fa.has('disabled')) continue;
      if (tag === 'textarea') fields.push({ tag, type: 'textarea', name, value: decode(f[2] ?? ''), checked: false });
      else if (tag === 'select') {
        const options = [...(f[3] ?? '').matchAll(/<option\b[^>]*>([^<]*)/gi)].map((o) => {
          const oa = attributes(o[0].match(/^<[^>]*>/)![0]);
          return { value: oa.get('value') ?? decode(o[1] ?? '').trim(), selected: oa.has('selected') };
        });
        const chosen = options.find((o) => o.selected) ?? options[0];
        fields.push({ tag, type: 'select', name, value: chosen?.value ?? '', checked: false });
      } else {
        const type = (fa.get('type') ?? (tag === 'button' ? 'submit' : 'text')).toLowerCase();
        fields.push({ tag, type, name, value: fa.get('value') ?? '', checked: fa.has('checked') });
      }
    }
    forms.push({ action, method, fields });
  }
  return forms;
}

export interface Credentials {
  username: string;
  password: string;
}

/**
 * The body a user submits: hidden fields as served, the user name in the first text/email field
 * (or one named like a user name), the password in every password field, checkboxes ticked
 * (terms accepted), the first submit button's name=value; `choices` (name → value) answer radio
 * buttons, selects and text fields by name.
 */
export function fillForm(form: HtmlForm, creds: Credentials | undefined, choices: Record<string, string> = {}): URLSearchParams {
  const out = new URLSearchParams();
  const textual = form.fields.filter((f) => f.tag === 'input' && ['text', 'email'].includes(f.type));
  const userField = textual.find((f) => /user|login|email|upn|account|name/i.test(f.name)) ?? textual[0];
  let submitted = false;
  for (const f of form.fields) {
    if (f.tag === 'button' || ['submit', 'image'].includes(f.type)) {
      if (!submitted) out.append(f.name, f.value);
      submitted = true;
      continue;
    }
    const chosen = choices[f.name];
    if (f.type === 'password') out.append(f.name, creds?.password ?? '');
    else if (chosen !== undefined && f.type !== 'hidden') {
      if (f.type === 'radio' ? f.value === chosen && !out.has(f.name) : !out.has(f.name)) out.append(f.name, chosen);
    } else if (f === userField) out.append(f.name, creds?.username ?? f.value);
    else if (f.type === 'checkbox') out.append(f.name, f.value || 'on');
    else if (f.type === 'radio') {
      if (f.checked && !out.has(f.name)) out.append(f.name, f.value);
    } else if (!['reset', 'file'].includes(f.type)) out.append(f.name, f.value);
  }
  return out;
}

/** A meta refresh target (pages that hand over to the profile download that way). */
export function metaRefresh(html: string, pageUrl: string): string | undefined {
  const m = /<meta\b[^>]*http-equiv\s*=\s*["']?refresh["']?[^>]*>/i.exec(html);
  if (!m) return undefined;
  const content = attributes(m[0]).get('content') ?? '';
  const url = /url\s*=\s*['"]?([^'"]+)/i.exec(content)?.[1];
  return url ? new URL(url.trim(), pageUrl).href : undefined;
}

/** The link a user would tap to go on: one naming this device's platform, else the first that looks like enrollment. */
export function profileLink(html: string, pageUrl: string, platform?: string): string | undefined {
  const hrefs = [...html.matchAll(/<a\b[^>]*>/gi)].map((m) => attributes(m[0]).get('href')).filter((h): h is string => !!h && /mobileconfig|profile|enroll/i.test(h));
  const mine = platform ? hrefs.find((h) => new RegExp(`platform=${platform}\\b`, 'i').test(h)) : undefined;
  const href = mine ?? hrefs[0];
  return href ? new URL(href, pageUrl).href : undefined;
}
