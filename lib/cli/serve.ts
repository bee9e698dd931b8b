// `multilora serve`: the web server (lib/server) on one model, until SIGINT or SIGTERM.
import path from 'node:path';

import { startServer, type ServeOptions } from '../server/index';
import { parseInteger, parseLora } from './args';
import { modelDir, type ModelFlags } from './common';

export interface ServeFlags extends ModelFlags {
  host: string;
  port: string;
}

/** Starts the server, prints its URL, and resolves with 0 once a signal has closed it. */
export async function serveCommand(flags: ServeFlags): Promise<number> {
  const options: ServeOptions = {
    model: modelDir(flags),
    host: flags.host,
    port: parseInteger(flags.port, '--port', 0, 65535),
  };
  if (flags.catalog !== undefined) options.catalog = path.resolve(flags.catalog);
  const loras = (flags.lora ?? []).map(parseLora);
  if (loras.length) options.loras = loras.map((l) => ({ name: l.name, path: path.resolve(l.path), alpha: l.alpha }));

  // A signal during the load leaves at once (status 0: nothing was served yet); once the server runs, the first
  // closes it (status 0), a second leaves at once (130).
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => {
    stop = resolve;
  });
  let signals = 0;
  const onSignal = (): void => {
    signals += 1;
    if (signals === 1) stop();
    else process.exit(130);
  };
  const early = (): void => process.exit(0);
  process.on('SIGINT', early).on('SIGTERM', early);
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    process.stderr.write(`loading ${options.model}\n`);
    server = await startServer(options);
  } finally {
    process.off('SIGINT', early).off('SIGTERM', early);
  }
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  try {
    process.stdout.write(`multilora serving on ${server.url}\n`);
    await stopped;
    process.stderr.write('closing\n');
    await server.close();
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
  }
  return 0;
}
