// The admin dashboard: one render function per section. The API decides what an
// admin may do; this page only refuses to show itself to anyone else.
import {
  attempt, barLineChart, button, del, field, form, get, h, input, post, put, query, sectionNav, select, startSession,
  status, table, when,
} from "../common.js";
import { productEditor } from "../products.js";

const enc = encodeURIComponent;

// A table over a cursor-paged list: `load(cursor)` fetches one page; "Load more"
// appends the next one.
async function paged(target, load, columns, empty) {
  const rows = [];
  async function more(cursor) {
    const page = await attempt(() => load(cursor));
    if (!page) return;
    rows.push(...page.items);
    target.replaceChildren(table(columns, rows, empty));
    if (page.next_cursor) {
      target.append(h("div", { class: "actions" }, button("Load more", () => more(page.next_cursor), "secondary")));
    }
  }
  await more(undefined);
}

// --- Overview -------------------------------------------------------------------

async function overview(container) {
  const data = await attempt(() => get("/api/admin/overview?days=14"));
  if (!data) return;
  const queueList = h("div");
  const allQueues = h("input", { type: "checkbox", name: "all_queues" });
  const showQueues = () => queueList.replaceChildren(table(
    [
      { label: "Queue", value: (q) => q.queue },
      { label: "Messages", value: (q) => String(q.messages) },
      { label: "Consumers", value: (q) => String(q.consumers) },
    ],
    (data.queues || [])
      .filter((q) => allQueues.checked || q.messages > 0)
      .sort((a, b) => b.messages - a.messages),
    "Every queue is empty.",
  ));
  allQueues.addEventListener("change", showQueues);
  showQueues();
  const days = data.days || [];
  const revenue = days.reduce((sum, d) => sum + Number(d.revenue), 0);
  const orders = days.reduce((sum, d) => sum + d.orders, 0);
  container.append(
    h("div", { class: "card totals" },
      h("div", {}, h("span", {}, "Orders, last 14 days"), String(orders)),
      h("div", {}, h("span", {}, `Revenue, last 14 days (${data.currency})`), revenue.toFixed(2))),
    h("div", { class: "card" },
      h("h3", {}, "Orders and revenue per day"),
      barLineChart({
        title: "Orders and revenue per day",
        labels: days.map((d) => d.date.slice(5)),
        bars: { name: "orders", values: days.map((d) => d.orders) },
        line: { name: `revenue (${data.currency})`, values: days.map((d) => Number(d.revenue)) },
      })),
    h("div", { class: "card" },
      h("h3", {}, "Queue depths"),
      h("div", { class: "actions" }, h("label", {}, allQueues, " Show empty queues")),
      queueList),
  );
}

// --- Users ----------------------------------------------------------------------

function users(container) {
  const results = h("div");
  const detail = h("div");
  const q = input("q", { type: "search", placeholder: "email or username" });
  const role = select("role", [["", "any"], ["member", "member"], ["seller", "seller"], ["admin", "admin"]]);

  async function search() {
    await paged(
      results,
      (cursor) => get(`/api/admin/users${query({ q: q.value, role: role.value, cursor })}`),
      [
        { label: "Email", value: (u) => u.email },
        { label: "Username", value: (u) => u.username },
        { label: "Role", value: (u) => u.role },
        { label: "Disabled", value: (u) => (u.disabled ? "yes" : "no") },
        { label: "", value: (u) => button("View", () => view(u.user_id), "secondary") },
      ],
      "No users match.",
    );
  }

  async function view(userId) {
    const user = await attempt(() => get(`/api/users/${enc(userId)}`));
    if (!user) return;
    const newRole = select("role", [["member", "member"], ["seller", "seller"], ["admin", "admin"]], user.role);
    const disabled = h("input", { type: "checkbox", name: "disabled", checked: Boolean(user.disabled) });
    detail.replaceChildren(h("div", { class: "card" },
      h("h3", {}, user.email),
      h("p", {}, `Username ${user.username} · joined ${when(user.created_at)} · id ${user.user_id}`),
      form([
        field("Role", newRole),
        h("label", { class: "field" }, h("span", {}, "Disabled"), disabled),
        h("button", { type: "submit" }, "Save"),
        button("Erase account", () => erase(user), "danger"),
      ], async () => {
        const body = {};
        if (newRole.value !== user.role) body.role = newRole.value;
        if (disabled.checked !== Boolean(user.disabled)) body.disabled = disabled.checked;
        if (!Object.keys(body).length) return status("Nothing changed.");
        if (await attempt(() => put(`/api/users/${enc(user.user_id)}`, body), "User saved.")) {
          await search();
        }
      }),
    ));
  }

  async function erase(user) {
    if (!window.confirm(`Erase ${user.email}? Their personal data is deleted for good.`)) return;
    if ((await attempt(() => del(`/api/users/${enc(user.user_id)}`), "Account erased.")) !== undefined) {
      detail.replaceChildren();
      await search();
    }
  }

  container.append(
    form([field("Search", q), field("Role", role), h("button", { type: "submit" }, "Search")], search,
      { role: "search", class: "card" }),
    results, detail,
  );
  search();
}

