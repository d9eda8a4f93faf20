"""The gateway's one settings class, read from the environment (nested: `REDIS__URL`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field, SecretStr
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


# A list given in the environment as "a,b,c".
CsvList = Annotated[list[str], NoDecode, BeforeValidator(_split_csv)]


class RedisSettings(BaseModel):
    url: str = "redis://127.0.0.1:6379/0"
    # Every Redis call is bounded: a stalled Redis must not stall a session.
    socket_timeout_s: float = 2.0
    connect_timeout_s: float = 1.0
    # Connections per gateway process; callers beyond it wait up to socket_timeout_s.
    max_connections: int = Field(default=32, ge=2)
    key_prefix: str = "speech"
    # "single": one Redis at `url`. "sentinel": the primary of `sentinel_service`, found
    # through `sentinels` (and found again after a failover). "cluster": a Redis Cluster
    # reached through any of `cluster_nodes`. See store/connection.py.
    mode: Literal["single", "sentinel", "cluster"] = "single"
    sentinels: CsvList = []  # host:port of each sentinel
    sentinel_service: str = "mymaster"
    cluster_nodes: CsvList = []  # host:port seed nodes
    # For the data nodes (sentinel and cluster modes; in single mode, put it in `url`).
    password: SecretStr | None = None
    # For the sentinels themselves, when they require one.
    sentinel_password: SecretStr | None = None
    tls: bool = False
    tls_ca_file: str | None = None
    # Finals count as committed (`audio_committed`) only once this many replicas hold
    # them (`WAIT`). None: 1 in sentinel and cluster modes, 0 (no WAIT) in single mode.
    wait_replicas: int | None = Field(default=None, ge=0)
    # How long an append waits for the replicas; then its finals stay pending (sent, not
    # committed) and are written again with the next ones.
    wait_timeout_ms: int = Field(default=500, ge=1)

    @property
    def replicas_to_wait(self) -> int:
        if self.wait_replicas is not None:
            return self.wait_replicas
        return 0 if self.mode == "single" else 1


class RivaDiscoverySettings(BaseModel):
    # In Kubernetes: watch the EndpointSlices of this Service and balance over its ready
    # pods (backends/discovery.py) instead of `targets`, which then serve only until the
    # first listing. Empty: the static `targets`.
    service: str = ""
    # The Service's namespace; empty: the pod's own.
    namespace: str = ""
    # The Service port Riva's gRPC API is on.
    port_name: str = "grpc"


class RivaSettings(BaseModel):
    # One or more `host:port` targets; each new stream goes to the one with the fewest
    # active streams (DESIGN.md, "Riva balancing").
    targets: CsvList = ["127.0.0.1:50051"]
    use_tls: bool = False
    ssl_root_cert: str | None = None
    # NVIDIA's hosted endpoint: API key and function id go out as gRPC metadata.
    api_key: SecretStr | None = None
    function_id: str | None = None
    connect_timeout_s: float = 5.0
    # Keepalive pings on each channel: no oftener than a default-policy gRPC server
    # accepts (5 minutes), see backends/riva.py.
    keepalive_time_s: float = Field(default=300.0, ge=1.0)
    discovery: RivaDiscoverySettings = RivaDiscoverySettings()


class LimitSettings(BaseModel):
    max_concurrent_sessions: int = Field(default=500, ge=1)
    # A worker whose event loop runs this late (its housekeeping tick, held as a decaying
    # peak) is saturated: new sessions are refused (1013 or 503) and readiness fails.
    max_loop_lag_s: float = Field(default=0.15, gt=0)
    # The CPU budget of a worker (its process, every thread, as a share of one core):
    # a new session is refused when the sessions' projected cost would pass it (a
    # worker's p99 widens fast past about 80 % of its core), and the worker is saturated
    # when it is above 95 % whatever the projection says. 1: no CPU bound.
    max_loop_busy: float = Field(default=0.8, gt=0, le=1)
    # What a session's start costs the worker in CPU, as seconds of a session's stream
    # (admission control's projection of one more session; `bench` measures it).
    start_cost_s: float = Field(default=1.0, ge=0)
    # Largest binary frame accepted; larger gets `frame_too_large` and close 1009.
    max_frame_bytes: int = Field(default=256 * 1024, ge=1024)
    # Largest text (JSON) message accepted, a start_transcription with its config included;
    # larger gets `frame_too_large` and close 1009.
    max_text_bytes: int = Field(default=8 * 1024, ge=512)
    # Audio may arrive faster than real time by this factor, after a burst of this many
    # seconds (a resume re-sends the client's replay buffer at once).
    max_realtime_factor: float = Field(default=4.0, gt=0)
    audio_burst_s: float = Field(default=30.0, ge=0)
    # Frames waiting for the backend stream; when full the socket is not read further.
    audio_queue_frames: int = Field(default=64, ge=1)
    # No message at all for this long ends the session (keepalive resets it).
    idle_timeout_s: float = Field(default=30.0, gt=0)
    # How long the first message may take after the socket opens.
    start_timeout_s: float = Field(default=10.0, gt=0)
    # A session that lost its connection can be resumed this long after its last
    # activity; later, `session_expired`.
    session_timeout_s: float = Field(default=300.0, gt=0)
    # Its record stays in Redis this long after its last activity (then: not found).
    session_ttl_s: int = Field(default=3600, ge=60)
    # A stopped session's record and finals are kept this long, for a client that lost
    # its socket before the last finals to fetch them by resuming (docs/capacity.md:
    # at scale, the records of ended sessions size Redis).
    stopped_ttl_s: int = Field(default=600, ge=10)
    # Audio after the last final kept per session to replay into a new backend stream:
    # this many seconds, and never more than replay_max_bytes (48 kHz stereo is 12 times
    # the bytes of 16 kHz mono).
    replay_max_s: float = Field(default=60.0, ge=0)
    replay_max_bytes: int = Field(default=2 * 2**20, ge=0)
    # Audio held for the next backend stream (between streams, during a failover); when
    # full the socket is not read further.
    held_max_bytes: int = Field(default=2**20, ge=64 * 1024)
    # A client that has not taken what the gateway sends for this long is a slow
    # consumer: `slow_consumer` (retryable) and close 1013.
    slow_consumer_timeout_s: float = Field(default=10.0, gt=0)
    # Bound on each send of a session's last words (its error, transcription_stopped,
    # a drain's reconnect), so that one stalled client never blocks an end or a drain.
    send_timeout_s: float = Field(default=2.0, gt=0)
    # How long a drain waits for clients to move before closing their sockets.
    drain_timeout_s: float = Field(default=20.0, ge=0)
    # A start_transcription for an id whose session has the same config and no final yet
    # is the retry of a start whose reply was lost, for this long after the first.
    start_retry_window_s: float = Field(default=3600.0, ge=0)
    # Persisted finals each driver keeps, to restore what Redis may lose (AOF written once
    # a second, a replica that lags its primary).
    finals_kept: int = Field(default=16, ge=1)
    # Finals kept for Redis while it is unreachable; past this the session ends loudly.
    max_pending_finals: int = Field(default=1000, ge=1)
    # A backend stream that takes audio and answers nothing this long is failed over.
    backend_response_timeout_s: float = Field(default=30.0, gt=0)

    @property
    def replay_max_ms(self) -> int:
        return int(self.replay_max_s * 1000)


class ServerSettings(BaseModel):
    # Browser origins allowed to open sockets; requests with no Origin header (servers,
    # CLIs) are allowed. Empty: the fleet's own page only (an Origin naming the request's
    # Host); "*" allows every origin, an explicit opt-in.
    allowed_origins: CsvList = []
    pod_name: str = ""
    # permessage-deflate costs CPU and memory and audio does not compress.
    ws_per_message_deflate: bool = False
    # /docs, /redoc and /openapi.json on the public port: off in production (the schema
    # is still built in-process by `app.openapi()`); the local fleet turns them on.
    docs_enabled: bool = False


class FileSettings(BaseModel):
    # POST /v1/audio/transcriptions: larger uploads get 413, longer audio 400.
    max_bytes: int = Field(default=100 * 1024 * 1024, ge=1024)
    max_duration_s: float = Field(default=4 * 3600.0, gt=0)
    # Audio per Recognize call; each cut is placed at the quietest moment of the last
    # `cut_search_s` seconds of the chunk.
    chunk_s: float = Field(default=30.0, ge=5)
    cut_search_s: float = Field(default=5.0, ge=0.1)
    recognize_timeout_s: float = Field(default=120.0, gt=0)
    # File transcriptions at once per process; more get 429.
    max_concurrent: int = Field(default=4, ge=1)


class JwtSettings(BaseModel):
    # Where the identity provider's signing keys come from: its JWKS URL (fetched off the
    # event loop, cached), or one PEM public key file. Neither: JWTs are not accepted.
    jwks_url: str = ""
    public_key_file: str = ""
    # Asymmetric algorithms only: an HS256 token is the gateway's own (session tokens).
    algorithms: CsvList = ["RS256", "ES256"]
    # Both required when a key source is set: a token of another issuer or audience is
    # refused even when its signature checks out.
    issuer: str = ""
    audience: str = ""
    # The claim naming the caller's tenant (TENANT_RE in auth/principal.py).
    tenant_claim: str = "tenant"
    # Clock skew allowed on exp and nbf.
    leeway_s: float = Field(default=30.0, ge=0, le=300)
    # How long fetched JWKS keys are kept before they are fetched again.
    jwks_cache_s: float = Field(default=300.0, ge=10)
    jwks_timeout_s: float = Field(default=5.0, gt=0)


class AuthSettings(BaseModel):
    # On by default (production). The local fleet and the tests set AUTH__REQUIRED=false;
    # a gateway with it on and no credential source configured refuses to start.
    required: bool = True
    # API keys per tenant, stored hashed (auth/keys.py); re-read when the file changes (a
    # Kubernetes Secret volume swaps a symlink). Empty: no API keys.
    api_keys_file: str = ""
    jwt: JwtSettings = JwtSettings()
    # Signs the gateway's own short-lived, session-scoped tokens (POST /api/v1/tokens):
    # every pod of a fleet must share it. At least 32 bytes. None: no token endpoint.
    session_token_secret: SecretStr | None = None
    session_token_ttl_s: int = Field(default=300, ge=10, le=86400)


class TenantQuota(BaseModel):
    """One tenant's overrides of the `QuotaSettings` defaults: a field left out inherits
    the default, 0 means unlimited."""

    model_config = {"extra": "forbid"}

    max_sessions: int | None = Field(default=None, ge=0)
    starts_per_s: float | None = Field(default=None, ge=0)
    start_burst: int | None = Field(default=None, ge=1)
    audio_hours_per_day: float | None = Field(default=None, ge=0)


class QuotaSettings(BaseModel):
    """Fleet-wide quotas per tenant, counted in Redis (gateway/quotas, docs/quotas.md).
    0 or None: unlimited. With authentication off every session belongs to the one
    anonymous tenant "", so these then bound the whole fleet."""

    # Sessions of one tenant streaming (or detached and resumable) at once, fleet-wide.
    max_sessions: int | None = Field(default=200, ge=0)
    # New sessions (starts; resumes are not counted) per second, with this burst.
    starts_per_s: float | None = Field(default=10.0, ge=0)
    start_burst: int = Field(default=50, ge=1)
    # Audio received per UTC day; past it new sessions are refused until midnight UTC.
    audio_hours_per_day: float | None = Field(default=2000.0, ge=0)
    # How often (whole housekeeping ticks of 1 s) each pod refreshes its sessions'
    # quota leases and adds their audio to the day's total ...
    renew_interval_s: int = Field(default=10, ge=1)
    # ... and how long a session keeps counting after its pod's last renewal (a crashed
    # pod's sessions stop counting after this): at least two renewal intervals.
    lease_s: float = Field(default=35.0, gt=0)
    # Per tenant overrides, as JSON: QUOTAS__TENANTS='{"acme": {"max_sessions": 1000}}'.
    tenants: dict[str, TenantQuota] = {}


class AdminSettings(BaseModel):
    # The pod's admin listener (drain, undrain, state, /metrics), served by the gunicorn
    # master for every worker at once (docs/admin.md). Loopback by default; the chart
    # binds it to the pod IP, never behind the front's Service.
    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=1, le=65535)
    # Bearer token every admin request must carry; None: no credential (then keep the
    # listener on loopback). The chart always sets one.
    token: SecretStr | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_nested_delimiter="__", env_file=None, extra="ignore", case_sensitive=False
    )

    redis: RedisSettings = RedisSettings()
    riva: RivaSettings = RivaSettings()
    limits: LimitSettings = LimitSettings()
    server: ServerSettings = ServerSettings()
    files: FileSettings = FileSettings()
    auth: AuthSettings = AuthSettings()
    quotas: QuotaSettings = QuotaSettings()
    admin: AdminSettings = AdminSettings()
