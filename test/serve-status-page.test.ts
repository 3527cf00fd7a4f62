// The status page of `nuvola serve` in a real headless Chromium (Debian's `chromium`, installed
// by scripts/system-deps.mjs as `npm test`'s first step), driven by puppeteer-core: it shows the
// functions with their calls, the workers and instances, a live calls/s, and draws the chart.
// The screenshot it takes goes to the temporary folder, or with NUVOLA_UPDATE_SCREENSHOT=1 to
// docs/guides/img/status-page.png, the one docs/guides/serving.md shows.
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import puppeteer, { type Browser } from 'puppeteer-core';
import { createRuntime, type Runtime } from 'nuvola';
import { serve, type NuvolaServer } from 'nuvola/serve';
import { guestBytes } from './helpers.js';

const chromium = execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim();
const screenshot =
  process.env['NUVOLA_UPDATE_SCREENSHOT'] === '1'
    ? new URL('../docs/guides/img/status-page.png', import.meta.url).pathname
    : join(tmpdir(), `nuvola-status-page-${process.pid}.png`);

let rt: Runtime;
let server: NuvolaServer;
let browser: Browser;

beforeAll(async () => {
  rt = await createRuntime({ workers: 2, logger: () => {} });
  server = await serve(rt, { port: 0 });
  await server.publish('echo', guestBytes('core_echo'));
  await server.publish('hello', guestBytes('core_hello'));
  browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
  await rt?.close();
});

describe('status page', () => {
  it('shows the functions, workers and a live call rate, and draws the chart', async () => {
    const page = await browser.newPage();
    await page.setViewport({ width: 1000, height: 620 });
    await page.goto(`${server.url}/`);
    await page.waitForFunction(() => document.getElementById('state')?.textContent === 'live');
    expect(await page.$eval('#workers', (e) => Number(e.textContent))).toBeGreaterThan(0);

    // Calls while the page watches: 40 to echo, spread over a few of its polls.
    let stop = false;
    const load = (async () => {
      let n = 0;
      while (!stop) {
        await fetch(`${server.url}/functions/echo/invoke`, { method: 'POST', body: `call ${n++}` });
        await new Promise((r) => setTimeout(r, 20));
      }
      return n;
    })();
    await page.waitForFunction(() => Number(document.getElementById('rate')?.textContent) > 0, { timeout: 15_000 });
    await page.waitForFunction(() => Number(document.querySelector('tr[data-name="echo"] td:nth-child(2)')?.textContent) >= 40, {
      timeout: 20_000,
    });
    stop = true;
    const sent = await load;

    const rows = await page.$$eval('#functions tr', (trs) =>
      trs.map((tr) => Array.from(tr.querySelectorAll('td'), (td) => td.textContent)),
    );
    const echo = rows.find((r) => r[0] === 'echo')!;
    expect(Number(echo[1])).toBeGreaterThanOrEqual(40);
    expect(Number(echo[1])).toBeLessThanOrEqual(sent);
    expect(echo[7]).toMatch(/µs|ms/);
    expect(rows.find((r) => r[0] === 'hello')?.[1]).toBe('0');

    // The chart has drawn a line: some pixels of its colour.
    const blue = await page.$eval('#chart', (c) => {
      const canvas = c as HTMLCanvasElement;
      const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
      let n = 0;
      for (let i = 0; i < data.length; i += 4) if (data[i + 2]! > 150 && data[i]! < 100) n++;
      return n;
    });
    expect(blue).toBeGreaterThan(50);
    await page.screenshot({ path: screenshot });
  });

  it('says so when the server is gone', async () => {
    const other = await createRuntime({ workers: 1, logger: () => {} });
    const s = await serve(other, { port: 0 });
    const page = await browser.newPage();
    await page.goto(`${s.url}/`);
    await page.waitForFunction(() => document.getElementById('state')?.textContent === 'live');
    await s.close();
    await other.close();
    await page.waitForFunction(() => document.getElementById('state')?.textContent === 'unreachable', { timeout: 10_000 });
  });
});
