import { writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BoardSchema } from './board-schema.js';

/**
 * Writes schema/board.schema.json from the TypeBox source, so the shipped
 * file cannot drift from what {@link validateBoard} checks:
 * `npx tsx src/hw/board-schema-gen.ts`. A unit test compares
 * {@link boardSchemaText} with the committed file. The cross-field rules
 * (serial-lcd needs path/baudRate/protocol, keymap is rows × cols, one use
 * per GPIO line) are in the description: JSON Schema draft-07 cannot say
 * them without making the file unreadable.
 */

/** Where the file lives, relative to this source file. */
export const BOARD_SCHEMA_PATH = fileURLToPath(new URL('../../schema/board.schema.json', import.meta.url));

/** Pretty JSON text of the board profile schema. */
export function boardSchemaText(): string {
  // JSON.stringify drops TypeBox's symbol keys ([Kind], [OptionalKind]), leaving plain JSON Schema.
  const doc = {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'ipphone board profile',
    description:
      'Hardware of one phone model (hw/boards/*.json). Also checked by the agent: display driver serial-lcd requires ' +
      'path, baudRate and protocol; keypad driver gpio-matrix requires rows, cols and a keymap of rows × cols keys; ' +
      'keypad driver evdev requires path, and its keymap (by input event code) and hook.event name codes from ' +
      'linux/input-event-codes.h that the agent knows, or numbers; no GPIO line (chip + line) and no LED directory is used twice.',
    ...BoardSchema,
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** Write the schema to `path` (default {@link BOARD_SCHEMA_PATH}). */
export function writeBoardSchema(path: string = BOARD_SCHEMA_PATH): string {
  writeFileSync(path, boardSchemaText());
  return path;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(`wrote ${writeBoardSchema()}\n`);
}
