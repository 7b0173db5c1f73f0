/**
 * @module config/schema
 * The one definition of the config file: zod schema, embedded defaults and the
 * derived `Config` type. Unknown keys are rejected at every level.
 * Must not: read files or the environment (see config/load.ts).
 */
import { z } from 'zod';
import { badPattern } from '../goproxy/private.js';

const POS_INT = 'must be a positive integer';
const NON_NEG_INT = 'must be a non-negative integer';

const posInt = () => z.int({ error: POS_INT }).positive({ error: POS_INT });
const nonNegInt = () => z.int({ error: NON_NEG_INT }).nonnegative({ error: NON_NEG_INT });

/** "host:port", "[v6]:port" or ":port"; null disables the listener. */
const address = z
  .string({ error: 'must be an address like "127.0.0.1:8080", or null' })
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):\d{1,5}$/, { error: 'must be an address like "127.0.0.1:8080", "[::1]:8080" or ":8080"' })
  .nullable();

const httpUrl = z
  .string({ error: 'must be an http:// or https:// URL' })
  .refine((s) => /^https?:\/\/[^/?#\s]+(\/[^?#\s]*)?$/.test(s) && URL.canParse(s), {
    error: 'must be an http:// or https:// URL without query or fragment',
  });

/** A path template; placeholders {module} {version} {name} {path}. */
const template = z
  .string({ error: 'must be a path template starting with /' })
  .regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@/{}-]*$/, { error: 'must be a path template starting with / using only URL path characters' });

/** Which placeholders each endpoint kind may use. */
export const templatePlaceholders = {
  list: ['module'],
  latest: ['module'],
  info: ['module', 'version'],
  mod: ['module', 'version'],
  zip: ['module', 'version'],
  sumdb: ['name', 'path'],
} as const;

export const rewriteTemplatesSchema = z
  .strictObject({ list: template, latest: template, info: template, mod: template, zip: template, sumdb: template })
  .superRefine((templates, ctx) => {
    for (const [kind, allowed] of Object.entries(templatePlaceholders)) {
      const text = templates[kind as keyof typeof templatePlaceholders];
      for (const [, name] of text.matchAll(/\{([^}]*)\}/g)) {
        if (!(allowed as readonly string[]).includes(name ?? '')) {
          ctx.addIssue({ code: 'custom', path: [kind], input: text, message: `uses {${name}}; allowed here: ${allowed.map((a) => `{${a}}`).join(' ')}` });
        }
      }
      if (kind !== 'sumdb' && !text.includes('{module}')) {
        ctx.addIssue({ code: 'custom', path: [kind], input: text, message: 'must contain {module}' });
      }
    }
  });

/** Preset names; `rewrite` may also be an object of templates. */
export const rewritePresets = ['internal', 'goproxy'] as const;

const rewriteSetting = z.union([
  z.enum(rewritePresets, { error: 'must be "internal", "goproxy" or an object of templates' }),
  rewriteTemplatesSchema,
]);

/** How the chain goes on after an entry: GOPROXY's "," (only after 404/410) or "|" (after any error too). */
export const fallThroughModes = ['notfound', 'error'] as const;

/**
 * A GOPROXY-style list: URLs separated by "," (the next entry is tried only
 * after a 404 or 410) or "|" (after any error: refused, timeout, 5xx).
 */
const upstreamList = z.string({ error: 'must be a URL, a GOPROXY-style list or an array of entries' }).superRefine((text, ctx) => {
  const parts = text.split(/[,|]/);
  if (parts.length === 1 && !httpUrl.safeParse(text).success) {
    ctx.addIssue({ code: 'custom', input: text, message: 'must be an http:// or https:// URL without query or fragment, or a GOPROXY-style list of them' });
    return;
  }
  for (const part of parts) {
    const url = part.trim();
    if (url === 'direct' || url === 'off') {
      ctx.addIssue({ code: 'custom', input: text, message: `may not contain "${url}": the go command does that itself after a 404 from the proxy` });
    } else if (!httpUrl.safeParse(url).success) {
      ctx.addIssue({ code: 'custom', input: text, message: `entry ${JSON.stringify(url)} must be an http:// or https:// URL without query or fragment` });
    }
  }
});