// --- Products -------------------------------------------------------------------

// `productId`: open that product's images and variants (#products/<id>) instead of the list.
function products(container, productId, user) {
  if (productId) {
    productEditor(container, productId, { user, back: "#products" });
    return;
  }
  const results = h("div");
  const q = input("q", { type: "search", placeholder: "name or description" });
  const editor = h("div");

  async function search() {
    const page = await attempt(() => get(`/api/products${query({ q: q.value, limit: 50 })}`));
    if (!page) return;
    results.replaceChildren(table(
      [
        { label: "Name", value: (p) => p.name },
        { label: "Price", value: (p) => `${p.price} ${p.currency}` },
        { label: "Category", value: (p) => p.category },
        { label: "Seller", value: (p) => p.seller_id.slice(0, 8) },
        {
          label: "",
          value: (p) => h("span", { class: "actions" },
            button("Edit", () => edit(p), "secondary"),
            h("a", {
              class: "button secondary", href: `#products/${enc(p.product_id)}`, "aria-label": `Images and variants of ${p.name}`,
            }, "Images and variants"),
            button("Delete", () => remove(p), "danger")),
        },
      ],
      page.items,
      "No products match.",
    ));
  }

  async function edit(product) {
    const categories = (await attempt(() => get("/api/categories"))) || { items: [] };
    const flatten = (nodes, depth = 0) => nodes.flatMap((c) => [[c.slug, `${"· ".repeat(depth)}${c.name}`], ...flatten(c.children || [], depth + 1)]);
    const list = flatten(categories.items || []);
    const name = input("name", { required: true, value: product?.name || "" });
    const price = input("price", { required: true, inputmode: "decimal", pattern: "\\d+(\\.\\d{1,2})?", value: product?.price || "" });
    const currency = input("currency", { required: true, maxlength: 3, size: 4, value: product?.currency || "USD" });
    const category = select("category", list, product?.category);
    const description = h("textarea", { name: "description" }, product?.description || "");
    const stock = input("stock", { type: "number", min: 0, value: 0 });
    editor.replaceChildren(h("div", { class: "card" },
      h("h3", {}, product ? `Edit ${product.name}` : "New product"),
      form([
        field("Name", name), field("Price", price), field("Currency", currency), field("Category", category),
        product ? null : field("Initial stock", stock),
        h("label", { class: "field wide" }, h("span", {}, "Description"), description),
        h("button", { type: "submit" }, product ? "Save product" : "Create product"),
        button("Close", () => editor.replaceChildren(), "secondary"),
      ], async () => {
        const body = {
          name: name.value, price: price.value, currency: currency.value.toUpperCase(),
          category: category.value, description: description.value,
        };
        if (!product) body.stock = Number(stock.value || 0);
        const saved = await attempt(
          () => (product ? put(`/api/products/${enc(product.product_id)}`, body) : post("/api/products", body)),
          product ? "Product saved." : "Product created.",
        );
        if (saved) {
          editor.replaceChildren();
          q.value = saved.name;
          await search();
        }
      }),
    ));
    name.focus();
  }

  async function remove(product) {
    if (!window.confirm(`Delete ${product.name}?`)) return;
    if ((await attempt(() => del(`/api/products/${enc(product.product_id)}`), "Product deleted.")) !== undefined) {
      await search();
    }
  }

  container.append(
    h("div", { class: "actions" }, button("New product", () => edit(null))),
    editor,
    form([field("Search", q), h("button", { type: "submit" }, "Search")], search, { role: "search", class: "card" }),
    results,
  );
  search();
}

