// Shared by the admin dashboard, the seller portal and the storefront: API calls with the session
// cookies and the CSRF header, problem display, a tiny DOM builder with the form
// controls both pages use, and the SVG chart. Text goes into the page only through
// textContent, never as HTML.

const CSRF_COOKIE = "__Host-agora_csrf";
const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);
const SVG_NS = "http://www.w3.org/2000/svg";

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export function csrfToken() {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === CSRF_COOKIE) return decodeURIComponent(rest.join("="));
  }
  return "";
}

// `extra`: more request headers (an `Idempotency-Key`).
async function send(method, path, body, extra = {}) {
  const headers = { Accept: "application/json, application/problem+json", ...extra };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (UNSAFE.has(method)) headers["X-CSRF-Token"] = csrfToken();
  return fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
}

// One call to the API. An expired access cookie is renewed once with the refresh
// cookie, then the call is repeated. Resolves to the JSON body (null for 204).
export async function api(method, path, body, headers = {}) {
  let response = await send(method, path, body, headers);
  if (response.status === 401 && !path.startsWith("/api/auth/") && !path.startsWith("/api/users/login")) {
    const refreshed = await send("POST", "/api/auth/refresh");
    if (refreshed.ok) response = await send(method, path, body, headers);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = { detail: text };
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body);
export const put = (path, body) => api("PUT", path, body);
export const del = (path) => api("DELETE", path);

export function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") q.set(key, value);
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

// h("button", {type: "button", onclick: f}, "Save") -> <button type="button">Save</button>
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// A labelled form control: <label>Text <input ...></label>.
export function field(label, control) {
  return h("label", { class: "field" }, h("span", {}, label), control);
}

export function button(label, onclick, kind = "", attrs = {}) {
  return h("button", { type: "button", class: kind, onclick, ...attrs }, label);
}

export function input(name, attrs = {}) {
  return h("input", { name, ...attrs });
}

// options: [[value, label]]; the one equal to `value` is selected.
export function select(name, options, value = "") {
  return h("select", { name }, options.map(([v, label]) => h("option", { value: v, selected: v === value }, label)));
}

// A form whose submit (Enter or its submit button, after the browser's own checks of
// the controls) calls `onsubmit(form)` instead of leaving the page.
export function form(children, onsubmit, attrs = {}) {
  const el = h("form", attrs, children);
  el.addEventListener("submit", (event) => {
    event.preventDefault();
    onsubmit(el);
  });
  return el;
}

export function table(columns, rows, empty = "Nothing to show.") {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c.label)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((c) => h("td", {}, c.value(row)))))),
    ),
  );
}

// Shows what happened in a status area (role="alert" is announced): the page's own,
// at its top, unless a `box` next to the form concerned (see statusBox) is given.
export function status(message, kind = "info", box = document.getElementById("status")) {
  box.textContent = message;
  box.className = message ? `status ${kind}` : "status";
}

// A status area of its own for a form, placed next to it.
export function statusBox() {
  return h("div", { class: "status", role: "alert", "aria-live": "assertive" });
}

export function showError(error, box) {
  const p = error.problem || {};
  const fields = (p.errors || []).map((e) => `${e.field}: ${e.message}`);
  status([error.message, ...fields].join(" — "), "error", box);
}

// Runs an async UI action, reporting its failure instead of losing it. A write
// (one with a `done` message) replaces whatever the status area said before.
export async function attempt(action, done, box) {
  try {
    if (done) status("", "info", box);
    const result = await action();
    if (done) status(done, "ok", box);
    return result;
  } catch (error) {
    showError(error, box);
    return undefined;
  }
}

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, value);
  if (text !== undefined) el.textContent = text;
  return el;
}

function niceMax(value) {
  if (value <= 0) return 1;
  const step = 10 ** Math.floor(Math.log10(value));
  return Math.ceil(value / step) * step;
}

