// Stands in for node:fs/promises where src/store/durable-file.ts imports it
// (scripts/bundle.mjs): the same four operations over node:fs's callback API,
// which every program loads anyway. Loading node:fs/promises also loads
// FileHandle's readline, stream and fs.watch machinery (internal/readline/*,
// internal/fs/watchers, internal/fs/dir): about 0.9 MiB of RSS on Node 20
// under --jitless, for code the agent never runs.
import * as fs from 'node:fs';
import { promisify } from 'node:util';

export const readFile = promisify(fs.readFile);
export const unlink = promisify(fs.unlink);
export const readdir = promisify(fs.readdir);
export const mkdir = promisify(fs.mkdir);
