// One stored image as a card: the picture, its parameters, and what can be
// done with it (download, copy as curl / grpcurl, delete). The same card
// shows a fresh candidate on the Generate tab and a past image in History.

import { call, getJson, imageUrl } from "./api.js";
import { copyText, curlCommand, grpcurlCommand } from "./commands.js";
import { append, formatBytes, formatMs, h } from "./dom.js";
import { describe } from "./messages.js";
import type { ImageRecord } from "./types.js";

export interface CardOptions {
  authRequired: () => boolean;
  onDeleted?: (image: ImageRecord) => void;
}

const EXTENSIONS: Record<string, string> = { "image/png": "png", "image/jpeg": "jpg", "image/webp": "webp" };

function parameters(image: ImageRecord): [string, string][] {
  const rows: [string, string][] = [
    ["Size", `${image.width}×${image.height}`],
    ["Asked", [image.requested_size || "auto", image.aspect].filter(Boolean).join(" · ")],
    ["Quality", image.quality || "auto"],
    ["Format", `${image.output_format || "png"} · ${formatBytes(Number(image.byte_size))}`],
    ["Took", formatMs(Number(image.duration_ms))],
    ["Request", image.request_id],
  ];
  if (image.create_time) rows.push(["Made", new Date(image.create_time).toLocaleString()]);
  if (image.account) rows.push(["Account", image.account]);
  if (image.key_name) rows.push(["Key", image.key_name]);
  return rows;
}

interface RequestRecord {
  status: string;
  count: number;
  reference_count: number;
  queue_wait_ms: number;
  codex_ms: number;
  duration_ms: number;
  accounts: string[];
  surface: string;
  error_reason: string;
}

/** The request's own record from the history (GetRequest), once, when the
 * parameters are first opened; a server without history has none. */
async function requestRows(image: ImageRecord, table: HTMLElement): Promise<void> {
  let record: RequestRecord;
  try {
    record = (await getJson<{ request: RequestRecord }>(`/v1/requests/${encodeURIComponent(image.request_id)}`)).request;
  } catch {
    return;
  }
  const rows: [string, string][] = [
    ["Outcome", record.error_reason ? `${record.status} (${record.error_reason})` : record.status],
    ["Images asked", String(record.count)],
    ["References", String(record.reference_count)],
    ["Queued", formatMs(Number(record.queue_wait_ms))],
    ["Codex", formatMs(Number(record.codex_ms))],
    ["Request took", formatMs(Number(record.duration_ms))],
    ["Via", record.surface],
  ];
  if (record.accounts?.length) rows.push(["Accounts", record.accounts.join(", ")]);
  for (const [name, value] of rows) append(table, h("dt", {}, name), h("dd", { "data-key": name }, value));
}

/** Loads the picture with the key (an <img src> could not send it). */
function picture(image: ImageRecord): HTMLElement {
  const img = h("img", { alt: `${image.label}: ${image.prompt}`, width: image.width, height: image.height,
    class: "loading" });
  imageUrl(image.file_path).then((url) => {
    img.src = url;
    img.classList.remove("loading");
    img.dataset.loaded = "true";
  }, (err) => {
    img.alt = `Could not load the image: ${describe(err)}`;
  });
  return img;
}

export function imageCard(image: ImageRecord, options: CardOptions): HTMLElement {
  const note = h("p", { class: "card-note", role: "status" });
  const card = h("article", { class: "card", "data-image-id": image.id });

  const download = async () => {
    try {
      const url = await imageUrl(image.file_path);
      const link = h("a", { href: url, download: `${image.id}.${EXTENSIONS[image.mime_type] ?? "bin"}` });
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (err) {
      note.textContent = describe(err);
    }
  };
  const copy = async (kind: "curl" | "grpcurl") => {
    const text = kind === "curl" ? curlCommand(image, options.authRequired())
      : grpcurlCommand(image, options.authRequired());
    card.dataset[kind] = text;
    card.querySelector("textarea.command")?.remove();
    if (await copyText(text)) {
      note.textContent = `Copied the ${kind} command.`;
      return;
    }
    // No clipboard here (plain http on a LAN address, say): show it selected.
    const box = h("textarea", { class: "command", readonly: true, rows: 4, "aria-label": `${kind} command` }, text);
    note.textContent = "Press Ctrl+C to copy:";
    note.after(box);
    box.focus();
    box.select();
  };
  const remove = async () => {
    if (!window.confirm(`Delete ${image.label} (${image.id})? This removes the file too.`)) return;
    try {
      await call(`/v1/images/${encodeURIComponent(image.id)}`, { method: "DELETE" });
      card.remove();
      options.onDeleted?.(image);
    } catch (err) {
      note.textContent = describe(err);
    }
  };

  const table = h("dl", { class: "params" });
  for (const [name, value] of parameters(image)) append(table, h("dt", {}, name), h("dd", {}, value));
  const details = h("details", {}, h("summary", {}, "Parameters"), table);
  details.addEventListener("toggle", () => {
    if (details.open && !details.dataset.loaded) {
      details.dataset.loaded = "true";
      void requestRows(image, table);
    }
  });
  append(card,
    h("div", { class: "picture" }, picture(image)),
    h("h3", {}, image.label),
    h("p", { class: "prompt", title: image.prompt }, image.prompt || "(references only)"),
    image.revised_prompt ? h("p", { class: "revised" }, `Model's prompt: ${image.revised_prompt}`) : null,
    details,
    h("div", { class: "actions" },
      h("button", { type: "button", onclick: download }, "Download"),
      h("button", { type: "button", onclick: () => copy("curl") }, "Copy as curl"),
      h("button", { type: "button", onclick: () => copy("grpcurl") }, "Copy as grpcurl"),
      h("button", { type: "button", class: "danger", onclick: remove }, "Delete")),
    note);
  return card;
}
