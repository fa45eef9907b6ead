/**
 * Keeps each ACME listener's certificate in force, in the primary isolate:
 * a stored certificate is used while it is valid, a missing one is ordered
 * at once, and renewal is a timer set for the moment `renew_before` is
 * reached. A failed order is retried with backoff (minutes, then hours),
 * logged once per change of outcome, and the certificate in force stays.
 * Listeners see each new certificate through the storage folder they watch.
 *
 * @module
 */

import { type AcmeConfig, type Config, listenersOf } from "../config/types.ts";
import { AcmeStorage } from "./acme_storage.ts";
import { issueCertificate, type IssuedCertificate } from "./issue_certificate.ts";

/** The waits before the retries of a failing order, then the last one over and over. */
const RETRY_DELAYS_MS = [60_000, 120_000, 300_000, 600_000, 1_800_000, 3_600_000, 21_600_000];
/** A certificate just issued is not renewed sooner than this, whatever `renew_before` says. */
const MIN_RENEWAL_GAP_MS = 3_600_000;
/** setTimeout's longest delay (about 24.8 days); longer waits are chained. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * One certificate in `GET /status` and the dashboard.
 *
 * @example
 * ```ts
 * const status: CertificateStatus = {
 *   domains: ["example.com"], directory: "https://acme-v02.api.letsencrypt.org/directory",
 *   not_after: "2027-03-01T00:00:00.000Z", renew_at: "2027-01-30T00:00:00.000Z", last_error: null,
 * };
 * ```
 */
export interface CertificateStatus {
  domains: string[];
  directory: string;
  /** When the certificate in force expires; null until one is issued. */
  not_after: string | null;
  /** When the next order is due (a renewal or a retry); null while one runs. */
  renew_at: string | null;
  /** The last order's failure, null once one succeeded. */
  last_error: string | null;
}

/** The manager's figures for the metrics. */
export interface AcmeStats {
  orders: { success: number; failure: number };
  certificates: CertificateStatus[];
}

/**
 * Every ACME certificate of the config in force.
 *
 * @example
 * ```ts
 * const acme = new AcmeManager(console.error);
 * acme.configure(config); // orders what is missing, schedules renewals
 * await acme.close();
 * ```
 */
export class AcmeManager {
  readonly #log: (line: string) => void;
  readonly #retryDelaysMs: readonly number[];
  readonly #managed = new Map<string, ManagedCertificate>();
  readonly orders = { success: 0, failure: 0 };

  /** `retryDelaysMs`: the waits before the retries of a failing order, the last one repeated. */
  constructor(log: (line: string) => void, retryDelaysMs: readonly number[] = RETRY_DELAYS_MS) {
    this.#log = log;
    this.#retryDelaysMs = retryDelaysMs;
  }

