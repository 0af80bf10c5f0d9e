// The product editor of the admin dashboard and the seller portal: a product's images
// (an ordered list, the first the main one) and its variants (SKU, prices, weight,
// stock). Each save is one call of the same API any client uses; the API decides who
// may change what (another seller's product is "not found" to a seller).
import {
  attempt, button, del, field, form, get, h, input, post, put, select, status, statusBox, table,
} from "./common.js";

const enc = encodeURIComponent;
const MAX_IMAGES = 20;
const AVAILABILITY = { in_stock: "in stock", low: "low", out_of_stock: "out of stock" };
const HTTPS_URL = "https://\\S+";
const AMOUNT = "\\d{1,12}(\\.\\d{1,3})?";

// "M / Red"; a product without options has one variant, its default.
const variantName = (v) => v.label || "default";
const whole = (control) => (control.value === "" ? null : Number(control.value));

function stockPath(product, variant) {
  // The default variant's id is the product's: its stock is the product's own.
  const own = variant.variant_id === product.product_id;
  return { path: `/api/inventory/${enc(product.product_id)}`, variant: own ? {} : { variant_id: variant.variant_id } };
}

// Every combination of the options' values, in their order: [{Size: "S", Colour: "Red"}, ...].
function* combinations(options, chosen = {}) {
  if (!options.length) {
    yield chosen;
    return;
  }
  const [first, ...rest] = options;
  for (const value of first.values) yield* combinations(rest, { ...chosen, [first.name]: value });
}

function sameOptions(a, b) {
  return Object.keys(a).length === Object.keys(b).length && Object.entries(a).every(([k, v]) => b[k] === v);
}

// The image list, edited as a draft and saved whole (`PUT /api/products/{id}` with `images`).
function imagesPanel(product, path) {
  let saved = product.images.map(({ url, alt }) => ({ url, alt }));
  let draft = saved.map((image) => ({ ...image }));
  const note = statusBox();
  const list = h("div");
  const pending = h("p", { class: "hint" });
  const url = input("image_url", {
    type: "url", required: true, pattern: HTTPS_URL, size: 40, placeholder: "https://…", title: "An https:// address",
  });
  const alt = input("image_alt", { maxlength: 200, size: 30 });
  const unsaved = () => JSON.stringify(draft) !== JSON.stringify(saved);

  // `focus`: the button to give the keyboard focus back to after the list is redrawn.
  function show(focus) {
    const rows = draft.map((image, i) => ({ ...image, i }));
    const last = draft.length - 1;
    list.replaceChildren(table(
      [
        { label: "Position", value: (r) => (r.i === 0 ? h("strong", {}, "1 (main)") : String(r.i + 1)) },
        {
          label: "Image",
          value: (r) => h("a", { class: "url", href: r.url, target: "_blank", rel: "noopener noreferrer" }, r.url),
        },
        {
          label: "Alt text",
          value: (r) => input(`alt_${r.i}`, {
            value: r.alt, maxlength: 200, "aria-label": `Alt text of image ${r.i + 1}`,
            oninput: (event) => {
              draft[r.i].alt = event.target.value;
              showPending();
            },
          }),
        },
        {
          label: "",
          value: (r) => h("span", { class: "actions" },
            button("Up", () => move(r.i, -1), "secondary",
              { disabled: r.i === 0, "aria-label": `Move image ${r.i + 1} up`, "data-move": `${r.i}:up` }),
            button("Down", () => move(r.i, 1), "secondary",
              { disabled: r.i === last, "aria-label": `Move image ${r.i + 1} down`, "data-move": `${r.i}:down` }),
            button("Remove", () => remove(r.i), "danger", { "aria-label": `Remove image ${r.i + 1}`, "data-remove": r.i })),
        },
      ],
      rows,
      "No images yet.",
    ));
    showPending();
    if (focus) {
      // The moved image's same button, or its other one once it reached an end.
      const [at] = focus.split(":");
      const target = list.querySelector(`[data-move="${focus}"]:not(:disabled)`)
        || list.querySelector(`[data-move^="${at}:"]:not(:disabled)`);
      target?.focus();
    }
  }

  function showPending() {
    pending.textContent = `${draft.length} of ${MAX_IMAGES} images.`
      + (unsaved() ? " Unsaved changes: save the images to keep them." : "");
  }

  function move(i, step) {
    const j = i + step;
    [draft[i], draft[j]] = [draft[j], draft[i]];
    status("", "info", note);
    show(`${j}:${step < 0 ? "up" : "down"}`);
  }

  function remove(i) {
    draft.splice(i, 1);
    status("", "info", note);
    show();
    (list.querySelector(`[data-remove="${Math.min(i, draft.length - 1)}"]`) || url).focus();
  }

  function add() {
    if (draft.length >= MAX_IMAGES) return status(`A product has at most ${MAX_IMAGES} images.`, "error", note);
    draft.push({ url: url.value.trim(), alt: alt.value.trim() });
    url.value = "";
    alt.value = "";
    status("", "info", note);
    show();
    url.focus();
    return undefined;
  }

  async function save() {
    if (!unsaved()) return status("Nothing changed.", "info", note);
    const updated = await attempt(() => put(path, { images: draft }), "Images saved.", note);
    if (updated) {
      saved = updated.images.map(({ url: u, alt: a }) => ({ url: u, alt: a }));
      draft = saved.map((image) => ({ ...image }));
      show();
    }
    return undefined;
  }

  show();
  return h("div", { class: "card", "data-panel": "images" },
    h("h4", { id: "images-title" }, "Images"),
    h("p", {}, "The first image is the main one: listings and the product page show it first."),
    list,
    pending,
    form([field("Image URL", url), field("Alt text", alt), h("button", { type: "submit", class: "secondary" }, "Add image")],
      add, { "aria-label": "Add an image" }),
    h("div", { class: "actions" },
      button("Save images", save),
      button("Undo changes", () => {
        draft = saved.map((image) => ({ ...image }));
        status("", "info", note);
        show();
      }, "secondary")),
    note,
  );
}

