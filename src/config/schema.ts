/**
 * @module config/schema
 * The one definition of the config file: zod schema, embedded defaults and the
 * derived `Config` type. Unknown keys are rejected at every level.
 * Must not: read files or the environment (see config/load.ts).
 */
import { z } from 'zod';

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

export const configSchema = z.strictObject({
  listen: z
    .strictObject({
      http: address.default('127.0.0.1:8080'),
      https: address.default('127.0.0.1:8443'),
      admin: address.default('127.0.0.1:9180'),
    })
    .prefault({}),
  /** Base URL of the backend; a path here is a prefix for every rewritten path. */
  upstream: httpUrl.default('https://proxy.golang.org'),
  rewrite: z
    .union([z.enum(rewritePresets, { error: 'must be "internal", "goproxy" or an object of templates' }), rewriteTemplatesSchema])
    .default('goproxy'),
  cache: z
    .strictObject({
      maxBytes: posInt().default(256 * 1024 * 1024),
      maxEntryBytes: posInt().default(64 * 1024 * 1024),
      mutableTtlMs: nonNegInt().default(60_000),
      notFoundTtlMs: nonNegInt().default(30_000),
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
    })
    .prefault({}),
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

/**
 * Validates raw JSON; returns the config or every problem as
 * "field.path message, got <input>" lines.
 */
export function validateConfig(raw: unknown): { ok: true; config: Config } | { ok: false; problems: string[] } {
  const result = configSchema.safeParse(raw, { reportInput: true });
  if (result.success) return { ok: true, config: result.data };
  const problems = result.error.issues.map((issue) => {
    const where = issue.path.length ? issue.path.join('.') : '(top level)';
    if (issue.code === 'unrecognized_keys') return `${where}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
    const got = 'input' in issue ? `, got ${describe(issue.input)}` : '';
    return `${where} ${issue.message}${got}`;
  });
  return { ok: false, problems };
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const s = JSON.stringify(value);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
