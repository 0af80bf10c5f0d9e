// Returns and refunds in the admin dashboard and the seller portal (issue 18 point 6): the
// queue of returns by status, one return with what may be done next (approve, refuse with
// a note, mark received line by line, refund lines and the shipping), and the tables of an
// order's returns and refunds. The API decides who may do what: a seller sees and handles
// the returns of their own lines, an admin all of them.
import {
  api, attempt, button, field, form, get, h, input, money, put, query, ref, secondary, select, status, statusBox,
  table, when,
} from "./common.js";

const enc = encodeURIComponent;
const STATUSES = ["requested", "approved", "refused", "received", "refunded"];
// A refund is pending until the payment provider has answered: its page asks again this often.
const POLL_MS = 1000;
const POLL_TIMES = 120;

const lineName = (l) => `${l.name}${l.variant ? ` (${l.variant})` : ""}`;
const customerOf = (order) => order?.customer?.name || "the customer";

// Sums decimal strings exactly, in thousandths (an amount has at most 3 decimals).
function total(amounts) {
  const milli = amounts.reduce((sum, a) => {
    const [whole, frac = ""] = String(a).split(".");
    return sum + Number(whole) * 1000 + Number(frac.padEnd(3, "0").slice(0, 3));
  }, 0);
  return `${Math.floor(milli / 1000)}.${String(milli % 1000).padStart(3, "0")}`;
}

const badge = (kind, value) => h("span", { class: `badge ${kind}-status`, "data-status": value }, value);

// Reads the page again in a moment if `el` is still shown (a pending refund shows its outcome
// once the payment provider has answered); `polls` counts them, so a page stops asking at last.
export function reloadSoon(el, reload, polls) {
  if (polls.count >= POLL_TIMES) return;
  polls.count += 1;
  setTimeout(() => {
    if (el.isConnected) reload();
  }, POLL_MS);
}

// An order's refunds (of returns, and admins' direct ones).
export function refundsTable(refunds) {
  return table(
    [
      { label: "Requested", value: (r) => when(r.requested_at) },
      { label: "Amount", value: (r) => money(r.amount, r.currency) },
      { label: "Shipping", value: (r) => (Number(r.shipping) ? money(r.shipping, r.currency) : "—") },
      { label: "Status", value: (r) => [badge("refund", r.status), r.failure ? ` ${r.failure}` : ""] },
      { label: "Settled", value: (r) => when(r.settled_at) || "—" },
      { label: "Reason", value: (r) => r.reason || (r.return_id ? "a return" : "") },
    ],
    refunds,
    "No refunds.",
  );
}

// An order's returns; each links to its page (`href(return)`).
export function returnsTable(returns, href) {
  return table(
    [
      { label: "Requested", value: (r) => when(r.requested_at) },
      { label: "Items", value: (r) => r.items.map((i) => `${i.quantity} × ${lineName(i)}`).join(", ") },
      { label: "Refund", value: (r) => money(total(r.items.map((i) => i.refund)), r.currency) },
      { label: "Status", value: (r) => badge("return", r.status) },
      { label: "Reason", value: (r) => r.reason },
      {
        label: "",
        value: (r) => h("a", { class: "button secondary", href: href(r), "aria-label": `Open the return of ${r.items.map(lineName).join(", ")} requested ${when(r.requested_at)}` }, "Open"),
      },
    ],
    returns,
    "No returns.",
  );
}

// The section of a page: the queue (#returns), or one return (#returns/<id>).
// `orderHref(orderId)` and `customerHref(userId)` link to pages the reader has (or null).
export function returnsSection({ hash = "#returns", orderHref = () => null, customerHref = () => null } = {}) {
  return (container, returnId) => (returnId
    ? returnDetail(container, returnId, { hash, orderHref, customerHref })
    : returnsQueue(container, { hash, orderHref, customerHref }));
}

// Orders by id, read once per queue (a customer's name is on their order).
function ordersReader() {
  const known = new Map();
  return (id) => {
    if (!known.has(id)) known.set(id, get(`/api/orders/${enc(id)}`).catch(() => null));
    return known.get(id);
  };
}

function linkOr(href, text) {
  return href ? h("a", { href }, text) : text;
}