// The variants: a table, an edit form for one of them. `editor.refresh(...)` reloads the
// product and redraws the variant panels.
function variantsPanel(editor) {
  const { product, path } = editor;
  const note = statusBox();
  const slot = h("div");
  const options = product.options || [];

  function edit(v) {
    const name = variantName(v);
    const sku = input("sku", { value: v.sku || "", maxlength: 64, size: 16 });
    const price = input("price", { required: true, inputmode: "decimal", pattern: AMOUNT, size: 10, value: v.price });
    const compare = input("compare_at_price", {
      inputmode: "decimal", pattern: AMOUNT, size: 10, value: v.compare_at_price || "",
    });
    const weight = input("weight_grams", { type: "number", min: 0, step: 1, value: v.weight_grams ?? "" });
    const stock = input("stock", { type: "number", min: 0, step: 1, value: v.stock ?? "" });
    const titleId = "variant-edit-title";
    // The keyboard focus goes back to this variant's Edit button.
    const again = `[aria-label="${CSS.escape(`Edit variant ${name}`)}"]`;

    async function save() {
      const body = {};
      if (sku.value.trim() !== (v.sku || "")) body.sku = sku.value.trim() || null;
      if (price.value.trim() !== v.price) body.price = price.value.trim();
      if (compare.value.trim() !== (v.compare_at_price || "")) body.compare_at_price = compare.value.trim() || null;
      if (whole(weight) !== (v.weight_grams ?? null)) body.weight_grams = whole(weight);
      const newStock = whole(stock);
      const stockChanged = newStock !== null && newStock !== v.stock;
      if (!Object.keys(body).length && !stockChanged) return status("Nothing changed.", "info", note);
      status("", "info", note);
      if (Object.keys(body).length) {
        const done = await attempt(() => put(`${path}/variants/${enc(v.variant_id)}`, body), undefined, note);
        if (!done) return undefined;
      }
      if (stockChanged) {
        const target = stockPath(product, v);
        const counted = await attempt(() => put(target.path, { ...target.variant, stock: newStock }), undefined, note);
        if (!counted && Object.keys(body).length) {
          // The details were saved: show them, and why the stock was not.
          return editor.refresh(`Variant ${name}: details saved, stock not: ${note.textContent}`, "variants", again, "error");
        }
        if (!counted) return undefined;
        editor.counted(v.variant_id, counted.stock);
      }
      return editor.refresh(`Variant ${name} saved.`, "variants", again);
    }

    slot.replaceChildren(h("div", { class: "card inset" },
      h("h5", { id: titleId }, `Variant ${name}`),
      form([
        field("SKU", sku), field("Price", price), field("Compare-at price", compare),
        field("Weight (grams)", weight), field("Stock", stock),
        h("button", { type: "submit" }, "Save variant"),
        button("Cancel", () => {
          slot.replaceChildren();
          status("", "info", note);
          note.parentElement.querySelector(again)?.focus();
        }, "secondary"),
      ], save, { "aria-labelledby": titleId }),
      h("p", { class: "hint" },
        "Leave SKU, compare-at price or weight empty to remove it. The compare-at price is the former price, "
        + "shown struck out; it must be above the price."),
    ));
    sku.focus();
  }

  async function withdraw(v) {
    const name = variantName(v);
    if (!window.confirm(`Withdraw variant ${name}? It is no longer sold; past orders keep their copy.`)) return;
    const gone = await attempt(() => del(`${path}/variants/${enc(v.variant_id)}`), undefined, note);
    if (gone) await editor.refresh(`Variant ${name} withdrawn.`, "variants");
  }

  const money = (amount) => (amount ? `${amount} ${product.currency}` : "—");
  const summary = options.length
    ? `Options: ${options.map((o) => `${o.name} (${o.values.join(", ")})`).join("; ")}.`
    : "This product has no options: it has one variant, its default.";
  return h("div", { class: "card", "data-panel": "variants" },
    h("h4", { id: "variants-title", tabindex: "-1" }, "Variants"),
    h("p", {}, summary),
    table(
      [
        { label: "Variant", value: (v) => (v.label ? v.label : h("em", {}, "default")) },
        { label: "SKU", value: (v) => v.sku || "—" },
        { label: "Price", value: (v) => money(v.price) },
        { label: "Compare-at", value: (v) => money(v.compare_at_price) },
        { label: "Weight", value: (v) => (v.weight_grams == null ? "—" : `${v.weight_grams} g`) },
        { label: "Stock", value: (v) => (v.stock == null ? "—" : String(v.stock)) },
        { label: "Availability", value: (v) => AVAILABILITY[v.availability] || v.availability },
        {
          label: "",
          value: (v) => h("span", { class: "actions" },
            button("Edit", () => edit(v), "secondary", { "aria-label": `Edit variant ${variantName(v)}` }),
            button("Withdraw", () => withdraw(v), "danger", { "aria-label": `Withdraw variant ${variantName(v)}` })),
        },
      ],
      product.variants,
      "No variants.",
    ),
    note,
    slot,
  );
}

