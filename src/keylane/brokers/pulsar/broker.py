"""``PulsarBroker``: keylane's broker contract over a real Apache Pulsar (``pulsar.asyncio``).

How the contract maps onto the official client (pulsar-client 3.13):

* ``subscription_type`` -> ``ConsumerType``; ``key_shared_policy`` -> ``ConsumerKeySharedPolicy``;
  ``dead_letter_policy`` -> ``ConsumerDeadLetterPolicy``; durations -> the client's milliseconds;
  ``batch_index_ack_enabled`` is passed on as is (it takes effect only on a broker with
  ``acknowledgmentAtBatchIndexLevelEnabled=true``).
* ``batching=None`` disables batching; KEY_BASED and DEFAULT enable it with that batching type.
* Routing on partitioned topics uses a custom ``message_router``
  (:class:`~keylane.brokers.pulsar._convert.PartitionRouter`): Murmur3_32 of the partition key,
  as the embedded broker and Java clients configured with ``Murmur3_32Hash`` do.
* Topics with partitions are created with the admin REST API; subscribe errors are translated to
  keylane's errors. A ``ConsumerBusy`` answer carries no reason in the Python client, so the
  subscription's stats (admin API) tell a type/policy mismatch from an occupied Exclusive
  subscription.
* ``priority_level`` other than 0 is rejected: the Python client cannot send it.
* ``auth_token``/``auth_token_file`` -> ``authentication=AuthenticationToken(<supplier>)`` (a
  token file is read again each time the client asks); ``tls_*`` -> the client's ``tls_*``
  options. The admin client sends the same token and trusts the same CAs
  (:mod:`keylane.brokers.pulsar._security`).

Part of the Pulsar backend; imports ``pulsar`` and no other backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import pulsar
from pulsar.asyncio import Client, PulsarException

from keylane._validate import check_int, check_seconds, check_text
from keylane.brokers.base import (
    BatchingType,
    Broker,
    Consumer,
    DeadLetterPolicy,
    Duration,
    InitialPosition,
    KeySharedMode,
    KeySharedPolicy,
    Producer,
    SubscriptionType,
    normalize_topic,
)
from keylane.brokers.pulsar._admin import PulsarAdmin
from keylane.brokers.pulsar._client import LOG_LEVELS, client_logger, close_client
from keylane.brokers.pulsar._convert import PartitionRouter, client_subscribe_args, to_millis
from keylane.brokers.pulsar._errors import result_name, translate
from keylane.brokers.pulsar._security import TokenSource, check_security
from keylane.brokers.pulsar.consumer import PulsarConsumer
from keylane.brokers.pulsar.producer import PulsarProducer
from keylane.brokers.validation import (
    check_partitions,
    check_producer_args,
    check_subscribe_args,
)
from keylane.errors import (
    AlreadyClosedError,
    BrokerAuthenticationError,
    BrokerConnectionError,
    BrokerError,
    ConsumerBusyError,
    InvalidArgumentError,
    OperationTimeoutError,
    SubscriptionTypeMismatchError,
)

__all__ = ["PulsarBroker"]

_CONSUMER_TYPES = {
    SubscriptionType.EXCLUSIVE: pulsar.ConsumerType.Exclusive,
    SubscriptionType.SHARED: pulsar.ConsumerType.Shared,
    SubscriptionType.FAILOVER: pulsar.ConsumerType.Failover,
    SubscriptionType.KEY_SHARED: pulsar.ConsumerType.KeyShared,
}
_KEY_SHARED_MODES = {
    KeySharedMode.AUTO_SPLIT: pulsar.KeySharedMode.AutoSplit,
    KeySharedMode.STICKY: pulsar.KeySharedMode.Sticky,
}
_POSITIONS = {
    InitialPosition.LATEST: pulsar.InitialPosition.Latest,
    InitialPosition.EARLIEST: pulsar.InitialPosition.Earliest,
}
#: The client's per-producer pending-message limit (``max_pending_messages``) without
#: batching, and the least with it.
_MAX_PENDING = 1000
#: The most with batching: twice the batch size, so that the next batch fills while one is in
#: flight, up to this.
_MAX_PENDING_BATCHED = 10_000
#: Threads for producers' blocking flushes (each producer runs at most one at a time).
_FLUSH_THREADS = 4
#: Largest ``operation_timeout`` and ``connection_timeout``, seconds (1 day): the client takes
#: them as 32-bit seconds and 32-bit milliseconds (at most 24.8 days).
MAX_CLIENT_TIMEOUT = 86_400.0
#: Largest ``io_threads``: the client sizes its executor pool by it.
MAX_IO_THREADS = 1024


class PulsarBroker(Broker):
    """A connection to a real Apache Pulsar 4.x broker.

    Use it as ``async with PulsarBroker("pulsar://127.0.0.1:6650") as broker``; the constructor
    does no I/O, entering (or the first call) connects.

    Args:
        service_url: ``pulsar://host:port`` or ``pulsar+ssl://host:port``.
        admin_url: the broker's web service, for creating partitioned topics and reading
            subscription stats.
        operation_timeout: seconds for client operations (lookups, subscribe, ...), 1 s to
            :data:`MAX_CLIENT_TIMEOUT`.
        connection_timeout: seconds to establish a connection, > 0 and at most
            :data:`MAX_CLIENT_TIMEOUT`.
        io_threads: the client's I/O threads, 1 to :data:`MAX_IO_THREADS`.
        log_level: None keeps the C++ client's default logger (INFO lines on standard
            output); "debug", "info", "warn" or "error" installs the client's console logger
            at that level, or sets the level of ``log_file``.
        log_file: write the client's log lines to this file (appended) instead of standard
            output, at ``log_level`` (default "info"), with the client's file logger.
        auth_token: a token (JWT) to authenticate with, sent by the client and as the admin
            client's ``Authorization: Bearer`` header. Never shown in a ``repr`` or an error.
        auth_token_file: a file holding the token instead (surrounding whitespace dropped),
            read now and again each time the client or the admin client needs it, so a token
            rotated in place is used from the next connection or request on.
        tls_trust_certs_file: a PEM file of the CAs to trust, for ``pulsar+ssl://`` and an
            ``https://`` admin URL; None: certifi's bundle (the client's default).
        tls_allow_insecure_connection: accept any certificate (tests only).
        tls_validate_hostname: check that the broker's certificate names its host (the
            client's default is not to; keylane's is to).

    Raises:
        InvalidArgumentError: a bad argument, named; both ``auth_token`` and
            ``auth_token_file``; a missing or unreadable file; a ``tls_*`` option while neither
            URL uses TLS.
    """

    def __init__(
        self,
        service_url: str,
        *,
        admin_url: str = "http://127.0.0.1:8080",
        operation_timeout: Duration = 30.0,
        connection_timeout: Duration = 10.0,
        io_threads: int = 1,
        log_level: str | None = None,
        log_file: str | os.PathLike[str] | None = None,
        auth_token: str | None = None,
        auth_token_file: str | os.PathLike[str] | None = None,
        tls_trust_certs_file: str | os.PathLike[str] | None = None,
        tls_allow_insecure_connection: bool = False,
        tls_validate_hostname: bool = True,
    ) -> None:
        if isinstance(service_url, str):
            check_text("service_url", service_url)
        parsed = urlparse(service_url) if isinstance(service_url, str) else None
        if parsed is None or parsed.scheme not in ("pulsar", "pulsar+ssl") or not parsed.hostname:
            raise InvalidArgumentError(
                f"service_url must look like 'pulsar://host:6650', got {service_url!r}"
            )
        try:
            port = parsed.port
        except ValueError:  # not a number in 0..65535: "pulsar://host:x"
            raise InvalidArgumentError(
                f"service_url must look like 'pulsar://host:6650', got {service_url!r}"
            ) from None
        if not isinstance(admin_url, str) or urlparse(admin_url).scheme not in ("http", "https"):
            raise InvalidArgumentError(f"admin_url must be an http(s) URL, got {admin_url!r}")
        check_text("admin_url", admin_url)
        if log_level is not None and (
            not isinstance(log_level, str) or log_level not in LOG_LEVELS
        ):
            raise InvalidArgumentError(f"log_level must be None or one of {sorted(LOG_LEVELS)}")
        log_path = None if log_file is None else _log_path(log_file)
        check_int("io_threads", io_threads, 1, MAX_IO_THREADS)
        self._security = check_security(
            service_url,
            admin_url,
            auth_token=auth_token,
            auth_token_file=auth_token_file,
            tls_trust_certs_file=tls_trust_certs_file,
            tls_allow_insecure_connection=tls_allow_insecure_connection,
            tls_validate_hostname=tls_validate_hostname,
        )
        self.service_url = service_url
        self.admin_url = admin_url
        self._host = parsed.hostname
        self._port = port or (6651 if parsed.scheme == "pulsar+ssl" else 6650)
        self._operation_timeout = check_seconds(
            "operation_timeout",
            operation_timeout,
            minimum=1.0,
            maximum=MAX_CLIENT_TIMEOUT,
            allow_timedelta=True,
        )
        self._connection_timeout = check_seconds(
            "connection_timeout",
            connection_timeout,
            allow_zero=False,
            maximum=MAX_CLIENT_TIMEOUT,
            allow_timedelta=True,
        )
        self._io_threads = io_threads
        self._log_level = log_level
        self._log_file = log_path
        self.admin = PulsarAdmin(
            admin_url,
            self._operation_timeout,
            token=self._security.token,
            ssl_context=self._security.ssl_context() if admin_url.startswith("https:") else None,
        )
        self._client: Client | None = None
        self._starting: asyncio.Lock | None = None
        self._producers: set[PulsarProducer] = set()
        self._consumers: set[PulsarConsumer] = set()
        self._flusher: ThreadPoolExecutor | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"<PulsarBroker {self.service_url} closed={self._closed}>"

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> PulsarBroker:
        await self.start()
        return self

    async def start(self) -> None:
        """Check that the broker is reachable and create the client. Idempotent.

        Raises:
            BrokerConnectionError: nothing listens at the service URL.
            AlreadyClosedError: the broker was closed.
        """
        await self._ensure_client()

    async def _ensure_client(self) -> Client:
        if self._closed:
            raise AlreadyClosedError("the Pulsar broker connection is closed")
        if self._client is not None:
            return self._client
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._client is None:
                await self._probe()
                self._client = Client(
                    self.service_url,
                    authentication=_authentication(self._security.token),
                    operation_timeout_seconds=math.ceil(self._operation_timeout),
                    connection_timeout_ms=max(1, to_millis(self._connection_timeout)),
                    io_threads=self._io_threads,
                    logger=client_logger(self._log_level, self._log_file),
                    **self._security.client_options(),
                )
        return self._client

    async def _probe(self) -> None:
        # A client pointed at a dead address retries until the operation timeout, and the
        # C++ client has crashed at interpreter exit after such retries: fail fast instead.
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(self._host, self._port), self._connection_timeout
            )
        except (OSError, TimeoutError) as exc:
            raise BrokerConnectionError(
                f"cannot reach Pulsar at {self.service_url}: {exc or type(exc).__name__}"
            ) from exc
        writer.close()
        await writer.wait_closed()

    async def _refused(self, error: Exception) -> Exception:
        """``error``, or a :class:`BrokerAuthenticationError` if the broker refuses the token.

        A broker that refuses the token closes the connection; the C++ client retries until the
        operation timeout and then reports only ``Timeout``. So a timeout or connection error
        with a token set is checked against the admin API, which says 401 for a refused token.
        """
        if self._security.token is None or not isinstance(
            error, OperationTimeoutError | BrokerConnectionError
        ):
            return error
        if not await self.admin.token_refused():
            return error
        return BrokerAuthenticationError(
            f"{error}: the broker refuses the token (auth_token/auth_token_file); its admin API "
            "refuses it too (HTTP 401/403)"
        )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for consumer in list(self._consumers):
            with contextlib.suppress(BrokerError):
                await consumer.close()
        for producer in list(self._producers):
            with contextlib.suppress(BrokerError):
                await producer.close()
        client, self._client = self._client, None
        if client is not None:
            await close_client(client)
        if self._flusher is not None:
            self._flusher.shutdown(wait=False)

    # ------------------------------------------------------------------ topics

    async def create_topic(self, topic: str, partitions: int = 0) -> None:
        full = normalize_topic(topic)
        check_partitions(partitions)
        if partitions and "-partition-" in full.rpartition("/")[2]:
            raise InvalidArgumentError(
                f"a partitioned topic name must not contain '-partition-': {full}"
            )
        await self._ensure_client()
        await self.admin.create_topic(full, partitions)

    async def topic_partitions(self, topic: str) -> list[str]:
        full = normalize_topic(topic)
        client = await self._ensure_client()
        try:
            return [str(name) for name in await client.get_topic_partitions(full)]
        except PulsarException as exc:
            raise await self._refused(translate(exc, f"look up the partitions of {full}")) from exc

    # ------------------------------------------------------------------ producers

    def _flush_executor(self) -> ThreadPoolExecutor:
        """The threads that run producers' blocking flushes (see ``producer.py``)."""
        if self._flusher is None:
            self._flusher = ThreadPoolExecutor(
                max_workers=_FLUSH_THREADS, thread_name_prefix="keylane-pulsar-flush"
            )
        return self._flusher

    async def create_producer(
        self,
        topic: str,
        *,
        batching: BatchingType | None = BatchingType.KEY_BASED,
        batching_max_messages: int = 1000,
        batching_max_publish_delay: Duration = 0.01,
        producer_name: str | None = None,
    ) -> Producer:
        full = normalize_topic(topic)
        delay = check_producer_args(
            batching, batching_max_messages, batching_max_publish_delay, producer_name
        )
        client = await self._ensure_client()
        max_pending = _max_pending(batching is not None, batching_max_messages)
        router = PartitionRouter(
            batching=batching is not None, max_messages=batching_max_messages, max_delay=delay
        )
        batching_type = (
            pulsar.BatchingType.KeyBased
            if batching is BatchingType.KEY_BASED
            else pulsar.BatchingType.Default
        )
        try:
            native = await client.create_producer(
                full,
                producer_name=producer_name,
                batching_enabled=batching is not None,
                batching_type=batching_type,
                batching_max_messages=batching_max_messages,
                batching_max_publish_delay_ms=to_millis(delay),
                max_pending_messages=max_pending,
                message_router=lambda message, n: router.route(message.partition_key(), n),
            )
        except PulsarException as exc:
            raise await self._refused(translate(exc, f"create a producer on {full}")) from exc
        producer = PulsarProducer(
            native,
            topic=full,
            max_pending=max_pending,
            batching=batching is not None,
            executor=self._flush_executor(),
            on_close=self._producers.discard,
        )
        self._producers.add(producer)
        return producer

    # ------------------------------------------------------------------ consumers

    async def subscribe(
        self,
        topic: str,
        subscription: str,
        *,
        subscription_type: SubscriptionType = SubscriptionType.EXCLUSIVE,
        consumer_name: str | None = None,
        receiver_queue_size: int = 1000,
        ack_timeout: Duration | None = None,
        negative_ack_redelivery_delay: Duration = 60.0,
        dead_letter_policy: DeadLetterPolicy | None = None,
        key_shared_policy: KeySharedPolicy | None = None,
        priority_level: int = 0,
        initial_position: InitialPosition = InitialPosition.LATEST,
        batch_index_ack_enabled: bool = False,
    ) -> Consumer:
        full = normalize_topic(topic)
        ack_timeout_s, nack_delay_s = check_subscribe_args(
            subscription=subscription,
            subscription_type=subscription_type,
            consumer_name=consumer_name,
            receiver_queue_size=receiver_queue_size,
            ack_timeout=ack_timeout,
            negative_ack_redelivery_delay=negative_ack_redelivery_delay,
            dead_letter_policy=dead_letter_policy,
            key_shared_policy=key_shared_policy,
            priority_level=priority_level,
            initial_position=initial_position,
        )
        if not isinstance(batch_index_ack_enabled, bool):
            raise InvalidArgumentError(
                "batch_index_ack_enabled must be True or False, not "
                f"{type(batch_index_ack_enabled).__name__}"
            )
        ack_ms, nack_ms = client_subscribe_args(priority_level, ack_timeout_s, nack_delay_s)
        policy = None
        if subscription_type is SubscriptionType.KEY_SHARED:
            policy = key_shared_policy or KeySharedPolicy()
        client = await self._ensure_client()
        try:
            native = await client.subscribe(
                full,
                subscription,
                consumer_type=_CONSUMER_TYPES[subscription_type],
                receiver_queue_size=receiver_queue_size,
                consumer_name=consumer_name,
                unacked_messages_timeout_ms=ack_ms,
                negative_ack_redelivery_delay_ms=nack_ms,
                initial_position=_POSITIONS[initial_position],
                key_shared_policy=_native_key_shared_policy(policy),
                dead_letter_policy=_native_dead_letter_policy(dead_letter_policy),
                batch_index_ack_enabled=batch_index_ack_enabled,
            )
        except PulsarException as exc:
            if result_name(exc) == "ConsumerBusy":
                raise await self._busy_error(full, subscription, subscription_type, policy) from exc
            error = translate(exc, f"subscribe {subscription!r} to {full}")
            raise await self._refused(error) from exc
        consumer = PulsarConsumer(
            native,
            topic=full,
            subscription_type=subscription_type,
            on_close=self._consumers.discard,
        )
        self._consumers.add(consumer)
        return consumer

    async def _busy_error(
        self,
        topic: str,
        subscription: str,
        wanted: SubscriptionType,
        policy: KeySharedPolicy | None,
    ) -> ConsumerBusyError:
        """Tell a type or Key_Shared policy mismatch from an occupied subscription.

        The broker's reason is not passed on by the Python client, so this reads the
        subscription's stats. Messages follow the broker's own wording.
        """
        try:
            stats = await self.admin.subscription_stats(topic, subscription) or {}
        except BrokerError:
            stats = {}
        active = stats.get("type")
        if isinstance(active, str) and active != wanted.value:
            return SubscriptionTypeMismatchError(
                f"Subscription is of different type. Active subscription type of '{active}' is "
                f"different than the connecting consumer's type '{wanted.value}'."
            )
        if policy is not None and active == wanted.value:
            mode = stats.get("keySharedMode")
            if isinstance(mode, str) and mode != policy.mode.name:
                return SubscriptionTypeMismatchError(
                    "Subscription is of different type. Active subscription key_shared mode of "
                    f"'{mode}' is different than the connecting consumer's key_shared mode "
                    f"'{policy.mode.name}'."
                )
            ooo = stats.get("allowOutOfOrderDelivery")
            if isinstance(ooo, bool) and ooo != policy.allow_out_of_order_delivery:
                allows = "allows" if ooo else "does not allow"
                other = "does not" if ooo else "does"
                return SubscriptionTypeMismatchError(
                    f"Subscription is of different type. Active subscription {allows} out of "
                    f"order delivery while the connecting consumer {other}."
                )
        return ConsumerBusyError(
            f"cannot subscribe {subscription!r} to {topic}: the subscription is busy "
            f"(Exclusive consumer is already connected)"
        )


