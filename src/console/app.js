// The kiln console: sign-in, the region switcher, the pages. Each page is a function that builds
// its view and returns {refresh, stop}; lists refresh on a timer while their page is shown.
import { ApiError, call, child, describe, filters, items, jsonCall, list, loadSession, saveSession, tags, text } from "./api.js";
import { Table, badge, clearNotice, dialog, field, fillSelect, fmtTime, h, notify } from "./ui.js";

let session = loadSession();
let current = null; // the page shown: {refresh, stop}
const copies = new Map(); // image copies in progress, shown on the images page

const $ = (id) => document.getElementById(id);
const nameTag = (el) => tags(el).Name || "";
const fail = (e) => notify(e instanceof ApiError ? `${e.code}: ${e.message}` : String(e), true);

async function act(label, fn) {
  try {
    await fn();
    notify(label);
    if (current) current.refresh();
  } catch (e) {
    fail(e);
  }
}

function every(ms, fn) {
  let timer = null;
  let stopped = false;
  const tick = async () => {
    if (stopped) return;
    try {
      await fn();
    } catch (e) {
      fail(e);
    }
    if (!stopped) timer = setTimeout(tick, typeof ms === "function" ? ms() : ms);
  };
  tick();
  return { stop: () => { stopped = true; clearTimeout(timer); }, now: () => { clearTimeout(timer); tick(); } };
}

function toolbar(...buttons) {
  return h("div", { class: "toolbar", role: "toolbar", "aria-label": "Actions" }, buttons);
}

function btn(label, onclick, opts = {}) {
  return h("button", { type: "button", onclick, class: opts.cls, disabled: opts.disabled, "aria-label": opts.aria }, label);
}

// Enable the buttons that need a selection (and whose test passes) when the selection changes.
function bindSelection(table, rules) {
  table.onselect = (it) => {
    for (const [b, test] of rules) b.disabled = !it || (test ? !test(it) : false);
  };
  table.onselect(null);
}

function pageHead(title, ...extra) {
  return h("div", { class: "page-head" }, h("h1", {}, title), ...extra);
}

// ---- Images ----

function imageState(im) {
  return text(im, "imageState");
}

function imagesPage(root) {
  const scope = h("select", { id: "img-scope" },
    h("option", { value: "self" }, "Owned by me"),
    h("option", { value: "shared" }, "Shared with me"),
    h("option", { value: "public" }, "Public"));
  const nameF = h("input", { id: "img-name", type: "search", placeholder: "name, * wildcards", spellcheck: "false" });
  const ownerF = h("input", { id: "img-owner", type: "search", placeholder: "account id or alias", spellcheck: "false" });
  const table = new Table({
    caption: "Images",
    name: (im) => text(im, "name") || text(im, "imageId"),
    key: (im) => text(im, "imageId"),
    empty: "No images match.",
    columns: [
      { label: "Name", cls: "c-name", value: (im) => text(im, "name") },
      { label: "Image ID", cls: "c-id", value: (im) => text(im, "imageId") },
      { label: "Owner", cls: "c-owner mid", value: (im) => text(im, "imageOwnerAlias") || text(im, "imageOwnerId") },
      { label: "State", cls: "c-state", value: (im) => badge(imageState(im)) },
      { label: "Visibility", cls: "c-vis wide", value: (im) => (text(im, "isPublic") === "true" ? "public" : "private") },
      { label: "Created", cls: "c-time wide", value: (im) => fmtTime(text(im, "creationDate")) },
      { label: "Deprecation", cls: "c-time wide", value: (im) => fmtTime(text(im, "deprecationTime")) },
    ],
  });
  const launchB = btn("Launch", () => launchDialog(text(table.item(), "imageId")));
  const copyB = btn("Copy to region", () => copyDialog(table.item()));
  const shareB = btn("Share", () => shareDialog(table.item()));
  const deprecateB = btn("Deprecate", () => deprecateDialog(table.item()));
  const disableB = btn("Disable", () => {
    const im = table.item();
    const id = text(im, "imageId");
    if (imageState(im) === "disabled") act(`Enabled ${id}`, () => call(session, "EnableImage", { ImageId: id }));
    else act(`Disabled ${id}`, () => call(session, "DisableImage", { ImageId: id }));
  });
  const deregisterB = btn("Deregister", () => {
    const id = text(table.item(), "imageId");
    dialog({
      title: `Deregister ${id}?`, submitLabel: "Deregister", danger: true,
      fields: [h("p", {}, "The image can no longer be launched; its snapshots stay until you delete them.")],
      submit: () => call(session, "DeregisterImage", { ImageId: id }),
      after: () => { notify(`Deregistered ${id}`); current.refresh(); },
    });
  }, { cls: "danger" });
  bindSelection(table, [
    [launchB, (im) => imageState(im) === "available"],
    [copyB, (im) => imageState(im) === "available"],
    [shareB], [deprecateB], [disableB], [deregisterB],
  ]);
  const oldSelect = table.onselect;
  table.onselect = (im) => {
    oldSelect(im);
    disableB.textContent = im && imageState(im) === "disabled" ? "Enable" : "Disable";
  };
  const progress = h("ul", { class: "copies", "aria-label": "Copies in progress", "aria-live": "polite" });

  root.append(
    pageHead("Images"),
    h("div", { class: "filters" }, field("Show", scope), field("Name", nameF), field("Owner", ownerF)),
    toolbar(launchB, copyB, shareB, deprecateB, disableB, deregisterB),
    progress,
    table.el);

  async function load() {
    const f = {};
    if (nameF.value.trim()) f.name = [nameF.value.includes("*") ? nameF.value.trim() : `*${nameF.value.trim()}*`];
    const owner = ownerF.value.trim();
    let params;
    if (scope.value === "self") params = { "Owner.1": "self" };
    else if (scope.value === "public") params = { "ExecutableBy.1": "all", ...(owner ? { "Owner.1": owner } : {}) };
    else params = { "ExecutableBy.1": "self", ...(owner ? { "Owner.1": owner } : {}) };
    let list = await describe(session, "DescribeImages", { ...params, ...filters(f), IncludeDeprecated: "true", IncludeDisabled: "true" }, "imagesSet");
    if (scope.value === "shared") {
      const mine = new Set((await describe(session, "DescribeImages", { "Owner.1": "self" }, "imagesSet")).map((im) => text(im, "imageId")));
      list = list.filter((im) => !mine.has(text(im, "imageId")) && text(im, "isPublic") !== "true");
    }
    list.sort((a, b) => text(a, "name").localeCompare(text(b, "name")) || text(a, "imageId").localeCompare(text(b, "imageId")));
    table.update(list);
    await showCopies(progress);
  }
  const timer = every(() => ([...copies.values()].some((c) => !c.done) ? 1000 : 5000), load);
  for (const el of [scope, nameF, ownerF]) el.addEventListener(el.tagName === "SELECT" ? "change" : "input", () => timer.now());
  return { refresh: timer.now, stop: timer.stop };
}

