/**
 * A child process for `nuvola bench cluster`: the raw-Redis baseline of a remote call. It reads
 * requests from a stream with a consumer group and answers each on the caller's reply stream
 * with the input reversed (what the echo guest does), using only the Redis client: the floor a
 * remote invocation through Redis Streams can reach. Prints `ready` once it reads.
 *
 *   node dist/bench/cluster-raw-server.js <redis url> <stream>
 */
import { Redis } from 'ioredis';

const [url, stream] = process.argv.slice(2) as [string, string];
const reader = new Redis(url);
const writer = new Redis(url);
await reader.xgroup('CREATE', stream, 'g', '0', 'MKSTREAM').catch(() => undefined);
process.stdout.write('ready\n');
process.on('SIGTERM', () => process.exit(0));
for (;;) {
  const read = (await reader.xreadgroupBuffer('GROUP', 'g', 'raw', 'COUNT', 256, 'BLOCK', 1000, 'STREAMS', stream, '>')) as
    [Buffer, [Buffer, Buffer[]][]][] | null;
  for (const [entryId, fields] of read?.[0]?.[1] ?? []) {
    const f = new Map<string, Buffer>();
    for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!.toString(), fields[i + 1]!);
    const input = f.get('in') ?? Buffer.alloc(0);
    const output = Buffer.from(input).reverse();
    void writer
      .multi()
      .xadd(f.get('from')!.toString(), '*', 'id', f.get('id')!, 'r', output)
      .xack(stream, 'g', entryId)
      .xdel(stream, entryId)
      .exec();
  }
}
