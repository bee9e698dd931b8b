// Root hook of the unit tier (.mocharc.unit.json, `npm run test:unit`): its specs load no native addon, so that the
// tier runs without a build and in seconds. After them, this fails the run if any addon (ours or a dependency's)
// was loaded into the mocha process, naming it: such a spec belongs to the native tier.
'use strict';
const assert = require('node:assert/strict');

exports.mochaHooks = {
  afterAll() {
    const addons = Object.keys(require.cache).filter((file) => file.endsWith('.node'));
    assert.deepEqual(
      addons,
      [],
      `the unit tier loaded native addons (${addons.join(', ')}): move the spec that did to the native tier`,
    );
  },
};
