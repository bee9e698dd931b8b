// What the commands share: the adapters the flags name, warnings, the model folder.
import type { AdapterSpec } from '../core/adapter';
import { specOf } from '../core/adapter-set';
import { readCatalog } from '../core/catalog';
import { defaultModelDir } from '../core/defaults';
import type { MultiloraWarning } from '../core/pipeline';
import { UsageError, parseLora, parseUse, type LoraArg, type UseArg } from './args';

/** The flags that name a model and adapters, as commander hands them over. */
export interface ModelFlags {
  model?: string;
  lora?: string[];
  catalog?: string;
}

export function modelDir(flags: ModelFlags): string {
  return flags.model ?? defaultModelDir();
}

/** Adapters to register, and (for generate) the alphas a call uses them at, by name. */
export interface AdapterPlan {
  specs: Record<string, AdapterSpec>;
  /** name → alpha, in the order of the command line: the --lora adapters, then the --use ones. */
  use: Record<string, number>;
  loras: LoraArg[];
}

/**
 * Resolves --lora, --catalog and --use. `onlyUsed`: register the catalogue adapters that --use names, not the whole
 * catalogue (what generate wants: unused adapters would cost every step). A catalogue that cannot be read, or a
 * bad entry in it, throws the library's ERR_INVALID_ARGUMENT.
 */
export function planAdapters(flags: ModelFlags & { use?: string[] }, onlyUsed: boolean): AdapterPlan {
  const loras = (flags.lora ?? []).map(parseLora);
  const uses: UseArg[] = (flags.use ?? []).map(parseUse);
  const specs: Record<string, AdapterSpec> = {};
  const use: Record<string, number> = {};
  for (const lora of loras) {
    if (Object.hasOwn(specs, lora.name))
      throw new UsageError(`Adapter ${JSON.stringify(lora.name)} is given twice by --lora`);
    specs[lora.name] = { path: lora.path, alpha: lora.alpha };
    use[lora.name] = lora.alpha;
  }
  if (uses.length > 0 && flags.catalog === undefined)
    throw new UsageError('--use picks adapters of a catalogue: give --catalog');
  if (flags.catalog === undefined) return { specs, use, loras };
  const catalogue = readCatalog(flags.catalog);
  for (const source of catalogue) {
    if (Object.hasOwn(specs, source.name)) {
      throw new UsageError(`Adapter ${JSON.stringify(source.name)} is both in the catalogue and given by --lora`);
    }
  }
  for (const u of uses) {
    const source = catalogue.find((s) => s.name === u.name);
    if (!source) {
      const names = catalogue.map((s) => JSON.stringify(s.name)).join(', ') || 'none';
      throw new UsageError(
        `Expected a catalogue adapter for --use but received ${JSON.stringify(u.name)}; the catalogue has ${names}`,
      );
    }
    if (Object.hasOwn(use, u.name)) throw new UsageError(`Adapter ${JSON.stringify(u.name)} is named twice`);
    use[u.name] = u.alpha ?? source.alpha;
  }
  for (const source of catalogue) {
    if (!onlyUsed || Object.hasOwn(use, source.name)) specs[source.name] = specOf(source);
  }
  return { specs, use, loras };
}

/** Library warnings (tensors that patch nothing) as one line each on stderr. */
export function printWarning(warning: MultiloraWarning): void {
  process.stderr.write(`multilora: warning: ${warning.message}\n`);
}

export function seconds(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}
