// The queue's view lives in the URL: filters, sort, the open case and the
// page (list or map). pushState on every change, popstate restores.

export const FILTER_KEYS = ['centre', 'channel', 'status', 'priority', 'overdue', 'grid', 'category', 'text', 'sort'] as const;
export type FilterKey = (typeof FILTER_KEYS)[number];
export type Filters = Partial<Record<FilterKey, string>>;
export type ViewState = { filters: Filters; caseId: string | null; page: 'list' | 'map' };

export function readUrl(): ViewState {
  const q = new URLSearchParams(location.search);
  const filters: Filters = {};
  for (const k of FILTER_KEYS) {
    const v = q.get(k);
    if (v) filters[k] = v;
  }
  return { filters, caseId: q.get('case'), page: q.get('page') === 'map' ? 'map' : 'list' };
}

export function toQuery(v: ViewState): string {
  const q = new URLSearchParams();
  for (const k of FILTER_KEYS) if (v.filters[k]) q.set(k, v.filters[k]!);
  if (v.caseId) q.set('case', v.caseId);
  if (v.page === 'map') q.set('page', 'map');
  const s = q.toString();
  return s ? `?${s}` : '';
}

export function writeUrl(v: ViewState, replace = false): void {
  const url = location.pathname + toQuery(v);
  if (url === location.pathname + location.search) return;
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
}

export function sameFilters(a: Filters, b: Filters): boolean {
  return FILTER_KEYS.every((k) => (a[k] ?? '') === (b[k] ?? ''));
}
