declare module 'node-gyp-build' {
  /** Loads the prebuilt or locally built addon of the package in `dir`. */
  function load(dir: string): unknown;
  export = load;
}
