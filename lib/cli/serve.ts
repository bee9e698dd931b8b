// `multilora serve`: the web server (lib/server) on one model, or on the workers of a queue in Redis (--redis),
// until SIGINT or SIGTERM.
import path from 'node:path';

import { everyAddress, isLoopbackAddress } from '../server/address';
import { checkApiKey } from '../server/auth';
import { startServer, type ServeOptions } from '../server/index';
import { redactUrl } from '../remote/queue';
import { UsageError, parseInteger, parseLora } from './args';
import { modelDir, type ModelFlags } from './common';

export interface ServeFlags extends ModelFlags {
  host: string;
  port: string;
  /** --api-key, or MULTILORA_API_KEY (commander reads it), so that the key need not show in `ps`. */
  apiKey?: string;
  redis?: string;
  queue?: string;
  prefix?: string;
}

/** The one line that says a server bound beyond loopback is open to the network, and on what terms. */
function exposure(where: string, withKey: boolean): string {
  return withKey
    ? `listening on ${where}, not only on this machine, with an API key: over plain HTTP the key and the images cross the network unencrypted (put an HTTPS proxy in front on a network you do not trust)`
    : `listening on ${where}, not only on this machine, with no authentication: anyone who can reach it can use it (give --api-key, or put it behind a proxy that authenticates)`;
}

/** Starts the server, prints its URL, and resolves with 0 once a signal has closed it. */
export async function serveCommand(flags: ServeFlags): Promise<number> {
  const options: ServeOptions = {
    host: flags.host,
    port: parseInteger(flags.port, '--port', 0, 65535),
  };
  if (flags.apiKey !== undefined) {
    try {
      options.apiKey = checkApiKey(flags.apiKey, '--api-key (or MULTILORA_API_KEY)');
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  if (flags.redis !== undefined) {
    // The workers load the model and the adapters; the server only shows theirs.
    for (const [flag, given] of [
      ['--model', flags.model],
      ['--catalog', flags.catalog],
      ['--lora', flags.lora],
    ] as const) {
      if (given !== undefined)
        throw new UsageError(
          `${flag} does not go with --redis: the workers own the model and the adapters (give it to multilora worker)`,
        );
    }
    options.redis = flags.redis;
    if (flags.queue !== undefined) options.queue = flags.queue;
    if (flags.prefix !== undefined) options.prefix = flags.prefix;
  } else {
    for (const [flag, given] of [
      ['--queue', flags.queue],
      ['--prefix', flags.prefix],
    ] as const) {
      if (given !== undefined) throw new UsageError(`${flag} goes with --redis`);
    }
    options.model = modelDir(flags);
    if (flags.catalog !== undefined) options.catalog = path.resolve(flags.catalog);
    const loras = (flags.lora ?? []).map(parseLora);
    if (loras.length) options.loras = loras.map((l) => ({ name: l.name, path: path.resolve(l.path), alpha: l.alpha }));
  }

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
    // The host and port are checked first (exit 2 at once when wrong); only then the load, or the wait.
    server = await startServer(options, () => {
      if (options.redis !== undefined)
        process.stderr.write(`waiting for a worker on Redis ${redactUrl(options.redis)}\n`);
      else process.stderr.write(`loading ${options.model}\n`);
    });
  } finally {
    process.off('SIGINT', early).off('SIGTERM', early);
  }
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  try {
    const address = new URL(server.url).hostname.replace(/^\[(.*)\]$/, '$1');
    const every = everyAddress(address);
    process.stdout.write(`multilora serving on ${server.url}${every ? ` (${every})` : ''}\n`);
    if (!isLoopbackAddress(address))
      process.stderr.write(`multilora: warning: ${exposure(every ?? address, options.apiKey !== undefined)}\n`);
    await stopped;
    process.stderr.write('closing\n');
    await server.close();
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
  }
  return 0;
}
