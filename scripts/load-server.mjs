#!/usr/bin/env node
// `multilora serve` under load (test/helpers/load-server.mjs, which test/server-load.spec.js also drives): prints
// throughput, latency percentiles, outcomes and the server's memory.
//
//   node scripts/load-server.mjs [--requests 1000] [--connections 5] [--max-queue 4]
//
// Needs `npm run build:ts` (it loads dist/).
import { main } from '../test/helpers/load-server.mjs';

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
