import './styles.css';
import { api, ApiError, call, type Action, type CaseView, type StreamEvent } from './api/client';
import { CHANNELS, KEYS, STATUSES } from './actions';
import { accessToken, currentClaims, onAuthChange, renew, resume, signIn, signOut, SignInError, type Claims } from './auth';
import { Detail } from './detail';
import { clear, field, h } from './dom';
import { categoryList, categoryName, channelName, getLang, setCategories, setLang, t, tc } from './i18n';
import { fetchCounts, GridMap } from './map';
import { Queue } from './queue';
import { LiveStream } from './sse';
import { readUrl, sameFilters, writeUrl, type Filters, type ViewState } from './urlstate';

const app = document.getElementById('app')!;
let view: ViewState = readUrl();
let queue: Queue | null = null;
let detail: Detail | null = null;
let gridMap: GridMap | null = null;
let live: LiveStream | null = null;
const emergencies = new Map<string, CaseView>();

// ---------------------------------------------------------------- acknowledged emergencies

// Acknowledged emergencies, per user, in localStorage (case ids only, the
// last ACK_MAX): a reload does not raise them again, and does raise those
// not acknowledged yet.
const ACK_MAX = 500;
let acknowledged: string[] = [];

function ackKey(): string | null {
  const sub = currentClaims()?.sub;
  return sub ? `gw-ack-${sub}` : null;
}

function loadAcks(): void {
  const k = ackKey();
  try {
    const v = k ? (JSON.parse(localStorage.getItem(k) ?? '[]') as unknown) : [];
    acknowledged = Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string').slice(-ACK_MAX) : [];
  } catch {
    acknowledged = [];
  }
}

function acknowledge(id: string): void {
  loadAcks(); // another tab may have added some
  if (!acknowledged.includes(id)) acknowledged.push(id);
  acknowledged = acknowledged.slice(-ACK_MAX);
  const k = ackKey();
  try {
    if (k) localStorage.setItem(k, JSON.stringify(acknowledged));
  } catch {
    /* storage full or off: acknowledged for this page only */
  }
}

function isAcknowledged(id: string): boolean {
  return acknowledged.includes(id);
}

/** Open emergencies of the scope not acknowledged yet (after sign-in or a reload). */
async function loadEmergencies(): Promise<void> {
  try {
    const page = await call(() => api.GET('/v1/cases', { params: { query: { urgency: 'emergency', status: 'open', limit: 200 } } }));
    for (const c of page.items) if (!isAcknowledged(c.id) && !emergencies.has(c.id)) emergencies.set(c.id, c);
    renderEmergencies();
  } catch {
    /* the live stream still raises new ones */
  }
}

// ---------------------------------------------------------------- categories

let categoriesLoaded = false;

/** The taxonomy's names, once per sign-in; rows, detail and alerts show them. */
async function loadCategories(): Promise<void> {
  if (categoriesLoaded) return;
  try {
    const body = await call(() => api.GET('/v1/categories'));
    setCategories(body.items);
    categoriesLoaded = true;
  } catch {
    return; // codes it is
  }
  fillCategoryList();
  queue?.render();
  if (detail?.data) detail.render();
  renderEmergencies();
  gridMap?.relabel();
}

function fillCategoryList(): void {
  const dl = document.getElementById('category-list');
  if (!dl) return;
  clear(
    dl,
    categoryList().map((c) => h('option', { value: c.code, label: getLang() === 'zh' ? c.name_zh : c.name_en })),
  );
}

// ---------------------------------------------------------------- sign-in

function signInPage(message?: string): void {
  live?.stop();
  live = null;
  const user = h('input', { name: 'username', autocomplete: 'username', required: true });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const err = h('div', { role: 'alert', class: 'msg' }, message ? h('p', { class: 'error' }, message) : null);
  const form = h(
    'form',
    { class: 'signin', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, t('appTitle')),
    err,
    field(t('username'), user),
    field(t('password'), pass),
    h('div', { class: 'buttons' }, h('button', { type: 'submit' }, t('signIn')), langButton()),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void (async () => {
      clear(err);
      try {
        await signIn(user.value.trim(), pass.value);
      } catch (x) {
        const m = x instanceof SignInError ? (getLang() === 'zh' ? x.zh : x.message) : String(x);
        clear(err, h('p', { class: 'error' }, m));
        pass.select();
      }
    })();
  });
  clear(app, h('main', { class: 'signin-page' }, form));
  user.focus();
}