/** One backend of the chain with its own settings. */
const upstreamEntry = z.strictObject({
  /** Base URL; its path is a prefix of every rewritten path. */
  url: httpUrl,
  /** After this entry: "notfound" = GOPROXY "," (default), "error" = GOPROXY "|". */
  fallThrough: z.enum(fallThroughModes, { error: 'must be "notfound" (GOPROXY ",") or "error" (GOPROXY "|")' }).default('notfound'),
  /** Preset or templates; default: the top-level `rewrite`. */
  rewrite: rewriteSetting.optional(),
  /** Default: the top-level `timeouts`. */
  timeouts: z.strictObject({ connectMs: posInt().optional(), responseMs: posInt().optional() }).optional(),
  /** Most sockets to this backend (the pool size); default 256. */
  maxSockets: posInt().optional(),
  /** Extra request headers; values are redacted in every dump. */
  headers: z.record(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { error: 'must be an HTTP header name' }), z.string().regex(/^[\t\x20-\x7e]*$/, { error: 'must be printable ASCII' })).optional(),
  /** A secret token sent in `header` (default Authorization, as "Bearer <token>"), read from a file or an environment variable at start and reload. */
  auth: z
    .strictObject({
      tokenFile: z.string().min(1).optional(),
      tokenEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'must be an environment variable name' }).optional(),
      header: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { error: 'must be an HTTP header name' }).default('authorization'),
      /** Prefix of the value ("Bearer"); "" sends the token alone. */
      scheme: z.string().default('Bearer'),
    })
    .refine((a) => (a.tokenFile === undefined) !== (a.tokenEnv === undefined), { error: 'needs exactly one of tokenFile and tokenEnv' })
    .optional(),
  /** Passive health: after `maxFailures` failures in a row the entry is skipped for `cooldownMs`, then probed. */
  health: z.strictObject({ maxFailures: posInt().default(3), cooldownMs: posInt().default(10_000) }).prefault({}),
});

/** `upstream`: one URL, a GOPROXY-style list, or entries with their own settings. */
const upstreamSetting = z.union([upstreamList, z.array(upstreamEntry).min(1, { error: 'must have at least one entry' })], {
  error: 'must be a URL, a GOPROXY-style list ("http://a,http://b|http://c") or an array of entries',
});

/** A GOPRIVATE-style pattern list: comma-separated globs matched per path element, by prefix. */
const privatePattern = z
  .string({ error: 'must be a GOPRIVATE-style pattern list like "corp.example/*,*.internal"' })
  .min(1)
  .superRefine((globs, ctx) => {
    const bad = badPattern(globs);
    if (bad !== undefined) ctx.addIssue({ code: 'custom', input: globs, message: `has a malformed glob ${JSON.stringify(bad)}` });
  });

const privateRule = z
  .strictObject({
    match: privatePattern,
    /** Route matching modules to this upstream (never the public one). */
    upstream: upstreamSetting.optional(),
    /** Or answer locally: 404 (the go command goes on to `direct`) or 403 (refuse). */
    status: z.union([z.literal(404), z.literal(403)], { error: 'must be 404 or 403' }).optional(),
    /** When the routed upstream fails: "notfound" (fail open, 404) or "error" (fail closed, 502/504); default `onUpstreamFailure`. */
    onFailure: z.enum(['notfound', 'error'], { error: 'must be "notfound" or "error"' }).optional(),
  })
  .refine((r) => (r.upstream === undefined) !== (r.status === undefined), { error: 'needs exactly one of upstream and status', path: ['match'] });

