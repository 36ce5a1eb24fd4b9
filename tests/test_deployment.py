"""The deployment files start what shop/queues.py declares, the same way.

docker-compose.yml (production) and the Procfile (the demo) each run one
worker per queue. These tests keep both in step with the queue table and
with each other, and check the settings that keep the broker and Flower
safe. They read files only: no database, no Docker engine.

Each check returns a list of problems, empty when all is well, so a failure
names everything that is wrong at once. The last test feeds the checks
deliberately broken copies, to show that they can fail.
"""

import json
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from shop.celery import app
from shop.queues import QUEUES

ROOT = Path(__file__).resolve().parent.parent

# Short options of the celery commands used here, and their long names.
ALIASES = {
    "-A": "--app",
    "-B": "--beat",
    "-Q": "--queues",
    "-n": "--hostname",
    "-c": "--concurrency",
    "-l": "--loglevel",
    "-d": "--destination",
    "-t": "--timeout",
}

Compose = dict
Procfile = dict[str, list[str]]


# --- Reading the files ----------------------------------------------------


def read_compose(path: Path = ROOT / "docker-compose.yml") -> Compose:
    """Return the compose file as plain data, with YAML merge keys resolved.

    The round trip through JSON unshares the mappings that YAML aliases
    share, so a test can change one service without changing its siblings.
    """
    return json.loads(json.dumps(yaml.safe_load(path.read_text())))


def read_procfile(path: Path = ROOT / "Procfile") -> Procfile:
    """Return each Procfile process with its command split into words."""
    processes = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            processes[name.strip()] = shlex.split(command)
    return processes


def compose_commands(compose: Compose) -> dict[str, list[str]]:
    """Return each service's command split into words, [] when it has none."""
    return {
        name: command_words(service) for name, service in compose["services"].items()
    }


def command_words(service: dict) -> list[str]:
    command = service.get("command", [])
    if isinstance(command, str):
        return shlex.split(command)
    return [str(word) for word in command]


def environment(service: dict) -> dict[str, str]:
    """Return a service's environment, given as a mapping or as KEY=value."""
    env = service.get("environment", {})
    if isinstance(env, list):
        pairs = (entry.partition("=") for entry in env)
        return {key: value for key, _, value in pairs}
    return {key: str(value) for key, value in env.items()}


def without_variables(text: str) -> str:
    """Replace each ${...} reference with a placeholder, leaving a parsable URL."""
    return re.sub(r"\$\{[^}]*\}", "x", text)


def duration_seconds(value: str | int | float) -> float:
    """Return a compose duration such as "75s" or "1m30s" in seconds."""
    if isinstance(value, int | float):
        return float(value)
    units = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)", value)
    return sum(float(number) * units[unit] for number, unit in parts)


# --- Command lines --------------------------------------------------------


@dataclass
class Command:
    """A command line split into positional words and options.

    An option takes the next word as its value unless that word is itself an
    option, which holds for every command in these files. Short options are
    stored under their long names, so `-c 2` and `--concurrency=2` compare
    equal.
    """

    program: str
    positional: list[str]
    options: dict[str, str | bool]

    @classmethod
    def parse(cls, argv: list[str]) -> "Command":
        positional: list[str] = []
        options: dict[str, str | bool] = {}
        words = argv[1:]
        index = 0
        while index < len(words):
            word = words[index]
            if not word.startswith("-"):
                positional.append(word)
            elif "=" in word:
                name, _, value = word.partition("=")
                options[ALIASES.get(name, name)] = value
            elif index + 1 < len(words) and not words[index + 1].startswith("-"):
                options[ALIASES.get(word, word)] = words[index + 1]
                index += 1
            else:
                options[ALIASES.get(word, word)] = True
            index += 1
        return cls(Path(argv[0]).name if argv else "", positional, options)

    @property
    def subcommand(self) -> str:
        """Return the celery subcommand (worker, beat, ...), or ""."""
        if self.program != "celery" or not self.positional:
            return ""
        return self.positional[0]

    @property
    def queues(self) -> list[str]:
        value = self.options.get("--queues")
        return value.split(",") if isinstance(value, str) else []

    @property
    def node(self) -> str:
        """Return the node name's part before "@" (critical in critical@%h)."""
        return str(self.options.get("--hostname", "")).partition("@")[0]


