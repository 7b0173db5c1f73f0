/**
 * @module upstream/redact
 * The config as it may be shown (a dump, `doctor`, a /debug page): every
 * upstream entry's extra header values replaced by "[redacted]", in the
 * public chain and in private rules. Auth tokens are never in the config
 * (only the file or variable that holds them). Pure.
 * Must not: change the config it is given.
 */
import type { Config, UpstreamSetting } from '../config/schema.js';

export const REDACTED = '[redacted]';

function redactSetting(setting: UpstreamSetting): UpstreamSetting {
  if (typeof setting === 'string') return setting;
  return setting.map((e) => (e.headers ? { ...e, headers: Object.fromEntries(Object.keys(e.headers).map((k) => [k, REDACTED])) } : e));
}

/** A copy of `config` safe to print or serve. */
export function redactConfig(config: Config): Config {
  return {
    ...config,
    upstream: redactSetting(config.upstream),
    private: config.private.map((rule) => (rule.upstream === undefined ? rule : { ...rule, upstream: redactSetting(rule.upstream) })),
  };
}
