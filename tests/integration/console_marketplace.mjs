// The console's marketplace page in Debian's Chromium through playwright-core, run by
// test_marketplace_agreement.py (environment: PLAYWRIGHT, CHROMIUM, KILN_URL, AK, SK, TITLE,
// CODE): a buyer without an agreement subscribes to the product (CreateAgreementRequest and
// AcceptAgreementRequest from the browser), sees its agreement ACTIVE, cancels it.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { chromium } = require(process.env.PLAYWRIGHT);
const url = process.env.KILN_URL;
const T = 60000;
const problems = [];

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM, args: ["--no-sandbox"], headless: true });
const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
page.setDefaultTimeout(T);
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
page.on("console", (m) => {
  if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`console error: ${m.text()}`);
});
const row = (text) => page.locator("tbody tr", { hasText: text });
const dialog = () => page.locator("dialog[open]");

try {
  await page.goto(`${url}/console/`);
  await page.getByLabel("Access key ID", { exact: true }).fill(process.env.AK);
  await page.getByLabel("Secret access key", { exact: true }).fill(process.env.SK);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.getByRole("navigation", { name: "Pages" }).waitFor();
  await page.getByRole("link", { name: "Marketplace", exact: true }).click();
  await row(process.env.TITLE).locator(".state", { hasText: "none" }).waitFor();
  console.log("the product, not subscribed");
  await page.getByRole("radio", { name: `Select ${process.env.TITLE}`, exact: true }).check();
  await page.getByRole("button", { name: "Subscribe", exact: true }).click();
  await row(process.env.TITLE).locator(".state", { hasText: "active" }).waitFor();
  const agreement = page.locator("tbody tr", { hasText: `offer-${process.env.CODE}` }).filter({ has: page.locator(".state", { hasText: "active" }) });
  await agreement.waitFor();
  const id = (await agreement.locator("td").nth(1).textContent()).trim();
  console.log(`subscribed: ${id}`);
  await page.getByRole("radio", { name: `Select ${id}`, exact: true }).check();
  await page.getByRole("button", { name: "Cancel agreement", exact: true }).click();
  await dialog().getByRole("button", { name: "Cancel agreement", exact: true }).click();
  await page.locator("tbody tr", { hasText: id }).locator(".state", { hasText: "cancelled" }).waitFor();
  await row(process.env.TITLE).locator(".state", { hasText: "none" }).waitFor();
  console.log(`cancelled: ${id}`);
  if (problems.length) throw new Error(problems.join("\n"));
} catch (e) {
  console.log(`FAILED: ${e.message}`);
  await browser.close();
  process.exit(1);
}
await browser.close();
