// The queue: a virtualised list over keyset pages of GET /v1/cases. Only
// the rows in view (plus a margin) are in the DOM, so 10,000 loaded cases
// scroll as smoothly as 50.
import { api, call, type CaseView } from './api/client';
import { light } from './clock';
import { clear, fmtTime, h } from './dom';
import { categoryName, channelName, t, tc } from './i18n';
import type { Filters } from './urlstate';

export const ROW_H = 64;
const PAGE = 200; // the API's largest page

/** The query of `GET /v1/cases` for the view `f`: `limit` cases after `cursor`. */
function listQuery(f: Filters, limit: number, cursor?: string) {
  return {
    centre: f.centre,
    channel: f.channel as CaseView['channel'] | undefined,
    status: f.status,
    priority: f.priority ? Number(f.priority) : undefined,
    overdue: f.overdue === 'true' ? true : f.overdue === 'false' ? false : undefined,
    grid: f.grid,
    category: f.category,
    text: f.text,
    sort: f.sort as 'urgent' | undefined,
    limit,
    cursor,
  };
}

export type QueueEvents = {
  open: (id: string) => void;
  selectionChanged: () => void;
  error: (msg: string) => void;
};

export class Queue {
  items: CaseView[] = [];
  private index = new Map<string, number>();
  cursor: string | null = null;
  done = false;
  loading = false;
  selected = new Set<string>();
  current = -1;
  openId: string | null = null;
  filters: Filters = {};
  private gen = 0;
  private fresh = new Set<string>();
  private restoring = false;

  readonly el: HTMLElement;
  private scroller: HTMLElement;
  private spacer: HTMLElement;
  private rowsEl: HTMLElement;
  private footer: HTMLElement;
  private countEl: HTMLElement;
  private more: HTMLButtonElement;

  constructor(private ev: QueueEvents) {
    this.countEl = h('span', { class: 'muted', 'aria-live': 'polite' });
    this.more = h('button', { type: 'button', class: 'secondary', on: { click: () => void this.loadMore() } }, t('loadMore'));
    this.footer = h('div', { class: 'queue-footer' }, this.countEl, this.more);
    this.rowsEl = h('div', { role: 'list', class: 'rows', 'aria-label': t('queue') });
    this.spacer = h('div', { class: 'spacer' }, this.rowsEl);
    this.scroller = h('div', { class: 'scroller', id: 'queue-scroller' }, this.spacer);
    this.scroller.addEventListener('scroll', () => {
      this.render();
      if (this.scroller.scrollTop + this.scroller.clientHeight > this.spacer.offsetHeight - ROW_H * 10) void this.loadMore();
    });
    new ResizeObserver(() => this.render()).observe(this.scroller);
    this.el = h('section', { class: 'queue', id: 'queue', 'aria-label': t('queue') }, this.scroller, this.footer);
  }

  /** Loads the first page for these filters (drops what was loaded). */
  async reload(filters: Filters): Promise<void> {
    this.filters = { ...filters };
    this.gen += 1;
    this.items = [];
    this.index.clear();
    this.cursor = null;
    this.done = false;
    this.loading = false;
    this.current = -1;
    this.scroller.scrollTop = 0;
    this.render();
    await this.loadMore();
  }

  async loadMore(): Promise<void> {
    if (this.loading || this.done) return;
    this.loading = true;
    const gen = this.gen;
    this.renderFooter();
    const f = this.filters;
    try {
      const page = await call(() =>
        api.GET('/v1/cases', {
          params: {
            query: listQuery(f, PAGE, this.cursor ?? undefined),
          },
        }),
      );
      if (gen !== this.gen) return;
      for (const c of page.items) {
        if (this.index.has(c.id)) continue;
        this.index.set(c.id, this.items.length);
        this.items.push(c);
      }
      this.cursor = page.next_cursor ?? null;
      this.done = !this.cursor;
    } catch (e) {
      if (gen === this.gen) this.ev.error((e as { shown?: string }).shown ?? String(e));
      this.done = true;
    } finally {
      if (gen === this.gen) {
        this.loading = false;
        this.render();
      }
    }
  }

  /**
   * Fetches the first page again and puts cases not yet listed on top: for
   * live cases the page cannot judge itself (a word search).
   */
  async refreshHead(): Promise<void> {
    const gen = this.gen;
    const f = this.filters;
    try {
      const page = await call(() =>
        api.GET('/v1/cases', {
          params: {
            query: listQuery(f, 50),
          },
        }),
      );
      if (gen !== this.gen) return;
      for (const c of page.items.slice().reverse()) this.upsert(c, true);
    } catch {
      /* the next event or reload will do */
    }
  }

  get(id: string): CaseView | undefined {
    const i = this.index.get(id);
    return i === undefined ? undefined : this.items[i];
  }

  /** A case changed (live, or after an action): update it in place. */
  upsert(c: CaseView, insertIfNew: boolean): void {
    const i = this.index.get(c.id);
    if (i !== undefined) {
      if (this.items[i].version > c.version) return; // an older view
      this.items[i] = c;
    } else if (insertIfNew) {
      this.items.unshift(c);
      this.rebuildIndex();
      if (this.current >= 0) this.current += 1;
      this.fresh.add(c.id);
      window.setTimeout(() => {
        this.fresh.delete(c.id);
        this.render();
      }, 5000);
    } else return;
    this.render();
  }

