// The console's pages. Each is `render(page, ...route)`: it builds its parts into `page` and returns
// `refresh()`, which the shell calls at once and then every few seconds to update the live parts.

import { api, seg, tagged } from "./api.js";
import { History, lineChart } from "./chart.js";
import { button, bytes, facts, form, h, notify, number, percent, rate, table } from "./dom.js";

// Runs an API change and refreshes, then says `what` happened; a refusal is shown with its reason.
async function act(what, change, refresh) {
  try {
    const result = await change();
    if (refresh) await refresh();
    notify(what);
    return result;
  } catch (error) {
    notify(`Failed: ${error.message}`, true);
    return undefined;
  }
}

function confirmed(question) {
  return window.confirm(question);
}

function part(title, ...children) {
  return h("section", {}, h("h2", {}, title), ...children);
}

function slot() {
  return h("div", {});
}

async function vhostOptions() {
  return (await api("GET", "/api/vhosts")).map((v) => [v.name, v.name]);
}

function json(value) {
  return value && Object.keys(value).length ? JSON.stringify(value) : "";
}

// Parses a JSON object typed in a form; an empty field is {}.
function parseObject(text) {
  if (!text.trim()) return {};
  const value = JSON.parse(text);
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("not a JSON object");
  return value;
}

function features(item) {
  return [item.durable && "durable", item.auto_delete && "auto-delete", item.exclusive && "exclusive",
    item.internal && "internal", item.policy && `policy ${item.policy}`,
    item.operator_policy && `operator policy ${item.operator_policy}`].filter(Boolean).join(", ");
}

function exchangeLabel(name) {
  return name === "" ? "(AMQP default)" : name;
}

function exchangeSegment(name) {
  return seg(name === "" ? "amq.default" : name);
}

// --- Overview -------------------------------------------------------------------------------

const queued = new History();
const rates = new History();

export async function overview(page) {
  const cards = h("div", { class: "cards" });
  const queuedChart = lineChart([["ready", "Ready"], ["unacked", "Unacked"], ["total", "Total"]], "");
  const rateChart = lineChart([["publish", "Publish"], ["deliver", "Deliver / get"], ["ack", "Ack"]], "/s");
  const node = slot();
  page.append(h("h1", {}, "Overview"), cards,
    part("Queued messages", queuedChart), part("Message rates", rateChart), part("Node", node));
  return async () => {
    const o = await api("GET", "/api/overview");
    const totals = o.object_totals, messages = o.queue_totals, stats = o.message_stats || {};
    cards.replaceChildren(...[
      ["Connections", totals.connections], ["Channels", totals.channels], ["Exchanges", totals.exchanges],
      ["Queues", totals.queues], ["Consumers", totals.consumers], ["Messages", messages.messages],
    ].map(([label, value]) => h("div", { class: "card", "data-total": label.toLowerCase() },
      h("div", { class: "value" }, number(value)), h("div", { class: "label" }, label))));
    queued.add({ ready: messages.messages_ready, unacked: messages.messages_unacknowledged, total: messages.messages });
    const rateOf = (name) => stats[`${name}_details`]?.rate ?? 0;
    rates.add({ publish: rateOf("publish"), deliver: rateOf("deliver_get"), ack: rateOf("ack") });
    queuedChart.draw(queued);
    rateChart.draw(rates);
    node.replaceChildren(facts([
      ["Node", o.node], ["Version", `${o.product_name} ${o.product_version}`],
      ["Runs on", o.erlang_version],
      ["Listeners", o.listeners.map((l) => `${l.protocol} ${l.ip_address}:${l.port}`).join(", ")],
    ]));
  };
}

// --- Queues ---------------------------------------------------------------------------------

