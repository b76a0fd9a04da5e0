"""The Dockerfile and docker-compose.yml describe the stack the e2e tests run.

app/devtools/stack.py runs the service the way the image and the compose
file do, with its settings kept as data (SERVICE_COMMAND, IMAGE_ENV,
PGBOUNCER_SETTINGS...). These tests fail as soon as the files drift from it,
or from app/config.py's variables.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from typing import Any
from urllib.parse import urlsplit

import pytest

from app.devtools.stack import (
    IMAGE_BUILD_INPUTS,
    IMAGE_COMPILE,
    IMAGE_ENV,
    IMAGE_SOURCE,
    MIGRATE_COMMAND,
    PGBOUNCER_SETTINGS,
    SERVICE_COMMAND,
    SERVICE_DEFAULTS,
    STOP_GRACE_SECONDS,
)
from tests.e2e import deployment
from tests.e2e.deployment import (
    MissingVariable,
    command,
    compose_raw,
    compose_rendered,
    config_variables,
    dockerfile_stages,
    dockerignore_patterns,
    env_example,
    exec_form,
    healthcheck_command,
    image_reference,
    interpolate,
    service_environment,
    strings,
    variables,
)

# Required secrets: compose refuses to start without them; .env.example leaves them empty.
REQUIRED_SECRETS = {"SHOPIFY_API_SECRET", "POSTGRES_PASSWORD"}
# What an operator would put in .env: the example plus the secrets.
FILLED_ENV = {
    **env_example().values,
    "SHOPIFY_API_SECRET": "a-shopify-secret",
    "POSTGRES_PASSWORD": "a-database-password",
}
# Variables that configure the compose file, not the service.
COMPOSE_VARIABLES = {
    "POSTGRES_HOST",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_DB",
    "APP_PORT",
    "SYNC_EVERY_SECONDS",
    "SCORES_EVERY_SECONDS",
}
# Variables the image sets, or that only matter outside it.
IMAGE_ONLY_VARIABLES = {"HOST", "PORT", "DATA_DIR"}
PGBOUNCER_PORT = "5432"  # edoburu/pgbouncer's default LISTEN_PORT


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    rendered: dict[str, Any] = compose_rendered(FILLED_ENV)["services"]
    return rendered


def runtime_stage() -> deployment.Stage:
    return dockerfile_stages()[-1]


# --- the image ----------------------------------------------------------------


def test_the_image_runs_the_harness_command() -> None:
    stage = runtime_stage()
    assert stage.last("ENTRYPOINT") is None
    cmd = stage.last("CMD")
    assert cmd is not None
    assert exec_form(cmd) == list(SERVICE_COMMAND)


def test_the_image_environment_is_the_harness_environment() -> None:
    env = runtime_stage().env()
    assert {name: env.get(name) for name in IMAGE_ENV} == dict(IMAGE_ENV)
    # `python` is the virtualenv's: the command finds it on PATH.
    assert env["PATH"].startswith(env["VIRTUAL_ENV"] + "/bin:")
    assert runtime_stage().all("EXPOSE") == [IMAGE_ENV["PORT"]]


def test_the_image_holds_only_the_virtualenv_and_the_source() -> None:
    builder, runtime = dockerfile_stages()[-2:]
    copies = [arguments.split() for arguments in runtime.all("COPY")]
    from_builder = [words for words in copies if words[0] == f"--from={builder.name}"]
    from_context = [words[:-1] for words in copies if not words[0].startswith("--")]
    assert [words[1:] for words in from_builder] == [["/opt/venv", "/opt/venv"]]
    assert sorted(source for words in from_context for source in words) == sorted(IMAGE_SOURCE)
    assert runtime.last("WORKDIR") == "/app"
    # The builder sees the lock and the project file, nothing of the source.
    run = builder.last("RUN") or ""
    mounted = re.findall(r"--mount=type=bind,source=([^,\s]+),target=\1", run)
    assert sorted(mounted) == sorted(IMAGE_BUILD_INPUTS)
    assert not builder.all("COPY") or all("--from=uv" in c for c in builder.all("COPY"))


def test_the_image_compiles_its_source_as_the_harness_does() -> None:
    runs = [shlex.split(arguments) for arguments in runtime_stage().all("RUN")]
    assert list(IMAGE_COMPILE) in runs


def test_the_build_context_is_an_allowlist_of_what_the_image_copies() -> None:
    patterns = dockerignore_patterns()
    assert patterns[0] == "*"
    included = {pattern[1:].rstrip("/") for pattern in patterns if pattern.startswith("!")}
    assert included == set(IMAGE_SOURCE) | set(IMAGE_BUILD_INPUTS)
    assert not any(".env" in name for name in included)


def test_the_virtualenv_is_built_from_the_lock_without_development_groups() -> None:
    builder = dockerfile_stages()[-2]
    run = builder.last("RUN") or ""
    sync = run[run.index("uv sync") :].split()
    assert "--frozen" in sync
    assert "--no-install-project" in sync
    pyproject = tomllib.loads((deployment.ROOT / "pyproject.toml").read_text())
    assert pyproject["tool"]["uv"]["package"] is False
    excluded = {sync[i + 1] for i, word in enumerate(sync) if word == "--no-group"}
    if "--no-dev" in sync:
        excluded.add("dev")
    # Every group `uv sync` would install by default stays out of the image.
    assert set(pyproject["tool"]["uv"]["default-groups"]) <= excluded
    assert "embedded" in excluded


def test_the_image_runs_as_an_unprivileged_user() -> None:
    user = runtime_stage().last("USER")
    assert user is not None
    name = user.split(":")[0]
    assert name not in ("root", "0")
    # Set after the last RUN: the build steps may be root, the service never is.
    instructions = [keyword for keyword, _ in runtime_stage().instructions]
    assert max(i for i, k in enumerate(instructions) if k == "RUN") < instructions.index("USER")


def test_the_image_healthcheck_probes_liveness_with_the_standard_library() -> None:
    check = healthcheck_command(runtime_stage())
    assert check[:2] == ["python", "-c"]
    assert "urllib.request" in check[2]
    assert "/health'" in check[2] or '/health"' in check[2]
    assert "PORT" in check[2]


def test_base_images_are_pinned() -> None:
    stages = dockerfile_stages()
    pyproject = tomllib.loads((deployment.ROOT / "pyproject.toml").read_text())
    python_minor = re.search(r"\d+\.\d+", pyproject["project"]["requires-python"])
    assert python_minor is not None
    python_images = {stage.image for stage in stages if stage.image.startswith("python:")}
    # Builder and runtime: one image, so the virtualenv's interpreter path exists.
    assert len(python_images) == 1
    (python_image,) = python_images
    assert re.fullmatch(
        rf"python:{re.escape(python_minor.group())}\.\d+-slim-bookworm", python_image
    ), python_image
    uv_images = [stage.image for stage in stages if "astral-sh/uv" in stage.image]
    assert len(uv_images) == 1
    assert re.fullmatch(r"ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+", uv_images[0]), uv_images
    for stage in stages:
        _, tag = image_reference(stage.image)
        assert tag not in (None, "latest"), stage.image


def test_no_secret_is_baked_into_the_image() -> None:
    for stage in dockerfile_stages():
        for name in stage.env():
            assert not re.search(r"SECRET|TOKEN|PASSWORD|DATABASE_URL", name), name
        assert not stage.all("ARG")


# --- the compose file -----------------------------------------------------------


def test_compose_runs_the_harness_commands(services: dict[str, Any]) -> None:
    assert command(services["migrate"]) == list(MIGRATE_COMMAND)
    # The app keeps the image's command.
    assert command(services["app"]) in (None, list(SERVICE_COMMAND))
    # Both run the image this repository builds.
    assert services["app"]["build"] == services["migrate"]["build"] == "."
    assert services["app"]["image"] == services["migrate"]["image"]


def test_pgbouncer_runs_with_the_harness_settings(services: dict[str, Any]) -> None:
    environment = service_environment(services["pgbouncer"])
    configured = {name.upper(): environment.get(name.upper()) for name in PGBOUNCER_SETTINGS}
    assert configured == {name.upper(): value for name, value in PGBOUNCER_SETTINGS.items()}
    assert PGBOUNCER_SETTINGS["pool_mode"] == "transaction"
    assert environment.get("LISTEN_PORT", PGBOUNCER_PORT) == PGBOUNCER_PORT


def test_the_service_goes_through_pgbouncer_and_the_migrations_do_not(
    services: dict[str, Any],
) -> None:
    postgres = service_environment(services["postgres"])
    pgbouncer = service_environment(services["pgbouncer"])
    app_url = urlsplit(service_environment(services["app"])["DATABASE_URL"])
    migrate_url = urlsplit(service_environment(services["migrate"])["DATABASE_URL"])
    assert (app_url.hostname, str(app_url.port)) == ("pgbouncer", PGBOUNCER_PORT)
    assert (migrate_url.hostname, migrate_url.port) == ("postgres", 5432)
    assert (pgbouncer["DB_HOST"], pgbouncer["DB_PORT"]) == ("postgres", "5432")
    for url in (app_url, migrate_url):
        assert url.scheme == "postgresql"
        assert url.username == postgres["POSTGRES_USER"] == pgbouncer["DB_USER"]
        assert url.password == postgres["POSTGRES_PASSWORD"] == pgbouncer["DB_PASSWORD"]
        assert url.path == f"/{postgres['POSTGRES_DB']}" == f"/{pgbouncer['DB_NAME']}"


def test_the_service_starts_after_the_migrations_and_pgbouncer(services: dict[str, Any]) -> None:
    assert services["app"]["depends_on"] == {
        "migrate": {"condition": "service_completed_successfully"},
        "pgbouncer": {"condition": "service_healthy"},
    }
    # citus-setup only when its profile runs (`required: false`: ignored otherwise).
    database = {
        "postgres": {"condition": "service_healthy"},
        "citus-setup": {"condition": "service_completed_successfully", "required": False},
    }
    assert services["migrate"]["depends_on"] == database
    assert services["pgbouncer"]["depends_on"] == database
    assert services["migrate"]["restart"] == "no"


def test_the_citus_profile_puts_the_service_on_a_coordinator_and_two_workers() -> None:
    services = compose_rendered({**FILLED_ENV, "POSTGRES_HOST": "citus-coordinator"})["services"]
    nodes = ("citus-coordinator", "citus-worker-1", "citus-worker-2")
    for name in (*nodes, "citus-setup"):
        assert services[name]["profiles"] == ["citus"], name
        repository, _ = image_reference(services[name]["image"])
        assert repository == "citusdata/citus", name
    assert len({services[name]["image"] for name in (*nodes, "citus-setup")}) == 1
    assert len({services[name]["volumes"][0] for name in nodes}) == 3, "a volume per node"
    setup = "\n".join(command(services["citus-setup"]) or [])
    for worker in nodes[1:]:
        assert f"citus_add_node('{worker}', 5432)" in setup
    assert "citus_set_coordinator_host('citus-coordinator', 5432)" in setup
    # The password to every node, on every node (a shard move connects worker to worker).
    loop, _, _ = setup.partition("\ndone")
    assert f"for node in {' '.join(nodes[1:])} {nodes[0]}; do" in loop, loop
    assert "INSERT INTO pg_dist_authinfo (nodeid, rolename, authinfo)\nVALUES (0," in loop
    assert set(services["citus-setup"]["depends_on"]) == set(nodes)
    # The migrations, and through PgBouncer the service, on the coordinator.
    migrate_url = urlsplit(service_environment(services["migrate"])["DATABASE_URL"])
    assert migrate_url.hostname == "citus-coordinator"
    assert service_environment(services["pgbouncer"])["DB_HOST"] == "citus-coordinator"
    app_url = urlsplit(service_environment(services["app"])["DATABASE_URL"])
    assert app_url.hostname == "pgbouncer"
    for name in nodes:
        node = service_environment(services[name])
        assert node["POSTGRES_PASSWORD"] == FILLED_ENV["POSTGRES_PASSWORD"]
        assert "POSTGRES_HOST_AUTH_METHOD" not in node, "no trust between the nodes"


def test_healthchecks(services: dict[str, Any]) -> None:
    postgres_check = services["postgres"]["healthcheck"]["test"]
    pgbouncer_check = services["pgbouncer"]["healthcheck"]["test"]
    assert postgres_check[0] == "CMD-SHELL" and "pg_isready" in postgres_check[1]
    assert pgbouncer_check[0] == "CMD-SHELL" and "pg_isready" in pgbouncer_check[1]
    assert "-p 5432" in pgbouncer_check[1]
    # The app keeps the image's HEALTHCHECK; only the one-shot migrate turns it off.
    assert "healthcheck" not in services["app"]
    assert services["migrate"]["healthcheck"] == {"disable": True}


def test_the_published_port_is_the_image_port(services: dict[str, Any]) -> None:
    (mapping,) = services["app"]["ports"]
    assert mapping.rsplit(":", 1)[1] == IMAGE_ENV["PORT"]


def test_docker_stop_gives_the_service_the_harness_grace_period(services: dict[str, Any]) -> None:
    assert services["app"]["stop_grace_period"] == f"{STOP_GRACE_SECONDS}s"
    assert services["app"]["init"] is True


def test_compose_images_are_pinned(services: dict[str, Any]) -> None:
    postgres_repository, postgres_tag = image_reference(services["postgres"]["image"])
    assert postgres_repository == "postgres"
    assert postgres_tag is not None
    postgres_major = re.match(r"(\d+)", postgres_tag)
    assert postgres_major is not None and int(postgres_major.group(1)) >= 16, postgres_tag

    _, pgbouncer_tag = image_reference(services["pgbouncer"]["image"])
    assert pgbouncer_tag is not None
    version = re.match(r"v?(\d+)\.(\d+)\.(\d+)", pgbouncer_tag)
    assert version is not None, pgbouncer_tag
    # 1.21+: protocol-level prepared statements (max_prepared_statements).
    assert tuple(map(int, version.groups())) >= (1, 21, 0), pgbouncer_tag

    for service in services.values():
        _, tag = image_reference(service["image"])
        assert tag not in (None, "latest"), service["image"]


# --- configuration ------------------------------------------------------------


def test_config_variables_are_found() -> None:
    # The helper watches load_settings(); make sure it sees the settings at all.
    assert {"DATABASE_URL", "SHOPIFY_API_SECRET", "WEB_CONCURRENCY"} <= config_variables()


def test_every_setting_is_documented_in_env_example() -> None:
    documented = env_example().documented
    missing = config_variables() - documented
    assert not missing, f"add to .env.example: {sorted(missing)}"
    stale = documented - config_variables() - COMPOSE_VARIABLES
    assert not stale, f"not read by app/config.py nor docker-compose.yml: {sorted(stale)}"


def test_every_compose_variable_is_documented_in_env_example() -> None:
    documented = env_example().documented
    used = {name for text in strings(compose_raw()) for name, _, _ in variables(text)}
    assert used - documented == set()
    assert used >= COMPOSE_VARIABLES
    # What .env.example sets is used by compose (it is the .env of `docker compose`).
    assert set(env_example().values) <= used


def test_services_are_configured_only_with_known_variables(services: dict[str, Any]) -> None:
    known = config_variables()
    for name in ("app", "migrate"):
        environment = service_environment(services[name])
        assert set(environment) <= known - IMAGE_ONLY_VARIABLES, name
    # Every setting an operator may change reaches the service.
    settable = known - IMAGE_ONLY_VARIABLES
    assert set(service_environment(services["app"])) == settable


def test_the_compose_defaults_are_the_harness_defaults() -> None:
    app = compose_raw()["services"]["app"]["environment"]
    for name, value in SERVICE_DEFAULTS.items():
        references = list(variables(app[name]))
        assert references == [(name, ":-", value)], app[name]
    assert {name: env_example().values.get(name) for name in SERVICE_DEFAULTS} == dict(
        SERVICE_DEFAULTS
    )


def test_secrets_are_required_and_never_written_down() -> None:
    example = env_example()
    for name in REQUIRED_SECRETS:
        assert example.values.get(name) == "", f"{name} must be empty in .env.example"
    used = [
        (name, operator)
        for text in strings(compose_raw())
        for name, operator, _ in variables(text)
        if name in REQUIRED_SECRETS
    ]
    assert {name for name, _ in used} == REQUIRED_SECRETS
    assert all(operator == ":?" for _, operator in used), used
    # As shipped, compose refuses to start until the secrets are filled in.
    with pytest.raises(MissingVariable):
        compose_rendered(example.values)
    assert "ADMIN_TOKEN" in example.values and example.values["ADMIN_TOKEN"] == ""


def test_interpolation_follows_compose_rules() -> None:
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET:-d}/${EMPTY:-d}/${UNSET:-d}/${EMPTY-d}", env) == "x/d/d/"
    assert interpolate("$${SET}/${SET}", env) == "${SET}/x"
    with pytest.raises(MissingVariable):
        interpolate("${EMPTY:?needed}", env)


def test_the_sync_service_runs_every_shop_on_a_schedule_through_pgbouncer(
    services: dict[str, Any],
) -> None:
    sync = services["sync"]
    assert command(sync) == ["python", "-m", "app", "sync", "--all", "--every", "3600"]
    assert sync["image"] == services["app"]["image"]
    environment = service_environment(sync)
    assert environment["DATABASE_URL"] == service_environment(services["app"])["DATABASE_URL"]
    assert set(environment) <= config_variables() - IMAGE_ONLY_VARIABLES
    assert "TOKEN_ENCRYPTION_KEY" in environment
    assert sync["depends_on"] == services["app"]["depends_on"]
    assert sync["healthcheck"] == {"disable": True}
