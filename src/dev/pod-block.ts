/**
 * @module dev/pod-block
 * Which loopback /16 a development cluster's pods get their IPs from. Processes listen on pod IPs (tests' model
 * servers, `--run-pods`), so two clusters on one machine must not hand out the same ones: each claims a block with a
 * lock file holding its pid — the lowest of 127.1, 127.3, 127.4 … 127.126 that no live cluster holds (127.0 is
 * localhost's, 127.2 the load balancers') — and a block whose owner died is taken over.
 */
import { mkdirSync, openSync, closeSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { LlmisvcError } from '../errors/index.js';
import { isPidAlive } from '../process/index.js';

/** The second octets a cluster's pods may use, in the order they are tried. */
export const POD_BLOCKS = [1, ...Array.from({ length: 124 }, (_, i) => i + 3)];

export interface PodBlock {
  /** `127.B`: pod CIDRs are `127.B.N.0/24`. */
  prefix: string;
  release(): void;
}

/** Claims the first free block, recording `owner` in `lockDir/127.B.lock`. */
export function claimPodBlock(lockDir: string, owner: number = process.pid): PodBlock {
  mkdirSync(lockDir, { recursive: true });
  for (const block of POD_BLOCKS) {
    const path = join(lockDir, `127.${block}.lock`);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, 'wx', 0o644);
        writeSync(fd, `${owner}\n`);
        closeSync(fd);
        let released = false;
        return {
          prefix: `127.${block}`,
          release: () => {
            if (released) return;
            released = true;
            // Only while it is still ours: a block taken over after this process was thought dead stays taken.
            try {
              if (readFileSync(path, 'utf8').trim() === String(owner)) rmSync(path, { force: true });
            } catch {
              // Already gone.
            }
          },
        };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        const holder = Number(readFileSync(path, 'utf8').trim());
        // A live holder keeps its block, this process included (it may run two clusters at once).
        if (!Number.isInteger(holder) || holder <= 0 || !isPidAlive(holder)) {
          rmSync(path, { force: true });
          continue;
        }
        break;
      }
    }
  }
  throw new LlmisvcError(
    'LLMISVC_ERR_CONFIG',
    `every loopback block for pod IPs in ${lockDir} is held by a running cluster`,
    {
      hint: 'stop a development cluster first',
    },
  );
}