// A new variant of a product with options: one value per option, a combination not on sale yet.
function addVariantPanel(editor) {
  const { product, path } = editor;
  const note = statusBox();
  const taken = (combo) => product.variants.some((v) => sameOptions(v.options, combo));
  let free;
  for (const combo of combinations(product.options)) {
    if (!taken(combo)) {
      free = combo;
      break;
    }
  }
  const choices = product.options.map((o) => [o.name, select(`option_${o.name}`, o.values.map((v) => [v, v]), free?.[o.name])]);
  const price = input("price", { required: true, inputmode: "decimal", pattern: AMOUNT, size: 10, value: product.price });
  const compare = input("compare_at_price", { inputmode: "decimal", pattern: AMOUNT, size: 10 });
  const sku = input("sku", { maxlength: 64, size: 16 });
  const weight = input("weight_grams", { type: "number", min: 0, step: 1 });
  const stock = input("stock", { type: "number", min: 0, step: 1, value: 0 });

  async function add() {
    const body = {
      options: Object.fromEntries(choices.map(([name, control]) => [name, control.value])),
      price: price.value.trim(),
    };
    if (compare.value.trim()) body.compare_at_price = compare.value.trim();
    if (sku.value.trim()) body.sku = sku.value.trim();
    if (weight.value !== "") body.weight_grams = whole(weight);
    if (stock.value !== "") body.stock = whole(stock);
    const name = choices.map(([, control]) => control.value).join(" / ");
    if (await attempt(() => post(`${path}/variants`, body), undefined, note)) {
      await editor.refresh(`Variant ${name} added.`, "add", '[data-panel="add"] select');
    }
  }

  return h("div", { class: "card", "data-panel": "add" },
    h("h4", { id: "add-variant-title" }, "Add a variant"),
    free ? null : h("p", {}, "Every combination of the options' values is on sale already."),
    form([
      ...choices.map(([name, control]) => field(name, control)),
      field("Price", price), field("Compare-at price", compare), field("SKU", sku),
      field("Weight (grams)", weight), field("Initial stock", stock),
      h("button", { type: "submit" }, "Add variant"),
    ], add, { "aria-labelledby": "add-variant-title" }),
    note,
  );
}

