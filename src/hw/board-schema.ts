import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { ID_PATTERN, schemaProblems, structureProblems, type Defaulted } from '../config/problems.js';
import { show } from '../protocol/pointers.js';
import { resolveKeymap } from './evdev-keypad.js';
import { EV_KEY, parseInputCode } from './input-codes.js';

/**
 * Board profiles (shared/CONTRACT.md, "Board profile"): one TypeBox source for
 * the TS type, the shipped JSON Schema (schema/board.schema.json) and
 * validation. GPIO lines are `{ chip label, line offset }`, never global
 * numbers (sysfs bases move between kernels). Unknown fields are refused, so
 * a typo in a profile never passes silently. What a schema cannot say (a
 * serial LCD needs a path, a keymap must be rows × cols, a line used twice)
 * is checked by {@link validateBoard} after the schema.
 */

/** A GPIO line: chip label (e.g. `pinctrl-bcm2835`) and offset on that chip. */
export const GpioLineSchema = Type.Object(
  {
    chip: Type.String({ minLength: 1, description: 'gpiochip label, e.g. pinctrl-bcm2835' }),
    line: Type.Integer({ minimum: 0, maximum: 1023, description: 'line offset on that chip' }),
  },
  { additionalProperties: false },
);

/** An LED (lamp) on a GPIO line. */
export const GpioLedSchema = Type.Object(
  {
    chip: Type.String({ minLength: 1, description: 'gpiochip label' }),
    line: Type.Integer({ minimum: 0, maximum: 1023, description: 'line offset on that chip' }),
    activeLow: Type.Optional(Type.Boolean({ default: false, description: 'true when the lamp lights with the line low' })),
  },
  { additionalProperties: false },
);

/** An LED the kernel drives (gpio-leds, pwm-leds): its LED class directory. */
export const ClassLedSchema = Type.Object(
  {
    led: Type.String({ pattern: '^/', description: 'LED class directory, e.g. /sys/class/leds/red:no-service: lit = max_brightness written to brightness, dark = 0' }),
  },
  { additionalProperties: false },
);

/** A lamp: a GPIO line, or an LED class device (`led`). */
export const LedSchema = Type.Union([GpioLedSchema, ClassLedSchema], { description: 'a GPIO line (chip, line) or an LED class directory (led)' });

export const DISPLAY_DRIVERS = ['serial-lcd', 'terminal', 'none'] as const;
export const LCD_PROTOCOLS = ['matrix-orbital', 'hd44780-backpack'] as const;
export const KEYPAD_DRIVERS = ['gpio-matrix', 'evdev', 'keyboard', 'none'] as const;
/** Baud rates the serial LCD backpacks we know accept. */
export const BAUD_RATES = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] as const;

const literals = <T extends readonly (string | number)[]>(values: T, description: string) =>
  Type.Union(
    values.map((v) => Type.Literal(v)),
    { description },
  );

export const DisplaySchema = Type.Object(
  {
    driver: literals(DISPLAY_DRIVERS, 'serial-lcd (a character LCD on a tty), terminal (simulator) or none'),
    path: Type.Optional(Type.String({ minLength: 1, description: 'serial device, e.g. /dev/ttyAMA0; required for serial-lcd' })),
    baudRate: Type.Optional(literals(BAUD_RATES, 'serial speed, bit/s; required for serial-lcd')),
    protocol: Type.Optional(literals(LCD_PROTOCOLS, 'LCD command set; required for serial-lcd')),
    cols: Type.Optional(Type.Integer({ default: 20, minimum: 8, maximum: 40, description: 'characters per row' })),
    rows: Type.Optional(Type.Integer({ default: 4, minimum: 1, maximum: 8, description: 'rows of characters' })),
    backlight: Type.Optional(
      Type.Union([Type.Boolean(), Type.Integer({ minimum: 0, maximum: 255 })], {
        description: 'backlight on/off, or a brightness 0–255 (matrix-orbital); default on',
      }),
    ),
  },
  { additionalProperties: false },
);

