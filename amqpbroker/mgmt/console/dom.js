// Building the page. Everything shown goes through `h`, which adds text as text nodes, never as
// markup: a queue named "<script>" is shown as those characters.

export function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// A table of `rows`: each column is {label, value(row), number?}; a row's cells are text or nodes.
export function table(columns, rows, empty = "Nothing here.") {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h("table", {},
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.number ? "number" : null }, c.label)))),
    h("tbody", {}, rows.map((row) => h("tr", {},
      columns.map((c) => h("td", { class: c.number ? "number" : null }, c.value(row)))))));
}

// A form of `fields` ({name, label, type?, options?, value?, required?}); `submit(values, form)`
// runs on submit with the values by name, as typed.
export function form(fields, label, submit) {
  const node = h("form", { class: "inline" },
    fields.map(field),
    h("button", { type: "submit" }, label));
  node.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = {};
    for (const f of fields) {
      const input = node.elements[f.name];
      values[f.name] = f.type === "checkbox" ? input.checked : input.value;
    }
    await submit(values, node);
  });
  return node;
}

function field(f) {
  const attributes = { name: f.name, required: f.required };
  if (f.type === "checkbox") {
    return h("label", { class: "check" }, h("input", { ...attributes, type: "checkbox", checked: f.value }), f.label);
  }
  let input;
  if (f.type === "select") {
    input = h("select", attributes, f.options.map(([value, text]) =>
      h("option", { value, selected: value === f.value }, text)));
  } else if (f.type === "textarea") {
    input = h("textarea", attributes, f.value ?? "");
  } else {
    input = h("input", { ...attributes, type: f.type ?? "text", value: f.value ?? "", size: f.size });
  }
  return h("label", {}, f.label, input);
}

// Label and value pairs.
export function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.map(([label, value]) => [h("dt", {}, label), h("dd", {}, value)]));
}

export function button(label, action, kind = "secondary") {
  return h("button", { type: "button", class: `${kind} small`, onclick: action }, label);
}

export function notify(text, error = false) {
  const notice = document.getElementById("notice");
  notice.className = error ? "error" : "";
  notice.textContent = text;
}

export function number(value) {
  return value === undefined || value === null ? "" : Number(value).toLocaleString("en");
}

// A share (0 to 1) as a whole percentage; empty when not given.
export function percent(value) {
  return value === undefined || value === null ? "" : `${Math.round(Number(value) * 100)}%`;
}

// A size in bytes, in the largest unit it fills (B, KiB, MiB, GiB); empty when not given.
export function bytes(value) {
  if (value === undefined || value === null) return "";
  const units = ["B", "KiB", "MiB", "GiB"];
  let size = Number(value), unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return unit ? `${size.toFixed(1)} ${units[unit]}` : `${size} B`;
}

// A rate from `message_stats` (`name_details.rate`), or an empty cell before anything was counted.
export function rate(stats, name) {
  const details = stats && stats[`${name}_details`];
  return details ? `${details.rate.toFixed(1)}/s` : "";
}
