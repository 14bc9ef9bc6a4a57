/**
 * A one-line progress bar on stderr for long CLI work (the calibration searches run hundreds
 * of forward passes). On a terminal it redraws in place; otherwise (CI logs, pipes) it prints
 * a line at every tenth of the way, so logs stay short. stdout is never touched.
 */
export interface ProgressBar {
  update(done: number, total: number, note?: string): void;
  finish(note?: string): void;
}

export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): ProgressBar {
  const width = 30;
  let lastTenth = -1;
  let drawn = false;
  const line = (done: number, total: number, note: string) => {
    const share = total > 0 ? Math.min(1, done / total) : 1;
    const filled = Math.round(share * width);
    return `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}${note ? ` ${note}` : ''}`;
  };
  return {
    update(done, total, note = '') {
      if (stream.isTTY) {
        stream.write(`\r${line(done, total, note)}\x1b[K`);
        drawn = true;
        return;
      }
      const tenth = total > 0 ? Math.floor((10 * done) / total) : 10;
      if (tenth > lastTenth) {
        lastTenth = tenth;
        stream.write(`${line(done, total, note)}\n`);
      }
    },
    finish(note = '') {
      if (drawn) stream.write(`\r${label} done${note ? ` ${note}` : ''}\x1b[K\n`);
      else if (note) stream.write(`${label} done ${note}\n`);
    },
  };
}
