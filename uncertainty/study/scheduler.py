"""Stages run side by side: each as soon as the stages it needs have finished."""

import concurrent.futures
from collections.abc import Callable


def run_stages(stages: list, run: Callable, jobs: int,
               on_interrupt: Callable[[KeyboardInterrupt], None] | None = None) -> list:
    """`run(stage, index, prefixed)` for every stage (with `name` and `needs`: the names
    of the stages it waits for), up to `jobs` at a time in their list order as they
    become ready; their results in the stages' order. After a failure no stage starts,
    the running ones finish, and the first error is raised. A stop request (an
    interrupt in the waiting thread) is passed to `on_interrupt`, then raised."""
    position = {stage.name: i for i, stage in enumerate(stages)}
    results, failures, running = {}, [], {}
    waiting = list(stages)
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        while (waiting and not failures) or running:
            ready = [s for s in waiting if all(n in results for n in s.needs)]
            for stage in ready[:max(0, jobs - len(running))] if not failures else []:
                waiting.remove(stage)
                running[pool.submit(run, stage, position[stage.name], jobs > 1)] = stage
            if not running:
                break
            try:
                finished, _ = concurrent.futures.wait(
                    running, return_when=concurrent.futures.FIRST_COMPLETED)
            except KeyboardInterrupt as e:
                if on_interrupt is not None:
                    on_interrupt(e)
                raise
            for future in finished:
                stage = running.pop(future)
                try:
                    results[stage.name] = future.result()
                except BaseException as e:  # noqa: BLE001 (raised below, the first one first)
                    failures.append(e)
    if failures:
        raise failures[0]
    return [results[stage.name] for stage in stages]
