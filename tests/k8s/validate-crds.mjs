// Validates custom resources against their projects' schemas, as shipped by the npm
// registry's @kubernetes-models packages (installed by scripts/k8s-tools).
//
//   NODE_PATH=.cache/k8s-tools/node_modules node validate-crds.mjs FILE.json
//
// FILE.json holds an array of objects. Prints one line per object ("ok KIND NAME" or
// "invalid KIND NAME: why") and exits 1 if any is invalid or has no known schema.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import path from "node:path";

const packages = [
  [/^cert-manager\.io$/, "@kubernetes-models/cert-manager"],
  [/^external-secrets\.io$/, "@kubernetes-models/external-secrets"],
  [/\.toolkit\.fluxcd\.io$/, "@kubernetes-models/flux-cd"],
  [/^monitoring\.coreos\.com$/, "@kubernetes-models/prometheus-operator"],
];

const modules = process.env.NODE_PATH;
if (!modules) {
  console.error("NODE_PATH must name the node_modules folder scripts/k8s-tools filled");
  process.exit(2);
}
const require = createRequire(path.join(modules, "noop.js"));

async function model(apiVersion, kind) {
  const [group, version] = apiVersion.split("/");
  const pkg = packages.find(([re]) => re.test(group));
  if (!pkg || !version) return null;
  const dir = path.dirname(require.resolve(`${pkg[1]}/package.json`));
  const file = path.join(dir, group, version, `${kind}.js`);
  try {
    const m = await import(pathToFileURL(file).href);
    return m[kind] ?? null;
  } catch {
    return null;
  }
}

const objects = JSON.parse(readFileSync(process.argv[2], "utf8"));
let failed = 0;
for (const obj of objects) {
  const what = `${obj.kind} ${obj.metadata?.name}`;
  const Model = await model(obj.apiVersion ?? "", obj.kind ?? "");
  if (!Model) {
    console.log(`invalid ${what}: no schema for ${obj.apiVersion} ${obj.kind}`);
    failed++;
    continue;
  }
  try {
    new Model(obj).validate();
    console.log(`ok ${what}`);
  } catch (e) {
    console.log(`invalid ${what}: ${e.message.replaceAll("\n", "; ")}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
