/**
 * A budget for warn lines a client can trigger ('credentials refused', 'allocation refused',
 * 'peer denied'): UDP source addresses are spoofable, and an authenticated client asks for denied
 * peers as fast as it sends, so without one a single host could make the server write a line per
 * datagram. The budget itself is shared with the server's admin API
 * (packages/shared/src/logging/log-budget.ts). Usernames are cut to LOGGED_USERNAME_MAX characters.
 */
import { LogBudget as SharedLogBudget } from '@sync-suite/shared/node';

/** Longest username written to the log, in UTF-16 units (REST usernames are `<expiry>:<sub>`). */
export const LOGGED_USERNAME_MAX = 128;

/** `username` cut to LOGGED_USERNAME_MAX units (the cut is marked with '…'). */
export function loggedUsername(username: string | undefined): string | undefined {
  if (username === undefined || username.length <= LOGGED_USERNAME_MAX) return username;
  return `${username.slice(0, LOGGED_USERNAME_MAX - 1)}…`;
}

export type BudgetedLine = 'credentials refused' | 'allocation refused' | 'peer denied';

/** The shared budget (packages/shared/src/logging/log-budget.ts) for the TURN server's kinds of line. */
export class LogBudget extends SharedLogBudget<BudgetedLine> {}
