// The detail's photos, category names, emergencies across a reload, case
// markers and counties on the map.
import { expect, test, type Page } from '@playwright/test';
import { createHash } from 'node:crypto';
import { apiUrl, axe, caseOf, docShot, jpeg, mp4, report, row, shot, signIn, tag, token, upload, watchErrors } from './helpers';

/** Signs in again after a reload unless the session resumed by itself. */
async function afterReload(page: Page, username: string): Promise<void> {
  await expect(page.getByLabel('用户名').or(page.locator('#who'))).toBeVisible();
  if (await page.getByLabel('用户名').isVisible()) {
    await page.getByLabel('用户名').fill(username);
    await page.getByLabel('密码').fill('gridwork-demo');
    await page.getByRole('button', { name: '登录' }).click();
  }
  await expect(page.locator('#who')).toContainText(username);
}

test('a case’s photos and video: fetched with the token into blob URLs; one not uploaded yet says so', async ({ page, request }, info) => {
  const errors = watchErrors(page);
  const w = await token(request, 'worker-1');
  await page.goto(apiUrl('/health/ready'));
  const photo = await upload(request, w, await jpeg(page, `现场照片 ${tag()}`));
  expect(photo).toMatch(/^[0-9a-f]{64}$/);
  const clip = await upload(request, w, await mp4(page), 'video/mp4');
  const missing = createHash('sha256').update(tag()).digest('hex'); // named, never uploaded
  const cid = await caseOf(request, w, await report(request, w, { description: '路面塌陷，附现场照片', category: 'hazard.building', media: [photo, clip, missing] }));
  await signIn(page, 'dispatcher-1', `?case=${cid}`);
  const detail = page.locator('#detail');
  await expect(detail).toContainText('路面塌陷，附现场照片');
  const img = detail.locator(`img.thumb[data-media="${photo}"]`);
  await expect(img).toHaveAttribute('src', /^blob:/);
  await expect(img).toHaveAttribute('alt', /照片 1/);
  await expect.poll(() => img.evaluate((i: HTMLImageElement) => i.naturalWidth)).toBeGreaterThan(0);
  await expect(detail.locator(`.media-missing[data-media="${missing}"]`)).toContainText('照片尚未上传');
  // The video loads only when asked for, by keyboard here.
  const play = detail.locator(`.media-video[data-media="${clip}"] button`);
  await expect(play).toContainText('播放视频');
  await expect(detail.locator('video')).toHaveCount(0);
  await play.focus();
  await page.keyboard.press('Enter');
  const video = detail.locator(`.media-video[data-media="${clip}"] video`);
  await expect(video).toHaveAttribute('src', /^blob:/);
  await expect.poll(() => video.evaluate((v: HTMLVideoElement) => v.readyState)).toBeGreaterThanOrEqual(1);
  await axe(page);
  await shot(page, info, 'case-photo');
  await docShot(page, 'case-photo');
  // Another case: the first one's blob URL is revoked.
  const src = (await img.getAttribute('src'))!;
  const other = await caseOf(request, w, await report(request, w, { description: `另一案件 ${tag()}` }));
  await page.goto(page.url().replace(cid, other));
  await afterReload(page, 'dispatcher-1');
  await expect(detail).toContainText('另一案件');
  // The queue's first page is in (the other case's row itself may lie
  // outside the virtualised list's window when the queue is long).
  await expect(page.locator('.queue-footer')).toContainText(/已显示|没有/);
  // In this page (no reload): open the photo case, then the other one.
  await page.evaluate((id) => {
    history.pushState(null, '', location.href.replace(/case=[^&]+/, `case=${id}`));
    dispatchEvent(new PopStateEvent('popstate'));
  }, cid);
  await expect(img).toHaveAttribute('src', /^blob:/);
  const src2 = (await img.getAttribute('src'))!;
  expect(src2).not.toBe(src);
  await page.goBack();
  await expect(detail).toContainText('另一案件');
  // A revoked blob: URL no longer loads (an image: the CSP lets img-src use blob:).
  const revoked = await page.evaluate(
    (u) =>
      new Promise<boolean>((done) => {
        const i = new Image();
        i.onload = () => done(false);
        i.onerror = () => done(true);
        i.src = u;
      }),
    src2,
  );
  expect(revoked).toBe(true);
  expect(errors).toEqual([]);
});

