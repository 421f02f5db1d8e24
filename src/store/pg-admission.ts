import type pg from 'pg';

/**
 * The pool Kysely sees on PostgreSQL: at most `max` connections checked out, and anything beyond that
 * waits here, first come first served, with no timer. pg-pool starts its `connectionTimeoutMillis`
 * when a query asks for a connection, so under a burst (hundreds of logins finishing at once on ten
 * connections) a query queued behind busy ones failed after 30 s although the database was fine;
 * here the timeout only runs for a connection actually being handed out or opened (a database that
 * is down still fails within it). When an attempt fails, everything queued behind it fails with the
 * same error at once: the database is not answering, and the callers report it (503, `worker_lost`).
 */
export interface AdmittedPool {
  connect(): Promise<pg.PoolClient>;
  end(): Promise<void>;
  /** Queries waiting here for a connection (in-flight database work beyond the pool). */
  backlog(): number;
}

export function admitPool(pool: pg.Pool, max: number): AdmittedPool {
  let out = 0;
  const queue: { resolve: (client: pg.PoolClient) => void; reject: (error: unknown) => void }[] = [];

  const hand = (waiter: (typeof queue)[number]) => {
    out++;
    pool.connect().then(
      (client) => {
        const release = client.release;
        let released = false;
        client.release = (error?: Error | boolean) => {
          if (!released) {
            released = true;
            out--;
            next();
          }
          return release.call(client, error);
        };
        waiter.resolve(client);
      },
      (error: unknown) => {
        out--;
        waiter.reject(error);
        // The database gave no connection: those queued behind would only wait for the same answer.
        for (const queued of queue.splice(0)) queued.reject(error);
      },
    );
  };
  const next = () => {
    while (out < max && queue.length > 0) hand(queue.shift()!);
  };

  return {
    connect: () =>
      new Promise<pg.PoolClient>((resolve, reject) => {
        queue.push({ resolve, reject });
        next();
      }),
    end: () => pool.end(),
    backlog: () => queue.length,
  };
}
