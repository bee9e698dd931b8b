// ml-matrix, loaded on first use: only an adapter fitted by `approximate` or fused with OFT blocks needs it.
type Ml = typeof import('ml-matrix');
let ml: Ml | undefined;

export function mlMatrix(): Ml {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  ml ??= require('ml-matrix') as Ml;
  return ml;
}
