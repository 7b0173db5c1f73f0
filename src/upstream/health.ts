/**
 * @module upstream/health
 * Passive health of one chain entry: after `maxFailures` failures in a row
 * (refused, timeout, 5xx) the entry is skipped for `cooldownMs`; then one
 * request probes it: success makes it healthy, failure cools it down again.
 * State without I/O: the clock is injected and changes are reported to a
 * callback (logs and metrics are the caller's).
 * Must not: send requests, or decide what a skipped entry means for the chain.
 */

export type HealthState = 'healthy' | 'cooling' | 'probing';

export interface HealthOptions {
  /** Failures in a row that start a cool-down; default 3. */
  maxFailures: number;
  /** Cool-down length in ms; default 10 000. */
  cooldownMs: number;
  /** Milliseconds clock; default Date.now. */
  now?: () => number;
  /** Called on every state change. */
  onChange?: (state: HealthState, failures: number) => void;
}

export class Health {
  #state: HealthState = 'healthy';
  #failures = 0;
  #until = 0;
  readonly #opts: HealthOptions;
  readonly #now: () => number;

  constructor(opts: HealthOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  get state(): HealthState {
    return this.#state;
  }

  /** Failures in a row so far. */
  get failures(): number {
    return this.#failures;
  }

  /** Milliseconds until a cooling entry is probed again (0 when not cooling). */
  get cooldownLeftMs(): number {
    return this.#state === 'cooling' ? Math.max(0, this.#until - this.#now()) : 0;
  }

  /** True when the entry is not cooling down (or its cool-down is over). */
  get available(): boolean {
    return this.#state !== 'cooling' || this.#now() >= this.#until;
  }

  /**
   * May a request go to this entry now? A healthy entry: yes. A cooling one:
   * no, until the cool-down ends; then exactly one request probes it, and
   * the others are refused until the probe's outcome is known.
   */
  admit(): boolean {
    if (this.#state === 'healthy') return true;
    if (this.#state === 'probing') return false;
    if (this.#now() < this.#until) return false;
    this.#set('probing');
    return true;
  }

  success(): void {
    this.#failures = 0;
    if (this.#state !== 'healthy') this.#set('healthy');
  }

  failure(): void {
    this.#failures++;
    if (this.#state === 'probing' || (this.#state === 'healthy' && this.#failures >= this.#opts.maxFailures)) {
      this.#until = this.#now() + this.#opts.cooldownMs;
      this.#set('cooling');
    }
  }

  #set(state: HealthState): void {
    this.#state = state;
    this.#opts.onChange?.(state, this.#failures);
  }
}
