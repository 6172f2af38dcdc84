import { OffHeapTexts } from '../../src/remediation/offHeapTexts';

describe('OffHeapTexts', () => {
  it('gives back each text as written, multi-byte characters included, across growth', () => {
    const store = new OffHeapTexts(1, 1024); // small chunks: the texts span many
    const texts = Array.from({ length: 3000 }, (_, i) => `{"name":"connexión ${i} ✓","n":${i}}`);
    // Written out of order, as finished reports are.
    for (let i = texts.length - 1; i >= 0; i -= 1) store.set(i, texts[i]!);
    for (let i = 0; i < texts.length; i += 1) expect(store.get(i)).toBe(texts[i]);
  });

  it('of() holds the texts in slots 0…n-1; an empty text is a text, a deleted slot is gone', () => {
    const store = OffHeapTexts.of(['a', '', 'ç']);
    expect([store.get(0), store.get(1), store.get(2)]).toEqual(['a', '', 'ç']);
    expect(store.has(1)).toBe(true);
    store.delete(0);
    expect(store.get(0)).toBeUndefined();
    expect(store.has(0)).toBe(false);
    expect(store.get(99)).toBeUndefined();
  });

  it('holds a few texts in a few KiB (a one-connection run), not a whole chunk', () => {
    const before = process.memoryUsage().arrayBuffers;
    const store = OffHeapTexts.of(['{"id":"a"}', '{"id":"b"}']);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 1024);
    expect(store.get(1)).toBe('{"id":"b"}');
  });

  it('keeps the texts outside the JavaScript heap', () => {
    const before = process.memoryUsage().arrayBuffers;
    const store = OffHeapTexts.of(Array.from({ length: 2000 }, (_, i) => `${'x'.repeat(1000)}${i}`));
    expect(process.memoryUsage().arrayBuffers - before).toBeGreaterThanOrEqual(2_000_000);
    expect(store.get(1999)).toBe(`${'x'.repeat(1000)}1999`);
  });
});
