// Generates images and saves them:
//   node dist/examples/generate.js "a red fox" [count] [out-dir]
// Server from $CODEX_IMAGE_ADDR (default 127.0.0.1:17342), key from
// $CODEX_IMAGE_API_KEY. Ctrl-C aborts the call and the server stops codex.
import { join } from "node:path";
import { DEFAULT_TARGET, ImageClient, ImageClientError } from "../src/index.js";

const [prompt = "a red fox", count = "1", outDir = "."] = process.argv.slice(2);
const client = new ImageClient(process.env.CODEX_IMAGE_ADDR ?? DEFAULT_TARGET, {
  apiKey: process.env.CODEX_IMAGE_API_KEY,
});
const controller = new AbortController();
process.once("SIGINT", () => controller.abort());

try {
  const result = await client.generateAll({ prompt, count: Number(count) }, {
    signal: controller.signal,
    onEvent: (e) => {
      if (e.case === "progress") console.error(`candidate ${e.value.candidateIndex + 1}: ${e.value.phase || e.value.detail}`);
    },
  });
  for (const image of result.images) {
    const path = join(outDir, `${image.requestId}-${image.index + 1}.png`);
    await client.downloadFile(image.id, path);
    console.log(path);
  }
} catch (err) {
  // ImageClientError's message names the code, the reason and each bad field.
  console.error(err instanceof ImageClientError ? err.message : err);
  process.exitCode = 1;
}
