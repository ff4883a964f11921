// Prepended by tools/site.sh to the main module's loader (raydar.js, wasm-bindgen's) and to the wasm
// splitter's chunk loader. The app's code is fetched when a page loads, and a lazy page's when it is
// first opened; if that one fetch fails (the browser drops requests in flight when the machine's
// network changes: a VPN, a new Wi-Fi, a link coming up; Chromium says net::ERR_NETWORK_CHANGED),
// the loader gives up: the page stays server-rendered and never goes live, or the app stops. These
// two module-scope names shadow the browser's for that loader only: a failed fetch, or a body cut
// off while it compiles, is tried again, 4 times in all, 0.2 s, 0.4 s, 0.8 s apart.
const __wasmTries = 4;
const __wasmPause = (i) => new Promise((resolve) => setTimeout(resolve, 200 * 2 ** i));
async function fetch(url, init) {
  for (let i = 0; ; i++) {
    try {
      return await globalThis.fetch(url, init);
    } catch (error) {
      if (i + 1 >= __wasmTries) throw error;
      await __wasmPause(i);
    }
  }
}
// Everything else (Module, Instance, instantiate, Memory…) is the browser's own, through the
// prototype: wasm-bindgen's loader checks `instanceof WebAssembly.Module`.
const WebAssembly = Object.create(globalThis.WebAssembly, {
  instantiateStreaming: {
    async value(source, imports) {
      let response = await source;
      for (let i = 0; ; i++) {
        try {
          return await globalThis.WebAssembly.instantiateStreaming(response, imports);
        } catch (error) {
          // A network failure is a TypeError; a module that does not compile is not tried again.
          if (!(error instanceof TypeError) || i + 1 >= __wasmTries) throw error;
          await __wasmPause(i);
          response = await fetch(response.url);
        }
      }
    },
  },
});