// --- Orders ---------------------------------------------------------------------

const NEXT_STEPS = { confirmed: ["shipped", "cancelled"], shipped: ["delivered"], pending: ["cancelled"] };
const STEP_LABELS = { shipped: "Ship", delivered: "Mark delivered", cancelled: "Cancel order" };

function orders(container) {
  const results = h("div");
  const detail = h("div");
  const statusFilter = select("status", [["", "any"], ...["pending", "confirmed", "shipped", "delivered", "cancelled"].map((s) => [s, s])]);
  const from = input("from", { type: "date" });
  const to = input("to", { type: "date" });
  const orderId = input("order_id", { placeholder: "order id", size: 36 });

  async function search() {
    await paged(
      results,
      (cursor) => get(`/api/admin/orders${query({ status: statusFilter.value, from: from.value, to: to.value, cursor })}`),
      [
        { label: "Order", value: (o) => o.order_id.slice(0, 8) },
        { label: "Placed", value: (o) => when(o.created_at) },
        { label: "Status", value: (o) => o.status },
        { label: "Payment", value: (o) => o.payment_status },
        { label: "Total", value: (o) => `${o.total_amount} ${o.currency}` },
        { label: "", value: (o) => button("View", () => view(o.order_id), "secondary") },
      ],
      "No orders match.",
    );
  }

  async function view(id) {
    const order = await attempt(() => get(`/api/orders/${enc(id)}`));
    if (order) showOrder(order);
  }

  function showOrder(order) {
    const steps = NEXT_STEPS[order.status] || [];
    detail.replaceChildren(h("div", { class: "card", id: "order-detail" },
      h("h3", {}, `Order ${order.order_id}`),
      h("p", {}, `Status `, h("strong", { class: "order-status" }, order.status),
        ` · payment ${order.payment_status} · ${order.total_amount} ${order.currency}`,
        order.cancel_reason ? ` · cancelled: ${order.cancel_reason}` : ""),
      table(
        [
          { label: "Product", value: (l) => l.product_id },
          { label: "Quantity", value: (l) => String(l.quantity) },
          { label: "Price", value: (l) => l.price },
        ],
        order.items,
      ),
      h("h4", {}, "History"),
      h("ol", { class: "timeline", "aria-label": "Order history" },
        order.history.map((e) => h("li", {}, h("span", { class: "state" }, e.status), ` ${when(e.at)}`))),
      h("div", { class: "actions" },
        steps.map((next) => button(STEP_LABELS[next], () => change(order, next), next === "cancelled" ? "danger" : "")),
        button("Reload", () => view(order.order_id), "secondary")),
    ));
  }

  async function change(order, next) {
    if (next === "cancelled" && !window.confirm("Cancel this order? A captured payment is refunded.")) return;
    const updated = await attempt(() => put(`/api/orders/${enc(order.order_id)}`, { status: next }), `Order ${next}.`);
    if (updated) {
      showOrder(updated.history ? updated : await get(`/api/orders/${enc(order.order_id)}`));
      if (results.childElementCount) await search();
    }
  }

  container.append(
    form([field("Status", statusFilter), field("From", from), field("To", to), h("button", { type: "submit" }, "Filter")],
      search, { role: "search", class: "card" }),
    form([field("Open order by id", orderId), h("button", { type: "submit" }, "Open")],
      () => view(orderId.value.trim()), { class: "card" }),
    results, detail,
  );
  search();
}

// --- Inventory ------------------------------------------------------------------

