// The seller portal: the sales report per currency, the seller's own products (every page
// of them) with their images, variants, details and stock to edit, the orders to ship, and
// the returns of the seller's lines to approve, receive and refund.
import {
  attempt, barLineChart, button, field, form, get, h, input, money, put, query, ref, sectionNav, startSession,
  status, table, when,
} from "../common.js";
import { productEditor } from "../products.js";
import { returnsSection } from "../returns.js";

const enc = encodeURIComponent;
const PAGE = 50;
const AVAILABILITY = { in_stock: "in stock", low: "low", out_of_stock: "out of stock" };

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

// The currencies the seller prices products in (the first page's facets count them all).
async function currencies(seller) {
  const page = await get(`/api/products${query({ seller_id: seller.user_id, limit: 1 })}`);
  return [...new Set((page.facets?.price_bands || []).map((b) => b.currency))].sort();
}

function productsSection(seller) {
  // `productId`: that product's details, images, variants and stock (#products/<id>).
  return async (container, productId) => {
    if (productId) {
      await productEditor(container, productId, { user: seller, back: "#products" });
      return;
    }
    // The list says how each product stands from the catalog's listing itself: the
    // inventory has no call for many products' counts at once, and one call per row is
    // what made this page slow. Each product's counts are on its page, from one read.
    const rows = [];
    const list = h("div");
    const count = h("p", { class: "hint", "aria-live": "polite" });
    const more = h("div", { class: "actions" });
    let total;

    function draw() {
      list.replaceChildren(table(
        [
          { label: "Name", value: (p) => h("a", { href: `#products/${enc(p.product_id)}` }, p.name) },
          { label: "Category", value: (p) => p.category },
          { label: "Price", value: (p) => money(p.price, p.currency) },
          { label: "Availability", value: (p) => h("span", { class: `availability ${p.availability}` }, AVAILABILITY[p.availability]) },
          { label: "Updated", value: (p) => new Date(p.updated_at).toLocaleDateString() },
          {
            label: "",
            value: (p) => h("a", {
              class: "button secondary", href: `#products/${enc(p.product_id)}`, "aria-label": `Edit ${p.name}`,
            }, "Edit"),
          },
        ],
        rows,
        "You have no products yet.",
      ));
      count.textContent = `Showing ${rows.length} of ${total ?? rows.length} products.`;
    }

    async function load(cursor) {
      const page = await attempt(() => get(`/api/products${query({ seller_id: seller.user_id, sort: "newest", limit: PAGE, cursor })}`));
      if (!page) return;
      if (page.facets) total = page.facets.total;
      rows.push(...page.items);
      draw();
      more.replaceChildren(...(page.next_cursor
        ? [button(`Show ${PAGE} more`, async () => {
          const first = rows.length;
          await load(page.next_cursor);
          // The keyboard focus moves to the first product just shown.
          list.querySelectorAll("tbody tr")[first]?.querySelector("a")?.focus();
        }, "secondary")]
        : []));
    }

    container.append(count, list, more);
    await load(undefined);
  };
}

function ordersSection(seller) {
  return async (container) => {
    const list = h("div");
    const more = h("div", { class: "actions" });
    const shown = [];
    const base = `/api/sellers/${enc(seller.user_id)}/orders`;

    function shipForm(order) {
      const number = input("tracking_number", { maxlength: 64, size: 20, placeholder: "tracking number", pattern: "\\S(.*\\S)?", "aria-label": `Tracking number for order ${ref(order.order_id)}` });
      const carrier = input("carrier", { maxlength: 64, size: 10, pattern: "\\S(.*\\S)?", placeholder: "DHL, UPS…", "aria-label": `Carrier for order ${ref(order.order_id)}` });
      return form([number, carrier, h("button", { type: "submit", "aria-label": `Ship order ${ref(order.order_id)}` }, "Ship")], async () => {
        const body = { status: "shipped" };
        if (number.value.trim()) body.tracking_number = number.value.trim();
        if (carrier.value.trim()) body.carrier = carrier.value.trim();
        const updated = await attempt(() => put(`/api/orders/${enc(order.order_id)}`, body), `Order ${ref(order.order_id)} shipped.`);
        if (updated) {
          shown.splice(shown.indexOf(order), 1);
          draw();
        }
      }, { class: "inline-ship" });
    }

    function address(a) {
      if (!a) return "—";
      return h("address", {}, [a.recipient, a.line1, a.line2, [a.postal_code, a.city].filter(Boolean).join(" "), a.region, a.country]
        .filter(Boolean).map((line) => h("span", { class: "line" }, line)));
    }

    function draw() {
      list.replaceChildren(table(
        [
          { label: "Order", value: (o) => h("span", {}, ref(o.order_id), h("br"), h("span", { class: "hint" }, when(o.created_at))) },
          { label: "Customer", value: (o) => o.customer?.name || "—" },
          { label: "Items", value: (o) => o.items.map((l) => `${l.quantity} × ${l.name}${l.variant ? ` (${l.variant})` : ""}`).join(", ") },
          { label: "Ship to", value: (o) => address(o.shipping_address) },
          { label: "Ship with tracking", value: shipForm },
        ],
        shown,
        "Nothing to ship.",
      ));
    }

    async function load(cursor) {
      const page = await attempt(() => get(base + query({ status: "confirmed", limit: 50, cursor })));
      if (!page) return;
      shown.push(...page.items);
      draw();
      more.replaceChildren(...(page.next_cursor ? [button("Show more", () => load(page.next_cursor), "secondary")] : []));
    }

    container.append(h("p", { class: "hint" }, "Confirmed orders with your products, newest first. A tracking number is optional."),
      list, more);
    await load(undefined);
  };
}

