// The map: the scope's grids from GET /v1/grids/shapes (only the visible
// box, simplified by zoom), coloured by open and overdue cases from
// GET /v1/cases/counts?by=grid. No tile server on a government intranet:
// the boundaries are the basemap; a tile URL may be configured
// (<meta name="gridwork-tiles" content="https://…/{z}/{x}/{y}.png">).
import L from 'leaflet';
import 'leaflet/dist/leaflet.css';
import { api, call, type Schemas } from './api/client';
import { h } from './dom';
import { t } from './i18n';

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

type Props = { code: string; name?: string; centre?: string };

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

  constructor(
    private pick: (grid: string) => void,
    private centre: () => string | undefined,
  ) {
    this.mapEl = h('div', { class: 'map', id: 'map', role: 'application', 'aria-label': t('map') });
    this.status = h('p', { class: 'muted', role: 'status' });
    this.el = h(
      'section',
      { class: 'map-page', 'aria-label': t('map') },
      h('p', { class: 'muted' }, `${t('tileUrlHint')} · ${t('mapLegend')} · ${t('clickGridHint')}`),
      this.mapEl,
      this.status,
      h('ul', { class: 'grid-list', 'aria-label': t('filterGrid') }),
    );
  }

  show(): void {
    if (!this.map) {
      this.map = L.map(this.mapEl, { preferCanvas: false, zoomSnap: 0.5, inertia: false }).setView([37.5, 122.1], 11);
      const tiles = document.querySelector<HTMLMetaElement>('meta[name="gridwork-tiles"]')?.content;
      if (tiles) L.tileLayer(tiles, { maxZoom: 18 }).addTo(this.map);
      this.map.on('moveend', () => void this.refresh());
    }
    this.map.invalidateSize();
    void this.refresh();
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
    this.layer?.remove();
    // SVG keeps one element per grid (hover, tests); past ~1,500 grids in
    // view the canvas renderer draws several times faster.
    this.canvas ??= L.canvas({ padding: 0.2 });
    const many = shapes.features.length > 1500;
    this.layer = L.geoJSON(shapes as unknown as GeoJSON.FeatureCollection, {
      ...(many ? { renderer: this.canvas } : {}),
      style: (f) => this.style((f?.properties as Props).code),
      onEachFeature: (f, layer) => {
        const p = f.properties as Props;
        const c = this.counts.get(p.code);
        layer.bindTooltip(`${p.name ?? p.code} · ${t('open')} ${c?.open ?? 0} · ${t('overdueN')} ${c?.overdue ?? 0}`);
        layer.on('click', () => this.pick(p.code));
        layer.on('add', () => {
          const path = (layer as L.Path).getElement();
          // The list under the map is the accessible way to pick a grid.
          if (path) path.setAttribute('data-grid', p.code);
        });
      },
    }).addTo(map);
    if (!this.fitted && shapes.features.length) {
      this.fitted = true;
      map.fitBounds(this.layer.getBounds(), { animate: false });
    }
    this.status.textContent = `${shapes.features.length} ${t('grid')}${shapes.truncated ? ' · ' + t('zoomIn') : ''}`;
    this.draws += 1;
    this.lastDrawMs = performance.now() - t0;
    // Keyboard and screen readers: every visible grid as a button too.
    const list = this.el.querySelector('.grid-list')!;
    list.replaceChildren(
      ...shapes.features.slice(0, 200).map((f) => {
        const p = f.properties as Props;
        const c = this.counts.get(p.code);
        return h(
          'li',
          null,
          h('button', { type: 'button', class: 'linklike', 'data-grid': p.code, on: { click: () => this.pick(p.code) } }, `${p.name ?? p.code} (${c?.open ?? 0}/${c?.overdue ?? 0})`),
        );
      }),
    );
  }

  private style(code: string): L.PathOptions {
    const c = this.counts.get(code);
    const open = c?.open ?? 0;
    const fill = open === 0 ? '#e8f0e8' : open < 3 ? '#9ecae1' : open < 10 ? '#4292c6' : '#08519c';
    return {
      color: c && c.overdue > 0 ? '#c62828' : '#555',
      weight: c && c.overdue > 0 ? 3 : 1,
      fillColor: fill,
      fillOpacity: 0.6,
    };
  }
}
