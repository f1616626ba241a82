"""pytap's demo: a small service that handles "requests" in a pool of threads.

Each request parses a JSON payload, validates it with regular expressions, computes a
price with a slow pure-Python routine and renders a response; a background thread
refreshes a cache and then sleeps. Run it under pytap to see where its time goes:

    pytap sample -o demo.svg -- python3 demo/demo_app.py
"""
import json
import random
import re
import sys
import threading
import time

EMAIL = re.compile(r"^[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}$")


def make_payload(rng):
    items = [{"sku": "SKU-%05d" % rng.randint(0, 99999), "qty": rng.randint(1, 5),
              "price": round(rng.uniform(1, 100), 2)} for _ in range(rng.randint(5, 40))]
    return json.dumps({"customer": "user%d@example.com" % rng.randint(0, 9999), "items": items})


def parse(body):
    return json.loads(body)


def validate(order):
    if not EMAIL.match(order["customer"]):
        raise ValueError("bad email")
    for item in order["items"]:
        if not re.match(r"^SKU-\d{5}$", item["sku"]):
            raise ValueError("bad sku")


def discount(total, qty):
    # Deliberately slow: the hot spot the flame graph should show.
    rate = 0.0
    for step in range(qty * 400):
        rate = (rate + step % 7 * 0.0001) % 0.3
    return total * (1 - rate)


def price(order):
    total = 0.0
    for item in order["items"]:
        total += discount(item["price"] * item["qty"], item["qty"])
    return total


def render(order, total):
    lines = ["Order for %s" % order["customer"]]
    for item in order["items"]:
        lines.append("  %-10s x%d  %8.2f" % (item["sku"], item["qty"], item["price"]))
    lines.append("Total: %.2f" % total)
    return "\n".join(lines)


def handle(body):
    order = parse(body)
    validate(order)
    return render(order, price(order))


def worker(seconds, seed, counter):
    rng = random.Random(seed)
    deadline = time.time() + seconds
    while time.time() < deadline:
        handle(make_payload(rng))
        counter[0] += 1


def refresh_cache(stop):
    cache = {}
    while not stop.is_set():
        for key in range(2000):
            cache[key] = str(key) * 3
        stop.wait(0.5)


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 6
    stop = threading.Event()
    refresher = threading.Thread(target=refresh_cache, args=(stop,), name="cache-refresher")
    refresher.start()
    counter = [0]
    workers = [threading.Thread(target=worker, args=(seconds, seed, counter), name="worker-%d" % seed)
               for seed in range(3)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    stop.set()
    refresher.join()
    print("demo: handled %d requests in %.0f s" % (counter[0], seconds))


if __name__ == "__main__":
    main()
