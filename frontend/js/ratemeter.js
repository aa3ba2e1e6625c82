// How fast a run trains, as its progress messages arrive: steps per second over the last
// three seconds (steady, yet quick to follow a pause or a new pace).

// A rate needs this much time between its samples, or one late message makes it jump.
const RATE_MIN_SPAN_MS = 500;
const WINDOW_MS = 3000;
const BURST_MS = 30;

export class RateMeter {
  constructor() {
    this.samples = []; // [time in ms, iteration], oldest first
  }

  /** Start over (a pause, the queue or a replayed history is no part of the pace). */
  reset() {
    this.samples = [];
  }

  /** A progress report for `iteration` arrived at `now` (performance.now()). */
  add(iteration, now = performance.now()) {
    // Messages handled in one burst (the page was busy drawing) share one sample: the last
    // of the burst. Otherwise the window would start mid-burst and overstate the rate.
    const previous = this.samples.at(-1);
    if (previous && now - previous[0] < BURST_MS) previous[1] = iteration;
    else this.samples.push([now, iteration]);
    while (this.samples.length > 2 && now - this.samples[0][0] > WINDOW_MS) this.samples.shift();
  }

  /** Steps per second, or null while the samples span too short a time to say. */
  rate() {
    if (this.samples.length < 2) return null;
    const [t0, i0] = this.samples[0];
    const [t1, i1] = this.samples.at(-1);
    return t1 - t0 >= RATE_MIN_SPAN_MS ? ((i1 - i0) * 1000) / (t1 - t0) : null;
  }
}
