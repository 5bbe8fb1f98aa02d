// The map: the scope's grids from GET /v1/grids/shapes (only the visible
// box, simplified by zoom), coloured by open and overdue cases from
// GET /v1/cases/counts?by=grid. No tile server on a government intranet:
// the boundaries are the basemap; a tile URL may be configured
// (<meta name="gridwork-tiles" content="https://…/{z}/{x}/{y}.png">).
// Past 5,000 grids in view the server answers with counties instead (with
// how many grids each has in view): they are coloured by the sum of their
// grids' counts and zoom in when clicked. The scope's open cases are
// clustered markers on top (leaflet.markercluster).
import L from './lf';
import 'leaflet/dist/leaflet.css';
import 'leaflet.markercluster';
import 'leaflet.markercluster/dist/MarkerCluster.css';
import { api, call, type CaseView, type Schemas } from './api/client';
import { h } from './dom';
import { categoryName, channelName, t } from './i18n';

export type Count = Schemas['CaseCount'];

/** Open and overdue cases per channel or grid; null when the server has no such endpoint. */
export async function fetchCounts(by: 'grid' | 'channel', centre?: string): Promise<Map<string, Count> | null> {
  try {
    const body = await call(() => api.GET('/v1/cases/counts', { params: { query: { by, centre } } }));
    return new Map(body.items.map((c) => [c.key, c]));
  } catch {
    return null;
  }
}

type Shapes = Schemas['GridShapes'];

type Props = { code: string; name?: string; centre?: string | null; level?: 'grid' | 'county'; grids?: number | null };

const MARKER_PAGES = 10; // 10 × 200: the 2,000 open cases nearest the head of the queue

function markerLabel(c: CaseView): string {
  return `${channelName(c)} · ${categoryName(c.category)} · ${c.id.slice(-8)}`;
}

export class GridMap {
  readonly el: HTMLElement;
  private mapEl: HTMLElement;
  private map: L.Map | null = null;
  private layer: L.GeoJSON | null = null;
  private counts = new Map<string, Count>();
  private gen = 0;
  private fitted = false;
  private canvas: L.Canvas | null = null;
  status: HTMLElement;
  /** Draws done, and how long the last took (fetch to painted layer), for the tests. */
  draws = 0;
  lastDrawMs = 0;
  /** The last draw's features and their level. */
  lastFeatures = 0;
  lastLevel: 'grid' | 'county' | '' = '';
  private clusters: L.MarkerClusterGroup | null = null;
  private showCases: HTMLInputElement;
  private casesGen = 0;
  private casesAt = 0;
  /** Case markers placed (for the tests). */
  markers = 0;

  constructor(
    private pick: (grid: string) => void,
    private centre: () => string | undefined,
    private openCase: (id: string) => void,
  ) {
    this.mapEl = h('div', { class: 'map', id: 'map', role: 'application', 'aria-label': t('map') });
    // Keyboard: Enter or Space on a focused case marker opens its case, on
    // a cluster zooms into it (as a click does).
    this.mapEl.addEventListener('keydown', (e) => {
      const el = (e.target as HTMLElement).closest<HTMLElement>('.case-marker, .case-cluster');
      if (!el || (e.key !== 'Enter' && e.key !== ' ')) return;
      e.preventDefault();
      e.stopPropagation();
      el.click();
    });
    this.status = h('p', { class: 'muted', role: 'status' });
    this.showCases = h('input', {
      type: 'checkbox',
      id: 'show-cases',
      checked: true,
      on: { change: () => this.toggleCases() },
    });
    this.el = h(
      'section',
      { class: 'map-page', 'aria-label': t('map') },
      h(
        'div',
        { class: 'map-bar' },
        h('p', { class: 'muted' }, `${t('tileUrlHint')} · ${t('mapLegend')} · ${t('clickGridHint')} · ${t('clickCountyHint')}`),
        h('span', { class: 'check' }, this.showCases, h('label', { for: 'show-cases' }, t('showCases'))),
      ),
      this.mapEl,
      this.status,
      h('ul', { class: 'grid-list', 'aria-label': t('filterGrid') }),
    );
  }

  get zoom(): number {
    return this.map?.getZoom() ?? -1;
  }

  /** Sets the view (the tests' hook): west, south, east, north. */
  fit(box: [number, number, number, number]): void {
    const [w, s, e, n] = box;
    this.map?.fitBounds(
      [
        [s, w],
        [n, e],
      ],
      { animate: false },
    );
  }

  /** Names the markers again (the category names arrived, or the language changed). */
  relabel(): void {
    this.clusters?.eachLayer((l) => {
      const m = l as L.Marker & { caseView?: CaseView };
      if (!m.caseView) return;
      m.options.title = markerLabel(m.caseView);
      m.getElement()?.setAttribute('title', m.options.title);
    });
  }

