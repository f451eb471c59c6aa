import test from 'ava';
import { XMLValidator } from 'fast-xml-parser';
import { failoverSpec, homingSpec, perSecond, rebalanceSpec, renderSvg, stormSpec, type HomesAt } from '../../../bench/plots.js';

/** Marks of one kind, by Vega's aria role description of each item (e.g. `point`, `line mark`, `bar`). */
const marks = (svg: string, role: string): number => svg.split(`aria-roledescription="${role}"`).length - 1;
/** Whether `text` is the content of one of the SVG's text elements (titles, axis and legend labels). */
const hasText = (svg: string, text: string): boolean => new RegExp(`<text[^>]*>${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}</text>`).test(svg);

function wellFormed(t: { true: (x: boolean, m?: string) => void }, svg: string): void {
  t.true(svg.startsWith('<svg'), 'an svg element');
  const v = XMLValidator.validate(svg);
  t.true(v === true, `well-formed XML: ${JSON.stringify(v)}`);
}

test('failover plot: a dot per run, a median tick per series, every series labelled', async (t) => {
  const series = [
    { label: 'kill -9, stock', ms: [101, 120, 133, 99] },
    { label: 'SIGSTOP, stock', ms: [3010, 3120] },
    { label: 'will → rehomed, stock', ms: [0, 1, 2] },
  ];
  const svg = await renderSvg(failoverSpec(series));
  wellFormed(t, svg);
  t.is(marks(svg, 'point'), 9);
  t.is(marks(svg, 'tick'), 3);
  for (const s of series) t.true(hasText(svg, s.label), s.label);
  t.true(hasText(svg, 'ms (symlog scale)'));
  t.true(hasText(svg, 'Failover times per series'));
  // Dropping a series drops its dots, its tick and its label.
  const fewer = await renderSvg(failoverSpec(series.slice(0, 2)));
  t.is(marks(fewer, 'point'), 6);
  t.is(marks(fewer, 'tick'), 2);
  t.false(hasText(fewer, 'will → rehomed, stock'));
});

test('failover plot: a series without runs keeps its row but draws no tick', async (t) => {
  const svg = await renderSvg(failoverSpec([{ label: 'kill -9', ms: [100] }, { label: 'SIGSTOP', ms: [] }]));
  wellFormed(t, svg);
  t.is(marks(svg, 'point'), 1);
  t.is(marks(svg, 'tick'), 1);
});

test('homing plot: one step line per transport, from 0 to every phone', async (t) => {
  const svg = await renderSvg(homingSpec([{ label: 'plain TCP', ms: [40, 10, 30, 20] }, { label: 'TLS', ms: [15, 25, 60, 50] }], 4));
  wellFormed(t, svg);
  t.is(marks(svg, 'line mark'), 2);
  t.true(hasText(svg, 'plain TCP'));
  t.true(hasText(svg, 'TLS'));
  t.true(hasText(svg, 'ms since the kill -9'));
  t.true(hasText(svg, 'phones homed on the backup'));
  // Each line has its 0 point plus one step per phone: M + 2 per point after the first.
  const d = [...svg.matchAll(/aria-roledescription="line mark" d="([^"]+)"/g)].map((m) => m[1]!.split('L').length);
  t.deepEqual(d, [2 * 5 - 1, 2 * 5 - 1]);
  t.is(marks(await renderSvg(homingSpec([{ label: 'plain TCP', ms: [1, 2] }], 2)), 'line mark'), 1);
});

test('rebalance plot: one line per member, members without phones included', async (t) => {
  const timeline: HomesAt[] = [
    { ms: 0, byHome: { 'cm-a': 90 } },
    { ms: 500, byHome: { 'cm-a': 70, 'cm-b': 10, 'cm-c': 10 } },
    { ms: 1000, byHome: { 'cm-a': 30, 'cm-b': 30, 'cm-c': 30 } },
  ];
  const svg = await renderSvg(rebalanceSpec(timeline, ['cm-a', 'cm-b', 'cm-c'], 1000));
  wellFormed(t, svg);
  t.is(marks(svg, 'line mark'), 3);
  for (const m of ['cm-a', 'cm-b', 'cm-c']) t.true(hasText(svg, m), m);
  t.true(hasText(svg, 'phones homed on the member'));
  t.true(hasText(svg, 'rebalance periods since the idle members started'));
  t.is(marks(await renderSvg(rebalanceSpec(timeline, ['cm-a', 'cm-b'], 1000)), 'line mark'), 2);
});

test('storm plot: a bar per second per run, empty seconds included', async (t) => {
  const runs = [
    { label: 'plain', ms: [100, 200, 1500, 2500] },
    { label: 'TLS', ms: [300, 3200] },
  ];
  const svg = await renderSvg(stormSpec(runs));
  wellFormed(t, svg);
  t.is(marks(svg, 'bar'), 3 + 4);
  t.true(hasText(svg, 'plain'));
  t.true(hasText(svg, 'TLS'));
  t.true(hasText(svg, 'connects per second'));
  t.true(hasText(svg, 's since the broker restarted'));
  t.is(marks(await renderSvg(stormSpec(runs.slice(0, 1))), 'bar'), 3);
});

test('perSecond bins connects by whole second since 0, zeros kept', (t) => {
  t.deepEqual(perSecond([]), []);
  t.deepEqual(perSecond([0, 999, 1000, 3999]), [2, 1, 0, 1]);
});

test('labels with markup characters are escaped in the SVG', async (t) => {
  const svg = await renderSvg(failoverSpec([{ label: 'a <b> & "c"', ms: [5] }]));
  wellFormed(t, svg);
  t.true(svg.includes('a &lt;b&gt; &amp;'));
});
