/**
 * An attack of the hostile phone (hostile.ts) that acts on draws of its own fork
 * from each activation until the hostile window ends: the first act 200..2000 ms
 * after the activation, each next one when the act says. A second activation while
 * it runs changes nothing.
 */
import type { HostilePhone } from './hostile.js';
import type { Rng } from './rng.js';
import type { World } from './world.js';

export abstract class WhileHostile {
  #running = false;

  constructor(
    readonly world: World,
    readonly hostile: HostilePhone,
    readonly rng: Rng,
  ) {}

  /** The hostile phone was (re)activated: act while it is. */
  kick(): void {
    if (this.#running) return;
    this.#running = true;
    this.world.after(this.rng.int(200, 2000), () => this.#tick());
  }

  #tick(): void {
    if (this.world.now >= this.hostile.until) {
      this.#running = false;
      return;
    }
    const next = this.act();
    this.world.after(next, () => this.#tick());
  }

  /** One act; returns the ms to the next, drawn after the act's own draws. */
  protected abstract act(): number;
}
