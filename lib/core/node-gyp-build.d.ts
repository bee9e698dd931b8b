declare module 'node-gyp-build' {
  /** Loads the prebuilt or locally built addon of the package in `dir`. */
  function load(dir: string): unknown;
  namespace load {
    /** The path of the addon that load(dir) would require: build/Release, build/Debug, then prebuilds/. */
    function resolve(dir: string): string;
  }
  export = load;
}
