// Preloaded into a `multilora worker` process (NODE_OPTIONS=--require) to give it a clock that is
// MULTILORA_TEST_CLOCK_SHIFT_MS off: a host whose clock disagrees with the others'. Date.now and new Date() both move.
'use strict';
const shift = Number(process.env.MULTILORA_TEST_CLOCK_SHIFT_MS ?? 0);
const RealDate = Date;
const realNow = RealDate.now;

class SkewedDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(realNow() + shift);
    else super(...args);
  }

  static now() {
    return realNow() + shift;
  }
}
globalThis.Date = SkewedDate;
