import { call, getJson, imageUrl } from "./api.js";
import { copyText, curlCommand, grpcurlCommand } from "./commands.js";
import { append, formatBytes, formatMs, h } from "./dom.js";
import { describe } from "./messages.js";
const EXTENSIONS = { "image/png": "png", "image/jpeg": "jpg", "image/webp": "webp" };
function parameters(image) {
    const rows = [
        ["Size", `${image.width}×${image.height}`],
        ["Asked", [image.requested_size || "auto", image.aspect].filter(Boolean).join(" · ")],
        ["Quality", image.quality || "auto"],
        ["Format", `${image.output_format || "png"} · ${formatBytes(Number(image.byte_size))}`],
        ["Took", formatMs(Number(image.duration_ms))],
        ["Request", image.request_id],
    ];
    if (image.create_time)
        rows.push(["Made", new Date(image.create_time).toLocaleString()]);
    if (image.account)
        rows.push(["Account", image.account]);
    if (image.key_name)
        rows.push(["Key", image.key_name]);
    return rows;
}
async function requestRows(image, table) {
    let record;
    try {
        record = (await getJson(`/v1/requests/${encodeURIComponent(image.request_id)}`)).request;
    }
    catch {
        return;
    }
    const rows = [
        ["Outcome", record.error_reason ? `${record.status} (${record.error_reason})` : record.status],
        ["Images asked", String(record.count)],
        ["References", String(record.reference_count)],
        ["Queued", formatMs(Number(record.queue_wait_ms))],
        ["Codex", formatMs(Number(record.codex_ms))],
        ["Request took", formatMs(Number(record.duration_ms))],
        ["Via", record.surface],
    ];
    if (record.accounts?.length)
        rows.push(["Accounts", record.accounts.join(", ")]);
    for (const [name, value] of rows)
        append(table, h("dt", {}, name), h("dd", { "data-key": name }, value));
}
function picture(image) {
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
export function imageCard(image, options) {
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
        }
        catch (err) {
            note.textContent = describe(err);
        }
    };
    const copy = async (kind) => {
        const text = kind === "curl" ? curlCommand(image, options.authRequired())
            : grpcurlCommand(image, options.authRequired());
        card.dataset[kind] = text;
        card.querySelector("textarea.command")?.remove();
        if (await copyText(text)) {
            note.textContent = `Copied the ${kind} command.`;
            return;
        }
        const box = h("textarea", { class: "command", readonly: true, rows: 4, "aria-label": `${kind} command` }, text);
        note.textContent = "Press Ctrl+C to copy:";
        note.after(box);
        box.focus();
        box.select();
    };
    const remove = async () => {
        if (!window.confirm(`Delete ${image.label} (${image.id})? This removes the file too.`))
            return;
        try {
            await call(`/v1/images/${encodeURIComponent(image.id)}`, { method: "DELETE" });
            card.remove();
            options.onDeleted?.(image);
        }
        catch (err) {
            note.textContent = describe(err);
        }
    };
    const table = h("dl", { class: "params" });
    for (const [name, value] of parameters(image))
        append(table, h("dt", {}, name), h("dd", {}, value));
    const details = h("details", {}, h("summary", {}, "Parameters"), table);
    details.addEventListener("toggle", () => {
        if (details.open && !details.dataset.loaded) {
            details.dataset.loaded = "true";
            void requestRows(image, table);
        }
    });
    append(card, h("div", { class: "picture" }, picture(image)), h("h3", {}, image.label), h("p", { class: "prompt", title: image.prompt }, image.prompt || "(references only)"), image.revised_prompt ? h("p", { class: "revised" }, `Model's prompt: ${image.revised_prompt}`) : null, details, h("div", { class: "actions" }, h("button", { type: "button", onclick: download }, "Download"), h("button", { type: "button", onclick: () => copy("curl") }, "Copy as curl"), h("button", { type: "button", onclick: () => copy("grpcurl") }, "Copy as grpcurl"), h("button", { type: "button", class: "danger", onclick: remove }, "Delete")), note);
    return card;
}
