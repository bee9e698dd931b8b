// The web demo's server, loaded on first use: its HTTP libraries cost nothing to users who never serve.
import type * as Server from './server/index';

export type { RunningServer, ServeOptions } from './server/index';

/** Starts `multilora serve`'s server in this process: the page and the HTTP API (docs/SERVER.md). */
export function startServer(options: Server.ServeOptions): ReturnType<typeof Server.startServer> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const server = require('./server/index') as typeof Server;
  return server.startServer(options);
}