def celery_processes(
    commands: dict[str, list[str]], subcommand: str
) -> dict[str, Command]:
    """Return the processes running one celery subcommand, by name."""
    parsed = {name: Command.parse(argv) for name, argv in commands.items()}
    return {
        name: command
        for name, command in parsed.items()
        if command.subcommand == subcommand
    }


# --- The checks -----------------------------------------------------------


def queue_problems(
    source: str, commands: dict[str, list[str]], queues: Iterable[str]
) -> list[str]:
    """Check that each queue has one worker, named worker-<queue>, and no more."""
    problems = []
    consumers: dict[str, list[str]] = {queue: [] for queue in queues}
    for name, worker in celery_processes(commands, "worker").items():
        if len(worker.queues) != 1:
            consumed = worker.queues or "every queue (no -Q)"
            problems.append(f"{source}: {name} consumes {consumed}, not one queue")
        for queue in worker.queues:
            if queue not in consumers:
                problems.append(f"{source}: {name} consumes undeclared {queue!r}")
            else:
                consumers[queue].append(name)
        if worker.queues and name != f"worker-{worker.queues[0]}":
            problems.append(f"{source}: {name} should be worker-{worker.queues[0]}")
    for queue, names in consumers.items():
        if len(names) != 1:
            problems.append(f"{source}: {queue!r} has {len(names)} workers {names}")
    return problems


def worker_flag_problems(compose: Compose, procfile: Procfile) -> list[str]:
    """Check that compose and the Procfile start each queue's worker alike."""
    problems = []
    in_compose = workers_by_queue(compose_commands(compose))
    in_procfile = workers_by_queue(procfile)
    for queue in sorted(in_compose.keys() & in_procfile.keys()):
        differing = differing_options(in_compose[queue], in_procfile[queue])
        if differing:
            problems.append(
                f"worker for {queue!r}: compose and Procfile differ in {differing}"
            )
    return problems


def workers_by_queue(commands: dict[str, list[str]]) -> dict[str, Command]:
    """Return the workers that consume a single queue, by that queue."""
    return {
        worker.queues[0]: worker
        for worker in celery_processes(commands, "worker").values()
        if len(worker.queues) == 1
    }


def differing_options(ours: Command, theirs: Command) -> list[str]:
    names = ours.options.keys() | theirs.options.keys()
    return sorted(
        name for name in names if ours.options.get(name) != theirs.options.get(name)
    )


def web_problems(compose: Compose, procfile: Procfile) -> list[str]:
    """Check that web runs the Procfile's command, bound to every interface."""
    ours = Command.parse(compose_commands(compose).get("web", []))
    theirs = Command.parse(procfile.get("web", []))
    problems = []
    if ours.options.get("--host") != "0.0.0.0":
        problems.append("compose: web must listen on 0.0.0.0 to be reachable")
    ours.options.pop("--host", None)
    theirs.options.pop("--host", None)
    differing = differing_options(ours, theirs)
    if (ours.program, ours.positional) != (theirs.program, theirs.positional):
        differing.insert(0, "the program or application")
    if differing:
        problems.append(f"web: compose and Procfile differ in {differing}")
    return problems


def beat_problems(source: str, commands: dict[str, list[str]]) -> list[str]:
    """Check that exactly one beat runs, counting beats embedded in workers."""
    beats = list(celery_processes(commands, "beat"))
    beats += [
        name
        for name, worker in celery_processes(commands, "worker").items()
        if worker.options.get("--beat")
    ]
    if len(beats) != 1:
        return [f"{source}: {len(beats)} beat processes {beats}, not one"]
    return []


def compose_beat_problems(compose: Compose) -> list[str]:
    problems = beat_problems("compose", compose_commands(compose))
    for name in celery_processes(compose_commands(compose), "beat"):
        replicas = compose["services"][name].get("deploy", {}).get("replicas")
        if replicas != 1:
            problems.append(f"compose: {name} has replicas {replicas}, not 1")
    return problems


