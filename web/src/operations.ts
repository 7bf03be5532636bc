// Detached generations in the History tab: the newest operations from
// ListOperations (GET /v1/operations), their state, and Cancel for the ones
// still queued or running (POST /v1/operations/{id}:cancel).

import { call, getJson } from "./api.js";
import { append, byId, clear, h } from "./dom.js";
import { describe } from "./messages.js";

const PAGE_SIZE = 20;

interface OperationJson {
  name: string;
  done?: boolean;
  metadata?: { state?: string; attempts?: number; create_time?: string; queue_position?: number };
  error?: { message?: string };
}

function stateOf(op: OperationJson): string {
  return (op.metadata?.state ?? "STATE_UNSPECIFIED").replace(/^STATE_/, "").toLowerCase();
}

export class OperationsView {
  private readonly list = byId("operations");
  private readonly message = byId("operations-message");

  async load(): Promise<void> {
    try {
      const page = await getJson<{ operations?: OperationJson[] }>(`/v1/operations?page_size=${PAGE_SIZE}`);
      this.render(page.operations ?? []);
    } catch (err) {
      this.message.textContent = describe(err);
      this.message.className = "message error";
    }
  }

  private render(operations: OperationJson[]): void {
    clear(this.list);
    this.message.className = "message";
    this.message.textContent = operations.length ? "" : "No detached generations yet.";
    for (const op of operations) {
      const state = stateOf(op);
      const id = op.name.replace(/^operations\//, "");
      const when = op.metadata?.create_time ? new Date(op.metadata.create_time).toLocaleString() : "";
      const queued = state === "queued" ? ` (${op.metadata?.queue_position ?? 0} ahead)` : "";
      append(this.list, h("li", { class: `operation ${state}`, "data-operation": op.name },
        h("code", {}, id), ` ${state}${queued}`, when ? ` · ${when}` : "",
        (op.metadata?.attempts ?? 0) > 1 ? ` · attempt ${op.metadata?.attempts}` : "",
        op.error?.message ? h("span", { class: "field-error" }, ` ${op.error.message}`) : null,
        op.done ? null : h("button", { type: "button", class: "link cancel-operation",
          onclick: () => void this.cancel(op.name) }, "Cancel")));
    }
  }

  private async cancel(name: string): Promise<void> {
    try {
      await call(`/v1/${name}:cancel`, { method: "POST", headers: { "Content-Type": "application/json" },
        body: "{}" });
      await call(`/v1/${name}:wait`, { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ timeout: "10s" }) });
    } catch (err) {
      this.message.textContent = describe(err);
      this.message.className = "message error";
      return;
    }
    await this.load();
  }
}