  private rebuildIndex(): void {
    this.index.clear();
    this.items.forEach((c, i) => this.index.set(c.id, i));
  }

  move(delta: number): void {
    if (this.items.length === 0) return;
    this.current = Math.max(0, Math.min(this.items.length - 1, this.current + delta));
    this.scrollTo(this.current);
    this.render();
    this.focusCurrent();
    if (this.current >= this.items.length - 5) void this.loadMore();
  }

  focusCurrent(): void {
    const c = this.items[this.current];
    if (!c) return;
    const b = this.rowsEl.querySelector<HTMLElement>(`[data-id="${c.id}"] .open`);
    b?.focus({ preventScroll: true });
  }

  currentCase(): CaseView | undefined {
    return this.items[this.current];
  }

  setCurrentById(id: string): void {
    const i = this.index.get(id);
    if (i !== undefined) this.current = i;
  }

  toggleSelect(id: string): void {
    if (this.selected.has(id)) this.selected.delete(id);
    else this.selected.add(id);
    this.render();
    this.ev.selectionChanged();
  }

  clearSelection(): void {
    this.selected.clear();
    this.render();
    this.ev.selectionChanged();
  }

  private scrollTo(i: number): void {
    const top = i * ROW_H;
    if (top < this.scroller.scrollTop) this.scroller.scrollTop = top;
    else if (top + ROW_H > this.scroller.scrollTop + this.scroller.clientHeight)
      this.scroller.scrollTop = top + ROW_H - this.scroller.clientHeight;
  }

  render(): void {
    const n = this.items.length;
    this.spacer.style.height = `${n * ROW_H}px`;
    const first = Math.max(0, Math.floor(this.scroller.scrollTop / ROW_H) - 5);
    const last = Math.min(n, Math.ceil((this.scroller.scrollTop + (this.scroller.clientHeight || 800)) / ROW_H) + 5);
    const focused = document.activeElement?.closest<HTMLElement>('.row')?.dataset.id;
    this.rowsEl.style.transform = `translateY(${first * ROW_H}px)`;
    const rows: HTMLElement[] = [];
    for (let i = first; i < last; i++) rows.push(this.row(this.items[i], i));
    clear(this.rowsEl, rows);
    if (focused) {
      // Keep the focus on the row it was on (re-rendered); not a user move.
      this.restoring = true;
      this.rowsEl.querySelector<HTMLElement>(`[data-id="${focused}"] .open`)?.focus({ preventScroll: true });
      this.restoring = false;
    }
    this.renderFooter();
  }

  private renderFooter(): void {
    const empty = this.items.length === 0;
    this.countEl.textContent =
      empty && (this.loading || !this.done) ? t('loading') : empty ? t('noCases') : t('casesShown', { n: this.items.length });
    this.more.hidden = this.done;
    this.more.disabled = this.loading;
    this.more.textContent = this.loading ? t('loading') : t('loadMore');
  }

  private row(c: CaseView, i: number): HTMLElement {
    const l = light(c);
    const cls = ['row'];
    if (i === this.current) cls.push('current');
    if (c.id === this.openId) cls.push('opened');
    if (this.fresh.has(c.id)) cls.push('fresh');
    if (c.urgency === 'emergency') cls.push('emergency');
    const short = c.id.slice(-8);
    const el = h(
      'div',
      {
        role: 'listitem',
        class: cls.join(' '),
        'data-id': c.id,
        'data-status': c.status,
        'data-light': l,
        'aria-posinset': i + 1,
        'aria-setsize': this.done ? this.items.length : -1,
      },
      h('input', {
        type: 'checkbox',
        class: 'sel',
        checked: this.selected.has(c.id),
        'aria-label': `${t('select')} ${short}`,
        on: { change: () => this.toggleSelect(c.id) },
      }),
      h(
        'button',
        {
          type: 'button',
          class: 'open',
          'aria-current': c.id === this.openId ? 'true' : undefined,
          on: {
            click: () => {
              this.current = i;
              this.ev.open(c.id);
            },
            focus: () => {
              if (!this.restoring && this.current !== i) {
                this.current = i;
                this.rowsEl.querySelectorAll('.row.current').forEach((r) => r.classList.remove('current'));
                el.classList.add('current');
              }
            },
          },
        },
        h('span', { class: `light light-${l}`, title: t(`light_${l}`) }, h('span', { class: 'sr' }, t(`light_${l}`))),
        h(
          'span',
          { class: 'line1' },
          h('span', { class: 'chan' }, channelName(c)),
          h('span', { class: 'cat', 'data-category': c.category }, categoryName(c.category)),
          h('span', { class: `status status-${c.status}` }, tc(c.status)),
          c.priority <= 2 ? h('span', { class: 'prio' }, `P${c.priority}`) : null,
          c.urgency !== 'normal' ? h('span', { class: `urg urg-${c.urgency}` }, tc(c.urgency)) : null,
        ),
        h(
          'span',
          { class: 'line2' },
          h('span', { class: 'mono' }, short),
          h('span', null, c.hierarchy.grid || c.centre),
          h('span', null, `${t('dueAt')} ${fmtTime(c.due_at)}`),
          c.claimed_by ? h('span', null, `${t('claimedBy')} ${c.claimed_by}`) : null,
        ),
      ),
    );
    return el;
  }
}
