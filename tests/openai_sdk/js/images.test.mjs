// The official openai npm SDK (pinned in package.json) against a live
// codex-image-server. Run by tests/openai_sdk/test_js_sdk.py, which starts the
// server with the fake codex and passes OPENAI_BASE_URL and OPENAI_API_KEY.
import assert from "node:assert/strict";
import { test } from "node:test";
import OpenAI, { toFile } from "openai";

const baseURL = process.env.OPENAI_BASE_URL;
const apiKey = process.env.OPENAI_API_KEY;
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });

// A 1x1 red PNG.
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC",
  "base64",
);

function pngSize(b64) {
  const buf = Buffer.from(b64, "base64");
  assert.equal(buf.subarray(1, 4).toString(), "PNG");
  return `${buf.readUInt32BE(16)}x${buf.readUInt32BE(20)}`;
}

test("generate: b64_json, n=3", async () => {
  const res = await client.images.generate({ model: "gpt-image-2", prompt: "a fox [[fake size=320x192]]", n: 3 });
  assert.equal(res.data.length, 3);
  for (const item of res.data) assert.equal(pngSize(item.b64_json), "320x192");
  assert.equal(new Set(res.data.map((d) => d.b64_json)).size, 3);
});

test("generate: url answers fetch with the same key", async () => {
  const res = await client.images.generate({ prompt: "x [[fake size=256x256]]", response_format: "url" });
  const url = res.data[0].url;
  assert.ok(url.startsWith(baseURL.replace(/\/v1$/, "") + "/v1/images/img_"));
  const got = await fetch(url, { headers: { Authorization: `Bearer ${apiKey}` } });
  assert.equal(got.status, 200);
  assert.equal(got.headers.get("content-type"), "image/png");
});

test("generate: webp, transparent background", async () => {
  const res = await client.images.generate({
    prompt: "x [[fake size=256x256 alpha=key]]", background: "transparent", output_format: "webp",
  });
  assert.equal(res.background, "transparent");
  assert.equal(res.output_format, "webp");
  assert.equal(res.data[0].alpha_source, "keyed_matte");
  const buf = Buffer.from(res.data[0].b64_json, "base64");
  assert.equal(buf.subarray(8, 12).toString(), "WEBP");
});

test("edit: one file and several files", async () => {
  const one = await client.images.edit({
    image: await toFile(PNG, "ref.png", { type: "image/png" }), prompt: "night [[fake size=256x256]]",
  });
  assert.equal(pngSize(one.data[0].b64_json), "256x256");
  const files = await Promise.all([1, 2, 3].map((i) => toFile(PNG, `ref${i}.png`, { type: "image/png" })));
  const several = await client.images.edit({ image: files, prompt: "mix [[fake size=256x256]]", n: 2 });
  assert.equal(several.data.length, 2);
});

test("streaming: one image_generation.completed per image", async () => {
  const stream = await client.images.generate({ prompt: "x [[fake size=256x256]]", n: 2, stream: true });
  const types = [];
  for await (const event of stream) types.push(event.type);
  assert.deepEqual(types, ["image_generation.completed", "image_generation.completed"]);
});

test("models", async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.ok(ids.includes("gpt-image-2"));
  await assert.rejects(client.models.retrieve("dall-e-3"), OpenAI.NotFoundError);
});

test("errors are the SDK's own classes", async () => {
  const wrong = new OpenAI({ baseURL, apiKey: "wrong", maxRetries: 0 });
  await assert.rejects(wrong.images.generate({ prompt: "x" }), OpenAI.AuthenticationError);
  await assert.rejects(client.images.generate({ prompt: "x", n: 9 }), (err) => {
    assert.ok(err instanceof OpenAI.BadRequestError);
    assert.equal(err.param, "n");
    return true;
  });
  await assert.rejects(client.images.generate({ prompt: "x", background: "transparent", output_format: "jpeg" }),
    (err) => err instanceof OpenAI.BadRequestError && err.param === "background");
  await assert.rejects(client.images.generate({ prompt: "x [[fake mode=quota]]" }), OpenAI.RateLimitError);
  await assert.rejects(client.images.generate({ prompt: "x [[fake mode=forbidden]]" }), OpenAI.PermissionDeniedError);
  await assert.rejects(client.images.generate({ prompt: "x [[fake mode=fail]]" }), OpenAI.InternalServerError);
});

test("2026 values: model ids, qualities, moderation, compression; the answer says what codex used", async () => {
  for (const model of ["gpt-image-2.5-sunburst", "gpt-image-2.6-flare"]) {
    for (const quality of ["xhigh", "max"]) {
      const { data: res, response } = await client.images.generate({
        model, quality, moderation: "low", output_format: "jpeg", output_compression: 40,
        prompt: "x [[fake size=256x256]]",
      }).withResponse();
      assert.equal(res.model, "gpt-image-2");
      assert.equal(res.quality, "auto");
      assert.equal(response.headers.get("x-codex-image-ignored"), "moderation, model, quality");
      assert.equal(Buffer.from(res.data[0].b64_json, "base64").subarray(0, 3).toString("hex"), "ffd8ff");
    }
  }
});

test("2026 values codex cannot honour: gif, svg, a bad moderation name the field", async () => {
  for (const [body, param] of [[{ output_format: "gif" }, "output_format"], [{ output_format: "svg" }, "output_format"],
                               [{ moderation: "strict" }, "moderation"]]) {
    await assert.rejects(client.images.generate({ prompt: "x", ...body }), (err) => {
      assert.ok(err instanceof OpenAI.BadRequestError, String(err));
      assert.equal(err.param, param);
      return true;
    });
  }
});

test("a safety refusal is moderation_blocked", async () => {
  await assert.rejects(client.images.generate({ prompt: "x [[fake mode=moderation]]" }), (err) => {
    assert.ok(err instanceof OpenAI.BadRequestError, String(err));
    assert.equal(err.status, 400);
    assert.equal(err.code, "moderation_blocked");
    assert.equal(err.type, "image_generation_user_error");
    return true;
  });
});

test("a timed-out call is given up (the runner checks its codex runs are gone by pid)", async () => {
  await assert.rejects(
    client.images.generate({ prompt: "js-timeout [[fake delay=60 child=1]]", n: 2 }, { timeout: 1500 }),
    OpenAI.APIConnectionTimeoutError,
  );
  console.log("TIMED_OUT js-timeout");
});
