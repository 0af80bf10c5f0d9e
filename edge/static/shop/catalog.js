// Browsing: the home page, a category or a search (one listing, refined by the same
// filters the API takes), and a product's page with its variants.
import { attempt, button, field, form, get, h, input, money, post, query, select, status, statusBox } from "../common.js";
import { fresh } from "./session.js";
import { setCartCount } from "./cart.js";
import {
  AVAILABILITY, enc, go, liveRegion, picture, price, productGrid, route, view,
} from "./ui.js";

const PAGE_SIZE = 24;
const SORTS = [["relevance", "Best match"], ["newest", "Newest"], ["price_asc", "Price, low to high"],
  ["price_desc", "Price, high to low"]];
const CURRENCIES = ["AUD", "CAD", "CHF", "DKK", "EUR", "GBP", "JPY", "KWD", "NOK", "PLN", "SEK", "USD"];

let categoryTree = null;

async function categories() {
  if (!categoryTree) categoryTree = (await get("/api/categories")).items || [];
  return categoryTree;
}

function findCategory(nodes, slug) {
  for (const node of nodes) {
    if (node.slug === slug) return node;
    const found = findCategory(node.children || [], slug);
    if (found) return found;
  }
  return null;
}

function categoryLinks(nodes, label) {
  return h("nav", { "aria-label": label, class: "categories" },
    h("ul", {}, nodes.map((c) => h("li", {}, h("a", { href: route(`/category/${enc(c.slug)}`) }, c.name)))));
}

// --- Home ------------------------------------------------------------------------

export async function home(main, { focus }) {
  const section = view(main, "Welcome to Agora", { focus });
  const tree = await attempt(categories);
  if (tree?.length) section.append(h("h3", {}, "Shop by category"), categoryLinks(tree, "Categories"));
  const page = await attempt(() => get(`/api/products${query({ sort: "newest", limit: 12 })}`));
  if (!page) return;
  section.append(h("h3", {}, "New in"),
    page.items.length ? productGrid(page.items) : h("p", { class: "empty" }, "Nothing is for sale yet."));
}

// --- Listing: a category, a search -------------------------------------------------

const FILTERS = ["q", "category", "sort", "in_stock", "currency", "min_price", "max_price"];

function refineForm(params) {
  const sort = select("sort", SORTS, params.sort || "relevance");
  const inStock = h("input", { type: "checkbox", name: "in_stock", checked: params.in_stock === "true" });
  const currency = select("currency", [["", "Any"], ...CURRENCIES.map((c) => [c, c])], params.currency || "");
  const amount = { inputmode: "decimal", pattern: "\\d{1,12}(\\.\\d{1,3})?", size: 8 };
  const min = input("min_price", { ...amount, value: params.min_price || "" });
  const max = input("max_price", { ...amount, value: params.max_price || "" });
  const note = statusBox();
  return h("div", { class: "card refine" }, form([
    field("Sort by", sort),
    field("Currency", currency),
    field("Lowest price", min),
    field("Highest price", max),
    h("label", { class: "check" }, inStock, " In stock only"),
    h("button", { type: "submit", class: "secondary" }, "Apply"),
  ], () => {
    // The API prices in one currency at a time: a price filter needs it.
    if ((min.value || max.value) && !currency.value) {
      status("Choose a currency to filter by price.", "error", note);
      currency.focus();
      return;
    }
    go(params.category && !params.q ? `/category/${enc(params.category)}` : "/search", {
      q: params.q, category: params.category, sort: sort.value === "relevance" ? "" : sort.value,
      in_stock: inStock.checked ? "true" : "", currency: currency.value, min_price: min.value, max_price: max.value,
    });
  }, { "aria-label": "Refine the results" }), note);
}

function facetLinks(facets, params, tree) {
  const name = (slug) => findCategory(tree, slug)?.name || slug;
  const here = (extra) => route("/search", { ...params, cursor: "", ...extra });
  const parts = [];
  if (facets.categories.length > 1 || (facets.categories.length === 1 && !params.category)) {
    parts.push(h("div", {}, h("h3", {}, "Categories"), h("ul", { class: "facets" },
      facets.categories.map((c) => h("li", {}, h("a", { href: here({ category: c.category }) }, `${name(c.category)} (${c.count})`))))));
  }
  if (facets.price_bands.length) {
    parts.push(h("div", {}, h("h3", {}, "Price"), h("ul", { class: "facets" },
      facets.price_bands.map((b) => h("li", {}, h("a", {
        href: here({ currency: b.currency, min_price: b.min, max_price: b.max || "" }),
      }, `${b.max ? `${money(b.min, b.currency)} – ${money(b.max, b.currency)}` : `${money(b.min, b.currency)} and up`} (${b.count})`))))));
  }
  return parts.length ? h("aside", { class: "card facets-box", "aria-label": "Narrow the results" }, parts) : null;
}

