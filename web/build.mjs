// Builds the console into the directory given as the only argument:
// tsc output (one ES module per source file) plus web/static, with every
// module listed as a modulepreload in index.html.
// Deterministic, so `make check-console` can diff a fresh build against
// the checked-in server/codex_image_shim/console_assets.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
const modules = readdirSync(target).filter((name) => name.endsWith(".js")).sort();
for (const name of readdirSync(join(here, "static")).sort()) {
  if (name === "index.html") {
    const preload = modules.map((m) => `<link rel="modulepreload" href="/console/${m}">`).join("\n");
    const html = readFileSync(join(here, "static", name), "utf8");
    writeFileSync(join(target, name), html.replace(/<!-- modulepreload:[^>]*-->/, preload));
  } else {
    copyFileSync(join(here, "static", name), join(target, name));
  }
}