// The copies started from this tab: the image in the destination region and its snapshot's
// progress, until the image is available (100%) or failed.
async function showCopies(ul) {
  for (const [id, c] of copies) {
    if (!c.done) {
      const [im] = await describe(session, "DescribeImages", { "ImageId.1": id }, "imagesSet", c.region).catch(() => []);
      c.state = im ? imageState(im) : "pending";
      const snap = im ? text(items(im, "blockDeviceMapping")[0], "ebs/snapshotId") : "";
      if (c.state === "available") c.pct = 100;
      else if (snap) {
        const [s] = await describe(session, "DescribeSnapshots", { "SnapshotId.1": snap }, "snapshotSet", c.region).catch(() => []);
        if (s) c.pct = parseInt(text(s, "progress"), 10) || 0;
      }
      c.done = c.state === "available" || c.state === "failed";
    }
    let li = ul.querySelector(`li[data-key="${id}"]`);
    if (!li) {
      li = h("li", { "data-key": id }, h("span", { class: "what" }), h("progress", { max: "100", "aria-label": `Copy of ${c.source} to ${c.region}` }), h("span", { class: "pct" }),
        btn("Dismiss", () => { copies.delete(id); li.remove(); }, { cls: "link", aria: `Dismiss copy ${id}` }));
      ul.append(li);
    }
    li.querySelector(".what").textContent = `${c.source} → ${id} in ${c.region} (${c.state})`;
    li.querySelector("progress").value = c.pct;
    li.querySelector(".pct").textContent = `${c.pct}%`;
    li.classList.toggle("done", c.done);
  }
}

function regionSelect(exclude) {
  const sel = h("select", { required: true });
  fillSelect(sel, regions.filter((r) => r !== exclude).map((r) => ({ value: r })));
  return sel;
}

function copyDialog(im) {
  const id = text(im, "imageId");
  const region = regionSelect(session.region);
  if (region.querySelector('option[value="eu-west-1"]')) region.value = "eu-west-1";
  const name = h("input", { value: text(im, "name"), required: true, spellcheck: "false" });
  dialog({
    title: `Copy ${id} to another region`, submitLabel: "Copy",
    fields: [field("Destination region", region), field("Name of the copy", name)],
    submit: async () => {
      const root = await call(session, "CopyImage", { SourceRegion: session.region, SourceImageId: id, Name: name.value }, region.value);
      return { id: text(root, "imageId"), region: region.value };
    },
    after: (r) => {
      copies.set(r.id, { source: id, region: r.region, pct: 0, state: "pending", done: false });
      notify(`Copying ${id} to ${r.region} as ${r.id}`);
      current.refresh();
    },
  });
}

