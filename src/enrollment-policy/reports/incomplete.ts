import { DAY, MINUTE } from '../../shared/time.js';

/*
 * Incomplete user enrollments (requirements -A §9), pure: the Company Portal enrollment
 * sections, the abandonment action catalogue, when an attempt becomes incomplete, and the
 * report's date range.
 */

/** An attempt idle this long between enrollment screens is incomplete (decisions.md: 30:00 counts, 29:59 doesn't). */
export const INCOMPLETE_AFTER_MS = 30 * MINUTE;
/** The report shows the past two weeks unless asked for another range… */
export const DEFAULT_RANGE_MS = 14 * DAY;
/** …reaching at most 30 days back. */
export const MAX_LOOKBACK_MS = 30 * DAY;

export const SESSION_PLATFORMS = ['iOS', 'Android'] as const;
export type SessionPlatform = (typeof SESSION_PLATFORMS)[number];

export const SECTIONS = {
  setupChecklist: 'Setup checklist',
  platformScreens: 'Platform screens',
  termsOfUse: 'Terms of use',
  complianceActivation: 'Compliance/Activation',
} as const;
export type SectionId = keyof typeof SECTIONS;

/** Company Portal actions (screens or flows), in enrollment order, with their section and platforms. */
export const ACTIONS = {
  PreEnrollmentWizard: { section: 'setupChecklist', platforms: ['iOS', 'Android'] },
  DeviceCategory: { section: 'setupChecklist', platforms: ['iOS', 'Android'] },
  EnrollmentWrapUp: { section: 'setupChecklist', platforms: ['iOS', 'Android'] },
  iOSProfileLaunch: { section: 'platformScreens', platforms: ['iOS'] },
  AndroidPermissions: { section: 'platformScreens', platforms: ['Android'] },
  KnoxActivation: { section: 'platformScreens', platforms: ['Android'] },
  TermsofUse: { section: 'termsOfUse', platforms: ['iOS', 'Android'] },
  Compliance: { section: 'complianceActivation', platforms: ['iOS', 'Android'] },
  Activation: { section: 'complianceActivation', platforms: ['iOS', 'Android'] },
} as const satisfies Record<string, { section: SectionId; platforms: readonly SessionPlatform[] }>;
export type ActionName = keyof typeof ACTIONS;
export const ACTION_NAMES = Object.keys(ACTIONS) as ActionName[];

/** What the user did: the seed's "Action" column, plus closing Company Portal mid-enrollment. */
export const USER_ACTIONS = {
  cancel: 'Cancel',
  postpone: 'Postpone',
  ignore: 'Ignore',
  declineAll: 'Decline All',
  tookTooLong: 'Took > 30 minutes',
  closed: 'Closed Company Portal',
} as const;
export type UserAction = keyof typeof USER_ACTIONS;

export interface AbandonmentAction {
  section: SectionId;
  actionName: ActionName;
  screenOrFlow: string;
  platform: string;
  userAction: UserAction;
}

/**
 * The seed's abandonment catalogue (L1160–1197). Its last row is named "Compliance" but describes
 * device activation; it is filed under Activation (requirements -A §16.4).
 */
