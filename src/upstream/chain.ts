/**
 * @module upstream/chain
 * The backend chain with GOPROXY semantics (`go help goproxy`): entries are
 * tried in order; after an entry followed by "," (fallThrough "notfound") the
 * next is tried only when it answered 404 or 410; after "|" ("error") also
 * when it failed: refused, timed out, or answered 5xx/429. Each entry has its
 * own rewrite, timeouts, pool and extra headers, and passive health (a
 * cooling entry counts as failed without being asked).
 * Must not: cache, answer clients, or decide which chain a request takes
 * (upstream/route.ts does).
 */
import { readFileSync } from 'node:fs';
import type { OutgoingHttpHeaders } from 'node:http';
import type { Config, UpstreamEntryConfig, UpstreamSetting } from '../config/schema.js';
import { gprError, isGprError } from '../errors.js';
import type { ProxyRequest } from '../goproxy/path.js';
import { compileRewriter, type Rewriter } from '../rewrite/rules.js';
import { createUpstream, type UpstreamResponse } from './forward.js';
import { Health, type HealthState } from './health.js';

export type FallThrough = UpstreamEntryConfig['fallThrough'];

/** Which entry answered a request: for the access log's upstreamPath. */
export interface AnsweredBy {
  /** The entry's origin and prefix ("http://cache:3000/api"). */
  label: string;
  /** The rewritten path it was asked for. */
  path: string;
}

/** A backend answer plus the entry that gave it. */
export interface ChainResponse extends UpstreamResponse {
  entry: AnsweredBy;
}

export interface ChainEntry {
  /** Base URL as configured (path prefix included, no secrets). */
  readonly url: string;
  readonly label: string;
  readonly fallThrough: FallThrough;
  readonly rewrite: Rewriter;
  readonly health: Health;
  /** Names of the extra headers it sends (values are secret). */
  readonly headerNames: readonly string[];
}

/** One step of {@link Chain.plan}: where the request would go. */
export interface PlanStep {
  label: string;
  url: string;
  fallThrough: FallThrough;
  health: HealthState;
  headerNames: readonly string[];
}

export interface Chain {
  /** The list in GOPROXY syntax, for messages ("http://a,http://b|http://c"). */
  readonly label: string;
  readonly entries: readonly ChainEntry[];
  /**
   * Walks the entries for `request`. Resolves with the answer to use (which
   * may be a 404 or 5xx that may not fall through), rejects with the
   * GprError of the last entry tried: GPR_ERR_UPSTREAM_TIMEOUT,
   * GPR_ERR_UPSTREAM_UNREACHABLE or GPR_ERR_UPSTREAM_COOLING.
   */
  fetch(request: ProxyRequest, headers: OutgoingHttpHeaders): Promise<ChainResponse>;
  /** The path of the first entry (what the access log shows until an entry answers). */
  firstPath(request: ProxyRequest): string;
  /** Every entry with the URL it would be asked for, in order. */
  plan(request: ProxyRequest): PlanStep[];
  /** False when every entry is cooling down. */
  available(): boolean;
  close(): void;
}

/** What a chain reports to logs and metrics. */
export interface ChainHooks {
  /** Environment for `auth.tokenEnv`; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** An entry's health changed (`initial`: the entry was just created, healthy). */
  onHealth?: (label: string, state: HealthState, failures: number, initial?: boolean) => void;
  /** Milliseconds clock for the health state; default Date.now. */
  now?: () => number;
}

/** Entry settings after defaults: what {@link createChain} builds from. */
export interface EntrySpec {
  url: string;
  fallThrough: FallThrough;
  rewrite: Rewriter;
  connectMs: number;
  responseMs: number;
  maxSockets?: number;
  headers: OutgoingHttpHeaders;
  maxFailures: number;
  cooldownMs: number;
}

/**
 * Normalizes an `upstream` setting into entries: a GOPROXY-style string is
 * split at "," and "|", and the separator after an entry is its fallThrough
 * (the last entry's does not matter). Reads auth tokens (files, env).
 */
export function entrySpecs(setting: UpstreamSetting, config: Pick<Config, 'rewrite' | 'timeouts'>, env: NodeJS.ProcessEnv): EntrySpec[] {
  const defaults = { connectMs: config.timeouts.connectMs, responseMs: config.timeouts.responseMs, maxFailures: 3, cooldownMs: 10_000 };
  if (typeof setting === 'string') {
    const parts = setting.split(/([,|])/);
    const specs: EntrySpec[] = [];
    for (let i = 0; i < parts.length; i += 2) {
      const url = (parts[i] as string).trim();
      specs.push({ ...defaults, url, fallThrough: parts[i + 1] === '|' ? 'error' : 'notfound', rewrite: compileRewriter(config.rewrite, url), headers: {} });
    }
    return specs;
  }
  return setting.map((e) => ({
    url: e.url,
    fallThrough: e.fallThrough,
    rewrite: compileRewriter(e.rewrite ?? config.rewrite, e.url),
    connectMs: e.timeouts?.connectMs ?? defaults.connectMs,
    responseMs: e.timeouts?.responseMs ?? defaults.responseMs,
    maxSockets: e.maxSockets,
    headers: entryHeaders(e, env),
    maxFailures: e.health.maxFailures,
    cooldownMs: e.health.cooldownMs,
  }));
}