export async function queues(page) {
  const list = slot();
  const refresh = async () => {
    const found = await api("GET", "/api/queues");
    list.replaceChildren(table([
      { label: "Virtual host", value: (q) => q.vhost },
      { label: "Name", value: (q) => h("a", { href: `#/queue/${seg(q.vhost)}/${seg(q.name)}` }, q.name) },
      { label: "Type", value: (q) => q.type },
      { label: "Features", value: features },
      { label: "Ready", value: (q) => number(q.messages_ready), number: true },
      { label: "Unacked", value: (q) => number(q.messages_unacknowledged), number: true },
      { label: "Total", value: (q) => number(q.messages), number: true },
      { label: "Consumers", value: (q) => number(q.consumers), number: true },
      { label: "Incoming", value: (q) => rate(q.message_stats, "publish"), number: true },
      { label: "Deliver / get", value: (q) => rate(q.message_stats, "deliver_get"), number: true },
      { label: "Ack", value: (q) => rate(q.message_stats, "ack"), number: true },
    ], found, "No queues."));
  };
  const add = form([
    { name: "vhost", label: "Virtual host", type: "select", options: await vhostOptions(), value: "/" },
    { name: "name", label: "Name", required: true },
    { name: "durable", label: "Durable", type: "checkbox", value: true },
    { name: "arguments", label: "Arguments (JSON)" },
  ], "Add queue", (v) => act(`Queue ${v.name} added.`, () => api("PUT", `/api/queues/${seg(v.vhost)}/${seg(v.name)}`,
    { durable: v.durable, auto_delete: false, arguments: parseObject(v.arguments) }), refresh));
  page.append(h("h1", {}, "Queues"), h("section", {}, list), part("Add a queue", add));
  return refresh;
}

export async function queue(page, vhost, name) {
  const path = `/api/queues/${seg(vhost)}/${seg(name)}`;
  const about = slot(), consumers = slot(), bindings = slot(), messages = slot();
  const refresh = async () => {
    const q = await api("GET", path);
    about.replaceChildren(facts([
      ["Virtual host", q.vhost], ["Type", q.type], ["Features", features(q)],
      ["Arguments", json(q.arguments)], ["State", q.state],
      ["Ready", number(q.messages_ready)], ["Unacked", number(q.messages_unacknowledged)],
      ["Total", number(q.messages)], ["Consumers", number(q.consumers)],
      ["Consumer capacity", percent(q.consumer_capacity)],
      ["Message bytes", bytes(q.message_bytes)], ["In memory", bytes(q.message_bytes_ram)],
      ["Persistent", number(q.messages_persistent)],
      ["Incoming", rate(q.message_stats, "publish")], ["Deliver / get", rate(q.message_stats, "deliver_get")],
    ]));
    consumers.replaceChildren(table([
      { label: "Tag", value: (c) => c.consumer_tag },
      { label: "Channel", value: (c) => c.channel_details?.name ?? "" },
      { label: "Ack required", value: (c) => (c.ack_required ? "yes" : "no") },
      { label: "Prefetch", value: (c) => number(c.prefetch_count), number: true },
    ], q.consumer_details, "No consumers."));
    bindings.replaceChildren(table([
      { label: "From exchange", value: (b) => exchangeLabel(b.source) },
      { label: "Routing key", value: (b) => b.routing_key },
      { label: "Arguments", value: (b) => json(b.arguments) },
    ], await api("GET", `${path}/bindings`)));
  };
  const publish = form([
    { name: "payload", label: "Payload", type: "textarea" },
    { name: "persistent", label: "Persistent", type: "checkbox" },
  ], "Publish message", (v) => act("Message published.", () => api("POST", `/api/exchanges/${seg(vhost)}/amq.default/publish`,
    { routing_key: name, payload: v.payload, payload_encoding: "string",
      properties: v.persistent ? { delivery_mode: 2 } : {} }), refresh));
  const get = form([
    { name: "ackmode", label: "Ack mode", type: "select", value: "reject_requeue_true", options: [
      ["reject_requeue_true", "Requeue"], ["ack_requeue_false", "Acknowledge (removes them)"],
      ["reject_requeue_false", "Reject (dead-letters them)"]] },
    { name: "count", label: "Messages", type: "number", value: "1", size: 4 },
  ], "Get messages", async (v) => {
    const got = await act("Messages fetched.", () => api("POST", `${path}/get`,
      { count: Number(v.count), ackmode: v.ackmode, encoding: "auto", truncate: 50000 }), refresh);
    if (got) messages.replaceChildren(got.length ? h("div", {}, got.map(message)) : h("p", { class: "empty" }, "The queue is empty."));
  });
  const purge = button("Purge", () => act("Queue purged.", () => api("DELETE", `${path}/contents`), refresh), "danger");
  const remove = button("Delete", async () => {
    if (!confirmed(`Delete queue ${name}?`)) return;
    if (await act("Queue deleted.", () => api("DELETE", path).then(() => true))) location.hash = "#/queues";
  }, "danger");
  page.append(h("h1", {}, `Queue ${name}`), h("section", {}, about),
    part("Consumers", consumers), part("Bindings", bindings),
    part("Publish a message", publish), part("Get messages", get, messages),
    part("Purge or delete", h("div", { class: "actions" }, purge, remove)));
  return refresh;
}