def flower_problems(compose: Compose) -> list[str]:
    """Check that every Flower requires basic auth from the environment."""
    flowers = celery_processes(compose_commands(compose), "flower")
    if not flowers:
        return ["compose: no flower service"]
    problems = []
    for name in flowers:
        env = environment(compose["services"][name])
        if not env.get("FLOWER_BASIC_AUTH", "").startswith("${FLOWER_BASIC_AUTH:?"):
            problems.append(f"compose: {name} does not require FLOWER_BASIC_AUTH")
        if "FLOWER_UNAUTHENTICATED_API" in env:
            problems.append(f"compose: {name} opens its API without auth")
    return problems


def broker_problems(compose: Compose, root: Path = ROOT) -> list[str]:
    """Check the Redis that the broker URL names: persistent, never evicting."""
    problems = []
    hosts = set()
    for service in compose["services"].values():
        env = environment(service)
        url = env.get("CELERY_BROKER_URL") or env.get("REDIS_URL")
        if url:
            hosts.add(urlsplit(without_variables(url)).hostname)
    if not hosts:
        problems.append("compose: no service sets REDIS_URL")
    for host in sorted(hosts):
        service = compose["services"].get(host)
        if service is None:
            problems.append(f"compose: the broker URL names {host!r}, no service")
            continue
        config = redis_config(service, root)
        wanted = {"appendonly": "yes", "maxmemory-policy": "noeviction"}
        for directive, value in wanted.items():
            if config.get(directive) != value:
                running = f"{directive} {config.get(directive)!r}"
                problems.append(
                    f"compose: broker {host!r} runs {running}, not {value!r}"
                )
        if config.get("maxmemory", "0") == "0":
            problems.append(f"compose: broker {host!r} has no maxmemory")
        if service.get("ports"):
            problems.append(f"compose: broker {host!r} publishes a port")
    return problems


def redis_config(service: dict, root: Path) -> dict[str, str]:
    """Return the directives a redis-server service runs with.

    Reads the config file named on the command line through its bind mount,
    then applies the `--directive value` arguments, which override it.
    """
    argv = command_words(service)
    if argv[:1] != ["redis-server"]:
        return {}
    config: dict[str, str] = {}
    arguments = argv[1:]
    if arguments and not arguments[0].startswith("--"):
        config.update(read_redis_conf(mounted_file(service, arguments[0], root)))
        arguments = arguments[1:]
    directive = ""
    values: dict[str, list[str]] = {}
    for word in arguments:
        if word.startswith("--"):
            directive = word.removeprefix("--")
            values[directive] = []
        else:
            values[directive].append(word)
    config.update({name: " ".join(words) for name, words in values.items()})
    return config


def mounted_file(service: dict, target: str, root: Path) -> Path:
    """Return the file on the host that a service sees at target."""
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, _, rest = volume.partition(":")
            mounted_at = rest.partition(":")[0]
        else:
            source, mounted_at = volume.get("source", ""), volume.get("target")
        if mounted_at == target:
            return root / source
    raise AssertionError(f"nothing is mounted at {target}")


def read_redis_conf(path: Path) -> dict[str, str]:
    config = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            directive, _, value = line.strip().partition(" ")
            config[directive.lower()] = value.strip()
    return config


def dependency_problems(compose: Compose) -> list[str]:
    """Check that waiting on postgres or redis means waiting until healthy."""
    problems = []
    for name, service in compose["services"].items():
        depends_on = service.get("depends_on", {})
        if isinstance(depends_on, list):
            depends_on = {dependency: {} for dependency in depends_on}
        for dependency, how in depends_on.items():
            target = compose["services"].get(dependency, {})
            image = target.get("image", "").rpartition("/")[2].partition(":")[0]
            if image not in ("postgres", "redis"):
                continue
            if (how or {}).get("condition") != "service_healthy":
                problems.append(
                    f"compose: {name} does not wait for {dependency} to be healthy"
                )
            if "healthcheck" not in target:
                problems.append(f"compose: {dependency} has no healthcheck")
    return problems