export async function listing(main, { params, focus }) {
  const wanted = Object.fromEntries(FILTERS.map((k) => [k, params.get(k) || ""]));
  const tree = (await attempt(categories)) || [];
  const category = wanted.category ? findCategory(tree, wanted.category) : null;
  let title = "All products";
  if (wanted.q) title = `Results for “${wanted.q}”`;
  else if (category) title = category.name;
  else if (wanted.category) title = wanted.category;
  const section = view(main, title, { focus });
  if (wanted.q && category) section.append(h("p", {}, `In ${category.name}.`));
  if (category?.children?.length) section.append(categoryLinks(category.children, `In ${category.name}`));
  const summary = liveRegion({ class: "hint" });
  const results = h("div");
  const more = h("div", { class: "actions" });
  section.append(refineForm(wanted), summary, results, more);

  const found = [];
  async function load(cursor) {
    const page = await attempt(() => get(`/api/products${query({ ...wanted, limit: PAGE_SIZE, cursor })}`));
    if (!page) return;
    if (page.facets) {
      const { total, exact } = page.facets;
      summary.textContent = total ? `${exact ? "" : "About "}${total} product${total === 1 ? "" : "s"}.`
        : "No products match. Check the spelling, or try fewer words or filters.";
      const facets = facetLinks(page.facets, wanted, tree);
      if (facets) section.insertBefore(facets, results);
    }
    found.push(...page.items);
    results.replaceChildren(found.length ? productGrid(found) : "");
    more.replaceChildren(page.next_cursor ? button("Show more products", () => load(page.next_cursor), "secondary") : "");
  }
  await load(undefined);
}

// --- Product ---------------------------------------------------------------------

// The variant with exactly these option values, if it is sold.
function variantOf(product, chosen) {
  return product.variants.find((v) => product.options.every((o) => v.options[o.name] === chosen[o.name]));
}

function firstChoice(product) {
  const sold = product.variants.find((v) => v.availability !== "out_of_stock") || product.variants[0];
  return { ...(sold?.options || {}) };
}

export async function product(main, { match, focus }) {
  const productId = decodeURIComponent(match[1]);
  const loaded = await attempt(() => get(`/api/products/${enc(productId)}`));
  if (!loaded) {
    view(main, "Product not found", { focus }).append(h("p", {}, "This product is not for sale (any more). ",
      h("a", { href: "/#/" }, "Back to the shop")));
    return;
  }
  const p = loaded;
  const category = findCategory((await attempt(categories)) || [], p.category);
  const section = view(main, p.name, { focus });
  const chosen = firstChoice(p);
  const priceLine = h("p", { class: "price big" });
  const availability = h("p", { class: "availability" });
  const sku = h("p", { class: "hint" });
  const quantity = input("quantity", { type: "number", min: 1, max: 99, step: 1, value: 1, required: true, size: 4 });
  const add = h("button", { type: "submit" }, "Add to cart");
  const note = liveRegion({ class: "added" });
  const errors = statusBox();

  function showVariant() {
    const v = variantOf(p, chosen);
    if (!v) {
      priceLine.replaceChildren(price(p));
      availability.textContent = "This combination is not sold.";
      availability.className = "availability out_of_stock";
      sku.textContent = "";
      add.disabled = true;
      return;
    }
    const was = money(v.compare_at_price, p.currency);
    priceLine.replaceChildren(money(v.price, p.currency), ...(was ? [" ", h("del", { "aria-label": `was ${was}` }, was)] : []));
    availability.textContent = AVAILABILITY[v.availability] || "";
    availability.className = `availability ${v.availability}`;
    sku.textContent = v.sku ? `SKU ${v.sku}` : "";
    add.disabled = v.availability === "out_of_stock";
  }

  const choices = p.options.map((o) => {
    const control = select(`option_${o.name}`, o.values.map((value) => [value, value]), chosen[o.name]);
    control.addEventListener("change", () => {
      chosen[o.name] = control.value;
      note.textContent = "";
      showVariant();
    });
    return field(o.name, control);
  });

  async function addToCart() {
    const v = variantOf(p, chosen);
    if (!v) return;
    status("", "info", errors);
    note.textContent = "";
    await fresh();
    const body = { product_id: p.product_id, quantity: Number(quantity.value) };
    if (p.options.length) body.variant_id = v.variant_id;
    const cart = await attempt(() => post("/api/cart/items", body), undefined, errors);
    if (!cart) return;
    setCartCount(cart);
    const what = `${p.name}${v.label ? ` (${v.label})` : ""}`;
    note.replaceChildren(`Added ${what} to your cart, quantity ${body.quantity}. `,
      h("a", { href: route("/cart") }, "View your cart"));
  }

  const gallery = p.images.length ? p.images : [null];
  section.append(
    h("p", { class: "crumbs" }, h("a", { href: route(`/category/${enc(p.category)}`) }, `More in ${category?.name || p.category}`)),
    h("div", { class: "product-page" },
      h("div", { class: "gallery" }, gallery.map((image) => picture(image, p.name))),
      h("div", { class: "buy card" },
        priceLine, availability,
        form([...choices, field("Quantity", quantity), add], addToCart, { "aria-label": `Buy ${p.name}` }),
        sku, note, errors)),
    h("h3", {}, "Description"),
    h("p", { class: "description" }, p.description || "No description."),
  );
  showVariant();
}
