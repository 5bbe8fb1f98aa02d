// Live updates, emergencies, a network drop, traffic lights, the map, the
// channel counts, 10,000 cases and the English switch.
import { expect, test, type Page, type Route } from '@playwright/test';
import { apiUrl, axe, caseOf, DEMO, report, row, shot, signIn, tag, token, watchErrors } from './helpers';

test('an emergency raises an alert that stays until acknowledged', async ({ page, request }, info) => {
  const errors = watchErrors(page);
  const w = await token(request, 'worker-1');
  await signIn(page);
  await expect(page.locator('#live')).toHaveText('实时连接正常');
  const cid = await caseOf(request, w, await report(request, w, { description: '燃气泄漏，需紧急处置', category: 'hazard.gas', urgency: 'emergency' }));
  const alert = page.locator(`.emergency-alert[data-id="${cid}"]`);
  await expect(alert).toBeVisible();
  await expect(alert).toContainText('紧急案件');
  // It stays through other work: a filter change and opening another page.
  await page.locator('#f-channel').selectOption('petition');
  await page.locator('#tab-map').click();
  await page.locator('#tab-list').click();
  await expect(alert).toBeVisible();
  await axe(page);
  await shot(page, info, 'emergency');
  await alert.getByRole('button', { name: '知悉' }).click();
  await expect(alert).toHaveCount(0);
  expect(errors).toEqual([]);
});

test('a network drop loses no update: the stream resumes with Last-Event-ID', async ({ page, request }, info) => {
  const errors = watchErrors(page);
  const w = await token(request, 'worker-1');
  const d = await token(request, 'dispatcher-1');
  const k = tag();
  const before = await caseOf(request, w, await report(request, w, { description: `断线前的案件 ${k}` }));
  await signIn(page, 'dispatcher-1', `?text=${k}`);
  await expect(page.locator('#live')).toHaveText('实时连接正常');
  await expect(row(page, before)).toBeVisible();
  const resumes: (string | null)[] = [];
  page.on('request', (r) => {
    if (r.url().includes('/stream')) resumes.push(r.headers()['last-event-id'] ?? null);
  });
  // The network goes down: the open stream is cut and new connections fail.
  await page.route('**/v1/centres/*/stream', (r: Route) => r.abort('internetdisconnected'));
  await page.evaluate(() => window.__console!.dropStream());
  await expect(page.locator('#live')).toHaveText('实时连接中断，正在重连…');
  // Meanwhile a new case arrives and the old one is claimed elsewhere.
  const during = await caseOf(request, w, await report(request, w, { description: `断线期间的案件 ${k}` }));
  const claim = await request.post(`${process.env.GW_API_URL}/v1/cases/${before}/claim`, { headers: { Authorization: `Bearer ${d}` }, data: {} });
  expect(claim.ok()).toBeTruthy();
  await expect(row(page, during)).toHaveCount(0);
  // The network comes back: the reconnect sends Last-Event-ID and gets both.
  await page.unroute('**/v1/centres/*/stream');
  await expect(page.locator('#live')).toHaveText('实时连接正常', { timeout: 20_000 });
  await expect(row(page, during)).toBeVisible();
  await expect(row(page, before)).toHaveAttribute('data-status', 'claimed');
  expect(resumes.filter((h) => h !== null).length).toBeGreaterThan(0);
  await shot(page, info, 'resumed');
  expect(errors).toEqual([]);
});

test('the stream asks for a new token: the page renews and reconnects; reset reloads the queue', async ({ page }, info) => {
  const errors = watchErrors(page);
  const streams: number[] = [];
  const renewals: string[] = [];
  let n = 0;
  await page.route('**/v1/centres/*/stream', async (route) => {
    n += 1;
    streams.push(n);
    // First connection: the token expired. Second: a reset. Then a normal one.
    if (n === 1) return route.fulfill({ contentType: 'text/event-stream', body: ': connected\n\nevent: token_expired\ndata: {}\n\n' });
    if (n === 2) return route.fulfill({ contentType: 'text/event-stream', body: ': connected\n\nid: 5\nevent: reset\ndata: {}\n\n' });
    return route.continue();
  });
  page.on('request', (r) => {
    if (r.url().endsWith('/v1/auth/token') && r.method() === 'POST' && (r.postData() ?? '').includes('refresh_token')) renewals.push(r.postData()!);
  });
  let queueLoads = 0;
  page.on('request', (r) => {
    if (/\/v1\/cases(\?|$)/.test(r.url())) queueLoads += 1;
  });
  await signIn(page);
  await expect.poll(() => streams.length, { timeout: 15_000 }).toBeGreaterThanOrEqual(3);
  // One renewal for the expired token (plus the attempt to resume on load).
  expect(renewals.length).toBeGreaterThanOrEqual(2);
  // The reset reloaded the queue (the first load, then the reload).
  expect(queueLoads).toBeGreaterThanOrEqual(2);
  await expect(page.locator('#who')).toContainText('dispatcher-1');
  await expect(page.locator('#live')).toHaveText('实时连接正常', { timeout: 15_000 });
  await shot(page, info, 'stream-renewed');
  expect(errors).toEqual([]);
});

