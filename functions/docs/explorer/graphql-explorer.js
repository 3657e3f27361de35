// The GraphQL explorer: a query editor that POSTs to ../graphql (the API of this deployment),
// the persisted queries as examples, and the schema (SDL) with a filter. Everything it loads
// is served by the docs function itself (no CDN), under script-src 'self'.
"use strict";

const $ = (id) => document.getElementById(id);
const endpoint = new URL("../graphql", document.baseURI).href;
let schemaText = "";

async function run() {
  let variables;
  try {
    variables = JSON.parse($("variables").value || "{}");
  } catch (e) {
    show("", "Variables are not valid JSON: " + e.message);
    return;
  }
  const headers = { "content-type": "application/json" };
  const token = $("token").value.trim();
  if (token) headers.authorization = "Bearer " + token;
  $("status").textContent = "...";
  try {
    const started = performance.now();
    const res = await fetch(endpoint, {
      method: "POST",
      headers,
      body: JSON.stringify({ query: $("query").value, variables }),
    });
    const text = await res.text();
    let body = text;
    try {
      body = JSON.stringify(JSON.parse(text), null, 2);
    } catch (_) {
      // Not JSON: shown as it came.
    }
    show(res.status + " in " + Math.round(performance.now() - started) + " ms", body);
  } catch (e) {
    show("network error", String(e));
  }
}

function show(status, text) {
  $("status").textContent = status;
  $("result").textContent = text;
}

function renderSchema() {
  const filter = $("filter").value.trim().toLowerCase();
  if (!filter) {
    $("schema").textContent = schemaText;
    return;
  }
  const blocks = schemaText.split(/\n(?=\S)/);
  $("schema").textContent = blocks.filter((b) => b.toLowerCase().includes(filter)).join("\n");
}

async function load() {
  const [schema, examples] = await Promise.all([
    fetch("graphql-schema.graphql").then((r) => r.text()),
    fetch("graphql-examples.json").then((r) => r.json()),
  ]);
  schemaText = schema;
  renderSchema();
  for (const ex of examples) {
    const option = document.createElement("option");
    option.value = ex.name;
    option.textContent = ex.name;
    $("examples").appendChild(option);
  }
  $("examples").addEventListener("change", () => {
    const ex = examples.find((e) => e.name === $("examples").value);
    if (ex) {
      $("query").value = ex.query;
      $("variables").value = JSON.stringify(ex.variables, null, 2);
    }
  });
}

$("run").addEventListener("click", run);
$("filter").addEventListener("input", renderSchema);
document.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) run();
});
load().catch((e) => show("", "The explorer could not load the schema: " + e));