export const ABANDONMENT_CATALOGUE: readonly AbandonmentAction[] = [
  { section: 'setupChecklist', actionName: 'EnrollmentWrapUp', screenOrFlow: 'Prompt to open page in Company Portal', platform: 'iOS/Android', userAction: 'cancel' },
  { section: 'setupChecklist', actionName: 'EnrollmentWrapUp', screenOrFlow: 'Enrolling device screen until finish of Loading company resources', platform: 'iOS/Android', userAction: 'tookTooLong' },
  { section: 'setupChecklist', actionName: 'DeviceCategory', screenOrFlow: 'Device Category selection (if admin configured) until click Done', platform: 'iOS/Android', userAction: 'tookTooLong' },
  { section: 'setupChecklist', actionName: 'PreEnrollmentWizard', screenOrFlow: 'Set up access screen when having started enrollment but returned to Set up access', platform: 'iOS/Android', userAction: 'postpone' },
  { section: 'setupChecklist', actionName: 'PreEnrollmentWizard', screenOrFlow: "Set up access screen until clicking Next on the What's Next screen", platform: 'iOS/Android', userAction: 'tookTooLong' },
  { section: 'platformScreens', actionName: 'iOSProfileLaunch', screenOrFlow: 'Prompt to show a configuration profile', platform: 'iOS/iPadOS', userAction: 'ignore' },
  { section: 'platformScreens', actionName: 'iOSProfileLaunch', screenOrFlow: 'Installing profile screen', platform: 'iOS/iPadOS', userAction: 'cancel' },
  { section: 'platformScreens', actionName: 'iOSProfileLaunch', screenOrFlow: "Prompt to trust the profile's source to enroll the device", platform: 'iOS/iPadOS', userAction: 'cancel' },
  { section: 'platformScreens', actionName: 'iOSProfileLaunch', screenOrFlow: 'Install profile screen until profile is installed', platform: 'iOS/iPadOS', userAction: 'tookTooLong' },
  { section: 'platformScreens', actionName: 'AndroidPermissions', screenOrFlow: 'Device administrator activation screen', platform: 'Android', userAction: 'cancel' },
  {
    section: 'platformScreens',
    actionName: 'AndroidPermissions',
    screenOrFlow: 'From prompt for approval to make and manage phone calls until device administrator Activate',
    platform: 'Android',
    userAction: 'tookTooLong',
  },
  { section: 'platformScreens', actionName: 'KnoxActivation', screenOrFlow: 'KLMS agent activation (Samsung only)', platform: 'Android', userAction: 'cancel' },
  { section: 'platformScreens', actionName: 'KnoxActivation', screenOrFlow: 'KLMS agent activation until Confirm', platform: 'Android', userAction: 'tookTooLong' },
  { section: 'termsOfUse', actionName: 'TermsofUse', screenOrFlow: 'Terms of use (if admin configured)', platform: 'iOS/Android', userAction: 'declineAll' },
  { section: 'termsOfUse', actionName: 'TermsofUse', screenOrFlow: 'Terms of use until Accept all', platform: 'iOS/Android', userAction: 'tookTooLong' },
  {
    section: 'complianceActivation',
    actionName: 'Compliance',
    screenOrFlow: 'Device compliance (if admin configured) shows as non-green on access setup post enrollment',
    platform: 'iOS/Android',
    userAction: 'postpone',
  },
  { section: 'complianceActivation', actionName: 'Compliance', screenOrFlow: 'Device compliance shows as non-green until updated to show green', platform: 'iOS/Android', userAction: 'tookTooLong' },
  { section: 'complianceActivation', actionName: 'Activation', screenOrFlow: 'Enrollment activation (if admin configured) shows as non-green on access setup', platform: 'iOS/Android', userAction: 'postpone' },
  { section: 'complianceActivation', actionName: 'Activation', screenOrFlow: 'Device activation shows as non-green until updated to show green', platform: 'iOS/Android', userAction: 'tookTooLong' },
];

/** Pure: the catalogue's description of an abandonment, or a generic one (closing Company Portal). */
export function describeAbandonment(actionName: ActionName, userAction: UserAction): { section: SectionId; screenOrFlow: string } {
  const row = ABANDONMENT_CATALOGUE.find((r) => r.actionName === actionName && r.userAction === userAction);
  return { section: ACTIONS[actionName].section, screenOrFlow: row?.screenOrFlow ?? `${actionName}: Company Portal closed during enrollment` };
}

/** Pure: may the user end an attempt on this screen with this action? (Timeouts aren't chosen.) */
export function isExplicitAbandonment(actionName: ActionName, userAction: UserAction): boolean {
  if (userAction === 'closed') return true;
  return userAction !== 'tookTooLong' && ABANDONMENT_CATALOGUE.some((r) => r.actionName === actionName && r.userAction === userAction);
}

// ---- attempts ----

export interface AttemptState {
  status: 'inProgress' | 'completed' | 'incomplete';
  lastActivityAt: string;
  actionName: ActionName;
}

/** Pure: has an attempt sat idle long enough (30:00 or more) to be incomplete? */
export const idleTooLong = (lastActivityAt: string, at: string | Date) => new Date(at).getTime() - Date.parse(lastActivityAt) >= INCOMPLETE_AFTER_MS;

export interface AttemptOutcome {
  outcome: 'completed' | 'incomplete' | 'inProgress';
  /** Incomplete attempts: where and how. */
  actionName?: ActionName;
  userAction?: UserAction;
  endedAt?: string;
}

/** Pure: an attempt as the report sees it at `now`: an idle open attempt counts as incomplete where it stalled. */
export function effectiveOutcome(
  a: AttemptState & { endedAt: string | null; endActionName: string | null; endUserAction: string | null },
  now: string | Date,
): AttemptOutcome {
  if (a.status === 'completed') return { outcome: 'completed' };
  if (a.status === 'incomplete') {
    return { outcome: 'incomplete', actionName: (a.endActionName ?? a.actionName) as ActionName, userAction: (a.endUserAction ?? 'tookTooLong') as UserAction, endedAt: a.endedAt ?? a.lastActivityAt };
  }
  if (idleTooLong(a.lastActivityAt, now)) {
    return { outcome: 'incomplete', actionName: a.actionName, userAction: 'tookTooLong', endedAt: timeoutAt(a.lastActivityAt) };
  }
  return { outcome: 'inProgress' };
}

