// The cart (a guest's or a member's: the API tells them apart by the session and the
// guest-cart cookie) and the checkout.
import {
  api, attempt, button, del, form, get, h, input, money, put, query, status, statusBox, table,
} from "../common.js";
import { addressForm } from "./address.js";
import { fresh, session } from "./session.js";
import { enc, liveRegion, openOrder, productLink, route, view } from "./ui.js";

// The payment sandbox's test cards (sandboxes/payment_sandbox.py): Agora never sees a
// card number, only a provider's token.
const TEST_CARDS = [
  ["tok_visa", "Visa test card (approved)"],
  ["tok_mastercard", "Mastercard test card (approved)"],
  ["tok_chargeDeclined", "Test card that is declined"],
];

const countListeners = [];

export function onCartCount(listener) {
  countListeners.push(listener);
}

export function setCartCount(cart) {
  const count = (cart?.items || []).reduce((sum, line) => sum + line.quantity, 0);
  for (const listener of countListeners) listener(count);
}

export async function loadCart() {
  await fresh();
  const cart = await get("/api/cart");
  setCartCount(cart);
  return cart;
}

export async function refreshCartCount() {
  try {
    await loadCart();
  } catch {
    setCartCount(null);  // the count is a convenience; the cart page says what failed
  }
}

// "12.50" × 3 -> "37.50", in whole minor units: no float touches a price.
function times(amount, quantity) {
  const [whole, fraction = ""] = amount.split(".");
  const digits = (BigInt(whole + fraction) * BigInt(quantity)).toString().padStart(fraction.length + 1, "0");
  return fraction ? `${digits.slice(0, -fraction.length)}.${digits.slice(-fraction.length)}` : digits;
}

const lineName = (line) => (line.variant ? `${line.name} (${line.variant})` : line.name);
const itemPath = (line) => `/api/cart/items/${enc(line.product_id)}${query({
  variant_id: line.variant_id === line.product_id ? "" : line.variant_id,
})}`;

function summaryTable(cart) {
  return table(
    [
      { label: "Product", value: (l) => h("a", { href: productLink(l.product_id) }, l.name) },
      { label: "Options", value: (l) => l.variant || "—" },
      { label: "Quantity", value: (l) => String(l.quantity) },
      { label: "Price", value: (l) => money(l.unit_price, cart.currency) },
    ],
    cart.items,
  );
}

// --- Cart ------------------------------------------------------------------------

export async function cartView(main, { focus }) {
  const section = view(main, "Your cart", { focus });
  const body = h("div");
  const note = statusBox();
  const news = liveRegion();
  section.append(news, note, body);

  // `focusOn`: a selector to give the keyboard focus back to after the redraw.
  function show(cart, focusOn) {
    setCartCount(cart);
    if (!cart.items.length) {
      body.replaceChildren(h("p", { class: "empty" }, "Your cart is empty. ", h("a", { href: "/#/" }, "Continue shopping")));
      if (focusOn) section.querySelector("h2").focus();  // the last line was removed
      return;
    }
    const gone = cart.unavailable?.length
      ? [h("p", { class: "hint" }, `${cart.unavailable.length} item(s) in your cart are no longer sold: they are left out.`)] : [];
    body.replaceChildren(
      ...gone,
      table(
        [
          { label: "Product", value: (l) => h("a", { href: productLink(l.product_id) }, l.name) },
          { label: "Options", value: (l) => l.variant || "—" },
          { label: "Price", value: (l) => money(l.unit_price, cart.currency) },
          {
            label: "Quantity",
            value: (l) => {
              const quantity = input("quantity", {
                type: "number", min: 1, max: 99, step: 1, value: l.quantity, required: true, size: 3,
                "aria-label": `Quantity of ${lineName(l)}`,
              });
              return form([quantity, h("button", {
                type: "submit", class: "secondary", "data-update": l.variant_id, "aria-label": `Update quantity of ${lineName(l)}`,
              }, "Update")], () => change(l, Number(quantity.value)), { class: "inline" });
            },
          },
          { label: "Total", value: (l) => money(times(l.unit_price, l.quantity), cart.currency) },
          {
            label: "",
            value: (l) => button("Remove", () => remove(l), "danger", { "aria-label": `Remove ${lineName(l)}` }),
          },
        ],
        cart.items,
      ),
      h("p", { class: "total" }, "Total ", h("strong", {}, money(cart.total, cart.currency))),
      h("p", { class: "hint" }, "Shipping and tax are added at the checkout."),
      h("div", { class: "actions" },
        h("a", { class: "button", href: route("/checkout") }, "Check out"),
        h("a", { class: "button secondary", href: "/#/" }, "Continue shopping")),
    );
    if (focusOn) body.querySelector(focusOn)?.focus();
  }

  async function change(line, quantity) {
    await fresh();
    const cart = await attempt(() => put(itemPath(line), { quantity }), undefined, note);
    if (!cart) return;
    news.textContent = `${lineName(line)}: quantity ${quantity}.`;
    show(cart, `[data-update="${CSS.escape(line.variant_id)}"]`);
  }

  async function remove(line) {
    await fresh();
    const cart = await attempt(() => del(itemPath(line)), undefined, note);
    if (!cart) return;
    news.textContent = `${lineName(line)} removed from your cart.`;
    show(cart, "button.danger");
  }

  const cart = await attempt(loadCart, undefined, note);
  if (cart) show(cart);
}

