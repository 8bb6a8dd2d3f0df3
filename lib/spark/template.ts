import { createHash } from 'node:crypto';
import type { SparkJobSpec } from '../../schemas/spark.js';

/**
 * The hash of what the job *does*: the application, its main class, arguments and non-resource conf, and the
 * master kind. Resources, caps, budget and owner are left out, so resizing keeps the history while a changed
 * script or input argument starts a new one.
 */
export function templateHash(spec: SparkJobSpec): string {
  const canonical = {
    resource: spec.app.resource,
    mainClass: spec.app.mainClass ?? null,
    args: spec.app.args,
    conf: Object.entries(spec.app.conf).sort(([a], [b]) => a.localeCompare(b)),
    pyFiles: spec.app.pyFiles,
    jars: spec.app.jars,
    master: spec.master,
  };
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex').slice(0, 16);
}
