"""Python 3 parts of the dump workload: coroutines and non-ASCII function names."""


async def parked_coroutine(park):
    park()


def drive_coroutine(park):
    coroutine = parked_coroutine(park)
    coroutine.send(None)


def naïve_função_ü(park):
    park()


def start_threads(start, park):
    start("coroutine", lambda: drive_coroutine(park))
    start("unicode-name", lambda: naïve_função_ü(park))
