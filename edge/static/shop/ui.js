// What the storefront's views share: a view's heading and title, links between views,
// product cards and images, availability in words.
import { h, money } from "../common.js";

export const enc = encodeURIComponent;

export const AVAILABILITY = { in_stock: "In stock", low: "Only a few left", out_of_stock: "Out of stock" };

// `#/search?q=lamp` from ("/search", {q: "lamp"}): empty values are left out.
export function route(path, params = {}) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "" && value !== false) q.set(key, value);
  }
  const s = q.toString();
  return `/#${path}${s ? `?${s}` : ""}`;
}

export function go(path, params) {
  const target = route(path, params);
  if (location.pathname === "/") location.hash = target.slice(2);
  else location.assign(target);  // from an order's own address (/orders/{id})
}

export const productLink = (productId) => route(`/product/${enc(productId)}`);
export const orderLink = (orderId) => `/orders/${enc(orderId)}`;

// Asks the router to draw what the URL says now: the same view again (signed in
// since), or a URL that history.pushState set.
export const SHOW_EVENT = "shop:show";

export function showAgain() {
  dispatchEvent(new Event(SHOW_EVENT));
}

// An order's page at its own address (the one its emails link to), without a reload.
export function openOrder(orderId) {
  history.pushState(null, "", orderLink(orderId));
  showAgain();
}

// A view: its heading (focused when the shopper navigated to it, so the keyboard and a
// screen reader start there) and the document's title.
export function view(main, title, { focus }) {
  const heading = h("h2", { id: "view-title", tabindex: "-1" }, title);
  const section = h("section", { "aria-labelledby": "view-title" }, heading);
  main.replaceChildren(section);
  document.title = `${title} · Agora`;
  if (focus) heading.focus();
  return section;
}

// A polite live region of a view's own (for news that is not an error).
export function liveRegion(attrs = {}) {
  return h("p", { role: "status", "aria-live": "polite", ...attrs });
}

// The page's policy allows images from this origin only (`img-src 'self' data:`, see
// edge/routes/pages.py), and product images are hosted elsewhere: the browser would
// refuse them (and report a violation). Such an image is shown as a placeholder with
// its alt text, which says what it shows.
function sameOrigin(url) {
  try {
    return new URL(url, location.href).origin === location.origin;
  } catch {
    return false;
  }
}

export function picture(image, name, { decorative = false } = {}) {
  const alt = image?.alt || (image ? `Image of ${name}` : "No image");
  if (image && sameOrigin(image.url)) return h("img", { src: image.url, alt: decorative ? "" : alt, class: "picture" });
  return h("div", decorative ? { class: "picture placeholder", "aria-hidden": "true" }
    : { class: "picture placeholder", role: "img", "aria-label": alt }, h("span", {}, alt));
}

export function price(product) {
  const prices = new Set((product.variants || []).map((v) => v.price));
  const amount = money(product.price, product.currency);
  return prices.size > 1 ? `from ${amount}` : amount;
}

export function productCard(product) {
  const main = product.images?.[0] || (product.image_url ? { url: product.image_url, alt: "" } : null);
  return h("li", { class: "product-card" },
    picture(main, product.name, { decorative: true }),
    h("h3", {}, h("a", { href: productLink(product.product_id) }, product.name)),
    h("p", { class: "price" }, price(product)),
    h("p", { class: `availability ${product.availability}` }, AVAILABILITY[product.availability] || ""));
}

export function productGrid(products) {
  return h("ul", { class: "product-grid", "aria-label": "Products" }, products.map(productCard));
}