def _max_pending(batching: bool, batching_max_messages: int) -> int:
    """The producer's window of unconfirmed messages (the client's ``max_pending_messages``)."""
    if not batching:
        return _MAX_PENDING
    return min(max(_MAX_PENDING, 2 * batching_max_messages), _MAX_PENDING_BATCHED)


def _authentication(token: TokenSource | None) -> pulsar.AuthenticationToken | None:
    """The client's ``authentication``: a fixed token as text, a token file as a supplier.

    The client calls the supplier (holding the GIL) each time it connects and when the broker
    asks for fresh credentials; :class:`TokenSource` never raises there.
    """
    if token is None:
        return None
    return pulsar.AuthenticationToken(token if token.path is not None else token())


def _log_path(log_file: object) -> str:
    """``log_file`` as the str path the client's file logger takes."""
    path = os.fspath(log_file) if isinstance(log_file, str | os.PathLike) else None
    if not isinstance(path, str) or not path:
        raise InvalidArgumentError(f"log_file must be a non-empty path, not {log_file!r}")
    return check_text("log_file", path)


def _native_key_shared_policy(
    policy: KeySharedPolicy | None,
) -> pulsar.ConsumerKeySharedPolicy | None:
    if policy is None:
        return None
    return pulsar.ConsumerKeySharedPolicy(
        key_shared_mode=_KEY_SHARED_MODES[policy.mode],
        allow_out_of_order_delivery=policy.allow_out_of_order_delivery,
        sticky_ranges=list(policy.sticky_ranges) or None,
    )


def _native_dead_letter_policy(
    policy: DeadLetterPolicy | None,
) -> pulsar.ConsumerDeadLetterPolicy | None:
    if policy is None:
        return None
    topic = policy.dead_letter_topic
    return pulsar.ConsumerDeadLetterPolicy(
        max_redeliver_count=policy.max_redeliver_count,
        dead_letter_topic=normalize_topic(topic) if topic is not None else None,
        initial_subscription_name=policy.initial_subscription_name,
    )
