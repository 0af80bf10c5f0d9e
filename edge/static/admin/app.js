// The admin dashboard: one render function per section. The API decides what an
// admin may do; this page only refuses to show itself to anyone else. People, products
// and orders are shown by name (an order by its short reference and its customer's
// name); an id appears only as secondary text.
import {
  api, attempt, barLineChart, button, del, field, form, get, h, input, money, post, put, query, ref, secondary,
  sectionNav, select, startSession, status, statusBox, table, when,
} from "../common.js";
import { productEditor } from "../products.js";
import { refundsTable, reloadSoon, returnsSection, returnsTable } from "../returns.js";

const enc = encodeURIComponent;

const customerName = (order) => order.customer?.name || "unknown customer";

// Accounts and products by id, read once per page load (a list names each seller or
// product once, however many rows it has).
const known = new Map();
function lookUp(path) {
  if (!known.has(path)) known.set(path, get(path).catch(() => null));
  return known.get(path);
}
const account = (id) => lookUp(`/api/users/${enc(id)}`);
const product = (id) => lookUp(`/api/products/${enc(id)}`);
async function named(ids, read) {
  const unique = [...new Set(ids)];
  const found = await Promise.all(unique.map(read));
  return new Map(unique.map((id, i) => [id, found[i]]));
}

// A link that looks like a button and names its row for screen readers.
const linkButton = (label, href, aria) => h("a", { class: "button secondary", href, "aria-label": aria }, label);

// A table over a cursor-paged list: `load(cursor)` fetches one page; "Load more"
// appends the next one. `prepare(items)` may fetch what the rows need (names) first.
async function paged(target, load, columns, empty, prepare = async () => {}) {
  const rows = [];
  // A newer search into the same target wins, whichever answer arrives last.
  const generation = String(Number(target.dataset.generation || 0) + 1);
  target.dataset.generation = generation;
  const stale = () => target.dataset.generation !== generation;
  async function more(cursor) {
    const page = await attempt(() => load(cursor));
    if (!page || stale()) return;
    await prepare(page.items);
    if (stale()) return;
    rows.push(...page.items);
    target.replaceChildren(table(columns, rows, empty));
    if (page.next_cursor) {
      target.append(h("div", { class: "actions" }, button("Load more", () => more(page.next_cursor), "secondary")));
    }
  }
  await more(undefined);
}

// Every page of a cursor-paged list (at most `pages` of them).
async function everything(path, pages = 20) {
  const items = [];
  let cursor;
  for (let n = 0; n < pages; n += 1) {
    const page = await get(path + (path.includes("?") ? "&" : "?") + query({ limit: 100, cursor }).slice(1));
    items.push(...page.items);
    cursor = page.next_cursor;
    if (!cursor) return { items, complete: true };
  }
  return { items, complete: false };
}

// --- Overview -------------------------------------------------------------------

async function overview(container) {
  const data = await attempt(() => get("/api/admin/overview?days=14"));
  if (!data) return;
  const queueList = h("div");
  const allQueues = h("input", { type: "checkbox", name: "all_queues" });
  const busy = (q) => q.messages > 0 || q.publish_rate > 0 || q.deliver_rate > 0;
  const showQueues = () => queueList.replaceChildren(table(
    [
      { label: "Queue", value: (q) => q.queue },
      { label: "Messages", value: (q) => String(q.messages) },
      { label: "Consumers", value: (q) => String(q.consumers) },
      { label: "In per second", value: (q) => String(q.publish_rate ?? 0) },
      { label: "Out per second", value: (q) => String(q.deliver_rate ?? 0) },
    ],
    (data.queues || [])
      .filter((q) => allQueues.checked || busy(q))
      .sort((a, b) => b.messages - a.messages || b.publish_rate - a.publish_rate),
    "Every queue is empty and idle.",
  ));
  allQueues.addEventListener("change", showQueues);
  showQueues();
  const days = data.days || [];
  const revenue = days.reduce((sum, d) => sum + Number(d.revenue), 0);
  const orders = days.reduce((sum, d) => sum + d.orders, 0);
  container.append(
    h("div", { class: "card totals" },
      h("div", {}, h("span", {}, "Orders, last 14 days"), String(orders)),
      h("div", {}, h("span", {}, `Revenue, last 14 days (${data.currency})`), money(revenue.toFixed(2), data.currency))),
    h("div", { class: "card" },
      h("h3", {}, "Orders and revenue per day"),
      barLineChart({
        title: "Orders and revenue per day",
        labels: days.map((d) => d.date.slice(5)),
        bars: { name: "orders", values: days.map((d) => d.orders) },
        line: { name: `revenue (${data.currency})`, values: days.map((d) => Number(d.revenue)) },
      })),
    h("div", { class: "card" },
      h("h3", {}, "Work and dead-letter queues"),
      h("div", { class: "actions" }, h("label", {}, allQueues, " Show empty queues")),
      queueList),
  );
}

// --- Users (customers) ----------------------------------------------------------

