"""A STAND-IN for NVIDIA's dcgm-exporter on the local control plane's GPU nodes: there is no GPU here.

This is the one simulated part of the local control plane. Everything else is real (etcd, the
Kubernetes control plane, the KubeRay operator, the Ray heads of heads.py); the GPU nodes are kwok's
fake nodes with `nvidia.com/gpu: 8` and no hardware, so there is nothing DCGM could read. This
process serves, for each of those nodes, what dcgm-exporter would serve there, in its exact text
format, with values that follow what the workload on the node does:

- up.sh applies dcgm-exporter.yaml: the DaemonSet `nvidia-dcgm-exporter` in namespace `gpu-operator`
  (as NVIDIA's GPU Operator names it). kwok runs its pods (label `app=nvidia-dcgm-exporter`, one per
  GPU node, a pod IP each), with no container behind them. For every such pod that is Running with
  an IP, this process serves `http://<pod IP>:9400/metrics`, and stops when the pod goes away.
- The pod IP is made reachable from the host (the apiserver's pod proxy, raydar, tests) by putting
  it, as a /32, on an interface of this process's own (--link: a dummy interface, or a bridge
  without ports where the kernel has no dummy driver, as in this machine's VM): a local address
  wins over the pod-range route to heads.py's bridge. This needs root; up.sh starts this process
  only then.
- GPUs are assigned to pods as the device plugin would: a scheduled, unfinished pod whose container
  requests `nvidia.com/gpu` holds that many GPUs of its node, given out in order of creation (then
  namespace/name), lowest free indices first, and kept while the pod lives.
- A held GPU is busy while the pod's RayCluster (pod label `ray.io/cluster`) has a Ray job RUNNING,
  as its real Ray head says (`GET http://<head pod IP>:8265/api/jobs/`, read once per interval);
  otherwise it is idle but held (a CUDA context: ~1.5 GiB, ~60 W). A held GPU of a pod of no
  RayCluster is busy. A GPU no pod holds is free (0 MiB, ~50 W) and carries no pod labels.
- Like dcgm-exporter, values change once per collection interval (--interval, 5 s here; the real
  default is 30 s) and a scrape within one interval returns exactly the same text: a snapshot per
  node is computed at each tick, its noise seeded by the tick number and the GPU's UUID.

Watches pods (list+watch, all namespaces) as a client-certificate user that may only read pods.

Usage (up.sh): python dcgm.py --apiserver URL --ca CA --cert CRT --key KEY --link NAME [--interval S]
       python dcgm.py --cleanup --link NAME   (down.sh)
"""

import argparse
import http.client
import http.server
import json
import math
import os
import random
import signal
import socketserver
import subprocess
import sys
import threading
import time
import uuid

sys.dont_write_bytecode = True  # no __pycache__ in the checkout
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from heads import Apiserver, ip_cmd, log  # noqa: E402  (the same client and helpers as heads.py)

EXPORTER_NAMESPACE = "gpu-operator"
EXPORTER_SELECTOR = "app=nvidia-dcgm-exporter"
EXPORTER_PORT = 9400
GPU_RESOURCE = "nvidia.com/gpu"
DASHBOARD_PORT = 8265

# What the fake nodes claim to have (deploy/local/nodes.yaml): 8x A100 SXM4 80GB.
MODEL = "NVIDIA A100-SXM4-80GB"
DRIVER_VERSION = "570.133.20"
FB_TOTAL_MIB = 81920
FB_RESERVED_MIB = 569
SM_CLOCK_MAX, SM_CLOCK_IDLE, MEM_CLOCK = 1410, 210, 1593
# A DGX A100's PCI bus ids of its 8 GPUs.
PCI_BUSES = ["07", "0F", "47", "4E", "87", "90", "B7", "BD"]
UUID_NAMESPACE = uuid.UUID("6c1d3d8e-4d0a-4e43-9f1e-726179646172")  # fixed: UUIDs stable across runs