/** Rewrites the queue's pages with `edit`. */
async function editQueue(page: Page, edit: (items: Record<string, unknown>[]) => void): Promise<void> {
  await page.route(/\/v1\/cases(\?|$)/, async (route) => {
    const res = await route.fetch();
    const body = await res.json();
    edit(body.items);
    await route.fulfill({ response: res, json: body });
  });
}

test('deadline lights: overdue red, near due amber, else green', async ({ page, request }, info) => {
  const w = await token(request, 'worker-1');
  const k = tag();
  for (let i = 0; i < 3; i++) await caseOf(request, w, await report(request, w, { description: `期限测试 ${k} ${i}` }));
  await editQueue(page, (items) => {
    if (items[0]) items[0].overdue = true;
    if (items[1]) items[1].due_at = new Date(Date.now() + 3 * 3600e3).toISOString();
  });
  await signIn(page, 'dispatcher-1', `?text=${k}&sort=created`);
  const rows = page.locator('.row');
  await expect(rows).toHaveCount(3);
  await expect(rows.nth(0)).toHaveAttribute('data-light', 'red');
  await expect(rows.nth(1)).toHaveAttribute('data-light', 'amber');
  await expect(rows.nth(2)).toHaveAttribute('data-light', 'green');
  await expect(rows.nth(0).locator('.light')).toHaveAttribute('title', '已超期');
  await shot(page, info, 'lights');
});