function langButton(): HTMLElement {
  return h(
    'button',
    {
      type: 'button',
      class: 'secondary',
      lang: getLang() === 'zh' ? 'en' : 'zh-CN',
      id: 'lang',
      on: {
        click: () => {
          setLang(getLang() === 'zh' ? 'en' : 'zh');
          if (currentClaims()) consolePage(currentClaims()!);
          else signInPage();
        },
      },
    },
    t('language'),
  );
}

// ---------------------------------------------------------------- console

function consolePage(claims: Claims): void {
  const detailEl = (detail = new Detail({
    changed: (c) => queue?.upsert(c, false),
    opened: (id) => openCase(id),
  }));
  queue = new Queue({
    open: (id) => openCase(id),
    selectionChanged: () => renderBulk(),
    error: (m) => flash(m, true),
  });
  gridMap = new GridMap(
    (grid) => {
      view = { ...view, filters: { ...view.filters, grid }, page: 'list' };
      writeUrl(view);
      applyView(true);
    },
    () => view.filters.centre,
    (id) => openCase(id),
  );

  const header = h(
    'header',
    { class: 'top' },
    h('a', { href: '#queue-scroller', class: 'skip' }, t('skipToQueue')),
    h('h1', null, t('appTitle')),
    h(
      'nav',
      { 'aria-label': t('queue') },
      h('button', { type: 'button', id: 'tab-list', class: 'tab', 'aria-pressed': String(view.page === 'list'), on: { click: () => setPage('list') } }, t('queue')),
      h('button', { type: 'button', id: 'tab-map', class: 'tab', 'aria-pressed': String(view.page === 'map'), on: { click: () => setPage('map') } }, t('map')),
    ),
    h('span', { id: 'live', class: 'live off', role: 'status' }, t('liveOff')),
    h(
      'span',
      { class: 'who', id: 'who' },
      `${t('signedInAs')}: `,
      h('strong', null, claims.sub),
      ` · ${tc(claims.role)} · ${t('scope')} ${claims.scope || '—'}`,
      claims.channel ? ` · ${tc(claims.channel)}` : '',
    ),
    h('button', { type: 'button', class: 'secondary', on: { click: () => help() } }, '?'),
    langButton(),
    h(
      'button',
      {
        type: 'button',
        id: 'signout',
        on: {
          click: () => {
            leaving = true;
            void signOut().finally(() => (leaving = false));
          },
        },
      },
      t('signOut'),
    ),
  );

  clear(
    app,
    header,
    h('div', { id: 'emergencies', class: 'emergencies', 'aria-live': 'assertive' }),
    h(
      'main',
      { class: 'layout' },
      h(
        'div',
        { class: 'left' },
        filtersBar(),
        h('div', { id: 'counts', class: 'counts', 'aria-label': t('counts') }),
        h('div', { id: 'bulk', class: 'bulk' }),
        h('div', { id: 'flash', class: 'msg', role: 'alert' }),
        queue.el,
        gridMap.el,
      ),
      detailEl.el,
    ),
    helpDialog(),
  );
  fillCategoryList();
  renderEmergencies();
  applyView(true);
  startLive(claims);
}

function setPage(page: 'list' | 'map'): void {
  if (view.page === page) return;
  view = { ...view, page };
  writeUrl(view);
  applyView(false);
}

let lastFilters: Filters | null = null;

