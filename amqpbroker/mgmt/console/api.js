// Calls to the management API with the logged-in user's basic-auth credentials, kept for the
// browser tab's session as RabbitMQ's UI keeps them.

const KEY = "amqpbroker.credentials";

export class ApiError extends Error {
  constructor(status, reason) {
    super(reason);
    this.status = status;
  }
}

// The logged-in user as /api/whoami describes it (name and tags), or null.
let user = null;

export function credentials() {
  return sessionStorage.getItem(KEY);
}

export function logOut() {
  sessionStorage.removeItem(KEY);
  user = null;
}

// Checks the credentials with /api/whoami and keeps them if they work; the user's JSON.
export async function logIn(username, password) {
  const bytes = new TextEncoder().encode(`${username}:${password}`);
  const encoded = btoa(String.fromCharCode(...bytes));
  user = await call("GET", "/api/whoami", undefined, encoded);
  sessionStorage.setItem(KEY, encoded);
  return user;
}

// The user of the credentials kept from before (a reloaded page); the user's JSON.
export async function whoami() {
  user = await api("GET", "/api/whoami");
  return user;
}

// Whether the logged-in user has one of `tags`: what the console offers follows them, as RabbitMQ's
// does (the API still decides).
export function tagged(...tags) {
  return user !== null && tags.some((tag) => user.tags.includes(tag));
}

// A path segment: vhost "/" is "%2F".
export const seg = encodeURIComponent;

export function api(method, path, body, headers = {}) {
  return call(method, path, body, credentials(), headers);
}

async function call(method, path, body, encoded, headers = {}) {
  // The credentials are the header's alone: with the browser's own left out, a 401 comes back to
  // the page instead of opening the browser's login dialog (where a headless one waits forever).
  const response = await fetch(path, {
    method,
    credentials: "omit",
    headers: { authorization: `Basic ${encoded}`, "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const reason = data && data.reason !== undefined ? data.reason : response.statusText;
    throw new ApiError(response.status, typeof reason === "string" ? reason : JSON.stringify(reason));
  }
  return data;
}