function inventory(container) {
  const low = h("div");
  const current = h("p");
  const productId = input("product_id", { required: true, placeholder: "product id", size: 36 });
  const variantId = input("variant_id", { placeholder: "variant id (if it has variants)", size: 36 });
  const stock = input("stock", { type: "number", min: 0 });
  const delta = input("delta", { type: "number" });
  const threshold = input("low_stock_threshold", { type: "number", min: 0 });
  const reason = input("reason", { placeholder: "recount, damage…" });

  async function loadLow() {
    const page = await attempt(() => get("/api/admin/inventory/low-stock"));
    if (!page) return;
    low.replaceChildren(table(
      [
        { label: "Product", value: (s) => s.product_id },
        { label: "Variant", value: (s) => (s.variant_id === s.product_id ? "—" : s.variant_id) },
        { label: "Seller", value: (s) => s.seller_id },
        { label: "Stock", value: (s) => String(s.stock) },
        { label: "Threshold", value: (s) => String(s.low_stock_threshold) },
        { label: "", value: (s) => button("Adjust", () => {
          productId.value = s.product_id;
          variantId.value = s.variant_id === s.product_id ? "" : s.variant_id;
          lookUp();
          productId.focus();
        }, "secondary") },
      ],
      page.items,
      "Nothing is low on stock.",
    ));
  }

  async function lookUp() {
    const variant = variantId.value.trim();
    const view = await attempt(() => get(`/api/inventory/${enc(productId.value.trim())}`
      + (variant ? `?variant_id=${enc(variant)}` : "")));
    if (view) {
      current.textContent = `In stock: ${view.stock}` + (view.reserved != null ? `, reserved ${view.reserved}` : "")
        + (view.low_stock_threshold != null ? `, low at ${view.low_stock_threshold}` : "");
    }
  }

  container.append(
    h("div", { class: "card" },
      h("h3", {}, "Adjust stock"),
      form([
        field("Product id", productId),
        field("Variant id", variantId),
        button("Look up", lookUp, "secondary"),
        field("Set stock to", stock), field("or change by", delta),
        field("Low-stock threshold", threshold), field("Reason", reason),
        h("button", { type: "submit" }, "Save stock"),
      ], async () => {
        const body = {};
        if (stock.value !== "") body.stock = Number(stock.value);
        if (delta.value !== "") body.delta = Number(delta.value);
        if (threshold.value !== "") body.low_stock_threshold = Number(threshold.value);
        if (reason.value) body.reason = reason.value;
        if (variantId.value.trim()) body.variant_id = variantId.value.trim();
        if (await attempt(() => put(`/api/inventory/${enc(productId.value.trim())}`, body), "Stock saved.")) {
          await lookUp();
          await loadLow();
        }
      }),
      current),
    h("h3", {}, "Low on stock"),
    low,
  );
  loadLow();
}

// --- Notification templates -----------------------------------------------------

function templates(container) {
  const list = h("div");
  const editor = h("div");

  async function load() {
    const page = await attempt(() => get("/api/admin/notification-templates"));
    if (!page) return;
    list.replaceChildren(table(
      [
        { label: "Channel", value: (t) => t.channel },
        { label: "Key", value: (t) => t.key },
        { label: "Description", value: (t) => t.description },
        { label: "Edited", value: (t) => when(t.updated_at) || "default" },
        { label: "", value: (t) => button("Edit", () => edit(t), "secondary") },
      ],
      page.items,
    ));
  }

  function edit(t) {
    const path = `/api/admin/notification-templates/${enc(t.channel)}/${enc(t.key)}`;
    const subject = input("subject", { value: t.body.subject || "", size: 60 });
    const text = h("textarea", { name: "text", rows: 8 }, t.body.text);
    const html = h("textarea", { name: "html", rows: 8 }, t.body.html || "");
    const preview = h("div");
    const body = () => ({
      text: text.value,
      ...(t.channel === "email" ? { subject: subject.value, html: html.value || null } : {}),
    });
    editor.replaceChildren(h("div", { class: "card" },
      h("h3", {}, `${t.channel} / ${t.key}`),
      h("p", {}, `Variables: ${t.variables.join(", ")}`),
      form([
        t.channel === "email" ? h("label", { class: "field wide" }, h("span", {}, "Subject"), subject) : null,
        h("label", { class: "field wide" }, h("span", {}, "Text"), text),
        t.channel === "email" ? h("label", { class: "field wide" }, h("span", {}, "HTML"), html) : null,
        h("button", { type: "submit" }, "Save template"),
        button("Preview", async () => {
          const out = await attempt(() => post(`${path}/preview`, body()));
          if (out) {
            preview.replaceChildren(h("div", { class: "preview" },
              out.subject ? h("p", {}, h("strong", {}, "Subject: "), out.subject) : null,
              h("h4", {}, "Text"), h("pre", {}, out.text),
              out.html ? [h("h4", {}, "HTML source"), h("pre", {}, out.html)] : null,
            ));
          }
        }, "secondary"),
      ], async () => {
        if (await attempt(() => put(path, body()), "Template saved.")) await load();
      }),
      preview,
    ));
  }

  container.append(list, editor);
  load();
}

