// A test-only workflow bundle (bundled by spark-child.test.ts, not part of workflows/index.ts): a parent workflow
// that delegates a step to Spark by starting `sparkJob` as a child workflow, the way a CDC large-table merge
// would. The bundle also exports `sparkJob` itself, so one worker runs parent and child.
import { executeChild, ParentClosePolicy, workflowInfo } from '@temporalio/workflow';
import { sparkJobWorkflowId, type SparkJobInput, type SparkJobResult } from '../../schemas/spark.js';
import { sparkJob } from '../../workflows/spark-job.js';

export { sparkJob };

export interface SparkParentResult {
  parentWorkflowId: string;
  childWorkflowId: string;
  child: SparkJobResult;
}

export async function sparkParent(input: SparkJobInput): Promise<SparkParentResult> {
  const childWorkflowId = sparkJobWorkflowId(input.spec.name);
  const child = await executeChild(sparkJob, {
    args: [input],
    workflowId: childWorkflowId,
    // A parent that goes away takes its Spark application with it (the child's cancel kills the application).
    parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
  });
  return { parentWorkflowId: workflowInfo().workflowId, childWorkflowId, child };
}