function salesSection(seller) {
  return async (container) => {
    const today = new Date();
    const monthAgo = new Date(today.getTime() - 29 * 86400000);
    const from = h("input", { type: "date", name: "from", value: isoDay(monthAgo), required: true });
    const to = h("input", { type: "date", name: "to", value: isoDay(today), required: true });
    const granularity = h("select", { name: "granularity" },
      ["day", "week", "month"].map((g) => h("option", { value: g }, g)));
    const currency = h("select", { name: "currency" }, h("option", { value: "" }, "most sold"));
    const perCurrency = h("div");
    const report = h("div");
    const base = `/api/sellers/${enc(seller.user_id)}/reports/sales`;
    const known = (await attempt(() => currencies(seller))) || [];
    currency.append(...known.map((c) => h("option", { value: c }, c)));

    // One line per currency the seller sells in: a report's totals are in one currency.
    async function loadTotals() {
      const range = { from: from.value, to: to.value, granularity: "month" };
      const reports = await Promise.all(known.map((c) => get(base + query({ ...range, currency: c })).catch(() => null)));
      perCurrency.replaceChildren(h("div", { class: "card", id: "sales-per-currency" },
        h("h3", {}, "Sales per currency"),
        table(
          [
            { label: "Currency", value: (r) => r.currency },
            { label: "Orders", value: (r) => String(r.totals.orders) },
            { label: "Units", value: (r) => String(r.totals.units) },
            { label: "Revenue", value: (r) => money(r.totals.revenue, r.currency) },
            { label: "Tax", value: (r) => money(r.totals.tax, r.currency) },
          ],
          reports.filter(Boolean),
          "You sell in no currency yet.",
        )));
    }

    async function load() {
      const params = { from: from.value, to: to.value, granularity: granularity.value, currency: currency.value };
      const data = await attempt(() => get(base + query(params)));
      if (!data) return;
      const t = data.totals;
      report.replaceChildren(
        h("div", { class: "card totals" },
          h("div", {}, h("span", {}, "Orders"), String(t.orders)),
          h("div", {}, h("span", {}, "Units"), String(t.units)),
          h("div", {}, h("span", {}, `Revenue (${data.currency})`), t.revenue),
          h("a", { class: "button secondary", id: "csv", href: base + query({ ...params, format: "csv" }), download: "sales.csv" },
            "Download CSV")),
        h("div", { class: "card" },
          h("h3", {}, `Revenue and units per ${data.granularity} (${data.currency})`),
          barLineChart({
            title: `Sales per ${data.granularity}`,
            labels: data.periods.map((p) => p.start.slice(0, 10)),
            bars: { name: "units", values: data.periods.map((p) => p.units) },
            line: { name: `revenue (${data.currency})`, values: data.periods.map((p) => Number(p.revenue)) },
          })),
        h("div", { class: "card" },
          h("h3", {}, "Top products"),
          table(
            [
              { label: "Product", value: (p) => (p.variant ? `${p.name} (${p.variant})` : p.name) },
              { label: "Units", value: (p) => String(p.units) },
              { label: `Revenue (${data.currency})`, value: (p) => p.revenue },
            ],
            data.top_products,
            "No sales in this period.",
          )),
      );
    }

    const controls = form([field("From", from), field("To", to), field("Per", granularity), field("Currency", currency),
      h("button", { type: "submit" }, "Show report")], () => Promise.all([load(), loadTotals()]),
    { class: "card", "aria-label": "Report period" });
    container.append(controls, perCurrency, report);
    await Promise.all([load(), loadTotals()]);
  };
}

startSession({
  title: "seller portal",
  onReady(user) {
    if (user.role !== "seller" && user.role !== "admin") {
      document.getElementById("main").replaceChildren(h("div", { class: "card narrow" },
        h("h2", {}, "Sellers only"),
        h("p", { class: "refusal" }, "This portal is for sellers. Ask an admin to make your account a seller account.")));
      return;
    }
    status("");
    sectionNav({
      sales: { label: "Sales report", render: salesSection(user) },
      products: { label: "My products", render: productsSection(user) },
      orders: { label: "Orders to ship", render: ordersSection(user) },
      // The returns of the seller's lines (an admin here sees all of them).
      returns: { label: "Returns", render: returnsSection() },
    });
  },
});