function shareDialog(im) {
  const id = text(im, "imageId");
  const account = h("input", { inputmode: "numeric", pattern: "[0-9]{12}|all", placeholder: "123456789012", spellcheck: "false" });
  const op = h("select", {}, h("option", { value: "Add" }, "Share with"), h("option", { value: "Remove" }, "Stop sharing with"));
  dialog({
    title: `Share ${id}`, submitLabel: "Apply",
    fields: [field("Action", op), field("Account ID", account, "12 digits, or all to make the image public")],
    submit: () => {
      const who = account.value.trim();
      const p = who === "all" ? { [`LaunchPermission.${op.value}.1.Group`]: "all" } : { [`LaunchPermission.${op.value}.1.UserId`]: who };
      return call(session, "ModifyImageAttribute", { ImageId: id, ...p });
    },
    after: () => { notify(`Launch permissions of ${id} changed`); current.refresh(); },
  });
}

function deprecateDialog(im) {
  const id = text(im, "imageId");
  const when = h("input", { type: "datetime-local", required: true });
  const d = new Date(Date.now() + 7 * 86400e3);
  when.value = d.toISOString().slice(0, 16);
  const cancel = text(im, "deprecationTime");
  dialog({
    title: `Deprecate ${id}`, submitLabel: "Deprecate",
    fields: [field("Deprecated from (UTC)", when),
      cancel ? h("p", {}, `Deprecated from ${fmtTime(cancel)}. `, btn("Cancel the deprecation", () =>
        act(`Deprecation of ${id} cancelled`, () => call(session, "DisableImageDeprecation", { ImageId: id })).then(() => document.querySelector("dialog[open]")?.close()), { cls: "link" })) : null],
    submit: () => call(session, "EnableImageDeprecation", { ImageId: id, DeprecateAt: `${when.value}:00Z` }),
    after: () => { notify(`${id} deprecated from ${when.value} UTC`); current.refresh(); },
  });
}

// ---- Instances ----

const TRANSIENT = new Set(["pending", "stopping", "shutting-down"]);

async function launchDialog(imageId) {
  const image = h("select", { required: true });
  const type = h("select", { required: true });
  const zone = h("select", {});
  const key = h("select", {});
  const groups = h("select", { multiple: true, size: "3" });
  const name = h("input", { spellcheck: "false" });
  const userData = h("textarea", { rows: "4", spellcheck: "false" });
  const d = dialog({
    title: "Launch an instance", submitLabel: "Launch",
    fields: [field("Image", image), field("Instance type", type), field("Availability zone", zone), field("Key pair", key),
      field("Security groups", groups, "none selected: the VPC's default group"), field("Name", name), field("User data", userData, "a script or cloud-config, sent as it is written")],
    submit: async () => {
      const p = { ImageId: image.value, InstanceType: type.value, MinCount: "1", MaxCount: "1" };
      if (zone.value) p["Placement.AvailabilityZone"] = zone.value;
      if (key.value) p.KeyName = key.value;
      Array.from(groups.selectedOptions).forEach((o, i) => (p[`SecurityGroupId.${i + 1}`] = o.value));
      if (userData.value) p.UserData = btoa(String.fromCharCode(...new TextEncoder().encode(userData.value)));
      if (name.value) Object.assign(p, { "TagSpecification.1.ResourceType": "instance", "TagSpecification.1.Tag.1.Key": "Name", "TagSpecification.1.Tag.1.Value": name.value });
      const root = await call(session, "RunInstances", p);
      return text(items(root, "instancesSet")[0], "instanceId");
    },
    after: (id) => navigate("instances", `Launched ${id}`),
  });
  try {
    const [own, pub, typesL, zones, keys, sgs] = await Promise.all([
      describe(session, "DescribeImages", { "ExecutableBy.1": "self", ...filters({ state: ["available"] }) }, "imagesSet"),
      describe(session, "DescribeImages", { "ExecutableBy.1": "all", ...filters({ state: ["available"] }) }, "imagesSet"),
      describe(session, "DescribeInstanceTypes", {}, "instanceTypeSet"),
      describe(session, "DescribeAvailabilityZones", {}, "availabilityZoneInfo"),
      describe(session, "DescribeKeyPairs", {}, "keySet"),
      describe(session, "DescribeSecurityGroups", {}, "securityGroupInfo"),
    ]);
    const imgs = [...new Map([...own, ...pub].map((im) => [text(im, "imageId"), im])).values()];
    imgs.sort((a, b) => text(a, "name").localeCompare(text(b, "name")));
    const imgOpts = imgs.map((im) => ({ value: text(im, "imageId"), label: `${text(im, "name")} (${text(im, "imageId")})` }));
    if (imageId && !imgOpts.some((o) => o.value === imageId)) imgOpts.unshift({ value: imageId });
    fillSelect(image, imgOpts, false);
    if (imageId) image.value = imageId;
    const tl = typesL.map((t) => ({ value: text(t, "instanceType"), mem: +text(t, "memoryInfo/sizeInMiB"), cpu: text(t, "vCpuInfo/defaultVCpus") }))
      .sort((a, b) => a.mem - b.mem || a.value.localeCompare(b.value));
    fillSelect(type, tl.map((t) => ({ value: t.value, label: `${t.value} (${t.cpu} vCPU, ${t.mem} MiB)` })), false);
    if (tl.some((t) => t.value === "t2.nano")) type.value = "t2.nano";
    fillSelect(zone, [{ value: "", label: "any" }, ...zones.map((z) => ({ value: text(z, "zoneName") }))], false);
    fillSelect(key, [{ value: "", label: "none" }, ...keys.map((k) => ({ value: text(k, "keyName") }))], false);
    fillSelect(groups, sgs.map((g) => ({ value: text(g, "groupId"), label: `${text(g, "groupName")} (${text(g, "groupId")})` })), false);
  } catch (e) {
    d.querySelector(".error").textContent = String(e);
  }
}

