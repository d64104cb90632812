/**
 * Allocation quotas (node-turn's checkQuota is a TODO): TURN_USER_QUOTA per username and
 * TURN_TOTAL_QUOTA in all. A slot is taken when an Allocate is accepted for processing
 * (before its relay port is bound) so concurrent requests cannot overshoot.
 */
export type QuotaKind = 'user' | 'total';

export class AllocationQuotas {
  private readonly perUser = new Map<string, number>();
  private total = 0;

  constructor(
    private readonly userLimit: number,
    private readonly totalLimit: number,
  ) {}

  /** Take a slot, or name the quota that is full. */
  take(username: string): QuotaKind | undefined {
    const mine = this.perUser.get(username) ?? 0;
    if (this.total >= this.totalLimit) return 'total';
    if (mine >= this.userLimit) return 'user';
    this.perUser.set(username, mine + 1);
    this.total++;
    return undefined;
  }

  give(username: string): void {
    const mine = this.perUser.get(username) ?? 0;
    if (mine <= 0) return;
    if (mine === 1) this.perUser.delete(username);
    else this.perUser.set(username, mine - 1);
    this.total--;
  }
}