function message(m) {
  return h("div", { class: "message" }, facts([
    ["Exchange", exchangeLabel(m.exchange)], ["Routing key", m.routing_key],
    ["Redelivered", m.redelivered ? "yes" : "no"], ["Properties", json(m.properties)],
    ["Payload", h("pre", {}, m.payload)],
    ["Size", `${number(m.payload_bytes)} bytes${m.payload_encoding === "base64" ? ", base64" : ""}`],
  ]));
}

// --- Exchanges ------------------------------------------------------------------------------

export async function exchanges(page) {
  const list = slot();
  const refresh = async () => {
    list.replaceChildren(table([
      { label: "Virtual host", value: (e) => e.vhost },
      { label: "Name", value: (e) => h("a", { href: `#/exchange/${seg(e.vhost)}/${exchangeSegment(e.name)}` }, exchangeLabel(e.name)) },
      { label: "Type", value: (e) => e.type },
      { label: "Features", value: features },
      { label: "Incoming", value: (e) => rate(e.message_stats, "publish_in"), number: true },
      { label: "Outgoing", value: (e) => rate(e.message_stats, "publish_out"), number: true },
    ], await api("GET", "/api/exchanges"), "No exchanges."));
  };
  const types = (await api("GET", "/api/overview")).exchange_types.map((t) => [t.name, t.name]);
  const add = form([
    { name: "vhost", label: "Virtual host", type: "select", options: await vhostOptions(), value: "/" },
    { name: "name", label: "Name", required: true },
    { name: "type", label: "Type", type: "select", options: types, value: "direct" },
    { name: "durable", label: "Durable", type: "checkbox", value: true },
  ], "Add exchange", (v) => act(`Exchange ${v.name} added.`, () => api("PUT", `/api/exchanges/${seg(v.vhost)}/${seg(v.name)}`,
    { type: v.type, durable: v.durable, auto_delete: false, internal: false, arguments: {} }), refresh));
  page.append(h("h1", {}, "Exchanges"), h("section", {}, list), part("Add an exchange", add));
  return refresh;
}

