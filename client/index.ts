/**
 * The typed client for SDK users: each pipeline's workflow type, input schema and start helper, the connection
 * helpers, and the shared constants. The `sluice` CLI is a thin layer over this module.
 */
export { connectClient, resolveConnection, TemporalUnreachableError, type ConnectionOverrides } from './connection.js';
export { AesGcmPayloadCodec, createCodecFromEnv, dataConverterFor } from './codec.js';
export {
  getPipeline,
  pipelines,
  PIPELINE_NAMES,
  startActivityFanOut,
  startCdcFileMerge,
  startCdcMerge,
  startCdcOnboard,
  startPipeline,
  startPoolCheck,
  UnknownPipelineError,
  type PipelineName,
  type StartPipelineOptions,
} from './pipelines.js';
export { progressQuery } from '../workflows/queries.js';
export { SearchAttributes } from '../schemas/search-attributes.js';
export { taskQueues, TaskQueues } from '../schemas/task-queues.js';
export { ERROR_TYPES, type ErrorType } from '../schemas/error-types.js';
export * from '../schemas/platform.js';
export { desiredSchedule, diffSchedules, syncSchedules } from './schedules.js';
export { runDoctor, type DoctorCheck } from './doctor.js';
export * from '../schemas/cdc.js';
export { startQuotaRightsize } from './pipelines.js';
export * from '../schemas/quota.js';
export { quotaApproveUpdate, quotaPlanQuery } from '../workflows/quota-rightsize.js';
export { startEmbeddingBackfill } from './pipelines.js';
export * from '../schemas/embedding.js';
export { embeddingPauseSignal, embeddingResumeSignal } from '../workflows/embedding-backfill.js';