def shutdown_problems(compose: Compose, soft_shutdown_seconds: float) -> list[str]:
    """Check that SIGTERM starts the soft shutdown and Docker waits it out."""
    problems = []
    for name in celery_processes(compose_commands(compose), "worker"):
        service = compose["services"][name]
        if environment(service).get("REMAP_SIGTERM") != "SIGQUIT":
            problems.append(f"compose: {name} would take SIGTERM as a warm shutdown")
        grace = duration_seconds(service.get("stop_grace_period", "10s"))
        if grace <= soft_shutdown_seconds:
            problems.append(
                f"compose: {name} is killed after {grace:g}s, before the"
                f" {soft_shutdown_seconds:g}s soft shutdown ends"
            )
    return problems


def healthcheck_problems(compose: Compose) -> list[str]:
    """Check that each worker's healthcheck pings that worker's own node."""
    problems = []
    workers = celery_processes(compose_commands(compose), "worker")
    for name, worker in workers.items():
        test = compose["services"][name].get("healthcheck", {}).get("test", [])
        if isinstance(test, list) and test[:1] == ["CMD-SHELL"]:
            test = shlex.split(test[1])
        elif isinstance(test, list):
            test = test[1:]
        else:
            test = shlex.split(test)
        ping = Command.parse(test)
        node = str(ping.options.get("--destination", "")).partition("@")[0]
        if ping.positional[:2] != ["inspect", "ping"] or node != worker.node:
            problems.append(
                f"compose: {name}'s healthcheck does not ping {worker.node}@"
            )
    return problems


def deployment_problems(
    compose: Compose, procfile: Procfile, queues: Iterable[str]
) -> list[str]:
    """Run every check on one compose file and one Procfile."""
    return [
        *queue_problems("compose", compose_commands(compose), queues),
        *queue_problems("Procfile", procfile, queues),
        *worker_flag_problems(compose, procfile),
        *web_problems(compose, procfile),
        *compose_beat_problems(compose),
        *beat_problems("Procfile", procfile),
        *flower_problems(compose),
        *broker_problems(compose),
        *dependency_problems(compose),
        *shutdown_problems(compose, app.conf.worker_soft_shutdown_timeout),
        *healthcheck_problems(compose),
    ]


# --- Tests ----------------------------------------------------------------


@pytest.fixture
def compose() -> Compose:
    return read_compose()


@pytest.fixture
def procfile() -> Procfile:
    return read_procfile()


def test_each_queue_has_exactly_one_compose_worker(compose):
    assert queue_problems("compose", compose_commands(compose), QUEUES) == []


def test_each_queue_has_exactly_one_procfile_worker(procfile):
    assert queue_problems("Procfile", procfile, QUEUES) == []


def test_compose_and_procfile_start_each_worker_with_the_same_flags(compose, procfile):
    assert worker_flag_problems(compose, procfile) == []


def test_web_runs_the_procfile_command_on_every_interface(compose, procfile):
    assert web_problems(compose, procfile) == []


def test_exactly_one_beat_runs(compose, procfile):
    assert compose_beat_problems(compose) + beat_problems("Procfile", procfile) == []


def test_flower_requires_basic_auth(compose):
    assert flower_problems(compose) == []


def test_broker_redis_persists_and_never_evicts(compose):
    assert broker_problems(compose) == []


def test_dependencies_on_postgres_and_redis_wait_until_healthy(compose):
    assert dependency_problems(compose) == []


def test_workers_get_the_soft_shutdown_before_docker_kills_them(compose):
    soft_shutdown = app.conf.worker_soft_shutdown_timeout

    assert soft_shutdown > 0
    assert shutdown_problems(compose, soft_shutdown) == []


def test_worker_healthchecks_ping_their_own_node(compose):
    assert healthcheck_problems(compose) == []


def set_option(argv: list[str], option: str, value: str) -> None:
    argv[argv.index(option) + 1] = value


def worker(compose: Compose, queue: str) -> dict:
    return compose["services"][f"worker-{queue}"]


