// The case beside the list: the case, its clocks, report and linked
// reports, supervision notices, timeline, tasks, parties (masked until
// asked for with a reason) and the action panel.
import { api, ApiError, call, type Action, type ActionIn, type CaseDetail, type CaseView, type TaskView } from './api/client';
import { allowedActions, CHANNELS, INPUTS, KEYS, OUTCOMES, SATISFACTION, type Input } from './actions';
import { light } from './clock';
import { clear, field, fmtTime, h, nextId } from './dom';
import { categoryName, channelName, t, tc } from './i18n';
import { MediaCache, mediaList } from './media';

type Report = NonNullable<CaseDetail["report"]>;
type Person = { name?: string | null; phone?: string | null; id_number?: string | null };

export type DetailEvents = {
  changed: (c: CaseView) => void;
  opened: (id: string) => void;
};

export class Detail {
  readonly el: HTMLElement;
  private body: HTMLElement;
  private msg: HTMLElement;
  private status: HTMLElement;
  data: CaseDetail | null = null;
  tasks: TaskView[] = [];
  private revealed: Map<string, Person[]> | null = null;
  private openForm: Action | null = null;
  private busy = false;
  private loadGen = 0;
  /** Blob URLs of the open case's photos and videos. */
  readonly media = new MediaCache();

  constructor(private ev: DetailEvents) {
    this.body = h('div', { class: 'detail-body' });
    this.msg = h('div', { class: 'msg', role: 'alert', id: 'action-error' });
    this.status = h('div', { class: 'sr', role: 'status', id: 'action-status' });
    this.el = h(
      'section',
      { class: 'detail', id: 'detail', 'aria-labelledby': 'detail-title', tabindex: '-1' },
      h('h2', { id: 'detail-title' }, t('detail')),
      this.msg,
      this.status,
      this.body,
    );
    this.empty();
  }

  empty(): void {
    this.data = null;
    this.loadGen += 1;
    this.media.revokeAll();
    clear(this.msg);
    clear(this.body, h('p', { class: 'muted' }, t('noneSelected')));
  }

  get id(): string | null {
    return this.data?.id ?? null;
  }

  async load(id: string, keepMessage = false): Promise<void> {
    const gen = ++this.loadGen;
    if (this.data?.id !== id) {
      this.media.revokeAll();
      this.revealed = null;
      this.openForm = null;
      clear(this.body, h('p', { class: 'muted' }, t('loading')));
    }
    if (!keepMessage) clear(this.msg);
    try {
      const [d, tasks] = await Promise.all([
        call(() => api.GET('/v1/cases/{id}', { params: { path: { id } } })),
        call(() => api.GET('/v1/cases/{id}/tasks', { params: { path: { id } } })).catch(() => ({ items: [] as TaskView[] })),
      ]);
      if (gen !== this.loadGen) return;
      this.data = d;
      this.tasks = tasks.items;
      this.render();
    } catch (e) {
      if (gen !== this.loadGen) return;
      this.data = null;
      clear(this.body);
      this.error(e);
    }
  }

  /** A live event says the open case changed: reload if it is newer. */
  maybeRefresh(c: CaseView): void {
    if (this.data && this.data.id === c.id && c.version > this.data.version && !this.busy) void this.load(c.id, true);
  }

  private error(e: unknown): void {
    const m = e instanceof ApiError ? e.shown : String(e);
    clear(this.msg, h('p', { class: 'error' }, m));
  }

  private say(m: string): void {
    this.status.textContent = m;
  }

  /** Runs an action (from a button, a form or a shortcut). */
  async act(action: Action, body: ActionIn = {}): Promise<boolean> {
    const d = this.data;
    if (!d || this.busy) return false;
    this.busy = true;
    clear(this.msg);
    try {
      const c = await call(() =>
        api.POST('/v1/cases/{id}/{action}', {
          params: { path: { id: d.id, action } },
          body: { ...body, version: d.version },
        }),
      );
      this.openForm = null;
      this.ev.changed(c);
      this.busy = false;
      await this.load(d.id, true);
      this.say(`${tc('act_' + action)}: ${t('ok')}`);
      return true;
    } catch (e) {
      this.busy = false;
      if (e instanceof ApiError && e.status === 409 && e.body.code === 'stale_version') {
        await this.load(d.id, true);
      }
      this.error(e);
      return false;
    }
  }