# (field, Prometheus type, help, whether DCGM holds it as a double): dcgm-exporter's default
# counters (etc/default-counters.csv) and the DCP fields of dcp-metrics-included.csv, in their order.
FIELDS = [
    ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz).", False),
    ("DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz).", False),
    ("DCGM_FI_DEV_MEMORY_TEMP", "gauge", "Memory temperature (in C).", False),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).", False),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", True),
    ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter", "Total energy consumption since boot (in mJ).", False),
    ("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", "Total number of PCIe retries.", False),
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", False),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %).", False),
    ("DCGM_FI_DEV_ENC_UTIL", "gauge", "Encoder utilization (in %).", False),
    ("DCGM_FI_DEV_DEC_UTIL", "gauge", "Decoder utilization (in %).", False),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered.", False),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB).", False),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).", False),
    ("DCGM_FI_DEV_FB_RESERVED", "gauge", "Framebuffer memory reserved (in MiB).", False),
    ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active.", True),
    ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gauge", "Ratio of cycles the tensor (HMMA) pipe is active.", True),
    ("DCGM_FI_PROF_DRAM_ACTIVE", "gauge",
     "Ratio of cycles the device memory interface is active sending or receiving data.", True),
]

FREE, IDLE, BUSY = "free", "idle", "busy"  # a GPU no pod holds / held, no job running / held and working


# ---------------------------------------------------------------- what the pods say

def gpu_containers(pod):
    """[(container, GPU count)] of a pod's containers that request GPUs (limits, else requests)."""
    out = []
    for container in pod.get("spec", {}).get("containers", []):
        resources = container.get("resources", {})
        count = resources.get("limits", {}).get(GPU_RESOURCE) or resources.get("requests", {}).get(GPU_RESOURCE)
        try:
            count = int(count or 0)
        except ValueError:
            count = 0
        if count > 0:
            out.append((container["name"], count))
    return out


def holder(pod):
    """What a pod holds, if it holds GPUs: scheduled on a node, not finished, a container requesting them."""
    meta, spec, status = pod["metadata"], pod.get("spec", {}), pod.get("status", {})
    node = spec.get("nodeName")
    if not node or status.get("phase") in ("Succeeded", "Failed"):
        return None
    containers = gpu_containers(pod)
    if not containers:
        return None
    return {
        "order": (meta.get("creationTimestamp", ""), meta["namespace"], meta["name"]),
        "namespace": meta["namespace"], "name": meta["name"], "node": node,
        "containers": containers, "cluster": meta.get("labels", {}).get("ray.io/cluster"),
    }


def head_of(pod):
    """((namespace, cluster), IP) of a running Ray head pod, else None."""
    meta, status = pod["metadata"], pod.get("status", {})
    labels = meta.get("labels", {})
    if labels.get("ray.io/node-type") != "head" or not labels.get("ray.io/cluster"):
        return None
    if meta.get("deletionTimestamp") or status.get("phase") != "Running" or not status.get("podIP"):
        return None
    return (meta["namespace"], labels["ray.io/cluster"]), status["podIP"]


def exporter_of(pod):
    """(name, IP, node) of an exporter pod that should be served, else None."""
    meta, spec, status = pod["metadata"], pod.get("spec", {}), pod.get("status", {})
    if meta.get("deletionTimestamp") or status.get("phase") != "Running":
        return None
    if not status.get("podIP") or not spec.get("nodeName"):
        return None
    return (meta["name"], status["podIP"], spec["nodeName"])


def span(indices):
    """'0-3' or '0,2,5'."""
    if indices == list(range(indices[0], indices[-1] + 1)):
        return str(indices[0]) if len(indices) == 1 else f"{indices[0]}-{indices[-1]}"
    return ",".join(map(str, indices))