function instancesPage(root) {
  const state = (i) => text(i, "instanceState/name");
  const table = new Table({
    caption: "Instances",
    name: (i) => nameTag(i) || text(i, "instanceId"),
    key: (i) => text(i, "instanceId"),
    empty: "No instances in this region. Launch one from an image.",
    columns: [
      { label: "Name", cls: "c-name", value: nameTag },
      { label: "Instance ID", cls: "c-id", value: (i) => text(i, "instanceId") },
      { label: "State", cls: "c-state", value: (i) => badge(state(i)) },
      { label: "Type", cls: "c-type mid", value: (i) => text(i, "instanceType") },
      { label: "Zone", cls: "c-zone wide", value: (i) => text(i, "placement/availabilityZone") },
      { label: "Addresses", cls: "c-addr wide", value: (i) => [text(i, "privateIpAddress"), text(i, "ipAddress")].filter(Boolean).join(" · ") },
      { label: "Image", cls: "c-id wide", value: (i) => text(i, "imageId") },
    ],
  });
  const ids = () => list("InstanceId", [text(table.item(), "instanceId")]);
  const idOf = () => text(table.item(), "instanceId");
  const launchB = btn("Launch", () => launchDialog(), { cls: "primary" });
  const startB = btn("Start", () => act(`Starting ${idOf()}`, () => call(session, "StartInstances", ids())));
  const stopB = btn("Stop", () => act(`Stopping ${idOf()}`, () => call(session, "StopInstances", ids())));
  const rebootB = btn("Reboot", () => act(`Rebooting ${idOf()}`, () => call(session, "RebootInstances", ids())));
  const imageB = btn("Create image", () => {
    const id = idOf();
    const name = h("input", { required: true, spellcheck: "false", value: `${nameTag(table.item()) || id}-${new Date().toISOString().slice(0, 10)}` });
    const desc = h("input", {});
    const noReboot = h("input", { type: "checkbox" });
    dialog({
      title: `Create an image of ${id}`, submitLabel: "Create image",
      fields: [field("Image name", name), field("Description", desc), h("div", { class: "check" }, noReboot, h("label", { for: noReboot.id = `nr-${id}` }, "No reboot (a running instance is imaged without stopping it)"))],
      submit: async () => text(await call(session, "CreateImage", { InstanceId: id, Name: name.value, Description: desc.value, NoReboot: noReboot.checked ? "true" : "" }), "imageId"),
      after: (ami) => notify(`Creating ${ami} from ${id}: see Images`),
    });
  });
  const consoleB = btn("Console output", () => consolePanel(idOf()));
  const terminateB = btn("Terminate", () => {
    const id = idOf();
    dialog({
      title: `Terminate ${id}?`, submitLabel: "Terminate", danger: true,
      fields: [h("p", {}, "The instance and its volumes that are deleted on termination are gone for good.")],
      submit: () => call(session, "TerminateInstances", list("InstanceId", [id])),
      after: () => { notify(`Terminating ${id}`); current.refresh(); },
    });
  }, { cls: "danger" });
  bindSelection(table, [
    [startB, (i) => state(i) === "stopped"],
    [stopB, (i) => state(i) === "running"],
    [rebootB, (i) => state(i) === "running"],
    [imageB, (i) => state(i) === "running" || state(i) === "stopped"],
    [consoleB, (i) => state(i) !== "terminated"],
    [terminateB, (i) => state(i) !== "terminated" && state(i) !== "shutting-down"],
  ]);
  const out = h("div", { id: "console-panel" });
  root.append(pageHead("Instances"), toolbar(launchB, startB, stopB, rebootB, imageB, consoleB, terminateB), table.el, out);
  let transient = false;
  const timer = every(() => (transient ? 1500 : 5000), async () => {
    const res = await describe(session, "DescribeInstances", {}, "reservationSet");
    const all = res.flatMap((r) => items(r, "instancesSet"));
    all.sort((a, b) => text(a, "launchTime").localeCompare(text(b, "launchTime")) || text(a, "instanceId").localeCompare(text(b, "instanceId")));
    transient = all.some((i) => TRANSIENT.has(state(i)));
    table.update(all);
  });
  let follow = null;
  function consolePanel(id) {
    if (follow) follow.stop();
    const pre = h("pre", { class: "console", tabindex: "0", "aria-label": `Console output of ${id}` });
    const live = h("input", { type: "checkbox", checked: true, id: "console-follow" });
    const stamp = h("span", { class: "hint" });
    out.replaceChildren(h("section", { class: "panel", "aria-label": `Console output of ${id}` },
      h("div", { class: "panel-head" }, h("h2", {}, `Console output of ${id}`),
        h("div", { class: "check" }, live, h("label", { for: "console-follow" }, "Follow")), stamp,
        btn("Close", () => { follow.stop(); out.replaceChildren(); }, { aria: "Close the console output" })),
      pre));
    const dec = new TextDecoder();
    follow = every(2000, async () => {
      if (!live.checked) return;
      const r = await call(session, "GetConsoleOutput", { InstanceId: id, Latest: "true" });
      const b64 = text(r, "output");
      const s = dec.decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      if (pre.textContent !== s) pre.textContent = s || "(no output yet)";
      if (atEnd) pre.scrollTop = pre.scrollHeight;
      stamp.textContent = `updated ${new Date().toLocaleTimeString()}`;
    });
    pre.focus();
  }
  return { refresh: timer.now, stop: () => { timer.stop(); if (follow) follow.stop(); } };
}

