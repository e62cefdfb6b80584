// Parse Mermaid documents with Mermaid's own parser (no browser needed).
// stdin: a JSON array of documents. stdout: a JSON array, one result per document,
// {"ok": true, "diagramType": "..."} or {"ok": false, "error": "..."}.
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!DOCTYPE html><body></body>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false });

const documents = JSON.parse(readFileSync(0, "utf8"));
const results = [];
for (const text of documents) {
  try {
    const parsed = await mermaid.parse(text);
    results.push({ ok: true, diagramType: parsed.diagramType });
  } catch (error) {
    results.push({ ok: false, error: String((error && error.message) || error) });
  }
}
process.stdout.write(JSON.stringify(results) + "\n");