// --- Checkout --------------------------------------------------------------------

function signInFirst(section) {
  const next = { next: "/checkout" };
  section.append(
    h("p", {}, "Sign in or create an account to place your order. Your cart comes with you."),
    h("div", { class: "actions" },
      h("a", { class: "button", href: route("/signin", next) }, "Sign in"),
      h("a", { class: "button secondary", href: route("/register", next) }, "Create an account")),
  );
}

function shippingChoices(cart, country, fieldset) {
  let chosen = null;
  async function load() {
    chosen = null;
    if (!country.value) {
      fieldset.replaceChildren(h("legend", {}, "Delivery"), h("p", { class: "hint" }, "Choose a country first."));
      return;
    }
    const list = await attempt(() => get(`/api/shipping-methods${query({
      country: country.value, currency: cart.currency, subtotal: cart.total,
    })}`));
    const methods = list?.items || [];
    if (!methods.length) {
      fieldset.replaceChildren(h("legend", {}, "Delivery"),
        h("p", { class: "hint" }, "Delivery to this country is included: no shipping is charged."));
      return;
    }
    [chosen] = methods;  // the cheapest
    fieldset.replaceChildren(h("legend", {}, "Delivery"), ...methods.map((m, i) => h("label", { class: "choice" },
      h("input", {
        type: "radio", name: "shipping_method", value: m.method_id, checked: i === 0, required: true,
        onchange: () => { chosen = m; },
      }),
      ` ${m.name}: ${Number(m.price) ? money(m.price, cart.currency) : "free"}, ${m.min_days}–${m.max_days} days`)));
  }
  country.addEventListener("change", load);
  return { load, method: () => chosen };
}

export async function checkoutView(main, { focus }) {
  const section = view(main, "Checkout", { focus });
  if (!session.user) {
    signInFirst(section);
    return;
  }
  const note = statusBox();
  section.append(note);
  const cart = await attempt(loadCart, undefined, note);
  if (!cart) return;
  if (!cart.items.length) {
    section.append(h("p", { class: "empty" }, "Your cart is empty. ", h("a", { href: "/#/" }, "Continue shopping")));
    return;
  }
  const address = addressForm(session.user.address, { withContact: true });
  const delivery = h("fieldset", { class: "wide" });
  const shipping = shippingChoices(cart, address.country, delivery);
  const card = h("select", { name: "payment_token" }, TEST_CARDS.map(([token, label]) => h("option", { value: token }, label)));
  const voucher = h("input", { name: "voucher_code", autocomplete: "off", maxlength: 32, spellcheck: "false" });
  const place = h("button", { type: "submit" }, "Place order");
  // One key per distinct order: a second click (or a retry after a lost answer) places
  // nothing twice, and a changed address is a new order, not a conflicting key.
  const keys = new Map();

  async function placeOrder() {
    const body = { shipping_address: address.value(), payment_token: card.value };
    const method = shipping.method();
    if (method) body.shipping_method_id = method.method_id;
    const code = voucher.value.trim();
    if (code) body.voucher_code = code;
    const text = JSON.stringify(body);
    if (!keys.has(text)) keys.set(text, crypto.randomUUID());
    place.disabled = true;
    status("Placing your order…", "info", note);
    await fresh();
    const order = await attempt(() => api("POST", "/api/orders", body, { "Idempotency-Key": keys.get(text) }), undefined, note);
    place.disabled = false;
    if (!order) return;
    openOrder(order.order_id);
  }

  section.append(
    h("div", { class: "card" }, h("h3", {}, "Your order"), summaryTable(cart),
      h("p", { class: "total" }, "Items ", h("strong", {}, money(cart.total, cart.currency))),
      h("p", { class: "hint" },
        "Shipping is added as chosen below; a discount code and tax, where they apply, when the order is placed.")),
    h("div", { class: "card" }, form([
      h("h3", { class: "wide" }, "Delivery address"),
      ...address.controls,
      delivery,
      h("label", { class: "field wide" }, h("span", {}, "Discount code (optional)"), voucher),
      h("fieldset", { class: "wide" }, h("legend", {}, "Payment"),
        h("p", { class: "hint" }, "This shop takes test payments from the payment sandbox: choose a test card."),
        h("label", { class: "field" }, h("span", {}, "Test card"), card)),
      place,
    ], placeOrder, { "aria-label": "Delivery and payment" })),
  );
  await shipping.load();
}