BREAKAGES = [
    pytest.param(
        lambda c, p: c["services"].pop("worker-emails"),
        "compose: 'emails' has 0 workers",
        id="compose-worker-removed",
    ),
    pytest.param(
        lambda c, p: p.update({"worker-emails-2": p["worker-emails"]}),
        "Procfile: 'emails' has 2 workers",
        id="procfile-worker-duplicated",
    ),
    pytest.param(
        lambda c, p: set_option(p["worker-low"], "-Q", "low,default"),
        "Procfile: worker-low consumes ['low', 'default'], not one queue",
        id="procfile-worker-two-queues",
    ),
    pytest.param(
        lambda c, p: set_option(worker(c, "search")["command"], "-Q", "reports"),
        "compose: worker-search consumes undeclared 'reports'",
        id="undeclared-queue",
    ),
    pytest.param(
        lambda c, p: set_option(worker(c, "critical")["command"], "--concurrency", "8"),
        "worker for 'critical': compose and Procfile differ in ['--concurrency']",
        id="concurrency-differs",
    ),
    pytest.param(
        lambda c, p: set_option(p["worker-exports"], "--max-tasks-per-child", "1"),
        "worker for 'exports': compose and Procfile differ in"
        " ['--max-tasks-per-child']",
        id="max-tasks-differs",
    ),
    pytest.param(
        lambda c, p: set_option(worker(c, "low")["command"], "-n", "cleanup@%h"),
        "worker for 'low': compose and Procfile differ in ['--hostname']",
        id="node-name-differs",
    ),
    pytest.param(
        lambda c, p: set_option(c["services"]["web"]["command"], "--workers", "4"),
        "web: compose and Procfile differ in ['--workers']",
        id="web-flags-differ",
    ),
    pytest.param(
        lambda c, p: worker(c, "default")["command"].append("--beat"),
        "compose: 2 beat processes",
        id="beat-embedded-in-a-worker",
    ),
    pytest.param(
        lambda c, p: c["services"]["beat"]["deploy"].update(replicas=2),
        "compose: beat has replicas 2, not 1",
        id="beat-scaled",
    ),
    pytest.param(
        lambda c, p: p.pop("beat"),
        "Procfile: 0 beat processes",
        id="procfile-beat-removed",
    ),
    pytest.param(
        lambda c, p: c["services"]["flower"]["environment"].pop("FLOWER_BASIC_AUTH"),
        "compose: flower does not require FLOWER_BASIC_AUTH",
        id="flower-without-auth",
    ),
    pytest.param(
        lambda c, p: c["services"]["redis"]["command"].extend(
            ["--maxmemory-policy", "allkeys-lru"]
        ),
        "compose: broker 'redis' runs maxmemory-policy 'allkeys-lru'",
        id="broker-evicts",
    ),
    pytest.param(
        lambda c, p: c["services"]["redis"]["command"].extend(["--appendonly", "no"]),
        "compose: broker 'redis' runs appendonly 'no'",
        id="broker-without-aof",
    ),
    pytest.param(
        lambda c, p: c["services"]["redis"].update(ports=["6379:6379"]),
        "compose: broker 'redis' publishes a port",
        id="broker-published",
    ),
    pytest.param(
        lambda c, p: c["services"]["web"]["depends_on"].update(
            redis={"condition": "service_started"}
        ),
        "compose: web does not wait for redis to be healthy",
        id="depends-on-started",
    ),
    pytest.param(
        lambda c, p: worker(c, "exports").update(stop_grace_period="1m"),
        "compose: worker-exports is killed after 60s",
        id="grace-period-too-short",
    ),
    pytest.param(
        lambda c, p: worker(c, "emails")["environment"].pop("REMAP_SIGTERM"),
        "compose: worker-emails would take SIGTERM as a warm shutdown",
        id="sigterm-not-remapped",
    ),
    pytest.param(
        lambda c, p: worker(c, "analytics")["healthcheck"].update(
            test=["CMD-SHELL", "celery -A shop inspect ping -d search@$$HOSTNAME"]
        ),
        "compose: worker-analytics's healthcheck does not ping analytics@",
        id="healthcheck-pings-another-node",
    ),
]


@pytest.mark.parametrize(("breakage", "problem"), BREAKAGES)
def test_checks_report_a_broken_copy(compose, procfile, breakage, problem):
    """A copy broken in one way yields a problem that says so."""
    assert deployment_problems(compose, procfile, QUEUES) == []

    breakage(compose, procfile)
    problems = deployment_problems(compose, procfile, QUEUES)

    assert any(line.startswith(problem) for line in problems), problems
