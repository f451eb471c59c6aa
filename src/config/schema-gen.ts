import { writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { TSchema } from '@sinclair/typebox';
import { AgentConfigSchema } from './agent-config.js';
import { CmConfigSchema } from './cm-config.js';

/**
 * Writes the JSON Schemas that ship in the package (schema/*.schema.json)
 * from the TypeBox sources, so the files cannot drift from what the code
 * validates: `npx tsx src/config/schema-gen.ts`. A unit test compares
 * {@link schemaTexts} with the committed files.
 */

/** Where the schema files live, relative to this source file. */
export const SCHEMA_DIR = fileURLToPath(new URL('../../schema/', import.meta.url));

function document(title: string, description: string, schema: TSchema): string {
  // JSON.stringify drops TypeBox's symbol keys ([Kind], [OptionalKind]), leaving plain JSON Schema.
  const doc = { $schema: 'http://json-schema.org/draft-07/schema#', title, description, ...schema };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** File name → pretty JSON text of each shipped schema. */
export function schemaTexts(): Record<string, string> {
  return {
    'agent-config.schema.json': document(
      'ipphone agent config',
      'Config of the on-phone agent (ipphone-agent --config FILE). Only phoneId and pointers are required.',
      AgentConfigSchema,
    ),
    'cm-config.schema.json': document(
      'ipphone call manager config',
      'Config of a call manager (ipphone-cm --config FILE).',
      CmConfigSchema,
    ),
  };
}

/** Write every schema file into `dir` (default {@link SCHEMA_DIR}); returns the paths written. */
export function writeSchemas(dir: string = SCHEMA_DIR): string[] {
  return Object.entries(schemaTexts()).map(([name, text]) => {
    const path = `${dir.replace(/\/?$/, '/')}${name}`;
    writeFileSync(path, text);
    return path;
  });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const path of writeSchemas()) process.stdout.write(`wrote ${path}\n`);
}
