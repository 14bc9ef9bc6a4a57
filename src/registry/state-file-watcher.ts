/**
 * Tells the registry when the shared state file may have changed: an `fs.watch` on its folder
 * (prompt on a local disk; the folder rather than the file, because a rename replaces the file's
 * inode and the kubelet swaps a ConfigMap's `..data` symlink, which a watch on the file misses)
 * plus a poll every `pollIntervalMs`, because watches on network volumes (NFS, SMB, most CSI
 * drivers) miss changes made by other machines. The poll is what the convergence bound rests
 * on; the watch only makes the common case faster. Neither keeps the process alive.
 *
 * The watcher only signals; reading and validating the file is the registry's job, and it
 * skips the read when the file's identity (inode, size, mtime) has not changed.
 */
import { watch, type FSWatcher, type Stats } from 'node:fs';
import { basename, dirname } from 'node:path';

export interface StateFileWatcherOptions {
  readonly pollIntervalMs: number;
  /** Also use `fs.watch` (default true); the poll runs either way. */
  readonly watch: boolean;
}

export class StateFileWatcher {
  private poll: NodeJS.Timeout | null = null;
  private watcher: FSWatcher | null = null;

  constructor(
    private readonly path: string,
    private readonly options: StateFileWatcherOptions,
    private readonly onMaybeChanged: () => void,
  ) {}

  start(): void {
    this.poll = setInterval(this.onMaybeChanged, this.options.pollIntervalMs);
    this.poll.unref();
    if (!this.options.watch) return;
    const name = basename(this.path);
    try {
      this.watcher = watch(dirname(this.path), { persistent: false }, (_event, file) => {
        // Our own temp files and lock folder come and go beside the file on every write.
        if (file === null || !(file.startsWith(`.${name}.`) || file === `${name}.lock`)) this.onMaybeChanged();
      });
      // A watch that fails later (folder removed, inotify limit) leaves the poll in charge.
      this.watcher.on('error', () => this.closeWatch());
    } catch {
      this.watcher = null; // no folder yet, or no inotify: the poll covers it
    }
  }

  close(): void {
    if (this.poll) clearInterval(this.poll);
    this.poll = null;
    this.closeWatch();
  }

  private closeWatch(): void {
    this.watcher?.close();
    this.watcher = null;
  }
}

/** What identifies one version of the file: a rename gives a new inode, an edit a new mtime/size. */
export function fileIdentity(stats: Stats): string {
  return `${stats.dev}:${stats.ino}:${stats.size}:${stats.mtimeMs}:${stats.ctimeMs}`;
}
