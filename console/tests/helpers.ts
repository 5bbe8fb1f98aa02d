import AxeBuilder from '@axe-core/playwright';
import { expect, type APIRequestContext, type Page, type TestInfo } from '@playwright/test';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const PASSWORD = 'gridwork-demo';
export const DEMO = { lat: 37.5095, lon: 122.115, grid: '371002003003004', centre: '371002003' };

export function consoleUrl(query = ''): string {
  const base = process.env.CONSOLE_URL!;
  return base + query;
}

export function apiUrl(path: string): string {
  return process.env.GW_API_URL! + path;
}

export async function token(request: APIRequestContext, username: string): Promise<string> {
  const r = await request.post(apiUrl('/v1/auth/token'), {
    data: { grant_type: 'password', username, password: PASSWORD },
  });
  expect(r.ok()).toBeTruthy();
  return (await r.json()).access_token as string;
}

/** A grid worker's report at the demo point (through the API, as a phone would). */
/**
 * The next free spot for a report: a 21 × 21 lattice 0.0001° apart (~10 m)
 * around the demo point, all in grid 371002003003004. The counter is in a
 * file per gridwork instance, so workers restarted after a failure (or a
 * `--repeat-each`) never reuse a spot: reuse would link the report to an
 * earlier case instead of opening one.
 */
function nextSpot(): number {
  const file = join(tmpdir(), `gw-console-spot-${new URL(process.env.GW_API_URL!).port}`);
  const n = existsSync(file) ? Number(readFileSync(file, 'utf8')) + 1 : 0;
  writeFileSync(file, String(n));
  if (n >= 441) throw new Error('out of report spots: restart gridwork');
  return n;
}

let spot = -1;

/** A word no other test's reports contain, to find this test's cases. */
export function tag(): string {
  return 't' + randomUUID().slice(0, 8);
}

export async function report(
  request: APIRequestContext,
  workerToken: string,
  opts: { description?: string; category?: string; urgency?: string; sameSpot?: boolean; media?: string[] } = {},
): Promise<string> {
  const id = randomUUID();
  if (!opts.sameSpot || spot < 0) spot = nextSpot();
  const dx = ((spot % 21) - 10) * 0.0001;
  const dy = (Math.floor(spot / 21) - 10) * 0.0001;
  const r = await request.post(apiUrl('/v1/reports'), {
    headers: { Authorization: `Bearer ${workerToken}` },
    data: {
      id,
      occurred_at: new Date().toISOString(),
      location: { lat: DEMO.lat + dy, lon: DEMO.lon + dx, accuracy_m: 10 },
      address: '威海市环翠区',
      category: opts.category ?? 'dispute.neighbourhood',
      ...(opts.urgency ? { urgency: opts.urgency } : {}),
      ...(opts.media ? { media: opts.media } : {}),
      description: opts.description ?? '楼上装修噪音扰民，多次协商未果',
      parties: [{ name: '张三', phone: '13800000000' }],
    },
  });
  expect(r.status(), await r.text()).toBeLessThan(300);
  return id;
}

/** The case a report opened (waits for the pipeline). */
export async function caseOf(request: APIRequestContext, workerToken: string, reportId: string): Promise<string> {
  let caseId: string | null = null;
  await expect
    .poll(
      async () => {
        const r = await request.get(apiUrl(`/v1/reports/${reportId}`), { headers: { Authorization: `Bearer ${workerToken}` } });
        caseId = (await r.json()).case_id ?? null;
        return caseId;
      },
      { timeout: 15_000 },
    )
    .not.toBeNull();
  return caseId!;
}

export async function signIn(page: Page, username = 'dispatcher-1', query = ''): Promise<void> {
  await page.goto(consoleUrl(query));
  await page.getByLabel('用户名').fill(username);
  await page.getByLabel('密码').fill(PASSWORD);
  await page.getByRole('button', { name: '登录' }).click();
  await expect(page.locator('#who')).toContainText(username);
}

export function row(page: Page, caseId: string) {
  return page.locator(`.row[data-id="${caseId}"]`);
}

/** One screenshot per test, into test-results/screens/. */
export async function shot(page: Page, info: TestInfo, name?: string): Promise<void> {
  mkdirSync('test-results/screens', { recursive: true });
  const file = `test-results/screens/${name ?? info.title.replace(/[^\p{L}\p{N}]+/gu, '-').toLowerCase()}.png`;
  await page.screenshot({ path: file, fullPage: false });
}

/** axe-core: no serious or critical violations on the page as it is. */
export async function axe(page: Page): Promise<void> {
  const res = await new AxeBuilder({ page }).analyze();
  const bad = res.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(
    bad.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`),
  ).toEqual([]);
}

/** Fails the test on any CSP violation or uncaught page error. */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) errors.push(m.text());
  });
  return errors;
}

/**
 * A screenshot for docs/console/ (the documentation's pictures), only with
 * GW_DOC_SHOTS=1: a normal run leaves the committed pictures alone.
 */
export async function docShot(page: Page, name: string): Promise<void> {
  if (process.env.GW_DOC_SHOTS !== '1') return;
  await page.screenshot({ path: join('..', 'docs', 'console', `${name}.png`), fullPage: false });
}

/** A small JPEG drawn by the browser (a canvas), as the phone would upload it. */
export async function jpeg(page: Page, label: string): Promise<Buffer> {
  const bytes = await page.evaluate(async (text) => {
    const c = document.createElement('canvas');
    c.width = 320;
    c.height = 240;
    const g = c.getContext('2d')!;
    g.fillStyle = '#3b7dd8';
    g.fillRect(0, 0, 320, 240);
    g.fillStyle = '#f4c542';
    g.fillRect(40, 60, 240, 120);
    g.fillStyle = '#000';
    g.font = '24px sans-serif';
    g.fillText(text, 60, 130);
    const blob = await new Promise<Blob>((r) => c.toBlob((b) => r(b!), 'image/jpeg', 0.8));
    return Array.from(new Uint8Array(await blob.arrayBuffer()));
  }, label);
  return Buffer.from(bytes);
}

/** Uploads bytes as the grid worker (POST /v1/media) and gives the medium's id. */
export async function upload(request: APIRequestContext, workerToken: string, body: Buffer, contentType = 'image/jpeg'): Promise<string> {
  const r = await request.post(apiUrl('/v1/media'), {
    headers: { Authorization: `Bearer ${workerToken}`, 'Content-Type': contentType },
    data: body,
  });
  expect(r.status(), await r.text()).toBe(201);
  return (await r.json()).id as string;
}

/** A one-second MP4 recorded by the browser (MediaRecorder over a canvas). */
export async function mp4(page: Page): Promise<Buffer> {
  const bytes = await page.evaluate(async () => {
    const c = document.createElement('canvas');
    c.width = 160;
    c.height = 120;
    const g = c.getContext('2d')!;
    const rec = new MediaRecorder(c.captureStream(10), { mimeType: 'video/mp4' });
    const chunks: Blob[] = [];
    rec.ondataavailable = (e) => chunks.push(e.data);
    rec.start();
    for (let i = 0; i < 10; i++) {
      g.fillStyle = `hsl(${i * 36}, 80%, 50%)`;
      g.fillRect(0, 0, 160, 120);
      await new Promise((r) => setTimeout(r, 100));
    }
    const stopped = new Promise((r) => (rec.onstop = r));
    rec.stop();
    await stopped;
    return Array.from(new Uint8Array(await new Blob(chunks).arrayBuffer()));
  });
  return Buffer.from(bytes);
}