export async function exchange(page, vhost, name) {
  const path = `/api/exchanges/${seg(vhost)}/${seg(name)}`;
  const source = name === "amq.default" ? "" : name;
  const about = slot(), outgoing = slot(), incoming = slot(), routed = slot();
  const refresh = async () => {
    const e = await api("GET", path);
    about.replaceChildren(facts([["Virtual host", e.vhost], ["Type", e.type], ["Features", features(e)],
      ["Arguments", json(e.arguments)]]));
    outgoing.replaceChildren(table([
      { label: "To", value: (b) => `${b.destination_type} ${b.destination}` },
      { label: "Routing key", value: (b) => b.routing_key },
      { label: "Arguments", value: (b) => json(b.arguments) },
      { label: "", value: (b) => source ? button("Unbind", () => act("Binding removed.", () => api("DELETE",
        `/api/bindings/${seg(vhost)}/e/${seg(source)}/${b.destination_type[0]}/${seg(b.destination)}/${seg(b.properties_key)}`), refresh)) : null },
    ], await api("GET", `${path}/bindings/source`), "No bindings from this exchange."));
    incoming.replaceChildren(table([
      { label: "From", value: (b) => exchangeLabel(b.source) },
      { label: "Routing key", value: (b) => b.routing_key },
    ], await api("GET", `${path}/bindings/destination`), "No bindings to this exchange."));
  };
  const bind = form([
    { name: "kind", label: "To", type: "select", options: [["q", "queue"], ["e", "exchange"]], value: "q" },
    { name: "destination", label: "Name", required: true },
    { name: "routing_key", label: "Routing key" },
    { name: "arguments", label: "Arguments (JSON)" },
  ], "Bind", (v) => act("Binding added.", () => api("POST", `/api/bindings/${seg(vhost)}/e/${seg(source)}/${v.kind}/${seg(v.destination)}`,
    { routing_key: v.routing_key, arguments: parseObject(v.arguments) }), refresh));
  const publish = form([
    { name: "routing_key", label: "Routing key" },
    { name: "payload", label: "Payload", type: "textarea" },
    { name: "persistent", label: "Persistent", type: "checkbox" },
  ], "Publish message", async (v) => {
    const result = await act("Message published.", () => api("POST", `${path}/publish`,
      { routing_key: v.routing_key, payload: v.payload, payload_encoding: "string",
        properties: v.persistent ? { delivery_mode: 2 } : {} }), refresh);
    if (result) routed.replaceChildren(result.routed ? "Routed to at least one queue." : "Not routed: no binding matched.");
  });
  const remove = button("Delete", async () => {
    if (!confirmed(`Delete exchange ${name}?`)) return;
    if (await act("Exchange deleted.", () => api("DELETE", path).then(() => true))) location.hash = "#/exchanges";
  }, "danger");
  page.append(h("h1", {}, `Exchange ${exchangeLabel(source)}`), h("section", {}, about),
    part("Bindings from this exchange", outgoing, source ? bind : null), part("Bindings to this exchange", incoming),
    part("Publish a message", publish, h("p", { class: "muted", id: "routed" }, routed)));
  // The default exchange and the amq.* ones cannot be deleted.
  if (source && !source.startsWith("amq.")) page.append(part("Delete", remove));
  return refresh;
}

// --- Connections and channels ---------------------------------------------------------------

export async function connections(page) {
  const list = slot(), channels = slot();
  const refresh = async () => {
    list.replaceChildren(table([
      { label: "Name", value: (c) => c.name },
      { label: "Client", value: (c) => c.user_provided_name ?? [c.client_properties?.product, c.client_properties?.version].filter(Boolean).join(" ") },
      { label: "User", value: (c) => c.user },
      { label: "Virtual host", value: (c) => c.vhost },
      { label: "Protocol", value: (c) => c.protocol },
      { label: "Channels", value: (c) => number(c.channels), number: true },
      { label: "State", value: (c) => c.state },
      { label: "", value: (c) => button("Close", () => {
        if (!confirmed(`Close connection ${c.name}?`)) return;
        act("Connection closed.", () => api("DELETE", `/api/connections/${seg(c.name)}`, undefined,
          { "x-reason": "Closed via the web console" }), refresh);
      }, "danger") },
    ], await api("GET", "/api/connections"), "No connections."));
    channels.replaceChildren(table([
      { label: "Channel", value: (c) => c.name },
      { label: "User", value: (c) => c.user },
      { label: "Virtual host", value: (c) => c.vhost },
      { label: "Mode", value: (c) => [c.confirm && "confirm", c.transactional && "transactional"].filter(Boolean).join(", ") },
      { label: "Prefetch", value: (c) => number(c.prefetch_count), number: true },
      { label: "Unacked", value: (c) => number(c.messages_unacknowledged), number: true },
      { label: "Consumers", value: (c) => number(c.consumer_count), number: true },
      { label: "State", value: (c) => c.state },
    ], await api("GET", "/api/channels"), "No channels."));
  };
  page.append(h("h1", {}, "Connections"), h("section", {}, list), part("Channels", channels));
  return refresh;
}