// `userId`: that account's page (#users/<id>): the account, and the customer's orders.
function users(container, userId) {
  if (userId) {
    customer(container, userId);
    return;
  }
  const results = h("div");
  const q = input("q", { type: "search", placeholder: "email or username" });
  const role = select("role", [["", "any"], ["member", "member"], ["seller", "seller"], ["admin", "admin"]]);

  async function search() {
    await paged(
      results,
      (cursor) => get(`/api/admin/users${query({ q: q.value, role: role.value, cursor })}`),
      [
        { label: "Username", value: (u) => h("a", { href: `#users/${enc(u.user_id)}` }, u.username) },
        { label: "Email", value: (u) => u.email },
        { label: "Role", value: (u) => u.role },
        { label: "Disabled", value: (u) => (u.disabled ? "yes" : "no") },
        { label: "", value: (u) => button("View", () => { location.hash = `#users/${enc(u.user_id)}`; }, "secondary",
          { "aria-label": `View ${u.username} (${u.email})` }) },
      ],
      "No users match.",
    );
  }

  container.append(
    form([field("Search", q), field("Role", role), h("button", { type: "submit" }, "Search")], search,
      { role: "search", class: "card" }),
    results,
  );
  search();
}

// One account: who they are, their standing, and (a customer) their orders with totals.
async function customer(container, userId) {
  const detail = h("div");
  const history = h("div");
  container.append(h("p", {}, h("a", { href: "#users" }, "Back to the users")), detail, history);
  const user = await attempt(() => get(`/api/users/${enc(userId)}`));
  if (!user) return;
  const newRole = select("role", [["member", "member"], ["seller", "seller"], ["admin", "admin"]], user.role);
  const disabled = h("input", { type: "checkbox", name: "disabled", checked: Boolean(user.disabled) });
  detail.replaceChildren(h("div", { class: "card", id: "customer-detail" },
    h("h3", {}, user.username),
    h("p", {}, h("a", { href: `mailto:${user.email}` }, user.email), ` · ${user.role} · joined ${when(user.created_at)}`,
      user.disabled ? " · disabled" : ""),
    user.phone ? h("p", {}, `Phone ${user.phone}`) : null,
    user.address ? h("address", {}, addressLines(user.address)) : null,
    h("p", {}, secondary(`Account id ${user.user_id}`)),
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
      await attempt(() => put(`/api/users/${enc(user.user_id)}`, body), "User saved.");
    }),
  ));

  const placed = await attempt(() => everything(`/api/orders/user/${enc(user.user_id)}`));
  if (!placed) return;
  const spent = new Map();
  for (const o of placed.items) {
    if (o.status === "cancelled") continue;
    spent.set(o.currency, (spent.get(o.currency) || 0) + Number(o.total_amount));
  }
  const live = placed.items.filter((o) => o.status !== "cancelled").length;
  history.replaceChildren(h("div", { class: "card", id: "customer-orders" },
    h("h3", {}, "Orders"),
    h("div", { class: "totals" },
      h("div", {}, h("span", {}, "Orders"), String(placed.items.length)),
      h("div", {}, h("span", {}, "Not cancelled"), String(live)),
      [...spent].map(([currency, total]) => h("div", {}, h("span", {}, `Spent (${currency})`),
        money(total.toFixed(2), currency)))),
    placed.complete ? null : h("p", { class: "hint" }, `The first ${placed.items.length} orders only.`),
    table(
      [
        { label: "Order", value: (o) => h("a", { href: `#orders/${enc(o.order_id)}` }, ref(o.order_id)) },
        { label: "Placed", value: (o) => when(o.created_at) },
        { label: "Status", value: (o) => o.status },
        { label: "Payment", value: (o) => o.payment_status },
        { label: "Total", value: (o) => money(o.total_amount, o.currency) },
        { label: "", value: (o) => linkButton("View", `#orders/${enc(o.order_id)}`, `View order ${ref(o.order_id)}`) },
      ],
      placed.items,
      "No orders yet.",
    )));
}

async function erase(user) {
  if (!window.confirm(`Erase ${user.email}? Their personal data is deleted for good.`)) return;
  if ((await attempt(() => del(`/api/users/${enc(user.user_id)}`), "Account erased.")) !== undefined) {
    location.hash = "#users";
  }
}

