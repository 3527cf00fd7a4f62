/**
 * Main thread. The bounded FIFO channel that carries a stream's items between the pumps of a
 * skeleton run (see stream.ts): backpressure for pushers, arrival numbers for reordering.
 */
/** A bounded FIFO channel between pumps. `abort` drops everything and releases every waiter. */
export class Channel<T> {
  private readonly items: T[] = [];
  private readonly pullers: ((value: [T, number] | undefined) => void)[] = [];
  private taken = 0;
  private readonly pushers: { value: T; resolve: () => void }[] = [];
  private closed = false;

  constructor(private readonly capacity: number) {}

  push(value: T): Promise<void> {
    if (this.closed) return Promise.resolve();
    const puller = this.pullers.shift();
    if (puller !== undefined) {
      puller([value, this.taken++]);
      return Promise.resolve();
    }
    if (this.items.length < this.capacity && this.pushers.length === 0) {
      this.items.push(value);
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => this.pushers.push({ value, resolve }));
  }

  /** The next value and its arrival number (0, 1, 2… in the order values leave), or undefined once closed and drained. */
  pull(): Promise<[T, number] | undefined> {
    if (this.items.length > 0) {
      const value = this.items.shift()!;
      const pusher = this.pushers.shift();
      if (pusher !== undefined) {
        this.items.push(pusher.value);
        pusher.resolve();
      }
      return Promise.resolve([value, this.taken++]);
    }
    const pusher = this.pushers.shift();
    if (pusher !== undefined) {
      pusher.resolve();
      return Promise.resolve([pusher.value, this.taken++]);
    }
    if (this.closed) return Promise.resolve(undefined);
    return new Promise<[T, number] | undefined>((resolve) => this.pullers.push(resolve));
  }

  /** No more pushes; pulls drain what is queued, then get undefined. */
  close(): void {
    this.closed = true;
    for (const puller of this.pullers.splice(0)) puller(undefined);
  }

  abort(): void {
    this.items.length = 0;
    for (const pusher of this.pushers.splice(0)) pusher.resolve();
    this.close();
  }
}
