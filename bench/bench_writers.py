"""Concurrent writers on the embedded SQLite store (issue 23): how many trials logging at once it
takes before writers wait on its write lock.

For each writer count N (default 1, 2, 4, 8), a fresh store; N processes, each like a trial:
creates its run with params, then, released together, logs --steps iterations of --keys scalars
through the trials' own MlflowRunBackend (flushed every --flush-interval s) as fast as it can,
closes it (every point delivered) and ends its run FINISHED. Reported per N: points/s of all
writers together and as a ratio to 1 writer, the slowest log_batch call (a
writer's whole buffer, thousands of points when it falls behind), the backend's retries (a
flush that failed, e.g. `database is locked` after SQLite's busy wait), the writers that failed
and the points missing from or repeated in the store. A trial logs some 15 points an iteration
at a few iterations a second, a few hundred points a second per trial at most. Usage:
    python bench/bench_writers.py [--writers 1 2 4 8] [--steps 1000] [--keys 15]
"""
import argparse
import logging
import multiprocessing as mp
import os.path as osp
import sqlite3
import sys
import tempfile
import time

ROOT = osp.join(osp.dirname(osp.abspath(__file__)), '..')
sys.path.insert(0, ROOT)


class Retries(logging.Handler):
    """Counts the backend's `flush failed ...; retrying` warnings."""
    count = 0

    def emit(self, record):
        Retries.count += 'flush failed' in record.getMessage()


def writer(uri, experiment_id, index, args, start, results):
    from mlflow import MlflowClient
    from mlflow.entities import Param

    from experiments import tracking
    logging.getLogger(tracking.__name__).addHandler(Retries())
    slowest, error = 0.0, ''

    def timed(*a, **kw):
        nonlocal slowest
        t = time.perf_counter()
        try:
            return log_batch(*a, **kw)
        finally:
            slowest = max(slowest, time.perf_counter() - t)

    try:  # a failure is reported, not raised: the other writers go on
        client = MlflowClient(uri)
        run_id = client.create_run(experiment_id, run_name=f'w{index}').info.run_id
        client.log_batch(run_id, params=[Param('writer', str(index))])
        backend = tracking.MlflowRunBackend(tracking_uri=uri, run_id=run_id,
                                            flush_interval=args.flush_interval)
        backend.add_scalars({}, 0)  # the client and flusher thread exist before the clock starts
        log_batch, backend._client.log_batch = backend._client.log_batch, timed
        start.wait()
        for step in range(1, args.steps + 1):
            backend.add_scalars({f'k{i}': step + i for i in range(args.keys)}, step)
        backend.close()
        client.set_terminated(run_id, 'FINISHED')
    except Exception as err:
        start.abort()  # one that could not start stops the measurement rather than hang it
        error = f'{type(err).__name__}: {err}'[:200]
    results.put((slowest, Retries.count, error))


def measure(n, args, tmp):
    from mlflow import MlflowClient

    from experiments import tracking
    path = osp.join(tmp, f'w{n}', 'mlflow.db')
    uri = f'sqlite:///{path}'
    tracking.check_tracking_uri(uri)
    experiment_id = tracking.get_or_create_experiment(MlflowClient(uri), 'bench', uri)
    ctx = mp.get_context('spawn')
    start, results = ctx.Barrier(n + 1), ctx.Queue()
    procs = [ctx.Process(target=writer, args=(uri, experiment_id, i, args, start, results))
             for i in range(n)]
    for proc in procs:
        proc.start()
    start.wait()
    t0 = time.perf_counter()
    rows = [results.get() for _ in procs]
    wall = time.perf_counter() - t0
    for proc in procs:
        proc.join()
    with sqlite3.connect(path) as conn:
        (points, ), (distinct, ) = (conn.execute(sql).fetchone() for sql in (
            'SELECT count(*) FROM metrics',
            'SELECT count(*) FROM (SELECT DISTINCT run_uuid, key, step FROM metrics)'))
    expected = n * args.steps * args.keys
    return dict(writers=n, wall=wall, rate=points / wall, slowest=max(r[0] for r in rows),
                retries=sum(r[1] for r in rows), failed=[r[2] for r in rows if r[2]],
                missing=expected - distinct, repeated=points - distinct)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--writers', type=int, nargs='+', default=[1, 2, 4, 8])
    parser.add_argument('--steps', type=int, default=1000, help='iterations each writer logs')
    parser.add_argument('--keys', type=int, default=15, help='scalars an iteration')
    parser.add_argument('--flush-interval', type=float, default=0.2,
                        help='s between log_batch calls of a writer (trials: 5)')
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix='bench_writers_')
    print(f'{args.steps} iterations x {args.keys} scalars a writer, flushed every '
          f'{args.flush_interval:g} s; stores under {tmp}')
    print(f'{"writers":>7}  {"points/s":>9}  {"ratio":>5}  {"slowest call":>12}  {"retries":>7}  '
          f'{"failed":>6}  {"missing":>7}  {"repeated":>8}')
    base = None
    for n in args.writers:
        r = measure(n, args, tmp)
        base = base or r['rate']
        print(f'{n:>7}  {r["rate"]:>9.0f}  {r["rate"] / base:>5.2f}  {r["slowest"]:>10.2f} s  '
              f'{r["retries"]:>7}  {len(r["failed"]):>6}  {r["missing"]:>7}  {r["repeated"]:>8}',
              flush=True)
        for error in r['failed']:
            print(f'         failed: {error}')


if __name__ == '__main__':
    main()
