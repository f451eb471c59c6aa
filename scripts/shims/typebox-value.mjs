// Stands in for `@sinclair/typebox/value` where ipphone's sources import it
// (scripts/bundle.mjs). Its `Value` namespace re-exports every value
// operation (Cast, Convert, Create, Decode/Encode and transforms, Diff/Patch,
// Hash, Mutate, Parse, ...), all evaluated at start; the programs use only
// Check, Clone, Default and Errors (src/config, src/hw/board-schema.ts), and
// these four from the same package build are what this `Value` has. Asked
// for anything else, it says so rather than returning undefined: add the
// operation here.
import { Errors } from '../../node_modules/@sinclair/typebox/build/esm/errors/index.mjs';
import { Check } from '../../node_modules/@sinclair/typebox/build/esm/value/check/index.mjs';
import { Clone } from '../../node_modules/@sinclair/typebox/build/esm/value/clone/index.mjs';
import { Default } from '../../node_modules/@sinclair/typebox/build/esm/value/default/index.mjs';

const operations = { Check, Clone, Default, Errors };

export const Value = new Proxy(operations, {
  get(target, key) {
    if (typeof key === 'string' && !Object.hasOwn(target, key)) {
      throw new Error(`Value.${key} is not in the ipphone bundle (scripts/shims/typebox-value.mjs has ${Object.keys(target).join(', ')}); add it there`);
    }
    return target[key];
  },
});
