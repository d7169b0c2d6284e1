import { badRequest } from '../../graph/errors.js';
import type { FilterNode } from '../../graph/odata/filter-ast.js';
import { FilterSyntaxError, parseFilter } from '../../graph/odata/filter-parser.js';
import type { EntityModel, PropertyDef } from '../../graph/odata/model.js';
import { validateFilter } from '../../graph/odata/query-options.js';
import { ENROLLMENT_PATH_REASONS, ENROLLMENT_REASONS, type EnrollmentPathReasonCode } from '../evaluation/reasons.js';
import type { EnrollmentReasonCode } from '../evaluation/types.js';

/*
 * The enrollment reports, described once: names (as exportJobs' reportName), columns (Intune's
 * report JSON "Schema"), and how a report request (filter, select, orderBy, search, skip, top)
 * is checked. Pure.
 */

export const REPORT_NAMES = ['EnrollmentFailures', 'IncompleteUserEnrollments', 'EnrollmentConfigurationPoliciesByDevice', 'TermsAndConditionsAcceptance'] as const;
export type ReportName = (typeof REPORT_NAMES)[number];

export type ColumnType = 'String' | 'Int32' | 'DateTime' | 'Boolean';

export interface ReportColumn {
  name: string;
  type: ColumnType;
  /** SQL column for reports read straight from a table. */
  sql?: string;
  /** Usable in filter and orderBy (computed columns aren't). */
  filterable?: boolean;
  /** Matched by `search`. */
  searchable?: boolean;
}

export interface ReportDefinition {
  name: ReportName;
  description: string;
  columns: readonly ReportColumn[];
  defaultOrderBy: readonly OrderBy[];
  /** Rows aren't scope-tagged (they describe users and attempts), so only unscoped principals read them. */
  unscopedOnly: boolean;
}

export interface OrderBy {
  column: string;
  direction: 'asc' | 'desc';
}

const c = (name: string, type: ColumnType, more: Partial<ReportColumn> = {}): ReportColumn => ({ name, type, filterable: true, ...more });

export const REPORTS: Readonly<Record<ReportName, ReportDefinition>> = {
  EnrollmentFailures: {
    name: 'EnrollmentFailures',
    description: 'One row per failed enrollment attempt (requirements -E §8.1).',
    unscopedOnly: true,
    defaultOrderBy: [{ column: 'EnrollmentDateTime', direction: 'desc' }],
    columns: [
      c('ActivityId', 'String', { sql: 'activity_id' }),
      c('EnrollmentDateTime', 'DateTime', { sql: 'occurred_at' }),
      c('FailureReason', 'String', { filterable: false }),
      c('FailureReasonCode', 'String', { sql: 'reason' }),
      c('FailureCategory', 'String', { sql: 'failure_category' }),
      c('FailureDetails', 'String', { sql: 'message', searchable: true }),
      c('RecommendedSteps', 'String', { filterable: false }),
      c('OperatingSystem', 'String', { sql: 'os_platform' }),
      c('OSVersion', 'String', { sql: 'os_version' }),
      c('UserId', 'String', { sql: 'user_id' }),
      c('UserPrincipalName', 'String', { sql: 'user_principal_name', searchable: true }),
      c('EnrollmentMethod', 'String', { sql: 'method' }),
      c('DeviceId', 'String', { sql: 'device_id' }),
    ],
  },
  IncompleteUserEnrollments: {
    name: 'IncompleteUserEnrollments',
    description: 'One row per incomplete Company Portal enrollment attempt (requirements -A §9); the summary has the tiles and the daily line per section.',
    unscopedOnly: true,
    defaultOrderBy: [{ column: 'StartDateTime', direction: 'desc' }],
    columns: [
      c('AttemptId', 'String'),
      c('StartDateTime', 'DateTime'),
      c('IncompleteDateTime', 'DateTime'),
      c('OperatingSystem', 'String'),
      c('UserId', 'String'),
      c('UserPrincipalName', 'String', { searchable: true }),
      c('Section', 'String'),
      c('ActionName', 'String'),
      c('ScreenOrFlow', 'String', { searchable: true }),
      c('UserAction', 'String'),
    ],
  },
  EnrollmentConfigurationPoliciesByDevice: {
    name: 'EnrollmentConfigurationPoliciesByDevice',
    description: 'The enrollment policies applied when each device first enrolled (requirements -E §8.3).',
    unscopedOnly: false,
    defaultOrderBy: [
      { column: 'DeviceId', direction: 'asc' },
      { column: 'PolicyType', direction: 'asc' },
      { column: 'Priority', direction: 'desc' },
    ],
    columns: [
      c('DeviceId', 'String'),
      c('DeviceName', 'String', { searchable: true }),
      c('UserPrincipalName', 'String', { searchable: true }),
      c('EnrollmentDateTime', 'DateTime'),
      c('PolicyId', 'String'),
      c('PolicyName', 'String', { searchable: true }),
      c('PolicyType', 'String'),
      c('State', 'String'),
      c('Priority', 'Int32'),
      c('Target', 'String'),
      c('TargetGroupId', 'String'),
      c('FilterId', 'String'),
      c('FilterMode', 'String'),
      c('FilterResult', 'String'),
    ],
  },
  TermsAndConditionsAcceptance: {
    name: 'TermsAndConditionsAcceptance',
    description: 'Who accepted which version of each terms and conditions policy (requirements -A §10).',
    unscopedOnly: false,
    defaultOrderBy: [
      { column: 'TermsAndConditionsName', direction: 'asc' },
      { column: 'UserPrincipalName', direction: 'asc' },
    ],
    columns: [
      c('TermsAndConditionsId', 'String', { sql: 'terms_and_conditions.id' }),
      c('TermsAndConditionsName', 'String', { sql: 'terms_and_conditions.display_name', searchable: true }),
      c('UserName', 'String', { sql: 'terms_acceptances.user_display_name', searchable: true }),
      c('UserPrincipalName', 'String', { sql: 'terms_acceptances.user_principal_name', searchable: true }),
      c('AcceptedVersion', 'Int32', { sql: 'terms_acceptances.accepted_version' }),
      c('AcceptedDateTime', 'DateTime', { sql: 'terms_acceptances.accepted_at' }),
      c('CurrentVersion', 'Int32', { sql: 'terms_and_conditions.version' }),
      c('AcceptedLatest', 'Boolean', { filterable: false }),
    ],
  },
};

