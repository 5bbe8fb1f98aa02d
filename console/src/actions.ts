// Which actions a case's state allows (the state machine of
// docs/architecture.md, crates/domain/src/case.rs), and what each needs.
import type { Action, CaseView, Channel } from './api/client';

export const CHANNELS: Channel[] = [
  'people_mediation',
  'administrative_mediation',
  'judicial_mediation',
  'petition',
  'counselling',
  'legal_aid',
  'emergency',
  'department_dispatch',
  'triage',
];
export const OUTCOMES = ['mediated_agreement', 'not_agreed', 'referred_to_litigation', 'withdrawn', 'handled'] as const;
export const SATISFACTION = ['satisfied', 'basically_satisfied', 'unsatisfied', 'unanswered'] as const;
export const STATUSES = ['created', 'accepted', 'rejected', 'claimed', 'in_progress', 'suspended', 'resolved', 'verified', 'closed'] as const;

/** The inputs an action's form asks for. */
export type Input = 'reason' | 'reasonOptional' | 'transfer' | 'channels' | 'outcome' | 'satisfaction' | 'extension';

export const INPUTS: Partial<Record<Action, Input[]>> = {
  reject: ['reason'],
  transfer: ['transfer', 'reason'],
  joint: ['channels', 'reason'],
  escalate: ['reason'],
  suspend: ['reason'],
  resolve: ['outcome', 'reasonOptional'],
  reopen: ['reason'],
  callback: ['satisfaction'],
  extend: ['extension', 'reason'],
  request_review: ['reason'],
};

/** The keyboard shortcut of the common actions. */
export const KEYS: Partial<Record<Action, string>> = {
  claim: 'c',
  accept: 'a',
  start: 's',
  resolve: 'r',
  transfer: 't',
  escalate: 'e',
  joint: 'u',
  verify: 'v',
  close: 'l',
  callback: 'b',
  release: 'd',
};

const OPEN_WORK = ['created', 'accepted', 'claimed', 'in_progress'];

export function allowedActions(c: CaseView): Action[] {
  const petition = c.channel === 'petition' || !!c.petition_class;
  const a: Action[] = [];
  switch (c.status) {
    case 'created':
      a.push('accept', 'claim', 'reject');
      break;
    case 'accepted':
      a.push('claim', 'reject', 'joint', 'suspend');
      break;
    case 'claimed':
      a.push('start', 'resolve', 'release', 'joint', 'suspend');
      break;
    case 'in_progress':
      a.push('resolve', 'release', 'joint', 'suspend');
      break;
    case 'suspended':
      a.push('resume');
      break;
    case 'resolved':
      a.push('verify', 'close', 'reopen');
      break;
    case 'verified':
      a.push('close', 'reopen');
      break;
    case 'closed':
      if (!c.satisfaction || c.satisfaction === 'unanswered') a.push('callback');
      a.push('reopen');
      break;
    case 'rejected':
      break;
  }
  if (OPEN_WORK.includes(c.status)) a.push('transfer', 'escalate');
  if (petition && c.channel === 'petition' && !c.extended && ['created', 'accepted', 'claimed', 'in_progress', 'suspended'].includes(c.status))
    a.push('extend');
  if (petition && ['resolved', 'verified', 'closed'].includes(c.status)) a.push('request_review');
  return a;
}
