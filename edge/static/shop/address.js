// A postal address form, for the checkout (where the order goes) and the profile (the
// address the checkout starts from). Browsers fill it in from their autofill data.
import { field, h, input, select } from "../common.js";

// The countries offered (ISO 3166-1 alpha-2), named in the reader's language.
const COUNTRIES = ["AT", "AU", "BE", "CA", "CH", "DE", "DK", "ES", "FI", "FR", "GB", "IE", "IT", "JP", "NL", "NO",
  "NZ", "PL", "PT", "SE", "US"];

export function countryName(code) {
  try {
    return new Intl.DisplayNames(undefined, { type: "region" }).of(code) || code;
  } catch {
    return code;
  }
}

function countryOptions() {
  return COUNTRIES.map((code) => [code, countryName(code)]).sort((a, b) => a[1].localeCompare(b[1]));
}

// The reader's own country, when the browser's language names one we offer.
function homeCountry() {
  try {
    const region = new Intl.Locale(navigator.language).maximize().region;
    return COUNTRIES.includes(region) ? region : "";
  } catch {
    return "";
  }
}

// `withContact`: also the recipient's name and phone (an order's address has them).
export function addressForm(initial, { withContact = false } = {}) {
  const a = initial || {};
  const text = (name, autocomplete, attrs = {}) => input(name, { autocomplete, value: a[name] || "", maxlength: 200, ...attrs });
  const recipient = text("recipient", "name", { required: true, maxlength: 100 });
  const line1 = text("line1", "address-line1", { required: true });
  const line2 = text("line2", "address-line2");
  const city = text("city", "address-level2", { required: true });
  const region = text("region", "address-level1");
  const postalCode = text("postal_code", "postal-code", { required: true, maxlength: 12, size: 10 });
  const country = select("country", [["", "Choose a country"], ...countryOptions()], a.country || homeCountry());
  country.required = true;
  country.autocomplete = "country";
  const phone = text("phone", "tel", { type: "tel", maxlength: 20 });
  const controls = [
    withContact ? field("Full name", recipient) : null,
    h("label", { class: "field wide" }, h("span", {}, "Address"), line1),
    h("label", { class: "field wide" }, h("span", {}, "Address line 2 (optional)"), line2),
    field("City", city),
    field("State or region (optional)", region),
    field("Postal code", postalCode),
    field("Country", country),
    withContact ? field("Phone for the carrier (optional, e.g. +14155552671)", phone) : null,
  ];
  function value() {
    const out = { line1: line1.value.trim(), city: city.value.trim(), postal_code: postalCode.value.trim(), country: country.value };
    // Optional parts are left out rather than sent empty (the API refuses an empty string).
    const optional = { line2, region, ...(withContact ? { recipient, phone } : {}) };
    for (const [name, control] of Object.entries(optional)) {
      if (control.value.trim()) out[name] = control.value.trim();
    }
    return out;
  }
  return { controls, value, country };
}
