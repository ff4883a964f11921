// Prepended to the wasm splitter's chunk loader by tools/site.sh. A lazy page's code is fetched when
// the page is first opened; if that one fetch fails (the browser drops requests in flight when the
// machine's network changes: a VPN, a new Wi-Fi, a link coming up; Chromium says
// net::ERR_NETWORK_CHANGED), the splitter's loader gives up and the app stops. These two
// module-scope names shadow the browser's for the loader only: a failed fetch, or a body cut off
// while it compiles, is tried again, 4 times in all, 0.2 s, 0.4 s, 0.8 s apart.
const __chunkTries = 4;
const __chunkPause = (i) => new Promise((resolve) => setTimeout(resolve, 200 * 2 ** i));
async function fetch(url, init) {
  for (let i = 0; ; i++) {
    try {
      return await globalThis.fetch(url, init);
    } catch (error) {
      if (i + 1 >= __chunkTries) throw error;
      await __chunkPause(i);
    }
  }
}
const WebAssembly = {
  ...globalThis.WebAssembly,
  async instantiateStreaming(source, imports) {
    let response = await source;
    for (let i = 0; ; i++) {
      try {
        return await globalThis.WebAssembly.instantiateStreaming(response, imports);
      } catch (error) {
        // A network failure is a TypeError; a module that does not compile is not tried again.
        if (!(error instanceof TypeError) || i + 1 >= __chunkTries) throw error;
        await __chunkPause(i);
        response = await fetch(response.url);
      }
    }
  },
};