// ---- Volumes and snapshots ----

function volumesPage(root) {
  const table = new Table({
    caption: "Volumes", name: (v) => text(v, "volumeId"), key: (v) => text(v, "volumeId"), empty: "No volumes in this region.",
    columns: [
      { label: "Name", cls: "c-name", value: nameTag },
      { label: "Volume ID", cls: "c-id", value: (v) => text(v, "volumeId") },
      { label: "State", cls: "c-state", value: (v) => badge(text(v, "status")) },
      { label: "Size", cls: "c-num mid", value: (v) => `${text(v, "size")} GiB` },
      { label: "Zone", cls: "c-zone wide", value: (v) => text(v, "availabilityZone") },
      { label: "Attached to", cls: "c-id wide", value: (v) => items(v, "attachmentSet").map((a) => `${text(a, "instanceId")} ${text(a, "device")}`).join(", ") },
      { label: "From snapshot", cls: "c-id wide", value: (v) => text(v, "snapshotId") },
    ],
  });
  const snapB = btn("Create snapshot", () => {
    const id = text(table.item(), "volumeId");
    const desc = h("input", {});
    dialog({
      title: `Snapshot ${id}`, submitLabel: "Create snapshot", fields: [field("Description", desc)],
      submit: async () => text(await call(session, "CreateSnapshot", { VolumeId: id, Description: desc.value }), "snapshotId"),
      after: (s) => notify(`Creating ${s}: see Snapshots`),
    });
  });
  const delB = btn("Delete", () => {
    const id = text(table.item(), "volumeId");
    dialog({ title: `Delete ${id}?`, submitLabel: "Delete", danger: true, fields: [],
      submit: () => call(session, "DeleteVolume", { VolumeId: id }), after: () => { notify(`Deleted ${id}`); current.refresh(); } });
  }, { cls: "danger" });
  bindSelection(table, [[snapB], [delB, (v) => text(v, "status") === "available"]]);
  root.append(pageHead("Volumes"), toolbar(snapB, delB), table.el);
  const timer = every(5000, async () => {
    const vs = await describe(session, "DescribeVolumes", {}, "volumeSet");
    vs.sort((a, b) => text(a, "createTime").localeCompare(text(b, "createTime")));
    table.update(vs);
  });
  return { refresh: timer.now, stop: timer.stop };
}

function snapshotsPage(root) {
  const table = new Table({
    caption: "Snapshots", name: (s) => text(s, "snapshotId"), key: (s) => text(s, "snapshotId"), empty: "No snapshots of yours in this region.",
    columns: [
      { label: "Snapshot ID", cls: "c-id", value: (s) => text(s, "snapshotId") },
      { label: "State", cls: "c-state", value: (s) => badge(text(s, "status")) },
      { label: "Progress", cls: "c-num mid", value: (s) => text(s, "progress") },
      { label: "Size", cls: "c-num mid", value: (s) => `${text(s, "volumeSize")} GiB` },
      { label: "Volume", cls: "c-id wide", value: (s) => text(s, "volumeId") },
      { label: "Description", cls: "c-desc wide", value: (s) => text(s, "description") },
      { label: "Started", cls: "c-time wide", value: (s) => fmtTime(text(s, "startTime")) },
    ],
  });
  const delB = btn("Delete", () => {
    const id = text(table.item(), "snapshotId");
    dialog({ title: `Delete ${id}?`, submitLabel: "Delete", danger: true, fields: [],
      submit: () => call(session, "DeleteSnapshot", { SnapshotId: id }), after: () => { notify(`Deleted ${id}`); current.refresh(); } });
  }, { cls: "danger" });
  bindSelection(table, [[delB]]);
  root.append(pageHead("Snapshots"), toolbar(delB), table.el);
  let pending = false;
  const timer = every(() => (pending ? 1500 : 5000), async () => {
    const ss = await describe(session, "DescribeSnapshots", { "Owner.1": "self" }, "snapshotSet");
    ss.sort((a, b) => text(a, "startTime").localeCompare(text(b, "startTime")) || text(a, "snapshotId").localeCompare(text(b, "snapshotId")));
    pending = ss.some((s) => text(s, "status") === "pending");
    table.update(ss);
  });
  return { refresh: timer.now, stop: timer.stop };
}

