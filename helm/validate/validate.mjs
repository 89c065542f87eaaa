// Validate custom resources (JSON array on stdin) with @kubernetes-models: each object is
// constructed as its model class and .validate()d. Prints one line per object; exit 1 on errors.
import { ServiceMonitor, PodMonitor, PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
import { Rollout, AnalysisTemplate } from "@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1";

const models = { ServiceMonitor, PodMonitor, PrometheusRule, Rollout, AnalysisTemplate };
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const objects = JSON.parse(Buffer.concat(chunks).toString());
let failed = 0;
for (const obj of objects) {
  const Model = models[obj.kind];
  if (!Model) { console.log(`SKIP ${obj.kind}/${obj.metadata.name}: no model`); continue; }
  try {
    new Model(obj).validate();
    console.log(`OK ${obj.kind}/${obj.metadata.name}`);
  } catch (error) {
    failed += 1;
    console.log(`FAIL ${obj.kind}/${obj.metadata.name}: ${error.message}`);
  }
}
process.exit(failed ? 1 : 0);