  /** The action panel's entry point for keys: runs it, or opens its form. */
  trigger(action: Action): void {
    if (!this.data || !allowedActions(this.data).includes(action)) return;
    if (INPUTS[action]) {
      this.openForm = action;
      this.render();
      this.el.querySelector<HTMLElement>('.action-form input, .action-form select, .action-form textarea')?.focus();
    } else void this.act(action);
  }

  focusActions(): void {
    this.el.querySelector<HTMLElement>('.actions button')?.focus();
  }

  render(): void {
    const d = this.data;
    if (!d) return this.empty();
    const l = light(d);
    clear(
      this.body,
      h(
        'div',
        { class: 'case-head' },
        h('span', { class: `light light-${l}`, 'data-light': l }, h('span', { class: 'sr' }, t(`light_${l}`))),
        h('strong', { class: 'case-title' }, `${channelName(d)} · ${categoryName(d.category)}`, h('span', { class: 'sr' }, ` (${d.category})`)),
        h('span', { class: `status status-${d.status}`, id: 'case-status', 'data-status': d.status }, tc(d.status)),
        h('span', { class: 'muted mono' }, d.id),
      ),
      h(
        'dl',
        { class: 'facts' },
        fact(t('centre'), d.centre),
        fact(t('grid'), d.hierarchy.grid || '—'),
        fact(t('priority'), `P${d.priority} · ${tc(d.urgency)}`),
        d.joint.length ? fact(t('channels'), d.joint.map((c) => tc(c)).join('、')) : null,
        d.claimed_by ? fact(t('claimedBy'), `${d.claimed_by}${d.lease_until ? ' → ' + fmtTime(d.lease_until) : ''}`) : null,
        d.outcome ? fact(t('outcome'), tc(d.outcome)) : null,
        d.satisfaction ? fact(t('satisfaction'), tc(d.satisfaction)) : null,
        fact(t('version'), String(d.version)),
      ),
      this.actionsPanel(d),
      section(
        t('clocks'),
        h(
          'dl',
          { class: 'facts' },
          fact(t('dueAt'), `${fmtTime(d.due_at)} · ${t(`light_${l}`)}`),
          d.accept_due_at ? fact(t('acceptDueAt'), fmtTime(d.accept_due_at)) : null,
          d.petition_class ? fact(t('petitionClass'), d.petition_class) : null,
          d.extended ? fact(t('extended'), t('yes')) : null,
          fact(t('created'), fmtTime(d.created_at)),
          fact(t('updated'), fmtTime(d.updated_at)),
        ),
      ),
      d.report ? section(t('report'), this.report(d.report, t('report'))) : null,
      this.partiesPanel(d),
      d.linked_reports.length
        ? section(
            t('linkedReports'),
            h(
              'ul',
              { class: 'linked' },
              d.linked_reports.map((lr) =>
                h(
                  'li',
                  null,
                  h('div', { class: 'muted' }, `${lr.report_id.slice(-8)} · ${t('distance')} ${Math.round(lr.distance_m)} m · ${lr.linked_by}`),
                  lr.report ? this.report(lr.report, `${t('linkedReports')} ${lr.report_id.slice(-8)}`) : null,
                  lr.split_case_id
                    ? h('span', { class: 'muted' }, `${t('splitDone')} → `, link(lr.split_case_id, () => this.ev.opened(lr.split_case_id!)))
                    : !['closed', 'rejected'].includes(d.status)
                      ? this.splitForm(lr.report_id)
                      : null,
                ),
              ),
            ),
          )
        : null,
      d.supervision.length
        ? section(
            t('supervision'),
            h(
              'ul',
              { class: 'supervision' },
              d.supervision.map((s) =>
                h('li', { class: `sup sup-${s.threshold}` }, `督办 · ${s.clock === 'acceptance' ? t('acceptDueAt') : t('dueAt')} ${fmtTime(s.due_at)} · ${s.threshold === 'overdue' ? t('light_red') : t('light_amber')} · ${fmtTime(s.raised_at)}`),
              ),
            ),
          )
        : null,
      this.tasksPanel(d),
      section(
        t('timeline'),
        h(
          'ol',
          { class: 'timeline' },
          d.timeline.map((e) =>
            h(
              'li',
              null,
              h('time', { datetime: e.at }, fmtTime(e.at)),
              ' ',
              h('strong', { 'data-kind': e.kind }, tc('ev_' + e.kind)),
              ` → ${tc(e.status)} · ${e.actor}`,
              e.reason ? h('div', { class: 'muted' }, e.reason) : null,
            ),
          ),
        ),
      ),
    );
  }

