// The dashboard: plain DOM, no build step. Every value from the API goes in with
// textContent, never innerHTML. The token lives in sessionStorage (gone with the tab).
"use strict";

const ORG = document.body.dataset.org;
const POLL_MS = 1000;
const state = { token: sessionStorage.getItem("paas-token"), me: null, projects: [], project: null, env: null, template: null, timer: null };
const $ = (id) => document.getElementById(id);

async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + state.token };
  const options = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  let payload = null;
  try { payload = await response.json(); } catch (e) { payload = null; }
  if (!response.ok) {
    const error = new Error((payload && payload.message) || ("HTTP " + response.status));
    error.status = response.status;
    throw error;
  }
  return payload;
}

const scopePath = () => `/api/orgs/${encodeURIComponent(ORG)}/projects/${encodeURIComponent(state.project)}/envs/${encodeURIComponent(state.env)}`;

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  return node;
}

async function logIn(token) {
  state.token = token;
  try {
    state.me = await api("GET", "/api/me");
  } catch (error) {
    sessionStorage.removeItem("paas-token");
    state.token = null;
    $("login-error").textContent = error.status === 401 ? "That token is unknown, expired or revoked." : error.message;
    return;
  }
  sessionStorage.setItem("paas-token", token);
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  $("who").textContent = `${state.me.name} (${state.me.role})`;
  state.projects = await api("GET", `/api/orgs/${encodeURIComponent(ORG)}/projects`);
  const select = $("project");
  select.replaceChildren(...state.projects.map((p) => el("option", p.name, { value: p.name })));
  pickProject(state.projects[0].name);
  search("");
}

function pickProject(name) {
  state.project = name;
  $("project").value = name;
  const project = state.projects.find((p) => p.name === name);
  const tabs = $("env-tabs");
  tabs.replaceChildren(...project.envs.map((env) => {
    const tab = el("button", env, { type: "button", role: "tab", "data-env": env, id: "tab-" + env });
    tab.addEventListener("click", () => pickEnv(env));
    return tab;
  }));
  pickEnv(project.envs.includes("development") ? "development" : project.envs[0]);
}

function pickEnv(env) {
  state.env = env;
  for (const tab of $("env-tabs").children) tab.classList.toggle("active", tab.dataset.env === env);
  $("scope-name").textContent = `${state.project} / ${env}`;
  $("reveal").hidden = true;
  $("services").replaceChildren();
  refresh();
}

async function refresh() {
  clearTimeout(state.timer);
  const scope = [state.project, state.env];
  try {
    const services = await api("GET", scopePath() + "/services/");
    if (scope[0] !== state.project || scope[1] !== state.env) return;  // the user moved on meanwhile
    renderServices(services);
    $("services-error").textContent = "";
  } catch (error) {
    $("services-error").textContent = "Could not load services: " + error.message;
  }
  state.timer = setTimeout(refresh, POLL_MS);
}

// Rows are kept and updated in place (keyed by slug), so a button never vanishes under a click.
function renderServices(services) {
  $("no-services").hidden = services.length > 0;
  const body = $("services");
  const wanted = new Set(services.map((s) => s.slug));
  for (const row of [...body.children]) if (!wanted.has(row.dataset.slug)) row.remove();
  services.forEach((service, index) => {
    let row = $("service-" + service.slug);
    if (!row || row.parentNode !== body) row = newRow(service);
    if (body.children[index] !== row) body.insertBefore(row, body.children[index] || null);
    const status = row.querySelector("[data-status]");
    status.textContent = service.status;
    status.dataset.status = service.status;
    status.className = "status status-" + service.status;
    row.querySelector(".reason").textContent = service.status !== "Removed" && service.statusReason ? service.statusReason : "";
    const reveal = row.querySelector("[data-action=reveal]");
    if (reveal) reveal.disabled = service.status !== "Ready";
  });
}

function newRow(service) {
  const row = el("tr", null, { id: "service-" + service.slug, "data-slug": service.slug });
  row.append(el("td", service.slug), el("td", service.templateKey));
  const status = el("td");
  status.append(el("span", service.status, { class: "status", "data-status": service.status }), el("div", "", { class: "reason" }));
  row.append(status, el("td", service.envVar));
  const actions = el("td");
  if (state.me.role === "admin") {
    const reveal = el("button", "Reveal DSN", { type: "button", class: "secondary", "data-action": "reveal" });
    reveal.addEventListener("click", () => revealDsn(service.slug));
    actions.append(reveal, " ");
  }
  const remove = el("button", "Remove", { type: "button", class: "danger", "data-action": "remove" });
  remove.addEventListener("click", () => removeService(service.slug));
  actions.append(remove);
  row.append(actions);
  return row;
}

async function revealDsn(slug) {
  try {
    const result = await api("GET", `${scopePath()}/services/${encodeURIComponent(slug)}/dsn`);
    $("reveal-slug").textContent = slug;
    $("reveal-env-var").textContent = result.envVar;
    $("reveal-dsn").textContent = result.dsn;
    $("reveal").hidden = false;
  } catch (error) {
    $("services-error").textContent = "Reveal failed: " + error.message;
  }
}

async function removeService(slug) {
  if (!confirm(`Remove ${slug} from ${state.project}/${state.env}? Its container goes; its volume (the data) is kept.`)) return;
  try {
    await api("DELETE", `${scopePath()}/services/${encodeURIComponent(slug)}`);
    if ($("reveal-slug").textContent === slug) $("reveal").hidden = true;
  } catch (error) {
    $("services-error").textContent = "Remove failed: " + error.message;
  }
  refresh();
}

let searchSeq = 0;
async function search(query) {
  const seq = ++searchSeq;
  const templates = await api("GET", "/api/service-templates?q=" + encodeURIComponent(query));
  if (seq !== searchSeq) return;
  $("templates").replaceChildren(...templates.map((t) => {
    const item = el("li", null, { "data-key": t.key, id: "template-" + t.key });
    item.append(el("strong", t.name), " ", el("code", t.key), el("div", t.description, { class: "muted" }));
    if (state.template === t.key) item.classList.add("selected");
    item.addEventListener("click", () => pickTemplate(t.key));
    return item;
  }));
}

function pickTemplate(key) {
  state.template = key;
  for (const item of $("templates").children) item.classList.toggle("selected", item.dataset.key === key);
  $("provision").disabled = false;
  $("add-hint").textContent = "Template: " + key;
}

async function provision(event) {
  event.preventDefault();
  $("add-error").textContent = "";
  const slug = $("slug").value.trim();
  try {
    await api("POST", scopePath() + "/services/", { slug, templateKey: state.template });
    $("slug").value = "";
  } catch (error) {
    $("add-error").textContent = error.message;
  }
  refresh();
}

$("login-form").addEventListener("submit", (event) => { event.preventDefault(); $("login-error").textContent = ""; logIn($("token").value.trim()); });
$("logout").addEventListener("click", () => { sessionStorage.removeItem("paas-token"); location.reload(); });
$("project").addEventListener("change", (event) => pickProject(event.target.value));
$("search").addEventListener("input", (event) => search(event.target.value));
$("add-form").addEventListener("submit", provision);
$("reveal-close").addEventListener("click", () => { $("reveal").hidden = true; });
if (state.token) logIn(state.token);
