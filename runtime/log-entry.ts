/** One line a guest logged, or one the runtime itself reports. */
export interface LogEntry {
  /** The function that logged, or `"nuvola"` for the runtime's own messages. */
  function: string;
  message: string;
  level: 'info' | 'warn';
}