// --- Dead letters ---------------------------------------------------------------

function deadLetters(container) {
  const queues = h("div");
  const messages = h("div");

  const showEmpty = h("input", { type: "checkbox", name: "show_empty", onchange: () => load() });

  async function load() {
    const page = await attempt(() => get("/api/admin/dead-letters"));
    if (!page) return;
    const shown = showEmpty.checked ? page.queues : page.queues.filter((q) => q.messages > 0);
    queues.replaceChildren(table(
      [
        { label: "Dead-letter queue", value: (q) => q.queue },
        { label: "From", value: (q) => q.source },
        { label: "Messages", value: (q) => String(q.messages) },
        { label: "", value: (q) => button("Inspect", () => inspect(q.queue), "secondary") },
      ],
      shown,
      "No dead letters: every dead-letter queue is empty.",
    ));
  }

  async function inspect(queue) {
    const page = await attempt(() => get(`/api/admin/dead-letters/${enc(queue)}`));
    if (!page) return;
    const boxes = new Map();
    const chosen = () => [...boxes].filter(([, box]) => box.checked).map(([id]) => id);
    async function act(verb) {
      const ids = chosen();
      if (!ids.length) return status("Select at least one message.");
      if (verb === "discard" && !window.confirm(`Discard ${ids.length} message(s) for good?`)) return;
      const result = await attempt(() => post(`/api/admin/dead-letters/${enc(queue)}/${verb}`, { ids }));
      if (result) {
        const count = result.replayed ?? result.discarded ?? ids.length;
        status(`${verb === "replay" ? "Replayed" : "Discarded"} ${count} message(s).`, "ok");
        await load();
        await inspect(queue);
      }
    }
    messages.replaceChildren(h("div", { class: "card" },
      h("h3", {}, queue),
      table(
        [
          {
            label: "Select",
            value: (m) => {
              const box = h("input", { type: "checkbox", "aria-label": `Select message ${m.id}` });
              boxes.set(m.id, box);
              return box;
            },
          },
          { label: "Routing key", value: (m) => m.routing_key },
          { label: "Reason", value: (m) => m.reason },
          { label: "Dead-lettered", value: (m) => when(m.dead_lettered_at) },
          {
            label: "Message",
            value: (m) => h("details", {}, h("summary", {}, m.id),
              h("pre", {}, JSON.stringify({ exchange: m.exchange, headers: m.headers, body: m.body }, null, 2))),
          },
        ],
        page.messages,
        "This queue is empty.",
      ),
      h("div", { class: "actions" },
        button("Select all", () => boxes.forEach((box) => { box.checked = true; }), "secondary"),
        button("Replay selected", () => act("replay")),
        button("Discard selected", () => act("discard"), "danger")),
    ));
    messages.scrollIntoView();
  }

  container.append(
    h("div", { class: "actions" }, h("label", {}, showEmpty, " Show empty queues"),
      button("Refresh", () => load(), "secondary")),
    queues, messages,
  );
  load();
}

// --- Page -----------------------------------------------------------------------

const sections = (user) => ({
  overview: { label: "Overview", render: overview },
  users: { label: "Users", render: users },
  products: { label: "Products", render: (container, productId) => products(container, productId, user) },
  orders: { label: "Orders", render: orders },
  inventory: { label: "Inventory", render: inventory },
  templates: { label: "Notification templates", render: templates },
  "dead-letters": { label: "Dead letters", render: deadLetters },
});

startSession({
  title: "admin dashboard",
  onReady(user) {
    if (user.role !== "admin") {
      document.getElementById("main").replaceChildren(h("div", { class: "card narrow" },
        h("h2", {}, "Admins only"),
        h("p", { class: "refusal" }, "This dashboard is for admins only. Sign out and sign in with an admin account.")));
      return;
    }
    sectionNav(sections(user));
  },
});
