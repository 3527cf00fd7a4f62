/**
 * Main thread. What authenticating cluster entries costs (cluster/seal.ts): sign and verify a
 * call entry's fields with a 64 B and a 1 KiB input, beside `createHmac` and a plain SHA-256 of
 * the same bytes in the same run (the baseline). Not one of `nuvola bench`'s phases — a quick
 * check: `npm run build && node dist/bench/cluster-seal.js`.
 */
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { Seal } from '../cluster/seal.js';

const seal = new Seal(['x'.repeat(64)], 'bench');
const key = Buffer.alloc(32, 1);

function perCallMicros(n: number, f: () => unknown): number {
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) f();
  return Number(process.hrtime.bigint() - t) / n / 1000;
}

for (const size of [64, 1024]) {
  const input = Buffer.alloc(size, 7);
  const fields = ['id', randomUUID(), 'from', 'host-1', 'dl', String(Date.now()), 'fn', 'echo', 'h', '0123456789abcdef', 'in', input];
  const mac = seal.sign('call', fields);
  const flat = Buffer.concat(fields.map((x) => Buffer.from(x)));
  perCallMicros(20_000, () => seal.verify('call', fields, seal.sign('call', fields))); // warm-up
  const n = 50_000;
  const sign = perCallMicros(n, () => seal.sign('call', fields));
  const verify = perCallMicros(n, () => seal.verify('call', fields, mac));
  const hmac = perCallMicros(n, () => createHmac('sha256', key).update(flat).digest());
  const sha = perCallMicros(n, () => createHash('sha256').update(flat).digest());
  console.log(
    `input ${size} B: sign ${sign.toFixed(2)} µs, verify ${verify.toFixed(2)} µs; baseline: createHmac ${hmac.toFixed(2)} µs, SHA-256 ${sha.toFixed(2)} µs`,
  );
}