class Pods:
    """Which pod holds which GPU of which node, and where each RayCluster's head is."""

    def __init__(self, gpus_per_node):
        self.gpus_per_node = gpus_per_node
        self.lock = threading.Lock()
        self.holders = {}      # uid -> holder(pod)
        self.heads = {}        # uid -> ((namespace, cluster), ip)
        self.assigned = {}     # node -> {gpu index: (uid, container, "namespace/name")}
        self.unplaced = set()  # (uid, container) already logged as getting no GPU

    def replace(self, items):
        with self.lock:
            self.holders, self.heads = {}, {}
            for pod in items:
                self._set(pod)
            self._assign()

    def update(self, kind, pod):
        with self.lock:
            uid = pod["metadata"]["uid"]
            self.holders.pop(uid, None)
            self.heads.pop(uid, None)
            if kind != "DELETED":
                self._set(pod)
            self._assign()

    def _set(self, pod):
        uid = pod["metadata"]["uid"]
        if (held := holder(pod)) is not None:
            self.holders[uid] = held
        if (head := head_of(pod)) is not None:
            self.heads[uid] = head

    def _assign(self):
        """Releases the GPUs of pods that stopped holding them, then gives GPUs to new holders in
        order (creation, namespace, name): a run of consecutive free indices when there is one, else
        the lowest free ones. A pod keeps its GPUs while it lives, as with the device plugin."""
        for node, gpus in self.assigned.items():
            gone = {}
            for index, (uid, container, pod) in list(gpus.items()):
                held = self.holders.get(uid)
                if held is None or held["node"] != node or container not in dict(held["containers"]):
                    del gpus[index]
                    gone.setdefault((pod, container), []).append(index)
            for (pod, container), indices in gone.items():
                log(f"{pod} (container {container}) released GPUs {span(sorted(indices))} of {node}")
        have = {(uid, c) for gpus in self.assigned.values() for uid, c, _ in gpus.values()}
        for uid, held in sorted(self.holders.items(), key=lambda item: item[1]["order"]):
            gpus = self.assigned.setdefault(held["node"], {})
            for container, count in held["containers"]:
                if (uid, container) in have:
                    continue
                free = [i for i in range(self.gpus_per_node) if i not in gpus]
                runs = [free[k:k + count] for k in range(len(free) - count + 1)
                        if free[k + count - 1] - free[k] == count - 1]
                take = runs[0] if runs else free[:count]
                if not take:
                    if (uid, container) not in self.unplaced:
                        self.unplaced.add((uid, container))
                        log(f"{held['namespace']}/{held['name']} ({container}) requests {count} GPUs of "
                            f"{held['node']}, which has none free: it gets none")
                    continue
                self.unplaced.discard((uid, container))
                for index in take:
                    gpus[index] = (uid, container, f"{held['namespace']}/{held['name']}")
                have.add((uid, container))
                log(f"{held['namespace']}/{held['name']} (container {container}) holds GPUs {span(take)} "
                    f"of {held['node']}" + (f" (RayCluster {held['cluster']})" if held["cluster"] else ""))

    def view(self):
        """A consistent copy: {node: {index: (namespace, pod, container, cluster key or None)}}, and
        {cluster key: head IP}."""
        with self.lock:
            nodes = {}
            for node, gpus in self.assigned.items():
                nodes[node] = {}
                for index, (uid, container, _) in gpus.items():
                    held = self.holders[uid]
                    key = (held["namespace"], held["cluster"]) if held["cluster"] else None
                    nodes[node][index] = (held["namespace"], held["name"], container, key)
            heads = {key: ip for key, ip in self.heads.values()}
        return nodes, heads


# ---------------------------------------------------------------- Ray: is a job running?

def running_job(ip):
    """The id of a RUNNING job of the Ray head at `ip`, None when there is none; raises when the
    head does not answer (2 s)."""
    connection = http.client.HTTPConnection(ip, DASHBOARD_PORT, timeout=2)
    try:
        connection.request("GET", "/api/jobs/")
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
        for job in json.loads(body):
            if job.get("status") == "RUNNING":
                return job.get("submission_id") or job.get("job_id") or "?"
        return None
    finally:
        connection.close()


