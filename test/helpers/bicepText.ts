/**
 * A small Bicep tokenizer and reader, enough to check templates without the Bicep compiler (which
 * no package registry these machines reach provides). It knows Bicep's lexical rules that matter
 * for reading declarations honestly: `//` and `/* *\/` comments, single-quoted strings with `\`
 * escapes and `${…}` interpolation (nested strings and braces inside), `'''` multi-line strings
 * without either, and statements that end at a newline outside brackets. On top of the tokens:
 * top-level declarations (with their decorators and the comment lines just above them), every
 * `resource` declaration at any depth, and the properties of an object literal.
 */

export type TokenType = 'ident' | 'string' | 'number' | 'punct' | 'newline' | 'comment';

export interface Token {
  type: TokenType;
  /** Identifier, punctuation, comment text, or a string's content (interpolations kept raw). */
  value: string;
  line: number;
  /** For strings: the source text of each `${…}` interpolation. */
  interpolations?: string[];
  /** For strings: a `'''` multi-line string. */
  multiline?: boolean;
}

export class BicepSyntaxError extends Error {}

const IDENT_START = /[A-Za-z_]/;
const IDENT_PART = /[A-Za-z0-9_]/;
const TWO_CHAR_PUNCT = new Set(['==', '!=', '<=', '>=', '&&', '||', '=>', '??', '.?', '!.']);

export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  const n = text.length;
  const at = (k: number): string => text[k] ?? '';

  /** Reads a single-quoted string starting at `i` (on the quote); returns the index after it. */
  function readString(start: number): {
    end: number;
    value: string;
    interpolations: string[];
    lines: number;
  } {
    let k = start + 1;
    let value = '';
    let lines = 0;
    const interpolations: string[] = [];
    while (k < n) {
      const c = at(k);
      if (c === '\\') {
        value += c + at(k + 1);
        k += 2;
        continue;
      }
      if (c === "'") return { end: k + 1, value, interpolations, lines };
      if (c === '\n') throw new BicepSyntaxError(`line ${line + lines}: newline in a single-quoted string`);
      if (c === '$' && at(k + 1) === '{') {
        // Interpolation: up to the matching brace, skipping nested strings.
        let depth = 1;
        let m = k + 2;
        while (m < n && depth > 0) {
          const d = at(m);
          if (d === "'") {
            m = readString(m).end;
            continue;
          }
          if (d === '{') depth += 1;
          else if (d === '}') depth -= 1;
          else if (d === '\n') lines += 1;
          m += 1;
        }
        if (depth !== 0) throw new BicepSyntaxError(`line ${line}: unterminated interpolation`);
        interpolations.push(text.slice(k + 2, m - 1));
        value += text.slice(k, m);
        k = m;
        continue;
      }
      value += c;
      k += 1;
    }
    throw new BicepSyntaxError(`line ${line}: unterminated string`);
  }

  while (i < n) {
    const c = at(i);
    if (c === '\n') {
      tokens.push({ type: 'newline', value: '\n', line });
      line += 1;
      i += 1;
    } else if (c === ' ' || c === '\t' || c === '\r') {
      i += 1;
    } else if (c === '/' && at(i + 1) === '/') {
      const end = text.indexOf('\n', i);
      const stop = end === -1 ? n : end;
      tokens.push({ type: 'comment', value: text.slice(i + 2, stop).trim(), line });
      i = stop;
    } else if (c === '/' && at(i + 1) === '*') {
      const end = text.indexOf('*/', i + 2);
      if (end === -1) throw new BicepSyntaxError(`line ${line}: unterminated block comment`);
      const body = text.slice(i + 2, end);
      tokens.push({ type: 'comment', value: body.trim(), line });
      line += body.split('\n').length - 1;
      i = end + 2;
    } else if (text.startsWith("'''", i)) {
      const end = text.indexOf("'''", i + 3);
      if (end === -1) throw new BicepSyntaxError(`line ${line}: unterminated multi-line string`);
      const body = text.slice(i + 3, end);
      tokens.push({ type: 'string', value: body, line, multiline: true, interpolations: [] });
      line += body.split('\n').length - 1;
      i = end + 3;
    } else if (c === "'") {
      const s = readString(i);
      tokens.push({ type: 'string', value: s.value, line, interpolations: s.interpolations });
      line += s.lines;
      i = s.end;
    } else if (IDENT_START.test(c)) {
      let k = i + 1;
      while (k < n && IDENT_PART.test(at(k))) k += 1;
      tokens.push({ type: 'ident', value: text.slice(i, k), line });
      i = k;
    } else if (/[0-9]/.test(c)) {
      let k = i + 1;
      while (k < n && /[0-9.]/.test(at(k))) k += 1;
      tokens.push({ type: 'number', value: text.slice(i, k), line });
      i = k;
    } else {
      const two = text.slice(i, i + 2);
      if (TWO_CHAR_PUNCT.has(two)) {
        tokens.push({ type: 'punct', value: two, line });
        i += 2;
      } else {
        tokens.push({ type: 'punct', value: c, line });
        i += 1;
      }
    }
  }
  return tokens;
}