/** Makes the page show `view` (after a load, a filter change or popstate). */
function applyView(forceReload: boolean): void {
  if (!queue || !detail || !gridMap) return;
  syncFilterInputs();
  const isMap = view.page === 'map';
  queue.el.hidden = isMap;
  gridMap.el.hidden = !isMap;
  document.getElementById('tab-list')?.setAttribute('aria-pressed', String(!isMap));
  document.getElementById('tab-map')?.setAttribute('aria-pressed', String(isMap));
  if (isMap) gridMap.show();
  if (forceReload || !lastFilters || !sameFilters(lastFilters, view.filters)) {
    lastFilters = { ...view.filters };
    void queue.reload(view.filters);
    void renderCounts();
  }
  if (view.caseId) {
    queue.openId = view.caseId;
    if (detail.id !== view.caseId) void detail.load(view.caseId);
  } else {
    queue.openId = null;
    detail.empty();
  }
  queue.render();
}

function openCase(id: string): void {
  view = { ...view, caseId: id };
  writeUrl(view);
  queue?.setCurrentById(id);
  applyView(false);
}

window.addEventListener('popstate', () => {
  view = readUrl();
  applyView(false);
});

// ---------------------------------------------------------------- filters

function filtersBar(): HTMLElement {
  const sel = (name: string, opts: [string, string][]) =>
    h('select', { name, id: `f-${name}` }, h('option', { value: '' }, t('any')), opts.map(([v, l]) => h('option', { value: v }, l)));
  const inp = (name: string, attrs: Record<string, string> = {}) => h('input', { name, id: `f-${name}`, autocomplete: 'off', ...attrs });
  const form = h(
    'form',
    { class: 'filters', id: 'filters', 'aria-label': t('filters'), role: 'search' },
    field(t('text'), inp('text', { type: 'search' })),
    field(t('channel'), sel('channel', CHANNELS.map((c) => [c, tc(c)]))),
    field(t('status'), sel('status', [['open', tc('open')], ...STATUSES.map((s): [string, string] => [s, tc(s)])])),
    field(t('priority'), sel('priority', [1, 2, 3, 4, 5].map((p): [string, string] => [String(p), `P${p}`]))),
    field(t('overdue'), sel('overdue', [['true', t('yes')], ['false', t('no')]])),
    field(t('centre'), inp('centre', { inputmode: 'numeric', pattern: '[0-9]{6}|[0-9]{9}|[0-9]{12}|[0-9]{15}' })),
    field(t('grid'), inp('grid', { inputmode: 'numeric', pattern: '[0-9]{6}|[0-9]{9}|[0-9]{12}|[0-9]{15}' })),
    field(t('category'), inp('category', { list: 'category-list', title: t('categoryHint') })),
    h('datalist', { id: 'category-list' }),
    field(t('sort'), sel('sort', ['urgent', 'due', 'priority', 'created', 'updated'].map((s): [string, string] => [s, tc('sort_' + s)]))),
    h(
      'div',
      { class: 'buttons' },
      h('button', { type: 'submit' }, t('apply')),
      h(
        'button',
        {
          type: 'button',
          class: 'secondary',
          on: {
            click: () => {
              view = { ...view, filters: {} };
              writeUrl(view);
              applyView(false);
            },
          },
        },
        t('clear'),
      ),
    ),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const fd = new FormData(form);
    const filters: Filters = {};
    for (const [k, v] of fd.entries()) if (String(v).trim()) filters[k as keyof Filters] = String(v).trim();
    view = { ...view, filters };
    writeUrl(view);
    applyView(false);
  });
  // Selects apply at once; text fields on Enter.
  form.querySelectorAll('select').forEach((s) => s.addEventListener('change', () => form.requestSubmit()));
  return form;
}

function syncFilterInputs(): void {
  const form = document.getElementById('filters') as HTMLFormElement | null;
  if (!form) return;
  for (const el of Array.from(form.elements) as HTMLInputElement[]) {
    if (!el.name) continue;
    el.value = view.filters[el.name as keyof Filters] ?? '';
  }
}

