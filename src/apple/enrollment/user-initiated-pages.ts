import { escapeHtml, renderPage } from './web-signin.js';

/**
 * The pages of user-initiated enrollment beyond sign-in and terms (web-signin.ts has those):
 * which device, who owns it, and how much of it the organization secures. Each choice is its own
 * form with one button, so the answer is explicit and the page needs no script.
 */

interface ChoiceForm {
  action: string;
  csrfToken: string;
  step: string;
  name: string;
}

function choice(f: ChoiceForm, value: string, label: string, detail: string, secondary = false): string {
  return (
    `<form method="post" action="${escapeHtml(f.action)}">` +
    `<input type="hidden" name="csrf" value="${escapeHtml(f.csrfToken)}">` +
    `<input type="hidden" name="step" value="${escapeHtml(f.step)}">` +
    `<input type="hidden" name="${escapeHtml(f.name)}" value="${escapeHtml(value)}">` +
    `<button type="submit"${secondary ? ' class="secondary"' : ''}>${escapeHtml(label)}</button>` +
    `<p class="small">${escapeHtml(detail)}</p>` +
    `</form>`
  );
}

/** A Mac-like browser may be an iPad in desktop mode: the user says which. */
export function platformPage(pagePath: string): string {
  return renderPage(
    'Enroll your device',
    `<h1>Which device are you enrolling?</h1><p>Open this page on the device you want to enroll.</p>` +
      `<a class="button" href="${escapeHtml(`${pagePath}?platform=macOS`)}">This Mac</a>` +
      `<a class="button secondary" href="${escapeHtml(`${pagePath}?platform=iOS`)}">This iPad or iPhone</a>`,
  );
}

/** "Determine based on user choice" (-D §6): who owns the device. */
export function ownerPage(o: { action: string; csrfToken: string; organization: string }): string {
  const f = { action: o.action, csrfToken: o.csrfToken, step: 'chooseOwner', name: 'owner' };
  return renderPage(
    'Who owns this device?',
    `<h1>Who owns this device?</h1>` +
      choice(f, 'company', `${o.organization} owns this device`, 'Your organization manages the whole device.') +
      choice(f, 'personal', 'I own this device', 'You choose next how much of it your organization manages.', true),
  );
}

/** A personal device: the whole device (device enrollment) or work apps and data only (User Enrollment). */
export function scopePage(o: { action: string; csrfToken: string; organization: string }): string {
  const f = { action: o.action, csrfToken: o.csrfToken, step: 'chooseScope', name: 'scope' };
  return renderPage(
    'What do you want to secure?',
    `<h1>What do you want to secure?</h1>` +
      choice(f, 'entireDevice', 'Secure my entire device', `${o.organization} can manage settings and apps on the whole device and can erase it.`) +
      choice(
        f,
        'workOnly',
        'Secure only work-related apps and data',
        `${o.organization} manages its own apps, accounts and data, kept apart from yours. It can't see your personal data, serial number, UDID or IMEI, and can't erase your device.`,
        true,
      ),
  );
}
