// The console's pieces of interface: elements, notices, lists that refresh in place, dialogs.

// h("button", {type: "button", onclick}, "Stop"): an element; attributes starting with "on" are
// listeners, children are nodes or text (never parsed as HTML).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

let labelSeq = 0;

// A labelled field: label + control, the control gets an id if it has none.
export function field(label, control, hint) {
  if (!control.id) control.id = `f${++labelSeq}`;
  return h("div", { class: "field" }, h("label", { for: control.id }, label), control,
    hint ? h("small", { class: "hint" }, hint) : null);
}

// The page-wide notice: success in the status line, failures with the API's code and message.
export function notify(message, isError = false) {
  const n = document.getElementById("notice");
  n.textContent = "";
  n.className = isError ? "notice error" : "notice ok";
  n.setAttribute("role", isError ? "alert" : "status");
  n.append(h("span", {}, String(message)),
    h("button", { type: "button", class: "link", "aria-label": "Dismiss", onclick: () => { n.textContent = ""; n.className = "notice"; } }, "×"));
}

export function clearNotice() {
  const n = document.getElementById("notice");
  n.textContent = "";
  n.className = "notice";
}

// A list of resources as a table of fixed layout, updated in place: rows keep their element (by
// the resource's id) across refreshes, so nothing moves under the reader's eyes or focus. The
// first column selects a row (a radio, named after the resource).
export class Table {
  constructor({ caption, columns, key, name, onselect, empty }) {
    this.columns = columns;
    this.key = key;
    this.name = name;
    this.onselect = onselect;
    this.rows = new Map();
    this.items = new Map();
    this.selected = null;
    this.group = `sel${++labelSeq}`;
    this.body = h("tbody");
    this.emptyRow = h("tr", { class: "empty" }, h("td", { colspan: String(columns.length + 1) }, empty || "Nothing here yet."));
    this.table = h("table", { class: "list" },
      h("caption", { class: "sr-only" }, caption),
      h("colgroup", {}, h("col", { class: "c-sel" }), columns.map((c) => h("col", { class: c.cls || "" }))),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Select")),
        columns.map((c) => h("th", { scope: "col", class: c.cls || "" }, c.label)))),
      this.body);
    this.el = h("div", { class: "table-wrap" }, this.table);
    this.body.append(this.emptyRow);
  }

  item() {
    return this.selected ? this.items.get(this.selected) : null;
  }

  select(id) {
    this.selected = id;
    for (const [k, tr] of this.rows) {
      tr.classList.toggle("selected", k === id);
      tr.querySelector("input").checked = k === id;
    }
    if (this.onselect) this.onselect(this.item());
  }

  update(list) {
    const seen = new Set();
    let prev = null;
    for (const it of list) {
      const id = this.key(it);
      seen.add(id);
      this.items.set(id, it);
      let tr = this.rows.get(id);
      if (!tr) {
        const radio = h("input", { type: "radio", name: this.group, value: id, "aria-label": `Select ${this.name(it)}`,
          onchange: () => this.select(id) });
        tr = h("tr", { "data-key": id, onclick: (e) => { if (e.target.closest("a,button,input")) return; this.select(id); } },
          h("td", { class: "c-sel" }, radio),
          this.columns.map((c) => h("td", { class: c.cls || "" })));
        this.rows.set(id, tr);
      }
      this.columns.forEach((c, i) => {
        const td = tr.children[i + 1];
        const v = c.value(it);
        if (v instanceof Node) {
          if (!td.firstChild || !td.firstChild.isEqualNode(v)) td.replaceChildren(v);
        } else if (td.textContent !== String(v ?? "")) {
          td.textContent = v ?? "";
          td.title = v ?? "";
        }
      });
      const at = prev ? prev.nextSibling : this.body.firstChild;
      if (at !== tr) this.body.insertBefore(tr, at);
      prev = tr;
    }
    for (const [id, tr] of this.rows) {
      if (seen.has(id)) continue;
      tr.remove();
      this.rows.delete(id);
      this.items.delete(id);
    }
    if (this.selected && !seen.has(this.selected)) this.select(null);
    else if (this.onselect) this.onselect(this.item());
    if (list.length === 0) this.body.append(this.emptyRow);
    else this.emptyRow.remove();
  }
}

// A modal dialog with a form. fields: elements; submit(form) runs the action: when it throws,
// the error (the API's code and message) shows in the dialog, which stays open.
export function dialog({ title, fields = [], submitLabel = "OK", danger = false, submit, after }) {
  const error = h("div", { class: "error", role: "alert" });
  const ok = h("button", { type: "submit", class: danger ? "danger" : "primary" }, submitLabel);
  const cancel = h("button", { type: "button", onclick: () => d.close() }, "Cancel");
  const form = h("form", { method: "dialog" }, h("h2", {}, title), fields, error, h("div", { class: "buttons" }, cancel, ok));
  const d = h("dialog", { "aria-label": title }, form);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    ok.disabled = true;
    try {
      const result = await submit(form);
      d.close();
      if (after) after(result);
    } catch (err) {
      error.textContent = String(err);
    } finally {
      ok.disabled = false;
    }
  });
  d.addEventListener("close", () => d.remove());
  document.body.append(d);
  d.showModal();
  const first = form.querySelector("input:not([type=hidden]),select,textarea");
  (first || ok).focus();
  return d;
}

// A select of options [{value, label}], with the current value kept when the options change.
export function fillSelect(sel, options, keep = true) {
  const cur = sel.value;
  sel.replaceChildren(...options.map((o) => h("option", { value: o.value }, o.label ?? o.value)));
  if (keep && options.some((o) => o.value === cur)) sel.value = cur;
}

export function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

export function badge(state) {
  return h("span", { class: `state s-${state.replace(/[^a-z-]/g, "")}` }, state);
}
