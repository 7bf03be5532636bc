import { call, getJson } from "./api.js";
import { append, byId, clear, h } from "./dom.js";
import { describe } from "./messages.js";
const PAGE_SIZE = 20;
function stateOf(op) {
    return (op.metadata?.state ?? "STATE_UNSPECIFIED").replace(/^STATE_/, "").toLowerCase();
}
export class OperationsView {
    list = byId("operations");
    message = byId("operations-message");
    async load() {
        try {
            const page = await getJson(`/v1/operations?page_size=${PAGE_SIZE}`);
            this.render(page.operations ?? []);
        }
        catch (err) {
            this.message.textContent = describe(err);
            this.message.className = "message error";
        }
    }
    render(operations) {
        clear(this.list);
        this.message.className = "message";
        this.message.textContent = operations.length ? "" : "No detached generations yet.";
        for (const op of operations) {
            const state = stateOf(op);
            const id = op.name.replace(/^operations\//, "");
            const when = op.metadata?.create_time ? new Date(op.metadata.create_time).toLocaleString() : "";
            const queued = state === "queued" ? ` (${op.metadata?.queue_position ?? 0} ahead)` : "";
            append(this.list, h("li", { class: `operation ${state}`, "data-operation": op.name }, h("code", {}, id), ` ${state}${queued}`, when ? ` · ${when}` : "", (op.metadata?.attempts ?? 0) > 1 ? ` · attempt ${op.metadata?.attempts}` : "", op.error?.message ? h("span", { class: "field-error" }, ` ${op.error.message}`) : null, op.done ? null : h("button", { type: "button", class: "link cancel-operation",
                onclick: () => void this.cancel(op.name) }, "Cancel")));
        }
    }
    async cancel(name) {
        try {
            await call(`/v1/${name}:cancel`, { method: "POST", headers: { "Content-Type": "application/json" },
                body: "{}" });
            await call(`/v1/${name}:wait`, { method: "POST", headers: { "Content-Type": "application/json" },
                body: JSON.stringify({ timeout: "10s" }) });
        }
        catch (err) {
            this.message.textContent = describe(err);
            this.message.className = "message error";
            return;
        }
        await this.load();
    }
}