const OPEN: Record<string, string> = { '{': '}', '[': ']', '(': ')' };

/** Index of the bracket closing the one at `open`. */
export function matching(tokens: Token[], open: number): number {
  const stack: string[] = [];
  for (let k = open; k < tokens.length; k++) {
    const t = tokens[k]!;
    if (t.type !== 'punct') continue;
    if (OPEN[t.value]) stack.push(OPEN[t.value]!);
    else if (t.value === '}' || t.value === ']' || t.value === ')') {
      if (stack.pop() !== t.value) throw new BicepSyntaxError(`line ${t.line}: unbalanced '${t.value}'`);
      if (stack.length === 0) return k;
    }
  }
  throw new BicepSyntaxError(`line ${tokens[open]?.line ?? 0}: unclosed '${tokens[open]?.value ?? ''}'`);
}

export interface Decorator {
  name: string;
  /** Tokens of the argument list (inside the parentheses). */
  args: Token[];
}

export interface Declaration {
  keyword: string;
  /** Symbolic name (param, var, resource, module, output), or '' for others. */
  name: string;
  line: number;
  decorators: Decorator[];
  /** Comment lines directly above the declaration (and its decorators). */
  comments: string[];
  /** Every token of the statement, keyword to end. */
  tokens: Token[];
}

const KEYWORDS = new Set([
  'param',
  'var',
  'resource',
  'module',
  'output',
  'extension',
  'targetScope',
  'using',
  'type',
  'func',
  'import',
  'metadata',
]);

/** Top-level statements: each keyword statement with the decorators and comments above it. */
export function declarations(tokens: Token[]): Declaration[] {
  const out: Declaration[] = [];
  let decorators: Decorator[] = [];
  let comments: string[] = [];
  let k = 0;
  while (k < tokens.length) {
    const t = tokens[k]!;
    if (t.type === 'newline') {
      // A blank line separates a comment block from what follows.
      if (tokens[k - 1]?.type === 'newline' && decorators.length === 0) comments = [];
      k += 1;
      continue;
    }
    if (t.type === 'comment') {
      comments.push(t.value);
      k += 1;
      continue;
    }
    if (t.type === 'punct' && t.value === '@') {
      const name = tokens[k + 1];
      const paren = tokens[k + 2];
      if (name?.type !== 'ident') throw new BicepSyntaxError(`line ${t.line}: '@' without a decorator name`);
      if (paren?.value === '(') {
        const close = matching(tokens, k + 2);
        decorators.push({ name: name.value, args: tokens.slice(k + 3, close) });
        k = close + 1;
      } else {
        decorators.push({ name: name.value, args: [] });
        k += 2;
      }
      continue;
    }
    if (t.type === 'ident' && KEYWORDS.has(t.value)) {
      // The statement ends at the first newline outside brackets.
      let end = k + 1;
      while (end < tokens.length && tokens[end]!.type !== 'newline') {
        const v = tokens[end]!;
        end = v.type === 'punct' && OPEN[v.value] ? matching(tokens, end) + 1 : end + 1;
      }
      const second = tokens[k + 1];
      const named = ['param', 'var', 'resource', 'module', 'output', 'type', 'func'].includes(t.value);
      out.push({
        keyword: t.value,
        name: named && second?.type === 'ident' ? second.value : '',
        line: t.line,
        decorators,
        comments,
        tokens: tokens.slice(k, end),
      });
      decorators = [];
      comments = [];
      k = end;
      continue;
    }
    throw new BicepSyntaxError(`line ${t.line}: unexpected '${t.value}' at the top level`);
  }
  return out;
}

