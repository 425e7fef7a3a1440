/**
 * The `llmisvc up` dashboard in a real headless Chromium (Debian's, provisioned as CHROMIUM_BIN; never downloaded):
 * the page loads from the gateway port without any outside resource, lists every endpoint with its role and live
 * numbers, and shows the routing decisions of requests sent through the gateway.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type BrowserContext } from 'playwright-core';
import { startLocalStack, type LocalStack } from '../src/local/index.js';
import { CHROMIUM_ARGS } from './harness/chromium.js';

const CHROMIUM_BIN = process.env['CHROMIUM_BIN'];

describe(
  'the dashboard in headless Chromium',
  { skip: CHROMIUM_BIN ? false : 'CHROMIUM_BIN not set (run through npm test)' },
  () => {
    let stack: LocalStack;
    let context: BrowserContext;
    let profile: string;
    const outside: string[] = [];

    before(async () => {
      stack = await startLocalStack({ port: 0 });
      profile = mkdtempSync(join(tmpdir(), 'llmisvc-chromium-'));
      context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM_BIN!,
        args: CHROMIUM_ARGS,
        headless: true,
        viewport: { width: 1280, height: 800 },
      });
      context.on('request', (r) => {
        if (!r.url().startsWith(stack.url)) outside.push(r.url());
      });
    });
    after(async () => {
      await context?.close();
      await stack?.stop();
      if (profile) rmSync(profile, { recursive: true, force: true });
    });

    it('lists the endpoints and the routing decisions of requests sent through the gateway', async () => {
      const system = 'You answer questions about the solar system. '.repeat(40);
      for (let i = 0; i < 8; i++) {
        const res = await fetch(`${stack.baseUrl}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            model: stack.model,
            max_tokens: 8,
            messages: [
              { role: 'system', content: i % 2 ? system : `Other topic ${i}. `.repeat(30) },
              { role: 'user', content: `Question ${i}` },
            ],
          }),
        });
        assert.equal(res.status, 200);
        await res.arrayBuffer();
      }
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(`${stack.url}/dashboard`);
      assert.equal(await page.title(), 'llmisvc · local stack');
      // Page functions run in the browser; passed as strings, they need no DOM types here.
      await page.waitForFunction("document.querySelectorAll('#endpoints tbody tr[data-pod]').length === 4");
      const pods = await page.$$eval('#endpoints tbody tr[data-pod]', (rows) =>
        rows.map((r) => r.getAttribute('data-pod')),
      );
      assert.deepEqual(
        pods,
        stack.endpoints.map((e) => e.pod),
      );
      await page.waitForFunction("document.querySelector('#total').textContent === '8'");
      const decisionText = await page.$eval('#decisions tbody', (b) => b.textContent ?? '');
      assert.match(decisionText, /POST \/default\/quickstart\/v1\/chat\/completions/);
      assert.match(decisionText, /quickstart-kserve-\d/);
      assert.match(await page.$eval('#up', (e) => e.textContent ?? ''), /^4 \/ 4$/);
      const shot = join(tmpdir(), 'llmisvc-dashboard.png');
      await page.screenshot({ path: shot, fullPage: true });
      console.log(`# dashboard screenshot: ${shot}`);
      assert.deepEqual(errors, []);
      assert.deepEqual(outside, [], 'the page loads nothing from outside the gateway');
    });
  },
);