function addressLines(a) {
  const city = [a.postal_code, a.city].filter(Boolean).join(" ");
  return [a.recipient, a.line1, a.line2, city, a.region, a.country, a.phone]
    .filter(Boolean).map((line) => h("span", { class: "line" }, line));
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
    const sellers = await named(page.items.map((p) => p.seller_id), account);
    const seller = (p) => {
      const who = sellers.get(p.seller_id);
      return who ? h("a", { href: `#users/${enc(p.seller_id)}` }, who.username) : secondary("unknown seller");
    };
    results.replaceChildren(table(
      [
        { label: "Name", value: (p) => h("a", { href: `#products/${enc(p.product_id)}` }, p.name) },
        { label: "Price", value: (p) => money(p.price, p.currency) },
        { label: "Category", value: (p) => p.category },
        { label: "Availability", value: (p) => p.availability.replaceAll("_", " ") },
        { label: "Seller", value: seller },
        {
          label: "",
          value: (p) => h("span", { class: "actions" },
            button("Edit", () => edit(p), "secondary", { "aria-label": `Edit ${p.name}` }),
            h("a", {
              class: "button secondary", href: `#products/${enc(p.product_id)}`, "aria-label": `Images and variants of ${p.name}`,
            }, "Images and variants"),
            button("Delete", () => remove(p), "danger", { "aria-label": `Delete ${p.name}` })),
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

const PAYMENT = {
  none: "not paid", authorized: "authorized", captured: "paid (captured)", voided: "voided", refunded: "refunded",
  failed: "failed",
};

// `orderId`: that order's page (#orders/<id>) instead of the list.
function orders(container, orderId) {
  if (orderId) {
    orderDetail(container, orderId);
    return;
  }
  const results = h("div");
  const q = input("q", { type: "search", placeholder: "customer email, name or order number", size: 34 });
  const statusFilter = select("status", [["", "any"], ...["pending", "confirmed", "shipped", "delivered", "cancelled"].map((s) => [s, s])]);
  const from = input("from", { type: "date" });
  const to = input("to", { type: "date" });
  const open = (o) => { location.hash = `#orders/${enc(o.order_id)}`; };

  async function search() {
    await paged(
      results,
      (cursor) => get(`/api/admin/orders${query({ q: q.value.trim(), status: statusFilter.value, from: from.value, to: to.value, cursor })}`),
      [
        { label: "Order", value: (o) => h("a", { href: `#orders/${enc(o.order_id)}` }, ref(o.order_id)) },
        {
          label: "Customer",
          value: (o) => h("span", {},
            h("a", { href: `#users/${enc(o.user_id)}` }, customerName(o)),
            o.customer ? h("br") : null, o.customer ? secondary(o.customer.email) : null),
        },
        { label: "Placed", value: (o) => when(o.created_at) },
        { label: "Status", value: (o) => o.status },
        { label: "Payment", value: (o) => PAYMENT[o.payment_status] || o.payment_status },
        { label: "Total", value: (o) => money(o.total_amount, o.currency) },
        {
          label: "",
          value: (o) => button("View", () => open(o), "secondary", { "aria-label": `View order ${ref(o.order_id)} of ${customerName(o)}` }),
        },
      ],
      q.value.trim() ? "No orders match." : "No orders yet.",
    );
  }

  container.append(
    form([
      field("Find orders", q), field("Status", statusFilter), field("From", from), field("To", to),
      h("button", { type: "submit" }, "Search"),
    ], search, { role: "search", class: "card", "aria-label": "Order search" }),
    h("p", { class: "hint" }, "A customer's whole email, part of their name, or an order number (its first 8 characters are enough)."),
    results,
  );
  q.focus();
  search();
}

function lineImage(line) {
  if (!line.image_url) return secondary("no image");
  // The page's policy shows images of this origin only; another site's is a link.
  let same = false;
  try {
    same = new URL(line.image_url, location.href).origin === location.origin;
  } catch {
    same = false;
  }
  return same ? h("img", { src: line.image_url, alt: line.name, class: "thumb" })
    : h("a", { href: line.image_url, target: "_blank", rel: "noopener noreferrer", "aria-label": `Image of ${line.name}` }, "Image");
}

const discounted = (order) => Boolean(order.discount_total && Number(order.discount_total));

// One order: customer, address, lines, money, history, refunds; and what an admin may do next.
async function orderDetail(container, orderId) {
  const box = h("div");
  const note = h("div", { class: "status", role: "status", "aria-live": "polite" });
  const polls = { count: 0 };
  container.append(h("p", {}, h("a", { href: "#orders" }, "Back to the orders")), note, box);

  async function load() {
    const order = await attempt(() => get(`/api/orders/${enc(orderId)}`));
    if (order) show(order);
  }

  function actions(order) {
    const out = [];
    if (order.status === "confirmed") {
      const number = input("tracking_number", { maxlength: 64, size: 24, pattern: "\\S(.*\\S)?" });
      const carrier = input("carrier", { maxlength: 64, size: 12, placeholder: "DHL, UPS…", pattern: "\\S(.*\\S)?" });
      out.push(form([
        field("Tracking number", number), field("Carrier", carrier),
        h("button", { type: "submit" }, "Ship"),
      ], () => {
        const body = { status: "shipped" };
        if (number.value.trim()) body.tracking_number = number.value.trim();
        if (carrier.value.trim()) body.carrier = carrier.value.trim();
        return change(order, body, "Order shipped.");
      }, { class: "card inset", "aria-label": "Ship the order" }));
    }
    const buttons = [];
    if (order.status === "shipped") {
      buttons.push(button("Mark delivered", () => change(order, { status: "delivered" }, "Order delivered.")));
    }
    if (["pending", "confirmed", "shipped"].includes(order.status)) {
      const refunds = order.payment_status === "captured";
      buttons.push(button(refunds ? "Cancel and refund in full" : "Cancel order", () => {
        const question = refunds
          ? `Cancel order ${ref(order.order_id)} and refund ${money(order.total_amount, order.currency)} in full?`
          : `Cancel order ${ref(order.order_id)}?`;
        if (window.confirm(question)) change(order, { status: "cancelled" }, refunds ? "Order cancelled: refund in full under way." : "Order cancelled.");
      }, "danger"));
    }
    buttons.push(button("Reload", () => load(), "secondary"));
    out.push(h("div", { class: "actions" }, buttons));
    if (order.payment_status === "captured") out.push(partialRefund(order));
    return out;
  }

  // An amount of a captured order back to the customer, without a return (goodwill, a
  // partial refund). One Idempotency-Key per submission: a retry of the same amount and
  // reason (a double click, a lost answer) is the same refund, never a second one.
  function partialRefund(order) {
    const amount = input("refund_amount", {
      required: true, inputmode: "decimal", size: 10, pattern: "\\d{1,12}(\\.\\d{1,3})?", placeholder: "5.00",
      title: "An amount such as 5.00",
    });
    const reason = input("refund_reason", { required: true, maxlength: 500, size: 30, pattern: ".*\\S.*" });
    const said = statusBox();
    let sent = { body: "", key: "" };
    return h("div", { class: "card inset" },
      form([
        h("h4", { class: "wide" }, "Partial refund"),
        field(`Amount (${order.currency})`, amount), field("Reason", reason),
        h("button", { type: "submit" }, "Refund part"),
      ], async () => {
        const body = { amount: amount.value.trim(), reason: reason.value.trim() };
        if (JSON.stringify(body) !== sent.body) sent = { body: JSON.stringify(body), key: crypto.randomUUID() };
        const refund = await attempt(() => api("POST", `/api/orders/${enc(order.order_id)}/refunds`, body,
          { "Idempotency-Key": sent.key }), undefined, said);
        if (!refund) return;
        // The form is drawn anew (with a new key for the next refund): the outcome is said above it.
        status(`Refund of ${money(refund.amount, order.currency)} asked of the payment provider.`, "ok", note);
        await load();
      }, { "aria-label": "Partial refund" }),
      h("p", { class: "hint" }, "Refunds part of what was paid; the order stays as it is. A return's refund is on its page."),
      said);
  }

  function show(order) {
    const c = order.customer;
    const refunds = order.refunds || [];
    const returns = order.returns || [];
    box.replaceChildren(h("div", { class: "card", id: "order-detail" },
      h("h3", { tabindex: "-1" }, `Order ${ref(order.order_id)}`, " · ", customerName(order)),
      h("p", {}, secondary(`Order id ${order.order_id} · placed ${when(order.created_at)}`)),
      h("p", {}, "Status ", h("strong", { class: "order-status" }, order.status),
        " · payment ", h("strong", { class: "payment-status" }, PAYMENT[order.payment_status] || order.payment_status),
        ` · ${money(order.total_amount, order.currency)}`,
        order.cancel_reason ? ` · cancelled: ${order.cancel_reason.replaceAll("_", " ")}` : ""),
      h("div", { class: "grid2" },
        h("section", { "aria-label": "Customer", class: "customer" },
          h("h4", {}, "Customer"),
          c ? [h("p", {}, h("a", { href: `#users/${enc(order.user_id)}` }, c.name)),
            h("p", {}, h("a", { href: `mailto:${c.email}` }, c.email))]
            : h("p", {}, h("a", { href: `#users/${enc(order.user_id)}` }, "The customer's account"), secondary(" (no name or email kept)"))),
        h("section", { "aria-label": "Shipping address", class: "ship-to" },
          h("h4", {}, "Ship to"),
          order.shipping_address ? h("address", {}, addressLines(order.shipping_address)) : h("p", { class: "hint" }, "Erased with the account."),
          order.shipping ? h("p", {}, `${order.shipping.name}, ${money(order.shipping.price, order.currency)}`) : null,
          order.tracking?.number || order.tracking?.carrier
            ? h("p", { class: "tracking" }, `Tracking: ${[order.tracking.carrier, order.tracking.number].filter(Boolean).join(" ")}`)
            : null)),
      h("h4", {}, "Lines"),
      table(
        [
          { label: "Image", value: lineImage },
          {
            label: "Product",
            value: (l) => h("span", {}, h("a", { href: `#products/${enc(l.product_id)}` }, l.name || "a product"),
              l.variant ? ` (${l.variant})` : "", l.sku ? h("br") : null, l.sku ? secondary(`SKU ${l.sku}`) : null),
          },
          { label: "Quantity", value: (l) => String(l.quantity) },
          { label: "Price", value: (l) => money(l.price, order.currency) },
          { label: "Total", value: (l) => money(l.line_total, order.currency) },
          // The voucher's share of each line (the lines' shares add up to the order's discount).
          discounted(order) ? { label: "Discount", value: (l) => (Number(l.discount) ? `−${money(l.discount, order.currency)}` : "—") } : null,
        ].filter(Boolean),
        order.items,
      ),
      h("dl", { class: "totals-list" },
        h("dt", {}, "Subtotal"), h("dd", {}, money(order.subtotal, order.currency)),
        discounted(order) ? [h("dt", {}, `Discount${order.voucher_code ? ` (${order.voucher_code})` : ""}`),
          h("dd", {}, `−${money(order.discount_total, order.currency)}`)] : null,
        order.shipping ? [h("dt", {}, "Shipping"), h("dd", {}, money(order.shipping.price, order.currency))] : null,
        [h("dt", {}, order.prices_include_tax ? "Tax (included)" : "Tax"), h("dd", {}, money(order.tax_total, order.currency))],
        order.refunded_total ? [h("dt", {}, "Refunded"), h("dd", {}, money(order.refunded_total, order.currency))] : null,
        h("dt", {}, "Total"), h("dd", {}, money(order.total_amount, order.currency))),
      refunds.length ? h("section", { "aria-label": "Refunds", id: "order-refunds" }, h("h4", {}, "Refunds"), refundsTable(refunds)) : null,
      returns.length ? h("section", { "aria-label": "Returns", id: "order-returns" }, h("h4", {}, "Returns"),
        returnsTable(returns, (r) => `#returns/${enc(r.return_id)}`)) : null,
      h("h4", {}, "History"),
      h("ol", { class: "timeline", "aria-label": "Order history" },
        order.history.map((e) => h("li", {}, h("span", { class: "state" }, e.status),
          e.payment_status ? ` (payment ${e.payment_status})` : "", ` ${when(e.at)}`))),
      actions(order),
    ));
    // A pending refund shows `refunded` (or why it failed) once the payment provider has answered.
    if (refunds.some((r) => r.status === "pending")) reloadSoon(box.firstChild, load, polls);
  }

  async function change(order, body, done) {
    const updated = await attempt(() => put(`/api/orders/${enc(order.order_id)}`, body), done);
    if (updated) show(updated.history ? updated : await get(`/api/orders/${enc(order.order_id)}`));
  }

  await load();
}

// --- Vouchers -------------------------------------------------------------------

// A form's controls by the API field each stands for: a problem's `errors` (422, or 409 on
// a code taken) are shown beside the control they name, which is marked invalid and
// described by the message; what names no control goes to the form's status box.
function fieldProblems(box) {
  const slots = new Map();
  const clear = () => {
    for (const { control, message } of slots.values()) {
      message.textContent = "";
      control.removeAttribute("aria-invalid");
    }
    status("", "info", box);
  };
  return {
    field(label, control, name, cls = "") {
      const message = h("span", { class: "field-error", id: `problem-${name.replaceAll(".", "-")}` });
      control.setAttribute("aria-describedby", message.id);
      slots.set(name, { control, message });
      return h("div", { class: `field-box ${cls}`.trim() }, field(label, control), message);
    },
    // A problem on a group as a whole (a map of amounts, the list of sellers): its message
    // goes where the returned element is placed.
    group(group, name) {
      const message = h("span", { class: "field-error", id: `problem-${name}` });
      group.setAttribute("aria-describedby", message.id);
      slots.set(name, { control: group, message });
      return message;
    },
    clear,
    async attempt(action, done) {
      clear();
      try {
        const result = await action();
        status(done, "ok", box);
        return result;
      } catch (error) {
        const rest = [];
        let first;
        for (const e of error.problem?.errors || []) {
          const slot = slots.get(e.field) || slots.get(String(e.field).split(".")[0]);
          if (!slot) {
            rest.push(`${e.field}: ${e.message}`);
            continue;
          }
          slot.message.textContent = slot.message.textContent ? `${slot.message.textContent}; ${e.message}` : e.message;
          slot.control.setAttribute("aria-invalid", "true");
          first ??= slot.control;
        }
        status([error.message, ...rest].join(" — "), "error", box);
        first?.focus();
        return undefined;
      }
    },
  };
}

// The currencies a voucher may name, as the API's own document lists them.
let currencies;
async function voucherCurrencies() {
  currencies ??= get("/api/openapi.json").then(
    (doc) => doc.components.schemas.CreateVoucher.properties.amounts.anyOf[0].propertyNames.enum,
    () => ["USD", "EUR", "GBP"],
  );
  return currencies;
}

// Category slugs → names, and the tree flattened for a chooser (children indented).
async function categoryChoices() {
  const tree = (await attempt(() => get("/api/categories"))) || { items: [] };
  const flatten = (nodes, depth = 0) => nodes.flatMap((c) => [[c.slug, c.name, depth], ...flatten(c.children || [], depth + 1)]);
  const flat = flatten(tree.items || []);
  return { names: new Map(flat.map(([slug, name]) => [slug, name])), flat };
}

const moneyList = (amounts) => Object.entries(amounts || {}).map(([currency, amount]) => money(amount, currency)).join(" / ");
const gives = (v) => (v.percent !== null && v.percent !== undefined ? `${v.percent} %` : moneyList(v.amounts));
function validity(v) {
  if (!v.starts_at && !v.ends_at) return "always";
  return [v.starts_at ? `from ${when(v.starts_at)}` : "", v.ends_at ? `until ${when(v.ends_at)}` : ""].filter(Boolean).join(" ");
}
// An ISO instant as a datetime-local value in the reader's time zone, and back (with its offset, as UTC).
function localInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
const instant = (value) => (value ? new Date(value).toISOString() : null);
const limitOf = (control) => (control.value.trim() === "" ? null : Number(control.value));

// `voucherId`: open that voucher's form (#vouchers/<id>) above the list.
function vouchers(container, voucherId) {
  const editor = h("div");
  const results = h("div");
  const shown = select("active", [["", "all"], ["true", "active"], ["false", "inactive"]]);
  let categories = { names: new Map(), flat: [] };

  async function load() {
    const page = await attempt(() => get(`/api/vouchers${query({ active: shown.value })}`));
    if (!page) return;
    categories = await categoryChoices();
    const sellers = await named(page.items.flatMap((v) => v.sellers), account);
    const scope = (v) => {
      const parts = [
        ...v.categories.map((slug) => `${categories.names.get(slug) || slug} (category)`),
        ...v.sellers.map((id) => `${sellers.get(id)?.username || "unknown seller"} (seller)`),
      ];
      return parts.length ? parts.join(", ") : "anything";
    };
    results.replaceChildren(table(
      [
        { label: "Code", value: (v) => h("strong", { class: "voucher-code" }, v.code) },
        { label: "Gives", value: gives },
        { label: "Minimum spend", value: (v) => moneyList(v.min_spend) || "none" },
        { label: "Valid", value: validity },
        {
          label: "Uses / limit",
          value: (v) => h("span", { class: "uses" }, `${v.uses} / ${v.usage_limit ?? "no limit"}`,
            v.uses ? h("br") : null, v.uses ? h("span", { class: "hint" }, `${v.redeemed} confirmed`) : null),
        },
        { label: "Per customer", value: (v) => (v.per_customer_limit ? String(v.per_customer_limit) : "no limit") },
        { label: "Limited to", value: scope },
        { label: "Active", value: (v) => h("span", { class: "voucher-active" }, v.active ? "yes" : "no") },
        {
          label: "",
          value: (v) => h("span", { class: "actions" },
            button("Edit", () => edit(v), "secondary", { "aria-label": `Edit ${v.code}` }),
            v.active
              ? button("Deactivate", () => toggle(v, false), "danger", { "aria-label": `Deactivate ${v.code}` })
              : button("Reactivate", () => toggle(v, true), "secondary", { "aria-label": `Reactivate ${v.code}` })),
        },
      ],
      page.items,
      shown.value ? "No vouchers match." : "No vouchers yet.",
    ));
  }

  async function toggle(v, active) {
    const done = active ? `${v.code} reactivated.` : `${v.code} deactivated: checkouts refuse it now.`;
    if (await attempt(() => put(`/api/vouchers/${enc(v.voucher_id)}`, { active }), done)) await load();
  }

  // The form, new (`v` undefined) or for one voucher. An edit sends every field (a partial
  // update of all of them): the code stays; an emptied limit or window end is removed.
  async function edit(v) {
    const box = statusBox();
    const problems = fieldProblems(box);
    const codes = await voucherCurrencies();
    categories = await categoryChoices();
    const fixed = Boolean(v && (v.percent === null || v.percent === undefined));
    const kind = select("kind", [["percent", "a percentage"], ["amounts", "fixed amounts"]], fixed ? "amounts" : "percent");
    const code = input("code", { required: true, maxlength: 32, size: 20, autocomplete: "off", placeholder: "SUMMER-10" });
    const percent = input("percent", { inputmode: "decimal", size: 6, value: v?.percent ?? "", placeholder: "10" });
    const perCurrency = (name, label, values) => {
      const controls = new Map(codes.map((c) => [c, input(`${name}_${c}`, {
        inputmode: "decimal", size: 8, value: values?.[c] ?? "", placeholder: "0.00",
      })]));
      const group = h("fieldset", { class: "wide currencies", id: `voucher-${name}` },
        h("legend", {}, label),
        codes.map((c) => problems.field(`${label} (${c})`, controls.get(c), `${name}.${c}`)));
      group.append(problems.group(group, name));
      return { group, controls };
    };
    const amounts = perCurrency("amounts", "Amount off", v?.amounts);
    const minSpend = perCurrency("min_spend", "Minimum spend", v?.min_spend);
    const startsAt = input("starts_at", { type: "datetime-local", value: localInput(v?.starts_at) });
    const endsAt = input("ends_at", { type: "datetime-local", value: localInput(v?.ends_at) });
    const usageLimit = input("usage_limit", { type: "number", min: 1, step: 1, value: v?.usage_limit ?? "" });
    const perCustomer = input("per_customer_limit", { type: "number", min: 1, step: 1, value: v?.per_customer_limit ?? "" });
    // A category the voucher names that the tree no longer has stays chosen (by its slug) until unselected.
    const gone = (v?.categories || []).filter((slug) => !categories.names.has(slug)).map((slug) => [slug, `${slug} (no longer in the tree)`, 0]);
    const choices = [...categories.flat, ...gone];
    const categorySelect = h("select", { name: "categories", multiple: true, size: Math.min(8, Math.max(3, choices.length)) },
      choices.map(([slug, name, depth]) => h("option", { value: slug, selected: Boolean(v?.categories.includes(slug)) },
        `${"· ".repeat(depth)}${name}`)));
    const active = h("input", { type: "checkbox", name: "active", checked: v ? v.active : true });

    // Sellers are chosen by name: a search of the seller accounts, then "Add" on a row.
    const chosen = new Map();
    const names = await named(v?.sellers || [], account);
    for (const id of v?.sellers || []) chosen.set(id, names.get(id)?.username || "unknown seller");
    const chosenList = h("ul", { class: "chosen", "aria-label": "Chosen sellers" });
    const sellerResults = h("div");
    const findSeller = input("find_seller", { type: "search", placeholder: "seller's email or username", size: 24 });
    const showChosen = () => chosenList.replaceChildren(...(chosen.size
      ? [...chosen].map(([id, name]) => h("li", {}, name, " ",
        button("Remove", () => { chosen.delete(id); showChosen(); }, "secondary", { "aria-label": `Remove seller ${name}` })))
      : [h("li", { class: "hint" }, "Any seller")]));
    showChosen();
    async function searchSellers() {
      const page = await attempt(() => get(`/api/admin/users${query({ q: findSeller.value.trim(), role: "seller", limit: 20 })}`), undefined, box);
      if (!page) return;
      sellerResults.replaceChildren(table(
        [
          { label: "Seller", value: (u) => u.username },
          { label: "Email", value: (u) => u.email },
          {
            label: "",
            value: (u) => button("Add", () => { chosen.set(u.user_id, u.username); showChosen(); }, "secondary",
              { "aria-label": `Add seller ${u.username}` }),
          },
        ],
        page.items,
        "No sellers match.",
      ));
    }
    const showKind = () => {
      percent.disabled = kind.value !== "percent";
      for (const control of amounts.controls.values()) control.disabled = kind.value !== "amounts";
    };
    const sellerGroup = h("fieldset", { class: "wide" }, h("legend", {}, "Sellers"), chosenList,
      h("div", { class: "actions" }, field("Find a seller", findSeller), button("Find sellers", searchSellers, "secondary")),
      sellerResults);
    sellerGroup.append(problems.group(sellerGroup, "sellers"));
    // Enter in the seller search finds sellers; it does not submit the voucher.
    findSeller.addEventListener("keydown", (event) => {
      if (event.key !== "Enter") return;
      event.preventDefault();
      searchSellers();
    });
    kind.addEventListener("change", showKind);
    showKind();

    const filled = (controls) => Object.fromEntries([...controls].map(([c, control]) => [c, control.value.trim()]).filter(([, a]) => a));
    function body() {
      const out = {
        min_spend: filled(minSpend.controls),
        starts_at: instant(startsAt.value),
        ends_at: instant(endsAt.value),
        usage_limit: limitOf(usageLimit),
        per_customer_limit: limitOf(perCustomer),
        categories: [...categorySelect.selectedOptions].map((o) => o.value),
        sellers: [...chosen.keys()],
        active: active.checked,
      };
      if (kind.value === "percent" && percent.value.trim()) out.percent = percent.value.trim();
      if (kind.value === "amounts") out.amounts = filled(amounts.controls);
      if (!v) out.code = code.value.trim();
      return out;
    }

    editor.replaceChildren(h("div", { class: "card", id: "voucher-editor" },
      h("h3", { tabindex: "-1" }, v ? `Edit voucher ${v.code}` : "New voucher"),
      form([
        v ? h("p", { class: "wide" }, `Code ${v.code}. Used ${v.uses} times (${v.redeemed} confirmed).`)
          : problems.field("Code", code, "code"),
        field("Discount", kind),
        problems.field("Percent off", percent, "percent"),
        amounts.group,
        minSpend.group,
        problems.field("Valid from", startsAt, "starts_at"),
        problems.field("Valid until", endsAt, "ends_at"),
        problems.field("Total uses allowed", usageLimit, "usage_limit"),
        problems.field("Uses per customer", perCustomer, "per_customer_limit"),
        problems.field("Categories", categorySelect, "categories"),
        sellerGroup,
        h("label", { class: "check" }, active, " Active"),
        h("p", { class: "hint wide" }, "Leave a limit or an end empty for none; no category and no seller: it applies to everything. "
          + "Ctrl- or ⌘-click chooses several categories."),
        h("div", { class: "actions wide" },
          h("button", { type: "submit" }, v ? "Save voucher" : "Create voucher"),
          button("Close", () => editor.replaceChildren(), "secondary")),
      ], async () => {
        const saved = await problems.attempt(
          () => (v ? put(`/api/vouchers/${enc(v.voucher_id)}`, body()) : post("/api/vouchers", body())),
          v ? "Voucher saved." : "Voucher created.",
        );
        if (saved) {
          editor.replaceChildren();
          status(v ? `${saved.code} saved.` : `${saved.code} created.`, "ok");
          await load();
        }
      }, { "aria-label": v ? `Edit voucher ${v.code}` : "New voucher" }),
      box,
    ));
    editor.querySelector("h3").focus();
  }

  async function open(id) {
    const v = await attempt(() => get(`/api/vouchers/${enc(id)}`));
    if (v) await edit(v);
  }

  container.append(
    h("div", { class: "actions" },
      button("New voucher", () => edit(undefined)),
      field("Show", shown)),
    editor,
    results,
  );
  shown.addEventListener("change", load);
  load();
  if (voucherId) open(voucherId);
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
  const find = input("find_product", { type: "search", placeholder: "product name" });
  const found = h("div");
  const chosen = h("p", { class: "hint", "aria-live": "polite" });

  // Choosing a product by name fills in its id (a product with variants: adjust each on its page).
  async function findProduct() {
    const page = await attempt(() => get(`/api/products${query({ q: find.value, limit: 10 })}`));
    if (!page) return;
    found.replaceChildren(table(
      [
        { label: "Product", value: (p) => p.name },
        { label: "Availability", value: (p) => p.availability.replaceAll("_", " ") },
        {
          label: "",
          value: (p) => (p.options?.length
            ? linkButton("Variants", `#products/${enc(p.product_id)}`, `Variants and stock of ${p.name}`)
            : button("Choose", () => {
              productId.value = p.product_id;
              variantId.value = "";
              chosen.textContent = `Adjusting ${p.name}.`;
              lookUpStock();
              stock.focus();
            }, "secondary", { "aria-label": `Choose ${p.name}` })),
        },
      ],
      page.items,
      "No products match.",
    ));
  }

  async function loadLow() {
    const page = await attempt(() => get("/api/admin/inventory/low-stock"));
    if (!page) return;
    const products = await named(page.items.map((s) => s.product_id), product);
    const sellers = await named(page.items.map((s) => s.seller_id), account);
    const variantOf = (s) => products.get(s.product_id)?.variants?.find((v) => v.variant_id === s.variant_id);
    low.replaceChildren(table(
      [
        {
          label: "Product",
          value: (s) => [h("a", { href: `#products/${enc(s.product_id)}` }, products.get(s.product_id)?.name || "a withdrawn product"),
            h("br"), secondary(s.product_id)],
        },
        { label: "Variant", value: (s) => (s.variant_id === s.product_id ? "—" : variantOf(s)?.label || secondary(s.variant_id)) },
        {
          label: "Seller",
          value: (s) => (sellers.get(s.seller_id)
            ? h("a", { href: `#users/${enc(s.seller_id)}` }, sellers.get(s.seller_id).username) : secondary(s.seller_id)),
        },
        { label: "Stock", value: (s) => String(s.stock) },
        { label: "Threshold", value: (s) => String(s.low_stock_threshold) },
        { label: "", value: (s) => button("Adjust", () => {
          productId.value = s.product_id;
          variantId.value = s.variant_id === s.product_id ? "" : s.variant_id;
          lookUpStock();
          productId.focus();
        }, "secondary", { "aria-label": `Adjust the stock of ${products.get(s.product_id)?.name || s.product_id}` }) },
      ],
      page.items,
      "Nothing is low on stock.",
    ));
  }

  async function lookUpStock() {
    const variant = variantId.value.trim();
    const view = await attempt(() => get(`/api/inventory/${enc(productId.value.trim())}`
      + (variant ? `?variant_id=${enc(variant)}` : "")));
    if (view) {
      current.textContent = `In stock: ${view.stock}` + (view.reserved != null ? `, reserved ${view.reserved}` : "")
        + (view.low_stock_threshold != null ? `, low at ${view.low_stock_threshold}` : "");
    }
  }

  container.append(
    form([field("Find a product", find), h("button", { type: "submit" }, "Find")], findProduct,
      { role: "search", class: "card", "aria-label": "Product search" }),
    found,
    h("div", { class: "card" },
      h("h3", {}, "Adjust stock"),
      chosen,
      form([
        field("Product id", productId),
        field("Variant id", variantId),
        button("Look up", lookUpStock, "secondary"),
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
          await lookUpStock();
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
        {
          label: "Edited",
          value: (t) => (t.updated_by ? h("span", { class: "badge edited" }, `edited ${when(t.updated_at)}`)
            : h("span", { class: "badge default" }, "default")),
        },
        { label: "", value: (t) => button("Edit", () => edit(t), "secondary", { "aria-label": `Edit ${t.channel} template ${t.key}` }) },
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
        { label: "", value: (q) => button("Inspect", () => inspect(q.queue), "secondary", { "aria-label": `Inspect ${q.queue}` }) },
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
  returns: {
    label: "Returns",
    render: returnsSection({ orderHref: (id) => `#orders/${enc(id)}`, customerHref: (id) => `#users/${enc(id)}` }),
  },
  vouchers: { label: "Vouchers", render: vouchers },
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
