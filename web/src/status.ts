// The Status tab: /healthz (readiness, codex, slots, accounts, whatever the
// server reports) beside the capabilities, refreshed while the tab is shown.
// Known fields get labels; any field added later is still listed as is.

import { getJson } from "./api.js";
import { append, byId, clear, h } from "./dom.js";
import { keyHeaders } from "./key.js";
import { describe } from "./messages.js";

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

const LABELS: Record<string, string> = {
  status: "Status", ready: "Ready", problem: "Problem", backend: "Backend", model: "Model",
  version: "Version", server_version: "Server version", auth_required: "Keys required",
  generation_timeout_ms: "Time limit (ms)", codex: "Codex", found: "Found", path: "Path",
  logged_in: "Logged in", custom_provider: "Custom provider", slots: "Slots", in_use: "In use", free: "Free",
  limit: "Limit", queued: "Queued", queue_limit: "Queue limit", accounts: "Accounts", name: "Name",
  codex_home: "CODEX_HOME", exhausted_until: "Usage limit until",
};

function label(key: string): string {
  return LABELS[key] ?? key.replace(/_/g, " ");
}

// Booleans that are good news when true get a colour; others stay plain.
const HEALTHY_WHEN_TRUE = new Set(["ready", "found", "logged_in"]);

function value(v: Json, key = ""): Node {
  if (v === null || v === "") return document.createTextNode("—");
  if (typeof v === "boolean") {
    const tone = HEALTHY_WHEN_TRUE.has(key) ? (v ? "yes" : "no") : "";
    return h("span", { class: tone }, v ? "yes" : "no");
  }
  if (Array.isArray(v)) {
    if (!v.length) return document.createTextNode("none");
    if (v.every((item) => typeof item !== "object" || item === null)) {
      return document.createTextNode(v.map(String).join(", "));
    }
    const list = h("ol", { class: "nested" });
    for (const item of v) append(list, h("li", {}, value(item)));
    return list;
  }
  if (typeof v === "object") return table(v);
  return document.createTextNode(String(v));
}

function table(obj: { [key: string]: Json }): HTMLElement {
  const dl = h("dl", { class: "kv" });
  for (const [k, v] of Object.entries(obj)) append(dl, h("dt", {}, label(k)), h("dd", { "data-key": k }, value(v, k)));
  return dl;
}

export class StatusView {
  private readonly box = byId("status-body");
  private readonly badge = byId("status-badge");
  private timer: number | undefined;

  /** Health is open (its details need the key); capabilities need one and are optional here. */
  async refresh(): Promise<void> {
    let health: { [key: string]: Json };
    try {
      // With the key: a server with keys shows its details to key holders only.
      const response = await fetch("/healthz", { headers: keyHeaders() });
      health = await response.json();
    } catch (err) {
      this.badge.textContent = "unreachable";
      this.badge.className = "badge bad";
      clear(this.box);
      append(this.box, h("p", { class: "message error" }, describe(err)));
      return;
    }
    let capabilities: Node;
    try {
      capabilities = table(await getJson<{ [key: string]: Json }>("/v1/capabilities"));
    } catch (err) {
      capabilities = h("p", { class: "message error" }, describe(err));
    }
    // Built first, swapped in at once: a refresh never empties the tab or folds what was open.
    const capsOpen = (document.getElementById("capabilities") as HTMLDetailsElement | null)?.open ?? false;
    const ok = health.status === "ok";
    this.badge.textContent = ok ? "ready" : "not ready";
    this.badge.className = ok ? "badge good" : "badge bad";
    const { codex, slots, accounts, ...rest } = health;
    this.box.replaceChildren(...[
      !ok && health.problem ? h("p", { class: "message error", role: "alert" }, String(health.problem)) : null,
      h("section", { class: "panel" }, h("h2", {}, "Server"), table(rest)),
      codex ? h("section", { class: "panel" }, h("h2", {}, "Codex"), value(codex)) : null,
      slots ? h("section", { class: "panel" }, h("h2", {}, "Slots and queue"), value(slots)) : null,
      accounts ? h("section", { class: "panel" }, h("h2", {}, "Accounts"), value(accounts)) : null,
      h("section", { class: "panel wide" }, h("details", { id: "capabilities", open: capsOpen },
        h("summary", {}, h("h2", {}, "Capabilities")), capabilities)),
    ].filter((n): n is HTMLElement => n !== null));
  }

  /** Header badge from /healthz; returns whether keys are required. */
  async authRequired(): Promise<boolean> {
    const health = await (await fetch("/healthz")).json();
    this.badge.textContent = health.status === "ok" ? "ready" : "not ready";
    this.badge.className = health.status === "ok" ? "badge good" : "badge bad";
    return Boolean(health.auth_required);
  }

  start(): void {
    this.stop();
    void this.refresh();
    this.timer = window.setInterval(() => void this.refresh(), 5000);
  }

  stop(): void {
    if (this.timer !== undefined) window.clearInterval(this.timer);
    this.timer = undefined;
  }
}
