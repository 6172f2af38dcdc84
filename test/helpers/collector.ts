import { Writable } from 'node:stream';

/** A writable stream that keeps what is written to it (a CLI's stdout or stderr in process). */
export function collector(): { stream: Writable; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      text += chunk.toString();
      callback();
    },
  });
  return { stream, text: () => text };
}
