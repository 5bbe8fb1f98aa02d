// The map at province scale: a county dispatcher whose scope is all of
// Shandong (100,000 synthetic grids). Not part of the normal suite: run by
// scripts/bench-console-map.sh (GW_PROVINCE_BENCH=1, GW_API_URL set), which
// prepares the server; prints the timings and writes them to
// test-results/province.json.
import { expect, test, type Page } from '@playwright/test';
import { writeFileSync } from 'node:fs';
import { consoleUrl, PASSWORD, shot } from './helpers';

test.skip(process.env.GW_PROVINCE_BENCH !== '1', 'province benchmark: scripts/bench-console-map.sh');

const SHANDONG: [number, number, number, number] = [114.8, 34.3, 122.8, 38.5];
const JINAN: [number, number, number, number] = [116.55, 36.45, 117.45, 36.85]; // about zoom 10 in a 700 px map

type Draws = { draws: number; lastMs: number; features: number; level: string; markers: number; zoom: number };
const draws = (page: Page) => page.evaluate(() => window.__console!.mapDraws()) as Promise<Draws>;

/** Waits for the next finished draw after `before` (of `level` when given) and gives it and the time taken. */
async function nextDraw(page: Page, before: number, t0: number, level?: string): Promise<{ ms: number; d: Draws }> {
  await expect
    .poll(
      async () => {
        const d = await draws(page);
        return d.draws > before && (!level || d.level === level);
      },
      { timeout: 240_000, intervals: [25] },
    )
    .toBe(true);
  const ms = Date.now() - t0;
  // Moves may chain (a fit, then the first-draw fit): settle on the last.
  return { ms, d: await draws(page) };
}

async function pan(page: Page): Promise<number> {
  const box = (await page.locator('#map').boundingBox())!;
  const before = (await draws(page)).draws;
  const t0 = Date.now();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2 - 150, box.y + box.height / 2 - 80, { steps: 5 });
  await page.mouse.up();
  return (await nextDraw(page, before, t0)).ms;
}

test('province scale: counties at low zoom, grids in a city', async ({ page }, info) => {
  test.setTimeout(600_000);
  const out: Record<string, number | string> = {};
  await page.goto(consoleUrl('?page=map'));
  await page.getByLabel('用户名').fill('county-dispatcher-1');
  await page.getByLabel('密码').fill(PASSWORD);
  const t0 = Date.now();
  await page.getByRole('button', { name: '登录' }).click();
  const first = await nextDraw(page, 0, t0);
  out.signin_to_first_draw_ms = first.ms;
  out.first_draw_features = first.d.features;
  out.first_draw_level = first.d.level;
  out.first_draw_layer_ms = Math.round(first.d.lastMs);
  await page.waitForTimeout(3000); // the first draw fits the view to the grids once: let it settle

  let before = (await draws(page)).draws;
  let t = Date.now();
  await page.evaluate((b) => window.__console!.mapFit(b), SHANDONG);
  const prov = await nextDraw(page, before, t, 'county');
  out.fit_province_to_counties_ms = prov.ms;
  out.county_features = prov.d.features;
  out.county_layer_ms = Math.round(prov.d.lastMs);
  out.province_zoom = prov.d.zoom;
  await shot(page, info, 'province-counties');

  out.pan_province_ms = await pan(page);
  out.pan_province_level = (await draws(page)).level;

  before = (await draws(page)).draws;
  t = Date.now();
  await page.evaluate((b) => window.__console!.mapFit(b), JINAN);
  const city = await nextDraw(page, before, t, 'grid');
  out.zoom_city_to_grids_ms = city.ms;
  out.city_grid_features = city.d.features;
  out.city_layer_ms = Math.round(city.d.lastMs);
  out.city_zoom = city.d.zoom;
  await shot(page, info, 'province-city');

  out.pan_city_ms = await pan(page);
  out.pan_city_features = (await draws(page)).features;

  console.log('PROVINCE-BENCH ' + JSON.stringify(out));
  writeFileSync('test-results/province.json', JSON.stringify(out, null, 2) + '\n');
});
