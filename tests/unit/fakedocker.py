"""An in-memory fake of the parts of the docker-py client that ``ops`` uses (no daemon, no network).

It keeps the daemon's semantics where ``ops`` depends on them:

* objects returned by ``list``/``create``/``get`` are *snapshots*: ``.status`` and ``.attrs`` change
  only on ``reload()``, as with docker-py;
* ``create`` translates its keyword arguments with docker-py's own ``_create_container_args``, so
  an argument docker-py would refuse raises the same ``TypeError`` here, and ``HostConfig`` (port
  bindings, mounts, extra hosts, restart policy) has the shape Docker reports;
* filters really filter: ``label`` (``"k=v"`` or ``"k"``, all must match), ``name`` (a *substring*
  match, as the daemon does for containers and networks), ``id``, ``status``; an unknown filter
  raises instead of being ignored;
* the daemon's refusals: a duplicate container name (409), an unknown image or network (404),
  removing a running container without ``force`` (409), removing a volume or network still in use
  (409), publishing a host port another running container holds (500 at ``start``).

Every change is recorded in ``client.events`` as ``(verb, name)``: ``create``, ``start``, ``stop``,
``restart``, ``remove`` for containers; ``create-volume``/``remove-volume``;
``create-network``/``remove-network``. Reads are not recorded.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import threading
from collections.abc import Iterable

import docker.errors
from docker.models.containers import _create_container_args

API_VERSION = "1.45"


def _id(kind: str, name: str, serial: int) -> str:
    return hashlib.sha256(f"{kind}:{name}:{serial}".encode()).hexdigest()


def _conflict(message: str) -> docker.errors.APIError:
    return docker.errors.APIError(f"409 Client Error: Conflict ({message})", explanation=message)


def _labels_match(labels: dict[str, str], wanted: Iterable[str]) -> bool:
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def _as_list(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _matches(filters: dict | None, *, labels: dict, name: str, ident: str, status: str | None = None) -> bool:
    for key, value in (filters or {}).items():
        values = _as_list(value)
        if key == "label":
            if not _labels_match(labels, values):
                return False
        elif key == "name":
            if not any(v in name for v in values):
                return False
        elif key == "id":
            if not any(ident.startswith(v) for v in values):
                return False
        elif key == "status" and status is not None:
            if status not in values:
                return False
        else:
            raise NotImplementedError(f"fakedocker: filter {key!r} is not implemented")
    return True


# --------------------------------------------------------------------------------------------- containers


class _ContainerRecord:
    """What the fake daemon knows about one container (the truth behind the snapshots)."""

    def __init__(self, ident: str, name: str, image_id: str, image_ref: str, create: dict):
        host_config = dict(create.get("host_config") or {})
        self.id = ident
        self.name = name
        self.image_id = image_id
        mode = host_config.get("NetworkMode")
        self.network = "bridge" if mode in (None, "default") else mode
        self.removed = False
        self.logs: list[str] = []
        self.exit_on_start: int | None = None
        self.attrs: dict = {
            "Id": ident,
            "Name": f"/{name}",
            "Image": image_id,
            "RestartCount": 0,
            "State": {"Status": "created", "Running": False, "ExitCode": 0},
            "Config": {
                "Image": image_ref,
                "Hostname": create.get("hostname") or ident[:12],
                "Labels": dict(create.get("labels") or {}),
                "Env": [f"{k}={v}" for k, v in (create.get("environment") or {}).items()],
            },
            "HostConfig": host_config,
            "NetworkSettings": {"Networks": {self.network: {}} if self.network else {}},
        }

    @property
    def status(self) -> str:
        return self.attrs["State"]["Status"]

    @property
    def labels(self) -> dict[str, str]:
        return self.attrs["Config"]["Labels"]

    def host_ports(self) -> set[tuple[str, str, str]]:
        """(host ip, host port, protocol) of every published port."""
        return {
            (b.get("HostIp") or "0.0.0.0", b.get("HostPort"), port.partition("/")[2] or "tcp")
            for port, bindings in (self.attrs["HostConfig"].get("PortBindings") or {}).items()
            for b in bindings or []
            if b.get("HostPort")
        }

    def volume_names(self) -> set[str]:
        return {
            m["Source"] for m in self.attrs["HostConfig"].get("Mounts") or [] if m.get("Type") == "volume"
        }


class FakeContainer:
    """A docker-py ``Container``: a snapshot of its record, refreshed by ``reload()``."""

    def __init__(self, client: FakeDocker, record: _ContainerRecord):
        self.client = client
        self._record = record
        self.id = record.id
        self.attrs = copy.deepcopy(record.attrs)

    @property
    def name(self) -> str:
        return self.attrs["Name"].lstrip("/")

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def labels(self) -> dict[str, str]:
        return self.attrs["Config"].get("Labels") or {}

    @property
    def status(self) -> str:
        return self.attrs["State"]["Status"]

    @property
    def image(self) -> FakeImage:
        return self.client.images.get(self.attrs["Image"])

    def __repr__(self) -> str:
        return f"<FakeContainer: {self.name}>"

    def _live(self) -> _ContainerRecord:
        if self._record.removed:
            raise docker.errors.NotFound(f"No such container: {self.id}")
        return self._record

    def reload(self) -> None:
        with self.client.lock:
            self.attrs = copy.deepcopy(self._live().attrs)

    def start(self) -> None:
        with self.client.lock:
            record = self._live()
            if record.status == "running":
                return  # Docker answers 304 Not Modified; docker-py returns quietly
            taken = {
                port
                for other in self.client.container_records()
                if other is not record and other.status == "running"
                for port in other.host_ports()
            }
            for host_ip, host_port, proto in sorted(record.host_ports()):
                if any(
                    (p, pr) == (host_port, proto) and (ip == host_ip or "0.0.0.0" in (ip, host_ip))
                    for ip, p, pr in taken
                ):
                    message = f"Bind for {host_ip}:{host_port} failed: port is already allocated"
                    raise docker.errors.APIError(f"500 Server Error ({message})", explanation=message)
            self.client.record("start", record.name)
            record.logs.extend(self.client.image_logs.get(record.image_id, []))
            if record.exit_on_start is not None:
                record.attrs["State"] = {
                    "Status": "exited",
                    "Running": False,
                    "ExitCode": record.exit_on_start,
                }
            else:
                record.attrs["State"] = {"Status": "running", "Running": True, "ExitCode": 0}

    def stop(self, timeout: int | None = None) -> None:
        with self.client.lock:
            record = self._live()
            self.client.record("stop", record.name)
            if record.status == "running":
                record.attrs["State"] = {"Status": "exited", "Running": False, "ExitCode": 0}

    def restart(self, timeout: int | None = None) -> None:
        with self.client.lock:
            record = self._live()
            self.client.record("restart", record.name)
            record.attrs["State"] = {"Status": "running", "Running": True, "ExitCode": 0}

    def remove(self, force: bool = False, v: bool = False, link: bool = False) -> None:
        with self.client.lock:
            record = self._live()
            if record.status == "running" and not force:
                raise _conflict(f"cannot remove container {record.name}: container is running")
            self.client.record("remove", record.name)
            record.removed = True
            record.attrs["State"] = {"Status": "removing", "Running": False, "ExitCode": 0}

    def logs(self, tail: int | str = "all", **_: object) -> bytes:
        with self.client.lock:
            lines = list(self._live().logs)
        if tail != "all":
            lines = lines[-int(tail) :] if int(tail) else []
        return "".join(f"{line}\n" for line in lines).encode()


class FakeContainers:
    """``client.containers``."""

    def __init__(self, client: FakeDocker):
        self.client = client

    def create(self, image: str, command=None, **kwargs) -> FakeContainer:
        args = dict(kwargs, image=image, command=command, version=API_VERSION)
        create = _create_container_args(args)  # docker-py's own translation: TypeError on a bad kwarg
        name = create.get("name")
        with self.client.lock:
            image_obj = self.client.images.get(image)
            if name and any(r.name == name for r in self.client.container_records()):
                raise _conflict(f'the container name "/{name}" is already in use')
            network = (create.get("host_config") or {}).get("NetworkMode")
            if (
                network
                and network not in ("default", "bridge", "host", "none")
                and not self.client.networks._find(network)
            ):
                raise docker.errors.NotFound(f"network {network} not found")
            serial = next(self.client.serial)
            name = name or f"fake_{serial}"
            record = _ContainerRecord(_id("container", name, serial), name, image_obj.id, image, create)
            record.exit_on_start = self.client.image_exit_codes.get(image_obj.id)
            for volume in sorted(record.volume_names()):
                if volume not in self.client.volume_records:  # the daemon makes a missing named volume
                    self.client.volumes.create(volume)
            self.client.record("create", name)
            self.client.container_records_by_id[record.id] = record
            return FakeContainer(self.client, record)

    def get(self, container_id: str) -> FakeContainer:
        with self.client.lock:
            for record in self.client.container_records():
                if container_id in (record.id, record.name) or (
                    len(container_id) >= 12 and record.id.startswith(container_id)
                ):
                    return FakeContainer(self.client, record)
        raise docker.errors.NotFound(f"No such container: {container_id}")

    def list(self, all: bool = False, filters: dict | None = None, **_: object) -> list[FakeContainer]:
        with self.client.lock:
            return [
                FakeContainer(self.client, r)
                for r in self.client.container_records()
                if (all or r.status == "running")
                and _matches(filters, labels=r.labels, name=r.name, ident=r.id, status=r.status)
            ]


# --------------------------------------------------------------------------------------------- volumes


class FakeVolume:
    def __init__(self, client: FakeDocker, name: str):
        self.client = client
        self.name = name
        self.id = name
        self.attrs = copy.deepcopy(client.volume_records[name])

    def __repr__(self) -> str:
        return f"<FakeVolume: {self.name}>"

    def reload(self) -> None:
        with self.client.lock:
            if self.name not in self.client.volume_records:
                raise docker.errors.NotFound(f"get {self.name}: no such volume")
            self.attrs = copy.deepcopy(self.client.volume_records[self.name])

    def remove(self, force: bool = False) -> None:
        with self.client.lock:
            if self.name not in self.client.volume_records:
                raise docker.errors.NotFound(f"get {self.name}: no such volume")
            users = [r.name for r in self.client.container_records() if self.name in r.volume_names()]
            if users:
                raise _conflict(f"remove {self.name}: volume is in use - [{', '.join(users)}]")
            self.client.record("remove-volume", self.name)
            del self.client.volume_records[self.name]


class FakeVolumes:
    """``client.volumes``."""

    def __init__(self, client: FakeDocker):
        self.client = client

    def create(self, name: str | None = None, driver: str | None = None, labels: dict | None = None, **_):
        with self.client.lock:
            name = name or _id("volume", "", next(self.client.serial))
            if name not in self.client.volume_records:  # Docker returns an existing volume as it is
                self.client.record("create-volume", name)
                self.client.volume_records[name] = {
                    "Name": name,
                    "Driver": driver or "local",
                    "Labels": dict(labels or {}),
                    "Mountpoint": f"/var/lib/docker/volumes/{name}/_data",
                }
            return FakeVolume(self.client, name)

    def get(self, name: str) -> FakeVolume:
        with self.client.lock:
            if name not in self.client.volume_records:
                raise docker.errors.NotFound(f"get {name}: no such volume")
            return FakeVolume(self.client, name)

    def list(self, filters: dict | None = None) -> list[FakeVolume]:
        with self.client.lock:
            return [
                FakeVolume(self.client, name)
                for name, attrs in self.client.volume_records.items()
                if _matches(filters, labels=attrs["Labels"] or {}, name=name, ident=name)
            ]


# --------------------------------------------------------------------------------------------- networks


class FakeNetwork:
    def __init__(self, client: FakeDocker, ident: str):
        self.client = client
        self.id = ident
        self.attrs = copy.deepcopy(client.network_records[ident])

    @property
    def name(self) -> str:
        return self.attrs["Name"]

    def __repr__(self) -> str:
        return f"<FakeNetwork: {self.name}>"

    def reload(self) -> None:
        with self.client.lock:
            if self.id not in self.client.network_records:
                raise docker.errors.NotFound(f"network {self.id} not found")
            self.attrs = copy.deepcopy(self.client.network_records[self.id])

    def remove(self) -> None:
        with self.client.lock:
            if self.id not in self.client.network_records:
                raise docker.errors.NotFound(f"network {self.id} not found")
            users = [r.name for r in self.client.container_records() if r.network == self.name]
            if users:
                raise _conflict(f"network {self.name} has active endpoints ({', '.join(users)})")
            self.client.record("remove-network", self.name)
            del self.client.network_records[self.id]


class FakeNetworks:
    """``client.networks``."""

    def __init__(self, client: FakeDocker):
        self.client = client

    def _find(self, name_or_id: str) -> str | None:
        for ident, attrs in self.client.network_records.items():
            if name_or_id in (ident, attrs["Name"]):
                return ident
        return None

    def create(
        self,
        name: str,
        driver: str | None = None,
        labels: dict | None = None,
        check_duplicate: bool | None = None,
        gateway: str | None = None,
        **_: object,
    ) -> FakeNetwork:
        with self.client.lock:
            if check_duplicate and self._find(name):
                raise _conflict(f"network with name {name} already exists")
            serial = next(self.client.serial)
            ident = _id("network", name, serial)
            subnet = len(self.client.network_records)
            if gateway is None:  # "" makes a network without one (an IPAM config Docker might report)
                gateway = f"172.{30 + subnet}.0.1"
            self.client.record("create-network", name)
            self.client.network_records[ident] = {
                "Name": name,
                "Id": ident,
                "Driver": driver or "bridge",
                "Labels": dict(labels or {}),
                "IPAM": {
                    "Driver": "default",
                    "Config": [{"Subnet": gateway.rsplit(".", 2)[0] + ".0.0/16", "Gateway": gateway}]
                    if gateway
                    else [],
                },
            }
            return FakeNetwork(self.client, ident)

    def get(self, network_id: str) -> FakeNetwork:
        with self.client.lock:
            ident = self._find(network_id)
            if ident is None:
                raise docker.errors.NotFound(f"network {network_id} not found")
            return FakeNetwork(self.client, ident)

    def list(
        self, names: list[str] | None = None, ids: list[str] | None = None, filters: dict | None = None, **_
    ) -> list[FakeNetwork]:
        filters = dict(filters or {})
        if names:
            filters["name"] = names
        if ids:
            filters["id"] = ids
        with self.client.lock:
            return [
                FakeNetwork(self.client, ident)
                for ident, attrs in self.client.network_records.items()
                if _matches(filters, labels=attrs["Labels"], name=attrs["Name"], ident=ident)
            ]


# --------------------------------------------------------------------------------------------- images


class FakeImage:
    def __init__(self, ident: str, record: dict):
        self.id = ident
        self.tags = list(record["tags"])
        self.attrs = {
            "Id": ident,
            "RepoTags": list(record["tags"]),
            "Config": copy.deepcopy(record["config"]),
        }

    @property
    def labels(self) -> dict[str, str]:
        return self.attrs["Config"].get("Labels") or {}

    def __repr__(self) -> str:
        return f"<FakeImage: {', '.join(self.tags) or self.id}>"


class FakeImages:
    """``client.images``: only ``get`` (by tag, full id or a 12+ character id prefix)."""

    def __init__(self, client: FakeDocker):
        self.client = client

    def get(self, ref: str) -> FakeImage:
        for ident, record in self.client.image_records.items():
            bare = ident.removeprefix("sha256:")
            if (
                ref in record["tags"]
                or ref == ident
                or (len(ref) >= 12 and bare.startswith(ref.removeprefix("sha256:")))
            ):
                return FakeImage(ident, record)
        raise docker.errors.ImageNotFound(f"No such image: {ref}")


# --------------------------------------------------------------------------------------------- client


class FakeDocker:
    """A fake ``docker.DockerClient``; ``add_image`` first, since ``create`` never pulls."""

    def __init__(self, root_dir: str = "/var/lib/docker"):
        self.lock = threading.RLock()
        self.serial = itertools.count(1)
        self.events: list[tuple[str, str]] = []
        self.container_records_by_id: dict[str, _ContainerRecord] = {}
        self.volume_records: dict[str, dict] = {}
        self.network_records: dict[str, dict] = {}
        self.image_records: dict[str, dict] = {}
        self.image_exit_codes: dict[str, int] = {}
        self.image_logs: dict[str, list[str]] = {}
        self.info_data = {
            "DockerRootDir": root_dir,
            "ServerVersion": "27.0.0-fake",
            "OperatingSystem": "fake",
        }
        self.version_data = {"Version": "27.0.0-fake", "ApiVersion": "1.46", "Os": "linux", "Arch": "amd64"}
        self.containers = FakeContainers(self)
        self.volumes = FakeVolumes(self)
        self.networks = FakeNetworks(self)
        self.images = FakeImages(self)

    # -- the client's own calls

    def info(self) -> dict:
        return dict(self.info_data)

    def version(self) -> dict:
        return dict(self.version_data)

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        pass

    # -- for tests

    def record(self, verb: str, name: str) -> None:
        with self.lock:
            self.events.append((verb, name))

    def take_events(self) -> list[tuple[str, str]]:
        """The events so far, and forget them."""
        with self.lock:
            events, self.events = self.events, []
            return events

    def container_records(self) -> list[_ContainerRecord]:
        return [r for r in self.container_records_by_id.values() if not r.removed]

    def add_image(
        self,
        *tags: str,
        ident: str | None = None,
        exits_with: int | None = None,
        logs: Iterable[str] = (),
        volumes: Iterable[str] = (),
        labels: dict[str, str] | None = None,
    ) -> str:
        """Make an image known under ``tags`` (declaring ``VOLUME`` paths ``volumes``); its containers
        print ``logs`` when started, and exit at once with ``exits_with`` if given. Returns its id."""
        ident = ident or "sha256:" + hashlib.sha256(" ".join(tags).encode()).hexdigest()
        with self.lock:
            record = self.image_records.setdefault(
                ident, {"tags": [], "config": {"Volumes": None, "Labels": None}}
            )
            record["tags"].extend(t for t in tags if t not in record["tags"])
            if volumes:
                record["config"]["Volumes"] = {path: {} for path in volumes}
            if labels:
                record["config"]["Labels"] = dict(labels)
            if exits_with is not None:
                self.image_exit_codes[ident] = exits_with
            if logs:
                self.image_logs[ident] = list(logs)
        return ident

    def run(self, image: str, **kwargs) -> FakeContainer:
        """Create and start a container without recording it (state set up before the test)."""
        kwargs.setdefault("detach", True)
        with self.lock:
            mark = len(self.events)
            container = self.containers.create(image, **kwargs)
            container.start()
            container.reload()
            del self.events[mark:]
        return container

    def write_log(self, name: str, *lines: str) -> None:
        with self.lock:
            self.containers.get(name)._live().logs.extend(lines)

    def set_state(self, name: str, status: str, exit_code: int = 0, restarts: int | None = None, health=None):
        """Change what the daemon reports for container ``name`` (crashes, restarts, health)."""
        with self.lock:
            record = self.containers.get(name)._live()
            record.attrs["State"] = {"Status": status, "Running": status == "running", "ExitCode": exit_code}
            if health is not None:
                record.attrs["State"]["Health"] = {"Status": health}
            if restarts is not None:
                record.attrs["RestartCount"] = restarts