async function returnsQueue(container, { hash, orderHref, customerHref }) {
  const statusFilter = select("status", [["", "any"], ...STATUSES.map((s) => [s, s])]);
  const results = h("div", { id: "returns-queue" });
  const readOrder = ordersReader();
  let generation = 0;

  async function load() {
    generation += 1;
    const mine = generation;
    const rows = [];
    const orders = new Map();
    async function more(cursor) {
      const page = await attempt(() => get(`/api/returns${query({ status: statusFilter.value, limit: 50, cursor })}`));
      if (!page || mine !== generation) return;
      const ids = [...new Set(page.items.map((r) => r.order_id))].filter((id) => !orders.has(id));
      const found = await Promise.all(ids.map(readOrder));
      ids.forEach((id, i) => orders.set(id, found[i]));
      if (mine !== generation) return;
      rows.push(...page.items);
      results.replaceChildren(table(
        [
          { label: "Requested", value: (r) => when(r.requested_at) },
          { label: "Order", value: (r) => linkOr(orderHref(r.order_id), `Order ${ref(r.order_id)}`) },
          {
            label: "Customer",
            value: (r) => {
              const o = orders.get(r.order_id);
              return h("span", {}, linkOr(customerHref(r.user_id), customerOf(o)),
                o?.customer?.email ? [h("br"), secondary(o.customer.email)] : null);
            },
          },
          { label: "Items", value: (r) => r.items.map((i) => `${i.quantity} × ${lineName(i)}`).join(", ") },
          { label: "Refund", value: (r) => money(total(r.items.map((i) => i.refund)), r.currency) },
          { label: "Reason", value: (r) => r.reason },
          { label: "Status", value: (r) => badge("return", r.status) },
          {
            label: "",
            value: (r) => h("a", {
              class: "button secondary",
              href: `${hash}/${enc(r.return_id)}`,
              "aria-label": `Open the return of order ${ref(r.order_id)} from ${customerOf(orders.get(r.order_id))}`,
            }, "Open"),
          },
        ],
        rows,
        statusFilter.value ? `No ${statusFilter.value} returns.` : "No returns.",
      ));
      if (page.next_cursor) {
        results.append(h("div", { class: "actions" }, button("Load more", () => more(page.next_cursor), "secondary")));
      }
    }
    await more(undefined);
  }

  container.append(
    form([field("Status", statusFilter), h("button", { type: "submit" }, "Show")], load,
      { class: "card", "aria-label": "Filter the returns" }),
    results,
  );
  await load();
}

