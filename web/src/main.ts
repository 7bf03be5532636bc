// Boot: find out whether keys are required, ask for one if so, read the
// capabilities, then show the tab named in the URL's hash.

import { ApiError, getJson, onUnauthorized } from "./api.js";
import { byId } from "./dom.js";
import { GenerateView } from "./generate.js";
import { HistoryView } from "./history.js";
import { OperationsView } from "./operations.js";
import { getKey, setKey } from "./key.js";
import { describe } from "./messages.js";
import { StatusView } from "./status.js";
import type { Capabilities } from "./types.js";

const TABS = ["generate", "history", "status"] as const;
type Tab = (typeof TABS)[number];

let authRequired = false;
const status = new StatusView();
const history = new HistoryView(() => authRequired);
const operations = new OperationsView();
const generate = new GenerateView(() => authRequired, (image) => history.remember(image));
const keyPanel = byId("key-panel");
const keyInput = byId<HTMLInputElement>("api-key");
const keyMessage = byId("key-message");
let configured = false;
// Whether the person typed a key in this tab: a 401 then means "wrong key".
let keyWasGiven = false;

function askForKey(message: string): void {
  document.body.dataset.locked = "true";  // Generate and History need the key first
  keyPanel.hidden = false;
  keyMessage.textContent = message;
  keyMessage.className = message ? "message error" : "message";
  keyInput.value = "";
  keyInput.focus();
}

function currentTab(): Tab {
  const name = location.hash.slice(1);
  return (TABS as readonly string[]).includes(name) ? (name as Tab) : "generate";
}

function show(tab: Tab): void {
  for (const name of TABS) {
    byId(name).hidden = name !== tab;
    byId(`tab-${name}`).setAttribute("aria-current", name === tab ? "page" : "false");
  }
  if (tab === "status") status.start();
  else status.stop();
  if (tab === "history" && configured) void Promise.all([history.load(), operations.load()]);
}

async function configure(): Promise<void> {
  try {
    generate.configure(await getJson<Capabilities>("/v1/capabilities"));
    configured = true;
    keyPanel.hidden = true;
    delete document.body.dataset.locked;
    byId("generate-message").textContent = "";
    show(currentTab());
    document.body.dataset.ready = "true";
    performance.mark("console-ready");  // time to interactive, read by bench/console_bench.py
  } catch (err) {
    if (!(err instanceof ApiError && err.httpStatus === 401)) {
      byId("generate-message").textContent = describe(err);
      byId("generate-message").className = "message error";
    }
  }
}

onUnauthorized((error) => {
  setKey("");
  askForKey(keyWasGiven ? `The server rejected this key (${error.code}). Enter the right API key.`
    : "This server requires an API key.");
});

byId<HTMLFormElement>("key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const key = keyInput.value.trim();
  if (!key) {
    askForKey("Enter the API key.");
    return;
  }
  setKey(key);
  keyWasGiven = true;
  keyMessage.textContent = "Checking…";
  keyMessage.className = "message";
  void configure();
});
byId("forget-key").addEventListener("click", () => {
  setKey("");
  keyWasGiven = false;
  askForKey("Key forgotten for this tab.");
});

window.addEventListener("hashchange", () => show(currentTab()));

async function boot(): Promise<void> {
  show(currentTab());
  try {
    authRequired = await status.authRequired();
  } catch (err) {
    byId("generate-message").textContent = describe(new ApiError(0, "network", String(err)));
    byId("generate-message").className = "message error";
    return;
  }
  byId("forget-key").hidden = !authRequired;
  if (authRequired && !getKey()) {
    askForKey("");
    return;
  }
  keyWasGiven = Boolean(getKey());
  await configure();
}

void boot();
