// Who is shopping: a guest, or a signed-in member (the session cookies, as the
// dashboard uses them: docs/security.md). The page keeps only the user's profile and
// when the access cookie runs out; the tokens stay in HttpOnly cookies.
import { csrfToken, get, post } from "../common.js";

// Not a secret: when the access cookie (and token) expires, so that every tab renews it
// in time. The browser drops the access cookie then, and the API takes a caller
// without one for a guest: a cart call would quietly go to a guest cart.
const EXPIRES_KEY = "agora.shop.access_expires";
const MARGIN_MS = 30_000;

export const session = { user: null };
const listeners = [];

export function onSessionChange(listener) {
  listeners.push(listener);
}

function changed() {
  for (const listener of listeners) listener(session.user);
}

// A login or refresh result (`LoginResult`).
function remember(result) {
  localStorage.setItem(EXPIRES_KEY, String(Date.now() + result.expires_in * 1000));
  session.user = result.user;
  changed();
}

function forget() {
  localStorage.removeItem(EXPIRES_KEY);
  session.user = null;
  changed();
}

async function renew() {
  try {
    remember(await post("/api/auth/refresh"));
  } catch {
    forget();  // the session ended (signed out elsewhere, expired, revoked)
  }
}

// Before a call whose answer depends on who is asking (the cart, an order): renews an
// access cookie that is about to expire.
export async function fresh() {
  if (!session.user) return;
  const expires = Number(localStorage.getItem(EXPIRES_KEY) || 0);
  if (Date.now() > expires - MARGIN_MS) await renew();
}

// On load: the CSRF cookie (readable, as long-lived as the session) says whether this
// browser has a session at all, so a guest makes no call that can only fail.
export async function resume() {
  if (!csrfToken()) return;
  const expires = Number(localStorage.getItem(EXPIRES_KEY) || 0);
  if (Date.now() > expires - MARGIN_MS) {
    await renew();
    return;
  }
  try {
    session.user = await get("/api/users/me");
    changed();
  } catch {
    forget();
  }
}

// The guest cart this browser holds (its HttpOnly cookie) merges into the member's at
// login. Resolves to the signed-in user.
export async function signIn(email, password) {
  remember(await post("/api/users/login", { email, password }));
  return session.user;
}

export async function register({ email, username, password }) {
  await post("/api/users/register", { email, username, password });
  return signIn(email, password);
}

export async function signOut() {
  try {
    await post("/api/auth/logout");
  } finally {
    forget();
  }
}

export function updateUser(user) {
  session.user = user;
  changed();
}