// A bar series (left axis) and a line series (right axis) over the same labels,
// drawn as inline SVG. bars/line: {name, values: [number]}.
export function barLineChart({ title, labels, bars, line }) {
  const width = 720, height = 280, left = 48, right = 64, top = 16, bottom = 48;
  const plotW = width - left - right, plotH = height - top - bottom;
  const n = Math.max(labels.length, 1);
  // Bars count things: a multiple of 4 gives whole numbers at every grid line.
  const barMax = Math.ceil(niceMax(Math.max(0, ...bars.values)) / 4) * 4;
  const lineMax = niceMax(Math.max(0, ...line.values));
  const x = (i) => left + (plotW * (i + 0.5)) / n;
  const chart = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": `${title}: ${bars.name} (bars) and ${line.name} (line) for ${labels.length} periods`,
    class: "chart",
  });
  chart.append(svg("title", {}, title));
  for (let k = 0; k <= 4; k += 1) {
    const y = top + plotH - (plotH * k) / 4;
    chart.append(svg("line", { x1: left, x2: left + plotW, y1: y, y2: y, class: "grid" }));
    chart.append(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "axis" }, String(Math.round((barMax * k) / 4))));
    chart.append(svg("text", { x: left + plotW + 6, y: y + 4, class: "axis" }, ((lineMax * k) / 4).toFixed(lineMax >= 40 ? 0 : 2)));
  }
  const barW = Math.max(2, (plotW / n) * 0.6);
  bars.values.forEach((v, i) => {
    const hgt = (plotH * v) / barMax;
    const bar = svg("rect", { x: x(i) - barW / 2, y: top + plotH - hgt, width: barW, height: hgt, class: "bar" });
    bar.append(svg("title", {}, `${labels[i]}: ${v} ${bars.name}, ${line.values[i]} ${line.name}`));
    chart.append(bar);
  });
  const points = line.values.map((v, i) => `${x(i)},${top + plotH - (plotH * v) / lineMax}`).join(" ");
  chart.append(svg("polyline", { points, class: "line" }));
  line.values.forEach((v, i) => chart.append(svg("circle", { cx: x(i), cy: top + plotH - (plotH * v) / lineMax, r: 3, class: "dot" })));
  const every = Math.ceil(n / 8);
  labels.forEach((label, i) => {
    if (i % every === 0) chart.append(svg("text", { x: x(i), y: height - bottom + 18, "text-anchor": "middle", class: "axis" }, label));
  });
  chart.append(svg("rect", { x: left, y: height - 16, width: 12, height: 10, class: "bar" }));
  chart.append(svg("text", { x: left + 16, y: height - 7, class: "legend" }, `${bars.name} (left axis)`));
  chart.append(svg("line", { x1: left + 200, x2: left + 216, y1: height - 11, y2: height - 11, class: "line" }));
  chart.append(svg("text", { x: left + 222, y: height - 7, class: "legend" }, `${line.name} (right axis)`));
  return chart;
}

// The sign-in form, the session check and sign-out; `onReady(user)` renders the page.
export function startSession({ title, onReady }) {
  const main = document.getElementById("main");
  const nav = document.getElementById("nav");
  const who = document.getElementById("who");

  async function signOut() {
    await attempt(() => post("/api/auth/logout"));
    nav.replaceChildren();
    who.replaceChildren();
    showSignIn();
  }

  function ready(user) {
    who.replaceChildren(
      h("span", {}, `${user.username} (${user.role})`),
      h("button", { type: "button", class: "secondary", onclick: signOut }, "Sign out"),
    );
    onReady(user);
  }

  function showSignIn() {
    const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
    const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
    const form = h(
      "form",
      { class: "card narrow", "aria-labelledby": "signin-title" },
      h("h2", { id: "signin-title" }, `Sign in to the ${title}`),
      field("Email", email),
      field("Password", password),
      h("button", { type: "submit" }, "Sign in"),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const result = await attempt(() => post("/api/users/login", { email: email.value, password: password.value }));
      if (result) ready(result.user);
    });
    main.replaceChildren(form);
    email.focus();
  }

  get("/api/users/me").then(ready, () => showSignIn());
}

// Navigation between the sections of a page, kept in the URL's fragment so that
// back/forward and bookmarks work; `sections` maps ids to {label, render(container, item)}.
// `#products/<id>` is the section `products` opened at one item (`item` is "<id>").
export function sectionNav(sections) {
  const nav = document.getElementById("nav");
  const main = document.getElementById("main");
  const ids = Object.keys(sections);
  const links = ids.map((id) => h("a", { href: `#${id}`, "data-section": id }, sections[id].label));
  nav.replaceChildren(h("ul", {}, links.map((a) => h("li", {}, a))));

  function show(event) {
    const [wanted, ...rest] = location.hash.slice(1).split("/");
    const id = ids.includes(wanted) ? wanted : ids[0];
    const item = id === wanted && rest.length ? decodeURIComponent(rest.join("/")) : undefined;
    for (const a of links) {
      if (a.dataset.section === id) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    const heading = h("h2", { id: `${id}-title`, tabindex: "-1" }, sections[id].label);
    const container = h("section", { "aria-labelledby": `${id}-title` }, heading);
    main.replaceChildren(container);
    status("");
    // Moving between sections moves the keyboard focus (and a screen reader) there too.
    if (event) heading.focus();
    sections[id].render(container, item);
  }
  window.onhashchange = show;
  show();
}

// An order's (or return's) short reference: the first 8 hex digits of its id (the
// dashboard's order search finds an order by it).
export const ref = (id) => `#${id.slice(0, 8)}`;

// An id shown beside a name, as secondary text.
export const secondary = (text) => h("span", { class: "hint id" }, text);

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

// "19.99", "USD" -> "$19.99" in the reader's locale. The API's decimal string is
// formatted as it is (Intl reads a string exactly, without a float in between).
export function money(amount, currency) {
  if (amount === null || amount === undefined || amount === "") return "";
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(amount);
  } catch {
    return `${amount} ${currency}`;
  }
}
