/**
 * @module bench/chart
 * A small, dependency-free SVG line chart: series of (x, y) points with axes, "nice" tick values, a grid and a
 * legend. Pure: a chart spec in, an SVG document string out, so the same results always give the same file.
 */

export interface ChartSeries {
  name: string;
  points: readonly (readonly [number, number])[];
}

export interface LineChart {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly ChartSeries[];
  width?: number;
  height?: number;
  /** A logarithmic y axis, for latencies that span orders of magnitude between setups. */
  logY?: boolean;
}

const palette = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

/** Tick values covering [min, max] at a 1, 2 or 5 × 10^k step, about `count` of them, the ends rounded outwards. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const magnitude = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = ([1, 2, 5, 10].find((m) => m * magnitude >= raw) ?? 10) * magnitude;
  const ticks: number[] = [];
  // From the last tick at or below `min` to the first at or above `max`, so the ticks cover the whole range.
  const first = Math.floor(min / step + 1e-9);
  const last = Math.ceil(max / step - 1e-9);
  for (let k = first; k <= last; k++) ticks.push(Number((k * step).toPrecision(12)));
  return ticks;
}

/** A short label for a tick value: 1500 → "1.5k", 0.25 → "0.25". */
export function formatTick(value: number): string {
  const abs = Math.abs(value);
  if (abs >= 1e6) return `${trim(value / 1e6)}M`;
  if (abs >= 1e3) return `${trim(value / 1e3)}k`;
  return trim(value);
}

function trim(value: number): string {
  return String(Number(value.toPrecision(3)));
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Renders a line chart as a standalone SVG document. */
export function lineChartSvg(chart: LineChart): string {
  const width = chart.width ?? 720;
  const height = chart.height ?? 420;
  const margin = { top: 48, right: 24, bottom: 64, left: 76 };
  const legendWidth = Math.min(220, 20 + 7 * Math.max(0, ...chart.series.map((s) => s.name.length)));
  const plot = {
    x: margin.left,
    y: margin.top,
    w: width - margin.left - margin.right - legendWidth,
    h: height - margin.top - margin.bottom,
  };
  const points = chart.series
    .flatMap((s) => s.points)
    .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const usable = chart.logY ? points.filter(([, y]) => y > 0) : points;
  const xs = usable.map(([x]) => x);
  const ys = usable.map(([, y]) => y);
  let xMin = Math.min(...xs, Infinity);
  let xMax = Math.max(...xs, -Infinity);
  if (!Number.isFinite(xMin)) [xMin, xMax] = [0, 1];
  if (xMin === xMax) [xMin, xMax] = [xMin - 1, xMax + 1];

  let yTicks: number[];
  let yScale: (y: number) => number;
  if (chart.logY) {
    const low = Math.floor(Math.log10(Math.min(...ys, Infinity)));
    const high = Math.ceil(Math.log10(Math.max(...ys, -Infinity)));
    const [a, b] = Number.isFinite(low) && Number.isFinite(high) ? [low, Math.max(high, low + 1)] : [0, 1];
    yTicks = Array.from({ length: b - a + 1 }, (_, i) => Math.pow(10, a + i));
    yScale = (y) => plot.y + plot.h - ((Math.log10(y) - a) / (b - a)) * plot.h;
  } else {
    const top = Math.max(...ys, 0);
    yTicks = niceTicks(0, top > 0 ? top : 1);
    const yMax = Math.max(yTicks.at(-1) as number, top);
    yScale = (y) => plot.y + plot.h - (y / yMax) * plot.h;
  }
  const xTicks = niceTicks(xMin, xMax, 6).filter((t) => t >= xMin && t <= xMax);
  const xScale = (x: number): number => plot.x + ((x - xMin) / (xMax - xMin)) * plot.w;
  const f = (n: number): string => n.toFixed(1);

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      `font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">${escapeXml(chart.title)}</text>`,
  );
  for (const t of yTicks) {
    const y = f(yScale(t));
    out.push(
      `<line x1="${plot.x}" y1="${y}" x2="${plot.x + plot.w}" y2="${y}" stroke="#e5e5e5"/>`,
      `<text x="${plot.x - 8}" y="${y}" text-anchor="end" dominant-baseline="middle">${formatTick(t)}</text>`,
    );
  }
  for (const t of xTicks) {
    const x = f(xScale(t));
    out.push(
      `<line x1="${x}" y1="${plot.y}" x2="${x}" y2="${plot.y + plot.h}" stroke="#f0f0f0"/>`,
      `<text x="${x}" y="${plot.y + plot.h + 18}" text-anchor="middle">${formatTick(t)}</text>`,
    );
  }
  out.push(
    `<rect x="${plot.x}" y="${plot.y}" width="${plot.w}" height="${plot.h}" fill="none" stroke="#333333"/>`,
    `<text x="${plot.x + plot.w / 2}" y="${height - 18}" text-anchor="middle">${escapeXml(chart.xLabel)}</text>`,
    `<text x="18" y="${plot.y + plot.h / 2}" text-anchor="middle" transform="rotate(-90 18 ${plot.y + plot.h / 2})">` +
      `${escapeXml(chart.yLabel)}</text>`,
  );
  chart.series.forEach((series, i) => {
    const color = palette[i % palette.length] as string;
    const drawable = series.points
      .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!chart.logY || y > 0))
      .slice()
      .sort((a, b) => a[0] - b[0]);
    const coords = drawable.map(([x, y]) => `${f(xScale(x))},${f(yScale(y))}`);
    if (coords.length > 1)
      out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${coords.join(' ')}"/>`);
    for (const c of coords) {
      const [cx, cy] = c.split(',');
      out.push(`<circle cx="${cx}" cy="${cy}" r="3.5" fill="${color}"/>`);
    }
    const ly = plot.y + 10 + i * 20;
    const lx = plot.x + plot.w + 16;
    out.push(
      `<line x1="${lx}" y1="${ly}" x2="${lx + 18}" y2="${ly}" stroke="${color}" stroke-width="3"/>`,
      `<text x="${lx + 24}" y="${ly}" dominant-baseline="middle">${escapeXml(series.name)}</text>`,
    );
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
