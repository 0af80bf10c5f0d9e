// An order's page (`/orders/{id}`, the address its emails link to): what was bought,
// where it goes, and its status, followed live over Server-Sent Events
// (`GET /api/orders/{id}/events`) so that "confirmed" appears without a reload.
import { attempt, button, get, h, money, put, statusBox, table, when } from "../common.js";
import { signInForm, statusWords } from "./account.js";
import { countryName } from "./address.js";
import { refreshCartCount } from "./cart.js";
import { fresh, session } from "./session.js";
import { enc, productLink, showAgain, view } from "./ui.js";
import { memberReturns } from "../returns.js";

const FINAL = ["delivered", "cancelled"];
const RETRY_MS = 2000;
const MAX_RETRIES = 5;
const REASONS = {
  out_of_stock: "an item was no longer in stock",
  payment_declined: "the payment was declined",
  payment_timeout: "the payment was not made in time",
  customer_request: "you cancelled it",
  admin: "the shop cancelled it",
};
const PAYMENT_WORDS = {
  none: "not taken yet", authorized: "authorized", captured: "taken", voided: "released", refunded: "refunded",
  failed: "failed",
};

function explain(order) {
  switch (order.status) {
    case "pending":
      return order.payment_status === "failed"
        ? `The payment failed. ${order.payment_due_by ? `The items stay reserved until ${when(order.payment_due_by)}.` : ""}`
        : "We are reserving your items and authorizing the payment. This page updates by itself.";
    case "confirmed":
      return "Your order is confirmed: the items are yours and the payment is taken. We will tell you when it ships.";
    case "shipped":
      return order.tracking?.number
        ? `On its way${order.tracking.carrier ? ` with ${order.tracking.carrier}` : ""}: tracking number ${order.tracking.number}.`
        : "On its way.";
    case "delivered":
      return "Delivered. Enjoy!";
    case "cancelled":
      return `Cancelled: ${REASONS[order.cancel_reason] || "no reason given"}.`;
    default:
      return "";
  }
}

function totals(order) {
  const rows = [["Items", order.subtotal]];
  if (order.voucher_code) rows.push([`Discount (${order.voucher_code})`, `-${order.discount_total}`]);
  if (order.shipping) rows.push([`Shipping: ${order.shipping.name} (${order.shipping.min_days}–${order.shipping.max_days} days)`, order.shipping.price]);
  for (const tax of order.taxes || []) rows.push([`${tax.name} ${tax.rate}%${order.prices_include_tax ? " (included)" : ""}`, tax.amount]);
  rows.push(["Total", order.total_amount]);
  return h("dl", { class: "totals-list" },
    rows.flatMap(([label, amount]) => [h("dt", {}, label), h("dd", {}, money(amount, order.currency))]));
}

function addressBlock(address) {
  if (!address) return h("p", { class: "hint" }, "No address kept.");
  const lines = [address.recipient, address.line1, address.line2,
    [address.postal_code, address.city].join(" "), address.region, countryName(address.country), address.phone];
  return h("address", {}, lines.filter(Boolean).map((line) => h("span", { class: "line" }, line)));
}