// ---- Key pairs and security groups ----

function keypairsPage(root) {
  const table = new Table({
    caption: "Key pairs", name: (k) => text(k, "keyName"), key: (k) => text(k, "keyPairId"), empty: "No key pairs in this region.",
    columns: [
      { label: "Name", cls: "c-name", value: (k) => text(k, "keyName") },
      { label: "Key pair ID", cls: "c-id", value: (k) => text(k, "keyPairId") },
      { label: "Type", cls: "c-type mid", value: (k) => text(k, "keyType") },
      { label: "Fingerprint", cls: "c-desc wide", value: (k) => text(k, "keyFingerprint") },
    ],
  });
  const createB = btn("Create key pair", () => {
    const name = h("input", { required: true, spellcheck: "false" });
    const type = h("select", {}, h("option", { value: "ed25519" }, "ed25519"), h("option", { value: "rsa" }, "rsa"));
    dialog({
      title: "Create a key pair", submitLabel: "Create", fields: [field("Name", name), field("Type", type)],
      submit: async () => call(session, "CreateKeyPair", { KeyName: name.value, KeyType: type.value }),
      after: (r) => {
        current.refresh();
        const material = h("textarea", { rows: "8", readonly: true, spellcheck: "false" }, text(r, "keyMaterial"));
        dialog({ title: `Private key of ${text(r, "keyName")}`, submitLabel: "Done",
          fields: [h("p", {}, "Save this private key now: kiln keeps only the public key."), field("Private key", material)],
          submit: async () => null });
      },
    });
  }, { cls: "primary" });
  const importB = btn("Import public key", () => {
    const name = h("input", { required: true, spellcheck: "false" });
    const pub = h("textarea", { rows: "4", required: true, spellcheck: "false", placeholder: "ssh-ed25519 AAAA…" });
    dialog({
      title: "Import a public key", submitLabel: "Import", fields: [field("Name", name), field("Public key", pub)],
      submit: () => call(session, "ImportKeyPair", { KeyName: name.value, PublicKeyMaterial: btoa(pub.value.trim()) }),
      after: () => { notify(`Imported ${name.value}`); current.refresh(); },
    });
  });
  const delB = btn("Delete", () => {
    const k = table.item();
    dialog({ title: `Delete ${text(k, "keyName")}?`, submitLabel: "Delete", danger: true, fields: [],
      submit: () => call(session, "DeleteKeyPair", { KeyPairId: text(k, "keyPairId") }),
      after: () => { notify(`Deleted ${text(k, "keyName")}`); current.refresh(); } });
  }, { cls: "danger" });
  bindSelection(table, [[delB]]);
  root.append(pageHead("Key pairs"), toolbar(createB, importB, delB), table.el);
  const timer = every(10000, async () => {
    const ks = await describe(session, "DescribeKeyPairs", {}, "keySet");
    ks.sort((a, b) => text(a, "keyName").localeCompare(text(b, "keyName")));
    table.update(ks);
  });
  return { refresh: timer.now, stop: timer.stop };
}