class Workload:
    """Whether each RayCluster that holds GPUs is working: read from its Ray head once per tick."""

    def __init__(self):
        self.last = {}    # cluster key -> (busy, reason kind), as last logged

    def read(self, clusters, heads, within=3.0):
        """{cluster key: busy} for `clusters`, asking their heads in parallel (2 s each at most; a
        head that has not answered `within` seconds counts as not answering)."""
        result = {}

        def ask(key):
            ip = heads.get(key)
            if ip is None:
                result[key] = (False, "no-head", "no running head pod")
                return
            try:
                job = running_job(ip)
            except Exception as error:  # refused, timed out, not JSON: the head does not answer
                result[key] = (False, "no-answer", f"its Ray head at {ip} does not answer ({error})")
                return
            result[key] = (True, "job", f"job {job} RUNNING") if job else (False, "no-job", "no running job")

        threads = [threading.Thread(target=ask, args=(key,), daemon=True) for key in clusters]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + within
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        busy, last = {}, {}
        for key in clusters:
            now, kind, why = result.get(key, (False, "no-answer", "its Ray head did not answer in time"))
            busy[key], last[key] = now, (now, kind)
            before = self.last.get(key)
            if before == (now, kind):
                continue
            if before is None:
                verb = "holds GPUs, busy" if now else "holds GPUs, idle"
            elif before[0] != now:
                verb = "turned busy" if now else "turned idle"
            else:
                verb = "still busy" if now else "still idle"
            log(f"RayCluster {key[0]}/{key[1]} {verb}: {why}")
        for key in self.last:
            if key not in last:
                log(f"RayCluster {key[0]}/{key[1]} holds no GPUs any more")
        self.last = last
        return busy


# ---------------------------------------------------------------- the values of one GPU at one tick

def gpu_uuid(node, index):
    return f"GPU-{uuid.uuid5(UUID_NAMESPACE, f'{node}/{index}')}"


def readings(state, tick, interval, gpu_id, index):
    """The field values (in FIELDS' order, by name) of one GPU at one tick. Deterministic: the same
    tick, GPU and state give the same values."""
    rng = random.Random(f"{tick}:{gpu_id}:{state}")
    stable = random.Random(gpu_id)                  # per-GPU constants
    t = tick * interval
    phase = 0.08 * index + stable.uniform(0, 0.15)  # GPUs of one pod move together, a little apart
    if state == BUSY:
        wave = math.sin(2 * math.pi * t / 240 + phase)                     # a 4-minute training rhythm
        util = min(95, max(60, round(77.5 + 15 * wave + rng.uniform(-2.5, 2.5))))
        load = (util - 60) / 35                                            # 0..1 within the busy band
        used = round(66560 + 8192 * math.sin(2 * math.pi * t / 600 + phase) + rng.uniform(-256, 256))
        used = min(76800, max(56320, used))                                # 55-75 GiB
        power = round(min(390.0, max(250.0, 250 + 130 * load + rng.uniform(-6, 6))), 3)
        temp = min(72, max(55, round(55 + 15 * load + rng.uniform(-1, 1.5))))
        copy_util = min(100, max(0, round(util * 0.55 + rng.uniform(-4, 4))))
        gr_active = round(min(0.99, max(0.0, util / 100 - rng.uniform(0.01, 0.04))), 6)
        values = {
            "DCGM_FI_DEV_SM_CLOCK": SM_CLOCK_MAX if temp < 70 else SM_CLOCK_MAX - 15,
            "DCGM_FI_DEV_GPU_UTIL": util, "DCGM_FI_DEV_MEM_COPY_UTIL": copy_util,
            "DCGM_FI_DEV_FB_USED": used, "DCGM_FI_DEV_POWER_USAGE": power, "DCGM_FI_DEV_GPU_TEMP": temp,
            "DCGM_FI_PROF_GR_ENGINE_ACTIVE": gr_active,
            "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": round(gr_active * rng.uniform(0.45, 0.6), 6),
            "DCGM_FI_PROF_DRAM_ACTIVE": round(copy_util / 100 * rng.uniform(0.9, 1.0), 6),
        }
    else:
        held = state == IDLE
        values = {
            "DCGM_FI_DEV_SM_CLOCK": SM_CLOCK_MAX if held else SM_CLOCK_IDLE,
            "DCGM_FI_DEV_GPU_UTIL": 0, "DCGM_FI_DEV_MEM_COPY_UTIL": 0,
            # A CUDA context (Ray's worker) keeps 1-2 GiB while the pod holds the GPU.
            "DCGM_FI_DEV_FB_USED": 1100 + stable.randrange(0, 700) if held else 0,
            "DCGM_FI_DEV_POWER_USAGE": round((60.0 if held else 50.0) + rng.uniform(-1.5, 1.5), 3),
            "DCGM_FI_DEV_GPU_TEMP": (36 if held else 32) + rng.randrange(0, 3),
            "DCGM_FI_PROF_GR_ENGINE_ACTIVE": 0.0, "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": 0.0,
            "DCGM_FI_PROF_DRAM_ACTIVE": 0.0,
        }
    values["DCGM_FI_DEV_MEMORY_TEMP"] = values["DCGM_FI_DEV_GPU_TEMP"] + 4 + stable.randrange(0, 3)
    values["DCGM_FI_DEV_MEM_CLOCK"] = MEM_CLOCK
    values["DCGM_FI_DEV_FB_RESERVED"] = FB_RESERVED_MIB
    values["DCGM_FI_DEV_FB_FREE"] = FB_TOTAL_MIB - FB_RESERVED_MIB - values["DCGM_FI_DEV_FB_USED"]
    values["DCGM_FI_DEV_PCIE_REPLAY_COUNTER"] = 0
    values["DCGM_FI_DEV_ENC_UTIL"] = 0
    values["DCGM_FI_DEV_DEC_UTIL"] = 0
    values["DCGM_FI_DEV_XID_ERRORS"] = 0
    return values


