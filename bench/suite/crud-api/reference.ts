// SeBS 130.crud-api in JavaScript: a shopping cart service over a key-value store (Redis through
// ioredis, one client per thread), one request per line:
//   RESET cart            → "ok"   (drops the cart's items)
//   PUT cart item price qty → "ok" (price in cents)
//   GET cart item         → "item price qty", or "item missing"
//   QUERY cart            → "cart <items> <total cents>"
// Every write and read is a round trip to the store, as with SeBS's NoSQL tables.
import { Redis } from 'ioredis';
import { text, utf8 } from '../random.js';
import type { ReferenceEnv } from '../types.js';

let client: Redis | undefined;

function redis(env: ReferenceEnv): Redis {
  if (env.redisUrl === undefined) throw new Error('crud-api needs a Redis (env.redisUrl)');
  client ??= new Redis(env.redisUrl);
  return client;
}

/** Closes this thread's client. */
export async function close(): Promise<void> {
  await client?.quit();
  client = undefined;
}

const index = (cart: string): string => `suite:crud:${cart}`;
const item = (cart: string, name: string): string => `suite:crud:${cart}:${name}`;

export async function reference(input: Uint8Array, env: ReferenceEnv): Promise<Uint8Array> {
  const db = redis(env);
  const out: string[] = [];
  for (const line of text(input).split('\n')) {
    const [op, cart = '', name = '', price = '', qty = ''] = line.split(' ');
    if (op === 'RESET') {
      for (const i of await db.lrange(index(cart), 0, -1)) await db.del(item(cart, i));
      await db.del(index(cart));
      out.push('ok');
    } else if (op === 'PUT') {
      if ((await db.get(item(cart, name))) === null) await db.rpush(index(cart), name);
      await db.set(item(cart, name), `${price} ${qty}`);
      out.push('ok');
    } else if (op === 'GET') {
      const v = await db.get(item(cart, name));
      out.push(v === null ? `${name} missing` : `${name} ${v}`);
    } else if (op === 'QUERY') {
      let total = 0;
      const names = await db.lrange(index(cart), 0, -1);
      for (const i of names) {
        const [p = '0', q = '0'] = ((await db.get(item(cart, i))) ?? '0 0').split(' ');
        total += Number(p) * Number(q);
      }
      out.push(`${cart} ${names.length} ${total}`);
    }
  }
  return utf8(out.join('\n'));
}
