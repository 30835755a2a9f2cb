// The dashboard: plain DOM, no build step. Every value from the API goes in with
// textContent, never innerHTML. The token lives in sessionStorage (gone with the tab).
"use strict";

const ORG = document.body.dataset.org;
const POLL_MS = 1000;
const PROJECTS_EVERY_POLLS = 5;  // the project list is read again every fifth poll
const LOG_LINES = 100;
const state = {
  token: sessionStorage.getItem("paas-token"), me: null, projects: [], project: null, env: null, template: null,
  timer: null, polls: 0, offline: false, services: [], detail: null,
};
const $ = (id) => document.getElementById(id);
const isAdmin = () => state.me && state.me.role === "admin";

// -- talking to the API ------------------------------------------------------------------

async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + state.token };
  const options = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch (cause) {  // no answer at all: the server is down or unreachable
    setOffline(true);
    const error = new Error("The server does not answer.");
    error.offline = true;
    throw error;
  }
  setOffline(false);
  let payload = null;
  try { payload = await response.json(); } catch (e) { payload = null; }
  if (!response.ok) {
    const error = new Error((payload && payload.message) || ("HTTP " + response.status));
    error.status = response.status;
    error.hint = payload && payload.hint;
    throw error;
  }
  return payload;
}

function setOffline(offline) {
  if (state.offline === offline) return;
  state.offline = offline;
  $("connection-lost").hidden = !offline;
  if (offline) {  // what the rows said is no longer known
    for (const row of $("services").children) showStatus(row.querySelector("[data-status]"), "Unknown");
    if (state.detail) showStatus($("detail-status"), "Unknown");
  }
}

// An error on the page: its message, and the API's hint (what to do about it) under it.
function showError(id, prefix, error) {
  const box = $(id);
  if (!error) { box.replaceChildren(); return; }
  if (error.offline) { box.replaceChildren(); return; }  // the banner says it
  const parts = [el("div", prefix + error.message)];
  if (error.hint) parts.push(el("div", error.hint, { class: "hint" }));
  box.replaceChildren(...parts);
}

const orgPath = () => `/api/orgs/${encodeURIComponent(ORG)}`;
const scopePath = () => `${orgPath()}/projects/${encodeURIComponent(state.project)}/envs/${encodeURIComponent(state.env)}`;
const servicePath = (slug) => `${scopePath()}/services/${encodeURIComponent(slug)}`;

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  return node;
}

function button(text, cls, action, onClick) {
  const node = el("button", text, { type: "button", class: cls, "data-action": action });
  node.addEventListener("click", onClick);
  return node;
}

function humanBytes(count) {
  if (count === null || count === undefined) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = count, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return (unit ? value.toFixed(1) : String(value)) + " " + units[unit];
}

// Failed, Missing (container gone) or an interrupted restore, upgrade or purge: `svc repair` fixes each.
const needsRepair = (status) => ["Failed", "Missing"].includes(status) || status.endsWith("(interrupted)");

function showStatus(node, status) {
  node.textContent = status;
  node.dataset.status = status;
  node.className = "status status-" + status.split(" ")[0];
}

// -- log in, projects, environments ------------------------------------------------------

async function logIn(token) {
  state.token = token;
  try {
    state.me = await api("GET", "/api/me");
  } catch (error) {
    if (error.offline && sessionStorage.getItem("paas-token") === token) {  // a reload while the server is down: wait for it
      setTimeout(() => logIn(token), 2000);
      return;
    }
    sessionStorage.removeItem("paas-token");
    state.token = null;
    if (error.status === 401) $("login-error").textContent = "That token is unknown, expired or revoked.";
    else showError("login-error", "", error.offline ? { message: "The server does not answer." } : error);
    return;
  }
  sessionStorage.setItem("paas-token", token);
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  $("show-audit").hidden = !isAdmin();
  $("show-variables").hidden = !isAdmin();
  $("who").textContent = `${state.me.name} (${state.me.role})`;
  firstProjects();
}

async function firstProjects() {
  try {
    await loadProjects();  // picks the first project and starts the polling
    search($("search").value);
  } catch (error) {
    showError("services-error", "Could not load the projects: ", error);
    setTimeout(firstProjects, 2000);
  }
}

