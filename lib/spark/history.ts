import pg from 'pg';
import {
  SparkAttemptRecord,
  SparkResources,
  type SparkJobResult,
  type SparkSizingRecommendation,
} from '../../schemas/spark.js';

/** One stored run of a job, newest first when listed. */
export interface StoredSparkRun {
  runKey: string;
  jobName: string;
  templateHash: string;
  owner: string;
  outcome: 'succeeded' | 'failed' | 'cancelled' | 'running';
  startedAt: string;
  finishedAt: string | undefined;
  requested: SparkResources;
  finalResources: SparkResources | undefined;
  sizing: SparkSizingRecommendation | undefined;
  attempts: SparkAttemptRecord[];
  gbHours: number;
  vcoreHours: number;
  wastedGbHours: number;
  wastedVcoreHours: number;
}

/** Identifies a run's rows: `<workflowId>/<runId>`, so a retried activity writes the same rows again. */
export interface RunIdentity {
  runKey: string;
  jobName: string;
  templateHash: string;
  owner: string;
  requested: SparkResources;
  startedAt: string;
}

const DDL = `
CREATE TABLE IF NOT EXISTS sluice_spark_runs (
  run_key            text PRIMARY KEY,
  job_name           text NOT NULL,
  template_hash      text NOT NULL,
  owner              text NOT NULL,
  outcome            text NOT NULL,
  started_at         timestamptz NOT NULL,
  finished_at        timestamptz,
  requested          jsonb NOT NULL,
  final_resources    jsonb,
  sizing             jsonb,
  gb_hours           double precision NOT NULL DEFAULT 0,
  vcore_hours        double precision NOT NULL DEFAULT 0,
  wasted_gb_hours    double precision NOT NULL DEFAULT 0,
  wasted_vcore_hours double precision NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sluice_spark_runs_job ON sluice_spark_runs (job_name, template_hash, started_at DESC);
CREATE TABLE IF NOT EXISTS sluice_spark_attempts (
  run_key        text NOT NULL REFERENCES sluice_spark_runs (run_key) ON DELETE CASCADE,
  attempt        integer NOT NULL,
  record         jsonb NOT NULL,
  outcome        text NOT NULL,
  failure_kind   text,
  PRIMARY KEY (run_key, attempt)
);`;

/**
 * The per-job learning store in PostgreSQL: every run and attempt of a job (by job name and template hash), each
 * attempt's resources, failure kind, cost and event-log peak metrics, and the run's final configuration. Writes
 * are upserts keyed by run and attempt, so a retried activity cannot duplicate a row.
 */
export class SparkHistoryStore {
  private ready: Promise<void> | undefined;
  constructor(private readonly pool: pg.Pool) {}

  /**
   * A store on its own pool for `connectionString`. An idle connection that the server drops (a restart, a
   * failover) goes to `onIdleError`; without a listener pg would raise it as an uncaught error and end the worker.
   * The next query opens a new connection.
   */
  static connect(connectionString: string, onIdleError: (err: Error) => void = () => undefined): SparkHistoryStore {
    const pool = new pg.Pool({ connectionString, max: 4, application_name: 'sluice-spark-history' });
    pool.on('error', onIdleError);
    return new SparkHistoryStore(pool);
  }