export interface ResourceDeclaration {
  symbol: string;
  /** The type string as written, e.g. `Microsoft.Web/sites@2024-04-01`. */
  type: string;
  line: number;
  existing: boolean;
  /** Tokens between the type string and the body: `existing`, `= if (…)`, `= [for … :`. */
  head: Token[];
  /** Index (in the token list) of the `{` that opens the body. */
  bodyStart: number;
  bodyEnd: number;
  /** Comment lines directly above the declaration. */
  comments: string[];
}

/** Every `resource` declaration at any depth (top level, nested, in loops, conditional). */
export function resources(tokens: Token[]): ResourceDeclaration[] {
  const out: ResourceDeclaration[] = [];
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k]!;
    if (t.type !== 'ident' || t.value !== 'resource') continue;
    const prev = previousSignificant(tokens, k);
    if (prev && prev.type !== 'newline') continue; // `resource` as a value
    if (tokens[k + 1]?.value === ':') continue; // `resource` as a property name
    const symbol = tokens[k + 1];
    const type = tokens[k + 2];
    if (symbol?.type !== 'ident' || type?.type !== 'string')
      throw new BicepSyntaxError(`line ${t.line}: a resource declaration needs a symbol and a type string`);
    let m = k + 3;
    const existing = tokens[m]?.value === 'existing';
    while (m < tokens.length && tokens[m]!.value !== '{') {
      const v = tokens[m]!;
      // Skip `if (…)` and the `[for … :` head up to the body's brace.
      m = v.value === '(' ? matching(tokens, m) + 1 : m + 1;
    }
    if (m >= tokens.length) throw new BicepSyntaxError(`line ${t.line}: resource without a body`);
    out.push({
      symbol: symbol.value,
      type: type.value,
      line: t.line,
      existing,
      head: tokens.slice(k + 3, m),
      bodyStart: m,
      bodyEnd: matching(tokens, m),
      comments: commentsAbove(tokens, k),
    });
  }
  return out;
}

function previousSignificant(tokens: Token[], k: number): Token | undefined {
  for (let m = k - 1; m >= 0; m--) if (tokens[m]!.type !== 'comment') return tokens[m];
  return undefined;
}

/** The comment lines directly above token `k` (no blank line between). */
function commentsAbove(tokens: Token[], k: number): string[] {
  const out: string[] = [];
  let m = k - 1;
  if (tokens[m]?.type === 'newline') m -= 1;
  while (m >= 0 && tokens[m]!.type === 'comment') {
    out.unshift(tokens[m]!.value);
    m -= 1;
    if (tokens[m]?.type === 'newline') m -= 1;
    else break;
  }
  return out;
}

/**
 * The properties of the object literal opening at `open`: key → the tokens of its value (a key is
 * an identifier or a string followed by `:` at the object's own level, first on its line).
 */
export function objectProperties(tokens: Token[], open: number): Map<string, Token[]> {
  if (tokens[open]?.value !== '{')
    throw new BicepSyntaxError(`line ${tokens[open]?.line ?? 0}: not an object`);
  const close = matching(tokens, open);
  const props = new Map<string, Token[]>();
  let k = open + 1;
  while (k < close) {
    const t = tokens[k]!;
    if (t.type === 'newline' || t.type === 'comment' || (t.type === 'punct' && t.value === ',')) {
      k += 1;
      continue;
    }
    if ((t.type === 'ident' || t.type === 'string') && tokens[k + 1]?.value === ':') {
      let end = k + 2;
      while (end < close && tokens[end]!.type !== 'newline' && tokens[end]!.value !== ',') {
        const v = tokens[end]!;
        end = v.type === 'punct' && OPEN[v.value] ? matching(tokens, end) + 1 : end + 1;
      }
      props.set(t.value, tokens.slice(k + 2, end));
      k = end;
      continue;
    }
    // A nested resource or a decorator inside a body: skip its statement.
    let end = k + 1;
    while (end < close && tokens[end]!.type !== 'newline') {
      const v = tokens[end]!;
      end = v.type === 'punct' && OPEN[v.value] ? matching(tokens, end) + 1 : end + 1;
    }
    k = end;
  }
  return props;
}

/** The source-like text of some tokens (for matching expressions). */
export function text(tokens: Token[]): string {
  return tokens
    .filter((t) => t.type !== 'comment' && t.type !== 'newline')
    .map((t) => (t.type === 'string' ? (t.multiline ? `'''${t.value}'''` : `'${t.value}'`) : t.value))
    .join(' ');
}