/** Pure: the report named `name` (exact, as Intune's names are), or a 400 naming reportName. */
export function reportNamed(name: string, property = 'reportName'): ReportDefinition {
  const def = (REPORTS as Record<string, ReportDefinition>)[name];
  if (!def) throw badRequest(`Invalid value for property '${property}': '${name}' is not a report OpenEnroll offers (${REPORT_NAMES.join(', ')}).`, property);
  return def;
}

const ODATA_TYPE: Record<ColumnType, PropertyDef['type']> = { String: 'string', Int32: 'int', DateTime: 'datetime', Boolean: 'boolean' };

/** Pure: the OData model a report's filter is checked against (columns are their own names in memory, SQL columns in tables). */
export function reportModel(def: ReportDefinition): EntityModel {
  const properties: Record<string, PropertyDef> = {};
  for (const col of def.columns) {
    properties[col.name] = {
      type: ODATA_TYPE[col.type],
      ...(col.filterable ? { column: col.sql ?? col.name } : {}),
      // Report filters compare names and codes the way admins type them.
      ...(col.type === 'String' ? { caseInsensitive: true } : {}),
    };
  }
  return { typeName: `openEnroll.report.${def.name}`, keyColumn: def.columns[0]!.sql ?? def.columns[0]!.name, properties };
}

export interface ReportRequest {
  filter?: FilterNode;
  /** Column names in output order. */
  select: string[];
  orderBy: OrderBy[];
  search?: string;
}

export const REQUEST_LIMITS = { filter: 2000, search: 100, select: 256, columnName: 1000 } as const;

/** Pure: checks a report request's filter, select, orderBy and search against the report. */
export function parseReportRequest(
  def: ReportDefinition,
  input: { filter?: string | null; select?: readonly string[] | null; orderBy?: readonly string[] | null; search?: string | null },
): ReportRequest {
  const names = new Set(def.columns.map((col) => col.name));
  let filter: FilterNode | undefined;
  if (input.filter != null && input.filter.trim() !== '') {
    if (input.filter.length > REQUEST_LIMITS.filter) throw badRequest(`Invalid value for property 'filter': at most ${REQUEST_LIMITS.filter} characters.`, 'filter');
    try {
      filter = validateFilter(reportModel(def), parseFilter(input.filter));
    } catch (err) {
      if (err instanceof FilterSyntaxError) throw badRequest(`Invalid value for property 'filter': ${err.message} (at position ${err.position}).`, 'filter');
      if (err instanceof Error && 'statusCode' in err) throw badRequest(`Invalid value for property 'filter': ${err.message}`, 'filter');
      throw err;
    }
  }
  const select = input.select && input.select.length > 0 ? [...input.select] : def.columns.map((col) => col.name);
  if (select.length > REQUEST_LIMITS.select) throw badRequest(`Invalid value for property 'select': at most ${REQUEST_LIMITS.select} columns.`, 'select');
  for (const s of select) {
    if (!names.has(s)) throw badRequest(`Invalid value for property 'select': '${s}' is not a column of report '${def.name}'.`, 'select');
  }
  if (new Set(select).size !== select.length) throw badRequest("Invalid value for property 'select': a column is listed twice.", 'select');
  const orderBy: OrderBy[] = [];
  for (const o of input.orderBy ?? []) {
    const m = /^\s*([A-Za-z][\w]*)(?:\s+(asc|desc))?\s*$/i.exec(o);
    const col = m ? def.columns.find((x) => x.name === m[1]) : undefined;
    if (!m || !col || !col.filterable) throw badRequest(`Invalid value for property 'orderBy': '${o}' is not 'Column [asc|desc]' with a sortable column of report '${def.name}'.`, 'orderBy');
    orderBy.push({ column: col.name, direction: (m[2]?.toLowerCase() as 'asc' | 'desc' | undefined) ?? 'asc' });
  }
  const search = input.search?.trim() ? input.search.trim() : undefined;
  if (search !== undefined && search.length > REQUEST_LIMITS.search) throw badRequest(`Invalid value for property 'search': at most ${REQUEST_LIMITS.search} characters.`, 'search');
  return { ...(filter ? { filter } : {}), select, orderBy: orderBy.length > 0 ? orderBy : [...def.defaultOrderBy], ...(search ? { search } : {}) };
}