def render(node, gpus, tick, interval, energy):
    """dcgm-exporter's text for one node: `gpus` is [(index, state, (namespace, pod, container) or
    None)]. `energy` (UUID -> mJ since "boot") is advanced by this tick's power draw."""
    samples = []
    for index, state, pod in gpus:
        gpu_id = gpu_uuid(node, index)
        values = readings(state, tick, interval, gpu_id, index)
        last_tick, joules = energy.get(gpu_id, (tick - 1, 4.0e9 + random.Random(gpu_id).randrange(10**9)))
        joules += values["DCGM_FI_DEV_POWER_USAGE"] * 1000 * interval * max(0, tick - last_tick)
        energy[gpu_id] = (max(tick, last_tick), joules)
        values["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"] = int(joules)
        # Labels in dcgm-exporter's order: the GPU's, Hostname, then its label map sorted by key
        # (DCGM_FI_DRIVER_VERSION, and in Kubernetes mode container, namespace, pod).
        labels = (f'gpu="{index}",UUID="{gpu_id}",pci_bus_id="00000000:{PCI_BUSES[index % 8]}:00.0",'
                  f'device="nvidia{index}",modelName="{MODEL}",Hostname="{node}",'
                  f'DCGM_FI_DRIVER_VERSION="{DRIVER_VERSION}"')
        if pod is not None:
            labels += f',container="{pod[2]}",namespace="{pod[0]}",pod="{pod[1]}"'
        samples.append((labels, values))
    lines = []
    for name, kind, help_text, double in FIELDS:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, values in samples:
            value = values[name]
            lines.append(f"{name}{{{labels}}} " + (f"{float(value):f}" if double else str(int(value))))
    return ("\n".join(lines) + "\n").encode()


# ---------------------------------------------------------------- serving

class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def handler_for(exporter, node):
    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "dcgm-exporter-stand-in"

        def do_GET(self):
            path = self.path.split("?")[0]
            if path == "/metrics":
                body, kind = exporter.text(node), "text/plain; version=0.0.4; charset=utf-8"
            elif path == "/health":
                body, kind = b"OK", "text/plain; charset=utf-8"
            elif path == "/":
                body = (b"<html><head><title>GPU Exporter</title></head><body><h1>GPU Exporter</h1>"
                        b"<p><a href=\"./metrics\">Metrics</a></p></body></html>")
                kind = "text/html; charset=utf-8"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    return Handler