async function loadProjects() {
  const projects = await api("GET", `${orgPath()}/projects`);
  const before = JSON.stringify(state.projects);
  state.projects = projects;
  if (JSON.stringify(projects) === before) return;
  $("project").replaceChildren(...projects.map((p) => el("option", p.name, { value: p.name })));
  const current = projects.find((p) => p.name === state.project);
  if (current) {
    $("project").value = current.name;
    renderTabs(current);
    if (!current.envs.includes(state.env)) pickEnv(defaultEnv(current));
  } else if (projects.length) {
    pickProject(projects[0].name);
  }
}

const defaultEnv = (project) => (project.envs.includes("development") ? "development" : project.envs[0]);

function pickProject(name) {
  state.project = name;
  $("project").value = name;
  const project = state.projects.find((p) => p.name === name);
  renderTabs(project);
  pickEnv(defaultEnv(project));
}

function renderTabs(project) {
  $("env-tabs").replaceChildren(...project.envs.map((env) => {
    const tab = el("button", env, { type: "button", role: "tab", "data-env": env, id: "tab-" + env });
    tab.addEventListener("click", () => pickEnv(env));
    return tab;
  }));
  markTab();
}

function markTab() {
  for (const tab of $("env-tabs").children) {
    tab.classList.toggle("active", tab.dataset.env === state.env);
    tab.setAttribute("aria-selected", String(tab.dataset.env === state.env));
  }
}

function pickEnv(env) {
  state.env = env;
  markTab();
  $("scope-name").textContent = `${state.project} / ${env}`;
  $("reveal").hidden = true;
  $("variables").hidden = true;
  closeDetail();
  $("services").replaceChildren();
  $("removed").replaceChildren();
  refresh();
}

// -- the service list, polled ------------------------------------------------------------

async function refresh() {
  clearTimeout(state.timer);
  const scope = [state.project, state.env];
  try {
    state.polls += 1;
    if (state.polls % PROJECTS_EVERY_POLLS === 0) {
      await loadProjects();  // new projects and environments appear; a deleted one moves the page on
      if (scope[0] !== state.project || scope[1] !== state.env) return;  // that move polls on its own
    }
    const [services, removed] = await Promise.all([
      api("GET", scopePath() + "/services/"), api("GET", scopePath() + "/removed-services")]);
    if (scope[0] !== state.project || scope[1] !== state.env) return;  // the user moved on meanwhile
    renderServices(services);
    renderRemoved(removed);
    showError("services-error", "", null);
  } catch (error) {
    if (error.status === 401) { logOut("The token was refused (unknown, expired or revoked): log in again."); return; }
    showError("services-error", "Could not load services: ", error);
  }
  state.timer = setTimeout(refresh, POLL_MS);
}

// Rows are kept and updated in place (keyed by slug), so a button never vanishes under a click.
function renderServices(services) {
  state.services = services;
  $("no-services").hidden = services.length > 0;
  const body = $("services");
  const wanted = new Set(services.map((s) => s.slug));
  for (const row of [...body.children]) if (!wanted.has(row.dataset.slug)) row.remove();
  services.forEach((service, index) => {
    let row = $("service-" + service.slug);
    if (!row || row.parentNode !== body) row = newRow(service);
    if (body.children[index] !== row) body.insertBefore(row, body.children[index] || null);
    showStatus(row.querySelector("[data-status]"), service.status);
    row.querySelector(".reason").textContent = service.status !== "Removed" && service.statusReason ? service.statusReason : "";
    const shown = {
      reveal: service.status === "Ready", start: service.status === "Stopped", stop: service.status === "Ready",
      repair: needsRepair(service.status),
    };
    for (const [action, visible] of Object.entries(shown)) {
      const control = row.querySelector(`[data-action=${action}]`);
      if (control) { control.hidden = !visible; control.disabled = !visible; }
    }
  });
  if (state.detail) {
    const current = services.find((s) => s.slug === state.detail);
    if (current) renderDetailStatus(current);
  }
}

