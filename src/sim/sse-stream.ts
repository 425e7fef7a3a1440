/**
 * @module sim/sse-stream
 * One streamed response written at the pace its client reads it. The engine produces tokens on its own clock, as a
 * GPU would; this writer sends each token's event only while the socket takes them, and otherwise just counts what
 * is owed and builds it once 'drain' comes. So a client that never reads costs a socket buffer, not every event of
 * a 30,000-token answer (before, 100 unread streams of 4,000 tokens held 270 MB).
 */
import type { ServerResponse } from 'node:http';

export class SseStream {
  private readonly res: ServerResponse;
  private readonly eventAt: (index: number) => string;
  /** Tokens the engine has produced; events `sent..produced-1` are owed to the client. */
  private produced = 0;
  private sent = 0;
  /** The last events (usage, `[DONE]`), known once the engine finished. */
  private tail: string | undefined;
  private stalled = false;
  private awaitingDrain = false;
  private ended = false;

  /** `eventAt(i)` is token `i`'s whole SSE event; it is called once per token, in order. */
  constructor(res: ServerResponse, eventAt: (index: number) => string) {
    this.res = res;
    this.eventAt = eventAt;
  }

  /** The engine produced the next token. */
  tokenProduced(): void {
    this.produced++;
    this.flush();
  }

  /** Holds every event back for `wallMs` (an injected stall), then sends what is owed. */
  stall(wallMs: number): void {
    this.stalled = true;
    setTimeout(() => {
      this.stalled = false;
      this.flush();
    }, wallMs).unref();
  }

  /** The engine finished: `tail` follows the last token's event, then the response ends. */
  end(tail: string): void {
    this.tail = tail;
    this.flush();
  }

  private readonly onDrain = (): void => {
    this.awaitingDrain = false;
    this.flush();
  };

  private flush(): void {
    if (this.stalled || this.awaitingDrain || this.ended || this.res.destroyed) return;
    while (this.sent < this.produced) {
      if (!this.res.write(this.eventAt(this.sent++))) {
        this.awaitingDrain = true;
        this.res.once('drain', this.onDrain);
        return;
      }
    }
    if (this.tail !== undefined) {
      this.ended = true;
      this.res.end(this.tail);
    }
  }
}
