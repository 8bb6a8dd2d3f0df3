import { defineQuery } from '@temporalio/workflow';
import { PROGRESS_QUERY, type Progress } from '../schemas/progress.js';

/** Every pipeline answers this query; `sluice status --watch` polls it. */
export const progressQuery = defineQuery<Progress>(PROGRESS_QUERY);
