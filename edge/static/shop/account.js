// The shopper's account: signing in and up, their order history, their profile with
// the delivery address the checkout starts from and their notification preferences.
import { attempt, button, field, form, get, h, money, put, query, statusBox, table, when } from "../common.js";
import { addressForm } from "./address.js";
import { refreshCartCount } from "./cart.js";
import { register, session, signIn, updateUser } from "./session.js";
import { enc, go, orderLink, route, view } from "./ui.js";

// Where to go after signing in: a view of the shop (`/checkout`), never another site.
function nextRoute(params) {
  const next = params.get("next") || "/";
  return next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

function credentials(autocomplete) {
  return {
    email: h("input", { type: "email", name: "email", autocomplete: "username", required: true, maxlength: 320 }),
    password: h("input", {
      type: "password", name: "password", autocomplete, required: true, minlength: autocomplete === "new-password" ? 8 : undefined,
    }),
  };
}

// The sign-in form; `done()` runs once signed in (the guest cart merged into the member's).
export function signInForm(done) {
  const { email, password } = credentials("current-password");
  const note = statusBox();
  const el = h("div", { class: "card narrow" }, form([
    field("Email", email),
    field("Password", password),
    h("button", { type: "submit" }, "Sign in"),
  ], async () => {
    if (!await attempt(() => signIn(email.value, password.value), undefined, note)) return;
    await refreshCartCount();
    done();
  }, { class: "stack", "aria-label": "Sign in" }), note);
  return el;
}

export function signInView(main, { params, focus }) {
  const section = view(main, "Sign in", { focus });
  const next = nextRoute(params);
  section.append(signInForm(() => go(next)), h("p", { class: "narrow-text" }, "New here? ",
    h("a", { href: route("/register", { next }) }, "Create an account")));
}

export function registerView(main, { params, focus }) {
  const section = view(main, "Create an account", { focus });
  const next = nextRoute(params);
  const { email, password } = credentials("new-password");
  const username = h("input", {
    name: "username", autocomplete: "nickname", required: true, minlength: 3, maxlength: 32, pattern: "[A-Za-z0-9_.\\-]+",
    "aria-describedby": "username-hint",
  });
  const note = statusBox();
  section.append(h("div", { class: "card narrow" }, form([
    field("Email", email),
    field("Username", username),
    h("p", { id: "username-hint", class: "hint" }, "3 to 32 letters, digits, dots, dashes or underscores."),
    field("Password (at least 8 characters)", password),
    h("button", { type: "submit" }, "Create account"),
  ], async () => {
    const user = await attempt(
      () => register({ email: email.value.trim(), username: username.value.trim(), password: password.value }), undefined, note,
    );
    if (!user) return;
    await refreshCartCount();
    go(next);
  }, { class: "stack", "aria-label": "Create an account" }), note),
  h("p", { class: "narrow-text" }, "Have an account? ", h("a", { href: route("/signin", { next }) }, "Sign in")));
}

// A view only for a signed-in shopper: the others are asked to sign in, and come back.
export function signedIn(section, here) {
  if (session.user) return true;
  section.append(h("p", {}, "Please sign in first. ",
    h("a", { href: route("/signin", { next: here }) }, "Sign in"), " or ",
    h("a", { href: route("/register", { next: here }) }, "create an account"), "."));
  return false;
}

// --- Order history ---------------------------------------------------------------

const STATUS_WORDS = {
  pending: "Being processed", confirmed: "Confirmed", shipped: "Shipped", delivered: "Delivered", cancelled: "Cancelled",
};

export function statusWords(status) {
  return STATUS_WORDS[status] || status;
}

export async function ordersView(main, { focus }) {
  const section = view(main, "Your orders", { focus });
  if (!signedIn(section, "/orders")) return;
  const list = h("div");
  const more = h("div", { class: "actions" });
  section.append(list, more);
  const orders = [];
  async function load(cursor) {
    const page = await attempt(() => get(`/api/orders/user/${enc(session.user.user_id)}${query({ limit: 20, cursor })}`));
    if (!page) return;
    orders.push(...page.items);
    list.replaceChildren(table(
      [
        {
          label: "Order",
          value: (o) => h("a", { href: orderLink(o.order_id), "aria-label": `Order ${o.order_id.slice(0, 8)}, placed ${when(o.created_at)}` },
            o.order_id.slice(0, 8)),
        },
        { label: "Placed", value: (o) => when(o.created_at) },
        { label: "Items", value: (o) => o.items.map((l) => `${l.quantity} × ${l.name || "item"}`).join(", ") },
        { label: "Status", value: (o) => h("span", { class: `badge ${o.status}` }, statusWords(o.status)) },
        { label: "Total", value: (o) => money(o.total_amount, o.currency) },
      ],
      orders,
      "You have not ordered anything yet.",
    ));
    more.replaceChildren(page.next_cursor ? button("Show older orders", () => load(page.next_cursor), "secondary") : "");
  }
  await load(undefined);
}

// --- Profile ---------------------------------------------------------------------

const PREFERENCES = [
  ["marketing_email", "News and offers by email"],
  ["marketing_sms", "News and offers by SMS"],
  ["sms_orders", "Order updates by SMS too (needs a phone number)"],
  ["sms_security", "Security notices by SMS too (needs a phone number)"],
];

async function preferencesCard(user) {
  const path = `/api/users/${enc(user.user_id)}/notification-preferences`;
  const current = await attempt(() => get(path));
  if (!current) return null;
  const note = statusBox();
  const boxes = PREFERENCES.map(([name, label]) => [name, h("input", {
    type: "checkbox", name, checked: Boolean(current.preferences[name]),
  }), label]);
  return h("div", { class: "card" }, form([
    h("fieldset", { class: "wide" },
      h("legend", {}, "Notifications"),
      h("p", { class: "hint" }, "Emails about your orders and your account's security are always sent."),
      boxes.map(([, box, label]) => h("label", { class: "choice" }, box, ` ${label}`))),
    h("button", { type: "submit" }, "Save preferences"),
  ], async () => {
    const body = Object.fromEntries(boxes.map(([name, box]) => [name, box.checked]));
    await attempt(() => put(path, body), "Preferences saved.", note);
  }, { "aria-label": "Notification preferences" }), note);
}

function addressCard(user) {
  const address = addressForm(user.address);
  const phone = h("input", { type: "tel", name: "phone", autocomplete: "tel", value: user.phone || "", maxlength: 20 });
  const note = statusBox();
  return h("div", { class: "card" }, form([
    h("h3", { class: "wide" }, "Delivery address"),
    ...address.controls,
    field("Phone (e.g. +14155552671)", phone),
    h("button", { type: "submit" }, "Save address"),
  ], async () => {
    const body = { address: address.value(), phone: phone.value.trim() || null };
    const saved = await attempt(() => put(`/api/users/${enc(user.user_id)}`, body), "Address saved.", note);
    if (saved) updateUser(saved);
  }, { "aria-label": "Delivery address" }), note);
}

export async function profileView(main, { focus }) {
  const section = view(main, "Your profile", { focus });
  if (!signedIn(section, "/profile")) return;
  const user = session.user;
  section.append(h("div", { class: "card" },
    h("h3", {}, "Account"),
    h("p", {}, `${user.username} · ${user.email}`),
    h("p", { class: "hint" }, `Member since ${new Date(user.created_at).toLocaleDateString()}.`)));
  const preferences = await preferencesCard(user);
  if (preferences) section.append(preferences);
  section.append(addressCard(user));
}
