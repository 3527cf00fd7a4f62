import { sameBytes, type Size, type Workload } from '../types.js';
import { utf8 } from '../random.js';

const COUNT: Record<Size, number> = { test: 10, small: 1000, large: 100_000 };

export const workload: Workload = {
  name: 'dynamic-html',
  origin: 'SeBS 110.dynamic-html',
  summary: 'an HTML page from a template: the user name escaped, a list of random numbers',
  guests: ['dynamic_html'],
  input: (size) => utf8(`Ada <Lovelace> & "co"\n${COUNT[size]}\n${4242 + COUNT[size]}`),
  check: sameBytes('dynamic-html'),
};
