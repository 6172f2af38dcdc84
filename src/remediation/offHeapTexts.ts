/**
 * Texts a run keeps for a while (connections waiting for their turn, listed rotation records, finished
 * reports) held outside the JavaScript heap, in Buffers of up to 1 MiB (memory, docs/performance.md). V8 lets
 * its heap grow to several times the data live in it before it collects (about four times on a
 * machine with memory to spare), so every megabyte kept on the heap costs several of resident
 * memory; Buffer memory is counted once. A slot is written once and read any number of times;
 * the bytes of a deleted slot are given back when the whole store is let go.
 */
export class OffHeapTexts {
  /** Filled chunks and the one being filled: no copy as the store grows, at most one chunk unused. */
  private readonly chunks: Buffer[] = [];
  private used = 0;
  /** Per slot: chunk, start byte, length + 1 (0: empty). */
  private spans: Uint32Array;

  constructor(
    slots = 64,
    private readonly chunkBytes = CHUNK_BYTES,
  ) {
    this.spans = new Uint32Array(Math.max(1, slots) * 3);
  }

  /** The texts in slots 0…n-1. */
  static of(texts: readonly string[]): OffHeapTexts {
    const store = new OffHeapTexts(texts.length);
    texts.forEach((text, slot) => store.set(slot, text));
    return store;
  }

  set(slot: number, text: string): void {
    const length = Buffer.byteLength(text, 'utf8');
    if (slot * 3 >= this.spans.length) {
      const spans = new Uint32Array(Math.max(slot * 3 + 3, this.spans.length * 2));
      spans.set(this.spans);
      this.spans = spans;
    }
    let chunk = this.chunks[this.chunks.length - 1];
    if (!chunk || this.used + length > chunk.length) {
      // Chunks double from 4 KiB up to `chunkBytes`: a one-connection run holds a few KiB, not MiBs.
      const size = Math.min(this.chunkBytes, (chunk?.length ?? 2048) * 2);
      chunk = Buffer.allocUnsafeSlow(Math.max(size, length));
      this.chunks.push(chunk);
      this.used = 0;
    }
    chunk.write(text, this.used, length, 'utf8');
    this.spans[slot * 3] = this.chunks.length - 1;
    this.spans[slot * 3 + 1] = this.used;
    this.spans[slot * 3 + 2] = length + 1;
    this.used += length;
  }

  get(slot: number): string | undefined {
    if (!this.has(slot)) return undefined;
    const start = this.spans[slot * 3 + 1]!;
    const length = this.spans[slot * 3 + 2]! - 1;
    return this.chunks[this.spans[slot * 3]!]!.toString('utf8', start, start + length);
  }

  has(slot: number): boolean {
    return slot * 3 < this.spans.length && this.spans[slot * 3 + 2]! > 0;
  }

  delete(slot: number): void {
    if (slot * 3 < this.spans.length) this.spans[slot * 3 + 2] = 0;
  }
}

const CHUNK_BYTES = 1024 * 1024;