function groupsPage(root) {
  const rules = (g, set) => items(g, set).map((p) => {
    const proto = text(p, "ipProtocol");
    const ports = text(p, "fromPort") ? (text(p, "fromPort") === text(p, "toPort") ? text(p, "fromPort") : `${text(p, "fromPort")}-${text(p, "toPort")}`) : "all";
    const from = [...items(p, "ipRanges").map((r) => text(r, "cidrIp")), ...items(p, "groups").map((r) => text(r, "groupId"))].join(" ");
    return `${proto === "-1" ? "all" : proto} ${ports} ${from}`;
  }).join("; ");
  const table = new Table({
    caption: "Security groups", name: (g) => text(g, "groupName"), key: (g) => text(g, "groupId"), empty: "No security groups in this region.",
    columns: [
      { label: "Name", cls: "c-name", value: (g) => text(g, "groupName") },
      { label: "Group ID", cls: "c-id", value: (g) => text(g, "groupId") },
      { label: "VPC", cls: "c-id wide", value: (g) => text(g, "vpcId") },
      { label: "Inbound", cls: "c-desc", value: (g) => rules(g, "ipPermissions") },
      { label: "Description", cls: "c-desc wide", value: (g) => text(g, "groupDescription") },
    ],
  });
  const createB = btn("Create security group", () => {
    const name = h("input", { required: true, spellcheck: "false" });
    const desc = h("input", { required: true });
    dialog({
      title: "Create a security group", submitLabel: "Create", fields: [field("Name", name), field("Description", desc)],
      submit: async () => text(await call(session, "CreateSecurityGroup", { GroupName: name.value, GroupDescription: desc.value }), "groupId"),
      after: (id) => { notify(`Created ${id}`); current.refresh(); },
    });
  }, { cls: "primary" });
  const ruleB = btn("Allow inbound", () => {
    const g = table.item();
    const proto = h("select", {}, ["tcp", "udp", "icmp", "all"].map((p) => h("option", { value: p === "all" ? "-1" : p }, p)));
    const from = h("input", { inputmode: "numeric", value: "22" });
    const to = h("input", { inputmode: "numeric", value: "22" });
    const cidr = h("input", { value: "0.0.0.0/0", spellcheck: "false" });
    dialog({
      title: `Allow inbound traffic to ${text(g, "groupName")}`, submitLabel: "Allow",
      fields: [field("Protocol", proto), field("From port", from), field("To port", to), field("Source CIDR", cidr)],
      submit: () => call(session, "AuthorizeSecurityGroupIngress", { GroupId: text(g, "groupId"), "IpPermissions.1.IpProtocol": proto.value,
        "IpPermissions.1.FromPort": proto.value === "-1" ? "" : from.value, "IpPermissions.1.ToPort": proto.value === "-1" ? "" : to.value,
        "IpPermissions.1.IpRanges.1.CidrIp": cidr.value }),
      after: () => { notify(`Rule added to ${text(g, "groupId")}`); current.refresh(); },
    });
  });
  const delB = btn("Delete", () => {
    const g = table.item();
    dialog({ title: `Delete ${text(g, "groupName")}?`, submitLabel: "Delete", danger: true, fields: [],
      submit: () => call(session, "DeleteSecurityGroup", { GroupId: text(g, "groupId") }),
      after: () => { notify(`Deleted ${text(g, "groupId")}`); current.refresh(); } });
  }, { cls: "danger" });
  bindSelection(table, [[ruleB], [delB]]);
  root.append(pageHead("Security groups"), toolbar(createB, ruleB, delB), table.el);
  const timer = every(10000, async () => {
    const gs = await describe(session, "DescribeSecurityGroups", {}, "securityGroupInfo");
    gs.sort((a, b) => text(a, "groupName").localeCompare(text(b, "groupName")) || text(a, "groupId").localeCompare(text(b, "groupId")));
    table.update(gs);
  });
  return { refresh: timer.now, stop: timer.stop };
}

// ---- Marketplace ----

const AGREEMENT = "AWSMPCommerceService_v20200301";

// The marketplace's products (their images, owner aws-marketplace, with a product code) and the
// account's agreements (the Agreement API): subscribe, cancel, launch. Bills are `kiln bill`.
function marketplacePage(root) {
  let agreements = [];
  const active = (code) => agreements.find((a) => a.role === "buyer" && a.status === "ACTIVE" && a.proposalSummary.offerId === `offer-${code}`);
  const codeOf = (im) => text(child(child(im, "productCodes"), "item"), "productCode");
  const products = new Table({
    caption: "Products", name: (im) => text(im, "description") || text(im, "name"), key: (im) => text(im, "imageId"),
    empty: "No products in this region.",
    columns: [
      { label: "Product", cls: "c-name", value: (im) => text(im, "description") || text(im, "name") },
      { label: "Product code", cls: "c-id", value: (im) => codeOf(im) },
      { label: "Image ID", cls: "c-id wide", value: (im) => text(im, "imageId") },
      { label: "Subscription", cls: "c-state", value: (im) => badge(active(codeOf(im)) ? "active" : "none") },
    ],
  });
  const subscribeB = btn("Subscribe", () => {
    const code = codeOf(products.item());
    act(`Subscribed to ${code}`, async () => {
      const req = await jsonCall(session, `${AGREEMENT}.CreateAgreementRequest`, {
        intent: "NEW", agreementProposalIdentifier: `offer-${code}`, requestedTerms: [{ id: `term-${code}` }] });
      await jsonCall(session, `${AGREEMENT}.AcceptAgreementRequest`, { agreementRequestId: req.agreementRequestId });
    });
  }, { cls: "primary" });
  const launchB = btn("Launch", () => launchDialog(text(products.item(), "imageId")));
  bindSelection(products, [[subscribeB, (im) => !active(codeOf(im))], [launchB, (im) => !!active(codeOf(im))]]);

  const table = new Table({
    caption: "Agreements", name: (a) => a.agreementId, key: (a) => `${a.agreementId}/${a.role}`, empty: "No agreements.",
    columns: [
      { label: "Agreement", cls: "c-id", value: (a) => a.agreementId },
      { label: "Offer", cls: "c-id", value: (a) => a.proposalSummary.offerId },
      { label: "Role", cls: "c-owner mid", value: (a) => a.role },
      { label: "Status", cls: "c-state", value: (a) => badge(a.status.toLowerCase()) },
      { label: "Since", cls: "c-time wide", value: (a) => fmtTime(new Date(a.startTime * 1000).toISOString()) },
      { label: "Until", cls: "c-time wide", value: (a) => (a.endTime ? fmtTime(new Date(a.endTime * 1000).toISOString()) : "") },
    ],
  });
  const cancelB = btn("Cancel agreement", () => {
    const a = table.item();
    dialog({
      title: `Cancel ${a.agreementId}?`, submitLabel: "Cancel agreement", danger: true,
      fields: [h("p", {}, "New launches of the product are refused; running instances keep running and keep being billed until they stop.")],
      submit: () => jsonCall(session, `${AGREEMENT}.CancelAgreement`, { agreementId: a.agreementId }),
      after: () => { notify(`Cancelled ${a.agreementId}`); current.refresh(); },
    });
  }, { cls: "danger" });
  bindSelection(table, [[cancelB, (a) => a.status === "ACTIVE" && a.role === "buyer"]]);
  root.append(pageHead("Marketplace"), toolbar(subscribeB, launchB), products.el, toolbar(cancelB), table.el,
    h("p", {}, "Bills and sellers' reports: kiln bill --account ACCOUNT and kiln marketplace report --seller ACCOUNT on the host."));
  const timer = every(10000, async () => {
    let all = [];
    for (const [party, role] of [["Acceptor", "buyer"], ["Proposer", "seller"]]) {
      let token;
      do {
        const input = { catalog: "AWSMarketplace", filters: [{ name: "PartyType", values: [party] }] };
        const r = await jsonCall(session, `${AGREEMENT}.SearchAgreements`, token ? { ...input, nextToken: token } : input);
        all = all.concat((r.agreementViewSummaries || []).map((a) => ({ ...a, role })));
        token = r.nextToken;
      } while (token);
    }
    agreements = all;
    table.update(agreements);
    const ims = await describe(session, "DescribeImages", { "Owner.1": "aws-marketplace" }, "imagesSet");
    products.update(ims);
    products.onselect(products.item());
  });
  return { refresh: timer.now, stop: timer.stop };
}