class Exporter:
    """The per-node snapshots, the HTTP servers at the exporter pods' IPs and the dummy link."""

    def __init__(self, args, pods):
        self.args, self.pods = args, pods
        self.workload = Workload()
        self.lock = threading.Lock()
        self.snapshots = {}   # node -> text of the current tick
        self.tick = None
        self.busy = {}        # cluster key -> bool at the current tick
        self.energy = {}
        self.served = {}      # pod uid -> (name, ip, node, server)

    # -- the link
    def link_up(self):
        """A link of our own for the pods' addresses: a dummy interface, or, on kernels without the
        dummy driver (e.g. this machine's VM), a bridge with no ports, which holds local addresses
        just as well. Either way the addresses are local: the host reaches them before any route."""
        ip_cmd("link", "del", self.args.link, check=False)   # a killed run's
        if ip_cmd("link", "add", self.args.link, "type", "dummy", check=False).returncode != 0:
            ip_cmd("link", "add", self.args.link, "type", "bridge")
            log(f"no dummy interfaces on this kernel: {self.args.link} is a bridge without ports")
        ip_cmd("link", "set", self.args.link, "up")

    # -- snapshots
    def compute(self, tick, nodes_to_render):
        """The text of each node at `tick`, from the pods' GPUs and the busy state read at this tick."""
        assigned, _ = self.pods.view()
        out = {}
        for node in nodes_to_render:
            gpus = []
            for index in range(self.args.gpus_per_node):
                pod = assigned.get(node, {}).get(index)
                if pod is None:
                    gpus.append((index, FREE, None))
                    continue
                namespace, name, container, key = pod
                state = BUSY if key is None or self.busy.get(key) else IDLE
                gpus.append((index, state, (namespace, name, container)))
            out[node] = render(node, gpus, tick, self.args.interval, self.energy)
        return out

    def read_workload(self, within=3.0):
        """Which RayClusters holding GPUs run a job now, from their Ray heads."""
        assigned, heads = self.pods.view()
        clusters = sorted({pod[3] for gpus in assigned.values() for pod in gpus.values() if pod[3]})
        return self.workload.read(clusters, heads, within)

    def publish(self, tick, busy):
        """The snapshot of every served node at `tick`: what scrapes get until the next tick."""
        with self.lock:
            self.busy = busy
            nodes = {node for _, _, node, _ in self.served.values()}
            self.snapshots = self.compute(tick, sorted(nodes))
            self.tick = tick

    def text(self, node):
        with self.lock:
            if node not in self.snapshots:   # an exporter that started within this tick
                tick = self.tick if self.tick is not None else int(time.time() // self.args.interval)
                self.snapshots.update(self.compute(tick, [node]))
            return self.snapshots[node]

    # -- servers
    def reconcile(self, wanted):
        """Serves exactly the exporter pods in `wanted` (uid -> (name, ip, node))."""
        for uid in list(self.served):
            if wanted.get(uid) != self.served[uid][:3]:
                self.stop(uid)
        for uid, (name, ip, node) in sorted(wanted.items(), key=lambda item: item[1]):
            if uid not in self.served:
                self.start(uid, name, ip, node)

    def start(self, uid, name, ip, node):
        try:
            ip_cmd("addr", "replace", f"{ip}/32", "dev", self.args.link)
            server = Server((ip, EXPORTER_PORT), handler_for(self, node))
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as error:
            log(f"cannot serve {EXPORTER_NAMESPACE}/{name} at {ip}:{EXPORTER_PORT}: {error}")
            ip_cmd("addr", "del", f"{ip}/32", "dev", self.args.link, check=False)
            return
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True).start()
        self.served[uid] = (name, ip, node, server)
        log(f"exporter {EXPORTER_NAMESPACE}/{name} on {node} serving http://{ip}:{EXPORTER_PORT}/metrics "
            f"({self.args.gpus_per_node}x {MODEL}, stand-in)")

    def stop(self, uid):
        name, ip, node, server = self.served.pop(uid)
        server.shutdown()
        server.server_close()
        ip_cmd("addr", "del", f"{ip}/32", "dev", self.args.link, check=False)
        with self.lock:
            if not any(n == node for _, _, n, _ in self.served.values()):
                self.snapshots.pop(node, None)
        log(f"exporter {EXPORTER_NAMESPACE}/{name} on {node} at {ip} stopped")

    def stop_all(self):
        for uid in list(self.served):
            self.stop(uid)


# ---------------------------------------------------------------- watching