function newRow(service) {
  const slug = service.slug;
  const row = el("tr", null, { id: "service-" + slug, "data-slug": slug });
  const name = el("td");
  name.append(button(slug, "link", "open", () => openDetail(slug)));
  row.append(name, el("td", service.templateKey));
  const status = el("td", null, { class: "long" });
  status.append(el("span", service.status, { class: "status", "data-status": service.status }), el("div", "", { class: "reason" }));
  row.append(status, el("td", service.envVar));
  const actions = el("div", null, { class: "actions" });
  if (isAdmin()) actions.append(button("Reveal DSN", "secondary", "reveal", () => revealDsn(slug)));
  actions.append(
    button("Repair", "", "repair", () => repairService(slug, "services")),
    button("Start", "secondary", "start", () => startStop(slug, "start", "services")),
    button("Stop", "secondary", "stop", () => startStop(slug, "stop", "services")),
    button("Details", "secondary", "details", () => openDetail(slug)),
    button("Remove", "danger", "remove", () => removeService(slug)));
  const cell = el("td");
  cell.append(actions);
  row.append(cell);
  return row;
}

function renderRemoved(removed) {
  $("removed-section").hidden = removed.length === 0;
  $("removed").replaceChildren(...removed.map((service) => {
    const row = el("tr", null, { id: "removed-" + service.slug, "data-slug": service.slug });
    const cell = el("td");
    cell.append(button("Add again", "secondary", "re-add", () => reAdd(service.slug, service.templateKey, "services")));
    row.append(el("td", service.slug), el("td", service.templateKey), el("td", service.updatedAt), cell);
    return row;
  }));
}

async function revealDsn(slug) {
  try {
    const result = await api("GET", `${servicePath(slug)}/dsn`);
    $("reveal-slug").textContent = slug;
    $("reveal-env-var").textContent = result.envVar;
    $("reveal-dsn").textContent = result.dsn;
    $("copy-status").textContent = "";
    $("reveal").hidden = false;
    $("copy-dsn").focus();
  } catch (error) {
    showError("services-error", "Reveal failed: ", error);
  }
}

async function copyDsn() {
  const text = $("reveal-dsn").textContent;
  const what = `the connection string of ${$("reveal-slug").textContent} (${$("reveal-env-var").textContent})`;
  try {
    await navigator.clipboard.writeText(text);
    $("copy-status").textContent = `Copied ${what} to the clipboard.`;
    return;
  } catch (e) { /* no clipboard API here (or refused): select it instead */ }
  const range = document.createRange();
  range.selectNodeContents($("reveal-dsn"));
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
  let copied = false;
  try { copied = document.execCommand("copy"); } catch (e) { copied = false; }
  $("copy-status").textContent = copied ? `Copied ${what} to the clipboard.`
    : `The browser refused the clipboard: ${what} is selected, press Ctrl+C to copy it.`;
}

async function showVariables() {
  try {
    const result = await api("GET", scopePath() + "/variables");
    $("variables-scope").textContent = `${state.project} / ${state.env}`;
    $("variables-rows").replaceChildren(...Object.entries(result.variables).map(([name, value]) => {
      const row = el("tr");
      row.append(el("td", name, { class: "dsn long" }), el("td", value, { class: "dsn long" }));
      return row;
    }));
    $("variables-skipped").textContent = result.skipped.length
      ? "Left out (not Ready): " + result.skipped.map((s) => `${s.slug} (${s.status})`).join(", ") : "";
    $("variables").hidden = false;
  } catch (error) {
    showError("services-error", "Variables: ", error);
  }
}

async function removeService(slug) {
  if (!confirm(`Remove ${slug} from ${state.project}/${state.env}? Its container goes; its volume (the data) is kept.`)) return;
  try {
    await api("DELETE", servicePath(slug));
    if ($("reveal-slug").textContent === slug) $("reveal").hidden = true;
    if (state.detail === slug) closeDetail();
  } catch (error) {
    showError("services-error", "Remove failed: ", error);
  }
  refresh();
}

async function startStop(slug, action, where) {
  $(where + "-notice").textContent = `${action === "start" ? "Starting" : "Stopping"} ${slug}...`;
  showError(where + "-error", "", null);
  try {
    await api("POST", `${servicePath(slug)}/${action}`);
    $(where + "-notice").textContent = `${slug} ${action === "start" ? "started" : "stopped"}.`;
  } catch (error) {
    $(where + "-notice").textContent = "";
    showError(where + "-error", `Could not ${action} ${slug}: `, error);
  }
  refresh();
  if (state.detail === slug) loadDetail();
}