  private toggleCases(): void {
    if (!this.map || !this.clusters) return;
    if (this.showCases.checked) this.clusters.addTo(this.map);
    else this.clusters.remove();
  }

  /** The open cases of the scope (up to 2,000) as clustered markers. */
  async loadCases(): Promise<void> {
    const map = this.map;
    if (!map) return;
    const gen = ++this.casesGen;
    this.casesAt = Date.now();
    const cases: CaseView[] = [];
    let cursor: string | undefined;
    try {
      for (let i = 0; i < MARKER_PAGES; i++) {
        const page = await call(() =>
          api.GET('/v1/cases', { params: { query: { status: 'open', centre: this.centre(), limit: 200, cursor } } }),
        );
        if (gen !== this.casesGen) return;
        cases.push(...page.items);
        cursor = page.next_cursor ?? undefined;
        if (!cursor) break;
      }
    } catch {
      if (gen !== this.casesGen) return;
    }
    this.clusters ??= L.markerClusterGroup({
      showCoverageOnHover: false,
      chunkedLoading: true,
      maxClusterRadius: 50,
      disableClusteringAtZoom: 18, // ~10 m apart are separate markers there
      iconCreateFunction: (cluster) => {
        const children = cluster.getAllChildMarkers() as (L.Marker & { caseView?: CaseView })[];
        const over = children.some((m) => m.caseView?.overdue);
        const emer = children.some((m) => m.caseView?.urgency === 'emergency');
        const n = cluster.getChildCount();
        const cls = ['case-cluster', n < 10 ? 'small' : n < 100 ? 'medium' : 'large'];
        if (over) cls.push('overdue');
        if (emer) cls.push('emergency');
        return L.divIcon({ html: h('span', null, String(n)), className: cls.join(' '), iconSize: L.point(36, 36) });
      },
    });
    const markers: L.Marker[] = [];
    for (const c of cases) {
      if (c.lat == null || c.lon == null) continue;
      const cls = ['case-marker'];
      if (c.overdue) cls.push('overdue');
      if (c.urgency === 'emergency') cls.push('emergency');
      const m = L.marker([c.lat, c.lon], {
        icon: L.divIcon({ className: cls.join(' '), iconSize: L.point(16, 16) }),
        title: markerLabel(c),
        keyboard: true,
      }) as L.Marker & { caseView?: CaseView };
      m.caseView = c;
      m.on('click', () => this.openCase(c.id));
      m.on('add', () => m.getElement()?.setAttribute('data-case', c.id));
      markers.push(m);
    }
    this.clusters.clearLayers();
    this.clusters.addLayers(markers);
    this.markers = markers.length;
    if (this.showCases.checked && !map.hasLayer(this.clusters)) this.clusters.addTo(map);
  }

  show(): void {
    if (!this.map) {
      this.map = L.map(this.mapEl, { preferCanvas: false, zoomSnap: 0.5, inertia: false, maxZoom: 19 }).setView([37.5, 122.1], 11);
      const tiles = document.querySelector<HTMLMetaElement>('meta[name="gridwork-tiles"]')?.content;
      if (tiles) L.tileLayer(tiles, { maxZoom: 18 }).addTo(this.map);
      this.map.on('moveend', () => void this.refresh());
    }
    this.map.invalidateSize();
    void this.refresh();
    // The markers again when shown after a while (live events move the queue, not the map).
    if (Date.now() - this.casesAt > 30_000) void this.loadCases();
  }