async function returnDetail(container, returnId, { hash, orderHref, customerHref }) {
  const box = h("div");
  const note = statusBox();
  container.append(h("p", {}, h("a", { href: hash }, "Back to the returns")), note, box);
  const path = `/api/returns/${enc(returnId)}`;
  const polls = { count: 0 };

  // The return is read after its order: a refund the order shows settled has settled its
  // return too (one transaction), so the page never shows a refunded refund of a return
  // still "received" and stops asking.
  let orderId;
  async function load() {
    const order = orderId ? await get(`/api/orders/${enc(orderId)}`).catch(() => null) : null;
    const ret = await attempt(() => get(path), undefined, note);
    if (!ret) return;
    orderId = ret.order_id;
    show(ret, order || await get(`/api/orders/${enc(ret.order_id)}`).catch(() => null));
  }

  async function change(body, done) {
    const updated = await attempt(() => put(path, body), done, note);
    if (updated) await load();
    box.querySelector("h3")?.focus();
  }

  // requested: approve, or refuse with a note (for the customer).
  function decide(ret) {
    const text = h("textarea", { name: "note", rows: 2, maxlength: 500 });
    return form([
      h("label", { class: "field wide" }, h("span", {}, "Note for the customer (required to refuse)"), text),
      h("button", { type: "submit" }, "Approve"),
      button("Refuse", () => {
        if (!text.value.trim()) {
          status("Say why in the note: the customer is told.", "error", note);
          text.focus();
          return;
        }
        change({ status: "refused", note: text.value.trim() }, "Return refused.");
      }, "danger"),
    ], () => change({ status: "approved", ...(text.value.trim() ? { note: text.value.trim() } : {}) }, "Return approved."),
    { class: "card inset", "aria-label": `Approve or refuse the return of order ${ref(ret.order_id)}` });
  }

  // approved: the parcel is back; each line back on sale or not.
  function receive(ret) {
    const boxes = ret.items.map((l) => h("input", {
      type: "checkbox", name: `resaleable_${l.variant_id}`, checked: true, "aria-label": `Back on sale: ${lineName(l)}`,
    }));
    return form([
      h("fieldset", { class: "wide" }, h("legend", {}, "Back on sale (resaleable)"),
        ret.items.map((l, i) => h("label", { class: "choice" }, boxes[i], ` ${l.quantity} × ${lineName(l)}`))),
      h("button", { type: "submit" }, "Mark received"),
    ], () => change({
      status: "received",
      lines: ret.items.map((l, i) => ({ variant_id: l.variant_id, resaleable: boxes[i].checked })),
    }, "Return received."), { class: "card inset", "aria-label": `Receive the return of order ${ref(ret.order_id)}` });
  }

  // received: refund every line whole (or fewer), and the shipping if asked.
  function refund(ret) {
    const counts = ret.items.map((l) => input(`refund_${l.variant_id}`, {
      type: "number", min: 0, max: l.quantity, step: 1, value: String(l.quantity), required: true,
      "aria-label": `Quantity to refund of ${lineName(l)}`,
    }));
    const shipping = h("input", { type: "checkbox", name: "shipping" });
    const submit = h("button", { type: "submit" }, "Refund");
    return form([
      h("fieldset", { class: "wide" }, h("legend", {}, "Quantities to refund"),
        ret.items.map((l, i) => h("label", { class: "choice" }, counts[i],
          ` of ${l.quantity} × ${lineName(l)} (${money(l.refund, ret.currency)} in all)`))),
      h("label", { class: "choice" }, shipping, " Refund the shipping too"),
      submit,
    ], async () => {
      const whole = ret.items.every((l, i) => Number(counts[i].value) === l.quantity);
      const lines = ret.items.map((l, i) => ({ variant_id: l.variant_id, quantity: Number(counts[i].value) }))
        .filter((l) => l.quantity > 0);
      if (!lines.length) return status("Choose at least one item to refund.", "error", note);
      submit.disabled = true; // one click, one refund (the API answers a repeat with the same one anyway)
      const body = { shipping: shipping.checked, ...(whole ? {} : { lines }) };
      const done = await attempt(() => api("POST", `${path}/refund`, body), "Refund asked of the payment provider.", note);
      submit.disabled = false;
      if (done) await load();
      return undefined;
    }, { class: "card inset", "aria-label": `Refund the return of order ${ref(ret.order_id)}` });
  }

  function show(ret, order) {
    const refunds = (order?.refunds || []).filter((r) => r.return_id === ret.return_id);
    const next = { requested: decide, approved: receive, received: refund }[ret.status];
    box.replaceChildren(h("div", { class: "card", id: "return-detail" },
      h("h3", { tabindex: "-1" }, "Return of order ", linkOr(orderHref(ret.order_id), ref(ret.order_id)), " · ",
        linkOr(customerHref(ret.user_id), customerOf(order))),
      h("p", {}, "Status ", badge("return", ret.status), ` · requested ${when(ret.requested_at)}`,
        ret.decided_at ? ` · decided ${when(ret.decided_at)}` : "", ret.received_at ? ` · received ${when(ret.received_at)}` : "",
        ret.refunded_at ? ` · refunded ${when(ret.refunded_at)}` : ""),
      h("p", {}, h("strong", {}, "Reason: "), ret.reason),
      ret.note ? h("p", {}, h("strong", {}, "Note: "), ret.note) : null,
      table(
        [
          { label: "Product", value: (l) => h("span", {}, lineName(l), l.sku ? [h("br"), secondary(`SKU ${l.sku}`)] : null) },
          { label: "Quantity", value: (l) => String(l.quantity) },
          { label: "Refund", value: (l) => money(l.refund, ret.currency) },
          { label: "Back on sale", value: (l) => (l.resaleable === null || l.resaleable === undefined ? "—" : l.resaleable ? "yes" : "no") },
        ],
        ret.items,
      ),
      refunds.length ? [h("h4", {}, "Refunds"), refundsTable(refunds)] : null,
      next ? next(ret) : null,
      h("div", { class: "actions" }, button("Reload", () => load(), "secondary")),
    ));
    // A pending refund shows its outcome once the payment provider has answered.
    const settling = refunds.some((r) => r.status === "pending")
      || (ret.status === "received" && refunds.some((r) => r.status === "refunded"));
    if (settling) reloadSoon(box.firstChild, load, polls);
  }

  await load();
}

