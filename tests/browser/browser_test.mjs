// Loads the semat web page in headless Debian chromium, opens examples/astronaut.png, drags its
// box, waits for the matte and checks that the alpha shown is a real matte (not blank). Saves a
// screenshot in OUT_DIR. Usage: node browser_test.mjs SEMAT_BINARY OUT_DIR
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const [semat, outDir] = process.argv.slice(2);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const imagePath = path.join(root, 'examples/astronaut.png');
const box = fs.readFileSync(path.join(root, 'examples/astronaut.box'), 'utf8').trim().split(',').map(Number);

function fail(message) {
  console.error(`browser test FAILED: ${message}`);
  process.exitCode = 1;
  throw new Error(message);
}

// Starts `semat serve` on a free loopback port and resolves with its URL from stdout.
function startServer() {
  const child = spawn(semat, ['serve', '--host', '127.0.0.1', '--port', '0', '--workers', '2'],
                      { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr.on('data', (d) => process.stderr.write(`[semat] ${d}`));
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('semat serve did not start in 20 s')), 20000);
    child.on('exit', (code) => reject(new Error(`semat serve exited with ${code}`)));
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/serving (http:\/\/127\.0\.0\.1:\d+\/)/);
      if (m) { clearTimeout(timer); resolve({ child, url: m[1] }); }
    });
  });
}

const { child, url } = await startServer();
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'semat-chromium-'));
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 1000 },
  });
  // Traffic may only go to the local server: anything else is aborted and fails the test.
  const offsite = [];
  await context.route((u) => !u.href.startsWith(url), (route) => {
    offsite.push(route.request().url());
    return route.abort();
  });
  const page = context.pages()[0] || await context.newPage();
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));

  await page.goto(url);
  await page.setInputFiles('#file', imagePath);
  await page.waitForFunction(() => document.querySelector('#status').textContent.includes('Image ready'),
                             null, { timeout: 30000 });

  // Drag the example box, converting image pixels to screen pixels of the scaled canvas.
  const rect = await page.locator('#canvas').boundingBox();
  const size = await page.evaluate(() => [document.querySelector('#canvas').width, document.querySelector('#canvas').height]);
  const sx = rect.width / size[0];
  const sy = rect.height / size[1];
  const started = Date.now();
  await page.mouse.move(rect.x + box[0] * sx + 1, rect.y + box[1] * sy + 1);
  await page.mouse.down();
  await page.mouse.move(rect.x + box[2] * sx - 1, rect.y + box[3] * sy - 1, { steps: 12 });
  await page.mouse.up();

  await page.waitForSelector('#results[data-ready]', { timeout: 180000 });
  console.log(`browser test: result shown ${((Date.now() - started) / 1000).toFixed(1)} s after the drag`);

  const stats = await page.evaluate(() => {
    const img = document.querySelector('#alpha');
    const c = document.createElement('canvas');
    c.width = img.naturalWidth;
    c.height = img.naturalHeight;
    const g = c.getContext('2d');
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    let fg = 0, bg = 0, sum = 0;
    for (let i = 0; i < d.length; i += 4) {
      sum += d[i];
      if (d[i] > 200) ++fg; else if (d[i] < 55) ++bg;
    }
    const n = d.length / 4;
    const shown = img.getBoundingClientRect();
    return { width: c.width, height: c.height, fg: fg / n, bg: bg / n, mean: sum / n,
             visible: shown.width > 50 && shown.height > 50 && !document.querySelector('#results').hidden };
  });
  console.log(`browser test: alpha ${stats.width}x${stats.height}, ${(100 * stats.fg).toFixed(1)}% foreground, ` +
              `${(100 * stats.bg).toFixed(1)}% background`);
  if (!stats.visible) fail('the alpha image is not visible');
  if (stats.width !== size[0] || stats.height !== size[1]) fail(`alpha is ${stats.width}x${stats.height}`);
  if (stats.fg < 0.05 || stats.bg < 0.05) fail(`alpha looks blank (foreground ${stats.fg}, background ${stats.bg})`);
  for (const id of ['cutout', 'composite'])
    if (!(await page.evaluate((i) => document.getElementById(i).naturalWidth, id))) fail(`${id} not shown`);

  const shot = path.join(outDir, 'semat_web.png');
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`browser test: screenshot ${shot}`);

  // A wrong file gives a readable message, not a broken page.
  await page.setInputFiles('#file', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hello') });
  await page.waitForSelector('#error:not([hidden])', { timeout: 10000 });
  const message = await page.textContent('#error');
  if (!message.includes('not a PNG, JPEG or WebP')) fail(`unexpected error text: ${message}`);

  if (offsite.length) fail(`requests left the machine: ${offsite.join(', ')}`);
  if (consoleErrors.length) fail(`console errors: ${consoleErrors.join(' | ')}`);
  console.log('browser test: OK');
} finally {
  if (context) await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
  // SIGTERM must drain and exit cleanly.
  child.removeAllListeners('exit');
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  child.kill('SIGTERM');
  const { code, signal } = await Promise.race([exited, new Promise((r) => setTimeout(() => r({ code: 'timeout' }), 15000))]);
  if (code !== 0) {
    console.error(`browser test FAILED: semat serve ended with ${code} ${signal || ''} after SIGTERM`);
    process.exitCode = 1;
  }
}
