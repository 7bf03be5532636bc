// Builds the console into the directory given as the only argument:
// tsc output (one ES module per source file) plus web/static as is.
// Deterministic, so `make check-console` can diff a fresh build against
// the checked-in server/codex_image_shim/console_assets.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2];
if (!out) {
  console.error("usage: node build.mjs <output directory>");
  process.exit(2);
}
const target = resolve(out);
rmSync(target, { recursive: true, force: true });
mkdirSync(target, { recursive: true });
const tsc = join(here, "node_modules", "typescript", "bin", "tsc");
try {
  execFileSync(process.execPath, [tsc, "-p", join(here, "tsconfig.json"), "--outDir", target], { stdio: "inherit" });
} catch {
  process.exit(1);  // tsc printed the errors
}
for (const name of readdirSync(join(here, "static")).sort()) {
  copyFileSync(join(here, "static", name), join(target, name));
}
