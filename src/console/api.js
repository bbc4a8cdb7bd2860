// The EC2 Query API as the console calls it: form-encoded POSTs to its own origin, signed with
// SigV4 (sigv4.js), answers parsed as XML. The same API and the same answers the kiln CLI and the
// aws CLI get; an error is thrown as ApiError with the API's own code and message.
import { signedHeaders } from "./sigv4.js";

export const API_VERSION = "2016-11-15";

export class ApiError extends Error {
  constructor(code, message, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
  toString() {
    return `${this.code}: ${this.message}`;
  }
}

// The session: credentials and the region, kept in this tab only (sessionStorage).
const KEY = "kiln-console-session";

export function loadSession() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) || "null");
  } catch {
    return null;
  }
}

export function saveSession(s) {
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
  else sessionStorage.removeItem(KEY);
}

function encode(params) {
  return Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== null && v !== "")
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join("&");
}

// Call action with params (names as the Query API has them: "ImageId.1", "Filter.1.Name").
// Returns the answer's document element.
export async function call(session, action, params = {}, region = session.region) {
  const body = encode({ Action: action, Version: API_VERSION, ...params });
  const headers = await signedHeaders({
    accessKey: session.accessKey,
    secretKey: session.secretKey,
    region,
    host: location.host,
    body,
  });
  let resp;
  try {
    resp = await fetch("/", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded; charset=utf-8", ...headers },
      body,
      cache: "no-store",
      credentials: "omit",
    });
  } catch (e) {
    throw new ApiError("NetworkError", `The daemon did not answer: ${e.message}`, 0);
  }
  const text = await resp.text();
  const doc = new DOMParser().parseFromString(text, "application/xml");
  const root = doc.documentElement;
  if (!resp.ok || root.nodeName === "Response" || root.nodeName === "ErrorResponse") {
    const code = doc.getElementsByTagName("Code")[0];
    const msg = doc.getElementsByTagName("Message")[0];
    throw new ApiError(
      code ? code.textContent : `HTTP${resp.status}`,
      msg ? msg.textContent : `the endpoint answered HTTP ${resp.status} ${resp.statusText}, not an EC2 answer`,
      resp.status,
    );
  }
  return root;
}

// Call an operation of an awsJson service signed "aws-marketplace" (target
// "AWSMPCommerceService_v20200301.SearchAgreements") with input; returns the answer's object.
export async function jsonCall(session, target, input = {}, region = session.region) {
  const body = JSON.stringify(input);
  const headers = await signedHeaders({
    accessKey: session.accessKey,
    secretKey: session.secretKey,
    region,
    host: location.host,
    body,
    service: "aws-marketplace",
  });
  let resp;
  try {
    resp = await fetch("/", {
      method: "POST",
      headers: { "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": target, ...headers },
      body,
      cache: "no-store",
      credentials: "omit",
    });
  } catch (e) {
    throw new ApiError("NetworkError", `The daemon did not answer: ${e.message}`, 0);
  }
  let out = null;
  try {
    out = await resp.json();
  } catch (e) {
    out = null;
  }
  if (!resp.ok || !out) {
    const code = out && out.__type ? out.__type.split("#").pop() : `HTTP${resp.status}`;
    throw new ApiError(code, (out && (out.message || out.Message)) || `the endpoint answered HTTP ${resp.status}`, resp.status);
  }
  return out;
}

// Every page of a Describe action (NextToken), the items of its set concatenated.
export async function describe(session, action, params, set, region) {
  let out = [];
  let token;
  do {
    const root = await call(session, action, token ? { ...params, NextToken: token } : params, region);
    out = out.concat(items(root, set));
    token = text(root, "nextToken");
  } while (token);
  return out;
}

// The direct child named name of el, or null.
export function child(el, name) {
  if (!el) return null;
  for (const c of el.children) if (c.localName === name) return c;
  return null;
}

// The text of a path of direct children ("placement/availabilityZone"), or "".
export function text(el, path) {
  for (const name of path.split("/")) el = child(el, name);
  return el ? el.textContent : "";
}

// The <item> children of the set at path.
export function items(el, path) {
  for (const name of path.split("/")) el = child(el, name);
  return el ? Array.from(el.children).filter((c) => c.localName === "item") : [];
}

// The tags of a resource as an object.
export function tags(el) {
  const out = {};
  for (const t of items(el, "tagSet")) out[text(t, "key")] = text(t, "value");
  return out;
}

// Numbered list parameters: list("InstanceId", ["i-1"]) -> {"InstanceId.1": "i-1"}.
export function list(name, values) {
  const out = {};
  values.forEach((v, i) => (out[`${name}.${i + 1}`] = v));
  return out;
}

// Filters: filters({name: ["x*"]}) -> Filter.1.Name / Filter.1.Value.1.
export function filters(obj) {
  const out = {};
  Object.entries(obj).forEach(([name, values], i) => {
    out[`Filter.${i + 1}.Name`] = name;
    values.forEach((v, j) => (out[`Filter.${i + 1}.Value.${j + 1}`] = v));
  });
  return out;
}
