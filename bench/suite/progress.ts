/**
 * Progress of a long suite run on stderr: a bar (cli-progress) on a terminal, plain lines
 * otherwise (a log, CI), so that a piped run stays readable.
 */
import { SingleBar, Presets } from 'cli-progress';

export interface Progress {
  step(done: number, total: number, label: string): void;
  stop(): void;
}

export function progress(stream: NodeJS.WriteStream = process.stderr): Progress {
  if (stream.isTTY !== true) {
    return {
      step: (done, total, label) => stream.write(`[${done}/${total}] ${label}\n`),
      stop: () => {},
    };
  }
  const bar = new SingleBar(
    {
      stream,
      format: 'suite [{bar}] {percentage}% | {value}/{total} | eta {eta_formatted} | {label}',
      hideCursor: true,
      clearOnComplete: true,
    },
    Presets.shades_classic,
  );
  let started = false;
  return {
    step(done, total, label) {
      if (!started) {
        bar.start(total, 0, { label });
        started = true;
      }
      bar.update(done, { label });
    },
    stop: () => bar.stop(),
  };
}