export const KeypadSchema = Type.Object(
  {
    driver: literals(KEYPAD_DRIVERS, 'gpio-matrix (scanned key matrix), evdev (a kernel input device), keyboard (simulator) or none'),
    path: Type.Optional(Type.String({ pattern: '^/', description: 'input device, e.g. /dev/input/by-path/platform-matrix-keypad-event; required for evdev' })),
    rows: Type.Optional(Type.Array(GpioLineSchema, { minItems: 1, maxItems: 8, description: 'row lines (driven); required for gpio-matrix' })),
    cols: Type.Optional(Type.Array(GpioLineSchema, { minItems: 1, maxItems: 8, description: 'column lines (read); required for gpio-matrix' })),
    keymap: Type.Optional(
      Type.Union(
        [
          Type.Array(Type.Array(Type.String({ minLength: 1, maxLength: 16 }), { minItems: 1, maxItems: 8 }), {
            minItems: 1,
            maxItems: 8,
            description: 'gpio-matrix: key names by [row][col] (0–9, *, # or a soft key name); rows × cols; required',
          }),
          Type.Record(Type.String({ minLength: 1 }), Type.String({ minLength: 1, maxLength: 16 }), {
            description: 'evdev: input event code (KEY_*/BTN_* name from linux/input-event-codes.h, or its number) → key name; default the digits, star and pound',
          }),
        ],
        { description: 'key names: by [row][col] (gpio-matrix) or by input event code (evdev)' },
      ),
    ),
    debounceMs: Type.Optional(Type.Integer({ default: 20, minimum: 0, maximum: 1000, description: 'ms a key must be stable' })),
  },
  { additionalProperties: false },
);

/** A hook switch on a GPIO line. */
export const GpioHookSchema = Type.Object(
  {
    driver: Type.Optional(Type.Literal('gpio', { description: 'the default' })),
    chip: Type.String({ minLength: 1, description: 'gpiochip label' }),
    line: Type.Integer({ minimum: 0, maximum: 1023, description: 'line offset on that chip' }),
    activeLow: Type.Boolean({ description: 'true when the line reads low while the handset is lifted (off hook)' }),
    debounceMs: Type.Optional(Type.Integer({ default: 30, minimum: 0, maximum: 1000, description: 'ms the switch must be stable' })),
  },
  { additionalProperties: false },
);

/** A hook switch the kernel reports on an input device (gpio-keys). */
export const EvdevHookSchema = Type.Object(
  {
    driver: Type.Literal('evdev'),
    path: Type.String({ pattern: '^/', description: 'input device, e.g. /dev/input/by-path/platform-gpio-keys-event' }),
    event: Type.Union([Type.String({ minLength: 1 }), Type.Integer({ minimum: 1 })], {
      description: 'the hook event: a KEY_*/BTN_* (EV_KEY) or SW_* (EV_SW) name from linux/input-event-codes.h, or an EV_KEY code number',
    }),
    offHookValue: Type.Optional(Type.Union([Type.Literal(0), Type.Literal(1)], { default: 1, description: 'event value while the handset is lifted' })),
  },
  { additionalProperties: false },
);

/** The simulator's hook switch: a key toggles it. */
export const KeyboardHookSchema = Type.Object(
  {
    driver: Type.Literal('keyboard'),
    key: Type.String({ minLength: 1, maxLength: 1, description: 'the key that lifts / replaces the handset' }),
  },
  { additionalProperties: false },
);

export const BoardSchema = Type.Object(
  {
    name: Type.String({ pattern: ID_PATTERN, description: 'profile name' }),
    description: Type.Optional(Type.String({ description: 'free text' })),
    display: DisplaySchema,
    keypad: KeypadSchema,
    hook: Type.Union([GpioHookSchema, EvdevHookSchema, KeyboardHookSchema, Type.Null()], { description: 'hook switch; null = none (never busy)' }),
    leds: Type.Optional(
      Type.Object(
        {
          message: Type.Optional(LedSchema),
          noService: Type.Optional(LedSchema),
        },
        { additionalProperties: false, description: 'lamps: message waiting, no service' },
      ),
    ),
  },
  { additionalProperties: false },
);

