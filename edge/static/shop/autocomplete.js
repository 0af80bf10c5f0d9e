// The search box's suggestions: an ARIA combobox (the input) with a listbox of
// product names. Arrow keys move through the names (the input keeps the focus and
// points at the active one with aria-activedescendant), Enter opens the active one,
// Escape closes the list; Enter with no name chosen searches for what was typed.
import { h } from "../common.js";

const DELAY_MS = 150;
const MIN_LENGTH = 2;  // the API completes a last word from two letters

// `suggest(q)` resolves to [{label, value}]; `choose(value)` opens one; `count` is a
// live region that says how many names there are.
export function combobox(input, listbox, count, { suggest, choose }) {
  let items = [];
  let active = -1;
  let asked = 0;
  let timer;
  input.setAttribute("role", "combobox");
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-expanded", "false");
  input.setAttribute("aria-controls", listbox.id);
  listbox.setAttribute("role", "listbox");
  listbox.setAttribute("aria-label", "Suggestions");

  const optionId = (i) => `${listbox.id}-${i}`;
  const isOpen = () => !listbox.hidden;

  function close() {
    listbox.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  }

  function show() {
    listbox.replaceChildren(...items.map((item, i) => h("li", {
      id: optionId(i),
      role: "option",
      "aria-selected": String(i === active),
      class: i === active ? "active" : "",
      // The input keeps the focus when a name is clicked.
      onmousedown: (event) => event.preventDefault(),
      onclick: () => pick(i),
    }, item.label)));
    const open = items.length > 0;
    listbox.hidden = !open;
    input.setAttribute("aria-expanded", String(open));
    if (active >= 0) {
      input.setAttribute("aria-activedescendant", optionId(active));
      document.getElementById(optionId(active))?.scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function pick(i) {
    const item = items[i];
    close();
    items = [];
    choose(item.value);
  }

  async function load() {
    const q = input.value.trim();
    const mine = ++asked;
    if (q.length < MIN_LENGTH) {
      items = [];
      close();
      return;
    }
    let found;
    try {
      found = await suggest(q);
    } catch {
      return;  // suggestions are a convenience: the search itself still works
    }
    if (mine !== asked) return;  // an answer to an older keystroke
    items = found;
    active = -1;
    show();
    count.textContent = items.length ? `${items.length} suggestion${items.length === 1 ? "" : "s"}, use the arrow keys` : "";
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(load, DELAY_MS);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      if (!items.length) return;
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      active = isOpen() ? (active + step + items.length) % items.length : (step > 0 ? 0 : items.length - 1);
      show();
    } else if (event.key === "Enter" && isOpen() && active >= 0) {
      event.preventDefault();
      pick(active);
    } else if (event.key === "Escape" && isOpen()) {
      event.preventDefault();
      close();
    }
  });
  input.addEventListener("blur", close);
  // A search that was submitted closes the list, and a late answer does not reopen it.
  return {
    close() {
      asked += 1;
      clearTimeout(timer);
      close();
    },
  };
}
