// Writes .br (quality 11) and .gz (level 9) beside each JS, wasm and CSS file of the built site, so
// raydar-server sends the smallest encoding without compressing on every request.
// Usage: node tools/precompress.mjs target/site/pkg
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, gzipSync, constants } from 'node:zlib';

const dir = process.argv[2] ?? 'target/site/pkg';
for (const name of readdirSync(dir)) {
  if (!/\.(js|wasm|css)$/.test(name)) continue;
  // Brotli at quality 11 takes seconds on the larger modules: skip files compressed since they changed.
  const path = join(dir, name);
  try {
    if (statSync(`${path}.br`).mtimeMs >= statSync(path).mtimeMs) continue;
  } catch { /* not compressed yet */ }
  const raw = readFileSync(join(dir, name));
  const br = brotliCompressSync(raw, { params: {
    [constants.BROTLI_PARAM_QUALITY]: 11,
    [constants.BROTLI_PARAM_LGWIN]: 24,
    [constants.BROTLI_PARAM_SIZE_HINT]: raw.length,
  } });
  writeFileSync(join(dir, `${name}.br`), br);
  writeFileSync(join(dir, `${name}.gz`), gzipSync(raw, { level: 9 }));
  console.log(`precompressed ${name}: ${raw.length} -> br ${br.length}`);
}