export type BoardInput = Static<typeof BoardSchema>;
export type GpioLine = Static<typeof GpioLineSchema>;
/** A validated board profile with defaults filled (display 20 × 4, debounce times, LED polarity). */
export type BoardProfile = Omit<BoardInput, 'display' | 'keypad'> & {
  display: Defaulted<Pick<BoardInput['display'], 'cols' | 'rows'>> & Omit<BoardInput['display'], 'cols' | 'rows'>;
  keypad: Defaulted<Pick<BoardInput['keypad'], 'debounceMs'>> & Omit<BoardInput['keypad'], 'debounceMs'>;
};

type Loose = Record<string, any>;
const isObject = (v: unknown): v is Loose => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `/hook/chip` style pointer of a sub-schema's error, re-rooted under `prefix`. */
function under(prefix: string, schema: TSchema, value: unknown): string[] {
  return schemaProblems(schema, value).map((p) => (p.startsWith('(root)') ? `${prefix}${p.slice('(root)'.length)}` : `${prefix}/${p}`));
}

function hookProblems(hook: unknown): string[] {
  if (hook === null) return [];
  if (!isObject(hook)) return [`hook: must be an object or null (got ${show(hook)})`];
  if (hook.driver === 'keyboard') return under('hook', KeyboardHookSchema, hook);
  if (hook.driver === 'evdev') {
    const problems = under('hook', EvdevHookSchema, hook);
    if (problems.length === 0) {
      const parsed = parseInputCode(hook.event as string | number);
      if (!parsed.ok) problems.push(`hook/event: ${parsed.problem}`);
    }
    return problems;
  }
  return under('hook', GpioHookSchema, hook);
}

/** The lamps: each a GPIO line or an LED class directory, never both. */
function ledProblems(leds: unknown): string[] {
  if (!isObject(leds)) return [];
  const problems: string[] = [];
  const dirs = new Map<string, string>();
  for (const [name, l] of Object.entries(leds)) {
    if (!isObject(l)) continue;
    if ('led' in l) {
      problems.push(...under(`leds/${name}`, ClassLedSchema, l));
      if (typeof l.led === 'string') {
        const first = dirs.get(l.led);
        if (first !== undefined) problems.push(`leds/${name}/led: ${l.led} is already used by leds/${first}`);
        else dirs.set(l.led, name);
      }
    } else problems.push(...under(`leds/${name}`, GpioLedSchema, l));
  }
  return problems;
}

/** evdev keypad: a path, a keymap by input code (every name known), no GPIO lines. */
function evdevKeypadProblems(k: Loose, hook: unknown): string[] {
  const problems: string[] = [];
  if (k.path === undefined) problems.push('keypad/path: is required for driver evdev');
  for (const f of ['rows', 'cols'] as const) {
    if (k[f] !== undefined) problems.push(`keypad/${f}: is for gpio-matrix; the kernel scans an evdev keypad`);
  }
  if (k.keymap === undefined) return problems;
  if (Array.isArray(k.keymap)) {
    problems.push('keypad/keymap: for evdev is an object of input event code → key, e.g. { "KEY_1": "1" }');
    return problems;
  }
  if (!isObject(k.keymap)) return [...problems, `keypad/keymap: must be an object of input event code → key (got ${show(k.keymap)})`];
  for (const [name, key] of Object.entries(k.keymap)) {
    if (typeof key !== 'string' || key.length < 1 || key.length > 16) problems.push(`keypad/keymap/${name}: must be a key name of 1 to 16 characters (got ${show(key)})`);
  }
  const r = resolveKeymap(k.keymap as Record<string, string>);
  if (!r.ok) problems.push(...r.problems);
  else if (isObject(hook) && hook.driver === 'evdev' && hook.path === k.path) {
    const h = parseInputCode(hook.event as string | number);
    if (h.ok && h.value.type === EV_KEY && r.codes.has(h.value.code)) problems.push(`hook/event: ${String(hook.event)} is also a key in keypad/keymap on the same device`);
  }
  return problems;
}

