// The console's shell: the login form, the route in the address's hash (#/queues,
// #/queue/{vhost}/{name}, ...), and refreshing the page shown every few seconds.

import { ApiError, credentials, logIn, logOut, tagged, whoami } from "./api.js";
import { notify } from "./dom.js";
import * as pages from "./pages.js";

const REFRESH_MS = 5000;
const ROUTES = {
  "": pages.overview,
  queues: pages.queues,
  queue: pages.queue,
  exchanges: pages.exchanges,
  exchange: pages.exchange,
  connections: pages.connections,
  admin: pages.admin,
  policies: pages.policies,
};
// The navigation link lit for each route.
const SECTIONS = { queue: "queues", exchange: "exchanges" };

let shown = 0;
let timer = null;

async function show() {
  clearTimeout(timer);
  const view = ++shown;
  const [name, ...params] = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const render = ROUTES[name] ?? pages.overview;
  const section = SECTIONS[name] ?? name;
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("current", link.getAttribute("href") === `#/${section}`);
  }
  // Each view builds into its own element: a slower one left behind builds into a detached one.
  const page = document.createElement("div");
  document.getElementById("page").replaceChildren(page);
  const tick = async (refresh) => {
    try {
      await refresh();
    } catch (error) {
      failed(error);
    }
    if (view === shown) timer = setTimeout(() => tick(refresh), REFRESH_MS);
  };
  try {
    const refresh = await render(page, ...params);
    if (view === shown) await tick(refresh);
  } catch (error) {
    failed(error);
  }
}

function failed(error) {
  notify(error.message, true);
}

function loggedIn(name) {
  document.getElementById("login").hidden = true;
  // A section for users with some tags only (data-tags) is offered to them alone.
  for (const link of document.querySelectorAll("#nav a[data-tags]")) {
    link.hidden = !tagged(...link.dataset.tags.split(" "));
  }
  document.getElementById("nav").hidden = false;
  document.getElementById("who").hidden = false;
  document.getElementById("user").textContent = name;
  show();
}

function loggedOut() {
  clearTimeout(timer);
  shown++;
  logOut();
  document.getElementById("page").replaceChildren();
  document.getElementById("nav").hidden = true;
  document.getElementById("who").hidden = true;
  document.getElementById("login").hidden = false;
}

document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const fields = event.target.elements;
  try {
    const user = await logIn(fields.username.value, fields.password.value);
    notify("");
    loggedIn(user.name);
  } catch (error) {
    notify(error instanceof ApiError && error.status === 401 ? "Login failed." : error.message, true);
  }
});
document.getElementById("logout").addEventListener("click", () => {
  notify("");
  loggedOut();
});
// A notice stays when a change moves to another page (a deleted queue's page goes to the list),
// and goes when the user moves on.
document.getElementById("nav").addEventListener("click", () => notify(""));
window.addEventListener("hashchange", () => {
  if (credentials()) show();
});

if (credentials()) {
  whoami().then((user) => loggedIn(user.name), loggedOut);
} else {
  loggedOut();
}