test('category names: rows, the detail head and the filter’s list show the taxonomy’s names', async ({ page, request }, info) => {
  const errors = watchErrors(page);
  const w = await token(request, 'worker-1');
  const k = tag();
  const cid = await caseOf(request, w, await report(request, w, { description: `类别名称 ${k}`, category: 'dispute.neighbourhood' }));
  await signIn(page, 'dispatcher-1', `?text=${k}`);
  await expect(row(page, cid).locator('.cat')).toHaveText('邻里纠纷');
  await row(page, cid).locator('.open').click();
  await expect(page.locator('.case-title')).toContainText('邻里纠纷');
  // The filter offers codes labelled with names and still takes a prefix.
  await expect(page.locator('#category-list option[value="dispute.neighbourhood"]')).toHaveAttribute('label', '邻里纠纷');
  await page.locator('#f-category').fill('dispute');
  await page.locator('#f-category').press('Enter');
  await expect(page).toHaveURL(/category=dispute/);
  await expect(row(page, cid)).toBeVisible();
  await axe(page);
  // English names in English.
  await page.locator('#lang').click();
  await expect(row(page, cid).locator('.cat')).not.toHaveText('邻里纠纷');
  await expect(row(page, cid).locator('.cat')).not.toHaveText('dispute.neighbourhood');
  await expect(page.locator('#category-list option[value="dispute.neighbourhood"]')).not.toHaveAttribute('label', '邻里纠纷');
  await page.locator('#lang').click();
  await shot(page, info, 'category-names');
  expect(errors).toEqual([]);
});

test('an unacknowledged emergency is raised again after a reload; an acknowledged one is not', async ({ page, request }, info) => {
  const errors = watchErrors(page);
  const w = await token(request, 'worker-1');
  await signIn(page);
  await expect(page.locator('#live')).toHaveText('实时连接正常');
  const cid = await caseOf(request, w, await report(request, w, { description: `交通事故，有人受伤 ${tag()}`, category: 'emergency.accident', urgency: 'emergency' }));
  const alert = page.locator(`.emergency-alert[data-id="${cid}"]`);
  await expect(alert).toBeVisible();
  await expect(alert).not.toContainText('emergency.accident'); // its name instead
  await page.reload();
  await afterReload(page, 'dispatcher-1');
  await expect(alert).toBeVisible();
  await axe(page);
  await shot(page, info, 'emergency-after-reload');
  await alert.getByRole('button', { name: '知悉' }).focus();
  await page.keyboard.press('Enter');
  await expect(alert).toHaveCount(0);
  await page.reload();
  await afterReload(page, 'dispatcher-1');
  await expect(page.locator('.row').first()).toBeVisible();
  // The open emergencies were fetched and this one stays acknowledged.
  await page.waitForResponse((r) => r.url().includes('urgency=emergency'), { timeout: 5000 }).catch(() => {});
  await expect(alert).toHaveCount(0);
  expect(errors).toEqual([]);
});

test('the map shows open cases as clustered markers; clicking one opens its case', async ({ page, request }, info) => {
  const errors = watchErrors(page);
  const w = await token(request, 'worker-1');
  const d = await token(request, 'dispatcher-1');
  const k = tag();
  const cid = await caseOf(request, w, await report(request, w, { description: `地图标注 ${k}` }));
  // Neighbours, so the centre's view shows a cluster.
  for (const cat of ['environment.sanitation', 'order.public']) await report(request, w, { description: `地图标注邻近 ${k}`, category: cat });
  const c = await (await request.get(apiUrl(`/v1/cases/${cid}`), { headers: { Authorization: `Bearer ${d}` } })).json();
  expect(typeof c.lat).toBe('number');
  await signIn(page, 'dispatcher-1', '?page=map');
  await expect(page.locator('.case-cluster, .case-marker').first()).toBeVisible();
  await expect.poll(() => page.evaluate(() => window.__console!.mapDraws().markers)).toBeGreaterThan(0);
  await expect.poll(() => page.evaluate(() => window.__console!.mapDraws().level)).toBe('grid');
  expect((await page.evaluate(() => window.__console!.mapDraws())).features).toBeGreaterThan(0);
  await axe(page);
  await shot(page, info, 'map-markers');
  await docShot(page, 'map-markers');
  // Close in on the case: its own marker, by keyboard too.
  const d0 = (await page.evaluate(() => window.__console!.mapDraws())).draws;
  await page.evaluate(([lon, lat]) => window.__console!.mapFit([lon - 0.0002, lat - 0.0002, lon + 0.0002, lat + 0.0002]), [c.lon, c.lat]);
  await expect.poll(() => page.evaluate(() => window.__console!.mapDraws().draws)).toBeGreaterThan(d0);
  const marker = page.locator(`.case-marker[data-case="${cid}"]`);
  await expect(marker).toBeVisible();
  await expect(marker).toHaveAttribute('title', /邻里纠纷/);
  await marker.focus();
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(new RegExp(`case=${cid}`));
  await expect(page.locator('#detail')).toContainText(`地图标注 ${k}`);
  // The checkbox hides and shows them.
  await page.locator('#show-cases').uncheck();
  await expect(page.locator('.case-marker, .case-cluster')).toHaveCount(0);
  await page.locator('#show-cases').check();
  await expect(marker).toBeVisible();
  await marker.click();
  await expect(page).toHaveURL(new RegExp(`case=${cid}`));
  expect(errors).toEqual([]);
});