def watch_forever(api, path, selector, on_list, on_event, stopping, first_listed=None):
    """list+watch `path` until `stopping`, relisting after any error (a dropped watch, 410 Gone,
    the apiserver restarting)."""
    while not stopping.is_set():
        try:
            version, items = api.list(path, selector)
            on_list(items)
            if first_listed is not None:
                first_listed.set()
            for event in api.watch(path, version, selector):
                kind, obj = event["type"], event["object"]
                if kind == "ERROR":
                    raise RuntimeError(f"watch ended: {obj.get('message')}")
                if kind != "BOOKMARK":
                    on_event(kind, obj)
        except Exception as error:
            if stopping.is_set():
                break
            log(f"relisting {path} after: {error}")
            time.sleep(1)


def run(args):
    api = Apiserver(args.apiserver, args.ca, args.cert, args.key)
    pods = Pods(args.gpus_per_node)
    exporter = Exporter(args, pods)
    exporter.link_up()
    stopping = threading.Event()

    def terminate(*_):
        stopping.set()
        exporter.stop_all()
        ip_cmd("link", "del", args.link, check=False)
        log("stopped")
        os._exit(0)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)

    # Every pod: which hold GPUs, where the Ray heads are.
    pods_listed = threading.Event()
    threading.Thread(target=watch_forever, daemon=True, args=(
        api, "/api/v1/pods", None, pods.replace, pods.update, stopping, pods_listed)).start()
    pods_listed.wait(30)

    # The exporter pods: serve each at its IP.
    wanted, wanted_lock = {}, threading.Lock()

    def exporters_listed(items):
        with wanted_lock:
            wanted.clear()
            for pod in items:
                if (want := exporter_of(pod)) is not None:
                    wanted[pod["metadata"]["uid"]] = want
            exporter.reconcile(dict(wanted))

    def exporter_event(kind, pod):
        with wanted_lock:
            uid = pod["metadata"]["uid"]
            want = exporter_of(pod) if kind != "DELETED" else None
            if want is not None:
                wanted[uid] = want
            else:
                wanted.pop(uid, None)
            exporter.reconcile(dict(wanted))

    exporter.publish(int(time.time() // args.interval), exporter.read_workload())
    threading.Thread(target=watch_forever, daemon=True, args=(
        api, f"/api/v1/namespaces/{EXPORTER_NAMESPACE}/pods", EXPORTER_SELECTOR,
        exporters_listed, exporter_event, stopping)).start()
    log(f"watching exporter pods ({EXPORTER_NAMESPACE}, {EXPORTER_SELECTOR}): a STAND-IN for dcgm-exporter "
        f"(no GPU here), port {EXPORTER_PORT}, interval {args.interval:g}s, addresses on link {args.link}")

    # The collection loop: one snapshot per node at each multiple of the interval (wall clock), so
    # the text changes exactly then. The Ray heads are asked shortly before (2 s timeout each).
    lead = min(2.5, args.interval / 2)
    while not stopping.is_set():
        now = time.time()
        tick = int(now // args.interval) + 1
        if stopping.wait(max(0.0, tick * args.interval - lead - now)):
            break
        try:
            busy = exporter.read_workload(within=lead - 0.1)
            if stopping.wait(max(0.0, tick * args.interval - time.time())):
                break
            exporter.publish(tick, busy)
        except Exception as error:  # keep serving the previous snapshot
            log(f"tick {tick} failed: {error!r}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cleanup", action="store_true", help="remove the link, then exit")
    parser.add_argument("--apiserver")
    parser.add_argument("--ca")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--link", required=True, help="the dummy interface holding the exporter pods' IPs")
    parser.add_argument("--interval", type=float, default=5.0, help="collection interval, seconds")
    parser.add_argument("--gpus-per-node", type=int, default=8)
    args = parser.parse_args()
    if args.cleanup:
        ip_cmd("link", "del", args.link, check=False)
        return
    for needed in ("apiserver", "ca", "cert", "key"):
        if not getattr(args, needed):
            parser.error(f"--{needed} is required")
    if args.interval <= 0 or not 1 <= args.gpus_per_node <= len(PCI_BUSES):
        parser.error("--interval must be positive and --gpus-per-node 1-8")
    run(args)


if __name__ == "__main__":
    main()