export const configSchema = z.strictObject({
  listen: z
    .strictObject({
      http: address.default('127.0.0.1:8080'),
      https: address.default('127.0.0.1:8443'),
      admin: address.default('127.0.0.1:9180'),
    })
    .prefault({}),
  /**
   * The backend chain: a base URL (its path prefixes every rewritten path), a
   * GOPROXY-style list ("http://a,http://b|http://c"), or an array of entries.
   */
  upstream: upstreamSetting.default('https://proxy.golang.org'),
  rewrite: rewriteSetting.default('goproxy'),
  /**
   * Checksum databases served under /sumdb/<name>/: name -> base URL, or
   * "upstream" to forward through the upstream chain (its `sumdb` template).
   */
  sumdb: z
    .record(
      z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/, { error: 'must be a lower-case host name like "sum.golang.org"' }),
      z.union([httpUrl, z.literal('upstream')], { error: 'must be an http:// or https:// URL, or "upstream"' }),
    )
    .default({ 'sum.golang.org': 'https://sum.golang.org' }),
  /** Private module patterns, first match wins: routed to their own upstream, or answered 404/403 here. */
  private: z.array(privateRule).default([]),
  cache: z
    .strictObject({
      maxBytes: posInt().default(256 * 1024 * 1024),
      maxEntryBytes: posInt().default(64 * 1024 * 1024),
      mutableTtlMs: nonNegInt().default(60_000),
      notFoundTtlMs: nonNegInt().default(30_000),
      /**
       * How long past its TTL a list, @latest or query .info is still answered
       * from cache (X-Cache: STALE) while a background request refreshes it, and
       * kept when refreshes fail.
       */
      staleIfErrorMs: nonNegInt().default(24 * 60 * 60 * 1000),
      /**
       * Disk tier directory; null = memory only. Absent: `$CACHE_DIRECTORY`
       * (systemd's CacheDirectory=) or `cache` in the working directory
       * (config/load.ts resolves it).
       */
      dir: z.string({ error: 'must be a directory path, or null for memory only' }).min(1, { error: 'must be a directory path, or null for memory only' }).nullable().optional(),
      /** Upper bound of the committed objects in `dir` (LRU eviction of whole objects). */
      diskMaxBytes: posInt().default(10 * 1024 * 1024 * 1024),
      /** Largest object stored (and so served) through the disk tier; the go command's own zip limit is 500 MiB. */
      maxObjectBytes: posInt().default(512 * 1024 * 1024),
      /**
       * Most .zip fills reading a backend body at once in this process; more wait
       * in a queue (their requests answered when a slot frees). Bounds the
       * socket and write buffers of many concurrent cold fills.
       */
      maxConcurrentFills: posInt().default(64),
    })
    .prefault({}),
  onUpstreamFailure: z.enum(['notfound', 'error'], { error: 'must be "notfound" or "error"' }).default('notfound'),
  timeouts: z
    .strictObject({
      connectMs: posInt().default(5_000),
      /** Time to the response head, and the longest pause between body chunks. */
      responseMs: posInt().default(30_000),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z
        .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
          error: 'must be one of fatal, error, warn, info, debug, trace, silent',
        })
        .default('info'),
      /** Which requests get an access line: all, only 4xx/5xx and errors, or none. */
      access: z.enum(['all', 'errors', 'off'], { error: 'must be "all", "errors" or "off"' }).default('all'),
      /** `journal`: `<N>` priority prefix per line (SyslogLevelPrefix=); `auto`: when stdout is the journal. */
      format: z.enum(['auto', 'json', 'journal'], { error: 'must be one of auto, json, journal' }).default('auto'),
    })
    .prefault({}),
  tls: z
    .strictObject({
      dir: z.string().min(1).default('certs'),
      hosts: z
        .array(z.string().regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, { error: 'must be a lower-case DNS name' }))
        .min(1)
        .default(['proxy.golang.org', 'goproxy.cn', 'goproxy.io', 'sum.golang.org']),
      /** Bring-your-own CA (enterprise PKI); default: the CA in `dir`. */
      ca: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }).optional(),
      /** Static leaf certificate and key for the HTTPS listener instead of minting. */
      cert: z.string().min(1).optional(),
      key: z.string().min(1).optional(),
      leafValidityHours: posInt().default(168),
      /** Mutual TLS: a CA file (PEM, one or more certificates); with it the HTTPS listener requires a client certificate it verifies. */
      clientCa: z.string().min(1).optional(),
      /** Offer HTTP/2 (ALPN h2, http/1.1) on the HTTPS listener; false: http/1.1 only. Read at start. */
      http2: z.boolean({ error: 'must be true or false' }).default(false),
    })
    .prefault({})
    .refine((t) => (t.cert === undefined) === (t.key === undefined), { error: 'cert and key must be given together', path: ['cert'] }),
  shutdown: z.strictObject({ drainTimeoutMs: posInt().default(30_000) }).prefault({}),
  /** Reload without signals: watch the config file (and its directory, for kubelet's ConfigMap symlink swap). */
  reload: z
    .strictObject({
      watch: z.boolean({ error: 'must be true or false' }).default(false),
      /** Quiet time after the last change event before the file is read, in ms. */
      debounceMs: posInt().default(200),
      /** Fallback check of the file's content every this many ms (inotify can miss symlink swaps). */
      pollMs: posInt().default(2_000),
      /** With workers > 1: how long the supervisor waits for each worker to apply a reload; one that has not answered by then fails it. */
      workerTimeoutMs: posInt().default(30_000),
    })
    .prefault({}),
  /** Processes serving the proxy listeners: 1 (one process, no fork), N, or "auto" (one per core). */
  workers: z.union([posInt(), z.literal('auto')], { error: 'must be a positive integer or "auto"' }).default(1),
  limits: z
    .strictObject({
      /**
       * Open client connections over all proxy listeners (not the admin
       * one); more are closed at once. Default (absent): derived from the
       * open-file limit at start (see server/limits.ts).
       */
      maxConnections: posInt().optional(),
      /** Time a client has to send the request line and headers; then 408. */
      headersTimeoutMs: posInt().default(10_000),
      /** How long an idle keep-alive connection is kept open. */
      keepAliveTimeoutMs: posInt().default(30_000),
    })
    .prefault({}),
}).superRefine((config, ctx) => {
  if (config.cache.maxEntryBytes > config.cache.maxBytes) {
    ctx.addIssue({ code: 'custom', path: ['cache', 'maxEntryBytes'], input: config.cache.maxEntryBytes, message: `must not exceed cache.maxBytes (${config.cache.maxBytes})` });
  }
});

