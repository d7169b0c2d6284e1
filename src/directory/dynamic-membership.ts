import type { DeviceChangeListener } from '../devices/events.js';
import type { Executor, Trx } from '../store/db.js';
import type { Clock } from '../shared/time.js';
import {
  DEVICE_FACT_COLUMNS,
  deviceFacts,
  evaluateMembershipRule,
  parseMembershipRule,
  type DeviceFactsRow,
  type RuleNode,
} from './membership-rules.js';

/** Devices read per query when a whole tenant is re-evaluated for one group. */
export const EVALUATION_PAGE_SIZE = 1000;
const INSERT_CHUNK = 500;
const RULE_CACHE_MAX = 1000;

/**
 * Keeps dynamic device groups in step with the device records: one device against every active
 * rule of its tenant when the device changes, or every device against one rule when a group's
 * rule changes. Runs inside the caller's transaction; reads managed_devices, never writes it.
 */
export class DynamicMembership {
  private readonly rules = new Map<string, RuleNode>();

  constructor(private readonly clock: Clock) {}

  /** Parsed rules are cached by text: the same few rules are evaluated on every device change. */
  private rule(text: string): RuleNode | undefined {
    let node = this.rules.get(text);
    if (!node) {
      try {
        node = parseMembershipRule(text);
      } catch {
        return undefined; // stored rules were validated on write; an unparsable one matches nothing
      }
      if (this.rules.size >= RULE_CACHE_MAX) this.rules.clear();
      this.rules.set(text, node);
    }
    return node;
  }

  /** Registered with the devices module: runs in the transaction that changed the device. */
  readonly deviceChangeListener: DeviceChangeListener = async (trx, change) => {
    if (!change.after) {
      if (change.before) {
        await trx.deleteFrom('group_members').where('tenant_id', '=', change.tenantId).where('member_id', '=', change.before.id).execute();
      }
      return;
    }
    // A change that leaves every rule-visible property alone can't change any membership.
    if (change.before && sameFacts(change.before, change.after)) return;
    await this.evaluateDevice(trx, change.tenantId, change.after);
  };

  /** Recomputes one device's membership in every active dynamic group of its tenant. */
  async evaluateDevice(trx: Trx, tenantId: string, device: DeviceFactsRow): Promise<void> {
    const groups = await trx
      .selectFrom('groups')
      .select(['id', 'membership_rule'])
      .where('tenant_id', '=', tenantId)
      .where('membership_rule', 'is not', null)
      .where('membership_rule_processing_state', '=', 'On')
      .execute();
    const facts = deviceFacts(device);
    const wanted = new Set<string>();
    for (const g of groups) {
      const rule = this.rule(g.membership_rule!);
      if (rule && evaluateMembershipRule(rule, facts)) wanted.add(g.id);
    }
    const activeIds = new Set(groups.map((g) => g.id));
    const current = await trx
      .selectFrom('group_members')
      .select('group_id')
      .where('tenant_id', '=', tenantId)
      .where('member_id', '=', device.id)
      .where('source', '=', 'dynamic')
      .execute();
    const have = new Set(current.map((r) => r.group_id));
    // Paused groups keep their members as they are.
    const remove = [...have].filter((id) => activeIds.has(id) && !wanted.has(id));
    const add = [...wanted].filter((id) => !have.has(id));
    if (remove.length > 0) {
      await trx.deleteFrom('group_members').where('tenant_id', '=', tenantId).where('member_id', '=', device.id).where('group_id', 'in', remove).execute();
    }
    if (add.length > 0) {
      const now = this.clock.now().toISOString();
      await trx
        .insertInto('group_members')
        .values(add.map((groupId) => ({ tenant_id: tenantId, group_id: groupId, member_id: device.id, member_type: 'device', source: 'dynamic', created_at: now })))
        .onConflict((oc) => oc.columns(['group_id', 'member_id']).doNothing())
        .execute();
    }
  }

  /**
   * Recomputes one group's members from all devices of the tenant, a page at a time.
   * Members that are not devices of the tenant (left over from an assigned group) are removed.
   */
  async evaluateGroup(trx: Executor, tenantId: string, groupId: string, ruleText: string): Promise<void> {
    const rule = this.rule(ruleText);
    const now = this.clock.now().toISOString();
    let after: string | undefined;
    for (;;) {
      let q = trx.selectFrom('managed_devices').select(DEVICE_FACT_COLUMNS).where('tenant_id', '=', tenantId);
      if (after !== undefined) q = q.where('id', '>', after);
      const page = await q.orderBy('id').limit(EVALUATION_PAGE_SIZE).execute();
      if (page.length === 0) break;
      const ids = page.map((d) => d.id);
      const matching = new Set(page.filter((d) => rule !== undefined && evaluateMembershipRule(rule, deviceFacts(d))).map((d) => d.id));
      const existing = await trx.selectFrom('group_members').select('member_id').where('group_id', '=', groupId).where('member_id', 'in', ids).execute();
      const have = new Set(existing.map((r) => r.member_id));
      const remove = [...have].filter((id) => !matching.has(id));
      const add = ids.filter((id) => matching.has(id) && !have.has(id));
      if (remove.length > 0) await trx.deleteFrom('group_members').where('group_id', '=', groupId).where('member_id', 'in', remove).execute();
      for (let i = 0; i < add.length; i += INSERT_CHUNK) {
        await trx
          .insertInto('group_members')
          .values(add.slice(i, i + INSERT_CHUNK).map((id) => ({ tenant_id: tenantId, group_id: groupId, member_id: id, member_type: 'device', source: 'dynamic', created_at: now })))
          // A concurrent device change may have added the same row; either way it's a member.
          .onConflict((oc) => oc.columns(['group_id', 'member_id']).doNothing())
          .execute();
      }
      after = ids[ids.length - 1];
      if (page.length < EVALUATION_PAGE_SIZE) break;
    }
    await trx
      .deleteFrom('group_members')
      .where('group_id', '=', groupId)
      .where((eb) => eb.or([eb('member_type', '!=', 'device'), eb('member_id', 'not in', eb.selectFrom('managed_devices').select('id').where('tenant_id', '=', tenantId))]))
      .execute();
  }
}

function sameFacts(a: DeviceFactsRow, b: DeviceFactsRow): boolean {
  return DEVICE_FACT_COLUMNS.every((c) => a[c] === b[c]);
}
