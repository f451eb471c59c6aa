/**
 * `ipphone-admin`: the operator's tool (shared/CONTRACT.md). Dispatches a
 * parsed command line and turns every failure into one stderr line per
 * problem and an exit code: 0 done, 1 failed, 2 bad arguments.
 */
import { errorMessage, isIpphoneError } from '../lib/errors.js';
import { processIo } from '../lib/cli.js';
import { aclForCmConfig } from './acl-command.js';
import { parseAdminArgs } from './args.js';
import { keygen, keygenReport } from './keygen.js';
import { sendConfig, sendPointers, type AdminIo } from './sign-send.js';
import { watchStatus } from './status.js';
import { statusFormat } from './status-table.js';
import { SUBCOMMAND_USAGE, USAGE } from './usage.js';

export { USAGE };


/** One line per problem: a list's problems, or the error's message. */
function problemsOf(err: unknown): string[] {
  if (isIpphoneError(err) && Array.isArray(err.context?.problems)) {
    return [err.message, ...(err.context.problems as unknown[]).map((p) => `  ${String(p)}`)];
  }
  return [errorMessage(err)];
}

/** Run one command line (without `node` and the script); resolves with the exit code. */
export async function main(argv: readonly string[], io: AdminIo = processIo): Promise<number> {
  const args = parseAdminArgs(argv);
  switch (args.kind) {
    case 'help':
      io.stdout(args.sub !== undefined ? SUBCOMMAND_USAGE[args.sub] : USAGE);
      return 0;
    case 'usage':
      io.stderr(`ipphone-admin: ${args.error}\n${args.sub !== undefined ? SUBCOMMAND_USAGE[args.sub] : USAGE}`);
      return 2;
  }
  try {
    switch (args.kind) {
      case 'keygen':
        io.stdout(keygenReport(keygen(args.out, args.force)));
        return 0;
      case 'config':
        return await sendConfig(args, io);
      case 'pointers':
        return await sendPointers(args, io);
      case 'status':
        // A person at a terminal gets a table; a pipe or a file (scripts) the JSON lines.
        return await watchStatus({ ...args, format: statusFormat(args.format, io === processIo && process.stdout.isTTY === true) }, io);
      case 'acl':
        io.stdout(aclForCmConfig(args.config, args.operators));
        return 0;
    }
  } catch (err) {
    for (const line of problemsOf(err)) io.stderr(`ipphone-admin: ${line.replace(/\n/g, ' ')}\n`);
    return 1;
  }
}
