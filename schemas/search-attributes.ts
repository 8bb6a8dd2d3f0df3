import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * Search attributes every Sluice workflow may set, declared once. `sluice up` registers them on the dev server and
 * `sluice setup` on a real cluster.
 */
export const SearchAttributes = {
  /** The pipeline name, e.g. `pool-check` or `cdc-merge`. */
  pipeline: defineSearchAttributeKey('SluicePipeline', SearchAttributeType.KEYWORD),
  /** The dataset or table the run works on. */
  dataset: defineSearchAttributeKey('SluiceDataset', SearchAttributeType.KEYWORD),
  /** The model and version, for inference pipelines. */
  model: defineSearchAttributeKey('SluiceModel', SearchAttributeType.KEYWORD),
  /** The GPU host a run is pinned to, when it is pinned. */
  gpuHost: defineSearchAttributeKey('SluiceGpuHost', SearchAttributeType.KEYWORD),
  /** A coarse phase name the workflow updates as it goes. */
  phase: defineSearchAttributeKey('SluicePhase', SearchAttributeType.KEYWORD),
  /** Spark jobs: the attempt running or last run (1 = first). */
  sparkAttempt: defineSearchAttributeKey('SluiceSparkAttempt', SearchAttributeType.INT),
  /** Spark jobs: the failure kind of each failed attempt so far, e.g. `executor-oom`. */
  sparkFailureKinds: defineSearchAttributeKey('SluiceSparkFailureKinds', SearchAttributeType.KEYWORD_LIST),
} as const;

export const SEARCH_ATTRIBUTE_KEYS = Object.values(SearchAttributes);

/** The CLI spelling of a search attribute type (`temporal operator search-attribute create --type`). */
export function cliTypeName(type: SearchAttributeType): string {
  switch (type) {
    case SearchAttributeType.TEXT:
      return 'Text';
    case SearchAttributeType.KEYWORD:
      return 'Keyword';
    case SearchAttributeType.INT:
      return 'Int';
    case SearchAttributeType.DOUBLE:
      return 'Double';
    case SearchAttributeType.BOOL:
      return 'Bool';
    case SearchAttributeType.DATETIME:
      return 'Datetime';
    case SearchAttributeType.KEYWORD_LIST:
      return 'KeywordList';
  }
}