  async refresh(): Promise<void> {
    const map = this.map;
    if (!map) return;
    const gen = ++this.gen;
    const t0 = performance.now();
    const b = map.getBounds();
    // The server refuses a box outside the globe (Leaflet's view may wrap).
    const clamp = (x: number, m: number) => Math.max(-m, Math.min(m, x));
    const bbox = [clamp(b.getWest(), 180), clamp(b.getSouth(), 90), clamp(b.getEast(), 180), clamp(b.getNorth(), 90)]
      .map((x) => x.toFixed(5))
      .join(',');
    const zoom = Math.round(map.getZoom());
    const [shapes, counts] = await Promise.all([
      call(() => api.GET('/v1/grids/shapes', { params: { query: { bbox, zoom } } })).catch((): Shapes | null => null),
      fetchCounts('grid', this.centre()),
    ]);
    if (gen !== this.gen) return;
    if (counts) this.counts = counts;
    if (!shapes) {
      this.status.textContent = '—';
      return;
    }
    const counties = shapes.features.some((f) => (f.properties as Props).level === 'county');
    const countyCounts = counties ? this.countyCounts(shapes) : null;
    const countOf = (p: Props) => (p.level === 'county' ? countyCounts?.get(p.code) : this.counts.get(p.code));
    // A tooltip open on the old layer (the pointer over it) goes with it.
    this.layer?.eachLayer((l) => l.closeTooltip());
    this.layer?.remove();
    // SVG keeps one element per grid (hover, tests); past ~1,500 grids in
    // view the canvas renderer draws several times faster.
    this.canvas ??= L.canvas({ padding: 0.2 });
    const many = shapes.features.length > 1500;
    this.layer = L.geoJSON(shapes as unknown as GeoJSON.FeatureCollection, {
      ...(many ? { renderer: this.canvas } : {}),
      style: (f) => this.style(countOf(f?.properties as Props), (f?.properties as Props).level === 'county'),
      onEachFeature: (f, layer) => {
        const p = f.properties as Props;
        const c = countOf(p);
        layer.bindTooltip(this.label(p, c));
        layer.on('click', () => this.choose(p, layer as L.Polygon));
        layer.on('add', () => {
          const path = (layer as L.Path).getElement();
          // The list under the map is the accessible way to pick a grid.
          if (path) path.setAttribute(p.level === 'county' ? 'data-county' : 'data-grid', p.code);
        });
      },
    }).addTo(map);
    const byCode = new Map<string, L.Polygon>();
    this.layer.eachLayer((l) => byCode.set(((l as L.Polygon).feature?.properties as Props).code, l as L.Polygon));
    if (!this.fitted && shapes.features.length) {
      this.fitted = true;
      map.fitBounds(this.layer.getBounds(), { animate: false });
    }
    this.status.textContent = `${shapes.features.length} ${counties ? t('county') : t('grid')}${shapes.truncated ? ' · ' + t('zoomIn') : ''}`;
    this.draws += 1;
    this.lastDrawMs = performance.now() - t0;
    this.lastFeatures = shapes.features.length;
    this.lastLevel = counties ? 'county' : shapes.features.length ? 'grid' : '';
    // Keyboard and screen readers: every visible grid as a button too.
    const list = this.el.querySelector('.grid-list')!;
    // Keep the keyboard's place: the entry focused before is focused again.
    const had = list.contains(document.activeElement) ? (document.activeElement as HTMLElement) : null;
    const key = had ? (had.dataset.grid ?? had.dataset.county) : undefined;
    list.replaceChildren(
      ...shapes.features.slice(0, 200).map((f) => {
        const p = f.properties as Props;
        const c = countOf(p);
        const county = p.level === 'county';
        return h(
          'li',
          null,
          h(
            'button',
            {
              type: 'button',
              class: 'linklike',
              [county ? 'data-county' : 'data-grid']: p.code,
              title: county ? t('zoomToCounty') : t('filterGrid'),
              on: { click: () => this.choose(p, byCode.get(p.code)) },
            },
            county
              ? `${t('county')} ${p.code} · ${p.grids ?? 0} ${t('gridsInView')} (${c?.open ?? 0}/${c?.overdue ?? 0})`
              : `${p.name ?? p.code} (${c?.open ?? 0}/${c?.overdue ?? 0})`,
          ),
        );
      }),
    );
    if (key) list.querySelector<HTMLElement>(`button[data-grid="${key}"], button[data-county="${key}"]`)?.focus();
  }

  /** A grid filters the queue; a county is zoomed to. */
  private choose(p: Props, layer: L.Polygon | undefined): void {
    if (p.level !== 'county') return this.pick(p.code);
    if (layer && this.map) this.map.fitBounds(layer.getBounds(), { animate: false });
  }

  private label(p: Props, c: Count | undefined): string {
    const counts = `${t('open')} ${c?.open ?? 0} · ${t('overdueN')} ${c?.overdue ?? 0}`;
    if (p.level === 'county') return `${t('county')} ${p.code} · ${p.grids ?? 0} ${t('gridsInView')} · ${counts}`;
    return `${p.name ?? p.code} · ${counts}`;
  }

  /** Each county's open and overdue cases: the sum over the grids under its code. */
  private countyCounts(shapes: Shapes): Map<string, Count> {
    const out = new Map<string, Count>();
    const codes = new Set(shapes.features.map((f) => (f.properties as Props).code));
    for (const c of this.counts.values()) {
      const county = c.key.slice(0, 6);
      if (!codes.has(county)) continue;
      const o = out.get(county) ?? { key: county, open: 0, overdue: 0 };
      o.open += c.open;
      o.overdue += c.overdue;
      out.set(county, o);
    }
    return out;
  }

  private style(c: Count | undefined, county: boolean): L.PathOptions {
    const open = c?.open ?? 0;
    const k = county ? 10 : 1; // a county holds many grids: a coarser scale
    const fill = open === 0 ? '#e8f0e8' : open < 3 * k ? '#9ecae1' : open < 10 * k ? '#4292c6' : '#08519c';
    return {
      color: c && c.overdue > 0 ? '#c62828' : '#555',
      weight: c && c.overdue > 0 ? 3 : 1,
      fillColor: fill,
      fillOpacity: 0.6,
    };
  }
}
