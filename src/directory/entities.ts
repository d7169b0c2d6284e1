import type { ApiVersion } from '../graph/http.js';
import type { EntityModel, PropertyDef } from '../graph/odata/model.js';
import type { GroupsTable, ManagedDevicesTable, UsersTable } from '../store/schema.js';
import { PROCESSING_STATES, USER_TYPES } from './directory-rules.js';

/** Graph shapes of directory objects, and the OData models that map them to columns. */

export const USER_TYPE = 'microsoft.graph.user';
export const GROUP_TYPE = 'microsoft.graph.group';
export const DEVICE_TYPE = 'microsoft.graph.device';
export const DIRECTORY_OBJECT_TYPE = 'microsoft.graph.directoryObject';

/** A user as Graph returns it. The password and its hash never leave the service. */
export function toUser(r: UsersTable, version: ApiVersion): Record<string, unknown> {
  return {
    id: r.id,
    userPrincipalName: r.user_principal_name,
    displayName: r.display_name,
    givenName: r.given_name,
    surname: r.surname,
    mail: r.mail,
    mailNickname: r.mail_nickname,
    accountEnabled: r.account_enabled === 1,
    jobTitle: r.job_title,
    department: r.department,
    officeLocation: r.office_location,
    mobilePhone: r.mobile_phone,
    usageLocation: r.usage_location,
    userType: r.user_type,
    employeeId: r.employee_id,
    createdDateTime: r.created_at,
    ...(version === 'beta' ? { deviceEnrollmentLimit: r.device_enrollment_limit } : {}),
  };
}

export function parseGroupTypes(json: string): string[] {
  try {
    const v: unknown = JSON.parse(json);
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

export function toGroup(r: GroupsTable): Record<string, unknown> {
  return {
    id: r.id,
    displayName: r.display_name,
    description: r.description,
    mailNickname: r.mail_nickname,
    mailEnabled: r.mail_enabled === 1,
    securityEnabled: r.security_enabled === 1,
    groupTypes: parseGroupTypes(r.group_types),
    membershipRule: r.membership_rule,
    membershipRuleProcessingState: r.membership_rule_processing_state,
    createdDateTime: r.created_at,
  };
}

function deviceOwnership(ownerType: string): string | null {
  const t = ownerType.toLowerCase();
  return t === 'company' ? 'Company' : t === 'personal' ? 'Personal' : null;
}

/** A managed device as the Entra `device` directory object that groups hold. */
export function toDeviceMember(d: ManagedDevicesTable): Record<string, unknown> {
  return {
    id: d.id,
    deviceId: d.azure_ad_device_id ?? d.id,
    displayName: d.device_name,
    accountEnabled: true,
    operatingSystem: d.operating_system,
    operatingSystemVersion: d.os_version,
    model: d.model,
    manufacturer: d.manufacturer,
    enrollmentProfileName: d.enrollment_profile_name,
    deviceCategory: d.device_category_display_name,
    deviceOwnership: deviceOwnership(d.managed_device_owner_type),
    managementType: d.management_agent.toLowerCase() === 'mdm' ? 'MDM' : d.management_agent,
    isManaged: d.management_state === 'managed',
    isCompliant: d.compliance_state === 'compliant',
    registrationDateTime: d.enrolled_date_time,
    approximateLastSignInDateTime: d.last_sync_date_time,
  };
}

const ci = (column: string): PropertyDef => ({ type: 'string', column, caseInsensitive: true });

export function userModel(version: ApiVersion): EntityModel {
  return {
    typeName: USER_TYPE,
    keyColumn: 'id',
    properties: {
      id: { type: 'guid', column: 'id' },
      userPrincipalName: ci('user_principal_name'),
      displayName: ci('display_name'),
      givenName: ci('given_name'),
      surname: ci('surname'),
      mail: ci('mail'),
      mailNickname: ci('mail_nickname'),
      accountEnabled: { type: 'boolean', column: 'account_enabled' },
      jobTitle: ci('job_title'),
      department: ci('department'),
      officeLocation: ci('office_location'),
      mobilePhone: { type: 'string', column: 'mobile_phone' },
      usageLocation: ci('usage_location'),
      userType: { type: 'enum', column: 'user_type', enumValues: USER_TYPES },
      employeeId: ci('employee_id'),
      createdDateTime: { type: 'datetime', column: 'created_at' },
      ...(version === 'beta' ? { deviceEnrollmentLimit: { type: 'int', column: 'device_enrollment_limit' } as PropertyDef } : {}),
    },
  };
}

export const groupModel: EntityModel = {
  typeName: GROUP_TYPE,
  keyColumn: 'id',
  properties: {
    id: { type: 'guid', column: 'id' },
    displayName: ci('display_name'),
    description: { type: 'string', column: 'description' },
    mailNickname: ci('mail_nickname'),
    mailEnabled: { type: 'boolean', column: 'mail_enabled' },
    securityEnabled: { type: 'boolean', column: 'security_enabled' },
    groupTypes: { type: 'collection' },
    membershipRule: { type: 'string', column: 'membership_rule' },
    membershipRuleProcessingState: { type: 'enum', column: 'membership_rule_processing_state', enumValues: PROCESSING_STATES },
    createdDateTime: { type: 'datetime', column: 'created_at' },
  },
};

/**
 * Group members are users and devices; paging runs over the membership rows (by member id), and
 * only the id can be filtered. The other properties are there so $select works across both types.
 */
export const memberModel: EntityModel = {
  typeName: DIRECTORY_OBJECT_TYPE,
  keyColumn: 'member_id',
  properties: {
    id: { type: 'string', column: 'member_id', filterOps: ['eq', 'ne'] },
    displayName: { type: 'string' },
    userPrincipalName: { type: 'string' },
    mail: { type: 'string' },
    givenName: { type: 'string' },
    surname: { type: 'string' },
    accountEnabled: { type: 'boolean' },
    jobTitle: { type: 'string' },
    department: { type: 'string' },
    deviceId: { type: 'string' },
    operatingSystem: { type: 'string' },
    operatingSystemVersion: { type: 'string' },
    model: { type: 'string' },
    manufacturer: { type: 'string' },
    enrollmentProfileName: { type: 'string' },
    deviceCategory: { type: 'string' },
    deviceOwnership: { type: 'string' },
  },
};