test('past 5,000 grids in view the map shows counties: coloured, described, zoomed to on click', async ({ page, request }, info) => {
  const errors = watchErrors(page);
  const w = await token(request, 'worker-1');
  await caseOf(request, w, await report(request, w, { description: `区县模式 ${tag()}` }));
  const box = (w0: number, s: number, e: number, n: number) => ({
    type: 'Polygon',
    coordinates: [
      [
        [w0, s],
        [e, s],
        [e, n],
        [w0, n],
        [w0, s],
      ],
    ],
  });
  const shapes: string[] = [];
  await page.route('**/v1/grids/shapes?**', async (route) => {
    shapes.push(route.request().url());
    await route.fulfill({
      contentType: 'application/geo+json',
      json: {
        type: 'FeatureCollection',
        truncated: false,
        features: [
          { type: 'Feature', id: '371002', properties: { code: '371002', level: 'county', grids: 4210 }, geometry: box(121.9, 37.3, 122.3, 37.6) },
          { type: 'Feature', id: '371003', properties: { code: '371003', level: 'county', grids: 3120 }, geometry: box(121.5, 37.0, 121.9, 37.4) },
        ],
      },
    });
  });
  await signIn(page, 'dispatcher-1', '?page=map');
  const county = page.locator('path[data-county="371002"]');
  await expect(county).toBeVisible();
  await expect.poll(() => page.evaluate(() => window.__console!.mapDraws())).toMatchObject({ level: 'county', features: 2 });
  // Its grids' open cases (the demo grid lies in it) colour it.
  await expect(county).not.toHaveAttribute('fill', '#e8f0e8');
  await county.hover({ force: true, position: { x: 10, y: 10 } });
  await expect(page.locator('.leaflet-tooltip')).toHaveCount(1); // none left from the layer before
  await expect(page.locator('.leaflet-tooltip').last()).toContainText('371002');
  await expect(page.locator('.leaflet-tooltip').last()).toContainText('4210');
  await axe(page);
  await shot(page, info, 'map-counties');
  // The list under the map, by keyboard: zooms to the county, no filter.
  const before = await page.evaluate(() => window.__console!.mapDraws().draws);
  const n = shapes.length;
  const item = page.locator('.grid-list button[data-county="371003"]');
  await expect(item).toContainText('3120');
  await item.focus();
  await page.keyboard.press('Enter');
  await expect.poll(() => page.evaluate(() => window.__console!.mapDraws().draws)).toBeGreaterThan(before);
  const bbox = new URL(shapes[shapes.length - 1]).searchParams.get('bbox')!.split(',').map(Number);
  expect(shapes.length).toBeGreaterThan(n);
  // The view now lies around 371003 (121.5–121.9, 37.0–37.4).
  expect((bbox[0] + bbox[2]) / 2).toBeCloseTo(121.7, 0);
  expect((bbox[1] + bbox[3]) / 2).toBeCloseTo(37.2, 0);
  await expect(page).not.toHaveURL(/grid=/);
  expect(errors).toEqual([]);
});