async function renderCounts(): Promise<void> {
  const el = document.getElementById('counts');
  if (!el) return;
  const counts = await fetchCounts('channel', view.filters.centre);
  if (!counts || counts.size === 0) {
    clear(el);
    return;
  }
  clear(
    el,
    Array.from(counts.values()).map((c) =>
      h(
        'button',
        {
          type: 'button',
          class: view.filters.channel === c.key ? 'chip active' : 'chip',
          'data-channel': c.key,
          'aria-pressed': String(view.filters.channel === c.key),
          on: {
            click: () => {
              const channel = view.filters.channel === c.key ? undefined : c.key;
              view = { ...view, filters: { ...view.filters, channel } };
              writeUrl(view);
              applyView(false);
            },
          },
        },
        `${tc(c.key)} `,
        h('span', { class: 'n' }, String(c.open)),
        c.overdue ? h('span', { class: 'n over' }, `${t('overdueN')} ${c.overdue}`) : null,
      ),
    ),
  );
}

function flash(m: string, isError = false): void {
  const el = document.getElementById('flash');
  if (el) clear(el, m ? h('p', { class: isError ? 'error' : 'ok' }, m) : null);
}

// ---------------------------------------------------------------- bulk

const bulkResults: { id: string; ok: boolean; msg: string }[] = [];

function renderBulk(): void {
  const el = document.getElementById('bulk');
  if (!el || !queue) return;
  const n = queue.selected.size;
  if (n === 0 && bulkResults.length === 0) return clear(el);
  const reason = h('input', { name: 'bulk-reason', autocomplete: 'off' });
  const chan = h('select', { name: 'bulk-channel' }, h('option', { value: '' }, '—'), CHANNELS.map((c) => h('option', { value: c }, tc(c))));
  const run = (a: Action) => () => void bulk(a, { reason: reason.value.trim() || undefined, channel: (chan.value || undefined) as CaseView['channel'] | undefined });
  clear(
    el,
    n
      ? h(
          'div',
          { class: 'bulk-bar', role: 'group', 'aria-label': t('selectedN', { n }) },
          h('strong', null, t('selectedN', { n })),
          h('button', { type: 'button', id: 'bulk-claim', on: { click: run('claim') } }, t('bulkClaim')),
          field(t('targetChannel'), chan),
          field(t('reason'), reason),
          h('button', { type: 'button', id: 'bulk-transfer', on: { click: run('transfer') } }, t('bulkTransfer')),
          h('button', { type: 'button', id: 'bulk-escalate', on: { click: run('escalate') } }, t('bulkEscalate')),
          h('button', { type: 'button', class: 'secondary', on: { click: () => queue?.clearSelection() } }, t('clear')),
        )
      : null,
    bulkResults.length
      ? h(
          'section',
          { class: 'bulk-results', 'aria-labelledby': 'bulk-title' },
          h('h3', { id: 'bulk-title' }, t('bulkResult')),
          h(
            'ul',
            null,
            bulkResults.map((r) => h('li', { class: r.ok ? 'ok' : 'error', 'data-id': r.id }, `${r.id.slice(-8)}: ${r.ok ? t('ok') : t('failed') + ' — ' + r.msg}`)),
          ),
          h(
            'button',
            {
              type: 'button',
              class: 'secondary',
              on: {
                click: () => {
                  bulkResults.length = 0;
                  renderBulk();
                },
              },
            },
            t('close'),
          ),
        )
      : null,
  );
}

async function bulk(action: Action, body: { reason?: string; channel?: CaseView['channel'] }): Promise<void> {
  if (!queue) return;
  const ids = Array.from(queue.selected);
  bulkResults.length = 0;
  for (const id of ids) {
    const c = queue.get(id);
    try {
      const b: Record<string, unknown> = { version: c?.version };
      if (action !== 'claim') b.reason = body.reason;
      if (action === 'transfer') b.channel = body.channel;
      const res = await call(() => api.POST('/v1/cases/{id}/{action}', { params: { path: { id, action } }, body: b }));
      queue.upsert(res, false);
      bulkResults.push({ id, ok: true, msg: '' });
    } catch (e) {
      bulkResults.push({ id, ok: false, msg: e instanceof ApiError ? e.shown : String(e) });
    }
  }
  queue.selected.clear();
  queue.render();
  renderBulk();
  if (detail?.id && ids.includes(detail.id)) void detail.load(detail.id, true);
  document.getElementById('bulk-title')?.setAttribute('tabindex', '-1');
  document.getElementById('bulk-title')?.focus();
}

