// The seller portal: the seller's own products with their stock, each one's images and
// variants to edit, and the sales report.
import { attempt, barLineChart, field, get, h, query, sectionNav, startSession, table } from "../common.js";
import { productEditor } from "../products.js";

const enc = encodeURIComponent;

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

function productsSection(seller) {
  // `productId`: that product's images and variants (#products/<id>) instead of the list.
  return async (container, productId) => {
    if (productId) {
      await productEditor(container, productId, { user: seller, back: "#products" });
      return;
    }
    const page = await attempt(() => get(`/api/products${query({ seller_id: seller.user_id, limit: 100 })}`));
    if (!page) return;
    const stock = new Map(await Promise.all(page.items.map(async (p) => {
      try {
        if (p.options && p.options.length) {
          // Variants: their counts are on the product page, for its seller.
          return [p.product_id, { variants: (await get(`/api/products/${enc(p.product_id)}`)).variants }];
        }
        return [p.product_id, await get(`/api/inventory/${enc(p.product_id)}`)];
      } catch {
        return [p.product_id, null];
      }
    })));
    const level = (p) => {
      const s = stock.get(p.product_id);
      if (!s) return "—";
      if (s.variants) {
        const total = s.variants.reduce((sum, v) => sum + (v.stock || 0), 0);
        const out = s.variants.filter((v) => v.availability === "out_of_stock").length;
        return `${total} in ${s.variants.length} variants` + (out ? ` (${out} sold out)` : "");
      }
      const low = s.low_stock_threshold != null && s.stock <= s.low_stock_threshold;
      return low ? `${s.stock} (low)` : String(s.stock);
    };
    container.append(table(
      [
        { label: "Name", value: (p) => p.name },
        { label: "Category", value: (p) => p.category },
        { label: "Price", value: (p) => `${p.price} ${p.currency}` },
        { label: "In stock", value: level },
        { label: "Updated", value: (p) => new Date(p.updated_at).toLocaleDateString() },
        {
          label: "",
          value: (p) => h("a", { class: "button secondary", href: `#products/${enc(p.product_id)}`, "aria-label": `Edit ${p.name}` },
            "Edit"),
        },
      ],
      page.items,
      "You have no products yet.",
    ));
  };
}

function salesSection(seller) {
  return (container) => {
    const today = new Date();
    const monthAgo = new Date(today.getTime() - 29 * 86400000);
    const from = h("input", { type: "date", name: "from", value: isoDay(monthAgo), required: true });
    const to = h("input", { type: "date", name: "to", value: isoDay(today), required: true });
    const granularity = h("select", { name: "granularity" },
      ["day", "week", "month"].map((g) => h("option", { value: g }, g)));
    const report = h("div");
    const base = `/api/sellers/${enc(seller.user_id)}/reports/sales`;

    async function load() {
      const params = { from: from.value, to: to.value, granularity: granularity.value };
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
          h("h3", {}, `Revenue and units per ${data.granularity}`),
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

    const form = h("form", { class: "card", "aria-label": "Report period" },
      field("From", from), field("To", to), field("Per", granularity), h("button", { type: "submit" }, "Show report"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      load();
    });
    container.append(form, report);
    load();
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
    sectionNav({
      sales: { label: "Sales report", render: salesSection(user) },
      products: { label: "My products", render: productsSection(user) },
    });
  },
});