/**
 * Pure: the comparisons on `column` joined by `and` at the top of a filter. Undefined when the
 * column is used anywhere else (under or/not), where no bound or value can be read off.
 */
export function topLevelComparisons(node: FilterNode | undefined, column: string): { op: string; value: unknown }[] | undefined {
  const out: { op: string; value: unknown }[] = [];
  let clean = true;
  const mentions = (n: FilterNode): boolean => {
    switch (n.kind) {
      case 'and':
      case 'or':
        return mentions(n.left) || mentions(n.right);
      case 'not':
        return mentions(n.expr);
      default:
        return n.property === column;
    }
  };
  const walk = (n: FilterNode) => {
    if (n.kind === 'and') {
      walk(n.left);
      walk(n.right);
    } else if (n.kind === 'compare' && n.property === column) {
      out.push({ op: n.op, value: n.value.type === 'null' ? null : n.value.value });
    } else if (mentions(n)) {
      clean = false;
    }
  };
  if (node) walk(node);
  return clean ? out : undefined;
}

/** Pure: the Graph deviceEnrollmentFailureReason a failure is filed under. */
export function failureCategory(reason: string | null | undefined): string {
  switch (reason as EnrollmentReasonCode | EnrollmentPathReasonCode | undefined) {
    case 'devicePlatformBlocked':
    case 'personalDeviceBlocked':
    case 'windowsEnrollmentNotAuthorized':
    case 'osVersionBelowMinimum':
    case 'osVersionAboveMaximum':
    case 'osVersionUnrecognized':
    case 'manufacturerBlocked':
    case 'deviceLimitReached':
    case 'demLimitReached':
    case 'demWorkProfileLimitReached':
    case 'invalidProfile':
    case 'termsNotAccepted':
      return 'enrollmentRestrictionsEnforced';
    case 'userRequired':
      return 'userValidation';
    case 'missingHardwareIdentity':
      return 'deviceNotSupported';
    case 'demNotAllowedForMethod':
    case 'pushCertificateNotReady':
      return 'featureNotSupported';
    case 'deviceNotRegistered':
      return 'deviceNotSupported';
    case 'missingProfile':
      return 'badRequest';
    default:
      return 'unknown';
  }
}

/** Pure: the catalogue's title and remediation of a reason code (the code itself when it isn't catalogued). */
export function reasonText(reason: string | null): { title: string | null; remediation: string | null } {
  if (reason === null) return { title: null, remediation: null };
  const entry = (ENROLLMENT_REASONS as Partial<Record<string, { title: string; remediation: string }>>)[reason] ?? (ENROLLMENT_PATH_REASONS as Partial<Record<string, { title: string; remediation: string }>>)[reason];
  return entry ? { title: entry.title, remediation: entry.remediation } : { title: reason, remediation: null };
}

/** Pure: the Graph deviceEnrollmentType of an enrollment method (troubleshooting events' enrollmentType). */
export function deviceEnrollmentTypeOf(method: string, hasUser: boolean): string {
  switch (method) {
    case 'appleAde':
    case 'appleAsm':
    case 'appleConfigurator':
      return hasUser ? 'appleBulkWithUser' : 'appleBulkWithoutUser';
    case 'appleUserEnrollment':
      return 'appleUserEnrollment';
    case 'appleCompanyPortal':
    case 'appleDirect':
    case 'windowsMdmOnly':
    case 'androidCompanyPortal':
    case 'androidWorkProfile':
      return 'userEnrollment';
    case 'windowsAutopilot':
    case 'windowsAzureAdJoinOobe':
    case 'windowsAzureAdJoinSettings':
      return 'windowsAzureADJoin';
    case 'windowsAutopilotSelfDeploying':
      return 'windowsAzureADJoinUsingDeviceAuth';
    case 'windowsAddWorkAccount':
    case 'windowsGpo':
      return 'windowsAutoEnrollment';
    case 'windowsBulk':
      return 'windowsBulkUserless';
    case 'windowsCoManagement':
      return 'windowsCoManagement';
    case 'windowsAzureVirtualDesktop':
      return 'azureAdJoinUsingAzureVmExtension';
    case 'androidCorporateWorkProfile':
      return 'androidEnterpriseCorporateWorkProfile';
    case 'androidFullyManaged':
      return 'androidEnterpriseFullyManaged';
    case 'androidDedicated':
      return 'androidEnterpriseDedicatedDevice';
    case 'androidAospUser':
      return 'androidAOSPUserOwnedDeviceEnrollment';
    case 'androidAospUserless':
      return 'androidAOSPUserlessDeviceEnrollment';
    default:
      return 'unknown';
  }
}
