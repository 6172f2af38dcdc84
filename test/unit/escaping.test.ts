import {
  slackText,
  teamsMarkdown,
  terminalSafeJson,
  withoutControls,
  withoutControlsDeep,
} from '../../src/escaping';

describe('withoutControls', () => {
  it.each([
    ['plain name', 'plain name'],
    ['a\nb\r\nc\td', 'a b  c d'],
    ['\u001b[31mred\u001b[0m', '[31mred[0m'],
    ['\u009b2J bell\u0007 nul\u0000 del\u007f', '2J bell nul del'],
    ['\u202eevil\u202c \u2066x\u2069', 'evil x'],
    ['ünïcödé ✓ 日本', 'ünïcödé ✓ 日本'],
  ])('%j → %j', (input, expected) => {
    expect(withoutControls(input)).toBe(expected);
  });

  it('reaches every string of a value', () => {
    expect(withoutControlsDeep({ a: ['x\u001by', 1, null], b: { c: 'p\nq' } })).toEqual({
      a: ['xy', 1, null],
      b: { c: 'p q' },
    });
  });
});

describe('terminalSafeJson', () => {
  it('leaves no raw C1, DEL or bidi control, and parses back to the same value', () => {
    const value = { name: 'a\u009b31m\u007f\u202eb\u001b[2J', n: 1 };
    const json = terminalSafeJson(JSON.stringify(value));
    expect(json).not.toMatch(/[\u007f-\u009f\u202a-\u202e]/);
    expect(JSON.parse(json)).toEqual(value);
  });
});

describe('slackText', () => {
  it('sends & < > as entities only', () => {
    expect(slackText('<!channel> <https://x|y> a&b *bold*')).toBe(
      '&lt;!channel&gt; &lt;https://x|y&gt; a&amp;b *bold*',
    );
  });
});

describe('teamsMarkdown', () => {
  it('escapes link, emphasis, code, HTML and entity characters with a backslash (Adaptive Cards)', () => {
    expect(teamsMarkdown('[a](http://x) **b** _c_ `d` <e> &amp; \\')).toBe(
      '\\[a\\]\\(http://x\\) \\*\\*b\\*\\* \\_c\\_ \\`d\\` \\<e\\> \\&amp; \\\\',
    );
  });

  it('with html (MessageCard): HTML characters as entities', () => {
    expect(teamsMarkdown('[a](x) <b>&</b>', { html: true })).toBe('\\[a\\]\\(x\\) &lt;b&gt;&amp;&lt;/b&gt;');
  });
});
