#!/usr/bin/env node
// The `multilora` command. Exit status: 0 done, 1 a failure (the message names the error's code), 2 a bad command
// line, 130 stopped by Ctrl-C.
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { Command, CommanderError, Option } from 'commander';

import { MultiloraError } from '../core/errors';
import { CONVERT_SCHEDULERS, WEIGHT_FORMATS } from '../convert/index';
import { GENERATORS, SCHEDULERS } from '../core/options';
import { PACKAGE_ROOT } from '../core/sdk';
import { UsageError, collect } from './args';
import { convertCommand, type ConvertFlags } from './convert';
import { generateCommand, type GenerateFlags } from './generate';
import { infoCommand, type InfoFlags } from './info';
import { serveCommand, type ServeFlags } from './serve';
import { workerCommand, type WorkerFlags } from './worker';

const EXIT = { ok: 0, failure: 1, usage: 2, interrupted: 130 } as const;

function version(): string {
  try {
    return (JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function modelOptions(command: Command): Command {
  return command
    .option(
      '--model <dir>',
      'an OpenVINO model folder exported by optimum-intel (default: the embedded tiny SDXL model)',
    )
    .option(
      '--lora <name=path[:alpha]>',
      'register a LoRA .safetensors file under a name, at an alpha (default 1); repeatable',
      collect,
    )
    .option('--catalog <file.json>', 'a JSON catalogue of adapters by name (paths relative to the file)');
}

/** The program; `run` sets the exit status the actions resolve with. */
function buildProgram(run: (action: () => Promise<number>) => Promise<void>): Command {
  const program = new Command('multilora')
    .description('Stable Diffusion with LoRA adapters on OpenVINO GenAI')
    .version(version())
    .exitOverride()
    .showSuggestionAfterError()
    .configureOutput({ outputError: (text, write) => write(`multilora: ${text.replace(/^error: /, '')}`) });

  modelOptions(
    program
      .command('generate')
      .description('generate an image from a prompt')
      .argument('<prompt>', 'what to draw (quote it)'),
  )
    .option('--use <name[:alpha]>', 'use a catalogue adapter, at its alpha or the given one; repeatable', collect)
    .addOption(new Option('--seed <n>', 'seed, 0 to 4294967295 (default: random, printed)').conflicts('randomSeed'))
    .addOption(new Option('--random-seed', 'a random seed (the default)').conflicts('seed'))
    .addOption(
      new Option('--generator <name>', "what turns the seed into noise: GenAI's own, or torch's (as diffusers)")
        .choices([...GENERATORS])
        .default('genai'),
    )
    .option('--width <w>', "width in pixels, a multiple of the model's VAE scale factor (default: the model's)")
    .option('--height <h>', "height in pixels (default: the model's)")
    .option('--steps <n>', "denoising steps (default: the model's)")
    .option('--guidance <g>', "guidance scale, 0 to 100; 1 or less turns it off (default: the model's)")
    .option('--negative <text>', 'negative prompt')
    .option('--n <count>', 'images in one batch, 1 to 16: written as <out>-1.png, <out>-2.png...')
    .addOption(new Option('--scheduler <name>', "scheduler (default: the model's)").choices(Object.keys(SCHEDULERS)))
    .option('--apply-template', "wrap the prompt in the adapters' templates and add their negative prompts")
    .option('--out <file>', 'output .png, .jpg or .jpeg, or - for a PNG on stdout (default: multilora-<seed>.png)')
    .option('--quality <q>', 'JPEG quality, 1 to 100', '90')
    .option('--json', 'print a JSON summary on stdout (files, seed, size, adapters, timings)')
    .action((prompt: string, flags: GenerateFlags) => run(() => generateCommand(prompt, flags)));

  modelOptions(program.command('info').description("show a model's defaults and each adapter's match report"))
    .option('--json', 'print it as JSON')
    .action((flags: InfoFlags) => run(() => infoCommand(flags)));

  modelOptions(
    program
      .command('serve')
      .description(
        'serve the web page and the HTTP API on a model (or on the workers of a queue in Redis), until Ctrl-C',
      ),
  )
    .option('--host <host>', 'the address to listen on', '127.0.0.1')
    .option('--port <port>', 'the port to listen on; 0 for any free one', '7860')
    .addOption(
      new Option(
        '--api-key <key>',
        'require this key (Authorization: Bearer <key>) on every API request; the page asks for it',
      ).env('MULTILORA_API_KEY'),
    )
    .option(
      '--redis <url>',
      'enqueue the generations in Redis for multilora worker processes instead of loading a model here',
    )
    .option('--queue <name>', 'with --redis: the queue name (default: generate)')
    .option('--prefix <prefix>', 'with --redis: the prefix of the keys in Redis (default: multilora)')
    .action((flags: ServeFlags) => run(() => serveCommand(flags)));

  modelOptions(
    program
      .command('worker')
      .description('take generation jobs from a BullMQ queue in Redis (RemoteQueue, serve --redis), until Ctrl-C'),
  )
    .requiredOption('--redis <url>', 'the Redis server: redis://[user:password@]host:port[/db]')
    .option('--concurrency <k>', 'jobs at once, each on a pipeline of its own', '1')
    .option('--queue <name>', 'the queue name (default: generate)')
    .option('--prefix <prefix>', 'the prefix of the keys in Redis (default: multilora)')
    .option('--result-ttl <seconds>', "how long a result's bytes stay in Redis (default: 3600)")
    .option(
      '--lock-duration <ms>',
      'how long a job stays locked to a worker that stopped answering, before another retries it (default: 30000)',
    )
    .option('--threads <n>', 'OpenVINO threads per pipeline (default: every core)')
    .option(
      '--max-size <px>',
      'the largest width and height a job may ask for (default: what serve allows for the model)',
    )
    .option('--max-steps <n>', 'the most steps a job may ask for (default: 500)')
    .option('--max-images <n>', 'the most images one job may ask for (default: 4)')
    .action((flags: WorkerFlags) => run(() => workerCommand(flags)));

  program
    .command('convert')
    .description('convert a diffusers model (a folder or a Hugging Face Hub id) to OpenVINO IR, LoRAs fused first')
    .argument('<source>', 'a diffusers model folder, or a Hugging Face Hub id (org/name)')
    .argument('<out-dir>', 'the folder to write the OpenVINO model to: new or empty (or --force)')
    .addOption(
      new Option('--weight-format <format>', 'how the IR stores its weights')
        .choices([...WEIGHT_FORMATS])
        .default('fp16'),
    )
    .option(
      '--fuse-lora <path[:alpha]>',
      'fuse a LoRA into the weights before the export, at an alpha (default 1); repeatable',
      collect,
    )
    .addOption(
      new Option(
        '--fuse-scale <meaning>',
        "what the alphas of --fuse-lora mean: GenAI's whole scale, or diffusers' (× alpha/rank)",
      )
        .choices(['genai', 'diffusers'])
        .default('genai'),
    )
    .addOption(
      new Option(
        '--scheduler <name>',
        "the converted model's default scheduler (e.g. lcm with LCM-LoRA fused; default: its own)",
      ).choices(Object.keys(CONVERT_SCHEDULERS)),
    )
    .option('--tiny-vae <dir>', 'an AutoencoderTiny folder whose decoder replaces the VAE decoder (a draft model)')
    .addOption(new Option('--task <task>', "optimum-intel's task").choices(['text-to-image']).default('text-to-image'))
    .option('--revision <rev>', 'a branch, tag or commit of a Hub model')
    .option('--force', 'replace an output folder that is not empty (once the new model works)')
    .option('--no-verify', 'skip loading the result and generating one small image')
    .option('--json', 'print the result as JSON')
    .action((source: string, outDir: string, flags: ConvertFlags) => run(() => convertCommand(source, outDir, flags)));

  return program;
}

/** One line on stderr for what went wrong, and the exit status it means. Expected errors never show a stack. */
export function report(err: unknown): number {
  const write = (line: string): void => void process.stderr.write(`multilora: ${line.replace(/\s*\n\s*/g, ' ')}\n`);
  if (err instanceof UsageError) {
    write(err.message);
    return EXIT.usage;
  }
  if (err instanceof MultiloraError) {
    if (err.code === 'ERR_ABORTED') {
      write('ERR_ABORTED: interrupted');
      return EXIT.interrupted;
    }
    write(`${err.code}: ${err.message}`);
    return err.code === 'ERR_INVALID_ARGUMENT' ? EXIT.usage : EXIT.failure;
  }
  if (err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string') {
    write(err.message); // a system error (EACCES, ENOSPC...): its message starts with its code
    return EXIT.failure;
  }
  process.stderr.write(
    `multilora: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  return EXIT.failure;
}

export async function main(argv: string[]): Promise<number> {
  let status: number = EXIT.ok;
  const program = buildProgram(async (action) => {
    status = await action();
  });
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage; // commander printed it
    return report(err);
  }
  return status;
}

if (require.main === module) {
  // A closed stdout (`multilora generate x --out - | head -c 1`): the write of the image fails through its callback
  // (exit 1, "write EPIPE"); the stream's own 'error' event must not also crash the process with a stack trace.
  process.stdout.on('error', () => undefined);
  // The exit status is set, not forced: stdout (an image or JSON on a pipe) drains first.
  void main(process.argv).then((status) => {
    process.exitCode = status;
  });
}