// `stream` is the page's one open event stream: the router closes it on leaving.
export async function orderView(main, { match, focus, stream }) {
  const orderId = decodeURIComponent(match[1]);
  const section = view(main, `Order ${orderId.slice(0, 8)}`, { focus });
  if (!session.user) {
    section.append(h("p", {}, "Sign in to see this order."));
    section.append(signInForm(showAgain));
    return;
  }
  await fresh();
  const note = statusBox();
  section.append(note);
  let order = await attempt(() => get(`/api/orders/${enc(orderId)}`), undefined, note);
  if (!order) return;

  // The parts that change stay the same elements, so that the live region announces
  // the new status instead of being replaced.
  const statusWord = h("strong", { class: "order-status" });
  const payment = h("span", { class: "payment-status" });
  const explanation = h("p", { class: "explanation" });
  const timeline = h("ol", { class: "timeline", "aria-label": "Order history" });
  const actions = h("div", { class: "actions" });
  const live = h("div", { class: "card status-card", role: "status", "aria-live": "polite", "aria-atomic": "true" },
    h("p", {}, "Status: ", statusWord, " · payment ", payment),
    explanation);

  let drawn = "pending";
  function redraw() {
    // Once the order is past pending, its lines have left the cart (if it was ordered from it).
    if (order.status !== drawn && drawn === "pending") refreshCartCount();
    drawn = order.status;
    statusWord.textContent = statusWords(order.status);
    statusWord.dataset.status = order.status;
    payment.textContent = PAYMENT_WORDS[order.payment_status] || order.payment_status;
    explanation.textContent = explain(order);
    timeline.replaceChildren(...order.history.map((e) => h("li", {},
      h("span", { class: "state" }, statusWords(e.status)),
      e.payment_status === "failed" ? " (payment failed)" : "",
      " ", h("time", { datetime: e.at }, when(e.at)))));
    const cancellable = order.status === "pending" || order.status === "confirmed";
    actions.replaceChildren(cancellable ? button("Cancel order", cancel, "danger", { "aria-label": `Cancel order ${orderId.slice(0, 8)}` }) : "");
  }

  async function reload() {
    const again = await attempt(() => get(`/api/orders/${enc(orderId)}`), undefined, note);
    if (!again) return;
    order = again;
    redraw();
  }

  async function cancel() {
    if (!window.confirm("Cancel this order? A payment already taken is refunded.")) return;
    await fresh();
    const updated = await attempt(() => put(`/api/orders/${enc(orderId)}`, { status: "cancelled" }), "Order cancelled.", note);
    if (updated) await reload();
  }

  // Follows the order until it ends. The browser reconnects by itself (with
  // Last-Event-ID) when the server ends a long stream; a refused reconnect (the access
  // cookie expired) is retried here with a renewed session, a few times.
  function follow(retries = 0) {
    if (FINAL.includes(order.status)) return;
    const source = new EventSource(`/api/orders/${enc(orderId)}/events`);
    stream.set(source);
    let seen = 0;
    source.addEventListener("status", (event) => {
      seen = Number(event.lastEventId) || seen + 1;
      if (seen <= order.history.length) return;  // already shown
      const entry = JSON.parse(event.data);
      order = { ...order, status: entry.status, payment_status: entry.payment_status ?? order.payment_status,
        cancel_reason: entry.cancel_reason ?? order.cancel_reason, history: [...order.history, entry] };
      redraw();
      reload();  // the rest (tracking, totals after a refund) from the order itself
      if (FINAL.includes(entry.status)) source.close();
    });
    source.addEventListener("error", async () => {
      if (source.readyState !== EventSource.CLOSED || retries >= MAX_RETRIES || !stream.owns(source)) return;
      await new Promise((resolve) => { setTimeout(resolve, RETRY_MS); });
      if (!stream.owns(source)) return;  // the shopper left the page meanwhile
      await fresh();
      await reload();
      follow(retries + 1);
    });
  }

  const o = order;
  section.append(
    h("p", { class: "hint" }, `Order ${o.order_id}, placed ${when(o.created_at)}.`),
    live,
    h("div", { class: "grid2" },
      h("div", { class: "card" }, h("h3", {}, "What you ordered"),
        table(
          [
            { label: "Product", value: (l) => h("a", { href: productLink(l.product_id) }, l.name || "item") },
            { label: "Options", value: (l) => l.variant || "—" },
            { label: "Quantity", value: (l) => String(l.quantity) },
            { label: "Price", value: (l) => money(l.price, o.currency) },
            { label: "Total", value: (l) => money(l.line_total, o.currency) },
          ],
          o.items,
        ),
        totals(o)),
      h("div", { class: "card" }, h("h3", {}, "Delivery address"), addressBlock(o.shipping_address),
        h("h3", {}, "History"), timeline)),
    memberReturns(o),
    actions,
  );
  redraw();
  follow();
}