/** Checks across fields, on a value the schema already accepted where they look. */
function crossProblems(b: Loose): string[] {
  const problems: string[] = [];
  const d = b.display;
  if (isObject(d) && d.driver === 'serial-lcd') {
    for (const f of ['path', 'baudRate', 'protocol'] as const) {
      if (d[f] === undefined) problems.push(`display/${f}: is required for driver serial-lcd`);
    }
  }
  const k = b.keypad;
  if (isObject(k) && k.driver === 'evdev') problems.push(...evdevKeypadProblems(k, b.hook));
  if (isObject(k) && k.driver !== 'evdev' && isObject(k.keymap)) problems.push('keypad/keymap: an object of input event codes is for driver evdev');
  if (isObject(k) && k.driver !== 'evdev' && k.path !== undefined) problems.push('keypad/path: is for driver evdev');
  if (isObject(k) && k.driver === 'gpio-matrix') {
    for (const f of ['rows', 'cols', 'keymap'] as const) {
      if (k[f] === undefined) problems.push(`keypad/${f}: is required for driver gpio-matrix`);
    }
    if (Array.isArray(k.rows) && Array.isArray(k.keymap) && k.keymap.length !== k.rows.length) {
      problems.push(`keypad/keymap: must have one row per keypad/rows entry (${k.rows.length}) (got ${k.keymap.length})`);
    }
    if (Array.isArray(k.cols) && Array.isArray(k.keymap)) {
      k.keymap.forEach((row: unknown, i: number) => {
        if (Array.isArray(row) && row.length !== k.cols.length) {
          problems.push(`keypad/keymap/${i}: must have one key per keypad/cols entry (${k.cols.length}) (got ${row.length})`);
        }
      });
    }
  }
  // One physical line, one use: a line shared by the keypad and the hook would read garbage.
  const uses: Array<[string, unknown]> = [];
  if (isObject(k)) {
    for (const side of ['rows', 'cols'] as const) {
      if (Array.isArray(k[side])) (k[side] as unknown[]).forEach((l, i) => uses.push([`keypad/${side}/${i}`, l]));
    }
  }
  if (isObject(b.hook) && b.hook.driver !== 'keyboard' && b.hook.driver !== 'evdev') uses.push(['hook', b.hook]);
  if (isObject(b.leds)) for (const [name, l] of Object.entries(b.leds)) uses.push([`leds/${name}`, l]);
  const seen = new Map<string, string>();
  for (const [path, l] of uses) {
    if (!isObject(l) || typeof l.chip !== 'string' || typeof l.line !== 'number') continue;
    const key = `${l.chip}:${l.line}`;
    const first = seen.get(key);
    if (first !== undefined) problems.push(`${path}: line ${key} is already used by ${first}`);
    else seen.set(key, path);
  }
  return problems;
}

/**
 * Validate an untrusted board profile and fill its defaults. Reports every
 * problem as `path: what is wrong`, e.g. `display/path: is required for
 * driver serial-lcd` or `keypad/keymap/2: must have one key per keypad/cols
 * entry (3) (got 2)`. `raw` is never changed.
 */
export function validateBoard(raw: unknown): { ok: true; board: BoardProfile } | { ok: false; problems: string[] } {
  if (!isObject(raw)) return { ok: false, problems: [`(root): must be a JSON object (got ${show(raw)})`] };
  const structure = structureProblems(raw);
  if (structure.length > 0) return { ok: false, problems: structure };
  const b = Value.Default(BoardSchema, Value.Clone(raw)) as Loose;
  // The hook union gets one vague error from TypeBox; check the variant it means instead.
  // The hook and lamp unions get one vague error each from TypeBox; check the variant meant instead.
  const evdevKeymap = isObject(b.keypad) && b.keypad.driver === 'evdev';
  const variant = (p: string): boolean =>
    p === '/hook' || p.startsWith('/hook/') || /^\/leds\/[^/]+(\/|$)/.test(p) || (evdevKeymap && (p === '/keypad/keymap' || p.startsWith('/keypad/keymap/')));
  const problems = schemaProblems(BoardSchema, b, variant);
  if (!('hook' in b)) problems.push('hook: is required (null when the board has none)');
  else problems.push(...hookProblems(b.hook));
  problems.push(...ledProblems(b.leds));
  problems.push(...crossProblems(b));
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, board: b as BoardProfile };
}
