import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Datastore } from './datastore.js';
import { MetricsScraper, idleIntervalMs } from './metrics-scraper.js';

test('the idle pace is half the staleness threshold, between the fast pace and 1 s', () => {
  assert.equal(idleIntervalMs(50, 2000), 1000);
  assert.equal(idleIntervalMs(50, 200), 100);
  assert.equal(idleIntervalMs(50, 60), 50);
  assert.equal(idleIntervalMs(50, 60_000), 1000);
});

test('fast pace while requests arrive, idle pace after the active window, fast again at the next request', () => {
  const scraper = new MetricsScraper(new Datastore(), {
    intervalMs: 50,
    stalenessThresholdMs: () => 2000,
    activeWindowMs: 1000,
  });
  const now = performance.now();
  assert.equal(scraper.currentIntervalMs(now), 1000, 'idle before any traffic');
  scraper.noteTraffic();
  assert.equal(scraper.currentIntervalMs(performance.now()), 50);
  assert.equal(scraper.currentIntervalMs(performance.now() + 1500), 1000);
  const always = new MetricsScraper(new Datastore(), { intervalMs: 50 });
  assert.equal(always.currentIntervalMs(now + 60_000), 50, 'without a threshold the pace stays fast');
});
