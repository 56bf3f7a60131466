// Validates custom resources against the schemas of their CRDs, which the Kubernetes API schemas
// of kubernetes-validate lack: node validate-custom-resources.mjs FILE.json (a JSON array of
// rendered documents). Prints one line per document; exits 1 when one is invalid or unknown.
import fs from "node:fs";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";

const models = { "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor };
let failed = false;
for (const doc of JSON.parse(fs.readFileSync(process.argv[2], "utf8"))) {
  const key = `${doc.apiVersion}/${doc.kind}`;
  const Model = models[key];
  if (!Model) {
    console.log(`UNKNOWN ${key} ${doc.metadata?.name}: no schema`);
    failed = true;
    continue;
  }
  try {
    new Model(doc).validate();
    console.log(`VALID ${key} ${doc.metadata?.name}`);
  } catch (error) {
    console.log(`INVALID ${key} ${doc.metadata?.name}: ${error.message}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