/** The validated, defaulted config. */
export type Config = z.infer<typeof configSchema>;
export type RewriteTemplates = z.infer<typeof rewriteTemplatesSchema>;
export type UpstreamSetting = z.infer<typeof upstreamSetting>;
export type UpstreamEntryConfig = z.infer<typeof upstreamEntry>;
export type PrivateRule = z.infer<typeof privateRule>;

/**
 * Validates raw JSON; returns the config or every problem as
 * "field.path message, got <input>" lines.
 */
export function validateConfig(raw: unknown): { ok: true; config: Config } | { ok: false; problems: string[] } {
  const result = configSchema.safeParse(raw, { reportInput: true });
  if (result.success) return { ok: true, config: result.data };
  const problems = result.error.issues.flatMap(expandUnion).map((issue) => {
    const where = issue.path.length ? issue.path.join('.') : '(top level)';
    if (issue.code === 'unrecognized_keys') return `${where}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
    const got = 'input' in issue ? `, got ${describe(issue.input)}` : '';
    return `${where} ${issue.message}${got}`;
  });
  return { ok: false, problems };
}

type Issue = z.core.$ZodIssue;

/**
 * A union whose every branch failed says only "Invalid input". When exactly
 * one branch got the right type of input (`upstream` given as an array, a
 * private rule's `upstream` as a string), its own issues are the useful ones.
 */
function expandUnion(issue: Issue): Issue[] {
  if (issue.code !== 'invalid_union' && issue.code !== 'invalid_key') return [issue];
  if (issue.code === 'invalid_key') return issue.issues.map((sub) => ({ ...sub, path: [...issue.path, ...sub.path] }) as Issue);
  const typed = issue.errors.filter((branch) => !branch.some((sub) => sub.code === 'invalid_type' && sub.path.length === 0));
  if (typed.length !== 1) return [issue];
  return (typed[0] as Issue[]).flatMap((sub) => expandUnion({ ...sub, path: [...issue.path, ...sub.path] } as Issue));
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const s = JSON.stringify(value);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
