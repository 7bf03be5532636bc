// Generates images and saves them:
//   node dist/examples/generate.js "a red fox" [count] [out-dir]
// Server from $CODEX_IMAGE_ADDR (default 127.0.0.1:17342), key from
// $CODEX_IMAGE_API_KEY. Ctrl-C aborts the call and the server stops codex.
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { DEFAULT_TARGET, ImageClient, ImageClientError, Progress, Progress_Stage } from "../src/index.js";

const [prompt = "a red fox", count = "1", outDir = "out"] = process.argv.slice(2);
const EXT: Record<string, string> = { "image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp" };

// One readable line per progress event: every stage has a label, even when
// codex sent no phase or detail with it.
function describe(p: Progress): string {
  const seconds = `${(Number(p.elapsedMs) / 1000).toFixed(1)}s`;
  switch (p.stage) {
    case Progress_Stage.QUEUED:
      return `queued, ${p.queuePosition} ahead (${seconds})`;
    case Progress_Stage.CANDIDATE_STARTED:
      return `candidate ${p.candidateIndex + 1}: started (${seconds})`;
    case Progress_Stage.CODEX_PHASE:
      return `candidate ${p.candidateIndex + 1}: ${p.phase || p.detail || "working"} (${seconds})`;
    case Progress_Stage.CANDIDATE_FINISHED:
      return `candidate ${p.candidateIndex + 1}: finished (${seconds})`;
    default:
      return `${p.detail || Progress_Stage[p.stage] || `stage ${p.stage}`} (${seconds})`;
  }
}

const client = new ImageClient(process.env.CODEX_IMAGE_ADDR ?? DEFAULT_TARGET, {
  apiKey: process.env.CODEX_IMAGE_API_KEY,
});
const controller = new AbortController();
process.once("SIGINT", () => controller.abort());

try {
  await mkdir(outDir, { recursive: true });
  const result = await client.generateAll({ prompt, count: Number(count) }, {
    signal: controller.signal,
    onEvent: (e) => {
      if (e.case === "progress") console.error(describe(e.value));
    },
  });
  for (const image of result.images) {
    const path = join(outDir, `${image.requestId}-${image.index + 1}${EXT[image.mimeType] ?? ".bin"}`);
    await client.downloadFile(image.id, path);
    console.log(path);
  }
} catch (err) {
  // ImageClientError's message names the code, the reason and each bad field.
  console.error(err instanceof ImageClientError ? err.message : err);
  process.exitCode = 1;
}
