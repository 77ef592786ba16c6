// The status page over HTTP: GET / (and /status) answers the page, GET /status.json the JSON model.
// Owns the change tracker and samples the live state on a timer while the listener is open.

import type { ServerResponse } from 'node:http';
import type { LatenessHistogram } from '../engine/lateness.js';
import type { VirtualState } from '../engine/state.js';
import { jsonForHtml, parseStatusQuery, statusOverview, virtualPage, DEFAULT_PAGE } from './model.js';
import { STATUS_PAGE_CSP, statusPageHtml } from './page.js';
import { ChangeTracker } from './tracker.js';

/** What the status page reads (the control port's target provides it). */
export interface StatusSource {
  readonly virtuals: readonly VirtualState[];
  readonly lateness?: LatenessHistogram;
}

export interface StatusServiceOptions {
  /** Monotonic clock in ms; default performance.now. */
  readonly now?: () => number;
  /** How often the state is sampled for change times; default 500 ms. */
  readonly sampleMs?: number;
}

export const STATUS_PATHS: ReadonlySet<string> = new Set(['/', '/status', '/status.json']);

const COMMON_HEADERS = { 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' } as const;

export class StatusService {
  private readonly tracker: ChangeTracker;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly source: StatusSource, opts: StatusServiceOptions = {}) {
    this.now = opts.now ?? (() => performance.now());
    this.tracker = new ChangeTracker(this.now);
    this.tracker.observe(source.virtuals);
    this.timer = setInterval(() => this.tracker.observe(this.source.virtuals), opts.sampleMs ?? 500);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Answer a GET/HEAD of one of STATUS_PATHS. */
  serve(path: string, search: string, head: boolean, res: ServerResponse): void {
    const src = this.source;
    // Sample now too, so that what is served is never older than the request.
    this.tracker.observe(src.virtuals);
    const now = this.now();
    const times = this.tracker.times.bind(this.tracker);
    const q = parseStatusQuery(new URLSearchParams(search));
    const send = (status: number, type: string, body: string, extra: Record<string, string> = {}): void => {
      res.writeHead(status, { ...COMMON_HEADERS, ...extra, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
      res.end(head ? undefined : body);
    };
    if (path !== '/status.json') {
      const overview = statusOverview(src.virtuals, times, now, this.tracker.startedAt, { offset: 0, limit: DEFAULT_PAGE }, src.lateness);
      send(200, 'text/html; charset=utf-8', statusPageHtml(jsonForHtml(overview)), { 'Content-Security-Policy': STATUS_PAGE_CSP });
      return;
    }
    const json = 'application/json; charset=utf-8';
    if ('error' in q) {
      send(400, json, `${JSON.stringify({ error: q.error })}\n`);
      return;
    }
    if (q.kind === 'overview') {
      send(200, json, `${JSON.stringify(statusOverview(src.virtuals, times, now, this.tracker.startedAt, q, src.lateness))}\n`);
      return;
    }
    const page = virtualPage(src.virtuals, times, now, q);
    if (page === undefined) send(404, json, `${JSON.stringify({ error: `virtual ${q.virtual}: no such virtual (${src.virtuals.length} configured)` })}\n`);
    else send(200, json, `${JSON.stringify(page)}\n`);
  }
}