  /**
   * Manages the certificates `config` asks for: new sets of domains are
   * ordered (the certificate in force stays until then), dropped ones are
   * let go, and changed settings (`renew_before`, `email`, `ca`) apply.
   */
  configure(config: Config): void {
    const wanted = new Map<string, AcmeConfig>();
    for (const { acme } of listenersOf(config)) {
      if (acme !== undefined) wanted.set(identityOf(acme), acme);
    }
    for (const [identity, managed] of this.#managed) {
      if (!wanted.has(identity)) {
        managed.stop();
        this.#managed.delete(identity);
      }
    }
    for (const [identity, acme] of wanted) {
      const managed = this.#managed.get(identity);
      if (managed !== undefined) managed.update(acme);
      else {
        this.#managed.set(
          identity,
          new ManagedCertificate(acme, {
            orders: this.orders,
            log: this.#log,
            retryDelaysMs: this.#retryDelaysMs,
          }),
        );
      }
    }
  }

  stats(): AcmeStats {
    return {
      orders: { ...this.orders },
      certificates: [...this.#managed.values()].map((managed) => managed.status()),
    };
  }

  /** Stops every timer and abandons the orders in flight. */
  async close(): Promise<void> {
    await Promise.all([...this.#managed.values()].map((managed) => managed.stop()));
    this.#managed.clear();
  }
}

/** One certificate is one set of names at one CA in one storage folder. */
function identityOf(acme: AcmeConfig): string {
  return JSON.stringify([acme.storage, acme.directory, [...acme.domains].sort()]);
}

/** One certificate's lifecycle: the stored one, orders, renewal and retries. */
class ManagedCertificate {
  #acme: AcmeConfig;
  readonly #storage: AcmeStorage;
  readonly #orders: { success: number; failure: number };
  readonly #log: (line: string) => void;
  readonly #retryDelaysMs: readonly number[];
  readonly #abort = new AbortController();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #due: number | undefined;
  #running: Promise<void> | undefined;
  #current: IssuedCertificate | undefined;
  #failures = 0;
  #lastError: string | undefined;
  /** The last outcome logged, so that a repeated one is not. */
  #lastLogged: string | undefined;

  constructor(
    acme: AcmeConfig,
    shared: {
      orders: { success: number; failure: number };
      log: (line: string) => void;
      retryDelaysMs: readonly number[];
    },
  ) {
    this.#acme = acme;
    this.#storage = new AcmeStorage(acme);
    this.#orders = shared.orders;
    this.#log = shared.log;
    this.#retryDelaysMs = shared.retryDelaysMs;
    const stored = this.#storage.readCertificate(acme.domains);
    if ("problem" in stored) {
      this.#schedule(Date.now());
      return;
    }
    this.#current = stored;
    this.#log(
      `acme: using the stored certificate for ${this.#names()}, valid until ` +
        `${stored.notAfter.toISOString()}${
          this.#renewalDue() <= Date.now() ? ", renewing now" : ""
        }`,
    );
    this.#schedule(this.#renewalDue());
  }

  /**
   * Takes the settings of a reloaded config; a changed `renew_before`
   * reschedules the renewal (a reload that leaves it alone changes no timer).
   */
  update(acme: AcmeConfig): void {
    const rescheduled = acme.renew_before !== this.#acme.renew_before;
    this.#acme = acme;
    if (
      rescheduled && this.#current !== undefined && this.#running === undefined &&
      this.#failures === 0
    ) {
      this.#schedule(this.#renewalDue());
    }
  }

  status(): CertificateStatus {
    return {
      domains: this.#acme.domains,
      directory: this.#acme.directory,
      not_after: this.#current?.notAfter.toISOString() ?? null,
      renew_at: this.#running === undefined && this.#due !== undefined
        ? new Date(this.#due).toISOString()
        : null,
      last_error: this.#lastError ?? null,
    };
  }

  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    this.#abort.abort();
    await this.#running;
  }

  /** When `renew_before` is reached for the certificate in force. */
  #renewalDue(): number {
    const { notBefore, notAfter } = this.#current!;
    const before = this.#acme.renew_before ??
      (notAfter.getTime() - notBefore.getTime()) / 3;
    return notAfter.getTime() - before;
  }

  /** Runs an order at `at` (Unix ms), chaining timers past setTimeout's longest delay. */
  #schedule(at: number): void {
    clearTimeout(this.#timer);
    this.#due = at;
    const wait = at - Date.now();
    this.#timer = setTimeout(
      () => wait > MAX_TIMER_MS ? this.#schedule(at) : void this.#order(),
      Math.max(0, Math.min(wait, MAX_TIMER_MS)),
    );
  }

  #order(): Promise<void> {
    return this.#running ??= (async () => {
      const names = this.#names();
      try {
        const issued = await issueCertificate(this.#acme, this.#storage, this.#abort.signal);
        this.#orders.success++;
        this.#current = issued;
        this.#failures = 0;
        this.#lastError = undefined;
        let due = this.#renewalDue();
        let note = "";
        if (due < Date.now() + MIN_RENEWAL_GAP_MS) {
          due = Date.now() + MIN_RENEWAL_GAP_MS;
          note = " (renew_before is longer than what it has left: renewing again in 1h)";
        }
        this.#outcome(
          `acme: certificate for ${names} issued by ${this.#acme.directory}, valid until ` +
            `${issued.notAfter.toISOString()}${note}`,
        );
        this.#schedule(due);
      } catch (error) {
        if (this.#abort.signal.aborted) return;
        this.#orders.failure++;
        const reason = error instanceof Error ? error.message : String(error);
        this.#lastError = reason;
        const delays = this.#retryDelaysMs;
        const delay = delays[Math.min(this.#failures, delays.length - 1)];
        this.#failures++;
        const keeping = this.#current === undefined
          ? "no certificate for all of them yet"
          : `the certificate in force (until ${this.#current.notAfter.toISOString()}) stays`;
        this.#outcome(
          `acme: ordering a certificate for ${names} failed: ${reason}; ${keeping}; ` +
            `retrying in ${formatDelay(delay)}`,
          `failed: ${reason}`,
        );
        this.#schedule(Date.now() + delay);
      } finally {
        this.#running = undefined;
      }
    })();
  }

  /** Logs `line` unless `outcome` (the line itself by default) was the last one logged. */
  #outcome(line: string, outcome = "issued"): void {
    if (outcome === this.#lastLogged && outcome !== "issued") return;
    this.#lastLogged = outcome;
    this.#log(line);
  }

  #names(): string {
    return this.#acme.domains.join(", ");
  }
}

function formatDelay(ms: number): string {
  if (ms < 60_000) return `${ms / 1000}s`;
  return ms < 3_600_000 ? `${ms / 60_000}m` : `${ms / 3_600_000}h`;
}
