import { sameBytes, type Size, type Workload } from '../types.js';
import { utf8, Xorshift32 } from '../random.js';

const REQUESTS: Record<Size, number> = { test: 30, small: 300, large: 3000 };

function requests(n: number): Uint8Array {
  const r = new Xorshift32(130);
  const carts = ['alice', 'bob', 'carol'];
  const products = Array.from({ length: 40 }, (_, i) => `product${i}`);
  const lines = carts.map((c) => `RESET ${c}`);
  while (lines.length < n) {
    const cart = carts[r.below(carts.length)]!;
    const product = products[r.below(products.length)]!;
    const v = r.below(10);
    if (v < 5) lines.push(`PUT ${cart} ${product} ${100 + r.below(9900)} ${1 + r.below(5)}`);
    else if (v < 8) lines.push(`GET ${cart} ${product}`);
    else lines.push(`QUERY ${cart}`);
  }
  return utf8(lines.join('\n'));
}

export const workload: Workload = {
  name: 'crud-api',
  origin: 'SeBS 130.crud-api',
  summary: 'a shopping cart (put, get, query the total) on the state store, every operation through the Redis tier',
  guests: ['crud_api'],
  redis: true,
  input: (size) => requests(REQUESTS[size]),
  check: sameBytes('crud-api'),
};