// --- Users, virtual hosts and permissions ---------------------------------------------------

export async function admin(page) {
  const users = slot(), vhosts = slot(), permissions = slot(), topicPermissions = slot();
  const refresh = async () => {
    users.replaceChildren(table([
      { label: "Name", value: (u) => u.name },
      { label: "Tags", value: (u) => u.tags.join(", ") },
      { label: "", value: (u) => button("Delete", () => confirmed(`Delete user ${u.name}?`) &&
        act(`User ${u.name} deleted.`, () => api("DELETE", `/api/users/${seg(u.name)}`), refresh), "danger") },
    ], await api("GET", "/api/users")));
    vhosts.replaceChildren(table([
      { label: "Name", value: (v) => v.name },
      { label: "Description", value: (v) => v.description ?? "" },
      { label: "Messages", value: (v) => number(v.messages), number: true },
      { label: "", value: (v) => button("Delete", () => confirmed(`Delete virtual host ${v.name} and everything in it?`) &&
        act(`Virtual host ${v.name} deleted.`, () => api("DELETE", `/api/vhosts/${seg(v.name)}`), refresh), "danger") },
    ], await api("GET", "/api/vhosts")));
    permissions.replaceChildren(table([
      { label: "User", value: (p) => p.user },
      { label: "Virtual host", value: (p) => p.vhost },
      { label: "Configure", value: (p) => p.configure },
      { label: "Write", value: (p) => p.write },
      { label: "Read", value: (p) => p.read },
      { label: "", value: (p) => button("Clear", () => act(`Permissions of ${p.user} in ${p.vhost} cleared.`,
        () => api("DELETE", `/api/permissions/${seg(p.vhost)}/${seg(p.user)}`), refresh), "danger") },
    ], await api("GET", "/api/permissions")));
    topicPermissions.replaceChildren(table([
      { label: "User", value: (p) => p.user },
      { label: "Virtual host", value: (p) => p.vhost },
      { label: "Exchange", value: (p) => p.exchange },
      { label: "Write", value: (p) => p.write },
      { label: "Read", value: (p) => p.read },
      { label: "", value: (p) => button("Clear", () => act(
        `Topic permissions of ${p.user} on ${p.exchange} in ${p.vhost} cleared.`,
        () => api("DELETE", `/api/topic-permissions/${seg(p.vhost)}/${seg(p.user)}/${seg(p.exchange)}`), refresh),
        "danger") },
    ], await api("GET", "/api/topic-permissions"), "No topic permissions: every user may use every routing key."));
  };
  const addUser = form([
    { name: "name", label: "Name", required: true },
    { name: "password", label: "Password", type: "password" },
    { name: "tags", label: "Tags (comma separated)", value: "management" },
  ], "Add user", (v) => act(`User ${v.name} added.`, () => api("PUT", `/api/users/${seg(v.name)}`,
    { password: v.password, tags: v.tags }), refresh));
  const addVhost = form([
    { name: "name", label: "Name", required: true },
    { name: "description", label: "Description" },
  ], "Add virtual host", (v) => act(`Virtual host ${v.name} added.`, () => api("PUT", `/api/vhosts/${seg(v.name)}`,
    { description: v.description }), refresh));
  const setPermission = form([
    { name: "user", label: "User", required: true },
    { name: "vhost", label: "Virtual host", required: true, value: "/" },
    { name: "configure", label: "Configure", value: ".*" },
    { name: "write", label: "Write", value: ".*" },
    { name: "read", label: "Read", value: ".*" },
  ], "Set permissions", (v) => act(`Permissions of ${v.user} in ${v.vhost} set.`,
    () => api("PUT", `/api/permissions/${seg(v.vhost)}/${seg(v.user)}`,
      { configure: v.configure, write: v.write, read: v.read }), refresh));
  const setTopicPermission = form([
    { name: "user", label: "User", required: true },
    { name: "vhost", label: "Virtual host", required: true, value: "/" },
    { name: "exchange", label: "Topic exchange", required: true, value: "amq.topic" },
    { name: "write", label: "Write (routing keys)", value: ".*" },
    { name: "read", label: "Read (binding keys)", value: ".*" },
  ], "Set topic permissions", (v) => act(`Topic permissions of ${v.user} on ${v.exchange} in ${v.vhost} set.`,
    () => api("PUT", `/api/topic-permissions/${seg(v.vhost)}/${seg(v.user)}`,
      { exchange: v.exchange, write: v.write, read: v.read }), refresh));
  page.append(h("h1", {}, "Admin"),
    part("Users", users, h("h2", {}, "Add a user"), addUser),
    part("Virtual hosts", vhosts, h("h2", {}, "Add a virtual host"), addVhost),
    part("Permissions", permissions, h("h2", {}, "Set permissions"), setPermission),
    part("Topic permissions", topicPermissions, h("h2", {}, "Set topic permissions"), setTopicPermission));
  return refresh;
}

