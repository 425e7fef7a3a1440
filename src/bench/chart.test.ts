import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatTick, lineChartSvg, niceTicks } from './chart.js';

describe('line chart', () => {
  it('chooses 1-2-5 ticks', () => {
    assert.deepEqual(niceTicks(0, 10), [0, 2, 4, 6, 8, 10]);
    assert.deepEqual(niceTicks(0, 0.9), [0, 0.2, 0.4, 0.6, 0.8, 1]);
    assert.deepEqual(niceTicks(5, 20, 3), [5, 10, 15, 20]);
    assert.deepEqual(niceTicks(3, 3), [3]);
  });

  it('formats ticks compactly', () => {
    assert.deepEqual([1500, 2_000_000, 0.25, 12].map(formatTick), ['1.5k', '2M', '0.25', '12']);
  });

  it('draws one line and legend entry per series, escaping text', () => {
    const svg = lineChartSvg({
      title: 'TTFT <p90>',
      xLabel: 'QPS',
      yLabel: 's',
      series: [
        {
          name: 'round-robin',
          points: [
            [5, 1],
            [10, 4],
            [20, 30],
          ],
        },
        {
          name: 'epp & prefix',
          points: [
            [5, 0.1],
            [10, 0.2],
            [20, NaN],
          ],
        },
      ],
    });
    assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.match(svg, /<\/svg>\n$/);
    assert.equal(svg.match(/<polyline /g)?.length, 2);
    assert.equal(svg.match(/<circle /g)?.length, 5, 'the NaN point is left out');
    assert.ok(svg.includes('TTFT &#60;p90&#62;'));
    assert.ok(svg.includes('epp &#38; prefix'));
    assert.ok(!/NaN|Infinity/.test(svg));
  });

  it('draws a log axis in powers of ten and survives empty series', () => {
    const svg = lineChartSvg({
      title: 't',
      xLabel: 'x',
      yLabel: 'y',
      logY: true,
      series: [
        {
          name: 'a',
          points: [
            [1, 0.05],
            [2, 80],
          ],
        },
      ],
    });
    for (const tick of ['0.01', '0.1', '1', '10', '100']) assert.ok(svg.includes(`>${tick}</text>`), tick);
    const empty = lineChartSvg({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 'a', points: [] }] });
    assert.ok(!/NaN|Infinity/.test(empty));
  });
});
