/**
 * Text from the services (connection, project and organization names, error messages, diagnoses
 * quoting them) is anyone's input: whoever may name a service connection writes it. Before it is
 * shown it is made inert for where it goes: markup escaped per webhook format, and control
 * characters (terminal escape sequences) removed for a terminal. Redaction comes first, always:
 * escaping changes the characters a registered secret is matched by.
 */

/**
 * C0 controls and DEL, C1 controls (U+0080-U+009F: 8-bit CSI U+009B starts an escape sequence in
 * some terminals), and the bidirectional embeddings, overrides and isolates that reorder what is
 * displayed (CVE-2021-42574, "Trojan Source").
 */
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
const LINE_BREAKS_AND_TABS = /[\t\n\v\f\r]/g;

/** `text` on one line with no control character: line breaks and tabs become spaces, the rest go. */
export function withoutControls(text: string): string {
  return text.replace(LINE_BREAKS_AND_TABS, ' ').replace(CONTROLS, '');
}

/** Every string inside a JSON-like value without control characters (`withoutControls`). */
export function withoutControlsDeep<T>(value: T): T {
  if (typeof value === 'string') return withoutControls(value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => withoutControlsDeep(v)) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = withoutControlsDeep(v);
    return out as T;
  }
  return value;
}

/**
 * JSON text for a terminal: `JSON.stringify` escapes C0 controls but leaves DEL, C1 and the bidi
 * controls raw; they are written as `\uXXXX` escapes too. Outside strings JSON text is ASCII, so
 * only string contents change, and parsing gives back the very same values.
 */
export function terminalSafeJson(json: string): string {
  return json.replace(
    /[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/**
 * Slack mrkdwn: `&`, `<` and `>` are its control characters (links `<url|text>`, mentions
 * `<!channel>`, `<@U123>`) and must be sent as HTML entities ("Formatting text for app surfaces",
 * Escaping text, https://api.slack.com/reference/surfaces/formatting#escaping). Formatting
 * characters (`*`, `_`, `~`) only style text and cannot be escaped in mrkdwn.
 */
export function slackText(text: string): string {
  return withoutControls(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * Teams card markdown ("Format cards in Microsoft Teams",
 * https://learn.microsoft.com/microsoftteams/platform/task-modules-and-cards/cards/cards-format):
 * Adaptive Card TextBlocks and facts take a markdown subset (bold, italic, lists, links `[t](url)`),
 * no HTML; connector cards (MessageCard) take markdown and a limited HTML. The characters that make
 * links, emphasis or code get a backslash (CommonMark's escape); `<`, `>` (HTML, autolinks) and `&`
 * (entity references) too, or, with `html`, become HTML entities (MessageCard).
 * No public source says whether every Teams client honours backslash escapes: either way the text
 * cannot form a link (with escapes unread, `]\(` never opens one), so this is safe under both
 * readings.
 */
export function teamsMarkdown(text: string, options: { html?: boolean } = {}): string {
  const plain = withoutControls(text);
  if (options.html)
    return plain
      .replace(/[\\`*_~[\]()!]/g, (c) => `\\${c}`)
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;');
  // `&` too: markdown decodes entity references (`&amp;` would read `&`).
  return plain.replace(/[\\`*_~[\]()!<>&]/g, (c) => `\\${c}`);
}
