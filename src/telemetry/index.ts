/**
 * Logging and redaction. Every secret value this process sees (new client secrets, the configured
 * client secret, PATs) is registered here, and every log line, event property, error message and
 * output string passes through `redact` before it leaves the process (DESIGN invariant 6).
 */

const MASK = '***';

/** Shapes that are secrets whatever their origin: Entra client secrets, JWTs, Basic credentials. */
const SECRET_PATTERNS: RegExp[] = [
  /[A-Za-z0-9_\-.]{3}\dQ~[A-Za-z0-9_\-.~]{31,}/g, // Entra ID client secret values (`xxx8Q~…`)
  /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g, // JWT access tokens
  /(Basic|Bearer)\s+[A-Za-z0-9+/=._-]{16,}/gi, // Authorization header values
  /("?(?:serviceprincipalkey|client_secret|secretText|clientSecret|accesstoken|password)"?\s*[:=]\s*")[^"]+(")/gi,
];

class Redactor {
  private readonly secrets = new Set<string>();

  /** Registers a value that must never be written anywhere. Short values are ignored (they would mask noise). */
  register(value: string | undefined | null): void {
    if (value && value.length >= 8) this.secrets.add(value);
  }

  redact(text: string): string {
    let out = text;
    for (const secret of this.secrets) if (out.includes(secret)) out = out.split(secret).join(MASK);
    for (const pattern of SECRET_PATTERNS) {
      out = out.replace(pattern, (match: string, ...groups: unknown[]) => {
        const [open, close] = groups as [string | undefined, string | undefined];
        return typeof open === 'string' && typeof close === 'string' && match.startsWith(open)
          ? `${open}${MASK}${close}`
          : MASK;
      });
    }
    return out;
  }

  /** Redacts every string inside a JSON-like value. */
  redactValue<T>(value: T): T {
    if (typeof value === 'string') return this.redact(value) as T;
    if (Array.isArray(value)) return value.map((v: unknown) => this.redactValue(v)) as T;
    if (value && typeof value === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = this.redactValue(v);
      return out as T;
    }
    return value;
  }
}

/** The process-wide redactor: registered secrets are masked in every sink. */
export const redactor = new Redactor();

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(message: string, properties?: Record<string, unknown>): void;
  info(message: string, properties?: Record<string, unknown>): void;
  warn(message: string, properties?: Record<string, unknown>): void;
  error(message: string, properties?: Record<string, unknown>): void;
}

type LogSink = (level: LogLevel, line: string) => void;

/** A logger that redacts, then hands one line per entry to `sink`. */
export function createLogger(sink: LogSink, minLevel: LogLevel = 'info'): Logger {
  const order: LogLevel[] = ['debug', 'info', 'warn', 'error'];
  const write =
    (level: LogLevel) =>
    (message: string, properties?: Record<string, unknown>): void => {
      if (order.indexOf(level) < order.indexOf(minLevel)) return;
      const props = properties && Object.keys(properties).length ? ` ${JSON.stringify(properties)}` : '';
      sink(level, redactor.redact(`${message}${props}`));
    };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}

/** Discards everything (tests that do not look at logs). */
export const silentLogger: Logger = createLogger(() => undefined);

/** Redacted message of any thrown value. */
export function errorMessage(err: unknown): string {
  const text = err instanceof Error ? err.message : typeof err === 'string' ? err : JSON.stringify(err);
  return redactor.redact(text ?? 'unknown error');
}