async function repairService(slug, where) {
  $(where + "-notice").textContent = `Repairing ${slug}...`;
  showError(where + "-error", "", null);
  try {
    const result = await api("POST", `${servicePath(slug)}/repair`);
    $(where + "-notice").textContent = `${slug}: ${result.outcome}.`;
  } catch (error) {
    $(where + "-notice").textContent = "";
    showError(where + "-error", `Repair of ${slug} failed: `, error);
  }
  refresh();
  if (state.detail === slug) loadDetail();
}

// Adding a slug that was removed reattaches its kept volume: say so and ask first.
async function reAdd(slug, templateKey, where) {
  const question = `${slug} was removed from ${state.project}/${state.env} and its data was kept. Adding it again `
    + `REATTACHES that old data and its old credentials (template ${templateKey}). Add it again?`;
  if (!confirm(question)) {
    $(where + "-notice").textContent = `${slug} was not added again; its data stays kept.`;
    return false;
  }
  try {
    await api("POST", scopePath() + "/services/", { slug, templateKey });
    $(where + "-notice").textContent = `${slug} is being added again with its old data.`;
  } catch (error) {
    showError(where + "-error", `Could not add ${slug} again: `, error);
    return false;
  }
  refresh();
  return true;
}

// -- the catalog and the add form --------------------------------------------------------

let searchSeq = 0;
async function search(query) {
  const seq = ++searchSeq;
  let templates;
  try {
    templates = await api("GET", "/api/service-templates?q=" + encodeURIComponent(query));
  } catch (error) {
    showError("add-error", "Catalog: ", error);
    return;
  }
  if (seq !== searchSeq) return;
  $("templates").replaceChildren(...templates.map((t) => {
    const item = el("li", null, { "data-key": t.key });
    const choice = el("button", null, { type: "button", id: "template-" + t.key, "data-key": t.key, "aria-pressed": "false" });
    choice.append(el("strong", t.name), " ", el("code", t.key), el("div", t.description, { class: "muted" }));
    choice.addEventListener("click", () => pickTemplate(t.key));
    item.append(choice);
    return item;
  }));
  markTemplate();
  const none = $("no-templates");
  none.hidden = templates.length > 0;
  none.textContent = templates.length ? "" : `No template matches "${query.trim()}". Try fewer or other words.`;
}

function markTemplate() {
  for (const choice of $("templates").querySelectorAll("button")) {
    const picked = choice.dataset.key === state.template;
    choice.classList.toggle("selected", picked);
    choice.setAttribute("aria-pressed", String(picked));
  }
}

function pickTemplate(key) {
  state.template = key;
  markTemplate();
  $("add-hint").textContent = "Template: " + key;
  showError("add-error", "", null);
  $("slug").focus();  // the next thing to give (keyboard users land where they type)
}

async function provision(event) {
  event.preventDefault();
  showError("add-error", "", null);
  $("add-notice").textContent = "";
  if (!state.template) {
    showError("add-error", "", { message: "Pick a template first.", hint: "Search the catalog above, then choose one of the templates (Tab to it, Enter)." });
    return;
  }
  const slug = $("slug").value.trim();
  try {
    const removed = await api("GET", scopePath() + "/removed-services");
    const kept = removed.find((s) => s.slug === slug);
    if (kept) {
      if (await reAdd(slug, state.template, "add")) $("slug").value = "";
      return;
    }
    await api("POST", scopePath() + "/services/", { slug, templateKey: state.template });
    $("slug").value = "";
    $("add-notice").textContent = `${slug} is being provisioned.`;
  } catch (error) {
    showError("add-error", "", error);
  }
  refresh();
}

// -- one service's page: status, stats, log, backups -------------------------------------

function openDetail(slug) {
  state.detail = slug;
  $("audit").hidden = true;
  $("detail").hidden = false;
  $("detail-slug").textContent = slug;
  $("detail-notice").textContent = "";
  showError("detail-error", "", null);
  $("detail-rotate").hidden = !isAdmin();
  for (const id of ["detail-stats", "detail-logs", "backup-rows"]) $(id).replaceChildren();
  const current = state.services.find((s) => s.slug === slug);
  if (current) renderDetailStatus(current);
  $("detail").scrollIntoView();
  $("detail-close").focus();
  loadDetail();
}

