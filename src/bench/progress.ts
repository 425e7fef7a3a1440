/**
 * @module bench/progress
 * A one-line progress bar for a load run, redrawn in place on a terminal. When the stream is not a terminal (CI,
 * a pipe) it writes nothing, so logs stay clean.
 */
import type { LoadProgress } from './load.js';

export interface ProgressDisplay {
  update(progress: LoadProgress): void;
  done(): void;
}

/** The bar as text, for example `qps 10 [#########-----------]  12.0/30s  sent 118  in flight 9  failed 0`. */
export function progressLine(label: string, p: LoadProgress, width = 24): string {
  const fraction = Math.min(1, p.durationMs > 0 ? p.elapsedMs / p.durationMs : 1);
  const filled = Math.round(fraction * width);
  const draining = p.elapsedMs > p.durationMs ? '  draining' : '';
  return (
    `${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ` +
    `${(Math.min(p.elapsedMs, p.durationMs) / 1000).toFixed(1)}/${(p.durationMs / 1000).toFixed(0)}s  ` +
    `sent ${p.sent}/${p.planned}  in flight ${p.inFlight}  failed ${p.failed}${draining}`
  );
}

export function progressDisplay(stream: NodeJS.WriteStream, label: string): ProgressDisplay {
  if (!stream.isTTY) return { update() {}, done() {} };
  let shown = false;
  return {
    update(progress) {
      // Terminals without a known size report 0 columns; do not cut the line to nothing there.
      const columns = stream.columns && stream.columns > 20 ? stream.columns - 1 : 160;
      const line = progressLine(label, progress).slice(0, columns);
      stream.write(`\r\x1b[2K${line}`);
      shown = true;
    },
    done() {
      if (shown) stream.write('\n');
      shown = false;
    },
  };
}
