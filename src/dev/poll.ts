/**
 * @module dev/poll
 * The loop of the dev cluster's stand-in controllers (status writers, gateway proxies): a round twice a second
 * until stopped; a failed round is logged once per distinct message and retried, never thrown.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** A stand-in's process that exited is started again after this long (a kubelet's back-off, without the doubling). */
export const PROCESS_RESTART_DELAY_MS = 10_000;

export function pollEvery(
  intervalMs: number,
  what: string,
  round: () => Promise<void>,
  log: (message: string) => void,
): { stop(): Promise<void> } {
  let stopped = false;
  let lastError = '';
  const loop = (async () => {
    while (!stopped) {
      try {
        await round();
        lastError = '';
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        if (message !== lastError) log(`${what}: ${message} (retrying)`);
        lastError = message;
      }
      await sleep(intervalMs);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
    },
  };
}
