// Starts `gridwork up` (GW_BIN, default the workspace's target/debug/gridwork)
// on free ports with a fresh data directory, and opens the console gridwork
// itself serves at /console/ (the bundle embedded in that binary, with its
// CSP). GW_CONSOLE_PREVIEW=1 serves the freshly built dist/ through `vite
// preview` instead (it proxies /v1 to gridwork and applies the same CSP), for
// working on the page without rebuilding gridwork. With CONSOLE_URL set
// (a running deployment), only GW_API_URL (default: its origin) is used.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function waitFor(url: string, ms: number, proc?: ChildProcess): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    if (proc && proc.exitCode !== null) throw new Error(`${url}: process exited with ${proc.exitCode}`);
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > until) throw new Error(`${url} did not come up in ${ms} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export default async function globalSetup(): Promise<() => Promise<void>> {
  const procs: ChildProcess[] = [];
  let dataDir: string | null = null;
  if (process.env.CONSOLE_URL) {
    process.env.GW_API_URL ??= new URL(process.env.CONSOLE_URL).origin;
    return async () => {};
  }
  const started = Date.now();
  if (!process.env.GW_API_URL) {
    const [api, admin] = [await freePort(), await freePort()];
    dataDir = mkdtempSync(join(tmpdir(), 'gw-console-'));
    mkdirSync('test-results', { recursive: true });
    const log = openSync('test-results/gridwork.log', 'w');
    const here = dirname(fileURLToPath(import.meta.url));
    const bin = process.env.GW_BIN ?? resolve(here, '../../target/debug/gridwork');
    const gw = spawn(bin, ['up'], {
      env: {
        // Only GRIDWORK_ variables it knows: any other (GRIDWORK_FOO) stops it.
        ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GRIDWORK_'))),
        GRIDWORK_DATA_DIR: dataDir,
        GRIDWORK_HTTP__LISTEN: `127.0.0.1:${api}`,
        GRIDWORK_HTTP__ADMIN_LISTEN: `127.0.0.1:${admin}`,
        // Reports link to an open case within 150 m by default; the tests
        // place each report ~11 m apart so each opens its own case (and
        // put two on one spot when they want a linked report).
        GRIDWORK_MEDIATION__LINK_DISTANCE_M: '5',
      },
      // Its banner and log, for when it does not come up.
      stdio: ['ignore', log, log],
    });
    procs.push(gw);
    process.env.GW_API_URL = `http://127.0.0.1:${api}`;
    await waitFor(`${process.env.GW_API_URL}/health/ready`, 120_000, gw);
  }
  if (!process.env.GW_CONSOLE_PREVIEW) {
    process.env.CONSOLE_URL = `${process.env.GW_API_URL}/console/`;
    await waitFor(process.env.CONSOLE_URL, 30_000);
    console.log(`gridwork ${process.env.GW_API_URL}, console served by it (${Date.now() - started} ms)`);
    return async () => {
      for (const p of procs.reverse()) p.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 500));
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    };
  }
  const preview = await freePort();
  const vite = spawn('npx', ['vite', 'preview', '--port', String(preview), '--strictPort', '--host', '127.0.0.1'], {
    env: { ...process.env, PREVIEW_PORT: String(preview) },
    stdio: ['ignore', 'ignore', 'inherit'],
    detached: true,
  });
  procs.push(vite);
  process.env.CONSOLE_URL = `http://127.0.0.1:${preview}/console/`;
  await waitFor(process.env.CONSOLE_URL, 30_000, vite);
  console.log(`gridwork ${process.env.GW_API_URL}, console ${process.env.CONSOLE_URL} (${Date.now() - started} ms)`);
  return async () => {
    for (const p of procs.reverse()) {
      try {
        if (p === vite && p.pid) process.kill(-p.pid, 'SIGTERM');
        else p.kill('SIGTERM');
      } catch {
        /* gone */
      }
    }
    await new Promise((r) => setTimeout(r, 500));
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
}
