import { ApiError, call, postStream } from "./api.js";
import { append, byId, clear, formatMs, h } from "./dom.js";
import { imageCard } from "./item.js";
import { describe } from "./messages.js";
import { advance, describeProgress } from "./progress.js";
import { References } from "./references.js";
const CUSTOM = "custom";
const FIELDS = ["prompt", "count", "size", "aspect", "quality", "output_format", "fit", "background", "references"];
const OPTIONAL = [["fits", "fit"], ["backgrounds", "background"]];
function options(select, values, label = (v) => v) {
    clear(select);
    for (const value of values)
        append(select, h("option", { value }, label(value)));
}
function newRequestId() {
    const bytes = crypto.getRandomValues(new Uint8Array(6));
    return "console-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
export class GenerateView {
    authRequired;
    onImage;
    form = byId("generate-form");
    prompt = byId("prompt");
    count = byId("count");
    size = byId("size");
    customSize = byId("custom-size");
    aspect = byId("aspect");
    quality = byId("quality");
    format = byId("output_format");
    submit = byId("generate-button");
    cancel = byId("cancel-button");
    detached = byId("detached-button");
    message = byId("generate-message");
    results = byId("results");
    references = new References(byId("reference-list"), byId("reference-status"));
    presets = new Set();
    controller = null;
    constructor(authRequired, onImage) {
        this.authRequired = authRequired;
        this.onImage = onImage;
        this.references.attach(byId("reference-input"), byId("reference-zone"), byId("generate"));
        this.form.addEventListener("submit", (e) => {
            e.preventDefault();
            void this.run();
        });
        this.prompt.addEventListener("keydown", (e) => {
            if (e.key === "Enter" && (e.ctrlKey || e.metaKey))
                this.form.requestSubmit();
        });
        this.cancel.addEventListener("click", () => this.controller?.abort());
        this.detached.addEventListener("click", () => void this.runDetached());
        document.addEventListener("keydown", (e) => {
            if (e.key === "Escape" && this.controller)
                this.controller.abort();
        });
        this.size.addEventListener("change", () => this.syncSize());
    }
    configure(caps) {
        this.presets = new Set((caps.presets ?? []).map((p) => p.name));
        const sizes = [...caps.size_options];
        if (caps.size_constraints?.custom_size)
            sizes.push(CUSTOM);
        options(this.size, sizes, (v) => v === CUSTOM ? "Custom W×H…" : this.presets.has(v) ? `${v} preset` : v);
        const aspects = caps.aspect_options?.map((a) => a.name) ?? [...caps.ratio_options, ...(caps.aspect_names ?? [])];
        const described = new Map((caps.aspect_options ?? []).map((a) => [a.name, a.description]));
        options(this.aspect, ["", ...aspects], (v) => v ? (described.has(v) && !v.includes(":") ? `${v} (${described.get(v)})` : v)
            : "(none)");
        options(this.quality, caps.qualities);
        options(this.format, caps.output_formats);
        for (const [list, field] of OPTIONAL) {
            const values = caps[list] ?? [];
            options(byId(field), values);
            byId(`${field}-field`).hidden = values.length === 0;
        }
        this.count.max = String(caps.max_images);
        const c = caps.size_constraints;
        if (c) {
            this.customSize.placeholder = `e.g. 1536x1024`;
            byId("size-hint").textContent = `Custom: multiples of ${c.multiple_of}, edge ≤ ${c.max_edge}, ratio ≤ ${c.max_ratio}. ` +
                "Aspect applies to presets.";
        }
        const refs = caps.references;
        if (refs) {
            byId("reference-input").accept = refs.mime_types.join(",");
            byId("reference-hint").textContent = `Up to ${refs.max_images}, original resolution. ` +
                "Choose files, drop them here, or paste.";
        }
        this.syncSize();
        this.submit.disabled = false;
        this.detached.disabled = false;
    }
    syncSize() {
        const custom = this.size.value === CUSTOM;
        this.customSize.hidden = !custom;
        byId("custom-size-label").hidden = !custom;
        this.aspect.disabled = !this.presets.has(this.size.value);
    }
    body(requestId) {
        const body = {
            prompt: this.prompt.value,
            count: Number(this.count.value || 1),
            size: this.size.value === CUSTOM ? this.customSize.value.trim() : this.size.value,
            quality: this.quality.value,
            output_format: this.format.value,
            request_id: requestId,
        };
        if (!this.aspect.disabled && this.aspect.value)
            body.aspect = this.aspect.value;
        for (const [, field] of OPTIONAL) {
            if (!byId(`${field}-field`).hidden)
                body[field] = byId(field).value;
        }
        const refs = this.references.payload();
        if (refs.length)
            body.references = refs;
        return body;
    }
    clearErrors() {
        for (const field of FIELDS) {
            const slot = document.getElementById(`error-${field}`);
            if (slot)
                slot.textContent = "";
            document.querySelector(`[data-field="${field}"]`)?.classList.remove("invalid");
        }
        this.references.showErrors(new Map());
        this.message.textContent = "";
        this.message.className = "message";
    }
    showError(error) {
        this.message.textContent = describe(error);
        this.message.className = "message error";
        if (!(error instanceof ApiError))
            return;
        const byField = new Map();
        const refErrors = new Map();
        for (const v of error.violations) {
            const ref = /^(?:references|reference_images_base64)\[(\d+)\]/.exec(v.field);
            if (ref) {
                refErrors.set(Number(ref[1]), v.description);
                continue;
            }
            const field = v.field.split(/[.[]/)[0];
            const known = FIELDS.includes(field) ? field : "";
            byField.set(known, [...(byField.get(known) ?? []), known ? v.description : `${v.field}: ${v.description}`]);
        }
        for (const [field, texts] of byField) {
            const slot = field ? document.getElementById(`error-${field}`) : null;
            if (slot) {
                slot.textContent = texts.join("; ");
                document.querySelector(`[data-field="${field}"]`)?.classList.add("invalid");
            }
            else {
                this.message.textContent += " " + texts.join("; ");
            }
        }
        if (refErrors.size)
            this.references.showErrors(refErrors);
        const first = document.querySelector("[data-field].invalid input, [data-field].invalid select, " +
            "[data-field].invalid textarea");
        first?.focus();
    }
    slots(count, requestId) {
        clear(this.results);
        const run = h("section", { class: "run", "data-request-id": requestId, "aria-label": "Current request" }, h("p", { class: "run-id" }, `Request ${requestId}`));
        const slots = [];
        for (let i = 0; i < count; i++) {
            const bar = h("progress", { max: 100, value: 0, "aria-label": `Candidate ${i + 1} progress` });
            const stage = h("span", { class: "stage" }, "Sending…");
            const root = h("div", { class: "slot", "data-candidate": i }, h("div", { class: "slot-head" }, h("strong", {}, `Candidate ${i + 1}`), stage), bar);
            append(run, root);
            slots.push({ root, bar, stage, percent: 0, done: false });
        }
        append(this.results, run);
        return slots;
    }
    async runDetached() {
        this.clearErrors();
        const body = this.body(newRequestId());
        const refs = (body.references ?? []);
        body.references = refs.map((r) => ({ ...r, image: r.image.replace(/^data:[^,]*,/, "") }));
        this.detached.disabled = true;
        try {
            const response = await call("/v1/images:submit", { method: "POST",
                headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
            const op = await response.json();
            this.message.textContent = `Submitted ${op.name}: it runs on the server; History lists it.`;
            this.message.className = "message ok";
        }
        catch (err) {
            this.showError(err);
        }
        finally {
            this.detached.disabled = false;
        }
    }
    async run() {
        if (this.controller)
            return;
        this.clearErrors();
        const requestId = newRequestId();
        const body = this.body(requestId);
        const count = Math.max(1, Math.min(Number(body.count) || 1, Number(this.count.max) || 4));
        const slots = this.slots(count, requestId);
        const controller = new AbortController();
        this.controller = controller;
        this.submit.disabled = true;
        this.cancel.disabled = false;
        this.message.textContent = "Generating…";
        const started = performance.now();
        try {
            for await (const event of postStream("/v1/images/generate", body, controller.signal)) {
                this.apply(event, slots);
            }
            this.message.textContent = `Done in ${formatMs(performance.now() - started)}.`;
            this.message.className = "message ok";
        }
        catch (err) {
            const aborted = controller.signal.aborted;
            for (const slot of slots.filter((s) => !s.done)) {
                slot.stage.textContent = aborted ? "Cancelled" : "Failed";
                slot.root.classList.add(aborted ? "cancelled" : "failed");
            }
            if (aborted) {
                this.message.textContent = "Cancelled: the connection was closed, so the server stops this request's codex runs.";
                this.message.className = "message";
            }
            else {
                if (err instanceof ApiError && err.violations.length && slots.every((s) => s.percent === 0)) {
                    clear(this.results);
                }
                this.showError(err);
            }
        }
        finally {
            this.controller = null;
            this.submit.disabled = false;
            this.cancel.disabled = true;
        }
    }
    apply(event, slots) {
        if (event.progress) {
            const p = event.progress;
            const targets = p.stage === "STAGE_QUEUED" ? slots : [slots[p.candidate_index ?? 0]];
            for (const slot of targets.filter((s) => s && !s.done)) {
                slot.percent = advance(slot.percent, p);
                slot.bar.value = slot.percent;
                slot.stage.textContent = `${describeProgress(p)} · ${formatMs(p.elapsed_ms ?? 0)}`;
            }
        }
        else if (event.image) {
            const image = event.image;
            const slot = slots[image.index ?? 0];
            if (!slot)
                return;
            slot.done = true;
            slot.percent = 100;
            slot.bar.value = 100;
            slot.stage.textContent = `Landed · ${formatMs(Number(image.duration_ms))}`;
            slot.root.classList.add("landed");
            append(slot.root, imageCard(image, { authRequired: this.authRequired }));
            this.onImage(image);
        }
    }
}
