// The storefront: the header (search with suggestions, the cart, the account) and a
// router over the URL's fragment (`/#/product/<id>`), plus an order's own address
// (`/orders/<id>`), which the server answers with this same page.
import { attempt, get, h, query, status } from "../common.js";
import { ordersView, profileView, registerView, signInView } from "./account.js";
import { combobox } from "./autocomplete.js";
import { home, listing, product } from "./catalog.js";
import { cartView, checkoutView, onCartCount, refreshCartCount } from "./cart.js";
import { orderView } from "./order.js";
import { onSessionChange, resume, session, signOut } from "./session.js";
import { SHOW_EVENT, go, route } from "./ui.js";

const ORDER_PATH = /^\/orders\/([0-9a-fA-F-]{36})$/;

// A category is a listing with its filter set.
function categoryView(main, ctx) {
  const params = new URLSearchParams(ctx.params);
  params.set("category", decodeURIComponent(ctx.match[1]));
  return listing(main, { ...ctx, params });
}

const ROUTES = [
  [/^\/$/, home],
  [/^\/category\/([^/]+)$/, categoryView],
  [/^\/search$/, listing],
  [/^\/product\/([^/]+)$/, product],
  [/^\/cart$/, cartView],
  [/^\/checkout$/, checkoutView],
  [/^\/signin$/, signInView],
  [/^\/register$/, registerView],
  [/^\/orders$/, ordersView],
  [/^\/profile$/, profileView],
];

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const searchForm = document.getElementById("search");
const searchBox = document.getElementById("q");

// The order page's event stream: one at a time, closed when the shopper leaves.
let source = null;
const stream = {
  set(next) {
    if (source && source !== next) source.close();
    source = next;
  },
  owns: (candidate) => source === candidate,
  close() {
    source?.close();
    source = null;
  },
};

// What the URL asks for: [path, params, handler, match].
function resolve() {
  const order = location.pathname.match(ORDER_PATH);
  if (order) return ["/orders/", new URLSearchParams(), orderView, order];
  const fragment = location.hash.startsWith("#/") ? location.hash.slice(1) : "/";
  const [path, search = ""] = fragment.split(/\?(.*)/s);
  for (const [pattern, handler] of ROUTES) {
    const match = path.match(pattern);
    if (match) return [path, new URLSearchParams(search), handler, match];
  }
  return ["/", new URLSearchParams(), home, ["/"]];
}

// --- Header ----------------------------------------------------------------------

const cartCount = h("span", { class: "count" }, "");
onCartCount((count) => {
  cartCount.textContent = count ? ` (${count})` : "";
});

function drawNav(current) {
  const link = (path, label, extra) => h("a", {
    href: route(path), "aria-current": current === path ? "page" : undefined,
  }, label, extra);
  const items = [link("/cart", "Cart", cartCount)];
  if (session.user) {
    items.push(link("/orders", "Orders"), link("/profile", "Profile"),
      h("button", { type: "button", class: "secondary", onclick: leave }, "Sign out"));
  } else {
    items.push(link("/signin", "Sign in"), link("/register", "Create account"));
  }
  nav.replaceChildren(h("ul", {}, items.map((item) => h("li", {}, item))));
}

async function leave() {
  await attempt(signOut);
  await refreshCartCount();
  go("/");
}

const suggestions = combobox(searchBox, document.getElementById("suggestions"), document.getElementById("suggestions-count"), {
  suggest: async (q) => (await get(`/api/products/suggest${query({ q, limit: 8 })}`)).items
    .map((s) => ({ label: s.name, value: s.product_id })),
  choose: (productId) => go(`/product/${encodeURIComponent(productId)}`),
});

searchForm.addEventListener("submit", (event) => {
  event.preventDefault();
  suggestions.close();
  const q = searchBox.value.trim();
  if (!q) {
    searchBox.focus();
    return;
  }
  const target = route("/search", { q });
  if (location.pathname === "/" && location.hash === target.slice(1)) show(true);  // the same search again
  else go("/search", { q });
});

// The skip link moves the focus without touching the fragment the router reads.
document.getElementById("skip").addEventListener("click", (event) => {
  event.preventDefault();
  (main.querySelector("h2") || main).focus();
});

// --- Router ----------------------------------------------------------------------

let shown = null;

function show(moved) {
  shown = location.pathname + location.hash;
  stream.close();
  status("");
  const [path, params, handler, match] = resolve();
  drawNav(path);
  searchBox.value = path === "/search" ? params.get("q") || "" : "";
  window.scrollTo(0, 0);
  // Moving between views moves the keyboard focus (and a screen reader) to the new heading.
  return handler(main, { params, match, focus: moved, stream });
}

// A fragment change fires both popstate and hashchange: the view is drawn once. A
// fragment that is no route (an in-page anchor) leaves the view as it is.
function navigated() {
  const fragment = location.hash;
  if (location.pathname === "/" && fragment && !fragment.startsWith("#/")) return;
  if (location.pathname + fragment !== shown) show(true);
}
window.addEventListener("hashchange", navigated);
window.addEventListener("popstate", navigated);
window.addEventListener(SHOW_EVENT, () => show(true));
onSessionChange(() => drawNav(resolve()[0]));

await resume();
show(false);
refreshCartCount();