// ---- Frame: sign-in, regions, routing ----

let carried = null; // a notice for the page navigate() goes to

function navigate(name, message) {
  if (location.hash === `#${name}`) {
    notify(message);
    current.refresh();
    return;
  }
  carried = message;
  location.hash = `#${name}`;
}

const pages = { images: imagesPage, instances: instancesPage, volumes: volumesPage, snapshots: snapshotsPage, keypairs: keypairsPage, groups: groupsPage, marketplace: marketplacePage };
let regions = [];

function route() {
  if (current) current.stop();
  current = null;
  const page = $("page");
  page.replaceChildren();
  if (!session) return;
  const name = location.hash.slice(1) in pages ? location.hash.slice(1) : "instances";
  for (const a of $("nav").querySelectorAll("a")) {
    if (a.getAttribute("href") === `#${name}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = `${$("nav").querySelector(`a[href="#${name}"]`).textContent} · ${session.region} · kiln console`;
  current = pages[name](page);
}

async function loadRegions() {
  const rs = await describe(session, "DescribeRegions", {}, "regionInfo");
  regions = rs.map((r) => text(r, "regionName")).sort();
  if (!regions.includes(session.region)) regions.unshift(session.region);
  fillSelect($("region"), regions.map((r) => ({ value: r })), false);
  $("region").value = session.region;
}

function showSignedIn(on) {
  $("signin").hidden = on;
  $("nav").hidden = !on;
  $("session").hidden = !on;
  if (on) $("who").textContent = session.accessKey;
}

async function start() {
  $("signin").addEventListener("submit", async (e) => {
    e.preventDefault();
    const s = { accessKey: $("ak").value.trim(), secretKey: $("sk").value, region: $("sregion").value.trim() };
    $("signin-error").textContent = "";
    try {
      await call(s, "DescribeRegions", {});
      session = s;
      saveSession(s);
      $("sk").value = "";
      await loadRegions();
      showSignedIn(true);
      if (!location.hash) location.hash = "#instances";
      else route();
      $("main").focus();
    } catch (err) {
      $("signin-error").textContent = String(err);
    }
  });
  $("signout").addEventListener("click", () => {
    saveSession(null);
    session = null;
    copies.clear();
    clearNotice();
    showSignedIn(false);
    route();
    $("ak").focus();
  });
  $("region").addEventListener("change", () => {
    session.region = $("region").value;
    saveSession(session);
    clearNotice();
    route();
  });
  window.addEventListener("hashchange", () => {
    clearNotice();
    if (carried) notify(carried);
    carried = null;
    route();
  });
  if (session) {
    try {
      await loadRegions();
      showSignedIn(true);
      route();
      return;
    } catch (e) {
      fail(e);
    }
  }
  showSignedIn(false);
  $("ak").focus();
}

start();
