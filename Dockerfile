# syntax=docker/dockerfile:1
# mtls-config in a container, for pipelines and scheduled jobs (docs/install.md):
#   docker build -t mtls-config .
#   docker run --rm mtls-config apply --auto-approve             # the example stack on the embedded instance
#   docker run --rm -v "$PWD:/specs" -w /specs -e SN_CLIENT_ID -e SN_CLIENT_SECRET mtls-config drift --env prod
# The wheel is built from this checkout with the locked backend and installed with constraints.txt (the versions
# CI tested) by the same scripts CI runs on it (.ci/dist); the image runs as a non-root user and has no Java:
# plan, apply, drift, validate, import, verify and the keystore commands need none.

# The Python constraints.txt was resolved and tested with: a full image to build in (it has a compiler: twofish,
# which pyjks needs, is published as source only), its slim sibling to run in.
ARG BUILD_IMAGE=python:3.11
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
COPY constraints.txt pyproject.toml README.md LICENSE ./
COPY mtls_config ./mtls_config
# The wheel, with the locked build backend; then a wheel of every dependency at its locked version.
RUN python -m pip install --no-cache-dir --disable-pip-version-check -c constraints.txt build flit_core \
 && python -m build --no-isolation --wheel --outdir /dist . \
 && python -m pip wheel --no-cache-dir --disable-pip-version-check -c constraints.txt --wheel-dir /wheels /dist/*.whl

FROM ${PYTHON_IMAGE}
COPY --from=build /wheels/ /tmp/wheels/
COPY constraints.txt tools/install.sh tools/check-quickstart.sh /opt/mtls-config-setup/
RUN sh /opt/mtls-config-setup/install.sh /tmp/wheels/mtls_config-*.whl /opt/mtls-config \
      /opt/mtls-config-setup/constraints.txt /tmp/wheels \
 && rm -rf /tmp/wheels \
 && groupadd --gid 10001 mtls \
 && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/mtls --shell /usr/sbin/nologin mtls
ENV PATH=/opt/mtls-config/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    NO_COLOR=1
COPY --chown=10001:10001 specs/examples/two-partners /home/mtls/example
USER 10001:10001
WORKDIR /home/mtls/example
# The quickstart, as the image's user, before the image exists: the example applied, then "No changes".
RUN sh /opt/mtls-config-setup/check-quickstart.sh /home/mtls/example
ENTRYPOINT ["mtls-config"]
CMD ["--help"]
