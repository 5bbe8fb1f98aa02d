// Server-sent events over fetch: the stream needs the bearer header, which
// EventSource cannot send. A line-based parser of the text/event-stream
// format (https://html.spec.whatwg.org/multipage/server-sent-events.html).

export type SseMessage = { event: string; data: string; id: string | null };

export class SseParser {
  private buf = '';
  private event = '';
  private data: string[] = [];
  private id: string | null = null;
  /** The last `id:` seen (kept across messages, as the spec says). */
  lastId: string | null = null;

  constructor(private emit: (m: SseMessage) => void) {}

  push(chunk: string): void {
    this.buf += chunk;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buf);
      if (!m) break;
      // A lone \r at the end might be the first half of \r\n: wait for more.
      if (m[0] === '\r' && m.index === this.buf.length - 1) break;
      const line = this.buf.slice(0, m.index);
      this.buf = this.buf.slice(m.index + m[0].length);
      this.line(line);
    }
  }

  private line(line: string): void {
    if (line === '') {
      if (this.data.length > 0 || this.event) {
        if (this.id !== null) this.lastId = this.id;
        this.emit({ event: this.event || 'message', data: this.data.join('\n'), id: this.lastId });
      }
      this.event = '';
      this.data = [];
      this.id = null;
      return;
    }
    if (line.startsWith(':')) return; // comment (keep-alive)
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id' && !value.includes('\0')) {
      this.id = value;
      this.lastId = value;
    }
  }
}

export type StreamHandlers = {
  url: () => string;
  token: () => string | null;
  renew: () => Promise<boolean>;
  onMessage: (m: SseMessage) => void;
  onState: (up: boolean) => void;
};

/**
 * Keeps a stream open: reconnects after a drop with backoff (1 s doubling
 * to 30 s) and `Last-Event-ID`; renews the token when the server ends the
 * stream with `token_expired` or `token_revoked`.
 */
export class LiveStream {
  private ctl: AbortController | null = null;
  private stopped = false;
  private backoff = 1000;
  lastId: string | null = null;
  private wake: (() => void) | null = null;

  constructor(private h: StreamHandlers) {}

  start(): void {
    this.stopped = false;
    void this.loop();
  }

  stop(): void {
    this.stopped = true;
    this.ctl?.abort();
    this.wake?.();
  }

  /** Drops the current connection (it reconnects at once). */
  reconnectNow(): void {
    this.backoff = 1000;
    this.ctl?.abort();
    this.wake?.();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => {
      const id = window.setTimeout(r, ms);
      this.wake = () => {
        window.clearTimeout(id);
        r();
      };
    });
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      let renewFirst = false;
      try {
        renewFirst = await this.once();
      } catch {
        /* dropped: reconnect below */
      }
      this.h.onState(false);
      if (this.stopped) break;
      if (renewFirst) {
        if (!(await this.h.renew())) {
          await this.sleep(this.backoff);
          this.backoff = Math.min(this.backoff * 2, 30_000);
        }
        continue;
      }
      await this.sleep(this.backoff);
      this.backoff = Math.min(this.backoff * 2, 30_000);
    }
  }

  /** One connection; true when the token must be renewed before the next. */
  private async once(): Promise<boolean> {
    const tok = this.h.token();
    if (!tok) return true;
    this.ctl = new AbortController();
    const headers: Record<string, string> = { Authorization: `Bearer ${tok}`, Accept: 'text/event-stream' };
    if (this.lastId) headers['Last-Event-ID'] = this.lastId;
    const res = await fetch(this.h.url(), { headers, signal: this.ctl.signal, cache: 'no-store' });
    if (res.status === 401) return true;
    if (!res.ok || !res.body) throw new Error(`stream ${res.status}`);
    this.h.onState(true);
    this.backoff = 1000;
    let renew = false;
    const parser = new SseParser((m) => {
      if (m.id) this.lastId = m.id;
      if (m.event === 'token_expired' || m.event === 'token_revoked') renew = true;
      this.h.onMessage(m);
    });
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.push(value);
      if (renew) {
        this.ctl.abort();
        break;
      }
    }
    return renew;
  }
}