function square(code: string, lon: number, lat: number, d = 0.004) {
  return {
    type: 'Feature',
    id: code,
    properties: { code, centre: DEMO.centre },
    geometry: { type: 'MultiPolygon', coordinates: [[[[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]]] },
  };
}

/** The Rust side's contract, mocked until it lands: shapes and counts. */
async function mockMapApi(page: Page, bboxes: string[]): Promise<void> {
  await page.route('**/v1/grids/shapes?*', async (route) => {
    const u = new URL(route.request().url());
    bboxes.push(`${u.searchParams.get('bbox')}@${u.searchParams.get('zoom')}`);
    const features = [];
    for (let i = 0; i < 4; i++)
      for (let j = 0; j < 4; j++) features.push(square(`3710020030030${String(i * 4 + j + 1).padStart(2, '0')}`, 122.1 + i * 0.004, 37.5 + j * 0.004));
    await route.fulfill({ json: { type: 'FeatureCollection', features, truncated: false } });
  });
  await page.route('**/v1/cases/counts?*', async (route) => {
    const by = new URL(route.request().url()).searchParams.get('by');
    const items =
      by === 'grid'
        ? [
            { key: '371002003003004', open: 12, overdue: 2 },
            { key: '371002003003001', open: 1, overdue: 0 },
          ]
        : [
            { key: 'people_mediation', open: 7, overdue: 1 },
            { key: 'petition', open: 2, overdue: 0 },
          ];
    await route.fulfill({ json: { by, items } });
  });
}

/**
 * Whether the server has the map's endpoints (GET /v1/grids/shapes and
 * /v1/cases/counts, on main since 78150fd): then the map tests use them;
 * an older gridwork gets them mocked to the same contract.
 */
async function realMapApi(request: import('@playwright/test').APIRequestContext): Promise<boolean> {
  const d = await token(request, 'dispatcher-1');
  const r = await request.get(apiUrl('/v1/cases/counts?by=grid'), { headers: { Authorization: `Bearer ${d}` } });
  const s = await request.get(apiUrl('/v1/grids/shapes?bbox=122.0,37.4,122.2,37.6&zoom=12'), { headers: { Authorization: `Bearer ${d}` } });
  return r.ok() && s.ok();
}

test('the map draws the scope’s grids; clicking one filters the queue', async ({ page, request }, info) => {
  const errors = watchErrors(page);
  const real = await realMapApi(request);
  console.log(`map: ${real ? "the server's shapes and counts" : 'shapes and counts mocked'}`);
  const bboxes: string[] = [];
  if (real) {
    // A case in the demo grid, so it is coloured.
    const w = await token(request, 'worker-1');
    await caseOf(request, w, await report(request, w, { description: `地图测试 ${tag()}` }));
    page.on('request', (r) => {
      if (r.url().includes('/v1/grids/shapes')) {
        const u = new URL(r.url());
        bboxes.push(`${u.searchParams.get('bbox')}@${u.searchParams.get('zoom')}`);
      }
    });
  } else await mockMapApi(page, bboxes);
  await signIn(page);
  await page.locator('#tab-map').click();
  await expect(page).toHaveURL(/page=map/);
  const grid = page.locator(`path[data-grid="${DEMO.grid}"]`);
  await expect(grid).toBeVisible();
  if (real) expect(await page.locator('path[data-grid]').count()).toBeGreaterThan(1);
  else await expect(page.locator('path[data-grid]')).toHaveCount(16);
  expect(bboxes[0]).toMatch(/^[0-9.]+,[0-9.]+,[0-9.]+,[0-9.]+@\d+$/);
  // Overdue grids are outlined red (the mock has overdue cases; a fresh
  // server has none yet), and grids with open cases are filled darker.
  if (!real) await expect(grid).toHaveAttribute('stroke', '#c62828');
  await expect(grid).not.toHaveAttribute('fill', '#e8f0e8');
  await axe(page);
  await shot(page, info, 'map');
  await grid.click({ force: true });
  await expect(page).toHaveURL(new RegExp(`grid=${DEMO.grid}`));
  await expect(page).not.toHaveURL(/page=map/);
  await expect(page.locator('#f-grid')).toHaveValue(DEMO.grid);
  // A grid by keyboard: the list under the map.
  await page.locator('#tab-map').click();
  const other = page.locator(`.grid-list button[data-grid]:not([data-grid="${DEMO.grid}"])`).first();
  const code = await other.getAttribute('data-grid');
  await other.focus();
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(new RegExp(`grid=${code}`));
  expect(errors).toEqual([]);
});

test('counts per channel queue filter the queue', async ({ page, request }, info) => {
  const real = await realMapApi(request);
  if (real) {
    const w = await token(request, 'worker-1');
    await caseOf(request, w, await report(request, w, { description: `计数测试 ${tag()}` }));
  } else await mockMapApi(page, []);
  await signIn(page);
  const chip = page.locator('.chip[data-channel="people_mediation"]');
  await expect(chip).toContainText('人民调解');
  await expect(chip.locator('.n').first()).toHaveText(/^[1-9][0-9]*$/);
  await chip.click();
  await expect(page).toHaveURL(/channel=people_mediation/);
  await expect(page.locator('.chip[data-channel="people_mediation"]')).toHaveAttribute('aria-pressed', 'true');
  await shot(page, info, 'counts');
});

test('10,000 cases stay responsive (keyset pages, virtualised rows)', async ({ page }, info) => {
  const TOTAL = 10_000;
  const template = {
    report_id: '00000000-0000-4000-8000-000000000000', centre: DEMO.centre, channel: 'people_mediation', channel_zh: '人民调解',
    joint: [], priority: 3, category: 'dispute.neighbourhood', urgency: 'normal',
    hierarchy: { grid: DEMO.grid, community: '371002003003', street: DEMO.centre, county: '371002', city: '371000', province: '370000' },
    status: 'created', claimed_by: null, lease_until: null, suspended_from: null, outcome: null, satisfaction: null, petition_class: null,
    routing_rule: 'disputes', created_at: new Date().toISOString(), updated_at: new Date().toISOString(),
    due_at: new Date(Date.now() + 5 * 86400e3).toISOString(), accept_due_at: null, extended: false, overdue: false, version: 1,
  };
  await page.route('**/v1/centres/*/stream', (r) => r.abort()); // only the synthetic cases
  await page.route(/\/v1\/cases(\?|$)/, async (route) => {
    const u = new URL(route.request().url());
    const start = Number(u.searchParams.get('cursor') ?? '0');
    const limit = Number(u.searchParams.get('limit') ?? '50');
    const items = [];
    for (let i = start; i < Math.min(TOTAL, start + limit); i++)
      items.push({ ...template, id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, priority: (i % 5) + 1 });
    const next = start + limit < TOTAL ? String(start + limit) : null;
    await route.fulfill({ json: { items, next_cursor: next } });
  });
  await signIn(page);
  const t0 = Date.now();
  // Scroll to the end again and again: each time the next page loads.
  await expect
    .poll(
      async () =>
        page.evaluate(() => {
          const s = document.getElementById('queue-scroller')!;
          s.scrollTop = s.scrollHeight;
          return window.__console!.queueSize();
        }),
      { timeout: 60_000, intervals: [50] },
    )
    .toBe(TOTAL);
  const loadMs = Date.now() - t0;
  // Only the visible rows are in the DOM.
  const inDom = await page.locator('.row').count();
  expect(inDom).toBeLessThan(60);
  // A scroll to the middle renders at once.
  const scrollMs = await page.evaluate(async () => {
    const s = document.getElementById('queue-scroller')!;
    const t = performance.now();
    s.scrollTop = s.scrollHeight / 2;
    s.dispatchEvent(new Event('scroll'));
    await new Promise((r) => requestAnimationFrame(() => r(null)));
    return performance.now() - t;
  });
  expect(scrollMs).toBeLessThan(200);
  await expect(page.locator('.row[data-id="00000000-0000-4000-8000-000000005000"]')).toBeVisible();
  await expect(page.locator('.queue-footer')).toContainText('已显示 10000 件');
  console.log(`10,000 cases: loaded in ${loadMs} ms (200 per page), ${inDom} rows in the DOM, scroll to middle ${scrollMs.toFixed(1)} ms`);
  await shot(page, info, 'ten-thousand');
});

test('English switch', async ({ page }, info) => {
  await signIn(page);
  await page.locator('#lang').click();
  await expect(page.locator('#signout')).toHaveText('Sign out');
  await expect(page.locator('html')).toHaveAttribute('lang', 'en');
  await expect(page.getByLabel('Channel', { exact: true })).toBeVisible();
  await axe(page);
  await shot(page, info, 'english');
  await page.locator('#lang').click();
  await expect(page.locator('#signout')).toHaveText('退出');
});
