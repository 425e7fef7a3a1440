import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Datastore } from './datastore.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MetricsScraper, dueForScrape, idleIntervalMs } from './metrics-scraper.js';

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

test('change-driven pace: an endpoint is due after routing near or since its last scrape, or at the idle age', () => {
  const idle = 1000;
  assert.equal(dueForScrape(-Infinity, -Infinity, 0, idle), true, 'never scraped');
  assert.equal(dueForScrape(-Infinity, 500, 600, idle), false, 'no routing, young metrics');
  assert.equal(dueForScrape(550, 500, 600, idle), true, 'routed since the last scrape started');
  assert.equal(
    dueForScrape(490, 500, 600, idle),
    true,
    'routed just before it: the scrape may have missed it',
  );
  assert.equal(dueForScrape(400, 500, 600, idle), false, 'routed long before the last scrape');
  assert.equal(dueForScrape(400, 500, 1500, idle), true, 'the idle age bounds staleness');
});

test('change-driven pace over real HTTP: the endpoint routed to is scraped again, its idle neighbour is not', async () => {
  const hits = new Map<string, number>();
  const servers = await Promise.all(
    [0, 1].map(async () => {
      const server = createServer((req, res) => {
        const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
        hits.set(address, (hits.get(address) ?? 0) + 1);
        res.end('vllm:num_requests_waiting 0\n');
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return server;
    }),
  );
  const [routed, quiet] = servers.map((s) => `127.0.0.1:${(s.address() as AddressInfo).port}`) as [
    string,
    string,
  ];
  const datastore = new Datastore();
  datastore.setEndpoints([{ address: routed }, { address: quiet }]);
  const scraper = new MetricsScraper(datastore, {
    intervalMs: 10,
    stalenessThresholdMs: () => 60_000,
    changeDriven: () => 'traffic',
  });
  try {
    await scraper.scrapeAll();
    scraper.start();
    scraper.noteTraffic();
    datastore.noteRouting(routed);
    while ((hits.get(routed) ?? 0) < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    // The quiet endpoint's next scrape is due only at the idle age (1 s); checked without a clock by dueForScrape above.
    assert.equal(hits.get(quiet), 1);
    assert.equal(datastore.get(routed)?.stale, false);
  } finally {
    await scraper.close();
    for (const s of servers) s.close();
  }
});

test('change-driven on trouble over real HTTP: routing alone brings no scrape, a request ended in trouble does', async () => {
  const hits = new Map<string, number>();
  const server = createServer((req, res) => {
    hits.set('n', (hits.get('n') ?? 0) + 1);
    res.end('vllm:num_requests_waiting 0\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const datastore = new Datastore();
  datastore.setEndpoints([{ address }]);
  const scraper = new MetricsScraper(datastore, {
    intervalMs: 10,
    stalenessThresholdMs: () => 60_000,
    changeDriven: () => 'trouble',
  });
  try {
    await scraper.scrapeAll();
    scraper.start();
    scraper.noteTraffic();
    datastore.noteRouting(address);
    await new Promise((resolve) => setTimeout(resolve, 100)); // ten ticks
    assert.equal(hits.get('n'), 1, 'the EPP counts what it routed itself');
    datastore.noteTrouble(address);
    while ((hits.get('n') ?? 0) < 2) await new Promise((resolve) => setTimeout(resolve, 5));
  } finally {
    await scraper.close();
    server.close();
  }
});

test('a late answer keeps the last metrics (their age decides); a refused connection marks the endpoint stale', async () => {
  let hang = false;
  const server = createServer((req, res) => {
    // A busy server: this answer comes after the scraper gave up.
    if (hang) setTimeout(() => res.end('vllm:num_requests_waiting 1\n'), 300);
    else res.end('vllm:num_requests_waiting 0\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const datastore = new Datastore();
  datastore.setEndpoints([{ address }]);
  const errors: unknown[] = [];
  const scraper = new MetricsScraper(datastore, {
    intervalMs: 10,
    timeoutMs: 50,
    onError: (_, error) => errors.push(error),
  });
  try {
    await scraper.scrapeAll();
    assert.equal(datastore.get(address)?.stale, false);
    hang = true;
    await scraper.scrapeAll();
    assert.match(String(errors[0]), /no answer within 50 ms/);
    assert.equal(datastore.get(address)?.stale, false, 'one late answer does not take the server out');
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await scraper.scrapeAll();
    assert.equal(errors.length, 2);
    assert.equal(datastore.get(address)?.stale, true, 'a server that refuses is gone');
  } finally {
    await scraper.close();
    server.close();
  }
});
