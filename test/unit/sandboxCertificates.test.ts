/**
 * The sandbox's certificates must parse every time: a serial number whose first byte is 0x00 is
 * illegal DER padding (X.690 §8.3.2) that Node's X509Certificate refuses, which made about one
 * minted certificate in 256 unusable and a certificate rotation fail at random.
 */
import { positiveSerial } from '../../sandbox/certificates';

test.each([0x00, 0x01, 0x7f, 0x80, 0xff])(
  'a serial whose random first byte is %i is positive and minimal',
  (first) => {
    const random = Buffer.from([first, 0x05, 0xa0, 0x33]);
    const serial = positiveSerial(random);
    expect(serial[0]).toBeGreaterThanOrEqual(0x01);
    expect(serial[0]).toBeLessThanOrEqual(0x7f);
    expect(serial.subarray(1)).toEqual(random.subarray(1));
    expect(random[0]).toBe(first); // the input is not changed
  },
);
