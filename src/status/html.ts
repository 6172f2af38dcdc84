/**
 * The status page's `html` template tag: every value interpolated into it is safe text, escaped by
 * default; markup goes in only as `Html`, which `html` itself builds or `trustedHtml` wraps (a
 * constant fragment such as the stylesheet). So a value cannot add markup by being forgotten.
 *
 * A value's text is made safe by `text`: control characters removed (bidi overrides would reorder a
 * name as shown), redacted (DESIGN invariant 6: secrets never reach the page), then HTML-escaped for
 * element content and double- or single-quoted attributes. Maintained template-tag packages only
 * escape (escape-html-template-tag, escape-goat's `htmlEscape`) or also rewrite attributes
 * (html-template-tag adds quotes and drops values inside `style` attributes), so this is a small tag
 * over `escapeHtml`, `withoutControls` and the redactor.
 *
 * Prettier formats `html` templates as HTML unless told not to: `.prettierrc.json` turns that off for
 * `src/status`, since reflowing the markup would change the page.
 */
import { withoutControls } from '../escaping';
import { redactor } from '../telemetry';

const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** HTML-escapes text for element content and double- or single-quoted attributes. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => ENTITIES[ch] ?? ch);
}

/** A value as safe HTML text: control characters removed, redacted, then escaped. */
function text(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return '';
  return escapeHtml(redactor.redact(withoutControls(String(value))));
}

let makeHtml: (markup: string) => Html;

/** Markup: built by `html` (its values escaped) or wrapped by `trustedHtml`; nothing else makes one. */
export class Html {
  static {
    makeHtml = (markup) => new Html(markup);
  }

  private constructor(private readonly markup: string) {}

  toString(): string {
    return this.markup;
  }
}

/** What `html` takes: text (escaped), nothing (`null`, `undefined`: empty), or markup, alone or in a list. */
type HtmlValue = Html | string | number | null | undefined | readonly Html[];

function render(value: HtmlValue): string {
  if (value instanceof Html) return value.toString();
  if (Array.isArray(value)) return (value as readonly Html[]).join('');
  return text(value as string | number | null | undefined);
}

/** The escaping template tag: ``html`<td>${name}</td>` `` writes `name` as text. */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  let out = strings[0] ?? '';
  values.forEach((value, i) => {
    out += render(value) + (strings[i + 1] ?? '');
  });
  return makeHtml(out);
}

/** Already-built markup taken as is: only for constants of this code, never for a value from outside. */
export function trustedHtml(markup: string): Html {
  return makeHtml(markup);
}

/** `parts` one after another, `separator` between them. */
export function joinHtml(parts: readonly Html[], separator: Html): Html {
  return makeHtml(parts.join(separator.toString()));
}
