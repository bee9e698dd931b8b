# A thin shim for tools that expect node-gyp (prebuildify's default backend, `node-gyp rebuild`): it delegates to
# cmake-js, the one build of record (CMakeLists.txt). It holds no sources or flags of its own.
{
  "targets": [
    {
      "target_name": "multilora",
      "type": "none",
      "actions": [
        {
          "action_name": "cmake-js",
          "inputs": ["CMakeLists.txt"],
          "outputs": ["build/Release/multilora.node"],
          "action": ["node", "scripts/build-native.mjs"]
        }
      ]
    }
  ]
}