// --- Policies -------------------------------------------------------------------------------

export async function policies(page) {
  const options = await vhostOptions();
  // Operator policies are changed by administrators alone; a policymaker sees them.
  const administrator = tagged("administrator");
  const kinds = [
    policyKind("/api/policies", "Policy", "No policies.", options, true),
    policyKind("/api/operator-policies", "Operator policy", "No operator policies.", options, administrator),
  ];
  page.append(h("h1", {}, "Policies"), h("section", {}, kinds[0].list), part("Add a policy", kinds[0].add),
    part("Operator policies", kinds[1].list));
  if (administrator) page.append(part("Add an operator policy", kinds[1].add));
  return async () => { await Promise.all(kinds.map((kind) => kind.refresh())); };
}

// The list and form of policies or of operator policies, which differ only in their path in the API
// and in who may change them: without `changeable`, the list has no Delete buttons.
function policyKind(path, what, none, vhostChoices, changeable) {
  const list = slot();
  const columns = [
    { label: "Virtual host", value: (p) => p.vhost },
    { label: "Name", value: (p) => p.name },
    { label: "Pattern", value: (p) => p.pattern },
    { label: "Apply to", value: (p) => p["apply-to"] },
    { label: "Definition", value: (p) => json(p.definition) },
    { label: "Priority", value: (p) => number(p.priority), number: true },
  ];
  if (changeable) {
    columns.push({ label: "", value: (p) => button("Delete", () => act(`${what} ${p.name} deleted.`,
      () => api("DELETE", `${path}/${seg(p.vhost)}/${seg(p.name)}`), refresh), "danger") });
  }
  const refresh = async () => {
    list.replaceChildren(table(columns, await api("GET", path), none));
  };
  const add = form([
    { name: "vhost", label: "Virtual host", type: "select", options: vhostChoices, value: "/" },
    { name: "name", label: "Name", required: true },
    { name: "pattern", label: "Pattern", required: true },
    { name: "apply_to", label: "Apply to", type: "select", value: "all",
      options: [["all", "queues and exchanges"], ["queues", "queues"], ["exchanges", "exchanges"]] },
    { name: "priority", label: "Priority", type: "number", value: "0", size: 4 },
    { name: "definition", label: "Definition (JSON)", type: "textarea", value: '{"max-length": 1000}' },
  ], `Add ${what.toLowerCase()}`, (v) => act(`${what} ${v.name} added.`, () => api("PUT", `${path}/${seg(v.vhost)}/${seg(v.name)}`,
    { pattern: v.pattern, "apply-to": v.apply_to, priority: Number(v.priority), definition: parseObject(v.definition) }), refresh));
  return { list, add, refresh };
}
