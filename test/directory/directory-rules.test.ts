import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  deriveMailNickname,
  groupShapeProblem,
  mailNicknameProblem,
  passwordProblem,
  userFieldsProblem,
  userPrincipalNameProblem,
  USER_LIMITS,
} from '../../src/directory/directory-rules.js';

describe('userPrincipalName', () => {
  it('accepts alias@domain forms Entra accepts', () => {
    for (const upn of ['alice@contoso.com', "o'neil.j_r-x!#^~@sub.contoso.co.uk", 'A1@x-y.io', 'kiosk@contoso.onmicrosoft.com']) {
      expect(userPrincipalNameProblem(upn)).toBeNull();
    }
  });

  it('refuses malformed names with a reason', () => {
    const cases: [string, RegExp][] = [
      ['', /empty/],
      ['alice', /alias@domain/],
      ['@contoso.com', /alias@domain/],
      ['alice@', /alias@domain/],
      ['a@b@contoso.com', /exactly one/],
      ['al ice@contoso.com', /may contain only/],
      ['al+ice@contoso.com', /may contain only/],
      ['.alice@contoso.com', /period/],
      ['alice.@contoso.com', /period/],
      ['al..ice@contoso.com', /period/],
      ['alice@contoso', /domain name/],
      ['alice@-contoso.com', /domain name/],
      ['alice@contoso..com', /domain name/],
    ];
    for (const [upn, reason] of cases) expect(userPrincipalNameProblem(upn), upn).toMatch(reason);
  });

  it('allows 64 characters before @ and refuses 65', () => {
    expect(userPrincipalNameProblem(`${'a'.repeat(64)}@contoso.com`)).toBeNull();
    expect(userPrincipalNameProblem(`${'a'.repeat(65)}@contoso.com`)).toMatch(/at most 64/);
  });

  it('allows 113 characters in all and refuses 114', () => {
    const domain = (n: number) => `${'d'.repeat(n - 4)}.com`;
    const upn113 = `${'a'.repeat(50)}@${domain(62)}`;
    expect(upn113).toHaveLength(113);
    expect(userPrincipalNameProblem(upn113)).toBeNull();
    expect(userPrincipalNameProblem(`${'a'.repeat(51)}@${domain(62)}`)).toMatch(/at most 113/);
  });
});

describe('password policy', () => {
  it('needs 8 to 256 characters', () => {
    expect(passwordProblem('Abcdef1')).toMatch(/between 8 and 256/);
    expect(passwordProblem('Abcdefg1')).toBeNull();
    expect(passwordProblem(`Ab1${'x'.repeat(253)}`)).toBeNull();
    expect(passwordProblem(`Ab1${'x'.repeat(254)}`)).toMatch(/between 8 and 256/);
  });

  it('needs three of four character classes', () => {
    expect(passwordProblem('abcdefgh')).toMatch(/three of/);
    expect(passwordProblem('abcdefg1')).toMatch(/three of/);
    expect(passwordProblem('abcdef1!')).toBeNull();
    expect(passwordProblem('ABCDEF1!')).toBeNull();
    expect(passwordProblem('Abcdefg!')).toBeNull();
  });

  it('refuses non-ASCII characters', () => {
    expect(passwordProblem('Abcdéfg1')).toMatch(/only letters/);
  });
});

describe('mailNickname', () => {
  it('refuses the characters Entra refuses', () => {
    for (const bad of ['a b', 'a@b', 'a(b', 'a"b', 'a;b', 'a,b', 'a<b', 'a\\b', 'é']) expect(mailNicknameProblem(bad, 64), bad).not.toBeNull();
    expect(mailNicknameProblem('kiosk-devices_1', 64)).toBeNull();
    expect(mailNicknameProblem('a'.repeat(64), 64)).toBeNull();
    expect(mailNicknameProblem('a'.repeat(65), 64)).toMatch(/at most 64/);
  });

  it('derives a valid nickname from any name', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (name) => {
        const nick = deriveMailNickname(name, 64);
        if (nick !== '') expect(mailNicknameProblem(nick, 64)).toBeNull();
      }),
    );
  });
});

describe('user fields', () => {
  it('names the property at fault', () => {
    expect(userFieldsProblem({ displayName: '  ' })).toEqual({ property: 'displayName', problem: 'must not be empty' });
    expect(userFieldsProblem({ mail: 'not-mail' })?.property).toBe('mail');
    expect(userFieldsProblem({ usageLocation: 'USA' })?.property).toBe('usageLocation');
    expect(userFieldsProblem({ usageLocation: 'us' })).toBeNull();
    expect(userFieldsProblem({ employeeId: 'x'.repeat(USER_LIMITS.employeeId) })).toBeNull();
    expect(userFieldsProblem({ employeeId: 'x'.repeat(USER_LIMITS.employeeId + 1) })?.property).toBe('employeeId');
    expect(userFieldsProblem({ jobTitle: 'x'.repeat(129) })?.property).toBe('jobTitle');
    expect(userFieldsProblem({ deviceEnrollmentLimit: 0 })?.property).toBe('deviceEnrollmentLimit');
    expect(userFieldsProblem({ deviceEnrollmentLimit: 1 })).toBeNull();
    expect(userFieldsProblem({ deviceEnrollmentLimit: 1000 })).toBeNull();
    expect(userFieldsProblem({ deviceEnrollmentLimit: 1001 })?.property).toBe('deviceEnrollmentLimit');
    expect(userFieldsProblem({ passwordProfile: { password: 'short' } })?.property).toBe('passwordProfile.password');
  });
});

describe('group shape', () => {
  const g = (groupTypes: string[], membershipRule: string | null = null, membershipRuleProcessingState: string | null = null) =>
    groupShapeProblem({ groupTypes, membershipRule, membershipRuleProcessingState });

  it('requires a rule on dynamic groups and refuses one elsewhere', () => {
    expect(g(['DynamicMembership'])?.property).toBe('membershipRule');
    expect(g(['DynamicMembership'], ' ')?.property).toBe('membershipRule');
    expect(g(['DynamicMembership'], 'device.deviceCategory -eq "HR"', 'On')).toBeNull();
    expect(g([], 'device.deviceCategory -eq "HR"')?.property).toBe('membershipRule');
    expect(g([], null, 'On')?.property).toBe('membershipRuleProcessingState');
    expect(g([])).toBeNull();
    expect(g(['Unified'])).toBeNull();
  });

  it('refuses dynamic Microsoft 365 groups and repeated types', () => {
    expect(g(['Unified', 'DynamicMembership'], 'device.deviceCategory -eq "HR"')?.property).toBe('groupTypes');
    expect(g(['Unified', 'Unified'])?.property).toBe('groupTypes');
  });
});