function closeDetail() {
  const slug = state.detail;
  state.detail = null;
  $("detail").hidden = true;
  if (slug && $("service-" + slug)) $("service-" + slug).querySelector("[data-action=details]").focus();
}

function renderDetailStatus(service) {
  showStatus($("detail-status"), service.status);
  $("detail-reason").textContent = service.statusReason || "";
  $("detail-facts").textContent = `${service.templateKey} · ${service.image} · env var ${service.envVar}`
    + (service.hostPort ? ` · port ${service.hostPort} on ${service.host}` : "");
  $("detail-start").hidden = service.status !== "Stopped";
  $("detail-stop").hidden = service.status !== "Ready";
  $("detail-repair").hidden = !needsRepair(service.status);
}

async function loadDetail() {
  const slug = state.detail;
  if (!slug) return;
  const path = servicePath(slug);
  const [stats, logs, backups] = await Promise.allSettled([
    api("GET", path + "/stats"), api("GET", `${path}/logs?tail=${LOG_LINES}`), api("GET", path + "/backups")]);
  if (state.detail !== slug) return;
  if (stats.status === "fulfilled") {
    const s = stats.value;
    const facts = [["Running", s.running ? "yes" : "no"], ["CPU", s.cpuPercent === null ? "-" : s.cpuPercent + " %"],
      ["Memory", `${humanBytes(s.memoryBytes)} of ${humanBytes(s.memoryLimitBytes)}${s.limited ? " (its limit)" : ""}`],
      ["Volume", humanBytes(s.volumeBytes)]];
    $("detail-stats").replaceChildren(...facts.flatMap(([name, value]) => [el("dt", name), el("dd", value, { "data-stat": name })]));
  } else {
    $("detail-stats").replaceChildren(el("dt", "Stats"), el("dd", stats.reason.message));
  }
  $("detail-logs").textContent = logs.status === "fulfilled"
    ? (logs.value.lines.length ? logs.value.lines.join("\n") : "(the log is empty)") : "No log: " + logs.reason.message;
  if (backups.status === "fulfilled") renderBackups(backups.value);
  else showError("detail-error", "Backups: ", backups.reason);
}

function renderBackups(result) {
  const schedule = result.schedules[0];
  $("schedule-text").textContent = schedule
    ? `Scheduled: ${schedule.every}, keep ${schedule.keepLast || "all"}, next at ${schedule.nextDueAt}`
      + (schedule.lastError ? ` (last error: ${schedule.lastError})` : "")
    : "No schedule: backups are taken only when asked.";
  $("schedule-remove").hidden = !schedule;
  $("no-backups").hidden = result.backups.length > 0;
  $("backup-rows").replaceChildren(...result.backups.map((backup) => {
    const row = el("tr", null, { id: "backup-" + backup.id, "data-backup": String(backup.id) });
    const cell = el("td");
    if (isAdmin() && backup.status === "ok") {
      cell.append(button("Restore", "danger", "restore", () => restore(backup)));
    }
    const status = backup.status === "ok" ? "ok" + (backup.verified ? ", verified" : "") : `${backup.status}: ${backup.error || ""}`;
    row.append(el("td", String(backup.id)), el("td", backup.createdAt), el("td", humanBytes(backup.sizeBytes)),
      el("td", status + (backup.scheduled ? " (scheduled)" : ""), { class: "long" }), cell);
    return row;
  }));
}

async function detailAction(label, run) {
  const slug = state.detail;
  $("detail-notice").textContent = label + "...";
  showError("detail-error", "", null);
  try {
    $("detail-notice").textContent = await run(slug);
  } catch (error) {
    $("detail-notice").textContent = "";
    showError("detail-error", label + " failed: ", error);
  }
  loadDetail();
  refresh();
}