  private report(r: Report, what: string): HTMLElement {
    return h(
      'div',
      { class: 'report' },
      h(
        'dl',
        { class: 'facts' },
        fact(t('description'), r.description),
        r.address ? fact(t('address'), r.address) : null,
        fact(t('occurredAt'), fmtTime(r.occurred_at)),
        fact(t('reporter'), r.reporter),
      ),
      mediaList(r.media, this.media, what),
    );
  }

  private actionsPanel(d: CaseDetail): HTMLElement {
    const acts = allowedActions(d);
    const buttons = acts.map((a) =>
      h(
        'button',
        {
          type: 'button',
          class: a === this.openForm ? 'act active' : 'act',
          'data-action': a,
          'aria-expanded': INPUTS[a] ? String(a === this.openForm) : undefined,
          'aria-keyshortcuts': KEYS[a],
          on: { click: () => this.trigger(a) },
        },
        tc('act_' + a),
        KEYS[a] ? h('kbd', { 'aria-hidden': 'true' }, KEYS[a]!) : null,
      ),
    );
    return h(
      'section',
      { class: 'actions-panel', 'aria-labelledby': 'actions-title' },
      h('h3', { id: 'actions-title' }, t('actions')),
      h('div', { class: 'actions' }, buttons.length ? buttons : h('span', { class: 'muted' }, '—')),
      this.openForm ? this.actionForm(this.openForm) : null,
    );
  }