// ---------------------------------------------------------------- live

function matches(c: CaseView, f: Filters): boolean {
  if (f.text) return false; // the server's word search cannot be judged here
  if (f.centre && !c.centre.startsWith(f.centre)) return false;
  if (f.channel && c.channel !== f.channel) return false;
  if (f.status) {
    const ok = f.status.split(',').some((s) => (s === 'open' ? !['closed', 'rejected'].includes(c.status) : s === c.status));
    if (!ok) return false;
  }
  if (f.priority && String(c.priority) !== f.priority) return false;
  if (f.overdue && String(c.overdue) !== f.overdue) return false;
  if (f.grid && !c.hierarchy.grid.startsWith(f.grid)) return false;
  if (f.category && !(c.category === f.category || c.category.startsWith(f.category + '.'))) return false;
  return true;
}

function startLive(claims: Claims): void {
  live?.stop();
  const code = claims.scope;
  if (!code || !/^[0-9]{6,15}$/.test(code)) return;
  live = new LiveStream({
    url: () => `/v1/centres/${code}/stream`,
    token: accessToken,
    renew,
    onState: (up) => {
      const el = document.getElementById('live');
      if (!el) return;
      el.className = up ? 'live on' : 'live off';
      el.textContent = up ? t('liveOn') : t('liveOff');
    },
    onMessage: (m) => {
      if (m.event === 'case' || m.event === 'emergency') {
        let ev: StreamEvent;
        try {
          ev = JSON.parse(m.data) as StreamEvent;
        } catch {
          return;
        }
        const c = ev.case;
        if (view.filters.text && !queue?.get(c.id)) scheduleHead(); // the server judges the words
        queue?.upsert(c, ev.kind === 'created' || !queue.get(c.id) ? matches(c, view.filters) : false);
        detail?.maybeRefresh(c);
        if ((m.event === 'emergency' || c.urgency === 'emergency') && !isAcknowledged(c.id) && !['closed', 'rejected'].includes(c.status)) {
          emergencies.set(c.id, c);
          renderEmergencies();
        } else if (emergencies.has(c.id) && ['closed', 'rejected'].includes(c.status)) {
          emergencies.delete(c.id); // no longer open: nothing to acknowledge
          renderEmergencies();
        }
        scheduleCounts();
      } else if (m.event === 'reset' || m.event === 'lagged') {
        void queue?.reload(view.filters);
        scheduleCounts();
      }
    },
  });
  live.start();
}

let headTimer: number | undefined;
function scheduleHead(): void {
  window.clearTimeout(headTimer);
  headTimer = window.setTimeout(() => void queue?.refreshHead(), 300);
}

let countsTimer: number | undefined;
function scheduleCounts(): void {
  window.clearTimeout(countsTimer);
  countsTimer = window.setTimeout(() => void renderCounts(), 1000);
}

function renderEmergencies(): void {
  const el = document.getElementById('emergencies');
  if (!el) return;
  clear(
    el,
    Array.from(emergencies.values()).map((c) =>
      h(
        'div',
        { class: 'emergency-alert', role: 'alert', 'data-id': c.id },
        h('strong', null, `⚠ ${t('emergency')}: `),
        `${channelName(c)} · ${categoryName(c.category)} · ${c.hierarchy.grid || c.centre} · ${c.id.slice(-8)} `,
        h('button', { type: 'button', class: 'secondary', on: { click: () => openCase(c.id) } }, t('detail')),
        h(
          'button',
          {
            type: 'button',
            class: 'ack',
            on: {
              click: () => {
                acknowledge(c.id);
                emergencies.delete(c.id);
                renderEmergencies();
              },
            },
          },
          t('acknowledge'),
        ),
      ),
    ),
  );
}