export const timeoutAt = (lastActivityAt: string) => new Date(Date.parse(lastActivityAt) + INCOMPLETE_AFTER_MS).toISOString();

/**
 * Pure: what activity at `at` does to an attempt. Activity after 30 minutes idle, or on an attempt
 * that already ended, closes it (timed out where it stalled) and starts a new attempt: waiting 30
 * minutes between screens counts as multiple incomplete enrollments.
 */
export function continueOrRestart(a: AttemptState, at: string): { continues: boolean; timedOut: boolean } {
  if (a.status !== 'inProgress') return { continues: false, timedOut: false };
  if (idleTooLong(a.lastActivityAt, at)) return { continues: false, timedOut: true };
  return { continues: true, timedOut: false };
}

// ---- report range ----

export interface ReportRange {
  from: string;
  to: string;
}

/**
 * Pure: the report's range. Two weeks back from `now` by default; the start may reach at most 30
 * days back (31 is refused). The end defaults to, and is capped at, `now`.
 */
export function reportRange(now: Date, from?: string, to?: string): ReportRange | { error: string } {
  const start = from ? Date.parse(from) : now.getTime() - DEFAULT_RANGE_MS;
  if (start < now.getTime() - MAX_LOOKBACK_MS) {
    return { error: `the report covers at most the past 30 days: the start (${new Date(start).toISOString()}) must be on or after ${new Date(now.getTime() - MAX_LOOKBACK_MS).toISOString()}.` };
  }
  const end = Math.min(to ? Date.parse(to) : now.getTime(), now.getTime());
  return { from: new Date(start).toISOString(), to: new Date(Math.max(end, start)).toISOString() };
}

/** Pure: the UTC days a range touches, for the daily line graph. */
export function daysOf(range: ReportRange): string[] {
  const days: string[] = [];
  const last = range.to.slice(0, 10);
  for (let d = new Date(`${range.from.slice(0, 10)}T00:00:00.000Z`); ; d = new Date(d.getTime() + DAY)) {
    const day = d.toISOString().slice(0, 10);
    days.push(day);
    if (day >= last || days.length > 40) break;
  }
  return days;
}

export interface AttemptForSummary {
  startedAt: string;
  platform: string;
  outcome: AttemptOutcome;
}

export interface IncompleteSummary {
  startDateTime: string;
  endDateTime: string;
  initiatedEnrollments: number;
  incompleteEnrollments: number;
  /** Percent, one decimal: incomplete / initiated. */
  incompleteRate: number;
  sections: { section: SectionId; displayName: string; incompleteEnrollments: number; daily: { date: string; incompleteEnrollments: number }[] }[];
  actions: (AbandonmentAction & { sectionDisplayName: string; userActionDisplayName: string; incompleteEnrollments: number })[];
}

/**
 * Pure: the tiles, the daily line per section and the count per abandonment action, over
 * attempts started in the range (already filtered by operating system). Attempts count on the
 * day they started; a section filter narrows the incomplete counts, not the initiated ones.
 */
export function summarize(attempts: readonly AttemptForSummary[], range: ReportRange, section?: SectionId): IncompleteSummary {
  const inRange = attempts.filter((a) => a.startedAt >= range.from && a.startedAt <= range.to);
  const incomplete = inRange.filter((a) => a.outcome.outcome === 'incomplete' && (!section || ACTIONS[a.outcome.actionName!].section === section));
  const days = daysOf(range);
  const sections = (Object.keys(SECTIONS) as SectionId[]).map((s) => {
    const mine = incomplete.filter((a) => ACTIONS[a.outcome.actionName!].section === s);
    return {
      section: s,
      displayName: SECTIONS[s],
      incompleteEnrollments: mine.length,
      daily: days.map((date) => ({ date, incompleteEnrollments: mine.filter((a) => a.startedAt.slice(0, 10) === date).length })),
    };
  });
  const actions = ABANDONMENT_CATALOGUE.map((row) => ({
    ...row,
    sectionDisplayName: SECTIONS[row.section],
    userActionDisplayName: USER_ACTIONS[row.userAction],
    incompleteEnrollments: incomplete.filter((a) => a.outcome.actionName === row.actionName && a.outcome.userAction === row.userAction).length,
  }));
  const rate = inRange.length === 0 ? 0 : Math.round((incomplete.length / inRange.length) * 1000) / 10;
  return {
    startDateTime: range.from,
    endDateTime: range.to,
    initiatedEnrollments: inRange.length,
    incompleteEnrollments: incomplete.length,
    incompleteRate: rate,
    sections,
    actions,
  };
}
