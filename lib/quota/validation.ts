import { QuotaDraft, type Quota } from '../../schemas/quota.js';
import { formatPath } from '../../schemas/validation.js';
import type { QuotaProblem } from './errors.js';
import { scheduleProblems } from './schedule.js';

/**
 * Pluggable validation. The store runs every validator on every write (the rightsizer's included) with the
 * changed quotas and the whole table as it would be after the write, and refuses the write when any validator
 * reports a problem. A validator is a plain object, so a deployment adds its own rules next to the built-ins.
 */

/** One quota a write changes: `previous` is null for a create, `next` null for a delete. */
export interface QuotaChange {
  previous: Quota | null;
  next: Quota | null;
}

/** What a validator sees. */
export interface QuotaValidationContext {
  /** The quotas this write changes. */
  changes: readonly QuotaChange[];
  /** Every quota before the write. */
  before: readonly Quota[];
  /** Every quota as it would be after the write. */
  after: readonly Quota[];
}

export interface QuotaValidator {
  /** Short rule name shown in refusals, e.g. `max-gte-guaranteed`. */
  readonly name: string;
  validate(context: QuotaValidationContext): readonly QuotaProblem[] | Promise<readonly QuotaProblem[]>;
}

/** Structural rules: the quota matches its schema, and a quota keeps its kind. */
export const structuralValidator: QuotaValidator = {
  name: 'structure',
  validate({ changes }) {
    const problems: QuotaProblem[] = [];
    for (const { previous, next } of changes) {
      if (!next) continue;
      const parsed = QuotaDraft.safeParse({
        id: next.id,
        hierarchy: next.hierarchy,
        spec: next.spec,
        owners: next.owners,
        tier: next.tier,
        budgetGroup: next.budgetGroup,
        ...(next.schedule ? { schedule: next.schedule } : {}),
      });
      if (!parsed.success) {
        for (const issue of parsed.error.issues) {
          problems.push({
            quotaId: next.id,
            rule: 'structure',
            message: `${formatPath(issue.path)}: ${issue.message}`,
          });
        }
      }
      if (previous && previous.spec.kind !== next.spec.kind) {
        problems.push({
          quotaId: next.id,
          rule: 'structure',
          message: `a quota keeps its kind: it is "${previous.spec.kind}", the change makes it "${next.spec.kind}"; delete and recreate it instead`,
        });
      }
    }
    return problems;
  },
};

/** Semantic rule: a capacity quota's maximum is at least its guarantee, for memory and vcores. */
export const maxGteGuaranteedValidator: QuotaValidator = {
  name: 'max-gte-guaranteed',
  validate({ changes }) {
    const problems: QuotaProblem[] = [];
    for (const { next } of changes) {
      if (!next) continue;
      // Every slot of a time-of-day schedule is checked like the flat value.
      if (next.schedule) {
        for (const message of scheduleProblems(next.spec, next.schedule)) {
          problems.push({ quotaId: next.id, rule: 'max-gte-guaranteed', message });
        }
      }
      if (next.spec.kind !== 'capacity') continue;
      const s = next.spec;
      if (s.maxMemoryMb < s.guaranteedMemoryMb) {
        problems.push({
          quotaId: next.id,
          rule: 'max-gte-guaranteed',
          message: `maxMemoryMb ${s.maxMemoryMb} is below guaranteedMemoryMb ${s.guaranteedMemoryMb}`,
        });
      }
      if (s.maxVcores < s.guaranteedVcores) {
        problems.push({
          quotaId: next.id,
          rule: 'max-gte-guaranteed',
          message: `maxVcores ${s.maxVcores} is below guaranteedVcores ${s.guaranteedVcores}`,
        });
      }
    }
    return problems;
  },
};

/** The cluster's schedulable capacity. */
export interface ClusterCapacity {
  memoryMb: number;
  vcores: number;
}

/** Σ guaranteed memory and vcores over capacity quotas. */
export function sumGuaranteed(quotas: readonly Quota[]): ClusterCapacity {
  let memoryMb = 0;
  let vcores = 0;
  for (const q of quotas) {
    if (q.spec.kind !== 'capacity') continue;
    memoryMb += q.spec.guaranteedMemoryMb;
    vcores += q.spec.guaranteedVcores;
  }
  return { memoryMb, vcores };
}

/**
 * Semantic rule: the sum of guaranteed memory and vcores over all capacity quotas stays within the cluster's
 * capacity. A write that lowers the sum is allowed even on an over-committed cluster, so that it can be repaired.
 */
export function clusterCapacityValidator(capacity: ClusterCapacity): QuotaValidator {
  return {
    name: 'cluster-capacity',
    validate({ changes, before, after }) {
      const was = sumGuaranteed(before);
      const now = sumGuaranteed(after);
      const problems: QuotaProblem[] = [];
      const where = changes.map((c) => (c.next ?? c.previous)!.id).join(', ');
      if (now.memoryMb > capacity.memoryMb && now.memoryMb > was.memoryMb) {
        problems.push({
          quotaId: where,
          rule: 'cluster-capacity',
          message: `guaranteed memory would total ${now.memoryMb} MB, above the cluster's ${capacity.memoryMb} MB`,
        });
      }
      if (now.vcores > capacity.vcores && now.vcores > was.vcores) {
        problems.push({
          quotaId: where,
          rule: 'cluster-capacity',
          message: `guaranteed vcores would total ${now.vcores}, above the cluster's ${capacity.vcores}`,
        });
      }
      return problems;
    },
  };
}

/** The built-in validators: structure, max ≥ guaranteed, and the cluster capacity when one is configured. */
export function defaultValidators(options: { clusterCapacity?: ClusterCapacity } = {}): QuotaValidator[] {
  return [
    structuralValidator,
    maxGteGuaranteedValidator,
    ...(options.clusterCapacity ? [clusterCapacityValidator(options.clusterCapacity)] : []),
  ];
}

/** Runs every validator and collects their problems. */
export async function runValidators(
  validators: readonly QuotaValidator[],
  context: QuotaValidationContext,
): Promise<QuotaProblem[]> {
  const problems: QuotaProblem[] = [];
  for (const v of validators) problems.push(...(await v.validate(context)));
  return problems;
}
