import type { CaseView } from './api/client';

export type Light = 'red' | 'amber' | 'green' | 'none';

const STOPPED = new Set(['resolved', 'verified', 'closed', 'rejected', 'suspended']);
const DAY = 24 * 3600 * 1000;

/**
 * The deadline traffic light. Red: the server says overdue. Amber: the
 * deadline that runs (acceptance for an unaccepted petition, else
 * close-out) is within 24 hours, or within the last 25 % of the time from
 * the case's creation to it, whichever comes first. Green otherwise.
 * None: the clocks do not run (resolved, verified, closed, rejected,
 * suspended).
 */
export function light(c: CaseView, now = Date.now()): Light {
  if (c.overdue) return 'red';
  if (STOPPED.has(c.status)) return 'none';
  const dueIso = c.status === 'created' && c.accept_due_at ? c.accept_due_at : c.due_at;
  const due = Date.parse(dueIso);
  const left = due - now;
  if (left <= 0) return 'red';
  const total = due - Date.parse(c.created_at);
  if (left <= DAY || (total > 0 && left <= total * 0.25)) return 'amber';
  return 'green';
}
