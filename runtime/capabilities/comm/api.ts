/**
 * Both threads. What a worker asks the main thread about group messages (runtime/rpc.ts),
 * carried out by runtime/pool-groups.ts.
 */
export interface CommApi {
  /**
   * A notice (no answer): a message from rank `from` to rank `to` of `group`, for the main
   * thread to route — to the rank's worker, or to another host. Only when the sender has no
   * direct channel to that rank's worker. The SharedArrayBuffer is shared, not copied.
   */
  send(group: number, from: number, to: number, data: SharedArrayBuffer): void;
}