// The product's own details: name, category, description (`PUT` sends only what changed).
async function detailsPanel(product, path, onSaved) {
  const note = statusBox();
  const categories = (await attempt(() => get("/api/categories"))) || { items: [] };
  const flatten = (nodes, depth = 0) => nodes.flatMap((c) => [[c.slug, `${"· ".repeat(depth)}${c.name}`], ...flatten(c.children || [], depth + 1)]);
  const list = flatten(categories.items || []);
  if (!list.some(([slug]) => slug === product.category)) list.unshift([product.category, product.category]);
  const name = input("name", { required: true, maxlength: 200, value: product.name, size: 40 });
  const category = select("category", list, product.category);
  const description = h("textarea", { name: "description", rows: 4 }, product.description || "");
  return h("div", { class: "card inset", "data-panel": "details" },
    h("h4", { id: "details-title" }, "Details"),
    form([
      field("Name", name), field("Category", category),
      h("label", { class: "field wide" }, h("span", {}, "Description"), description),
      h("button", { type: "submit" }, "Save details"),
    ], async () => {
      const body = {};
      if (name.value.trim() !== product.name) body.name = name.value.trim();
      if (category.value !== product.category) body.category = category.value;
      if (description.value !== (product.description || "")) body.description = description.value;
      if (!Object.keys(body).length) return status("Nothing changed.", "info", note);
      const saved = await attempt(() => put(path, body), "Details saved.", note);
      if (saved) {
        Object.assign(product, saved);
        onSaved(saved);
      }
      return undefined;
    }, { "aria-labelledby": "details-title" }),
    note,
  );
}

// Renders the editor of one product into `container`. `user`: who is signed in (a
// seller edits only their own products); `back`: the link back to the product list.
export async function productEditor(container, productId, { user, back }) {
  const path = `/api/products/${enc(productId)}`;
  const root = h("div", { id: "product-editor" });
  container.append(h("p", {}, h("a", { href: back }, "Back to the products")), root);
  // Stock counts the inventory answered with: the product page learns them (and the
  // availability that follows) a moment later, so a read waits a little for them.
  const counted = new Map();
  const summary = h("p");
  const variantPanels = h("div");
  const behind = (product) => product.variants.filter((v) => counted.has(v.variant_id) && v.stock !== counted.get(v.variant_id));

  async function read() {
    let product = await attempt(() => get(path));
    for (let tries = 0; product && behind(product).length && tries < 20; tries += 1) {
      await new Promise((resolve) => { setTimeout(resolve, 100); });
      product = await attempt(() => get(path));
    }
    if (!product) return undefined;
    const late = behind(product);
    for (const v of product.variants) {
      if (late.includes(v)) v.stock = counted.get(v.variant_id);
      else counted.delete(v.variant_id);  // caught up
    }
    summary.textContent = `${product.variants.length} variant(s), from ${product.price} ${product.currency} · `
      + `${AVAILABILITY[product.availability]} · product id ${product.product_id}`;
    return product;
  }

  // Redraws the variant panels (an unsaved image list stays as it is), then says
  // `message` (of `kind`) next to the form it concerns (`where`) and puts the keyboard
  // focus on `focus` (a selector), as it was before the redraw.
  function drawVariants(product) {
    const editor = {
      product,
      path,
      counted: (variantId, stock) => counted.set(variantId, stock),
      async refresh(message, where, focus, kind = "ok") {
        const again = await read();
        if (!again) return;
        drawVariants(again);
        const panel = variantPanels.querySelector(`[data-panel="${where || "variants"}"]`) || variantPanels;
        if (message) status(message, kind, panel.querySelector(".status"));
        const target = (focus && variantPanels.querySelector(focus)) || variantPanels.querySelector("#variants-title");
        target.focus();
      },
    };
    variantPanels.replaceChildren(variantsPanel(editor));
    if (product.options.length) variantPanels.append(addVariantPanel(editor));
  }

  const product = await read();
  if (!product) return;
  if (user.role !== "admin" && product.seller_id !== user.user_id) {
    root.replaceChildren(h("p", { class: "refusal" }, "This product is not one of yours."));
    return;
  }
  const title = h("h3", { id: "product-editor-title", tabindex: "-1" }, product.name);
  drawVariants(product);
  const details = await detailsPanel(product, path, (saved) => { title.textContent = saved.name; });
  root.replaceChildren(title, summary, details, imagesPanel(product, path), variantPanels);
  // Opened from the list: the keyboard focus (and a screen reader) follows.
  if (document.activeElement?.tagName === "H2") title.focus();
}