async function restore(backup) {
  const slug = state.detail;
  if (!confirm(`Replace ALL data of ${slug} in ${state.project}/${state.env} with backup #${backup.id} taken ${backup.createdAt}? `
    + "A safety backup of the current data is taken first.")) {
    $("detail-notice").textContent = `Not restored: ${slug} keeps its data.`;
    return;
  }
  detailAction(`Restoring backup #${backup.id}`, async () => {
    const result = await api("POST", servicePath(slug) + "/restore", { backupId: String(backup.id), confirm: slug });
    return `Restored ${slug} from backup #${backup.id}. The data it had before is saved in ${result.safetyBackup}.`;
  });
}

// -- the audit log (admins) --------------------------------------------------------------

async function showAudit() {
  closeDetail();
  $("audit").hidden = false;
  showError("audit-error", "", null);
  try {
    const entries = await api("GET", "/api/audit?limit=200");
    $("audit-rows").replaceChildren(...entries.map((entry) => {
      const row = el("tr");
      const where = [entry.project, entry.env, entry.slug].filter(Boolean).join("/");
      row.append(el("td", entry.at, { class: "at" }), el("td", entry.os_user),
        el("td", entry.count > 1 ? `${entry.action} (x${entry.count})` : entry.action, { class: "at" }),
        el("td", where, { class: "long" }), el("td", entry.detail, { class: "long" }));
      return row;
    }));
  } catch (error) {
    showError("audit-error", "Audit log: ", error);
  }
  $("audit-refresh").focus();
}

function logOut(why) {
  sessionStorage.removeItem("paas-token");
  if (why) sessionStorage.setItem("paas-logout-reason", why);
  location.reload();
}

// -- wiring ------------------------------------------------------------------------------

$("login-form").addEventListener("submit", (event) => { event.preventDefault(); $("login-error").textContent = ""; logIn($("token").value.trim()); });
$("logout").addEventListener("click", () => logOut());
$("project").addEventListener("change", (event) => pickProject(event.target.value));
$("search").addEventListener("input", (event) => search(event.target.value));
$("add-form").addEventListener("submit", provision);
$("reveal-close").addEventListener("click", () => { $("reveal").hidden = true; });
$("copy-dsn").addEventListener("click", copyDsn);
$("show-variables").addEventListener("click", showVariables);
$("variables-close").addEventListener("click", () => { $("variables").hidden = true; });
$("show-audit").addEventListener("click", showAudit);
$("audit-refresh").addEventListener("click", showAudit);
$("audit-close").addEventListener("click", () => { $("audit").hidden = true; });
$("detail-close").addEventListener("click", closeDetail);
$("logs-refresh").addEventListener("click", loadDetail);
$("detail-start").addEventListener("click", () => startStop(state.detail, "start", "detail"));
$("detail-stop").addEventListener("click", () => startStop(state.detail, "stop", "detail"));
$("detail-repair").addEventListener("click", () => repairService(state.detail, "detail"));
$("detail-rotate").addEventListener("click", () => {
  const slug = state.detail;
  if (!confirm(`Give ${slug} a new password? Apps using the old connection string stop connecting until they get the new one.`)) return;
  detailAction("Rotating the password", async () => {
    await api("POST", servicePath(slug) + "/rotate-password");
    return `${slug} has a new password; reveal its connection string again for your apps.`;
  });
});
$("backup-now").addEventListener("click", () => detailAction("Backing up", async (slug) => {
  const record = await api("POST", servicePath(slug) + "/backups");
  return `Backup #${record.id} of ${slug} taken (${humanBytes(record.sizeBytes)}).`;
}));
$("schedule-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const body = { every: $("schedule-every").value };
  if ($("schedule-keep").value.trim()) body.keep = $("schedule-keep").value.trim();
  detailAction("Saving the schedule", async (slug) => {
    const schedule = await api("PUT", servicePath(slug) + "/backup-schedule", body);
    return `Backups of ${slug} every ${schedule.every}; next at ${schedule.nextDueAt}.`;
  });
});
$("schedule-remove").addEventListener("click", () => detailAction("Removing the schedule", async (slug) => {
  await api("DELETE", servicePath(slug) + "/backup-schedule");
  return `No more scheduled backups of ${slug}; its backups are kept.`;
}));
const loggedOutBecause = sessionStorage.getItem("paas-logout-reason");
if (loggedOutBecause) { $("login-error").textContent = loggedOutBecause; sessionStorage.removeItem("paas-logout-reason"); }
if (state.token) logIn(state.token);
