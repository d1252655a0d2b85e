# The specc agent image: `docker build -t ghcr.io/acme/specc:0.1.0 .`
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY specc ./specc
# The agent talks to its cluster: the `cluster` extra brings the Kubernetes client. The
# image gets the versions CI tested (constraints.txt), not whatever is newest that day.
RUN pip wheel --no-cache-dir --wheel-dir /wheels -c constraints.txt ".[cluster]"

FROM python:3.11-slim
# git fetches the fleet; gpg verifies signed commits when --verify-signatures is on.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git gnupg openssh-client ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
RUN useradd --uid 65532 --create-home specc && mkdir -p /var/lib/specc && chown specc /var/lib/specc
USER 65532
# The mirror of the fleet repository lives here, not in the working directory.
ENV SPECC_WORKDIR=/var/lib/specc
EXPOSE 8080
ENTRYPOINT ["specc"]
CMD ["agent"]