// ---------------------------------------------------------------- keyboard

function helpDialog(): HTMLElement {
  const rows: [string, string][] = [
    ['j / k', t('help_jk')],
    ['Enter', t('help_enter')],
    ['x', t('help_x')],
    ['/', t('help_slash')],
    ['m', t('help_m')],
    ['q', t('help_q')],
    ...Object.entries(KEYS).map(([a, k]): [string, string] => [k!, tc('act_' + a)]),
    ['Esc', t('help_esc')],
    ['?', t('help_help')],
  ];
  return h(
    'dialog',
    { id: 'help', 'aria-labelledby': 'help-title' },
    h('h2', { id: 'help-title' }, t('keyboard')),
    h('table', null, h('tbody', null, rows.map(([k, d]) => h('tr', null, h('th', { scope: 'row' }, h('kbd', null, k)), h('td', null, d))))),
    h(
      'button',
      { type: 'button', id: 'help-close', on: { click: () => (document.getElementById('help') as HTMLDialogElement).close() } },
      t('close'),
    ),
  );
}

function help(): void {
  (document.getElementById('help') as HTMLDialogElement | null)?.showModal();
}

document.addEventListener('keydown', (e) => {
  if (!queue || !detail || !currentClaims()) return;
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const target = e.target as HTMLElement;
  if (target.closest('input, textarea, select, [contenteditable], dialog[open]')) return;
  const k = e.key;
  if (k === 'j' || k === 'ArrowDown') {
    if (k === 'ArrowDown' && !target.closest('.rows')) return;
    e.preventDefault();
    queue.move(1);
  } else if (k === 'k' || k === 'ArrowUp') {
    if (k === 'ArrowUp' && !target.closest('.rows')) return;
    e.preventDefault();
    queue.move(-1);
  } else if (k === 'Enter' && !target.closest('button, a')) {
    const c = queue.currentCase();
    if (c) openCase(c.id);
  } else if (k === 'x') {
    const c = queue.currentCase();
    if (c) queue.toggleSelect(c.id);
  } else if (k === '/') {
    e.preventDefault();
    document.getElementById('f-text')?.focus();
  } else if (k === '?') {
    help();
  } else if (k === 'm') {
    setPage(view.page === 'map' ? 'list' : 'map');
  } else if (k === 'q') {
    detail.focusActions();
  } else {
    const action = (Object.entries(KEYS) as [Action, string][]).find(([, key]) => key === k)?.[0];
    if (action && detail.data) {
      e.preventDefault();
      detail.trigger(action);
    }
  }
});

// ---------------------------------------------------------------- start

let leaving = false; // signing out on purpose: no "session ended" notice

onAuthChange((c) => {
  if (c) {
    loadAcks();
    consolePage(c);
    void loadCategories();
    void loadEmergencies();
  } else {
    emergencies.clear();
    categoriesLoaded = false;
    signInPage(leaving ? undefined : t('sessionEnded'));
  }
});

void (async () => {
  clear(app, h('p', { class: 'muted' }, t('loading')));
  if (!(await resume())) signInPage();
})();

// The browser tests read these (never tokens).
declare global {
  interface Window {
    __console?: {
      queueSize: () => number;
      lastEventId: () => string | null;
      dropStream: () => void;
      mapDraws: () => { draws: number; lastMs: number; features: number; level: string; markers: number; zoom: number };
      mapFit: (box: [number, number, number, number]) => void;
    };
  }
}
window.__console = {
  queueSize: () => queue?.items.length ?? 0,
  lastEventId: () => live?.lastId ?? null,
  dropStream: () => live?.reconnectNow(),
  mapDraws: () => ({
    draws: gridMap?.draws ?? 0,
    lastMs: gridMap?.lastDrawMs ?? 0,
    features: gridMap?.lastFeatures ?? 0,
    level: gridMap?.lastLevel ?? '',
    markers: gridMap?.markers ?? 0,
    zoom: gridMap?.zoom ?? -1,
  }),
  mapFit: (box) => gridMap?.fit(box),
};
