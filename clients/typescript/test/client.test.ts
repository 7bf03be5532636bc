// Needs a live server: tests/clients/test_typescript_client.py starts one
// (fake codex) and runs `node --test` with CODEX_IMAGE_ADDR and
// CODEX_IMAGE_API_KEY set, then checks by pid that the aborted call's codex
// runs are gone.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Code } from "@connectrpc/connect";
import { GenerationMetadata_State, ImageClient, ImageClientError, Progress_Stage, operationMetadata,
  operationResult } from "../src/index.js";

const addr = process.env.CODEX_IMAGE_ADDR;
if (!addr) {
  throw new Error("CODEX_IMAGE_ADDR is not set: run these through `make test` (tests/clients/test_typescript_client.py starts the server)");
}
const apiKey = process.env.CODEX_IMAGE_API_KEY;
const client = new ImageClient(addr, { apiKey, timeoutMs: 20_000 });

test("health and capabilities", async () => {
  assert.equal((await client.health()).ready, true);
  assert.equal((await client.capabilities()).maxImages, 4);
});

test("generate streams typed events, download checks sha256", async () => {
  const kinds = new Set<string>();
  const result = await client.generateAll(
    { prompt: "a red fox", count: 2, size: "2K", aspect: "16:9", requestId: "ts-gen-1" },
    { onEvent: (e) => kinds.add(e.case), timeoutMs: 60_000 });
  assert.deepEqual([...kinds].sort(), ["image", "progress", "summary"]);
  assert.equal(result.summary?.requestId, "ts-gen-1");
  assert.deepEqual(result.images.map((i) => i.index).sort(), [0, 1]);
  const dir = await mkdtemp(join(tmpdir(), "ts-client-"));
  for (const image of result.images) {
    const path = join(dir, `${image.index}.png`);
    const info = await client.downloadFile(image.id, path);
    assert.equal(info.contentType, "image/png");
    assert.equal(createHash("sha256").update(await readFile(path)).digest("hex"), image.sha256);
  }
});

test("a bad request carries its code, reason and each field violation", async () => {
  await assert.rejects(client.generateAll({ prompt: "", count: 9, size: "banana" }), (err: unknown) => {
    assert.ok(err instanceof ImageClientError);
    assert.equal(err.code, Code.InvalidArgument);
    assert.equal(err.domain, "codex-image-server");
    const byField = Object.fromEntries(err.violations.map((v) => [v.field, v.reason]));
    assert.equal(byField.prompt, "MISSING_PROMPT");
    assert.equal(byField.count, "INVALID_COUNT");
    assert.equal(byField.size, "INVALID_SIZE");
    return true;
  });
});

test("no API key is Unauthenticated", async () => {
  const anonymous = new ImageClient(addr, { timeoutMs: 10_000 });
  await assert.rejects(anonymous.capabilities(), (err: unknown) =>
    err instanceof ImageClientError && err.code === Code.Unauthenticated && err.reason === "UNAUTHORIZED");
});

test("AbortSignal cancels the generation", async () => {
  const controller = new AbortController();
  const started = new Set<number>();
  await assert.rejects(
    client.generateAll({ prompt: "slow fox [[fake delay=30]]", count: 3, requestId: "ts-cancel-1" }, {
      signal: controller.signal,
      onEvent: (e) => {
        if (e.case === "progress" && e.value.stage === Progress_Stage.CANDIDATE_STARTED) {
          started.add(e.value.candidateIndex);
          if (started.size === 3) controller.abort();
        }
      },
    }),
    (err: unknown) => err instanceof ImageClientError && err.code === Code.Canceled);
  console.log("CANCELLED request_id=ts-cancel-1");
});

test("history: list with filters page by page, get a request, delete an image", async () => {
  const made = await client.generateAll({ prompt: "ts history heron", count: 3, requestId: "ts-hist" },
    { timeoutMs: 60_000 });
  const page = await client.listImages({ pageSize: 2, promptContains: "HERON" });
  assert.equal(page.images.length, 2);
  assert.ok(page.nextPageToken);
  const all = [];
  for await (const image of client.iterImages({ pageSize: 1, requestId: "ts-hist" })) all.push(image.id);
  assert.deepEqual(all.sort(), made.images.map((i) => i.id).sort());
  const detail = await client.getRequest("ts-hist");
  assert.equal(detail.request?.status, "completed");
  assert.equal(detail.request?.keyName, "default");
  assert.equal(detail.images.length, 3);
  const statuses = [];
  for await (const r of client.iterRequests({ requestId: "ts-hist", status: "completed" })) statuses.push(r.status);
  assert.deepEqual(statuses, ["completed"]);
  await client.deleteImage(made.images[0].id);
  await assert.rejects(client.deleteImage(made.images[0].id), (err: unknown) => {
    assert.ok(err instanceof ImageClientError);
    assert.equal(err.code, Code.NotFound);
    return true;
  });
  const left = (await client.listImages({ requestId: "ts-hist" })).images.map((i) => i.id);
  assert.equal(left.length, 2);
  assert.ok(!left.includes(made.images[0].id));
});

test("detached: submit, wait, list; cancel ends it Canceled, a second cancel is FailedPrecondition", async () => {
  const op = await client.submit({ prompt: "ts kite [[fake delay=0.3]]", count: 2, requestId: "ts-op-1" });
  assert.equal(op.name, "operations/ts-op-1");
  const done = await client.wait("ts-op-1", 30_000);
  assert.equal(operationResult(done).images.length, 2);
  assert.equal(operationMetadata(done)?.state, GenerationMetadata_State.SUCCEEDED);
  const names = [];
  for await (const o of client.iterOperations({ filter: "done = true", pageSize: 1 })) names.push(o.name);
  assert.ok(names.includes("operations/ts-op-1"));
  const slow = await client.submit({ prompt: "ts slow [[fake delay=60]]", requestId: "ts-op-slow" });
  await client.cancel(slow.name);
  const ended = await client.wait(slow.name, 20_000);
  assert.throws(() => operationResult(ended), (err: unknown) => err instanceof ImageClientError && err.code === Code.Canceled);
  await assert.rejects(client.cancel(slow.name), (err: unknown) =>
    err instanceof ImageClientError && err.code === Code.FailedPrecondition && err.reason === "OPERATION_DONE");
});
