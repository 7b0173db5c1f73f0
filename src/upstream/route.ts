/**
 * @module upstream/route
 * The one place that decides, per request, where it goes and what a backend
 * failure turns into: answered here (checksum database `supported`, an
 * unknown database, a private module refused or sent on to `direct`, a
 * checksum lookup of a private module), or forwarded through which chain
 * with which failure policy. Private module paths never reach a chain other
 * than their own, and never a checksum database.
 * Must not: do I/O (chains are built by the runtime), or answer clients.
 */
import type { Config } from '../config/schema.js';
import type { ErrorCode } from '../errors.js';
import type { ProxyRequest } from '../goproxy/path.js';
import { matchPrefixPatterns } from '../goproxy/private.js';
import type { Chain } from './chain.js';

export type FailurePolicy = Config['onUpstreamFailure'];

/** Where a request goes. */
export type Route =
  /** Answered here with an error code (its status unless `status` overrides). */
  | { kind: 'refuse'; code: ErrorCode; args: string[]; status?: number }
  /** `/sumdb/<name>/supported` of a configured database: 200 here. */
  | { kind: 'supported' }
  | {
      kind: 'forward';
      chain: Chain;
      /** What the client gets when the chain fails: 404 (fall through) or 502/504. */
      onFailure: FailurePolicy;
      /** The private pattern that routed it, if any (for logs and the rewrite CLI). */
      privateMatch?: string;
    };

export interface RouteTable {
  /** The public chain (`upstream`). */
  main: Chain;
  /** One per `private` rule with an upstream, by rule index. */
  private: ReadonlyMap<number, Chain>;
  /** One per configured checksum database (the main chain for "upstream"). */
  sumdb: ReadonlyMap<string, Chain>;
}

export type Router = (request: ProxyRequest) => Route;

/** The module path a request names, if any (sumdb lookups included). */
export function moduleOf(request: ProxyRequest): string | undefined {
  if (request.kind !== 'sumdb') return request.module;
  return request.op === 'lookup' ? request.module : undefined;
}

export function createRouter(config: Pick<Config, 'private' | 'onUpstreamFailure'>, table: RouteTable): Router {
  const rules = config.private;
  const firstMatch = (module: string) => {
    for (let i = 0; i < rules.length; i++) if (matchPrefixPatterns((rules[i] as Config['private'][number]).match, module)) return i;
    return -1;
  };

  return function route(request) {
    const module = moduleOf(request);
    const ruleIndex = module === undefined || rules.length === 0 ? -1 : firstMatch(module);
    if (request.kind === 'sumdb') {
      const chain = table.sumdb.get(request.name);
      if (!chain) return { kind: 'refuse', code: 'GPR_ERR_SUMDB_UNKNOWN', args: [request.name] };
      if (ruleIndex >= 0) return { kind: 'refuse', code: 'GPR_ERR_SUMDB_PRIVATE', args: [module as string, (rules[ruleIndex] as Config['private'][number]).match] };
      if (request.op === 'supported') return { kind: 'supported' };
      return { kind: 'forward', chain, onFailure: config.onUpstreamFailure };
    }
    if (ruleIndex < 0) return { kind: 'forward', chain: table.main, onFailure: config.onUpstreamFailure };
    const rule = rules[ruleIndex] as Config['private'][number];
    const chain = table.private.get(ruleIndex);
    if (chain) return { kind: 'forward', chain, onFailure: rule.onFailure ?? config.onUpstreamFailure, privateMatch: rule.match };
    return rule.status === 403
      ? { kind: 'refuse', code: 'GPR_ERR_PRIVATE_REFUSED', args: [module as string, rule.match] }
      : { kind: 'refuse', code: 'GPR_ERR_PRIVATE_NOT_HERE', args: [module as string, rule.match] };
  };
}
