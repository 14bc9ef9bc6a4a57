#!/usr/bin/env node
import { main } from './main.js';

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  // A failed command has printed its one line; nothing it started (a worker, a timer) may keep
  // the process alive.
  if (code !== 0) process.exit(code);
});
