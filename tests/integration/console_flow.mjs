// The console's end-to-end flow in Debian's Chromium through playwright-core, run by
// test_console.py: node console_flow.mjs (environment: PLAYWRIGHT, CHROMIUM, KILN_URL, AK, SK,
// SHOTS). Prints one line per step; exits non-zero on the first failure.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { chromium } = require(process.env.PLAYWRIGHT);
const url = process.env.KILN_URL;
const shots = process.env.SHOTS;
const T = 120000;
const started = Date.now();
const problems = [];

function step(msg) {
  console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`);
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM, args: ["--no-sandbox"], headless: true });
const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
const page = await context.newPage();
page.setDefaultTimeout(T);
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
page.on("console", (m) => {
  // A refused API call is logged by the browser as a failed load: expected where the flow
  // provokes one.
  if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`console error: ${m.text()}`);
});
const requests = [];
page.on("request", (r) => requests.push(r.url()));

const shot = (name) => page.screenshot({ path: `${shots}/${name}.png` });
const row = (text) => page.locator("tbody tr", { hasText: text });
const dialog = () => page.locator("dialog[open]");

async function waitState(text, state) {
  await page.waitForFunction(([t, s]) => {
    const r = Array.from(document.querySelectorAll("tbody tr")).find((tr) => tr.textContent.includes(t));
    return r && r.querySelector(".state")?.textContent === s;
  }, [text, state], { timeout: T });
}

async function select(name) {
  await page.getByRole("radio", { name: `Select ${name}`, exact: true }).check();
}

async function notice() {
  return (await page.locator("#notice").textContent()).replace(/×$/, "");
}

try {
  // Sign in.
  await page.goto(`${url}/console/`);
  await page.getByLabel("Access key ID", { exact: true }).waitFor();
  await shot("signin");
  await page.getByLabel("Access key ID", { exact: true }).fill(process.env.AK);
  await page.getByLabel("Secret access key", { exact: true }).fill("wrong-secret");
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.locator("#signin-error", { hasText: "SignatureDoesNotMatch" }).waitFor();
  step(`a wrong secret is refused: ${await page.locator("#signin-error").textContent()}`);
  await page.getByLabel("Secret access key", { exact: true }).fill(process.env.SK);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.getByRole("navigation", { name: "Pages" }).waitFor();
  step("signed in");

  // Key pairs: create one, and the API's error for a second of the same name.
  await page.getByRole("link", { name: "Key pairs", exact: true }).click();
  await page.getByRole("button", { name: "Create key pair", exact: true }).click();
  await dialog().getByLabel("Name", { exact: true }).fill("web-key");
  await dialog().getByRole("button", { name: "Create", exact: true }).click();
  await page.getByLabel("Private key", { exact: true }).waitFor();
  if (!(await page.getByLabel("Private key", { exact: true }).inputValue()).includes("PRIVATE KEY")) throw new Error("no private key shown");
  await dialog().getByRole("button", { name: "Done", exact: true }).click();
  await row("web-key").waitFor();
  await page.getByRole("button", { name: "Create key pair", exact: true }).click();
  await dialog().getByLabel("Name", { exact: true }).fill("web-key");
  await dialog().getByRole("button", { name: "Create", exact: true }).click();
  await dialog().locator(".error", { hasText: "InvalidKeyPair.Duplicate" }).waitFor();
  step(`duplicate key pair: ${await dialog().locator(".error").textContent()}`);
  await dialog().getByRole("button", { name: "Cancel", exact: true }).click();
  await shot("keypairs");

  await page.getByRole("link", { name: "Security groups", exact: true }).click();
  await row("default").first().waitFor();
  await shot("security-groups");

  // Images: the public busybox image.
  await page.getByRole("link", { name: "Images", exact: true }).click();
  await page.getByLabel("Show", { exact: true }).selectOption("public");
  await page.getByLabel("Name", { exact: true }).fill("busybox");
  await row("kiln-busybox").waitFor();
  await shot("images");
  step("public images listed");

  // Launch it: t2.nano, the key pair, a name.
  await select("kiln-busybox");
  await page.getByRole("button", { name: "Launch", exact: true }).click();
  await dialog().getByLabel("Instance type", { exact: true }).locator('option[value="t2.nano"]').waitFor({ state: "attached" });
  await dialog().getByLabel("Instance type", { exact: true }).selectOption("t2.nano");
  await dialog().getByLabel("Key pair", { exact: true }).selectOption("web-key");
  await dialog().getByLabel("Name", { exact: true }).fill("web-1");
  await dialog().getByLabel("User data", { exact: true }).fill("#!/bin/sh\necho hello from the console\n");
  await dialog().getByRole("button", { name: "Launch", exact: true }).click();
  await page.waitForURL(/#instances$/);
  await row("web-1").waitFor();
  step(`launched: ${await notice()}`);
  await waitState("web-1", "running");
  step("web-1 running");

  // No layout jump while the list refreshes (it refreshes every few seconds).
  const box1 = await row("web-1").boundingBox();
  await page.waitForTimeout(5500);
  const box2 = await row("web-1").boundingBox();
  if (JSON.stringify(box1) !== JSON.stringify(box2)) throw new Error(`the row moved: ${JSON.stringify(box1)} -> ${JSON.stringify(box2)}`);
  await shot("instances");
  await page.getByRole("link", { name: "Volumes", exact: true }).click();
  await row("vol-").first().waitFor();
  await shot("volumes");
  await page.getByRole("link", { name: "Instances", exact: true }).click();
  await row("web-1").waitFor();

  // Console output, followed live.
  await select("web-1");
  await page.getByRole("button", { name: "Console output", exact: true }).click();
  const pre = page.locator("pre.console");
  await page.waitForFunction(() => {
    const p = document.querySelector("pre.console");
    return p && p.textContent.length > 0 && p.textContent !== "(no output yet)";
  });
  await page.locator(".panel .hint", { hasText: "updated" }).waitFor();
  step(`console output: ${(await pre.textContent()).length} characters`);
  await shot("console-output");

  // Phone-sized window.
  await page.getByRole("button", { name: "Close the console output", exact: true }).click();
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${shots}/phone-instances.png`, fullPage: false });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 1) throw new Error(`the page is ${overflow}px wider than a phone's window`);
  await page.setViewportSize({ width: 1280, height: 800 });
  step("phone-sized window fits");

  // Stop, then create an image.
  await page.getByRole("button", { name: "Stop", exact: true }).click();
  await waitState("web-1", "stopped");
  step("web-1 stopped");
  await page.getByRole("button", { name: "Create image", exact: true }).click();
  await dialog().getByLabel("Image name", { exact: true }).fill("web-image");
  await dialog().getByRole("button", { name: "Create image", exact: true }).click();
  await page.locator("#notice", { hasText: "Creating ami-" }).waitFor();
  const ami = (await notice()).match(/ami-[0-9a-f]+/)[0];
  step(`creating ${ami}`);

  // Images: ours; wait for it, copy it to eu-west-1 and watch the copy reach 100%.
  await page.getByRole("link", { name: "Images", exact: true }).click();
  await page.getByLabel("Show", { exact: true }).selectOption("self");
  await waitState(ami, "available");
  await select("web-image");
  await page.getByRole("button", { name: "Copy to region", exact: true }).click();
  await dialog().getByLabel("Destination region", { exact: true }).selectOption("eu-west-1");
  await dialog().getByLabel("Name of the copy", { exact: true }).fill("web-image-eu");
  await dialog().getByRole("button", { name: "Copy", exact: true }).click();
  const copy = page.locator("ul.copies li");
  await copy.waitFor();
  const seen = new Set();
  const deadline = Date.now() + T;
  for (;;) {
    const pct = await copy.locator(".pct").textContent();
    seen.add(pct);
    if (pct === "100%") break;
    if (Date.now() > deadline) throw new Error(`copy stuck at ${pct}`);
    await page.waitForTimeout(100);
  }
  const copied = (await copy.locator(".what").textContent()).match(/→ (ami-[0-9a-f]+)/)[1];
  if ((await copy.locator("progress").getAttribute("aria-label")) === null) throw new Error("progress without a name");
  step(`copy ${copied}: progress seen ${[...seen].join(", ")}`);
  await shot("images-copy");

  // Share and deprecate.
  await select("web-image");
  await page.getByRole("button", { name: "Share", exact: true }).click();
  await dialog().getByLabel("Account ID", { exact: true }).fill("222233334444");
  await dialog().getByRole("button", { name: "Apply", exact: true }).click();
  await page.locator("#notice", { hasText: "Launch permissions" }).waitFor();
  step("shared with 222233334444");
  await page.getByRole("button", { name: "Deprecate", exact: true }).click();
  await dialog().getByLabel("Deprecated from (UTC)", { exact: true }).fill("2030-01-02T03:04");
  await dialog().getByRole("button", { name: "Deprecate", exact: true }).click();
  await page.locator("#notice", { hasText: "deprecated from" }).waitFor();
  await row("web-image").locator("td", { hasText: "2030-01-02 03:04 UTC" }).waitFor();
  step("deprecated from 2030-01-02 03:04 UTC");

  // The copy in eu-west-1: launch it.
  await page.locator("#region").selectOption("eu-west-1");
  await page.getByLabel("Show", { exact: true }).selectOption("self");
  await waitState("web-image-eu", "available");
  await select("web-image-eu");
  await page.getByRole("button", { name: "Launch", exact: true }).click();
  await dialog().getByLabel("Image", { exact: true }).locator(`option[value="${copied}"]`).waitFor({ state: "attached" });
  await dialog().getByLabel("Instance type", { exact: true }).locator('option[value="t2.nano"]').waitFor({ state: "attached" });
  await dialog().getByLabel("Name", { exact: true }).fill("web-eu");
  await dialog().getByRole("button", { name: "Launch", exact: true }).click();
  await page.waitForURL(/#instances$/);
  await waitState("web-eu", "running");
  await shot("instances-eu-west-1");
  step("web-eu running in eu-west-1");
  await select("web-eu");
  await page.getByRole("button", { name: "Terminate", exact: true }).click();
  await dialog().getByRole("button", { name: "Terminate", exact: true }).click();
  await waitState("web-eu", "terminated");
  step("web-eu terminated");

  // Back home: terminate the first.
  await page.locator("#region").selectOption("us-east-1");
  await row("web-1").waitFor();
  await select("web-1");
  await page.getByRole("button", { name: "Terminate", exact: true }).click();
  await dialog().getByRole("button", { name: "Terminate", exact: true }).click();
  await waitState("web-1", "terminated");
  step("web-1 terminated");

  await page.getByRole("link", { name: "Snapshots", exact: true }).click();
  await row("snap-").first().waitFor();
  await shot("snapshots");

  // Every control has an accessible name.
  const unnamed = await page.evaluate(() => {
    const out = [];
    for (const el of document.querySelectorAll("button, input, select, textarea, a[href]")) {
      if (el.closest("[hidden]")) continue;
      const named = el.getAttribute("aria-label") || (el.id && document.querySelector(`label[for="${el.id}"]`)) ||
        el.closest("label") || (el.tagName !== "INPUT" && el.textContent.trim());
      if (!named) out.push(el.outerHTML.slice(0, 80));
    }
    return out;
  });
  if (unnamed.length) throw new Error(`controls without a name: ${unnamed.join(" | ")}`);

  // Sign out: the session is gone from the tab.
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await page.getByLabel("Access key ID", { exact: true }).waitFor();
  if (await page.evaluate(() => sessionStorage.length)) throw new Error("the session outlived sign-out");

  const foreign = requests.filter((r) => !r.startsWith(url));
  if (foreign.length) throw new Error(`requests elsewhere: ${foreign.join(", ")}`);
  if (problems.length) throw new Error(problems.join("\n"));
  step(`done; ${requests.length} requests, all to ${url}`);
  console.log(JSON.stringify({ ami, copied }));
} catch (e) {
  await page.screenshot({ path: `${shots}/failure.png` }).catch(() => {});
  console.error(`FAILED: ${e.stack || e}`);
  if (problems.length) console.error(problems.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
}
