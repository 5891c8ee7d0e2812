"""A deterministic split workload with hand-computable costs, for the clock's tests.

Costs differ per client and per call so that a mix-up would show; the
"adapter" of each client is a number that grows by k + 1 per completed
client_backward of client k, so what the servers average can be checked by hand.
"""

from cosim.workload import Evaluation, Step, StepCost


class CountingWorkload:
    """The SplitWorkload contract with costs by hand and a scalar adapter per client."""

    def __init__(self, n_clients, *, adapter_bytes=110_592):
        self.n_clients = n_clients
        self.calls = []
        self.adapter_bytes = adapter_bytes
        self.adapters = [0.0] * n_clients     # each client's working adapter
        self.global_adapter = 0.0
        self.base = {}
        self.buffered = {}
        self.history = []                     # (what, detail) of every server-side change

    def sample_counts(self):
        return [100 + k for k in range(self.n_clients)]

    def _step(self, name, k, flops, cost):
        def run():
            self.calls.append((name, k))
            return cost
        return Step(flops=flops, run=run)

    def client_forward(self, k):
        return self._step("client_forward", k, 1e9 * (k + 1),
                          StepCost(flops=1e9 * (k + 1), nbytes=4 * 96 * 576 * 4 + 1000 * k))

    def server_step(self, k):
        return self._step("server_step", k, 3e12 + 1e10 * k,
                          StepCost(flops=3e12 + 1e10 * k, nbytes=4 * 96 * 576 * 4, loss=1.0 / (k + 1)))

    def client_backward(self, k):
        def run():
            self.calls.append(("client_backward", k))
            self.adapters[k] += k + 1.0
            return StepCost(flops=2e9 * (k + 1))
        return Step(flops=2e9 * (k + 1), run=run)

    def adapter_upload(self, k):
        return StepCost(nbytes=self.adapter_bytes)

    def cancel(self, k):
        self.calls.append(("cancel", k))

    def aggregate(self, weights):
        def run():
            if weights:
                total = sum(weights.values())
                self.global_adapter = sum(w * self.adapters[k] for k, w in weights.items()) / total
                self.history.append(("fedavg", dict(weights)))
            self.adapters = [self.global_adapter] * self.n_clients
            return StepCost(flops=2.0 * len(weights) * 55_296, nbytes=self.adapter_bytes)
        return Step(flops=2.0 * len(weights) * 55_296, run=run)

    def begin(self, k):
        self.adapters[k] = self.global_adapter
        self.base[k] = self.global_adapter

    def mix(self, k, weight):
        def run():
            self.global_adapter = (1 - weight) * self.global_adapter + weight * self.adapters[k]
            self.history.append(("mix", k, weight))
            return StepCost(flops=3 * 55_296, nbytes=self.adapter_bytes)
        return Step(flops=3 * 55_296, run=run)

    def buffer(self, k, key):
        self.buffered[key] = self.adapters[k] - self.base.get(k, 0.0)

    def apply_buffer(self, weights):
        def run():
            self.global_adapter += sum(w * self.buffered.pop(key) for key, w in weights.items())
            self.history.append(("buffer", dict(weights)))
            return StepCost(flops=2 * len(weights) * 55_296, nbytes=self.adapter_bytes)
        return Step(flops=2 * len(weights) * 55_296, run=run)

    def evaluate(self):
        return Evaluation(accuracy=0.5, loss=0.7, n=8)


def simulate(sc, workload=None):
    """Run ``sc`` on ``workload`` (default: a CountingWorkload); return (federation, total_s, events, rounds, clients)."""
    from cosim.build import build_simulation

    wl = workload or CountingWorkload(sc.clients.count)
    fed = build_simulation(sc, wl)
    total = fed.run()
    rec = fed.sim.rec
    return fed, total, rec.events(), rec.rounds(), rec.clients()
