import { type Size, type Workload } from '../types.js';
import { generateText, utf8 } from '../random.js';
import { decompress } from './reference.js';

const BYTES: Record<Size, number> = { test: 4096, small: 1 << 20, large: 8 << 20 };

export const workload: Workload = {
  name: 'compression',
  origin: 'SeBS 311.compression',
  summary: 'LZ77 (hash-table matching, LZ4-style sequences) over generated text; checked by decompressing',
  guests: ['compression'],
  input: (size) => utf8(generateText(BYTES[size], 311)),
  check(input, output, expected) {
    const back = decompress(output);
    if (Buffer.compare(back, input) !== 0) throw new Error('compression: decompressing the output does not give the input back');
    if (Buffer.compare(output, expected) !== 0)
      throw new Error(`compression: ${output.byteLength} bytes, the reference ${expected.byteLength}: not the same encoding`);
    if (input.byteLength >= 65536 && output.byteLength > input.byteLength * 0.8)
      throw new Error(`compression: ${input.byteLength} bytes compressed only to ${output.byteLength}`);
  },
};