function entryHeaders(e: UpstreamEntryConfig, env: NodeJS.ProcessEnv): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(e.headers ?? {})) headers[name.toLowerCase()] = value;
  if (e.auth) {
    let token: string | undefined;
    if (e.auth.tokenFile !== undefined) {
      try {
        token = readFileSync(e.auth.tokenFile, 'utf8').trim();
      } catch (err) {
        throw gprError('GPR_ERR_UPSTREAM_TOKEN', [e.url, `cannot read tokenFile ${e.auth.tokenFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`], err);
      }
    } else {
      token = env[e.auth.tokenEnv as string];
      if (!token) throw gprError('GPR_ERR_UPSTREAM_TOKEN', [e.url, `environment variable ${e.auth.tokenEnv} is empty or unset`]);
    }
    if (!token || /[^\t\x20-\x7e]/.test(token)) throw gprError('GPR_ERR_UPSTREAM_TOKEN', [e.url, 'the token is empty or not printable ASCII']);
    headers[e.auth.header.toLowerCase()] = e.auth.scheme ? `${e.auth.scheme} ${token}` : token;
  }
  return headers;
}

/** The chain's label in GOPROXY syntax. */
export function chainLabel(specs: ReadonlyArray<Pick<EntrySpec, 'url' | 'fallThrough'>>): string {
  return specs.map((s, i) => (i === specs.length - 1 ? s.url : s.url + (s.fallThrough === 'error' ? '|' : ','))).join('');
}

/** Builds the chain (one agent per entry). */
export function createChain(specs: EntrySpec[], hooks: ChainHooks = {}): Chain {
  const label = chainLabel(specs);
  const entries = specs.map((spec) => {
    const upstream = createUpstream({ url: spec.url, connectMs: spec.connectMs, responseMs: spec.responseMs, maxSockets: spec.maxSockets, extraHeaders: spec.headers });
    const entryLabel = labelOf(spec.url);
    const health = new Health({
      maxFailures: spec.maxFailures,
      cooldownMs: spec.cooldownMs,
      now: hooks.now,
      onChange: (state, failures) => hooks.onHealth?.(entryLabel, state, failures),
    });
    hooks.onHealth?.(entryLabel, 'healthy', 0, true);
    return { url: spec.url, label: entryLabel, fallThrough: spec.fallThrough, rewrite: spec.rewrite, health, headerNames: Object.keys(spec.headers), upstream };
  });
  const last = entries.length - 1;

  async function fetch(request: ProxyRequest, headers: OutgoingHttpHeaders): Promise<ChainResponse> {
    for (let i = 0; ; i++) {
      const e = entries[i] as (typeof entries)[number];
      const path = e.rewrite(request);
      // A failure goes on to the next entry only after "|"; the last entry's answer is final.
      const onError = i < last && e.fallThrough === 'error';
      if (!e.health.admit()) {
        if (onError) continue;
        throw gprError('GPR_ERR_UPSTREAM_COOLING', [e.label, e.health.failures, Math.ceil(e.health.cooldownLeftMs / 1000)]);
      }
      let res: UpstreamResponse;
      try {
        res = await e.upstream.fetch(path, headers);
      } catch (err) {
        e.health.failure();
        if (onError) continue;
        throw isGprError(err) ? err : gprError('GPR_ERR_UPSTREAM_UNREACHABLE', [e.label, (err as Error).message], err);
      }
      const failed = res.status >= 500 || res.status === 429;
      if (failed) e.health.failure();
      else e.health.success();
      // "," goes on after 404/410 only; "|" after those and after any failure.
      const goOn = i < last && (res.status === 404 || res.status === 410 || (failed && e.fallThrough === 'error'));
      if (goOn) {
        // Read the (small) error body off so the connection stays reusable.
        res.body.resume();
        continue;
      }
      const out = res as ChainResponse;
      out.entry = { label: e.label, path };
      return out;
    }
  }

  return {
    label,
    entries,
    fetch,
    firstPath: (request) => (entries[0] as (typeof entries)[number]).rewrite(request),
    plan: (request) =>
      entries.map((e) => ({ label: e.label, url: new URL(e.rewrite(request), e.url).href, fallThrough: e.fallThrough, health: e.health.state, headerNames: e.headerNames })),
    available: () => entries.some((e) => e.health.available),
    close() {
      for (const e of entries) e.upstream.close();
    },
  };
}

/** "scheme://host[:port]/prefix" without a trailing slash. */
function labelOf(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
}