  private actionForm(a: Action): HTMLElement {
    const inputs = INPUTS[a] ?? [];
    const controls: Partial<Record<Input, HTMLElement>> = {};
    const parts: HTMLElement[] = [];
    for (const inp of inputs) {
      if (inp === 'reason' || inp === 'reasonOptional') {
        const ta = h('textarea', { name: 'reason', rows: '2', maxlength: '2000' });
        controls[inp] = ta;
        parts.push(field(inp === 'reason' ? t('reason') : t('note'), ta));
      } else if (inp === 'transfer') {
        const sel = h('select', { name: 'channel' }, h('option', { value: '' }, '—'), CHANNELS.map((c) => h('option', { value: c }, tc(c))));
        const centre = h('input', { name: 'centre', inputmode: 'numeric', pattern: '[0-9]{6,15}', autocomplete: 'off' });
        controls.transfer = h('div', null, sel, centre);
        parts.push(field(t('targetChannel'), sel), field(t('targetCentre'), centre));
      } else if (inp === 'channels') {
        const boxes = CHANNELS.filter((c) => c !== this.data?.channel).map((c) => {
          const id = nextId('jc');
          return h('span', { class: 'check' }, h('input', { type: 'checkbox', id, name: 'channels', value: c }), h('label', { for: id }, tc(c)));
        });
        const fs = h('fieldset', null, h('legend', null, t('channels')), boxes);
        controls.channels = fs;
        parts.push(fs);
      } else if (inp === 'outcome') {
        const sel = h('select', { name: 'outcome' }, OUTCOMES.map((o) => h('option', { value: o }, tc(o))));
        controls.outcome = sel;
        parts.push(field(t('outcome'), sel));
      } else if (inp === 'satisfaction') {
        const sel = h('select', { name: 'satisfaction' }, SATISFACTION.map((o) => h('option', { value: o }, tc(o))));
        controls.satisfaction = sel;
        parts.push(field(t('satisfaction'), sel));
      } else if (inp === 'extension') {
        const sel = h('select', { name: 'extension' }, ['30 days', '15 days', '10 working days'].map((o) => h('option', { value: o }, o)));
        controls.extension = sel;
        parts.push(field(t('extension'), sel));
      }
    }
    const form = h(
      'form',
      { class: 'action-form', 'data-form': a, 'aria-label': tc('act_' + a) },
      h('h4', null, tc('act_' + a)),
      parts,
      h(
        'div',
        { class: 'buttons' },
        h('button', { type: 'submit' }, t('submit')),
        h(
          'button',
          {
            type: 'button',
            class: 'secondary',
            on: {
              click: () => {
                this.openForm = null;
                this.render();
                this.focusActions();
              },
            },
          },
          t('cancel'),
        ),
      ),
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const fd = new FormData(form);
      const body: ActionIn = {};
      const reason = String(fd.get('reason') ?? '').trim();
      if (reason) body.reason = reason;
      if (a === 'resolve') {
        body.outcome = fd.get('outcome') as ActionIn['outcome'];
        if (reason) {
          body.note = reason;
          delete body.reason;
        }
      }
      if (a === 'transfer') {
        const ch = String(fd.get('channel') ?? '');
        const ce = String(fd.get('centre') ?? '').trim();
        if (ch) body.channel = ch as ActionIn['channel'];
        if (ce) body.centre = ce;
      }
      if (a === 'joint') body.channels = fd.getAll('channels').map(String) as ActionIn['channels'];
      if (a === 'callback') body.satisfaction = fd.get('satisfaction') as ActionIn['satisfaction'];
      if (a === 'extend') body.extension = String(fd.get('extension'));
      void this.act(a, body).then((ok) => {
        if (ok) this.focusActions();
      });
    });
    return form;
  }

  private splitForm(reportId: string): HTMLElement {
    const ta = h('input', { name: 'reason', autocomplete: 'off' });
    const form = h(
      'form',
      { class: 'split-form', 'aria-label': t('split') },
      field(t('reason'), ta),
      h('button', { type: 'submit', class: 'secondary' }, t('split')),
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.act('split', { report_id: reportId, reason: ta.value.trim() || undefined });
    });
    return form;
  }

  private partiesPanel(d: CaseDetail): HTMLElement {
    const rows: HTMLElement[] = [];
    const reports: { id: string; parties: Person[] | null | undefined }[] = [];
    if (d.report) reports.push({ id: d.report.id, parties: d.report.parties });
    for (const lr of d.linked_reports) if (lr.report) reports.push({ id: lr.report.id, parties: lr.report.parties });
    for (const r of reports) {
      const shown = this.revealed?.get(r.id) ?? r.parties ?? [];
      for (const p of shown) rows.push(h('li', null, [p.name, p.phone, p.id_number].filter(Boolean).join(' · ')));
    }
    let control: HTMLElement;
    if (this.revealed) {
      control = h(
        'button',
        {
          type: 'button',
          class: 'secondary',
          on: {
            click: () => {
              this.revealed = null;
              this.render();
            },
          },
        },
        t('mask'),
      );
    } else {
      const inp = h('input', { name: 'reveal-reason', minlength: '4', maxlength: '2000', required: true, autocomplete: 'off' });
      control = h('form', { class: 'reveal-form', 'aria-label': t('showParties') }, field(t('revealReason'), inp), h('button', { type: 'submit' }, t('showParties')));
      control.addEventListener('submit', (e) => {
        e.preventDefault();
        void (async () => {
          clear(this.msg);
          try {
            const res = await call(() => api.POST('/v1/cases/{id}/parties', { params: { path: { id: d.id } }, body: { reason: inp.value.trim() } }));
            this.revealed = new Map(res.reports.map((r) => [r.report_id, r.parties]));
            this.render();
            this.el.querySelector<HTMLElement>('.parties-panel button')?.focus();
          } catch (err) {
            this.error(err);
          }
        })();
      });
    }
    return h(
      'section',
      { class: 'parties-panel', 'aria-labelledby': 'parties-title' },
      h('h3', { id: 'parties-title' }, t('parties'), this.revealed ? '' : h('span', { class: 'muted' }, ` (${t('partiesMasked')})`)),
      h('ul', { class: this.revealed ? 'parties revealed' : 'parties' }, rows),
      control,
    );
  }

  private tasksPanel(d: CaseDetail): HTMLElement {
    const kinds = ['verification', 'follow_up', 'delivery', 'assist_mediation'];
    const kind = h('select', { name: 'kind' }, kinds.map((k) => h('option', { value: k }, tc(k))));
    const instr = h('textarea', { name: 'instructions', rows: '2', maxlength: '2000', required: true });
    const due = h('input', { type: 'datetime-local', name: 'due_at', required: true, value: localInput(Date.now() + 48 * 3600e3) });
    const form = h(
      'form',
      { class: 'task-form', 'aria-label': t('newTask') },
      h('h4', null, t('newTask')),
      field(t('taskKind'), kind),
      field(t('instructions'), instr),
      field(t('dueAt'), due),
      h('button', { type: 'submit', class: 'secondary' }, t('newTask')),
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void (async () => {
        clear(this.msg);
        try {
          await call(() =>
            api.POST('/v1/cases/{id}/tasks', {
              params: { path: { id: d.id } },
              body: { kind: kind.value as TaskView['kind'], instructions: instr.value.trim(), due_at: new Date(due.value).toISOString() },
            }),
          );
          await this.load(d.id, true);
        } catch (err) {
          this.error(err);
        }
      })();
    });
    return section(
      t('tasks'),
      h(
        'ul',
        { class: 'tasks' },
        this.tasks.map((tk) =>
          h(
            'li',
            { 'data-task': tk.id },
            h('strong', null, tk.kind_zh),
            ` · ${tc(tk.status)} · ${t('dueAt')} ${fmtTime(tk.due_at)}${tk.overdue ? ' · ' + t('light_red') : ''}`,
            h('div', null, tk.instructions),
            tk.note ? h('div', { class: 'muted' }, tk.note) : null,
            mediaList(tk.media, this.media, `${t('taskMedia')} ${tk.kind_zh}`),
            tk.status === 'assigned' || tk.status === 'acknowledged'
              ? h(
                  'button',
                  {
                    type: 'button',
                    class: 'secondary small',
                    on: {
                      click: () =>
                        void (async () => {
                          try {
                            await call(() =>
                              api.POST('/v1/cases/{id}/tasks/{task}/cancel', {
                                params: { path: { id: d.id, task: tk.id } },
                                body: { reason: '调度员撤回' },
                              }),
                            );
                            await this.load(d.id, true);
                          } catch (err) {
                            this.error(err);
                          }
                        })(),
                    },
                  },
                  t('cancelTask'),
                )
              : null,
          ),
        ),
      ),
      ['closed', 'rejected'].includes(d.status) ? null : form,
    );
  }
}

function fact(k: string, v: string): HTMLElement[] {
  return [h('dt', null, k), h('dd', null, v)] as unknown as HTMLElement[];
}

function section(title: string, ...content: (HTMLElement | null)[]): HTMLElement {
  const id = nextId('sec');
  return h('section', { 'aria-labelledby': id }, h('h3', { id }, title), content);
}

function link(text: string, go: () => void): HTMLElement {
  return h('button', { type: 'button', class: 'linklike', on: { click: go } }, text.slice(-8));
}

function localInput(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}
