import { runThroughput } from '../throughput.js';
async function main(): Promise<void> {
  const r = await runThroughput({ windowMs: 5000, log: (s) => console.error(s) });
  console.log(JSON.stringify(r));
  process.exit(0);
}
void main();