// The storefront's order page: the member's returns and refunds of this order and, once it
// is delivered, a form to send lines back with a reason. Redraws itself after a request.
export function memberReturns(first) {
  const box = h("div", { class: "card", id: "my-returns" });
  const note = statusBox();
  let sent = { body: "", key: "" };

  // What is left to return of a line: its quantity less what returns not refused hold.
  const left = (order, line) => line.quantity - order.returns
    .filter((r) => r.status !== "refused")
    .flatMap((r) => r.items)
    .filter((i) => i.variant_id === line.variant_id)
    .reduce((sum, i) => sum + i.quantity, 0);

  function askForm(order) {
    const lines = order.items.map((l) => ({ line: l, most: left(order, l) })).filter((x) => x.most > 0);
    if (order.status !== "delivered" || !lines.length) return null;
    const counts = lines.map(({ line, most }) => input(`return_${line.variant_id}`, {
      type: "number", min: 0, max: most, step: 1, value: "0", "aria-label": `How many of ${lineName(line)} to send back`,
    }));
    const reason = h("textarea", { name: "reason", rows: 2, maxlength: 500, required: true });
    return form([
      h("h4", { class: "wide" }, "Send items back"),
      h("fieldset", { class: "wide" }, h("legend", {}, "How many of each"),
        lines.map(({ line, most }, i) => h("label", { class: "choice" }, counts[i], ` of ${most} × ${lineName(line)}`))),
      h("label", { class: "field wide" }, h("span", {}, "Why are you sending them back?"), reason),
      h("button", { type: "submit" }, "Ask for a return"),
    ], async () => {
      const items = lines.map(({ line }, i) => ({ product_id: line.product_id, variant_id: line.variant_id, quantity: Number(counts[i].value) }))
        .filter((i) => i.quantity > 0);
      if (!items.length) return status("Choose how many of an item to send back.", "error", note);
      const body = { items, reason: reason.value.trim() };
      // One key per distinct request: a second click asks for nothing twice.
      if (JSON.stringify(body) !== sent.body) sent = { body: JSON.stringify(body), key: crypto.randomUUID() };
      const made = await attempt(() => api("POST", `/api/orders/${enc(order.order_id)}/returns`, body,
        { "Idempotency-Key": sent.key }), "Return asked for: the seller will tell you what to do next.", note);
      if (made) await load(order.order_id);
      return undefined;
    }, { "aria-label": "Send items back" });
  }

  function draw(order) {
    const returns = order.returns || [];
    const refunds = order.refunds || [];
    box.replaceChildren(...[
      h("h3", {}, "Returns and refunds"),
      returns.length ? table(
        [
          { label: "Asked", value: (r) => when(r.requested_at) },
          { label: "Items", value: (r) => r.items.map((i) => `${i.quantity} × ${lineName(i)}`).join(", ") },
          { label: "Status", value: (r) => [badge("return", r.status), r.note ? ` ${r.note}` : ""] },
        ],
        returns,
      ) : null,
      refunds.length ? table(
        [
          { label: "Refund", value: (r) => money(r.amount, r.currency) },
          { label: "Status", value: (r) => badge("refund", r.status) },
          { label: "When", value: (r) => when(r.settled_at || r.requested_at) },
        ],
        refunds,
      ) : null,
      !returns.length && !refunds.length ? h("p", { class: "hint" }, order.status === "delivered"
        ? "Not what you wanted? You can send items back within the return window."
        : "Once the order is delivered you can send items back here.") : null,
      askForm(order),
      note,
    ].filter(Boolean));
  }

  async function load(orderId) {
    const order = await attempt(() => get(`/api/orders/${enc(orderId)}`), undefined, note);
    if (order) draw(order);
  }

  draw(first);
  return box;
}