  /** Creates the tables once per store. */
  ensureSchema(): Promise<void> {
    this.ready ??= (async () => {
      const client = await this.pool.connect();
      try {
        // Two workers creating the tables at once would race on the catalog; a lock serializes them.
        await client.query('SELECT pg_advisory_lock(hashtext($1))', ['sluice_spark_history_ddl']);
        await client.query(DDL);
      } finally {
        await client
          .query('SELECT pg_advisory_unlock(hashtext($1))', ['sluice_spark_history_ddl'])
          .catch(() => undefined);
        client.release();
      }
    })().catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  /** Records (or re-records) a run as started. */
  async startRun(run: RunIdentity): Promise<void> {
    await this.ensureSchema();
    await this.pool.query(
      `INSERT INTO sluice_spark_runs (run_key, job_name, template_hash, owner, outcome, started_at, requested)
       VALUES ($1, $2, $3, $4, 'running', $5, $6)
       ON CONFLICT (run_key) DO NOTHING`,
      [run.runKey, run.jobName, run.templateHash, run.owner, run.startedAt, JSON.stringify(run.requested)],
    );
  }

  /** Stores one attempt (after {@link startRun}). */
  async recordAttempt(runKey: string, record: SparkAttemptRecord): Promise<void> {
    await this.ensureSchema();
    await this.pool.query(
      `INSERT INTO sluice_spark_attempts (run_key, attempt, record, outcome, failure_kind)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (run_key, attempt) DO UPDATE
         SET record = EXCLUDED.record, outcome = EXCLUDED.outcome, failure_kind = EXCLUDED.failure_kind`,
      [runKey, record.attempt, JSON.stringify(record), record.outcome, record.failureKind ?? null],
    );
  }

  /** Closes a run with its result. */
  async finishRun(
    runKey: string,
    result: SparkJobResult,
    outcome: 'succeeded' | 'failed' | 'cancelled',
  ): Promise<void> {
    await this.ensureSchema();
    await this.pool.query(
      `UPDATE sluice_spark_runs
          SET outcome = $2, finished_at = now(), final_resources = $3, sizing = $4,
              gb_hours = $5, vcore_hours = $6, wasted_gb_hours = $7, wasted_vcore_hours = $8
        WHERE run_key = $1`,
      [
        runKey,
        outcome,
        result.finalResources ? JSON.stringify(result.finalResources) : null,
        JSON.stringify(result.sizing),
        result.cost.total.gbHours,
        result.cost.total.vcoreHours,
        result.cost.wasted.gbHours,
        result.cost.wasted.vcoreHours,
      ],
    );
  }

  /**
   * The newest `limit` runs of a job, with their attempts; only runs of `templateHash` when it is given (a changed
   * application is a different workload, so its history does not carry over).
   */
  async recentRuns(jobName: string, templateHash?: string, limit = 20): Promise<StoredSparkRun[]> {
    await this.ensureSchema();
    const runs = await this.pool.query<Record<string, unknown>>(
      `SELECT * FROM sluice_spark_runs
        WHERE job_name = $1 AND ($2::text IS NULL OR template_hash = $2)
        ORDER BY started_at DESC LIMIT $3`,
      [jobName, templateHash ?? null, limit],
    );
    if (runs.rows.length === 0) return [];
    const keys = runs.rows.map((r) => String(r.run_key));
    const attempts = await this.pool.query<{ run_key: string; record: unknown }>(
      `SELECT run_key, record FROM sluice_spark_attempts WHERE run_key = ANY($1::text[]) ORDER BY run_key, attempt`,
      [keys],
    );
    const byRun = new Map<string, SparkAttemptRecord[]>();
    for (const row of attempts.rows) {
      // A stored record that no longer parses (an older format) is left out rather than failing the whole read.
      const parsed = SparkAttemptRecord.safeParse(row.record);
      if (!parsed.success) continue;
      const list = byRun.get(row.run_key) ?? [];
      list.push(parsed.data);
      byRun.set(row.run_key, list);
    }
    return runs.rows.map((r) => ({
      runKey: String(r.run_key),
      jobName: String(r.job_name),
      templateHash: String(r.template_hash),
      owner: String(r.owner),
      outcome: r.outcome as StoredSparkRun['outcome'],
      startedAt: (r.started_at as Date).toISOString(),
      finishedAt: r.finished_at ? (r.finished_at as Date).toISOString() : undefined,
      requested: SparkResources.parse(r.requested),
      finalResources: r.final_resources ? SparkResources.parse(r.final_resources) : undefined,
      sizing: (r.sizing as SparkSizingRecommendation | null) ?? undefined,
      attempts: byRun.get(String(r.run_key)) ?? [],
      gbHours: Number(r.gb_hours),
      vcoreHours: Number(r.vcore_hours),
      wastedGbHours: Number(r.wasted_gb_hours),
      wastedVcoreHours: Number(r.wasted_vcore_hours),
    }));
  }

  /** Template hashes of a job, newest first (for `sluice spark sizing` without a spec). */
  async latestTemplateHash(jobName: string): Promise<string | undefined> {
    await this.ensureSchema();
    const r = await this.pool.query<{ template_hash: string }>(
      `SELECT template_hash FROM sluice_spark_runs WHERE job_name = $1 ORDER BY started_at DESC LIMIT 1`,
      [jobName],
    );
    return r.rows[0]?.template_hash;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
